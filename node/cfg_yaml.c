/*
 * The configuration's YAML toolkit (cfg_int.h).
 */
#include "cfg_int.h"

#include "fennec/common.h"

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

unsigned long cy_line(const pctx_t *p, const yaml_node_t *n)
{
    return (n ? (unsigned long)n->start_mark.line + 1 : 1) + (p ? p->line_base : 0);
}

/* Copies S into BUF as a double-quoted, printable, length-bounded string. */
const char *cy_quote(const char *s, char *buf, size_t cap)
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

int cy_fail(pctx_t *p, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    if (p->errlen == 0)
        return FENNEC_ECONFIG;
    int k = snprintf(p->err, p->errlen, "%s:%lu: %s: ", p->name, cy_line(p, n),
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
int cy_node_get(pctx_t *p, int idx, const char *path, const yaml_node_t *at, yaml_node_t **out)
{
    yaml_node_t *n = yaml_document_get_node(p->doc, idx);
    if (!n)
        return cy_fail(p, NULL, path, "internal error: missing YAML node");
    size_t i = (size_t)(idx - 1);
    if (i < p->nnodes) {
        if (p->seen[i])
            return cy_fail(p, at ? at : n, path, "YAML aliases (*name) are not supported");
        p->seen[i] = 1;
    }
    *out = n;
    return 0;
}

const char *cy_kind_name(const yaml_node_t *n)
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

void cy_path_key(char *dst, const char *path, const char *key)
{
    /* A key path longer than the buffer is cut; it only appears in messages. */
    int n = path[0] ? snprintf(dst, CFG_PATH_LEN, "%s.%s", path, key)
                    : snprintf(dst, CFG_PATH_LEN, "%s", key);
    if (n < 0)
        dst[0] = '\0';
}

void cy_path_index(char *dst, const char *path, size_t i)
{
    if (snprintf(dst, CFG_PATH_LEN, "%s[%zu]", path, i) < 0)
        dst[0] = '\0';
}

bool cy_scalar_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* A non-null scalar without embedded NUL bytes. */
int cy_want_scalar(pctx_t *p, const yaml_node_t *n, const char *path, const char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return cy_fail(p, n, path, "expected a value, got %s", cy_kind_name(n));
    if (cy_scalar_is_null(n))
        return cy_fail(p, n, path, "missing value");
    const char *v = (const char *)n->data.scalar.value;
    if (strlen(v) != n->data.scalar.length)
        return cy_fail(p, n, path, "value contains a NUL byte");
    *out = v;
    return 0;
}

int cy_want_plain(pctx_t *p, const yaml_node_t *n, const char *path, const char *what,
                  const char **out)
{
    int rc = cy_want_scalar(p, n, path, out);
    if (rc)
        return rc;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        char q[96];
        return cy_fail(p, n, path, "%s: expected %s, got a quoted string",
                       cy_quote(*out, q, sizeof(q)), what);
    }
    return 0;
}

int cy_get_str(pctx_t *p, const yaml_node_t *n, const char *path, char **out)
{
    const char *v = NULL;
    int rc = cy_want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    char *s = strdup(v);
    if (!s)
        return -ENOMEM;
    free(*out);
    *out = s;
    return 0;
}

int cy_get_bool(pctx_t *p, const yaml_node_t *n, const char *path, bool *out)
{
    const char *v = NULL;
    int rc = cy_want_plain(p, n, path, "true or false", &v);
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
    return cy_fail(p, n, path, "%s: expected true or false", cy_quote(v, q, sizeof(q)));
}

/* Decimal digits only: no sign, no spaces, no hex; saturates instead of wrapping. */
bool cy_parse_digits(const char *s, size_t len, uint64_t *out)
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

int cy_get_uint(pctx_t *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
                uint64_t *out)
{
    const char *v = NULL;
    int rc = cy_want_plain(p, n, path, "a whole number", &v);
    if (rc)
        return rc;
    char q[96];
    uint64_t x = 0;
    if (!cy_parse_digits(v, strlen(v), &x))
        return cy_fail(p, n, path, "%s: expected a whole number", cy_quote(v, q, sizeof(q)));
    if (x < min || x > max)
        return cy_fail(p, n, path, "%s: out of range (%llu..%llu)", cy_quote(v, q, sizeof(q)),
                       (unsigned long long)min, (unsigned long long)max);
    *out = x;
    return 0;
}

/* A finite number in [min, max]; min_open/max_open exclude the bound itself. */
int cy_get_double(pctx_t *p, const yaml_node_t *n, const char *path, double min, bool min_open,
                  double max, bool max_open, double *out)
{
    const char *v = NULL;
    int rc = cy_want_plain(p, n, path, "a number", &v);
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
        return cy_fail(p, n, path, "%s: expected a number", cy_quote(v, q, sizeof(q)));
    if (x < min || x > max || (min_open && x == min) || (max_open && x == max))
        return cy_fail(p, n, path, "%s: out of range (must be %s %g and %s %g)",
                       cy_quote(v, q, sizeof(q)), min_open ? ">" : ">=", min,
                       max_open ? "<" : "<=", max);
    *out = x;
    return 0;
}

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
int cy_get_number_unit(pctx_t *p, const yaml_node_t *n, const char *path, const unit_t *units,
                       const char *example, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *v = NULL;
    int rc = cy_want_scalar(p, n, path, &v);
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
    if (mult == 0 || !cy_parse_digits(v, digits, &x))
        return cy_fail(p, n, path, "%s: expected %s", cy_quote(v, q, sizeof(q)), example);
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
        return cy_fail(p, n, path, "%s: out of range (%s .. %s)", cy_quote(v, q, sizeof(q)), lo,
                       hi);
    }
    *out = x * mult;
    return 0;
}

