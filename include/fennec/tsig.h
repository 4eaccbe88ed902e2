/*
 * fennec — TSIG (RFC 8945): shared-secret keys, verification of a signed request and
 * signing of the answers to it, single messages and the chained messages of a zone transfer.
 *
 * Everything here is pure (time passed in, no I/O, no global state) and called by the
 * worker thread that answers the message. Only signed messages come here: the query engine
 * recognises a TSIG by the type of the last additional record, so unsigned queries pay
 * nothing. HMACs come from OpenSSL's libcrypto.
 */
#ifndef FENNEC_TSIG_H
#define FENNEC_TSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most clock difference a signed request is allowed, whatever fudge it claims, s (the
 * usual fudge is 300). */
#define TSIG_FUDGE_MAX 300

#define TSIG_TYPE      250
#define TSIG_MAC_MAX   64  /* HMAC-SHA512 */
#define TSIG_FUDGE     300 /* seconds of clock skew allowed in what we sign (RFC 8945 10) */
#define TSIG_NAME_MAX  255 /* wire name */
#define TSIG_RR_MAX    (2 * TSIG_NAME_MAX + 10 + 16 + TSIG_MAC_MAX + 6)
#define TSIG_OTHER_MAX 6 /* we only ever send the 48-bit server time (BADTIME) */

/* TSIG error codes (RFC 8945 4.3, 5.2), in the TSIG record's Error field. */
enum {
    TSIG_NOERROR = 0,
    TSIG_BADSIG = 16,
    TSIG_BADKEY = 17,
    TSIG_BADTIME = 18,
    TSIG_BADTRUNC = 22,
};

typedef enum {
    TSIG_HMAC_MD5 = 0,
    TSIG_HMAC_SHA1,
    TSIG_HMAC_SHA224,
    TSIG_HMAC_SHA256,
    TSIG_HMAC_SHA384,
    TSIG_HMAC_SHA512,
    TSIG_ALG_COUNT
} tsig_alg_t;

/* One key as configured (`tsig_keys:`), owned by its keyring. */
typedef struct tsig_key {
    char *name;                  /* as written in the config */
    uint8_t wire[TSIG_NAME_MAX]; /* lower-case wire form of the name */
    size_t wire_len;
    tsig_alg_t alg;
    uint8_t *secret; /* decoded base64 */
    size_t secret_len;
} tsig_key_t;

typedef struct tsig_keyring {
    tsig_key_t *keys;
    size_t count;
} tsig_keyring_t;

/* The algorithm called TEXT in BIND and Knot configs ("hmac-sha256"; case ignored), or -1. */
int tsig_alg_from_text(const char *text);
const char *tsig_alg_text(tsig_alg_t alg);
/* Bytes of a full MAC of ALG. */
size_t tsig_alg_mac_len(tsig_alg_t alg);

/* Decodes standard base64 (padding required, no spaces) into a new buffer *OUT (free()).
 * Returns 0, FENNEC_EMALFORMED for text that is not base64 or decodes to nothing, -ENOMEM. */
int tsig_base64_decode(const char *text, uint8_t **out, size_t *outlen);

/* The key named by the lower-case wire name NAME (LEN bytes), or NULL. KR may be NULL. */
const tsig_key_t *tsig_keyring_find(const tsig_keyring_t *kr, const uint8_t *name, size_t len);
/* Frees the keys and their strings (not KR itself). */
void tsig_keyring_clear(tsig_keyring_t *kr);

/* A signed request as read and checked by tsig_request_check(); kept on the caller's stack
 * for the answer. */
typedef struct tsig_req {
    const tsig_key_t *key; /* the matching key; NULL when unknown (BADKEY) */
    uint8_t name[TSIG_NAME_MAX];
    size_t name_len;
    uint8_t alg[TSIG_NAME_MAX]; /* algorithm name as it came, lower case */
    size_t alg_len;
    uint64_t time_signed;
    uint16_t fudge;
    uint16_t orig_id;
    uint16_t mac_len;
    uint8_t mac[TSIG_MAC_MAX]; /* the request's MAC (the first mac_len bytes) */
    uint16_t error;            /* TSIG_* to put in the answer */
} tsig_req_t;

