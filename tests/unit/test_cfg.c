/* Unit tests for the configuration loader (node/cfg.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fennec/cfg.h"
#include "fennec/health.h"
#include "fennec/common.h"
#include "fennec/zone.h"

static const char full_yaml[] = "node:\n"
                                "  id: ns1\n"
                                "  role: primary\n"
                                "  data_dir: /var/lib/fennec/ns1\n"
                                "listen:\n"
                                "  dns: [\"127.0.0.1:5300\", \"[::1]:5300\", \"*:5301\"]\n"
                                "  control: \"127.0.0.1:8053\"\n"
                                "  replication: \"127.0.0.1:5380\"\n"
                                "cluster:\n"
                                "  key_file: /etc/fennec/cluster.key\n"
                                "workers: 4\n"
                                "cpu_affinity: [0, 1]\n"
                                "zones:\n"
                                "  - name: Example.COM.\n"
                                "    file: /etc/fennec/zones/example.com.zone\n"
                                "  - name: 2.0.192.in-addr.arpa\n"
                                "    file: zones/rev.zone\n"
                                "overload:\n"
                                "  codel: { enabled: false, target: 10ms, interval: 1s, backlog: "
                                "512 }\n"
                                "  cubic: { enabled: true, utilization_threshold: 0.85, c: 0.5, "
                                "beta: 0.7, ema_alpha: 0.25, min_rate: 10 }\n"
                                "  udp_rcvbuf: 8MiB\n"
                                "  udp_rcvbuf_congested: 64KiB\n"
                                "  udp_coalesce: 500us\n"
                                "tcp:\n"
                                "  idle_timeout: 5s\n"
                                "  max_connections: 200\n"
                                "  max_inflight: 16\n"
                                "log_level: debug\n";

static void test_full(void **state)
{
    (void)state;
    cfg_t *cfg = NULL;
    char err[512];
    int rc = cfg_parse(full_yaml, strlen(full_yaml), "full.yaml", &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_non_null(cfg);
    assert_string_equal(cfg->path, "full.yaml");
    assert_string_equal(cfg->node_id, "ns1");
    assert_int_equal(cfg->role, CFG_ROLE_PRIMARY);
    assert_string_equal(cfg->data_dir, "/var/lib/fennec/ns1");

    assert_int_equal(cfg->dns_count, 3);
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&cfg->dns[0].ss;
    assert_int_equal(s4->sin_family, AF_INET);
    assert_int_equal(ntohs(s4->sin_port), 5300);
    assert_int_equal(s4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(cfg->dns[0].len, sizeof(struct sockaddr_in));
    assert_string_equal(cfg->dns[0].text, "127.0.0.1:5300");
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&cfg->dns[1].ss;
    assert_int_equal(s6->sin6_family, AF_INET6);
    assert_true(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
    assert_int_equal(ntohs(s6->sin6_port), 5300);
    s6 = (const struct sockaddr_in6 *)&cfg->dns[2].ss;
    assert_int_equal(s6->sin6_family, AF_INET6);
    assert_true(IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr));
    assert_int_equal(ntohs(s6->sin6_port), 5301);

    assert_true(cfg->has_control);
    assert_string_equal(cfg->control.text, "127.0.0.1:8053");
    assert_true(cfg->has_replication);
    assert_string_equal(cfg->replication.text, "127.0.0.1:5380");
    assert_false(cfg->has_primary);
    assert_string_equal(cfg->key_file, "/etc/fennec/cluster.key");

    assert_int_equal(cfg->workers, 4);
    assert_int_equal(cfg->cpu_affinity_count, 2);
    assert_int_equal(cfg->cpu_affinity[0], 0);
    assert_int_equal(cfg->cpu_affinity[1], 1);

    assert_int_equal(cfg->zone_count, 2);
    assert_string_equal(cfg->zones[0].name, "example.com");
    assert_string_equal(cfg->zones[0].file, "/etc/fennec/zones/example.com.zone");
    assert_null(cfg->zones[0].text);
    assert_string_equal(cfg->zones[1].name, "2.0.192.in-addr.arpa");
    /* cfg_parse() resolves against the current directory: relative paths stay relative. */
    assert_string_equal(cfg->zones[1].file, "zones/rev.zone");

    assert_false(cfg->overload.codel_enabled);
    assert_int_equal(cfg->overload.codel_target_ns, 10000000ull);
    assert_int_equal(cfg->overload.codel_interval_ns, 1000000000ull);
    assert_int_equal(cfg->overload.codel_backlog, 512);
    assert_true(cfg->overload.cubic_enabled);
    assert_float_equal(cfg->overload.cubic_threshold, 0.85, 1e-9);
    assert_float_equal(cfg->overload.cubic_c, 0.5, 1e-9);
    assert_float_equal(cfg->overload.cubic_beta, 0.7, 1e-9);
    assert_float_equal(cfg->overload.cubic_ema_alpha, 0.25, 1e-9);
    assert_float_equal(cfg->overload.cubic_min_rate, 10, 1e-9);
    assert_int_equal(cfg->overload.udp_rcvbuf, 8u * 1024 * 1024);
    assert_int_equal(cfg->overload.udp_rcvbuf_congested, 64u * 1024);
    assert_int_equal(cfg->overload.udp_coalesce_ns, 500000ull);
    assert_int_equal(cfg->tcp.idle_timeout_ms, 5000);
    assert_int_equal(cfg->tcp.max_connections, 200);
    assert_int_equal(cfg->tcp.max_inflight, 16);
    assert_string_equal(cfg->log_level, "debug");
    cfg_free(cfg);
}

