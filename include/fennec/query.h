/*
 * fennec — the query engine: one DNS message in, one answer out, written in place into a
 * caller's buffer from the pre-rendered zone data. No allocation per query.
 */
#ifndef FENNEC_QUERY_H
#define FENNEC_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "fennec/zone.h"

typedef enum {
    QUERY_UDP = 0,
    QUERY_TCP = 1,
} query_transport_t;

#define QUERY_RCODE_MAX 24 /* rcodes counted individually (extended rcodes included) */

/* Counters kept per worker context; read them from the owning thread or accept tearing. */
typedef struct query_stats {
    uint64_t queries[2];             /* by transport */
    uint64_t rcode[QUERY_RCODE_MAX]; /* answers by rcode */
    uint64_t dropped;                /* not answered (responses, unparseable headers) */
    uint64_t truncated;              /* TC set */
    uint64_t qtype[256];             /* by qtype for types < 256; others in qtype_other */
    uint64_t qtype_other;
} query_stats_t;

typedef struct query_ctx query_ctx_t;

/* A context per worker thread. */
query_ctx_t *query_ctx_new(void);
void query_ctx_free(query_ctx_t *ctx);
const query_stats_t *query_ctx_stats(const query_ctx_t *ctx);

/* Largest answer the engine writes (a TCP message). OUT should hold this many bytes. */
#define QUERY_MAX_ANSWER 65535

/*
 * Answers the query IN (INLEN bytes) from the current published zone set (takes the RCU
 * read lock itself) into OUT (OUTCAP bytes). Returns the answer length, or 0 when the
 * message must not be answered (it is a response, or too short to hold a header).
 */
size_t query_answer(query_ctx_t *ctx, const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
                    query_transport_t transport);

/* Same, from the given zone set (tests, fuzzing, a batch inside one read-side section; no
 * RCU of its own). SET may be NULL. */
size_t query_answer_set(query_ctx_t *ctx, const zone_set_t *set, const uint8_t *in, size_t inlen,
                        uint8_t *out, size_t outcap, query_transport_t transport);

/*
 * Lookahead for a batch answered with query_answer_set() from SET in one read-side
 * section: query_hint_start() on the query a few places ahead of the one being answered
 * parses its question and starts loading the name's hash bucket; query_hint_next(), a few
 * places later, starts loading the node. Memory stalls of several queries then overlap
 * instead of adding up. Any input is safe: a message without a usable question leaves an
 * empty hint, which does nothing.
 */
typedef struct query_hint {
    const zone_t *zone; /* NULL: nothing to prefetch */
    uint32_t hash;
} query_hint_t;

void query_hint_start(const zone_set_t *set, const uint8_t *in, size_t inlen, query_hint_t *hint);
void query_hint_next(const query_hint_t *hint);

#endif
