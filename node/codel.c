/* CoDel (RFC 8289) as a per-packet decision for one UDP worker; no clock reads here. */
#include "fennec/codel.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Single writer (the worker), any reader: a relaxed load and store compile to plain moves,
 * unlike a locked read-modify-write, and still give readers untorn values. */
static inline void counter_inc(_Atomic uint64_t *v)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static uint64_t step_from_inv(const codel_t *c, double inv)
{
    double step = (double)c->interval_ns * inv;
    if (step < 1.0)
        return 1;
    return (uint64_t)step;
}

/* Sets count to N and step_ns to interval/sqrt(N). Used when an episode starts, which is
 * rare, so a libm call beyond the table is fine here. */
static void count_set(codel_t *c, uint32_t n)
{
    if (n == 0)
        n = 1;
    c->count = n;
    if (n <= CODEL_STEP_TABLE) {
        c->step_ns = c->step_table[n];
        c->inv_sqrt = (double)c->step_ns / (double)c->interval_ns;
        return;
    }
    c->inv_sqrt = 1.0 / sqrt((double)n);
    c->step_ns = step_from_inv(c, c->inv_sqrt);
}

/* count + 1 on the drop path: a table read, or one Newton step for 1/sqrt(count) starting
 * from the previous value (relative error after the step stays below 1e-4). */
static void count_next(codel_t *c)
{
    if (c->count == UINT32_MAX)
        return;
    uint32_t n = c->count + 1;
    c->count = n;
    if (n <= CODEL_STEP_TABLE) {
        c->step_ns = c->step_table[n];
        c->inv_sqrt = (double)c->step_ns / (double)c->interval_ns;
        return;
    }
    double x = c->inv_sqrt;
    x = x * (1.5 - 0.5 * (double)n * x * x);
    c->inv_sqrt = x;
    c->step_ns = step_from_inv(c, x);
}

int codel_init(codel_t *c, uint64_t target_ns, uint64_t interval_ns)
{
    memset(c, 0, sizeof(*c));
    /* The upper bound keeps 16 * interval far from signed overflow. */
    if (target_ns == 0 || interval_ns == 0 || interval_ns > CODEL_INTERVAL_MAX_NS)
        return -EINVAL;
    c->target_ns = target_ns;
    c->interval_ns = interval_ns;
    c->step_table[0] = interval_ns;
    for (uint32_t n = 1; n <= CODEL_STEP_TABLE; n++) {
        double step = (double)interval_ns / sqrt((double)n);
        c->step_table[n] = step < 1.0 ? 1 : (uint64_t)step;
    }
    count_set(c, 1);
    c->count = 0;
    atomic_init(&c->drops, 0);
    atomic_init(&c->entries, 0);
    return 0;
}

/* RFC 8289 dodequeue(): tracks how long the sojourn has been above target and says whether
 * it has been so for at least one interval. */
static bool above_for_interval(codel_t *c, uint64_t sojourn_ns, uint64_t now_ns)
{
    if (sojourn_ns < c->target_ns) {
        c->first_above_time = 0;
        return false;
    }
    if (c->first_above_time == 0) {
        /* interval_ns > 0, so this is never 0 even with a clock that starts at 0. */
        c->first_above_time = now_ns + c->interval_ns;
        return false;
    }
    return now_ns >= c->first_above_time;
}

bool codel_should_drop(codel_t *c, uint64_t sojourn_ns, uint64_t now_ns)
{
    bool ok_to_drop = above_for_interval(c, sojourn_ns, now_ns);

    if (c->dropping) {
        if (!ok_to_drop) {
            c->dropping = false;
            return false;
        }
        if (now_ns < c->drop_next)
            return false;
        /* RFC 8289 schedules from drop_next, not from now, so sparse packets catch up. */
        count_next(c);
        c->drop_next += c->step_ns;
        counter_inc(&c->drops);
        return true;
    }

    if (!ok_to_drop)
        return false;

    /* Entering the dropping state. If the last episode's schedule is recent, the queue
     * probably still needs about that drop rate: resume near it (count − 2). The signed
     * difference treats a drop_next still in the future as recent. */
    uint32_t resume = 1;
    int64_t since = (int64_t)(now_ns - c->drop_next);
    if (c->count > 2 && since < (int64_t)(CODEL_RESUME_INTERVALS * c->interval_ns))
        resume = c->count - 2;
    count_set(c, resume);
    c->dropping = true;
    c->drop_next = now_ns + c->step_ns;
    counter_inc(&c->entries);
    counter_inc(&c->drops);
    return true;
}

void codel_queue_empty(codel_t *c)
{
    c->first_above_time = 0;
    c->dropping = false;
}

uint64_t codel_drops(const codel_t *c)
{
    return atomic_load_explicit(&c->drops, memory_order_relaxed);
}

uint64_t codel_entries(const codel_t *c)
{
    return atomic_load_explicit(&c->entries, memory_order_relaxed);
}

bool codel_dropping(const codel_t *c)
{
    return c->dropping;
}

uint32_t codel_count(const codel_t *c)
{
    return c->count;
}

uint64_t codel_drop_next(const codel_t *c)
{
    return c->drop_next;
}

uint64_t codel_step_ns(const codel_t *c)
{
    return c->step_ns;
}
