/*
 * fennec — the one write path. Every change to what a node serves goes through this module,
 * whatever its source: the start-up load, SIGHUP, a zone reload, a record edit or a change
 * batch from the API, a membership change, an entry from the replication stream, the journal
 * replayed at start. It alone holds the writer lock, the journal and the publication of zone
 * sets (zone_set_publish()).
 *
 * On a primary (change_submit()):
 *   1. validate  the next version of each zone the change touches is built beside the newest
 *                accepted one (zone_edit(), zone_reload_file(), zone_load_file(), ...); a
 *                change that cannot apply as a whole is refused and nothing changes;
 *   2. journal   the change becomes entries (entry.h: a zone diff, a whole zone, a removal,
 *                the member list) with the next indexes; a diff is applied again from its
 *                encoded bytes by entry_zone_apply(), the function secondaries and the replay
 *                use, and that version is the one served; the entries go to the committer
 *                thread, which appends every change waiting at that moment in one durable
 *                journal transaction (group commit);
 *   3. apply     once committed, the newest zone set is published (RCU) and the waiting
 *                callers return: a query that starts after change_submit() returned sees it.
 * A change validated after another one builds on it even before that one is committed; when
 * a journal commit fails, that change and every one built on it are refused (the error names
 * the journal) and the next change starts from what is served.
 *
 * On a secondary (change_apply_entries()): entries from the stream are checked (gap-free,
 * in order), applied with entry_zone_apply(), journaled as they came and published, the same
 * way. Without change_open() (tests, --check) there is no journal: a change is published as
 * soon as it is validated.
 *
 * Threads: every function may be called from any thread that is registered with
 * zone_reader_register() and is not inside zone_read_lock(); not from a DNS worker, as
 * loading a zone takes time. Callers wait for each other.
 */
#ifndef FENNEC_CHANGE_H
#define FENNEC_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fennec/cfg.h"
#include "fennec/health.h"
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
     * built-in text that is served is unchanged); FORCE serves the file even when its records
     * did not change. All or nothing. API reload. */
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
    /* The override of health check CHECK becomes OVERRIDE_STATE (HEALTH_OVERRIDE_NONE
     * clears it): FENNEC_ENOTFOUND for a check the health section does not have. Primary
     * only; replicated to every node. */
    CHANGE_HEALTH_OVERRIDE = 6,
} change_kind_t;

