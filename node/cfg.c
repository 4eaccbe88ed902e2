/*
 * Configuration: one YAML file read with libyaml's document loader, then walked against a
 * fixed schema. Every error names FILE:LINE (1-based, from libyaml's marks) and the key path.
 */
#include "fennec/cfg.h"

#include "fennec/common.h"
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

#define CFG_MAX_FILE    (1024 * 1024) /* a config is small; anything larger is a mistake */
#define CFG_MAX_DNS     64
#define CFG_MAX_ZONES   65536
#define CFG_MAX_CPUS    1024
#define CFG_MAX_WORKERS 64
#define CFG_MAX_ID      63
#define CFG_PATH_LEN    160

typedef struct pctx {
    yaml_document_t *doc;
    const char *name; /* file name used in messages */
    const char *base; /* folder for relative paths, NULL = current directory */
    char *err;
    size_t errlen;
    uint8_t *seen; /* per node: already walked (a second visit means an alias) */
    size_t nnodes;
} pctx_t;

static unsigned long node_line(const yaml_node_t *n)
{
    return n ? (unsigned long)n->start_mark.line + 1 : 1;
}

/* Copies S into BUF as a double-quoted, printable, length-bounded string. */
static const char *quote(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; s[i] != '\0' && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 64) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static int fail(pctx_t *p, const yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(pctx_t *p, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    if (p->errlen == 0)
        return FENNEC_ECONFIG;
    int k = snprintf(p->err, p->errlen, "%s:%lu: %s: ", p->name, node_line(n),
                     path[0] ? path : "(top level)");
    if (k >= 0 && (size_t)k < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return FENNEC_ECONFIG;
}

/* Fetches node IDX and marks it walked. A node reached twice came through an alias; aliases
 * are refused so that a small file cannot expand into a huge walk. */
static int node_get(pctx_t *p, int idx, const char *path, const yaml_node_t *at, yaml_node_t **out)
{
    yaml_node_t *n = yaml_document_get_node(p->doc, idx);
    if (!n)
        return fail(p, NULL, path, "internal error: missing YAML node");
    size_t i = (size_t)(idx - 1);
    if (i < p->nnodes) {
        if (p->seen[i])
            return fail(p, at ? at : n, path, "YAML aliases (*name) are not supported");
        p->seen[i] = 1;
    }
    *out = n;
    return 0;
}

static const char *kind_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static void path_key(char *dst, const char *path, const char *key)
{
    /* A key path longer than the buffer is cut; it only appears in messages. */
    int n = path[0] ? snprintf(dst, CFG_PATH_LEN, "%s.%s", path, key)
                    : snprintf(dst, CFG_PATH_LEN, "%s", key);
    if (n < 0)
        dst[0] = '\0';
}

static void path_index(char *dst, const char *path, size_t i)
{
    if (snprintf(dst, CFG_PATH_LEN, "%s[%zu]", path, i) < 0)
        dst[0] = '\0';
}

static bool scalar_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* A non-null scalar without embedded NUL bytes. */
static int want_scalar(pctx_t *p, const yaml_node_t *n, const char *path, const char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail(p, n, path, "expected a value, got %s", kind_name(n));
    if (scalar_is_null(n))
        return fail(p, n, path, "missing value");
    const char *v = (const char *)n->data.scalar.value;
    if (strlen(v) != n->data.scalar.length)
        return fail(p, n, path, "value contains a NUL byte");
    *out = v;
    return 0;
}

static int want_plain(pctx_t *p, const yaml_node_t *n, const char *path, const char *what,
                      const char **out)
{
    int rc = want_scalar(p, n, path, out);
    if (rc)
        return rc;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        char q[96];
        return fail(p, n, path, "%s: expected %s, got a quoted string", quote(*out, q, sizeof(q)),
                    what);
    }
    return 0;
}

static int get_str(pctx_t *p, const yaml_node_t *n, const char *path, char **out)
{
    const char *v = NULL;
    int rc = want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    char *s = strdup(v);
    if (!s)
        return -ENOMEM;
    free(*out);
    *out = s;
    return 0;
}

static int get_bool(pctx_t *p, const yaml_node_t *n, const char *path, bool *out)
{
    const char *v = NULL;
    int rc = want_plain(p, n, path, "true or false", &v);
    if (rc)
        return rc;
    if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0) {
        *out = false;
        return 0;
    }
    char q[96];
    return fail(p, n, path, "%s: expected true or false", quote(v, q, sizeof(q)));
}

