/* Unit tests for replication/state.c: lag at its boundaries, membership rows, waiting for
 * every node, the lag history. Times are passed in, so nothing here sleeps but the waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fennec/common.h"
#include "fennec/repl.h"

#define SEC 1000000000ull
#define T0  1764500000.0 /* a wall-clock second, as fennec_wall_now() gives */

static uint64_t ns_at(double t)
{
    return (uint64_t)llround(t * 1e9);
}

/* A primary "ns1" with members ns1 (itself), ns2, ns3. */
static int setup_primary(void **state)
{
    (void)state;
    repl_state_init("ns1", true, NULL);
    repl_member_t m[3] = {
        {"ns1", "127.0.0.1:8053"}, {"ns2", "127.0.0.1:8054"}, {"ns3", "127.0.0.1:8055"}};
    assert_int_equal(repl_members_set(m, 3), 0);
    return 0;
}

static int setup_secondary(void **state)
{
    (void)state;
    repl_state_init("ns2", false, "127.0.0.1:5380");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    repl_state_reset();
    return 0;
}

static const repl_node_status_t *node_of(const repl_status_t *st, const char *id)
{
    for (size_t i = 0; i < st->node_count; i++)
        if (strcmp(st->nodes[i].id, id) == 0)
            return &st->nodes[i];
    return NULL;
}

/* Entries 1..N committed one second apart from T0 (entry i at T0 + i). */
static void commit_entries(uint64_t n)
{
    for (uint64_t i = 1; i <= n; i++)
        repl_applied(i, ns_at(T0 + (double)i));
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(repl_state_name(REPL_NEVER_CONNECTED), "never_connected");
    assert_string_equal(repl_state_name(REPL_DISCONNECTED), "disconnected");
    assert_string_equal(repl_state_name(REPL_SNAPSHOT), "snapshot");
    assert_string_equal(repl_state_name(REPL_CATCHING_UP), "catching_up");
    assert_string_equal(repl_state_name(REPL_STREAMING), "streaming");
}

static void test_member_rows_start_never_connected(void **state)
{
    (void)state;
    repl_status_t st;
    assert_int_equal(repl_status_get(&st, T0), 0);
    assert_true(st.primary);
    assert_string_equal(st.node_id, "ns1");
    assert_int_equal(st.node_count, 2); /* every member but itself */
    assert_null(node_of(&st, "ns1"));
    const repl_node_status_t *n2 = node_of(&st, "ns2");
    assert_non_null(n2);
    assert_string_equal(n2->address, "127.0.0.1:8054");
    assert_false(n2->connected);
    assert_int_equal(n2->state, REPL_NEVER_CONNECTED);
    assert_true(n2->last_contact_seconds < 0);
    assert_int_equal(n2->entries_behind, 0);
    repl_status_free(&st);
}

static void test_caught_up_is_zero_behind(void **state)
{
    (void)state;
    commit_entries(10);
    repl_peer_connected("ns2", true, T0 + 10);
    repl_peer_ack("ns2", 10, T0 + 10);
    repl_status_t st;
    assert_int_equal(repl_status_get(&st, T0 + 100), 0);
    assert_int_equal(st.index, 10);
    assert_true(fabs(st.commit_time - (T0 + 10)) < 1e-5);
    const repl_node_status_t *n2 = node_of(&st, "ns2");
    assert_non_null(n2);
    assert_int_equal(n2->applied_index, 10);
    assert_int_equal(n2->entries_behind, 0);
    assert_true(n2->seconds_behind == 0); /* caught up: 0 whatever the age of entry 10 */
    assert_true(n2->connected);
    assert_int_equal(n2->state, REPL_CATCHING_UP);
    repl_status_free(&st);
}

