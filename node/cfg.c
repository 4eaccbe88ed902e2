/*
 * Configuration: one YAML file read with libyaml's document loader, then walked against a
 * fixed schema. Every error names FILE:LINE (1-based, from libyaml's marks) and the key path.
 */
#include "fennec/cfg.h"
#include "cfg_int.h"

#include "fennec/common.h"
#include "fennec/health.h"
#include "fennec/zone.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CFG_MAX_DNS     64
#define CFG_MAX_ZONES   65536
#define CFG_MAX_CPUS    1024
#define CFG_MAX_WORKERS 64

/* Zone apex in text form: labels of letters, digits, '-', '_' and '/' (RFC 2317), 1..63
 * characters each, at most 253 characters; one trailing dot is allowed. Writes the
 * lower-case form without the trailing dot into OUT (at least 256 bytes). */
static const char *zone_name_check(const char *s, char *out)
{
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0)
        return "the root zone is not supported";
    if (len > 253)
        return "name longer than 253 characters";
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return "empty label";
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_' || c == '/') {
            if (++label > 63)
                return "label longer than 63 characters";
        } else {
            return "invalid character in name";
        }
        out[i] = (char)tolower(c);
    }
    if (label == 0)
        return "empty label";
    out[len] = '\0';
    return NULL;
}

static int parse_node(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    static const char *const keys[] = {"id", "role", "data_dir", NULL};
    yaml_node_t *v[3];
    int rc = cy_map_fields(p, n, "node", keys, v);
    if (rc)
        return rc;
    char q[96];
    if (!v[0])
        return cy_fail(p, n, "node.id", "missing (a name such as ns1)");
    if ((rc = cy_get_str(p, v[0], "node.id", &cfg->node_id)))
        return rc;
    if (!cy_id_valid(cfg->node_id))
        return cy_fail(p, v[0], "node.id", "%s: use 1..63 letters, digits, '-', '_' or '.'",
                       cy_quote(cfg->node_id, q, sizeof(q)));
    if (v[1]) {
        const char *r = NULL;
        if ((rc = cy_want_scalar(p, v[1], "node.role", &r)))
            return rc;
        if (strcmp(r, "primary") == 0)
            cfg->role = CFG_ROLE_PRIMARY;
        else if (strcmp(r, "secondary") == 0)
            cfg->role = CFG_ROLE_SECONDARY;
        else
            return cy_fail(p, v[1], "node.role", "%s: expected primary or secondary",
                           cy_quote(r, q, sizeof(q)));
    }
    if (v[2] && (rc = cy_get_path(p, v[2], "node.data_dir", &cfg->data_dir)))
        return rc;
    return 0;
}

static int parse_listen(pctx_t *p, yaml_node_t *n, cfg_t *cfg, yaml_node_t **replication)
{
    static const char *const keys[] = {"dns", "control", "replication", NULL};
    yaml_node_t *v[3];
    int rc = cy_map_fields(p, n, "listen", keys, v);
    if (rc)
        return rc;
    if (!v[0])
        return cy_fail(p, n, "listen.dns", "missing (at least one address, e.g. [\"%s\"])",
                       CFG_DEFAULT_DNS);
    size_t count;
    if ((rc = cy_want_seq(p, v[0], "listen.dns", CFG_MAX_DNS, &count)))
        return rc;
    if (count == 0)
        return cy_fail(p, v[0], "listen.dns", "at least one address is needed");
    cfg->dns = calloc(count, sizeof(*cfg->dns));
    if (!cfg->dns)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        char sub[CFG_PATH_LEN];
        cy_path_index(sub, "listen.dns", i);
        yaml_node_t *item = NULL;
        if ((rc = cy_node_get(p, v[0]->data.sequence.items.start[i], sub, v[0], &item)))
            return rc;
        if ((rc = cy_get_addr(p, item, sub, &cfg->dns[i])))
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (cy_addr_equal(&cfg->dns[i], &cfg->dns[j])) {
                char q[96];
                return cy_fail(p, item, sub, "%s: listed twice (also listen.dns[%zu])",
                               cy_quote(cfg->dns[i].text, q, sizeof(q)), j);
            }
        }
        cfg->dns_count = i + 1;
    }
    if (v[1]) {
        if ((rc = cy_get_addr(p, v[1], "listen.control", &cfg->control)))
            return rc;
        cfg->has_control = true;
    }
    if (v[2]) {
        if ((rc = cy_get_addr(p, v[2], "listen.replication", &cfg->replication)))
            return rc;
        cfg->has_replication = true;
        *replication = v[2];
    }
    return 0;
}

