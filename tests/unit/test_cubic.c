/* Unit tests for node/cubic.c with a simulated clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>

#include "fennec/cubic.h"

#define MS     1000000ull
#define SEC    1000000000ull
#define PERIOD (100 * MS)

static void assert_near(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.12g, want %.12g (tolerance %g)", got, want, tol);
}

/* Offers QPS queries per second (1e9 / QPS must be whole) for DUR ns from *NOW, one
 * cubic_admit() each; advances *NOW and returns how many were admitted. */
static uint64_t offer(cubic_t *c, uint64_t *now, uint64_t qps, uint64_t dur)
{
    uint64_t spacing = SEC / qps;
    uint64_t n = dur / spacing;
    uint64_t admitted = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (cubic_admit(c, *now))
            admitted++;
        *now += spacing;
    }
    return admitted;
}

/* Offers QPS with full utilization, one update per period, until a congestion event.
 * Returns the number of updates it took. */
static int congest(cubic_t *c, uint64_t *now, uint64_t qps)
{
    for (int i = 1; i <= 100; i++) {
        offer(c, now, qps, PERIOD);
        if (cubic_update(c, 1.0, *now))
            return i;
    }
    fail_msg("no congestion event");
    return 0;
}

static void test_params(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    assert_near(p.threshold, 0.90, 0);
    assert_near(p.c, 0.4, 0);
    assert_near(p.beta, 0.8, 0);
    assert_near(p.ema_alpha, 0.3, 0);
    assert_near(p.min_rate, 1.0, 0);
    assert_int_equal(cubic_init(&c, &p, 0), 0);
    assert_false(cubic_limited(&c));
    assert_near(cubic_rate(&c), p.max_rate, 0);

    cubic_params_t bad = p;
    bad.beta = 1.0;
    assert_int_equal(cubic_init(&c, &bad, 0), -EINVAL);
    bad = p;
    bad.threshold = NAN;
    assert_int_equal(cubic_init(&c, &bad, 0), -EINVAL);
    bad = p;
    bad.min_rate = 10.0;
    bad.max_rate = 5.0;
    assert_int_equal(cubic_init(&c, &bad, 0), -EINVAL);
    bad = p;
    bad.c = 0.0;
    assert_int_equal(cubic_init(&c, &bad, 0), -EINVAL);
    bad = p;
    bad.ema_alpha = 0.0;
    assert_int_equal(cubic_init(&c, &bad, 0), -EINVAL);
    bad = p;
    bad.initial_rate = p.max_rate * 2;
    assert_int_equal(cubic_init(&c, &bad, 0), -EINVAL);
    bad = p;
    bad.burst_min = 0.5;
    assert_int_equal(cubic_init(&c, &bad, 0), -EINVAL);
}

static void test_k_value(void **state)
{
    (void)state;
    /* K = cbrt(W_max * (1 − beta) / (C * 1000)) with rates in qps. */
    assert_near(cubic_k_seconds(10000, 0.4, 0.8), cbrt(5.0), 1e-9);
    assert_near(cubic_k_seconds(100000, 0.4, 0.8), cbrt(50.0), 1e-9);
    assert_near(cubic_k_seconds(1000, 0.4, 0.8), cbrt(0.5), 1e-9);
    assert_near(cubic_k_seconds(10000, 0.4, 0.5), cbrt(12.5), 1e-9);
    assert_near(cubic_k_seconds(10000, 0.4, 0.8), 1.7099759466767, 1e-9);
}