static void test_one_behind_is_age_of_that_entry(void **state)
{
    (void)state;
    commit_entries(10);
    repl_peer_connected("ns2", true, T0 + 10);
    repl_peer_ack("ns2", 9, T0 + 10);
    repl_peer_connected("ns3", true, T0 + 10);
    repl_peer_ack("ns3", 5, T0 + 10);
    repl_status_t st;
    assert_int_equal(repl_status_get(&st, T0 + 12.5), 0);
    const repl_node_status_t *n2 = node_of(&st, "ns2");
    assert_int_equal(n2->entries_behind, 1);
    /* Entry 10 committed at T0 + 10: 2.5 s old. */
    assert_true(fabs(n2->seconds_behind - 2.5) < 1e-5);
    const repl_node_status_t *n3 = node_of(&st, "ns3");
    assert_int_equal(n3->entries_behind, 5);
    /* Oldest entry ns3 lacks is 6, committed at T0 + 6. */
    assert_true(fabs(n3->seconds_behind - 6.5) < 1e-5);
    repl_status_free(&st);
}

static void test_ack_never_goes_back(void **state)
{
    (void)state;
    commit_entries(5);
    repl_peer_connected("ns2", true, T0);
    repl_peer_ack("ns2", 5, T0);
    repl_peer_ack("ns2", 3, T0 + 1); /* a late frame */
    repl_status_t st;
    assert_int_equal(repl_status_get(&st, T0 + 2), 0);
    assert_int_equal(node_of(&st, "ns2")->applied_index, 5);
    assert_true(fabs(node_of(&st, "ns2")->last_contact_seconds - 1) < 1e-5);
    repl_status_free(&st);
}

static void test_disconnected_keeps_lag_and_contact_grows(void **state)
{
    (void)state;
    commit_entries(4);
    repl_peer_connected("ns2", true, T0 + 4);
    repl_peer_ack("ns2", 4, T0 + 4);
    repl_peer_state_set("ns2", REPL_STREAMING);
    repl_peer_connected("ns2", false, T0 + 5);
    /* The primary goes on committing while ns2 is away. */
    repl_applied(5, ns_at(T0 + 20));
    repl_applied(6, ns_at(T0 + 21));

    repl_status_t st;
    assert_int_equal(repl_status_get(&st, T0 + 30), 0);
    const repl_node_status_t *n2 = node_of(&st, "ns2");
    assert_false(n2->connected);
    assert_int_equal(n2->state, REPL_DISCONNECTED);
    assert_int_equal(n2->applied_index, 4);
    assert_int_equal(n2->entries_behind, 2);
    assert_true(fabs(n2->seconds_behind - 10) < 1e-5); /* entry 5, T0 + 20 */
    assert_true(fabs(n2->last_contact_seconds - 26) < 1e-5);
    repl_status_free(&st);

    assert_int_equal(repl_status_get(&st, T0 + 90), 0);
    n2 = node_of(&st, "ns2");
    assert_true(fabs(n2->seconds_behind - 70) < 1e-5);
    assert_true(fabs(n2->last_contact_seconds - 86) < 1e-5);
    repl_status_free(&st);

    /* A state from the stream while disconnected does not pretend it streams. */
    repl_peer_state_set("ns2", REPL_STREAMING);
    assert_int_equal(repl_status_get(&st, T0 + 90), 0);
    assert_int_equal(node_of(&st, "ns2")->state, REPL_DISCONNECTED);
    repl_status_free(&st);
}

static void test_lag_older_than_ring_is_a_lower_bound(void **state)
{
    (void)state;
    /* 70000 entries: the first ones have left the ring. */
    for (uint64_t i = 1; i <= 70000; i++)
        repl_applied(i, ns_at(T0 + (double)i / 1000));
    repl_peer_connected("ns2", true, T0);
    repl_peer_ack("ns2", 1, T0);
    repl_status_t st;
    double now = T0 + 100;
    assert_int_equal(repl_status_get(&st, now), 0);
    const repl_node_status_t *n2 = node_of(&st, "ns2");
    assert_int_equal(n2->entries_behind, 69999);
    /* Entry 2 is gone; the oldest kept (70000 - 65535) stands in: never 0, never more. */
    double oldest_kept = T0 + (double)(70000 - 65535) / 1000;
    assert_true(fabs(n2->seconds_behind - (now - oldest_kept)) < 1e-3);
    assert_true(n2->seconds_behind <= now - (T0 + 0.002) + 1e-6);
    repl_status_free(&st);
}

