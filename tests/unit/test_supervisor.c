/* Unit tests for the supervisor's pure parts (node/supervisor.c) and the anycast section of
 * the configuration (node/cfg_anycast.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/cfg.h"
#include "fennec/common.h"
#include "fennec/supervisor.h"

#define MS 1000000ull
#define S  1000000000ull

static cfg_anycast_t restart_cfg(uint64_t backoff, uint64_t max, uint32_t intensity,
                                 uint64_t period)
{
    cfg_anycast_t a = {0};
    a.restart_backoff_ns = backoff;
    a.restart_backoff_max_ns = max;
    a.restart_intensity = intensity;
    a.restart_period_ns = period;
    return a;
}

static void test_restart_backoff_doubles_and_caps(void **state)
{
    (void)state;
    cfg_anycast_t a = restart_cfg(100 * MS, 1 * S, 10, 60 * S);
    supervisor_restart_t *r = malloc(sizeof(*r));
    supervisor_restart_init(r, &a);
    const uint64_t want[] = {100 * MS, 200 * MS, 400 * MS, 800 * MS, 1 * S, 1 * S};
    uint64_t t = 1000 * S;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        uint64_t d = 0;
        assert_true(supervisor_restart_crash(r, t, &d));
        assert_int_equal(d, want[i]);
        t += 10 * MS;
    }
    free(r);
}

static void test_restart_gives_up_after_intensity(void **state)
{
    (void)state;
    cfg_anycast_t a = restart_cfg(100 * MS, 5 * S, 5, 60 * S);
    supervisor_restart_t *r = malloc(sizeof(*r));
    supervisor_restart_init(r, &a);
    uint64_t t = 5 * S, d = 0;
    for (int i = 0; i < 5; i++) {
        assert_true(supervisor_restart_crash(r, t, &d));
        t += 1 * S;
    }
    assert_int_equal(supervisor_restart_recent(r, t), 5);
    /* The sixth exit within 60 s is one too many. */
    assert_false(supervisor_restart_crash(r, t, &d));
    free(r);
}

static void test_restart_forgets_old_crashes(void **state)
{
    (void)state;
    cfg_anycast_t a = restart_cfg(100 * MS, 5 * S, 2, 10 * S);
    supervisor_restart_t *r = malloc(sizeof(*r));
    supervisor_restart_init(r, &a);
    uint64_t d = 0;
    assert_true(supervisor_restart_crash(r, 1 * S, &d));
    assert_true(supervisor_restart_crash(r, 2 * S, &d));
    assert_int_equal(d, 200 * MS);
    /* 20 s later both are older than the period: allowed again, from the first delay. */
    assert_true(supervisor_restart_crash(r, 22 * S, &d));
    assert_int_equal(d, 100 * MS);
    assert_int_equal(supervisor_restart_recent(r, 22 * S), 1);
    /* Exactly at the period's edge a crash no longer counts. */
    assert_true(supervisor_restart_crash(r, 31 * S, &d));
    assert_false(supervisor_restart_crash(r, 31 * S + 1, &d));
    free(r);
}

static void test_restart_intensity_zero_never_restarts(void **state)
{
    (void)state;
    cfg_anycast_t a = restart_cfg(100 * MS, 5 * S, 0, 60 * S);
    supervisor_restart_t *r = malloc(sizeof(*r));
    supervisor_restart_init(r, &a);
    uint64_t d = 0;
    assert_false(supervisor_restart_crash(r, 1 * S, &d));
    free(r);
}

static void test_check_rise_and_fall(void **state)
{
    (void)state;
    supervisor_check_t c;
    supervisor_check_init(&c, 2, 3);
    assert_false(c.up);
    assert_false(supervisor_check_result(&c, true));
    assert_false(supervisor_check_result(&c, false)); /* a failure breaks the run */
    assert_false(supervisor_check_result(&c, true));
    assert_true(supervisor_check_result(&c, true)); /* rise 2 */
    assert_true(c.up);
    assert_false(supervisor_check_result(&c, false));
    assert_false(supervisor_check_result(&c, false));
    assert_false(supervisor_check_result(&c, true)); /* a success breaks the fall */
    assert_false(supervisor_check_result(&c, false));
    assert_false(supervisor_check_result(&c, false));
    assert_true(supervisor_check_result(&c, false)); /* fall 3 */
    assert_false(c.up);
}

