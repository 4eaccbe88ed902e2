/*
 * TSIG (RFC 8945). The MAC of a request covers the message without its TSIG record (ARCOUNT
 * one less, the ID replaced by the record's Original ID) followed by the "TSIG variables";
 * an answer's MAC is prefixed by the request's MAC; a later message of a multi-message
 * answer is prefixed by the MAC before it and ends with the timers only (5.3.1). HMACs are
 * computed with OpenSSL's EVP_MAC, fed piece by piece so that nothing is copied.
 */
#include "fennec/tsig.h"
#include "fennec/common.h"
#include "fennec/wire.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLASS_ANY 255

static const struct {
    const char *text;   /* BIND and Knot spelling */
    const char *wire;   /* algorithm name in the record (RFC 8945 6) */
    const char *digest; /* OpenSSL digest */
    size_t mac_len;
} algs[TSIG_ALG_COUNT] = {
    [TSIG_HMAC_MD5] = {"hmac-md5", "\x08hmac-md5\x07sig-alg\x03reg\x03int", "MD5", 16},
    [TSIG_HMAC_SHA1] = {"hmac-sha1", "\x09hmac-sha1", "SHA1", 20},
    [TSIG_HMAC_SHA224] = {"hmac-sha224", "\x0bhmac-sha224", "SHA224", 28},
    [TSIG_HMAC_SHA256] = {"hmac-sha256", "\x0bhmac-sha256", "SHA256", 32},
    [TSIG_HMAC_SHA384] = {"hmac-sha384", "\x0bhmac-sha384", "SHA384", 48},
    [TSIG_HMAC_SHA512] = {"hmac-sha512", "\x0bhmac-sha512", "SHA512", 64},
};

int tsig_alg_from_text(const char *text)
{
    for (int i = 0; i < TSIG_ALG_COUNT; i++)
        if (strcasecmp(text, algs[i].text) == 0)
            return i;
    return -1;
}

const char *tsig_alg_text(tsig_alg_t alg)
{
    return alg < TSIG_ALG_COUNT ? algs[alg].text : "?";
}

size_t tsig_alg_mac_len(tsig_alg_t alg)
{
    return alg < TSIG_ALG_COUNT ? algs[alg].mac_len : 0;
}

static const uint8_t *alg_wire(tsig_alg_t alg, size_t *len)
{
    const uint8_t *w = (const uint8_t *)algs[alg].wire;
    *len = strlen(algs[alg].wire) + 1;
    return w;
}

/* ---- base64 ---- */

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int tsig_base64_decode(const char *text, uint8_t **out, size_t *outlen)
{
    size_t n = strlen(text);
    if (n == 0 || n % 4 != 0)
        return FENNEC_EMALFORMED;
    size_t pad = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '=') {
            /* Padding only at the end, at most two. */
            if (i < n - 2)
                return FENNEC_EMALFORMED;
            pad++;
        } else if (pad > 0 || b64_value(text[i]) < 0) {
            return FENNEC_EMALFORMED;
        }
    }
    uint8_t *buf = malloc(n / 4 * 3 + 1);
    if (!buf)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++)
            v = v << 6 | (uint32_t)(text[i + k] == '=' ? 0 : b64_value(text[i + k]));
        buf[o++] = (uint8_t)(v >> 16);
        buf[o++] = (uint8_t)(v >> 8);
        buf[o++] = (uint8_t)v;
    }
    o -= pad;
    if (o == 0) {
        free(buf);
        return FENNEC_EMALFORMED;
    }
    *out = buf;
    *outlen = o;
    return 0;
}

/* ---- keys ---- */

const tsig_key_t *tsig_keyring_find(const tsig_keyring_t *kr, const uint8_t *name, size_t len)
{
    if (!kr)
        return NULL;
    for (size_t i = 0; i < kr->count; i++)
        if (kr->keys[i].wire_len == len && memcmp(kr->keys[i].wire, name, len) == 0)
            return &kr->keys[i];
    return NULL;
}

void tsig_keyring_clear(tsig_keyring_t *kr)
{
    if (!kr)
        return;
    for (size_t i = 0; i < kr->count; i++) {
        free(kr->keys[i].name);
        if (kr->keys[i].secret)
            OPENSSL_cleanse(kr->keys[i].secret, kr->keys[i].secret_len);
        free(kr->keys[i].secret);
    }
    free(kr->keys);
    kr->keys = NULL;
    kr->count = 0;
}

/* ---- HMAC ---- */