static int parse_cluster(pctx_t *p, yaml_node_t *n, cfg_t *cfg, yaml_node_t **primary)
{
    static const char *const keys[] = {"primary", "key_file", NULL};
    yaml_node_t *v[2];
    int rc = cy_map_fields(p, n, "cluster", keys, v);
    if (rc)
        return rc;
    if (v[0]) {
        if ((rc = cy_get_addr(p, v[0], "cluster.primary", &cfg->primary)))
            return rc;
        cfg->has_primary = true;
        *primary = v[0];
    }
    if (v[1] && (rc = cy_get_path(p, v[1], "cluster.key_file", &cfg->key_file)))
        return rc;
    return 0;
}

static int parse_workers(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    const char *s = NULL;
    int rc = cy_want_scalar(p, n, "workers", &s);
    if (rc)
        return rc;
    if (strcmp(s, "auto") == 0) {
        cfg->workers = 0;
        return 0;
    }
    uint64_t w = 0;
    char q[96];
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !cy_parse_digits(s, strlen(s), &w))
        return cy_fail(p, n, "workers", "%s: expected auto or a number 1..%d",
                       cy_quote(s, q, sizeof(q)), CFG_MAX_WORKERS);
    if (w < 1 || w > CFG_MAX_WORKERS)
        return cy_fail(p, n, "workers", "%s: out of range (1..%d)", cy_quote(s, q, sizeof(q)),
                       CFG_MAX_WORKERS);
    cfg->workers = (unsigned)w;
    return 0;
}

static int parse_affinity(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    size_t count;
    int rc = cy_want_seq(p, n, "cpu_affinity", CFG_MAX_CPUS, &count);
    if (rc)
        return rc;
    if (count == 0)
        return 0;
    cfg->cpu_affinity = calloc(count, sizeof(int));
    if (!cfg->cpu_affinity)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        char sub[CFG_PATH_LEN];
        cy_path_index(sub, "cpu_affinity", i);
        yaml_node_t *item = NULL;
        uint64_t cpu = 0;
        if ((rc = cy_node_get(p, n->data.sequence.items.start[i], sub, n, &item)))
            return rc;
        if ((rc = cy_get_uint(p, item, sub, 0, CFG_MAX_CPUS - 1, &cpu)))
            return rc;
        cfg->cpu_affinity[i] = (int)cpu;
        cfg->cpu_affinity_count = i + 1;
    }
    return 0;
}

