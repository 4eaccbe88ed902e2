/* Unit tests for node/codel.c with a simulated clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>

#include "fennec/codel.h"

#define MS       1000000ull
#define US       1000ull
#define TARGET   (5 * MS)
#define INTERVAL (100 * MS)
#define ABOVE    (20 * MS) /* a sojourn above target */
#define BELOW    (1 * MS)  /* a sojourn below target */

/* Feeds packets with SOJOURN every STEP from *NOW until a drop or until LIMIT; returns the
 * time of the drop (and leaves *NOW just after it) or 0 when none happened. */
static uint64_t run_until_drop(codel_t *c, uint64_t *now, uint64_t sojourn, uint64_t step,
                               uint64_t limit)
{
    while (*now < limit) {
        uint64_t t = *now;
        *now += step;
        if (codel_should_drop(c, sojourn, t))
            return t;
    }
    return 0;
}

static void test_init_rejects(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, 0, INTERVAL), -EINVAL);
    assert_int_equal(codel_init(&c, TARGET, 0), -EINVAL);
    assert_int_equal(codel_init(&c, TARGET, CODEL_INTERVAL_MAX_NS + 1), -EINVAL);
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    assert_false(codel_dropping(&c));
    assert_int_equal(codel_drops(&c), 0);
    assert_int_equal(codel_entries(&c), 0);
}

static void test_never_drops_below_target(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    /* Two seconds of packets every 10 us with sojourns anywhere below target. */
    uint64_t now = 0;
    for (uint64_t i = 0; i < 200000; i++, now += 10 * US)
        assert_false(codel_should_drop(&c, (i * 7919) % TARGET, now));
    /* Above target, but never for a whole interval: 90 ms above, one packet below. */
    for (int round = 0; round < 20; round++) {
        uint64_t end = now + 90 * MS;
        for (; now < end; now += 100 * US)
            assert_false(codel_should_drop(&c, ABOVE, now));
        assert_false(codel_should_drop(&c, TARGET - 1, now));
        now += 100 * US;
    }
    assert_int_equal(codel_drops(&c), 0);
    assert_int_equal(codel_entries(&c), 0);
    assert_false(codel_dropping(&c));
}

static void test_enters_after_interval(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    uint64_t t0 = 1000 * MS;
    uint64_t now = t0;
    /* Exactly target counts as above (RFC 8289: only sojourn < target resets). */
    for (; now < t0 + INTERVAL; now += 1 * MS) {
        assert_false(codel_should_drop(&c, TARGET, now));
        assert_false(codel_dropping(&c));
    }
    assert_true(now == t0 + INTERVAL);
    assert_true(codel_should_drop(&c, TARGET, now));
    assert_true(codel_dropping(&c));
    assert_int_equal(codel_count(&c), 1);
    assert_int_equal(codel_entries(&c), 1);
    assert_int_equal(codel_drops(&c), 1);
    assert_true(codel_drop_next(&c) == now + INTERVAL);
    /* No second drop before drop_next. */
    for (now += 1 * MS; now < t0 + 2 * INTERVAL; now += 1 * MS)
        assert_false(codel_should_drop(&c, ABOVE, now));
    assert_true(codel_should_drop(&c, ABOVE, now));
    assert_int_equal(codel_count(&c), 2);
    assert_int_equal(codel_drops(&c), 2);
}

