/*
 * Frames of the replication stream: length-prefixed protobuf messages. The reader buffers at
 * most one frame, refuses a length above its maximum before reading the body, and checks
 * every decoded message with frame_check(), so what reaches the stream code is well formed.
 */
#include "fennec/frame.h"
#include "fennec/common.h"
#include "fennec/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_LEN 32
#define MAC_LEN   32

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return FENNEC_EMALFORMED;
}

/* ---- checks ---- */

static int check_zone(const char *zone, const char *what, char *err, size_t errlen)
{
    uint8_t wire[WIRE_NAME_MAX];
    if (!zone || !zone[0] || wire_name_from_text(zone, wire) < 0)
        return fail(err, errlen, "%s: invalid zone name", what);
    return 0;
}

static int check_records(ProtobufCBinaryData blob, const char *what, char *err, size_t errlen)
{
    size_t pos = 0, i = 0;
    frame_rr_t rr;
    const char *why = "";
    int rc;
    while ((rc = frame_rr_next(blob.data, blob.len, &pos, &rr, &why)) == 1)
        i++;
    if (rc != 0)
        return fail(err, errlen, "%s[%zu]: %s", what, i, why);
    return 0;
}

static int check_members(const Fennec__Replication__Membership *ms, char *err, size_t errlen)
{
    for (size_t i = 0; ms && i < ms->n_members; i++) {
        const Fennec__Replication__Member *m = ms->members[i];
        if (!m->id || !m->id[0] || strlen(m->id) > 63 || !m->address || !m->address[0] ||
            strlen(m->address) > 79)
            return fail(err, errlen, "membership: member %zu without a valid id or address", i);
    }
    return 0;
}

static int check_override(const Fennec__Replication__HealthOverride *o, char *err, size_t errlen)
{
    size_t n = o->check ? strlen(o->check) : 0;
    if (n == 0 || n > 63)
        return fail(err, errlen, "health override: a check name of %zu characters", n);
    if (o->state > 2)
        return fail(err, errlen, "health override: state %u", o->state);
    return 0;
}

static int check_entry(const Fennec__Replication__Entry *e, char *err, size_t errlen)
{
    if (e->index == 0)
        return fail(err, errlen, "entry: index 0");
    switch (e->payload_case) {
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_DIFF: {
        const Fennec__Replication__ZoneDiff *d = e->zone_diff;
        int rc = check_zone(d->zone, "zone diff", err, errlen);
        if (rc == 0)
            rc = check_records(d->removed, "zone diff: removed", err, errlen);
        if (rc == 0)
            rc = check_records(d->added, "zone diff: added", err, errlen);
        return rc;
    }
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_WHOLE: {
        const Fennec__Replication__ZoneWhole *w = e->zone_whole;
        int rc = check_zone(w->zone, "whole zone", err, errlen);
        return rc ? rc : check_records(w->records, "whole zone", err, errlen);
    }
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_REMOVED:
        return check_zone(e->zone_removed->zone, "zone removed", err, errlen);
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_HEALTH:
        return 0; /* YAML: the configuration checker judges it */
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_HEALTH_OVERRIDE:
        return check_override(e->health_override, err, errlen);
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_MEMBERSHIP:
        return check_members(e->membership, err, errlen);
    default:
        return fail(err, errlen, "entry %llu without a payload", (unsigned long long)e->index);
    }
}

/*
 * Whether MSG or any message inside it carries fields this version does not know. They are
 * refused: both ends speak the version their hello names, and protobuf-c keeps unknown
 * fields as they came, including ones (field number 0) that it would not decode again.
 */
static bool has_unknown_fields(const ProtobufCMessage *msg)
{
    if (msg->n_unknown_fields)
        return true;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)msg;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            const ProtobufCMessage *const *arr =
                *(const ProtobufCMessage *const *const *)(base + fd->offset);
            for (size_t k = 0; k < n; k++)
                if (arr[k] && has_unknown_fields(arr[k]))
                    return true;
            continue;
        }
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
            continue; /* another member of the oneof is set */
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + fd->offset);
        if (sub && has_unknown_fields(sub))
            return true;
    }
    return false;
}

