/*
 * Unit tests for health definitions and pool answers: the `health:` section is parsed (and
 * refused with FILE:LINE and the key at fault), a view of the checks' states is published,
 * and real queries through the query engine get what each policy and all_down choice says,
 * with the TTL the states call for. The prober is not running here: states are published by
 * hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../health/health_int.h"
#include "fennec/cfg.h"
#include "fennec/common.h"
#include "fennec/health.h"
#include "fennec/query.h"
#include "fennec/zone.h"
#include "testutil.h"

static const char g_zone_text[] = "$ORIGIN example.com.\n"
                                  "@ 300 SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
                                  "@ 300 NS ns1\n"
                                  "ns1 300 A 192.0.2.1\n"
                                  "www 300 A 198.51.100.1\n" /* replaced by the pool */
                                  "www 300 TXT \"zone data\"\n"
                                  "sub 300 NS ns.sub\n"
                                  "ns.sub 300 A 192.0.2.53\n";

static const char g_health[] =
    "health:\n"
    "  checks:\n"
    "    - {name: c1, type: http, target: 192.0.2.10, port: 80}\n"
    "    - {name: c2, type: tcp, target: 192.0.2.11, port: 443}\n"
    "    - {name: c3, type: https, target: 2001:db8::1, host: www.example.com}\n"
    "  pools:\n"
    "    - name: www.example.com\n"
    "      policy: failover\n"
    "      ttl: 300\n"
    "      degraded_ttl: 10\n"
    "      members:\n"
    "        - {address: 192.0.2.10, check: c1}\n"
    "        - {address: 192.0.2.11, check: c2}\n"
    "    - {name: all.example.com, policy: all, ttl: 60, degraded_ttl: 5, members: [{address: "
    "192.0.2.10, check: c1}, {address: 192.0.2.11, check: c2}]}\n"
    "    - {name: w.example.com, policy: weighted, members: [{address: 192.0.2.10, check: c1, "
    "weight: 1}, {address: 192.0.2.11, check: c2, weight: 3}]}\n"
    "    - {name: first.example.com, all_down: serve_first, members: [{address: 192.0.2.10, "
    "check: c1}, {address: 192.0.2.11, check: c2}]}\n"
    "    - {name: empty.example.com, all_down: empty, members: [{address: 192.0.2.10, check: "
    "c1}]}\n"
    "    - {name: www.example.com, type: AAAA, members: [{address: '2001:db8::1', check: c3}]}\n"
    "    - {name: deep.sub.example.com, members: [{address: 192.0.2.10, check: c1}]}\n";

static zone_set_t *g_set;
static health_config_t *g_hc;
static query_ctx_t *g_ctx;

static void publish(bool up1, bool up2, bool up3, bool degraded)
{
    health_eff_t eff[3] = {{up1, !up1 || degraded}, {up2, !up2}, {up3, !up3}};
    assert_int_equal(health_view_publish(g_hc, eff), 0);
}

/* Asks NAME/QTYPE; returns the parsed answer in R. */
static void ask(resp_t *r, const char *name, uint16_t qtype)
{
    qbuf_t q;
    testutil_query_make(&q, 7, 0x0100, name, qtype, 1);
    zone_read_lock();
    r->len = query_answer_set(g_ctx, g_set, q.b, q.len, r->b, sizeof(r->b), QUERY_TCP);
    zone_read_unlock();
    testutil_answer_parse(r);
}

/* The answer section's addresses as text, "a b", and the TTL of the first. */
static void answers(const resp_t *r, char *out, size_t cap, uint32_t *ttl)
{
    size_t o = 0;
    out[0] = '\0';
    *ttl = 0;
    for (int i = 0; i < r->nrr; i++) {
        const rr_t *rr = &r->rr[i];
        if (rr->sec != 0)
            continue;
        char a[64];
        inet_ntop(rr->type == 1 ? AF_INET : AF_INET6, r->b + rr->rdoff, a, sizeof(a));
        o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? " " : "", a);
        *ttl = rr->ttl;
    }
}

static void expect(const char *name, uint16_t qtype, const char *want, uint32_t want_ttl)
{
    resp_t r;
    char got[512];
    uint32_t ttl;
    ask(&r, name, qtype);
    answers(&r, got, sizeof(got), &ttl);
    if (strcmp(got, want) != 0 || (want[0] && ttl != want_ttl))
        fail_msg("%s type %u: answers \"%s\" TTL %u, want \"%s\" TTL %u (rcode %u)", name, qtype,
                 got, ttl, want, want_ttl, r.flags & 0xf);
    assert_int_equal(r.flags & 0xf, 0); /* NOERROR, also when empty */
}