static int parse_zones(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    static const char *const keys[] = {"name", "file", "transfer", NULL};
    size_t count;
    int rc = cy_want_seq(p, n, "zones", CFG_MAX_ZONES, &count);
    if (rc)
        return rc;
    if (count == 0)
        return 0;
    cfg->zones = calloc(count, sizeof(*cfg->zones));
    /* Lower-case names, kept to find duplicates; names are short, a linear scan per zone is
     * fine up to a few thousand zones and bounded by CFG_MAX_ZONES. */
    if (!cfg->zones)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        char sub[CFG_PATH_LEN], key[CFG_PATH_LEN];
        char q[96];
        cy_path_index(sub, "zones", i);
        yaml_node_t *item = NULL, *v[3];
        if ((rc = cy_node_get(p, n->data.sequence.items.start[i], sub, n, &item)))
            return rc;
        if ((rc = cy_map_fields(p, item, sub, keys, v)))
            return rc;
        cfg->zone_count = i + 1;
        cfg_zone_t *z = &cfg->zones[i];
        cy_path_key(key, sub, "name");
        if (!v[0])
            return cy_fail(p, item, key, "missing (the zone apex, e.g. example.com)");
        const char *name = NULL;
        if ((rc = cy_want_scalar(p, v[0], key, &name)))
            return rc;
        char lower[256];
        const char *why = zone_name_check(name, lower);
        if (why)
            return cy_fail(p, v[0], key, "%s: %s", cy_quote(name, q, sizeof(q)), why);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->zones[j].name, lower) == 0)
                return cy_fail(p, v[0], key, "%s: zone listed twice (also zones[%zu])",
                               cy_quote(name, q, sizeof(q)), j);
        }
        if (!(z->name = strdup(lower)))
            return -ENOMEM;
        cy_path_key(key, sub, "file");
        if (!v[1])
            return cy_fail(p, item, key, "missing (path to the zone's master file)");
        if ((rc = cy_get_path(p, v[1], key, &z->file)))
            return rc;
        cy_path_key(key, sub, "transfer");
        if (v[2] && (rc = cy_parse_transfer(p, v[2], key, cfg, &z->transfer)))
            return rc;
    }
    return 0;
}

static int parse_codel(pctx_t *p, yaml_node_t *n, cfg_overload_t *o)
{
    static const char *const keys[] = {"enabled", "target", "interval", "backlog", NULL};
    yaml_node_t *v[4];
    int rc = cy_map_fields(p, n, "overload.codel", keys, v);
    if (rc)
        return rc;
    uint64_t x = 0;
    if (v[0] && (rc = cy_get_bool(p, v[0], "overload.codel.enabled", &o->codel_enabled)))
        return rc;
    if (v[1] && (rc = cy_get_duration(p, v[1], "overload.codel.target", 1000, 10000000000ull,
                                      &o->codel_target_ns)))
        return rc;
    if (v[2] && (rc = cy_get_duration(p, v[2], "overload.codel.interval", 1000, 60000000000ull,
                                      &o->codel_interval_ns)))
        return rc;
    if (v[3]) {
        if ((rc = cy_get_uint(p, v[3], "overload.codel.backlog", 1, 1000000, &x)))
            return rc;
        o->codel_backlog = (uint32_t)x;
    }
    if (o->codel_target_ns >= o->codel_interval_ns)
        return cy_fail(p, v[1] ? v[1] : (v[2] ? v[2] : n), "overload.codel.target",
                       "target (%llu us) must be shorter than interval (%llu us)",
                       (unsigned long long)(o->codel_target_ns / 1000),
                       (unsigned long long)(o->codel_interval_ns / 1000));
    return 0;
}

static int parse_cubic(pctx_t *p, yaml_node_t *n, cfg_overload_t *o)
{
    static const char *const keys[] = {
        "enabled", "utilization_threshold", "c", "beta", "ema_alpha", "min_rate", NULL};
    yaml_node_t *v[6];
    int rc = cy_map_fields(p, n, "overload.cubic", keys, v);
    if (rc)
        return rc;
    if (v[0] && (rc = cy_get_bool(p, v[0], "overload.cubic.enabled", &o->cubic_enabled)))
        return rc;
    if (v[1] && (rc = cy_get_double(p, v[1], "overload.cubic.utilization_threshold", 0, true, 1,
                                    false, &o->cubic_threshold)))
        return rc;
    if (v[2] && (rc = cy_get_double(p, v[2], "overload.cubic.c", 0, true, 1e9, false, &o->cubic_c)))
        return rc;
    if (v[3] &&
        (rc = cy_get_double(p, v[3], "overload.cubic.beta", 0, true, 1, true, &o->cubic_beta)))
        return rc;
    if (v[4] && (rc = cy_get_double(p, v[4], "overload.cubic.ema_alpha", 0, true, 1, false,
                                    &o->cubic_ema_alpha)))
        return rc;
    if (v[5] && (rc = cy_get_double(p, v[5], "overload.cubic.min_rate", 0, true, 1e9, false,
                                    &o->cubic_min_rate)))
        return rc;
    return 0;
}

