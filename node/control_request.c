/*
 * What a control request says, validated: JSON bodies (objects, record edits, change
 * batches) and the query string of a write (?wait=all). Pure: nothing here touches the
 * served zones or the network, so the unit tests call it as the endpoint does.
 */
#include "control_int.h"
#include "fennec/common.h"

#include <errno.h>
#include <jansson.h>
#include <libknot/descriptor.h>
#include <libknot/dname.h>
#include <libzscanner/scanner.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* record request validation                                                                  */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return FENNEC_EMALFORMED;
}

/* A field that goes into a one-line master-file record: no control characters (a newline
 * would start a second record or a $INCLUDE), and for names nothing the parser treats as
 * syntax. */
static bool text_ok(const char *s, bool is_name)
{
    if (is_name && s[0] == '$')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 && *p != '\t')
            return false;
        if (*p == 0x7f)
            return false;
        if (is_name &&
            (*p == ' ' || *p == '\t' || *p == ';' || *p == '(' || *p == ')' || *p == '"'))
            return false;
    }
    return true;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

/* The string member KEY of OBJ, length 1..MAX; NULL with a message otherwise. */
const char *control_get_string(json_t *obj, const char *key, size_t max, const char *what,
                               char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        fail(err, errlen, "missing field \"%s\" (%s)", key, what);
        return NULL;
    }
    if (!json_is_string(v)) {
        fail(err, errlen, "field \"%s\" must be a string (%s), not %s", key, what, json_kind(v));
        return NULL;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0) {
        fail(err, errlen, "field \"%s\" is empty (%s)", key, what);
        return NULL;
    }
    if (n > max) {
        fail(err, errlen, "field \"%s\" is longer than %zu characters", key, max);
        return NULL;
    }
    if (strlen(s) != n) {
        fail(err, errlen, "field \"%s\" contains a NUL character", key);
        return NULL;
    }
    return s;
}

int control_check_keys(json_t *obj, const char *const *allowed, const char *list, char *err,
                       size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = true;
        if (!ok)
            return fail(err, errlen, "unknown field \"%.64s\" (expected %s)", key, list);
    }
    return 0;
}