static EVP_MAC *g_hmac;
static pthread_once_t g_hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static EVP_MAC_CTX *mac_begin(const tsig_key_t *key)
{
    pthread_once(&g_hmac_once, hmac_fetch);
    if (!g_hmac)
        return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(g_hmac);
    if (!ctx)
        return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)algs[key->alg].digest, 0),
        OSSL_PARAM_construct_end()};
    if (!EVP_MAC_init(ctx, key->secret, key->secret_len, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void mac_add(EVP_MAC_CTX *ctx, const void *p, size_t n)
{
    if (n > 0)
        EVP_MAC_update(ctx, p, n);
}

static void mac_add_u16(EVP_MAC_CTX *ctx, uint16_t v)
{
    uint8_t b[2];
    wire_put_u16(b, v);
    mac_add(ctx, b, 2);
}

/* Finishes CTX into OUT (TSIG_MAC_MAX bytes); returns the MAC length, 0 on failure. */
static size_t mac_end(EVP_MAC_CTX *ctx, uint8_t *out)
{
    size_t n = 0;
    if (!EVP_MAC_final(ctx, out, &n, TSIG_MAC_MAX))
        n = 0;
    EVP_MAC_CTX_free(ctx);
    return n;
}

static void put_u48(uint8_t *p, uint64_t v)
{
    wire_put_u16(p, (uint16_t)(v >> 32));
    wire_put_u32(p + 2, (uint32_t)v);
}

/* The message part of a digest: Original ID, then the message from the flags on with
 * ARCOUNT as given. MSG holds the message up to (not including) its TSIG record. */
static void mac_add_message(EVP_MAC_CTX *ctx, const uint8_t *msg, size_t len, uint16_t orig_id,
                            uint16_t arcount)
{
    mac_add_u16(ctx, orig_id);
    mac_add(ctx, msg + 2, 8);
    mac_add_u16(ctx, arcount);
    mac_add(ctx, msg + WIRE_HEADER_LEN, len - WIRE_HEADER_LEN);
}

/* The TSIG variables (RFC 8945 4.3.3); TIMERS_ONLY for a later message of a chain. */
static void mac_add_variables(EVP_MAC_CTX *ctx, const uint8_t *name, size_t name_len,
                              const uint8_t *alg, size_t alg_len, uint64_t time_signed,
                              uint16_t fudge, uint16_t error, const uint8_t *other,
                              uint16_t other_len, bool timers_only)
{
    uint8_t b[8];
    if (!timers_only) {
        mac_add(ctx, name, name_len);
        mac_add_u16(ctx, CLASS_ANY);
        wire_put_u32(b, 0);
        mac_add(ctx, b, 4);
        mac_add(ctx, alg, alg_len);
    }
    put_u48(b, time_signed);
    wire_put_u16(b + 6, fudge);
    mac_add(ctx, b, 8);
    if (timers_only)
        return;
    mac_add_u16(ctx, error);
    mac_add_u16(ctx, other_len);
    mac_add(ctx, other, other_len);
}

/* ---- reading a TSIG record ---- */

/* Reads the TSIG record at AT (which must end the message) into REQ; *ERROR and *OTHER (the
 * offset of Other Len in MSG) are what the variables of its MAC need. */
static int tsig_read(const uint8_t *msg, size_t len, size_t at, tsig_req_t *req, uint16_t *error,
                     size_t *other)
{
    size_t pos = at;
    int nl = wire_name_read(msg, len, &pos, req->name, true);
    if (nl < 0 || pos + 10 > len)
        return FENNEC_EMALFORMED;
    req->name_len = (size_t)nl;
    const uint8_t *p = msg + pos;
    if (wire_get_u16(p) != TSIG_TYPE || wire_get_u16(p + 2) != CLASS_ANY)
        return FENNEC_EMALFORMED;
    size_t rdlen = wire_get_u16(p + 8);
    pos += 10;
    if (pos + rdlen != len)
        return FENNEC_EMALFORMED;
    const uint8_t *rd = msg + pos;
    int al = wire_name_len(rd, rdlen); /* never compressed (RFC 8945 4.2) */
    if (al < 0)
        return FENNEC_EMALFORMED;
    memcpy(req->alg, rd, (size_t)al);
    req->alg_len = (size_t)al;
    wire_name_lower(req->alg);
    size_t o = (size_t)al;
    if (o + 10 > rdlen)
        return FENNEC_EMALFORMED;
    req->time_signed = (uint64_t)wire_get_u16(rd + o) << 32 | wire_get_u32(rd + o + 2);
    req->fudge = wire_get_u16(rd + o + 6);
    size_t mac_len = wire_get_u16(rd + o + 8);
    o += 10;
    if (mac_len > TSIG_MAC_MAX || o + mac_len + 6 > rdlen)
        return FENNEC_EMALFORMED;
    memcpy(req->mac, rd + o, mac_len);
    req->mac_len = (uint16_t)mac_len;
    o += mac_len;
    req->orig_id = wire_get_u16(rd + o);
    *error = wire_get_u16(rd + o + 2);
    *other = pos + o + 4;
    uint16_t other_len = wire_get_u16(rd + o + 4);
    o += 6;
    if (o + other_len != rdlen)
        return FENNEC_EMALFORMED;
    return 0;
}

int tsig_request_check(const tsig_keyring_t *kr, const uint8_t *msg, size_t len, size_t at,
                       uint64_t now, tsig_req_t *req)
{
    uint16_t req_error = 0;
    size_t other = 0;
    req->key = NULL;
    req->error = TSIG_NOERROR;
    if (at < WIRE_HEADER_LEN || at >= len || wire_get_u16(msg + 10) == 0 ||
        tsig_read(msg, len, at, req, &req_error, &other) != 0)
        return WIRE_RCODE_FORMERR;

    /* 5.2.1: the key, and the algorithm it is used with. */
    const tsig_key_t *key = tsig_keyring_find(kr, req->name, req->name_len);
    size_t awl = 0;
    const uint8_t *aw = key ? alg_wire(key->alg, &awl) : NULL;
    if (!key || awl != req->alg_len || memcmp(aw, req->alg, awl) != 0) {
        req->error = TSIG_BADKEY;
        return WIRE_RCODE_NOTAUTH;
    }
    /* 5.2.2.1: a MAC longer than the algorithm's, or cut below the larger of 10 octets and
     * half the algorithm's, is a format error. */
    size_t full = algs[key->alg].mac_len;
    size_t min = full / 2 > 10 ? full / 2 : 10;
    if (req->mac_len > full || req->mac_len < min)
        return WIRE_RCODE_FORMERR;
    req->key = key;

    /* 5.2.2: the MAC, compared over the length the request sent. */
    EVP_MAC_CTX *ctx = mac_begin(key);
    uint8_t mac[TSIG_MAC_MAX];
    if (!ctx)
        return WIRE_RCODE_SERVFAIL;
    mac_add_message(ctx, msg, at, req->orig_id, (uint16_t)(wire_get_u16(msg + 10) - 1));
    mac_add_variables(ctx, req->name, req->name_len, req->alg, req->alg_len, req->time_signed,
                      req->fudge, req_error, msg + other + 2, wire_get_u16(msg + other), false);
    size_t n = mac_end(ctx, mac);
    if (n != full)
        return WIRE_RCODE_SERVFAIL;
    if (CRYPTO_memcmp(mac, req->mac, req->mac_len) != 0) {
        req->key = NULL; /* 5.3.2: the answer to a bad MAC is not signed */
        req->error = TSIG_BADSIG;
        return WIRE_RCODE_NOTAUTH;
    }
    /* 5.2.3: the time. */
    uint64_t skew = now > req->time_signed ? now - req->time_signed : req->time_signed - now;
    /* The request's fudge is held to TSIG_FUDGE_MAX: a captured request replayed (an AXFR by a
     * key that may transfer from anywhere) is refused once that much time has passed, not
     * after the up to 18 hours a request may claim. */
    uint16_t fudge = req->fudge < TSIG_FUDGE_MAX ? req->fudge : TSIG_FUDGE_MAX;
    if (skew > fudge) {
        req->error = TSIG_BADTIME;
        return WIRE_RCODE_NOTAUTH;
    }
    /* 5.2.4: our own floor for truncated MACs, 128 bits or half the algorithm's. */
    size_t policy = full / 2 > 16 ? full / 2 : (full < 16 ? full : 16);
    if (req->mac_len < policy) {
        req->error = TSIG_BADTRUNC;
        return WIRE_RCODE_NOTAUTH;
    }
    return 0;
}

/* ---- writing a TSIG record ---- */

static size_t rr_size(size_t name_len, size_t alg_len, size_t mac_len, size_t other_len)
{
    return name_len + 10 + alg_len + 10 + mac_len + 6 + other_len;
}

size_t tsig_answer_size(const tsig_req_t *req)
{
    size_t alg_len = req->alg_len, mac_len = 0;
    if (req->key) {
        alg_wire(req->key->alg, &alg_len);
        mac_len = algs[req->key->alg].mac_len;
    }
    return rr_size(req->name_len, alg_len, mac_len, TSIG_OTHER_MAX);
}

/* Writes the record at *LEN and counts it in ARCOUNT. */
static int rr_write(uint8_t *msg, size_t *len, size_t cap, const uint8_t *name, size_t name_len,
                    const uint8_t *alg, size_t alg_len, uint64_t time_signed, uint16_t fudge,
                    const uint8_t *mac, size_t mac_len, uint16_t orig_id, uint16_t error,
                    const uint8_t *other, uint16_t other_len)
{
    size_t need = rr_size(name_len, alg_len, mac_len, other_len);
    if (*len + need > cap || *len < WIRE_HEADER_LEN)
        return FENNEC_ESPACE;
    uint8_t *p = msg + *len;
    memcpy(p, name, name_len);
    p += name_len;
    wire_put_u16(p, TSIG_TYPE);
    wire_put_u16(p + 2, CLASS_ANY);
    wire_put_u32(p + 4, 0);
    wire_put_u16(p + 8, (uint16_t)(need - name_len - 10));
    p += 10;
    memcpy(p, alg, alg_len);
    p += alg_len;
    put_u48(p, time_signed);
    wire_put_u16(p + 6, fudge);
    wire_put_u16(p + 8, (uint16_t)mac_len);
    p += 10;
    if (mac_len > 0)
        memcpy(p, mac, mac_len);
    p += mac_len;
    wire_put_u16(p, orig_id);
    wire_put_u16(p + 2, error);
    wire_put_u16(p + 4, other_len);
    if (other_len > 0)
        memcpy(p + 6, other, other_len);
    *len += need;
    wire_put_u16(msg + 10, (uint16_t)(wire_get_u16(msg + 10) + 1));
    return 0;
}

/* Signs MSG with KEY: PRIOR (request or previous MAC, PRIOR_LEN bytes, may be 0), the
 * message, then the variables or only the timers; appends the record. */
static int sign_message(const tsig_key_t *key, const uint8_t *name, size_t name_len,
                        const uint8_t *prior, size_t prior_len, bool timers_only, uint8_t *msg,
                        size_t *len, size_t cap, uint64_t time_signed, uint16_t fudge,
                        uint16_t orig_id, uint16_t error, const uint8_t *other, uint16_t other_len,
                        size_t trunc, uint8_t *mac_out, size_t *mac_out_len)
{
    size_t alg_len = 0;
    const uint8_t *alg = alg_wire(key->alg, &alg_len);
    size_t full = algs[key->alg].mac_len;
    size_t mac_len = trunc && trunc < full ? trunc : full;
    if (*len < WIRE_HEADER_LEN || *len + rr_size(name_len, alg_len, mac_len, other_len) > cap)
        return FENNEC_ESPACE;
    EVP_MAC_CTX *ctx = mac_begin(key);
    if (!ctx)
        return -ENOMEM;
    if (prior) {
        mac_add_u16(ctx, (uint16_t)prior_len);
        mac_add(ctx, prior, prior_len);
    }
    mac_add_message(ctx, msg, *len, orig_id, wire_get_u16(msg + 10));
    mac_add_variables(ctx, name, name_len, alg, alg_len, time_signed, fudge, error, other,
                      other_len, timers_only);
    uint8_t mac[TSIG_MAC_MAX];
    if (mac_end(ctx, mac) != full)
        return -ENOMEM;
    int rc = rr_write(msg, len, cap, name, name_len, alg, alg_len, time_signed, fudge, mac, mac_len,
                      orig_id, error, other, other_len);
    if (rc == 0 && mac_out) {
        memcpy(mac_out, mac, mac_len);
        *mac_out_len = mac_len;
    }
    return rc;
}

int tsig_answer_sign(const tsig_req_t *req, uint8_t *msg, size_t *len, size_t cap, uint64_t now,
                     uint8_t *signed_mac, size_t *signed_mac_len)
{
    uint8_t other[TSIG_OTHER_MAX];
    uint16_t other_len = 0;
    uint64_t time_signed = now;
    if (req->error == TSIG_BADTIME) {
        /* 5.2.3: the request's time as Time Signed, ours in Other Data. */
        put_u48(other, now);
        other_len = 6;
        time_signed = req->time_signed;
    }
    if (!req->key || req->error == TSIG_BADSIG || req->error == TSIG_BADKEY) {
        /* 5.3.2: an error about the key or the MAC is answered unsigned. */
        return rr_write(msg, len, cap, req->name, req->name_len, req->alg, req->alg_len,
                        time_signed, TSIG_FUDGE, NULL, 0, req->orig_id, req->error, other,
                        other_len);
    }
    return sign_message(req->key, req->name, req->name_len, req->mac, req->mac_len, false, msg, len,
                        cap, time_signed, TSIG_FUDGE, req->orig_id, req->error, other, other_len, 0,
                        signed_mac, signed_mac_len);
}

void tsig_chain_init(tsig_chain_t *chain, const tsig_req_t *req)
{
    memset(chain, 0, sizeof(*chain));
    chain->req = *req;
    chain->key = req->key;
}

int tsig_chain_sign(tsig_chain_t *chain, uint8_t *msg, size_t *len, size_t cap, uint64_t now)
{
    if (!chain->started) {
        int rc = tsig_answer_sign(&chain->req, msg, len, cap, now, chain->prior, &chain->prior_len);
        if (rc == 0)
            chain->started = true;
        return rc;
    }
    const tsig_req_t *req = &chain->req;
    /* Every message is signed, so each carries the timers only (5.3.1). */
    return sign_message(chain->key, req->name, req->name_len, chain->prior, chain->prior_len, true,
                        msg, len, cap, now, TSIG_FUDGE, req->orig_id, 0, NULL, 0, 0, chain->prior,
                        &chain->prior_len);
}

int tsig_query_sign(const tsig_key_t *key, uint8_t *msg, size_t *len, size_t cap, uint64_t now,
                    uint16_t fudge, size_t mac_len, uint8_t *mac_out)
{
    size_t out_len = 0;
    if (*len < WIRE_HEADER_LEN)
        return FENNEC_ESPACE;
    return sign_message(key, key->wire, key->wire_len, NULL, 0, false, msg, len, cap, now, fudge,
                        wire_get_u16(msg), 0, NULL, 0, mac_len, mac_out, &out_len);
}

/* Offset of the last record of MSG, which must be there. */
static int last_rr(const uint8_t *msg, size_t len, size_t *at)
{
    if (len < WIRE_HEADER_LEN)
        return FENNEC_EMALFORMED;
    size_t pos = WIRE_HEADER_LEN;
    uint8_t tmp[WIRE_NAME_MAX];
    for (unsigned i = 0; i < wire_get_u16(msg + 4); i++) {
        if (wire_name_read(msg, len, &pos, tmp, false) < 0 || pos + 4 > len)
            return FENNEC_EMALFORMED;
        pos += 4;
    }
    uint32_t rrs = (uint32_t)wire_get_u16(msg + 6) + wire_get_u16(msg + 8) + wire_get_u16(msg + 10);
    if (rrs == 0)
        return FENNEC_EMALFORMED;
    for (uint32_t i = 0; i < rrs; i++) {
        *at = pos;
        if (wire_name_read(msg, len, &pos, tmp, false) < 0 || pos + 10 > len)
            return FENNEC_EMALFORMED;
        pos += 10 + (size_t)wire_get_u16(msg + pos + 8);
        if (pos > len)
            return FENNEC_EMALFORMED;
    }
    return pos == len ? 0 : FENNEC_EMALFORMED;
}

int tsig_answer_verify(const tsig_key_t *key, const uint8_t *msg, size_t len,
                       const uint8_t *req_mac, size_t req_mac_len)
{
    size_t at = 0, o = 0;
    uint16_t error = 0;
    tsig_req_t r;
    if (last_rr(msg, len, &at) != 0 || tsig_read(msg, len, at, &r, &error, &o) != 0)
        return FENNEC_EMALFORMED;
    uint16_t olen = wire_get_u16(msg + o);
    if (error != 0 || r.mac_len == 0)
        return -EACCES;
    size_t awl = 0;
    const uint8_t *aw = alg_wire(key->alg, &awl);
    if (r.name_len != key->wire_len || memcmp(r.name, key->wire, r.name_len) != 0 ||
        awl != r.alg_len || memcmp(aw, r.alg, awl) != 0)
        return -EACCES;
    EVP_MAC_CTX *ctx = mac_begin(key);
    if (!ctx)
        return -ENOMEM;
    if (req_mac) {
        mac_add_u16(ctx, (uint16_t)req_mac_len);
        mac_add(ctx, req_mac, req_mac_len);
    }
    mac_add_message(ctx, msg, at, r.orig_id, (uint16_t)(wire_get_u16(msg + 10) - 1));
    mac_add_variables(ctx, r.name, r.name_len, r.alg, r.alg_len, r.time_signed, r.fudge, error,
                      msg + o + 2, olen, false);
    uint8_t mac[TSIG_MAC_MAX];
    size_t n = mac_end(ctx, mac);
    if (n < r.mac_len || CRYPTO_memcmp(mac, r.mac, r.mac_len) != 0)
        return -EACCES;
    return 0;
}
