/*
 * fennec — fennecd's side of the link to fennec-supervisor (supervisor.h, docs/anycast.md).
 * When fennecd runs under the supervisor, SUPERVISOR_FD_ENV names a socket: the supervisor's
 * reports arrive on it (the node's announce state, its reason, counters, the drain flag) and
 * drain requests from the control API leave on it. The reports are kept here for the control
 * endpoint and given to the replication state (repl_announce_self()), which carries them to
 * the primary. Without the variable fennecd is unsupervised: no anycast state, drains refused.
 *
 * The link runs on the main uv loop; anycast_status_get() and anycast_drain() may be called
 * from any thread.
 */
#ifndef FENNEC_ANYCAST_H
#define FENNEC_ANYCAST_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "fennec/supervisor.h"

/* Takes the link from the environment (and removes the variable) and starts reading it on
 * LOOP. Returns 0 (also when there is no supervisor), or -EBADF when the variable names no
 * socket (logged; fennecd then runs unsupervised). */
int anycast_start(uv_loop_t *loop);

/* Closes the link's handles (on the loop's thread, before the loop ends). Idempotent. */
void anycast_stop(void);

typedef struct anycast_status {
    bool supervised; /* started with a link */
    bool linked;     /* the link is up (the supervisor did not go away) */
    bool reported;   /* a report arrived */
    supervisor_report_t rep;
} anycast_status_t;

void anycast_status_get(anycast_status_t *out);

/*
 * Asks the supervisor to drain (DRAIN true) or undrain, and waits at most TIMEOUT_MS for the
 * report that answers it (the supervisor answers once BIRD confirmed, or at once when BIRD is
 * not reachable), written to *AFTER. Errors: FENNEC_ENOTSUP (no supervisor), -EPIPE (the
 * link is gone), FENNEC_ETIMEOUT. Blocks the calling thread only (a control connection's).
 */
int anycast_drain(bool drain, uint32_t timeout_ms, supervisor_report_t *after);

#endif
