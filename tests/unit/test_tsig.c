/*
 * Unit tests for TSIG (node/tsig.c), its config (node/cfg_transfer.c) and the query engine's
 * handling of signed queries (node/query.c). The MAC vectors were computed with dnspython
 * 2.3 (dns.message.Message.use_tsig) for the same query, key and time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fennec/cfg.h"
#include "fennec/common.h"
#include "fennec/query.h"
#include "fennec/tsig.h"
#include "fennec/wire.h"
#include "fennec/zone.h"
#include "testutil.h"

#define SECRET "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="
#define T0     1700000000ull

static const char zone_text[] = "$ORIGIN example.com.\n$TTL 500\n"
                                "@ SOA ns1.outside.example. root 3 604800 86400 2419200 604800\n"
                                "@ NS ns1.outside.example.\n"
                                "www A 192.0.2.1\n";

static void key_make(tsig_key_t *k, const char *name, tsig_alg_t alg, const char *secret)
{
    memset(k, 0, sizeof(*k));
    int wl = wire_name_from_text(name, k->wire);
    assert_true(wl > 0);
    k->wire_len = (size_t)wl;
    k->alg = alg;
    assert_int_equal(tsig_base64_decode(secret, &k->secret, &k->secret_len), 0);
}

/* The query of the vectors: id 0x1234, RD, www.example.com A IN, no EDNS. */
static void query_signed(qbuf_t *q, const tsig_key_t *k, uint64_t now, size_t mac_len, uint8_t *mac)
{
    testutil_query_make(q, 0x1234, WIRE_FLAG_RD, "www.example.com", WIRE_TYPE_A, WIRE_CLASS_IN);
    assert_int_equal(tsig_query_sign(k, q->b, &q->len, sizeof(q->b), now, 300, mac_len, mac), 0);
}

static void test_mac_matches_dnspython(void **state)
{
    (void)state;
    static const uint8_t sha256[] = {0xf9, 0xa1, 0xdb, 0xee, 0xcd, 0x10, 0x79, 0xe2,
                                     0xb9, 0xec, 0x4a, 0x75, 0xec, 0x3a, 0x44, 0x64,
                                     0x6b, 0xaa, 0xee, 0xf8, 0xa5, 0x3b, 0xc2, 0x46,
                                     0xd7, 0xa7, 0x6b, 0x71, 0xe9, 0xef, 0x5f, 0xaa};
    static const uint8_t md5[] = {0xc6, 0x0b, 0x3a, 0x09, 0xbc, 0x98, 0xde, 0xd2,
                                  0x9f, 0xde, 0xe3, 0xd4, 0xe7, 0x0f, 0x88, 0xd8};
    static const uint8_t sha1[] = {0x6b, 0xf3, 0x76, 0xbd, 0xee, 0xfd, 0x5c, 0xa5, 0xdf, 0xd7,
                                   0x5f, 0x7d, 0x21, 0xb7, 0xb2, 0x31, 0xea, 0x32, 0x39, 0x00};
    static const uint8_t sha512_head[] = {0xee, 0xb5, 0x76, 0x7c, 0xaa, 0xb1, 0x10, 0xab};
    struct {
        tsig_alg_t alg;
        const uint8_t *mac;
        size_t len;
        size_t wire_len;
    } cases[] = {{TSIG_HMAC_SHA256, sha256, sizeof(sha256), 116},
                 {TSIG_HMAC_MD5, md5, sizeof(md5), 113},
                 {TSIG_HMAC_SHA1, sha1, sizeof(sha1), 102},
                 {TSIG_HMAC_SHA512, sha512_head, sizeof(sha512_head), 148}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tsig_key_t k;
        qbuf_t q;
        uint8_t mac[TSIG_MAC_MAX];
        key_make(&k, "k1.example", cases[i].alg, SECRET);
        query_signed(&q, &k, T0, 0, mac);
        assert_memory_equal(mac, cases[i].mac, cases[i].len);
        assert_int_equal(q.len, cases[i].wire_len);
        free(k.secret);
    }
}

