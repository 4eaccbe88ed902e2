/*
 * Journal entries from zone versions, and back. Packing builds the protobuf message with
 * records pointing into the zones (no copy) and packs it once; applying goes through the
 * zone store's copy-on-write update, deletes before adds, with the serial taken from the
 * entry's SOA, and checks the result against what the entry says it must be.
 */
#include "fennec/entry.h"
#include "fennec/common.h"
#include "fennec/frame.h"
#include "fennec/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A diff walk delivers removed records, then added ones. */
typedef struct diff_recs {
    frame_rrs_t removed;
    frame_rrs_t added;
} diff_recs_t;

static int rrs_push(frame_rrs_t *b, const zone_change_t *ch)
{
    return frame_rrs_add(b, ch->owner, (size_t)wire_name_len(ch->owner, WIRE_NAME_MAX), ch->type,
                         ch->ttl, ch->rdata, ch->rdlen);
}

static int diff_push(const zone_change_t *ch, void *arg)
{
    diff_recs_t *d = arg;
    return rrs_push(ch->add ? &d->added : &d->removed, ch);
}

static int whole_push(const zone_change_t *ch, void *arg)
{
    return rrs_push(arg, ch);
}

static ProtobufCBinaryData blob_of(const frame_rrs_t *b)
{
    return (ProtobufCBinaryData){.len = b->len, .data = b->buf};
}

/* Packs E as entry INDEX committed at COMMIT_NS into a new buffer *OUT of *LEN bytes. */
static int pack(entry_t *e, uint64_t index, uint64_t commit_ns, uint8_t **out, size_t *len)
{
    e->index = index;
    e->commit_time_ns = commit_ns;
    size_t n = fennec__replication__entry__get_packed_size(e);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    fennec__replication__entry__pack(e, buf);
    *out = buf;
    *len = n;
    return 0;
}

int entry_pack_diff(uint64_t index, uint64_t commit_ns, const zone_t *from, const zone_t *to,
                    uint8_t **out, size_t *len)
{
    diff_recs_t d = {0};
    int rc = zone_diff(from, to, diff_push, &d);
    if (rc == 0) {
        Fennec__Replication__ZoneDiff zd = FENNEC__REPLICATION__ZONE_DIFF__INIT;
        entry_t e = FENNEC__REPLICATION__ENTRY__INIT;
        uint64_t digest = 0;
        const char *file = zone_source(to, &digest);
        zd.zone = (char *)zone_name(to);
        zd.serial_before = zone_serial(from);
        zd.serial_after = zone_serial(to);
        zd.removed = blob_of(&d.removed);
        zd.added = blob_of(&d.added);
        zd.file = (char *)(file ? file : "");
        zd.file_digest = digest;
        zd.records_after = zone_record_count(to);
        e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_DIFF;
        e.zone_diff = &zd;
        rc = pack(&e, index, commit_ns, out, len);
    }
    frame_rrs_free(&d.removed);
    frame_rrs_free(&d.added);
    return rc;
}

int entry_pack_whole(uint64_t index, uint64_t commit_ns, const zone_t *z, uint8_t **out,
                     size_t *len)
{
    frame_rrs_t r = {0};
    int rc = zone_records(z, whole_push, &r);
    if (rc == 0) {
        Fennec__Replication__ZoneWhole zw = FENNEC__REPLICATION__ZONE_WHOLE__INIT;
        entry_t e = FENNEC__REPLICATION__ENTRY__INIT;
        uint64_t digest = 0;
        const char *file = zone_source(z, &digest);
        zw.zone = (char *)zone_name(z);
        zw.serial = zone_serial(z);
        zw.records = blob_of(&r);
        zw.file = (char *)(file ? file : "");
        zw.file_digest = digest;
        e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_WHOLE;
        e.zone_whole = &zw;
        rc = pack(&e, index, commit_ns, out, len);
    }
    frame_rrs_free(&r);
    return rc;
}

int entry_pack_removed(uint64_t index, uint64_t commit_ns, const char *zone, uint8_t **out,
                       size_t *len)
{
    Fennec__Replication__ZoneRemoved zr = FENNEC__REPLICATION__ZONE_REMOVED__INIT;
    entry_t e = FENNEC__REPLICATION__ENTRY__INIT;
    zr.zone = (char *)zone;
    e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_REMOVED;
    e.zone_removed = &zr;
    return pack(&e, index, commit_ns, out, len);
}