static void test_snapshot_counts_as_applied(void **state)
{
    (void)state;
    repl_applied_snapshot(100, ns_at(T0 + 100));
    repl_applied(101, ns_at(T0 + 101));
    repl_peer_connected("ns2", true, T0);
    repl_peer_ack("ns2", 50, T0);
    repl_status_t st;
    assert_int_equal(repl_status_get(&st, T0 + 110), 0);
    assert_int_equal(st.index, 101);
    const repl_node_status_t *n2 = node_of(&st, "ns2");
    assert_int_equal(n2->entries_behind, 51);
    /* Entry 51 is only known through the snapshot at 100: at least 10 s behind. */
    assert_true(fabs(n2->seconds_behind - 10) < 1e-5);
    repl_status_free(&st);
}

static void test_members_set_get_find(void **state)
{
    (void)state;
    repl_member_t *m = NULL;
    int n = repl_members_get(&m);
    assert_int_equal(n, 3);
    assert_non_null(m);
    assert_string_equal(m[0].id, "ns1");
    assert_string_equal(m[2].address, "127.0.0.1:8055");
    free(m);

    char addr[REPL_ADDR_MAX];
    assert_true(repl_member_find("ns2", addr));
    assert_string_equal(addr, "127.0.0.1:8054");
    assert_true(repl_member_find("ns3", NULL));
    assert_false(repl_member_find("ns4", addr));

    /* Refused lists change nothing. */
    repl_member_t dup[2] = {{"ns9", "a:1"}, {"ns9", "b:2"}};
    assert_int_equal(repl_members_set(dup, 2), FENNEC_EMALFORMED);
    repl_member_t bad[1] = {{"ns 9", "a:1"}};
    assert_int_equal(repl_members_set(bad, 1), FENNEC_EMALFORMED);
    assert_int_equal(repl_members_get(&m), 3);
    free(m);

    /* An empty list. */
    assert_int_equal(repl_members_set(NULL, 0), 0);
    assert_int_equal(repl_members_get(&m), 0);
    assert_null(m);
    assert_false(repl_member_find("ns2", NULL));
}

static void test_member_id_valid(void **state)
{
    (void)state;
    assert_true(repl_member_id_valid("ns1"));
    assert_true(repl_member_id_valid("a.b_c-D9"));
    assert_false(repl_member_id_valid(""));
    assert_false(repl_member_id_valid(NULL));
    assert_false(repl_member_id_valid("ns/1"));
    assert_false(repl_member_id_valid("ns\"1"));
    char id[REPL_ID_MAX + 1];
    memset(id, 'a', sizeof(id));
    id[REPL_ID_MAX - 1] = '\0'; /* 63 characters */
    assert_true(repl_member_id_valid(id));
    id[REPL_ID_MAX - 1] = 'a';
    id[REPL_ID_MAX] = '\0'; /* 64 */
    assert_false(repl_member_id_valid(id));
}