/*
 * Reads the TSIG record that starts at offset AT of the message MSG (LEN bytes; the record
 * ends the message) and checks it against the keys of KR at NOW (seconds since the epoch),
 * in RFC 8945 5.2 order: key and algorithm (BADKEY), MAC (BADSIG), time (BADTIME), length
 * of a truncated MAC (BADTRUNC). Returns the RCODE for the answer: 0 (verified),
 * WIRE_RCODE_NOTAUTH with req->error set, or WIRE_RCODE_FORMERR for a record that cannot be
 * read or a MAC longer than the algorithm's or shorter than RFC 8945 5.2.2.1 allows (then
 * the answer carries no TSIG: req->key is NULL and req->error 0 is not to be sent).
 */
int tsig_request_check(const tsig_keyring_t *kr, const uint8_t *msg, size_t len, size_t at,
                       uint64_t now, tsig_req_t *req);

/* Room (bytes) the TSIG record of the answer to REQ takes. */
size_t tsig_answer_size(const tsig_req_t *req);

/*
 * Appends the TSIG record of the answer to REQ to the message MSG of *LEN bytes (capacity
 * CAP) and counts it in ARCOUNT. Signed (RFC 8945 5.3) unless the error is BADKEY or BADSIG
 * (5.3.2: then the MAC is empty); a BADTIME answer carries NOW in Other Data and the
 * request's time as Time Signed. When SIGNED_MAC is not NULL it receives the MAC (and
 * *SIGNED_MAC_LEN its length): the start of a chain (tsig_chain_t). Returns 0,
 * FENNEC_ESPACE when it does not fit (nothing written), or -ENOMEM.
 */
int tsig_answer_sign(const tsig_req_t *req, uint8_t *msg, size_t *len, size_t cap, uint64_t now,
                     uint8_t *signed_mac, size_t *signed_mac_len);

/* The messages of one answer that takes several (AXFR), each signed (RFC 8945 5.3.1): the
 * first with the request's MAC, each later one with the MAC before it and the timers. */
typedef struct tsig_chain {
    const tsig_key_t *key;
    uint8_t name[TSIG_NAME_MAX];
    size_t name_len;
    uint16_t orig_id;
    uint8_t prior[TSIG_MAC_MAX];
    size_t prior_len;
    bool started; /* the first message has been signed */
    tsig_req_t req;
} tsig_chain_t;

void tsig_chain_init(tsig_chain_t *chain, const tsig_req_t *req);
/* Signs the next message of the chain, as tsig_answer_sign(). */
int tsig_chain_sign(tsig_chain_t *chain, uint8_t *msg, size_t *len, size_t cap, uint64_t now);

/*
 * A client's side, for tests and tools: signs the query MSG (*LEN bytes, capacity CAP) with
 * KEY at time NOW with FUDGE, a MAC cut to MAC_LEN bytes (0: full), and copies the MAC into
 * MAC_OUT (TSIG_MAC_MAX bytes) when not NULL. Returns 0, FENNEC_ESPACE or -ENOMEM.
 */
int tsig_query_sign(const tsig_key_t *key, uint8_t *msg, size_t *len, size_t cap, uint64_t now,
                    uint16_t fudge, size_t mac_len, uint8_t *mac_out);

/*
 * Verifies the signed answer MSG (LEN bytes, TSIG last) to a request whose MAC was REQ_MAC
 * (REQ_MAC_LEN bytes) with KEY: 0 when the MAC is right and the TSIG error is 0,
 * -EACCES otherwise, FENNEC_EMALFORMED when there is no readable TSIG. For tests.
 */
int tsig_answer_verify(const tsig_key_t *key, const uint8_t *msg, size_t len,
                       const uint8_t *req_mac, size_t req_mac_len);

#endif