static void test_drop_spacing_shrinks(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    uint64_t now = 0;
    uint64_t drops[16];
    uint64_t next[16];
    for (int i = 0; i < 16; i++) {
        drops[i] = run_until_drop(&c, &now, ABOVE, 1 * US, 10000 * MS);
        assert_true(drops[i] != 0);
        next[i] = codel_drop_next(&c);
        assert_int_equal(codel_count(&c), (uint32_t)(i + 1));
    }
    assert_true(drops[0] == INTERVAL);
    for (int k = 1; k < 16; k++) {
        /* Drop k+1 comes interval/sqrt(k) after drop k: packets are 1 us apart, so the
         * observed gap is within 1 us of the schedule. */
        double want = (double)INTERVAL / sqrt((double)k);
        double gap = (double)(drops[k] - drops[k - 1]);
        assert_true(fabs(gap - want) <= 1000.0 + 1.0);
        /* The schedule itself is exact to the nanosecond. */
        double sched = (double)(next[k] - next[k - 1]);
        assert_true(fabs(sched - (double)INTERVAL / sqrt((double)(k + 1))) <= 1.0);
        if (k > 1)
            assert_true(drops[k] - drops[k - 1] < drops[k - 1] - drops[k - 2]);
    }
    assert_true(codel_dropping(&c));
    assert_int_equal(codel_entries(&c), 1);
    assert_int_equal(codel_drops(&c), 16);
}

static void test_step_beyond_table(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    uint64_t now = 0;
    /* 400 drops take about 2 * interval * sqrt(400) = 4 s. */
    for (uint32_t n = 1; n <= 400; n++) {
        assert_true(run_until_drop(&c, &now, ABOVE, 10 * US, 20000 * MS) != 0);
        assert_int_equal(codel_count(&c), n);
        double want = (double)INTERVAL / sqrt((double)n);
        double got = (double)codel_step_ns(&c);
        assert_true(fabs(got - want) / want < 1e-4);
    }
}

static void test_leaves_when_below_target(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    uint64_t now = 0;
    assert_true(run_until_drop(&c, &now, ABOVE, 1 * MS, 1000 * MS) == INTERVAL);
    assert_true(codel_dropping(&c));
    /* One packet below target leaves at once, even past drop_next. */
    now = codel_drop_next(&c) + 1 * MS;
    assert_false(codel_should_drop(&c, TARGET - 1, now));
    assert_false(codel_dropping(&c));
    /* Above target again: a full interval passes before the next drop. */
    uint64_t back = now + 1 * MS;
    now = back;
    uint64_t t = run_until_drop(&c, &now, ABOVE, 1 * MS, back + 10 * INTERVAL);
    assert_true(t == back + INTERVAL);
    assert_int_equal(codel_entries(&c), 2);
}

static void test_queue_empty_leaves(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    uint64_t now = 0;
    assert_true(run_until_drop(&c, &now, ABOVE, 1 * MS, 1000 * MS) == INTERVAL);
    codel_queue_empty(&c);
    assert_false(codel_dropping(&c));
    /* The above-target timer restarts too. */
    uint64_t back = now + 500 * MS;
    now = back;
    assert_true(run_until_drop(&c, &now, ABOVE, 1 * MS, back + 10 * INTERVAL) == back + INTERVAL);
    /* An empty queue before the interval has passed also restarts the timer. */
    codel_queue_empty(&c);
    uint64_t t1 = now + 1 * MS;
    assert_false(codel_should_drop(&c, ABOVE, t1));
    codel_queue_empty(&c);
    assert_false(codel_should_drop(&c, ABOVE, t1 + INTERVAL));
    assert_false(codel_should_drop(&c, ABOVE, t1 + INTERVAL + INTERVAL / 2));
}

/* Enters dropping, runs until COUNT drops, leaves with a below-target packet. Returns the
 * time it left. */
static uint64_t episode(codel_t *c, uint64_t *now, uint32_t count)
{
    while (codel_count(c) < count || !codel_dropping(c))
        assert_true(run_until_drop(c, now, ABOVE, 100 * US, *now + 100 * INTERVAL) != 0);
    assert_int_equal(codel_count(c), count);
    assert_false(codel_should_drop(c, BELOW, *now));
    assert_false(codel_dropping(c));
    return *now;
}