static void test_state_of(void **state)
{
    (void)state;
    supervisor_inputs_t in = {.running = true, .check_up = true, .bird = BIRD_ENABLED};
    assert_true(supervisor_want_announce(&in));
    assert_int_equal(supervisor_state_of(&in), REPL_ANNOUNCE_ANNOUNCED);
    in.bird = BIRD_UNKNOWN; /* wanted, not confirmed by BIRD: not announced */
    assert_int_equal(supervisor_state_of(&in), REPL_ANNOUNCE_WITHDRAWN);
    in.bird = BIRD_ENABLED;
    in.check_up = false;
    assert_false(supervisor_want_announce(&in));
    assert_int_equal(supervisor_state_of(&in), REPL_ANNOUNCE_WITHDRAWN);
    in.check_up = true;
    in.drain = true;
    assert_false(supervisor_want_announce(&in));
    assert_int_equal(supervisor_state_of(&in), REPL_ANNOUNCE_DRAINING);
    in.bird = BIRD_DISABLED;
    assert_int_equal(supervisor_state_of(&in), REPL_ANNOUNCE_DRAINED);
    in.running = false;
    assert_int_equal(supervisor_state_of(&in), REPL_ANNOUNCE_DOWN);
    in = (supervisor_inputs_t){.running = true, .check_up = true, .gave_up = true};
    assert_false(supervisor_want_announce(&in));
    in = (supervisor_inputs_t){.running = true, .check_up = true, .stopping = true};
    assert_false(supervisor_want_announce(&in));
    assert_int_equal(supervisor_state_of(&in), REPL_ANNOUNCE_DOWN);
}

static void test_report_round_trip(void **state)
{
    (void)state;
    supervisor_report_t r = {.state = REPL_ANNOUNCE_DRAINED,
                             .since = 1764500000.25,
                             .restarts = 3,
                             .drain = true,
                             .bird_connected = true,
                             .reply = 42};
    snprintf(r.reason, sizeof(r.reason), "drain \"requested\"\n");
    r.transitions[REPL_ANNOUNCE_ANNOUNCED] = 7;
    r.transitions[REPL_ANNOUNCE_DOWN] = 2;
    char buf[SUPERVISOR_MSG_MAX];
    int n = supervisor_report_encode(&r, buf, sizeof(buf));
    assert_true(n > 0);
    supervisor_report_t back;
    assert_int_equal(supervisor_report_decode(buf, (size_t)n, &back), 0);
    assert_int_equal(back.state, REPL_ANNOUNCE_DRAINED);
    assert_true(back.since == r.since);
    assert_string_equal(back.reason, r.reason);
    assert_int_equal(back.transitions[REPL_ANNOUNCE_ANNOUNCED], 7);
    assert_int_equal(back.transitions[REPL_ANNOUNCE_DOWN], 2);
    assert_int_equal(back.restarts, 3);
    assert_true(back.drain);
    assert_true(back.bird_connected);
    assert_int_equal(back.reply, 42);
    /* Too small a buffer is said, not overrun. */
    assert_int_equal(supervisor_report_encode(&r, buf, 16), -ENOSPC);
}

/* Text from BIRD cut to a buffer never splits a UTF-8 character: bytes from 0x80 up become
 * '?', so a report always encodes. */
static void test_text_copy_ascii(void **state)
{
    (void)state;
    char out[6];
    supervisor_text_copy(out, sizeof(out),
                         "ab\xc3\xa9"
                         "cdef");
    assert_string_equal(out, "ab??c");
    supervisor_text_copy(out, sizeof(out), "a\nb");
    assert_string_equal(out, "a\nb");
    supervisor_text_copy(out, 1, "abc");
    assert_string_equal(out, "");
    supervisor_report_t r = {0};
    supervisor_text_copy(r.bird_error, sizeof(r.bird_error), "refus\xc3\xa9: \xff\xfe");
    char buf[SUPERVISOR_MSG_MAX];
    assert_true(supervisor_report_encode(&r, buf, sizeof(buf)) > 0);
}

static void test_report_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "{\"type\":\"report\"}",
        "{\"type\":\"report\",\"state\":\"sideways\"}",
        "{\"type\":\"drain\",\"state\":\"announced\"}",
        "{\"type\":\"report\",\"state\":7}",
        "\xff\xfe\x00garbage",
    };
    supervisor_report_t out;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(supervisor_report_decode(bad[i], strlen(bad[i]) + (i == 7 ? 4 : 0), &out),
                         FENNEC_EMALFORMED);
    /* Wrong types in optional fields read as absent. */
    const char *odd = "{\"type\":\"report\",\"state\":\"announced\",\"since\":\"x\","
                      "\"transitions\":{\"announced\":-5},\"restarts\":\"many\",\"reply\":-1}";
    assert_int_equal(supervisor_report_decode(odd, strlen(odd), &out), 0);
    assert_int_equal(out.state, REPL_ANNOUNCE_ANNOUNCED);
    assert_int_equal(out.transitions[REPL_ANNOUNCE_ANNOUNCED], 0);
    assert_int_equal(out.restarts, 0);
    assert_int_equal(out.reply, 0);
}