static int parse_overload(pctx_t *p, yaml_node_t *n, cfg_overload_t *o)
{
    static const char *const keys[] = {
        "codel", "cubic", "udp_rcvbuf", "udp_rcvbuf_congested", "udp_coalesce", "udp_gso", NULL};
    yaml_node_t *v[6];
    int rc = cy_map_fields(p, n, "overload", keys, v);
    if (rc)
        return rc;
    if (v[0] && (rc = parse_codel(p, v[0], o)))
        return rc;
    if (v[1] && (rc = parse_cubic(p, v[1], o)))
        return rc;
    if (v[2]) {
        uint64_t x = 0;
        if ((rc = cy_get_size(p, v[2], "overload.udp_rcvbuf", 4096, 1024ull * 1024 * 1024, &x)))
            return rc;
        o->udp_rcvbuf = (uint32_t)x;
    }
    if (v[3]) {
        uint64_t x = 0;
        if ((rc = cy_get_size(p, v[3], "overload.udp_rcvbuf_congested", 0, 1024ull * 1024 * 1024,
                              &x)))
            return rc;
        o->udp_rcvbuf_congested = (uint32_t)x;
    }
    if (v[4] && (rc = cy_get_duration(p, v[4], "overload.udp_coalesce", 0, 10000000ull,
                                      &o->udp_coalesce_ns)))
        return rc;
    if (v[5] && (rc = cy_get_bool(p, v[5], "overload.udp_gso", &o->udp_gso)))
        return rc;
    return 0;
}

static int parse_tcp(pctx_t *p, yaml_node_t *n, cfg_tcp_t *t)
{
    static const char *const keys[] = {"idle_timeout", "max_connections", "max_inflight", NULL};
    yaml_node_t *v[3];
    int rc = cy_map_fields(p, n, "tcp", keys, v);
    if (rc)
        return rc;
    uint64_t x = 0;
    if (v[0]) {
        if ((rc = cy_get_duration(p, v[0], "tcp.idle_timeout", 1000000ull, 3600000000000ull, &x)))
            return rc;
        t->idle_timeout_ms = (uint32_t)(x / 1000000);
    }
    if (v[1]) {
        if ((rc = cy_get_uint(p, v[1], "tcp.max_connections", 1, 1000000, &x)))
            return rc;
        t->max_connections = (uint32_t)x;
    }
    if (v[2]) {
        if ((rc = cy_get_uint(p, v[2], "tcp.max_inflight", 1, 65535, &x)))
            return rc;
        t->max_inflight = (uint32_t)x;
    }
    return 0;
}

static int parse_journal(pctx_t *p, yaml_node_t *n, cfg_journal_t *j)
{
    static const char *const keys[] = {"max_size", "keep", "snapshot_every", NULL};
    yaml_node_t *v[3];
    int rc = cy_map_fields(p, n, "journal", keys, v);
    if (rc)
        return rc;
    uint64_t x = 0;
    if (v[0]) {
        if ((rc = cy_get_size(p, v[0], "journal.max_size", 1024ull * 1024,
                              1024ull * 1024 * 1024 * 1024, &x)))
            return rc;
        j->max_bytes = x;
    }
    if (v[1]) {
        if ((rc = cy_get_uint(p, v[1], "journal.keep", 1, 100000000, &x)))
            return rc;
        j->keep = x;
    }
    if (v[2]) {
        if ((rc = cy_get_uint(p, v[2], "journal.snapshot_every", 1, 100000000, &x)))
            return rc;
        j->snapshot_every = x;
    }
    return 0;
}

