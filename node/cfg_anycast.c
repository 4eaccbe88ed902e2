/*
 * The config's `anycast:` section (docs/config.md, docs/anycast.md). fennecd reads it for the
 * drain rule (min_announced); fennec-supervisor reads the same file for everything else, so
 * one parser checks it for both, with FILE:LINE errors, when either program starts.
 */
#include "cfg_int.h"

#include "fennec/common.h"
#include "fennec/wire.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_MAX_SERVICE  16
#define BIRD_SYMBOL_MAX  64  /* BIRD's SYM_MAX_LEN */
#define BIRD_SOCKET_MAX  107 /* sun_path less its NUL */
#define MS               1000000ull
#define DEFAULT_PROTOCOL "fennec_service"

/* A BIRD symbol as a protocol name: a letter or '_', then letters, digits and '_'. Names
 * that need BIRD's quotes are refused: the name goes into a control command as it is. */
static bool bird_symbol_valid(const char *s)
{
    size_t len = strlen(s);
    /* a trailing '*' makes it a pattern: "fennec_service*" names fennec_service (IPv4) and
     * fennec_service6 (IPv6) together (docs/anycast.md) */
    if (len > 1 && s[len - 1] == '*')
        len--;
    if (len == 0 || len > BIRD_SYMBOL_MAX || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* The DNS port that serves address SS (port 0 in it): the listen.dns entry with the same
 * address, else a wildcard of its family ("0.0.0.0:P", "[::]:P"; "*:P" serves both). */
static bool service_port(const cfg_t *cfg, const struct sockaddr_storage *ss, uint16_t *port)
{
    bool found_wild = false;
    uint16_t wild = 0;
    for (size_t i = 0; i < cfg->dns_count; i++) {
        const struct sockaddr_storage *d = &cfg->dns[i].ss;
        if (d->ss_family == AF_INET && ss->ss_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)d, *b = (const void *)ss;
            if (a->sin_addr.s_addr == b->sin_addr.s_addr) {
                *port = ntohs(a->sin_port);
                return true;
            }
            if (a->sin_addr.s_addr == htonl(INADDR_ANY) && !found_wild) {
                found_wild = true;
                wild = ntohs(a->sin_port);
            }
        } else if (d->ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const void *)d;
            bool any = IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
            if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *b = (const void *)ss;
                if (memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(b->sin6_addr)) == 0) {
                    *port = ntohs(a->sin6_port);
                    return true;
                }
            }
            /* "*:P" is the IPv6 wildcard with IPV6_V6ONLY off: it serves IPv4 too. */
            if (any && !found_wild) {
                found_wild = true;
                wild = ntohs(a->sin6_port);
            }
        }
    }
    *port = wild;
    return found_wild;
}

/* The same address, ports aside. */
static bool same_address(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
    if (x->ss_family != y->ss_family)
        return false;
    if (x->ss_family == AF_INET)
        return ((const struct sockaddr_in *)x)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)y)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
                  &((const struct sockaddr_in6 *)y)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