static void test_ema_exact(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    assert_int_equal(cubic_init(&c, &p, 0), 0);
    assert_near(cubic_utilization(&c), 0.0, 0);
    cubic_update(&c, 1.0, 1 * PERIOD);
    assert_near(cubic_utilization(&c), 0.3, 1e-15);
    cubic_update(&c, 0.5, 2 * PERIOD);
    assert_near(cubic_utilization(&c), 0.36, 1e-15);
    cubic_update(&c, 0.0, 3 * PERIOD);
    assert_near(cubic_utilization(&c), 0.252, 1e-15);
    cubic_update(&c, 0.9, 4 * PERIOD);
    assert_near(cubic_utilization(&c), 0.4464, 1e-15);
    /* Out-of-range samples are clamped; NaN counts as 0. */
    cubic_update(&c, 7.0, 5 * PERIOD);
    assert_near(cubic_utilization(&c), 0.3 + 0.7 * 0.4464, 1e-15);
    double u = cubic_utilization(&c);
    cubic_update(&c, NAN, 6 * PERIOD);
    assert_near(cubic_utilization(&c), 0.7 * u, 1e-15);
    cubic_update(&c, -3.0, 7 * PERIOD);
    assert_near(cubic_utilization(&c), 0.49 * u, 1e-15);
    assert_int_equal(cubic_events(&c), 0);
}

static void test_no_shed_when_never_congested(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    uint64_t now = 0;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    /* 10 s at 100k qps, busy but under the threshold, with single full samples now and
     * then (the EMA peaks at 0.895). */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(offer(&c, &now, 100000, PERIOD), 10000);
        assert_false(cubic_update(&c, i % 10 == 9 ? 1.0 : 0.85, now));
        assert_true(cubic_utilization(&c) <= 0.9);
    }
    assert_int_equal(cubic_admitted(&c), 1000000);
    assert_int_equal(cubic_shed(&c), 0);
    assert_int_equal(cubic_events(&c), 0);
    assert_false(cubic_limited(&c));
    assert_near(cubic_rate(&c), p.max_rate, 0);
}

static void test_no_event_without_admitted_queries(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    assert_int_equal(cubic_init(&c, &p, 0), 0);
    /* The loop is busy with something other than UDP queries: shedding cannot help. */
    for (uint64_t i = 1; i <= 30; i++)
        assert_false(cubic_update(&c, 1.0, i * PERIOD));
    assert_true(cubic_utilization(&c) > 0.9);
    assert_int_equal(cubic_events(&c), 0);
    assert_false(cubic_limited(&c));
}

static void test_congestion_event(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    uint64_t now = 0;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    /* 1 − 0.7^6 = 0.882 <= 0.9 < 1 − 0.7^7 = 0.918: the seventh full sample triggers. */
    assert_int_equal(congest(&c, &now, 10000), 7);
    assert_near(cubic_utilization(&c), 1.0 - pow(0.7, 7), 1e-12);
    assert_int_equal(cubic_events(&c), 1);
    /* The limit (max_rate) was not binding: W_max is the admitted 10k qps. */
    assert_near(cubic_w_max(&c), 10000.0, 1e-9);
    assert_near(cubic_rate(&c), 8000.0, 1e-9);
    assert_near(cubic_k(&c), cbrt(5.0), 1e-9);
    assert_true(cubic_limited(&c));
    assert_int_equal(cubic_shed(&c), 0);
}

static void test_cooldown(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    uint64_t now = 0;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    congest(&c, &now, 10000);
    double rate1 = cubic_rate(&c);
    /* Still congested 100 ms later: inside the 200 ms cooldown, no second decrease. */
    offer(&c, &now, 10000, PERIOD);
    assert_false(cubic_update(&c, 1.0, now));
    assert_true(cubic_utilization(&c) > 0.9);
    assert_int_equal(cubic_events(&c), 1);
    assert_true(cubic_rate(&c) > rate1); /* on the curve */
    double limit = cubic_rate(&c);
    /* 200 ms after the event: a second event from the lower of limit and admitted rate. */
    offer(&c, &now, 10000, PERIOD);
    assert_true(cubic_update(&c, 1.0, now));
    assert_int_equal(cubic_events(&c), 2);
    assert_true(cubic_w_max(&c) <= limit);
    assert_true(cubic_w_max(&c) > 7000.0);
    assert_near(cubic_rate(&c), cubic_w_max(&c) * 0.8, 1e-9);
}

static double expected_curve(double w_max, double k, double t)
{
    double d = t - k;
    return w_max + 0.4 * 1000.0 * d * d * d;
}