static void test_removed_member_row_disappears(void **state)
{
    (void)state;
    commit_entries(3);
    repl_peer_connected("ns2", true, T0);
    repl_peer_ack("ns2", 3, T0);
    repl_peer_connected("ns3", true, T0);
    repl_peer_ack("ns3", 2, T0);

    /* ns3 leaves, ns4 joins, ns2 moves. */
    repl_member_t m[3] = {
        {"ns1", "127.0.0.1:8053"}, {"ns2", "127.0.0.1:9054"}, {"ns4", "127.0.0.1:8056"}};
    assert_int_equal(repl_members_set(m, 3), 0);
    repl_status_t st;
    assert_int_equal(repl_status_get(&st, T0 + 1), 0);
    assert_int_equal(st.node_count, 2);
    assert_null(node_of(&st, "ns3"));
    const repl_node_status_t *n2 = node_of(&st, "ns2");
    assert_non_null(n2);
    assert_string_equal(n2->address, "127.0.0.1:9054");
    assert_true(n2->connected); /* a row that stays keeps what it knew */
    assert_int_equal(n2->applied_index, 3);
    const repl_node_status_t *n4 = node_of(&st, "ns4");
    assert_non_null(n4);
    assert_int_equal(n4->state, REPL_NEVER_CONNECTED);
    repl_status_free(&st);

    /* Events for the removed node are ignored, not resurrected. */
    repl_peer_connected("ns3", true, T0 + 2);
    repl_peer_ack("ns3", 3, T0 + 2);
    assert_int_equal(repl_status_get(&st, T0 + 2), 0);
    assert_null(node_of(&st, "ns3"));
    assert_int_equal(st.node_count, 2);
    repl_status_free(&st);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_wait_all_none_connected_returns_at_once(void **state)
{
    (void)state;
    commit_entries(5);
    char lag[64] = "junk";
    double t = mono_now();
    assert_int_equal(repl_wait_all(5, 5000, lag, sizeof(lag)), 0);
    assert_true(mono_now() - t < 0.5);
    assert_string_equal(lag, "");
    /* A node that connected and left no longer counts. */
    repl_peer_connected("ns2", true, T0);
    repl_peer_connected("ns2", false, T0 + 1);
    t = mono_now();
    assert_int_equal(repl_wait_all(5, 5000, lag, sizeof(lag)), 0);
    assert_true(mono_now() - t < 0.5);
}

static void test_wait_all_already_acked(void **state)
{
    (void)state;
    commit_entries(5);
    repl_peer_connected("ns2", true, T0);
    repl_peer_ack("ns2", 5, T0);
    assert_int_equal(repl_wait_all(5, 0, NULL, 0), 0);
    assert_int_equal(repl_wait_all(6, 0, NULL, 0), FENNEC_ETIMEOUT);
}

typedef struct acker {
    const char *id;
    uint64_t index;
    unsigned delay_ms;
    bool disconnect; /* leave instead of acking */
} acker_t;

static void *acker_run(void *arg)
{
    const acker_t *a = arg;
    struct timespec ts = {a->delay_ms / 1000, (long)(a->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (a->disconnect)
        repl_peer_connected(a->id, false, T0 + 1);
    else
        repl_peer_ack(a->id, a->index, T0 + 1);
    return NULL;
}

static void test_wait_all_returns_when_last_acks(void **state)
{
    (void)state;
    commit_entries(7);
    repl_peer_connected("ns2", true, T0);
    repl_peer_connected("ns3", true, T0);
    repl_peer_ack("ns2", 7, T0); /* ns2 has it; ns3 is the last one */
    acker_t a = {"ns3", 7, 200, false};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, acker_run, &a), 0);
    char lag[64];
    double t = mono_now();
    assert_int_equal(repl_wait_all(7, 10000, lag, sizeof(lag)), 0);
    double took = mono_now() - t;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(took >= 0.15); /* it did wait for the ack */
    assert_true(took < 5.0);   /* and did not wait for the timeout */
}

static void test_wait_all_returns_when_laggard_disconnects(void **state)
{
    (void)state;
    commit_entries(7);
    repl_peer_connected("ns2", true, T0);
    acker_t a = {"ns2", 0, 200, true};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, acker_run, &a), 0);
    double t = mono_now();
    assert_int_equal(repl_wait_all(7, 10000, NULL, 0), 0);
    assert_true(mono_now() - t < 5.0);
    assert_int_equal(pthread_join(th, NULL), 0);
}

static void test_wait_all_times_out_naming_laggards(void **state)
{
    (void)state;
    commit_entries(9);
    repl_peer_connected("ns2", true, T0);
    repl_peer_connected("ns3", true, T0);
    repl_peer_ack("ns2", 8, T0);
    repl_peer_ack("ns3", 9, T0);
    char lag[64];
    double t = mono_now();
    assert_int_equal(repl_wait_all(9, 300, lag, sizeof(lag)), FENNEC_ETIMEOUT);
    double took = mono_now() - t;
    assert_true(took >= 0.29);
    assert_true(took < 5.0);
    assert_string_equal(lag, "ns2");

    repl_peer_ack("ns3", 8, T0); /* acks never go back: ns3 still has 9 */
    assert_int_equal(repl_wait_all(10, 50, lag, sizeof(lag)), FENNEC_ETIMEOUT);
    assert_string_equal(lag, "ns2,ns3");
    /* A short buffer is cut, still terminated. */
    char small[5];
    assert_int_equal(repl_wait_all(10, 0, small, sizeof(small)), FENNEC_ETIMEOUT);
    assert_int_equal(strlen(small), 4);
    assert_memory_equal(small, "ns2,", 4);
}

