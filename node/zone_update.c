/*
 * Zone store, changes: copy-on-write updates and reloads computed as a difference.
 *
 * An update collects the changes in drafts, one per touched name, holding that name's
 * records. At commit the drafts are settled deepest first, so that a name that appears or
 * disappears adds or removes its parent's child count (empty non-terminals come and go that
 * way), then each touched name gets a new node, the new version a copy of the index's page
 * table, and only the index pages that change are copied. Everything else is shared with
 * the base version, which keeps answering, untouched, until its readers are gone.
 */
#include "zone_int.h"

#include "fennec/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct draft {
    struct draft *hnext;    /* in the update's table */
    struct draft *dnext;    /* in the list of its depth */
    const zone_node_t *old; /* the name in the base version, or NULL */
    zone_rec_t *recs;       /* sorted by type then rdata; valid once loaded */
    size_t n, cap;
    bool loaded;
    bool exists;         /* after the update */
    int64_t child_delta; /* children gained (+) or lost (-) */
    int wild_delta;      /* the "*" child: +1 appears, -1 goes */
    zone_node_t *built;  /* the new node, at commit */
    uint32_t hash;
    uint8_t name_len;
    uint8_t labels;
    uint8_t name[WIRE_NAME_MAX];
} draft_t;

struct zone_update {
    zone_t *base;
    unsigned flags;
    bool soa_changed;
    bool checked; /* settled and built: no more changes */
    arena_t tmp;  /* drafts and copies of added rdata */
    draft_t **table;
    uint32_t mask;
    size_t count;
    draft_t *all; /* every draft, through dnext of a separate chain */
    draft_t *depth[ZONE_MAX_LABELS];
};

/* ---- drafts ---- */

static draft_t *draft_find(zone_update_t *up, const uint8_t *name, size_t len, uint32_t h)
{
    for (draft_t *d = up->table[h & up->mask]; d; d = d->hnext)
        if (d->hash == h && d->name_len == len && memcmp(d->name, name, len) == 0)
            return d;
    return NULL;
}

static int table_grow(zone_update_t *up)
{
    uint32_t size = (up->mask + 1) * 2;
    draft_t **t = calloc(size, sizeof(*t));
    if (!t)
        return -ENOMEM;
    for (uint32_t b = 0; b <= up->mask; b++) {
        for (draft_t *d = up->table[b], *next; d; d = next) {
            next = d->hnext;
            d->hnext = t[d->hash & (size - 1)];
            t[d->hash & (size - 1)] = d;
        }
    }
    free(up->table);
    up->table = t;
    up->mask = size - 1;
    return 0;
}

/* The draft of NAME (lower case), created on first use. */
static draft_t *draft_get(zone_update_t *up, const uint8_t *name, size_t len)
{
    uint32_t h = zone_name_hash(name, len);
    draft_t *d = draft_find(up, name, len, h);
    if (d)
        return d;
    if (up->count >= (size_t)(up->mask + 1) * 2 && table_grow(up) != 0)
        return NULL;
    d = arena_alloc(&up->tmp, sizeof(*d));
    if (!d)
        return NULL;
    memset(d, 0, offsetof(draft_t, name));
    memcpy(d->name, name, len);
    d->name_len = (uint8_t)len;
    d->labels = (uint8_t)wire_name_labels(name);
    d->hash = h;
    d->old = zone_node_find(up->base, name, len);
    d->hnext = up->table[h & up->mask];
    up->table[h & up->mask] = d;
    d->dnext = up->depth[d->labels];
    up->depth[d->labels] = d;
    up->count++;
    return d;
}

/* Makes the draft hold its records (those of the base version to begin with). */
static int draft_load(draft_t *d)
{
    if (d->loaded)
        return 0;
    size_t n = 0;
    for (unsigned s = 0; d->old && s < d->old->rrset_count; s++)
        n += d->old->rrsets[s].count;
    d->cap = n + 4;
    d->recs = malloc(d->cap * sizeof(*d->recs));
    if (!d->recs)
        return -ENOMEM;
    for (unsigned s = 0; d->old && s < d->old->rrset_count; s++) {
        const zone_rrset_t *rs = &d->old->rrsets[s];
        const uint8_t *p = rs->data;
        for (unsigned k = 0; k < rs->count; k++) {
            uint16_t rdlen = wire_get_u16(p);
            d->recs[d->n++] = (zone_rec_t){p + 2, rs->ttl, rs->type, rdlen};
            p += 2u + rdlen;
        }
    }
    d->loaded = true;
    return 0;
}