int entry_pack_members(uint64_t index, uint64_t commit_ns, const repl_member_t *members,
                       size_t count, uint8_t **out, size_t *len)
{
    Fennec__Replication__Member *items = calloc(count ? count : 1, sizeof(*items));
    Fennec__Replication__Member **ptrs = calloc(count ? count : 1, sizeof(*ptrs));
    int rc = -ENOMEM;
    if (items && ptrs) {
        for (size_t i = 0; i < count; i++) {
            fennec__replication__member__init(&items[i]);
            items[i].id = (char *)members[i].id;
            items[i].address = (char *)members[i].address;
            ptrs[i] = &items[i];
        }
        Fennec__Replication__Membership ms = FENNEC__REPLICATION__MEMBERSHIP__INIT;
        entry_t e = FENNEC__REPLICATION__ENTRY__INIT;
        ms.members = ptrs;
        ms.n_members = count;
        e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_MEMBERSHIP;
        e.membership = &ms;
        rc = pack(&e, index, commit_ns, out, len);
    }
    free(items);
    free(ptrs);
    return rc;
}

int entry_pack_health(uint64_t index, uint64_t commit_ns, const health_config_t *hc, uint8_t **out,
                      size_t *len)
{
    Fennec__Replication__HealthConfig h = FENNEC__REPLICATION__HEALTH_CONFIG__INIT;
    entry_t e = FENNEC__REPLICATION__ENTRY__INIT;
    if (hc) {
        h.yaml = (ProtobufCBinaryData){.len = hc->yaml_len, .data = (uint8_t *)hc->yaml};
        h.name = hc->name ? hc->name : (char *)"";
        h.folder = hc->base ? hc->base : (char *)"";
        h.first_line = hc->first_line;
    }
    e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_HEALTH;
    e.health = &h;
    return pack(&e, index, commit_ns, out, len);
}

int entry_pack_override(uint64_t index, uint64_t commit_ns, const char *check,
                        health_override_t state, uint8_t **out, size_t *len)
{
    Fennec__Replication__HealthOverride o = FENNEC__REPLICATION__HEALTH_OVERRIDE__INIT;
    entry_t e = FENNEC__REPLICATION__ENTRY__INIT;
    o.check = (char *)check;
    o.state = (uint32_t)state;
    e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_HEALTH_OVERRIDE;
    e.health_override = &o;
    return pack(&e, index, commit_ns, out, len);
}

int entry_health(const Fennec__Replication__HealthConfig *m, health_config_t **out, char *err,
                 size_t errlen)
{
    *out = NULL;
    if (!m || m->yaml.len == 0)
        return 0;
    return health_config_parse((const char *)m->yaml.data, m->yaml.len,
                               m->name[0] ? m->name : "<health entry>",
                               m->folder[0] ? m->folder : NULL, m->first_line, out, err, errlen);
}

int entry_members(const Fennec__Replication__Membership *m, repl_member_t **out)
{
    size_t n = m ? m->n_members : 0;
    repl_member_t *a = calloc(n ? n : 1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        snprintf(a[i].id, sizeof(a[i].id), "%s", m->members[i]->id);
        snprintf(a[i].address, sizeof(a[i].address), "%s", m->members[i]->address);
    }
    *out = a;
    return (int)n;
}

const char *entry_zone_name(const entry_t *e)
{
    switch (e->payload_case) {
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_DIFF:
        return e->zone_diff->zone;
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_WHOLE:
        return e->zone_whole->zone;
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_REMOVED:
        return e->zone_removed->zone;
    default:
        return NULL;
    }
}

/* ---- applying ---- */

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void change_of(const frame_rr_t *r, bool add, zone_change_t *ch)
{
    *ch = (zone_change_t){.add = add,
                          .owner = r->owner,
                          .type = r->type,
                          .ttl = r->ttl,
                          .rdata = r->rdata,
                          .rdlen = r->rdlen};
}

/* Applies every record of BLOB to UP as an add or a delete. */
static int blob_apply(zone_update_t *up, ProtobufCBinaryData blob, bool add, char *why,
                      size_t whylen)
{
    size_t pos = 0;
    frame_rr_t rr;
    zone_change_t ch;
    int rc;
    while ((rc = frame_rr_next(blob.data, blob.len, &pos, &rr, NULL)) == 1) {
        change_of(&rr, add, &ch);
        if ((rc = zone_update_apply(up, &ch, why, whylen)) != 0)
            return rc;
    }
    if (rc != 0)
        snprintf(why, whylen, "records that do not decode");
    return rc;
}

static size_t zone_pos(zone_t *const *zones, size_t count, const char *name)
{
    uint8_t want[WIRE_NAME_MAX];
    if (wire_name_from_text(name, want) < 0)
        return SIZE_MAX;
    wire_name_lower(want);
    for (size_t i = 0; i < count; i++)
        if (wire_name_equal(zone_apex_wire(zones[i]), want))
            return i;
    return SIZE_MAX;
}