static void test_minimal_defaults(void **state)
{
    (void)state;
    static const char y[] = "node: {id: ns1}\nlisten: {dns: [\"127.0.0.1:5300\"]}\n";
    cfg_t *cfg = NULL;
    char err[512];
    int rc = cfg_parse(y, strlen(y), "min.yaml", &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(cfg->role, CFG_ROLE_PRIMARY);
    assert_string_equal(cfg->data_dir, "./data/ns1");
    assert_false(cfg->has_control);
    assert_false(cfg->has_replication);
    assert_false(cfg->has_primary);
    assert_null(cfg->key_file);
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->cpu_affinity_count, 0);
    assert_int_equal(cfg->zone_count, 0);
    assert_true(cfg->overload.codel_enabled);
    assert_int_equal(cfg->overload.codel_target_ns, 5000000ull);
    assert_int_equal(cfg->overload.codel_interval_ns, 100000000ull);
    assert_int_equal(cfg->overload.codel_backlog, 1024);
    assert_true(cfg->overload.cubic_enabled);
    assert_float_equal(cfg->overload.cubic_threshold, 0.90, 1e-9);
    assert_float_equal(cfg->overload.cubic_c, 0.4, 1e-9);
    assert_float_equal(cfg->overload.cubic_beta, 0.8, 1e-9);
    assert_float_equal(cfg->overload.cubic_ema_alpha, 0.3, 1e-9);
    assert_float_equal(cfg->overload.cubic_min_rate, 1, 1e-9);
    assert_int_equal(cfg->overload.udp_rcvbuf, 8u * 1024 * 1024);
    assert_int_equal(cfg->overload.udp_rcvbuf_congested, 48u * 1024);
    assert_int_equal(cfg->overload.udp_coalesce_ns, 400000ull);
    assert_int_equal(cfg->tcp.idle_timeout_ms, 10000);
    assert_int_equal(cfg->tcp.max_connections, 1024);
    assert_int_equal(cfg->tcp.max_inflight, 64);
    assert_string_equal(cfg->log_level, "info");
    cfg_free(cfg);
}

static void test_secondary(void **state)
{
    (void)state;
    static const char y[] = "node:\n  id: ns2\n  role: secondary\n"
                            "listen:\n  dns: [\"127.0.0.1:5310\"]\n"
                            "cluster:\n  primary: \"127.0.0.1:5380\"\n  key_file: k.key\n"
                            "workers: auto\n";
    cfg_t *cfg = NULL;
    char err[512];
    int rc = cfg_parse(y, strlen(y), "sec.yaml", &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(cfg->role, CFG_ROLE_SECONDARY);
    assert_true(cfg->has_primary);
    assert_string_equal(cfg->primary.text, "127.0.0.1:5380");
    assert_string_equal(cfg->key_file, "k.key");
    assert_int_equal(cfg->workers, 0);
    cfg_free(cfg);
}

static void test_default(void **state)
{
    (void)state;
    cfg_t *cfg = NULL;
    assert_int_equal(cfg_default(&cfg), 0);
    assert_string_equal(cfg->path, "<builtin>");
    assert_string_equal(cfg->node_id, "fennec1");
    assert_int_equal(cfg->role, CFG_ROLE_PRIMARY);
    assert_int_equal(cfg->dns_count, 1);
    assert_string_equal(cfg->dns[0].text, CFG_DEFAULT_DNS);
    assert_true(cfg->has_control);
    assert_string_equal(cfg->control.text, CFG_DEFAULT_CONTROL);
    assert_int_equal(cfg->zone_count, 1);
    assert_string_equal(cfg->zones[0].name, "example.com");
    assert_null(cfg->zones[0].file);
    assert_non_null(cfg->zones[0].text);
    assert_string_equal(cfg->zones[0].text, zone_builtin_example);
    assert_string_equal(cfg->log_level, "info");
    assert_int_equal(cfg->overload.codel_backlog, 1024);
    assert_int_equal(cfg->overload.udp_rcvbuf, 8u * 1024 * 1024);
    assert_int_equal(cfg->overload.udp_rcvbuf_congested, 48u * 1024);
    assert_int_equal(cfg->overload.udp_coalesce_ns, 400000ull);
    cfg_free(cfg);
    cfg_free(NULL);
}

static void test_addr_parse(void **state)
{
    (void)state;
    cfg_addr_t a;
    assert_int_equal(cfg_addr_parse("1.2.3.4:53", &a), 0);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a.ss)->sin_port), 53);
    assert_int_equal(cfg_addr_parse("[::1]:53", &a), 0);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    assert_int_equal(cfg_addr_parse("*:53", &a), 0);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(cfg_addr_parse("127.0.0.1:65535", &a), 0);
    assert_int_equal(cfg_addr_parse("127.0.0.1:1", &a), 0);

    static const char *const bad[] = {
        "",
        "1.2.3.4",
        "1.2.3.4:",
        "1.2.3.4:0",
        "1.2.3.4:65536",
        "1.2.3.4:-1",
        "1.2.3.4: 53",
        "1.2.3.4:53x",
        "::1:53",
        "[::1]",
        "[::1:53",
        "[1.2.3.4]:53",
        "localhost:53",
        "1.2.3.256:53",
        "[::1]x53",
        "*",
        "1.2.3.4:0x35",
        ":53",
        "1.2.3.4:99999",
        "1.2.3.4:123456789012345678901",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cfg_addr_parse(bad[i], &a) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    char longaddr[200];
    memset(longaddr, '1', sizeof(longaddr) - 1);
    longaddr[sizeof(longaddr) - 1] = '\0';
    assert_int_not_equal(cfg_addr_parse(longaddr, &a), 0);
}

