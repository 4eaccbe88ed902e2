/*
 * Zone store: master files are parsed with libzscanner into a temporary record list, sorted,
 * then turned into an immutable snapshot: nodes (with empty non-terminals) in a hash table
 * keyed by lower-case wire name, RRsets pre-rendered as wire rdata, zone cuts, wildcard
 * children and additional-section targets resolved once at build time.
 */
#include "fennec/zone.h"
#include "fennec/common.h"
#include "fennec/wire.h"

#include <errno.h>
#include <libknot/descriptor.h>
#include <libzscanner/scanner.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <urcu.h>

/* ---- arena: every byte of a zone lives in a few large chunks, freed at once ---- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    size_t cap;
    _Alignas(16) uint8_t data[];
} arena_chunk_t;

typedef struct arena {
    arena_chunk_t *head;
    size_t total;
} arena_t;

static void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        arena_chunk_t *c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
        a->total += cap;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static void arena_free(arena_t *a)
{
    arena_chunk_t *c = a->head;
    while (c) {
        arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- the zone ---- */

struct zone {
    _Atomic int refs;
    char *name;
    uint8_t apex_wire[WIRE_NAME_MAX];
    size_t apex_len;
    uint32_t serial;
    size_t records;
    zone_node_t *apex;
    zone_node_t **table; /* hash buckets */
    uint32_t mask;
    size_t node_count;
    arena_t arena;
    /* identity of the source file, to skip unchanged files on reload */
    char *path;
    off_t st_size;
    struct timespec st_mtim;
};

