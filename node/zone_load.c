/*
 * Zone store, loading: master files are parsed with libzscanner into a temporary record
 * list, sorted by owner, then turned into nodes (empty non-terminals included) in one arena
 * and a name index. The zone rules and the node layout are shared with updates
 * (zone_update.c), so a zone changed record by record is the zone a load would build.
 */
#include "zone_int.h"

#include "fennec/common.h"

#include <errno.h>
#include <fcntl.h>
#include <libknot/descriptor.h>
#include <libzscanner/scanner.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

bool zone_rdata_lower(uint16_t type, uint8_t *rd, size_t len, bool write)
{
    switch (type) {
    case WIRE_TYPE_NS:
    case 3: /* MD */
    case 4: /* MF */
    case WIRE_TYPE_CNAME:
    case WIRE_TYPE_SOA:
    case 7: /* MB */
    case 8: /* MG */
    case 9: /* MR */
    case WIRE_TYPE_PTR:
    case 14: /* MINFO */
    case WIRE_TYPE_MX:
    case 17: /* RP */
    case 18: /* AFSDB */
    case 21: /* RT */
    case 26: /* PX */
    case WIRE_TYPE_SRV:
    case 35: /* NAPTR */
    case 36: /* KX */
    case WIRE_TYPE_DNAME:
        break;
    default:
        return false;
    }
    const knot_rdata_descriptor_t *d = knot_get_rdata_descriptor(type);
    size_t pos = 0;
    bool upper = false;
    for (int i = 0; i < KNOT_MAX_RDATA_BLOCKS && pos < len; i++) {
        int b = d->block_types[i];
        if (b == KNOT_RDATA_WF_END)
            break;
        if (b > 0) {
            pos += (size_t)b;
        } else if (b == KNOT_RDATA_WF_FIXED_DNAME || b == KNOT_RDATA_WF_COMPRESSIBLE_DNAME ||
                   b == KNOT_RDATA_WF_DECOMPRESSIBLE_DNAME) {
            int l = wire_name_len(rd + pos, len - pos);
            if (l < 0)
                break;
            for (size_t k = pos; k < pos + (size_t)l; k += rd[k] + 1u)
                for (size_t c = k + 1; c <= k + rd[k]; c++)
                    if (rd[c] >= 'A' && rd[c] <= 'Z') {
                        upper = true;
                        if (write)
                            rd[c] = (uint8_t)(rd[c] - 'A' + 'a');
                    }
            pos += (size_t)l;
        } else if (b == KNOT_RDATA_WF_NAPTR_HEADER) {
            pos += 4;
            for (int s = 0; s < 3 && pos < len; s++)
                pos += 1u + rd[pos];
        } else {
            break;
        }
    }
    return upper;
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

/* How a record got its TTL, as far as the scanner lets us see it. */
enum {
    TTL_EXPLICIT = 0, /* written on the record (records from entries are this too) */
    TTL_DIRECTIVE,    /* none written: the $TTL in force */
    TTL_NONE,         /* none written and no $TTL yet: RFC 1035 5.1 decides, see ttl_resolve() */
    TTL_AMBIGUOUS,    /* the scanner gave the "no $TTL" mark: written so, or not written */
};

/*
 * libzscanner gives a record without a TTL the default TTL of the scanner (3600, or the last
 * $TTL) and does not say whether the TTL was written. The loader starts the scanner with a
 * mark instead of a default, so that the mark as the default says "no $TTL yet", and a record
 * carrying the mark while it is the default had no TTL, or had the mark's value written out.
 * Only for that last case (a written 4294967295 before any $TTL) is the input read a second
 * time with the other mark, which tells the two apart.
 */
#define TTL_MARK   UINT32_MAX
#define TTL_MARK_2 (UINT32_MAX - 1)

#define INCLUDE_DEPTH_MAX 16 /* files open at once: the zone file and nested $INCLUDEs */
#define WARN_MAX          10 /* TTL warnings named one by one per load, then a count */

typedef struct rec {
    const uint8_t *owner; /* lower-case wire, in the load arena */
    const uint8_t *rdata;
    uint32_t ttl;
    uint16_t type;
    uint16_t rdlen;
    uint8_t owner_len;
    uint8_t ttl_how; /* TTL_* */
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
    const char *file; /* the file being read now: SOURCE, or an $INCLUDEd one (interned) */
    bool no_digest;   /* records from an entry: no file to compare with later */
    uint32_t mark;    /* TTL_MARK, or TTL_MARK_2 in the second reading */
    bool second;      /* the second reading: records are only told apart, not kept */
    size_t seen;      /* records met in the second reading */
    size_t ambiguous; /* records of the first reading with TTL_AMBIGUOUS */
    unsigned warned;  /* TTL warnings given */
} loader_t;

static void (*g_warn_fn)(const char *msg, void *arg);
static void *g_warn_arg;

void zone_warn_hook(void (*fn)(const char *msg, void *arg), void *arg)
{
    g_warn_fn = fn;
    g_warn_arg = arg;
}

static void loader_warn(loader_t *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void loader_warn(loader_t *ld, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (g_warn_fn)
        g_warn_fn(msg, g_warn_arg);
    else
        log_warn("zone", "%s: %s", ld->zone ? ld->zone->name : "?", msg);
}

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

static uint8_t ttl_how(const zs_scanner_t *s, uint32_t mark)
{
    if (s->default_ttl != mark)
        return s->r_ttl == s->default_ttl ? TTL_DIRECTIVE : TTL_EXPLICIT;
    return s->r_ttl == mark ? TTL_AMBIGUOUS : TTL_EXPLICIT;
}

/* The second reading: the records come again in the same order; each one the first reading
 * could not tell is told now. */
static void on_record_again(zs_scanner_t *s)
{
    loader_t *ld = s->process.data;
    size_t k = ld->seen++;
    if (k >= ld->count || ld->recs[k].type != s->r_type || ld->recs[k].line != s->line_counter) {
        loader_fail(ld, ld->file, s->line_counter,
                    "the file changed while it was being read; load it again");
        s->state = ZS_STATE_STOP;
        return;
    }
    /* With the other mark, the mark again is a missing TTL; a written one stayed. */
    if (ld->recs[k].ttl_how == TTL_AMBIGUOUS) {
        uint8_t how = ttl_how(s, ld->mark);
        ld->recs[k].ttl_how = how == TTL_AMBIGUOUS ? TTL_NONE : how;
    }
}

static void on_record(zs_scanner_t *s)
{
    loader_t *ld = s->process.data;
    if (ld->second) {
        on_record_again(s);
        return;
    }
    zone_t *z = ld->zone;
    const char *file = ld->file;
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
    zone_rdata_lower(s->r_type, rd, s->r_data_length, true);
    if (s->r_type == WIRE_TYPE_SOA) {
        /* MINIMUM is the TTL of negative answers (RFC 2308 4): held to the TTL limit. */
        int off = zone_soa_serial_offset(rd, s->r_data_length);
        uint32_t min = off >= 0 ? wire_get_u32(rd + off + 16) : 0;
        if (min > ZONE_TTL_MAX) {
            if (ld->warned++ < WARN_MAX)
                loader_warn(ld,
                            "%s:%llu: SOA MINIMUM %u is above %u (RFC 2181 section 8, RFC 2308 "
                            "section 4): capped to %u",
                            file, (unsigned long long)s->line_counter, min, ZONE_TTL_MAX,
                            ZONE_TTL_MAX);
            wire_put_u32(rd + off + 16, ZONE_TTL_MAX);
        }
    }
    uint8_t how = ttl_how(s, ld->mark);
    if (how == TTL_AMBIGUOUS)
        ld->ambiguous++;
    ld->recs[ld->count++] = (rec_t){
        .owner = o,
        .owner_len = (uint8_t)s->r_owner_length,
        .type = s->r_type,
        .ttl = s->r_ttl,
        .ttl_how = how,
        .rdata = rd,
        .rdlen = (uint16_t)s->r_data_length,
        .line = s->line_counter,
        .file = file,
    };
    return;
oom:
    loader_fail(ld, file, s->line_counter, "out of memory");
stop:
    s->state = ZS_STATE_STOP;
}

/*
 * The TTL of every record, in file order (RFC 1035 5.1, RFC 2181 8): a written TTL as it is;
 * none written, the $TTL in force; none written and no $TTL, the TTL last written before it
 * in the file ($INCLUDEd files count in their place), or ZONE_TTL_DEFAULT when none was, as
 * NSD and Knot DNS give such a record; one warning per load names the first such record. A
 * TTL above ZONE_TTL_MAX is capped there with a warning naming FILE:LINE.
 */
static void ttl_resolve(loader_t *ld)
{
    bool have_last = false, warned_none = false;
    uint32_t last = 0;
    for (size_t i = 0; i < ld->count; i++) {
        rec_t *r = &ld->recs[i];
        if (r->ttl_how == TTL_NONE) {
            r->ttl = have_last ? last : ZONE_TTL_DEFAULT;
            if (!warned_none) {
                warned_none = true;
                loader_warn(ld,
                            "%s:%llu: no $TTL, and this record has no TTL: it takes %u, %s "
                            "(RFC 1035 section 5.1), as every later record without a TTL "
                            "takes the last one written before it; add a $TTL line",
                            r->file, (unsigned long long)r->line, r->ttl,
                            have_last ? "the TTL last written before it"
                                      : "the default, as no TTL was written before it");
            }
            continue;
        }
        if (r->ttl > ZONE_TTL_MAX) {
            if (ld->warned++ < WARN_MAX)
                loader_warn(ld, "%s:%llu: TTL %u%s is above %u (RFC 2181 section 8): capped to %u",
                            r->file, (unsigned long long)r->line, r->ttl,
                            r->ttl_how == TTL_DIRECTIVE ? " (from $TTL)" : "", ZONE_TTL_MAX,
                            ZONE_TTL_MAX);
            r->ttl = ZONE_TTL_MAX;
        }
        if (r->ttl_how == TTL_EXPLICIT) {
            have_last = true;
            last = r->ttl;
        }
    }
    if (ld->warned > WARN_MAX)
        loader_warn(ld, "%s: %u more TTLs above %u capped to it (the first %d are named above)",
                    ld->source, ld->warned - WARN_MAX, ZONE_TTL_MAX, WARN_MAX);
}

/*
 * CRLF line ends of BUF (N bytes) made LF, in place; returns the new length. BIND and NSD
 * read files written on Windows, mixed ones included, and libzscanner refuses a CR. A CR
 * before a LF is a line end wherever it is (after a comment, inside parentheses, after a
 * quoted string); one at the very end of the input too. Any other CR is left for the scanner
 * to refuse. Line numbers do not move.
 */
static size_t crlf_to_lf(char *buf, size_t n)
{
    char *cr = memchr(buf, '\r', n);
    if (!cr)
        return n;
    size_t w = (size_t)(cr - buf);
    for (size_t r = w; r < n; r++) {
        if (buf[r] == '\r' && (r + 1 == n || buf[r + 1] == '\n')) {
            if (r + 1 == n)
                buf[w++] = '\n';
            continue;
        }
        buf[w++] = buf[r];
    }
    return w;
}

/* The bytes of the file PATH, NUL-terminated, in *OUT (malloc()ed) and their count in *LEN,
 * line ends made LF (crlf_to_lf()). -errno on failure; -EINVAL for what is not a regular
 * file (a device or a pipe would be read without end, or block). */
static int text_read(const char *path, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    /* Not blocking: opening a FIFO must not wait for a writer before it is refused. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
    size_t cap = 0, n = 0;
    char *buf = NULL;
    while (rc == 0) {
        if (cap - n < 65536) {
            size_t ncap = cap ? cap * 2 : (size_t)st.st_size + 65536;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = -errno;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (rc == 0 && !buf && !(buf = malloc(1)))
        rc = -ENOMEM;
    if (rc) {
        free(buf);
        return rc;
    }
    n = crlf_to_lf(buf, n);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Relative $INCLUDE names inside FILE are taken from FILE's folder, as libzscanner does for
 * the files it opens itself. */
static int scanner_folder(zs_scanner_t *s, const char *file)
{
    char *copy = strdup(file);
    if (!copy)
        return -ENOMEM;
    char *slash = strrchr(copy, '/');
    char *dir;
    if (!slash) {
        dir = strdup(".");
    } else if (slash == copy) {
        dir = strdup("/");
    } else {
        *slash = '\0';
        dir = strdup(copy);
    }
    free(copy);
    if (!dir)
        return -ENOMEM;
    free(s->path);
    s->path = dir;
    return 0;
}

static void parse_scanner(loader_t *ld, zs_scanner_t *s, int depth);

/* The $INCLUDE S has just read: the file is read in its place with a scanner of its own,
 * which starts from S's origin (or the directive's), class and default TTL. */
static void parse_include(loader_t *ld, zs_scanner_t *s, int depth)
{
    const char *parent = ld->file;
    uint64_t line = s->line_counter;
    const char *name = s->include_filename;
    char *text = NULL;
    size_t len = 0;
    zs_scanner_t *ss = NULL;
    bool ready = false;
    if (depth + 1 >= INCLUDE_DEPTH_MAX) {
        loader_fail(ld, parent, line,
                    "$INCLUDE %s: more than %d files included one in another (does a file "
                    "include itself?)",
                    name, INCLUDE_DEPTH_MAX - 1);
        return;
    }
    int rc = text_read(name, &text, &len);
    if (rc) {
        loader_fail(ld, parent, line, "$INCLUDE %s: %s", name,
                    rc == -EINVAL ? "not a regular file" : strerror(-rc));
        return;
    }
    size_t nl = strlen(name) + 1;
    char *interned = arena_alloc(&ld->tmp, nl);
    ss = malloc(sizeof(*ss));
    if (!interned || !ss) {
        loader_fail(ld, parent, line, "out of memory");
        goto cleanup;
    }
    memcpy(interned, name, nl);
    if (zs_init(ss, (const char *)s->buffer, s->default_class, s->default_ttl) != 0) {
        loader_fail(ld, parent, line, "$INCLUDE %s: %s", interned, zs_strerror(ss->error.code));
        goto cleanup;
    }
    ready = true;
    if (zs_set_input_string(ss, text, len) != 0 || scanner_folder(ss, interned) != 0) {
        loader_fail(ld, parent, line, "$INCLUDE %s: %s", interned, zs_strerror(ss->error.code));
        goto cleanup;
    }
    ss->process.data = ld;
    ld->file = interned;
    parse_scanner(ld, ss, depth + 1);
    ld->file = parent;
cleanup:
    if (ready)
        zs_deinit(ss);
    free(ss);
    free(text);
}

/* Reads S to its end record by record ($INCLUDEs are followed here, not by the scanner). */
static void parse_scanner(loader_t *ld, zs_scanner_t *s, int depth)
{
    while (ld->rc == 0) {
        int prc = zs_parse_record(s);
        if (prc != 0 || s->state == ZS_STATE_ERROR) {
            loader_fail(ld, ld->file, s->line_counter, "%s", zs_strerror(s->error.code));
            return;
        }
        switch (s->state) {
        case ZS_STATE_DATA:
            on_record(s);
            break;
        case ZS_STATE_INCLUDE:
            parse_include(ld, s, depth);
            break;
        case ZS_STATE_EOF:
        case ZS_STATE_STOP:
            return;
        default:
            break;
        }
    }
}

/* One reading of TEXT (LEN bytes; FOLDER: where relative $INCLUDEs are, NULL: the current
 * folder) with the TTL mark LD->mark. */
static int parse_text(loader_t *ld, const char *origin_dot, const char *text, size_t len,
                      const char *folder)
{
    zs_scanner_t *s = malloc(sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (zs_init(s, origin_dot, WIRE_CLASS_IN, ld->mark) != 0) {
        loader_fail(ld, ld->source, 0, "cannot start the zone parser");
        free(s);
        return ld->rc;
    }
    if (zs_set_input_string(s, text, len) != 0)
        loader_fail(ld, ld->source, 0, "%s", zs_strerror(s->error.code));
    else if (folder && scanner_folder(s, folder) != 0)
        loader_fail(ld, ld->source, 0, "out of memory");
    else {
        s->process.data = ld;
        ld->file = ld->source;
        parse_scanner(ld, s, 0);
    }
    zs_deinit(s);
    free(s);
    return ld->rc;
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
    char *buf = NULL;
    size_t len = 0;
    loader_t ld = {.err = err, .errlen = errlen, .source = source, .mark = TTL_MARK};
    zone_t *z = zone_begin(&ld, origin, &rc);
    if (!z)
        return rc;
    const char *name = z->name;
    char origin_dot[WIRE_NAME_TEXT_MAX + 2];
    snprintf(origin_dot, sizeof(origin_dot), "%s.", strcmp(name, ".") ? name : "");

    if (path) {
        if ((rc = text_read(path, &buf, &len)) != 0) {
            snprintf(err, errlen, "%s: %s", path,
                     rc == -EINVAL ? "not a regular file" : strerror(-rc));
            goto cleanup;
        }
        z->path = strdup(path);
        if (!z->path) {
            rc = -ENOMEM;
            goto cleanup;
        }
    } else {
        if (!(buf = malloc(textlen + 1))) {
            rc = -ENOMEM;
            goto cleanup;
        }
        memcpy(buf, text, textlen);
        len = crlf_to_lf(buf, textlen);
        buf[len] = '\0';
    }
    if ((rc = parse_text(&ld, origin_dot, buf, len, path)) != 0)
        goto cleanup;
    if (ld.ambiguous) {
        /* A written 4294967295 before any $TTL, or no TTL: read again to tell which. */
        ld.second = true;
        ld.mark = TTL_MARK_2;
        if ((rc = parse_text(&ld, origin_dot, buf, len, path)) != 0)
            goto cleanup;
        if (ld.seen != ld.count) {
            loader_fail(&ld, source, 0, "the file changed while it was being read; load it again");
            rc = ld.rc;
            goto cleanup;
        }
    }
    ttl_resolve(&ld);
    rc = zone_build(&ld);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", source);
    if (rc == 0 && ld.rc)
        rc = ld.rc;
cleanup:
    free(buf);
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
        const uint8_t *rdata = c->rdata;
        if (zone_rdata_lower(c->type, (uint8_t *)c->rdata, c->rdlen, false)) {
            /* written before names in rdata were kept lower case: a lower-case copy */
            uint8_t *lo = arena_alloc(&ld.tmp, c->rdlen);
            if (!lo) {
                rc = -ENOMEM;
                goto cleanup;
            }
            memcpy(lo, c->rdata, c->rdlen);
            zone_rdata_lower(c->type, lo, c->rdlen, true);
            rdata = lo;
        }
        ld.recs[ld.count++] = (rec_t){.owner = o,
                                      .owner_len = (uint8_t)olen,
                                      .type = c->type,
                                      .ttl = c->ttl,
                                      .rdata = rdata,
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