static int parse_log_level(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *s = NULL;
    int rc = cy_want_scalar(p, n, "log_level", &s);
    if (rc)
        return rc;
    log_level_t l;
    char q[96];
    if (log_level_parse(s, &l) != 0)
        return cy_fail(p, n, "log_level", "%s: expected error, warn, info or debug",
                       cy_quote(s, q, sizeof(q)));
    char *dup = strdup(names[l]);
    if (!dup)
        return -ENOMEM;
    free(cfg->log_level);
    cfg->log_level = dup;
    return 0;
}

/* nsid and identity: true (the node's id), false (off), or a quoted or other string of 1
 * to 255 bytes, said as it is. */
static int parse_ident(pctx_t *p, yaml_node_t *n, const char *path, const char *node_id, char **out)
{
    const char *v = NULL;
    int rc = cy_want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    bool plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (plain && (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0)) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (plain && (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0))
        v = node_id;
    size_t len = strlen(v);
    if (len == 0 || len > 255)
        return cy_fail(p, n, path, "true (node.id), false, or a string of 1 to 255 bytes");
    char *dup = strdup(v);
    if (!dup)
        return -ENOMEM;
    free(*out);
    *out = dup;
    return 0;
}

static void set_defaults(cfg_t *cfg)
{
    cfg->role = CFG_ROLE_PRIMARY;
    cfg->workers = 0;
    cfg->overload.codel_enabled = true;
    cfg->overload.codel_target_ns = 5000000ull;
    cfg->overload.codel_interval_ns = 100000000ull;
    cfg->overload.codel_backlog = 1024;
    cfg->overload.cubic_enabled = true;
    cfg->overload.cubic_threshold = 0.90;
    cfg->overload.cubic_c = 0.4;
    cfg->overload.cubic_beta = 0.8;
    cfg->overload.cubic_ema_alpha = 0.3;
    cfg->overload.cubic_min_rate = 1;
    cfg->overload.udp_rcvbuf = 8u * 1024 * 1024;
    cfg->overload.udp_rcvbuf_congested = 48u * 1024;
    cfg->overload.udp_coalesce_ns = 400000;
    cfg->overload.udp_gso = true;
    cfg->tcp.idle_timeout_ms = 10000;
    cfg->tcp.max_connections = 1024;
    cfg->tcp.max_inflight = 64;
    cfg->journal.max_bytes = 1024ull * 1024 * 1024;
    cfg->journal.keep = 10000;
    cfg->journal.snapshot_every = 10000;
    cy_anycast_defaults(&cfg->anycast);
}