static int apply_diff(const Fennec__Replication__ZoneDiff *d, zone_t *base, zone_t **fresh,
                      char *err, size_t errlen)
{
    char why[512] = "";
    zone_update_t *up = NULL;
    int rc;
    if (zone_serial(base) != d->serial_before)
        return say(err, errlen, FENNEC_EZONE,
                   "%s: the entry applies to serial %u, this node serves %u", d->zone,
                   d->serial_before, zone_serial(base));
    if ((rc = zone_update_begin(base, ZONE_UPDATE_SOA | ZONE_UPDATE_KEEP_SERIAL, &up, why,
                                sizeof(why))) != 0)
        return say(err, errlen, rc, "%s: %s", d->zone, why);
    rc = blob_apply(up, d->removed, false, why, sizeof(why));
    if (rc == 0)
        rc = blob_apply(up, d->added, true, why, sizeof(why));
    if (rc != 0) {
        zone_update_abort(up);
        return say(err, errlen, rc == -ENOMEM ? rc : FENNEC_EZONE, "%s: %s", d->zone, why);
    }
    if ((rc = zone_update_commit(up, fresh, why, sizeof(why))) != 0)
        return say(err, errlen, rc == -ENOMEM ? rc : FENNEC_EZONE, "%s: %s", d->zone, why);
    if (zone_serial(*fresh) != d->serial_after || zone_record_count(*fresh) != d->records_after) {
        rc = say(err, errlen, FENNEC_EZONE,
                 "%s: the result has serial %u and %zu records, the primary's serial %u and "
                 "%llu records",
                 d->zone, zone_serial(*fresh), zone_record_count(*fresh), d->serial_after,
                 (unsigned long long)d->records_after);
        zone_discard(*fresh);
        *fresh = NULL;
        return rc;
    }
    if ((rc = zone_source_set(*fresh, d->file[0] ? d->file : NULL, d->file_digest)) != 0) {
        zone_discard(*fresh);
        *fresh = NULL;
    }
    return rc;
}

static int apply_whole(const Fennec__Replication__ZoneWhole *w, zone_t **fresh, char *err,
                       size_t errlen)
{
    size_t n = 0, pos = 0;
    frame_rr_t rr;
    int rc;
    while ((rc = frame_rr_next(w->records.data, w->records.len, &pos, &rr, NULL)) == 1)
        n++;
    if (rc != 0)
        return say(err, errlen, FENNEC_EZONE, "%s: records that do not decode", w->zone);
    zone_change_t *chs = fennec_alloc_large((n ? n : 1) * sizeof(*chs));
    if (!chs)
        return -ENOMEM;
    pos = 0;
    for (size_t i = 0;
         i < n && frame_rr_next(w->records.data, w->records.len, &pos, &rr, NULL) == 1; i++)
        change_of(&rr, true, &chs[i]);
    char name[300];
    snprintf(name, sizeof(name), "entry for %.256s", w->zone);
    rc = zone_from_records(w->zone, chs, n, name, fresh, err, errlen);
    free(chs);
    if (rc == 0 && zone_serial(*fresh) != w->serial)
        rc = say(err, errlen, FENNEC_EZONE, "%s: serial %u, the entry says %u", w->zone,
                 zone_serial(*fresh), w->serial);
    if (rc == 0)
        rc = zone_source_set(*fresh, w->file[0] ? w->file : NULL, w->file_digest);
    if (rc != 0 && *fresh) {
        zone_unref(*fresh);
        *fresh = NULL;
    }
    return rc;
}

int entry_zone_apply(const entry_t *e, zone_t *const *zones, size_t count, size_t *pos,
                     zone_t **fresh, char *err, size_t errlen)
{
    *fresh = NULL;
    const char *name = entry_zone_name(e);
    if (!name)
        return say(err, errlen, FENNEC_EMALFORMED, "entry %llu is not about a zone",
                   (unsigned long long)e->index);
    *pos = zone_pos(zones, count, name);
    switch (e->payload_case) {
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_DIFF:
        if (*pos == SIZE_MAX)
            return say(err, errlen, FENNEC_ENOTFOUND, "%s: a difference for a zone not served",
                       name);
        return apply_diff(e->zone_diff, zones[*pos], fresh, err, errlen);
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_WHOLE:
        return apply_whole(e->zone_whole, fresh, err, errlen);
    default: /* removed */
        if (*pos == SIZE_MAX)
            return say(err, errlen, FENNEC_ENOTFOUND, "%s: removal of a zone not served", name);
        return 0;
    }
}