static void test_curve_shape(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    uint64_t now = 0;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    congest(&c, &now, 10000);
    uint64_t epoch = now;
    double w_max = cubic_w_max(&c);
    double k = cubic_k(&c);

    /* Rates every 100 ms for 4 s after the event, the load gone. */
    double r[41];
    r[0] = cubic_rate(&c);
    assert_near(r[0], 0.8 * w_max, 1e-9);
    for (int i = 1; i <= 40; i++) {
        assert_false(cubic_update(&c, 0.0, epoch + (uint64_t)i * PERIOD));
        r[i] = cubic_rate(&c);
        assert_near(r[i], expected_curve(w_max, k, i * 0.1), 1e-6);
        assert_true(r[i] > r[i - 1]);
    }
    /* Concave while below K, convex after. */
    int concave = 0, convex = 0;
    for (int i = 1; i < 40; i++) {
        double second = r[i - 1] - 2 * r[i] + r[i + 1];
        if ((i + 1) * 0.1 < k) {
            assert_true(second < 0);
            concave++;
        } else if ((i - 1) * 0.1 > k) {
            assert_true(second > 0);
            convex++;
        }
    }
    assert_true(concave >= 10 && convex >= 10);
    /* Exactly W_max at t = K. */
    cubic_update(&c, 0.0, epoch + (uint64_t)llround(k * 1e9));
    assert_near(cubic_rate(&c), w_max, 1e-3);
}

static void test_token_bucket(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    uint64_t now = 0;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    congest(&c, &now, 10000);
    assert_near(cubic_rate(&c), 8000.0, 1e-9);
    /* 50k qps offered for 2 s at a fixed 8000 qps limit: 16000 pass plus the bucket depth
     * (max(8000 * 10 ms, 64) = 80); the rest is shed. */
    uint64_t shed0 = cubic_shed(&c);
    uint64_t admitted = offer(&c, &now, 50000, 2 * SEC);
    assert_true(admitted >= 16000 + 80 - 2 && admitted <= 16000 + 80 + 2);
    assert_int_equal(cubic_shed(&c) - shed0, 100000 - admitted);
    /* Under the limit nothing is shed. */
    shed0 = cubic_shed(&c);
    assert_int_equal(offer(&c, &now, 4000, 2 * SEC), 8000);
    assert_int_equal(cubic_shed(&c), shed0);
    /* A rate of 8000 over 10 s with a burst in the middle. */
    admitted = offer(&c, &now, 1000, 5 * SEC);
    admitted += offer(&c, &now, 100000, 1 * SEC);
    assert_true(admitted >= 5000 + 8000 + 80 - 2 && admitted <= 5000 + 8000 + 80 + 2);
}

/* Tokens earned before a rate change accrue at the old rate; after it, at the new one. */
static void test_tokens_accrue_at_old_rate(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    p.event_min_admitted = 1;
    p.cooldown_ns = 0;
    uint64_t now = 0;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    congest(&c, &now, 10000);
    assert_near(cubic_rate(&c), 8000.0, 1e-9);
    cubic_consume(&c, cubic_available(&c, now)); /* an empty bucket */
    assert_int_equal(cubic_available(&c, now), 0);
    now += 5 * MS; /* 40 tokens at 8000 qps (32 at the next rate) */
    assert_true(cubic_update(&c, 1.0, now));
    assert_near(cubic_rate(&c), 6400.0, 1e-9);
    assert_int_equal(cubic_available(&c, now), 40);
    /* from the change on, 6400 qps: 2 ms more bring 12.8 (at 8000 it would be 16) */
    now += 2 * MS;
    assert_int_equal(cubic_available(&c, now), 52);
}

static void test_never_below_min_rate(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    p.min_rate = 100.0;
    p.burst_min = 1.0;
    p.event_min_admitted = 1;
    p.cooldown_ns = 0;
    uint64_t now = 0;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    for (int i = 0; i < 100; i++) {
        offer(&c, &now, 100000, PERIOD);
        cubic_update(&c, 1.0, now);
        assert_true(cubic_rate(&c) >= 100.0);
    }
    assert_true(cubic_events(&c) > 20);
    assert_near(cubic_rate(&c), 100.0, 0);
    assert_true(cubic_shed(&c) > 0);
    /* The curve from a floor-level W_max stays at or above the floor too. */
    for (int i = 1; i <= 10; i++) {
        cubic_update(&c, 0.0, now + (uint64_t)i * 10 * MS);
        assert_true(cubic_rate(&c) >= 100.0);
    }
}