/* "5ms", "100ms", "1s", "10s", "250us", "2m", "1h": an integer and a unit. */
int cy_get_duration(pctx_t *p, const yaml_node_t *n, const char *path, uint64_t min_ns,
                    uint64_t max_ns, uint64_t *out)
{
    return cy_get_number_unit(p, n, path, duration_units, "a duration such as 5ms, 100ms or 1s",
                              min_ns, max_ns, out);
}

/* "4194304", "4MiB", "512KiB", "1GiB". */
int cy_get_size(pctx_t *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
                uint64_t *out)
{
    return cy_get_number_unit(p, n, path, size_units, "a size such as 4194304, 512KiB or 4MiB", min,
                              max, out);
}

int cy_addr_parse(const char *text, cfg_addr_t *out, const char **why)
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
    if (!cy_parse_digits(port_s, strlen(port_s), &port)) {
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
    return cy_addr_parse(text, out, &why);
}

int cy_get_addr(pctx_t *p, const yaml_node_t *n, const char *path, cfg_addr_t *out)
{
    const char *v = NULL;
    int rc = cy_want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    const char *why = "invalid address";
    char q[96];
    if (cy_addr_parse(v, out, &why) != 0)
        return cy_fail(p, n, path, "%s: %s", cy_quote(v, q, sizeof(q)), why);
    return 0;
}

bool cy_addr_equal(const cfg_addr_t *a, const cfg_addr_t *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/*
 * Walks mapping N against KEYS (NULL-terminated): every key must be a known scalar and may
 * appear once. VALS[i] receives the value node of KEYS[i] (NULL when absent).
 */
int cy_map_fields_k(pctx_t *p, yaml_node_t *n, const char *path, const char *const *keys,
                    yaml_node_t **vals, yaml_node_t **keys_out)
{
    size_t nkeys = 0;
    while (keys[nkeys])
        nkeys++;
    yaml_node_t *keynodes[16] = {0};
    if (nkeys > 16)
        return cy_fail(p, n, path, "internal error: schema too large");
    for (size_t i = 0; i < nkeys; i++)
        vals[i] = NULL;
    if (n->type != YAML_MAPPING_NODE) {
        if (cy_scalar_is_null(n))
            return cy_fail(p, n, path, "expected a mapping, got nothing");
        return cy_fail(p, n, path, "expected a mapping, got %s", cy_kind_name(n));
    }
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = NULL, *v = NULL;
        int rc = cy_node_get(p, pair->key, path, n, &k);
        if (rc)
            return rc;
        if (k->type != YAML_SCALAR_NODE)
            return cy_fail(p, k, path, "keys must be plain names, got %s", cy_kind_name(k));
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
            return cy_fail(p, k, path, "unknown key %s (expected one of: %s)",
                           cy_quote(name, q, sizeof(q)), known);
        }
        cy_path_key(sub, path, name);
        if (vals[i])
            return cy_fail(p, k, sub, "duplicate key (first at line %lu)", cy_line(p, keynodes[i]));
        rc = cy_node_get(p, pair->value, sub, k, &v);
        if (rc)
            return rc;
        vals[i] = v;
        keynodes[i] = k;
    }
    if (keys_out)
        memcpy(keys_out, keynodes, nkeys * sizeof(*keys_out));
    return 0;
}

