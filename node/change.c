/*
 * The one write path (see change.h). Three locks, always taken in this order:
 *   g_writer  the tip: the zones and members of the newest accepted change, its index; held
 *             from reading the tip to enqueuing the change built on it, so two changes never
 *             start from the same version;
 *   g_queue   the changes waiting for the committer, and the ones it refused;
 *   g_pub     what is published: its index, commit time and members (for snapshots).
 * The committer never takes g_writer: when a journal commit fails it refuses that group and
 * everything queued behind it and leaves the versions built for them on g_failed; the next
 * holder of g_writer drops them (newest first) and starts again from what is published.
 */
#include "fennec/change.h"
#include "fennec/common.h"
#include "fennec/entry.h"
#include "fennec/frame.h"
#include "fennec/journal.h"
#include "fennec/repl.h"
#include "fennec/snapshot.h"
#include "fennec/wire.h"

#include <errno.h>
#include <libknot/descriptor.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MOD "change"

#define SNAPSHOT_EVERY_DEFAULT      10000
#define JOURNAL_KEEP_DEFAULT        10000
#define SNAPSHOT_RECORDS_DEFAULT    20000
#define SNAPSHOT_RECORDS_MS_DEFAULT 60000
#define SNAPSHOT_RECORDS_SHARE      4 /* 1/4: 25% of the records served */

/* What a node serves besides zones: the members and the health section with its overrides. */
typedef struct aux {
    repl_member_t *members; /* owned */
    size_t member_count;
    health_config_t *health; /* one reference; NULL: no health section */
    entry_override_t *ovr;   /* overrides in force, owned */
    size_t novr;
} aux_t;

/* One change on its way to the journal: its entries and the zone set they lead to. */
typedef struct item {
    struct item *next;
    journal_rec_t *recs; /* the entries, their bytes owned */
    uint64_t *commit_ns;
    size_t nrecs;
    zone_set_t *set; /* the set to publish once committed; NULL: the zones did not change */
    zone_t **zones;  /* the set's zones, one reference each */
    bool *created;   /* zones[i] was built for this change (discarded if it fails) */
    size_t count;
    aux_t aux; /* members and health after it, when it changed them (aux_changed) */
    bool aux_changed;
    uint64_t records; /* records its entries change (see change_config_t.snapshot_records) */
    /* the outcome, under g_queue */
    bool has_waiter; /* a caller waits for it: it frees the item once it collected the code */
    bool collected;
    bool dropped; /* its versions were dropped after a failure; the waiter frees it */
    bool done;
    int rc;
    char err[256];
} item_t;

typedef struct tip {
    zone_t **zones; /* one reference each */
    size_t count;
    aux_t aux;
    uint64_t index;
    bool none; /* no set was ever published */
} tip_t;

static pthread_mutex_t g_writer = PTHREAD_MUTEX_INITIALIZER;
static tip_t g_tip = {.none = true};
static bool g_tip_valid; /* g_tip reflects the published state or builds on it */

static pthread_mutex_t g_queue = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_queue_cond = PTHREAD_COND_INITIALIZER; /* work for the committer */
static pthread_cond_t g_done_cond = PTHREAD_COND_INITIALIZER;  /* an item is done */
static item_t *g_head, *g_tail;                                /* waiting */
static item_t *g_failed; /* refused by a failed commit, newest first, not yet dropped */
static bool g_busy;      /* the committer is working on a group */
static bool g_stop;

static pthread_mutex_t g_pub = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t g_index;
static uint64_t g_commit_ns;
static aux_t g_pub_aux;
static bool g_health_on; /* change_config_t.health: the prober runs */

/* The journal, once change_open() ran. */
static journal_t *g_journal;
static char *g_dir;
static char *g_node_id;
static bool g_primary = true;
static uint64_t g_snapshot_every = SNAPSHOT_EVERY_DEFAULT;
static uint64_t g_journal_keep = JOURNAL_KEEP_DEFAULT;
static uint64_t g_snapshot_records = SNAPSHOT_RECORDS_DEFAULT;
static uint64_t g_snapshot_records_ns = SNAPSHOT_RECORDS_MS_DEFAULT * 1000000ull;
static pthread_t g_committer, g_snapshotter;
static bool g_threads;
static uint64_t g_snapshot_index;                             /* under g_pub */
static pthread_cond_t g_snap_cond = PTHREAD_COND_INITIALIZER; /* with g_pub */
static bool g_snap_wanted;                                    /* by the entries rule */
/* The records rule, under g_pub: a replay costs about one step per record an entry changes,
 * whatever the number of entries, so a snapshot is also due once the entries after the last
 * one changed many records (see change_config_t). */
static uint64_t g_snap_records;   /* records changed by the entries after the last snapshot */
static uint64_t g_served_records; /* records of the published zones */
static uint64_t g_snap_last_ns;   /* monotonic start of the last snapshot; 0: none yet */
static void (*g_hook)(uint64_t, void *);
static void *g_hook_arg;

/* Statistics, under g_pub. */
static const double g_fsync_le[CHANGE_FSYNC_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0};
static change_journal_stats_t g_stats;

/* Where a validated change leads: the next zones, ready to become a set. */
typedef struct next {
    zone_t **zones; /* one reference each */
    size_t count;
    bool changed; /* the next zones differ from the tip's */
} next_t;
static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
    if (!errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The canonical text of a zone name (lower case, no trailing dot, as zone_name() has it). */
static int name_canon(const char *text, char *out)
{
    uint8_t wire[WIRE_NAME_MAX];
    if (!text || wire_name_from_text(text, wire) < 0)
        return FENNEC_EMALFORMED;
    wire_name_lower(wire);
    wire_name_to_text(wire, out);
    return 0;
}

static size_t zones_find(zone_t *const *zones, size_t count, const char *canon)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(zone_name(zones[i]), canon) == 0)
            return i;
    return SIZE_MAX;
}

static bool zones_has(zone_t *const *zones, size_t count, const zone_t *z)
{
    for (size_t i = 0; i < count; i++)
        if (zones[i] == z)
            return true;
    return false;
}

static void zones_free(zone_t **zones, size_t count)
{
    for (size_t i = 0; zones && i < count; i++)
        zone_unref(zones[i]);
    free(zones);
}

/* Drops zones that were built for a change that will not be published: those not in BASE
 * are discarded (their base version takes updates again), the others unreferenced. */
static void zones_drop(zone_t **zones, size_t count, zone_t *const *base, size_t nbase)
{
    for (size_t i = count; zones && i-- > 0;) {
        if (zones_has(base, nbase, zones[i]))
            zone_unref(zones[i]);
        else
            zone_discard(zones[i]);
    }
    free(zones);
}

static void next_drop(next_t *n)
{
    zones_drop(n->zones, n->count, g_tip.zones, g_tip.count);
    memset(n, 0, sizeof(*n));
}

static const cfg_zone_t *cfg_zone_find(const cfg_t *cfg, const char *canon)
{
    char c[WIRE_NAME_TEXT_MAX];
    for (size_t i = 0; cfg && i < cfg->zone_count; i++)
        if (name_canon(cfg->zones[i].name, c) == 0 && strcmp(c, canon) == 0)
            return &cfg->zones[i];
    return NULL;
}

/*
 * The next version of the configured zone CZ of which SERVED (NULL: none) is served:
 * reloaded from its file when served (FORCE: even when its records did not change), loaded
 * when not. *FRESH stays NULL when SERVED stays (an unchanged file without FORCE; built-in
 * text, which never changes). ST says what changed.
 */
static int zone_next(const cfg_zone_t *cz, zone_t *served, bool force, zone_t **fresh,
                     zone_reload_stats_t *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    *fresh = NULL;
    if (served && !cz->file) {
        st->unchanged = true;
        st->serial = zone_serial(served);
        return 0;
    }
    if (served)
        return zone_reload(served, cz->file, force ? ZONE_RELOAD_FORCE : 0, fresh, st, err, errlen);
    int rc = cz->file
                 ? zone_load_file(cz->name, cz->file, fresh, err, errlen)
                 : zone_load_text(cz->name, cz->text ? cz->text : "",
                                  cz->text ? strlen(cz->text) : 0, "<builtin>", fresh, err, errlen);
    if (rc == 0) {
        st->added = zone_record_count(*fresh);
        st->serial = zone_serial(*fresh);
    }
    return rc;
}

static int next_push(next_t *n, zone_t *z)
{
    zone_t **nz = realloc(n->zones, (n->count + 1) * sizeof(*nz));
    if (!nz)
        return -ENOMEM;
    n->zones = nz;
    n->zones[n->count++] = z;
    return 0;
}

/* The served set with FRESH in place of SERVED[S] (S == SIZE_MAX: added after the others),
 * one reference each, into NEXT. */
static int next_replacing(next_t *next, zone_t **served, size_t nserved, size_t s, zone_t *fresh)
{
    int rc = 0;
    for (size_t i = 0; i <= nserved && rc == 0; i++) {
        zone_t *z = i == nserved ? (s == SIZE_MAX ? fresh : NULL) : i == s ? fresh : served[i];
        if (!z)
            continue;
        zone_ref(z);
        if ((rc = next_push(next, z)) != 0)
            zone_unref(z);
    }
    return rc;
}

static const char *source_of(const change_t *ch)
{
    return ch->source ? ch->source : "change";
}

/* ---- validate ---------------------------------------------------------------------------- */

