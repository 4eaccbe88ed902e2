/*
 * fennec — in-memory zones.
 *
 * A zone_t is an immutable, reference-counted snapshot of one zone, built off the hot path
 * from a master file (libzscanner). A zone_set_t is an immutable collection of zones; the
 * current set is published with an RCU pointer swap and read by the DNS workers without
 * locks. Names inside the store are lower-case uncompressed wire format.
 */
#ifndef FENNEC_ZONE_H
#define FENNEC_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fennec/cfg.h"

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
    uint8_t *data;
    const zone_node_t **addl_nodes; /* per record: in-zone node for additional records, or NULL */
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
};

enum {
    ZONE_NODE_APEX = 1 << 0,
    ZONE_NODE_DELEG = 1 << 1,    /* has NS and is not the apex: a zone cut */
    ZONE_NODE_WILDCARD = 1 << 2, /* its first label is "*" */
};

struct zone_node {
    const uint8_t *name; /* lower-case wire name */
    uint8_t name_len;
    uint8_t labels;              /* label count, root excluded */
    uint16_t flags;              /* ZONE_NODE_* */
    uint16_t rrset_count;        /* 0 for an empty non-terminal */
    const zone_rrset_t *rrsets;  /* sorted by type */
    const zone_node_t *parent;   /* NULL for the apex */
    const zone_node_t *cut;      /* nearest delegation at or above this node, or NULL */
    const zone_node_t *wildcard; /* the child "*" of this node, or NULL */
    zone_node_t *hnext;          /* hash chain */
    uint32_t hash;
};

/* Loads a zone from a master file. ORIGIN is the apex in text form. On error returns
 * FENNEC_EZONE (or -errno) with "FILE:LINE: what is wrong" in err. */
int zone_load_file(const char *origin, const char *path, zone_t **out, char *err, size_t errlen);

/* Loads a zone from master-file text in memory; NAME is used in messages. */
int zone_load_text(const char *origin, const char *text, size_t len, const char *name, zone_t **out,
                   char *err, size_t errlen);

/* One record change for zone_edit(). */
typedef struct zone_change {
    bool add;             /* true: add the record; false: delete it */
    const uint8_t *owner; /* wire name, any case; must be inside the zone */
    uint16_t type;        /* not SOA: the serial is maintained by zone_edit() */
    uint32_t ttl;         /* for an add */
    const uint8_t *rdata; /* wire rdata, uncompressed */
    uint16_t rdlen;
} zone_change_t;

/*
 * A new zone: OLD with CHANGES applied in order and the SOA serial incremented by one
 * (RFC 1982 arithmetic). Deleting a record that is not there gives FENNEC_ENOTFOUND, adding
 * one that is there FENNEC_EEXISTS; a result that breaks a zone rule (CNAME beside other
 * data, ...) FENNEC_EZONE; err says which. OLD is not changed. The new zone keeps OLD's file
 * identity, so a reload skips it until the file itself changes.
 */
int zone_edit(const zone_t *old, const zone_change_t *changes, size_t count, zone_t **out,
              char *err, size_t errlen);

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
int zone_reload_file(const zone_t *served, const char *path, zone_t **out, zone_reload_stats_t *st,
                     char *err, size_t errlen);

/* Whether ZONE was loaded from PATH and the file still has the same size and mtime. */
bool zone_file_unchanged(const zone_t *zone, const char *path);

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

/*
 * Builds a zone set from the zones in CFG. A zone whose file is unchanged since OLD was
 * built (same path, size and mtime) is shared with OLD; a zone that fails to load keeps its
 * version from OLD if there is one and is left out otherwise. Errors are logged.
 * *failed receives the number of zones that failed (may be NULL).
 */
int zone_set_build(const cfg_t *cfg, const zone_set_t *old, zone_set_t **out, size_t *failed);

/* A set of the given zones (takes one reference to each). */
int zone_set_new(zone_t *const *zones, size_t count, zone_set_t **out);
void zone_set_free(zone_set_t *set);
size_t zone_set_count(const zone_set_t *set);
const zone_t *zone_set_at(const zone_set_t *set, size_t i);

/* The zone with the longest apex that is a suffix of the lower-case wire name, or NULL. */
const zone_t *zone_set_find(const zone_set_t *set, const uint8_t *lname, size_t len);

/* RCU publication. A worker thread calls zone_reader_register() once before reading and
 * zone_reader_unregister() before it ends. Readers bracket use of zone_set_current() with
 * zone_read_lock()/zone_read_unlock(). zone_set_publish() takes ownership of SET, waits for
 * readers of the previous set and frees it. */
void zone_reader_register(void);
void zone_reader_unregister(void);
void zone_read_lock(void);
void zone_read_unlock(void);
const zone_set_t *zone_set_current(void);
void zone_set_publish(zone_set_t *set);

/* The built-in example zone used by the default configuration. */
extern const char zone_builtin_example[];

#endif