int frame_check(const frame_t *f, char *err, size_t errlen)
{
    if (has_unknown_fields(&f->base))
        return fail(err, errlen, "a message with fields this version does not know");
    switch (f->kind_case) {
    case FENNEC__REPLICATION__FRAME__KIND_HELLO:
        if (f->hello->version == 0)
            return fail(err, errlen, "hello: version 0");
        if (!f->hello->node_id || !f->hello->node_id[0])
            return fail(err, errlen, "hello: no node id");
        if (f->hello->nonce.len != NONCE_LEN)
            return fail(err, errlen, "hello: a nonce of %zu bytes (want %d)", f->hello->nonce.len,
                        NONCE_LEN);
        return 0;
    case FENNEC__REPLICATION__FRAME__KIND_PROOF:
        if (f->proof->mac.len != MAC_LEN)
            return fail(err, errlen, "proof: a MAC of %zu bytes (want %d)", f->proof->mac.len,
                        MAC_LEN);
        return 0;
    case FENNEC__REPLICATION__FRAME__KIND_ENTRY:
        return check_entry(f->entry, err, errlen);
    case FENNEC__REPLICATION__FRAME__KIND_SNAPSHOT: {
        const Fennec__Replication__SnapshotChunk *s = f->snapshot;
        if (s->index == 0)
            return fail(err, errlen, "snapshot: index 0");
        if (s->zone && s->zone[0]) {
            int rc = check_zone(s->zone, "snapshot", err, errlen);
            if (rc)
                return rc;
        } else if (s->records.len) {
            return fail(err, errlen, "snapshot: records without a zone");
        }
        if (check_members(s->members, err, errlen) != 0)
            return FENNEC_EMALFORMED;
        for (size_t i = 0; i < s->n_overrides; i++)
            if (check_override(s->overrides[i], err, errlen) != 0)
                return FENNEC_EMALFORMED;
        return check_records(s->records, "snapshot", err, errlen);
    }
    case FENNEC__REPLICATION__FRAME__KIND_HEARTBEAT:
    case FENNEC__REPLICATION__FRAME__KIND_ACK:
    case FENNEC__REPLICATION__FRAME__KIND_ERROR:
        return 0;
    default:
        return fail(err, errlen, "a frame without a message");
    }
}

/* ---- encoding ---- */

int frame_encode(const frame_t *f, size_t max, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    int rc = frame_check(f, err, errlen);
    if (rc)
        return rc;
    size_t n = fennec__replication__frame__get_packed_size(f);
    if (n > max || n > UINT32_MAX) {
        snprintf(err, errlen, "a frame of %zu bytes is over the maximum of %zu", n, max);
        return FENNEC_ESPACE;
    }
    uint8_t *buf = malloc(FRAME_HEADER_LEN + n);
    if (!buf)
        return -ENOMEM;
    wire_put_u32(buf, (uint32_t)n);
    fennec__replication__frame__pack(f, buf + FRAME_HEADER_LEN);
    *out = buf;
    *len = FRAME_HEADER_LEN + n;
    return 0;
}

/* ---- reading ---- */

void frame_reader_init(frame_reader_t *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max ? max : FRAME_MAX_DEFAULT;
}