/* ---- the anycast section of the configuration ---------------------------------------------- */

static const char base_yaml[] = "node: { id: n1 }\n"
                                "listen:\n"
                                "  dns: [\"192.0.2.53:53\", \"[2001:db8::53]:5353\", "
                                "\"127.0.0.1:5300\"]\n";

static int parse_with(const char *anycast, cfg_t **cfg, char *err, size_t errlen)
{
    char yaml[4096];
    snprintf(yaml, sizeof(yaml), "%s%s", base_yaml, anycast);
    return cfg_parse(yaml, strlen(yaml), "n1.yaml", cfg, err, errlen);
}

static void test_cfg_anycast_full(void **state)
{
    (void)state;
    cfg_t *cfg = NULL;
    char err[512];
    int rc = parse_with("anycast:\n"
                        "  service: [\"192.0.2.53\", \"2001:db8::53\"]\n"
                        "  bird_socket: /run/fennec-lab/n1/bird.ctl\n"
                        "  bird_protocol: svc_routes\n"
                        "  min_announced: 2\n"
                        "  check: { interval: 200ms, timeout: 80ms, rise: 3, fall: 4, qname: "
                        "example.com }\n"
                        "  restart: { backoff: 50ms, backoff_max: 2s, intensity: 7, period: "
                        "30s }\n",
                        &cfg, err, sizeof(err));
    assert_int_equal(rc, 0);
    const cfg_anycast_t *a = &cfg->anycast;
    assert_true(a->set);
    assert_int_equal(a->service_count, 2);
    assert_string_equal(a->service[0].text, "192.0.2.53");
    assert_int_equal(ntohs(((const struct sockaddr_in *)&a->service[0].ss)->sin_port), 53);
    assert_int_equal(ntohs(((const struct sockaddr_in6 *)&a->service[1].ss)->sin6_port), 5353);
    assert_string_equal(a->bird_socket, "/run/fennec-lab/n1/bird.ctl");
    assert_string_equal(a->bird_protocol, "svc_routes");
    assert_int_equal(a->min_announced, 2);
    assert_int_equal(a->check_interval_ns, 200 * MS);
    assert_int_equal(a->check_timeout_ns, 80 * MS);
    assert_int_equal(a->check_rise, 3);
    assert_int_equal(a->check_fall, 4);
    assert_string_equal(a->check_qname, "example.com");
    assert_int_equal(a->restart_backoff_ns, 50 * MS);
    assert_int_equal(a->restart_backoff_max_ns, 2 * S);
    assert_int_equal(a->restart_intensity, 7);
    assert_int_equal(a->restart_period_ns, 30 * S);
    cfg_free(cfg);
}

static void test_cfg_anycast_defaults(void **state)
{
    (void)state;
    cfg_t *cfg = NULL;
    char err[512];
    assert_int_equal(parse_with("", &cfg, err, sizeof(err)), 0);
    assert_false(cfg->anycast.set);
    cfg_free(cfg);
    assert_int_equal(parse_with("anycast: { service: [192.0.2.53], bird_socket: b.ctl }\n", &cfg,
                                err, sizeof(err)),
                     0);
    const cfg_anycast_t *a = &cfg->anycast;
    assert_string_equal(a->bird_protocol, "fennec_service");
    assert_int_equal(a->min_announced, 1);
    assert_int_equal(a->check_interval_ns, 100 * MS);
    assert_int_equal(a->check_timeout_ns, 50 * MS);
    assert_int_equal(a->check_rise, 2);
    assert_int_equal(a->check_fall, 2);
    assert_null(a->check_qname);
    assert_int_equal(a->restart_backoff_ns, 100 * MS);
    assert_int_equal(a->restart_backoff_max_ns, 5 * S);
    assert_int_equal(a->restart_intensity, 5);
    assert_int_equal(a->restart_period_ns, 60 * S);
    assert_non_null(strstr(a->bird_socket, "b.ctl")); /* resolved like other paths */
    cfg_free(cfg);
}