static void test_hysteresis_resumes_soon(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    uint64_t now = 0;
    episode(&c, &now, 10);
    now += 2 * INTERVAL; /* well within 16 intervals of drop_next */
    uint64_t start = now;
    uint64_t t = run_until_drop(&c, &now, ABOVE, 100 * US, start + 10 * INTERVAL);
    assert_true(t == start + INTERVAL);
    assert_int_equal(codel_count(&c), 8);
    assert_int_equal(codel_entries(&c), 2);
    assert_true(codel_drop_next(&c) == t + (uint64_t)((double)INTERVAL / sqrt(8.0)));
    /* The next drop counts on from 8. */
    assert_true(run_until_drop(&c, &now, ABOVE, 100 * US, now + 10 * INTERVAL) != 0);
    assert_int_equal(codel_count(&c), 9);
}

static void test_hysteresis_small_count(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    uint64_t now = 0;
    episode(&c, &now, 2);
    now += INTERVAL;
    assert_true(run_until_drop(&c, &now, ABOVE, 100 * US, now + 10 * INTERVAL) != 0);
    assert_int_equal(codel_count(&c), 1); /* count − 2 would be 0: start at 1 */
    episode(&c, &now, 3);
    now += INTERVAL;
    assert_true(run_until_drop(&c, &now, ABOVE, 100 * US, now + 10 * INTERVAL) != 0);
    assert_int_equal(codel_count(&c), 1);
}

static void test_hysteresis_long_gap_restarts(void **state)
{
    (void)state;
    codel_t c;
    assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
    uint64_t now = 0;
    episode(&c, &now, 10);
    uint64_t last_next = codel_drop_next(&c);
    /* Calm for a long time, then congested again: re-entry after more than 16 intervals
     * since the last scheduled drop starts over at 1. */
    now = last_next + 16 * INTERVAL;
    uint64_t t = run_until_drop(&c, &now, ABOVE, 100 * US, now + 10 * INTERVAL);
    assert_true(t - last_next >= 16 * INTERVAL);
    assert_int_equal(codel_count(&c), 1);
    assert_true(codel_drop_next(&c) == t + INTERVAL);
    /* Just inside 16 intervals resumes. */
    episode(&c, &now, 6);
    last_next = codel_drop_next(&c);
    now = last_next + 16 * INTERVAL - INTERVAL - 10 * MS;
    t = run_until_drop(&c, &now, ABOVE, 100 * US, now + 10 * INTERVAL);
    assert_true(t - last_next < 16 * INTERVAL);
    assert_int_equal(codel_count(&c), 4);
}

/* The re-entry window's edge, to the nanosecond: entering again less than 16 intervals after
 * the last scheduled drop resumes at count - 2; at exactly 16 intervals it starts over. */
static void test_hysteresis_window_edge(void **state)
{
    (void)state;
    for (int side = 0; side < 2; side++) {
        codel_t c;
        assert_int_equal(codel_init(&c, TARGET, INTERVAL), 0);
        uint64_t now = 0;
        episode(&c, &now, 10);
        uint64_t last_next = codel_drop_next(&c);
        /* the first packet above target arms the interval; the one an interval later
         * enters: at last_next + 16 intervals - 1 ns (side 0) or + 16 intervals (side 1) */
        uint64_t enter = last_next + CODEL_RESUME_INTERVALS * INTERVAL - (side == 0 ? 1 : 0);
        assert_false(codel_should_drop(&c, ABOVE, enter - INTERVAL));
        assert_false(codel_should_drop(&c, ABOVE, enter - 1));
        assert_true(codel_should_drop(&c, ABOVE, enter));
        assert_true(codel_dropping(&c));
        if (side == 0)
            assert_int_equal(codel_count(&c), 8);
        else
            assert_int_equal(codel_count(&c), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hysteresis_window_edge),
        cmocka_unit_test(test_init_rejects),
        cmocka_unit_test(test_never_drops_below_target),
        cmocka_unit_test(test_enters_after_interval),
        cmocka_unit_test(test_drop_spacing_shrinks),
        cmocka_unit_test(test_step_beyond_table),
        cmocka_unit_test(test_leaves_when_below_target),
        cmocka_unit_test(test_queue_empty_leaves),
        cmocka_unit_test(test_hysteresis_resumes_soon),
        cmocka_unit_test(test_hysteresis_small_count),
        cmocka_unit_test(test_hysteresis_long_gap_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