static int validate_load(const change_t *ch, zone_t **served, size_t nserved, next_t *next,
                         change_result_t *res, char *err, size_t errlen)
{
    const cfg_t *cfg = ch->cfg;
    int rc = 0;
    for (size_t i = 0; i < cfg->zone_count; i++) {
        const cfg_zone_t *cz = &cfg->zones[i];
        char canon[WIRE_NAME_TEXT_MAX], lerr[WIRE_NAME_TEXT_MAX + 1024] = "";
        if (name_canon(cz->name, canon) != 0) {
            snprintf(lerr, sizeof(lerr), "%.256s: invalid zone name", cz->name ? cz->name : "");
        } else if (zones_find(next->zones, next->count, canon) != SIZE_MAX) {
            snprintf(lerr, sizeof(lerr), "%.256s: configured twice, the first one is served",
                     canon);
        }
        if (lerr[0]) {
            log_error(MOD, "%s", lerr);
            if (res->failed++ == 0)
                say(err, errlen, "%s", lerr);
            continue;
        }
        size_t s = zones_find(served, nserved, canon);
        zone_t *prev = s != SIZE_MAX ? served[s] : NULL;
        zone_t *fresh = NULL;
        zone_reload_stats_t st;
        int zrc = zone_next(cz, prev, false, &fresh, &st, lerr, sizeof(lerr));
        if (zrc == -ENOMEM) {
            rc = zrc;
            say(err, errlen, "%s: out of memory", canon);
            break;
        }
        if (zrc != 0) {
            if (!lerr[0])
                snprintf(lerr, sizeof(lerr), "%s", fennec_strerror(zrc));
            if (prev)
                log_error(MOD, "%s: %s; still serving serial %u", canon, lerr, zone_serial(prev));
            else
                log_error(MOD, "%s: %s; zone not served", canon, lerr);
            if (res->failed++ == 0)
                say(err, errlen, "%s: %s", canon, lerr);
        }
        if (!fresh && !prev)
            continue;
        if (fresh) {
            next->changed = true;
            res->added += st.added;
            res->removed += st.removed;
            if (prev)
                log_info(MOD, "%s: reloaded serial %u (+%zu -%zu records)", canon, st.serial,
                         st.added, st.removed);
            else
                log_info(MOD, "%s: loaded serial %u, %zu records", canon, zone_serial(fresh),
                         zone_record_count(fresh));
        } else {
            zone_ref(prev);
        }
        if ((rc = next_push(next, fresh ? fresh : prev)) != 0) {
            zone_unref(fresh ? fresh : prev);
            break;
        }
    }
    for (size_t s = 0; rc == 0 && s < nserved; s++) {
        bool still = zones_find(next->zones, next->count, zone_name(served[s])) != SIZE_MAX;
        if (!still) {
            next->changed = true;
            res->removed += zone_record_count(served[s]);
            log_info(MOD, "%s: no longer configured, %s", zone_name(served[s]),
                     ch->validate_only ? "would stop being served" : "no longer served");
        }
    }
    res->zones = next->count;
    res->unchanged = !next->changed;
    return rc;
}

static int validate_reload(const change_t *ch, const char *canon, zone_t **served, size_t nserved,
                           next_t *next, change_result_t *res, char *err, size_t errlen)
{
    const cfg_zone_t *cz = cfg_zone_find(ch->cfg, canon);
    if (!cz) {
        say(err, errlen, "zone %s is not configured on this node", canon);
        return FENNEC_ENOTFOUND;
    }
    size_t s = zones_find(served, nserved, canon);
    zone_t *prev = s != SIZE_MAX ? served[s] : NULL;
    zone_t *fresh = NULL;
    zone_reload_stats_t st;
    char lerr[1024] = "";
    int rc = zone_next(cz, prev, ch->force, &fresh, &st, lerr, sizeof(lerr));
    if (rc != 0) {
        say(err, errlen, "%s", lerr[0] ? lerr : fennec_strerror(rc));
        return rc == -ENOMEM ? rc : FENNEC_EZONE;
    }
    res->serial = st.serial;
    if (!fresh) {
        res->unchanged = true;
        return 0;
    }
    res->added = st.added;
    res->removed = st.removed;
    next->changed = true;
    rc = next_replacing(next, served, nserved, s, fresh);
    zone_discard(fresh); /* the set holds it now, or nobody does */
    return rc;
}

static int validate_edit(const change_t *ch, const char *canon, zone_t **served, size_t nserved,
                         next_t *next, change_result_t *res, char *err, size_t errlen)
{
    size_t s = zones_find(served, nserved, canon);
    if (s == SIZE_MAX) {
        say(err, errlen, "zone %s is not loaded on this node", canon);
        return FENNEC_ENOTFOUND;
    }
    zone_t *fresh = NULL;
    zone_update_t *up = NULL;
    uint8_t broken[WIRE_NAME_MAX];
    int rc = zone_update_begin(served[s], 0, &up, err, errlen);
    for (size_t i = 0; rc == 0 && i < ch->count; i++) {
        if ((rc = zone_update_apply(up, &ch->changes[i], err, errlen)) != 0)
            res->at = i;
    }
    if (rc == 0 && (rc = zone_update_check(up, broken, err, errlen)) == FENNEC_EZONE) {
        /* The change at fault is the last one to the name that breaks a rule. */
        for (size_t i = 0; i < ch->count; i++) {
            uint8_t lower[WIRE_NAME_MAX];
            int l = wire_name_len(ch->changes[i].owner, WIRE_NAME_MAX);
            if (l < 0)
                continue;
            memcpy(lower, ch->changes[i].owner, (size_t)l);
            wire_name_lower(lower);
            if (wire_name_equal(lower, broken))
                res->at = i;
        }
    }
    if (rc == 0)
        rc = zone_update_commit(up, &fresh, err, errlen);
    else
        zone_update_abort(up);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < ch->count; i++) {
        if (ch->changes[i].add)
            res->added++;
        else
            res->removed++;
    }
    res->serial = zone_serial(fresh);
    next->changed = true;
    rc = next_replacing(next, served, nserved, s, fresh);
    zone_discard(fresh); /* the set holds it now, or nobody does */
    return rc;
}

static void log_applied(const change_t *ch, const char *zone, const change_result_t *res)
{
    switch (ch->kind) {
    case CHANGE_EDIT:
        if (ch->count == 1) {
            char owner[WIRE_NAME_TEXT_MAX], type[32];
            const zone_change_t *c = &ch->changes[0];
            uint8_t lower[WIRE_NAME_MAX];
            int l = wire_name_len(c->owner, WIRE_NAME_MAX);
            memcpy(lower, c->owner, l > 0 ? (size_t)l : 1);
            wire_name_lower(lower);
            wire_name_to_text(lower, owner);
            if (knot_rrtype_to_string(c->type, type, sizeof(type)) < 0)
                snprintf(type, sizeof(type), "TYPE%u", c->type);
            log_info(MOD, "%s: %s %s %s, serial %u, index %llu (%s)", zone,
                     c->add ? "added" : "deleted", owner, type, res->serial,
                     (unsigned long long)res->index, source_of(ch));
        } else {
            log_info(MOD, "%s: %zu changes (%zu added, %zu deleted), serial %u, index %llu (%s)",
                     zone, ch->count, res->added, res->removed, res->serial,
                     (unsigned long long)res->index, source_of(ch));
        }
        break;
    case CHANGE_RELOAD:
        log_info(MOD, "%s: reloaded, serial %u (+%zu -%zu records), index %llu (%s)", zone,
                 res->serial, res->added, res->removed, (unsigned long long)res->index,
                 source_of(ch));
        break;
    case CHANGE_LOAD:
        log_info(MOD, "%zu zone(s) served (+%zu -%zu records, %zu failed), index %llu (%s)",
                 res->zones, res->added, res->removed, res->failed, (unsigned long long)res->index,
                 source_of(ch));
        break;
    case CHANGE_MEMBER_ADD:
    case CHANGE_MEMBER_REMOVE:
        log_info(MOD, "node %s %s, index %llu (%s)", ch->member_id,
                 ch->kind == CHANGE_MEMBER_ADD ? "added" : "removed",
                 (unsigned long long)res->index, source_of(ch));
        break;
    case CHANGE_HEALTH_OVERRIDE:
        log_info(MOD, "health check %s: override %s, index %llu (%s)", ch->check,
                 ch->override_state == HEALTH_OVERRIDE_UP     ? "up"
                 : ch->override_state == HEALTH_OVERRIDE_DOWN ? "down"
                                                              : "cleared",
                 (unsigned long long)res->index, source_of(ch));
        break;
    }
}

/* ---- the tip ----------------------------------------------------------------------------- */

