/*
 * Health definitions (health.h): parsed by the configuration module from the `health:`
 * section's text (node/cfg_health.c), shared by reference between the prober, the pools
 * and the write path.
 */
#include "fennec/cfg.h"
#include "fennec/common.h"
#include "fennec/health.h"

#include <stdlib.h>
#include <string.h>

int health_config_parse(const char *yaml, size_t len, const char *name, const char *base,
                        unsigned first_line, health_config_t **out, char *err, size_t errlen)
{
    return cfg_health_parse(yaml, len, name, base, first_line, out, err, errlen);
}

void health_config_ref(health_config_t *c)
{
    if (c)
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

void health_config_unref(health_config_t *c)
{
    if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < c->check_count; i++) {
        free(c->checks[i].path);
        free(c->checks[i].host);
        free(c->checks[i].expect_body);
        free(c->checks[i].ca_file);
    }
    for (size_t i = 0; i < c->pool_count; i++)
        free(c->pools[i].members);
    free(c->checks);
    free(c->pools);
    free(c->yaml);
    free(c->name);
    free(c->base);
    free(c);
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool check_equal(const health_check_def_t *a, const health_check_def_t *b)
{
    return strcmp(a->name, b->name) == 0 && a->kind == b->kind && a->addr_len == b->addr_len &&
           memcmp(&a->addr, &b->addr, a->addr_len) == 0 && a->port == b->port &&
           str_eq(a->path, b->path) && str_eq(a->host, b->host) &&
           a->expect_status_count == b->expect_status_count &&
           memcmp(a->expect_status, b->expect_status,
                  a->expect_status_count * sizeof(a->expect_status[0])) == 0 &&
           str_eq(a->expect_body, b->expect_body) && a->interval_ns == b->interval_ns &&
           a->timeout_ns == b->timeout_ns && a->rise == b->rise && a->fall == b->fall &&
           a->tls_verify == b->tls_verify && str_eq(a->ca_file, b->ca_file) &&
           a->reuse_connection == b->reuse_connection;
}

static bool pool_equal(const health_pool_def_t *a, const health_pool_def_t *b)
{
    if (a->owner_len != b->owner_len || memcmp(a->owner, b->owner, a->owner_len) != 0 ||
        a->type != b->type || a->policy != b->policy || a->ttl != b->ttl ||
        a->degraded_ttl != b->degraded_ttl || a->all_down != b->all_down ||
        a->member_count != b->member_count)
        return false;
    for (size_t i = 0; i < a->member_count; i++) {
        const health_member_def_t *x = &a->members[i], *y = &b->members[i];
        if (memcmp(x->addr, y->addr, sizeof(x->addr)) != 0 || x->check != y->check ||
            x->weight != y->weight)
            return false;
    }
    return true;
}

bool health_config_equal(const health_config_t *a, const health_config_t *b)
{
    size_t ac = a ? a->check_count : 0, bc = b ? b->check_count : 0;
    size_t ap = a ? a->pool_count : 0, bp = b ? b->pool_count : 0;
    if (ac != bc || ap != bp)
        return false;
    for (size_t i = 0; i < ac; i++)
        if (!check_equal(&a->checks[i], &b->checks[i]))
            return false;
    for (size_t i = 0; i < ap; i++)
        if (!pool_equal(&a->pools[i], &b->pools[i]))
            return false;
    return true;
}
