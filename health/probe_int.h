/*
 * fennec — private parts of the prober, shared by probe.c (the health thread, the schedule,
 * the state machine, TCP probes and the API) and probe_http.c (HTTP(S) probes: one libcurl
 * multi handle driven by the health thread's loop).
 *
 * Threads and locking: everything here runs on the health thread, inside a uv callback that
 * holds the prober's lock (probe_lock() ... probe_unlock()), unless its comment says
 * otherwise. curl's callbacks run inside curl calls made under that lock and never take it.
 */
#ifndef FENNEC_PROBE_INT_H
#define FENNEC_PROBE_INT_H

#include "fennec/health.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define PROBE_MOD "health" /* log module */

typedef struct probe_check probe_check_t;

/* One configured check: its definition, state, counters, and the handles that probe it. */
struct probe_check {
    health_config_t *cfg; /* one reference: def points into it */
    const health_check_def_t *def;
    health_check_state_t st;
    health_probe_counts_t counts;
    probe_check_t *next_retired;
    bool live;    /* handles made (health thread) */
    bool retired; /* no longer configured: its handles are closing */
    bool busy;    /* a probe in flight; TCP: until its handle is closed */
    bool pending; /* came due while busy: probe again as soon as it ends */
    bool decided; /* this TCP probe has its result */
    bool tcp_open;
    bool matched; /* health_configure(): kept for the new configuration */
    int open;     /* handles not yet closed */
    uv_timer_t due;
    uv_timer_t tmo; /* TCP: the probe's timeout */
    uv_tcp_t tcp;
    uv_connect_t conn;
    uint64_t t0;           /* uv_hrtime() at the probe's start */
    const char *setup_err; /* static text: why this check cannot probe */
    /* HTTP(S), probe_http.c */
    CURL *easy;
    bool in_multi;
    struct curl_slist *connect_to, *headers;
    char *url;
    size_t body_seen;
    bool body_found, capped;
    size_t pat_len, tail_len;
    char *win; /* 2 * pat_len bytes: the tail of the body so far, joined to the next chunk */
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- probe.c, for probe_http.c ----------------------------------------------------------- */

/* Takes the prober's lock at the start of a uv callback. */
void probe_lock(void);

/* Ends a uv callback: starts the transfers added during it, publishes the pool view if an
 * effective state changed, and releases the lock. */
void probe_unlock(void);

/* A probe of C ended: OK or not (TIMED_OUT: it ran out of time), RESULT a short text copied
 * into the state ("200", "timeout", "TLS: ..."). Counts it, runs the state machine, logs a
 * transition. */
void probe_done(probe_check_t *c, bool ok, bool timed_out, const char *result);

/* C's probe handles are free again: starts the probe that came due meanwhile, if any. */
void probe_end(probe_check_t *c);

/* NS in milliseconds, at least 1. */
uint64_t probe_ms(uint64_t ns);

/* Makes the close of socket FD abortive (SO_LINGER 0: an RST, no FIN exchange and no
 * TIME_WAIT on either side), as probes close once they have their answer. Best effort. */
void probe_abortive_close(int fd);

/* ---- probe_http.c ------------------------------------------------------------------------ */

/* Makes the multi handle and its timer on LOOP (any thread, before the loop runs).
 * 0 or -ENOMEM. */
int probe_http_init(uv_loop_t *loop);

/* Cleans the multi handle up (every transfer abandoned first) and closes its timer. */
void probe_http_deinit(void);

/* Makes C's easy handle, options set once. NULL, or a static text saying why C cannot be
 * probed (every probe then fails with it). */
const char *probe_http_setup(probe_check_t *c);

/* Starts a probe of C (c->busy is set); its end comes through probe_done() and
 * probe_end(). */
void probe_http_start(probe_check_t *c);

/* Abandons C's transfer in flight, if any. */
void probe_http_abandon(probe_check_t *c);

/* Frees C's easy handle and what it uses; C is no longer on the multi handle. Any thread. */
void probe_http_free(probe_check_t *c);

/* Starts the transfers added during this callback (outside any curl call: curl is never
 * re-entered). */
void probe_http_settle(void);

#endif
