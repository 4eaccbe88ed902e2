/*
 * Zone store, loading: master files are parsed with libzscanner into a temporary record
 * list, sorted by owner, then turned into nodes (empty non-terminals included) in one arena
 * and a name index. The zone rules and the node layout are shared with updates
 * (zone_update.c), so a zone changed record by record is the zone a load would build.
 */
#include "zone_int.h"

#include "fennec/common.h"

#include <errno.h>
#include <libknot/descriptor.h>
#include <libzscanner/scanner.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- rules shared with updates ---- */

const char *zone_type_text(uint16_t type)
{
    static __thread char buf[16];
    const knot_rdata_descriptor_t *d = knot_get_rdata_descriptor(type);
    if (d && d->type_name)
        return d->type_name;
    snprintf(buf, sizeof(buf), "TYPE%u", type);
    return buf;
}

bool zone_type_allowed(uint16_t type)
{
    return type != 0 && type != WIRE_TYPE_OPT && type != WIRE_TYPE_AXFR && type != WIRE_TYPE_IXFR &&
           type != WIRE_TYPE_ANY && type != 250 && type != 249;
}

/*
 * Whether RDATA (LEN bytes) has the shape its TYPE requires: fixed-size fields, names that
 * end inside it, nothing left over. The zone file's generic form (RFC 3597 "\\# 3 010203")
 * can give a known type any bytes at all; RFC 3597 section 5 says they must match the
 * type's own format, and an answer built from them would be malformed. Unknown types take
 * any rdata.
 */
bool zone_rdata_fits(uint16_t type, const uint8_t *rd, size_t len)
{
    const knot_rdata_descriptor_t *d = knot_get_rdata_descriptor(type);
    size_t pos = 0;
    for (int i = 0; i < KNOT_MAX_RDATA_BLOCKS; i++) {
        int b = d->block_types[i];
        if (b == KNOT_RDATA_WF_END)
            return pos == len;
        if (b > 0) {
            if (len - pos < (size_t)b)
                return false;
            pos += (size_t)b;
        } else if (b == KNOT_RDATA_WF_FIXED_DNAME || b == KNOT_RDATA_WF_COMPRESSIBLE_DNAME ||
                   b == KNOT_RDATA_WF_DECOMPRESSIBLE_DNAME) {
            int l = wire_name_len(rd + pos, len - pos);
            if (l < 0)
                return false;
            pos += (size_t)l;
        } else if (b == KNOT_RDATA_WF_NAPTR_HEADER) {
            /* order, preference, then flags, services and regexp as character-strings */
            if (len - pos < 4)
                return false;
            pos += 4;
            for (int s = 0; s < 3; s++) {
                if (pos >= len || len - pos < 1u + rd[pos])
                    return false;
                pos += 1u + rd[pos];
            }
        } else {
            return true; /* KNOT_RDATA_WF_REMAINDER: the rest, whatever it is */
        }
    }
    return pos == len;
}

void zone_rrset_kinds(uint16_t type, uint8_t *compress, uint8_t *addl)
{
    *compress = ZONE_COMPRESS_NONE;
    *addl = ZONE_ADDL_NONE;
    switch (type) {
    case WIRE_TYPE_NS:
        *compress = ZONE_COMPRESS_NAME0;
        *addl = ZONE_ADDL_NAME0;
        break;
    case WIRE_TYPE_CNAME:
    case WIRE_TYPE_PTR:
    case 3: /* MD */
    case 4: /* MF */
    case 7: /* MB */
    case 8: /* MG */
    case 9: /* MR */
        *compress = ZONE_COMPRESS_NAME0;
        break;
    case WIRE_TYPE_MX:
        *compress = ZONE_COMPRESS_NAME2;
        *addl = ZONE_ADDL_NAME2;
        break;
    case WIRE_TYPE_SOA:
    case 14: /* MINFO */
        *compress = ZONE_COMPRESS_TWONAME;
        break;
    case WIRE_TYPE_SRV:
        *addl = ZONE_ADDL_NAME6;
        break;
    case WIRE_TYPE_SVCB:
    case WIRE_TYPE_HTTPS:
        *addl = ZONE_ADDL_SVCB;
        break;
    default:
        break;
    }
}