/* Decimal digits only: no sign, no spaces, no hex; saturates instead of wrapping. */
static bool parse_digits(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static int get_uint(pctx_t *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    const char *v = NULL;
    int rc = want_plain(p, n, path, "a whole number", &v);
    if (rc)
        return rc;
    char q[96];
    uint64_t x = 0;
    if (!parse_digits(v, strlen(v), &x))
        return fail(p, n, path, "%s: expected a whole number", quote(v, q, sizeof(q)));
    if (x < min || x > max)
        return fail(p, n, path, "%s: out of range (%llu..%llu)", quote(v, q, sizeof(q)),
                    (unsigned long long)min, (unsigned long long)max);
    *out = x;
    return 0;
}

/* A finite number in [min, max]; min_open/max_open exclude the bound itself. */
static int get_double(pctx_t *p, const yaml_node_t *n, const char *path, double min, bool min_open,
                      double max, bool max_open, double *out)
{
    const char *v = NULL;
    int rc = want_plain(p, n, path, "a number", &v);
    if (rc)
        return rc;
    char q[96];
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    bool ok_chars = true;
    for (const char *c = v; *c; c++) {
        if (!isdigit((unsigned char)*c) && *c != '.' && *c != '-' && *c != '+' && *c != 'e' &&
            *c != 'E')
            ok_chars = false;
    }
    if (!ok_chars || end == v || *end != '\0' || errno != 0 || !isfinite(x))
        return fail(p, n, path, "%s: expected a number", quote(v, q, sizeof(q)));
    if (x < min || x > max || (min_open && x == min) || (max_open && x == max))
        return fail(p, n, path, "%s: out of range (must be %s %g and %s %g)",
                    quote(v, q, sizeof(q)), min_open ? ">" : ">=", min, max_open ? "<" : "<=", max);
    *out = x;
    return 0;
}

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit_t;

static const unit_t duration_units[] = {{"ns", 1},
                                        {"us", 1000},
                                        {"ms", 1000000},
                                        {"s", 1000000000ull},
                                        {"m", 60000000000ull},
                                        {"h", 3600000000000ull},
                                        {NULL, 0}};
static const unit_t size_units[] = {
    {"", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}, {NULL, 0}};

/* A whole number followed by one of UNITS, in [MIN, MAX] once multiplied. EXAMPLE goes into
 * the message for a value that is not of that form. */
static int get_number_unit(pctx_t *p, const yaml_node_t *n, const char *path, const unit_t *units,
                           const char *example, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *v = NULL;
    int rc = want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    char q[96];
    size_t digits = 0;
    while (v[digits] >= '0' && v[digits] <= '9')
        digits++;
    uint64_t mult = 0, x = 0;
    for (const unit_t *u = units; u->name; u++)
        if (strcmp(v + digits, u->name) == 0)
            mult = u->mult;
    if (mult == 0 || !parse_digits(v, digits, &x))
        return fail(p, n, path, "%s: expected %s", quote(v, q, sizeof(q)), example);
    if (x > UINT64_MAX / mult || x * mult < min || x * mult > max) {
        /* The bounds in the largest unit that states them exactly. */
        char lo[48], hi[48];
        const uint64_t bounds[2] = {min, max};
        char *txt[2] = {lo, hi};
        for (int b = 0; b < 2; b++) {
            const unit_t *best = units;
            for (const unit_t *u = units; u->name && bounds[b]; u++)
                if (bounds[b] % u->mult == 0)
                    best = u;
            snprintf(txt[b], sizeof(lo), "%llu%s", (unsigned long long)(bounds[b] / best->mult),
                     best->name[0] ? best->name : " bytes");
        }
        return fail(p, n, path, "%s: out of range (%s .. %s)", quote(v, q, sizeof(q)), lo, hi);
    }
    *out = x * mult;
    return 0;
}

/* "5ms", "100ms", "1s", "10s", "250us", "2m", "1h": an integer and a unit. */
static int get_duration(pctx_t *p, const yaml_node_t *n, const char *path, uint64_t min_ns,
                        uint64_t max_ns, uint64_t *out)
{
    return get_number_unit(p, n, path, duration_units, "a duration such as 5ms, 100ms or 1s",
                           min_ns, max_ns, out);
}

/* "4194304", "4MiB", "512KiB", "1GiB". */
static int get_size(pctx_t *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    return get_number_unit(p, n, path, size_units, "a size such as 4194304, 512KiB or 4MiB", min,
                           max, out);
}

static int addr_parse(const char *text, cfg_addr_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(text);
    if (len == 0) {
        *why = "empty address";
        return -EINVAL;
    }
    if (len >= sizeof(out->text)) {
        *why = "address too long";
        return -EINVAL;
    }
    memcpy(out->text, text, len + 1);

    char host[sizeof(out->text)];
    const char *port_s;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close) {
            *why = "missing ']' after IPv6 address";
            return -EINVAL;
        }
        size_t hl = (size_t)(close - text - 1);
        memcpy(host, text + 1, hl);
        host[hl] = '\0';
        if (close[1] != ':') {
            *why = close[1] == '\0' ? "missing port (use [ADDRESS]:PORT)"
                                    : "expected ':' and a port after ']'";
            return -EINVAL;
        }
        port_s = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon) {
            *why = "missing port (use ADDRESS:PORT)";
            return -EINVAL;
        }
        if (memchr(text, ':', (size_t)(colon - text))) {
            *why = "IPv6 addresses need brackets, e.g. [::1]:53";
            return -EINVAL;
        }
        size_t hl = (size_t)(colon - text);
        memcpy(host, text, hl);
        host[hl] = '\0';
        port_s = colon + 1;
    }

    uint64_t port = 0;
    if (!parse_digits(port_s, strlen(port_s), &port)) {
        *why = port_s[0] ? "port is not a number" : "missing port";
        return -EINVAL;
    }
    if (port < 1 || port > 65535) {
        *why = "port out of range";
        return -EINVAL;
    }

    if (text[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
            *why = "not an IPv6 address";
            return -EINVAL;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*s6);
    } else if (strcmp(host, "*") == 0) {
        /* The wildcard is the IPv6 any address; listeners turn IPV6_V6ONLY off so that it
         * also takes IPv4. */
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_any;
        s6->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
            *why = "not an IPv4 address (host names are not resolved)";
            return -EINVAL;
        }
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        out->len = sizeof(*s4);
    }
    return 0;
}

