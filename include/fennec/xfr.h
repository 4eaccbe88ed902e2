/*
 * fennec — zone transfer out (AXFR, RFC 5936): the messages of one transfer, written one at
 * a time from one version of the zone so that a transport can send a big zone as its socket
 * drains instead of building it all at once.
 *
 * The messages: the SOA first, every other record, the SOA again last; the question in the
 * first message only (RFC 5936 2.2.1); owner names compressed within each message; each
 * message signed when the request was (RFC 8945 5.3.1). Pure: no I/O, time passed in; one
 * thread at a time per transfer.
 */
#ifndef FENNEC_XFR_H
#define FENNEC_XFR_H

#include <stddef.h>
#include <stdint.h>

#include "fennec/query.h"

#define XFR_MSG_TARGET 16384 /* a message ends once it holds this many bytes */
#define XFR_MSG_MAX    65535 /* largest DNS message over TCP */

typedef struct xfr xfr_t;

/* A transfer of REQ (from query_xfr_take()); takes over REQ's zone reference, also on
 * failure. Returns 0 or -ENOMEM. */
int xfr_new(query_xfr_t *req, xfr_t **out);

/*
 * Writes the next message, preceded by its 2-byte TCP length, at OUT (CAP bytes, at least
 * XFR_MSG_MAX + 2) at time NOW (seconds since 1970, for the signature). *WRITTEN receives the
 * bytes written, 0 once the last message has gone. Returns 0, FENNEC_ESPACE when CAP is too
 * small or a record cannot fit in a message, or -ENOMEM.
 */
int xfr_next(xfr_t *x, uint8_t *out, size_t cap, uint64_t now, size_t *written);

/* Records written so far (the SOA counted twice). */
uint64_t xfr_records(const xfr_t *x);

/* The zone being transferred (the version held). */
const zone_t *xfr_zone(const xfr_t *x);

/* Frees X and drops its zone reference. xfr_free(NULL) is a no-op. */
void xfr_free(xfr_t *x);

/* Moves X's zone reference out (to drop it elsewhere, e.g. off the worker thread) and frees
 * X. */
zone_t *xfr_free_keep_zone(xfr_t *x);

#endif