static void test_secondary_view(void **state)
{
    (void)state;
    repl_status_t st;
    assert_int_equal(repl_status_get(&st, T0), 0);
    assert_false(st.primary);
    assert_string_equal(st.primary_addr, "127.0.0.1:5380");
    assert_int_equal(st.state, REPL_NEVER_CONNECTED);
    assert_false(st.connected);
    assert_true(st.last_contact_seconds < 0);
    assert_int_equal(st.node_count, 0);
    assert_string_equal(st.primary_id, "");
    repl_status_free(&st);

    repl_primary_id_set("ns1");
    repl_primary_connected(true, T0);
    repl_primary_seen(3, ns_at(T0 + 1), T0 + 1); /* entry 3, committed at T0 + 1 */
    repl_primary_seen(5, ns_at(T0 + 2), T0 + 2);
    repl_applied(1, ns_at(T0));
    repl_applied(2, ns_at(T0 + 0.5));
    assert_int_equal(repl_status_get(&st, T0 + 4), 0);
    assert_true(st.connected);
    assert_int_equal(st.state, REPL_CATCHING_UP);
    assert_string_equal(st.primary_id, "ns1");
    assert_int_equal(st.applied_index, 2);
    assert_int_equal(st.index, 2);
    assert_int_equal(st.primary_index, 5);
    assert_int_equal(st.entries_behind, 3);
    assert_true(fabs(st.seconds_behind - 3) < 1e-5); /* entry 3: T0 + 1 */
    assert_true(fabs(st.last_contact_seconds - 2) < 1e-5);
    repl_status_free(&st);

    repl_applied(3, ns_at(T0 + 1));
    assert_int_equal(repl_status_get(&st, T0 + 4), 0);
    assert_true(fabs(st.seconds_behind - 2) < 1e-5); /* first report past 3: T0 + 2 */
    repl_status_free(&st);

    repl_applied(4, ns_at(T0 + 1.5));
    repl_applied(5, ns_at(T0 + 2));
    repl_primary_state_set(REPL_STREAMING);
    assert_int_equal(repl_status_get(&st, T0 + 4), 0);
    assert_int_equal(st.entries_behind, 0);
    assert_true(st.seconds_behind == 0);
    assert_int_equal(st.state, REPL_STREAMING);
    repl_status_free(&st);

    /* The primary goes away after saying it has 6: lag grows, contact ages. */
    repl_primary_seen(6, ns_at(T0 + 5), T0 + 5);
    repl_primary_connected(false, T0 + 6);
    assert_int_equal(repl_status_get(&st, T0 + 65), 0);
    assert_false(st.connected);
    assert_int_equal(st.state, REPL_DISCONNECTED);
    assert_int_equal(st.entries_behind, 1);
    assert_true(fabs(st.seconds_behind - 60) < 1e-5);
    assert_true(fabs(st.last_contact_seconds - 60) < 1e-5);
    repl_status_free(&st);
}

static void test_history_samples(void **state)
{
    (void)state;
    repl_history_t h;
    assert_int_equal(repl_history_get(&h), 0);
    assert_int_equal(h.points, 0); /* nothing before the first tick */
    repl_history_free(&h);

    commit_entries(10);
    repl_peer_connected("ns2", true, T0);
    repl_peer_ack("ns2", 9, T0); /* entry 10 at T0 + 10 */
    /* ns3 never connected: no sample. */
    double t = 1764500100.0; /* a multiple of 5 */
    repl_history_tick(t);
    repl_history_tick(t + 1); /* same slot: no new sample */
    repl_history_tick(t + 5);
    repl_peer_connected("ns2", false, t + 6);
    repl_history_tick(t + 10);
    /* Nothing ticks for 15 s: two holes, then a sample. */
    repl_history_tick(t + 25);

    assert_int_equal(repl_history_get(&h), 0);
    assert_true(h.step == 5.0);
    assert_true(h.start == t);
    assert_int_equal(h.points, 6);
    assert_int_equal(h.series, 3);
    assert_string_equal(h.ids[0], "ns1");
    assert_string_equal(h.ids[1], "ns2");
    assert_string_equal(h.ids[2], "ns3");
    const double *self = &h.seconds_behind[0];
    const double *n2 = &h.seconds_behind[h.points];
    const double *n3 = &h.seconds_behind[2 * h.points];
    assert_true(self[0] == 0 && self[5] == 0);
    assert_true(fabs(n2[0] - (t - (T0 + 10))) < 1e-5);
    assert_true(fabs(n2[1] - (t + 5 - (T0 + 10))) < 1e-5);
    assert_true(n2[2] < 0);              /* disconnected */
    assert_true(n2[3] < 0 && n2[4] < 0); /* holes */
    assert_true(self[3] < 0);
    for (size_t k = 0; k < h.points; k++)
        assert_true(n3[k] < 0);
    repl_history_free(&h);
    assert_null(h.ids);
    repl_history_free(NULL);
}