static int members_copy(const repl_member_t *src, size_t n, repl_member_t **out)
{
    *out = calloc(n ? n : 1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    if (n)
        memcpy(*out, src, n * sizeof(**out));
    return 0;
}

static void aux_clear(aux_t *a)
{
    free(a->members);
    health_config_unref(a->health);
    free(a->ovr);
    memset(a, 0, sizeof(*a));
}

/* A deep copy of SRC into DST (cleared first). 0 or -ENOMEM (DST empty then). */
static int aux_copy(const aux_t *src, aux_t *dst)
{
    aux_clear(dst);
    dst->ovr = calloc(src->novr + 1, sizeof(*dst->ovr));
    if (!dst->ovr || members_copy(src->members, src->member_count, &dst->members) != 0) {
        aux_clear(dst);
        return -ENOMEM;
    }
    dst->member_count = src->member_count;
    if (src->novr)
        memcpy(dst->ovr, src->ovr, src->novr * sizeof(*dst->ovr));
    dst->novr = src->novr;
    health_config_ref(src->health);
    dst->health = src->health;
    return 0;
}

/* The override of CHECK set to STATE in A (NONE: dropped). 0 or -ENOMEM. */
static int aux_override(aux_t *a, const char *check, health_override_t state)
{
    size_t at = SIZE_MAX;
    for (size_t i = 0; i < a->novr; i++)
        if (strcmp(a->ovr[i].check, check) == 0)
            at = i;
    if (state == HEALTH_OVERRIDE_NONE) {
        if (at != SIZE_MAX) {
            memmove(&a->ovr[at], &a->ovr[at + 1], (a->novr - at - 1) * sizeof(*a->ovr));
            a->novr--;
        }
        return 0;
    }
    if (at == SIZE_MAX) {
        entry_override_t *n = realloc(a->ovr, (a->novr + 1) * sizeof(*n));
        if (!n)
            return -ENOMEM;
        a->ovr = n;
        at = a->novr++;
        snprintf(a->ovr[at].check, sizeof(a->ovr[at].check), "%s", check);
    }
    a->ovr[at].state = state;
    return 0;
}

/* A's health section becomes HC (a reference taken); overrides of checks it no longer has go. */
static void aux_health(aux_t *a, health_config_t *hc)
{
    health_config_ref(hc);
    health_config_unref(a->health);
    a->health = hc;
    size_t k = 0;
    for (size_t i = 0; i < a->novr; i++) {
        bool known = false;
        for (size_t c = 0; hc && c < hc->check_count; c++)
            known |= strcmp(hc->checks[c].name, a->ovr[i].check) == 0;
        if (known)
            a->ovr[k++] = a->ovr[i];
    }
    a->novr = k;
}

/* Hands the published members and health to the modules that act on them. */
static void aux_publish(const aux_t *a, bool health_changed)
{
    repl_members_set(a->members, a->member_count);
    if (!g_health_on || !health_changed)
        return;
    health_configure(a->health);
    for (size_t c = 0; a->health && c < a->health->check_count; c++) {
        health_override_t o = HEALTH_OVERRIDE_NONE;
        for (size_t i = 0; i < a->novr; i++)
            if (strcmp(a->ovr[i].check, a->health->checks[c].name) == 0)
                o = a->ovr[i].state;
        health_override_set(a->health->checks[c].name, o);
    }
}

static void tip_clear(void)
{
    zones_free(g_tip.zones, g_tip.count);
    aux_clear(&g_tip.aux);
    g_tip.zones = NULL;
    g_tip.count = 0;
}

/* The tip becomes what is published (after a failed commit, or at first use). */
static int tip_from_published(void)
{
    tip_clear();
    zone_read_lock();
    const zone_set_t *cur = zone_set_current();
    size_t n = zone_set_count(cur);
    zone_t **z = calloc(n + 1, sizeof(*z));
    for (size_t i = 0; z && i < n; i++) {
        /* The cast only reaches the reference count of an immutable zone. */
        z[i] = (zone_t *)zone_set_at(cur, i);
        zone_ref(z[i]);
    }
    g_tip.none = cur == NULL;
    zone_read_unlock();
    if (!z)
        return -ENOMEM;
    g_tip.zones = z;
    g_tip.count = n;
    pthread_mutex_lock(&g_pub);
    int rc = aux_copy(&g_pub_aux, &g_tip.aux);
    g_tip.index = atomic_load(&g_index);
    pthread_mutex_unlock(&g_pub);
    g_tip_valid = rc == 0;
    return rc;
}

static void item_free(item_t *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->nrecs; i++)
        free((void *)it->recs[i].data);
    free(it->recs);
    free(it->commit_ns);
    zone_set_free(it->set);
    aux_clear(&it->aux);
    free(it->zones);
    free(it->created);
    free(it);
}

/* Drops the changes a failed commit refused, newest first, and starts again from what is
 * published. Under g_writer. */
static void failed_drop(void)
{
    pthread_mutex_lock(&g_queue);
    item_t *f = g_failed;
    g_failed = NULL;
    pthread_mutex_unlock(&g_queue);
    if (!f && g_tip_valid)
        return;
    tip_clear(); /* the tip holds the newest versions: let them go first */
    for (item_t *it = f, *nx; it; it = nx) {
        nx = it->next;
        zone_set_free(it->set);
        it->set = NULL;
        for (size_t i = it->count; i-- > 0;) {
            if (it->created[i])
                zone_discard(it->zones[i]);
            else
                zone_unref(it->zones[i]);
        }
        it->count = 0;
        pthread_mutex_lock(&g_queue);
        bool keep = it->has_waiter && !it->collected;
        it->dropped = true;
        pthread_mutex_unlock(&g_queue);
        if (!keep)
            item_free(it);
    }
    if (tip_from_published() != 0)
        log_error(MOD, "out of memory reading the served zones");
}

/* Takes the writer lock with the tip ready to build on. */
static int writer_lock(void)
{
    pthread_mutex_lock(&g_writer);
    failed_drop();
    return g_tip_valid ? 0 : -ENOMEM;
}

/* ---- committing -------------------------------------------------------------------------- */

static uint64_t zones_records(zone_t *const *zones, size_t count)
{
    uint64_t n = 0;
    for (size_t i = 0; zones && i < count; i++)
        n += zone_record_count(zones[i]);
    return n;
}

/* The records rule: the entries after the last snapshot changed at least
 * max(g_snapshot_records, 25% of the records served). Under g_pub. */
static bool records_due(void)
{
    uint64_t share = g_served_records / SNAPSHOT_RECORDS_SHARE;
    uint64_t need = share > g_snapshot_records ? share : g_snapshot_records;
    return g_snap_records > 0 && g_snap_records >= need;
}

static void stats_fsync(double seconds, size_t entries, bool ok)
{
    g_stats.groups++;
    if (!ok) {
        g_stats.failures++;
        return;
    }
    g_stats.entries += entries;
    g_stats.count++;
    g_stats.sum += seconds;
    for (unsigned b = 0; b < CHANGE_FSYNC_BUCKETS; b++)
        if (seconds <= g_fsync_le[b])
            g_stats.bucket[b]++;
}

/*
 * Commits the items of LIST (in order) in one journal transaction and publishes the last
 * set; or refuses them all. Returns the journal's code. The caller then marks them done.
 */
static int commit_group(item_t *list, char *err, size_t errlen)
{
    size_t n = 0;
    for (item_t *it = list; it; it = it->next)
        n += it->nrecs;
    int rc = 0;
    uint64_t t0 = fennec_now_ns();
    if (g_journal && n) {
        journal_rec_t *recs = malloc(n * sizeof(*recs));
        if (!recs)
            return -ENOMEM;
        size_t k = 0;
        for (item_t *it = list; it; it = it->next)
            for (size_t i = 0; i < it->nrecs; i++)
                recs[k++] = it->recs[i];
        rc = journal_append(g_journal, recs, n, err, errlen);
        free(recs);
    }
    double secs = (double)(fennec_now_ns() - t0) / 1e9;
    pthread_mutex_lock(&g_pub);
    if (g_journal)
        stats_fsync(secs, n, rc == 0);
    pthread_mutex_unlock(&g_pub);
    if (rc != 0) {
        log_error(MOD, "%s; the change is refused", err);
        return rc;
    }

    /* Publish the newest set; the ones before it were never seen. */
    item_t *last_set = NULL, *last_aux = NULL;
    uint64_t last = 0, last_ns = 0, records = 0;
    for (item_t *it = list; it; it = it->next) {
        records += it->records;
        if (it->set)
            last_set = it;
        if (it->aux_changed)
            last_aux = it;
        for (size_t i = 0; i < it->nrecs; i++) {
            last = it->recs[i].index;
            last_ns = it->commit_ns[i];
            repl_applied(last, last_ns);
        }
    }
    bool health_changed = false;
    if (last_aux) {
        health_changed = last_aux->aux.health != g_pub_aux.health;
        for (size_t i = 0; !health_changed && i < last_aux->aux.novr; i++)
            health_changed = i >= g_pub_aux.novr || memcmp(&last_aux->aux.ovr[i], &g_pub_aux.ovr[i],
                                                           sizeof(last_aux->aux.ovr[i])) != 0;
        health_changed |= last_aux->aux.novr != g_pub_aux.novr;
        aux_publish(&last_aux->aux, health_changed);
    }
    pthread_mutex_lock(&g_pub);
    if (last_set) {
        zone_set_publish(last_set->set);
        last_set->set = NULL;
    }
    if (last_aux) {
        aux_clear(&g_pub_aux);
        g_pub_aux = last_aux->aux;
        memset(&last_aux->aux, 0, sizeof(last_aux->aux));
    }
    if (last) {
        atomic_store(&g_index, last);
        g_commit_ns = last_ns;
    }
    if (last_set)
        g_served_records = zones_records(last_set->zones, last_set->count);
    g_snap_records += records;
    bool snap = g_dir && last >= g_snapshot_index + g_snapshot_every;
    if (snap && !g_snap_wanted) {
        g_snap_wanted = true;
        pthread_cond_signal(&g_snap_cond);
    } else if (g_dir && records_due()) {
        pthread_cond_signal(&g_snap_cond); /* the snapshotter keeps the 10 s apart */
    }
    pthread_mutex_unlock(&g_pub);
    for (item_t *it = list; it; it = it->next) {
        zone_set_free(it->set); /* superseded in the same group */
        it->set = NULL;
        zones_free(it->zones, it->count);
        it->zones = NULL;
        it->count = 0;
    }
    return 0;
}