int cfg_addr_parse(const char *text, cfg_addr_t *out)
{
    const char *why = NULL;
    if (!text || !out)
        return -EINVAL;
    return addr_parse(text, out, &why);
}

static int get_addr(pctx_t *p, const yaml_node_t *n, const char *path, cfg_addr_t *out)
{
    const char *v = NULL;
    int rc = want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    const char *why = "invalid address";
    char q[96];
    if (addr_parse(v, out, &why) != 0)
        return fail(p, n, path, "%s: %s", quote(v, q, sizeof(q)), why);
    return 0;
}

static bool addr_equal(const cfg_addr_t *a, const cfg_addr_t *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/*
 * Walks mapping N against KEYS (NULL-terminated): every key must be a known scalar and may
 * appear once. VALS[i] receives the value node of KEYS[i] (NULL when absent).
 */
static int map_fields_k(pctx_t *p, yaml_node_t *n, const char *path, const char *const *keys,
                        yaml_node_t **vals, yaml_node_t **keys_out)
{
    size_t nkeys = 0;
    while (keys[nkeys])
        nkeys++;
    yaml_node_t *keynodes[16] = {0};
    if (nkeys > 16)
        return fail(p, n, path, "internal error: schema too large");
    for (size_t i = 0; i < nkeys; i++)
        vals[i] = NULL;
    if (n->type != YAML_MAPPING_NODE) {
        if (scalar_is_null(n))
            return fail(p, n, path, "expected a mapping, got nothing");
        return fail(p, n, path, "expected a mapping, got %s", kind_name(n));
    }
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = NULL, *v = NULL;
        int rc = node_get(p, pair->key, path, n, &k);
        if (rc)
            return rc;
        if (k->type != YAML_SCALAR_NODE)
            return fail(p, k, path, "keys must be plain names, got %s", kind_name(k));
        const char *name = (const char *)k->data.scalar.value;
        char q[96];
        char sub[CFG_PATH_LEN];
        size_t i = 0;
        while (i < nkeys && strcmp(keys[i], name) != 0)
            i++;
        if (i == nkeys || strlen(name) != k->data.scalar.length) {
            char known[256];
            size_t o = 0;
            known[0] = '\0';
            for (size_t j = 0; j < nkeys && o < sizeof(known); j++)
                o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", j ? ", " : "", keys[j]);
            return fail(p, k, path, "unknown key %s (expected one of: %s)",
                        quote(name, q, sizeof(q)), known);
        }
        path_key(sub, path, name);
        if (vals[i])
            return fail(p, k, sub, "duplicate key (first at line %lu)", node_line(keynodes[i]));
        rc = node_get(p, pair->value, sub, k, &v);
        if (rc)
            return rc;
        vals[i] = v;
        keynodes[i] = k;
    }
    if (keys_out)
        memcpy(keys_out, keynodes, nkeys * sizeof(*keys_out));
    return 0;
}