static void test_failover_and_degraded_ttl(void **state)
{
    (void)state;
    publish(true, true, true, false);
    expect("www.example.com", 1, "192.0.2.10", 300);
    publish(true, true, true, true); /* c1 up but degraded (unknown after a failure) */
    expect("www.example.com", 1, "192.0.2.10", 10);
    publish(false, true, true, false); /* c1 down: the backup */
    expect("www.example.com", 1, "192.0.2.11", 10);
    publish(true, false, true, false); /* the backup down: still the first, degraded */
    expect("www.example.com", 1, "192.0.2.10", 10);
    /* the zone's own data of the name for other types; AAAA has its own pool */
    resp_t r;
    ask(&r, "www.example.com", 16);
    assert_int_equal(r.an, 1);
    publish(true, true, true, false);
    expect("www.example.com", 28, "2001:db8::1", 300);
}

static void test_all_policy(void **state)
{
    (void)state;
    publish(true, true, true, false);
    expect("all.example.com", 1, "192.0.2.10 192.0.2.11", 60);
    publish(true, false, true, false);
    expect("all.example.com", 1, "192.0.2.10", 5);
    /* a pool name without zone data: NODATA for other types, not NXDOMAIN */
    resp_t r;
    ask(&r, "all.example.com", 16);
    assert_int_equal(r.flags & 0xf, 0);
    assert_int_equal(r.an, 0);
    assert_int_equal(r.ns, 1);
}

static void test_all_down_choices(void **state)
{
    (void)state;
    publish(false, false, true, false);
    expect("www.example.com", 1, "192.0.2.10 192.0.2.11", 10); /* serve_all: fail open */
    expect("first.example.com", 1, "192.0.2.10", 10);
    expect("empty.example.com", 1, "", 0);
    resp_t r;
    ask(&r, "empty.example.com", 1);
    assert_int_equal(r.ns, 1); /* NODATA: the SOA in authority */
}

static void test_weighted_follows_weights(void **state)
{
    (void)state;
    publish(true, true, true, false);
    size_t n1 = 0, n2 = 0;
    const size_t total = 10000;
    for (size_t i = 0; i < total; i++) {
        resp_t r;
        char got[128];
        uint32_t ttl;
        ask(&r, "w.example.com", 1);
        answers(&r, got, sizeof(got), &ttl);
        if (strcmp(got, "192.0.2.10") == 0)
            n1++;
        else if (strcmp(got, "192.0.2.11") == 0)
            n2++;
        else
            fail_msg("weighted answer \"%s\"", got);
    }
    /* weights 1:3; chi-square with 1 degree of freedom, p = 0.001: 10.83 */
    double e1 = total * 0.25, e2 = total * 0.75;
    double chi = (n1 - e1) * (n1 - e1) / e1 + (n2 - e2) * (n2 - e2) / e2;
    if (chi > 10.83)
        fail_msg("weighted 1:3 gave %zu:%zu (chi-square %.2f)", n1, n2, chi);
    /* one member down: always the other */
    publish(false, true, true, false);
    expect("w.example.com", 1, "192.0.2.11", 10);
}

static void test_pool_below_a_cut_is_a_referral(void **state)
{
    (void)state;
    publish(true, true, true, false);
    resp_t r;
    ask(&r, "deep.sub.example.com", 1);
    assert_int_equal(r.an, 0);
    assert_true(r.ns >= 1);
    assert_int_equal(r.flags & 0x0400, 0); /* not authoritative */
}

static void test_no_pools_answers_from_the_zone(void **state)
{
    (void)state;
    assert_int_equal(health_view_publish(NULL, NULL), 0);
    assert_false(health_pools_active());
    expect("www.example.com", 1, "198.51.100.1", 300);
    resp_t r;
    ask(&r, "all.example.com", 1);
    assert_int_equal(r.flags & 0xf, 3); /* NXDOMAIN: no pool, no name */
    publish(true, true, true, false);
    assert_true(health_pools_active());
}

