/*
 * The `health:` section of the configuration (docs/config.md, "health"): checks and pools,
 * parsed from its own text so that the same function reads it from the primary's file and
 * from a health-config entry of the replication log on every node.
 */
#include "cfg_int.h"

#include "fennec/common.h"
#include "fennec/health.h"
#include "fennec/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MS (1000000ull)

static int get_check_addr(pctx_t *p, yaml_node_t *n, const char *path, health_check_def_t *c)
{
    const char *v = NULL;
    char q[96];
    int rc = cy_want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&c->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&c->addr;
    memset(&c->addr, 0, sizeof(c->addr));
    if (inet_pton(AF_INET, v, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        c->addr_len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, v, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        c->addr_len = sizeof(*v6);
    } else {
        return cy_fail(p, n, path, "%s: expected an IPv4 or IPv6 address",
                       cy_quote(v, q, sizeof(q)));
    }
    snprintf(c->target, sizeof(c->target), "%s", v);
    return 0;
}

static int parse_kind(pctx_t *p, yaml_node_t *n, const char *path, health_kind_t *out)
{
    const char *v = NULL;
    char q[96];
    int rc = cy_want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    if (strcmp(v, "http") == 0)
        *out = HEALTH_HTTP;
    else if (strcmp(v, "https") == 0)
        *out = HEALTH_HTTPS;
    else if (strcmp(v, "tcp") == 0)
        *out = HEALTH_TCP;
    else
        return cy_fail(p, n, path, "%s: expected http, https or tcp", cy_quote(v, q, sizeof(q)));
    return 0;
}

enum {
    C_NAME,
    C_TYPE,
    C_TARGET,
    C_PORT,
    C_PATH,
    C_HOST,
    C_STATUS,
    C_BODY,
    C_INTERVAL,
    C_TIMEOUT,
    C_RISE,
    C_FALL,
    C_TLS,
    C_CA,
    C_REUSE,
    C_COUNT
};

static int parse_check(pctx_t *p, yaml_node_t *item, const char *sub, health_config_t *hc, size_t i)
{
    static const char *const keys[] = {
        "name",          "type",        "target",           "port",    "path", "host",
        "expect_status", "expect_body", "interval",         "timeout", "rise", "fall",
        "tls_verify",    "ca_file",     "reuse_connection", NULL};
    yaml_node_t *v[C_COUNT];
    char key[CFG_PATH_LEN], q[96];
    int rc = cy_map_fields(p, item, sub, keys, v);
    if (rc)
        return rc;
    health_check_def_t *c = &hc->checks[i];
    uint64_t x;

    cy_path_key(key, sub, "name");
    if (!v[C_NAME])
        return cy_fail(p, item, key, "missing (1 to 63 letters, digits, '-', '_' or '.')");
    const char *name = NULL;
    if ((rc = cy_want_scalar(p, v[C_NAME], key, &name)))
        return rc;
    if (!cy_id_valid(name) || strlen(name) >= HEALTH_NAME_MAX)
        return cy_fail(p, v[C_NAME], key, "%s: 1 to 63 letters, digits, '-', '_' or '.'",
                       cy_quote(name, q, sizeof(q)));
    for (size_t j = 0; j < i; j++)
        if (strcmp(hc->checks[j].name, name) == 0)
            return cy_fail(p, v[C_NAME], key, "%s: check defined twice (also checks[%zu])",
                           cy_quote(name, q, sizeof(q)), j);
    snprintf(c->name, sizeof(c->name), "%s", name);

    cy_path_key(key, sub, "type");
    if (!v[C_TYPE])
        return cy_fail(p, item, key, "missing (http, https or tcp)");
    if ((rc = parse_kind(p, v[C_TYPE], key, &c->kind)))
        return rc;
    bool web = c->kind != HEALTH_TCP;

    cy_path_key(key, sub, "target");
    if (!v[C_TARGET])
        return cy_fail(p, item, key, "missing (the address probed)");
    if ((rc = get_check_addr(p, v[C_TARGET], key, c)))
        return rc;

    cy_path_key(key, sub, "port");
    c->port = c->kind == HEALTH_HTTPS ? 443 : 80;
    if (!v[C_PORT] && !web)
        return cy_fail(p, item, key, "missing (a tcp check needs the port it connects to)");
    if (v[C_PORT]) {
        if ((rc = cy_get_uint(p, v[C_PORT], key, 1, 65535, &x)))
            return rc;
        c->port = (uint16_t)x;
    }
    if (c->addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&c->addr)->sin_port = htons(c->port);
    else
        ((struct sockaddr_in6 *)&c->addr)->sin6_port = htons(c->port);

    /* What only a web check has. */
    static const int web_only[] = {C_PATH, C_HOST, C_STATUS, C_BODY, C_TLS, C_CA, C_REUSE};
    for (size_t k = 0; k < sizeof(web_only) / sizeof(web_only[0]); k++) {
        int f = web_only[k];
        if (v[f] && (!web || ((f == C_TLS || f == C_CA) && c->kind != HEALTH_HTTPS))) {
            cy_path_key(key, sub, keys[f]);
            return cy_fail(p, v[f], key, "only for %s checks",
                           f == C_TLS || f == C_CA ? "https" : "http and https");
        }
    }
    if (web) {
        cy_path_key(key, sub, "path");
        if (v[C_PATH]) {
            if ((rc = cy_get_str(p, v[C_PATH], key, &c->path)))
                return rc;
            if (c->path[0] != '/' || strlen(c->path) > 1024 || strpbrk(c->path, " \r\n\t"))
                return cy_fail(p, v[C_PATH], key,
                               "%s: a URL path starting with '/', without spaces, at most 1024 "
                               "characters",
                               cy_quote(c->path, q, sizeof(q)));
        } else if (!(c->path = strdup("/"))) {
            return -ENOMEM;
        }
        cy_path_key(key, sub, "host");
        if (v[C_HOST]) {
            if ((rc = cy_get_str(p, v[C_HOST], key, &c->host)))
                return rc;
            uint8_t wire[WIRE_NAME_MAX];
            if (!c->host[0] || strpbrk(c->host, " /:\r\n\t") ||
                wire_name_from_text(c->host, wire) < 0)
                return cy_fail(p, v[C_HOST], key, "%s: expected a host name",
                               cy_quote(c->host, q, sizeof(q)));
        } else if (!(c->host = strdup(c->target))) {
            return -ENOMEM;
        }
        cy_path_key(key, sub, "expect_status");
        c->expect_status[0] = 200;
        c->expect_status_count = 1;
        if (v[C_STATUS]) {
            size_t count = 0;
            if ((rc = cy_want_seq(p, v[C_STATUS], key, HEALTH_MAX_STATUS, &count)))
                return rc;
            if (count == 0)
                return cy_fail(p, v[C_STATUS], key, "an empty list (at least one status)");
            for (size_t k = 0; k < count; k++) {
                char ik[CFG_PATH_LEN];
                yaml_node_t *s = NULL;
                cy_path_index(ik, key, k);
                if ((rc = cy_node_get(p, v[C_STATUS]->data.sequence.items.start[k], ik, v[C_STATUS],
                                      &s)) ||
                    (rc = cy_get_uint(p, s, ik, 100, 599, &x)))
                    return rc;
                c->expect_status[k] = (uint16_t)x;
            }
            c->expect_status_count = count;
        }
        cy_path_key(key, sub, "expect_body");
        if (v[C_BODY]) {
            if ((rc = cy_get_str(p, v[C_BODY], key, &c->expect_body)))
                return rc;
            if (!c->expect_body[0] || strlen(c->expect_body) > 1024)
                return cy_fail(p, v[C_BODY], key, "1 to 1024 characters");
        }
        c->tls_verify = true;
        cy_path_key(key, sub, "tls_verify");
        if (v[C_TLS] && (rc = cy_get_bool(p, v[C_TLS], key, &c->tls_verify)))
            return rc;
        cy_path_key(key, sub, "ca_file");
        if (v[C_CA] && (rc = cy_get_path(p, v[C_CA], key, &c->ca_file)))
            return rc;
        cy_path_key(key, sub, "reuse_connection");
        if (v[C_REUSE] && (rc = cy_get_bool(p, v[C_REUSE], key, &c->reuse_connection)))
            return rc;
    }

    cy_path_key(key, sub, "interval");
    c->interval_ns = 1000 * MS;
    if (v[C_INTERVAL] &&
        (rc = cy_get_duration(p, v[C_INTERVAL], key, 100 * MS, 3600000 * MS, &c->interval_ns)))
        return rc;
    cy_path_key(key, sub, "timeout");
    c->timeout_ns = c->interval_ns < 800 * MS ? c->interval_ns : 800 * MS;
    if (v[C_TIMEOUT]) {
        if ((rc = cy_get_duration(p, v[C_TIMEOUT], key, 10 * MS, 3600000 * MS, &c->timeout_ns)))
            return rc;
        if (c->timeout_ns > c->interval_ns)
            return cy_fail(p, v[C_TIMEOUT], key,
                           "longer than the interval (%llu ms): probes would overlap",
                           (unsigned long long)(c->interval_ns / MS));
    }
    cy_path_key(key, sub, "rise");
    c->rise = 2;
    if (v[C_RISE]) {
        if ((rc = cy_get_uint(p, v[C_RISE], key, 1, 100, &x)))
            return rc;
        c->rise = (uint32_t)x;
    }
    cy_path_key(key, sub, "fall");
    c->fall = 2;
    if (v[C_FALL]) {
        if ((rc = cy_get_uint(p, v[C_FALL], key, 1, 100, &x)))
            return rc;
        c->fall = (uint32_t)x;
    }
    return 0;
}

static int pick(pctx_t *p, yaml_node_t *n, const char *path, const char *const *names,
                const char *expected, int *out)
{
    const char *v = NULL;
    char q[96];
    int rc = cy_want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    for (int i = 0; names[i]; i++)
        if (strcasecmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return cy_fail(p, n, path, "%s: expected %s", cy_quote(v, q, sizeof(q)), expected);
}

enum { P_NAME, P_TYPE, P_POLICY, P_TTL, P_DTTL, P_DOWN, P_MEMBERS, P_COUNT };

static int parse_member(pctx_t *p, yaml_node_t *item, const char *sub, health_config_t *hc,
                        health_pool_def_t *pool, size_t k)
{
    static const char *const keys[] = {"address", "check", "weight", NULL};
    yaml_node_t *v[3];
    char key[CFG_PATH_LEN], q[96];
    int rc = cy_map_fields(p, item, sub, keys, v);
    if (rc)
        return rc;
    health_member_def_t *m = &pool->members[k];
    cy_path_key(key, sub, "address");
    if (!v[0])
        return cy_fail(p, item, key, "missing (the address served)");
    const char *a = NULL;
    if ((rc = cy_want_scalar(p, v[0], key, &a)))
        return rc;
    int fam = pool->type == WIRE_TYPE_A ? AF_INET : AF_INET6;
    if (inet_pton(fam, a, m->addr) != 1)
        return cy_fail(p, v[0], key, "%s: expected an %s address (the pool's type is %s)",
                       cy_quote(a, q, sizeof(q)), fam == AF_INET ? "IPv4" : "IPv6",
                       fam == AF_INET ? "A" : "AAAA");
    size_t alen = fam == AF_INET ? 4 : 16;
    for (size_t j = 0; j < k; j++)
        if (memcmp(pool->members[j].addr, m->addr, alen) == 0)
            return cy_fail(p, v[0], key, "%s: listed twice in the pool", cy_quote(a, q, sizeof(q)));
    snprintf(m->text, sizeof(m->text), "%s", a);
    cy_path_key(key, sub, "check");
    if (!v[1])
        return cy_fail(p, item, key, "missing (the name of the check that decides)");
    const char *cn = NULL;
    if ((rc = cy_want_scalar(p, v[1], key, &cn)))
        return rc;
    m->check = -1;
    for (size_t j = 0; j < hc->check_count; j++)
        if (strcmp(hc->checks[j].name, cn) == 0)
            m->check = (int)j;
    if (m->check < 0)
        return cy_fail(p, v[1], key, "%s: no such check in health.checks",
                       cy_quote(cn, q, sizeof(q)));
    m->weight = 1;
    cy_path_key(key, sub, "weight");
    if (v[2]) {
        uint64_t x;
        if ((rc = cy_get_uint(p, v[2], key, 1, 1000, &x)))
            return rc;
        m->weight = (uint32_t)x;
    }
    return 0;
}

static int parse_pool(pctx_t *p, yaml_node_t *item, const char *sub, health_config_t *hc, size_t i)
{
    static const char *const keys[] = {"name",         "type",     "policy",  "ttl",
                                       "degraded_ttl", "all_down", "members", NULL};
    static const char *const types[] = {"A", "AAAA", NULL};
    static const char *const policies[] = {"failover", "all", "weighted", NULL};
    static const char *const downs[] = {"serve_all", "serve_first", "empty", NULL};
    yaml_node_t *v[P_COUNT];
    char key[CFG_PATH_LEN], q[96];
    int rc = cy_map_fields(p, item, sub, keys, v);
    if (rc)
        return rc;
    health_pool_def_t *pool = &hc->pools[i];
    uint64_t x;
    int e;

    cy_path_key(key, sub, "name");
    if (!v[P_NAME])
        return cy_fail(p, item, key, "missing (the owner name answered, inside a served zone)");
    const char *name = NULL;
    if ((rc = cy_want_scalar(p, v[P_NAME], key, &name)))
        return rc;
    int wl = wire_name_from_text(name, pool->owner);
    if (wl < 0 || strlen(name) > 1000)
        return cy_fail(p, v[P_NAME], key, "%s: not a domain name", cy_quote(name, q, sizeof(q)));
    wire_name_lower(pool->owner);
    pool->owner_len = (size_t)wl;
    wire_name_to_text(pool->owner, pool->name);

    cy_path_key(key, sub, "type");
    pool->type = WIRE_TYPE_A;
    if (v[P_TYPE]) {
        if ((rc = pick(p, v[P_TYPE], key, types, "A or AAAA", &e)))
            return rc;
        pool->type = e == 0 ? WIRE_TYPE_A : WIRE_TYPE_AAAA;
    }
    for (size_t j = 0; j < i; j++)
        if (hc->pools[j].type == pool->type && hc->pools[j].owner_len == pool->owner_len &&
            memcmp(hc->pools[j].owner, pool->owner, pool->owner_len) == 0)
            return cy_fail(p, v[P_NAME], key, "%s %s: pool defined twice (also pools[%zu])",
                           pool->name, pool->type == WIRE_TYPE_A ? "A" : "AAAA", j);
    cy_path_key(key, sub, "policy");
    pool->policy = HEALTH_FAILOVER;
    if (v[P_POLICY]) {
        if ((rc = pick(p, v[P_POLICY], key, policies, "failover, all or weighted", &e)))
            return rc;
        pool->policy = (health_policy_t)e;
    }
    cy_path_key(key, sub, "ttl");
    pool->ttl = 300;
    if (v[P_TTL]) {
        if ((rc = cy_get_uint(p, v[P_TTL], key, 0, 2147483647, &x)))
            return rc;
        pool->ttl = (uint32_t)x;
    }
    cy_path_key(key, sub, "degraded_ttl");
    pool->degraded_ttl = pool->ttl < 10 ? pool->ttl : 10;
    if (v[P_DTTL]) {
        if ((rc = cy_get_uint(p, v[P_DTTL], key, 0, 2147483647, &x)))
            return rc;
        pool->degraded_ttl = (uint32_t)x;
    }
    cy_path_key(key, sub, "all_down");
    pool->all_down = HEALTH_SERVE_ALL;
    if (v[P_DOWN]) {
        if ((rc = pick(p, v[P_DOWN], key, downs, "serve_all, serve_first or empty", &e)))
            return rc;
        pool->all_down = (health_all_down_t)e;
    }
    cy_path_key(key, sub, "members");
    if (!v[P_MEMBERS])
        return cy_fail(p, item, key, "missing (at least one {address, check})");
    size_t count = 0;
    if ((rc = cy_want_seq(p, v[P_MEMBERS], key, HEALTH_MAX_MEMBERS, &count)))
        return rc;
    if (count == 0)
        return cy_fail(p, v[P_MEMBERS], key, "an empty list (at least one member)");
    if (!(pool->members = calloc(count, sizeof(*pool->members))))
        return -ENOMEM;
    for (size_t k = 0; k < count; k++) {
        char mk[CFG_PATH_LEN];
        yaml_node_t *m = NULL;
        cy_path_index(mk, key, k);
        if ((rc = cy_node_get(p, v[P_MEMBERS]->data.sequence.items.start[k], mk, v[P_MEMBERS], &m)))
            return rc;
        pool->member_count = k + 1;
        if ((rc = parse_member(p, m, mk, hc, pool, k)))
            return rc;
    }
    return 0;
}

static int parse_section(pctx_t *p, yaml_node_t *root, health_config_t *hc)
{
    static const char *const top[] = {"health", NULL};
    static const char *const keys[] = {"checks", "pools", NULL};
    yaml_node_t *h[1], *v[2];
    int rc = cy_map_fields(p, root, "", top, h);
    if (rc)
        return rc;
    if (!h[0])
        return cy_fail(p, root, "health", "missing");
    if (cy_scalar_is_null(h[0]))
        return 0; /* "health:" alone: no checks */
    if ((rc = cy_map_fields(p, h[0], "health", keys, v)))
        return rc;
    size_t count = 0;
    if (v[0]) {
        if ((rc = cy_want_seq(p, v[0], "health.checks", HEALTH_MAX_CHECKS, &count)))
            return rc;
        if (count && !(hc->checks = calloc(count, sizeof(*hc->checks))))
            return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
            char sub[CFG_PATH_LEN];
            yaml_node_t *item = NULL;
            cy_path_index(sub, "health.checks", i);
            if ((rc = cy_node_get(p, v[0]->data.sequence.items.start[i], sub, v[0], &item)))
                return rc;
            hc->check_count = i + 1;
            if ((rc = parse_check(p, item, sub, hc, i)))
                return rc;
        }
    }
    if (v[1]) {
        if ((rc = cy_want_seq(p, v[1], "health.pools", HEALTH_MAX_POOLS, &count)))
            return rc;
        if (count && !(hc->pools = calloc(count, sizeof(*hc->pools))))
            return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
            char sub[CFG_PATH_LEN];
            yaml_node_t *item = NULL;
            cy_path_index(sub, "health.pools", i);
            if ((rc = cy_node_get(p, v[1]->data.sequence.items.start[i], sub, v[1], &item)))
                return rc;
            hc->pool_count = i + 1;
            if ((rc = parse_pool(p, item, sub, hc, i)))
                return rc;
        }
    }
    return 0;
}