static void test_recovers_to_unlimited(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    p.max_rate = 20000.0;
    uint64_t now = 0;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    congest(&c, &now, 10000);
    uint64_t epoch = now;
    assert_true(cubic_limited(&c));
    /* 10000 + 400 (t − K)^3 = 20000 at t = K + cbrt(25), about 4.63 s. */
    double t_max = cubic_k(&c) + cbrt(25.0);
    int steps = 0;
    while (cubic_limited(&c) && steps < 100) {
        now += PERIOD;
        cubic_update(&c, 0.0, now);
        steps++;
    }
    assert_false(cubic_limited(&c));
    double t = (double)(now - epoch) / 1e9;
    assert_true(t >= t_max && t < t_max + 0.1 + 1e-9);
    assert_near(cubic_rate(&c), 20000.0, 0);
    /* Unlimited again: everything passes, and the rate stays put. */
    uint64_t shed0 = cubic_shed(&c);
    assert_int_equal(offer(&c, &now, 100000, SEC), 100000);
    assert_int_equal(cubic_shed(&c), shed0);
    cubic_update(&c, 0.0, now);
    assert_near(cubic_rate(&c), 20000.0, 0);
}

static void test_initial_rate(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    p.initial_rate = 1000.0;
    p.max_rate = 1e6;
    uint64_t now = 5 * SEC;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    assert_true(cubic_limited(&c));
    assert_near(cubic_rate(&c), 1000.0, 0);
    /* Starts convex from the initial rate: 1000 + 400 t^3. */
    cubic_update(&c, 0.0, now + SEC);
    assert_near(cubic_rate(&c), 1400.0, 1e-9);
    cubic_update(&c, 0.0, now + 2 * SEC);
    assert_near(cubic_rate(&c), 1000.0 + 400.0 * 8, 1e-9);
}

/* Limited at 8000 qps with a full bucket of max(8000 * 10 ms, 64) = 80 tokens at *NOW. */
static void limit_at_8000(cubic_t *c, uint64_t *now)
{
    cubic_params_t p;
    cubic_params_default(&p);
    assert_int_equal(cubic_init(c, &p, *now), 0);
    congest(c, now, 10000);
    assert_true(cubic_limited(c));
    assert_near(cubic_rate(c), 8000.0, 1e-9);
}

static void test_available_unlimited(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    assert_int_equal(cubic_init(&c, &p, 0), 0);
    /* Not limited: the reader may take everything, whatever it took before. */
    assert_int_equal(cubic_available(&c, 0), UINT32_MAX);
    cubic_consume(&c, 1000000);
    assert_int_equal(cubic_available(&c, 1), UINT32_MAX);
    cubic_consume(&c, 5);
    assert_int_equal(cubic_available(&c, 2), UINT32_MAX);
    assert_int_equal(cubic_admitted(&c), 1000005);
    assert_int_equal(cubic_shed(&c), 0);
    assert_int_equal(cubic_wait_ns(&c, 64, 3), 0);
    assert_int_equal(cubic_wait_ns(&c, UINT32_MAX, 3), 0);
}

static void test_available_limited(void **state)
{
    (void)state;
    cubic_t c;
    uint64_t now = 0;
    limit_at_8000(&c, &now);
    /* The bucket starts full when the limit starts. */
    assert_int_equal(cubic_available(&c, now), 80);
    /* floor(tokens): 8000 qps is 0.8 tokens per 100 us. */
    cubic_consume(&c, 30);
    assert_int_equal(cubic_available(&c, now), 50);
    assert_int_equal(cubic_available(&c, now + 100000), 50);  /* 50.8 */
    assert_int_equal(cubic_available(&c, now + 200000), 51);  /* 51.6 */
    assert_int_equal(cubic_available(&c, now + 1050000), 58); /* 50 + 8.4 */
    /* A stale time takes nothing away and adds nothing. */
    assert_int_equal(cubic_available(&c, now), 58);
    /* Refilled no further than the bucket depth, however long the pause. */
    now += 10 * SEC;
    assert_int_equal(cubic_available(&c, now), 80);
    /* Taking everything leaves nothing until a whole token has accrued (125 us). */
    cubic_consume(&c, 80);
    assert_int_equal(cubic_available(&c, now), 0);
    assert_int_equal(cubic_available(&c, now + 124000), 0);
    assert_int_equal(cubic_available(&c, now + 126000), 1);
}

