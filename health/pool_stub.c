/*
 * STAND-IN for health/pool.c, which is written on another branch: delete this file when
 * pool.c lands (it defines the same four functions). It keeps the view the prober publishes
 * under a mutex instead of RCU, so that the prober and its tests link and reports show what
 * pools would serve; the query engine gets no pool answers from it (health_pool_answer()
 * says "not a pool").
 */
#include "fennec/health.h"
#include "health_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct {
    pthread_mutex_t lock;
    health_config_t *cfg;
    health_eff_t *eff;
} g_view = {.lock = PTHREAD_MUTEX_INITIALIZER};

int health_view_publish(health_config_t *config, const health_eff_t *eff)
{
    size_t n = config ? config->check_count : 0;
    health_eff_t *copy = NULL;
    if (n) {
        if (!(copy = malloc(n * sizeof(*copy))))
            return -ENOMEM;
        memcpy(copy, eff, n * sizeof(*copy));
    }
    if (config)
        health_config_ref(config);
    pthread_mutex_lock(&g_view.lock);
    health_config_t *old = g_view.cfg;
    free(g_view.eff);
    g_view.cfg = config;
    g_view.eff = copy;
    pthread_mutex_unlock(&g_view.lock);
    health_config_unref(old);
    return 0;
}

bool health_view_pool(size_t pool, uint8_t (*addrs)[16], size_t *count, uint32_t *ttl)
{
    pthread_mutex_lock(&g_view.lock);
    const health_config_t *c = g_view.cfg;
    if (!c || pool >= c->pool_count) {
        pthread_mutex_unlock(&g_view.lock);
        return false;
    }
    const health_pool_def_t *p = &c->pools[pool];
    size_t alen = p->type == 28 ? 16 : 4, k = 0;
    bool degraded = false;
    for (size_t i = 0; i < p->member_count; i++) {
        health_eff_t e = g_view.eff[p->members[i].check];
        degraded |= e.degraded;
        if (e.up && k < HEALTH_MAX_MEMBERS && (p->policy != HEALTH_FAILOVER || k == 0))
            memcpy(addrs[k++], p->members[i].addr, alen);
    }
    if (k == 0 && p->all_down != HEALTH_EMPTY) {
        size_t all = p->all_down == HEALTH_SERVE_FIRST ? 1 : p->member_count;
        for (size_t i = 0; i < all && i < HEALTH_MAX_MEMBERS; i++)
            memcpy(addrs[k++], p->members[i].addr, alen);
    }
    *count = k;
    *ttl = degraded ? p->degraded_ttl : p->ttl;
    pthread_mutex_unlock(&g_view.lock);
    return true;
}

bool health_pool_answer(const uint8_t *owner, size_t len, uint16_t qtype, uint32_t rand,
                        uint8_t (*addrs)[16], size_t max, size_t *count, uint32_t *ttl)
{
    (void)owner;
    (void)len;
    (void)qtype;
    (void)rand;
    (void)addrs;
    (void)max;
    (void)count;
    (void)ttl;
    return false;
}

bool health_pools_active(void)
{
    return false;
}