static int parse_root(pctx_t *p, yaml_node_t *root, cfg_t *cfg)
{
    enum {
        K_NODE,
        K_LISTEN,
        K_CLUSTER,
        K_WORKERS,
        K_AFFINITY,
        K_ZONES,
        K_HEALTH,
        K_OVERLOAD,
        K_TCP,
        K_LOG,
        K_JOURNAL,
        K_TSIG_KEYS,
        K_TRANSFER,
        K_NSID,
        K_IDENTITY,
        K_ANYCAST,
        K_COUNT
    };
    static const char *const keys[] = {
        "node",     "listen",  "cluster",   "workers", "cpu_affinity", "zones",    "health",
        "overload", "tcp",     "log_level", "journal", "tsig_keys",    "transfer", "nsid",
        "identity", "anycast", NULL};
    yaml_node_t *v[K_COUNT], *k[K_COUNT];
    yaml_node_t *replication = NULL, *primary = NULL;
    int rc = cy_map_fields_k(p, root, "", keys, v, k);
    if (rc)
        return rc;
    if (v[K_HEALTH]) {
        /* The section's own text, parsed on its own: the same text and function serve every
         * node when it travels through the replication log. */
        size_t from = k[K_HEALTH]->start_mark.index, to = v[K_HEALTH]->end_mark.index;
        if (!p->text || to > p->text_len || from >= to)
            return cy_fail(p, k[K_HEALTH], "health", "internal error: the section's text");
        if ((rc = cfg_health_parse(p->text + from, to - from, p->name, p->base,
                                   (unsigned)cy_line(p, k[K_HEALTH]), &cfg->health, p->err,
                                   p->errlen)))
            return rc;
    }
    if (!v[K_NODE])
        return cy_fail(p, root, "node", "missing (needs at least node.id)");
    if ((rc = parse_node(p, v[K_NODE], cfg)))
        return rc;
    if (!v[K_LISTEN])
        return cy_fail(p, root, "listen", "missing (needs at least listen.dns)");
    if ((rc = parse_listen(p, v[K_LISTEN], cfg, &replication)))
        return rc;
    if (v[K_CLUSTER] && (rc = parse_cluster(p, v[K_CLUSTER], cfg, &primary)))
        return rc;
    if (v[K_WORKERS] && (rc = parse_workers(p, v[K_WORKERS], cfg)))
        return rc;
    if (v[K_AFFINITY] && (rc = parse_affinity(p, v[K_AFFINITY], cfg)))
        return rc;
    if (v[K_TSIG_KEYS] && (rc = cy_parse_tsig_keys(p, v[K_TSIG_KEYS], cfg)))
        return rc;
    if (v[K_TRANSFER] &&
        (rc = cy_parse_transfer(p, v[K_TRANSFER], "transfer", cfg, &cfg->transfer)))
        return rc;
    if (v[K_ZONES] && (rc = parse_zones(p, v[K_ZONES], cfg)))
        return rc;
    if (v[K_OVERLOAD] && (rc = parse_overload(p, v[K_OVERLOAD], &cfg->overload)))
        return rc;
    if (v[K_TCP] && (rc = parse_tcp(p, v[K_TCP], &cfg->tcp)))
        return rc;
    if (v[K_LOG] && (rc = parse_log_level(p, v[K_LOG], cfg)))
        return rc;
    if (v[K_JOURNAL] && (rc = parse_journal(p, v[K_JOURNAL], &cfg->journal)))
        return rc;
    if (v[K_NSID] && (rc = parse_ident(p, v[K_NSID], "nsid", cfg->node_id, &cfg->nsid)))
        return rc;
    if (v[K_IDENTITY] &&
        (rc = parse_ident(p, v[K_IDENTITY], "identity", cfg->node_id, &cfg->identity)))
        return rc;
    if (v[K_ANYCAST] && (rc = cy_parse_anycast(p, v[K_ANYCAST], cfg)))
        return rc;

    if (cfg->role == CFG_ROLE_SECONDARY) {
        if (!cfg->has_primary)
            return cy_fail(p, v[K_CLUSTER] ? v[K_CLUSTER] : v[K_NODE], "cluster.primary",
                           "missing: a secondary needs the primary's replication address");
        if (replication)
            return cy_fail(p, replication, "listen.replication",
                           "only a primary listens for replication");
        if (cfg->zone_count > 0)
            return cy_fail(p, v[K_ZONES], "zones",
                           "a secondary receives its zones from the primary; remove this section");
    } else if (primary) {
        return cy_fail(p, primary, "cluster.primary",
                       "a primary does not follow another primary (set node.role: secondary)");
    }
    return 0;
}

/* Fills in what the file left out. */
static int finish(pctx_t *p, cfg_t *cfg)
{
    if (!cfg->data_dir) {
        char rel[CFG_MAX_ID + 16];
        snprintf(rel, sizeof(rel), p->base ? "data/%s" : "./data/%s", cfg->node_id);
        if (!(cfg->data_dir = cy_resolve_path(p, rel)))
            return -ENOMEM;
    }
    if (!cfg->log_level && !(cfg->log_level = strdup("info")))
        return -ENOMEM;
    return 0;
}

