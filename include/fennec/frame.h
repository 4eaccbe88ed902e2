/*
 * fennec — frames of the replication stream (proto/replication.proto).
 *
 * A frame is a 4-byte big-endian length, then that many bytes of one protobuf Frame message.
 * Lengths above the reader's maximum are refused as soon as the 4 bytes arrive, before any
 * of the body is buffered, so a peer cannot make a node hold more than MAX + 4 bytes of one
 * frame. Pure code: no I/O, no threads, no clock; any thread, one reader per stream.
 */
#ifndef FENNEC_FRAME_H
#define FENNEC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "replication.pb-c.h"

typedef Fennec__Replication__Frame frame_t;

#define FRAME_HEADER_LEN  4
#define FRAME_MAX_DEFAULT (16u << 20) /* bytes of message; a snapshot chunk is cut below it */

/*
 * Encodes F as one frame into a new buffer (*out, *len bytes; the caller frees it with
 * free()). Errors: FENNEC_EMALFORMED when F fails frame_check() (ERR says why),
 * FENNEC_ESPACE when the message is longer than MAX bytes, -ENOMEM.
 */
int frame_encode(const frame_t *f, size_t max, uint8_t **out, size_t *len, char *err,
                 size_t errlen);

/* An incremental reader: bytes in as they arrive, whole frames out. Caller-owned. */
typedef struct frame_reader {
    uint8_t *buf;
    size_t start; /* where the unread bytes begin */
    size_t len;   /* bytes held, from buf */
    size_t cap;
    size_t max; /* longest message accepted, bytes */
    int error;  /* the first error; once set, the stream is unusable */
} frame_reader_t;

void frame_reader_init(frame_reader_t *r, size_t max);
void frame_reader_deinit(frame_reader_t *r);

/* Takes N bytes of the stream (copied). Errors: the reader's error if it has one, -ENOMEM. */
int frame_reader_feed(frame_reader_t *r, const uint8_t *data, size_t n);

/*
 * The next whole frame in *out (free it with frame_free()), or *out NULL when more bytes are
 * needed. Errors (the stream must then be closed; ERR says why): FENNEC_EMALFORMED for a
 * length above the maximum, a message protobuf cannot decode, or one that fails
 * frame_check(). The error sticks: later calls return it again.
 */
int frame_reader_next(frame_reader_t *r, frame_t **out, char *err, size_t errlen);

void frame_free(frame_t *f);

/* ---- records: DNS wire format, one after the other (proto/replication.proto) ---- */

typedef struct frame_rr {
    const uint8_t *owner; /* uncompressed wire name, in the blob */
    size_t owner_len;
    uint16_t type;
    uint32_t ttl;
    const uint8_t *rdata; /* in the blob */
    uint16_t rdlen;
} frame_rr_t;

/* Reads the record at *POS of BLOB (LEN bytes) into *RR (pointing into BLOB) and moves *POS
 * past it. Returns 1 for a record, 0 at the end, FENNEC_EMALFORMED for bytes that are not a
 * record of class IN with a whole owner name, a type other than 0 and its rdata (*WHY, when
 * not NULL, then says which, as a static string). */
int frame_rr_next(const uint8_t *blob, size_t len, size_t *pos, frame_rr_t *rr, const char **why);

/* A growing blob of records (caller-owned; zero it to start, frame_rrs_free() to end). */
typedef struct frame_rrs {
    uint8_t *buf;
    size_t len, cap;
    size_t count;
} frame_rrs_t;

/* Appends one record (OWNER an uncompressed wire name). Returns 0 or -ENOMEM. */
int frame_rrs_add(frame_rrs_t *b, const uint8_t *owner, size_t owner_len, uint16_t type,
                  uint32_t ttl, const uint8_t *rdata, uint16_t rdlen);
void frame_rrs_free(frame_rrs_t *b);

/*
 * What protobuf does not check: no message carries fields this version does not know; a
 * frame has a kind; an entry has an index > 0 and a payload;
 * records read as frame_rr_next() reads them; zone names are valid names; nonces are 32 bytes and
 * MACs 32 bytes. Returns 0 or FENNEC_EMALFORMED with the first problem in ERR.
 */
int frame_check(const frame_t *f, char *err, size_t errlen);

/*
 * A journal entry on its own (what the journal stores): decoded and checked as an entry in a
 * frame is (frame_check()). *OUT: free with frame_entry_free(). FENNEC_EMALFORMED otherwise.
 */
int frame_entry_decode(const uint8_t *data, size_t len, Fennec__Replication__Entry **out, char *err,
                       size_t errlen);
void frame_entry_free(Fennec__Replication__Entry *e);

/*
 * The frame of an entry from its encoded bytes ENTRY (LEN), without decoding it: written to
 * OUT (CAP bytes); *USED receives the frame's length, also when it does not fit
 * (FENNEC_ESPACE then, nothing written). At most LEN + FRAME_HEADER_LEN + 11 bytes.
 */
int frame_entry_wrap(const uint8_t *entry, size_t len, uint8_t *out, size_t cap, size_t *used);

#endif