static int parse_service(pctx_t *p, yaml_node_t *n, cfg_t *cfg, cfg_anycast_t *a)
{
    size_t count = 0;
    int rc = cy_want_seq(p, n, "anycast.service", CFG_MAX_SERVICE, &count);
    if (rc)
        return rc;
    if (count == 0)
        return cy_fail(p, n, "anycast.service", "at least one address is needed");
    a->service = calloc(count, sizeof(*a->service));
    if (!a->service)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        char sub[CFG_PATH_LEN], q[96];
        cy_path_index(sub, "anycast.service", i);
        yaml_node_t *item = NULL;
        const char *v = NULL;
        if ((rc = cy_node_get(p, n->data.sequence.items.start[i], sub, n, &item)) ||
            (rc = cy_want_scalar(p, item, sub, &v)))
            return rc;
        cfg_service_t *s = &a->service[i];
        struct sockaddr_in *s4 = (struct sockaddr_in *)&s->ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&s->ss;
        if (strlen(v) >= sizeof(s->text))
            return cy_fail(p, item, sub, "%s: not an IPv4 or IPv6 address",
                           cy_quote(v, q, sizeof(q)));
        if (inet_pton(AF_INET, v, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s->len = sizeof(*s4);
            if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
                return cy_fail(p, item, sub, "%s: a service address cannot be the wildcard", v);
        } else if (inet_pton(AF_INET6, v, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s->len = sizeof(*s6);
            if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
                return cy_fail(p, item, sub, "%s: a service address cannot be the wildcard", v);
        } else {
            return cy_fail(p, item, sub,
                           "%s: not an IPv4 or IPv6 address (no port: the DNS port is the one "
                           "of the listen.dns entry that serves it)",
                           cy_quote(v, q, sizeof(q)));
        }
        snprintf(s->text, sizeof(s->text), "%s", v);
        a->service_count = i + 1;
        for (size_t j = 0; j < i; j++)
            if (same_address(&a->service[j].ss, &s->ss))
                return cy_fail(p, item, sub, "%s: listed twice (also anycast.service[%zu])",
                               cy_quote(v, q, sizeof(q)), j);
        uint16_t port = 0;
        if (!service_port(cfg, &s->ss, &port))
            return cy_fail(p, item, sub,
                           "%s: no listen.dns entry serves this address: add \"%s%s%s:53\" "
                           "(or a wildcard) to listen.dns",
                           cy_quote(v, q, sizeof(q)), s->ss.ss_family == AF_INET6 ? "[" : "", v,
                           s->ss.ss_family == AF_INET6 ? "]" : "");
        if (s->ss.ss_family == AF_INET)
            s4->sin_port = htons(port);
        else
            s6->sin6_port = htons(port);
    }
    return 0;
}

static int parse_check(pctx_t *p, yaml_node_t *n, cfg_anycast_t *a)
{
    static const char *const keys[] = {"interval", "timeout", "rise", "fall", "qname", NULL};
    yaml_node_t *v[5];
    uint64_t x = 0;
    int rc = cy_map_fields(p, n, "anycast.check", keys, v);
    if (rc)
        return rc;
    if (v[0] && (rc = cy_get_duration(p, v[0], "anycast.check.interval", 10 * MS, 60000 * MS,
                                      &a->check_interval_ns)))
        return rc;
    if (v[1] && (rc = cy_get_duration(p, v[1], "anycast.check.timeout", MS, 60000 * MS,
                                      &a->check_timeout_ns)))
        return rc;
    if (v[2]) {
        if ((rc = cy_get_uint(p, v[2], "anycast.check.rise", 1, 100, &x)))
            return rc;
        a->check_rise = (uint32_t)x;
    }
    if (v[3]) {
        if ((rc = cy_get_uint(p, v[3], "anycast.check.fall", 1, 100, &x)))
            return rc;
        a->check_fall = (uint32_t)x;
    }
    if (v[4]) {
        const char *q = NULL;
        char quoted[96];
        uint8_t wire[WIRE_NAME_MAX];
        if ((rc = cy_want_scalar(p, v[4], "anycast.check.qname", &q)))
            return rc;
        int wl = wire_name_from_text(q, wire);
        if (wl < 0)
            return cy_fail(p, v[4], "anycast.check.qname", "%s: not a domain name",
                           cy_quote(q, quoted, sizeof(quoted)));
        if (!(a->check_qname = strdup(q)))
            return -ENOMEM;
    }
    if (a->check_timeout_ns > a->check_interval_ns)
        return cy_fail(p, v[1] ? v[1] : n, "anycast.check.timeout",
                       "the timeout (%llu ms) must not be longer than the interval (%llu ms)",
                       (unsigned long long)(a->check_timeout_ns / MS),
                       (unsigned long long)(a->check_interval_ns / MS));
    return 0;
}

static int parse_restart(pctx_t *p, yaml_node_t *n, cfg_anycast_t *a)
{
    static const char *const keys[] = {"backoff", "backoff_max", "intensity", "period", NULL};
    yaml_node_t *v[4];
    uint64_t x = 0;
    int rc = cy_map_fields(p, n, "anycast.restart", keys, v);
    if (rc)
        return rc;
    if (v[0] && (rc = cy_get_duration(p, v[0], "anycast.restart.backoff", MS, 3600000 * MS,
                                      &a->restart_backoff_ns)))
        return rc;
    if (v[1] && (rc = cy_get_duration(p, v[1], "anycast.restart.backoff_max", MS, 3600000 * MS,
                                      &a->restart_backoff_max_ns)))
        return rc;
    if (v[2]) {
        if ((rc = cy_get_uint(p, v[2], "anycast.restart.intensity", 0, 1000, &x)))
            return rc;
        a->restart_intensity = (uint32_t)x;
    }
    if (v[3] && (rc = cy_get_duration(p, v[3], "anycast.restart.period", 1000 * MS, 86400000 * MS,
                                      &a->restart_period_ns)))
        return rc;
    if (a->restart_backoff_ns > a->restart_backoff_max_ns)
        return cy_fail(p, v[0] ? v[0] : n, "anycast.restart.backoff",
                       "backoff (%llu ms) must not be longer than backoff_max (%llu ms)",
                       (unsigned long long)(a->restart_backoff_ns / MS),
                       (unsigned long long)(a->restart_backoff_max_ns / MS));
    return 0;
}

void cy_anycast_defaults(cfg_anycast_t *a)
{
    a->min_announced = 1;
    a->check_interval_ns = 100 * MS;
    a->check_timeout_ns = 50 * MS;
    a->check_rise = 2;
    a->check_fall = 2;
    a->restart_backoff_ns = 100 * MS;
    a->restart_backoff_max_ns = 5000 * MS;
    a->restart_intensity = 5;
    a->restart_period_ns = 60000 * MS;
}

int cy_parse_anycast(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    static const char *const keys[] = {
        "service", "bird_socket", "bird_protocol", "min_announced", "check", "restart", NULL};
    yaml_node_t *v[6];
    cfg_anycast_t *a = &cfg->anycast;
    char q[96];
    uint64_t x = 0;
    int rc = cy_map_fields(p, n, "anycast", keys, v);
    if (rc)
        return rc;
    a->set = true;
    if (!v[0])
        return cy_fail(p, n, "anycast.service",
                       "missing (the addresses announced, e.g. [\"192.0.2.53\"])");
    if ((rc = parse_service(p, v[0], cfg, a)))
        return rc;
    if (!v[1])
        return cy_fail(p, n, "anycast.bird_socket",
                       "missing (BIRD's control socket, as given to bird -s)");
    if ((rc = cy_get_path(p, v[1], "anycast.bird_socket", &a->bird_socket)))
        return rc;
    if (strlen(a->bird_socket) > BIRD_SOCKET_MAX)
        return cy_fail(p, v[1], "anycast.bird_socket",
                       "%s: longer than %d bytes, the limit of a unix socket path",
                       cy_quote(a->bird_socket, q, sizeof(q)), BIRD_SOCKET_MAX);
    const char *proto = DEFAULT_PROTOCOL;
    if (v[2] && (rc = cy_want_scalar(p, v[2], "anycast.bird_protocol", &proto)))
        return rc;
    if (!bird_symbol_valid(proto))
        return cy_fail(p, v[2], "anycast.bird_protocol",
                       "%s: a BIRD protocol name: a letter or '_', then letters, digits or '_' "
                       "(at most %d), and a '*' at the end for every protocol it begins",
                       cy_quote(proto, q, sizeof(q)), BIRD_SYMBOL_MAX);
    if (!(a->bird_protocol = strdup(proto)))
        return -ENOMEM;
    if (v[3]) {
        if ((rc = cy_get_uint(p, v[3], "anycast.min_announced", 0, 10000, &x)))
            return rc;
        a->min_announced = (uint32_t)x;
    }
    if (v[4] && (rc = parse_check(p, v[4], a)))
        return rc;
    if (v[5] && (rc = parse_restart(p, v[5], a)))
        return rc;
    return 0;
}

void cy_anycast_clear(cfg_anycast_t *a)
{
    free(a->service);
    free(a->bird_socket);
    free(a->bird_protocol);
    free(a->check_qname);
    memset(a, 0, sizeof(*a));
}