/* Parses Y, expects failure, and checks the message starts with "err.yaml:LINE: " and holds
 * each of the NULL-terminated fragments. */
static void expect_error(const char *y, unsigned line, ...)
{
    cfg_t *cfg = NULL;
    char err[512];
    int rc = cfg_parse(y, strlen(y), "err.yaml", &cfg, err, sizeof(err));
    if (rc == 0) {
        cfg_free(cfg);
        fail_msg("accepted:\n%s", y);
    }
    assert_int_equal(rc, FENNEC_ECONFIG);
    assert_null(cfg);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "err.yaml:%u: ", line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("expected prefix \"%s\", got \"%s\"", prefix, err);
    va_list ap;
    va_start(ap, line);
    const char *frag;
    while ((frag = va_arg(ap, const char *)) != NULL) {
        if (!strstr(err, frag))
            fail_msg("message \"%s\" lacks \"%s\"", err, frag);
    }
    va_end(ap);
}

#define BASE "node:\n  id: ns1\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n"

static void test_errors_addresses(void **state)
{
    (void)state;
    expect_error("node:\n  id: ns1\nlisten:\n  dns:\n    - \"127.0.0.1:53\"\n"
                 "    - \"1.2.3.4:99999\"\n",
                 6, "listen.dns[1]", "\"1.2.3.4:99999\"", "port out of range", NULL);
    expect_error("node:\n  id: ns1\nlisten:\n  dns: [\"::1:53\"]\n", 4, "listen.dns[0]", "brackets",
                 NULL);
    expect_error("node:\n  id: ns1\nlisten:\n  dns: [\"localhost:53\"]\n", 4, "listen.dns[0]",
                 "not an IPv4 address", NULL);
    expect_error("node:\n  id: ns1\nlisten:\n  dns: []\n", 4, "listen.dns", "at least one", NULL);
    expect_error("node:\n  id: ns1\nlisten:\n  control: \"127.0.0.1:8053\"\n", 4, "listen.dns",
                 "missing", NULL);
    expect_error("node:\n  id: ns1\nlisten:\n  dns: \"127.0.0.1:53\"\n", 4, "listen.dns",
                 "expected a list", NULL);
    expect_error("node:\n  id: ns1\nlisten:\n  dns: [\"127.0.0.1:53\", \"127.0.0.1:53\"]\n", 4,
                 "listen.dns[1]", "listed twice", NULL);
    expect_error(BASE "  control: \"127.0.0.1\"\n", 5, "listen.control", "missing port", NULL);
    expect_error(BASE "  replication: [1]\n", 5, "listen.replication", "expected a value", NULL);
}

static void test_errors_structure(void **state)
{
    (void)state;
    expect_error(BASE "bogus: 1\n", 5, "unknown key \"bogus\"", NULL);
    expect_error(BASE "tcp:\n  idle_timout: 5s\n", 6, "tcp", "unknown key \"idle_timout\"", NULL);
    expect_error(BASE "node:\n  id: ns2\n", 5, "node", "duplicate key", "line 1", NULL);
    expect_error("node:\n  id: ns1\n  id: ns2\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n", 3,
                 "node.id", "duplicate key", NULL);
    expect_error(BASE "overload:\n  codel:\n    target: 5ms\n    target: 6ms\n", 8,
                 "overload.codel.target", "duplicate", NULL);
    expect_error("listen:\n  dns: [\"127.0.0.1:5300\"]\n", 1, "node", "missing", NULL);
    expect_error("node:\n  id: ns1\n", 1, "listen", "missing", NULL);
    expect_error("node: ns1\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n", 1, "node",
                 "expected a mapping", NULL);
    expect_error("- a\n- b\n", 1, "expected a mapping", NULL);
    expect_error("", 1, "empty", NULL);
    expect_error("# only a comment\n", 1, "empty", NULL);
    expect_error(BASE "zones: [\n", 6, "yaml:", NULL);
    expect_error(BASE "  \tcontrol: x\n", 5, "yaml:", NULL);
    expect_error(BASE "---\nnode: {id: x}\n", 5, "one YAML document", NULL);
    /* The health section is parsed on its own text; its lines are still the file's. */
    expect_error(BASE "health:\n  checks:\n    - {name: a, type: ftp, target: 192.0.2.1}\n", 7,
                 "health.checks[0].type", "expected http, https or tcp", NULL);
    expect_error(BASE "log_level: info\nhealth:\n  checks:\n"
                      "    - {name: a, type: http, target: 192.0.2.1}\n  pools:\n"
                      "    - {name: x.example.com, members: [{address: 192.0.2.1, check: b}]}\n"
                      "workers: 1\n",
                 10, "health.pools[0].members[0].check", "no such check", NULL);
    expect_error("x: &a [1]\n", 1, "unknown key", NULL);
    expect_error("node: &n {id: ns1}\nlisten:\n  dns: [\"127.0.0.1:5300\"]\ncluster: *n\n", 4,
                 "cluster", "aliases", NULL);
    expect_error(BASE "? [a]\n: 1\n", 5, "keys must be", NULL);
    expect_error("node:\n  id: \"ns\\0x\"\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n", 2, "node.id",
                 "NUL", NULL);
}