static void test_base64(void **state)
{
    (void)state;
    uint8_t *out = NULL;
    size_t n = 0;
    assert_int_equal(tsig_base64_decode("aGVsbG8=", &out, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(tsig_base64_decode("aGVsbA==", &out, &n), 0);
    assert_int_equal(n, 4);
    free(out);
    const char *bad[] = {"", "aGVsbG8", "aGV sbG8=", "aGVs=G8=", "a===", "aGVsbG8*", "===="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(tsig_base64_decode(bad[i], &out, &n), FENNEC_EMALFORMED);
    assert_int_equal(tsig_alg_from_text("HMAC-SHA256"), TSIG_HMAC_SHA256);
    assert_int_equal(tsig_alg_from_text("hmac-md5"), TSIG_HMAC_MD5);
    assert_int_equal(tsig_alg_from_text("hmac-sha3"), -1);
}

/* ---- the query engine ---- */

static zone_set_t *g_set;
static query_ctx_t *g_ctx;
static cfg_t *g_cfg;
static resp_t g_r;

static int setup(void **state)
{
    (void)state;
    char err[256];
    zone_t *z = NULL;
    if (zone_load_text("example.com", zone_text, strlen(zone_text), "example.com.zone", &z, err,
                       sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int rc = zone_set_new(&z, 1, &g_set);
    zone_unref(z);
    static const char y[] =
        "node: {id: t1}\nlisten: {dns: [\"127.0.0.1:5300\"]}\n"
        "tsig_keys:\n"
        "  - {name: k1.example, algorithm: hmac-sha256, secret: \"" SECRET "\"}\n"
        "  - {name: short, algorithm: hmac-sha1, secret: \"" SECRET "\"}\n"
        "transfer: {allow: [\"192.0.2.0/24\"], tsig: [k1.example]}\n";
    if (rc != 0 || cfg_parse(y, strlen(y), "t.yaml", &g_cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    g_ctx = query_ctx_new();
    query_ctx_set_config(g_ctx, g_cfg);
    return g_ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    query_ctx_free(g_ctx);
    zone_set_free(g_set);
    cfg_free(g_cfg);
    return 0;
}

static void answer(const qbuf_t *q, query_transport_t t)
{
    g_r.len = query_answer_set(g_ctx, g_set, q->b, q->len, g_r.b, QUERY_MAX_ANSWER, t);
    assert_true(g_r.len > 0);
    testutil_answer_parse(&g_r);
}

/* The TSIG record of the answer (the last record), its error, MAC size and Other Len. */
static const rr_t *answer_tsig(uint16_t *error, uint16_t *mac_size, uint16_t *other_len)
{
    assert_true(g_r.nrr > 0);
    const rr_t *t = &g_r.rr[g_r.nrr - 1];
    assert_int_equal(t->type, TSIG_TYPE);
    assert_int_equal(t->sec, 2);
    const uint8_t *rd = g_r.b + t->rdoff;
    int al = wire_name_len(rd, t->rdlen);
    assert_true(al > 0);
    *mac_size = wire_get_u16(rd + al + 8);
    *error = wire_get_u16(rd + al + 10 + *mac_size + 2);
    *other_len = wire_get_u16(rd + al + 10 + *mac_size + 4);
    return t;
}

static void test_unknown_key_is_badkey_unsigned(void **state)
{
    (void)state;
    tsig_key_t k;
    qbuf_t q;
    uint64_t now = (uint64_t)time(NULL);
    key_make(&k, "unknown-key.example", TSIG_HMAC_SHA256, SECRET);
    for (int t = 0; t < 2; t++) {
        query_signed(&q, &k, now, 0, NULL);
        answer(&q, t ? QUERY_TCP : QUERY_UDP);
        assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOTAUTH);
        assert_int_equal(g_r.an, 0);
        assert_int_equal(g_r.ar, 1);
        uint16_t error, mac_size, olen;
        answer_tsig(&error, &mac_size, &olen);
        assert_int_equal(error, TSIG_BADKEY);
        assert_int_equal(mac_size, 0);
    }
    /* A known name with another algorithm is no key either (RFC 8945 5.2.1). */
    free(k.secret);
    key_make(&k, "k1.example", TSIG_HMAC_SHA512, SECRET);
    query_signed(&q, &k, now, 0, NULL);
    answer(&q, QUERY_UDP);
    uint16_t error, mac_size, olen;
    answer_tsig(&error, &mac_size, &olen);
    assert_int_equal(error, TSIG_BADKEY);
    free(k.secret);
}

static void test_signed_query_gets_signed_answer(void **state)
{
    (void)state;
    tsig_key_t k;
    qbuf_t q;
    uint8_t mac[TSIG_MAC_MAX];
    key_make(&k, "K1.Example", TSIG_HMAC_SHA256, SECRET); /* case does not matter */
    wire_name_lower(k.wire);
    for (int t = 0; t < 2; t++) {
        query_signed(&q, &k, (uint64_t)time(NULL), 0, mac);
        answer(&q, t ? QUERY_TCP : QUERY_UDP);
        assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOERROR);
        assert_int_equal(g_r.an, 1);
        uint16_t error, mac_size, olen;
        answer_tsig(&error, &mac_size, &olen);
        assert_int_equal(error, 0);
        assert_int_equal(mac_size, 32);
        assert_int_equal(tsig_answer_verify(&k, g_r.b, g_r.len, mac, 32), 0);
        /* A changed byte breaks the signature. */
        g_r.b[g_r.rr[0].rdoff] ^= 1;
        assert_int_equal(tsig_answer_verify(&k, g_r.b, g_r.len, mac, 32), -EACCES);
    }
    /* Errors are signed too: a name outside the zones is REFUSED, signed. */
    testutil_query_make(&q, 7, 0, "www.example.org", WIRE_TYPE_A, WIRE_CLASS_IN);
    assert_int_equal(
        tsig_query_sign(&k, q.b, &q.len, sizeof(q.b), (uint64_t)time(NULL), 300, 0, mac), 0);
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_REFUSED);
    assert_int_equal(tsig_answer_verify(&k, g_r.b, g_r.len, mac, 32), 0);
    free(k.secret);
}

static void test_bad_secret_is_badsig_unsigned(void **state)
{
    (void)state;
    tsig_key_t k;
    qbuf_t q;
    key_make(&k, "k1.example", TSIG_HMAC_SHA256, "b3RoZXJzZWNyZXQ=");
    query_signed(&q, &k, (uint64_t)time(NULL), 0, NULL);
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOTAUTH);
    assert_int_equal(g_r.an, 0);
    uint16_t error, mac_size, olen;
    answer_tsig(&error, &mac_size, &olen);
    assert_int_equal(error, TSIG_BADSIG);
    assert_int_equal(mac_size, 0);
    free(k.secret);
}

static void test_skewed_time_is_badtime_signed(void **state)
{
    (void)state;
    tsig_key_t k;
    qbuf_t q;
    uint8_t mac[TSIG_MAC_MAX];
    key_make(&k, "k1.example", TSIG_HMAC_SHA256, SECRET);
    uint64_t now = (uint64_t)time(NULL);
    query_signed(&q, &k, now - 1000, 0, mac);
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOTAUTH);
    uint16_t error, mac_size, olen;
    const rr_t *t = answer_tsig(&error, &mac_size, &olen);
    assert_int_equal(error, TSIG_BADTIME);
    assert_int_equal(mac_size, 32);
    assert_int_equal(olen, 6);
    /* Time Signed is the request's; Other Data the server's time. */
    const uint8_t *rd = g_r.b + t->rdoff;
    int al = wire_name_len(rd, t->rdlen);
    uint64_t ts = (uint64_t)wire_get_u16(rd + al) << 32 | wire_get_u32(rd + al + 2);
    assert_int_equal(ts, now - 1000);
    const uint8_t *od = rd + al + 10 + 32 + 6;
    uint64_t server = (uint64_t)wire_get_u16(od) << 32 | wire_get_u32(od + 2);
    assert_true(server >= now && server <= now + 5);
    free(k.secret);
}

/* A request may claim a fudge of up to 65535 s; the server holds it to TSIG_FUDGE_MAX, so a
 * captured request replayed an hour later is refused. */
static void test_claimed_fudge_is_capped(void **state)
{
    (void)state;
    tsig_key_t k;
    qbuf_t q;
    uint8_t mac[TSIG_MAC_MAX];
    key_make(&k, "k1.example", TSIG_HMAC_SHA256, SECRET);
    uint64_t now = (uint64_t)time(NULL);
    for (int late = 0; late < 2; late++) {
        testutil_query_make(&q, 0x1234, WIRE_FLAG_RD, "www.example.com", WIRE_TYPE_A,
                            WIRE_CLASS_IN);
        uint64_t signed_at = now - (late ? 3600 : TSIG_FUDGE_MAX - 5);
        assert_int_equal(tsig_query_sign(&k, q.b, &q.len, sizeof(q.b), signed_at, 65535, 0, mac),
                         0);
        answer(&q, QUERY_UDP);
        uint16_t error, mac_size, olen;
        answer_tsig(&error, &mac_size, &olen);
        if (late) {
            assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOTAUTH);
            assert_int_equal(error, TSIG_BADTIME);
        } else {
            assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOERROR);
            assert_int_equal(error, 0);
        }
    }
    free(k.secret);
}