static uint32_t name_hash(const uint8_t *name, size_t len)
{
    /* FNV-1a: names are short and already lower-case. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= name[i];
        h *= 16777619u;
    }
    return h;
}

uint32_t zone_node_prefetch(const zone_t *zone, const uint8_t *lname, size_t len)
{
    uint32_t h = name_hash(lname, len);
    __builtin_prefetch(&zone->table[h & zone->mask]);
    return h;
}

void zone_node_prefetch_next(const zone_t *zone, uint32_t hash)
{
    const zone_node_t *n = zone->table[hash & zone->mask];
    if (n) {
        __builtin_prefetch(n);
        __builtin_prefetch((const uint8_t *)n + 63);
    }
}

const zone_node_t *zone_node_find(const zone_t *zone, const uint8_t *lname, size_t len)
{
    uint32_t h = name_hash(lname, len);
    for (const zone_node_t *n = zone->table[h & zone->mask]; n; n = n->hnext) {
        if (n->hash == h && n->name_len == len && memcmp(n->name, lname, len) == 0)
            return n;
    }
    return NULL;
}

const zone_rrset_t *zone_node_rrset(const zone_node_t *node, uint16_t type)
{
    for (unsigned i = 0; i < node->rrset_count; i++) {
        if (node->rrsets[i].type == type)
            return &node->rrsets[i];
        if (node->rrsets[i].type > type)
            break;
    }
    return NULL;
}

const char *zone_name(const zone_t *zone)
{
    return zone->name;
}

const uint8_t *zone_apex_wire(const zone_t *zone)
{
    return zone->apex_wire;
}

uint32_t zone_serial(const zone_t *zone)
{
    return zone->serial;
}

size_t zone_record_count(const zone_t *zone)
{
    return zone->records;
}

const zone_node_t *zone_apex(const zone_t *zone)
{
    return zone->apex;
}

void zone_ref(zone_t *zone)
{
    atomic_fetch_add(&zone->refs, 1);
}

static void zone_destroy(zone_t *zone)
{
    arena_free(&zone->arena);
    free(zone->table);
    free(zone->name);
    free(zone->path);
    free(zone);
}

void zone_unref(zone_t *zone)
{
    if (zone && atomic_fetch_sub(&zone->refs, 1) == 1)
        zone_destroy(zone);
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

/* "A", "MX", ... or "TYPEnnn" (RFC 3597). */
static const char *type_text(uint16_t type)
{
    static __thread char buf[16];
    const knot_rdata_descriptor_t *d = knot_get_rdata_descriptor(type);
    if (d && d->type_name)
        return d->type_name;
    snprintf(buf, sizeof(buf), "TYPE%u", type);
    return buf;
}

/*
 * Whether RDATA (LEN bytes) has the shape its TYPE requires: fixed-size fields, names that
 * end inside it, nothing left over. The zone file's generic form (RFC 3597 "\\# 3 010203")
 * can give a known type any bytes at all; RFC 3597 section 5 says they must match the
 * type's own format, and an answer built from them would be malformed. Unknown types take
 * any rdata.
 */
static bool rdata_fits(uint16_t type, const uint8_t *rd, size_t len)
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
    if (s->r_type == WIRE_TYPE_OPT || s->r_type == WIRE_TYPE_AXFR || s->r_type == WIRE_TYPE_IXFR ||
        s->r_type == WIRE_TYPE_ANY || s->r_type == 250 || s->r_type == 249) {
        loader_fail(ld, file, s->line_counter, "type %u cannot appear in a zone", s->r_type);
        goto stop;
    }
    if (!rdata_fits(s->r_type, s->r_data, s->r_data_length)) {
        loader_fail(ld, file, s->line_counter, "the rdata does not have the form of type %s",
                    type_text(s->r_type));
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

static int rdata_cmp(const rec_t *a, const rec_t *b)
{
    size_t n = a->rdlen < b->rdlen ? a->rdlen : b->rdlen;
    int c = memcmp(a->rdata, b->rdata, n);
    if (c)
        return c;
    return (int)a->rdlen - (int)b->rdlen;
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
    c = rdata_cmp(a, b);
    if (c)
        return c;
    return a->line < b->line ? -1 : (a->line > b->line);
}

static zone_node_t *node_insert(zone_t *z, const uint8_t *name, size_t len)
{
    zone_node_t *n = arena_alloc(&z->arena, sizeof(*n));
    uint8_t *copy = arena_alloc(&z->arena, len);
    if (!n || !copy)
        return NULL;
    memcpy(copy, name, len);
    memset(n, 0, sizeof(*n));
    n->name = copy;
    n->name_len = (uint8_t)len;
    n->labels = (uint8_t)wire_name_labels(copy);
    n->hash = name_hash(copy, len);
    n->hnext = z->table[n->hash & z->mask];
    z->table[n->hash & z->mask] = n;
    if (copy[0] == 1 && copy[1] == '*')
        n->flags |= ZONE_NODE_WILDCARD;
    z->node_count++;
    return n;
}

/* Finds or creates NAME and every missing ancestor up to the apex (empty non-terminals). */
static zone_node_t *node_get(zone_t *z, const uint8_t *name, size_t len)
{
    zone_node_t *n = (zone_node_t *)zone_node_find(z, name, len);
    if (n)
        return n;
    n = node_insert(z, name, len);
    if (!n)
        return NULL;
    if (len > z->apex_len) {
        size_t skip = (size_t)name[0] + 1;
        zone_node_t *parent = node_get(z, name + skip, len - skip);
        if (!parent)
            return NULL;
        n->parent = parent;
        if (n->flags & ZONE_NODE_WILDCARD)
            parent->wildcard = n;
    }
    return n;
}

static void rrset_kinds(uint16_t type, uint8_t *compress, uint8_t *addl)
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
    default:
        break;
    }
}