typedef struct change {
    change_kind_t kind;
    const char *zone;             /* RELOAD, EDIT: apex, any case, trailing dot allowed */
    const zone_change_t *changes; /* EDIT: COUNT changes (at least one), borrowed */
    size_t count;
    const cfg_t *cfg;   /* LOAD, RELOAD: the configured zones, borrowed; unused by EDIT */
    bool validate_only; /* validate and stop: nothing is applied, no index is taken */
    bool force; /* RELOAD: serve the file even when its records are the ones the served version
                   was loaded from (zone_reload() with ZONE_RELOAD_FORCE): always a new
                   version, record edits made since dropped */
    const char *source;         /* who asked, for the log ("start", "SIGHUP", "api"); may be NULL */
    const char *member_id;      /* MEMBER_ADD, MEMBER_REMOVE */
    const char *member_address; /* MEMBER_ADD */
    const char *check;          /* HEALTH_OVERRIDE */
    health_override_t override_state; /* HEALTH_OVERRIDE */
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

/* The index of the last entry applied (journaled and published) on this node: 0 before the
 * first. Without a journal, the count of changes applied in this process. Any thread. */
uint64_t change_index(void);

/* ---- the journal ------------------------------------------------------------------------- */

typedef struct change_config {
    const char *data_dir;     /* the journal and the snapshot live here (created if needed) */
    const char *node_id;      /* this node; a primary cannot remove itself */
    bool primary;             /* a secondary refuses change_submit() */
    size_t journal_max_bytes; /* 0: 1 GiB */
    uint64_t snapshot_every;  /* entries between snapshots; 0: 10000 */
    uint64_t journal_keep;    /* entries kept before the newest snapshot; 0: 10000 */
    bool health;              /* health entries configure the prober (health_start() ran) */
    /* The records rule, beside the entries rule: a snapshot is also taken once the entries
     * after the last one changed at least max(snapshot_records, 25% of the records served)
     * records (a diff counts its records removed + added, a whole zone all of its records, a
     * zone removed or a member list none), but not sooner than snapshot_records_ms after the
     * last snapshot began (it is then taken when that time is up, more writes or not).
     * Replaying a journal costs about one step per record, whatever the number of entries.
     * 0: 20000 records, 60000 ms; fennecd keeps the defaults (tests make them small). */
    uint64_t snapshot_records;
    uint32_t snapshot_records_ms;
} change_config_t;

/*
 * Opens the journal in CC->data_dir and brings the node back to where it was: the snapshot
 * (if any) is loaded, the journal's entries after it are applied in order through the same
 * apply function as a secondary's, the result is published, and the committer and snapshot
 * threads start (the records the replayed entries changed count towards the records rule, so
 * a long replay is followed by a snapshot). *INDEX receives the index reached (0: a new
 * data_dir). Errors, with what to do in ERR: FENNEC_EDAMAGED (the journal or the snapshot is
 * damaged, or they do not fit together: start the node with --reseed), -errno (data_dir
 * cannot be used), -ENOMEM.
 */
int change_open(const change_config_t *cc, uint64_t *index, char *err, size_t errlen);

/* Stops the threads and closes the journal (after change_shutdown() at the end of a run). */
void change_close(void);

/*
 * A secondary's entries from the stream: DATA[i] (LENS[i] bytes) are encoded entries in
 * index order. Entries at or below change_index() are skipped (a resend); the others must
 * follow on without a gap. They are applied, journaled in one transaction and published;
 * returns once they are durable and served. Errors (ERR says which entry and why):
 * FENNEC_EMALFORMED (an entry that does not decode, a gap), FENNEC_EZONE (an entry that does
 * not apply: this node's data differs from the primary's and it needs a snapshot),
 * FENNEC_ESPACE and -errno (the journal could not take them: nothing of them is served).
 * The entries before the one at fault are applied.
 */
int change_apply_entries(const uint8_t *const *data, const size_t *lens, size_t count, char *err,
                         size_t errlen);

/*
 * A secondary installs a snapshot it received: D (taken over; empty after) becomes what the
 * node serves, at index D->index; the journal is emptied (its entries are older). The caller
 * has written the snapshot file already (snapshot_file_end()). Returns 0, or -errno from the
 * journal (nothing changed then).
 */
struct snapshot_data;
int change_install_snapshot(struct snapshot_data *d, char *err, size_t errlen);

/* Called by the committer thread after each group commit with the last index committed. Keep
 * it short (it delays the next commit): a uv_async_send(). One hook; NULL clears it. */
void change_on_commit(void (*fn)(uint64_t index, void *arg), void *arg);

/* The open journal, for reading entries (journal_read()), or NULL. */
struct journal;
struct journal *change_journal(void);

/* data_dir of the open journal (its snapshot is there), or NULL. */
const char *change_data_dir(void);

/* Writes a snapshot of what is served now and compacts the journal, in the calling thread
 * (the snapshot thread does the same when the entries rule or the records rule of
 * change_config_t says so). For tests and tools. */
int change_snapshot_now(char *err, size_t errlen);

/* Journal metrics: fsync (commit) durations, a histogram for fennec_journal_fsync_seconds. */
#define CHANGE_FSYNC_BUCKETS 12
typedef struct change_journal_stats {
    double bucket_le[CHANGE_FSYNC_BUCKETS]; /* upper bounds, seconds */
    uint64_t bucket[CHANGE_FSYNC_BUCKETS];  /* cumulative counts */
    uint64_t count;
    double sum; /* seconds */
    uint64_t groups, entries, failures, snapshots;
    uint64_t first_index, last_index, snapshot_index;
    size_t bytes_used, bytes_max;
} change_journal_stats_t;
void change_journal_stats(change_journal_stats_t *out);

/*
 * Stops serving: publishes no zone set and frees the served one. For the end of the process
 * (and of a test); takes no index and leaves the index as it is. Same thread rules as
 * change_submit().
 */
void change_shutdown(void);

#endif