static void *committer_main(void *arg)
{
    (void)arg;
    zone_reader_register();
    pthread_mutex_lock(&g_queue);
    for (;;) {
        while (!g_head && !g_stop)
            pthread_cond_wait(&g_queue_cond, &g_queue);
        if (!g_head && g_stop)
            break;
        item_t *list = g_head;
        g_head = g_tail = NULL;
        g_busy = true;
        pthread_mutex_unlock(&g_queue);

        char err[256] = "";
        int rc = commit_group(list, err, sizeof(err));
        uint64_t last = atomic_load(&g_index);

        pthread_mutex_lock(&g_queue);
        if (rc != 0) {
            /* This group and everything built on it: refused, kept for the writer to drop. */
            item_t *all = list;
            item_t *t = list;
            while (t->next)
                t = t->next;
            t->next = g_head;
            g_head = g_tail = NULL;
            for (item_t *it = all, *nx; it; it = nx) {
                nx = it->next;
                it->rc = rc;
                snprintf(it->err, sizeof(it->err), "%s", err);
                it->done = true;
                it->next = g_failed; /* newest first */
                g_failed = it;
            }
        } else {
            for (item_t *it = list; it; it = it->next)
                it->done = true;
        }
        g_busy = false;
        pthread_cond_broadcast(&g_done_cond);
        void (*hook)(uint64_t, void *) = g_hook;
        void *hook_arg = g_hook_arg;
        pthread_mutex_unlock(&g_queue);
        if (rc == 0 && hook)
            hook(last, hook_arg);
        pthread_mutex_lock(&g_queue);
    }
    pthread_mutex_unlock(&g_queue);
    zone_reader_unregister();
    return NULL;
}

/*
 * Hands IT (built on the tip under g_writer) to the committer, or commits it here when there
 * is no committer. The tip already includes it. Returns with IT queued; the caller waits with
 * item_wait() after releasing g_writer.
 */
static void item_enqueue(item_t *it)
{
    pthread_mutex_lock(&g_queue);
    if (g_failed) {
        /* Built on changes a failed commit refused: refused with them. */
        it->rc = g_failed->rc;
        snprintf(it->err, sizeof(it->err), "%s", g_failed->err);
        it->done = true;
        it->next = g_failed;
        g_failed = it;
        pthread_mutex_unlock(&g_queue);
        return;
    }
    it->next = NULL;
    if (g_tail)
        g_tail->next = it;
    else
        g_head = it;
    g_tail = it;
    pthread_cond_signal(&g_queue_cond);
    pthread_mutex_unlock(&g_queue);
}

/* Waits until IT (queued with has_waiter) is committed or refused; returns its code. Frees
 * IT, or leaves that to failed_drop() when it still has to drop IT's versions. */
static int item_wait(item_t *it, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_queue);
    while (!it->done)
        pthread_cond_wait(&g_done_cond, &g_queue);
    int rc = it->rc;
    if (rc && errlen)
        snprintf(err, errlen, "%s", it->err);
    it->collected = true;
    bool mine = rc == 0 || it->dropped;
    pthread_mutex_unlock(&g_queue);
    if (mine)
        item_free(it);
    return rc;
}

/* Without a committer thread: commit IT now (under g_writer). */
static int item_commit_inline(item_t *it, char *err, size_t errlen)
{
    it->next = NULL;
    int rc = commit_group(it, err, errlen);
    if (rc != 0) {
        pthread_mutex_lock(&g_queue);
        it->rc = rc;
        it->done = true;
        it->next = g_failed;
        g_failed = it;
        pthread_mutex_unlock(&g_queue);
        return rc;
    }
    item_free(it);
    return 0;
}

static bool committer_running(void)
{
    return g_threads;
}

/* ---- building items ---------------------------------------------------------------------- */

static item_t *item_new(void)
{
    return calloc(1, sizeof(item_t));
}

static int item_add_rec(item_t *it, uint64_t index, uint64_t commit_ns, uint8_t *data, size_t len)
{
    journal_rec_t *r = realloc(it->recs, (it->nrecs + 1) * sizeof(*r));
    if (!r) {
        free(data);
        return -ENOMEM;
    }
    it->recs = r;
    uint64_t *t = realloc(it->commit_ns, (it->nrecs + 1) * sizeof(*t));
    if (!t) {
        free(data);
        return -ENOMEM;
    }
    it->commit_ns = t;
    it->recs[it->nrecs] = (journal_rec_t){.index = index, .data = data, .len = len};
    it->commit_ns[it->nrecs] = commit_ns;
    it->nrecs++;
    return 0;
}

/*
 * IT takes the zones ZONES[0..COUNT) (references moved in) as its next set and the tip moves
 * to them. CREATED[i]: not in the tip before. Returns 0 or -ENOMEM (the zones are then
 * dropped and the tip is unchanged).
 */
static int item_set_zones(item_t *it, zone_t **zones, size_t count)
{
    it->created = calloc(count + 1, sizeof(*it->created));
    zone_t **tipz = calloc(count + 1, sizeof(*tipz));
    int rc = it->created && tipz ? zone_set_new(zones, count, &it->set) : -ENOMEM;
    if (rc != 0) {
        free(tipz);
        zones_drop(zones, count, g_tip.zones, g_tip.count);
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        it->created[i] = !zones_has(g_tip.zones, g_tip.count, zones[i]);
        tipz[i] = zones[i];
        zone_ref(tipz[i]);
    }
    it->zones = zones;
    it->count = count;
    zones_free(g_tip.zones, g_tip.count);
    g_tip.zones = tipz;
    g_tip.count = count;
    g_tip.none = false;
    return 0;
}

/* The entry with INDEX in BUF decoded and applied to the tip's zones: *NEXT the zones after
 * it (references), or for a membership entry *MEMBERS. */
typedef struct applied {
    zone_t **zones; /* NULL: zones unchanged */
    size_t count;
    aux_t aux; /* with aux_changed: the members and health after it */
    bool aux_changed;
    uint64_t commit_ns;
    uint64_t records; /* records the entry changes: removed + added of a diff, every record
                         of a whole zone; 0 for a removal or a membership */
} applied_t;

/* The records in BLOB (as entries carry them); entry_zone_apply() checked that they read. */
static uint64_t blob_records(ProtobufCBinaryData blob)
{
    uint64_t n = 0;
    size_t pos = 0;
    frame_rr_t rr;
    while (frame_rr_next(blob.data, blob.len, &pos, &rr, NULL) == 1)
        n++;
    return n;
}

/*
 * Applies the encoded entry DATA to BASE (zones, members) and returns what follows from it
 * in *OUT: the one apply function of every node. The entry is decoded and checked first.
 */
static int entry_apply_to(zone_t *const *zones, size_t count, const aux_t *aux, const uint8_t *data,
                          size_t len, uint64_t want_index, applied_t *out, char *err, size_t errlen)
{
    entry_t *e = NULL;
    memset(out, 0, sizeof(*out));
    int rc = frame_entry_decode(data, len, &e, err, errlen);
    if (rc)
        return rc;
    if (want_index && e->index != want_index) {
        snprintf(err, errlen, "entry %llu where %llu was due", (unsigned long long)e->index,
                 (unsigned long long)want_index);
        frame_entry_free(e);
        return FENNEC_EMALFORMED;
    }
    out->commit_ns = e->commit_time_ns;
    switch (e->payload_case) {
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_MEMBERSHIP: {
        repl_member_t *m = NULL;
        int n = entry_members(e->membership, &m);
        if (n < 0 || (rc = aux_copy(aux, &out->aux)) != 0) {
            free(m);
            rc = n < 0 ? n : rc;
            break;
        }
        free(out->aux.members);
        out->aux.members = m;
        out->aux.member_count = (size_t)n;
        out->aux_changed = true;
        break;
    }
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_HEALTH: {
        health_config_t *hc = NULL;
        if ((rc = entry_health(e->health, &hc, err, errlen)) != 0) {
            rc = rc == -ENOMEM ? rc : FENNEC_EZONE;
            break;
        }
        if ((rc = aux_copy(aux, &out->aux)) == 0) {
            aux_health(&out->aux, hc);
            out->aux_changed = true;
        }
        health_config_unref(hc);
        break;
    }
    case FENNEC__REPLICATION__ENTRY__PAYLOAD_HEALTH_OVERRIDE:
        if ((rc = aux_copy(aux, &out->aux)) == 0 &&
            (rc = aux_override(&out->aux, e->health_override->check,
                               (health_override_t)e->health_override->state)) == 0)
            out->aux_changed = true;
        break;
    default: {
        size_t pos = SIZE_MAX;
        zone_t *fresh = NULL;
        rc = entry_zone_apply(e, zones, count, &pos, &fresh, err, errlen);
        if (rc)
            break;
        if (e->payload_case == FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_DIFF)
            out->records = blob_records(e->zone_diff->removed) + blob_records(e->zone_diff->added);
        else if (e->payload_case == FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_WHOLE && fresh)
            out->records = zone_record_count(fresh);
        size_t n = count + (pos == SIZE_MAX ? 1 : 0) - (fresh ? 0 : 1);
        zone_t **z = calloc(n + 1, sizeof(*z));
        if (!z) {
            if (fresh)
                zone_discard(fresh);
            rc = -ENOMEM;
            break;
        }
        size_t k = 0;
        for (size_t i = 0; i < count; i++) {
            if (i == pos && !fresh)
                continue;
            z[k] = i == pos ? fresh : zones[i];
            if (i != pos)
                zone_ref(z[k]);
            k++;
        }
        if (pos == SIZE_MAX)
            z[k++] = fresh;
        out->zones = z;
        out->count = k;
    }
    }
    frame_entry_free(e);
    return rc;
}

