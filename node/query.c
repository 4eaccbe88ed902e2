/*
 * The query engine. The answer is written straight into the caller's buffer: the header,
 * the question copied from the query (its case preserved), then RRsets rendered from the
 * zone's pre-built wire rdata with a per-answer compression table. Behaviour follows
 * RFC 1034 4.3.2 (the lookup algorithm), RFC 2308 (negative answers), RFC 4592
 * (wildcards), RFC 6891 (EDNS) and RFC 8482 (ANY); docs/dns-behaviour.md lists the choices.
 */
#include "fennec/query.h"
#include "fennec/common.h"
#include "fennec/health.h"
#include "fennec/wire.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EDNS_PAYLOAD    1232 /* what we advertise and the most we send over UDP */
#define OPT_LEN         11
#define CNAME_CHAIN_MAX 5 /* CNAMEs in one answer, as Knot DNS */
#define ADDL_MAX        32

struct query_ctx {
    query_stats_t stats;
    uint32_t rng;                /* xorshift32 state: weighted pool draws of this worker */
    const cfg_t *cfg;            /* TSIG keys and transfer rules, or NULL */
    const struct sockaddr *peer; /* client of the query being answered, or NULL */
    bool xfr_pending;
    query_xfr_t xfr; /* a transfer accepted over TCP, for the transport to take */
};

query_ctx_t *query_ctx_new(void)
{
    query_ctx_t *ctx = calloc(1, sizeof(query_ctx_t));
    if (ctx)
        ctx->rng = (uint32_t)(fennec_now_ns() ^ (uintptr_t)ctx) | 1;
    return ctx;
}

static uint32_t rng_next(query_ctx_t *ctx)
{
    uint32_t x = ctx->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return ctx->rng = x;
}

void query_ctx_free(query_ctx_t *ctx)
{
    if (ctx && ctx->xfr_pending)
        zone_unref(ctx->xfr.zone);
    free(ctx);
}

void query_ctx_set_config(query_ctx_t *ctx, const cfg_t *cfg)
{
    ctx->cfg = cfg;
}

void query_ctx_set_peer(query_ctx_t *ctx, const struct sockaddr *peer)
{
    ctx->peer = peer;
}

bool query_xfr_take(query_ctx_t *ctx, query_xfr_t *out)
{
    if (!ctx->xfr_pending)
        return false;
    *out = ctx->xfr;
    ctx->xfr_pending = false;
    ctx->xfr.zone = NULL;
    return true;
}

void query_ctx_xfr_count(query_ctx_t *ctx, int outcome)
{
    if (outcome >= 0 && outcome < QUERY_XFR_MAX)
        ctx->stats.xfr[outcome]++;
}

const query_stats_t *query_ctx_stats(const query_ctx_t *ctx)
{
    return &ctx->stats;
}

enum { SEC_AN = 0, SEC_NS = 1, SEC_AR = 2 };

/* One answer being written. */
typedef struct ans {
    uint8_t *pkt;
    size_t cap; /* limit for RRs (the OPT record's room already taken off) */
    size_t pos;
    size_t qend; /* end of the question: where truncation rolls back to */
    wire_compr_t compr;
    uint16_t count[3];
    bool tc;
    const zone_node_t *addl[ADDL_MAX]; /* additional targets already written */
    unsigned addl_n;
    bool sibling_glue; /* a referral's NS has a target outside its cut (ADDL_IN_CUT saw it) */
    query_ctx_t *ctx;
} ans_t;

/* Writes the RR owner: a pointer to the question for the query name itself. */
static int put_owner(ans_t *a, const uint8_t *owner)
{
    if (!owner) {
        if (a->pos + 2 > a->cap)
            return FENNEC_ESPACE;
        wire_put_u16(a->pkt + a->pos, 0xC000 | WIRE_HEADER_LEN);
        a->pos += 2;
        return 0;
    }
    return wire_name_write(a->pkt, a->cap, &a->pos, owner, &a->compr);
}

/* Copies bytes of rdata. */
static int put_bytes(ans_t *a, const uint8_t *src, size_t n)
{
    if (a->pos + n > a->cap)
        return FENNEC_ESPACE;
    memcpy(a->pkt + a->pos, src, n);
    a->pos += n;
    return 0;
}

/* Writes one rdata, compressing the names that RFC 3597 4 allows us to compress. */
static int put_rdata(ans_t *a, const zone_rrset_t *rs, const uint8_t *rd, uint16_t rdlen)
{
    int rc = 0;
    size_t off = 0;
    switch (rs->compress) {
    case ZONE_COMPRESS_NONE: {
        size_t start = a->pos;
        rc = put_bytes(a, rd, rdlen);
        /* An SRV target is written as is (RFC 2782) but later names may point at it. */
        if (rc == 0 && rs->addl == ZONE_ADDL_NAME6 && rdlen > 6 &&
            wire_name_len(rd + 6, rdlen - 6u) == (int)rdlen - 6)
            wire_compr_add(&a->compr, a->pkt, start + 6);
        return rc;
    }
    case ZONE_COMPRESS_NAME2:
        if (rdlen < 3)
            return put_bytes(a, rd, rdlen);
        rc = put_bytes(a, rd, 2);
        off = 2;
        /* fall through */
    case ZONE_COMPRESS_NAME0:
    case ZONE_COMPRESS_TWONAME: {
        unsigned names = rs->compress == ZONE_COMPRESS_TWONAME ? 2 : 1;
        for (unsigned i = 0; i < names && rc == 0; i++) {
            int l = wire_name_len(rd + off, rdlen - off);
            if (l < 0)
                return put_bytes(a, rd + off, rdlen - off);
            rc = wire_name_write(a->pkt, a->cap, &a->pos, rd + off, &a->compr);
            off += (size_t)l;
        }
        if (rc == 0)
            rc = put_bytes(a, rd + off, rdlen - off);
        return rc;
    }
    default:
        return put_bytes(a, rd, rdlen);
    }
}