static void test_consume_counts(void **state)
{
    (void)state;
    cubic_t c;
    uint64_t now = 0;
    limit_at_8000(&c, &now);
    uint64_t admitted0 = cubic_admitted(&c);
    uint64_t shed0 = cubic_shed(&c);
    cubic_consume(&c, 7);
    assert_int_equal(cubic_admitted(&c), admitted0 + 7);
    assert_int_equal(cubic_available(&c, now), 73);
    cubic_consume(&c, 73);
    assert_int_equal(cubic_admitted(&c), admitted0 + 80);
    assert_int_equal(cubic_available(&c, now), 0);
    /* Taking more than there is (a reader that raced the budget) is a debt, paid back
     * before anything is available again: 20 over at 8000 qps is 2.5 ms, + 1 token. */
    cubic_consume(&c, 20);
    assert_int_equal(cubic_admitted(&c), admitted0 + 100);
    assert_int_equal(cubic_available(&c, now + 2500000), 0);
    assert_int_equal(cubic_available(&c, now + 2500000 + 126000), 1);
    /* Consuming never sheds: the excess stays in the kernel queue. */
    assert_int_equal(cubic_shed(&c), shed0);
}

/* What cubic_consume() counts is the admitted rate a congestion event starts from. */
static void test_consume_feeds_update(void **state)
{
    (void)state;
    cubic_t c;
    uint64_t now = 0;
    limit_at_8000(&c, &now);
    /* 600 read in 300 ms (2000 qps, far below the limit) while the thread stays loaded:
     * past the cooldown, an event from W_max = 2000, not from the limit. */
    for (int i = 0; i < 30; i++) {
        cubic_consume(&c, 20);
        now += 10 * MS;
    }
    assert_true(cubic_update(&c, 1.0, now));
    assert_near(cubic_w_max(&c), 2000.0, 1e-6);
    assert_near(cubic_rate(&c), 1600.0, 1e-6);
}

static void test_wait_ns(void **state)
{
    (void)state;
    cubic_t c;
    uint64_t now = 0;
    limit_at_8000(&c, &now);
    /* Enough tokens: no wait. */
    assert_int_equal(cubic_wait_ns(&c, 32, now), 0);
    assert_int_equal(cubic_wait_ns(&c, 80, now), 0);
    /* Empty bucket: (n − tokens) / rate, 32 tokens at 8000 qps = 4 ms. */
    cubic_consume(&c, 80);
    uint64_t w = cubic_wait_ns(&c, 32, now);
    assert_true(w >= 4 * MS && w <= 4 * MS + 1000);
    /* After that wait the n tokens are there. */
    assert_true(cubic_available(&c, now + w) >= 32);
    assert_int_equal(cubic_wait_ns(&c, 32, now + w), 0);
    cubic_consume(&c, 22);
    /* 10 tokens left (plus a fraction of one): 22 more take 2.75 ms. */
    w = cubic_wait_ns(&c, 32, now + 4 * MS);
    assert_true(w >= 2750000 - 1000 && w <= 2750000 + 1000);
    /* Fractional: 0.8 of a token accrued; one token needs 0.2 / 8000 s = 25 us. N = 0 asks
     * for one. */
    now += 10 * SEC;
    cubic_available(&c, now);
    cubic_consume(&c, 80);
    w = cubic_wait_ns(&c, 1, now + 100000);
    assert_true(w >= 25000 - 100 && w <= 25000 + 100);
    assert_int_equal(cubic_wait_ns(&c, 0, now + 100000), w);
    /* N beyond the bucket depth is capped at the depth (80): a full bucket is (80 − 0.8) /
     * 8000 s = 9.9 ms away, not forever. */
    now += 100000;
    w = cubic_wait_ns(&c, 1000, now);
    assert_true(w >= 9900000 - 1000 && w <= 9900000 + 1000);
    assert_int_equal(cubic_wait_ns(&c, UINT32_MAX, now), w);
    assert_int_equal(cubic_available(&c, now + w), 80);
    assert_int_equal(cubic_wait_ns(&c, 1000, now + w), 0);
}

