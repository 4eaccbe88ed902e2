/*
 * What pools serve (health.h, health_int.h). Each state change publishes an immutable view:
 * per pool, the addresses to serve now, their cumulative weights and the TTL, found by owner
 * and type through a small hash index. DNS workers read the view inside their RCU read-side
 * section and build the answer from it without allocating; the previous view is freed after
 * a grace period.
 */
#include "health_int.h"

#include "fennec/common.h"
#include "fennec/wire.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <urcu.h>

typedef struct view_pool {
    const health_pool_def_t *def;
    size_t alen; /* 4 or 16 */
    size_t count;
    uint8_t addrs[HEALTH_MAX_MEMBERS][16];
    uint32_t cum[HEALTH_MAX_MEMBERS]; /* weighted: cumulative weights of addrs */
    uint32_t ttl;
    bool weighted; /* one address drawn per answer */
} view_pool_t;

typedef struct view {
    health_config_t *config; /* one reference: the pools' definitions live there */
    view_pool_t *pools;
    size_t count;
    uint32_t *index; /* open addressing: pool number + 1, 0 = empty */
    uint32_t mask;
    struct rcu_head rcu;
} view_t;

static view_t *g_view;        /* RCU-published */
static _Atomic bool g_active; /* any pool at all */
static pthread_mutex_t g_pub = PTHREAD_MUTEX_INITIALIZER;

static uint32_t owner_hash(const uint8_t *owner, size_t len, uint16_t type)
{
    uint32_t h = 2166136261u ^ type;
    for (size_t i = 0; i < len; i++)
        h = (h ^ owner[i]) * 16777619u;
    return h;
}

static void view_free(view_t *v)
{
    if (!v)
        return;
    health_config_unref(v->config);
    free(v->pools);
    free(v->index);
    free(v);
}

static void view_free_rcu(struct rcu_head *head)
{
    view_free(caa_container_of(head, view_t, rcu));
}

/* What pool DEF serves given the checks' effective states EFF. */
static void pool_compute(view_pool_t *vp, const health_pool_def_t *def, const health_eff_t *eff)
{
    vp->def = def;
    vp->alen = def->type == WIRE_TYPE_A ? 4 : 16;
    vp->count = 0;
    vp->weighted = false;
    bool degraded = false;
    size_t up = 0;
    for (size_t i = 0; i < def->member_count; i++) {
        const health_eff_t *e = &eff[def->members[i].check];
        degraded |= e->degraded || !e->up;
        up += e->up;
    }
    vp->ttl = degraded ? def->degraded_ttl : def->ttl;
    if (up == 0) {
        size_t n = def->all_down == HEALTH_SERVE_ALL     ? def->member_count
                   : def->all_down == HEALTH_SERVE_FIRST ? 1
                                                         : 0;
        for (size_t i = 0; i < n; i++)
            memcpy(vp->addrs[vp->count++], def->members[i].addr, vp->alen);
        return;
    }
    uint32_t total = 0;
    for (size_t i = 0; i < def->member_count; i++) {
        if (!eff[def->members[i].check].up)
            continue;
        memcpy(vp->addrs[vp->count], def->members[i].addr, vp->alen);
        total += def->members[i].weight;
        vp->cum[vp->count++] = total;
        if (def->policy == HEALTH_FAILOVER)
            break;
    }
    vp->weighted = def->policy == HEALTH_WEIGHTED && vp->count > 1;
}

int health_view_publish(health_config_t *config, const health_eff_t *eff)
{
    view_t *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t n = config ? config->pool_count : 0;
    if (n) {
        uint32_t slots = 16;
        while (slots < n * 2)
            slots <<= 1;
        v->pools = calloc(n, sizeof(*v->pools));
        v->index = calloc(slots, sizeof(*v->index));
        if (!v->pools || !v->index) {
            view_free(v);
            return -ENOMEM;
        }
        v->mask = slots - 1;
        for (size_t i = 0; i < n; i++) {
            const health_pool_def_t *def = &config->pools[i];
            pool_compute(&v->pools[i], def, eff);
            uint32_t h = owner_hash(def->owner, def->owner_len, def->type) & v->mask;
            while (v->index[h])
                h = (h + 1) & v->mask;
            v->index[h] = (uint32_t)i + 1;
        }
        health_config_ref(config);
        v->config = config;
        v->count = n;
    }
    pthread_mutex_lock(&g_pub);
    view_t *old = rcu_xchg_pointer(&g_view, v);
    atomic_store(&g_active, n > 0);
    pthread_mutex_unlock(&g_pub);
    if (old)
        call_rcu(&old->rcu, view_free_rcu);
    return 0;
}

/* The pool for OWNER/TYPE in V (TYPE 0: of either type), or NULL. */
static const view_pool_t *view_find(const view_t *v, const uint8_t *owner, size_t len,
                                    uint16_t type)
{
    if (!v || !v->count)
        return NULL;
    uint16_t types[2] = {type, 0};
    size_t nt = 1;
    if (type == 0) {
        types[0] = WIRE_TYPE_A;
        types[1] = WIRE_TYPE_AAAA;
        nt = 2;
    }
    for (size_t t = 0; t < nt; t++) {
        uint32_t h = owner_hash(owner, len, types[t]) & v->mask;
        for (uint32_t k; (k = v->index[h]) != 0; h = (h + 1) & v->mask) {
            const view_pool_t *p = &v->pools[k - 1];
            if (p->def->type == types[t] && p->def->owner_len == len &&
                memcmp(p->def->owner, owner, len) == 0)
                return p;
        }
    }
    return NULL;
}

bool health_pools_active(void)
{
    return atomic_load_explicit(&g_active, memory_order_relaxed);
}

bool health_pool_exists(const uint8_t *owner, size_t len)
{
    return view_find(rcu_dereference(g_view), owner, len, 0) != NULL;
}

bool health_pool_answer(const uint8_t *owner, size_t len, uint16_t qtype, uint32_t rand,
                        uint8_t (*addrs)[16], size_t max, size_t *count, uint32_t *ttl)
{
    if (qtype != WIRE_TYPE_A && qtype != WIRE_TYPE_AAAA)
        return false;
    const view_pool_t *p = view_find(rcu_dereference(g_view), owner, len, qtype);
    if (!p)
        return false;
    *ttl = p->ttl;
    *count = 0;
    if (p->weighted && max > 0) {
        uint32_t r = rand % p->cum[p->count - 1];
        size_t i = 0;
        while (p->cum[i] <= r)
            i++;
        memcpy(addrs[0], p->addrs[i], p->alen);
        *count = 1;
        return true;
    }
    for (size_t i = 0; i < p->count && i < max; i++)
        memcpy(addrs[i], p->addrs[i], p->alen);
    *count = p->count < max ? p->count : max;
    return true;
}

bool health_view_pool(size_t pool, uint8_t (*addrs)[16], size_t *count, uint32_t *ttl)
{
    pthread_mutex_lock(&g_pub);
    const view_t *v = g_view; /* cannot be replaced while g_pub is held */
    bool ok = v && pool < v->count;
    if (ok) {
        const view_pool_t *p = &v->pools[pool];
        for (size_t i = 0; i < p->count; i++)
            memcpy(addrs[i], p->addrs[i], p->alen);
        *count = p->count;
        *ttl = p->ttl;
    }
    pthread_mutex_unlock(&g_pub);
    return ok;
}
