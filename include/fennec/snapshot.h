/*
 * fennec — snapshots: everything a node serves at one journal index (zones, members), so
 * that the journal can drop the entries before it and a node far behind can be brought up
 * to date in one transfer.
 *
 * On disk and on the wire a snapshot is the same sequence of frames (frame.h), each a
 * SnapshotChunk: seq 0 is a header (index, the commit time of that index, the members, the
 * zone count); then each zone in one or more chunks (zone_first on its first one, with its
 * serial and file source), at most about SNAPSHOT_CHUNK_BYTES of records each; the last
 * chunk has `last` set and no records. The file DIR/snapshot is replaced atomically
 * (written beside, fsync, rename, fsync of DIR), so a crash leaves the old one or the new
 * one, never a part.
 */
#ifndef FENNEC_SNAPSHOT_H
#define FENNEC_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fennec/entry.h"
#include "fennec/frame.h"
#include "fennec/repl.h"
#include "fennec/zone.h"

#define SNAPSHOT_CHUNK_BYTES (1u << 20)
#define SNAPSHOT_FILE        "snapshot"

/* What a snapshot holds. zones and health: one reference each; members, overrides: owned. */
typedef struct snapshot_data {
    uint64_t index;
    uint64_t commit_ns;
    zone_t **zones;
    size_t zone_count;
    repl_member_t *members;
    size_t member_count;
    health_config_t *health; /* NULL: no health section */
    entry_override_t *overrides;
    size_t override_count;
} snapshot_data_t;

/* Drops the references and frees the arrays; D is empty after. */
void snapshot_data_free(snapshot_data_t *d);

/*
 * Writes D as DIR/snapshot, replacing the one there atomically. Errors (ERR says which):
 * -errno from the file system (-ENOSPC: the disk is full; the old snapshot stays), -ENOMEM.
 */
int snapshot_write(const char *dir, const snapshot_data_t *d, char *err, size_t errlen);

/*
 * Reads DIR/snapshot into *OUT. FENNEC_ENOTFOUND when there is none; FENNEC_EDAMAGED when it
 * does not read as a whole snapshot (ERR says where); -errno, -ENOMEM.
 */
int snapshot_read(const char *dir, snapshot_data_t *out, char *err, size_t errlen);

/* The index of DIR/snapshot from its header alone: 0 when there is none, or on an error. */
uint64_t snapshot_index(const char *dir);

/* ---- building one from chunks as they come (a stream, a file) ---- */

typedef struct snapshot_builder snapshot_builder_t;

int snapshot_builder_new(snapshot_builder_t **out);

/*
 * Takes the next chunk C (borrowed for the call). Returns 1 when C was the last one (call
 * snapshot_builder_finish()), 0 when more must come, FENNEC_EDAMAGED when C does not follow
 * (a gap in seq, another index, records before a zone, a zone that does not build: ERR says
 * which), -ENOMEM.
 */
int snapshot_builder_add(snapshot_builder_t *b, const Fennec__Replication__SnapshotChunk *c,
                         char *err, size_t errlen);

/* The same for the frame F of a chunk, which the builder takes over (and frees): its records
 * are used where they are, without a copy (a snapshot read from a file). A frame that is not
 * a snapshot chunk is FENNEC_EDAMAGED. */
int snapshot_builder_add_frame(snapshot_builder_t *b, frame_t *f, char *err, size_t errlen);

/* What the chunks made (after the last one), moved into *OUT. FENNEC_EDAMAGED when the
 * chunks were not a whole snapshot. */
int snapshot_builder_finish(snapshot_builder_t *b, snapshot_data_t *out, char *err, size_t errlen);
void snapshot_builder_free(snapshot_builder_t *b);

/* ---- reading the file frame by frame (a primary sending it) ---- */

typedef struct snapshot_reader snapshot_reader_t;

/* Opens DIR/snapshot. FENNEC_ENOTFOUND when there is none, -errno. */
int snapshot_reader_open(const char *dir, snapshot_reader_t **out);

/* The next frame, header included, in a new buffer *OUT (free()) of *LEN bytes; *OUT NULL
 * at the end. FENNEC_EDAMAGED for a length over FRAME_MAX_DEFAULT or a file cut short. */
int snapshot_reader_next(snapshot_reader_t *r, uint8_t **out, size_t *len);
void snapshot_reader_close(snapshot_reader_t *r);

/* ---- writing a received one frame by frame (a secondary) ---- */

typedef struct snapshot_file snapshot_file_t;

/* Starts DIR/snapshot.new. -errno. */
int snapshot_file_begin(const char *dir, snapshot_file_t **out);
/* Appends the frame of chunk C. -errno (-ENOSPC), -ENOMEM. */
int snapshot_file_add(snapshot_file_t *f, const Fennec__Replication__SnapshotChunk *c);
/* Makes it DIR/snapshot (fsync, rename, fsync of DIR), or drops it (COMMIT false). */
int snapshot_file_end(snapshot_file_t *f, bool commit);

#endif