static void test_wait_ns_burst_floor(void **state)
{
    (void)state;
    cubic_params_t p;
    cubic_t c;
    cubic_params_default(&p);
    uint64_t now = 0;
    assert_int_equal(cubic_init(&c, &p, now), 0);
    /* W_max 1250 qps: the rate is 1000 qps and 10 ms of it (10) is below the bucket floor of
     * 64 (a receive batch), so the depth is 64. */
    congest(&c, &now, 1250);
    assert_near(cubic_rate(&c), 1000.0, 1e-9);
    assert_int_equal(cubic_available(&c, now), 64);
    cubic_consume(&c, 64);
    /* Half a batch at 1000 qps: 32 ms. Beyond the depth: 64 ms. */
    uint64_t w = cubic_wait_ns(&c, 32, now);
    assert_true(w >= 32 * MS && w <= 32 * MS + 1000);
    w = cubic_wait_ns(&c, 1024, now);
    assert_true(w >= 64 * MS && w <= 64 * MS + 1000);
    assert_int_equal(cubic_available(&c, now + w), 64);
}

/* The worker's reading loop with an endless queue at 8000 qps: read what is available (at
 * most a batch of 64), and when nothing is, pause until half a batch is. Admits the rate
 * plus the bucket, in batches of at least half a batch after the first ones. */
static void test_paced_reader(void **state)
{
    (void)state;
    cubic_t c;
    uint64_t now = 0;
    limit_at_8000(&c, &now);
    uint64_t start = now, admitted0 = cubic_admitted(&c);
    unsigned reads = 0, pauses = 0, small_reads = 0;
    while (now - start < 2 * SEC) {
        uint32_t avail = cubic_available(&c, now);
        if (avail == 0) {
            uint64_t w = cubic_wait_ns(&c, 32, now);
            assert_true(w > 0 && w <= 4 * MS + 1000);
            now += w;
            pauses++;
            continue;
        }
        uint32_t n = avail < 64 ? avail : 64;
        if (n < 32)
            small_reads++;
        cubic_consume(&c, n);
        reads++;
        now += 20000; /* 20 us to answer a batch */
    }
    uint64_t admitted = cubic_admitted(&c) - admitted0;
    /* 2 s at 8000 qps = 16000, plus the 80 in the full bucket at the start. */
    assert_true(admitted >= 16000 + 80 - 64 && admitted <= 16000 + 80 + 64);
    /* Every pause is followed by a read of at least half a batch. */
    assert_true(small_reads <= 1);
    assert_true(pauses <= 16000 / 32 + 2);
    assert_true(reads <= pauses + 3);
    assert_int_equal(cubic_shed(&c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_k_value),
        cmocka_unit_test(test_ema_exact),
        cmocka_unit_test(test_no_shed_when_never_congested),
        cmocka_unit_test(test_no_event_without_admitted_queries),
        cmocka_unit_test(test_congestion_event),
        cmocka_unit_test(test_cooldown),
        cmocka_unit_test(test_curve_shape),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_tokens_accrue_at_old_rate),
        cmocka_unit_test(test_never_below_min_rate),
        cmocka_unit_test(test_recovers_to_unlimited),
        cmocka_unit_test(test_initial_rate),
        cmocka_unit_test(test_available_unlimited),
        cmocka_unit_test(test_available_limited),
        cmocka_unit_test(test_consume_counts),
        cmocka_unit_test(test_consume_feeds_update),
        cmocka_unit_test(test_wait_ns),
        cmocka_unit_test(test_wait_ns_burst_floor),
        cmocka_unit_test(test_paced_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
