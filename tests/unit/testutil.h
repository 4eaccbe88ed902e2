/*
 * Helpers shared by the unit tests: a query built by hand and an answer split into its
 * records. They run inside a cmocka test and fail it on anything malformed.
 */
#ifndef FENNEC_TESTUTIL_H
#define FENNEC_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fennec/query.h"
#include "fennec/wire.h"

/* A query message being built. */
typedef struct qbuf {
    uint8_t b[1024];
    size_t len;
} qbuf_t;

/* One record of a parsed answer; its rdata stays in the message at rdoff. */
typedef struct rr {
    int sec; /* 0 answer, 1 authority, 2 additional */
    uint8_t owner[WIRE_NAME_MAX];
    int owner_len;
    size_t owner_off; /* where the owner starts in the message */
    uint16_t type, cls;
    uint32_t ttl;
    uint16_t rdlen;
    size_t rdoff;
} rr_t;

/* An answer: the message in b (len bytes) and, once parsed, its header and records. */
typedef struct resp {
    uint8_t b[QUERY_MAX_ANSWER + 64]; /* + room for a guard band */
    size_t len;
    uint16_t id, flags, qd, an, ns, ar;
    uint8_t qname[WIRE_NAME_MAX];
    int qlen;
    uint16_t qtype, qclass;
    rr_t rr[64];
    int nrr;
    const rr_t *opt;
} resp_t;

/* Writes into Q a query with one question: NAME (text), QTYPE, QCLASS; FLAGS is the whole
 * 16-bit flags word. */
void testutil_query_make(qbuf_t *q, uint16_t id, uint16_t flags, const char *name, uint16_t qtype,
                         uint16_t qclass);

/* Appends an OPT record (owner root) to the additional section of Q. TTLF is the TTL field:
 * extended rcode, version, DO and Z. */
void testutil_query_add_opt(qbuf_t *q, uint16_t payload, uint32_t ttlf);

/* Checks that the message in R (r->len bytes) is well formed, by fennec's reader and by
 * libknot's parser, and fills in the header fields and records of R. At most 64 records. */
void testutil_answer_parse(resp_t *r);

/* A new empty folder /tmp/fennec-test-NAME-XXXXXX in DIR (LEN bytes); 0 or -1. */
int testutil_tmpdir_make(char *dir, size_t len, const char *name);

/* Removes DIR and everything in it; 0 or -1. */
int testutil_tmpdir_remove(const char *dir);

#endif