/* Writes a whole RRset into section SEC, or nothing (rolled back) with FENNEC_ESPACE. */
static int put_rrset(ans_t *a, int sec, const uint8_t *owner, const zone_rrset_t *rs, uint32_t ttl)
{
    size_t start = a->pos;
    const uint8_t *p = rs->data;
    for (unsigned i = 0; i < rs->count; i++) {
        uint16_t rdlen = wire_get_u16(p);
        const uint8_t *rd = p + 2;
        p += 2 + rdlen;
        if (put_owner(a, owner) != 0 || a->pos + 10 > a->cap)
            goto full;
        uint8_t *fixed = a->pkt + a->pos;
        wire_put_u16(fixed, rs->type);
        wire_put_u16(fixed + 2, WIRE_CLASS_IN);
        wire_put_u32(fixed + 4, ttl);
        a->pos += 10;
        size_t rdstart = a->pos;
        if (put_rdata(a, rs, rd, rdlen) != 0)
            goto full;
        wire_put_u16(fixed + 8, (uint16_t)(a->pos - rdstart));
    }
    a->count[sec] += rs->count;
    return 0;
full:
    a->pos = start;
    wire_compr_trim(&a->compr, start);
    return FENNEC_ESPACE;
}

/* How the additional records of an RRset are chosen. */
typedef enum addl_mode {
    ADDL_ANSWER,  /* targets of an answer: none below a zone cut */
    ADDL_NS,      /* an NS RRset in the answer: glue below cuts too */
    ADDL_IN_CUT,  /* a referral's in-domain glue (at or below the cut): all or FENNEC_ESPACE */
    ADDL_SIBLING, /* a referral's other glue: what fits */
} addl_mode_t;

/* Writes the records a target T gets in the additional section, once per answer: its RRset
 * of ALSO_TYPE when not 0 (an AliasMode SVCB/HTTPS target's), then A and AAAA. FENNEC_ESPACE
 * when they do not fit (the caller decides whether that matters). */
static int put_target(ans_t *a, const zone_node_t *t, uint16_t also_type);

/* The additional records for the targets of RS (NS, MX, SRV, SVCB, HTTPS), owned by OWNER,
 * chosen by MODE; CUT is the referral's cut for the glue modes. Only ADDL_IN_CUT reports
 * FENNEC_ESPACE: the rest of the additional section is optional (RFC 2181 9, RFC 9471 3.2),
 * so what does not fit is left out. */
static int put_additional(ans_t *a, const zone_t *zone, const zone_rrset_t *rs,
                          const zone_node_t *owner, addl_mode_t mode, const zone_node_t *cut)
{
    if (rs->addl == ZONE_ADDL_NONE)
        return 0;
    const uint8_t *p = rs->data;
    for (unsigned i = 0; i < rs->count; i++) {
        uint16_t rdlen = wire_get_u16(p);
        const uint8_t *rd = p + 2;
        p += 2u + rdlen;
        const zone_node_t *t;
        uint16_t also = 0;
        if (rs->addl == ZONE_ADDL_SVCB) {
            /* RFC 9460 4.1: A, AAAA and SVCB records of the TargetNames in the zone; an
             * AliasMode record (priority 0) gets its target's records of its own type. A
             * TargetName of "." names no other name (as Knot DNS). */
            if (rdlen < 3 || rd[2] == 0)
                continue;
            t = zone_addl_target(zone, rs, rd, rdlen);
            also = wire_get_u16(rd) == 0 ? rs->type : 0;
        } else {
            t = zone_addl_target(zone, rs, rd, rdlen);
        }
        if (!t || (t == owner && also))
            continue;
        if (mode == ADDL_IN_CUT || mode == ADDL_SIBLING) {
            bool in_cut = wire_name_in(t->name, t->name_len, cut->name, cut->name_len);
            if (!in_cut)
                a->sibling_glue = true;
            if (in_cut != (mode == ADDL_IN_CUT))
                continue;
        } else if (mode == ADDL_ANSWER && zone_node_cut(zone, t)) {
            continue;
        }
        int rc = put_target(a, t, also);
        if (rc == FENNEC_ESPACE && mode == ADDL_IN_CUT)
            return rc;
        if (rc)
            return 0;
    }
    return 0;
}