/* Packs the entry that takes zone TIP_Z (NULL: not served) to NEXT_Z (NULL: removed). */
static int pack_zone(uint64_t index, uint64_t ns, zone_t *tip_z, zone_t *next_z, uint8_t **buf,
                     size_t *len)
{
    if (!next_z)
        return entry_pack_removed(index, ns, zone_name(tip_z), buf, len);
    if (tip_z && zone_is_successor(next_z, tip_z))
        return entry_pack_diff(index, ns, tip_z, next_z, buf, len);
    return entry_pack_whole(index, ns, next_z, buf, len);
}

/*
 * The validated zones NEXT (references moved in) as entries after the tip, one per zone that
 * changed, into IT; each diff is applied again from its bytes (the version served is the one
 * every node computes). On success IT has the entries and the set, and the tip moved on.
 */
static int item_from_next(item_t *it, next_t *next, char *err, size_t errlen)
{
    uint64_t index = g_tip.index;
    uint64_t ns = fennec_wall_ns();
    int rc = 0;
    zone_t **cur = calloc(g_tip.count + 1, sizeof(*cur)); /* the zones as entries take them */
    size_t ncur = g_tip.count;
    if (!cur) {
        next_drop(next);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ncur; i++) {
        cur[i] = g_tip.zones[i];
        zone_ref(cur[i]);
    }
    /* Zones no longer served, then zones changed or added, in the order of NEXT. */
    for (size_t i = 0; rc == 0 && i < g_tip.count; i++) {
        if (zones_find(next->zones, next->count, zone_name(g_tip.zones[i])) != SIZE_MAX)
            continue;
        uint8_t *buf;
        size_t len;
        if ((rc = pack_zone(++index, ns, g_tip.zones[i], NULL, &buf, &len)) == 0)
            rc = item_add_rec(it, index, ns, buf, len);
    }
    for (size_t i = 0; rc == 0 && i < next->count; i++) {
        zone_t *nz = next->zones[i];
        size_t t = zones_find(g_tip.zones, g_tip.count, zone_name(nz));
        zone_t *tz = t == SIZE_MAX ? NULL : g_tip.zones[t];
        if (tz == nz)
            continue;
        uint8_t *buf;
        size_t len;
        if ((rc = pack_zone(++index, ns, tz, nz, &buf, &len)) != 0 ||
            (rc = item_add_rec(it, index, ns, buf, len)) != 0)
            break;
        if (!tz || !zone_is_successor(nz, tz)) {
            it->records += zone_record_count(nz); /* a whole zone */
            continue;
        }
        /* The version served is the entry applied to the tip's version. */
        zone_discard(nz);
        next->zones[i] = NULL;
        applied_t ap;
        rc = entry_apply_to(&tz, 1, &g_tip.aux, buf, len, index, &ap, err, errlen);
        if (rc != 0) {
            log_error(MOD, "%s: the entry made from a validated change does not apply: %s",
                      zone_name(tz), err);
            break;
        }
        next->zones[i] = ap.zones[0];
        free(ap.zones);
        it->records += ap.records;
    }
    zones_free(cur, ncur);
    if (rc != 0) {
        /* compact out the holes left by a failed re-apply */
        size_t k = 0;
        for (size_t i = 0; i < next->count; i++)
            if (next->zones[i])
                next->zones[k++] = next->zones[i];
        next->count = k;
        next_drop(next);
        return rc;
    }
    g_tip.index = index;
    rc = item_set_zones(it, next->zones, next->count);
    memset(next, 0, sizeof(*next));
    return rc;
}

/*
 * An entry about the members or health (BUF, LEN bytes, taken over), packed with the next
 * index at NS: applied to the tip's members and health by the one apply function, added to
 * IT, and the tip moves on.
 */
static int item_add_aux(item_t *it, uint64_t ns, uint8_t *buf, size_t len, char *err, size_t errlen)
{
    uint64_t index = g_tip.index + 1;
    applied_t ap;
    int rc = entry_apply_to(NULL, 0, &g_tip.aux, buf, len, index, &ap, err, errlen);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    aux_t tip = {0};
    if ((rc = aux_copy(&ap.aux, &tip)) != 0 || (rc = item_add_rec(it, index, ns, buf, len)) != 0) {
        aux_clear(&ap.aux);
        aux_clear(&tip);
        return rc;
    }
    aux_clear(&it->aux);
    it->aux = ap.aux;
    it->aux_changed = true;
    aux_clear(&g_tip.aux);
    g_tip.aux = tip;
    g_tip.index = index;
    return 0;
}
/* The name of the first pool of HC whose owner is in none of ZONES, or NULL. */
static const char *health_stray_pool(const health_config_t *hc, zone_t *const *zones, size_t n)
{
    for (size_t i = 0; hc && i < hc->pool_count; i++) {
        const health_pool_def_t *p = &hc->pools[i];
        bool in = false;
        for (size_t z = 0; z < n && !in; z++) {
            const uint8_t *apex = zone_apex_wire(zones[z]);
            in = wire_name_in(p->owner, p->owner_len, apex, strlen((const char *)apex) + 1);
        }
        if (!in)
            return p->name;
    }
    return NULL;
}

/* ---- change_submit ------------------------------------------------------------------------ */

/* The member list after CH, into *OUT (free()) and *N. */
static int validate_member(const change_t *ch, repl_member_t **out, size_t *n, char *err,
                           size_t errlen)
{
    if (!ch->member_id || !repl_member_id_valid(ch->member_id)) {
        say(err, errlen, "a node id is 1 to 63 letters, digits, '-', '_' or '.'");
        return FENNEC_EMALFORMED;
    }
    size_t at = SIZE_MAX;
    for (size_t i = 0; i < g_tip.aux.member_count; i++)
        if (strcmp(g_tip.aux.members[i].id, ch->member_id) == 0)
            at = i;
    size_t count = g_tip.aux.member_count;
    repl_member_t *m = calloc(count + 2, sizeof(*m));
    if (!m)
        return -ENOMEM;
    if (count)
        memcpy(m, g_tip.aux.members, count * sizeof(*m));
    if (ch->kind == CHANGE_MEMBER_ADD) {
        cfg_addr_t parsed;
        if (!ch->member_address || strlen(ch->member_address) >= REPL_ADDR_MAX ||
            cfg_addr_parse(ch->member_address, &parsed) != 0) {
            say(err, errlen,
                "the address of node %s must be IPv4:port or [IPv6]:port, not "
                "\"%.80s\"",
                ch->member_id, ch->member_address ? ch->member_address : "");
            free(m);
            return FENNEC_EMALFORMED;
        }
        if (at != SIZE_MAX && strcmp(m[at].address, ch->member_address) == 0) {
            say(err, errlen, "node %s is a member with address %s already", ch->member_id,
                ch->member_address);
            free(m);
            return FENNEC_EEXISTS;
        }
        if (at == SIZE_MAX)
            at = count++;
        snprintf(m[at].id, sizeof(m[at].id), "%s", ch->member_id);
        snprintf(m[at].address, sizeof(m[at].address), "%s", ch->member_address);
    } else {
        if (g_node_id && strcmp(ch->member_id, g_node_id) == 0) {
            say(err, errlen, "node %s is this primary: it cannot remove itself", ch->member_id);
            free(m);
            return FENNEC_EMALFORMED;
        }
        if (at == SIZE_MAX) {
            say(err, errlen, "node %s is not a member", ch->member_id);
            free(m);
            return FENNEC_ENOTFOUND;
        }
        memmove(&m[at], &m[at + 1], (count - at - 1) * sizeof(*m));
        count--;
    }
    *out = m;
    *n = count;
    return 0;
}

