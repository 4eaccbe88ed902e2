/* CUBIC admission for one worker: a rate that follows RFC 8312's cubic curve, enforced by a
 * token bucket. No clock reads here; the worker passes the time. */
#include "fennec/cubic.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define NS_PER_S 1e9

/* Single writer (the worker), any reader: relaxed load + store are plain moves. */
static inline void counter_inc(_Atomic uint64_t *v)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void cubic_params_default(cubic_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->threshold = 0.90;
    p->c = 0.4;
    p->beta = 0.8;
    p->ema_alpha = 0.3;
    p->min_rate = 1.0;
    p->max_rate = 1e7;
    p->initial_rate = 0.0;
    p->burst_ns = 10 * 1000 * 1000;
    p->burst_min = 64.0;
    p->cooldown_ns = 200 * 1000 * 1000;
    p->event_min_admitted = 64;
}

double cubic_k_seconds(double w_max, double c_param, double beta)
{
    return cbrt(w_max * (1.0 - beta) / (c_param * CUBIC_RATE_UNIT));
}

static bool params_valid(const cubic_params_t *p)
{
    /* Written so that NaN fails every test. */
    if (!(p->threshold > 0.0 && p->threshold <= 1.0))
        return false;
    if (!(p->c > 0.0 && isfinite(p->c)))
        return false;
    if (!(p->beta > 0.0 && p->beta < 1.0))
        return false;
    if (!(p->ema_alpha > 0.0 && p->ema_alpha <= 1.0))
        return false;
    if (!(p->min_rate > 0.0 && p->max_rate >= p->min_rate && isfinite(p->max_rate)))
        return false;
    if (!(p->initial_rate == 0.0 ||
          (p->initial_rate >= p->min_rate && p->initial_rate <= p->max_rate)))
        return false;
    if (!(p->burst_min >= 1.0 && isfinite(p->burst_min)))
        return false;
    return true;
}

static void refill(cubic_t *c, uint64_t now_ns)
{
    if (now_ns <= c->last_refill_ns)
        return; /* a stale time never takes tokens away */
    c->tokens += (double)(now_ns - c->last_refill_ns) * c->rate_per_ns;
    if (c->tokens > c->burst)
        c->tokens = c->burst;
    c->last_refill_ns = now_ns;
}

/* Applies c->rate to the token bucket. */
static void limit_apply(cubic_t *c, uint64_t now_ns)
{
    bool was_limited = c->limited;
    if (was_limited)
        refill(c, now_ns); /* tokens earned so far accrue at the old rate */

    c->limited = c->rate < c->p.max_rate;
    c->rate_per_ns = c->rate / NS_PER_S;
    c->burst = c->rate * ((double)c->p.burst_ns / NS_PER_S);
    if (c->burst < c->p.burst_min)
        c->burst = c->p.burst_min;

    if (c->limited && !was_limited) {
        c->tokens = c->burst;
        c->last_refill_ns = now_ns;
    } else if (c->tokens > c->burst) {
        c->tokens = c->burst;
    }
}

static void publish(cubic_t *c)
{
    atomic_store_explicit(&c->rate_pub, c->rate, memory_order_relaxed);
    atomic_store_explicit(&c->u_pub, c->u, memory_order_relaxed);
}

int cubic_init(cubic_t *c, const cubic_params_t *p, uint64_t now_ns)
{
    memset(c, 0, sizeof(*c));
    if (!params_valid(p))
        return -EINVAL;
    c->p = *p;
    c->kc = p->c * CUBIC_RATE_UNIT;
    c->last_update_ns = now_ns;
    c->last_refill_ns = now_ns;
    atomic_init(&c->admitted, 0);
    atomic_init(&c->shed, 0);
    atomic_init(&c->events, 0);

    if (p->initial_rate == 0.0 || p->initial_rate >= p->max_rate) {
        c->rate = p->max_rate;
    } else {
        /* Start as if just after an event at the initial rate with K = 0: the rate grows
         * convexly from there until congestion or max_rate. */
        c->rate = p->initial_rate;
        c->w_max = p->initial_rate;
        c->k = 0.0;
        c->epoch_ns = now_ns;
        c->epoch_active = true;
    }
    atomic_init(&c->rate_pub, c->rate);
    atomic_init(&c->u_pub, 0.0);
    limit_apply(c, now_ns);
    return 0;
}

