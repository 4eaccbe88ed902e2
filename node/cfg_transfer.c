/*
 * The config's `tsig_keys:` and `transfer:` sections (docs/config.md). Keys are written as
 * BIND and Knot write them (name, algorithm, base64 secret) so that one set of keys serves
 * fennec and its peers. Every node reads these sections from its own file: secrets never
 * travel through the replication log.
 */
#include "cfg_int.h"

#include "fennec/common.h"
#include "fennec/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_MAX_KEYS  1024
#define CFG_MAX_ALLOW 4096

static int parse_key(pctx_t *p, yaml_node_t *item, const char *sub, cfg_t *cfg, tsig_key_t *k)
{
    static const char *const keys[] = {"name", "algorithm", "secret", NULL};
    yaml_node_t *v[3];
    char key[CFG_PATH_LEN], q[96];
    int rc = cy_map_fields(p, item, sub, keys, v);
    if (rc)
        return rc;
    const char *name = NULL, *alg = NULL, *secret = NULL;
    cy_path_key(key, sub, "name");
    if (!v[0])
        return cy_fail(p, item, key, "missing (the key's name, e.g. xfr-key)");
    if ((rc = cy_want_scalar(p, v[0], key, &name)))
        return rc;
    int wl = wire_name_from_text(name, k->wire);
    if (wl < 0 || wl == 1)
        return cy_fail(p, v[0], key, "%s: not a domain name", cy_quote(name, q, sizeof(q)));
    k->wire_len = (size_t)wl;
    wire_name_lower(k->wire);
    for (size_t j = 0; j < cfg->tsig_keys.count; j++) {
        const tsig_key_t *o = &cfg->tsig_keys.keys[j];
        if (o->wire_len == k->wire_len && memcmp(o->wire, k->wire, k->wire_len) == 0)
            return cy_fail(p, v[0], key, "%s: key defined twice (also tsig_keys[%zu])",
                           cy_quote(name, q, sizeof(q)), j);
    }
    if (!(k->name = strdup(name)))
        return -ENOMEM;
    cy_path_key(key, sub, "algorithm");
    if (!v[1])
        return cy_fail(p, item, key, "missing (hmac-sha256, hmac-sha512, ...)");
    if ((rc = cy_want_scalar(p, v[1], key, &alg)))
        return rc;
    int a = tsig_alg_from_text(alg);
    if (a < 0)
        return cy_fail(p, v[1], key,
                       "%s: unknown algorithm (expected one of: hmac-md5, hmac-sha1, "
                       "hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512)",
                       cy_quote(alg, q, sizeof(q)));
    k->alg = (tsig_alg_t)a;
    cy_path_key(key, sub, "secret");
    if (!v[2])
        return cy_fail(p, item, key, "missing (base64, e.g. from `openssl rand -base64 32`)");
    if ((rc = cy_want_scalar(p, v[2], key, &secret)))
        return rc;
    rc = tsig_base64_decode(secret, &k->secret, &k->secret_len);
    if (rc == FENNEC_EMALFORMED)
        return cy_fail(p, v[2], key, "not valid base64 (padded, without spaces)");
    return rc;
}

int cy_parse_tsig_keys(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    size_t count = 0;
    int rc = cy_want_seq(p, n, "tsig_keys", CFG_MAX_KEYS, &count);
    if (rc || count == 0)
        return rc;
    cfg->tsig_keys.keys = calloc(count, sizeof(tsig_key_t));
    if (!cfg->tsig_keys.keys)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        char sub[CFG_PATH_LEN];
        yaml_node_t *item = NULL;
        cy_path_index(sub, "tsig_keys", i);
        if ((rc = cy_node_get(p, n->data.sequence.items.start[i], sub, n, &item)))
            return rc;
        rc = parse_key(p, item, sub, cfg, &cfg->tsig_keys.keys[i]);
        cfg->tsig_keys.count = i + 1; /* freed with the config, also when incomplete */
        if (rc)
            return rc;
    }
    return 0;
}

/* "192.0.2.1", "192.0.2.0/24", "2001:db8::/32", "::1". */
static const char *prefix_parse(const char *text, cfg_prefix_t *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t hl = slash ? (size_t)(slash - text) : strlen(text);
    if (hl == 0 || hl >= sizeof(host))
        return "not an address";
    memcpy(host, text, hl);
    host[hl] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned max;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return "not an IPv4 or IPv6 address (host names are not resolved)";
    }
    out->bits = max;
    if (slash) {
        uint64_t bits = 0;
        if (!cy_parse_digits(slash + 1, strlen(slash + 1), &bits) || bits > max)
            return max == 32 ? "prefix length must be 0..32" : "prefix length must be 0..128";
        out->bits = (unsigned)bits;
    }
    for (unsigned b = out->bits; b < max; b++)
        out->addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
    return NULL;
}

