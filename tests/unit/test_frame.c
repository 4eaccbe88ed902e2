/* Unit tests for the replication stream's frames (replication/frame.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/frame.h"
#include "fennec/wire.h"

static uint8_t g_nonce[32] = {1, 2, 3};
static uint8_t g_owner[] = "\003www\007example\003com";
static uint8_t g_rdata[4] = {192, 0, 2, 1};

/* An entry frame with a zone diff of one added record (owner and rdata as given). */
typedef struct diff_frame {
    frame_t frame;
    Fennec__Replication__Entry entry;
    Fennec__Replication__ZoneDiff diff;
    uint8_t blob[512]; /* one record in DNS wire format */
} diff_frame_t;

static void diff_frame_init(diff_frame_t *d, uint64_t index, const uint8_t *owner, size_t owner_len,
                            uint32_t type)
{
    fennec__replication__frame__init(&d->frame);
    fennec__replication__entry__init(&d->entry);
    fennec__replication__zone_diff__init(&d->diff);
    size_t n = 0;
    memcpy(d->blob, owner, owner_len);
    n += owner_len;
    const uint8_t head[10] = {(uint8_t)(type >> 8), (uint8_t)type, 0, 1, 0, 0, 1, 44, 0, 4};
    memcpy(d->blob + n, head, sizeof(head));
    n += sizeof(head);
    memcpy(d->blob + n, g_rdata, sizeof(g_rdata));
    n += sizeof(g_rdata);
    d->diff.zone = "example.com";
    d->diff.serial_before = 1;
    d->diff.serial_after = 2;
    d->diff.added = (ProtobufCBinaryData){n, d->blob};
    d->entry.index = index;
    d->entry.commit_time_ns = 1764500000123456789ull;
    d->entry.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_DIFF;
    d->entry.zone_diff = &d->diff;
    d->frame.kind_case = FENNEC__REPLICATION__FRAME__KIND_ENTRY;
    d->frame.entry = &d->entry;
}

static uint8_t *encode_ok(const frame_t *f, size_t *len)
{
    uint8_t *buf = NULL;
    char err[256] = "";
    int rc = frame_encode(f, FRAME_MAX_DEFAULT, &buf, len, err, sizeof(err));
    if (rc)
        fail_msg("frame_encode: %d %s", rc, err);
    return buf;
}

static void test_round_trip_byte_by_byte(void **state)
{
    (void)state;
    diff_frame_t d;
    diff_frame_init(&d, 42, g_owner, sizeof(g_owner), WIRE_TYPE_A);
    size_t len = 0;
    uint8_t *buf = encode_ok(&d.frame, &len);
    assert_int_equal(wire_get_u32(buf), len - FRAME_HEADER_LEN);

    frame_reader_t r;
    frame_reader_init(&r, 0);
    frame_t *f = NULL;
    char err[256];
    /* Nothing fed, then nothing in a read: no frame, no error. */
    assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), 0);
    assert_null(f);
    assert_int_equal(frame_reader_feed(&r, buf, 0), 0);
    assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), 0);
    assert_null(f);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(frame_reader_feed(&r, buf + i, 1), 0);
        assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), 0);
        if (i + 1 < len)
            assert_null(f); /* not whole yet */
    }
    assert_non_null(f);
    assert_int_equal(f->kind_case, FENNEC__REPLICATION__FRAME__KIND_ENTRY);
    assert_int_equal(f->entry->index, 42);
    assert_int_equal(f->entry->commit_time_ns, 1764500000123456789ull);
    assert_string_equal(f->entry->zone_diff->zone, "example.com");
    frame_rr_t rr;
    size_t pos = 0;
    const ProtobufCBinaryData *added = &f->entry->zone_diff->added;
    assert_int_equal(frame_rr_next(added->data, added->len, &pos, &rr, NULL), 1);
    assert_int_equal(rr.owner_len, sizeof(g_owner));
    assert_memory_equal(rr.owner, g_owner, sizeof(g_owner));
    assert_int_equal(rr.type, 1);
    assert_int_equal(rr.ttl, 300);
    assert_int_equal(rr.rdlen, 4);
    assert_memory_equal(rr.rdata, g_rdata, 4);
    assert_int_equal(frame_rr_next(added->data, added->len, &pos, &rr, NULL), 0);
    frame_free(f);
    assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), 0);
    assert_null(f);
    frame_reader_deinit(&r);
    free(buf);
}