int zone_rdata_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return (int)alen - (int)blen;
}

int zone_soa_serial_offset(const uint8_t *rd, size_t rdlen)
{
    int l1 = wire_name_len(rd, rdlen);
    int l2 = l1 > 0 ? wire_name_len(rd + l1, rdlen - (size_t)l1) : -1;
    if (l1 < 0 || l2 < 0 || (size_t)(l1 + l2 + 20) != rdlen)
        return -1;
    return l1 + l2;
}

static bool rec_dup(const zone_rec_t *a, const zone_rec_t *b)
{
    return a->type == b->type && zone_rdata_cmp(a->rdata, a->rdlen, b->rdata, b->rdlen) == 0;
}

zone_node_t *zone_node_build(arena_t *arena, const uint8_t *name, size_t len, bool apex,
                             const zone_rec_t *recs, size_t n, int *rc)
{
    size_t types = 0, bytes = 0;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && rec_dup(&recs[k], &recs[k - 1]))
            continue;
        if (k == 0 || recs[k].type != recs[k - 1].type)
            types++;
        bytes += 2u + recs[k].rdlen;
    }
    size_t head = sizeof(zone_node_t) + types * sizeof(zone_rrset_t);
    size_t total = head + ((len + 7) & ~(size_t)7) + bytes;
    uint8_t *block = arena ? arena_alloc(arena, total) : malloc(total);
    if (!block) {
        *rc = -ENOMEM;
        return NULL;
    }
    zone_node_t *node = (zone_node_t *)block;
    zone_rrset_t *sets = (zone_rrset_t *)(block + sizeof(zone_node_t));
    uint8_t *nm = block + head;
    uint8_t *data = nm + ((len + 7) & ~(size_t)7);
    memcpy(nm, name, len);
    *node = (zone_node_t){
        .hash = zone_name_hash(name, len),
        .name_len = (uint8_t)len,
        .labels = (uint8_t)wire_name_labels(name),
        .flags = (uint16_t)((arena ? 0 : ZONE_NODE_HEAP) | (apex ? ZONE_NODE_APEX : 0) |
                            (name[0] == 1 && name[1] == '*' ? ZONE_NODE_WILDCARD : 0)),
        .rrset_count = (uint16_t)types,
        .rrsets = types ? sets : NULL,
        .name = nm,
    };
    size_t t = 0, p = 0;
    for (size_t k = 0; k < n;) {
        size_t m = k, count = 0, start = p;
        uint32_t ttl = recs[k].ttl;
        for (; m < n && recs[m].type == recs[k].type; m++) {
            /* RFC 2181 5.2: one TTL per RRset; the smallest wins, as the safest choice. */
            if (recs[m].ttl < ttl)
                ttl = recs[m].ttl;
            if (m > k && rec_dup(&recs[m], &recs[m - 1]))
                continue;
            wire_put_u16(data + p, recs[m].rdlen);
            memcpy(data + p + 2, recs[m].rdata, recs[m].rdlen);
            p += 2u + recs[m].rdlen;
            count++;
        }
        if (count > 0xFFFF || p - start > 0xFFFFFFu) {
            if (!arena)
                free(block);
            *rc = FENNEC_EZONE;
            return NULL;
        }
        zone_rrset_t *rs = &sets[t++];
        rs->type = recs[k].type;
        rs->count = (uint16_t)count;
        rs->ttl = ttl;
        rs->len = (uint32_t)(p - start);
        rs->data = data + start;
        zone_rrset_kinds(rs->type, &rs->compress, &rs->addl);
        if (rs->type == WIRE_TYPE_NS && !apex)
            node->flags |= ZONE_NODE_DELEG;
        if (rs->type == WIRE_TYPE_DNAME)
            node->flags |= ZONE_NODE_DNAME;
        k = m;
    }
    *rc = 0;
    return node;
}