int change_submit(const change_t *ch, change_result_t *res, char *err, size_t errlen)
{
    next_t next = {0};
    char canon[WIRE_NAME_TEXT_MAX] = "";
    int rc = 0;

    memset(res, 0, sizeof(*res));
    res->at = SIZE_MAX;
    if (errlen)
        err[0] = '\0';
    if (!ch || ch->kind < CHANGE_LOAD || ch->kind > CHANGE_HEALTH_OVERRIDE ||
        ((ch->kind == CHANGE_LOAD || ch->kind == CHANGE_RELOAD) && !ch->cfg)) {
        say(err, errlen, "not a valid change");
        return FENNEC_EMALFORMED;
    }
    if ((ch->kind == CHANGE_RELOAD || ch->kind == CHANGE_EDIT) &&
        name_canon(ch->zone, canon) != 0) {
        say(err, errlen, "invalid zone name \"%.256s\"", ch->zone ? ch->zone : "");
        return FENNEC_EMALFORMED;
    }
    if (ch->kind == CHANGE_EDIT && (!ch->changes || ch->count == 0)) {
        say(err, errlen, "the change has no record changes");
        return FENNEC_EMALFORMED;
    }
    if (!g_primary) {
        say(err, errlen,
            "this node is a secondary: changes are made on the primary and reach "
            "this node through replication");
        return FENNEC_ENOTSUP;
    }

    if ((rc = writer_lock()) != 0) {
        say(err, errlen, "out of memory");
        pthread_mutex_unlock(&g_writer);
        return rc;
    }
    res->index = g_tip.index;
    item_t *it = NULL;

    if (ch->kind == CHANGE_MEMBER_ADD || ch->kind == CHANGE_MEMBER_REMOVE) {
        repl_member_t *m = NULL;
        size_t n = 0;
        if ((rc = validate_member(ch, &m, &n, err, errlen)) != 0 || ch->validate_only) {
            free(m);
            goto unlock;
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        uint64_t ns = fennec_wall_ns();
        if (!(it = item_new()) || entry_pack_members(g_tip.index + 1, ns, m, n, &buf, &len) != 0)
            rc = -ENOMEM;
        else
            rc = item_add_aux(it, ns, buf, len, err, errlen);
        free(m);
        goto queue;
    }
    if (ch->kind == CHANGE_HEALTH_OVERRIDE) {
        const health_config_t *hc = g_tip.aux.health;
        bool known = false;
        for (size_t c = 0; hc && ch->check && c < hc->check_count; c++)
            known |= strcmp(hc->checks[c].name, ch->check) == 0;
        if (!known) {
            say(err, errlen, "no health check named \"%.64s\"", ch->check ? ch->check : "");
            rc = FENNEC_ENOTFOUND;
            goto unlock;
        }
        if (ch->override_state > HEALTH_OVERRIDE_DOWN) {
            say(err, errlen, "not an override state");
            rc = FENNEC_EMALFORMED;
            goto unlock;
        }
        if (ch->validate_only)
            goto unlock;
        uint8_t *buf = NULL;
        size_t len = 0;
        uint64_t ns = fennec_wall_ns();
        if (!(it = item_new()) || entry_pack_override(g_tip.index + 1, ns, ch->check,
                                                      ch->override_state, &buf, &len) != 0)
            rc = -ENOMEM;
        else
            rc = item_add_aux(it, ns, buf, len, err, errlen);
        goto queue;
    }

    /* 1. validate: the whole next set, or a refusal. */
    if (ch->kind == CHANGE_LOAD)
        rc = validate_load(ch, g_tip.zones, g_tip.count, &next, res, err, errlen);
    else if (ch->kind == CHANGE_RELOAD)
        rc = validate_reload(ch, canon, g_tip.zones, g_tip.count, &next, res, err, errlen);
    else
        rc = validate_edit(ch, canon, g_tip.zones, g_tip.count, &next, res, err, errlen);
    /* The health section of a load: changed definitions whose pools all lie in served zones. */
    bool health = false;
    if (rc == 0 && ch->kind == CHANGE_LOAD &&
        !health_config_equal(ch->cfg->health, g_tip.aux.health)) {
        const char *stray = health_stray_pool(ch->cfg->health, next.zones, next.count);
        if (stray) {
            log_error(MOD,
                      "health: pool %s is in no served zone; the health section is not "
                      "applied (still %s)",
                      stray, g_tip.aux.health ? "the previous one" : "none");
            if (res->failed++ == 0)
                say(err, errlen, "health: pool %s is in no served zone", stray);
        } else {
            health = true;
            res->unchanged = false;
        }
    }
    bool zones = next.changed || (ch->kind == CHANGE_LOAD && g_tip.none);
    if (rc != 0 || ch->validate_only || (!zones && !health)) {
        next_drop(&next);
        goto unlock;
    }

    /* 2. journal: entries after the tip, handed to the committer. */
    if (!(it = item_new())) {
        next_drop(&next);
        rc = -ENOMEM;
        goto unlock;
    }
    if (zones)
        rc = item_from_next(it, &next, err, errlen);
    else
        next_drop(&next);
    if (rc == 0 && health) {
        uint8_t *buf = NULL;
        size_t len = 0;
        uint64_t ns = fennec_wall_ns();
        rc = entry_pack_health(g_tip.index + 1, ns, ch->cfg->health, &buf, &len);
        if (rc == 0)
            rc = item_add_aux(it, ns, buf, len, err, errlen);
    }

queue:
    if (rc != 0) {
        if (!errlen || !err[0])
            say(err, errlen, "%s", fennec_strerror(rc));
        item_free(it);
        /* The tip may have moved part way: start again from what is published. */
        g_tip_valid = false;
        failed_drop();
        goto unlock;
    }
    uint64_t index = g_tip.index;
    if (it->nrecs == 0 && !it->set) {
        item_free(it);
        goto unlock;
    }
    if (!committer_running()) {
        rc = item_commit_inline(it, err, errlen);
        if (rc != 0)
            failed_drop();
        pthread_mutex_unlock(&g_writer);
    } else {
        it->has_waiter = true;
        item_enqueue(it);
        pthread_mutex_unlock(&g_writer);
        /* 3. apply: published by the committer once durable. */
        rc = item_wait(it, err, errlen);
    }
    if (rc == 0) {
        res->index = index;
        res->applied = true;
        log_applied(ch, canon, res);
    } else {
        res->index = atomic_load(&g_index);
    }
    return rc;

unlock:
    pthread_mutex_unlock(&g_writer);
    return rc;
}

uint64_t change_index(void)
{
    return atomic_load(&g_index);
}

void change_shutdown(void)
{
    pthread_mutex_lock(&g_writer);
    /* Wait for the committer to finish what it has. */
    pthread_mutex_lock(&g_queue);
    while (g_head || g_busy)
        pthread_cond_wait(&g_done_cond, &g_queue);
    pthread_mutex_unlock(&g_queue);
    failed_drop();
    tip_clear();
    g_tip.none = true;
    g_tip_valid = true;
    pthread_mutex_lock(&g_pub);
    zone_set_publish(NULL);
    pthread_mutex_unlock(&g_pub);
    pthread_mutex_unlock(&g_writer);
}

/* ---- a secondary's entries ------------------------------------------------------------------ */

/* Puts the items of LIST (oldest first) on the failed list with code RC. */
static void failed_push(item_t *list, int rc)
{
    pthread_mutex_lock(&g_queue);
    for (item_t *it = list, *nx; it; it = nx) {
        nx = it->next;
        it->rc = rc;
        it->done = true;
        it->next = g_failed;
        g_failed = it;
    }
    pthread_mutex_unlock(&g_queue);
}

int change_apply_entries(const uint8_t *const *data, const size_t *lens, size_t count, char *err,
                         size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (writer_lock() != 0) {
        pthread_mutex_unlock(&g_writer);
        return -ENOMEM;
    }
    int rc = 0;
    item_t *last = NULL;
    item_t *items = NULL, **tail = &items;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        entry_t *peek = fennec__replication__entry__unpack(NULL, lens[i], data[i]);
        uint64_t index = peek ? peek->index : 0;
        if (peek)
            fennec__replication__entry__free_unpacked(peek, NULL);
        if (index && index <= g_tip.index)
            continue; /* a resend of what this node has */
        applied_t ap;
        rc = entry_apply_to(g_tip.zones, g_tip.count, &g_tip.aux, data[i], lens[i], g_tip.index + 1,
                            &ap, err, errlen);
        if (rc != 0)
            break;
        item_t *it = item_new();
        uint8_t *copy = malloc(lens[i] ? lens[i] : 1);
        if (!it || !copy) {
            free(copy);
            item_free(it);
            zones_drop(ap.zones, ap.count, g_tip.zones, g_tip.count);
            aux_clear(&ap.aux);
            rc = -ENOMEM;
            break;
        }
        memcpy(copy, data[i], lens[i]);
        it->records = ap.records;
        rc = item_add_rec(it, g_tip.index + 1, ap.commit_ns, copy, lens[i]);
        if (rc == 0 && ap.aux_changed) {
            aux_t tip = {0};
            if ((rc = aux_copy(&ap.aux, &tip)) == 0) {
                it->aux = ap.aux;
                it->aux_changed = true;
                memset(&ap.aux, 0, sizeof(ap.aux));
                aux_clear(&g_tip.aux);
                g_tip.aux = tip;
            }
        }
        aux_clear(&ap.aux);
        if (rc == 0 && ap.zones)
            rc = item_set_zones(it, ap.zones, ap.count);
        else if (ap.zones)
            zones_drop(ap.zones, ap.count, g_tip.zones, g_tip.count);
        if (rc != 0) {
            item_free(it);
            break;
        }
        g_tip.index++;
        *tail = it;
        tail = &it->next;
        last = it;
    }
    if (rc != 0 && !last) {
        g_tip_valid = false;
        failed_drop();
        pthread_mutex_unlock(&g_writer);
        return rc;
    }
    int arc = rc;
    char aerr[256];
    snprintf(aerr, sizeof(aerr), "%s", errlen ? err : "");
    /* Hand over every item at once: one group commit. */
    size_t n = 0;
    for (item_t *it = items; it; it = it->next)
        n++;
    item_t **arr = calloc(n + 1, sizeof(*arr));
    if (!arr) {
        failed_push(items, -ENOMEM);
        failed_drop();
        pthread_mutex_unlock(&g_writer);
        return -ENOMEM;
    }
    n = 0;
    for (item_t *it = items; it; it = it->next)
        arr[n++] = it;
    if (committer_running()) {
        for (size_t i = 0; i < n; i++) {
            arr[i]->has_waiter = true;
            arr[i]->next = NULL;
        }
        pthread_mutex_lock(&g_queue);
        bool failed = g_failed != NULL;
        if (!failed && n) {
            for (size_t i = 0; i + 1 < n; i++)
                arr[i]->next = arr[i + 1];
            if (g_tail)
                g_tail->next = arr[0];
            else
                g_head = arr[0];
            g_tail = arr[n - 1];
            pthread_cond_signal(&g_queue_cond);
        }
        pthread_mutex_unlock(&g_queue);
        for (size_t i = 0; failed && i < n; i++)
            item_enqueue(arr[i]); /* refused with the failed ones */
        pthread_mutex_unlock(&g_writer);
        int wrc = 0;
        for (size_t i = 0; i < n; i++) {
            int r = item_wait(arr[i], wrc ? NULL : err, wrc ? 0 : errlen);
            if (r != 0 && wrc == 0)
                wrc = r;
        }
        free(arr);
        if (wrc != 0)
            return wrc;
    } else {
        rc = 0;
        size_t i = 0;
        for (; i < n && rc == 0; i++)
            rc = item_commit_inline(arr[i], err, errlen);
        for (; rc != 0 && i < n; i++) {
            arr[i]->next = NULL;
            failed_push(arr[i], rc); /* built on the one refused */
        }
        free(arr);
        if (rc != 0)
            failed_drop();
        pthread_mutex_unlock(&g_writer);
        if (rc != 0)
            return rc;
    }
    if (arc != 0 && errlen)
        snprintf(err, errlen, "%s", aerr);
    return arc;
}
/* ---- snapshots ------------------------------------------------------------------------------ */