static int map_fields(pctx_t *p, yaml_node_t *n, const char *path, const char *const *keys,
                      yaml_node_t **vals)
{
    return map_fields_k(p, n, path, keys, vals, NULL);
}

static int want_seq(pctx_t *p, yaml_node_t *n, const char *path, size_t max, size_t *count)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(p, n, path, "expected a list, got %s",
                    scalar_is_null(n) ? "nothing" : kind_name(n));
    size_t c = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (c > max)
        return fail(p, n, path, "too many entries (%zu, at most %zu)", c, max);
    *count = c;
    return 0;
}

/* Joins a relative PATH onto the config's folder; absolute paths stay as they are. */
static char *resolve_path(const pctx_t *p, const char *path)
{
    if (path[0] == '/' || !p->base || strcmp(p->base, ".") == 0)
        return strdup(path);
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    size_t bl = strlen(p->base), pl = strlen(path);
    char *s = malloc(bl + pl + 2);
    if (!s)
        return NULL;
    memcpy(s, p->base, bl);
    size_t o = bl;
    if (o == 0 || s[o - 1] != '/')
        s[o++] = '/';
    memcpy(s + o, path, pl + 1);
    return s;
}

static int get_path(pctx_t *p, const yaml_node_t *n, const char *path, char **out)
{
    const char *v = NULL;
    int rc = want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    char *s = resolve_path(p, v);
    if (!s)
        return -ENOMEM;
    free(*out);
    *out = s;
    return 0;
}

static bool id_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CFG_MAX_ID)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

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
    int rc = map_fields(p, n, "node", keys, v);
    if (rc)
        return rc;
    char q[96];
    if (!v[0])
        return fail(p, n, "node.id", "missing (a name such as ns1)");
    if ((rc = get_str(p, v[0], "node.id", &cfg->node_id)))
        return rc;
    if (!id_valid(cfg->node_id))
        return fail(p, v[0], "node.id", "%s: use 1..63 letters, digits, '-', '_' or '.'",
                    quote(cfg->node_id, q, sizeof(q)));
    if (v[1]) {
        const char *r = NULL;
        if ((rc = want_scalar(p, v[1], "node.role", &r)))
            return rc;
        if (strcmp(r, "primary") == 0)
            cfg->role = CFG_ROLE_PRIMARY;
        else if (strcmp(r, "secondary") == 0)
            cfg->role = CFG_ROLE_SECONDARY;
        else
            return fail(p, v[1], "node.role", "%s: expected primary or secondary",
                        quote(r, q, sizeof(q)));
    }
    if (v[2] && (rc = get_path(p, v[2], "node.data_dir", &cfg->data_dir)))
        return rc;
    return 0;
}

