/*
 * Journal entries from zone versions, and back. Packing builds the protobuf message with
 * records pointing into the zones (no copy) and packs it once; applying goes through the
 * zone store's copy-on-write update, deletes before adds, with the serial taken from the
 * entry's SOA, and checks the result against what the entry says it must be.
 */
#include "fennec/entry.h"
#include "fennec/common.h"
#include "fennec/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Fennec__Replication__Record record_t;

/* Records gathered from a zone walk: messages and the pointer array protobuf-c wants. */
typedef struct recs {
    record_t *items;
    record_t **ptrs;
    size_t count;
    size_t cap;
} recs_t;

static int recs_push(recs_t *r, const zone_change_t *ch)
{
    if (r->count == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        record_t *items = realloc(r->items, ncap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        r->items = items;
        r->cap = ncap;
    }
    record_t *rec = &r->items[r->count++];
    fennec__replication__record__init(rec);
    rec->owner.data = (uint8_t *)ch->owner;
    rec->owner.len = (size_t)wire_name_len(ch->owner, WIRE_NAME_MAX);
    rec->type = ch->type;
    rec->ttl = ch->ttl;
    rec->rdata.data = (uint8_t *)ch->rdata;
    rec->rdata.len = ch->rdlen;
    return 0;
}

/* The pointer array, once the items stopped moving. */
static int recs_finish(recs_t *r)
{
    r->ptrs = malloc((r->count ? r->count : 1) * sizeof(*r->ptrs));
    if (!r->ptrs)
        return -ENOMEM;
    for (size_t i = 0; i < r->count; i++)
        r->ptrs[i] = &r->items[i];
    return 0;
}

static void recs_free(recs_t *r)
{
    free(r->items);
    free(r->ptrs);
    memset(r, 0, sizeof(*r));
}

/* A diff walk delivers removed records, then added ones. */
typedef struct diff_recs {
    recs_t removed;
    recs_t added;
} diff_recs_t;

static int diff_push(const zone_change_t *ch, void *arg)
{
    diff_recs_t *d = arg;
    return recs_push(ch->add ? &d->added : &d->removed, ch);
}

static int whole_push(const zone_change_t *ch, void *arg)
{
    return recs_push(arg, ch);
}

static int pack(entry_t *e, uint8_t **out, size_t *len)
{
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
    if (rc == 0)
        rc = recs_finish(&d.removed);
    if (rc == 0)
        rc = recs_finish(&d.added);
    if (rc == 0) {
        Fennec__Replication__ZoneDiff zd = FENNEC__REPLICATION__ZONE_DIFF__INIT;
        entry_t e = FENNEC__REPLICATION__ENTRY__INIT;
        uint64_t digest = 0;
        const char *file = zone_source(to, &digest);
        zd.zone = (char *)zone_name(to);
        zd.serial_before = zone_serial(from);
        zd.serial_after = zone_serial(to);
        zd.removed = d.removed.ptrs;
        zd.n_removed = d.removed.count;
        zd.added = d.added.ptrs;
        zd.n_added = d.added.count;
        zd.file = (char *)(file ? file : "");
        zd.file_digest = digest;
        zd.records_after = zone_record_count(to);
        e.index = index;
        e.commit_time_ns = commit_ns;
        e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_DIFF;
        e.zone_diff = &zd;
        rc = pack(&e, out, len);
    }
    recs_free(&d.removed);
    recs_free(&d.added);
    return rc;
}

int entry_pack_whole(uint64_t index, uint64_t commit_ns, const zone_t *z, uint8_t **out,
                     size_t *len)
{
    recs_t r = {0};
    int rc = zone_records(z, whole_push, &r);
    if (rc == 0)
        rc = recs_finish(&r);
    if (rc == 0) {
        Fennec__Replication__ZoneWhole zw = FENNEC__REPLICATION__ZONE_WHOLE__INIT;
        entry_t e = FENNEC__REPLICATION__ENTRY__INIT;
        uint64_t digest = 0;
        const char *file = zone_source(z, &digest);
        zw.zone = (char *)zone_name(z);
        zw.serial = zone_serial(z);
        zw.records = r.ptrs;
        zw.n_records = r.count;
        zw.file = (char *)(file ? file : "");
        zw.file_digest = digest;
        e.index = index;
        e.commit_time_ns = commit_ns;
        e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_WHOLE;
        e.zone_whole = &zw;
        rc = pack(&e, out, len);
    }
    recs_free(&r);
    return rc;
}

int entry_pack_removed(uint64_t index, uint64_t commit_ns, const char *zone, uint8_t **out,
                       size_t *len)
{
    Fennec__Replication__ZoneRemoved zr = FENNEC__REPLICATION__ZONE_REMOVED__INIT;
    entry_t e = FENNEC__REPLICATION__ENTRY__INIT;
    zr.zone = (char *)zone;
    e.index = index;
    e.commit_time_ns = commit_ns;
    e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_REMOVED;
    e.zone_removed = &zr;
    return pack(&e, out, len);
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
        e.index = index;
        e.commit_time_ns = commit_ns;
        e.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_MEMBERSHIP;
        e.membership = &ms;
        rc = pack(&e, out, len);
    }
    free(items);
    free(ptrs);
    return rc;
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

static void change_of(const record_t *r, bool add, zone_change_t *ch)
{
    *ch = (zone_change_t){.add = add,
                          .owner = r->owner.data,
                          .type = (uint16_t)r->type,
                          .ttl = r->ttl,
                          .rdata = r->rdata.data,
                          .rdlen = (uint16_t)r->rdata.len};
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
    zone_change_t ch;
    for (size_t i = 0; rc == 0 && i < d->n_removed; i++) {
        change_of(d->removed[i], false, &ch);
        rc = zone_update_apply(up, &ch, why, sizeof(why));
    }
    for (size_t i = 0; rc == 0 && i < d->n_added; i++) {
        change_of(d->added[i], true, &ch);
        rc = zone_update_apply(up, &ch, why, sizeof(why));
    }
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
    zone_change_t *chs = calloc(w->n_records ? w->n_records : 1, sizeof(*chs));
    if (!chs)
        return -ENOMEM;
    for (size_t i = 0; i < w->n_records; i++)
        change_of(w->records[i], true, &chs[i]);
    char name[300];
    snprintf(name, sizeof(name), "entry for %.256s", w->zone);
    int rc = zone_from_records(w->zone, chs, w->n_records, name, fresh, err, errlen);
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