const char *zone_node_rules(const zone_node_t *node)
{
    const zone_rrset_t *cname = zone_node_rrset(node, WIRE_TYPE_CNAME);
    if (cname && cname->count > 1)
        return "more than one CNAME at %s";
    const zone_rrset_t *dname = zone_node_rrset(node, WIRE_TYPE_DNAME);
    if (dname && dname->count > 1)
        return "more than one DNAME at %s (RFC 6672 2.4)";
    if (cname) {
        for (unsigned i = 0; i < node->rrset_count; i++) {
            uint16_t t = node->rrsets[i].type;
            if (t != WIRE_TYPE_CNAME && t != WIRE_TYPE_RRSIG && t != WIRE_TYPE_NSEC)
                return "CNAME and other data at %s (RFC 1034 3.6.2)";
        }
    }
    const zone_rrset_t *soa = zone_node_rrset(node, WIRE_TYPE_SOA);
    if (!(node->flags & ZONE_NODE_APEX))
        return soa ? "SOA at %s, which is not the apex" : NULL;
    if (!soa)
        return "no SOA record at the apex %s";
    if (soa->count != 1)
        return "more than one SOA record at the apex %s";
    if (zone_soa_serial_offset(soa->data + 2, wire_get_u16(soa->data)) < 0)
        return "malformed SOA at %s";
    if (!zone_node_rrset(node, WIRE_TYPE_NS))
        return "no NS records at the apex %s";
    if (cname)
        return "CNAME at the apex %s";
    return NULL;
}

/* ---- loading ---- */

typedef struct rec {
    const uint8_t *owner; /* lower-case wire, in the load arena */
    const uint8_t *rdata;
    uint32_t ttl;
    uint16_t type;
    uint16_t rdlen;
    uint8_t owner_len;
    uint64_t line;
    const char *file; /* the file it came from ($INCLUDE), interned in the load arena */
} rec_t;

typedef struct loader {
    zone_t *zone;
    arena_t tmp; /* records, freed after the build */
    rec_t *recs;
    size_t count;
    size_t cap;
    char *err;
    size_t errlen;
    int rc;
    const char *source;
    const char *last_file; /* interned copy of the current file name */
    bool no_digest;        /* records from an entry: no file to compare with later */
} loader_t;

static void loader_fail(loader_t *ld, const char *file, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void loader_fail(loader_t *ld, const char *file, uint64_t line, const char *fmt, ...)
{
    if (ld->rc != 0)
        return; /* keep the first error */
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line)
        snprintf(ld->err, ld->errlen, "%s:%llu: %s", file, (unsigned long long)line, msg);
    else
        snprintf(ld->err, ld->errlen, "%s: %s", file, msg);
    ld->rc = FENNEC_EZONE;
}

static const char *scanner_file(const zs_scanner_t *s, const loader_t *ld)
{
    return (s->file.name && s->file.name[0]) ? s->file.name : ld->source;
}

static void on_error(zs_scanner_t *s)
{
    loader_t *ld = s->process.data;
    loader_fail(ld, scanner_file(s, ld), s->line_counter, "%s", zs_strerror(s->error.code));
    s->state = ZS_STATE_STOP;
}

