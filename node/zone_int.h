/*
 * fennec — private parts of the zone store, shared by zone.c (versions, index, lookups, sets,
 * publication), zone_load.c (master files) and zone_update.c (copy-on-write changes,
 * reloads as a difference).
 */
#ifndef FENNEC_ZONE_INT_H
#define FENNEC_ZONE_INT_H

#include "fennec/zone.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fennec/wire.h"

#define ZONE_MAX_LABELS 128

/* ---- arena: the bytes of a loaded zone live in a few large chunks, freed at once ---- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    size_t cap;
    _Alignas(16) uint8_t data[];
} arena_chunk_t;

typedef struct arena {
    arena_chunk_t *head;
    size_t total;
    size_t chunk; /* size of the next chunk; 0: a load (64 KiB doubling to 8 MiB) */
    size_t limit; /* chunks stop doubling here; 0: 1 MiB */
} arena_t;

void *arena_alloc(arena_t *a, size_t n);
void arena_free(arena_t *a);

/* The arena of a load, shared by every version built from it; freed with the last one. */
typedef struct zone_store {
    _Atomic int refs;
    arena_t arena;
} zone_store_t;

/*
 * The name index: open addressing with linear probing over a power-of-two number of slots,
 * cut into pages of ZONE_PAGE_SLOTS. A slot holds a node pointer in its low 48 bits and the
 * top 16 bits of the name's hash above them (0: empty), so a probe reads the node only when
 * the tags agree. A new version copies the page table and only the pages it writes.
 */
#define ZONE_PAGE_SHIFT 9
#define ZONE_PAGE_SLOTS (1u << ZONE_PAGE_SHIFT)
#define ZONE_PAGE_MASK  (ZONE_PAGE_SLOTS - 1)
#define ZONE_SLOT_PTR   ((UINT64_C(1) << 48) - 1)

/* Objects a version uses that its successor does not: freed when the version goes. */
typedef struct zone_retired {
    void **items;
    size_t count;
    size_t cap;
} zone_retired_t;

struct zone {
    _Atomic int refs;
    char *name; /* text, no trailing dot */
    uint8_t apex_wire[WIRE_NAME_MAX];
    uint8_t apex_len;
    uint8_t apex_labels;
    uint32_t serial;
    size_t records;
    size_t node_count;
    const zone_node_t *apex;
    uint64_t **pages; /* page table, this version's own */
    uint32_t mask;    /* slots - 1 */
    uint32_t deleg_count;
    uint32_t deleg_at[ZONE_MAX_LABELS]; /* zone cuts per label count */
    uint32_t dname_count;
    uint32_t dname_at[ZONE_MAX_LABELS]; /* DNAME owners per label count */
    zone_store_t *store;
    /* The zone file this lineage last loaded: its path and a digest of its records. */
    char *path;
    uint64_t file_digest;
    /* Lineage: set once, by the writer, when the next version is committed. */
    zone_t *successor; /* holds a reference */
    zone_retired_t retired;
    zone_t *base;     /* the version this one was built from while that one lives, or NULL */
    size_t base_mark; /* the base's retired count before this version was committed */
    bool updating;    /* an update is open on this version */
};

static inline uint32_t zone_slots(const zone_t *z)
{
    return z->mask + 1;
}

static inline uint64_t zone_slot_get(const zone_t *z, uint32_t i)
{
    return z->pages[i >> ZONE_PAGE_SHIFT][i & ZONE_PAGE_MASK];
}

static inline const zone_node_t *zone_slot_node(uint64_t slot)
{
    return (const zone_node_t *)(uintptr_t)(slot & ZONE_SLOT_PTR);
}

static inline uint64_t zone_slot_make(const zone_node_t *n)
{
    return (uint64_t)(uintptr_t)n | (uint64_t)(n->hash >> 16) << 48;
}

uint32_t zone_name_hash(const uint8_t *name, size_t len);