/* Where a record of TYPE with RDATA is, or would go, in the draft (binary search). */
static size_t draft_pos(const draft_t *d, uint16_t type, const uint8_t *rd, uint16_t rdlen,
                        bool *found)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const zone_rec_t *r = &d->recs[mid];
        int c = r->type != type ? (r->type < type ? -1 : 1)
                                : zone_rdata_cmp(r->rdata, r->rdlen, rd, rdlen);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* ---- the protocol ---- */

int zone_update_begin(zone_t *base, unsigned flags, zone_update_t **out, char *err, size_t errlen)
{
    if (base->successor || base->updating) {
        snprintf(err, errlen, "%s: this version of the zone is not the newest one", base->name);
        return -EBUSY;
    }
    zone_update_t *up = calloc(1, sizeof(*up));
    if (!up)
        return -ENOMEM;
    up->table = calloc(64, sizeof(*up->table));
    if (!up->table) {
        free(up);
        return -ENOMEM;
    }
    up->mask = 63;
    up->tmp.chunk = 8192; /* most updates touch a few names */
    up->base = base;
    up->flags = flags;
    base->updating = true;
    *out = up;
    return 0;
}

static void update_free(zone_update_t *up)
{
    for (unsigned l = 0; l < ZONE_MAX_LABELS; l++) {
        for (draft_t *d = up->depth[l]; d; d = d->dnext) {
            free(d->recs);
            if (d->built)
                free(d->built);
        }
    }
    up->base->updating = false;
    arena_free(&up->tmp);
    free(up->table);
    free(up);
}

void zone_update_abort(zone_update_t *up)
{
    if (up)
        update_free(up);
}