static void test_truncated_macs(void **state)
{
    (void)state;
    tsig_key_t k;
    qbuf_t q;
    uint16_t error, mac_size, olen;
    key_make(&k, "short", TSIG_HMAC_SHA1, SECRET);
    uint64_t now = (uint64_t)time(NULL);
    /* 12 of 20 octets: allowed by RFC 8945 5.2.2.1, below our floor of 16: BADTRUNC. */
    query_signed(&q, &k, now, 12, NULL);
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOTAUTH);
    answer_tsig(&error, &mac_size, &olen);
    assert_int_equal(error, TSIG_BADTRUNC);
    assert_int_equal(mac_size, 20); /* signed */
    /* 16 octets: accepted. */
    query_signed(&q, &k, now, 16, NULL);
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOERROR);
    /* 8 octets: below 10, a format error, unsigned. */
    query_signed(&q, &k, now, 8, NULL);
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_FORMERR);
    assert_int_equal(g_r.ar, 0);
    free(k.secret);
}

static void test_tsig_not_last_is_formerr(void **state)
{
    (void)state;
    tsig_key_t k;
    qbuf_t q;
    key_make(&k, "k1.example", TSIG_HMAC_SHA256, SECRET);
    query_signed(&q, &k, (uint64_t)time(NULL), 0, NULL);
    testutil_query_add_opt(&q, 1232, 0); /* OPT after the TSIG */
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_FORMERR);
    for (int i = 0; i < g_r.nrr; i++)
        assert_int_not_equal(g_r.rr[i].type, TSIG_TYPE);
    /* A TSIG in the answer section. */
    query_signed(&q, &k, (uint64_t)time(NULL), 0, NULL);
    wire_put_u16(q.b + 6, 1);
    wire_put_u16(q.b + 10, 0);
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_FORMERR);
    free(k.secret);
}

