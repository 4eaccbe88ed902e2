/*
 * The one write path (see change.h). The writer lock is held from the moment the served set
 * is read until the next one is published, so two changes never start from the same version
 * and lose each other's work. Validation builds the complete next zone set before anything
 * is published: the apply step only numbers and publishes it and cannot fail, which is where
 * a journal commit will go.
 */
#include "fennec/change.h"
#include "fennec/common.h"
#include "fennec/wire.h"

#include <errno.h>
#include <libknot/descriptor.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "change"

static pthread_mutex_t g_writer = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t g_index;

/* Where a validated change leads: the next set, ready to publish. */
typedef struct next {
    zone_t **zones; /* the next set's zones, one reference each */
    size_t count;
    bool changed; /* the next set differs from the served one */
    zone_set_t *set;
} next_t;

/* Drops N. Versions built for it that were not published (a refusal, a validation only)
 * are discarded, so that the served version they were built from takes the next change. */
static void next_deinit(next_t *n, bool published)
{
    zone_set_free(n->set);
    for (size_t i = 0; i < n->count; i++) {
        if (published)
            zone_unref(n->zones[i]);
        else
            zone_discard(n->zones[i]);
    }
    free(n->zones);
    memset(n, 0, sizeof(*n));
}

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

/* The served zones, one reference each, into *ZONES (free() the array); *NONE tells that no
 * set is published at all. Under the writer lock the served set cannot change; the read
 * section only follows the RCU protocol. */
static int served_take(zone_t ***zones, size_t *count, bool *none)
{
    zone_read_lock();
    const zone_set_t *cur = zone_set_current();
    *none = cur == NULL;
    size_t n = zone_set_count(cur);
    zone_t **z = calloc(n + 1, sizeof(*z));
    if (z) {
        for (size_t i = 0; i < n; i++) {
            /* The cast only reaches the reference count of an immutable zone. */
            z[i] = (zone_t *)zone_set_at(cur, i);
            zone_ref(z[i]);
        }
    }
    zone_read_unlock();
    if (!z)
        return -ENOMEM;
    *zones = z;
    *count = n;
    return 0;
}

static void zones_free(zone_t **zones, size_t count)
{
    for (size_t i = 0; zones && i < count; i++)
        zone_unref(zones[i]);
    free(zones);
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
 * reloaded from its file when served, loaded when not. *FRESH stays NULL when SERVED stays
 * (an unchanged file; built-in text, which never changes). ST says what changed.
 */
static int zone_next(const cfg_zone_t *cz, zone_t *served, zone_t **fresh, zone_reload_stats_t *st,
                     char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    *fresh = NULL;
    if (served && !cz->file) {
        st->unchanged = true;
        st->serial = zone_serial(served);
        return 0;
    }
    if (served)
        return zone_reload_file(served, cz->file, fresh, st, err, errlen);
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
        int zrc = zone_next(cz, prev, &fresh, &st, lerr, sizeof(lerr));
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
    int rc = zone_next(cz, prev, &fresh, &st, lerr, sizeof(lerr));
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

/* ---- apply ------------------------------------------------------------------------------- */

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
        break;
    }
}

int change_submit(const change_t *ch, change_result_t *res, char *err, size_t errlen)
{
    zone_t **served = NULL;
    size_t nserved = 0;
    next_t next = {0};
    char canon[WIRE_NAME_TEXT_MAX] = "";
    bool none = false;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    res->at = SIZE_MAX;
    if (errlen)
        err[0] = '\0';
    if (!ch || (ch->kind != CHANGE_LOAD && ch->kind != CHANGE_RELOAD && ch->kind != CHANGE_EDIT) ||
        (ch->kind != CHANGE_EDIT && !ch->cfg)) {
        say(err, errlen, "not a valid change");
        return FENNEC_EMALFORMED;
    }
    if (ch->kind != CHANGE_LOAD && name_canon(ch->zone, canon) != 0) {
        say(err, errlen, "invalid zone name \"%.256s\"", ch->zone ? ch->zone : "");
        return FENNEC_EMALFORMED;
    }
    if (ch->kind == CHANGE_EDIT && (!ch->changes || ch->count == 0)) {
        say(err, errlen, "the change has no record changes");
        return FENNEC_EMALFORMED;
    }

    pthread_mutex_lock(&g_writer);
    res->index = atomic_load(&g_index);
    if ((rc = served_take(&served, &nserved, &none)) != 0) {
        say(err, errlen, "out of memory");
        goto unlock;
    }

    /* 1. validate: the whole next set, or a refusal. */
    if (ch->kind == CHANGE_LOAD)
        rc = validate_load(ch, served, nserved, &next, res, err, errlen);
    else if (ch->kind == CHANGE_RELOAD)
        rc = validate_reload(ch, canon, served, nserved, &next, res, err, errlen);
    else
        rc = validate_edit(ch, canon, served, nserved, &next, res, err, errlen);
    if (ch->kind == CHANGE_LOAD && none)
        next.changed = true; /* the first load publishes a set, even an empty one */
    if (rc == 0 && next.changed && !ch->validate_only) {
        rc = zone_set_new(next.zones, next.count, &next.set);
        if (rc != 0)
            say(err, errlen, "cannot build the zone set: %s", fennec_strerror(rc));
    }
    if (rc != 0 || !next.changed || ch->validate_only)
        goto unlock;

    /* 2. journal: the primary will append and commit the change here. */

    /* 3. apply: number it and publish; nothing can fail any more. */
    zone_set_publish(next.set);
    next.set = NULL;
    res->index = atomic_load(&g_index) + 1;
    atomic_store(&g_index, res->index);
    res->applied = true;

unlock:
    next_deinit(&next, res->applied);
    pthread_mutex_unlock(&g_writer);
    if (res->applied)
        log_applied(ch, canon, res);
    zones_free(served, nserved);
    return rc;
}

uint64_t change_index(void)
{
    return atomic_load(&g_index);
}

void change_shutdown(void)
{
    pthread_mutex_lock(&g_writer);
    zone_set_publish(NULL);
    pthread_mutex_unlock(&g_writer);
}