static void test_several_frames_in_one_read(void **state)
{
    (void)state;
    Fennec__Replication__Ack ack = FENNEC__REPLICATION__ACK__INIT;
    Fennec__Replication__Heartbeat hb = FENNEC__REPLICATION__HEARTBEAT__INIT;
    frame_t f1 = FENNEC__REPLICATION__FRAME__INIT, f2 = FENNEC__REPLICATION__FRAME__INIT;
    ack.applied_index = 7;
    hb.primary_index = 9;
    hb.time_ns = 5;
    f1.kind_case = FENNEC__REPLICATION__FRAME__KIND_ACK;
    f1.ack = &ack;
    f2.kind_case = FENNEC__REPLICATION__FRAME__KIND_HEARTBEAT;
    f2.heartbeat = &hb;
    size_t l1, l2;
    uint8_t *b1 = encode_ok(&f1, &l1), *b2 = encode_ok(&f2, &l2);
    uint8_t both[256];
    memcpy(both, b1, l1);
    memcpy(both + l1, b2, l2);

    frame_reader_t r;
    frame_reader_init(&r, 0);
    frame_t *f = NULL;
    char err[256];
    /* Both frames and half of a third in one read. */
    assert_int_equal(frame_reader_feed(&r, both, l1 + l2), 0);
    assert_int_equal(frame_reader_feed(&r, b1, 3), 0);
    assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), 0);
    assert_non_null(f);
    assert_int_equal(f->kind_case, FENNEC__REPLICATION__FRAME__KIND_ACK);
    assert_int_equal(f->ack->applied_index, 7);
    frame_free(f);
    assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), 0);
    assert_int_equal(f->kind_case, FENNEC__REPLICATION__FRAME__KIND_HEARTBEAT);
    assert_int_equal(f->heartbeat->primary_index, 9);
    frame_free(f);
    assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), 0);
    assert_null(f);
    assert_int_equal(frame_reader_feed(&r, b1 + 3, l1 - 3), 0);
    assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), 0);
    assert_int_equal(f->kind_case, FENNEC__REPLICATION__FRAME__KIND_ACK);
    frame_free(f);
    frame_reader_deinit(&r);
    free(b1);
    free(b2);
}

/* A length over the maximum is refused when its 4 bytes arrive, before any body, and the
 * error sticks. Exactly the maximum is accepted. */