static void test_signed_with_edns_and_truncation(void **state)
{
    (void)state;
    tsig_key_t k;
    qbuf_t q;
    uint8_t mac[TSIG_MAC_MAX];
    key_make(&k, "k1.example", TSIG_HMAC_SHA256, SECRET);
    testutil_query_make(&q, 9, 0, "www.example.com", WIRE_TYPE_A, WIRE_CLASS_IN);
    testutil_query_add_opt(&q, 1232, 0);
    assert_int_equal(
        tsig_query_sign(&k, q.b, &q.len, sizeof(q.b), (uint64_t)time(NULL), 300, 0, mac), 0);
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOERROR);
    assert_non_null(g_r.opt);
    assert_int_equal(g_r.ar, 2);
    assert_int_equal(g_r.rr[g_r.nrr - 1].type, TSIG_TYPE);
    assert_int_equal(tsig_answer_verify(&k, g_r.b, g_r.len, mac, 32), 0);
    free(k.secret);
}

/* ---- transfers through the query engine ---- */

static void test_transfer_rules_in_query(void **state)
{
    (void)state;
    qbuf_t q;
    struct sockaddr_in in = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.77", &in.sin_addr);
    query_xfr_t x;

    /* Allowed address, TCP: handed to the transport, nothing written. */
    query_ctx_set_peer(g_ctx, (struct sockaddr *)&in);
    testutil_query_make(&q, 5, 0, "example.com", WIRE_TYPE_AXFR, WIRE_CLASS_IN);
    assert_int_equal(query_answer_set(g_ctx, g_set, q.b, q.len, g_r.b, QUERY_MAX_ANSWER, QUERY_TCP),
                     0);
    assert_true(query_xfr_take(g_ctx, &x));
    assert_non_null(x.zone);
    assert_int_equal(x.id, 5);
    assert_false(x.tsig_present);
    zone_unref(x.zone);
    assert_false(query_xfr_take(g_ctx, &x));

    /* AXFR over UDP: NOTIMP. IXFR over UDP: the SOA alone. */
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOTIMP);
    testutil_query_make(&q, 6, 0, "example.com", WIRE_TYPE_IXFR, WIRE_CLASS_IN);
    answer(&q, QUERY_UDP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOERROR);
    assert_int_equal(g_r.an, 1);
    assert_int_equal(g_r.rr[0].type, WIRE_TYPE_SOA);

    /* Another address: REFUSED; below the apex: NOTAUTH. */
    inet_pton(AF_INET, "198.51.100.1", &in.sin_addr);
    testutil_query_make(&q, 7, 0, "example.com", WIRE_TYPE_AXFR, WIRE_CLASS_IN);
    answer(&q, QUERY_TCP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_REFUSED);
    testutil_query_make(&q, 8, 0, "www.example.com", WIRE_TYPE_AXFR, WIRE_CLASS_IN);
    answer(&q, QUERY_TCP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_NOTAUTH);

    /* The same address with the transfer key: allowed; with the other key: REFUSED, signed. */
    tsig_key_t k;
    uint8_t mac[TSIG_MAC_MAX];
    key_make(&k, "k1.example", TSIG_HMAC_SHA256, SECRET);
    testutil_query_make(&q, 9, 0, "example.com", WIRE_TYPE_AXFR, WIRE_CLASS_IN);
    assert_int_equal(
        tsig_query_sign(&k, q.b, &q.len, sizeof(q.b), (uint64_t)time(NULL), 300, 0, mac), 0);
    assert_int_equal(query_answer_set(g_ctx, g_set, q.b, q.len, g_r.b, QUERY_MAX_ANSWER, QUERY_TCP),
                     0);
    assert_true(query_xfr_take(g_ctx, &x));
    assert_true(x.tsig_present);
    assert_memory_equal(x.tsig.mac, mac, 32);
    zone_unref(x.zone);
    free(k.secret);
    key_make(&k, "short", TSIG_HMAC_SHA1, SECRET);
    testutil_query_make(&q, 10, 0, "example.com", WIRE_TYPE_AXFR, WIRE_CLASS_IN);
    assert_int_equal(
        tsig_query_sign(&k, q.b, &q.len, sizeof(q.b), (uint64_t)time(NULL), 300, 0, mac), 0);
    answer(&q, QUERY_TCP);
    assert_int_equal(g_r.flags & 0xF, WIRE_RCODE_REFUSED);
    assert_int_equal(tsig_answer_verify(&k, g_r.b, g_r.len, mac, 20), 0);
    free(k.secret);
    query_ctx_set_peer(g_ctx, NULL);
    const query_stats_t *st = query_ctx_stats(g_ctx);
    assert_true(st->xfr[QUERY_XFR_STARTED] >= 2);
    assert_true(st->xfr[QUERY_XFR_REFUSED] >= 2);
}