static void on_record(zs_scanner_t *s)
{
    loader_t *ld = s->process.data;
    zone_t *z = ld->zone;
    const char *file = scanner_file(s, ld);
    uint8_t owner[WIRE_NAME_MAX];
    char text[WIRE_NAME_TEXT_MAX];

    if (s->r_owner_length > WIRE_NAME_MAX) {
        loader_fail(ld, file, s->line_counter, "owner name too long");
        goto stop;
    }
    memcpy(owner, s->r_owner, s->r_owner_length);
    wire_name_lower(owner);
    if (!wire_name_in(owner, s->r_owner_length, z->apex_wire, z->apex_len)) {
        wire_name_to_text(owner, text);
        loader_fail(ld, file, s->line_counter, "%s is outside the zone %s", text, z->name);
        goto stop;
    }
    if (s->r_class != WIRE_CLASS_IN) {
        loader_fail(ld, file, s->line_counter, "class %u is not supported (only IN)", s->r_class);
        goto stop;
    }
    if (!zone_type_allowed(s->r_type)) {
        loader_fail(ld, file, s->line_counter, "type %u cannot appear in a zone", s->r_type);
        goto stop;
    }
    if (!zone_rdata_fits(s->r_type, s->r_data, s->r_data_length)) {
        loader_fail(ld, file, s->line_counter, "the rdata does not have the form of type %s",
                    zone_type_text(s->r_type));
        goto stop;
    }
    if (ld->count == ld->cap) {
        size_t ncap = ld->cap ? ld->cap * 2 : 1024;
        rec_t *n = realloc(ld->recs, ncap * sizeof(*n));
        if (!n)
            goto oom;
        ld->recs = n;
        ld->cap = ncap;
    }
    uint8_t *o = arena_alloc(&ld->tmp, s->r_owner_length);
    uint8_t *rd = arena_alloc(&ld->tmp, s->r_data_length ? s->r_data_length : 1);
    if (!o || !rd)
        goto oom;
    memcpy(o, owner, s->r_owner_length);
    memcpy(rd, s->r_data, s->r_data_length);
    if (!ld->last_file || strcmp(ld->last_file, file) != 0) {
        size_t fl = strlen(file) + 1;
        char *f = arena_alloc(&ld->tmp, fl);
        if (!f)
            goto oom;
        memcpy(f, file, fl);
        ld->last_file = f;
    }
    ld->recs[ld->count++] = (rec_t){
        .owner = o,
        .owner_len = (uint8_t)s->r_owner_length,
        .type = s->r_type,
        .ttl = s->r_ttl,
        .rdata = rd,
        .rdlen = (uint16_t)s->r_data_length,
        .line = s->line_counter,
        .file = ld->last_file,
    };
    return;
oom:
    loader_fail(ld, file, s->line_counter, "out of memory");
stop:
    s->state = ZS_STATE_STOP;
}

static int rec_cmp(const void *pa, const void *pb)
{
    const rec_t *a = pa, *b = pb;
    if (a->owner_len != b->owner_len)
        return (int)a->owner_len - (int)b->owner_len;
    int c = memcmp(a->owner, b->owner, a->owner_len);
    if (c)
        return c;
    if (a->type != b->type)
        return (int)a->type - (int)b->type;
    c = zone_rdata_cmp(a->rdata, a->rdlen, b->rdata, b->rdlen);
    if (c)
        return c;
    return a->line < b->line ? -1 : (a->line > b->line);
}

/* Inserts NODE (built in the zone's arena) and links it to its parent, creating empty
 * non-terminals up to the apex. Records are sorted by owner length, so an owner's ancestors
 * that have records are already in. */
static int node_link(zone_t *z, zone_node_t *node)
{
    if (zone_index_full(z, z->node_count + 1)) {
        int rc = zone_index_resize(z, NULL, zone_slots(z) * 2);
        if (rc)
            return rc;
    }
    int rc = zone_index_put(z, NULL, node, false);
    if (rc)
        return rc;
    z->node_count++;
    zone_tally(z, node, 1);
    if (node->name_len == z->apex_len)
        return 0;
    size_t skip = (size_t)node->name[0] + 1;
    zone_node_t *parent =
        (zone_node_t *)zone_node_find(z, node->name + skip, node->name_len - skip);
    if (!parent) {
        parent = zone_node_build(&z->store->arena, node->name + skip, node->name_len - skip, false,
                                 NULL, 0, &rc);
        if (!parent || (rc = node_link(z, parent)) != 0)
            return parent ? rc : -ENOMEM;
    }
    parent->children++;
    if (node->flags & ZONE_NODE_WILDCARD)
        parent->flags |= ZONE_NODE_HAS_WILDCARD;
    return 0;
}

