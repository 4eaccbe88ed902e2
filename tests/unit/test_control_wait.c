/*
 * The control endpoint's ?wait=all over real HTTP (loopback, libcurl), with the replication
 * state driven by hand as the stream would drive it: a connected secondary that does not ack
 * makes a write wait, and /metrics must answer meanwhile (a thread per connection); the wait
 * ends with the ack, or with a 504 that names the node and says the change is applied.
 *
 * Listens on 127.0.0.1:15975 (FENNEC_TEST_CONTROL_PORT moves it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fennec/cfg.h"
#include "fennec/change.h"
#include "fennec/common.h"
#include "fennec/control.h"
#include "fennec/repl.h"
#include "fennec/zone.h"
#include "testutil.h"

static char g_dir[256];
static char g_key_path[300];
static char g_base[128];
static char g_token[CONTROL_TOKEN_LEN + 1];
static cfg_t g_cfg;
static cfg_zone_t g_zones[1];
static control_t *g_ctl;

typedef struct reply {
    long status;
    char *body;
    size_t len;
    double seconds;
} reply_t;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    reply_t *r = ud;
    char *nb = realloc(r->body, r->len + size * n + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->len, p, size * n);
    r->len += size * n;
    nb[r->len] = '\0';
    r->body = nb;
    return size * n;
}

static double mono(void)
{
    return (double)fennec_now_ns() / 1e9;
}

/* One request; the reply's body is the server's (free()). */
static void call(const char *method, const char *path, const char *body, reply_t *r)
{
    memset(r, 0, sizeof(*r));
    char url[512], auth[128];
    snprintf(url, sizeof(url), "%s%s", g_base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", g_token);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    double t = mono();
    CURLcode cc = curl_easy_perform(c);
    r->seconds = mono() - t;
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method, url, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static json_t *body_json(const reply_t *r)
{
    json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", r->body ? r->body : "");
    return j;
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (testutil_tmpdir_make(g_dir, sizeof(g_dir), "control-wait") != 0)
        return -1;
    snprintf(g_key_path, sizeof(g_key_path), "%s/cluster.key", g_dir);
    FILE *f = fopen(g_key_path, "w");
    if (!f)
        return -1;
    fputs("test-cluster-key\n", f);
    fclose(f);
    if (control_token_derive((const uint8_t *)"test-cluster-key", 16, g_token) != 0)
        return -1;

    const char *port = getenv("FENNEC_TEST_CONTROL_PORT");
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", port && *port ? port : "15975");
    snprintf(g_base, sizeof(g_base), "http://%s", addr);
    g_zones[0] = (cfg_zone_t){.name = "example.com", .text = (char *)zone_builtin_example};
    g_cfg.node_id = "ns1";
    g_cfg.role = CFG_ROLE_PRIMARY;
    g_cfg.has_control = true;
    if (cfg_addr_parse(addr, &g_cfg.control) != 0)
        return -1;
    g_cfg.key_file = g_key_path;
    g_cfg.zones = g_zones;
    g_cfg.zone_count = 1;

    char err[256];
    change_result_t res;
    change_t load = {.kind = CHANGE_LOAD, .cfg = &g_cfg, .source = "test"};
    zone_reader_register();
    if (change_submit(&load, &res, err, sizeof(err)) != 0 || res.failed) {
        fprintf(stderr, "zone: %s\n", err);
        return -1;
    }
    if (control_new(&g_cfg, NULL, &g_ctl) != 0 || control_start(g_ctl) != 0) {
        fprintf(stderr, "the control endpoint does not start on %s\n", addr);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    control_free(g_ctl);
    change_shutdown();
    zone_reader_unregister();
    repl_state_reset();
    testutil_tmpdir_remove(g_dir);
    curl_global_cleanup();
    return 0;
}

/* The primary ns1 with a connected secondary ns2 that has applied nothing. */
static int setup(void **state)
{
    (void)state;
    repl_state_init("ns1", true, NULL);
    repl_member_t m[2] = {{"ns1", "127.0.0.1:15975"}, {"ns2", "127.0.0.1:15976"}};
    assert_int_equal(repl_members_set(m, 2), 0);
    repl_peer_connected("ns2", true, fennec_wall_now());
    return 0;
}

static const char *record(const char *action, const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof(buf),
             "{\"action\":\"%s\",\"name\":\"%s\",\"ttl\":300,\"type\":\"A\","
             "\"rdata\":\"192.0.2.55\"}",
             action, name);
    return buf;
}

typedef struct writer {
    const char *path;
    char body[512];
    reply_t reply;
    volatile int done;
} writer_t;

static void *writer_run(void *arg)
{
    writer_t *w = arg;
    call("POST", w->path, w->body, &w->reply);
    w->done = 1;
    return NULL;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_wait_times_out_while_reads_go_on(void **state)
{
    (void)state;
    writer_t w = {.path = "/v1/zones/example.com/records?wait=all&timeout_ms=1500"};
    snprintf(w.body, sizeof(w.body), "%s", record("add", "waiting"));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_run, &w), 0);
    sleep_ms(300);

    /* The write waits; reads are answered meanwhile. */
    reply_t m;
    call("GET", "/metrics", NULL, &m);
    assert_int_equal(m.status, 200);
    assert_true(m.seconds < 1.0);
    assert_non_null(strstr(m.body, "fennec_replication_connected{node=\"ns2\"} 1"));
    assert_false(w.done);
    free(m.body);
    reply_t st;
    call("GET", "/v1/status", NULL, &st);
    assert_int_equal(st.status, 200);
    assert_false(w.done);
    free(st.body);

    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.reply.status, 504);
    assert_true(w.reply.seconds >= 1.4);
    assert_true(w.reply.seconds < 10);
    json_t *j = body_json(&w.reply);
    json_t *lag = json_object_get(j, "lagging");
    assert_int_equal(json_array_size(lag), 1);
    assert_string_equal(json_string_value(json_array_get(lag, 0)), "ns2");
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "applied and durable"));
    assert_true(json_integer_value(json_object_get(j, "index")) > 0);
    json_decref(j);
    free(w.reply.body);

    /* The change is applied: adding it again is a conflict, deleting it works. */
    reply_t again;
    call("POST", "/v1/zones/example.com/records", record("add", "waiting"), &again);
    assert_int_equal(again.status, 409);
    free(again.body);
    reply_t del;
    call("POST", "/v1/zones/example.com/records", record("delete", "waiting"), &del);
    assert_int_equal(del.status, 200);
    free(del.body);
}