int cy_parse_transfer(pctx_t *p, yaml_node_t *n, const char *path, const cfg_t *cfg,
                      cfg_transfer_t *out)
{
    static const char *const keys[] = {"allow", "tsig", NULL};
    yaml_node_t *v[2];
    char key[CFG_PATH_LEN], sub[CFG_PATH_LEN], q[96];
    int rc = cy_map_fields(p, n, path, keys, v);
    if (rc)
        return rc;
    out->set = true;
    size_t count = 0;
    cy_path_key(key, path, "allow");
    if (v[0] && !(rc = cy_want_seq(p, v[0], key, CFG_MAX_ALLOW, &count)) && count > 0) {
        if (!(out->allow = calloc(count, sizeof(*out->allow))))
            return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
            yaml_node_t *item = NULL;
            const char *text = NULL;
            cy_path_index(sub, key, i);
            if ((rc = cy_node_get(p, v[0]->data.sequence.items.start[i], sub, v[0], &item)) ||
                (rc = cy_want_scalar(p, item, sub, &text)))
                return rc;
            const char *why = prefix_parse(text, &out->allow[i]);
            if (why)
                return cy_fail(p, item, sub, "%s: %s", cy_quote(text, q, sizeof(q)), why);
            out->allow_count = i + 1;
        }
    }
    if (rc)
        return rc;
    cy_path_key(key, path, "tsig");
    if (v[1] && !(rc = cy_want_seq(p, v[1], key, CFG_MAX_KEYS, &count)) && count > 0) {
        if (!(out->keys = calloc(count, sizeof(*out->keys))))
            return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
            yaml_node_t *item = NULL;
            const char *text = NULL;
            uint8_t wire[WIRE_NAME_MAX];
            cy_path_index(sub, key, i);
            if ((rc = cy_node_get(p, v[1]->data.sequence.items.start[i], sub, v[1], &item)) ||
                (rc = cy_want_scalar(p, item, sub, &text)))
                return rc;
            int wl = wire_name_from_text(text, wire);
            if (wl > 0)
                wire_name_lower(wire);
            const tsig_key_t *k =
                wl > 0 ? tsig_keyring_find(&cfg->tsig_keys, wire, (size_t)wl) : NULL;
            if (!k)
                return cy_fail(p, item, sub, "%s: no such key in tsig_keys",
                               cy_quote(text, q, sizeof(q)));
            out->keys[i] = k;
            out->key_count = i + 1;
        }
    }
    return rc;
}

void cy_transfer_clear(cfg_transfer_t *t)
{
    free(t->allow);
    free(t->keys);
    memset(t, 0, sizeof(*t));
}

static bool rule_same(const cfg_transfer_t *a, const cfg_transfer_t *b)
{
    if (a->set != b->set || a->allow_count != b->allow_count || a->key_count != b->key_count)
        return false;
    if (a->allow_count && memcmp(a->allow, b->allow, a->allow_count * sizeof(*a->allow)) != 0)
        return false;
    for (size_t i = 0; i < a->key_count; i++)
        if (strcmp(a->keys[i]->name, b->keys[i]->name) != 0)
            return false;
    return true;
}

bool cy_transfer_same(const cfg_t *a, const cfg_t *b)
{
    if (a->tsig_keys.count != b->tsig_keys.count || !rule_same(&a->transfer, &b->transfer))
        return false;
    for (size_t i = 0; i < a->tsig_keys.count; i++) {
        const tsig_key_t *x = &a->tsig_keys.keys[i], *y = &b->tsig_keys.keys[i];
        if (strcmp(x->name, y->name) != 0 || x->alg != y->alg || x->secret_len != y->secret_len ||
            memcmp(x->secret, y->secret, x->secret_len) != 0)
            return false;
    }
    return true;
}

const cfg_transfer_t *cfg_transfer_for(const cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->zone_count; i++)
        if (cfg->zones[i].transfer.set && strcmp(cfg->zones[i].name, name) == 0)
            return &cfg->zones[i].transfer;
    return &cfg->transfer;
}

static bool prefix_match(const cfg_prefix_t *pf, const uint8_t *addr)
{
    unsigned full = pf->bits / 8, rest = pf->bits % 8;
    if (memcmp(pf->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (addr[full] & mask) == pf->addr[full];
}

bool cfg_transfer_allows(const cfg_transfer_t *rule, const struct sockaddr *peer,
                         const tsig_key_t *key)
{
    if (!rule->set)
        return false;
    if (key) {
        for (size_t i = 0; i < rule->key_count; i++)
            if (rule->keys[i] == key)
                return true;
    }
    if (!peer)
        return false;
    const uint8_t *a4 = NULL, *a6 = NULL;
    if (peer->sa_family == AF_INET) {
        a4 = (const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr;
    } else if (peer->sa_family == AF_INET6) {
        a6 = (const uint8_t *)&((const struct sockaddr_in6 *)peer)->sin6_addr;
        /* An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d. */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a6, mapped, 12) == 0)
            a4 = a6 + 12;
    }
    for (size_t i = 0; i < rule->allow_count; i++) {
        const cfg_prefix_t *pf = &rule->allow[i];
        if ((pf->family == AF_INET && a4 && prefix_match(pf, a4)) ||
            (pf->family == AF_INET6 && a6 && prefix_match(pf, a6)))
            return true;
    }
    return false;
}
