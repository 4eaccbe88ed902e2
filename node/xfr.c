/*
 * AXFR out: the zone's nodes are visited with zone_node_next(), a cursor into the version
 * held for the transfer, so a message costs in proportion to its records whatever the
 * zone's size and nothing is copied beforehand. RFC 5936 asks for no particular order
 * between the two SOAs.
 */
#include "fennec/xfr.h"
#include "fennec/common.h"
#include "fennec/tsig.h"
#include "fennec/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { PHASE_SOA_FIRST, PHASE_NODES, PHASE_SOA_LAST, PHASE_DONE };

struct xfr {
    zone_t *zone;
    query_xfr_t req;
    tsig_chain_t chain;
    int phase;
    uint32_t cursor;         /* zone_node_next() */
    const zone_node_t *node; /* node being written, or NULL */
    unsigned rrset;          /* its RRset being written */
    unsigned record;         /* next record of that RRset */
    uint32_t record_off;     /* its offset in the RRset's data */
    bool first;              /* the first message is still to be written */
    uint64_t records;
};

int xfr_new(query_xfr_t *req, xfr_t **out)
{
    xfr_t *x = calloc(1, sizeof(*x));
    if (!x) {
        zone_unref(req->zone);
        req->zone = NULL;
        return -ENOMEM;
    }
    x->req = *req;
    x->zone = req->zone;
    req->zone = NULL;
    if (x->req.tsig_present)
        tsig_chain_init(&x->chain, &x->req.tsig);
    x->first = true;
    *out = x;
    return 0;
}

uint64_t xfr_records(const xfr_t *x)
{
    return x->records;
}

const zone_t *xfr_zone(const xfr_t *x)
{
    return x->zone;
}

void xfr_free(xfr_t *x)
{
    if (x)
        zone_unref(xfr_free_keep_zone(x));
}

zone_t *xfr_free_keep_zone(xfr_t *x)
{
    zone_t *z = x->zone;
    free(x);
    return z;
}

/* One message being written. */
typedef struct msg {
    uint8_t *pkt;
    size_t cap; /* room for records (the TSIG record's taken off) */
    size_t pos;
    wire_compr_t compr;
    uint16_t ancount;
} msg_t;

/* Writes one record, or nothing with FENNEC_ESPACE. */
static int put_record(msg_t *m, const uint8_t *owner, const zone_rrset_t *rs, const uint8_t *rd,
                      uint16_t rdlen)
{
    size_t start = m->pos;
    if (wire_name_write(m->pkt, m->cap, &m->pos, owner, &m->compr) != 0 ||
        m->pos + 10 + rdlen > m->cap) {
        m->pos = start;
        wire_compr_trim(&m->compr, start);
        return FENNEC_ESPACE;
    }
    uint8_t *p = m->pkt + m->pos;
    wire_put_u16(p, rs->type);
    wire_put_u16(p + 2, WIRE_CLASS_IN);
    wire_put_u32(p + 4, rs->ttl);
    wire_put_u16(p + 8, rdlen);
    memcpy(p + 10, rd, rdlen);
    m->pos += 10 + (size_t)rdlen;
    m->ancount++;
    return 0;
}

static int put_soa(xfr_t *x, msg_t *m)
{
    const zone_node_t *apex = zone_apex(x->zone);
    const zone_rrset_t *soa = zone_node_rrset(apex, WIRE_TYPE_SOA);
    return put_record(m, apex->name, soa, soa->data + 2, wire_get_u16(soa->data));
}

/* Fills M with records from where X stands until the message holds XFR_MSG_TARGET bytes or
 * the zone is done. */
static int fill(xfr_t *x, msg_t *m)
{
    int rc;
    if (x->phase == PHASE_SOA_FIRST) {
        if ((rc = put_soa(x, m)) != 0)
            return rc;
        x->records++;
        x->phase = PHASE_NODES;
    }
    while (x->phase == PHASE_NODES) {
        if (m->pos >= XFR_MSG_TARGET)
            return 0;
        if (!x->node) {
            if (!zone_node_next(x->zone, &x->cursor, &x->node)) {
                x->phase = PHASE_SOA_LAST;
                break;
            }
            x->rrset = 0;
            x->record = 0;
            x->record_off = 0;
        }
        const zone_node_t *n = x->node;
        if (x->rrset >= n->rrset_count) {
            x->node = NULL;
            continue;
        }
        const zone_rrset_t *rs = &n->rrsets[x->rrset];
        if ((rs->type == WIRE_TYPE_SOA && (n->flags & ZONE_NODE_APEX)) || x->record >= rs->count) {
            x->rrset++;
            x->record = 0;
            x->record_off = 0;
            continue;
        }
        const uint8_t *p = rs->data + x->record_off;
        uint16_t rdlen = wire_get_u16(p);
        if ((rc = put_record(m, n->name, rs, p + 2, rdlen)) != 0)
            return m->ancount > 0 ? 0 : rc; /* the next message starts with it */
        x->records++;
        x->record++;
        x->record_off += 2u + rdlen;
    }
    if (x->phase == PHASE_SOA_LAST) {
        if (put_soa(x, m) != 0)
            return m->ancount > 0 ? 0 : FENNEC_ESPACE;
        x->records++;
        x->phase = PHASE_DONE;
    }
    return 0;
}

int xfr_next(xfr_t *x, uint8_t *out, size_t cap, uint64_t now, size_t *written)
{
    *written = 0;
    if (x->phase == PHASE_DONE)
        return 0;
    if (cap < XFR_MSG_MAX + 2)
        return FENNEC_ESPACE;
    msg_t m = {.pkt = out + 2, .cap = XFR_MSG_MAX, .pos = WIRE_HEADER_LEN};
    if (x->req.tsig_present) {
        size_t t = tsig_answer_size(&x->req.tsig);
        m.cap -= t;
    }
    uint8_t *h = m.pkt;
    wire_put_u16(h, x->req.id);
    wire_put_u16(h + 2, WIRE_FLAG_QR | WIRE_FLAG_AA | x->req.flags);
    wire_put_u16(h + 4, x->first ? 1 : 0);
    wire_put_u16(h + 6, 0);
    wire_put_u16(h + 8, 0);
    wire_put_u16(h + 10, 0);
    if (x->first) {
        memcpy(h + WIRE_HEADER_LEN, x->req.question, x->req.question_len);
        wire_compr_add(&m.compr, h, WIRE_HEADER_LEN);
        m.pos += x->req.question_len;
    }
    int rc = fill(x, &m);
    if (rc != 0)
        return rc;
    wire_put_u16(h + 6, m.ancount);
    if (x->req.tsig_present) {
        rc = tsig_chain_sign(&x->chain, m.pkt, &m.pos, XFR_MSG_MAX, now);
        if (rc != 0)
            return rc;
    }
    x->first = false;
    out[0] = (uint8_t)(m.pos >> 8);
    out[1] = (uint8_t)m.pos;
    *written = m.pos + 2;
    return 0;
}
