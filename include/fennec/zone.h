/*
 * fennec — in-memory zones.
 *
 * A zone_t is one immutable, reference-counted version of a zone. The first version comes
 * from a master file (libzscanner); each later one is built from the one before by a
 * copy-on-write update (zone_update_*, zone_edit(), zone_reload_file()) that shares every
 * name it does not touch, so a change costs in proportion to the names it changes and
 * their ancestors, not to the zone's size. A zone_set_t is an immutable collection of
 * zones; the current set is published with an RCU pointer swap and read by the DNS workers
 * without locks. Names inside the store are lower-case uncompressed wire format.
 *
 * Versions of one zone form a line: each version has at most one successor, which it keeps
 * alive; what a version uses and its successor does not (replaced names, index pages) is
 * freed with the version. So the newest version of a line is the only one to build on.
 */
#ifndef FENNEC_ZONE_H
#define FENNEC_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zone zone_t;
typedef struct zone_set zone_set_t;
typedef struct zone_node zone_node_t;

/* One RRset, pre-rendered: `count` records, each stored as u16 rdlength + rdata. */
typedef struct zone_rrset {
    uint16_t type;
    uint16_t count;
    uint32_t ttl;
    uint8_t compress; /* ZONE_COMPRESS_*: where the rdata holds names to compress on output */
    uint8_t addl;     /* ZONE_ADDL_*: where the rdata holds a name wanting additional A/AAAA */
    uint32_t len;     /* bytes in data */
    const uint8_t *data;
} zone_rrset_t;

enum {
    ZONE_COMPRESS_NONE = 0,
    ZONE_COMPRESS_NAME0 = 1,   /* one name at offset 0 (NS, CNAME, PTR, MB, MD, MF, MG, MR) */
    ZONE_COMPRESS_NAME2 = 2,   /* u16 then one name (MX) */
    ZONE_COMPRESS_TWONAME = 3, /* two names at offset 0 (SOA, MINFO) */
};

enum {
    ZONE_ADDL_NONE = 0,
    ZONE_ADDL_NAME0 = 1, /* NS */
    ZONE_ADDL_NAME2 = 2, /* MX */
    ZONE_ADDL_NAME6 = 3, /* SRV */
    ZONE_ADDL_SVCB = 4,  /* SVCB, HTTPS: TargetName after the priority (RFC 9460 4.1) */
};

enum {
    ZONE_NODE_APEX = 1 << 0,
    ZONE_NODE_DELEG = 1 << 1,        /* has NS and is not the apex: a zone cut */
    ZONE_NODE_WILDCARD = 1 << 2,     /* its first label is "*" */
    ZONE_NODE_HAS_WILDCARD = 1 << 3, /* it has the child "*" */
    ZONE_NODE_HEAP = 1 << 4,         /* one malloc block (from an update), not the arena */
    ZONE_NODE_DNAME = 1 << 5,        /* has a DNAME RRset (RFC 6672) */
};

/* A name of the zone: an owner, or an empty non-terminal (no RRsets, children > 0). Nodes
 * hold no pointers to other nodes, so a version can replace one without touching the rest;
 * zone cuts, wildcard children and additional-section targets are found by name. */
struct zone_node {
    uint32_t hash;
    uint8_t name_len;
    uint8_t labels;             /* label count, root excluded */
    uint16_t flags;             /* ZONE_NODE_* */
    uint16_t rrset_count;       /* 0 for an empty non-terminal */
    uint32_t children;          /* nodes one label below this one */
    const zone_rrset_t *rrsets; /* sorted by type */
    const uint8_t *name;        /* lower-case wire name */
};

/* The largest TTL (RFC 2181 section 8): a larger one in a zone file or a record edit is
 * capped to it with a warning; the TTL of a record without one in a file without $TTL when
 * no TTL was written before it (as NSD and Knot DNS do). */
#define ZONE_TTL_MAX     2147483647u
#define ZONE_TTL_DEFAULT 3600u