/* Builds one RRset from recs[i..j) (same owner and type, sorted by rdata). */
static int rrset_build(loader_t *ld, zone_rrset_t *rs, const rec_t *r, size_t n)
{
    zone_t *z = ld->zone;
    size_t len = 0, count = 0;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && rdata_cmp(&r[k], &r[k - 1]) == 0)
            continue; /* duplicate record: RFC 2181 5 says an RRset is a set */
        len += 2 + r[k].rdlen;
        count++;
    }
    if (count > 0xFFFF || len > 0xFFFFFFu) {
        loader_fail(ld, r[0].file, r[0].line, "RRset too large");
        return FENNEC_EZONE;
    }
    uint8_t *data = arena_alloc(&z->arena, len);
    if (!data)
        return -ENOMEM;
    size_t p = 0;
    uint32_t ttl = r[0].ttl;
    for (size_t k = 0; k < n; k++) {
        /* RFC 2181 5.2: one TTL per RRset; the smallest wins, as the safest choice. */
        if (r[k].ttl < ttl)
            ttl = r[k].ttl;
        if (k > 0 && rdata_cmp(&r[k], &r[k - 1]) == 0)
            continue;
        wire_put_u16(data + p, r[k].rdlen);
        memcpy(data + p + 2, r[k].rdata, r[k].rdlen);
        p += 2 + r[k].rdlen;
    }
    rs->type = r[0].type;
    rs->count = (uint16_t)count;
    rs->ttl = ttl;
    rs->len = (uint32_t)len;
    rs->data = data;
    rs->addl_nodes = NULL;
    rrset_kinds(rs->type, &rs->compress, &rs->addl);
    return 0;
}

/* The name at the given offset of an rdata, when it is really there. */
static const uint8_t *rdata_name(const uint8_t *rd, uint16_t rdlen, size_t off)
{
    if (off >= rdlen || wire_name_len(rd + off, rdlen - off) < 0)
        return NULL;
    return rd + off;
}

static int resolve_additional(zone_t *z, zone_rrset_t *rs)
{
    static const size_t offs[] = {0, 0, 2, 6};
    if (rs->addl == ZONE_ADDL_NONE)
        return 0;
    const zone_node_t **targets = arena_alloc(&z->arena, rs->count * sizeof(*targets));
    if (!targets)
        return -ENOMEM;
    const uint8_t *p = rs->data;
    bool any = false;
    for (unsigned i = 0; i < rs->count; i++) {
        uint16_t rdlen = wire_get_u16(p);
        const uint8_t *name = rdata_name(p + 2, rdlen, offs[rs->addl]);
        targets[i] = NULL;
        if (name) {
            uint8_t lname[WIRE_NAME_MAX];
            int len = wire_name_len(name, WIRE_NAME_MAX);
            memcpy(lname, name, (size_t)len);
            wire_name_lower(lname);
            const zone_node_t *t = zone_node_find(z, lname, (size_t)len);
            if (t && (zone_node_rrset(t, WIRE_TYPE_A) || zone_node_rrset(t, WIRE_TYPE_AAAA))) {
                targets[i] = t;
                any = true;
            }
        }
        p += 2 + rdlen;
    }
    rs->addl_nodes = any ? targets : NULL;
    return 0;
}

static const zone_node_t *node_cut(zone_node_t *n)
{
    /* The topmost delegation at or above n: everything below it is not authoritative. */
    const zone_node_t *top = NULL;
    for (const zone_node_t *p = n; p; p = p->parent)
        if (p->flags & ZONE_NODE_DELEG)
            top = p;
    return top;
}

