/*
 * fennec — the supervisor (fennec-supervisor, docs/anycast.md): starts fennecd, sees its exit
 * at once (uv_spawn's exit callback), withdraws the node's anycast announcement through BIRD
 * (bird.h) before anything else, restarts fennecd with exponential backoff within a restart
 * intensity, and announces again once a self-check (a real DNS query to every service
 * address) has succeeded `rise` times in a row; `fall` failures in a row withdraw.
 *
 * fennecd and its supervisor talk over a SOCK_SEQPACKET socket pair whose fennecd end is
 * descriptor SUPERVISOR_FD_ENV names: one JSON object per message, at most SUPERVISOR_MSG_MAX
 * bytes. The supervisor sends its report (supervisor_report_t) whenever it changes and after
 * each request; fennecd sends {"type":"drain","drain":BOOL,"id":N} (the report that answers it
 * has "reply": N) and {"type":"zone","name":NAME} (the first zone it serves, the self-check's
 * default question).
 *
 * The pure parts (restart intensity, rise/fall, the state a node is in, the report codec) are
 * separate so that the unit tests drive them with time passed in.
 */
#ifndef FENNEC_SUPERVISOR_H
#define FENNEC_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fennec/bird.h"
#include "fennec/cfg.h"
#include "fennec/repl.h"

#define SUPERVISOR_FD_ENV         "FENNEC_SUPERVISOR_FD"
#define SUPERVISOR_MSG_MAX        4096
#define SUPERVISOR_INTENSITY_MAX  1000 /* the config's limit on restart.intensity */
#define SUPERVISOR_EXIT_GAVE_UP   3    /* exit status after the restart intensity was exceeded */
#define SUPERVISOR_STOP_TIMEOUT_S 10   /* SIGTERM to fennecd, then SIGKILL after this long */

/* ---- restart intensity (pure) ------------------------------------------------------------ */

typedef struct supervisor_restart {
    uint64_t backoff_ns;     /* the first delay */
    uint64_t backoff_max_ns; /* the longest delay */
    uint32_t intensity;      /* crashes allowed within period */
    uint64_t period_ns;
    uint64_t crashes[SUPERVISOR_INTENSITY_MAX + 1]; /* times (ns, monotonic), oldest first */
    size_t count;
} supervisor_restart_t;

void supervisor_restart_init(supervisor_restart_t *r, const cfg_anycast_t *a);

/*
 * Records a crash (any exit that was not asked for) at NOW_NS. Crashes older than the period
 * are forgotten. Returns false when more than `intensity` crashes fall within the period: give
 * up. Otherwise true, with *DELAY_NS = backoff × 2^(k−1) capped at backoff_max, k the crashes
 * within the period (this one included): a crash loop slows down, and a node that ran quietly
 * for a period starts again from the first delay.
 */
bool supervisor_restart_crash(supervisor_restart_t *r, uint64_t now_ns, uint64_t *delay_ns);

/* Crashes within the period at NOW_NS. */
size_t supervisor_restart_recent(const supervisor_restart_t *r, uint64_t now_ns);

/* ---- self-check rise and fall (pure) ------------------------------------------------------ */

typedef struct supervisor_check {
    uint32_t rise, fall;
    uint32_t ok_run, fail_run; /* consecutive results */
    bool up;
} supervisor_check_t;

/* Down, no results. */
void supervisor_check_init(supervisor_check_t *c, uint32_t rise, uint32_t fall);

/* One result; returns true when it changed UP. */
bool supervisor_check_result(supervisor_check_t *c, bool ok);

/* ---- the node's state (pure) -------------------------------------------------------------- */

typedef struct supervisor_inputs {
    bool running;      /* fennecd runs */
    bool gave_up;      /* the restart intensity was exceeded */
    bool stopping;     /* SIGTERM: withdraw and stop */
    bool check_up;     /* the self-check has risen */
    bool drain;        /* an operator's drain */
    bird_state_t bird; /* what BIRD confirmed */
} supervisor_inputs_t;

/* Whether the protocol should be enabled (announced): fennecd runs, the check is up, no
 * drain, not stopping, not given up. */
bool supervisor_want_announce(const supervisor_inputs_t *in);

/* The state to report: down (fennecd not running, given up or stopping), drained (a drain
 * BIRD confirmed) or draining, announced (wanted and confirmed by BIRD), else withdrawn. */
repl_announce_t supervisor_state_of(const supervisor_inputs_t *in);

/* ---- the report on the link (pure) -------------------------------------------------------- */

typedef struct supervisor_report {
    repl_announce_t state;
    double since;                              /* wall seconds of the last transition */
    char reason[512];                          /* why the last transition happened */
    uint64_t transitions[REPL_ANNOUNCE_COUNT]; /* transitions into each state */
    uint64_t restarts;                         /* fennecd restarts after an exit */
    bool drain;
    bool bird_connected;
    char bird_error[256]; /* "" when BIRD answers and accepted the last command */
    uint64_t reply;       /* the request this report answers; 0: none */
} supervisor_report_t;

/* Copies SRC into DST (CAP bytes, NUL-terminated), ASCII only (bytes from 0x80 up become
 * '?'), so that a text cut short never splits a UTF-8 character and always encodes as JSON. */
void supervisor_text_copy(char *dst, size_t cap, const char *src);

/* Encodes R as JSON into BUF (CAP bytes, NUL-terminated); returns its length, or -ENOSPC. */
int supervisor_report_encode(const supervisor_report_t *r, char *buf, size_t cap);

/* Decodes LEN bytes into OUT: 0, or FENNEC_EMALFORMED for anything not a report (never reads
 * past LEN; unknown keys are ignored). */
int supervisor_report_decode(const char *buf, size_t len, supervisor_report_t *out);

/* ---- running ------------------------------------------------------------------------------- */

typedef struct supervisor_opts {
    const char *config_path;     /* passed to fennecd as -c */
    const char *fennecd_path;    /* the program started */
    const char *fennecd_pidfile; /* NULL: none; written at each start, removed at each exit */
} supervisor_opts_t;

/*
 * Runs the supervisor for CFG (with an anycast section) on the default uv loop until SIGTERM
 * or SIGINT (returns 0 after withdrawing and stopping fennecd) or until the restart intensity
 * is exceeded (returns SUPERVISOR_EXIT_GAVE_UP after withdrawing). Other returns: 1 for a
 * failure to set up (logged). The main thread only.
 */
int supervisor_run(const cfg_t *cfg, const supervisor_opts_t *opts);

#endif