static void test_errors_node(void **state)
{
    (void)state;
    expect_error("node:\n  id: \"\"\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n", 2, "node.id", NULL);
    expect_error("node:\n  id:\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n", 2, "node.id",
                 "missing value", NULL);
    expect_error("node:\n  id: \"ns 1\"\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n", 2, "node.id",
                 "letters, digits", NULL);
    expect_error("node:\n  role: primary\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n", 2, "node.id",
                 "missing", NULL);
    expect_error("node:\n  id: ns1\n  role: master\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n", 3,
                 "node.role", "\"master\"", "primary or secondary", NULL);
    expect_error("node:\n  id: ns1\n  role: secondary\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n", 2,
                 "cluster.primary", "missing", NULL);
    expect_error(BASE "cluster:\n  primary: \"127.0.0.1:5380\"\n", 6, "cluster.primary",
                 "set node.role: secondary", NULL);
    expect_error("node:\n  id: ns1\n  role: secondary\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n"
                 "  replication: \"127.0.0.1:5380\"\ncluster:\n  primary: \"127.0.0.1:5381\"\n",
                 6, "listen.replication", "only a primary", NULL);
    expect_error("node:\n  id: ns1\n  role: secondary\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n"
                 "cluster:\n  primary: \"127.0.0.1:5381\"\nzones:\n  - {name: a.b, file: f}\n",
                 9, "zones", "from the primary", NULL);
}

static void test_errors_zones(void **state)
{
    (void)state;
    expect_error(BASE "zones:\n  - name: example.com\n    file: a\n  - name: EXAMPLE.com.\n"
                      "    file: b\n",
                 8, "zones[1].name", "twice", NULL);
    expect_error(BASE "zones:\n  - name: exa mple.com\n    file: a\n", 6, "zones[0].name",
                 "invalid character", NULL);
    expect_error(BASE "zones:\n  - name: a..b\n    file: a\n", 6, "zones[0].name", "empty label",
                 NULL);
    expect_error(BASE "zones:\n  - name: \".\"\n    file: a\n", 6, "zones[0].name", "root", NULL);
    expect_error(BASE "zones:\n  - name: "
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com\n"
                      "    file: a\n",
                 6, "zones[0].name", "63", NULL);
    expect_error(BASE "zones:\n  - name: example.com\n", 6, "zones[0].file", "missing", NULL);
    expect_error(BASE "zones:\n  - file: x\n", 6, "zones[0].name", "missing", NULL);
    expect_error(BASE "zones:\n  - name: example.com\n    file: x\n    type: master\n", 8,
                 "zones[0]", "unknown key \"type\"", NULL);
    expect_error(BASE "zones:\n  example.com: x\n", 6, "zones", "expected a list", NULL);
    expect_error(BASE "zones:\n  - example.com\n", 6, "zones[0]", "expected a mapping", NULL);
}