/*
 * Loads a zone from a master file. ORIGIN is the apex in text form. On error returns
 * FENNEC_EZONE (or -errno) with "FILE:LINE: what is wrong" in err.
 *
 * The file, as BIND and NSD read one: CRLF and LF line ends, mixed too; $INCLUDE at any
 * depth up to 15 one inside another, a relative name taken from the including file's
 * folder; a record without a TTL takes the $TTL in force, or without one the TTL last
 * written before it (RFC 1035 5.1) or ZONE_TTL_DEFAULT, with one warning per load naming the
 * first such record; a TTL (or SOA MINIMUM) above ZONE_TTL_MAX is capped with a warning
 * naming FILE:LINE. Warnings go to zone_warn_hook()'s function, or the log.
 */
int zone_load_file(const char *origin, const char *path, zone_t **out, char *err, size_t errlen);

/* Loads a zone from master-file text in memory; NAME is used in messages. */
int zone_load_text(const char *origin, const char *text, size_t len, const char *name, zone_t **out,
                   char *err, size_t errlen);

/* Where the warnings of loads go ("FILE:LINE: what", one call each, on the loading thread):
 * FN, or the log at warn level when FN is NULL (the default). Process-wide; for tests and
 * tools, set while no load runs. */
void zone_warn_hook(void (*fn)(const char *msg, void *arg), void *arg);

/* One record change. */
typedef struct zone_change {
    bool add;             /* true: add the record; false: delete it */
    const uint8_t *owner; /* wire name, any case; must be inside the zone */
    uint16_t type;        /* not SOA unless the update allows it: the serial is kept here */
    uint32_t ttl;         /* for an add: becomes the TTL of the whole RRset (RFC 2181 5.2) */
    const uint8_t *rdata; /* wire rdata, uncompressed */
    uint16_t rdlen;
} zone_change_t;

/*
 * Copy-on-write updates. The protocol:
 *
 *   zone_update_begin(base)      base: the newest version of its line, not being updated
 *   zone_update_apply(up, ch)    any number of times; checks each change as it comes
 *   zone_update_check(up, ...)   optional: checks the zone rules at every touched name and
 *                                says which name breaks one; no apply after it
 *   zone_update_commit(up, &z)   checks (if not yet done), moves the serial on, builds the
 *                                next version; or
 *   zone_update_abort(up)        drops everything; BASE is as before.
 *   zone_discard(z)              a committed version that will not be published after all:
 *                                BASE forgets it and takes an update again.
 *
 * Both commit and abort free UP, also when commit fails (the update is then aborted). The
 * caller keeps its reference to BASE for the whole update and must not read or change the
 * update from two threads. BASE keeps answering exactly as before, concurrently, to any
 * number of readers; after a commit it holds the new version alive (see above).
 * Errors: FENNEC_ENOTFOUND (deleting a record that is not there), FENNEC_EEXISTS (adding
 * one that is), FENNEC_EZONE (out of the zone, bad rdata, SOA edit, CNAME beside other
 * data, no SOA/NS at the apex, ...), -EBUSY (BASE already has a successor or an open
 * update), -ENOMEM; err says which record and why.
 */
typedef struct zone_update zone_update_t;

enum {
    ZONE_UPDATE_SOA = 1 << 0,         /* SOA may be changed; the serial is then the caller's */
    ZONE_UPDATE_KEEP_SERIAL = 1 << 1, /* the serial never moves by itself (replaying a diff) */
};

int zone_update_begin(zone_t *base, unsigned flags, zone_update_t **out, char *err, size_t errlen);
int zone_update_apply(zone_update_t *up, const zone_change_t *ch, char *err, size_t errlen);
/* BROKEN (WIRE_NAME_MAX bytes, or NULL) receives the lower-case wire name that breaks a zone
 * rule when the result is FENNEC_EZONE. */
int zone_update_check(zone_update_t *up, uint8_t *broken, char *err, size_t errlen);
int zone_update_commit(zone_update_t *up, zone_t **out, char *err, size_t errlen);
void zone_update_abort(zone_update_t *up);

/* Drops the caller's reference to Z. When Z is the successor of a version and nobody else
 * holds Z (it was never published), that version forgets it and can be updated again; Z's
 * own nodes and pages are freed. Otherwise the same as zone_unref(). Writer thread only. */
void zone_discard(zone_t *z);

/*
 * One update with CHANGES applied in order, all or none, and the SOA serial moved on by one
 * (RFC 1982). On success *out is the next version of OLD (one reference, the caller's).
 * Errors as for the update protocol above.
 */