static double clamp_rate(const cubic_t *c, double r)
{
    if (!(r >= c->p.min_rate)) /* NaN included */
        return c->p.min_rate;
    if (r > c->p.max_rate)
        return c->p.max_rate;
    return r;
}

bool cubic_update(cubic_t *c, double sample, uint64_t now_ns)
{
    if (!(sample >= 0.0)) /* negative or NaN */
        sample = 0.0;
    if (sample > 1.0)
        sample = 1.0;
    c->u = c->p.ema_alpha * sample + (1.0 - c->p.ema_alpha) * c->u;

    uint64_t admitted = atomic_load_explicit(&c->admitted, memory_order_relaxed);
    uint64_t period_admits = admitted - c->admitted_at_update;
    uint64_t dt = now_ns > c->last_update_ns ? now_ns - c->last_update_ns : 0;
    double measured = dt > 0 ? (double)period_admits * NS_PER_S / (double)dt : c->rate;
    c->admitted_at_update = admitted;
    c->last_update_ns = now_ns;

    bool cooling = c->had_event && now_ns - c->last_event_ns < c->p.cooldown_ns;
    bool event = c->u > c->p.threshold && !cooling && period_admits >= c->p.event_min_admitted;

    if (event) {
        /* While the limit is not binding (e.g. at max_rate) the load that congested the
         * loop is what was admitted, not the limit: start the decrease from there. */
        double base = c->rate;
        if (measured < base)
            base = measured;
        base = clamp_rate(c, base);
        c->w_max = base;
        c->k = cubic_k_seconds(base, c->p.c, c->p.beta);
        c->epoch_ns = now_ns;
        c->epoch_active = true;
        c->rate = clamp_rate(c, base * c->p.beta);
        c->had_event = true;
        c->last_event_ns = now_ns;
        counter_inc(&c->events);
    } else if (c->epoch_active) {
        double t = now_ns > c->epoch_ns ? (double)(now_ns - c->epoch_ns) / NS_PER_S : 0.0;
        double d = t - c->k;
        c->rate = clamp_rate(c, c->w_max + c->kc * d * d * d);
        if (c->rate >= c->p.max_rate)
            c->epoch_active = false; /* recovered: back to admitting everything */
    }

    limit_apply(c, now_ns);
    publish(c);
    return event;
}

bool cubic_admit(cubic_t *c, uint64_t now_ns)
{
    if (!c->limited) {
        counter_inc(&c->admitted);
        return true;
    }
    refill(c, now_ns);
    if (c->tokens >= 1.0) {
        c->tokens -= 1.0;
        counter_inc(&c->admitted);
        return true;
    }
    counter_inc(&c->shed);
    return false;
}

uint32_t cubic_available(cubic_t *c, uint64_t now_ns)
{
    if (!c->limited)
        return UINT32_MAX;
    refill(c, now_ns);
    return c->tokens >= 1.0 ? (uint32_t)c->tokens : 0;
}

void cubic_consume(cubic_t *c, uint32_t n)
{
    if (c->limited)
        c->tokens -= n;
    atomic_fetch_add_explicit(&c->admitted, n, memory_order_relaxed);
}

uint64_t cubic_wait_ns(cubic_t *c, uint32_t n, uint64_t now_ns)
{
    if (!c->limited)
        return 0;
    refill(c, now_ns);
    double want = n < 1 ? 1.0 : (double)n;
    if (want > c->burst)
        want = c->burst;
    if (c->tokens >= want || c->rate_per_ns <= 0)
        return 0;
    return (uint64_t)((want - c->tokens) / c->rate_per_ns) + 1;
}

uint64_t cubic_admitted(const cubic_t *c)
{
    return atomic_load_explicit(&c->admitted, memory_order_relaxed);
}

uint64_t cubic_shed(const cubic_t *c)
{
    return atomic_load_explicit(&c->shed, memory_order_relaxed);
}

uint64_t cubic_events(const cubic_t *c)
{
    return atomic_load_explicit(&c->events, memory_order_relaxed);
}

double cubic_rate(const cubic_t *c)
{
    return atomic_load_explicit(&c->rate_pub, memory_order_relaxed);
}

double cubic_utilization(const cubic_t *c)
{
    return atomic_load_explicit(&c->u_pub, memory_order_relaxed);
}

double cubic_w_max(const cubic_t *c)
{
    return c->w_max;
}

double cubic_k(const cubic_t *c)
{
    return c->k;
}

bool cubic_limited(const cubic_t *c)
{
    return c->limited;
}