/* nsid and identity: off by default; true is node.id; a string is said as it is. */
static void test_nsid_identity(void **state)
{
    (void)state;
    static const struct {
        const char *text, *nsid, *identity;
    } cases[] = {
        {"", NULL, NULL},
        {"nsid: true\nidentity: true\n", "ns1", "ns1"},
        {"nsid: \"true\"\nidentity: false\n", "true", NULL},
        {"nsid: anycast-fra-1\nidentity: \"node 1, Frankfurt\"\n", "anycast-fra-1",
         "node 1, Frankfurt"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char y[512], err[512];
        snprintf(y, sizeof(y), BASE "%s", cases[i].text);
        cfg_t *cfg = NULL;
        if (cfg_parse(y, strlen(y), "n.yaml", &cfg, err, sizeof(err)) != 0)
            fail_msg("case %zu: %s", i, err);
        if (cases[i].nsid)
            assert_string_equal(cfg->nsid, cases[i].nsid);
        else
            assert_null(cfg->nsid);
        if (cases[i].identity)
            assert_string_equal(cfg->identity, cases[i].identity);
        else
            assert_null(cfg->identity);
        cfg_free(cfg);
    }
    expect_error(BASE "nsid: \"\"\n", 5, "nsid", "1 to 255 bytes", NULL);
    expect_error(BASE "identity: [a]\n", 5, "identity", NULL);
    char y[600];
    snprintf(y, sizeof(y), BASE "identity: %0300d\n", 7);
    expect_error(y, 5, "identity", "1 to 255 bytes", NULL);
}

/* Every numeric setting at its bounds, on both sides: the last value inside is taken, the
 * first outside is refused with an error that names the setting. */
static void test_numeric_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *fmt; /* the YAML after BASE, with %s for the value */
        const char *path;
        const char *in[2], *out[2]; /* inside: lowest, highest; outside: below, above */
    } b[] = {
        {"workers: %s\n", "workers", {"1", "64"}, {"0", "65"}},
        {"overload:\n  codel: {target: %s, interval: 60s}\n",
         "overload.codel.target",
         {"1us", "10s"},
         {"999ns", "10000000001ns"}},
        {"overload:\n  codel: {target: 1us, interval: %s}\n",
         "overload.codel.interval",
         {"2us", "60s"},
         {NULL, "60000000001ns"}},
        {"overload:\n  codel: {backlog: %s}\n",
         "overload.codel.backlog",
         {"1", "1000000"},
         {"0", "1000001"}},
        {"overload:\n  cubic: {utilization_threshold: %s}\n",
         "overload.cubic.utilization_threshold",
         {"0.000001", "1"},
         {"0", "1.000001"}},
        {"overload:\n  cubic: {beta: %s}\n",
         "overload.cubic.beta",
         {"0.000001", "0.999999"},
         {"0", "1"}},
        {"overload:\n  cubic: {ema_alpha: %s}\n",
         "overload.cubic.ema_alpha",
         {"0.000001", "1"},
         {"0", "1.000001"}},
        {"overload:\n  udp_rcvbuf: %s\n",
         "overload.udp_rcvbuf",
         {"4096", "1GiB"},
         {"4095", "1073741825"}},
        {"overload:\n  udp_rcvbuf_congested: %s\n",
         "overload.udp_rcvbuf_congested",
         {"0", "1GiB"},
         {NULL, "1073741825"}},
        {"overload:\n  udp_coalesce: %s\n",
         "overload.udp_coalesce",
         {"0ns", "10ms"},
         {NULL, "10000001ns"}},
        {"tcp:\n  idle_timeout: %s\n",
         "tcp.idle_timeout",
         {"1ms", "1h"},
         {"999999ns", "3600000000001ns"}},
        {"tcp:\n  max_connections: %s\n",
         "tcp.max_connections",
         {"1", "1000000"},
         {"0", "1000001"}},
        {"tcp:\n  max_inflight: %s\n", "tcp.max_inflight", {"1", "65535"}, {"0", "65536"}},
        {"journal:\n  max_size: %s\n",
         "journal.max_size",
         {"1MiB", "1099511627776"},
         {"1048575", "1099511627777"}},
        {"journal:\n  keep: %s\n", "journal.keep", {"1", "100000000"}, {"0", "100000001"}},
        {"journal:\n  snapshot_every: %s\n",
         "journal.snapshot_every",
         {"1", "100000000"},
         {"0", "100000001"}},
        {"health:\n  checks:\n    - {name: a, type: tcp, target: 192.0.2.1, port: %s}\n",
         "health.checks[0].port",
         {"1", "65535"},
         {"0", "65536"}},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, expect_status: "
         "[%s]}\n",
         "health.checks[0].expect_status[0]",
         {"100", "599"},
         {"99", "600"}},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, timeout: 10ms, "
         "interval: %s}\n",
         "health.checks[0].interval",
         {"100ms", "1h"},
         {"99ms", "3600001ms"}},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, interval: 1h, "
         "timeout: %s}\n",
         "health.checks[0].timeout",
         {"10ms", "1h"},
         {"9ms", "3600001ms"}},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, rise: %s}\n",
         "health.checks[0].rise",
         {"1", "100"},
         {"0", "101"}},
        {"health:\n  checks:\n    - {name: a, type: http, target: 192.0.2.1, fall: %s}\n",
         "health.checks[0].fall",
         {"1", "100"},
         {"0", "101"}},
    };
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
        for (int k = 0; k < 2; k++) {
            char y[1024], val[64], err[512];
            snprintf(val, sizeof(val), "%s", b[i].in[k]);
            snprintf(y, sizeof(y), BASE "%s", "");
            size_t o = strlen(y);
            snprintf(y + o, sizeof(y) - o, b[i].fmt, val);
            cfg_t *cfg = NULL;
            if (cfg_parse(y, strlen(y), "b.yaml", &cfg, err, sizeof(err)) != 0)
                fail_msg("%s = %s (inside the bounds) refused: %s", b[i].path, val, err);
            cfg_free(cfg);
            if (!b[i].out[k])
                continue; /* no value beyond this bound (it is the type's own) */
            snprintf(y + o, sizeof(y) - o, b[i].fmt, b[i].out[k]);
            cfg = NULL;
            if (cfg_parse(y, strlen(y), "b.yaml", &cfg, err, sizeof(err)) == 0) {
                cfg_free(cfg);
                fail_msg("%s = %s (outside the bounds) accepted", b[i].path, b[i].out[k]);
            }
            if (!strstr(err, b[i].path))
                fail_msg("%s = %s refused without naming it: %s", b[i].path, b[i].out[k], err);
        }
    }
}

static void test_errors_values(void **state)
{
    (void)state;
    expect_error(BASE "workers: 0\n", 5, "workers", "out of range", NULL);
    expect_error(BASE "workers: 65\n", 5, "workers", "out of range", NULL);
    expect_error(BASE "workers: many\n", 5, "workers", "auto or a number", NULL);
    expect_error(BASE "workers: -1\n", 5, "workers", NULL);
    expect_error(BASE "cpu_affinity: [0, x]\n", 5, "cpu_affinity[1]", "whole number", NULL);
    expect_error(BASE "cpu_affinity: 3\n", 5, "cpu_affinity", "expected a list", NULL);
    expect_error(BASE "log_level: loud\n", 5, "log_level", "error, warn, info or debug", NULL);
    expect_error(BASE "tcp:\n  idle_timeout: 5\n", 6, "tcp.idle_timeout", "duration", NULL);
    expect_error(BASE "tcp:\n  idle_timeout: 5 s\n", 6, "tcp.idle_timeout", "duration", NULL);
    expect_error(BASE "tcp:\n  idle_timeout: 0ms\n", 6, "tcp.idle_timeout", "out of range", NULL);
    expect_error(BASE "tcp:\n  max_connections: \"100\"\n", 6, "tcp.max_connections",
                 "quoted string", NULL);
    expect_error(BASE "tcp:\n  max_connections: 1e3\n", 6, "tcp.max_connections", "whole number",
                 NULL);
    expect_error(BASE "tcp:\n  max_inflight: 70000\n", 6, "tcp.max_inflight", "out of range", NULL);
    expect_error(BASE "tcp:\n  max_inflight: 99999999999999999999999\n", 6, "tcp.max_inflight",
                 NULL);
    expect_error(BASE "tcp: 5s\n", 5, "tcp", "expected a mapping", NULL);
    expect_error(BASE "overload:\n  codel:\n    enabled: yes\n", 7, "overload.codel.enabled",
                 "true or false", NULL);
    expect_error(BASE "overload:\n  codel:\n    target: 200ms\n", 7, "overload.codel.target",
                 "shorter than interval", NULL);
    expect_error(BASE "overload:\n  codel:\n    interval: 1x\n", 7, "overload.codel.interval",
                 "\"1x\"", NULL);
    expect_error(BASE "overload:\n  codel:\n    backlog: 0\n", 7, "overload.codel.backlog",
                 "out of range", NULL);
    expect_error(BASE "overload:\n  cubic:\n    beta: 1.0\n", 7, "overload.cubic.beta",
                 "out of range", NULL);
    expect_error(BASE "overload:\n  cubic:\n    utilization_threshold: 0\n", 7,
                 "overload.cubic.utilization_threshold", "out of range", NULL);
    expect_error(BASE "overload:\n  cubic:\n    c: nan\n", 7, "overload.cubic.c",
                 "expected a number", NULL);
    expect_error(BASE "overload:\n  cubic:\n    c: 0x10\n", 7, "overload.cubic.c",
                 "expected a number", NULL);
    expect_error(BASE "overload:\n  cubic:\n    ema_alpha: \"0.3\"\n", 7,
                 "overload.cubic.ema_alpha", "quoted", NULL);
    expect_error(BASE "overload:\n  cubic:\n    min_rate: -5\n", 7, "overload.cubic.min_rate",
                 "out of range", NULL);
    expect_error(BASE "overload:\n  udp_rcvbuf: 4MB\n", 6, "overload.udp_rcvbuf", "size", NULL);
    expect_error(BASE "overload:\n  udp_rcvbuf: 2GiB\n", 6, "overload.udp_rcvbuf", "out of range",
                 NULL);
    expect_error(BASE "overload:\n  udp_rcvbuf: 99999999999999999GiB\n", 6, "overload.udp_rcvbuf",
                 NULL);
    expect_error(BASE "overload:\n  red: {}\n", 6, "overload", "unknown key \"red\"", NULL);
}