/* Each bad section fails with FILE:LINE and the key. */
static void test_cfg_anycast_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *expect;
    } cases[] = {
        {"anycast: { bird_socket: b.ctl }\n", "n1.yaml:4: anycast.service: missing"},
        {"anycast: { service: [], bird_socket: b.ctl }\n",
         "n1.yaml:4: anycast.service: at least one"},
        {"anycast: { service: [192.0.2.53] }\n", "n1.yaml:4: anycast.bird_socket: missing"},
        {"anycast:\n  service: [\"192.0.2.53:53\"]\n  bird_socket: b\n",
         "n1.yaml:5: anycast.service[0]: \"192.0.2.53:53\": not an IPv4 or IPv6 address"},
        {"anycast:\n  service: [192.0.2.99]\n  bird_socket: b\n",
         "n1.yaml:5: anycast.service[0]: \"192.0.2.99\": no listen.dns entry serves"},
        {"anycast:\n  service: [192.0.2.53, 192.0.2.53]\n  bird_socket: b\n",
         "n1.yaml:5: anycast.service[1]: \"192.0.2.53\": listed twice"},
        {"anycast:\n  service: [0.0.0.0]\n  bird_socket: b\n",
         "n1.yaml:5: anycast.service[0]: 0.0.0.0: a service address cannot be the wildcard"},
        {"anycast:\n  service: [192.0.2.53]\n  bird_socket: b\n  bird_protocol: \"x; y\"\n",
         "n1.yaml:7: anycast.bird_protocol: \"x; y\": a BIRD protocol name"},
        {"anycast:\n  service: [192.0.2.53]\n  bird_socket: b\n  min_announced: -1\n",
         "n1.yaml:7: anycast.min_announced"},
        {"anycast:\n  service: [192.0.2.53]\n  bird_socket: b\n  check: { interval: 100ms, "
         "timeout: 200ms }\n",
         "n1.yaml:7: anycast.check.timeout: the timeout (200 ms) must not be longer than the "
         "interval (100 ms)"},
        {"anycast:\n  service: [192.0.2.53]\n  bird_socket: b\n  check: { rise: 0 }\n",
         "n1.yaml:7: anycast.check.rise"},
        {"anycast:\n  service: [192.0.2.53]\n  bird_socket: b\n  check: { interval: fast }\n",
         "n1.yaml:7: anycast.check.interval: \"fast\": expected a duration"},
        {"anycast:\n  service: [192.0.2.53]\n  bird_socket: b\n  restart: { backoff: 10s, "
         "backoff_max: 1s }\n",
         "n1.yaml:7: anycast.restart.backoff: backoff (10000 ms) must not be longer than "
         "backoff_max (1000 ms)"},
        {"anycast:\n  service: [192.0.2.53]\n  bird_socket: b\n  restart: { period: 10ms }\n",
         "n1.yaml:7: anycast.restart.period"},
        {"anycast:\n  service: [192.0.2.53]\n  bird_socket: b\n  drain_timeout: 1s\n",
         "n1.yaml:7: anycast: unknown key \"drain_timeout\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg_t *cfg = NULL;
        char err[512] = "";
        int rc = parse_with(cases[i].yaml, &cfg, err, sizeof(err));
        if (rc == 0 || !strstr(err, cases[i].expect))
            fail_msg("case %zu: rc %d, got \"%s\", expected \"%s\"", i, rc, err, cases[i].expect);
        assert_null(cfg);
    }
}

/* A wildcard listen address serves every service address of its family; "*" serves both. */
static void test_cfg_anycast_wildcard(void **state)
{
    (void)state;
    const char *yaml = "node: { id: n1 }\n"
                       "listen: { dns: [\"*:5353\"] }\n"
                       "anycast: { service: [192.0.2.53, \"2001:db8::53\"], bird_socket: b }\n";
    cfg_t *cfg = NULL;
    char err[512];
    assert_int_equal(cfg_parse(yaml, strlen(yaml), "w.yaml", &cfg, err, sizeof(err)), 0);
    assert_int_equal(ntohs(((const struct sockaddr_in *)&cfg->anycast.service[0].ss)->sin_port),
                     5353);
    assert_int_equal(ntohs(((const struct sockaddr_in6 *)&cfg->anycast.service[1].ss)->sin6_port),
                     5353);
    cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_backoff_doubles_and_caps),
        cmocka_unit_test(test_restart_gives_up_after_intensity),
        cmocka_unit_test(test_restart_forgets_old_crashes),
        cmocka_unit_test(test_restart_intensity_zero_never_restarts),
        cmocka_unit_test(test_check_rise_and_fall),
        cmocka_unit_test(test_state_of),
        cmocka_unit_test(test_report_round_trip),
        cmocka_unit_test(test_text_copy_ascii),
        cmocka_unit_test(test_report_garbage),
        cmocka_unit_test(test_cfg_anycast_full),
        cmocka_unit_test(test_cfg_anycast_defaults),
        cmocka_unit_test(test_cfg_anycast_errors),
        cmocka_unit_test(test_cfg_anycast_wildcard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