static void test_history_keeps_last_ten_minutes(void **state)
{
    (void)state;
    repl_peer_connected("ns2", true, T0);
    double t = 1764500000.0;
    for (int i = 0; i < 200; i++)
        repl_history_tick(t + 5.0 * i);
    repl_history_t h;
    assert_int_equal(repl_history_get(&h), 0);
    assert_int_equal(h.points, REPL_HISTORY_POINTS);
    assert_true(h.start == t + 5.0 * (200 - REPL_HISTORY_POINTS));
    for (size_t k = 0; k < h.points; k++)
        assert_true(h.seconds_behind[h.points + k] == 0); /* ns2, caught up */
    repl_history_free(&h);

    /* A removed member's series goes with its row. */
    repl_member_t m[2] = {{"ns1", "127.0.0.1:8053"}, {"ns3", "127.0.0.1:8055"}};
    assert_int_equal(repl_members_set(m, 2), 0);
    repl_history_tick(t + 5.0 * 200);
    assert_int_equal(repl_history_get(&h), 0);
    assert_int_equal(h.series, 2);
    assert_string_equal(h.ids[1], "ns3");
    repl_history_free(&h);
}

static void test_history_secondary_series_is_itself(void **state)
{
    (void)state;
    double t = 1764500000.0;
    repl_history_tick(t); /* never connected */
    repl_primary_connected(true, t);
    repl_primary_seen(2, ns_at(t - 3), t);
    repl_history_tick(t + 5);
    repl_history_t h;
    assert_int_equal(repl_history_get(&h), 0);
    assert_int_equal(h.series, 1);
    assert_string_equal(h.ids[0], "ns2");
    assert_int_equal(h.points, 2);
    assert_true(h.seconds_behind[0] < 0);
    assert_true(fabs(h.seconds_behind[1] - 8) < 1e-5);
    repl_history_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_member_id_valid),
        cmocka_unit_test_setup_teardown(test_member_rows_start_never_connected, setup_primary,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_caught_up_is_zero_behind, setup_primary, teardown),
        cmocka_unit_test_setup_teardown(test_one_behind_is_age_of_that_entry, setup_primary,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ack_never_goes_back, setup_primary, teardown),
        cmocka_unit_test_setup_teardown(test_disconnected_keeps_lag_and_contact_grows,
                                        setup_primary, teardown),
        cmocka_unit_test_setup_teardown(test_lag_older_than_ring_is_a_lower_bound, setup_primary,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_counts_as_applied, setup_primary, teardown),
        cmocka_unit_test_setup_teardown(test_members_set_get_find, setup_primary, teardown),
        cmocka_unit_test_setup_teardown(test_removed_member_row_disappears, setup_primary,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_all_none_connected_returns_at_once, setup_primary,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_all_already_acked, setup_primary, teardown),
        cmocka_unit_test_setup_teardown(test_wait_all_returns_when_last_acks, setup_primary,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_all_returns_when_laggard_disconnects,
                                        setup_primary, teardown),
        cmocka_unit_test_setup_teardown(test_wait_all_times_out_naming_laggards, setup_primary,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secondary_view, setup_secondary, teardown),
        cmocka_unit_test_setup_teardown(test_history_samples, setup_primary, teardown),
        cmocka_unit_test_setup_teardown(test_history_keeps_last_ten_minutes, setup_primary,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_history_secondary_series_is_itself, setup_secondary,
                                        teardown),
    };
    log_set_level(LOG_LEVEL_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