/* Parses BASE + "overload:\n" + BODY and returns the overload section (fails the test on
 * an error). */
static cfg_overload_t parse_overload_ok(const char *body)
{
    char y[512];
    snprintf(y, sizeof(y), BASE "overload:\n%s", body);
    cfg_t *cfg = NULL;
    char err[512];
    if (cfg_parse(y, strlen(y), "o.yaml", &cfg, err, sizeof(err)) != 0)
        fail_msg("rejected:\n%s\n%s", y, err);
    cfg_overload_t o = cfg->overload;
    cfg_free(cfg);
    return o;
}

/* overload.udp_coalesce (duration, 0 .. 10 ms) and overload.udp_rcvbuf_congested (size, 0
 * allowed: keep the large buffer). */
static void test_overload_udp_keys(void **state)
{
    (void)state;
    cfg_overload_t o = parse_overload_ok("  udp_coalesce: 0us\n");
    assert_int_equal(o.udp_coalesce_ns, 0);
    assert_int_equal(o.udp_rcvbuf_congested, 48u * 1024); /* the other keeps its default */
    assert_true(o.udp_gso);
    o = parse_overload_ok("  udp_coalesce: 0ns\n");
    assert_int_equal(o.udp_coalesce_ns, 0);
    o = parse_overload_ok("  udp_coalesce: 1ns\n");
    assert_int_equal(o.udp_coalesce_ns, 1);
    o = parse_overload_ok("  udp_coalesce: 50us\n");
    assert_int_equal(o.udp_coalesce_ns, 50000ull);
    o = parse_overload_ok("  udp_coalesce: 1500us\n");
    assert_int_equal(o.udp_coalesce_ns, 1500000ull);
    o = parse_overload_ok("  udp_coalesce: 10ms\n");
    assert_int_equal(o.udp_coalesce_ns, 10000000ull);
    o = parse_overload_ok("  udp_coalesce: 10000000ns\n");
    assert_int_equal(o.udp_coalesce_ns, 10000000ull);
    assert_int_equal(o.udp_rcvbuf, 8u * 1024 * 1024);

    o = parse_overload_ok("  udp_rcvbuf_congested: 0\n");
    assert_int_equal(o.udp_rcvbuf_congested, 0);
    assert_int_equal(o.udp_coalesce_ns, 400000ull);
    o = parse_overload_ok("  udp_gso: false\n");
    assert_false(o.udp_gso);
    assert_int_equal(o.udp_coalesce_ns, 400000ull);
    o = parse_overload_ok("  udp_gso: true\n");
    assert_true(o.udp_gso);
    o = parse_overload_ok("  udp_rcvbuf_congested: 4096\n");
    assert_int_equal(o.udp_rcvbuf_congested, 4096);
    o = parse_overload_ok("  udp_rcvbuf_congested: 256KiB\n");
    assert_int_equal(o.udp_rcvbuf_congested, 256u * 1024);
    o = parse_overload_ok("  udp_rcvbuf_congested: 1MiB\n");
    assert_int_equal(o.udp_rcvbuf_congested, 1024u * 1024);
    o = parse_overload_ok("  udp_rcvbuf_congested: 1GiB\n");
    assert_int_equal(o.udp_rcvbuf_congested, 1024u * 1024 * 1024);
    /* Both at once, in flow style, next to the large buffer. */
    o = parse_overload_ok("  {udp_rcvbuf: 16MiB, udp_rcvbuf_congested: 128KiB, udp_coalesce: "
                          "2ms}\n");
    assert_int_equal(o.udp_rcvbuf, 16u * 1024 * 1024);
    assert_int_equal(o.udp_rcvbuf_congested, 128u * 1024);
    assert_int_equal(o.udp_coalesce_ns, 2000000ull);

    /* Errors name the line and the key. */
    expect_error(BASE "overload:\n  udp_gso: maybe\n", 6, "overload.udp_gso", NULL);
    expect_error(BASE "overload:\n  udp_gso: [1]\n", 6, "overload.udp_gso", NULL);
    expect_error(BASE "overload:\n  udp_coalesce: 11ms\n", 6, "overload.udp_coalesce", "\"11ms\"",
                 "out of range", NULL);
    expect_error(BASE "overload:\n  udp_coalesce: 10000001ns\n", 6, "overload.udp_coalesce",
                 "out of range", NULL);
    expect_error(BASE "overload:\n  udp_coalesce: 1s\n", 6, "overload.udp_coalesce", "out of range",
                 NULL);
    expect_error(BASE "overload:\n  udp_coalesce: 200\n", 6, "overload.udp_coalesce", "duration",
                 NULL);
    expect_error(BASE "overload:\n  udp_coalesce: -1us\n", 6, "overload.udp_coalesce", "duration",
                 NULL);
    expect_error(BASE "overload:\n  udp_coalesce: 0.2ms\n", 6, "overload.udp_coalesce", "duration",
                 NULL);
    expect_error(BASE "overload:\n  udp_coalesce: 99999999999999999999h\n", 6,
                 "overload.udp_coalesce", NULL);
    expect_error(BASE "overload:\n  udp_coalesce:\n", 6, "overload.udp_coalesce", "missing value",
                 NULL);
    expect_error(BASE "overload:\n  udp_coalesce: [1ms]\n", 6, "overload.udp_coalesce",
                 "expected a value", NULL);
    expect_error(BASE "overload:\n  udp_rcvbuf_congested: 2GiB\n", 6,
                 "overload.udp_rcvbuf_congested", "\"2GiB\"", "out of range", NULL);
    expect_error(BASE "overload:\n  udp_rcvbuf_congested: 1073741825\n", 6,
                 "overload.udp_rcvbuf_congested", "out of range", NULL);
    expect_error(BASE "overload:\n  udp_rcvbuf_congested: 32KB\n", 6,
                 "overload.udp_rcvbuf_congested", "size", NULL);
    expect_error(BASE "overload:\n  udp_rcvbuf_congested: -1\n", 6, "overload.udp_rcvbuf_congested",
                 "size", NULL);
    expect_error(BASE "overload:\n  udp_rcvbuf_congested: 99999999999999999GiB\n", 6,
                 "overload.udp_rcvbuf_congested", NULL);
    expect_error(BASE "overload:\n  udp_rcvbuf_congested: {a: 1}\n", 6,
                 "overload.udp_rcvbuf_congested", "expected a value", NULL);
    /* Later lines report their own line. */
    expect_error(BASE "overload:\n  udp_rcvbuf: 8MiB\n  udp_coalesce: 100us\n"
                      "  udp_rcvbuf_congested: 3GiB\n",
                 8, "overload.udp_rcvbuf_congested", "out of range", NULL);
    expect_error(BASE "overload:\n  udp_coalesce: 1ms\n  udp_coalesce: 2ms\n", 7,
                 "overload.udp_coalesce", "duplicate", NULL);
    expect_error(BASE "overload:\n  udp_coalesce_ns: 1ms\n", 6, "overload",
                 "unknown key \"udp_coalesce_ns\"", NULL);
}