int zone_update_apply(zone_update_t *up, const zone_change_t *ch, char *err, size_t errlen)
{
    zone_t *z = up->base;
    char text[WIRE_NAME_TEXT_MAX];
    uint8_t owner[WIRE_NAME_MAX];
    if (up->checked) {
        snprintf(err, errlen, "the update was checked already");
        return -EINVAL;
    }
    int olen = wire_name_len(ch->owner, WIRE_NAME_MAX);
    if (olen < 0) {
        snprintf(err, errlen, "invalid owner name");
        return FENNEC_EZONE;
    }
    memcpy(owner, ch->owner, (size_t)olen);
    wire_name_lower(owner);
    wire_name_to_text(owner, text);
    if (!wire_name_in(owner, (size_t)olen, z->apex_wire, z->apex_len)) {
        snprintf(err, errlen, "%s is outside the zone %s", text, z->name);
        return FENNEC_EZONE;
    }
    if (ch->type == WIRE_TYPE_SOA && !(up->flags & ZONE_UPDATE_SOA)) {
        snprintf(err, errlen, "%s SOA: SOA cannot be edited (the serial moves on by itself)", text);
        return FENNEC_EZONE;
    }
    if (!zone_type_allowed(ch->type)) {
        snprintf(err, errlen, "%s: type %u cannot appear in a zone", text, ch->type);
        return FENNEC_EZONE;
    }
    if (ch->add && !zone_rdata_fits(ch->type, ch->rdata, ch->rdlen)) {
        snprintf(err, errlen, "%s %s: the rdata does not have the form of the type", text,
                 zone_type_text(ch->type));
        return FENNEC_EZONE;
    }
    /* Names in rdata are kept lower case (zone_rdata_lower): a record given in any case is
     * that record. */
    const uint8_t *rdata = ch->rdata;
    if (zone_rdata_lower(ch->type, (uint8_t *)ch->rdata, ch->rdlen, false)) {
        uint8_t *lo = arena_alloc(&up->tmp, ch->rdlen);
        if (!lo)
            return -ENOMEM;
        memcpy(lo, ch->rdata, ch->rdlen);
        zone_rdata_lower(ch->type, lo, ch->rdlen, true);
        rdata = lo;
    }
    draft_t *d = draft_get(up, owner, (size_t)olen);
    if (!d || draft_load(d) != 0)
        return -ENOMEM;
    bool found;
    size_t pos = draft_pos(d, ch->type, rdata, ch->rdlen, &found);
    if (ch->add && found) {
        snprintf(err, errlen, "%s %s: the record exists already", text, zone_type_text(ch->type));
        return FENNEC_EEXISTS;
    }
    if (!ch->add && !found) {
        snprintf(err, errlen, "%s %s: no such record", text, zone_type_text(ch->type));
        return FENNEC_ENOTFOUND;
    }
    if (ch->type == WIRE_TYPE_SOA)
        up->soa_changed = true;
    if (!ch->add) {
        memmove(&d->recs[pos], &d->recs[pos + 1], (d->n - pos - 1) * sizeof(*d->recs));
        d->n--;
        return 0;
    }
    if (d->n == d->cap) {
        size_t ncap = d->cap * 2;
        zone_rec_t *n = realloc(d->recs, ncap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        d->recs = n;
        d->cap = ncap;
    }
    uint8_t *rd = arena_alloc(&up->tmp, ch->rdlen ? ch->rdlen : 1);
    if (!rd)
        return -ENOMEM;
    memcpy(rd, rdata, ch->rdlen);
    memmove(&d->recs[pos + 1], &d->recs[pos], (d->n - pos) * sizeof(*d->recs));
    d->recs[pos] = (zone_rec_t){rd, ch->ttl, ch->type, ch->rdlen};
    d->n++;
    /* An RRset has one TTL (RFC 2181 5.2): the one of the record added last. */
    for (size_t k = pos; k > 0 && d->recs[k - 1].type == ch->type; k--)
        d->recs[k - 1].ttl = ch->ttl;
    for (size_t k = pos + 1; k < d->n && d->recs[k].type == ch->type; k++)
        d->recs[k].ttl = ch->ttl;
    return 0;
}

/* Moves the serial of the apex draft's SOA on by one (RFC 1982: it wraps). */
static int bump_serial(zone_update_t *up, draft_t *apex)
{
    bool found = false;
    size_t k;
    for (k = 0; k < apex->n && !found; k++)
        found = apex->recs[k].type == WIRE_TYPE_SOA;
    if (!found)
        return 0; /* the rules check says what is missing */
    zone_rec_t *soa = &apex->recs[k - 1];
    int off = zone_soa_serial_offset(soa->rdata, soa->rdlen);
    if (off < 0)
        return 0;
    uint8_t *rd = arena_alloc(&up->tmp, soa->rdlen);
    if (!rd)
        return -ENOMEM;
    memcpy(rd, soa->rdata, soa->rdlen);
    wire_put_u32(rd + off, wire_get_u32(rd + off) + 1);
    soa->rdata = rd;
    return 0;
}

static size_t node_records(const zone_node_t *n)
{
    size_t c = 0;
    for (unsigned s = 0; n && s < n->rrset_count; s++)
        c += n->rrsets[s].count;
    return c;
}

/* Settles which names exist after the update, deepest first: a name that appears or goes
 * changes its parent's child count, which may make the parent appear or go. */
static int settle(zone_update_t *up)
{
    zone_t *z = up->base;
    for (int l = ZONE_MAX_LABELS - 1; l > z->apex_labels; l--) {
        for (draft_t *d = up->depth[l]; d; d = d->dnext) {
            bool recs = d->loaded ? d->n > 0 : (d->old && d->old->rrset_count > 0);
            int64_t children = (int64_t)(d->old ? d->old->children : 0) + d->child_delta;
            d->exists = recs || children > 0;
            if (d->exists == (d->old != NULL))
                continue;
            size_t skip = (size_t)d->name[0] + 1;
            draft_t *parent = draft_get(up, d->name + skip, d->name_len - skip);
            if (!parent)
                return -ENOMEM;
            parent->child_delta += d->exists ? 1 : -1;
            if (d->name[0] == 1 && d->name[1] == '*')
                parent->wild_delta = d->exists ? 1 : -1;
        }
    }
    for (draft_t *d = up->depth[z->apex_labels]; d; d = d->dnext)
        d->exists = true; /* the apex, whose rules say whether it is whole */
    return 0;
}

/* Builds the new node of every draft that exists after the update and checks the rules. */
static int build_nodes(zone_update_t *up, uint8_t *broken, char *err, size_t errlen)
{
    for (unsigned l = 0; l < ZONE_MAX_LABELS; l++) {
        for (draft_t *d = up->depth[l]; d; d = d->dnext) {
            if (!d->exists)
                continue;
            int rc = draft_load(d);
            if (rc)
                return rc;
            bool apex = d->name_len == up->base->apex_len;
            zone_node_t *n = zone_node_build(NULL, d->name, d->name_len, apex, d->recs, d->n, &rc);
            char text[WIRE_NAME_TEXT_MAX];
            wire_name_to_text(d->name, text);
            if (!n) {
                if (rc == FENNEC_EZONE)
                    snprintf(err, errlen, "%s: RRset too large", text);
                return rc;
            }
            d->built = n;
            n->children = (uint32_t)((int64_t)(d->old ? d->old->children : 0) + d->child_delta);
            bool wild = d->old && (d->old->flags & ZONE_NODE_HAS_WILDCARD);
            if (d->wild_delta)
                wild = d->wild_delta > 0;
            if (wild)
                n->flags |= ZONE_NODE_HAS_WILDCARD;
            const char *rule = zone_node_rules(n);
            if (rule) {
                char msg[WIRE_NAME_TEXT_MAX + 128];
                snprintf(msg, sizeof(msg), rule, text);
                snprintf(err, errlen, "%s", msg);
                if (broken)
                    memcpy(broken, d->name, d->name_len);
                return FENNEC_EZONE;
            }
        }
    }
    return 0;
}

/* The next version: the base's fields, its page table copied (pages shared). */
static zone_t *version_next(const zone_t *base)
{
    zone_t *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    uint32_t npages = zone_slots(base) >> ZONE_PAGE_SHIFT;
    v->pages = malloc(npages * sizeof(*v->pages));
    v->name = strdup(base->name);
    v->path = base->path ? strdup(base->path) : NULL;
    if (!v->pages || !v->name || (base->path && !v->path)) {
        free(v->pages);
        free(v->name);
        free(v->path);
        free(v);
        return NULL;
    }
    memcpy(v->pages, base->pages, npages * sizeof(*v->pages));
    atomic_init(&v->refs, 1);
    memcpy(v->apex_wire, base->apex_wire, base->apex_len);
    v->apex_len = base->apex_len;
    v->apex_labels = base->apex_labels;
    v->serial = base->serial;
    v->records = base->records;
    v->node_count = base->node_count;
    v->apex = base->apex;
    v->mask = base->mask;
    v->deleg_count = base->deleg_count;
    memcpy(v->deleg_at, base->deleg_at, sizeof(v->deleg_at));
    v->dname_count = base->dname_count;
    memcpy(v->dname_at, base->dname_at, sizeof(v->dname_at));
    v->store = base->store;
    atomic_fetch_add(&v->store->refs, 1);
    v->file_digest = base->file_digest;
    return v;
}

/* Undoes a commit that failed half way: V's own pages go, BASE forgets what it retired. */
static void version_drop(zone_t *v, zone_t *base, size_t retired_before)
{
    uint32_t npages = zone_slots(v) >> ZONE_PAGE_SHIFT;
    bool same = v->mask == base->mask;
    for (uint32_t p = 0; p < npages; p++)
        if (!same || v->pages[p] != base->pages[p])
            free(v->pages[p]);
    base->retired.count = retired_before;
    free(v->pages);
    v->pages = NULL;
    atomic_fetch_sub(&v->store->refs, 1);
    free(v->name);
    free(v->path);
    free(v);
}

static int retire_node(zone_t *base, const zone_node_t *n)
{
    return (n->flags & ZONE_NODE_HEAP) ? zone_retire(base, (void *)n) : 0;
}

int zone_update_check(zone_update_t *up, uint8_t *broken, char *err, size_t errlen)
{
    if (up->checked)
        return 0;
    up->checked = true;
    draft_t *apex = draft_get(up, up->base->apex_wire, up->base->apex_len);
    if (!apex || draft_load(apex) != 0)
        return -ENOMEM;
    int rc = 0;
    if (!up->soa_changed && !(up->flags & ZONE_UPDATE_KEEP_SERIAL) &&
        (rc = bump_serial(up, apex)) != 0)
        return rc;
    if ((rc = settle(up)) != 0)
        return rc;
    return build_nodes(up, broken, err, errlen);
}

int zone_update_commit(zone_update_t *up, zone_t **out, char *err, size_t errlen)
{
    zone_t *base = up->base;
    zone_t *v = NULL;
    size_t retired_before = base->retired.count;
    int rc;
    if (up->checked) {
        /* checked by the caller; a failed check leaves no node built, so redo nothing */
        for (unsigned l = 0; l < ZONE_MAX_LABELS; l++)
            for (draft_t *d = up->depth[l]; d; d = d->dnext)
                if (d->exists && !d->built) {
                    snprintf(err, errlen, "the update failed its check");
                    rc = FENNEC_EZONE;
                    goto fail;
                }
    } else if ((rc = zone_update_check(up, NULL, err, errlen)) != 0) {
        goto fail;
    }

    v = version_next(base);
    if (!v) {
        rc = -ENOMEM;
        goto fail;
    }
    size_t nodes = base->node_count;
    for (unsigned l = 0; l < ZONE_MAX_LABELS; l++)
        for (draft_t *d = up->depth[l]; d; d = d->dnext)
            nodes += (size_t)(d->exists && !d->old) - (size_t)(!d->exists && d->old);
    if (zone_index_full(v, nodes)) {
        uint64_t slots = zone_slots(v);
        while (nodes * 2 > slots && slots < (UINT64_C(1) << 31))
            slots *= 2; /* at most half full, as after a load: one update may add many */
        if ((rc = zone_index_resize(v, base, (uint32_t)slots)) != 0)
            goto fail;
    }
    for (unsigned l = 0; l < ZONE_MAX_LABELS; l++) {
        for (draft_t *d = up->depth[l]; d; d = d->dnext) {
            if (d->old) {
                zone_tally(v, d->old, -1);
                v->records -= node_records(d->old);
                if ((rc = retire_node(base, d->old)) != 0)
                    goto fail;
            }
            if (d->exists) {
                rc = zone_index_put(v, base, d->built, d->old != NULL);
                zone_tally(v, d->built, 1);
                v->records += node_records(d->built);
                if (d->built->flags & ZONE_NODE_APEX)
                    v->apex = d->built;
            } else if (d->old) {
                rc = zone_index_remove(v, base, d->old);
            }
            if (rc)
                goto fail;
        }
    }
    v->node_count = nodes;
    const zone_rrset_t *soa = zone_node_rrset(v->apex, WIRE_TYPE_SOA);
    v->serial = wire_get_u32(soa->data + 2 +
                             zone_soa_serial_offset(soa->data + 2, wire_get_u16(soa->data)));
    /* The new nodes belong to V now. */
    for (unsigned l = 0; l < ZONE_MAX_LABELS; l++)
        for (draft_t *d = up->depth[l]; d; d = d->dnext)
            d->built = NULL;
    zone_ref(v);
    base->successor = v;
    v->base = base;
    v->base_mark = retired_before;
    update_free(up);
    *out = v;
    return 0;
fail:
    if (v)
        version_drop(v, base, retired_before);
    if (rc == -ENOMEM && err && errlen)
        snprintf(err, errlen, "out of memory");
    update_free(up);
    return rc;
}

int zone_edit(zone_t *old, const zone_change_t *changes, size_t count, zone_t **out, char *err,
              size_t errlen)
{
    zone_update_t *up = NULL;
    int rc = zone_update_begin(old, 0, &up, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < count; i++) {
        if ((rc = zone_update_apply(up, &changes[i], err, errlen)) != 0) {
            zone_update_abort(up);
            return rc;
        }
    }
    return zone_update_commit(up, out, err, errlen);
}

/* ---- differences between versions ---- */

typedef struct diff {
    zone_diff_fn fn; /* receives each record of the difference; NULL: only count */
    void *arg;
    const zone_t *other; /* the zone the walked one is compared with */
    bool adding;         /* walking the newer zone: what the other one lacks is added */
    bool soa;            /* the SOA RRset takes part */
    size_t count;
    int rc;
} diff_t;

static int diff_record(diff_t *df, const zone_node_t *n, const zone_rrset_t *rs, const uint8_t *p)
{
    zone_change_t ch = {.add = df->adding,
                        .owner = n->name,
                        .type = rs->type,
                        .ttl = rs->ttl,
                        .rdata = p + 2,
                        .rdlen = wire_get_u16(p)};
    df->count++;
    return df->fn ? df->fn(&ch, df->arg) : 0;
}

/* Whether the record at P (rdlen + rdata) is in RS. */
static bool rrset_has(const zone_rrset_t *rs, const uint8_t *p)
{
    uint16_t len = wire_get_u16(p);
    const uint8_t *q = rs->data;
    for (unsigned k = 0; k < rs->count; k++) {
        uint16_t ql = wire_get_u16(q);
        if (ql == len && memcmp(q + 2, p + 2, len) == 0)
            return true;
        q += 2u + ql;
    }
    return false;
}

/* For one node of the walked zone: its records the other zone lacks (all of an RRset whose
 * TTL differs), as removed (walking the older zone) or added (the newer one). */
static int diff_node(const zone_node_t *n, void *arg)
{
    diff_t *df = arg;
    const zone_node_t *o = zone_node_find(df->other, n->name, n->name_len);
    for (unsigned s = 0; s < n->rrset_count; s++) {
        const zone_rrset_t *rs = &n->rrsets[s];
        if (rs->type == WIRE_TYPE_SOA && !df->soa)
            continue;
        const zone_rrset_t *ors = o ? zone_node_rrset(o, rs->type) : NULL;
        if (ors && ors->ttl == rs->ttl && ors->len == rs->len &&
            memcmp(ors->data, rs->data, rs->len) == 0)
            continue;
        const uint8_t *p = rs->data;
        for (unsigned k = 0; k < rs->count; k++) {
            if (!ors || ors->ttl != rs->ttl || !rrset_has(ors, p)) {
                if ((df->rc = diff_record(df, n, rs, p)) != 0)
                    return 1;
            }
            p += 2u + wire_get_u16(p);
        }
    }
    return 0;
}

/*
 * Calls diff_node() for every node of A that may differ from B. Versions of one line share
 * the index pages they did not write, and nodes are immutable: where A and B have the same
 * page, or the same node in a slot, nothing differs, so only written pages are read. Indexes
 * of different sizes (a resize, another line) are walked in full.
 */
static void diff_walk(const zone_t *a, const zone_t *b, diff_t *df)
{
    if (a->mask != b->mask) {
        zone_node_walk(a, diff_node, df);
        return;
    }
    uint32_t npages = zone_slots(a) >> ZONE_PAGE_SHIFT;
    for (uint32_t p = 0; p < npages && df->rc == 0; p++) {
        const uint64_t *pa = a->pages[p], *pb = b->pages[p];
        if (pa == pb)
            continue;
        for (uint32_t i = 0; i < ZONE_PAGE_SLOTS && df->rc == 0; i++)
            if (pa[i] && (pa[i] & ZONE_SLOT_PTR) != (pb[i] & ZONE_SLOT_PTR))
                diff_node(zone_slot_node(pa[i]), df);
    }
}

/* Walks the difference between FROM and TO: what TO no longer has, then what TO has new. */
static int diff_run(const zone_t *from, const zone_t *to, bool soa, zone_diff_fn fn, void *arg,
                    size_t *removed, size_t *added)
{
    diff_t df = {.fn = fn, .arg = arg, .other = to, .adding = false, .soa = soa};
    diff_walk(from, to, &df);
    *removed = df.count;
    if (df.rc)
        return df.rc;
    df = (diff_t){.fn = fn, .arg = arg, .other = from, .adding = true, .soa = soa};
    diff_walk(to, from, &df);
    *added = df.count;
    return df.rc;
}

int zone_diff(const zone_t *from, const zone_t *to, zone_diff_fn fn, void *arg)
{
    size_t removed, added;
    return diff_run(from, to, true, fn, arg, &removed, &added);
}

typedef struct records_walk {
    zone_diff_fn fn;
    void *arg;
    int rc;
} records_walk_t;

static int records_node(const zone_node_t *n, void *arg)
{
    records_walk_t *w = arg;
    for (unsigned s = 0; s < n->rrset_count; s++) {
        const zone_rrset_t *rs = &n->rrsets[s];
        const uint8_t *p = rs->data;
        for (unsigned k = 0; k < rs->count; k++) {
            zone_change_t ch = {.add = true,
                                .owner = n->name,
                                .type = rs->type,
                                .ttl = rs->ttl,
                                .rdata = p + 2,
                                .rdlen = wire_get_u16(p)};
            if ((w->rc = w->fn(&ch, w->arg)) != 0)
                return 1;
            p += 2u + wire_get_u16(p);
        }
    }
    return 0;
}

static int node_order(const void *pa, const void *pb)
{
    const zone_node_t *a = *(const zone_node_t *const *)pa, *b = *(const zone_node_t *const *)pb;
    if (a->name_len != b->name_len)
        return (int)a->name_len - (int)b->name_len;
    return memcmp(a->name, b->name, a->name_len);
}

int zone_records(const zone_t *zone, zone_diff_fn fn, void *arg)
{
    /* In the loader's order (owner length, owner, type, rdata), so that a zone rebuilt from
     * these records needs no sort. */
    const zone_node_t **nodes = malloc((zone->node_count + 1) * sizeof(*nodes));
    if (!nodes)
        return -ENOMEM;
    size_t n = 0;
    for (uint32_t i = 0; i <= zone->mask; i++) {
        uint64_t slot = zone_slot_get(zone, i);
        if (slot && n <= zone->node_count)
            nodes[n++] = zone_slot_node(slot);
    }
    qsort(nodes, n, sizeof(*nodes), node_order);
    records_walk_t w = {.fn = fn, .arg = arg};
    for (size_t i = 0; i < n && records_node(nodes[i], &w) == 0; i++)
        ;
    free(nodes);
    return w.rc;
}

static int apply_to_update(const zone_change_t *ch, void *arg)
{
    void **a = arg;
    return zone_update_apply(a[0], ch, a[1], *(size_t *)a[2]);
}

/* The reload difference between SERVED and F (the SOA apart): applied to UP, or counted. */
static int reload_diff(const zone_t *served, const zone_t *f, zone_update_t *up, size_t *removed,
                       size_t *added, char *err, size_t errlen)
{
    void *a[3] = {up, err, &errlen};
    return diff_run(served, f, false, up ? apply_to_update : NULL, a, removed, added);
}

int zone_reload_file(zone_t *served, const char *path, zone_t **out, zone_reload_stats_t *st,
                     char *err, size_t errlen)
{
    return zone_reload(served, path, 0, out, st, err, errlen);
}

int zone_reload(zone_t *served, const char *path, unsigned flags, zone_t **out,
                zone_reload_stats_t *st, char *err, size_t errlen)
{
    zone_t *f = NULL;
    zone_update_t *up = NULL;
    memset(st, 0, sizeof(*st));
    *out = NULL;
    int rc = zone_load_file(served->name, path, &f, err, errlen);
    if (rc)
        return rc;
    if (!(flags & ZONE_RELOAD_FORCE) && f->file_digest == served->file_digest && served->path &&
        strcmp(served->path, path) == 0) {
        st->unchanged = true;
        st->serial = served->serial;
        zone_unref(f);
        return 0;
    }
    /* Count the difference first: when it is most of the zone, the fresh load is the next
     * version as it is (a new line), cheaper than applying it name by name. */
    size_t removed = 0, added = 0;
    if ((rc = reload_diff(served, f, NULL, &removed, &added, err, errlen)) != 0)
        goto cleanup;
    st->removed = removed;
    st->added = added;
    uint32_t serial = f->serial;
    if ((int32_t)(f->serial - served->serial) <= 0) {
        serial = served->serial + 1;
        log_warn("zone", "%s: the file's serial %u is not newer than the served %u; serving %u",
                 served->name, f->serial, served->serial, serial);
    }
    st->serial = serial;
    if ((added + removed) * 4 > zone_record_count(f) + zone_record_count(served)) {
        /* F is nobody's yet: its SOA can take the serial in place. */
        const zone_rrset_t *soa = zone_node_rrset(f->apex, WIRE_TYPE_SOA);
        uint8_t *rd = (uint8_t *)soa->data + 2;
        wire_put_u32(rd + zone_soa_serial_offset(rd, wire_get_u16(soa->data)), serial);
        f->serial = serial;
        *out = f;
        return 0;
    }
    if ((rc = zone_update_begin(served, ZONE_UPDATE_SOA, &up, err, errlen)) != 0 ||
        (rc = reload_diff(served, f, up, &removed, &added, err, errlen)) != 0)
        goto cleanup;
    /* The file's SOA, with a serial that moves on from the served one (RFC 1982). */
    const zone_rrset_t *fsoa = zone_node_rrset(f->apex, WIRE_TYPE_SOA);
    const zone_rrset_t *ssoa = zone_node_rrset(served->apex, WIRE_TYPE_SOA);
    uint16_t flen = wire_get_u16(fsoa->data);
    uint8_t rd[WIRE_NAME_MAX * 2 + 20];
    memcpy(rd, fsoa->data + 2, flen);
    wire_put_u32(rd + zone_soa_serial_offset(rd, flen), serial);
    zone_change_t del = {.add = false,
                         .owner = served->apex_wire,
                         .type = WIRE_TYPE_SOA,
                         .rdata = ssoa->data + 2,
                         .rdlen = wire_get_u16(ssoa->data)};
    zone_change_t add = {.add = true,
                         .owner = served->apex_wire,
                         .type = WIRE_TYPE_SOA,
                         .ttl = fsoa->ttl,
                         .rdata = rd,
                         .rdlen = flen};
    if ((rc = zone_update_apply(up, &del, err, errlen)) != 0 ||
        (rc = zone_update_apply(up, &add, err, errlen)) != 0)
        goto cleanup;
    rc = zone_update_commit(up, out, err, errlen);
    up = NULL;
    if (rc)
        goto cleanup;
    (*out)->file_digest = f->file_digest;
    free((*out)->path);
    (*out)->path = strdup(path);
cleanup:
    zone_update_abort(up);
    zone_unref(f);
    return rc;
}

void zone_discard(zone_t *v)
{
    zone_t *base = v ? v->base : NULL;
    if (!base || base->successor != v || atomic_load(&v->refs) != 2) {
        zone_unref(v);
        return;
    }
    /* Only V and BASE hold V: take it out of the line as if it had never been committed. */
    base->successor = NULL;
    base->retired.count = v->base_mark;
    uint32_t npages = zone_slots(v) >> ZONE_PAGE_SHIFT;
    bool same = v->mask == base->mask;
    for (uint32_t p = 0; p < npages; p++) {
        if (same && v->pages[p] == base->pages[p])
            continue;
        for (uint32_t i = 0; i < ZONE_PAGE_SLOTS; i++) {
            if (!v->pages[p][i])
                continue;
            const zone_node_t *n = zone_slot_node(v->pages[p][i]);
            if ((n->flags & ZONE_NODE_HEAP) && zone_node_find(base, n->name, n->name_len) != n)
                free((void *)n);
        }
        free(v->pages[p]);
    }
    free(v->pages);
    free(v->retired.items);
    if (atomic_fetch_sub(&v->store->refs, 1) == 1) {
        arena_free(&v->store->arena); /* not reached: BASE holds the store */
        free(v->store);
    }
    free(v->name);
    free(v->path);
    free(v);
}