static int parse_text(const char *yaml, size_t len, const char *name, const char *base, cfg_t **out,
                      char *err, size_t errlen)
{
    yaml_document_t doc;
    bool have_doc = false;
    cfg_t *cfg = NULL;
    pctx_t p = {
        .name = name, .base = base, .err = err, .errlen = errlen, .text = yaml, .text_len = len};
    int rc;

    if (errlen)
        err[0] = '\0';
    *out = NULL;
    if (len > CFG_MAX_FILE) {
        snprintf(err, errlen, "%s:1: file larger than %d bytes", name, CFG_MAX_FILE);
        return FENNEC_ECONFIG;
    }
    if ((rc = cy_doc_load(&p, yaml, len, &doc,
                          "the file is empty (needs at least node and "
                          "listen)")) != 0)
        return rc;
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        rc = -ENOMEM;
        goto cleanup;
    }
    set_defaults(cfg);
    if (!(cfg->path = strdup(name))) {
        rc = -ENOMEM;
        goto cleanup;
    }
    if ((rc = parse_root(&p, root, cfg)))
        goto cleanup;
    if ((rc = finish(&p, cfg)))
        goto cleanup;
    *out = cfg;
    cfg = NULL;
    rc = 0;

cleanup:
    if (rc == -ENOMEM && errlen)
        snprintf(err, errlen, "%s: out of memory", name);
    cfg_free(cfg);
    free(p.seen);
    if (have_doc)
        yaml_document_delete(&doc);
    return rc;
}

int cfg_parse(const char *yaml, size_t len, const char *name, cfg_t **out, char *err, size_t errlen)
{
    if (!yaml || !out)
        return -EINVAL;
    return parse_text(yaml, len, name ? name : "<config>", NULL, out, err, errlen);
}

int cfg_load(const char *path, cfg_t **out, char *err, size_t errlen)
{
    FILE *f = NULL;
    char *buf = NULL, *dir = NULL;
    int rc;

    if (!path || !out)
        return -EINVAL;
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    f = fopen(path, "rb");
    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
        goto cleanup;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(-rc));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = FENNEC_ECONFIG;
        snprintf(err, errlen, "%s: not a regular file", path);
        goto cleanup;
    }
    if (st.st_size > CFG_MAX_FILE) {
        rc = FENNEC_ECONFIG;
        snprintf(err, errlen, "%s:1: file larger than %d bytes", path, CFG_MAX_FILE);
        goto cleanup;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto cleanup;
    }
    /* Read one byte more than expected to notice a file that grew meanwhile. */
    size_t got = fread(buf, 1, (size_t)st.st_size + 1, f);
    if (ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "%s: read error", path);
        goto cleanup;
    }
    if (got > (size_t)st.st_size) {
        rc = FENNEC_ECONFIG;
        snprintf(err, errlen, "%s: file changed while reading", path);
        goto cleanup;
    }

    /* Relative paths in the file are relative to its folder, made absolute so that they
     * keep working whatever the daemon's working directory becomes. */
    const char *slash = strrchr(path, '/');
    char *folder = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!folder) {
        rc = -ENOMEM;
        goto cleanup;
    }
    dir = realpath(folder, NULL);
    if (!dir)
        dir = folder;
    else
        free(folder);

    rc = parse_text(buf, got, path, dir, out, err, errlen);

cleanup:
    if (rc == -ENOMEM && errlen)
        snprintf(err, errlen, "%s: out of memory", path);
    if (f)
        fclose(f);
    free(buf);
    free(dir);
    return rc;
}