static uint64_t digest_rec(uint64_t h, const rec_t *r)
{
    uint8_t fixed[8];
    wire_put_u16(fixed, r->type);
    wire_put_u32(fixed + 2, r->ttl);
    wire_put_u16(fixed + 6, r->rdlen);
    h = zone_digest_add(h, &r->owner_len, 1);
    h = zone_digest_add(h, r->owner, r->owner_len);
    h = zone_digest_add(h, fixed, sizeof(fixed));
    return zone_digest_add(h, r->rdata, r->rdlen);
}

static int zone_build(loader_t *ld)
{
    zone_t *z = ld->zone;
    int rc = 0;
    if (ld->count == 0) {
        loader_fail(ld, ld->source, 0, "no records (a zone needs SOA and NS at %s)", z->name);
        return FENNEC_EZONE;
    }
    /* Records from a snapshot or an entry come in this order already: check, do not sort. */
    bool sorted = true;
    for (size_t i = 1; i < ld->count && sorted; i++)
        sorted = rec_cmp(&ld->recs[i - 1], &ld->recs[i]) < 0;
    if (!sorted)
        qsort(ld->recs, ld->count, sizeof(rec_t), rec_cmp);

    size_t owners = 1;
    for (size_t i = 1; i < ld->count; i++) {
        const rec_t *a = &ld->recs[i], *b = &ld->recs[i - 1];
        if (a->owner_len != b->owner_len || memcmp(a->owner, b->owner, a->owner_len) != 0)
            owners++;
    }
    uint32_t size = ZONE_PAGE_SLOTS;
    while (size < owners * 2 && size < (1u << 30))
        size <<= 1;
    if ((rc = zone_index_resize(z, NULL, size)) != 0)
        return rc;

    zone_rec_t *group = NULL;
    size_t group_cap = 0;
    uint64_t digest = UINT64_C(14695981039346656037);
    size_t i = 0;
    while (i < ld->count) {
        const rec_t *r = &ld->recs[i];
        size_t j = i;
        while (j < ld->count && ld->recs[j].owner_len == r->owner_len &&
               memcmp(ld->recs[j].owner, r->owner, r->owner_len) == 0)
            j++;
        if (j - i > group_cap) {
            size_t ncap = (j - i) * 2;
            zone_rec_t *g = realloc(group, ncap * sizeof(*g));
            if (!g) {
                rc = -ENOMEM;
                goto cleanup;
            }
            group = g;
            group_cap = ncap;
        }
        for (size_t k = i; k < j; k++) {
            const rec_t *q = &ld->recs[k];
            group[k - i] = (zone_rec_t){q->rdata, q->ttl, q->type, q->rdlen};
            if (!ld->no_digest &&
                (k == i || !(q->type == q[-1].type &&
                             zone_rdata_cmp(q->rdata, q->rdlen, q[-1].rdata, q[-1].rdlen) == 0)))
                digest = digest_rec(digest, q);
        }
        bool apex = r->owner_len == z->apex_len;
        zone_node_t *node =
            zone_node_build(&z->store->arena, r->owner, r->owner_len, apex, group, j - i, &rc);
        if (!node) {
            if (rc == FENNEC_EZONE)
                loader_fail(ld, r->file, r->line, "RRset too large");
            goto cleanup;
        }
        const char *broken = zone_node_rules(node);
        if (broken && !apex) {
            /* Name the line of the CNAME (the second one, when there are two). */
            const rec_t *at = r;
            unsigned seen = 0;
            for (size_t k = i; k < j; k++)
                if (ld->recs[k].type == WIRE_TYPE_CNAME && seen++ < 2)
                    at = &ld->recs[k];
            char text[WIRE_NAME_TEXT_MAX];
            wire_name_to_text(r->owner, text);
            char msg[WIRE_NAME_TEXT_MAX + 128];
            snprintf(msg, sizeof(msg), broken, text);
            loader_fail(ld, at->file, at->line, "%s", msg);
            rc = FENNEC_EZONE;
            goto cleanup;
        }
        for (unsigned s = 0; s < node->rrset_count; s++)
            z->records += node->rrsets[s].count;
        if ((rc = node_link(z, node)) != 0)
            goto cleanup;
        if (apex)
            z->apex = node;
        i = j;
    }
    if (!z->apex) {
        loader_fail(ld, ld->source, 0, "no SOA record at the apex %s", z->name);
        rc = FENNEC_EZONE;
        goto cleanup;
    }
    const char *broken = zone_node_rules(z->apex);
    if (broken) {
        char msg[WIRE_NAME_TEXT_MAX + 128];
        snprintf(msg, sizeof(msg), broken, z->name);
        loader_fail(ld, ld->source, 0, "%s", msg);
        rc = FENNEC_EZONE;
        goto cleanup;
    }
    const zone_rrset_t *soa = zone_node_rrset(z->apex, WIRE_TYPE_SOA);
    z->serial = wire_get_u32(soa->data + 2 +
                             zone_soa_serial_offset(soa->data + 2, wire_get_u16(soa->data)));
    z->file_digest = digest;
cleanup:
    free(group);
    return rc;
}