static int put_target(ans_t *a, const zone_node_t *t, uint16_t also_type)
{
    static const uint16_t types[] = {WIRE_TYPE_A, WIRE_TYPE_AAAA};
    for (unsigned k = 0; k < a->addl_n; k++)
        if (a->addl[k] == t)
            return 0;
    if (a->addl_n == ADDL_MAX)
        return FENNEC_ESPACE; /* more targets than one answer tracks: as if out of room */
    a->addl[a->addl_n++] = t;
    if (also_type) {
        const zone_rrset_t *alias = zone_node_rrset(t, also_type);
        if (alias) {
            int rc = put_rrset(a, SEC_AR, t->name, alias, alias->ttl);
            if (rc)
                return rc;
        }
    }
    for (unsigned k = 0; k < 2; k++) {
        const zone_rrset_t *addr = zone_node_rrset(t, types[k]);
        int rc = addr ? put_rrset(a, SEC_AR, t->name, addr, addr->ttl) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

/* The SOA for a negative answer, TTL per RFC 2308 3: min(SOA TTL, SOA MINIMUM). */
static int put_negative_soa(ans_t *a, const zone_t *zone)
{
    const zone_node_t *apex = zone_apex(zone);
    const zone_rrset_t *soa = zone_node_rrset(apex, WIRE_TYPE_SOA);
    uint16_t rdlen = wire_get_u16(soa->data);
    uint32_t minimum = wire_get_u32(soa->data + 2 + rdlen - 4);
    uint32_t ttl = soa->ttl < minimum ? soa->ttl : minimum;
    return put_rrset(a, SEC_NS, apex->name, soa, ttl);
}

/* A referral: the cut's NS RRset in authority, glue in additional (RFC 1034 4.3.2 3b): all
 * the in-domain glue, or what fits of it with TC set (RFC 9471 3.1: the resolver asks again
 * over TCP; Knot DNS sends the same); then the sibling glue that fits (RFC 9471 3.2:
 * optional, never a reason for TC). */
static int put_referral(ans_t *a, const zone_t *zone, const zone_node_t *cut)
{
    const zone_rrset_t *ns = zone_node_rrset(cut, WIRE_TYPE_NS);
    int rc = put_rrset(a, SEC_NS, cut->name, ns, ns->ttl);
    if (rc)
        return rc;
    if (put_additional(a, zone, ns, cut, ADDL_IN_CUT, cut) == FENNEC_ESPACE)
        a->tc = true;
    else if (a->sibling_glue) /* a second pass only when there is sibling glue */
        put_additional(a, zone, ns, cut, ADDL_SIBLING, cut);
    return 0;
}

typedef struct lookup {
    uint8_t rcode;
    bool aa;
} lookup_t;

/*
 * The answer of a health-checked pool for NAME/QTYPE (health.h), when NAME is a pool owner:
 * 1 when written, 0 when the zone answers (NAME is no pool owner, or QTYPE is not a pool's
 * type and IN_ZONE says the zone has NAME), or an error. A name only a pool has answers other
 * types with NODATA.
 */
static int answer_pool(ans_t *a, const zone_t *zone, const uint8_t *owner, const uint8_t *name,
                       size_t len, uint16_t qtype, bool in_zone)
{
    uint8_t addrs[HEALTH_MAX_MEMBERS][16];
    size_t n = 0;
    uint32_t ttl = 0;
    if (!health_pool_answer(name, len, qtype, rng_next(a->ctx), addrs, HEALTH_MAX_MEMBERS, &n,
                            &ttl)) {
        if (in_zone || qtype == WIRE_TYPE_ANY || !health_pool_exists(name, len))
            return 0;                       /* the zone's data of the name answers other types */
        int rc = put_negative_soa(a, zone); /* a name only a pool has, another type */
        return rc ? rc : 1;
    }
    if (n == 0) {
        int rc = put_negative_soa(a, zone); /* all down, all_down: empty */
        return rc ? rc : 1;
    }
    /* The pool's RRset, pre-rendered like a zone's: u16 rdlength + rdata per record. */
    size_t alen = qtype == WIRE_TYPE_A ? 4 : 16;
    uint8_t data[HEALTH_MAX_MEMBERS * (2 + 16)];
    for (size_t i = 0; i < n; i++) {
        wire_put_u16(data + i * (2 + alen), (uint16_t)alen);
        memcpy(data + i * (2 + alen) + 2, addrs[i], alen);
    }
    zone_rrset_t rs = {.type = qtype,
                       .count = (uint16_t)n,
                       .ttl = ttl,
                       .len = (uint32_t)(n * (2 + alen)),
                       .data = data};
    int rc = put_rrset(a, SEC_AN, owner, &rs, ttl);
    return rc ? rc : 1;
}

/* Where a CNAME or DNAME chain stands: the name being looked up (lower case), how it is
 * spelled in the answer, and the names already passed (loops end the chain). */
typedef struct chain {
    uint8_t name[WIRE_NAME_MAX];
    size_t len;
    uint8_t spelled[WIRE_NAME_MAX];
    const uint8_t *owner; /* NULL: the question's name (a pointer to it) */
    uint8_t visited[CNAME_CHAIN_MAX][WIRE_NAME_MAX];
    size_t visited_len[CNAME_CHAIN_MAX];
    unsigned steps;
    const zone_node_t *dname[CNAME_CHAIN_MAX]; /* DNAMEs written */
    unsigned dnames;
} chain_t;

/*
 * Moves the chain C on to TARGET (TL bytes, as spelled in the record): the next name is
 * looked up in the most specific zone of SET that holds it, so a chain goes on into another
 * zone served here (RFC 1034 4.3.2 3a lets a server do so; NSD does), and into a child zone
 * served here rather than to the parent's referral. Returns that zone, or NULL when the
 * chain ends here: the target is not served here, or is a name already passed (a loop).
 */
static const zone_t *chain_next(chain_t *c, const zone_set_t *set, const uint8_t *target, size_t tl)
{
    memcpy(c->visited[c->steps], c->name, c->len);
    c->visited_len[c->steps++] = c->len;
    memcpy(c->spelled, target, tl);
    memcpy(c->name, target, tl);
    wire_name_lower(c->name);
    c->len = tl;
    c->owner = c->spelled;
    for (unsigned i = 0; i < c->steps; i++)
        if (c->visited_len[i] == tl && memcmp(c->visited[i], c->name, tl) == 0)
            return NULL;
    return set ? zone_set_find(set, c->name, tl) : NULL;
}

/*
 * RFC 6672 3.1 for a name below the DNAME at DN: the DNAME, then a CNAME synthesized from
 * it (the name with DN's suffix replaced by the DNAME's target, TTL of the DNAME). Returns
 * 1 when the chain goes on to the synthesized target (in *NEXT, whose zone may be NULL: not
 * served here), 0 when the answer is complete, or FENNEC_ESPACE.
 */
static int put_dname(ans_t *a, const zone_set_t *set, chain_t *c, const zone_node_t *dn,
                     uint16_t qtype, lookup_t *res, const zone_t **next)
{
    const zone_rrset_t *drs = zone_node_rrset(dn, WIRE_TYPE_DNAME);
    int rc = 0;
    bool written = false; /* a chain through one DNAME several times writes it once */
    for (unsigned i = 0; i < c->dnames; i++)
        written |= c->dname[i] == dn;
    if (!written && (rc = put_rrset(a, SEC_AN, dn->name, drs, drs->ttl)) != 0)
        return rc;
    if (!written && c->dnames < CNAME_CHAIN_MAX)
        c->dname[c->dnames++] = dn;
    uint16_t rdlen = wire_get_u16(drs->data);
    int dtl = wire_name_len(drs->data + 2, rdlen);
    if (dtl < 0)
        return 0;
    size_t prefix = c->len - dn->name_len;
    if (prefix + (size_t)dtl > WIRE_NAME_MAX) {
        res->rcode = WIRE_RCODE_YXDOMAIN; /* RFC 6672 2.2: the name would be too long */
        return 0;
    }
    /* The synthesized CNAME as a one-record RRset: u16 rdlength, then the target. */
    uint8_t data[2 + WIRE_NAME_MAX];
    wire_put_u16(data, (uint16_t)(prefix + (size_t)dtl));
    memcpy(data + 2, c->name, prefix); /* lower case, as Knot DNS and NSD write it */
    memcpy(data + 2 + prefix, drs->data + 2, (size_t)dtl);
    zone_rrset_t cname = {.type = WIRE_TYPE_CNAME,
                          .count = 1,
                          .ttl = drs->ttl,
                          .compress = ZONE_COMPRESS_NAME0,
                          .len = (uint32_t)(2 + prefix + (size_t)dtl),
                          .data = data};
    if ((rc = put_rrset(a, SEC_AN, c->owner, &cname, drs->ttl)) != 0)
        return rc;
    if (qtype == WIRE_TYPE_CNAME)
        return 0; /* the CNAME answers the question (RFC 1034 4.3.2 3a) */
    *next = chain_next(c, set, data + 2, prefix + (size_t)dtl);
    return 1;
}

/*
 * Answers QNAME/QTYPE from ZONE into A (RFC 1034 4.3.2, step 3), following CNAME and DNAME
 * (RFC 6672) chains through the zones of SET. QNAME (lower case) is the search key.
 */
static int answer_from_zone(ans_t *a, const zone_set_t *set, const zone_t *zone,
                            const uint8_t *qname, size_t qlen, uint16_t qtype, lookup_t *res)
{
    chain_t c;
    int rc;

    memcpy(c.name, qname, qlen);
    c.len = qlen;
    c.owner = NULL;
    c.steps = 0;
    c.dnames = 0;
    res->rcode = WIRE_RCODE_NOERROR;
    res->aa = true;
    for (;;) {
        const uint8_t *name = c.name, *owner = c.owner;
        size_t len = c.len;
        const zone_node_t *dn = zone_node_dname_above(zone, name, len);
        if (dn) {
            if (c.steps == CNAME_CHAIN_MAX)
                return 0; /* followed enough links: the resolver goes on from here */
            const zone_t *next = NULL;
            if ((rc = put_dname(a, set, &c, dn, qtype, res, &next)) <= 0)
                return rc;
            if (!next)
                return 0;
            zone = next;
            continue;
        }
        const zone_node_t *node = zone_node_find(zone, name, len);
        bool synthesized = false; /* from a wildcard: no pool of its own */
        if (!node) {
            /* Closest encloser: strip labels until a node exists (the apex always does). */
            const uint8_t *s = name;
            size_t l = len;
            const zone_node_t *ce = NULL;
            size_t apex_len = zone_apex(zone)->name_len;
            while (!ce && l > apex_len) {
                l -= (size_t)*s + 1;
                s += *s + 1;
                ce = zone_node_find(zone, s, l);
            }
            if (!ce)
                ce = zone_apex(zone);
            const zone_node_t *cut = zone_node_cut(zone, ce);
            if (cut) {
                res->aa = a->count[SEC_AN] > 0;
                return put_referral(a, zone, cut);
            }
            if (health_pools_active() &&
                (rc = answer_pool(a, zone, owner, name, len, qtype, false)))
                return rc < 0 ? rc : 0;
            node = zone_node_wildcard(zone, ce); /* RFC 4592 3.3.1: the source of synthesis */
            synthesized = true;
            if (!node) {
                res->rcode = WIRE_RCODE_NXDOMAIN;
                return put_negative_soa(a, zone);
            }
        } else {
            const zone_node_t *cut = zone_node_cut(zone, node);
            if (cut && !(cut == node && qtype == WIRE_TYPE_DS)) {
                /* At or below a zone cut; DS at the cut belongs to this side (RFC 4035
                 * 3.1.4.1) */
                res->aa = a->count[SEC_AN] > 0;
                return put_referral(a, zone, cut);
            }
        }
        if (!synthesized && health_pools_active() &&
            (rc = answer_pool(a, zone, owner, name, len, qtype, true)))
            return rc < 0 ? rc : 0;
        const zone_rrset_t *rs = NULL;
        if (qtype == WIRE_TYPE_ANY) {
            /* RFC 8482 4.2: one RRset is enough. */
            rs = node->rrset_count ? &node->rrsets[0] : NULL;
        } else {
            rs = zone_node_rrset(node, qtype);
        }
        if (rs) {
            rc = put_rrset(a, SEC_AN, owner, rs, rs->ttl);
            if (rc == 0 && rs->addl != ZONE_ADDL_NONE) /* most answers have none: no call */
                put_additional(a, zone, rs, node, rs->type == WIRE_TYPE_NS ? ADDL_NS : ADDL_ANSWER,
                               NULL);
            return rc;
        }
        const zone_rrset_t *cname = zone_node_rrset(node, WIRE_TYPE_CNAME);
        if (!cname)
            return put_negative_soa(a, zone); /* NODATA, RFC 2308 2.2 */
        if (c.steps == CNAME_CHAIN_MAX)
            return 0; /* followed enough links: the resolver goes on from here */
        rc = put_rrset(a, SEC_AN, owner, cname, cname->ttl);
        if (rc != 0)
            return rc;
        /* Follow the target where it is served here (RFC 1034 4.3.2 3a). */
        const uint8_t *target = cname->data + 2;
        int tl = wire_name_len(target, wire_get_u16(cname->data));
        if (tl < 0 || !(zone = chain_next(&c, set, target, (size_t)tl)))
            return 0;
    }
}

static void count_query(query_stats_t *st, query_transport_t t, uint16_t qtype)
{
    st->queries[t == QUERY_TCP]++;
    if (qtype < 256)
        st->qtype[qtype]++;
    else
        st->qtype_other++;
}

/* The fixed fields of one RR of a query, read without copying its rdata. */
typedef struct rr_view {
    uint16_t type;
    uint16_t cls;
    uint32_t ttl;
    bool root; /* owner is the root name */
    const uint8_t *rdata;
    uint16_t rdlen;
} rr_view_t;

/* Reads one RR at *pos and moves past it; FENNEC_EMALFORMED when it does not fit. */
static int read_rr(const uint8_t *in, size_t inlen, size_t *pos, rr_view_t *rr)
{
    uint8_t tmp[WIRE_NAME_MAX];
    int nl = wire_name_read(in, inlen, pos, tmp, false);
    if (nl < 0 || *pos + 10 > inlen)
        return FENNEC_EMALFORMED;
    const uint8_t *p = in + *pos;
    rr->type = wire_get_u16(p);
    rr->cls = wire_get_u16(p + 2);
    rr->ttl = wire_get_u32(p + 4);
    rr->rdlen = wire_get_u16(p + 8);
    rr->rdata = p + 10;
    rr->root = nl == 1;
    if (*pos + 10 + rr->rdlen > inlen)
        return FENNEC_EMALFORMED;
    *pos += 10 + (size_t)rr->rdlen;
    return 0;
}

/* Whether OPT rdata is a sequence of whole {code, length, data} options. */
static bool opt_options_ok(const rr_view_t *rr)
{
    size_t p = 0;
    while (p < rr->rdlen) {
        if (p + 4 > rr->rdlen)
            return false;
        p += 4 + (size_t)wire_get_u16(rr->rdata + p + 2);
    }
    return p == rr->rdlen;
}

/* Whether the OPT rdata (checked by opt_options_ok) holds an option CODE. */
static bool opt_has(const rr_view_t *rr, uint16_t code)
{
    for (size_t p = 0; p + 4 <= rr->rdlen; p += 4 + (size_t)wire_get_u16(rr->rdata + p + 2))
        if (wire_get_u16(rr->rdata + p) == code)
            return true;
    return false;
}

/* Whether QNAME (lower-case wire) is one of the CH TXT names that tell which server
 * answered: id.server (RFC 4892) and hostname.bind. */
static bool identity_name(const uint8_t *qname, int qlen)
{
    static const uint8_t id_server[] = "\x02id\x06server";
    static const uint8_t hostname_bind[] = "\x08hostname\x04"
                                           "bind";
    return (qlen == (int)sizeof(id_server) && memcmp(qname, id_server, sizeof(id_server)) == 0) ||
           (qlen == (int)sizeof(hostname_bind) &&
            memcmp(qname, hostname_bind, sizeof(hostname_bind)) == 0);
}

size_t query_answer_set(query_ctx_t *ctx, const zone_set_t *set, const uint8_t *in, size_t inlen,
                        uint8_t *out, size_t outcap, query_transport_t transport)
{
    query_stats_t *st = &ctx->stats;
    uint8_t qname[WIRE_NAME_MAX];
    size_t pos = WIRE_HEADER_LEN;
    uint16_t qtype = 0, qclass = 0;
    int qlen = -1;
    uint8_t rcode = WIRE_RCODE_NOERROR;
    bool edns = false, edns_do = false, aa = false, question = false;
    uint8_t edns_version = 0;
    uint16_t payload = 512;
    int ede = -1; /* RFC 8914 extended error code to attach, if any */
    bool nsid_asked = false;
    const char *nsid = ctx->cfg ? ctx->cfg->nsid : NULL;
    size_t nsid_room = 0; /* the NSID option's bytes, kept back from the answer's room */
    size_t tsig_at = 0;   /* offset of a TSIG record (the last one), 0 when unsigned */
    bool signed_q = false;
    tsig_req_t treq;

    if (inlen < WIRE_HEADER_LEN || outcap < 512) {
        st->dropped++;
        return 0;
    }
    uint16_t flags = wire_get_u16(in + 2);
    if (flags & WIRE_FLAG_QR) {
        st->dropped++; /* never answer a response (RFC 1035 7.3) */
        return 0;
    }
    if (ctx->xfr_pending) {
        /* Not taken by the caller (only TCP transports take them): drop it. */
        zone_unref(ctx->xfr.zone);
        ctx->xfr_pending = false;
    }
    uint8_t opcode = (flags >> 11) & 0xF;
    uint16_t qdcount = wire_get_u16(in + 4);
    ans_t a = {.pkt = out, .pos = WIRE_HEADER_LEN, .ctx = ctx};
    a.cap = outcap;
    memcpy(out, in, 2);

    /* The question: at most one (RFC 9619). None is a FORMERR once the rest parses. */
    if (qdcount > 1) {
        rcode = WIRE_RCODE_FORMERR;
        goto finish;
    }
    if (qdcount == 1) {
        qlen = wire_name_read(in, inlen, &pos, qname, true);
        if (qlen < 0 || pos + 4 > inlen) {
            rcode = WIRE_RCODE_FORMERR;
            goto finish;
        }
        qtype = wire_get_u16(in + pos);
        qclass = wire_get_u16(in + pos + 2);
        pos += 4;
        /* Echo the question with the query's own spelling of the name (case preserved). */
        size_t qpos = WIRE_HEADER_LEN;
        uint8_t orig[WIRE_NAME_MAX];
        wire_name_read(in, inlen, &qpos, orig, false);
        memcpy(out + WIRE_HEADER_LEN, orig, (size_t)qlen);
        wire_put_u16(out + WIRE_HEADER_LEN + qlen, qtype);
        wire_put_u16(out + WIRE_HEADER_LEN + qlen + 2, qclass);
        a.pos = WIRE_HEADER_LEN + (size_t)qlen + 4;
        a.qend = a.pos;
        wire_compr_add(&a.compr, out, WIRE_HEADER_LEN);
        question = true;
        count_query(st, transport, qtype);
    }

    /* The other sections must parse to the last byte; OPT only in the additional section,
     * once, owned by the root, with well-formed options (RFC 6891 6.1.1). A message that
     * fails here gets a FORMERR without OPT. */
    {
        uint16_t an = wire_get_u16(in + 6), ns = wire_get_u16(in + 8);
        uint16_t ar = wire_get_u16(in + 10);
        uint32_t total = (uint32_t)an + ns + ar;
        bool opt_seen = false;
        for (uint32_t i = 0; i < total; i++) {
            rr_view_t rr;
            size_t rr_at = pos;
            if (read_rr(in, inlen, &pos, &rr) != 0) {
                rcode = WIRE_RCODE_FORMERR;
                goto finish;
            }
            if (rr.type == TSIG_TYPE) {
                /* RFC 8945 5.1: only as the last additional record. */
                if (i + 1 != total || i < (uint32_t)an + ns) {
                    st->tsig[QUERY_TSIG_FORMERR]++;
                    rcode = WIRE_RCODE_FORMERR;
                    goto finish;
                }
                tsig_at = rr_at;
                continue;
            }
            if (rr.type != WIRE_TYPE_OPT)
                continue;
            if (opt_seen || i < (uint32_t)an + ns || !rr.root || !opt_options_ok(&rr)) {
                rcode = WIRE_RCODE_FORMERR;
                goto finish;
            }
            opt_seen = true;
            payload = rr.cls < 512 ? 512 : rr.cls;
            nsid_asked = opt_has(&rr, 3); /* RFC 5001 */
            edns_do = rr.ttl & 0x8000;
            edns_version = (uint8_t)(rr.ttl >> 16);
        }
        if (pos != inlen) {
            rcode = WIRE_RCODE_FORMERR; /* trailing bytes */
            goto finish;
        }
        edns = opt_seen;
    }
    if (tsig_at) {
        /* Signed: checked before anything else, so that every later answer is signed. */
        int trc = tsig_request_check(ctx->cfg ? &ctx->cfg->tsig_keys : NULL, in, inlen, tsig_at,
                                     (uint64_t)time(NULL), &treq);
        static const uint8_t outcome[] = {
            [TSIG_NOERROR] = QUERY_TSIG_OK,        [TSIG_BADSIG] = QUERY_TSIG_BADSIG,
            [TSIG_BADKEY] = QUERY_TSIG_BADKEY,     [TSIG_BADTIME] = QUERY_TSIG_BADTIME,
            [TSIG_BADTRUNC] = QUERY_TSIG_BADTRUNC,
        };
        if (trc == WIRE_RCODE_FORMERR) {
            st->tsig[QUERY_TSIG_FORMERR]++;
            rcode = WIRE_RCODE_FORMERR; /* unreadable: answered unsigned */
            goto finish;
        }
        signed_q = true;
        st->tsig[treq.error < sizeof(outcome) ? outcome[treq.error] : QUERY_TSIG_FORMERR]++;
        if (trc != 0) {
            rcode = (uint8_t)trc;
            goto finish;
        }
    }
    if (!question) {
        rcode = WIRE_RCODE_FORMERR;
        goto finish;
    }
    if (edns && edns_version != 0) {
        rcode = WIRE_RCODE_BADVERS; /* RFC 6891 6.1.3 */
        goto finish;
    }
    if (transport == QUERY_UDP) {
        size_t limit = edns ? (payload < EDNS_PAYLOAD ? payload : EDNS_PAYLOAD) : 512;
        if (limit < a.cap)
            a.cap = limit;
    }
    if (edns)
        a.cap -= OPT_LEN;
    if (edns && nsid_asked && nsid) {
        nsid_room = 4 + strlen(nsid);
        a.cap = a.cap > nsid_room ? a.cap - nsid_room : 0;
    }
    if (signed_q) {
        size_t t = tsig_answer_size(&treq); /* the TSIG record goes after everything */
        a.cap = a.cap > t ? a.cap - t : 0;
    }

    if (opcode != 0) {
        /* NOTIFY and UPDATE are understood but not accepted here; the rest is unknown. */
        if (opcode == 5 && qtype != WIRE_TYPE_SOA)
            rcode = WIRE_RCODE_FORMERR; /* RFC 2136 3.1.1: the zone section names an SOA */
        else
            rcode = (opcode == 4 || opcode == 5) ? WIRE_RCODE_NOTAUTH : WIRE_RCODE_NOTIMP;
        goto finish;
    }
    if (qclass == WIRE_CLASS_CH && ctx->cfg && ctx->cfg->identity && identity_name(qname, qlen) &&
        (qtype == WIRE_TYPE_TXT || qtype == WIRE_TYPE_ANY)) {
        /* Which server answered, for anycast operators: one TXT string, TTL 0. */
        const char *id = ctx->cfg->identity;
        size_t il = strlen(id);
        uint8_t txt[2 + 1 + 255];
        wire_put_u16(txt, (uint16_t)(1 + il));
        txt[2] = (uint8_t)il;
        memcpy(txt + 3, id, il);
        zone_rrset_t rs = {
            .type = WIRE_TYPE_TXT, .count = 1, .len = (uint32_t)(3 + il), .data = txt};
        if (put_rrset(&a, SEC_AN, NULL, &rs, 0) == 0) {
            /* the class of the question, not IN */
            wire_put_u16(out + a.pos - (1 + il) - 8, WIRE_CLASS_CH);
        } else {
            a.tc = true;
        }
        goto finish; /* AA clear: not zone data (as Knot and NSD) */
    }
    if (qclass != WIRE_CLASS_IN && qclass != WIRE_CLASS_ANY) {
        rcode = WIRE_RCODE_REFUSED;
        goto finish;
    }
    const zone_t *zone = zone_set_find(set, qname, (size_t)qlen);
    if (zone && qtype == WIRE_TYPE_DS && qname[0] != 0 &&
        memcmp(zone_apex_wire(zone), qname, (size_t)qlen) == 0) {
        /* DS lives on the parent side of a cut (RFC 4035 3.1.4.1): ask the parent zone
         * when this server has it too. */
        const zone_t *parent =
            zone_set_find(set, qname + qname[0] + 1, (size_t)qlen - qname[0] - 1u);
        if (parent)
            zone = parent;
    }
    if (!zone) {
        rcode = WIRE_RCODE_REFUSED; /* RFC 8906 3.1.3: not our zone */
        ede = 20;                   /* Not Authoritative */
        goto finish;
    }
    if (qtype == 0) {
        rcode = WIRE_RCODE_NOTIMP; /* type 0 is reserved (RFC 6895 3.1); as Knot DNS */
        goto finish;
    }
    if (qtype == WIRE_TYPE_AXFR || qtype == WIRE_TYPE_IXFR) {
        /* docs/dns-behaviour.md "Zone transfers". AXFR over UDP: NOTIMP, as Knot and NSD. A
         * zone without a transfer rule offers none: NOTAUTH, as Knot. A client the rule does
         * not name: REFUSED, as NSD. */
        const cfg_transfer_t *rule = ctx->cfg ? cfg_transfer_for(ctx->cfg, zone_name(zone)) : NULL;
        const uint8_t *apex = zone_apex_wire(zone);
        bool at_apex = (size_t)qlen == strlen((const char *)apex) + 1 &&
                       memcmp(apex, qname, (size_t)qlen) == 0;
        if (qtype == WIRE_TYPE_AXFR && transport == QUERY_UDP) {
            rcode = WIRE_RCODE_NOTIMP;
            goto finish;
        }
        if (!rule || !rule->set || !at_apex) {
            rcode = WIRE_RCODE_NOTAUTH;
            goto finish;
        }
        if (!cfg_transfer_allows(rule, ctx->peer, signed_q && !treq.error ? treq.key : NULL)) {
            st->xfr[QUERY_XFR_REFUSED]++;
            rcode = WIRE_RCODE_REFUSED;
            goto finish;
        }
        if (transport == QUERY_UDP) {
            /* IXFR over UDP: the current SOA alone tells the client to come over TCP
             * (RFC 1995 2), as Knot answers. */
            const zone_rrset_t *soa = zone_node_rrset(zone_apex(zone), WIRE_TYPE_SOA);
            if (put_rrset(&a, SEC_AN, NULL, soa, soa->ttl) != 0) {
                a.tc = true;
                a.pos = a.qend;
                a.count[SEC_AN] = 0;
            }
            st->xfr[QUERY_XFR_UDP]++;
            aa = true;
            goto finish;
        }
        /* Over TCP the transport writes the messages from this version of the zone. */
        query_xfr_t *x = &ctx->xfr;
        x->zone = (zone_t *)zone;
        zone_ref(x->zone);
        x->id = wire_get_u16(in);
        x->flags = flags & (WIRE_FLAG_RD | WIRE_FLAG_CD);
        x->question_len = a.qend - WIRE_HEADER_LEN;
        memcpy(x->question, out + WIRE_HEADER_LEN, x->question_len);
        x->tsig_present = signed_q;
        if (signed_q)
            x->tsig = treq;
        ctx->xfr_pending = true;
        st->xfr[QUERY_XFR_STARTED]++;
        return 0;
    }
    {
        lookup_t res;
        int rc = answer_from_zone(&a, set, zone, qname, (size_t)qlen, qtype, &res);
        if (rc == FENNEC_ESPACE) {
            /* RFC 2181 9: set TC and send what is certain: the question, no partial RRsets */
            a.tc = true;
            a.pos = a.qend;
            a.count[SEC_AN] = a.count[SEC_NS] = a.count[SEC_AR] = 0;
        }
        rcode = res.rcode;
        /* QCLASS ANY is answered from the IN data, authoritatively as Knot DNS does. */
        aa = res.aa;
    }

finish:
    if (!question) {
        a.pos = WIRE_HEADER_LEN;
        a.count[SEC_AN] = a.count[SEC_NS] = a.count[SEC_AR] = 0;
        st->queries[transport == QUERY_TCP]++;
    } else if (rcode != WIRE_RCODE_NOERROR && rcode != WIRE_RCODE_NXDOMAIN &&
               rcode != WIRE_RCODE_YXDOMAIN) {
        a.pos = a.qend;
        a.count[SEC_AN] = a.count[SEC_NS] = a.count[SEC_AR] = 0;
    }
    uint16_t rflags = WIRE_FLAG_QR | (uint16_t)(opcode << 11) |
                      (flags & (WIRE_FLAG_RD | WIRE_FLAG_CD)) | (rcode & 0xF);
    if (aa)
        rflags |= WIRE_FLAG_AA;
    if (a.tc) {
        rflags |= WIRE_FLAG_TC;
        st->truncated++;
    }
    wire_put_u16(out + 2, rflags);
    wire_put_u16(out + 4, question ? 1 : 0);
    wire_put_u16(out + 6, a.count[SEC_AN]);
    wire_put_u16(out + 8, a.count[SEC_NS]);
    uint16_t arcount = a.count[SEC_AR];
    if (edns) {
        /* OPT (RFC 6891 6.1.2): room for it was kept back from the start. */
        uint8_t *o = out + a.pos;
        o[0] = 0;
        wire_put_u16(o + 1, WIRE_TYPE_OPT);
        wire_put_u16(o + 3, EDNS_PAYLOAD);
        wire_put_u32(o + 5, (uint32_t)(rcode >> 4) << 24 | (edns_do ? 0x8000u : 0));
        wire_put_u16(o + 9, 0);
        a.pos += OPT_LEN;
        size_t rdlen = 0;
        if (nsid_asked && nsid) {
            /* RFC 5001 2.3: the server's identifier, when asked. Room was kept back, except
             * on answers that stopped before that, which are the question alone. */
            size_t nl = strlen(nsid);
            size_t limit =
                transport == QUERY_UDP ? (payload < EDNS_PAYLOAD ? payload : EDNS_PAYLOAD) : outcap;
            size_t t = signed_q ? tsig_answer_size(&treq) : 0;
            limit = limit > t ? limit - t : 0;
            if (a.pos + 4 + nl + (ede >= 0 ? 6 : 0) <= limit) {
                wire_put_u16(out + a.pos, 3);
                wire_put_u16(out + a.pos + 2, (uint16_t)nl);
                memcpy(out + a.pos + 4, nsid, nl);
                a.pos += 4 + nl;
                rdlen += 4 + nl;
            }
        }
        if (ede >= 0) {
            /* Only on answers rolled back to the question, so the room is there. */
            wire_put_u16(out + a.pos, 15); /* EDE option */
            wire_put_u16(out + a.pos + 2, 2);
            wire_put_u16(out + a.pos + 4, (uint16_t)ede);
            a.pos += 6;
            rdlen += 6;
        }
        wire_put_u16(o + 9, (uint16_t)rdlen);
        arcount++;
    }
    wire_put_u16(out + 10, arcount);
    if (signed_q) {
        /* Room was kept back (a.cap) for an answer; an error answer is the question alone. */
        size_t cap = outcap; /* over UDP, the TSIG record too stays within the client's size */
        if (transport == QUERY_UDP) {
            size_t udp = edns ? (payload < EDNS_PAYLOAD ? payload : EDNS_PAYLOAD) : 512;
            cap = udp < outcap ? udp : outcap;
        }
        if (tsig_answer_sign(&treq, out, &a.pos, cap, (uint64_t)time(NULL), NULL, NULL) != 0) {
            st->dropped++; /* never an unsigned answer to a signed query */
            return 0;
        }
    }
    st->rcode[rcode < QUERY_RCODE_MAX ? rcode : QUERY_RCODE_MAX - 1]++;
    return a.pos;
}

void query_hint_start(const zone_set_t *set, const uint8_t *in, size_t inlen, query_hint_t *hint)
{
    uint8_t qname[WIRE_NAME_MAX];
    size_t pos = WIRE_HEADER_LEN;

    hint->zone = NULL;
    if (inlen < WIRE_HEADER_LEN || wire_get_u16(in + 4) != 1)
        return;
    int qlen = wire_name_read(in, inlen, &pos, qname, true);
    if (qlen < 0)
        return;
    hint->zone = zone_set_find(set, qname, (size_t)qlen);
    if (hint->zone)
        hint->hash = zone_node_prefetch(hint->zone, qname, (size_t)qlen);
}

void query_hint_next(const query_hint_t *hint)
{
    if (hint->zone)
        zone_node_prefetch_next(hint->zone, hint->hash);
}

size_t query_answer(query_ctx_t *ctx, const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
                    query_transport_t transport)
{
    zone_read_lock();
    size_t n = query_answer_set(ctx, zone_set_current(), in, inlen, out, outcap, transport);
    zone_read_unlock();
    return n;
}
