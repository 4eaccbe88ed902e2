/*
 * fennec — CUBIC admission control for one worker (rate-based, after RFC 8312's window law).
 *
 * The module is pure and deterministic: it never reads a clock. The worker passes the time
 * (`now_ns`, CLOCK_MONOTONIC-compatible nanoseconds):
 *   - cubic_admit() once per received query, before parsing: a token bucket at the current
 *     rate; false means shed (do not parse, do not answer);
 *   - cubic_update() periodically (every ~100 ms) with the loop's busy share, which smooths
 *     it (EMA), detects congestion and moves the rate along the cubic curve.
 *
 * Rates are queries per second. C is expressed per CUBIC_RATE_UNIT qps (see
 * docs/overload.md): rate(t) = C * CUBIC_RATE_UNIT * (t − K)^3 + W_max.
 * While the worker has never been congested (or the rate has climbed back to max_rate)
 * cubic_admit() admits every query.
 *
 * One cubic_t per worker; it is not shared between threads. The counter and gauge
 * accessors (cubic_admitted() ... cubic_utilization()) may be called from any thread.
 */
#ifndef FENNEC_CUBIC_H
#define FENNEC_CUBIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* C is in units of CUBIC_RATE_UNIT queries per second per second cubed. */
#define CUBIC_RATE_UNIT 1000.0

typedef struct cubic_params {
    double threshold;     /* smoothed utilization above which a congestion event fires: 0.90 */
    double c;             /* cubic scaling constant, per CUBIC_RATE_UNIT qps: 0.4 */
    double beta;          /* multiplicative decrease: 0.8 */
    double ema_alpha;     /* weight of a new utilization sample: 0.3 */
    double min_rate;      /* qps, floor of the rate: 1 */
    double max_rate;      /* qps, ceiling; at this rate nothing is shed: 1e7 */
    double initial_rate;  /* qps at start; 0 means max_rate (no limit until congested) */
    uint64_t burst_ns;    /* token bucket depth as time at the current rate: 10 ms */
    double burst_min;     /* token bucket depth floor in queries (a receive batch): 64 */
    uint64_t cooldown_ns; /* no new congestion event sooner than this after one: 200 ms */
    uint64_t event_min_admitted; /* an event needs this many queries admitted since the last
                                    update, or shedding could not relieve the loop: 64 */
} cubic_params_t;

/* Caller-owned state. Fields are private: use the functions below. */
typedef struct cubic {
    cubic_params_t p;
    double kc; /* p.c * CUBIC_RATE_UNIT */

    double u;     /* smoothed utilization */
    double rate;  /* current admitted rate, qps */
    double w_max; /* rate at the last congestion event */
    double k;     /* seconds from the epoch until the curve is back at w_max */
    uint64_t epoch_ns;
    bool epoch_active; /* following the curve (false: rate is max_rate) */
    bool had_event;
    uint64_t last_event_ns;
    uint64_t last_update_ns;
    uint64_t admitted_at_update;

    bool limited;       /* rate < max_rate: the token bucket decides */
    double tokens;      /* queries that may pass now */
    double burst;       /* bucket depth in queries */
    double rate_per_ns; /* refill per nanosecond */
    uint64_t last_refill_ns;

    _Atomic uint64_t admitted;
    _Atomic uint64_t shed;
    _Atomic uint64_t events;
    _Atomic double rate_pub;
    _Atomic double u_pub;
} cubic_t;

/* Fills P with the defaults above (the config's defaults for the first five). */
void cubic_params_default(cubic_params_t *p);

/*
 * Initializes C from P at time NOW_NS. Returns 0, or -EINVAL when a parameter is out of
 * range: threshold in (0, 1], c > 0, beta in (0, 1), ema_alpha in (0, 1], 0 < min_rate <=
 * max_rate, initial_rate 0 or in [min_rate, max_rate], burst_min >= 1, all finite.
 */
int cubic_init(cubic_t *c, const cubic_params_t *p, uint64_t now_ns);

/*
 * Feeds one utilization sample (busy share of the loop since the previous call, clamped to
 * [0, 1]; NaN counts as 0) at NOW_NS. Updates the EMA u = alpha*sample + (1-alpha)*u (u
 * starts at 0). When u > threshold, outside the cooldown and with enough admitted queries
 * it is a congestion event: W_max = the lower of the rate limit and the rate admitted since
 * the previous call, rate = W_max*beta, K = cbrt(W_max*(1-beta)/(C*CUBIC_RATE_UNIT)), epoch
 * = NOW_NS. Otherwise the rate follows the curve from the last epoch, clamped to
 * [min_rate, max_rate]. Returns true when this call was a congestion event.
 */
bool cubic_update(cubic_t *c, double utilization_sample, uint64_t now_ns);

/* Per query: true to admit, false to shed. Counts either way. */
bool cubic_admit(cubic_t *c, uint64_t now_ns);

/*
 * Batch form for a reader that leaves excess queries in the kernel queue instead of reading
 * and shedding them: cubic_available() is how many queries may be taken now (UINT32_MAX
 * while the rate is not limited), cubic_consume() takes N of them (counted as admitted).
 * cubic_wait_ns() is how long until N may be taken (0: now; N is capped at the bucket depth).
 * Owning thread only.
 */
uint32_t cubic_available(cubic_t *c, uint64_t now_ns);
void cubic_consume(cubic_t *c, uint32_t n);
uint64_t cubic_wait_ns(cubic_t *c, uint32_t n, uint64_t now_ns);

/* K in seconds for W_MAX (qps), constant C_PARAM (per CUBIC_RATE_UNIT qps) and BETA. */
double cubic_k_seconds(double w_max, double c_param, double beta);

/* Queries admitted / shed and congestion events since cubic_init(). Any thread. */
uint64_t cubic_admitted(const cubic_t *c);
uint64_t cubic_shed(const cubic_t *c);
uint64_t cubic_events(const cubic_t *c);

/* The current rate (qps) and smoothed utilization as of the last update. Any thread. */
double cubic_rate(const cubic_t *c);
double cubic_utilization(const cubic_t *c);

/* Owning thread only: W_max and K (seconds) of the last congestion event (0 before one),
 * and whether the token bucket is active (rate below max_rate). */
double cubic_w_max(const cubic_t *c);
double cubic_k(const cubic_t *c);
bool cubic_limited(const cubic_t *c);

#endif