/* A version with no content yet: name, apex and an empty index of at least SLOTS slots. */
zone_t *zone_version_new(const char *origin_text, const uint8_t *apex, size_t apex_len,
                         uint32_t slots);
void zone_destroy(zone_t *z);

/* Index writes on a version under construction. zone_index_put() places a node whose name
 * is absent (FENNEC_EEXISTS otherwise) or, with REPLACE, swaps the node stored for the same
 * name (FENNEC_ENOTFOUND otherwise); zone_index_remove() takes the name out (backward-shift
 * deletion). Each copies a page of BASE before its first write (BASE NULL: the pages are
 * the version's own) and retires the original in BASE. */
int zone_index_put(zone_t *z, zone_t *base, const zone_node_t *n, bool replace);
int zone_index_remove(zone_t *z, zone_t *base, const zone_node_t *n);
/* Rebuilds the index of Z with SLOTS slots (a power of two), retiring the old pages in BASE
 * (or freeing them when BASE is NULL). */
int zone_index_resize(zone_t *z, zone_t *base, uint32_t slots);
/* Whether the index should grow before it holds NODES nodes (load factor 0.7). */
bool zone_index_full(const zone_t *z, size_t nodes);

int zone_retire(zone_t *z, void *item);

/* Zone-rule checks shared by the loader and updates. */
bool zone_rdata_fits(uint16_t type, const uint8_t *rd, size_t len);

/* The names inside the rdata of the types RFC 4034 6.2 lists (NS, CNAME, SOA, MX, SRV,
 * DNAME, ...) are kept lower case, as Knot DNS and NSD keep and send them: lowercases them
 * in RD (LEN bytes, already checked by zone_rdata_fits) when WRITE, and says whether any
 * letter was upper case. */
bool zone_rdata_lower(uint16_t type, uint8_t *rd, size_t len, bool write);
const char *zone_type_text(uint16_t type);
bool zone_type_allowed(uint16_t type); /* may appear in a zone (not OPT, AXFR, ...) */
void zone_rrset_kinds(uint16_t type, uint8_t *compress, uint8_t *addl);

/* Counts (DELTA +1 or -1) what Z keeps per depth of node N: a zone cut (NS below the apex),
 * a DNAME. */
void zone_tally(zone_t *z, const zone_node_t *n, int delta);

/* 64-bit digest of the records of a zone file (order-independent input is sorted first). */
uint64_t zone_digest_add(uint64_t h, const void *data, size_t len);

/* One record on its way into a node. */
typedef struct zone_rec {
    const uint8_t *rdata;
    uint32_t ttl;
    uint16_t type;
    uint16_t rdlen;
} zone_rec_t;

/* Canonical order of rdata inside an RRset: bytes, then length. */
int zone_rdata_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/*
 * A node for NAME (LEN bytes, lower case) with the records RECS[0..N), sorted by type then
 * rdata (zone_rdata_cmp); duplicates are dropped (RFC 2181 5) and an RRset takes the
 * smallest TTL of its records (RFC 2181 5.2). One block: from ARENA, or from malloc with
 * ZONE_NODE_HEAP when ARENA is NULL. APEX sets ZONE_NODE_APEX, else NS sets
 * ZONE_NODE_DELEG. children and ZONE_NODE_HAS_WILDCARD are the caller's. On failure returns
 * NULL with *rc = -ENOMEM, or FENNEC_EZONE for an RRset too large.
 */
zone_node_t *zone_node_build(arena_t *arena, const uint8_t *name, size_t len, bool apex,
                             const zone_rec_t *recs, size_t n, int *rc);

/* The zone rule NODE breaks, as a message with one %s for its name, or NULL. */
const char *zone_node_rules(const zone_node_t *node);

/* Offset of the serial in SOA rdata (RDLEN bytes), or -1 when it is malformed. */
int zone_soa_serial_offset(const uint8_t *rd, size_t rdlen);

#endif