static void test_wait_ends_with_the_ack(void **state)
{
    (void)state;
    writer_t w = {.path = "/v1/zones/example.com/records?wait=all"};
    snprintf(w.body, sizeof(w.body), "%s", record("add", "acked"));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_run, &w), 0);
    sleep_ms(300);
    assert_false(w.done);
    /* ns2 acks everything this node has applied. */
    repl_peer_ack("ns2", change_index(), fennec_wall_now());
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.reply.status, 200);
    assert_true(w.reply.seconds < 5);
    json_t *j = body_json(&w.reply);
    assert_string_equal(json_string_value(json_object_get(j, "result")), "added");
    assert_int_equal(json_integer_value(json_object_get(j, "index")), (json_int_t)change_index());
    json_decref(j);
    free(w.reply.body);
}

static void test_wait_ends_when_the_node_leaves(void **state)
{
    (void)state;
    writer_t w = {.path = "/v1/zones/example.com/changes?wait=all&timeout_ms=20000"};
    snprintf(w.body, sizeof(w.body), "{\"changes\":[%s]}", record("add", "left"));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_run, &w), 0);
    sleep_ms(300);
    assert_false(w.done);
    repl_peer_connected("ns2", false, fennec_wall_now());
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.reply.status, 200);
    assert_true(w.reply.seconds < 5);
    free(w.reply.body);
}

static void test_strict_query(void **state)
{
    (void)state;
    reply_t r;
    call("POST", "/v1/zones/example.com/records?wait=all&timeout_ms=70000", record("add", "never"),
         &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "timeout_ms"));
    free(r.body);
    call("POST", "/v1/zones/example.com/reload?wait=soon", NULL, &r);
    assert_int_equal(r.status, 400);
    free(r.body);
    call("GET", "/v1/nodes?all=1", NULL, &r);
    assert_int_equal(r.status, 400);
    free(r.body);
    /* Nothing was applied by the refused requests. */
    call("POST", "/v1/zones/example.com/records", record("delete", "never"), &r);
    assert_int_equal(r.status, 404);
    free(r.body);
}

static void test_nodes_on_the_primary(void **state)
{
    (void)state;
    reply_t r;
    call("GET", "/v1/nodes", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    json_t *rows = json_object_get(j, "nodes");
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "id")), "ns1");
    json_t *ns2 = json_array_get(rows, 1);
    assert_string_equal(json_string_value(json_object_get(ns2, "id")), "ns2");
    assert_true(json_is_true(json_object_get(ns2, "connected")));
    assert_string_equal(json_string_value(json_object_get(ns2, "state")), "catching_up");
    json_decref(j);
    free(r.body);
    /* A node id that is not valid is refused before the write path. */
    call("DELETE", "/v1/nodes/bad%20id", NULL, &r);
    assert_int_equal(r.status, 400);
    free(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_wait_times_out_while_reads_go_on, setup),
        cmocka_unit_test_setup(test_wait_ends_with_the_ack, setup),
        cmocka_unit_test_setup(test_wait_ends_when_the_node_leaves, setup),
        cmocka_unit_test_setup(test_strict_query, setup),
        cmocka_unit_test_setup(test_nodes_on_the_primary, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
