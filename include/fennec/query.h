/*
 * fennec — the query engine: one DNS message in, one answer out, written in place into a
 * caller's buffer from the pre-rendered zone data. No allocation per query.
 */
#ifndef FENNEC_QUERY_H
#define FENNEC_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "fennec/cfg.h"
#include "fennec/tsig.h"
#include "fennec/wire.h"
#include "fennec/zone.h"

struct sockaddr;

typedef enum {
    QUERY_UDP = 0,
    QUERY_TCP = 1,
} query_transport_t;

#define QUERY_RCODE_MAX 24 /* rcodes counted individually (extended rcodes included) */

/* Outcomes of signed queries (TSIG, RFC 8945). */
enum {
    QUERY_TSIG_OK = 0,
    QUERY_TSIG_BADKEY,
    QUERY_TSIG_BADSIG,
    QUERY_TSIG_BADTIME,
    QUERY_TSIG_BADTRUNC,
    QUERY_TSIG_FORMERR,
    QUERY_TSIG_MAX
};

/* Outcomes of zone transfer requests (AXFR, and IXFR answered as AXFR). */
enum {
    QUERY_XFR_REFUSED = 0, /* not allowed by the transfer rules */
    QUERY_XFR_STARTED,     /* allowed over TCP: handed to the transport */
    QUERY_XFR_DONE,        /* every message written */
    QUERY_XFR_FAILED,      /* cut short (connection lost, out of memory) */
    QUERY_XFR_UDP,         /* IXFR over UDP answered with the SOA */
    QUERY_XFR_MAX
};

/* Counters kept per worker context; read them from the owning thread or accept tearing. */
typedef struct query_stats {
    uint64_t queries[2];             /* by transport */
    uint64_t rcode[QUERY_RCODE_MAX]; /* answers by rcode */
    uint64_t dropped;                /* not answered (responses, unparseable headers) */
    uint64_t truncated;              /* TC set */
    uint64_t qtype[256];             /* by qtype for types < 256; others in qtype_other */
    uint64_t qtype_other;
    uint64_t tsig[QUERY_TSIG_MAX]; /* signed queries by outcome */
    uint64_t xfr[QUERY_XFR_MAX];   /* transfer requests by outcome */
} query_stats_t;

typedef struct query_ctx query_ctx_t;

/* A context per worker thread. */
query_ctx_t *query_ctx_new(void);
void query_ctx_free(query_ctx_t *ctx);
const query_stats_t *query_ctx_stats(const query_ctx_t *ctx);

/* The TSIG keys and transfer rules of CFG (borrowed; it must outlive CTX's use), or NULL for
 * none: every signed query is then answered BADKEY and every transfer refused. */
void query_ctx_set_config(query_ctx_t *ctx, const cfg_t *cfg);

/* The client of the next queries (borrowed until the next call; NULL: unknown), which the
 * transfer rules look at. The transport sets it before each query it hands over. */
void query_ctx_set_peer(query_ctx_t *ctx, const struct sockaddr *peer);

/*
 * A zone transfer the engine accepted over TCP. query_answer_set() answers an allowed AXFR
 * or IXFR over TCP with nothing (returns 0) and keeps the request here; the transport takes
 * it with query_xfr_take() and writes the messages (xfr.h). ZONE is one reference, the
 * taker's: the version the whole transfer comes from.
 */
typedef struct query_xfr {
    zone_t *zone;
    uint16_t id;
    uint16_t flags; /* the query's RD and CD, echoed */
    uint8_t question[WIRE_NAME_MAX + 4];
    size_t question_len;
    bool tsig_present;
    tsig_req_t tsig; /* the verified request (tsig_present) */
} query_xfr_t;

/* Moves the pending transfer into OUT; false when there is none. */
bool query_xfr_take(query_ctx_t *ctx, query_xfr_t *out);

/* Counts the end of a transfer taken from CTX (QUERY_XFR_DONE or QUERY_XFR_FAILED). */
void query_ctx_xfr_count(query_ctx_t *ctx, int outcome);

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