int zone_edit(zone_t *old, const zone_change_t *changes, size_t count, zone_t **out, char *err,
              size_t errlen);

/* What a reload found: unchanged, or how many records the new version added and removed. */
typedef struct zone_reload_stats {
    bool unchanged; /* the file holds what it held when this zone last loaded it */
    size_t added;
    size_t removed;
    uint32_t serial; /* serial of the new version (of SERVED when unchanged) */
} zone_reload_stats_t;

/*
 * Re-reads the zone file PATH of SERVED and returns in *out the next version: SERVED with
 * the difference between the file and SERVED applied, published by the caller as one new
 * version. Its serial is the file's when that is newer than SERVED's (RFC 1982), else
 * SERVED's plus one. When the file's records are the ones it had when this zone last loaded
 * it, *out is NULL and st->unchanged is set: record edits made since are kept. SERVED is not
 * changed. On error returns FENNEC_EZONE (or -errno) with "FILE:LINE: what" in err.
 */
int zone_reload_file(zone_t *served, const char *path, zone_t **out, zone_reload_stats_t *st,
                     char *err, size_t errlen);

/* zone_reload_file() with FLAGS: ZONE_RELOAD_FORCE serves the file even when its records are
 * the ones it had at the last load: *out is then always a new version (the file's records,
 * record edits made since dropped, the serial moved on as above), never NULL on success. */
enum { ZONE_RELOAD_FORCE = 1 << 0 };
int zone_reload(zone_t *served, const char *path, unsigned flags, zone_t **out,
                zone_reload_stats_t *st, char *err, size_t errlen);

/*
 * Differences and contents, for the journal. FN receives one record at a time as a change
 * (borrowed for the call; add true: the record is in the newer zone only); a non-zero return
 * stops the walk and is returned.
 *
 * zone_diff(): what FROM has and TO lacks (removed), then what TO has and FROM lacks (added),
 * SOA included; an RRset whose TTL differs is removed and added whole. Applied to FROM with
 * ZONE_UPDATE_SOA | ZONE_UPDATE_KEEP_SERIAL (deletes, then adds) it gives TO's records. Costs
 * in proportion to the index pages that differ when TO descends from FROM (or the reverse),
 * else to both zones' sizes.
 * zone_records(): every record of ZONE (add true), owners by length then bytes, then by type
 * and rdata: the order zone_from_records() builds from without sorting. -ENOMEM.
 */
typedef int (*zone_diff_fn)(const zone_change_t *ch, void *arg);
int zone_diff(const zone_t *from, const zone_t *to, zone_diff_fn fn, void *arg);
int zone_records(const zone_t *zone, zone_diff_fn fn, void *arg);

/*
 * A zone ORIGIN (text) made of RECS[0..COUNT) (owner, type, ttl, rdata; ADD ignored), checked
 * as a zone file's records are (inside the zone, class IN types, rdata form, zone rules,
 * SOA and NS at the apex); NAME is used in messages ("NAME: record I: what"). Same errors as
 * zone_load_text().
 */
int zone_from_records(const char *origin, const zone_change_t *recs, size_t count, const char *name,
                      zone_t **out, char *err, size_t errlen);

/* The zone file this version's line last loaded (PATH, NULL for none) and the digest of its
 * records: what a reload compares the file with. Set on a version nobody else holds yet
 * (one restored from the journal). */
const char *zone_source(const zone_t *zone, uint64_t *digest);
/* Whether V was built from BASE by an update (is its successor). */
bool zone_is_successor(const zone_t *v, const zone_t *base);
int zone_source_set(zone_t *zone, const char *path, uint64_t digest);

/* Reference counting: a new zone has one reference. zone_unref(NULL) is a no-op. */
void zone_ref(zone_t *zone);
void zone_unref(zone_t *zone);

const char *zone_name(const zone_t *zone);         /* text, without trailing dot */
const uint8_t *zone_apex_wire(const zone_t *zone); /* lower-case wire */
uint32_t zone_serial(const zone_t *zone);
size_t zone_record_count(const zone_t *zone);
const zone_node_t *zone_apex(const zone_t *zone);