static int parse_listen(pctx_t *p, yaml_node_t *n, cfg_t *cfg, yaml_node_t **replication)
{
    static const char *const keys[] = {"dns", "control", "replication", NULL};
    yaml_node_t *v[3];
    int rc = map_fields(p, n, "listen", keys, v);
    if (rc)
        return rc;
    if (!v[0])
        return fail(p, n, "listen.dns", "missing (at least one address, e.g. [\"%s\"])",
                    CFG_DEFAULT_DNS);
    size_t count;
    if ((rc = want_seq(p, v[0], "listen.dns", CFG_MAX_DNS, &count)))
        return rc;
    if (count == 0)
        return fail(p, v[0], "listen.dns", "at least one address is needed");
    cfg->dns = calloc(count, sizeof(*cfg->dns));
    if (!cfg->dns)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        char sub[CFG_PATH_LEN];
        path_index(sub, "listen.dns", i);
        yaml_node_t *item = NULL;
        if ((rc = node_get(p, v[0]->data.sequence.items.start[i], sub, v[0], &item)))
            return rc;
        if ((rc = get_addr(p, item, sub, &cfg->dns[i])))
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (addr_equal(&cfg->dns[i], &cfg->dns[j])) {
                char q[96];
                return fail(p, item, sub, "%s: listed twice (also listen.dns[%zu])",
                            quote(cfg->dns[i].text, q, sizeof(q)), j);
            }
        }
        cfg->dns_count = i + 1;
    }
    if (v[1]) {
        if ((rc = get_addr(p, v[1], "listen.control", &cfg->control)))
            return rc;
        cfg->has_control = true;
    }
    if (v[2]) {
        if ((rc = get_addr(p, v[2], "listen.replication", &cfg->replication)))
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
    int rc = map_fields(p, n, "cluster", keys, v);
    if (rc)
        return rc;
    if (v[0]) {
        if ((rc = get_addr(p, v[0], "cluster.primary", &cfg->primary)))
            return rc;
        cfg->has_primary = true;
        *primary = v[0];
    }
    if (v[1] && (rc = get_path(p, v[1], "cluster.key_file", &cfg->key_file)))
        return rc;
    return 0;
}

static int parse_workers(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    const char *s = NULL;
    int rc = want_scalar(p, n, "workers", &s);
    if (rc)
        return rc;
    if (strcmp(s, "auto") == 0) {
        cfg->workers = 0;
        return 0;
    }
    uint64_t w = 0;
    char q[96];
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !parse_digits(s, strlen(s), &w))
        return fail(p, n, "workers", "%s: expected auto or a number 1..%d", quote(s, q, sizeof(q)),
                    CFG_MAX_WORKERS);
    if (w < 1 || w > CFG_MAX_WORKERS)
        return fail(p, n, "workers", "%s: out of range (1..%d)", quote(s, q, sizeof(q)),
                    CFG_MAX_WORKERS);
    cfg->workers = (unsigned)w;
    return 0;
}

static int parse_affinity(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    size_t count;
    int rc = want_seq(p, n, "cpu_affinity", CFG_MAX_CPUS, &count);
    if (rc)
        return rc;
    if (count == 0)
        return 0;
    cfg->cpu_affinity = calloc(count, sizeof(int));
    if (!cfg->cpu_affinity)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        char sub[CFG_PATH_LEN];
        path_index(sub, "cpu_affinity", i);
        yaml_node_t *item = NULL;
        uint64_t cpu = 0;
        if ((rc = node_get(p, n->data.sequence.items.start[i], sub, n, &item)))
            return rc;
        if ((rc = get_uint(p, item, sub, 0, CFG_MAX_CPUS - 1, &cpu)))
            return rc;
        cfg->cpu_affinity[i] = (int)cpu;
        cfg->cpu_affinity_count = i + 1;
    }
    return 0;
}

