/*
 * fennec — CoDel queue-delay control for one UDP worker (RFC 8289 control law).
 *
 * The module is pure and deterministic: it never reads a clock. The worker passes the time
 * (`now_ns`, CLOCK_MONOTONIC-compatible nanoseconds) and each packet's sojourn time
 * (now − kernel arrival timestamp from SO_TIMESTAMPNS) into codel_should_drop(), once per
 * dequeued packet, in order. A dropped packet is read and not answered.
 *
 * One codel_t per worker; it is not shared between threads. The counter accessors
 * (codel_drops(), codel_entries()) may be called from any thread.
 * See docs/overload.md for the control law and how a worker calls this module.
 */
#ifndef FENNEC_CODEL_H
#define FENNEC_CODEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* interval/sqrt(n) is precomputed for n = 1..CODEL_STEP_TABLE; beyond that it is kept up to
 * date with one Newton step per drop. */
#define CODEL_STEP_TABLE 64

/* Re-entering the dropping state less than this many intervals after the last scheduled
 * drop resumes at count − 2 instead of 1 (hysteresis). */
#define CODEL_RESUME_INTERVALS 16

/* Longest accepted interval (one hour). */
#define CODEL_INTERVAL_MAX_NS (3600ull * 1000000000ull)

/* Caller-owned state. Fields are private: use the functions below. */
typedef struct codel {
    uint64_t target_ns;
    uint64_t interval_ns;

    uint64_t first_above_time; /* 0: sojourn not (yet) above target */
    uint64_t drop_next;        /* time of the next drop while dropping */
    uint32_t count;            /* drops in the current episode (with the resumed offset) */
    bool dropping;

    uint64_t step_ns; /* interval / sqrt(count), always in step with count */
    double inv_sqrt;  /* 1 / sqrt(count), used beyond the table */
    uint64_t step_table[CODEL_STEP_TABLE + 1]; /* [n] = interval / sqrt(n) */

    _Atomic uint64_t drops;   /* packets dropped */
    _Atomic uint64_t entries; /* times the dropping state was entered */
} codel_t;

/*
 * Initializes C with the target and interval (RFC 8289 defaults for fennec: 5 ms, 100 ms).
 * Returns 0, or -EINVAL when TARGET_NS or INTERVAL_NS is 0 or INTERVAL_NS is above
 * CODEL_INTERVAL_MAX_NS (C is then left unusable).
 */
int codel_init(codel_t *c, uint64_t target_ns, uint64_t interval_ns);

/*
 * Decides for one dequeued packet whose queue delay is SOJOURN_NS, at time NOW_NS.
 * Call once per packet, in dequeue order, with non-decreasing NOW_NS. Returns true when
 * the packet must be dropped (not answered). Never drops while SOJOURN_NS < target.
 */
bool codel_should_drop(codel_t *c, uint64_t sojourn_ns, uint64_t now_ns);

/*
 * Tells C the queue is empty (recvmmsg returned fewer messages than asked, or EAGAIN).
 * Leaves the dropping state and forgets the time the sojourn went above target, as
 * RFC 8289 does when the dequeue finds no packet.
 */
void codel_queue_empty(codel_t *c);

/* Packets dropped since codel_init(). Safe from any thread. */
uint64_t codel_drops(const codel_t *c);

/* Times the dropping state was entered since codel_init(). Safe from any thread. */
uint64_t codel_entries(const codel_t *c);

/* Owning thread only: whether C is in the dropping state. */
bool codel_dropping(const codel_t *c);

/* Owning thread only: the drop count of the current (or last) dropping episode. */
uint32_t codel_count(const codel_t *c);

/* Owning thread only: when the next drop is scheduled (meaningful while dropping). */
uint64_t codel_drop_next(const codel_t *c);

/* Owning thread only: the current spacing between drops, interval / sqrt(count). */
uint64_t codel_step_ns(const codel_t *c);

#endif