/* Bad sections are refused with the file's line and the key. */
static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want; /* in the message */
    } bad[] = {
        {"health:\n  checks:\n    - {name: a, type: ftp, target: 192.0.2.1}\n",
         "f.yaml:12: health.checks[0].type: \"ftp\": expected http, https or tcp"},
        {"health:\n  checks:\n    - {name: a, type: tcp, target: 192.0.2.1}\n",
         "f.yaml:12: health.checks[0].port: missing"},
        {"health:\n  checks:\n    - {name: a, type: http, target: www}\n",
         "health.checks[0].target: \"www\": expected an IPv4 or IPv6 address"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, timeout: 2s}\n",
         "health.checks[0].timeout: longer than the interval"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, interval: 50ms}\n",
         "health.checks[0].interval"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, rise: 0}\n",
         "health.checks[0].rise"},
        {"health:\n  checks:\n    - {name: a, type: tcp, target: 192.0.2.1, port: 1, path: /}\n",
         "health.checks[0].path: only for http and https checks"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, tls_verify: false}\n",
         "health.checks[0].tls_verify: only for https checks"},
        {"health:\n  checks:\n    - {name: a, type: tcp, target: 192.0.2.1, port: 1, "
         "reuse_connection: true}\n",
         "health.checks[0].reuse_connection: only for http and https checks"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, reuse_connection: "
         "2}\n",
         "health.checks[0].reuse_connection"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1}\n"
         "    - {name: a, type: http, target: 192.0.2.2}\n",
         "f.yaml:13: health.checks[1].name: \"a\": check defined twice"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, expect_status: "
         "[700]}\n",
         "health.checks[0].expect_status[0]"},
        {"health:\n  pools:\n    - {name: www.example.com, members: [{address: 192.0.2.1, "
         "check: nope}]}\n",
         "health.pools[0].members[0].check: \"nope\": no such check"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1}\n  pools:\n    - "
         "{name: x.example.com, type: AAAA, members: [{address: 192.0.2.1, check: a}]}\n",
         "expected an IPv6 address (the pool's type is AAAA)"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1}\n  pools:\n    - "
         "{name: x.example.com, policy: random, members: [{address: 192.0.2.1, check: a}]}\n",
         "health.pools[0].policy: \"random\": expected failover, all or weighted"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1}\n  pools:\n    - "
         "{name: x.example.com, members: [{address: 192.0.2.1, check: a}, {address: 192.0.2.1, "
         "check: a}]}\n",
         "listed twice in the pool"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1}\n  pools:\n    - "
         "{name: x.example.com, members: []}\n",
         "health.pools[0].members: an empty list"},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, color: red}\n",
         "health.checks[0]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        health_config_t *hc = NULL;
        char err[512] = "";
        int rc = health_config_parse(bad[i].text, strlen(bad[i].text), "f.yaml", NULL, 10, &hc, err,
                                     sizeof(err));
        if (rc != FENNEC_ECONFIG || !strstr(err, bad[i].want))
            fail_msg("case %zu: rc %d, message \"%s\", want \"%s\"", i, rc, err, bad[i].want);
        assert_null(hc);
    }
}

static void test_config_defaults_and_equality(void **state)
{
    (void)state;
    const health_check_def_t *c1 = &g_hc->checks[0], *c3 = &g_hc->checks[2];
    assert_string_equal(c1->path, "/");
    assert_string_equal(c1->host, "192.0.2.10");
    assert_int_equal(c1->expect_status_count, 1);
    assert_int_equal(c1->expect_status[0], 200);
    assert_int_equal(c1->interval_ns, 1000000000ull);
    assert_int_equal(c1->timeout_ns, 800000000ull);
    assert_int_equal(c1->rise, 2);
    assert_int_equal(c1->fall, 2);
    assert_int_equal(c3->port, 443);
    assert_true(c3->tls_verify);
    assert_int_equal(g_hc->pools[5].type, 28);
    assert_int_equal(g_hc->pools[3].all_down, HEALTH_SERVE_FIRST);
    assert_int_equal(g_hc->first_line, 1);

    health_config_t *again = NULL, *other = NULL;
    char err[512];
    assert_int_equal(
        health_config_parse(g_health, strlen(g_health), "x", NULL, 40, &again, err, sizeof(err)),
        0);
    assert_true(health_config_equal(g_hc, again));
    char *changed = strdup(g_health);
    char *p = strstr(changed, "weight: 3");
    p[8] = '4';
    assert_int_equal(
        health_config_parse(changed, strlen(changed), "x", NULL, 1, &other, err, sizeof(err)), 0);
    assert_false(health_config_equal(g_hc, other));
    assert_true(health_config_equal(NULL, NULL));
    assert_false(health_config_equal(NULL, g_hc));
    free(changed);
    health_config_unref(again);
    health_config_unref(other);
}

static int setup(void **state)
{
    (void)state;
    zone_reader_register();
    zone_t *z = NULL;
    char err[512];
    if (zone_load_text("example.com", g_zone_text, strlen(g_zone_text), "t", &z, err,
                       sizeof(err)) ||
        zone_set_new(&z, 1, &g_set) != 0)
        return -1;
    zone_unref(z);
    if (health_config_parse(g_health, strlen(g_health), "t.yaml", NULL, 1, &g_hc, err,
                            sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    g_ctx = query_ctx_new();
    return g_ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    health_view_publish(NULL, NULL);
    health_config_unref(g_hc);
    zone_set_free(g_set);
    query_ctx_free(g_ctx);
    zone_reader_unregister();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_and_degraded_ttl),
        cmocka_unit_test(test_all_policy),
        cmocka_unit_test(test_all_down_choices),
        cmocka_unit_test(test_weighted_follows_weights),
        cmocka_unit_test(test_pool_below_a_cut_is_a_referral),
        cmocka_unit_test(test_no_pools_answers_from_the_zone),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_defaults_and_equality),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
