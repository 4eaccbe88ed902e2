/*
 * fennec — the replication stream (docs/replication.md): a primary serves its journal to the
 * registered secondaries over TCP; a secondary follows its primary. One thread with its own
 * uv loop per node; the DNS workers never see it.
 *
 * Handshake: each side sends a hello with a fresh 32-byte nonce; each proves it holds the
 * cluster key with a proof, HMAC-SHA256(key, role || the other side's nonce || its own nonce ||
 * its node id), role "fennec-primary-v1" or "fennec-secondary-v1". Nothing but hello, proof
 * and error frames goes either way before both proofs are checked, and frames are limited to
 * STREAM_HANDSHAKE_MAX bytes until then. The primary serves member ids only (membership
 * entries); an unknown id, a wrong key, a bad frame: refused, logged with what to do, closed.
 *
 * Then the primary sends what the secondary lacks, from the index after the one its hello
 * names: the snapshot first when the journal no longer has those entries, then entries, then
 * heartbeats (every STREAM_HEARTBEAT_MS) with its last index and clock. At most
 * STREAM_HIGH_WATER bytes are in flight per secondary: a slow one is read from the journal
 * as it drains, never buffered. A secondary's thread only reads, decodes, queues and answers:
 * each batch of entries (change_apply_entries()) and each snapshot chunk is applied in order,
 * one at a time, on the uv thread pool, and acked with the node's index when done; heartbeats
 * are acked meanwhile, so a zone that takes seconds to apply never reads as silence. Reading
 * stops while more than 64 MiB received wait to be applied. A secondary reconnects with
 * jittered exponential backoff (once the work of the closed connection is done) and keeps
 * serving while the primary is away. Either side closes a stream silent for STREAM_DEAD_MS.
 */
#ifndef FENNEC_STREAM_H
#define FENNEC_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "fennec/cfg.h"

#define STREAM_VERSION       1
#define STREAM_HANDSHAKE_MAX 4096
#define STREAM_ENTRY_MAX     (256u << 20) /* a whole zone fits in one entry */
#define STREAM_HIGH_WATER    (4u << 20)
#define STREAM_HEARTBEAT_MS  250
#define STREAM_DEAD_MS       5000
#define STREAM_BACKOFF_MIN   50
#define STREAM_BACKOFF_MAX   5000

typedef struct stream stream_t;

/*
 * Starts the stream of CFG's node: a primary listens on cfg->replication (when configured),
 * a secondary connects to cfg->primary. KEY (KEYLEN bytes) is the cluster key, copied. The
 * write path (change.h) must be open. Errors: FENNEC_ECONFIG (no key), -errno (a listener
 * that cannot bind), -ENOMEM; ERR says which.
 */
int stream_start(const cfg_t *cfg, const uint8_t *key, size_t keylen, stream_t **out, char *err,
                 size_t errlen);

/* Stops the thread, closes every connection and frees S. NULL: a no-op. */
void stream_stop(stream_t *s);

/* The proof for ROLE ("fennec-primary-v1"/"fennec-secondary-v1") into MAC (32 bytes). Pure;
 * exported for the tests. Returns 0 or -EIO. */
int stream_proof(const uint8_t *key, size_t keylen, const char *role, const uint8_t *their_nonce,
                 const uint8_t *my_nonce, const char *my_id, uint8_t *mac);

#endif
