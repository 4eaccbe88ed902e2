/*
 * fennec — private parts of the health module, shared by config.c (definitions), probe.c
 * (the prober thread and the state machine) and pool.c (what pools serve, read by the query
 * engine).
 */
#ifndef FENNEC_HEALTH_INT_H
#define FENNEC_HEALTH_INT_H

#include "fennec/health.h"

/*
 * Publishes what the pools of CONFIG serve, from EFF[i], the effective state of
 * config->checks[i] (RCU: the previous view is freed once no reader can see it). CONFIG NULL:
 * no pools. One publisher at a time (the prober thread, or health_configure()'s caller under
 * the prober's lock). Returns 0 or -ENOMEM (the previous view stays).
 */
int health_view_publish(health_config_t *config, const health_eff_t *eff);

/* What a pool of the published view serves now (for reports): copies up to
 * HEALTH_MAX_MEMBERS addresses. False when POOL is not in the view. */
bool health_view_pool(size_t pool, uint8_t (*addrs)[16], size_t *count, uint32_t *ttl);

#endif