/* ---- config ---- */

static void expect_error(const char *y, unsigned line, const char *f1, const char *f2)
{
    cfg_t *cfg = NULL;
    char err[512];
    int rc = cfg_parse(y, strlen(y), "err.yaml", &cfg, err, sizeof(err));
    if (rc == 0) {
        cfg_free(cfg);
        fail_msg("accepted:\n%s", y);
    }
    assert_int_equal(rc, FENNEC_ECONFIG);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "err.yaml:%u: ", line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, f1) || !strstr(err, f2))
        fail_msg("expected %s ... %s ... %s, got \"%s\"", prefix, f1, f2, err);
}

#define BASE "node: {id: ns1}\nlisten: {dns: [\"127.0.0.1:5300\"]}\n"

static void test_cfg_errors(void **state)
{
    (void)state;
    expect_error(BASE "tsig_keys:\n  - {name: a, algorithm: hmac-sha256, secret: \"no base64!\"}\n",
                 4, "tsig_keys[0].secret", "base64");
    expect_error(BASE "tsig_keys:\n  - {name: a, algorithm: hmac-sha3, secret: \"" SECRET "\"}\n",
                 4, "tsig_keys[0].algorithm", "unknown algorithm");
    expect_error(BASE "tsig_keys:\n  - {name: a, algorithm: hmac-sha256, secret: \"" SECRET
                      "\"}\n  - {name: A., algorithm: hmac-sha1, secret: \"" SECRET "\"}\n",
                 5, "tsig_keys[1].name", "defined twice");
    expect_error(BASE "tsig_keys:\n  - {name: a, secret: \"" SECRET "\"}\n", 4,
                 "tsig_keys[0].algorithm", "missing");
    expect_error(BASE "tsig_keys:\n  - {name: a, algorithm: hmac-md5, secret: x, extra: 1}\n", 4,
                 "tsig_keys[0]", "unknown key");
    expect_error(BASE "transfer:\n  tsig: [nokey]\n", 4, "transfer.tsig[0]", "no such key");
    expect_error(BASE "transfer:\n  allow: [\"192.0.2.0/33\"]\n", 4, "transfer.allow[0]",
                 "prefix length");
    expect_error(BASE "transfer:\n  allow: [\"ns1.example\"]\n", 4, "transfer.allow[0]",
                 "not an IPv4 or IPv6");
    expect_error(BASE
                 "zones:\n  - name: example.com\n    file: x.zone\n    transfer: {tsig: [k]}\n",
                 6, "zones[0].transfer.tsig[0]", "no such key");
}