/* Exact lookup of a lower-case wire name; NULL when absent. */
const zone_node_t *zone_node_find(const zone_t *zone, const uint8_t *lname, size_t len);

/*
 * Lookahead for a batch of lookups: zone_node_prefetch() starts loading the hash bucket of
 * LNAME into the cache and returns the name's hash; zone_node_prefetch_next(), called once
 * the bucket had time to arrive (a few lookups later), starts loading the first node of its
 * chain. Both only warm the cache; the zone must stay alive in between (one read-side
 * section).
 */
uint32_t zone_node_prefetch(const zone_t *zone, const uint8_t *lname, size_t len);
void zone_node_prefetch_next(const zone_t *zone, uint32_t hash);

/* The RRset of TYPE at NODE, or NULL. */
const zone_rrset_t *zone_node_rrset(const zone_node_t *node, uint16_t type);

/* The topmost zone cut at or above NODE (a name below the apex with NS), or NULL: names at
 * and below it are not authoritative here. Costs one lookup per ancestor at a depth where
 * the zone has a cut. */
const zone_node_t *zone_node_cut(const zone_t *zone, const zone_node_t *node);

/* The DNAME node that redirects the lower-case wire name LNAME (LEN bytes, in ZONE): the
 * topmost ancestor of LNAME strictly above it (the apex included) that owns a DNAME, unless
 * a zone cut at or above that ancestor makes it not authoritative here; NULL when there is
 * none. Costs nothing in a zone without DNAME, else one lookup per depth that has one. */
const zone_node_t *zone_node_dname_above(const zone_t *zone, const uint8_t *lname, size_t len);

/* The child "*" of NODE (RFC 4592 source of synthesis), or NULL. */
const zone_node_t *zone_node_wildcard(const zone_t *zone, const zone_node_t *node);

/* The in-zone node with A or AAAA records of the name that an NS, MX or SRV record (RS's
 * kind, rdata RD of RDLEN bytes) asks additional records for, or NULL. An SVCB or HTTPS
 * record names its target the same way (a TargetName of "." is the owner's: see
 * zone_addl_name); its target is returned when it has A, AAAA or an RRset of RS's type. */
const zone_node_t *zone_addl_target(const zone_t *zone, const zone_rrset_t *rs, const uint8_t *rd,
                                    uint16_t rdlen);

/* Calls FN for every node of ZONE, in no particular order; stops when FN returns non-zero
 * and returns that value. */
int zone_node_walk(const zone_t *zone, int (*fn)(const zone_node_t *node, void *arg), void *arg);

/* An iterator over the nodes of ZONE in the order of zone_node_walk(), to walk a big zone a
 * piece at a time (a zone transfer): start with *CURSOR = 0; each call stores the next node
 * in *OUT and returns true, or returns false at the end. The caller holds a reference to
 * ZONE meanwhile; any thread. */
bool zone_node_next(const zone_t *zone, uint32_t *cursor, const zone_node_t **out);

/* A set of the given zones (takes one reference to each). */
int zone_set_new(zone_t *const *zones, size_t count, zone_set_t **out);
void zone_set_free(zone_set_t *set);
size_t zone_set_count(const zone_set_t *set);
const zone_t *zone_set_at(const zone_set_t *set, size_t i);

/* The zone with the longest apex that is a suffix of the lower-case wire name, or NULL. */
const zone_t *zone_set_find(const zone_set_t *set, const uint8_t *lname, size_t len);

/* RCU publication. A worker thread calls zone_reader_register() once before reading and
 * zone_reader_unregister() before it ends. Readers bracket use of zone_set_current() with
 * zone_read_lock()/zone_read_unlock(). zone_set_publish() takes ownership of SET and hands
 * the previous set to be freed once no reader can see it (call_rcu): it does not wait for a
 * grace period, so the writer's change rate does not depend on one. zone_set_publish(NULL)
 * is for shutdown: it waits until every set handed over so far is freed. One publisher at
 * a time (the caller serializes); any thread. */
void zone_reader_register(void);
void zone_reader_unregister(void);
void zone_read_lock(void);
void zone_read_unlock(void);
const zone_set_t *zone_set_current(void);
void zone_set_publish(zone_set_t *set);

/* The built-in example zone used by the default configuration. */
extern const char zone_builtin_example[];

#endif