int cy_map_fields(pctx_t *p, yaml_node_t *n, const char *path, const char *const *keys,
                  yaml_node_t **vals)
{
    return cy_map_fields_k(p, n, path, keys, vals, NULL);
}

int cy_want_seq(pctx_t *p, yaml_node_t *n, const char *path, size_t max, size_t *count)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return cy_fail(p, n, path, "expected a list, got %s",
                       cy_scalar_is_null(n) ? "nothing" : cy_kind_name(n));
    size_t c = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (c > max)
        return cy_fail(p, n, path, "too many entries (%zu, at most %zu)", c, max);
    *count = c;
    return 0;
}

/* Joins a relative PATH onto the config's folder; absolute paths stay as they are. */
char *cy_resolve_path(const pctx_t *p, const char *path)
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

int cy_get_path(pctx_t *p, const yaml_node_t *n, const char *path, char **out)
{
    const char *v = NULL;
    int rc = cy_want_scalar(p, n, path, &v);
    if (rc)
        return rc;
    char *s = cy_resolve_path(p, v);
    if (!s)
        return -ENOMEM;
    free(*out);
    *out = s;
    return 0;
}

bool cy_id_valid(const char *s)
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

static void parser_error(const yaml_parser_t *parser, const pctx_t *p)
{
    const char *problem = parser->problem ? parser->problem : "syntax error";
    unsigned long line = (unsigned long)parser->problem_mark.line + 1 + p->line_base;
    if (parser->error == YAML_READER_ERROR)
        line = 1;
    if (parser->context)
        snprintf(p->err, p->errlen, "%s:%lu: yaml: %s %s (started at line %lu)", p->name, line,
                 problem, parser->context,
                 (unsigned long)parser->context_mark.line + 1 + p->line_base);
    else
        snprintf(p->err, p->errlen, "%s:%lu: yaml: %s", p->name, line, problem);
}

int cy_doc_load(pctx_t *p, const char *yaml, size_t len, yaml_document_t *doc,
                const char *empty_why)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, doc)) {
        parser_error(&parser, p);
        yaml_parser_delete(&parser);
        return FENNEC_ECONFIG;
    }
    int rc = 0;
    if (!yaml_document_get_root_node(doc)) {
        snprintf(p->err, p->errlen, "%s:%u: %s", p->name, 1 + p->line_base, empty_why);
        rc = FENNEC_ECONFIG;
    } else if (!yaml_parser_load(&parser, &extra)) {
        parser_error(&parser, p);
        rc = FENNEC_ECONFIG;
    } else {
        bool more = yaml_document_get_root_node(&extra) != NULL;
        unsigned long line = (unsigned long)extra.start_mark.line + 1 + p->line_base;
        yaml_document_delete(&extra);
        if (more) {
            snprintf(p->err, p->errlen, "%s:%lu: only one YAML document is allowed", p->name, line);
            rc = FENNEC_ECONFIG;
        }
    }
    yaml_parser_delete(&parser);
    if (rc == 0) {
        p->doc = doc;
        p->nnodes = (size_t)(doc->nodes.top - doc->nodes.start);
        p->seen = calloc(p->nnodes ? p->nnodes : 1, 1);
        if (!p->seen)
            rc = -ENOMEM;
        else
            p->seen[0] = 1; /* the root node is node 1 */
    }
    if (rc != 0)
        yaml_document_delete(doc);
    return rc;
}