static void test_units(void **state)
{
    (void)state;
    static const char y[] = BASE "overload:\n  codel: {target: 500us, interval: 2s}\n"
                                 "  udp_rcvbuf: 4194304\n"
                                 "tcp:\n  idle_timeout: 1m\n";
    cfg_t *cfg = NULL;
    char err[512];
    int rc = cfg_parse(y, strlen(y), "u.yaml", &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(cfg->overload.codel_target_ns, 500000ull);
    assert_int_equal(cfg->overload.codel_interval_ns, 2000000000ull);
    assert_int_equal(cfg->overload.udp_rcvbuf, 4194304);
    assert_int_equal(cfg->tcp.idle_timeout_ms, 60000);
    cfg_free(cfg);
}

/* cfg_load(): relative paths resolve against the config file's folder. */
static void test_load_relative(void **state)
{
    (void)state;
    char dir[] = "/tmp/fennec-test-cfg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[256], file[512];
    snprintf(sub, sizeof(sub), "%s/etc", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(file, sizeof(file), "%s/fennec.yaml", sub);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("node: {id: ns7}\nlisten: {dns: [\"127.0.0.1:5300\"]}\n"
          "cluster: {key_file: cluster.key}\n"
          "zones:\n  - {name: example.com, file: ./zones/example.com.zone}\n"
          "  - {name: example.net, file: /abs/example.net.zone}\n",
          f);
    fclose(f);

    cfg_t *cfg = NULL;
    char err[512], want[PATH_MAX + 64];
    int rc = cfg_load(file, &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(cfg->path, file);
    snprintf(want, sizeof(want), "%s/zones/example.com.zone", sub);
    assert_string_equal(cfg->zones[0].file, want);
    assert_string_equal(cfg->zones[1].file, "/abs/example.net.zone");
    snprintf(want, sizeof(want), "%s/cluster.key", sub);
    assert_string_equal(cfg->key_file, want);
    snprintf(want, sizeof(want), "%s/data/ns7", sub);
    assert_string_equal(cfg->data_dir, want);
    cfg_free(cfg);

    /* Errors from a file name the file. */
    f = fopen(file, "w");
    assert_non_null(f);
    fputs("node: {id: ns7}\nlisten: {dns: [\"127.0.0.1:5300\"]}\nworkers: 100\n", f);
    fclose(f);
    cfg = NULL;
    assert_int_equal(cfg_load(file, &cfg, err, sizeof(err)), FENNEC_ECONFIG);
    assert_null(cfg);
    snprintf(want, sizeof(want), "%s:3: workers:", file);
    assert_true(strncmp(err, want, strlen(want)) == 0);

    unlink(file);
    assert_int_equal(cfg_load(file, &cfg, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, file));
    assert_int_equal(cfg_load(sub, &cfg, err, sizeof(err)), FENNEC_ECONFIG);
    assert_non_null(strstr(err, "not a regular file"));
    rmdir(sub);
    rmdir(dir);
}

/* The example configuration shipped in deploy/ must load. */
/* What SIGHUP can apply and what waits for a restart. */
static void test_same_runtime(void **state)
{
    (void)state;
    static const char base[] = "node:\n  id: ns1\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n";
    static const char zones[] = "node:\n  id: ns1\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n"
                                "zones: [{name: example.com, file: x.zone}]\nlog_level: debug\n";
    static const char moved[] = "node:\n  id: ns1\nlisten:\n  dns: [\"127.0.0.1:5301\"]\n";
    static const char other[] = "node:\n  id: ns2\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n";
    static const char journal[] = "node:\n  id: ns1\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n"
                                  "journal: {keep: 5}\n";
    cfg_t *a = NULL, *b = NULL;
    char err[256];
    assert_int_equal(cfg_parse(base, strlen(base), "a", &a, err, sizeof(err)), 0);
    const char *const cases[] = {zones, moved, other, journal};
    const bool same[] = {true, false, false, false};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(cfg_parse(cases[i], strlen(cases[i]), "b", &b, err, sizeof(err)), 0);
        if (cfg_same_runtime(a, b) != same[i])
            fail_msg("case %zu: cfg_same_runtime() says %d", i, !same[i]);
        cfg_free(b);
    }
    cfg_free(a);
}

/* A health section is kept, its text and where it starts in the file. */
static void test_health_section(void **state)
{
    (void)state;
    static const char y[] = "node:\n  id: ns1\nlisten:\n  dns: [\"127.0.0.1:5300\"]\n"
                            "health:\n  checks:\n"
                            "    - {name: web1, type: https, target: 192.0.2.10, ca_file: ca.pem}\n"
                            "  pools:\n"
                            "    - {name: www.example.com, members: [{address: 192.0.2.10, check: "
                            "web1}]}\n"
                            "workers: 1\n";
    cfg_t *cfg = NULL;
    char err[512];
    assert_int_equal(cfg_parse(y, strlen(y), "h.yaml", &cfg, err, sizeof(err)), 0);
    assert_non_null(cfg->health);
    assert_int_equal(cfg->health->check_count, 1);
    assert_int_equal(cfg->health->pool_count, 1);
    assert_int_equal(cfg->health->first_line, 5);
    assert_non_null(strstr(cfg->health->yaml, "health:"));
    assert_null(strstr(cfg->health->yaml, "workers"));
    assert_int_equal(cfg->health->checks[0].kind, HEALTH_HTTPS);
    assert_non_null(strstr(cfg->health->checks[0].ca_file, "ca.pem"));
    assert_int_equal(cfg->workers, 1);
    cfg_free(cfg);
}

static void test_example_config(void **state)
{
    (void)state;
    const char *src = getenv("FENNEC_SOURCE_DIR");
    if (!src)
        fail_msg("FENNEC_SOURCE_DIR is not set (run through ctest)");
    char path[PATH_MAX], err[512];
    snprintf(path, sizeof(path), "%s/deploy/fennec.example.yaml", src);
    cfg_t *cfg = NULL;
    int rc = cfg_load(path, &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_true(cfg->zone_count >= 1);
    assert_string_equal(cfg->zones[0].name, "example.com");
    assert_non_null(strstr(cfg->zones[0].file, "/deploy/zones/example.com.zone"));
    cfg_free(cfg);
}

/* Hostile input: truncations and byte flips of a valid file never crash and always either
 * succeed or produce a FILE:LINE message. */
static void test_mangled(void **state)
{
    (void)state;
    size_t len = strlen(full_yaml);
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    for (size_t cut = 0; cut < len; cut += 3) {
        cfg_t *cfg = NULL;
        char err[512];
        int rc = cfg_parse(full_yaml, cut, "m.yaml", &cfg, err, sizeof(err));
        if (rc == 0)
            cfg_free(cfg);
        else
            assert_true(strncmp(err, "m.yaml:", 7) == 0);
    }
    static const char flips[] = {'\0', ':', '[', '{', '-', '\n', '"', '&', '*', '\xff', ' '};
    for (size_t pos = 0; pos < len; pos += 2) {
        for (size_t k = 0; k < sizeof(flips); k++) {
            memcpy(buf, full_yaml, len + 1);
            buf[pos] = flips[k];
            cfg_t *cfg = NULL;
            char err[512];
            int rc = cfg_parse(buf, len, "m.yaml", &cfg, err, sizeof(err));
            if (rc == 0)
                cfg_free(cfg);
            else
                assert_true(strncmp(err, "m.yaml:", 7) == 0);
        }
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_secondary),
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_errors_addresses),
        cmocka_unit_test(test_errors_structure),
        cmocka_unit_test(test_errors_node),
        cmocka_unit_test(test_errors_zones),
        cmocka_unit_test(test_errors_values),
        cmocka_unit_test(test_nsid_identity),
        cmocka_unit_test(test_numeric_bounds),
        cmocka_unit_test(test_overload_udp_keys),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_load_relative),
        cmocka_unit_test(test_health_section),
        cmocka_unit_test(test_same_runtime),
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_mangled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