void frame_reader_deinit(frame_reader_t *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

int frame_reader_feed(frame_reader_t *r, const uint8_t *data, size_t n)
{
    if (r->error)
        return r->error;
    if (n == 0)
        return 0;
    if (r->start) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (n > SIZE_MAX - r->len)
        return -ENOMEM;
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        uint8_t *b = realloc(r->buf, cap);
        if (!b)
            return -ENOMEM;
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    /* A length over the maximum is refused now, not once the body has been buffered. */
    if (r->len >= FRAME_HEADER_LEN && wire_get_u32(r->buf) > r->max)
        r->error = FENNEC_EMALFORMED;
    return r->error;
}

int frame_reader_next(frame_reader_t *r, frame_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!r->buf && !r->error)
        return 0; /* nothing fed yet */
    const uint8_t *p = r->buf ? r->buf + r->start : NULL;
    size_t have = r->len - r->start;
    if (r->error) {
        if (p && have >= FRAME_HEADER_LEN && wire_get_u32(p) > r->max)
            return fail(err, errlen, "a frame of %u bytes is over the maximum of %zu",
                        wire_get_u32(p), r->max);
        return fail(err, errlen, "the stream had a bad frame before");
    }
    if (have < FRAME_HEADER_LEN)
        return 0;
    size_t n = wire_get_u32(p);
    if (n > r->max) {
        r->error = FENNEC_EMALFORMED;
        return fail(err, errlen, "a frame of %zu bytes is over the maximum of %zu", n, r->max);
    }
    if (have - FRAME_HEADER_LEN < n)
        return 0;
    frame_t *f = fennec__replication__frame__unpack(NULL, n, p + FRAME_HEADER_LEN);
    r->start += FRAME_HEADER_LEN + n;
    if (!f) {
        r->error = FENNEC_EMALFORMED;
        return fail(err, errlen, "a frame of %zu bytes that is not a replication message", n);
    }
    int rc = frame_check(f, err, errlen);
    if (rc) {
        r->error = rc;
        frame_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void frame_free(frame_t *f)
{
    if (f)
        fennec__replication__frame__free_unpacked(f, NULL);
}

/* ---- entries on their own (the journal) ---- */

/* Large fields (a whole zone's records) in huge-page-backed blocks: see fennec_alloc_large(). */
static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return fennec_alloc_large(size);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static ProtobufCAllocator g_pb_alloc = {.alloc = pb_alloc, .free = pb_free};

int frame_entry_decode(const uint8_t *data, size_t len, Fennec__Replication__Entry **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    Fennec__Replication__Entry *e = fennec__replication__entry__unpack(&g_pb_alloc, len, data);
    if (!e)
        return fail(err, errlen, "an entry of %zu bytes that does not decode", len);
    if (has_unknown_fields(&e->base)) {
        fennec__replication__entry__free_unpacked(e, &g_pb_alloc);
        return fail(err, errlen, "an entry with fields this version does not know");
    }
    int rc = check_entry(e, err, errlen);
    if (rc) {
        fennec__replication__entry__free_unpacked(e, &g_pb_alloc);
        return rc;
    }
    *out = e;
    return 0;
}

void frame_entry_free(Fennec__Replication__Entry *e)
{
    if (e)
        fennec__replication__entry__free_unpacked(e, &g_pb_alloc);
}

/* A Frame is field 3 (entry), wire type 2: the tag byte, a varint length, the bytes. */
int frame_entry_wrap(const uint8_t *entry, size_t len, uint8_t *out, size_t cap, size_t *used)
{
    uint8_t head[FRAME_HEADER_LEN + 1 + 10];
    size_t h = FRAME_HEADER_LEN;
    head[h++] = (3 << 3) | 2;
    size_t v = len;
    do {
        head[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    if (h - FRAME_HEADER_LEN + len > UINT32_MAX)
        return FENNEC_ESPACE;
    wire_put_u32(head, (uint32_t)(h - FRAME_HEADER_LEN + len));
    *used = h + len;
    if (cap < h + len)
        return FENNEC_ESPACE;
    memcpy(out, head, h);
    memcpy(out + h, entry, len);
    return 0;
}

/* ---- records ---- */

int frame_rr_next(const uint8_t *blob, size_t len, size_t *pos, frame_rr_t *rr, const char **why)
{
    size_t p = *pos;
    const char *dummy;
    if (!why)
        why = &dummy;
    if (p >= len)
        return 0;
    int ol = wire_name_len(blob + p, len - p);
    if (ol < 0) {
        *why = "the owner is not a wire name";
        return FENNEC_EMALFORMED;
    }
    if (len - p - (size_t)ol < 10) {
        *why = "cut short";
        return FENNEC_EMALFORMED;
    }
    const uint8_t *f = blob + p + ol;
    uint16_t type = wire_get_u16(f), class = wire_get_u16(f + 2), rdlen = wire_get_u16(f + 8);
    if (type == 0) {
        *why = "type 0";
        return FENNEC_EMALFORMED;
    }
    if (class != 1) {
        *why = "a class other than IN";
        return FENNEC_EMALFORMED;
    }
    if (len - p - (size_t)ol - 10 < rdlen) {
        *why = "its rdata is cut short";
        return FENNEC_EMALFORMED;
    }
    rr->owner = blob + p;
    rr->owner_len = (size_t)ol;
    rr->type = type;
    rr->ttl = wire_get_u32(f + 4);
    rr->rdata = f + 10;
    rr->rdlen = rdlen;
    *pos = p + (size_t)ol + 10 + rdlen;
    return 1;
}

int frame_rrs_add(frame_rrs_t *b, const uint8_t *owner, size_t owner_len, uint16_t type,
                  uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
    size_t need = owner_len + 10 + rdlen;
    if (b->len + need > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + need)
            cap *= 2;
        uint8_t *nb = realloc(b->buf, cap);
        if (!nb)
            return -ENOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    uint8_t *p = b->buf + b->len;
    memcpy(p, owner, owner_len);
    p += owner_len;
    wire_put_u16(p, type);
    wire_put_u16(p + 2, 1);
    wire_put_u32(p + 4, ttl);
    wire_put_u16(p + 8, rdlen);
    memcpy(p + 10, rdata, rdlen);
    b->len += need;
    b->count++;
    return 0;
}

void frame_rrs_free(frame_rrs_t *b)
{
    free(b->buf);
    memset(b, 0, sizeof(*b));
}