static void test_length_limit(void **state)
{
    (void)state;
    diff_frame_t d;
    diff_frame_init(&d, 1, g_owner, sizeof(g_owner), WIRE_TYPE_A);
    size_t len = 0;
    uint8_t *buf = encode_ok(&d.frame, &len);
    size_t body = len - FRAME_HEADER_LEN;
    frame_reader_t r;
    frame_t *f = NULL;
    char err[256];

    frame_reader_init(&r, body); /* exactly fits */
    assert_int_equal(frame_reader_feed(&r, buf, len), 0);
    assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), 0);
    assert_non_null(f);
    frame_free(f);
    frame_reader_deinit(&r);

    frame_reader_init(&r, body - 1); /* one byte over */
    assert_int_equal(frame_reader_feed(&r, buf, FRAME_HEADER_LEN), FENNEC_EMALFORMED);
    assert_int_equal(frame_reader_next(&r, &f, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_null(f);
    assert_non_null(strstr(err, "over the maximum"));
    assert_int_equal(frame_reader_feed(&r, buf + FRAME_HEADER_LEN, body), FENNEC_EMALFORMED);
    frame_reader_deinit(&r);

    /* The sender refuses to build what no reader would take. */
    uint8_t *out = NULL;
    size_t olen = 0;
    assert_int_equal(frame_encode(&d.frame, body - 1, &out, &olen, err, sizeof(err)),
                     FENNEC_ESPACE);
    assert_null(out);

    /* A 4 GiB length from a hostile peer: refused at once. */
    static const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    frame_reader_init(&r, 0);
    assert_int_equal(frame_reader_feed(&r, huge, 4), FENNEC_EMALFORMED);
    assert_true(r.cap <= 4096);
    frame_reader_deinit(&r);
    free(buf);
}

static int read_one(const uint8_t *body, size_t n, char *err, size_t errlen)
{
    uint8_t buf[512];
    frame_reader_t r;
    frame_t *f = NULL;
    assert_true(n + 4 <= sizeof(buf));
    wire_put_u32(buf, (uint32_t)n);
    memcpy(buf + 4, body, n);
    frame_reader_init(&r, 0);
    assert_int_equal(frame_reader_feed(&r, buf, n + 4), 0);
    int rc = frame_reader_next(&r, &f, err, errlen);
    if (rc == 0)
        assert_non_null(f);
    else
        assert_null(f);
    frame_free(f);
    /* A refused frame leaves the stream unusable. */
    if (rc != 0) {
        char again[256];
        assert_int_equal(frame_reader_next(&r, &f, again, sizeof(again)), rc);
    }
    frame_reader_deinit(&r);
    return rc;
}

static void test_bad_messages_refused(void **state)
{
    (void)state;
    char err[256];
    /* Not protobuf: a field 1 with wire type 7 (there is none). */
    static const uint8_t junk[] = {0x0f, 0x01, 0x02};
    assert_int_equal(read_one(junk, sizeof(junk), err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "not a replication message"));
    /* An empty message: a frame without a kind. */
    assert_int_equal(read_one(junk, 0, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "without a message"));

    /* Well-formed protobuf that breaks the rules, built and packed by hand. */
    diff_frame_t d;
    uint8_t body[512];
    size_t n;
    static const uint8_t bad_owner[] = "\005www\007example\003com"; /* label runs over */
    diff_frame_init(&d, 1, bad_owner, sizeof(bad_owner), WIRE_TYPE_A);
    n = fennec__replication__frame__pack(&d.frame, body);
    assert_int_equal(read_one(body, n, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "owner"));

    diff_frame_init(&d, 1, g_owner, sizeof(g_owner), 0);
    n = fennec__replication__frame__pack(&d.frame, body);
    assert_int_equal(read_one(body, n, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "type 0"));

    diff_frame_init(&d, 0, g_owner, sizeof(g_owner), WIRE_TYPE_A);
    n = fennec__replication__frame__pack(&d.frame, body);
    assert_int_equal(read_one(body, n, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "index 0"));

    diff_frame_init(&d, 3, g_owner, sizeof(g_owner), WIRE_TYPE_A);
    d.diff.zone = "";
    n = fennec__replication__frame__pack(&d.frame, body);
    assert_int_equal(read_one(body, n, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "zone name"));

    diff_frame_init(&d, 3, g_owner, sizeof(g_owner), WIRE_TYPE_A);
    d.entry.payload_case = FENNEC__REPLICATION__ENTRY__PAYLOAD__NOT_SET;
    n = fennec__replication__frame__pack(&d.frame, body);
    assert_int_equal(read_one(body, n, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "without a payload"));

    /* A field this version does not know (field 15 beside an ack), and one with field
     * number 0 inside a record: both refused. */
    static const uint8_t unknown[] = {0x32, 0x02, 0x08, 0x07, 0x78, 0x01};
    assert_int_equal(read_one(unknown, sizeof(unknown), err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "does not know"));
    static const uint8_t zero_field[] = {
        0x22, 0x35, 0x08, 0x09, 0x10, 0x01, 0x22, 0x0b, 'e',  'x',  'a',  'm',  'p',  'l',
        'e',  '.',  'c',  'o',  'm',  0x28, 0x03, 0x30, 0x01, 0x3a, 0x1e, 0x0a, 0x11, 0x03,
        'w',  'w',  'w',  0x07, 'e',  'x',  'a',  'm',  'p',  'l',  'e',  0x03, 'c',  'o',
        'm',  0x00, 0x10, 0x01, 0x18, 0xac, 0x02, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01};
    assert_int_equal(read_one(zero_field, sizeof(zero_field), err, sizeof(err)), FENNEC_EMALFORMED);

    /* Hello: a nonce of the wrong size, no node id. */
    Fennec__Replication__Hello hello = FENNEC__REPLICATION__HELLO__INIT;
    frame_t f = FENNEC__REPLICATION__FRAME__INIT;
    f.kind_case = FENNEC__REPLICATION__FRAME__KIND_HELLO;
    f.hello = &hello;
    hello.version = 1;
    hello.node_id = "ns2";
    hello.nonce = (ProtobufCBinaryData){16, g_nonce};
    n = fennec__replication__frame__pack(&f, body);
    assert_int_equal(read_one(body, n, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "nonce"));
    hello.nonce.len = 32;
    n = fennec__replication__frame__pack(&f, body);
    assert_int_equal(read_one(body, n, err, sizeof(err)), 0);
    hello.node_id = "";
    n = fennec__replication__frame__pack(&f, body);
    assert_int_equal(read_one(body, n, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "node id"));

    /* The encoder checks too: nothing malformed leaves a node. */
    uint8_t *out = NULL;
    size_t olen;
    assert_int_equal(frame_encode(&f, FRAME_MAX_DEFAULT, &out, &olen, err, sizeof(err)),
                     FENNEC_EMALFORMED);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_byte_by_byte),
        cmocka_unit_test(test_several_frames_in_one_read),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_bad_messages_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
