/*
 * fennec — the journal: the node's durable, append-only log of replication entries, in LMDB
 * (liblmdb) in data_dir, as Knot DNS keeps its journal. Keys are entry indexes (gap-free,
 * from the first index kept to the last); values are the encoded entries
 * (proto/replication.proto, Entry), opaque here.
 *
 * Protocol: journal_open() checks the journal (readable, indexes gap-free) before anything
 * else may use it; journal_append() adds entries in one durable write transaction (one
 * fsync for the whole group: callers group concurrent changes into one call), and returns
 * only once they are on disk, or refuses all of them; journal_read() walks entries from an
 * index in order; journal_compact() drops entries that a snapshot covers. One writer thread
 * appends and compacts; readers may read from any thread at the same time (LMDB read
 * transactions see the last committed state). Every error leaves the journal as it was.
 */
#ifndef FENNEC_JOURNAL_H
#define FENNEC_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct journal journal_t;

/* One entry to append: its index and its encoded bytes (borrowed for the call). */
typedef struct journal_rec {
    uint64_t index;
    const uint8_t *data;
    size_t len;
} journal_rec_t;

typedef struct journal_info {
    uint64_t first; /* the first index kept, 0 when empty */
    uint64_t last;  /* the last index, 0 when empty */
    size_t entries;
    size_t bytes_used; /* pages the entries use, bytes (shrinks after a compaction) */
    size_t bytes_max;  /* the size limit */
} journal_info_t;

/*
 * Opens (creating DIR and the journal if needed) the journal in DIR, at most MAX_BYTES on
 * disk (0: 1 GiB). Errors, with a message in ERR: -errno (DIR cannot be made or opened),
 * FENNEC_EMALFORMED (not an LMDB journal, or damaged: a gap between indexes, a key that is
 * not an index, an entry that does not match its checksum, a page LMDB cannot walk; the walk
 * runs in a child process, so a damaged page never takes the caller down): the node then
 * needs re-seeding from the primary.
 */
int journal_open(const char *dir, size_t max_bytes, journal_t **out, char *err, size_t errlen);
void journal_close(journal_t *j); /* NULL: a no-op */

/*
 * RELAXED: a commit syncs the entries but not LMDB's meta page (MDB_NOMETASYNC): half the
 * fsyncs. A crash of the process loses nothing; a crash of the machine may undo the last
 * commit, never damage the journal. For a secondary, whose entries the primary keeps and
 * sends again; never for a primary, whose commits are acknowledged as durable. 0 or -errno.
 */
int journal_set_relaxed(journal_t *j, bool relaxed);

/*
 * Appends RECS[0..COUNT) in one durable transaction. The indexes must follow on from the
 * last one (or start anywhere in an empty journal) without a gap. Errors: FENNEC_EMALFORMED
 * (an index out of sequence, an empty entry), FENNEC_ESPACE (the entries would fill more than
 * 80% of MAX_BYTES, the rest being room for compaction: compact, or raise the limit),
 * -ENOSPC (the disk is full), -EIO and others (the disk); ERR says which. On any error nothing of
 * RECS is in the journal.
 */
int journal_append(journal_t *j, const journal_rec_t *recs, size_t count, char *err, size_t errlen);

/* CRC-32C (Castagnoli) of N bytes at P: what the journal stores before each entry. Pure. */
uint32_t journal_crc32c(const uint8_t *p, size_t n);

/*
 * Calls FN for every entry from FROM to the last, in index order, in one read transaction
 * (a consistent view). DATA is valid during the call only. Stops early when FN returns
 * non-zero and returns that value. FENNEC_ENOTFOUND when FROM is below the first index kept
 * (compacted away: a snapshot is needed) and FROM is not 0; FENNEC_EDAMAGED when an entry does
 * not match its checksum (FN has had the entries before it).
 */
int journal_read(journal_t *j, uint64_t from,
                 int (*fn)(uint64_t index, const uint8_t *data, size_t len, void *arg), void *arg);

/* Drops every entry below BELOW, in one transaction. */
int journal_compact(journal_t *j, uint64_t below, char *err, size_t errlen);

void journal_info_get(journal_t *j, journal_info_t *info);

#endif
