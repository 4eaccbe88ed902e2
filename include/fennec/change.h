/*
 * fennec — the one write path. Every change to the zones a node serves goes through
 * change_submit(), whatever its source: the start-up load, SIGHUP, a zone reload, a record
 * edit or a change batch from the API (later: an entry from the replication stream, the
 * journal replayed at start). This module alone holds the writer lock and alone publishes
 * zone sets (zone_set_publish()); nothing else builds or publishes them.
 *
 * One change, in the calling thread, serialized with every other change by the writer lock:
 *
 *   1. validate  the new version of each zone the change touches is built beside the served
 *                one (zone_edit(), zone_reload_file(), zone_load_file(), zone_load_text());
 *                a change that cannot apply as a whole is refused here and nothing served
 *                changes, neither records nor serial nor the published set;
 *   2. journal   (to come) the primary appends the change and commits it before it applies;
 *                a change that validated is never refused after this step;
 *   3. apply     the change takes the next index and the new zone set is published (RCU):
 *                a query that starts after change_submit() returned sees it.
 *
 * The index numbers applied changes: 1 for the first change this process applied, then one
 * more per applied change (replication will make it the journal index). A refused change,
 * a change that changes nothing (a reload of an unchanged file) and a validation alone take
 * no index.
 *
 * Threads: change_submit() may be called from any thread that is registered with
 * zone_reader_register() and is not inside zone_read_lock() (publication may wait for
 * readers, or hand the old set to the RCU reclaimer); not from a DNS worker, as loading a
 * zone takes time. Callers wait for each other: keep them off threads that must stay
 * responsive.
 */
#ifndef FENNEC_CHANGE_H
#define FENNEC_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fennec/cfg.h"
#include "fennec/zone.h"

typedef enum change_kind {
    /* The served zones become the zones of CFG: a zone served now with a file is reloaded
     * (an unchanged file keeps the served version, record edits included); a zone with
     * built-in text that is served is kept; a zone not served yet is loaded; a zone no longer
     * in CFG stops being served. Zones are independent: one that fails to load keeps its
     * served version, or stays unserved, and the others still change (res->failed counts
     * them). Start-up, SIGHUP, fennecd --check (with validate_only). */
    CHANGE_LOAD = 1,
    /* ZONE of CFG is read again from its file, or loaded if it is not served (a zone with
     * built-in text that is served is unchanged). All or nothing. API reload. */
    CHANGE_RELOAD = 2,
    /* COUNT record changes applied to the served ZONE in order, all or none, with one step
     * of the SOA serial. A record edit is a batch of one. */
    CHANGE_EDIT = 3,
    /* Node MEMBER_ID (1..63 of [A-Za-z0-9._-]) joins the cluster with its control endpoint
     * MEMBER_ADDRESS (host:port), or changes its address: FENNEC_EEXISTS when it is a member
     * with that address already. Primary only. */
    CHANGE_MEMBER_ADD = 4,
    /* Node MEMBER_ID leaves the cluster: FENNEC_ENOTFOUND when it is not a member. The
     * primary itself cannot be removed (FENNEC_EMALFORMED). Primary only. */
    CHANGE_MEMBER_REMOVE = 5,
} change_kind_t;

typedef struct change {
    change_kind_t kind;
    const char *zone;             /* RELOAD, EDIT: apex, any case, trailing dot allowed */
    const zone_change_t *changes; /* EDIT: COUNT changes (at least one), borrowed */
    size_t count;
    const cfg_t *cfg;           /* LOAD, RELOAD: the configured zones, borrowed; unused by EDIT */
    bool validate_only;         /* validate and stop: nothing is applied, no index is taken */
    const char *source;         /* who asked, for the log ("start", "SIGHUP", "api"); may be NULL */
    const char *member_id;      /* MEMBER_ADD, MEMBER_REMOVE */
    const char *member_address; /* MEMBER_ADD */
} change_t;

typedef struct change_result {
    uint64_t index;  /* the index the change took; when it applied nothing, the index of the
                        last change applied before it (0 when there was none) */
    bool applied;    /* a new version is served */
    bool unchanged;  /* RELOAD: the file holds what the served version was loaded from;
                        LOAD: no zone changed */
    uint32_t serial; /* RELOAD, EDIT: the zone's serial now served (or validated) */
    size_t added;    /* records added, over every zone the change touched */
    size_t removed;  /* records removed, a zone no longer configured counting all of its own */
    size_t zones;    /* LOAD: zones served after the change (or validated) */
    size_t failed;   /* LOAD: configured zones that failed to load (each one logged) */
    size_t at;       /* EDIT refused: position (0-based) of the change at fault: the changes
                        before it apply, with it the batch does not; SIZE_MAX when the
                        refusal is not about one change */
} change_result_t;

/*
 * Validates, applies and publishes CH (see above); CH and what it points to are borrowed for
 * the call. Fills *RES (always, on errors too). Returns:
 *   0                 done: RES says what changed; LOAD returns 0 even when zones failed to
 *                     load (RES->failed > 0, the first message in ERR);
 *   FENNEC_EMALFORMED CH is not a valid change (kind, missing zone, an EDIT without changes);
 *   FENNEC_ENOTFOUND  RELOAD: ZONE is not in CFG; EDIT: ZONE is not served, or a record to
 *                     delete is not there;
 *   FENNEC_EEXISTS    EDIT: a record to add is there already;
 *   FENNEC_EZONE      RELOAD: the file does not load ("FILE:LINE: what" in ERR); EDIT: the
 *                     result breaks a zone rule (CNAME beside other data, ...) or a change
 *                     does not fit the zone (owner outside it, rdata not of the type's form);
 *   -ENOMEM, -errno   (a file that cannot be read, as FENNEC_EZONE above for RELOAD).
 * On every error nothing changed. ERR receives a message for a person (ERRLEN bytes, may be
 * 0); for a refused EDIT it names the record and why, RES->at says which change it is.
 */
int change_submit(const change_t *ch, change_result_t *res, char *err, size_t errlen);

/* The index of the last change applied in this process (0 before the first). Any thread. */
uint64_t change_index(void);

/*
 * Stops serving: publishes no zone set and frees the served one. For the end of the process
 * (and of a test); takes no index and leaves the index as it is. Same thread rules as
 * change_submit().
 */
void change_shutdown(void);

#endif