static int parse_zones(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    static const char *const keys[] = {"name", "file", NULL};
    size_t count;
    int rc = want_seq(p, n, "zones", CFG_MAX_ZONES, &count);
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
        path_index(sub, "zones", i);
        yaml_node_t *item = NULL, *v[2];
        if ((rc = node_get(p, n->data.sequence.items.start[i], sub, n, &item)))
            return rc;
        if ((rc = map_fields(p, item, sub, keys, v)))
            return rc;
        cfg->zone_count = i + 1;
        cfg_zone_t *z = &cfg->zones[i];
        path_key(key, sub, "name");
        if (!v[0])
            return fail(p, item, key, "missing (the zone apex, e.g. example.com)");
        const char *name = NULL;
        if ((rc = want_scalar(p, v[0], key, &name)))
            return rc;
        char lower[256];
        const char *why = zone_name_check(name, lower);
        if (why)
            return fail(p, v[0], key, "%s: %s", quote(name, q, sizeof(q)), why);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->zones[j].name, lower) == 0)
                return fail(p, v[0], key, "%s: zone listed twice (also zones[%zu])",
                            quote(name, q, sizeof(q)), j);
        }
        if (!(z->name = strdup(lower)))
            return -ENOMEM;
        path_key(key, sub, "file");
        if (!v[1])
            return fail(p, item, key, "missing (path to the zone's master file)");
        if ((rc = get_path(p, v[1], key, &z->file)))
            return rc;
    }
    return 0;
}

