/*
 * Unit tests for AXFR out (node/xfr.c): a zone written as a sequence of messages, checked
 * message by message (well formed, within the size limit, the SOA first and last, every
 * record once) and, for a signed request, every message carrying a TSIG record and the
 * first one verifying with the request's MAC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/query.h"
#include "fennec/tsig.h"
#include "fennec/wire.h"
#include "fennec/xfr.h"
#include "fennec/zone.h"
#include "testutil.h"

#define NAMES 5000 /* each with an A and a TXT: about 10,000 records */

static zone_t *zone_big(void)
{
    size_t cap = 64 + (size_t)NAMES * 96;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t o = (size_t)snprintf(text, cap,
                                "$ORIGIN big.test.\n$TTL 300\n@ SOA ns1 host 7 3600 600 86400 "
                                "300\n@ NS ns1\nns1 A 192.0.2.53\n");
    for (int i = 0; i < NAMES; i++)
        o += (size_t)snprintf(text + o, cap - o, "h%d A 10.%d.%d.%d\nh%d TXT \"record %d\"\n", i,
                              i >> 16, (i >> 8) & 255, i & 255, i, i);
    zone_t *z = NULL;
    char err[256];
    int rc = zone_load_text("big.test", text, o, "big.test.zone", &z, err, sizeof(err));
    free(text);
    if (rc != 0)
        fail_msg("%s", err);
    return z;
}

static void req_make(query_xfr_t *req, zone_t *z)
{
    memset(req, 0, sizeof(*req));
    req->zone = z;
    zone_ref(z);
    req->id = 0x4242;
    int l = wire_name_from_text("big.test", req->question);
    wire_put_u16(req->question + l, WIRE_TYPE_AXFR);
    wire_put_u16(req->question + l + 2, WIRE_CLASS_IN);
    req->question_len = (size_t)l + 4;
}

/* Runs a transfer to the end; returns the number of messages and checks each one. */
static unsigned run(xfr_t *x, size_t expect_records, const tsig_key_t *key, const uint8_t *req_mac)
{
    static uint8_t buf[XFR_MSG_MAX + 2];
    static resp_t r;
    unsigned msgs = 0;
    size_t records = 0;
    uint16_t first_type = 0, last_type = 0;
    for (;;) {
        size_t n = 0;
        assert_int_equal(xfr_next(x, buf, sizeof(buf), 1700000000, &n), 0);
        if (n == 0)
            break;
        size_t mlen = (size_t)buf[0] << 8 | buf[1];
        assert_int_equal(mlen + 2, n);
        assert_true(mlen <= XFR_MSG_MAX);
        memcpy(r.b, buf + 2, mlen);
        r.len = mlen;
        /* The rr array of the parser holds 64 records; count the rest by hand. */
        uint16_t an = wire_get_u16(r.b + 6), ar = wire_get_u16(r.b + 10);
        assert_int_equal(wire_get_u16(r.b), 0x4242);
        assert_true(wire_get_u16(r.b + 2) & WIRE_FLAG_QR);
        assert_true(wire_get_u16(r.b + 2) & WIRE_FLAG_AA);
        assert_int_equal(wire_get_u16(r.b + 4), msgs == 0 ? 1 : 0);
        assert_int_equal(ar, key ? 1 : 0);
        size_t pos = WIRE_HEADER_LEN;
        uint8_t name[WIRE_NAME_MAX];
        if (msgs == 0) {
            assert_true(wire_name_read(r.b, r.len, &pos, name, false) > 0);
            pos += 4;
        }
        for (unsigned i = 0; i < (unsigned)an + ar; i++) {
            assert_true(wire_name_read(r.b, r.len, &pos, name, false) > 0);
            uint16_t type = wire_get_u16(r.b + pos);
            pos += 10 + (size_t)wire_get_u16(r.b + pos + 8);
            assert_true(pos <= r.len);
            if (i < an) {
                if (records == 0)
                    first_type = type;
                last_type = type;
                records++;
            } else {
                assert_int_equal(type, TSIG_TYPE);
            }
        }
        assert_int_equal(pos, r.len);
        if (msgs == 0 && key)
            assert_int_equal(tsig_answer_verify(key, r.b, r.len, req_mac, 32), 0);
        msgs++;
    }
    assert_int_equal(first_type, WIRE_TYPE_SOA);
    assert_int_equal(last_type, WIRE_TYPE_SOA);
    assert_int_equal(records, expect_records);
    return msgs;
}

static void test_big_zone_in_several_messages(void **state)
{
    (void)state;
    zone_t *z = zone_big();
    query_xfr_t req;
    req_make(&req, z);
    xfr_t *x = NULL;
    assert_int_equal(xfr_new(&req, &x), 0);
    unsigned msgs = run(x, zone_record_count(z) + 1, NULL, NULL);
    assert_true(msgs > 5);
    assert_int_equal(xfr_records(x), zone_record_count(z) + 1);
    /* Done stays done. */
    size_t n = 1;
    uint8_t buf[XFR_MSG_MAX + 2];
    assert_int_equal(xfr_next(x, buf, sizeof(buf), 0, &n), 0);
    assert_int_equal(n, 0);
    xfr_free(x);
    zone_unref(z);
}

static void test_signed_transfer(void **state)
{
    (void)state;
    zone_t *z = zone_big();
    tsig_key_t key = {0};
    key.wire_len = (size_t)wire_name_from_text("k1", key.wire);
    key.alg = TSIG_HMAC_SHA256;
    assert_int_equal(tsig_base64_decode("c2VjcmV0c2VjcmV0", &key.secret, &key.secret_len), 0);
    query_xfr_t req;
    req_make(&req, z);
    req.tsig_present = true;
    req.tsig.key = &key;
    memcpy(req.tsig.name, key.wire, key.wire_len);
    req.tsig.name_len = key.wire_len;
    req.tsig.mac_len = 32;
    memset(req.tsig.mac, 0xAB, 32);
    req.tsig.orig_id = 0x4242;
    xfr_t *x = NULL;
    assert_int_equal(xfr_new(&req, &x), 0);
    assert_true(run(x, zone_record_count(z) + 1, &key, req.tsig.mac) > 5);
    xfr_free(x);
    free(key.secret);
    zone_unref(z);
}

static void test_small_buffer_refused(void **state)
{
    (void)state;
    zone_t *z = zone_big();
    query_xfr_t req;
    req_make(&req, z);
    xfr_t *x = NULL;
    assert_int_equal(xfr_new(&req, &x), 0);
    uint8_t buf[512];
    size_t n = 0;
    assert_int_equal(xfr_next(x, buf, sizeof(buf), 0, &n), FENNEC_ESPACE);
    xfr_free(x);
    zone_unref(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_zone_in_several_messages),
        cmocka_unit_test(test_signed_transfer),
        cmocka_unit_test(test_small_buffer_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