/* A new empty zone ORIGIN with its store, for LD to fill; NULL with LD's error set (or
 * -ENOMEM in *RC). */
static zone_t *zone_begin(loader_t *ld, const char *origin, int *rc)
{
    uint8_t apex[WIRE_NAME_MAX];
    char name[WIRE_NAME_TEXT_MAX];
    if (ld->err && ld->errlen)
        ld->err[0] = 0;
    int alen = wire_name_from_text(origin, apex);
    if (alen < 0) {
        loader_fail(ld, ld->source, 0, "invalid zone name \"%s\"", origin);
        *rc = ld->rc;
        return NULL;
    }
    wire_name_lower(apex);
    wire_name_to_text(apex, name);
    zone_t *z = zone_version_new(name, apex, (size_t)alen, ZONE_PAGE_SLOTS);
    if (z && !(z->store = calloc(1, sizeof(*z->store)))) {
        zone_destroy(z);
        z = NULL;
    }
    if (!z) {
        *rc = -ENOMEM;
        return NULL;
    }
    atomic_init(&z->store->refs, 1);
    ld->zone = z;
    return z;
}

static int zone_load(const char *origin, const char *path, const char *text, size_t textlen,
                     const char *source, zone_t **out, char *err, size_t errlen)
{
    int rc = 0;
    zs_scanner_t *s = NULL;
    loader_t ld = {.err = err, .errlen = errlen, .source = source};
    zone_t *z = zone_begin(&ld, origin, &rc);
    if (!z)
        return rc;
    const char *name = z->name;
    char origin_dot[WIRE_NAME_TEXT_MAX + 2];
    snprintf(origin_dot, sizeof(origin_dot), "%s.", strcmp(name, ".") ? name : "");

    s = malloc(sizeof(*s));
    if (!s) {
        rc = -ENOMEM;
        goto cleanup;
    }
    if (zs_init(s, origin_dot, WIRE_CLASS_IN, 3600) != 0) {
        loader_fail(&ld, source, 0, "cannot start the zone parser");
        rc = ld.rc;
        free(s);
        s = NULL;
        goto cleanup;
    }
    if (path) {
        struct stat st;
        if (stat(path, &st) != 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto cleanup;
        }
        z->path = strdup(path);
        if (!z->path) {
            rc = -ENOMEM;
            goto cleanup;
        }
        if (zs_set_input_file(s, path) != 0) {
            loader_fail(&ld, source, 0, "%s", zs_strerror(s->error.code));
            rc = ld.rc;
            goto cleanup;
        }
    } else if (zs_set_input_string(s, text, textlen) != 0) {
        loader_fail(&ld, source, 0, "%s", zs_strerror(s->error.code));
        rc = ld.rc;
        goto cleanup;
    }
    zs_set_processing(s, on_record, on_error, &ld);
    if (zs_parse_all(s) != 0 && ld.rc == 0)
        loader_fail(&ld, source, s->line_counter, "%s", zs_strerror(s->error.code));
    if (ld.rc) {
        rc = ld.rc;
        goto cleanup;
    }
    rc = zone_build(&ld);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", source);
    if (rc == 0 && ld.rc)
        rc = ld.rc;
cleanup:
    if (s) {
        zs_deinit(s);
        free(s);
    }
    arena_free(&ld.tmp);
    free(ld.recs);
    if (rc) {
        zone_destroy(z);
        return rc;
    }
    *out = z;
    return 0;
}