/* Parses BODY into a JSON object or explains why it is not one. */
json_t *control_load_object(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    if (len == 0) {
        fail(err, errlen, "the request needs a JSON object as its body");
        return NULL;
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        fail(err, errlen, "body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
             jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        fail(err, errlen, "body must be a JSON object, not %s", json_kind(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

static bool type_refused(uint16_t t)
{
    /* SOA belongs to the zone's serial management; the rest are meta or query types. */
    return t == 0 || t == 6 || t == 41 || (t >= 249 && t <= 255);
}

/* One record edit from its JSON object ROOT: the one validation of a record edit, for the
 * records endpoint and for each change of a batch. */
static int record_from_object(const char *zone, json_t *root, control_record_req_t *out, char *err,
                              size_t errlen)
{
    static const char *const keys[] = {"action", "name", "ttl", "type", "rdata", NULL};
    int rc = FENNEC_EMALFORMED;
    zs_scanner_t *zs = NULL;
    char *line = NULL;
    bool zs_ready = false;

    if (!json_is_object(root)) {
        fail(err, errlen, "a record edit must be a JSON object, not %s", json_kind(root));
        goto cleanup;
    }
    if (control_check_keys(root, keys, "action, name, ttl, type, rdata", err, errlen) != 0)
        goto cleanup;

    const char *action =
        control_get_string(root, "action", 16, "\"add\" or \"delete\"", err, errlen);
    if (!action)
        goto cleanup;
    if (strcmp(action, "add") == 0) {
        out->op = CONTROL_RECORD_ADD;
    } else if (strcmp(action, "delete") == 0) {
        out->op = CONTROL_RECORD_DELETE;
    } else {
        fail(err, errlen, "field \"action\" must be \"add\" or \"delete\", not \"%.32s\"", action);
        goto cleanup;
    }

    const char *name = control_get_string(
        root, "name", 1024, "owner name, relative to the zone, \"@\" for the apex", err, errlen);
    if (!name)
        goto cleanup;
    if (!text_ok(name, true)) {
        fail(err, errlen,
             "field \"name\" contains spaces, control characters or master-file syntax "
             "(; ( ) \" or a leading $)");
        goto cleanup;
    }

    json_t *jttl = json_object_get(root, "ttl");
    if (!jttl) {
        fail(err, errlen, "missing field \"ttl\" (seconds, 0 to 2147483647)");
        goto cleanup;
    }
    if (!json_is_integer(jttl)) {
        fail(err, errlen, "field \"ttl\" must be an integer number of seconds, not %s",
             json_kind(jttl));
        goto cleanup;
    }
    json_int_t ttl = json_integer_value(jttl);
    if (ttl < 0 || ttl > (json_int_t)UINT32_MAX) {
        fail(err, errlen, "field \"ttl\" must be between 0 and 2147483647 (RFC 2181), not %lld",
             (long long)ttl);
        goto cleanup;
    }
    /* A 32-bit TTL with the top bit set is capped, as in a zone file (RFC 2181 8). */
    out->ttl_asked = 0;
    if (ttl > (json_int_t)ZONE_TTL_MAX) {
        if (out->op == CONTROL_RECORD_ADD)
            out->ttl_asked = (uint32_t)ttl;
        ttl = ZONE_TTL_MAX;
    }

    const char *type =
        control_get_string(root, "type", 16, "record type such as A, AAAA, MX, TXT", err, errlen);
    if (!type)
        goto cleanup;
    uint16_t tnum = 0;
    {
        char upper[17];
        size_t i = 0;
        for (; type[i]; i++) {
            char c = type[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
                break;
            upper[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        }
        upper[i] = '\0';
        if (type[i] != '\0' || knot_rrtype_from_string(upper, &tnum) != 0) {
            fail(err, errlen, "field \"type\": unknown record type \"%.16s\"", type);
            goto cleanup;
        }
        if (type_refused(tnum)) {
            fail(err, errlen,
                 "field \"type\": %s records cannot be edited (SOA is maintained by the "
                 "server; meta and query types are not records)",
                 upper);
            goto cleanup;
        }
    }

    const char *rdata =
        control_get_string(root, "rdata", 16384, "record data in master-file format", err, errlen);
    if (!rdata)
        goto cleanup;
    if (!text_ok(rdata, false)) {
        fail(err, errlen, "field \"rdata\" contains control characters (newlines included)");
        goto cleanup;
    }

    /* Let the zone file parser judge the record exactly as it would in a zone file. */
    char origin[1030];
    size_t zl = strlen(zone);
    if (zl == 0 || zl > 1024) {
        fail(err, errlen, "invalid zone name");
        goto cleanup;
    }
    snprintf(origin, sizeof(origin), "%s%s", zone, zone[zl - 1] == '.' ? "" : ".");
    char tname[32];
    if (knot_rrtype_to_string(tnum, tname, sizeof(tname)) < 0)
        snprintf(tname, sizeof(tname), "TYPE%u", tnum);
    if (asprintf(&line, "%s %lld IN %s %s\n", name, (long long)ttl, tname, rdata) < 0) {
        line = NULL;
        rc = -ENOMEM;
        goto cleanup;
    }
    zs = calloc(1, sizeof(*zs));
    if (!zs) {
        rc = -ENOMEM;
        goto cleanup;
    }
    if (zs_init(zs, origin, 1, (uint32_t)ttl) != 0) {
        fail(err, errlen, "invalid zone name \"%.256s\"", zone);
        goto cleanup;
    }
    zs_ready = true;
    if (zs_set_input_string(zs, line, strlen(line)) != 0) {
        fail(err, errlen, "cannot parse the record: %s", zs_strerror(zs->error.code));
        goto cleanup;
    }
    int records = 0;
    for (int guard = 0; guard < 16; guard++) {
        zs_parse_record(zs);
        if (zs->state == ZS_STATE_DATA) {
            records++;
            if (records > 1)
                break;
            uint8_t apex[KNOT_DNAME_MAXLEN];
            if (!knot_dname_from_str(apex, origin, sizeof(apex))) {
                fail(err, errlen, "invalid zone name \"%.256s\"", zone);
                goto cleanup;
            }
            knot_dname_to_lower(apex);
            if (zs->r_owner_length > sizeof(out->owner_wire)) {
                fail(err, errlen, "field \"name\": the name is too long");
                goto cleanup;
            }
            memcpy(out->owner_wire, zs->r_owner, zs->r_owner_length);
            out->owner_len = zs->r_owner_length;
            knot_dname_to_lower(out->owner_wire);
            char text[KNOT_DNAME_TXT_MAXLEN + 1];
            if (!knot_dname_to_str(text, out->owner_wire, sizeof(text))) {
                fail(err, errlen, "field \"name\": the name is not valid");
                goto cleanup;
            }
            size_t tl = strlen(text);
            if (tl > 1 && text[tl - 1] == '.')
                text[--tl] = '\0';
            _Static_assert(sizeof(text) <= sizeof(out->owner), "owner text fits");
            if (knot_dname_in_bailiwick(out->owner_wire, apex) < 0) {
                fail(err, errlen, "field \"name\": %.256s is not inside zone %.256s", text, zone);
                goto cleanup;
            }
            snprintf(out->owner, sizeof(out->owner), "%s", text);
            out->ttl = zs->r_ttl;
            out->type = zs->r_type;
            snprintf(out->type_name, sizeof(out->type_name), "%s", tname);
            if (zs->r_data_length > sizeof(out->rdata)) {
                fail(err, errlen, "field \"rdata\" is too long");
                goto cleanup;
            }
            memcpy(out->rdata, zs->r_data, zs->r_data_length);
            out->rdata_len = zs->r_data_length;
        } else if (zs->state == ZS_STATE_ERROR) {
            fail(err, errlen, "the record \"%.64s %lld IN %s %.128s\" does not parse: %s", name,
                 (long long)ttl, tname, rdata, zs_strerror(zs->error.code));
            goto cleanup;
        } else if (zs->state == ZS_STATE_INCLUDE) {
            fail(err, errlen, "directives are not allowed in a record");
            goto cleanup;
        } else {
            break; /* EOF or stop */
        }
    }
    if (records != 1) {
        fail(err, errlen, "the request must describe exactly one record, found %s",
             records == 0 ? "none" : "more");
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (zs_ready)
        zs_deinit(zs);
    free(zs);
    free(line);
    return rc;
}

int control_record_parse(const char *zone, const char *body, size_t len, control_record_req_t *out,
                         char *err, size_t errlen)
{
    if (len > CONTROL_MAX_BODY) {
        snprintf(err, errlen, "body is larger than %d bytes", CONTROL_MAX_BODY);
        return FENNEC_ESPACE;
    }
    json_t *root = control_load_object(body, len, err, errlen);
    if (!root)
        return FENNEC_EMALFORMED;
    int rc = record_from_object(zone, root, out, err, errlen);
    json_decref(root);
    return rc;
}

void control_record_change(const control_record_req_t *rr, zone_change_t *out)
{
    *out = (zone_change_t){.add = rr->op == CONTROL_RECORD_ADD,
                           .owner = rr->owner_wire,
                           .type = rr->type,
                           .ttl = rr->ttl,
                           .rdata = rr->rdata,
                           .rdlen = (uint16_t)rr->rdata_len};
}

void control_batch_deinit(control_batch_t *b)
{
    if (!b)
        return;
    free(b->changes);
    free(b->data);
    free(b->ttl_asked);
    memset(b, 0, sizeof(*b));
}

int control_batch_parse(const char *zone, const char *body, size_t len, control_batch_t *out,
                        size_t *at, char *err, size_t errlen)
{
    static const char *const keys[] = {"changes", NULL};
    int rc = FENNEC_EMALFORMED;
    json_t *root = NULL;
    control_record_req_t *rr = NULL;
    size_t *offs = NULL, used = 0, cap = 0;
    char why[1024];

    memset(out, 0, sizeof(*out));
    *at = SIZE_MAX;
    if (len > CONTROL_MAX_BODY) {
        snprintf(err, errlen, "body is larger than %d bytes", CONTROL_MAX_BODY);
        return FENNEC_ESPACE;
    }
    root = control_load_object(body, len, err, errlen);
    if (!root)
        goto cleanup;
    if (control_check_keys(root, keys, "changes", err, errlen) != 0)
        goto cleanup;
    json_t *list = json_object_get(root, "changes");
    if (!list) {
        fail(err, errlen, "missing field \"changes\" (an array of record edits)");
        goto cleanup;
    }
    if (!json_is_array(list)) {
        fail(err, errlen, "field \"changes\" must be an array of record edits, not %s",
             json_kind(list));
        goto cleanup;
    }
    size_t n = json_array_size(list);
    if (n == 0) {
        fail(err, errlen, "field \"changes\" is empty: a batch needs at least one change");
        goto cleanup;
    }
    rr = malloc(sizeof(*rr));
    out->changes = calloc(n, sizeof(*out->changes));
    offs = calloc(2 * n, sizeof(*offs)); /* where change I's owner and rdata start */
    if (!rr || !out->changes || !offs) {
        rc = -ENOMEM;
        goto cleanup;
    }
    /* Owners and rdata go one after the other into one buffer; the changes point into it
     * once it has stopped moving. */
    for (size_t i = 0; i < n; i++) {
        int r = record_from_object(zone, json_array_get(list, i), rr, why, sizeof(why));
        if (r != 0) {
            rc = r;
            *at = i;
            fail(err, errlen, "changes[%zu]: %s", i, why);
            goto cleanup;
        }
        size_t need = rr->owner_len + rr->rdata_len;
        if (used + need > cap) {
            size_t ncap = cap ? cap : 4096;
            while (ncap < used + need)
                ncap *= 2;
            uint8_t *nd = realloc(out->data, ncap);
            if (!nd) {
                rc = -ENOMEM;
                goto cleanup;
            }
            out->data = nd;
            cap = ncap;
        }
        offs[2 * i] = used;
        offs[2 * i + 1] = used + rr->owner_len;
        memcpy(out->data + used, rr->owner_wire, rr->owner_len);
        memcpy(out->data + used + rr->owner_len, rr->rdata, rr->rdata_len);
        used += need;
        control_record_change(rr, &out->changes[i]);
        if (rr->ttl_asked && !out->ttl_asked && !(out->ttl_asked = calloc(n, sizeof(uint32_t)))) {
            rc = -ENOMEM;
            goto cleanup;
        }
        if (rr->ttl_asked)
            out->ttl_asked[i] = rr->ttl_asked;
    }
    for (size_t i = 0; i < n; i++) {
        out->changes[i].owner = out->data + offs[2 * i];
        out->changes[i].rdata = out->data + offs[2 * i + 1];
    }
    out->count = n;
    rc = 0;
cleanup:
    if (rc != 0)
        control_batch_deinit(out);
    if (rc == -ENOMEM)
        fail(err, errlen, "out of memory");
    free(offs);
    free(rr);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* the query string of a write                                                               */

void control_wait_init(control_wait_t *w)
{
    memset(w, 0, sizeof(*w));
    w->timeout_ms = CONTROL_WAIT_DEFAULT_MS;
}

int control_wait_arg(control_wait_t *w, bool write, const char *key, const char *value, char *err,
                     size_t errlen)
{
    if (!write)
        return fail(err, errlen,
                    "this request takes no query parameters (got \"%.64s\"); ?wait=all and "
                    "timeout_ms apply to writes",
                    key);
    if (strcmp(key, "wait") == 0) {
        if (w->has_wait)
            return fail(err, errlen, "query parameter \"wait\" is given twice");
        if (!value || strcmp(value, "all") != 0)
            return fail(err, errlen, "query parameter \"wait\" must be \"all\", not \"%.64s\"",
                        value ? value : "");
        w->has_wait = true;
        w->all = true;
        return 0;
    }
    if (strcmp(key, "timeout_ms") == 0) {
        if (w->has_timeout)
            return fail(err, errlen, "query parameter \"timeout_ms\" is given twice");
        unsigned long v = 0;
        size_t n = value ? strlen(value) : 0;
        bool ok = n > 0 && n <= 5;
        for (size_t i = 0; ok && i < n; i++) {
            ok = value[i] >= '0' && value[i] <= '9';
            v = v * 10 + (unsigned long)(value[i] - '0');
        }
        if (!ok || v < 1 || v > CONTROL_WAIT_MAX_MS)
            return fail(err, errlen,
                        "query parameter \"timeout_ms\" must be a whole number of milliseconds "
                        "from 1 to %d, not \"%.64s\"",
                        CONTROL_WAIT_MAX_MS, value ? value : "");
        w->has_timeout = true;
        w->timeout_ms = (uint32_t)v;
        return 0;
    }
    return fail(err, errlen,
                "unknown query parameter \"%.64s\" (a write takes wait=all and "
                "timeout_ms=N)",
                key);
}

int control_wait_check(const control_wait_t *w, char *err, size_t errlen)
{
    if (w->has_timeout && !w->all)
        return fail(err, errlen, "query parameter \"timeout_ms\" needs wait=all");
    return 0;
}