static void test_cfg_transfer_rules(void **state)
{
    (void)state;
    static const char y[] =
        BASE "tsig_keys:\n  - {name: xfr-key, algorithm: hmac-sha512, secret: \"" SECRET "\"}\n"
             "transfer: {allow: [\"127.0.0.1\", \"2001:db8::/32\", \"10.1.2.3/8\"]}\n"
             "zones:\n"
             "  - {name: a.test, file: a.zone, transfer: {tsig: [XFR-KEY.]}}\n"
             "  - {name: b.test, file: b.zone}\n";
    cfg_t *cfg = NULL;
    char err[512];
    assert_int_equal(cfg_parse(y, strlen(y), "t.yaml", &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->tsig_keys.count, 1);
    assert_int_equal(cfg->tsig_keys.keys[0].alg, TSIG_HMAC_SHA512);
    const tsig_key_t *key = &cfg->tsig_keys.keys[0];
    const cfg_transfer_t *a = cfg_transfer_for(cfg, "a.test");
    const cfg_transfer_t *b = cfg_transfer_for(cfg, "b.test");
    assert_ptr_equal(b, &cfg->transfer);
    assert_ptr_not_equal(a, &cfg->transfer);

    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
    assert_true(cfg_transfer_allows(b, (struct sockaddr *)&v4, NULL));
    assert_false(cfg_transfer_allows(a, (struct sockaddr *)&v4, NULL)); /* the zone's own rule */
    assert_true(cfg_transfer_allows(a, (struct sockaddr *)&v4, key));
    inet_pton(AF_INET, "127.0.0.2", &v4.sin_addr);
    assert_false(cfg_transfer_allows(b, (struct sockaddr *)&v4, NULL));
    assert_false(cfg_transfer_allows(b, (struct sockaddr *)&v4, key)); /* not b's key */
    inet_pton(AF_INET, "10.200.0.1", &v4.sin_addr);
    assert_true(cfg_transfer_allows(b, (struct sockaddr *)&v4, NULL));
    inet_pton(AF_INET6, "2001:db8:ffff::1", &v6.sin6_addr);
    assert_true(cfg_transfer_allows(b, (struct sockaddr *)&v6, NULL));
    inet_pton(AF_INET6, "2001:db9::1", &v6.sin6_addr);
    assert_false(cfg_transfer_allows(b, (struct sockaddr *)&v6, NULL));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr); /* IPv4 on a dual-stack socket */
    assert_true(cfg_transfer_allows(b, (struct sockaddr *)&v6, NULL));
    assert_false(cfg_transfer_allows(b, NULL, NULL));

    /* Keys and rules are part of what a running node keeps until restart. */
    cfg_t *other = NULL;
    assert_int_equal(cfg_parse(y, strlen(y), "t.yaml", &other, err, sizeof(err)), 0);
    assert_true(cfg_same_runtime(cfg, other));
    other->tsig_keys.keys[0].secret[0] ^= 1;
    assert_false(cfg_same_runtime(cfg, other));
    cfg_free(other);
    cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac_matches_dnspython),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_unknown_key_is_badkey_unsigned),
        cmocka_unit_test(test_signed_query_gets_signed_answer),
        cmocka_unit_test(test_bad_secret_is_badsig_unsigned),
        cmocka_unit_test(test_skewed_time_is_badtime_signed),
        cmocka_unit_test(test_claimed_fudge_is_capped),
        cmocka_unit_test(test_truncated_macs),
        cmocka_unit_test(test_tsig_not_last_is_formerr),
        cmocka_unit_test(test_signed_with_edns_and_truncation),
        cmocka_unit_test(test_transfer_rules_in_query),
        cmocka_unit_test(test_cfg_errors),
        cmocka_unit_test(test_cfg_transfer_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