static int zone_build(loader_t *ld)
{
    zone_t *z = ld->zone;
    int rc = 0;
    if (ld->count == 0) {
        loader_fail(ld, ld->source, 0, "no records (a zone needs SOA and NS at %s)", z->name);
        return FENNEC_EZONE;
    }
    qsort(ld->recs, ld->count, sizeof(rec_t), rec_cmp);

    size_t owners = 1;
    for (size_t i = 1; i < ld->count; i++) {
        const rec_t *a = &ld->recs[i], *b = &ld->recs[i - 1];
        if (a->owner_len != b->owner_len || memcmp(a->owner, b->owner, a->owner_len) != 0)
            owners++;
    }
    uint32_t size = 16;
    while (size < owners * 2 && size < (1u << 30))
        size <<= 1;
    z->table = calloc(size, sizeof(*z->table));
    if (!z->table)
        return -ENOMEM;
    z->mask = size - 1;
    z->apex = node_insert(z, z->apex_wire, z->apex_len);
    if (!z->apex)
        return -ENOMEM;
    z->apex->flags |= ZONE_NODE_APEX;

    /* One node per owner, its RRsets in type order (the records are sorted). */
    size_t i = 0;
    while (i < ld->count) {
        const rec_t *r = &ld->recs[i];
        size_t j = i;
        size_t types = 0;
        while (j < ld->count && ld->recs[j].owner_len == r->owner_len &&
               memcmp(ld->recs[j].owner, r->owner, r->owner_len) == 0) {
            if (j == i || ld->recs[j].type != ld->recs[j - 1].type)
                types++;
            j++;
        }
        zone_node_t *node = node_get(z, r->owner, r->owner_len);
        zone_rrset_t *sets = arena_alloc(&z->arena, types * sizeof(*sets));
        if (!node || !sets)
            return -ENOMEM;
        size_t k = i, t = 0;
        bool other = false;
        const rec_t *cname = NULL;
        while (k < j) {
            size_t m = k;
            while (m < j && ld->recs[m].type == ld->recs[k].type)
                m++;
            rc = rrset_build(ld, &sets[t], &ld->recs[k], m - k);
            if (rc)
                return rc;
            uint16_t type = ld->recs[k].type;
            if (type == WIRE_TYPE_CNAME) {
                cname = &ld->recs[k];
                if (sets[t].count > 1) {
                    loader_fail(ld, ld->recs[k + 1].file, ld->recs[k + 1].line,
                                "more than one CNAME at the same name");
                    return FENNEC_EZONE;
                }
            } else if (type != WIRE_TYPE_RRSIG && type != WIRE_TYPE_NSEC) {
                other = true;
            }
            t++;
            k = m;
        }
        if (cname && other) {
            char text[WIRE_NAME_TEXT_MAX];
            wire_name_to_text(r->owner, text);
            loader_fail(ld, cname->file, cname->line, "CNAME and other data at %s (RFC 1034 3.6.2)",
                        text);
            return FENNEC_EZONE;
        }
        node->rrsets = sets;
        node->rrset_count = (uint16_t)types;
        if (node != z->apex && zone_node_rrset(node, WIRE_TYPE_NS))
            node->flags |= ZONE_NODE_DELEG;
        i = j;
    }
    z->records = 0;
    const zone_rrset_t *soa = zone_node_rrset(z->apex, WIRE_TYPE_SOA);
    if (!soa) {
        loader_fail(ld, ld->source, 0, "no SOA record at the apex %s", z->name);
        return FENNEC_EZONE;
    }
    if (soa->count != 1) {
        loader_fail(ld, ld->source, 0, "more than one SOA record at the apex %s", z->name);
        return FENNEC_EZONE;
    }
    if (!zone_node_rrset(z->apex, WIRE_TYPE_NS)) {
        loader_fail(ld, ld->source, 0, "no NS records at the apex %s", z->name);
        return FENNEC_EZONE;
    }
    if (zone_node_rrset(z->apex, WIRE_TYPE_CNAME)) {
        loader_fail(ld, ld->source, 0, "CNAME at the apex %s", z->name);
        return FENNEC_EZONE;
    }
    {
        /* serial: after MNAME and RNAME */
        const uint8_t *rd = soa->data + 2;
        uint16_t rdlen = wire_get_u16(soa->data);
        int l1 = wire_name_len(rd, rdlen);
        int l2 = l1 > 0 ? wire_name_len(rd + l1, rdlen - (size_t)l1) : -1;
        if (l1 < 0 || l2 < 0 || (size_t)(l1 + l2 + 20) > rdlen) {
            loader_fail(ld, ld->source, 0, "malformed SOA");
            return FENNEC_EZONE;
        }
        z->serial = wire_get_u32(rd + l1 + l2);
    }
    /* Cuts and additional targets, now that every node exists. */
    for (uint32_t b = 0; b <= z->mask; b++) {
        for (zone_node_t *n = z->table[b]; n; n = n->hnext) {
            n->cut = node_cut(n);
            for (unsigned s = 0; s < n->rrset_count; s++) {
                z->records += n->rrsets[s].count;
                rc = resolve_additional(z, (zone_rrset_t *)&n->rrsets[s]);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

/* A new, empty zone with one reference, attached to LD (whose error text is cleared). */
static zone_t *loader_zone_new(loader_t *ld)
{
    zone_t *z = calloc(1, sizeof(*z));
    if (ld->err && ld->errlen)
        ld->err[0] = 0;
    if (!z)
        return NULL;
    atomic_init(&z->refs, 1);
    ld->zone = z;
    return z;
}

static int zone_load(const char *origin, const char *path, const char *text, size_t textlen,
                     const char *source, zone_t **out, char *err, size_t errlen)
{
    int rc = 0;
    zs_scanner_t *s = NULL;
    loader_t ld = {.err = err, .errlen = errlen, .source = source};
    zone_t *z = loader_zone_new(&ld);
    if (!z)
        return -ENOMEM;
    int alen = wire_name_from_text(origin, z->apex_wire);
    if (alen < 0) {
        loader_fail(&ld, source, 0, "invalid zone name \"%s\"", origin);
        rc = ld.rc;
        goto cleanup;
    }
    z->apex_len = (size_t)alen;
    wire_name_lower(z->apex_wire);
    char name[WIRE_NAME_TEXT_MAX];
    wire_name_to_text(z->apex_wire, name);
    z->name = strdup(name);
    if (!z->name) {
        rc = -ENOMEM;
        goto cleanup;
    }
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
        z->st_size = st.st_size;
        z->st_mtim = st.st_mtim;
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

/* ---- edits ---- */

static bool rec_same(const rec_t *r, const uint8_t *owner, size_t olen, const zone_change_t *c)
{
    return r->type == c->type && r->owner_len == olen && memcmp(r->owner, owner, olen) == 0 &&
           r->rdlen == c->rdlen && memcmp(r->rdata, c->rdata, c->rdlen) == 0;
}

static int rec_push(loader_t *ld, const rec_t *r)
{
    if (ld->count == ld->cap) {
        size_t ncap = ld->cap ? ld->cap * 2 : 1024;
        rec_t *n = realloc(ld->recs, ncap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        ld->recs = n;
        ld->cap = ncap;
    }
    ld->recs[ld->count++] = *r;
    return 0;
}

int zone_edit(const zone_t *old, const zone_change_t *changes, size_t count, zone_t **out,
              char *err, size_t errlen)
{
    int rc = 0;
    loader_t ld = {.err = err, .errlen = errlen, .source = "<edit>", .last_file = "<edit>"};
    zone_t *z = loader_zone_new(&ld);
    if (!z)
        return -ENOMEM;
    memcpy(z->apex_wire, old->apex_wire, old->apex_len);
    z->apex_len = old->apex_len;
    z->name = strdup(old->name);
    z->path = old->path ? strdup(old->path) : NULL;
    z->st_size = old->st_size;
    z->st_mtim = old->st_mtim;
    if (!z->name || (old->path && !z->path)) {
        rc = -ENOMEM;
        goto cleanup;
    }
    /* The old zone's records, pointing into its (immutable) arena. */
    for (uint32_t b = 0; b <= old->mask; b++) {
        for (const zone_node_t *n = old->table[b]; n; n = n->hnext) {
            for (unsigned i = 0; i < n->rrset_count; i++) {
                const zone_rrset_t *rs = &n->rrsets[i];
                const uint8_t *p = rs->data;
                for (unsigned k = 0; k < rs->count; k++) {
                    uint16_t rdlen = wire_get_u16(p);
                    rec_t r = {.owner = n->name,
                               .owner_len = n->name_len,
                               .type = rs->type,
                               .ttl = rs->ttl,
                               .rdata = p + 2,
                               .rdlen = rdlen,
                               .file = "<edit>"};
                    if ((rc = rec_push(&ld, &r)) != 0)
                        goto cleanup;
                    p += 2 + rdlen;
                }
            }
        }
    }
    for (size_t c = 0; c < count; c++) {
        const zone_change_t *ch = &changes[c];
        char text[WIRE_NAME_TEXT_MAX];
        int olen = wire_name_len(ch->owner, WIRE_NAME_MAX);
        if (olen < 0 || ch->type == WIRE_TYPE_SOA) {
            loader_fail(&ld, "<edit>", 0, olen < 0 ? "invalid owner name" : "SOA cannot be edited");
            rc = ld.rc;
            goto cleanup;
        }
        uint8_t *owner = arena_alloc(&ld.tmp, (size_t)olen);
        if (!owner) {
            rc = -ENOMEM;
            goto cleanup;
        }
        memcpy(owner, ch->owner, (size_t)olen);
        wire_name_lower(owner);
        wire_name_to_text(owner, text);
        if (!wire_name_in(owner, (size_t)olen, z->apex_wire, z->apex_len)) {
            loader_fail(&ld, "<edit>", 0, "%s is outside the zone %s", text, z->name);
            rc = ld.rc;
            goto cleanup;
        }
        size_t found = ld.count;
        for (size_t i = 0; i < ld.count && found == ld.count; i++)
            if (rec_same(&ld.recs[i], owner, (size_t)olen, ch))
                found = i;
        if (ch->add && found != ld.count) {
            snprintf(err, errlen, "%s %s: the record exists already", text, type_text(ch->type));
            rc = FENNEC_EEXISTS;
            goto cleanup;
        }
        if (!ch->add && found == ld.count) {
            snprintf(err, errlen, "%s %s: no such record", text, type_text(ch->type));
            rc = FENNEC_ENOTFOUND;
            goto cleanup;
        }
        if (!ch->add) {
            ld.recs[found] = ld.recs[--ld.count];
            continue;
        }
        if (!rdata_fits(ch->type, ch->rdata, ch->rdlen)) {
            loader_fail(&ld, "<edit>", 0, "%s %s: the rdata does not have the form of the type",
                        text, type_text(ch->type));
            rc = ld.rc;
            goto cleanup;
        }
        uint8_t *rd = arena_alloc(&ld.tmp, ch->rdlen ? ch->rdlen : 1);
        if (!rd) {
            rc = -ENOMEM;
            goto cleanup;
        }
        memcpy(rd, ch->rdata, ch->rdlen);
        rec_t r = {.owner = owner,
                   .owner_len = (uint8_t)olen,
                   .type = ch->type,
                   .ttl = ch->ttl,
                   .rdata = rd,
                   .rdlen = ch->rdlen,
                   .file = "<edit>"};
        if ((rc = rec_push(&ld, &r)) != 0)
            goto cleanup;
    }
    /* The serial moves on by one so that secondaries and caches see a new version. */
    for (size_t i = 0; i < ld.count; i++) {
        rec_t *r = &ld.recs[i];
        if (r->type != WIRE_TYPE_SOA || r->owner_len != z->apex_len ||
            memcmp(r->owner, z->apex_wire, z->apex_len) != 0)
            continue;
        uint8_t *rd = arena_alloc(&ld.tmp, r->rdlen);
        int l1 = wire_name_len(r->rdata, r->rdlen);
        int l2 = l1 > 0 ? wire_name_len(r->rdata + l1, r->rdlen - (size_t)l1) : -1;
        if (!rd || l2 < 0 || (size_t)(l1 + l2 + 20) > r->rdlen) {
            rc = rd ? FENNEC_EZONE : -ENOMEM;
            goto cleanup;
        }
        memcpy(rd, r->rdata, r->rdlen);
        wire_put_u32(rd + l1 + l2, wire_get_u32(rd + l1 + l2) + 1);
        r->rdata = rd;
    }
    rc = zone_build(&ld);
    if (rc == 0 && ld.rc)
        rc = ld.rc;
cleanup:
    arena_free(&ld.tmp);
    free(ld.recs);
    if (rc) {
        /* Messages from the shared checks name the source "<edit>": not useful here. */
        size_t pl = strlen("<edit>: ");
        if (err && strncmp(err, "<edit>: ", pl) == 0)
            memmove(err, err + pl, strlen(err + pl) + 1);
        zone_destroy(z);
        return rc;
    }
    *out = z;
    return 0;
}

int zone_reload_file(const zone_t *served, const char *path, zone_t **out, zone_reload_stats_t *st,
                     char *err, size_t errlen)
{
    /* Interim: a whole new load; the diff against SERVED comes with copy-on-write versions. */
    memset(st, 0, sizeof(*st));
    *out = NULL;
    if (zone_file_unchanged(served, path)) {
        st->unchanged = true;
        st->serial = served->serial;
        return 0;
    }
    int rc = zone_load_file(served->name, path, out, err, errlen);
    if (rc == 0) {
        st->added = (*out)->records;
        st->removed = served->records;
        st->serial = (*out)->serial;
    }
    return rc;
}

/* ---- zone sets ---- */

/* Up to this many zones a scan of the apexes is cheaper than hashing every suffix of the
 * query name; beyond it the set keeps a hash index of the apexes. */
#define ZONE_SET_SCAN 8

struct zone_set {
    size_t count;
    zone_t **zones;
    uint32_t *index; /* open addressing by apex hash: zone number + 1, 0 = empty; or NULL */
    uint32_t mask;
};

/* The zone whose apex is exactly LNAME (LEN bytes), through the index. */
static const zone_t *set_index_get(const zone_set_t *set, const uint8_t *lname, size_t len)
{
    for (uint32_t i = name_hash(lname, len) & set->mask; set->index[i]; i = (i + 1) & set->mask) {
        const zone_t *z = set->zones[set->index[i] - 1];
        if (z->apex_len == len && memcmp(z->apex_wire, lname, len) == 0)
            return z;
    }
    return NULL;
}

static int set_index_build(zone_set_t *set)
{
    uint32_t size = 16;
    while (size < set->count * 2)
        size <<= 1;
    set->index = calloc(size, sizeof(*set->index));
    if (!set->index)
        return -ENOMEM;
    set->mask = size - 1;
    for (size_t n = 0; n < set->count; n++) {
        const zone_t *z = set->zones[n];
        if (set_index_get(set, z->apex_wire, z->apex_len))
            continue; /* the same apex twice: the first one answers, as with the scan */
        uint32_t i = name_hash(z->apex_wire, z->apex_len) & set->mask;
        while (set->index[i])
            i = (i + 1) & set->mask;
        set->index[i] = (uint32_t)n + 1;
    }
    return 0;
}

int zone_set_new(zone_t *const *zones, size_t count, zone_set_t **out)
{
    zone_set_t *set = calloc(1, sizeof(*set));
    if (!set)
        return -ENOMEM;
    set->zones = calloc(count ? count : 1, sizeof(*set->zones));
    if (!set->zones) {
        free(set);
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        zone_ref(zones[i]);
        set->zones[set->count++] = zones[i];
    }
    if (count > ZONE_SET_SCAN && set_index_build(set) != 0) {
        zone_set_free(set);
        return -ENOMEM;
    }
    *out = set;
    return 0;
}

void zone_set_free(zone_set_t *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        zone_unref(set->zones[i]);
    free(set->zones);
    free(set->index);
    free(set);
}

size_t zone_set_count(const zone_set_t *set)
{
    return set ? set->count : 0;
}

const zone_t *zone_set_at(const zone_set_t *set, size_t i)
{
    return i < set->count ? set->zones[i] : NULL;
}

const zone_t *zone_set_find(const zone_set_t *set, const uint8_t *lname, size_t len)
{
    const zone_t *best = NULL;
    if (!set)
        return NULL;
    if (set->index) {
        /* Longest apex first: the whole name, then one label less each time, to the root. */
        size_t p = 0;
        for (;;) {
            const zone_t *z = set_index_get(set, lname + p, len - p);
            if (z || lname[p] == 0 || p + 1 + lname[p] >= len)
                return z;
            p += 1u + lname[p];
        }
    }
    for (size_t i = 0; i < set->count; i++) {
        const zone_t *z = set->zones[i];
        if ((!best || z->apex_len > best->apex_len) &&
            wire_name_in(lname, len, z->apex_wire, z->apex_len))
            best = z;
    }
    return best;
}

bool zone_file_unchanged(const zone_t *zone, const char *path)
{
    struct stat st;
    return zone->path && strcmp(zone->path, path) == 0 && stat(path, &st) == 0 &&
           st.st_size == zone->st_size && st.st_mtim.tv_sec == zone->st_mtim.tv_sec &&
           st.st_mtim.tv_nsec == zone->st_mtim.tv_nsec;
}

static zone_t *set_lookup_name(const zone_set_t *set, const char *name)
{
    for (size_t i = 0; set && i < set->count; i++)
        if (strcmp(set->zones[i]->name, name) == 0)
            return set->zones[i];
    return NULL;
}

int zone_set_build(const cfg_t *cfg, const zone_set_t *old, zone_set_t **out, size_t *failed)
{
    size_t nfail = 0;
    zone_t **zones = calloc(cfg->zone_count ? cfg->zone_count : 1, sizeof(*zones));
    size_t n = 0;
    int rc = 0;
    if (!zones)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->zone_count; i++) {
        const cfg_zone_t *cz = &cfg->zones[i];
        char err[1024];
        uint8_t wire[WIRE_NAME_MAX];
        char canon[WIRE_NAME_TEXT_MAX];
        int wl = wire_name_from_text(cz->name, wire);
        if (wl < 0) {
            log_error("zone", "%s: invalid zone name", cz->name);
            nfail++;
            continue;
        }
        wire_name_lower(wire);
        wire_name_to_text(wire, canon);
        zone_t *prev = set_lookup_name(old, canon);
        if (prev && cz->file && zone_file_unchanged(prev, cz->file)) {
            zone_ref(prev);
            zones[n++] = prev;
            continue;
        }
        if (prev && !cz->file) {
            zone_ref(prev); /* built-in text never changes */
            zones[n++] = prev;
            continue;
        }
        zone_t *z = NULL;
        int lrc = cz->file ? zone_load_file(cz->name, cz->file, &z, err, sizeof(err))
                           : zone_load_text(cz->name, cz->text, strlen(cz->text), "<builtin>", &z,
                                            err, sizeof(err));
        if (lrc != 0) {
            nfail++;
            if (prev) {
                log_error("zone", "%s: %s; keeping serial %u", canon, err, prev->serial);
                zone_ref(prev);
                zones[n++] = prev;
            } else {
                log_error("zone", "%s: %s; zone not served", canon, err);
            }
            continue;
        }
        log_info("zone", "%s: loaded serial %u, %zu records", canon, z->serial, z->records);
        zones[n++] = z;
    }
    rc = zone_set_new(zones, n, out);
    for (size_t i = 0; i < n; i++)
        zone_unref(zones[i]);
    free(zones);
    if (failed)
        *failed = nfail;
    return rc;
}

/* ---- RCU publication ---- */

static zone_set_t *g_current;

void zone_reader_register(void)
{
    rcu_register_thread();
}

void zone_reader_unregister(void)
{
    rcu_unregister_thread();
}

void zone_read_lock(void)
{
    rcu_read_lock();
}

void zone_read_unlock(void)
{
    rcu_read_unlock();
}

const zone_set_t *zone_set_current(void)
{
    return rcu_dereference(g_current);
}

void zone_set_publish(zone_set_t *set)
{
    zone_set_t *old = rcu_xchg_pointer(&g_current, set);
    synchronize_rcu();
    zone_set_free(old);
}

const char zone_builtin_example[] =
    "$ORIGIN example.com.\n"
    "$TTL 3600\n"
    "@        IN SOA  ns1 hostmaster 2026112201 7200 3600 1209600 300\n"
    "@        IN NS   ns1\n"
    "@        IN NS   ns2\n"
    "@        IN A    192.0.2.10\n"
    "@        IN AAAA 2001:db8::10\n"
    "@        IN MX   10 mail\n"
    "@        IN TXT  \"v=spf1 mx -all\"\n"
    "ns1      IN A    192.0.2.1\n"
    "ns2      IN A    192.0.2.2\n"
    "mail     IN A    192.0.2.25\n"
    "www      IN A    192.0.2.10\n"
    "www      IN AAAA 2001:db8::10\n"
    "web      IN CNAME www\n"
    "*.apps   IN A    192.0.2.99\n"
    "_sip._tcp IN SRV 10 5 5060 www\n";