int zone_load_file(const char *origin, const char *path, zone_t **out, char *err, size_t errlen)
{
    return zone_load(origin, path, NULL, 0, path, out, err, errlen);
}

int zone_load_text(const char *origin, const char *text, size_t len, const char *name, zone_t **out,
                   char *err, size_t errlen)
{
    return zone_load(origin, NULL, text, len, name, out, err, errlen);
}

int zone_from_records(const char *origin, const zone_change_t *recs, size_t count, const char *name,
                      zone_t **out, char *err, size_t errlen)
{
    int rc = 0;
    loader_t ld = {.err = err, .errlen = errlen, .source = name};
    char text[WIRE_NAME_TEXT_MAX];
    zone_t *z = zone_begin(&ld, origin, &rc);
    if (!z)
        return rc;
    ld.recs = fennec_alloc_large((count ? count : 1) * sizeof(*ld.recs));
    if (!ld.recs) {
        rc = -ENOMEM;
        goto cleanup;
    }
    ld.no_digest = true;
    for (size_t i = 0; i < count; i++) {
        const zone_change_t *c = &recs[i];
        int olen = wire_name_len(c->owner, WIRE_NAME_MAX);
        if (olen < 0) {
            loader_fail(&ld, name, 0, "record %zu: invalid owner name", i);
            break;
        }
        /* Owners from entries are lower case already; others are copied and lowered. */
        const uint8_t *o = c->owner;
        for (int k = 0; k < olen; k++) {
            if (c->owner[k] >= 'A' && c->owner[k] <= 'Z') {
                uint8_t *lo = arena_alloc(&ld.tmp, (size_t)olen);
                if (!lo) {
                    rc = -ENOMEM;
                    goto cleanup;
                }
                memcpy(lo, c->owner, (size_t)olen);
                wire_name_lower(lo);
                o = lo;
                break;
            }
        }
        if (!wire_name_in(o, (size_t)olen, z->apex_wire, z->apex_len)) {
            wire_name_to_text(o, text);
            loader_fail(&ld, name, 0, "record %zu: %s is outside the zone %s", i, text, z->name);
            break;
        }
        if (!zone_type_allowed(c->type) || !zone_rdata_fits(c->type, c->rdata, c->rdlen)) {
            wire_name_to_text(o, text);
            loader_fail(&ld, name, 0, "record %zu: %s type %u: not a record a zone can hold", i,
                        text, c->type);
            break;
        }
        ld.recs[ld.count++] = (rec_t){.owner = o,
                                      .owner_len = (uint8_t)olen,
                                      .type = c->type,
                                      .ttl = c->ttl,
                                      .rdata = c->rdata,
                                      .rdlen = c->rdlen,
                                      .line = i + 1,
                                      .file = name};
    }
    rc = ld.rc ? ld.rc : zone_build(&ld);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", name);
cleanup:
    arena_free(&ld.tmp);
    free(ld.recs);
    if (rc) {
        zone_destroy(z);
        return rc;
    }
    *out = z;
    return 0;
}
