/* Helpers shared by the unit tests (testutil.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <libknot/packet/pkt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

void testutil_query_make(qbuf_t *q, uint16_t id, uint16_t flags, const char *name, uint16_t qtype,
                         uint16_t qclass)
{
    memset(q, 0, sizeof(*q));
    wire_put_u16(q->b, id);
    wire_put_u16(q->b + 2, flags);
    wire_put_u16(q->b + 4, 1);
    int l = wire_name_from_text(name, q->b + WIRE_HEADER_LEN);
    assert_true(l > 0);
    q->len = WIRE_HEADER_LEN + (size_t)l;
    wire_put_u16(q->b + q->len, qtype);
    wire_put_u16(q->b + q->len + 2, qclass);
    q->len += 4;
}

void testutil_query_add_opt(qbuf_t *q, uint16_t payload, uint32_t ttlf)
{
    uint8_t *o = q->b + q->len;
    o[0] = 0;
    wire_put_u16(o + 1, WIRE_TYPE_OPT);
    wire_put_u16(o + 3, payload);
    wire_put_u32(o + 5, ttlf);
    wire_put_u16(o + 9, 0);
    q->len += 11;
    wire_put_u16(q->b + 10, wire_get_u16(q->b + 10) + 1);
}

void testutil_answer_parse(resp_t *r)
{
    assert_true(r->len >= WIRE_HEADER_LEN);
    /* libknot parses in place and takes a TSIG record off the message: give it a copy. */
    uint8_t *copy = malloc(r->len);
    assert_non_null(copy);
    memcpy(copy, r->b, r->len);
    knot_pkt_t *kp = knot_pkt_new(copy, (uint16_t)r->len, NULL);
    assert_non_null(kp);
    int krc = knot_pkt_parse(kp, 0);
    knot_pkt_free(kp);
    free(copy);
    if (krc != 0)
        fail_msg("libknot cannot parse the answer: %d", krc);

    r->id = wire_get_u16(r->b);
    r->flags = wire_get_u16(r->b + 2);
    r->qd = wire_get_u16(r->b + 4);
    r->an = wire_get_u16(r->b + 6);
    r->ns = wire_get_u16(r->b + 8);
    r->ar = wire_get_u16(r->b + 10);
    r->nrr = 0;
    r->opt = NULL;
    size_t pos = WIRE_HEADER_LEN;
    assert_true(r->qd <= 1);
    if (r->qd == 1) {
        r->qlen = wire_name_read(r->b, r->len, &pos, r->qname, false);
        assert_true(r->qlen > 0);
        assert_true(pos + 4 <= r->len);
        r->qtype = wire_get_u16(r->b + pos);
        r->qclass = wire_get_u16(r->b + pos + 2);
        pos += 4;
    }
    int total = r->an + r->ns + r->ar;
    assert_true(total <= 64);
    for (int i = 0; i < total; i++) {
        rr_t *rr = &r->rr[r->nrr++];
        rr->sec = i < r->an ? 0 : i < r->an + r->ns ? 1 : 2;
        rr->owner_off = pos;
        rr->owner_len = wire_name_read(r->b, r->len, &pos, rr->owner, false);
        assert_true(rr->owner_len > 0);
        assert_true(pos + 10 <= r->len);
        rr->type = wire_get_u16(r->b + pos);
        rr->cls = wire_get_u16(r->b + pos + 2);
        rr->ttl = wire_get_u32(r->b + pos + 4);
        rr->rdlen = wire_get_u16(r->b + pos + 8);
        rr->rdoff = pos + 10;
        pos += 10 + rr->rdlen;
        assert_true(pos <= r->len);
        if (rr->type == WIRE_TYPE_OPT) {
            assert_int_equal(rr->sec, 2);
            assert_null(r->opt);
            r->opt = rr;
        }
    }
    assert_int_equal(pos, r->len); /* nothing after the last record */
}

int testutil_tmpdir_make(char *dir, size_t len, const char *name)
{
    if ((size_t)snprintf(dir, len, "/tmp/fennec-test-%s-XXXXXX", name) >= len)
        return -1;
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int testutil_tmpdir_remove(const char *dir)
{
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