int cfg_default(cfg_t **out)
{
    cfg_t *cfg = NULL;
    int rc = -ENOMEM;

    if (!out)
        return -EINVAL;
    *out = NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        goto cleanup;
    set_defaults(cfg);
    cfg->path = strdup("<builtin>");
    cfg->node_id = strdup("fennec1");
    cfg->data_dir = strdup("./data/fennec1");
    cfg->log_level = strdup("info");
    cfg->dns = calloc(1, sizeof(*cfg->dns));
    cfg->zones = calloc(1, sizeof(*cfg->zones));
    if (!cfg->path || !cfg->node_id || !cfg->data_dir || !cfg->log_level || !cfg->dns ||
        !cfg->zones)
        goto cleanup;
    if ((rc = cfg_addr_parse(CFG_DEFAULT_DNS, &cfg->dns[0])))
        goto cleanup;
    cfg->dns_count = 1;
    if ((rc = cfg_addr_parse(CFG_DEFAULT_CONTROL, &cfg->control)))
        goto cleanup;
    cfg->has_control = true;
    cfg->zone_count = 1;
    cfg->zones[0].name = strdup("example.com");
    cfg->zones[0].text = strdup(zone_builtin_example);
    if (!cfg->zones[0].name || !cfg->zones[0].text) {
        rc = -ENOMEM;
        goto cleanup;
    }
    *out = cfg;
    cfg = NULL;
    rc = 0;

cleanup:
    cfg_free(cfg);
    return rc;
}

void cfg_free(cfg_t *cfg)
{
    if (cfg)
        health_config_unref(cfg->health);
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->node_id);
    free(cfg->data_dir);
    free(cfg->dns);
    free(cfg->key_file);
    free(cfg->cpu_affinity);
    for (size_t i = 0; i < cfg->zone_count; i++) {
        free(cfg->zones[i].name);
        free(cfg->zones[i].file);
        free(cfg->zones[i].text);
        cy_transfer_clear(&cfg->zones[i].transfer);
    }
    free(cfg->zones);
    cy_transfer_clear(&cfg->transfer);
    tsig_keyring_clear(&cfg->tsig_keys);
    free(cfg->log_level);
    free(cfg->nsid);
    free(cfg->identity);
    cy_anycast_clear(&cfg->anycast);
    free(cfg);
}

static bool str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool addr_same(const cfg_addr_t *a, const cfg_addr_t *b)
{
    return strcmp(a->text, b->text) == 0;
}

bool cfg_same_runtime(const cfg_t *a, const cfg_t *b)
{
    if (!str_same(a->node_id, b->node_id) || a->role != b->role ||
        !str_same(a->data_dir, b->data_dir) || a->dns_count != b->dns_count ||
        a->has_control != b->has_control || a->has_replication != b->has_replication ||
        a->has_primary != b->has_primary || !str_same(a->key_file, b->key_file) ||
        a->workers != b->workers || a->cpu_affinity_count != b->cpu_affinity_count ||
        memcmp(&a->overload, &b->overload, sizeof(a->overload)) != 0 ||
        memcmp(&a->tcp, &b->tcp, sizeof(a->tcp)) != 0 ||
        memcmp(&a->journal, &b->journal, sizeof(a->journal)) != 0 || !cy_transfer_same(a, b) ||
        !str_same(a->nsid, b->nsid) || !str_same(a->identity, b->identity) ||
        a->anycast.set != b->anycast.set || a->anycast.min_announced != b->anycast.min_announced)
        return false;
    for (size_t i = 0; i < a->dns_count; i++)
        if (!addr_same(&a->dns[i], &b->dns[i]))
            return false;
    if ((a->has_control && !addr_same(&a->control, &b->control)) ||
        (a->has_replication && !addr_same(&a->replication, &b->replication)) ||
        (a->has_primary && !addr_same(&a->primary, &b->primary)))
        return false;
    return a->cpu_affinity_count == 0 ||
           memcmp(a->cpu_affinity, b->cpu_affinity,
                  a->cpu_affinity_count * sizeof(*a->cpu_affinity)) == 0;
}