/* What is published, as snapshot data (references taken). The records rule starts counting
 * again from its index (*COVERED: what it counted up to there) and its clock from NOW. */
static int published_data(snapshot_data_t *d, uint64_t now, uint64_t *covered)
{
    memset(d, 0, sizeof(*d));
    pthread_mutex_lock(&g_pub);
    zone_read_lock();
    const zone_set_t *cur = zone_set_current();
    size_t n = zone_set_count(cur);
    d->zones = calloc(n + 1, sizeof(*d->zones));
    for (size_t i = 0; d->zones && i < n; i++) {
        d->zones[i] = (zone_t *)zone_set_at(cur, i);
        zone_ref(d->zones[i]);
    }
    zone_read_unlock();
    d->zone_count = d->zones ? n : 0;
    d->index = atomic_load(&g_index);
    d->commit_ns = g_commit_ns;
    aux_t a = {0};
    int rc = d->zones ? aux_copy(&g_pub_aux, &a) : -ENOMEM;
    *covered = 0;
    if (rc == 0) {
        *covered = g_snap_records;
        g_snap_records = 0;
        g_snap_last_ns = now;
    }
    pthread_mutex_unlock(&g_pub);
    d->members = a.members;
    d->member_count = a.member_count;
    d->health = a.health;
    d->overrides = a.ovr;
    d->override_count = a.novr;
    if (rc)
        snapshot_data_free(d);
    return rc;
}

int change_snapshot_now(char *err, size_t errlen)
{
    if (!g_dir || !g_journal) {
        say(err, errlen, "no journal is open");
        return FENNEC_ENOTFOUND;
    }
    snapshot_data_t d;
    uint64_t t0 = fennec_now_ns(), covered = 0;
    int rc = published_data(&d, t0, &covered);
    if (rc) {
        say(err, errlen, "out of memory");
        return rc;
    }
    rc = snapshot_write(g_dir, &d, err, errlen);
    uint64_t index = d.index;
    snapshot_data_free(&d);
    if (rc != 0) {
        pthread_mutex_lock(&g_pub);
        g_snap_records += covered; /* still due; tried again after the interval */
        pthread_mutex_unlock(&g_pub);
        log_error(MOD, "snapshot at index %llu not written: %s", (unsigned long long)index, err);
        return rc;
    }
    pthread_mutex_lock(&g_pub);
    g_snapshot_index = index;
    g_stats.snapshots++;
    pthread_mutex_unlock(&g_pub);
    /* Entries the snapshot covers may go, but a secondary a little behind should find the
     * ones it needs: keep journal_keep of them. */
    uint64_t below = index + 1 > g_journal_keep ? index + 1 - g_journal_keep : 0;
    if (below > 0 && (rc = journal_compact(g_journal, below, err, errlen)) != 0) {
        log_error(MOD, "journal not compacted: %s", err);
        return rc;
    }
    journal_info_t ji;
    journal_info_get(g_journal, &ji);
    log_info(MOD,
             "snapshot at index %llu (%llu records changed since the last) written in %.0f ms; "
             "the journal keeps %llu..%llu (%zu KiB)",
             (unsigned long long)index, (unsigned long long)covered,
             (double)(fennec_now_ns() - t0) / 1e6, (unsigned long long)ji.first,
             (unsigned long long)ji.last, ji.bytes_used / 1024);
    return 0;
}

static void *snapshotter_main(void *arg)
{
    (void)arg;
    /* Background work: writing a large zone takes a second of CPU, which writes, the stream
     * and the DNS workers need more. Linux gives each thread its own nice value. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) != 0)
        log_debug(MOD, "snapshot thread: nice 10 refused: %s", strerror(errno));
    zone_reader_register();
    pthread_mutex_lock(&g_pub);
    for (;;) {
        if (g_stop)
            break;
        if (!g_snap_wanted && !records_due()) {
            pthread_cond_wait(&g_snap_cond, &g_pub);
            continue;
        }
        uint64_t now = fennec_now_ns(), at = g_snap_last_ns + g_snapshot_records_ns;
        if (!g_snap_wanted && g_snap_last_ns && now < at) {
            /* Due by records, but the last snapshot is recent: wait for the interval (a
             * commit in between only wakes this up early), then take it, writes or not. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts); /* g_snap_cond's clock */
            uint64_t wall = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + at - now;
            ts.tv_sec = (time_t)(wall / 1000000000ull);
            ts.tv_nsec = (long)(wall % 1000000000ull);
            pthread_cond_timedwait(&g_snap_cond, &g_pub, &ts);
            continue;
        }
        pthread_mutex_unlock(&g_pub);
        char err[512];
        change_snapshot_now(err, sizeof(err));
        pthread_mutex_lock(&g_pub);
        g_snap_wanted = false;
    }
    pthread_mutex_unlock(&g_pub);
    zone_reader_unregister();
    return NULL;
}

/* Moves the members, health and overrides out of D. */
static aux_t aux_of_snapshot(snapshot_data_t *d)
{
    aux_t a = {.members = d->members,
               .member_count = d->member_count,
               .health = d->health,
               .ovr = d->overrides,
               .novr = d->override_count};
    d->members = NULL;
    d->member_count = 0;
    d->health = NULL;
    d->overrides = NULL;
    d->override_count = 0;
    return a;
}

int change_install_snapshot(snapshot_data_t *d, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_writer);
    pthread_mutex_lock(&g_queue);
    while (g_head || g_busy)
        pthread_cond_wait(&g_done_cond, &g_queue);
    pthread_mutex_unlock(&g_queue);
    failed_drop();
    int rc = 0;
    if (g_journal && (rc = journal_compact(g_journal, UINT64_MAX, err, errlen)) != 0) {
        pthread_mutex_unlock(&g_writer);
        return rc;
    }
    zone_set_t *set = NULL;
    if ((rc = zone_set_new(d->zones, d->zone_count, &set)) != 0) {
        say(err, errlen, "out of memory");
        pthread_mutex_unlock(&g_writer);
        return rc;
    }
    repl_applied_snapshot(d->index, d->commit_ns);
    aux_t a = aux_of_snapshot(d);
    aux_publish(&a, true);
    pthread_mutex_lock(&g_pub);
    zone_set_publish(set);
    atomic_store(&g_index, d->index);
    g_commit_ns = d->commit_ns;
    g_snapshot_index = d->index;
    g_served_records = zones_records(d->zones, d->zone_count);
    g_snap_records = 0; /* the received snapshot is this node's own now */
    g_snap_last_ns = fennec_now_ns();
    aux_clear(&g_pub_aux);
    g_pub_aux = a;
    pthread_mutex_unlock(&g_pub);
    snapshot_data_free(d);
    tip_from_published();
    pthread_mutex_unlock(&g_writer);
    log_info(MOD, "snapshot at index %llu installed", (unsigned long long)g_tip.index);
    return 0;
}

/* ---- start and stop ------------------------------------------------------------------------- */

typedef struct replay {
    uint64_t next;
    size_t count;
    uint64_t records; /* changed by the entries replayed */
    uint64_t commit_ns;
    char *err;
    size_t errlen;
} replay_t;