static int parse_codel(pctx_t *p, yaml_node_t *n, cfg_overload_t *o)
{
    static const char *const keys[] = {"enabled", "target", "interval", "backlog", NULL};
    yaml_node_t *v[4];
    int rc = map_fields(p, n, "overload.codel", keys, v);
    if (rc)
        return rc;
    uint64_t x = 0;
    if (v[0] && (rc = get_bool(p, v[0], "overload.codel.enabled", &o->codel_enabled)))
        return rc;
    if (v[1] && (rc = get_duration(p, v[1], "overload.codel.target", 1000, 10000000000ull,
                                   &o->codel_target_ns)))
        return rc;
    if (v[2] && (rc = get_duration(p, v[2], "overload.codel.interval", 1000, 60000000000ull,
                                   &o->codel_interval_ns)))
        return rc;
    if (v[3]) {
        if ((rc = get_uint(p, v[3], "overload.codel.backlog", 1, 1000000, &x)))
            return rc;
        o->codel_backlog = (uint32_t)x;
    }
    if (o->codel_target_ns >= o->codel_interval_ns)
        return fail(p, v[1] ? v[1] : (v[2] ? v[2] : n), "overload.codel.target",
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
    int rc = map_fields(p, n, "overload.cubic", keys, v);
    if (rc)
        return rc;
    if (v[0] && (rc = get_bool(p, v[0], "overload.cubic.enabled", &o->cubic_enabled)))
        return rc;
    if (v[1] && (rc = get_double(p, v[1], "overload.cubic.utilization_threshold", 0, true, 1, false,
                                 &o->cubic_threshold)))
        return rc;
    if (v[2] && (rc = get_double(p, v[2], "overload.cubic.c", 0, true, 1e9, false, &o->cubic_c)))
        return rc;
    if (v[3] && (rc = get_double(p, v[3], "overload.cubic.beta", 0, true, 1, true, &o->cubic_beta)))
        return rc;
    if (v[4] && (rc = get_double(p, v[4], "overload.cubic.ema_alpha", 0, true, 1, false,
                                 &o->cubic_ema_alpha)))
        return rc;
    if (v[5] && (rc = get_double(p, v[5], "overload.cubic.min_rate", 0, true, 1e9, false,
                                 &o->cubic_min_rate)))
        return rc;
    return 0;
}

static int parse_overload(pctx_t *p, yaml_node_t *n, cfg_overload_t *o)
{
    static const char *const keys[] = {
        "codel", "cubic", "udp_rcvbuf", "udp_rcvbuf_congested", "udp_coalesce", "udp_gso", NULL};
    yaml_node_t *v[6];
    int rc = map_fields(p, n, "overload", keys, v);
    if (rc)
        return rc;
    if (v[0] && (rc = parse_codel(p, v[0], o)))
        return rc;
    if (v[1] && (rc = parse_cubic(p, v[1], o)))
        return rc;
    if (v[2]) {
        uint64_t x = 0;
        if ((rc = get_size(p, v[2], "overload.udp_rcvbuf", 4096, 1024ull * 1024 * 1024, &x)))
            return rc;
        o->udp_rcvbuf = (uint32_t)x;
    }
    if (v[3]) {
        uint64_t x = 0;
        if ((rc = get_size(p, v[3], "overload.udp_rcvbuf_congested", 0, 1024ull * 1024 * 1024, &x)))
            return rc;
        o->udp_rcvbuf_congested = (uint32_t)x;
    }
    if (v[4] &&
        (rc = get_duration(p, v[4], "overload.udp_coalesce", 0, 10000000ull, &o->udp_coalesce_ns)))
        return rc;
    if (v[5] && (rc = get_bool(p, v[5], "overload.udp_gso", &o->udp_gso)))
        return rc;
    return 0;
}

static int parse_tcp(pctx_t *p, yaml_node_t *n, cfg_tcp_t *t)
{
    static const char *const keys[] = {"idle_timeout", "max_connections", "max_inflight", NULL};
    yaml_node_t *v[3];
    int rc = map_fields(p, n, "tcp", keys, v);
    if (rc)
        return rc;
    uint64_t x = 0;
    if (v[0]) {
        if ((rc = get_duration(p, v[0], "tcp.idle_timeout", 1000000ull, 3600000000000ull, &x)))
            return rc;
        t->idle_timeout_ms = (uint32_t)(x / 1000000);
    }
    if (v[1]) {
        if ((rc = get_uint(p, v[1], "tcp.max_connections", 1, 1000000, &x)))
            return rc;
        t->max_connections = (uint32_t)x;
    }
    if (v[2]) {
        if ((rc = get_uint(p, v[2], "tcp.max_inflight", 1, 65535, &x)))
            return rc;
        t->max_inflight = (uint32_t)x;
    }
    return 0;
}

static int parse_journal(pctx_t *p, yaml_node_t *n, cfg_journal_t *j)
{
    static const char *const keys[] = {"max_size", "keep", "snapshot_every", NULL};
    yaml_node_t *v[3];
    int rc = map_fields(p, n, "journal", keys, v);
    if (rc)
        return rc;
    uint64_t x = 0;
    if (v[0]) {
        if ((rc = get_size(p, v[0], "journal.max_size", 1024ull * 1024,
                           1024ull * 1024 * 1024 * 1024, &x)))
            return rc;
        j->max_bytes = x;
    }
    if (v[1]) {
        if ((rc = get_uint(p, v[1], "journal.keep", 1, 100000000, &x)))
            return rc;
        j->keep = x;
    }
    if (v[2]) {
        if ((rc = get_uint(p, v[2], "journal.snapshot_every", 1, 100000000, &x)))
            return rc;
        j->snapshot_every = x;
    }
    return 0;
}

static int parse_log_level(pctx_t *p, yaml_node_t *n, cfg_t *cfg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *s = NULL;
    int rc = want_scalar(p, n, "log_level", &s);
    if (rc)
        return rc;
    log_level_t l;
    char q[96];
    if (log_level_parse(s, &l) != 0)
        return fail(p, n, "log_level", "%s: expected error, warn, info or debug",
                    quote(s, q, sizeof(q)));
    char *dup = strdup(names[l]);
    if (!dup)
        return -ENOMEM;
    free(cfg->log_level);
    cfg->log_level = dup;
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
        K_COUNT
    };
    static const char *const keys[] = {"node",         "listen",    "cluster", "workers",
                                       "cpu_affinity", "zones",     "health",  "overload",
                                       "tcp",          "log_level", "journal", NULL};
    yaml_node_t *v[K_COUNT], *k[K_COUNT];
    yaml_node_t *replication = NULL, *primary = NULL;
    int rc = map_fields_k(p, root, "", keys, v, k);
    if (rc)
        return rc;
    if (v[K_HEALTH])
        return fail(p, k[K_HEALTH], "health",
                    "health checks are not supported in this version; remove this section");
    if (!v[K_NODE])
        return fail(p, root, "node", "missing (needs at least node.id)");
    if ((rc = parse_node(p, v[K_NODE], cfg)))
        return rc;
    if (!v[K_LISTEN])
        return fail(p, root, "listen", "missing (needs at least listen.dns)");
    if ((rc = parse_listen(p, v[K_LISTEN], cfg, &replication)))
        return rc;
    if (v[K_CLUSTER] && (rc = parse_cluster(p, v[K_CLUSTER], cfg, &primary)))
        return rc;
    if (v[K_WORKERS] && (rc = parse_workers(p, v[K_WORKERS], cfg)))
        return rc;
    if (v[K_AFFINITY] && (rc = parse_affinity(p, v[K_AFFINITY], cfg)))
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

    if (cfg->role == CFG_ROLE_SECONDARY) {
        if (!cfg->has_primary)
            return fail(p, v[K_CLUSTER] ? v[K_CLUSTER] : v[K_NODE], "cluster.primary",
                        "missing: a secondary needs the primary's replication address");
        if (replication)
            return fail(p, replication, "listen.replication",
                        "only a primary listens for replication");
        if (cfg->zone_count > 0)
            return fail(p, v[K_ZONES], "zones",
                        "a secondary receives its zones from the primary; remove this section");
    } else if (primary) {
        return fail(p, primary, "cluster.primary",
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
        if (!(cfg->data_dir = resolve_path(p, rel)))
            return -ENOMEM;
    }
    if (!cfg->log_level && !(cfg->log_level = strdup("info")))
        return -ENOMEM;
    return 0;
}

static void parser_error(const yaml_parser_t *parser, const char *name, char *err, size_t errlen)
{
    const char *problem = parser->problem ? parser->problem : "syntax error";
    unsigned long line = (unsigned long)parser->problem_mark.line + 1;
    if (parser->error == YAML_READER_ERROR)
        line = 1;
    if (parser->context)
        snprintf(err, errlen, "%s:%lu: yaml: %s %s (started at line %lu)", name, line, problem,
                 parser->context, (unsigned long)parser->context_mark.line + 1);
    else
        snprintf(err, errlen, "%s:%lu: yaml: %s", name, line, problem);
}

static int parse_text(const char *yaml, size_t len, const char *name, const char *base, cfg_t **out,
                      char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool have_doc = false, have_parser = false;
    cfg_t *cfg = NULL;
    pctx_t p = {.name = name, .base = base, .err = err, .errlen = errlen};
    int rc;

    if (errlen)
        err[0] = '\0';
    *out = NULL;
    if (len > CFG_MAX_FILE) {
        snprintf(err, errlen, "%s:1: file larger than %d bytes", name, CFG_MAX_FILE);
        return FENNEC_ECONFIG;
    }
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    have_parser = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        parser_error(&parser, name, err, errlen);
        rc = FENNEC_ECONFIG;
        goto cleanup;
    }
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        snprintf(err, errlen, "%s:1: the file is empty (needs at least node and listen)", name);
        rc = FENNEC_ECONFIG;
        goto cleanup;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        parser_error(&parser, name, err, errlen);
        rc = FENNEC_ECONFIG;
        goto cleanup;
    }
    bool more = yaml_document_get_root_node(&extra) != NULL;
    unsigned long extra_line = (unsigned long)extra.start_mark.line + 1;
    yaml_document_delete(&extra);
    if (more) {
        snprintf(err, errlen, "%s:%lu: only one YAML document is allowed", name, extra_line);
        rc = FENNEC_ECONFIG;
        goto cleanup;
    }

    p.doc = &doc;
    p.nnodes = (size_t)(doc.nodes.top - doc.nodes.start);
    p.seen = calloc(p.nnodes ? p.nnodes : 1, 1);
    cfg = calloc(1, sizeof(*cfg));
    if (!p.seen || !cfg) {
        rc = -ENOMEM;
        goto cleanup;
    }
    set_defaults(cfg);
    if (!(cfg->path = strdup(name))) {
        rc = -ENOMEM;
        goto cleanup;
    }
    p.seen[0] = 1; /* the root node is node 1 */
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
    if (have_parser)
        yaml_parser_delete(&parser);
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
    }
    free(cfg->zones);
    free(cfg->log_level);
    free(cfg);
}