int cfg_health_parse(const char *yaml, size_t len, const char *name, const char *base,
                     unsigned first_line, health_config_t **out, char *err, size_t errlen)
{
    yaml_document_t doc;
    pctx_t p = {.name = name ? name : "<health>",
                .base = base && base[0] ? base : NULL,
                .err = err,
                .errlen = errlen,
                .line_base = first_line ? first_line - 1 : 0};
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    if (len > CFG_MAX_FILE) {
        snprintf(err, errlen, "%s: health section larger than %d bytes", p.name, CFG_MAX_FILE);
        return FENNEC_ECONFIG;
    }
    int rc = cy_doc_load(&p, yaml, len, &doc, "health: the section is empty");
    if (rc)
        return rc;
    health_config_t *hc = calloc(1, sizeof(*hc));
    if (!hc) {
        rc = -ENOMEM;
    } else {
        __atomic_store_n(&hc->refs, 1, __ATOMIC_RELAXED);
        rc = parse_section(&p, yaml_document_get_root_node(&doc), hc);
        if (rc == 0 && !(hc->yaml = malloc(len + 1)))
            rc = -ENOMEM;
        if (rc == 0) {
            memcpy(hc->yaml, yaml, len);
            hc->yaml[len] = '\0';
            hc->yaml_len = len;
            hc->first_line = first_line ? first_line : 1;
            if (!(hc->name = strdup(p.name)) || (p.base && !(hc->base = strdup(p.base))))
                rc = -ENOMEM;
        }
    }
    if (rc == -ENOMEM && errlen)
        snprintf(err, errlen, "%s: out of memory", p.name);
    free(p.seen);
    yaml_document_delete(&doc);
    if (rc) {
        health_config_unref(hc);
        return rc;
    }
    *out = hc;
    return 0;
}