/* One journal entry at start: applied to the tip like a secondary's, not journaled again. */
static int replay_one(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
    replay_t *r = arg;
    applied_t ap;
    char why[512];
    int rc = entry_apply_to(g_tip.zones, g_tip.count, &g_tip.aux, data, len, index, &ap, why,
                            sizeof(why));
    if (rc == 0 && index != r->next)
        rc = FENNEC_EMALFORMED;
    if (rc != 0) {
        say(r->err, r->errlen, "journal entry %llu: %s", (unsigned long long)index, why);
        return rc;
    }
    if (ap.zones) {
        zones_free(g_tip.zones, g_tip.count);
        g_tip.zones = ap.zones;
        g_tip.count = ap.count;
    }
    if (ap.aux_changed) {
        aux_clear(&g_tip.aux);
        g_tip.aux = ap.aux;
    }
    g_tip.index = index;
    repl_applied(index, ap.commit_ns);
    r->records += ap.records;
    r->commit_ns = ap.commit_ns;
    r->next = index + 1;
    r->count++;
    return 0;
}

static int mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int change_open(const change_config_t *cc, uint64_t *index, char *err, size_t errlen)
{
    char why[1024] = "";
    int rc = mkdirs(cc->data_dir);
    if (rc) {
        say(err, errlen, "data_dir %s: %s", cc->data_dir, fennec_strerror(rc));
        return rc;
    }
    pthread_mutex_lock(&g_writer);
    failed_drop();
    journal_t *j = NULL;
    rc = journal_open(cc->data_dir, cc->journal_max_bytes, &j, why, sizeof(why));
    if (rc) {
        say(err, errlen, "%s%s", why,
            rc == FENNEC_EMALFORMED ? "; start fennecd with --reseed to set it aside and fetch "
                                      "the data again (a secondary) or load the zone files "
                                      "again (a primary)"
                                    : "");
        pthread_mutex_unlock(&g_writer);
        return rc == FENNEC_EMALFORMED ? FENNEC_EDAMAGED : rc;
    }
    /* A secondary's entries are kept by the primary too: one sync per commit is enough. */
    if (!cc->primary)
        journal_set_relaxed(j, true);
    snapshot_data_t snap = {0};
    rc = snapshot_read(cc->data_dir, &snap, why, sizeof(why));
    if (rc == FENNEC_ENOTFOUND) {
        rc = 0;
    } else if (rc != 0) {
        say(err, errlen,
            "%s; start fennecd with --reseed to set the data aside and fetch it "
            "again",
            why);
        journal_close(j);
        pthread_mutex_unlock(&g_writer);
        return rc == -ENOMEM ? rc : FENNEC_EDAMAGED;
    }
    journal_info_t ji;
    journal_info_get(j, &ji);
    if (ji.last && ji.last < snap.index) {
        /* Entries older than the snapshot: a snapshot installed after them. */
        if ((rc = journal_compact(j, UINT64_MAX, why, sizeof(why))) != 0) {
            say(err, errlen, "%s", why);
            goto fail;
        }
        journal_info_get(j, &ji);
    }
    if (ji.first > snap.index + 1) {
        say(err, errlen,
            "the journal in %s starts at entry %llu but the snapshot is of index %llu: entries "
            "are missing; start fennecd with --reseed",
            cc->data_dir, (unsigned long long)ji.first, (unsigned long long)snap.index);
        rc = FENNEC_EDAMAGED;
        goto fail;
    }

    /* The snapshot, then the journal after it. */
    tip_clear();
    g_tip.zones = snap.zones;
    g_tip.count = snap.zone_count;
    g_tip.aux = aux_of_snapshot(&snap);
    g_tip.index = snap.index;
    snap.zones = NULL;
    snap.zone_count = 0;
    if (g_tip.index)
        repl_applied_snapshot(g_tip.index, snap.commit_ns);
    replay_t r = {
        .next = g_tip.index + 1, .commit_ns = snap.commit_ns, .err = err, .errlen = errlen};
    uint64_t t0 = fennec_now_ns();
    if (ji.last > g_tip.index) {
        rc = journal_read(j, g_tip.index + 1, replay_one, &r);
        if (rc != 0) {
            if (rc == FENNEC_ENOTFOUND || rc == FENNEC_EMALFORMED || rc == FENNEC_EDAMAGED)
                say(err, errlen,
                    "%s%sthe journal in %s does not replay; start fennecd with "
                    "--reseed",
                    r.count || !errlen ? "" : "", errlen && err[0] ? ": " : "", cc->data_dir);
            rc = rc == -ENOMEM ? rc : FENNEC_EDAMAGED;
            tip_clear();
            goto fail;
        }
    }
    zone_set_t *set = NULL;
    if (g_tip.index > 0 && (rc = zone_set_new(g_tip.zones, g_tip.count, &set)) != 0) {
        say(err, errlen, "out of memory");
        tip_clear();
        goto fail;
    }
    g_health_on = cc->health;
    aux_t pub = {0};
    if (aux_copy(&g_tip.aux, &pub) != 0) {
        say(err, errlen, "out of memory");
        zone_set_free(set);
        tip_clear();
        rc = -ENOMEM;
        goto fail;
    }
    if (g_tip.index > 0)
        aux_publish(&pub, true);
    pthread_mutex_lock(&g_pub);
    if (set)
        zone_set_publish(set);
    atomic_store(&g_index, g_tip.index);
    g_commit_ns = r.commit_ns;
    g_snapshot_index = snap.index;
    g_served_records = zones_records(g_tip.zones, g_tip.count);
    g_snap_records = r.records; /* a long replay makes a snapshot due at once */
    g_snap_last_ns = 0;
    aux_clear(&g_pub_aux);
    g_pub_aux = pub;
    g_stats.bytes_max = ji.bytes_max;
    pthread_mutex_unlock(&g_pub);
    g_tip.none = set == NULL;
    g_tip_valid = true;

    g_journal = j;
    g_dir = strdup(cc->data_dir);
    g_node_id = cc->node_id ? strdup(cc->node_id) : NULL;
    g_primary = cc->primary;
    g_snapshot_every = cc->snapshot_every ? cc->snapshot_every : SNAPSHOT_EVERY_DEFAULT;
    g_journal_keep = cc->journal_keep ? cc->journal_keep : JOURNAL_KEEP_DEFAULT;
    g_snapshot_records = cc->snapshot_records ? cc->snapshot_records : SNAPSHOT_RECORDS_DEFAULT;
    g_snapshot_records_ns = (uint64_t)(cc->snapshot_records_ms ? cc->snapshot_records_ms
                                                               : SNAPSHOT_RECORDS_MS_DEFAULT) *
                            1000000ull;
    g_stop = false;
    if (pthread_create(&g_committer, NULL, committer_main, NULL) != 0 ||
        pthread_create(&g_snapshotter, NULL, snapshotter_main, NULL) != 0) {
        say(err, errlen, "cannot start the journal threads");
        pthread_mutex_unlock(&g_writer);
        return -EAGAIN;
    }
    g_threads = true;
    if (g_tip.index)
        log_info(MOD,
                 "restored index %llu from %s: snapshot at %llu, %zu journal entries "
                 "replayed in %.0f ms",
                 (unsigned long long)g_tip.index, cc->data_dir, (unsigned long long)snap.index,
                 r.count, (double)(fennec_now_ns() - t0) / 1e6);
    *index = g_tip.index;
    pthread_mutex_unlock(&g_writer);
    return 0;
fail:
    snapshot_data_free(&snap);
    journal_close(j);
    pthread_mutex_unlock(&g_writer);
    return rc;
}

void change_close(void)
{
    if (g_threads) {
        pthread_mutex_lock(&g_queue);
        g_stop = true;
        pthread_cond_broadcast(&g_queue_cond);
        pthread_mutex_unlock(&g_queue);
        pthread_mutex_lock(&g_pub);
        pthread_cond_broadcast(&g_snap_cond);
        pthread_mutex_unlock(&g_pub);
        pthread_join(g_committer, NULL);
        pthread_join(g_snapshotter, NULL);
        g_threads = false;
    }
    pthread_mutex_lock(&g_writer);
    failed_drop();
    journal_close(g_journal);
    g_journal = NULL;
    free(g_dir);
    g_dir = NULL;
    free(g_node_id);
    g_node_id = NULL;
    g_primary = true;
    tip_clear();
    g_tip_valid = false;
    pthread_mutex_lock(&g_pub);
    aux_clear(&g_pub_aux);
    pthread_mutex_unlock(&g_pub);
    g_health_on = false;
    pthread_mutex_unlock(&g_writer);
}

void change_on_commit(void (*fn)(uint64_t index, void *arg), void *arg)
{
    pthread_mutex_lock(&g_queue);
    g_hook = fn;
    g_hook_arg = arg;
    pthread_mutex_unlock(&g_queue);
}

struct journal *change_journal(void)
{
    return g_journal;
}

const char *change_data_dir(void)
{
    return g_dir;
}

void change_journal_stats(change_journal_stats_t *out)
{
    pthread_mutex_lock(&g_pub);
    *out = g_stats;
    memcpy(out->bucket_le, g_fsync_le, sizeof(g_fsync_le));
    out->snapshot_index = g_snapshot_index;
    pthread_mutex_unlock(&g_pub);
    if (g_journal) {
        journal_info_t ji;
        journal_info_get(g_journal, &ji);
        out->first_index = ji.first;
        out->last_index = ji.last;
        out->bytes_used = ji.bytes_used;
        out->bytes_max = ji.bytes_max;
    }
}
