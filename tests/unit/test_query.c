/*
 * Unit tests for the query engine (node/query.c): queries are built by hand, answered by
 * query_answer_set() from zones loaded with zone_load_text(), and the answers are checked
 * byte by byte and section by section. Every answer is also parsed by libknot's packet
 * parser, an independent check that it is a well-formed DNS message.
 *
 * The expectations were checked against Knot DNS 3.2 serving the same zone, except where a
 * comment says fennec deliberately differs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/cfg.h"
#include "fennec/query.h"
#include "fennec/wire.h"
#include "fennec/zone.h"
#include "testutil.h"

/* ---- allocation counting ----
 *
 * The query engine promises no allocation per query. To check it, every call to malloc,
 * calloc and realloc in the process is counted:
 *  - in a plain build, this file defines malloc/calloc/realloc/free itself; symbols in the
 *    executable take precedence over libc's for the whole process (ELF interposition), and
 *    they forward to glibc's __libc_* entry points;
 *  - under AddressSanitizer (which owns malloc and must keep it), the sanitizer's own
 *    malloc hook (__sanitizer_install_malloc_and_free_hooks) counts instead.
 * Counting calls rather than bytes in use (mallinfo2, __sanitizer_get_current_allocated_bytes)
 * also catches an allocation that is freed again before the query ends. The test first
 * proves the counter moves for a deliberate malloc and for a query loop that allocates, and
 * fails loudly if it does not.
 */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

static atomic_ulong g_allocs;

#ifdef TEST_ASAN
/* From <sanitizer/allocator_interface.h>, which gcc 12 does not ship. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
size_t __sanitizer_get_current_allocated_bytes(void);

static void count_malloc(const volatile void *ptr, size_t size)
{
    (void)ptr;
    (void)size;
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
}

static void count_free(const volatile void *ptr)
{
    (void)ptr;
}

static const char *counting_method = "AddressSanitizer malloc hook";

static void counting_init(void)
{
    static bool done;
    if (!done)
        __sanitizer_install_malloc_and_free_hooks(count_malloc, count_free);
    done = true;
}
#else
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void __libc_free(void *ptr);

void *malloc(size_t size)
{
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t size)
{
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return __libc_realloc(ptr, size);
}

void free(void *ptr)
{
    __libc_free(ptr);
}

static const char *counting_method = "malloc interposer";

static void counting_init(void)
{
}
#endif

static unsigned long allocs_now(void)
{
    return atomic_load_explicit(&g_allocs, memory_order_relaxed);
}

/* ---- the zones ---- */

#define BIG_RECORDS 10  /* TXT records of 200 bytes: ~2.1 KB, fits nowhere but TCP */
#define MID_RECORDS 4   /* ~850 bytes: too big for 512, fits 1232 */
#define TXT_LEN     199 /* one character-string of 199 bytes: rdata of 200 */

static const char example_com[] = "$ORIGIN example.com.\n"
                                  "$TTL 3600\n"
                                  "@ 86400 IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300\n"
                                  "@ NS ns1\n"
                                  "@ NS ns2\n"
                                  "@ MX 10 mail\n"
                                  "ns1 A 192.0.2.1\n"
                                  "ns2 A 192.0.2.2\n"
                                  "mail A 192.0.2.25\n"
                                  "www A 192.0.2.10\n"
                                  "www AAAA 2001:db8::10\n"
                                  "alias CNAME www\n"
                                  "chain1 CNAME chain2\n"
                                  "chain2 CNAME www\n"
                                  "loop1 CNAME loop2\n"
                                  "loop2 CNAME loop1\n"
                                  "ext CNAME www.example.org.\n"
                                  "out CNAME www.example.net.\n"
                                  "a.b.c A 192.0.2.3\n"
                                  "sub NS ns.sub\n"
                                  "sub NS ns.other.net.\n"
                                  "ns.sub A 192.0.2.53\n"
                                  "ns.sub AAAA 2001:db8::53\n"
                                  "*.wild A 192.0.2.99\n"
                                  "*.wild TXT \"wild\"\n"
                                  "*.w2 A 192.0.2.98\n"
                                  "there.w2 TXT \"there\"\n"
                                  "tocut CNAME www.sub\n"
                                  "nxcname CNAME nothere\n"
                                  "_sip._tcp SRV 10 5 5060 mail\n";

/* SOA TTL below MINIMUM: the negative TTL is the SOA TTL. */
static const char example_org[] = "$ORIGIN example.org.\n"
                                  "@ 60 IN SOA ns1 hostmaster 7 7200 3600 1209600 300\n"
                                  "@ 3600 NS ns1\n"
                                  "ns1 3600 A 192.0.2.1\n"
                                  "www 3600 A 192.0.2.80\n";

static zone_set_t *g_set;
static query_ctx_t *g_ctx;

static void append_txt(char *text, size_t cap, const char *owner, int count)
{
    for (int i = 0; i < count; i++) {
        size_t o = strlen(text);
        assert_true(o + TXT_LEN + 64 < cap);
        o += (size_t)snprintf(text + o, cap - o, "%s TXT \"%02d", owner, i);
        memset(text + o, 'x', TXT_LEN - 2);
        o += TXT_LEN - 2;
        snprintf(text + o, cap - o, "\"\n");
    }
}

static int setup(void **state)
{
    (void)state;
    static char text[16384];
    char err[512];
    zone_t *z[2] = {NULL, NULL};
    snprintf(text, sizeof(text), "%s", example_com);
    append_txt(text, sizeof(text), "big", BIG_RECORDS);
    append_txt(text, sizeof(text), "mid", MID_RECORDS);
    if (zone_load_text("example.com", text, strlen(text), "example.com.zone", &z[0], err,
                       sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (zone_load_text("example.org", example_org, strlen(example_org), "example.org.zone", &z[1],
                       err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int rc = zone_set_new(z, 2, &g_set);
    zone_unref(z[0]);
    zone_unref(z[1]);
    g_ctx = query_ctx_new();
    return rc == 0 && g_ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    zone_set_free(g_set);
    query_ctx_free(g_ctx);
    return 0;
}

/* ---- reading answers ---- */

static resp_t g_r;

static uint8_t rcode_of(const resp_t *r)
{
    return (uint8_t)(r->flags & 0xF);
}

/* Answers Q into g_r with an output buffer of CAP bytes; returns the length. */
static size_t ask_cap(const qbuf_t *q, query_transport_t t, size_t cap)
{
    memset(g_r.b, 0xA5, sizeof(g_r.b));
    g_r.len = query_answer_set(g_ctx, g_set, q->b, q->len, g_r.b, cap, t);
    assert_true(g_r.len <= cap);
    /* The engine may use the whole buffer as scratch (an RRset rolled back on truncation),
     * but never a byte past it. */
    for (size_t i = cap; i < cap + 64; i++)
        assert_int_equal(g_r.b[i], 0xA5);
    if (g_r.len > 0)
        testutil_answer_parse(&g_r);
    return g_r.len;
}

static const resp_t *ask(const qbuf_t *q, query_transport_t t)
{
    size_t n = ask_cap(q, t, QUERY_MAX_ANSWER);
    assert_true(n > 0);
    if (t == QUERY_UDP && !g_r.opt)
        assert_true(n <= 512);
    return &g_r;
}

/* The query name as text, in the case of the message. */
static void name_text(const uint8_t *wire, char *out)
{
    wire_name_to_text(wire, out);
}

static void expect_owner(const rr_t *rr, const char *text)
{
    char got[WIRE_NAME_TEXT_MAX];
    uint8_t w[WIRE_NAME_MAX];
    assert_true(wire_name_from_text(text, w) > 0);
    name_text(rr->owner, got);
    if (!wire_name_equal(rr->owner, w))
        fail_msg("owner %s, expected %s", got, text);
}

static void expect_a(const resp_t *r, const rr_t *rr, const char *owner, uint32_t ttl,
                     const uint8_t addr[4])
{
    expect_owner(rr, owner);
    assert_int_equal(rr->type, WIRE_TYPE_A);
    assert_int_equal(rr->cls, WIRE_CLASS_IN);
    assert_int_equal(rr->ttl, ttl);
    assert_int_equal(rr->rdlen, 4);
    assert_memory_equal(r->b + rr->rdoff, addr, 4);
}

/* The rdata name of a CNAME/NS at RR, uncompressed. */
static void expect_rdata_name(const resp_t *r, const rr_t *rr, const char *text)
{
    uint8_t got[WIRE_NAME_MAX], w[WIRE_NAME_MAX];
    size_t p = rr->rdoff;
    assert_true(wire_name_read(r->b, r->len, &p, got, false) > 0);
    assert_int_equal(p, rr->rdoff + rr->rdlen);
    assert_true(wire_name_from_text(text, w) > 0);
    char gt[WIRE_NAME_TEXT_MAX];
    name_text(got, gt);
    if (!wire_name_equal(got, w))
        fail_msg("rdata name %s, expected %s", gt, text);
}

static void expect_neg_soa(const resp_t *r, const rr_t *rr, const char *zone, uint32_t ttl)
{
    assert_int_equal(rr->sec, 1);
    expect_owner(rr, zone);
    assert_int_equal(rr->type, WIRE_TYPE_SOA);
    assert_int_equal(rr->ttl, ttl);
    /* The SOA rdata reads back: two names and five numbers. */
    uint8_t n[WIRE_NAME_MAX];
    size_t p = rr->rdoff;
    assert_true(wire_name_read(r->b, r->len, &p, n, false) > 0);
    assert_true(wire_name_read(r->b, r->len, &p, n, false) > 0);
    assert_int_equal(p + 20, rr->rdoff + rr->rdlen);
}

#define RD    WIRE_FLAG_RD
#define FLAGS (WIRE_FLAG_RD)

static const uint8_t A_WWW[4] = {192, 0, 2, 10};

/* ---- tests ---- */

static void test_header_flags(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 0xBEEF, WIRE_FLAG_RD | WIRE_FLAG_CD, "www.example.com", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(r->id, 0xBEEF);
    assert_true(r->flags & WIRE_FLAG_QR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_true(r->flags & WIRE_FLAG_RD);
    /* RFC 4035 3.1.6: the CD bit is copied. (Knot DNS clears it for unsigned zones.) */
    assert_true(r->flags & WIRE_FLAG_CD);
    assert_false(r->flags & WIRE_FLAG_TC);
    assert_false(r->flags & WIRE_FLAG_RA); /* authoritative only */
    assert_false(r->flags & WIRE_FLAG_AD);
    assert_int_equal((r->flags >> 11) & 0xF, 0);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->qd, 1);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->ns, 0);
    assert_int_equal(r->ar, 0);
    expect_a(r, &r->rr[0], "www.example.com", 3600, A_WWW);
    /* The owner is a pointer to the question. */
    assert_int_equal(wire_get_u16(r->b + r->rr[0].owner_off), 0xC000 | WIRE_HEADER_LEN);
    assert_int_equal(r->len, 12 + 17 + 4 + 16);

    /* RD and CD clear, Z set: RD/CD stay clear, Z is not echoed. */
    testutil_query_make(&q, 1, 0x0040, "www.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->flags, WIRE_FLAG_QR | WIRE_FLAG_AA);
    /* AD in the query is not echoed either: the zone is not signed. */
    testutil_query_make(&q, 1, WIRE_FLAG_AD, "www.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->flags, WIRE_FLAG_QR | WIRE_FLAG_AA);
}

static void test_opcodes(void **state)
{
    (void)state;
    qbuf_t q;
    struct {
        unsigned opcode;
        uint8_t rcode;
    } cases[] = {
        {1, WIRE_RCODE_NOTIMP},  /* IQUERY */
        {2, WIRE_RCODE_NOTIMP},  /* STATUS */
        {3, WIRE_RCODE_NOTIMP},  /* unassigned */
        {4, WIRE_RCODE_NOTAUTH}, /* NOTIFY: not a secondary of anyone */
        {5, WIRE_RCODE_NOTAUTH}, /* UPDATE: not accepted here */
        {6, WIRE_RCODE_NOTIMP},  /* DSO */
        {15, WIRE_RCODE_NOTIMP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        testutil_query_make(&q, 7, (uint16_t)(cases[i].opcode << 11 | RD), "example.com",
                            WIRE_TYPE_SOA, 1);
        const resp_t *r = ask(&q, QUERY_UDP);
        assert_int_equal((r->flags >> 11) & 0xF, cases[i].opcode);
        assert_int_equal(rcode_of(r), cases[i].rcode);
        assert_false(r->flags & WIRE_FLAG_AA);
        assert_true(r->flags & WIRE_FLAG_RD);
        assert_int_equal(r->qd, 1);
        assert_int_equal(r->an + r->ns + r->ar, 0);
        assert_memory_equal(r->b + 12, q.b + 12, q.len - 12); /* question echoed */
    }
}

static void test_question_case(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 2, RD, "WwW.ExAmPlE.CoM", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_memory_equal(r->b + 12, q.b + 12, q.len - 12);
    assert_memory_equal(r->qname,
                        "\x03WwW\x07"
                        "ExAmPlE\x03"
                        "CoM",
                        17);
    assert_int_equal(r->an, 1);
    /* Owner pointer to the question: it reads in the query's case. */
    assert_memory_equal(r->rr[0].owner,
                        "\x03WwW\x07"
                        "ExAmPlE\x03"
                        "CoM",
                        17);

    /* NXDOMAIN keeps the case too. */
    testutil_query_make(&q, 2, RD, "NoPe.EXAMPLE.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);
    assert_memory_equal(r->b + 12, q.b + 12, q.len - 12);
}

static void test_nxdomain_nodata(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 3, 0, "nope.example.com", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 0);
    assert_int_equal(r->ns, 1);
    assert_int_equal(r->ar, 0);
    /* RFC 2308 3: min(SOA TTL 86400, MINIMUM 300). */
    expect_neg_soa(r, &r->rr[0], "example.com", 300);

    /* NODATA: the name exists, the type does not. */
    testutil_query_make(&q, 3, 0, "www.example.com", WIRE_TYPE_MX, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 0);
    assert_int_equal(r->ns, 1);
    expect_neg_soa(r, &r->rr[0], "example.com", 300);

    /* An empty non-terminal is NODATA, not NXDOMAIN. */
    testutil_query_make(&q, 3, 0, "b.c.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 0);
    assert_int_equal(r->ns, 1);
    testutil_query_make(&q, 3, 0, "c.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    /* Below an existing name: NXDOMAIN. */
    testutil_query_make(&q, 3, 0, "x.www.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);

    /* SOA TTL below MINIMUM: the SOA TTL. */
    testutil_query_make(&q, 3, 0, "nope.example.org", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);
    expect_neg_soa(r, &r->rr[0], "example.org", 60);
    testutil_query_make(&q, 3, 0, "www.example.org", WIRE_TYPE_TXT, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    expect_neg_soa(r, &r->rr[0], "example.org", 60);

    /* The SOA itself is answered with its own TTL. */
    testutil_query_make(&q, 3, 0, "example.com", WIRE_TYPE_SOA, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->rr[0].ttl, 86400);
}

static void test_refused(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 4, RD, "www.example.net", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_REFUSED);
    assert_false(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->qd, 1);
    assert_int_equal(r->an + r->ns + r->ar, 0);
    assert_int_equal(r->len, q.len);

    /* With EDNS: an OPT carrying EDE 20 (Not Authoritative), RFC 8914. */
    testutil_query_add_opt(&q, 1232, 0);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_REFUSED);
    assert_int_equal(r->ar, 1);
    assert_non_null(r->opt);
    assert_int_equal(r->opt->rdlen, 6);
    const uint8_t *o = r->b + r->opt->rdoff;
    assert_int_equal(wire_get_u16(o), 15);
    assert_int_equal(wire_get_u16(o + 2), 2);
    assert_int_equal(wire_get_u16(o + 4), 20);

    /* A parent of a served zone is not served either. */
    testutil_query_make(&q, 4, 0, "com", WIRE_TYPE_NS, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_REFUSED);

    /* Class CH is not served: REFUSED, as Knot DNS does. */
    testutil_query_make(&q, 4, 0, "www.example.com", WIRE_TYPE_A, 3);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_REFUSED);
    /* Class ANY is answered from IN. */
    testutil_query_make(&q, 4, 0, "www.example.com", WIRE_TYPE_A, WIRE_CLASS_ANY);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->qclass, WIRE_CLASS_ANY);
    assert_int_equal(r->rr[0].cls, WIRE_CLASS_IN);
}

static void test_formerr(void **state)
{
    (void)state;
    qbuf_t q;
    const resp_t *r;

    /* No question. */
    testutil_query_make(&q, 5, RD, "www.example.com", WIRE_TYPE_A, 1);
    wire_put_u16(q.b + 4, 0);
    q.len = 12;
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);
    assert_int_equal(r->id, 5);
    assert_true(r->flags & WIRE_FLAG_RD);
    assert_int_equal(r->qd + r->an + r->ns + r->ar, 0);
    assert_int_equal(r->len, 12);

    /* Two questions. */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    memcpy(q.b + q.len, q.b + 12, q.len - 12);
    q.len += q.len - 12;
    wire_put_u16(q.b + 4, 2);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);

    /* A question cut short. */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    q.len -= 2;
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);
    assert_int_equal(r->qd, 0);

    /* A compression pointer in the question (it can only point into the header). */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    memcpy(q.b + 12, "\x03www\xC0\x02\x00\x01\x00\x01", 10);
    q.len = 22;
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);

    /* Trailing garbage after the question. */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    q.b[q.len++] = 0;
    q.b[q.len++] = 1;
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);
    assert_int_equal(r->qd, 1);
    assert_int_equal(r->an + r->ns + r->ar, 0);
    assert_false(r->flags & WIRE_FLAG_AA);

    /* Trailing garbage after an OPT. */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    testutil_query_add_opt(&q, 1232, 0);
    q.b[q.len++] = 0xFF;
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);

    /* Two OPT records (RFC 6891 6.1.1). */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    testutil_query_add_opt(&q, 1232, 0);
    testutil_query_add_opt(&q, 1232, 0);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);
    assert_int_equal(r->an + r->ns, 0);

    /* An OPT in the answer section, and one with a non-root owner. */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    testutil_query_add_opt(&q, 1232, 0);
    wire_put_u16(q.b + 10, 0);
    wire_put_u16(q.b + 6, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    /* owner: a pointer to the question name, then type OPT, class 1232, TTL 0, rdlen 0 */
    memcpy(q.b + q.len, "\xC0\x0C\x00\x29\x04\xD0\x00\x00\x00\x00\x00\x00", 12);
    q.len += 12;
    wire_put_u16(q.b + 10, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);

    /* An additional record whose rdata runs past the end. */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    testutil_query_add_opt(&q, 1232, 0);
    wire_put_u16(q.b + q.len - 2, 4);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);

    /* Other sections with well-formed records are fine (a non-OPT record in additional). */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    memcpy(q.b + q.len, "\xC0\x0C\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x01\x02\x03\x04", 16);
    q.len += 16;
    wire_put_u16(q.b + 10, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 1);
}

static void test_dropped(void **state)
{
    (void)state;
    qbuf_t q;
    uint8_t out[QUERY_MAX_ANSWER];
    uint64_t dropped = query_ctx_stats(g_ctx)->dropped;

    /* A response is never answered. */
    testutil_query_make(&q, 6, WIRE_FLAG_QR | WIRE_FLAG_AA, "www.example.com", WIRE_TYPE_A, 1);
    assert_int_equal(query_answer_set(g_ctx, g_set, q.b, q.len, out, sizeof(out), QUERY_UDP), 0);
    assert_int_equal(query_answer_set(g_ctx, g_set, q.b, q.len, out, sizeof(out), QUERY_TCP), 0);
    /* Shorter than a header. */
    testutil_query_make(&q, 6, 0, "www.example.com", WIRE_TYPE_A, 1);
    for (size_t n = 0; n < WIRE_HEADER_LEN; n++)
        assert_int_equal(query_answer_set(g_ctx, g_set, q.b, n, out, sizeof(out), QUERY_UDP), 0);
    assert_int_equal(query_ctx_stats(g_ctx)->dropped, dropped + 2 + WIRE_HEADER_LEN);
    /* Exactly a header (no question): FORMERR, answered. */
    assert_int_equal(query_answer_set(g_ctx, g_set, q.b, 12, out, sizeof(out), QUERY_UDP), 12);
}

static void test_cname(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 8, 0, "alias.example.com", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 2);
    expect_owner(&r->rr[0], "alias.example.com");
    assert_int_equal(r->rr[0].type, WIRE_TYPE_CNAME);
    expect_rdata_name(r, &r->rr[0], "www.example.com");
    expect_a(r, &r->rr[1], "www.example.com", 3600, A_WWW);

    /* A chain of two. */
    testutil_query_make(&q, 8, 0, "chain1.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 3);
    expect_owner(&r->rr[0], "chain1.example.com");
    expect_rdata_name(r, &r->rr[0], "chain2.example.com");
    expect_owner(&r->rr[1], "chain2.example.com");
    expect_rdata_name(r, &r->rr[1], "www.example.com");
    expect_a(r, &r->rr[2], "www.example.com", 3600, A_WWW);

    /* A loop stops: each CNAME once. */
    testutil_query_make(&q, 8, 0, "loop1.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 2);
    expect_owner(&r->rr[0], "loop1.example.com");
    expect_owner(&r->rr[1], "loop2.example.com");
    expect_rdata_name(r, &r->rr[1], "loop1.example.com");

    /* Into another zone served here (example.org): followed, as NSD does. */
    testutil_query_make(&q, 8, 0, "ext.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 2);
    static const uint8_t a_org[4] = {192, 0, 2, 80};
    expect_a(r, &r->rr[1], "www.example.org", 3600, a_org);
    assert_int_equal(r->ns + r->ar, 0);
    /* ... and its NODATA comes with that zone's SOA */
    testutil_query_make(&q, 8, 0, "ext.example.com", WIRE_TYPE_MX, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->ns, 1);
    expect_neg_soa(r, &r->rr[1], "example.org", 60);

    /* Out of the zones served here: only the CNAME. */
    testutil_query_make(&q, 8, 0, "out.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->ns + r->ar, 0);

    /* To a name that does not exist: NXDOMAIN with the CNAME and the SOA (RFC 6604). */
    testutil_query_make(&q, 8, 0, "nxcname.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->ns, 1);
    expect_neg_soa(r, &r->rr[1], "example.com", 300);

    /* Into a delegation: the CNAME, then the referral; AA stays set for the CNAME. */
    testutil_query_make(&q, 8, 0, "tocut.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->ns, 2);
    assert_int_equal(r->ar, 2);

    /* Asking for the CNAME itself does not follow it. */
    testutil_query_make(&q, 8, 0, "alias.example.com", WIRE_TYPE_CNAME, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->rr[0].type, WIRE_TYPE_CNAME);
}

static void test_referral(void **state)
{
    (void)state;
    qbuf_t q;
    static const uint8_t glue4[4] = {192, 0, 2, 53};
    const char *names[] = {"www.sub.example.com", "sub.example.com", "ns.sub.example.com",
                           "a.b.sub.example.com"};
    for (size_t i = 0; i < 4; i++) {
        testutil_query_make(&q, 9, RD, names[i], WIRE_TYPE_A, 1);
        const resp_t *r = ask(&q, QUERY_UDP);
        assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
        assert_false(r->flags & WIRE_FLAG_AA);
        assert_int_equal(r->an, 0);
        assert_int_equal(r->ns, 2);
        assert_int_equal(r->ar, 2);
        for (int k = 0; k < 2; k++) {
            assert_int_equal(r->rr[k].sec, 1);
            assert_int_equal(r->rr[k].type, WIRE_TYPE_NS);
            expect_owner(&r->rr[k], "sub.example.com");
        }
        /* Glue: ns.sub A and AAAA. */
        bool a = false, aaaa = false;
        for (int k = 2; k < 4; k++) {
            expect_owner(&r->rr[k], "ns.sub.example.com");
            if (r->rr[k].type == WIRE_TYPE_A) {
                a = true;
                assert_memory_equal(r->b + r->rr[k].rdoff, glue4, 4);
            }
            aaaa |= r->rr[k].type == WIRE_TYPE_AAAA;
        }
        assert_true(a && aaaa);
    }
    /* NS at the cut is a referral too. */
    testutil_query_make(&q, 9, 0, "sub.example.com", WIRE_TYPE_NS, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_false(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 0);
    assert_int_equal(r->ns, 2);
}

static void test_ds_at_cut(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 10, 0, "sub.example.com", WIRE_TYPE_DS, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 0);
    assert_int_equal(r->ns, 1);
    assert_int_equal(r->ar, 0);
    expect_neg_soa(r, &r->rr[0], "example.com", 300);
    /* DS below the cut is still a referral. */
    testutil_query_make(&q, 10, 0, "x.sub.example.com", WIRE_TYPE_DS, 1);
    r = ask(&q, QUERY_UDP);
    assert_false(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->ns, 2);
}

static void test_wildcard(void **state)
{
    (void)state;
    qbuf_t q;
    static const uint8_t w4[4] = {192, 0, 2, 99};
    testutil_query_make(&q, 11, 0, "Foo.wild.example.com", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 1);
    /* The owner is the query name, never "*". */
    expect_a(r, &r->rr[0], "foo.wild.example.com", 3600, w4);
    assert_memory_equal(r->rr[0].owner, q.b + 12, q.len - 16);

    /* More than one label below the closest encloser. */
    testutil_query_make(&q, 11, 0, "a.b.wild.example.com", WIRE_TYPE_TXT, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    expect_owner(&r->rr[0], "a.b.wild.example.com");
    assert_int_equal(r->rr[0].type, WIRE_TYPE_TXT);

    /* A type the wildcard does not have: NODATA. */
    testutil_query_make(&q, 11, 0, "foo.wild.example.com", WIRE_TYPE_MX, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 0);
    assert_int_equal(r->ns, 1);

    /* The wildcard's parent is an ENT: NODATA, no synthesis. */
    testutil_query_make(&q, 11, 0, "wild.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 0);

    /* The "*" name itself is answered as it stands. */
    testutil_query_make(&q, 11, 0, "*.wild.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    expect_owner(&r->rr[0], "*.wild.example.com");

    /* No wildcard beside: NXDOMAIN. */
    testutil_query_make(&q, 11, 0, "foo.nowild.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);

    /* RFC 4592 2.2.1: the closest encloser of x.there.w2 is there.w2, which exists and has
     * no "*" child, so *.w2 does not apply: NXDOMAIN. The name beside it is synthesized. */
    testutil_query_make(&q, 11, 0, "x.there.w2.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);
    assert_int_equal(r->an, 0);
    expect_neg_soa(r, &r->rr[0], "example.com", 300);
    testutil_query_make(&q, 11, 0, "x.w2.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    static const uint8_t w98[4] = {192, 0, 2, 98};
    assert_int_equal(r->an, 1);
    expect_a(r, &r->rr[0], "x.w2.example.com", 3600, w98);
    /* and the existing name answers NODATA for A (its own data only) */
    testutil_query_make(&q, 11, 0, "there.w2.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 0);
}

static void test_additional(void **state)
{
    (void)state;
    qbuf_t q;
    static const uint8_t mail4[4] = {192, 0, 2, 25};
    testutil_query_make(&q, 12, 0, "example.com", WIRE_TYPE_MX, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->ar, 1);
    expect_a(r, &r->rr[1], "mail.example.com", 3600, mail4);
    /* The MX exchange is compressed against the question. */
    const rr_t *mx = &r->rr[0];
    assert_int_equal(mx->rdlen, 2 + 5 + 2);

    testutil_query_make(&q, 12, 0, "example.com", WIRE_TYPE_NS, 1);
    r = ask(&q, QUERY_UDP);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 2);
    assert_int_equal(r->ar, 2);
    /* which records: the A of ns1 and of ns2, nothing else */
    static const uint8_t ns1[4] = {192, 0, 2, 1}, ns2[4] = {192, 0, 2, 2};
    const rr_t *first = &r->rr[2], *second = &r->rr[3];
    if (r->b[first->rdoff + 3] == 2) {
        first = &r->rr[3];
        second = &r->rr[2];
    }
    expect_a(r, first, "ns1.example.com", 3600, ns1);
    expect_a(r, second, "ns2.example.com", 3600, ns2);

    testutil_query_make(&q, 12, 0, "_sip._tcp.example.com", 33, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->ar, 1);
    expect_a(r, &r->rr[1], "mail.example.com", 3600, mail4);
}

static void test_any(void **state)
{
    (void)state;
    qbuf_t q;
    /* RFC 8482: one RRset is enough. */
    testutil_query_make(&q, 13, 0, "www.example.com", WIRE_TYPE_ANY, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    /* RFC 8482 4.2: one RRset, the one with the lowest type number: A, not AAAA */
    assert_int_equal(r->an, 1);
    expect_a(r, &r->rr[0], "www.example.com", 3600, A_WWW);
    assert_int_equal(r->ns + r->ar, 0);
    /* the same over TCP */
    r = ask(&q, QUERY_TCP);
    assert_int_equal(r->an, 1);
    expect_a(r, &r->rr[0], "www.example.com", 3600, A_WWW);
    /* at the apex NS (type 2) comes before SOA (6): the whole NS RRset */
    testutil_query_make(&q, 13, 0, "example.com", WIRE_TYPE_ANY, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 2);
    assert_int_equal(r->rr[0].type, WIRE_TYPE_NS);
    assert_int_equal(r->rr[1].type, WIRE_TYPE_NS);
    testutil_query_make(&q, 13, 0, "b.c.example.com", WIRE_TYPE_ANY, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 0);
    assert_int_equal(r->ns, 1);
}

static void test_zone_transfer(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 14, 0, "example.com", WIRE_TYPE_AXFR, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOTIMP);
    r = ask(&q, QUERY_TCP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOTAUTH);
    testutil_query_make(&q, 14, 0, "example.com", WIRE_TYPE_IXFR, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOTAUTH);
    assert_int_equal(r->an + r->ns + r->ar, 0);
}

static void test_truncation(void **state)
{
    (void)state;
    qbuf_t q;
    const query_stats_t *st = query_ctx_stats(g_ctx);
    uint64_t tc = st->truncated;

    /* Too big for 512 bytes: TC, the question and nothing else. */
    testutil_query_make(&q, 15, 0, "big.example.com", WIRE_TYPE_TXT, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_true(r->flags & WIRE_FLAG_TC);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an + r->ns + r->ar, 0);
    assert_int_equal(r->len, q.len);
    assert_int_equal(st->truncated, tc + 1);

    /* Over TCP: the whole RRset. */
    r = ask(&q, QUERY_TCP);
    assert_false(r->flags & WIRE_FLAG_TC);
    assert_int_equal(r->an, BIG_RECORDS);
    assert_true(r->len > 2000);
    for (int i = 0; i < BIG_RECORDS; i++) {
        assert_int_equal(r->rr[i].type, WIRE_TYPE_TXT);
        assert_int_equal(r->rr[i].rdlen, TXT_LEN + 1);
    }

    /* Over UDP with EDNS: still more than 1232 bytes, so TC, with the OPT. */
    testutil_query_add_opt(&q, 4096, 0);
    r = ask(&q, QUERY_UDP);
    assert_true(r->flags & WIRE_FLAG_TC);
    assert_int_equal(r->an + r->ns, 0);
    assert_int_equal(r->ar, 1);
    assert_non_null(r->opt);
    assert_int_equal(r->len, q.len);

    /* ~850 bytes: TC without EDNS, fits with EDNS 1232, TC again with EDNS 600. */
    testutil_query_make(&q, 15, 0, "mid.example.com", WIRE_TYPE_TXT, 1);
    r = ask(&q, QUERY_UDP);
    assert_true(r->flags & WIRE_FLAG_TC);
    assert_int_equal(r->an, 0);
    testutil_query_add_opt(&q, 1232, 0);
    r = ask(&q, QUERY_UDP);
    assert_false(r->flags & WIRE_FLAG_TC);
    assert_int_equal(r->an, MID_RECORDS);
    assert_true(r->len > 512 && r->len <= 1232);
    testutil_query_make(&q, 15, 0, "mid.example.com", WIRE_TYPE_TXT, 1);
    testutil_query_add_opt(&q, 600, 0);
    r = ask(&q, QUERY_UDP);
    assert_true(r->flags & WIRE_FLAG_TC);
    assert_int_equal(r->an, 0);
    /* An advertised size below 512 counts as 512. */
    testutil_query_make(&q, 15, 0, "www.example.com", WIRE_TYPE_A, 1);
    testutil_query_add_opt(&q, 100, 0);
    r = ask(&q, QUERY_UDP);
    assert_false(r->flags & WIRE_FLAG_TC);
    assert_int_equal(r->an, 1);
    /* A 512-byte output buffer over TCP behaves like UDP without EDNS. */
    testutil_query_make(&q, 15, 0, "mid.example.com", WIRE_TYPE_TXT, 1);
    assert_true(ask_cap(&q, QUERY_TCP, 512) > 0);
    assert_true(g_r.flags & WIRE_FLAG_TC);
    /* Output buffers smaller than 512 are not used. */
    assert_int_equal(ask_cap(&q, QUERY_TCP, 511), 0);
}

static void test_edns(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 16, 0, "www.example.com", WIRE_TYPE_A, 1);
    testutil_query_add_opt(&q, 4096, 0x8000); /* DO */
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->ar, 1);
    assert_non_null(r->opt);
    assert_int_equal(r->opt->owner_len, 1);
    assert_int_equal(r->opt->cls, 1232); /* our UDP size */
    assert_int_equal(r->opt->ttl, 0x8000);
    assert_int_equal(r->opt->rdlen, 0);
    /* The OPT is the last record. */
    assert_ptr_equal(r->opt, &r->rr[r->nrr - 1]);

    testutil_query_make(&q, 16, 0, "www.example.com", WIRE_TYPE_A, 1);
    testutil_query_add_opt(&q, 4096, 0);
    r = ask(&q, QUERY_UDP);
    assert_non_null(r->opt);
    assert_int_equal(r->opt->ttl, 0);

    /* Without EDNS in the query, none in the answer. */
    testutil_query_make(&q, 16, 0, "www.example.com", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_null(r->opt);
    assert_int_equal(r->ar, 0);

    /* The OPT comes after the additional records. */
    testutil_query_make(&q, 16, 0, "example.com", WIRE_TYPE_MX, 1);
    testutil_query_add_opt(&q, 1232, 0x8000);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->ar, 2);
    assert_int_equal(r->rr[1].type, WIRE_TYPE_A);
    assert_int_equal(r->rr[2].type, WIRE_TYPE_OPT);

    /* EDNS on a NXDOMAIN. */
    testutil_query_make(&q, 16, 0, "nope.example.com", WIRE_TYPE_A, 1);
    testutil_query_add_opt(&q, 1232, 0x8000);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);
    assert_int_equal(r->ns, 1);
    assert_non_null(r->opt);
    assert_int_equal(r->opt->ttl, 0x8000);
}

static void test_badvers(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 17, RD, "www.example.com", WIRE_TYPE_A, 1);
    testutil_query_add_opt(&q, 1232, 0x00018000); /* version 1, DO */
    const resp_t *r = ask(&q, QUERY_UDP);
    /* BADVERS = 16: 0 in the header, 1 in the OPT's extended rcode (RFC 6891 6.1.3). */
    assert_int_equal(rcode_of(r), 0);
    assert_int_equal(r->qd, 1);
    assert_int_equal(r->an + r->ns, 0);
    assert_int_equal(r->ar, 1);
    assert_non_null(r->opt);
    assert_int_equal(r->opt->ttl >> 24, 1);
    assert_int_equal((r->opt->ttl >> 16) & 0xFF, 0); /* our version */
    assert_false(r->flags & WIRE_FLAG_AA);
    assert_int_equal(query_ctx_stats(g_ctx)->rcode[WIRE_RCODE_BADVERS] > 0, 1);
}

static void test_stats(void **state)
{
    (void)state;
    qbuf_t q;
    uint8_t out[QUERY_MAX_ANSWER];
    query_ctx_t *ctx = query_ctx_new();
    assert_non_null(ctx);
    const query_stats_t *st = query_ctx_stats(ctx);
    testutil_query_make(&q, 18, 0, "www.example.com", WIRE_TYPE_A, 1);
    assert_true(query_answer_set(ctx, g_set, q.b, q.len, out, sizeof(out), QUERY_UDP) > 0);
    assert_true(query_answer_set(ctx, g_set, q.b, q.len, out, sizeof(out), QUERY_TCP) > 0);
    testutil_query_make(&q, 18, 0, "nope.example.com", 300, 1);
    assert_true(query_answer_set(ctx, g_set, q.b, q.len, out, sizeof(out), QUERY_UDP) > 0);
    testutil_query_make(&q, 18, 0, "www.example.net", WIRE_TYPE_A, 1);
    assert_true(query_answer_set(ctx, NULL, q.b, q.len, out, sizeof(out), QUERY_UDP) > 0);
    assert_int_equal(st->queries[QUERY_UDP], 3);
    assert_int_equal(st->queries[QUERY_TCP], 1);
    assert_int_equal(st->rcode[WIRE_RCODE_NOERROR], 2);
    assert_int_equal(st->rcode[WIRE_RCODE_NXDOMAIN], 1);
    assert_int_equal(st->rcode[WIRE_RCODE_REFUSED], 1);
    assert_int_equal(st->qtype[WIRE_TYPE_A], 3);
    assert_int_equal(st->qtype_other, 1);
    assert_int_equal(st->dropped, 0);
    query_ctx_free(ctx);
}

/* RFC 4035 3.1.4.1: DS lives on the parent side of a cut. A server serving both the parent
 * and the child answers DS for the child's apex from the parent (Knot DNS does). */
static void test_ds_parent_and_child(void **state)
{
    (void)state;
    static const char parent[] =
        "@ 300 SOA ns1 h 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n"
        "child 300 NS ns1.child\n"
        "child 300 DS 12345 13 2 "
        "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n"
        "ns1.child 300 A 192.0.2.77\n";
    static const char child[] = "@ 300 SOA ns1 h 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.77\n";
    char err[512];
    zone_t *z[2] = {NULL, NULL};
    zone_set_t *set = NULL;
    assert_int_equal(
        zone_load_text("example.net", parent, strlen(parent), "p", &z[0], err, sizeof(err)), 0);
    assert_int_equal(
        zone_load_text("child.example.net", child, strlen(child), "c", &z[1], err, sizeof(err)), 0);
    assert_int_equal(zone_set_new(z, 2, &set), 0);
    zone_unref(z[0]);
    zone_unref(z[1]);

    qbuf_t q;
    testutil_query_make(&q, 19, 0, "child.example.net", WIRE_TYPE_DS, 1);
    memset(g_r.b, 0, sizeof(g_r.b));
    g_r.len = query_answer_set(g_ctx, set, q.b, q.len, g_r.b, QUERY_MAX_ANSWER, QUERY_UDP);
    zone_set_free(set);
    assert_true(g_r.len > 0);
    testutil_answer_parse(&g_r);
    assert_int_equal(rcode_of(&g_r), WIRE_RCODE_NOERROR);
    assert_true(g_r.flags & WIRE_FLAG_AA);
    if (g_r.an != 1 || g_r.rr[0].type != WIRE_TYPE_DS)
        fail_msg("DS at a child apex answered with %u answer records (first type %u): the "
                 "parent's DS was expected",
                 g_r.an, g_r.nrr ? g_r.rr[0].type : 0);
}

/* ---- DNAME, chains between zones, SVCB additionals, referral glue ---- */

/* Loads the zones ORIGINS[i] from TEXTS[i] (N of them) as the set the next ask() uses; the
 * set of the other tests comes back with restore_set(). */
static zone_set_t *g_saved_set;

static void use_zones(const char *const *origins, const char *const *texts, size_t n)
{
    zone_t *z[4] = {NULL};
    char err[512];
    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++)
        if (zone_load_text(origins[i], texts[i], strlen(texts[i]), origins[i], &z[i], err,
                           sizeof(err)) != 0)
            fail_msg("%s", err);
    zone_set_t *set = NULL;
    assert_int_equal(zone_set_new(z, n, &set), 0);
    for (size_t i = 0; i < n; i++)
        zone_unref(z[i]);
    g_saved_set = g_set;
    g_set = set;
}

static void restore_set(void)
{
    zone_set_free(g_set);
    g_set = g_saved_set;
}

/* How many records of TYPE section SEC of R holds. */
static int count_type(const resp_t *r, int sec, uint16_t type)
{
    int n = 0;
    for (int i = 0; i < r->nrr; i++)
        n += r->rr[i].sec == sec && r->rr[i].type == type;
    return n;
}

/* A 190-octet DNAME target: three labels of 59 octets, then "d.test." */
#define LONG_TARGET                                                                                \
    "a23456789a123456789a123456789a123456789a123456789a12345678."                                  \
    "b23456789b123456789b123456789b123456789b123456789b12345678."                                  \
    "c23456789c123456789c123456789c123456789c123456789c123456789cc.d.test."

static const char dname_zone[] = "@ 300 SOA ns1 h 1 2 3 4 5\n"
                                 "@ 300 NS ns1\n"
                                 "ns1 300 A 192.0.2.1\n"
                                 "d 600 DNAME target.d.test.\n"
                                 "www.target 300 A 192.0.2.90\n"
                                 "occluded.d 300 A 192.0.2.66\n"
                                 "grow 300 DNAME x.grow.d.test.\n"
                                 "long 300 DNAME " LONG_TARGET "\n"
                                 "away 300 DNAME other.test.\n"
                                 "tod 300 CNAME www.d\n";
static const char other_zone[] = "@ 300 SOA ns1 h 1 2 3 4 5\n"
                                 "@ 300 NS ns1\n"
                                 "ns1 300 A 192.0.2.1\n"
                                 "www 300 A 192.0.2.80\n";

/* RFC 6672 3.1: the DNAME, a CNAME synthesized from it (TTL of the DNAME), and the target
 * followed where it is served here. */
static void test_dname(void **state)
{
    (void)state;
    const char *origins[] = {"d.test", "other.test"};
    const char *texts[] = {dname_zone, other_zone};
    use_zones(origins, texts, 2);
    static const uint8_t a90[4] = {192, 0, 2, 90}, a80[4] = {192, 0, 2, 80};
    qbuf_t q;

    testutil_query_make(&q, 1, 0, "WwW.D.d.test", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 3);
    expect_owner(&r->rr[0], "d.d.test");
    assert_int_equal(r->rr[0].type, WIRE_TYPE_DNAME);
    assert_int_equal(r->rr[0].ttl, 600);
    expect_rdata_name(r, &r->rr[0], "target.d.test");
    expect_owner(&r->rr[1], "www.d.d.test");
    assert_int_equal(r->rr[1].type, WIRE_TYPE_CNAME);
    assert_int_equal(r->rr[1].ttl, 600);
    expect_rdata_name(r, &r->rr[1], "www.target.d.test");
    /* the part of the name below the DNAME is written lower case, as Knot and NSD do */
    assert_memory_equal(r->b + r->rr[1].rdoff, "\x03www", 4);
    expect_a(r, &r->rr[2], "www.target.d.test", 300, a90);

    /* a name that exists below the DNAME is occluded: the DNAME answers for it */
    testutil_query_make(&q, 2, 0, "occluded.d.d.test", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN); /* occluded.target does not exist */
    assert_int_equal(r->an, 2);
    assert_int_equal(r->rr[0].type, WIRE_TYPE_DNAME);
    expect_rdata_name(r, &r->rr[1], "occluded.target.d.test");
    expect_neg_soa(r, &r->rr[2], "d.test", 5);

    /* the DNAME's own name: its DNAME, or NODATA for other types */
    testutil_query_make(&q, 3, 0, "d.d.test", WIRE_TYPE_DNAME, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->rr[0].type, WIRE_TYPE_DNAME);
    testutil_query_make(&q, 3, 0, "d.d.test", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 0);
    assert_int_equal(r->ns, 1);

    /* qtype CNAME: the synthesized CNAME is the answer, not followed (no NODATA of the
     * target's after it) */
    testutil_query_make(&q, 4, 0, "www.d.d.test", WIRE_TYPE_CNAME, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 2);
    assert_int_equal(r->rr[1].type, WIRE_TYPE_CNAME);
    assert_int_equal(r->ns, 0);

    /* a DNAME whose target is below itself: the chain stops at 5 links, the DNAME once */
    testutil_query_make(&q, 5, 0, "a.grow.d.test", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(count_type(r, 0, WIRE_TYPE_DNAME), 1);
    assert_int_equal(count_type(r, 0, WIRE_TYPE_CNAME), 5);

    /* RFC 6672 2.2: a substituted name over 255 octets is YXDOMAIN, with the DNAME */
    testutil_query_make(&q, 6, 0,
                        "pppppppppppppppppppppppppppppppppppppppp."
                        "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq.long.d.test",
                        WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_YXDOMAIN);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->rr[0].type, WIRE_TYPE_DNAME);
    /* ... the edge, exactly: 67 octets before the DNAME owner + 188 = 255 fits, 68 do not */
    testutil_query_make(
        &q, 6, 0, "pppppppppppppppppppppppppppppp.qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq.long.d.test",
        WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_TCP); /* over 512 bytes */
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);
    assert_int_equal(r->an, 2);
    testutil_query_make(
        &q, 6, 0, "pppppppppppppppppppppppppppppp.qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq.long.d.test",
        WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_TCP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_YXDOMAIN);
    assert_int_equal(r->an, 1);

    /* a DNAME into another zone served here, and a CNAME into a DNAME */
    testutil_query_make(&q, 7, 0, "www.away.d.test", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 3);
    expect_a(r, &r->rr[2], "www.other.test", 300, a80);
    testutil_query_make(&q, 8, 0, "tod.d.test", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 4);
    assert_int_equal(count_type(r, 0, WIRE_TYPE_DNAME), 1);
    expect_a(r, &r->rr[3], "www.target.d.test", 300, a90);
    restore_set();
}

/* A DNAME at the apex redirects every name below it; a DNAME below a zone cut is not
 * authoritative here: the referral answers. */
static void test_dname_apex_and_cut(void **state)
{
    (void)state;
    static const char apex[] = "@ 300 SOA ns1.other.test. h 1 2 3 4 5\n@ 300 NS ns1.other.test.\n"
                               "@ 300 DNAME other.test.\n";
    static const char cut[] = "@ 300 SOA ns1 h 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n"
                              "sub 300 NS ns.sub\nns.sub 300 A 192.0.2.53\n"
                              "d.sub 300 DNAME other.test.\n";
    const char *origins[] = {"old.test", "cut.test", "other.test"};
    const char *texts[] = {apex, cut, other_zone};
    use_zones(origins, texts, 3);
    static const uint8_t a80[4] = {192, 0, 2, 80};
    qbuf_t q;
    testutil_query_make(&q, 40, 0, "www.old.test", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 3);
    expect_owner(&r->rr[0], "old.test");
    assert_int_equal(r->rr[0].type, WIRE_TYPE_DNAME);
    expect_a(r, &r->rr[2], "www.other.test", 300, a80);
    /* the apex itself is no name below its DNAME */
    testutil_query_make(&q, 41, 0, "old.test", WIRE_TYPE_SOA, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->rr[0].type, WIRE_TYPE_SOA);

    testutil_query_make(&q, 42, 0, "www.d.sub.cut.test", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_false(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 0);
    assert_int_equal(r->ns, 1);
    expect_owner(&r->rr[0], "sub.cut.test");
    assert_int_equal(r->rr[0].type, WIRE_TYPE_NS);
    restore_set();
}

/* A DNAME added or removed by a record edit takes effect like one loaded from a file; a
 * second DNAME at one owner is refused (RFC 6672 2.4). */
static void test_dname_by_edit(void **state)
{
    (void)state;
    char err[256];
    zone_t *base = NULL, *v1 = NULL, *v2 = NULL;
    assert_int_equal(
        zone_load_text("d.test", other_zone, strlen(other_zone), "d", &base, err, sizeof(err)), 0);
    uint8_t owner[WIRE_NAME_MAX], target[WIRE_NAME_MAX], target2[WIRE_NAME_MAX];
    int tl = wire_name_from_text("other.example.", target);
    int tl2 = wire_name_from_text("third.example.", target2);
    assert_true(wire_name_from_text("e.d.test.", owner) > 0 && tl > 0 && tl2 > 0);
    zone_change_t add = {.add = true,
                         .owner = owner,
                         .type = WIRE_TYPE_DNAME,
                         .ttl = 60,
                         .rdata = target,
                         .rdlen = (uint16_t)tl};
    assert_int_equal(zone_edit(base, &add, 1, &v1, err, sizeof(err)), 0);
    zone_change_t two[2] = {add, add};
    two[1].rdata = target2;
    two[1].rdlen = (uint16_t)tl2;
    two[0].add = false;
    two[0].rdata = target;
    /* delete, then a second DNAME at e alone is fine; the two together are refused */
    zone_change_t second = add;
    second.rdata = target2;
    second.rdlen = (uint16_t)tl2;
    assert_int_not_equal(zone_edit(v1, &second, 1, &v2, err, sizeof(err)), 0);
    if (!strstr(err, "DNAME"))
        fail_msg("a second DNAME at one owner refused with \"%s\"", err);
    assert_null(v2);

    zone_set_t *set = NULL;
    zone_t *zs[1] = {v1};
    assert_int_equal(zone_set_new(zs, 1, &set), 0);
    g_saved_set = g_set;
    g_set = set;
    qbuf_t q;
    testutil_query_make(&q, 9, 0, "www.e.d.test", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_int_equal(r->an, 2);
    assert_int_equal(r->rr[0].type, WIRE_TYPE_DNAME);
    expect_rdata_name(r, &r->rr[1], "www.other.example");
    restore_set();

    /* removed again: the name below it is NXDOMAIN */
    assert_int_equal(zone_edit(v1, &two[0], 1, &v2, err, sizeof(err)), 0);
    zs[0] = v2;
    assert_int_equal(zone_set_new(zs, 1, &set), 0);
    g_saved_set = g_set;
    g_set = set;
    r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NXDOMAIN);
    assert_int_equal(r->an, 0);
    restore_set();
    zone_unref(v2);
    zone_unref(v1);
    zone_unref(base);
}

/* Names inside the rdata of NS, MX, CNAME, SRV, ... are kept and sent lower case, as Knot
 * and NSD send them; a record edit names a record in any case. */
static void test_rdata_names_lower_case(void **state)
{
    (void)state;
    static const char zone[] = "@ 300 SOA NS1.C.Test. H 1 2 3 4 5\n@ 300 NS Ns1\n"
                               "ns1 300 A 192.0.2.1\nmail 300 A 192.0.2.25\n"
                               "@ 300 MX 10 MaIl.C.TEST.\nwww 300 CNAME MAIL\n";
    char err[256];
    zone_t *z = NULL, *v = NULL;
    assert_int_equal(zone_load_text("c.test", zone, strlen(zone), "c", &z, err, sizeof(err)), 0);
    zone_set_t *set = NULL;
    zone_t *zs[1] = {z};
    assert_int_equal(zone_set_new(zs, 1, &set), 0);
    g_saved_set = g_set;
    g_set = set;
    qbuf_t q;
    testutil_query_make(&q, 30, 0, "c.test", WIRE_TYPE_MX, 1);
    const resp_t *r = ask(&q, QUERY_TCP);
    assert_int_equal(r->an, 1);
    assert_memory_equal(r->b + r->rr[0].rdoff + 2, "\x04mail", 5);
    testutil_query_make(&q, 31, 0, "www.c.test", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_TCP);
    assert_int_equal(r->an, 2);
    assert_memory_equal(r->b + r->rr[0].rdoff, "\x04mail", 5);
    restore_set();

    uint8_t owner[WIRE_NAME_MAX], rd[2 + WIRE_NAME_MAX];
    assert_true(wire_name_from_text("c.test.", owner) > 0);
    wire_put_u16(rd, 10);
    int l = wire_name_from_text("MAIL.c.TEST.", rd + 2);
    assert_true(l > 0);
    zone_change_t del = {.add = false,
                         .owner = owner,
                         .type = WIRE_TYPE_MX,
                         .ttl = 300,
                         .rdata = rd,
                         .rdlen = (uint16_t)(2 + l)};
    if (zone_edit(z, &del, 1, &v, err, sizeof(err)) != 0)
        fail_msg("deleting the MX spelled in upper case: %s", err);
    zone_unref(v);
    zone_unref(z);
}

/* A CNAME to a name below a cut whose child zone is served here is answered from the child,
 * not with the parent's referral. */
static void test_chain_into_served_child(void **state)
{
    (void)state;
    static const char parent[] = "@ 300 SOA ns1 h 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n"
                                 "child 300 NS ns1.child\nns1.child 300 A 192.0.2.77\n"
                                 "tochild 300 CNAME www.child\n";
    static const char child[] = "@ 300 SOA ns1 h 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.77\n"
                                "www 300 A 192.0.2.78\nup 300 CNAME tochild.example.net.\n";
    const char *origins[] = {"example.net", "child.example.net"};
    const char *texts[] = {parent, child};
    use_zones(origins, texts, 2);
    static const uint8_t a78[4] = {192, 0, 2, 78};
    qbuf_t q;
    testutil_query_make(&q, 10, 0, "tochild.example.net", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_NOERROR);
    assert_true(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->an, 2);
    assert_int_equal(r->ns, 0);
    expect_a(r, &r->rr[1], "www.child.example.net", 300, a78);
    /* from the child up into the parent and back down: a loop-free chain of three */
    testutil_query_make(&q, 11, 0, "up.child.example.net", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 3);
    expect_a(r, &r->rr[2], "www.child.example.net", 300, a78);
    restore_set();
}

/* RFC 9460 4.1: the A/AAAA of an SVCB/HTTPS TargetName in the zone, and an AliasMode
 * target's own records of the type; "." gets nothing. */
static void test_svcb_additional(void **state)
{
    (void)state;
    static const char zone[] =
        "@ 300 SOA ns1 h 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n"
        "_8443._foo 300 SVCB 1 svc.s.test. alpn=h2 port=8443\n"
        "svc 300 A 192.0.2.95\nsvc 300 AAAA 2001:db8::95\n"
        "alias 300 HTTPS 0 svc3\n"
        "svc3 300 HTTPS 1 svc alpn=h3\nsvc3 300 HTTPS 2 . alpn=h2\nsvc3 300 A 192.0.2.97\n"
        "nosvc 300 HTTPS 0 .\n";
    const char *origins[] = {"s.test"};
    const char *texts[] = {zone};
    use_zones(origins, texts, 1);
    qbuf_t q;
    testutil_query_make(&q, 12, 0, "_8443._foo.s.test", WIRE_TYPE_SVCB, 1);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    assert_int_equal(count_type(r, 2, WIRE_TYPE_A), 1);
    assert_int_equal(count_type(r, 2, WIRE_TYPE_AAAA), 1);
    assert_int_equal(r->ar, 2);

    testutil_query_make(&q, 13, 0, "alias.s.test", WIRE_TYPE_HTTPS, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    assert_int_equal(count_type(r, 2, WIRE_TYPE_HTTPS), 2); /* svc3's two */
    assert_int_equal(count_type(r, 2, WIRE_TYPE_A), 1);     /* svc3's A */
    assert_int_equal(r->ar, 3);
    for (int i = 0; i < r->nrr; i++)
        if (r->rr[i].sec == 2)
            expect_owner(&r->rr[i], "svc3.s.test");

    testutil_query_make(&q, 14, 0, "svc3.s.test", WIRE_TYPE_HTTPS, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 2);
    assert_int_equal(r->ar, 2); /* svc's A and AAAA; "." names nothing more */
    for (int i = 0; i < r->nrr; i++)
        if (r->rr[i].sec == 2)
            expect_owner(&r->rr[i], "svc.s.test");

    testutil_query_make(&q, 15, 0, "nosvc.s.test", WIRE_TYPE_HTTPS, 1);
    r = ask(&q, QUERY_UDP);
    assert_int_equal(r->an, 1);
    assert_int_equal(r->ar, 0);
    restore_set();
}

/* RFC 9471 3.1: a referral carries all in-domain glue or TC; sibling glue is optional. */
static void test_referral_glue_truncation(void **state)
{
    (void)state;
    static char zone[8192];
    size_t o = (size_t)snprintf(zone, sizeof(zone),
                                "@ 300 SOA ns1 h 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n"
                                "few 300 NS ns1.few\nfew 300 NS ns1.long-server-name-label.big\n"
                                "ns1.few 300 A 192.0.2.140\n");
    for (int i = 1; i <= 13; i++)
        o += (size_t)snprintf(zone + o, sizeof(zone) - o,
                              "big 300 NS ns%d.long-server-name-label.big\n"
                              "sib 300 NS ns%d.long-server-name-label.big\n"
                              "ns%d.long-server-name-label.big 300 A 192.0.2.%d\n"
                              "ns%d.long-server-name-label.big 300 AAAA 2001:db8::%d\n",
                              i, i, i, i, i, i);
    const char *origins[] = {"g.test"};
    const char *texts[] = {zone};
    use_zones(origins, texts, 1);
    qbuf_t q;
    testutil_query_make(&q, 16, 0, "www.big.g.test", WIRE_TYPE_A, 1);
    const resp_t *r = ask(&q, QUERY_UDP); /* no EDNS: 512 bytes */
    assert_true(r->flags & WIRE_FLAG_TC);
    assert_false(r->flags & WIRE_FLAG_AA);
    assert_int_equal(r->ns, 13);
    assert_true(r->ar < 26);
    r = ask(&q, QUERY_TCP);
    assert_false(r->flags & WIRE_FLAG_TC);
    assert_int_equal(r->ns, 13);
    assert_int_equal(count_type(r, 2, WIRE_TYPE_A), 13);
    assert_int_equal(count_type(r, 2, WIRE_TYPE_AAAA), 13);

    /* sibling glue only (the servers are below another cut): what fits, no TC */
    testutil_query_make(&q, 17, 0, "www.sib.g.test", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_false(r->flags & WIRE_FLAG_TC);
    assert_int_equal(r->ns, 13);
    assert_true(r->ar > 0 && r->ar < 26);

    /* in-domain glue that fits, with sibling glue after it */
    testutil_query_make(&q, 18, 0, "www.few.g.test", WIRE_TYPE_A, 1);
    r = ask(&q, QUERY_UDP);
    assert_false(r->flags & WIRE_FLAG_TC);
    assert_int_equal(r->ns, 2);
    assert_int_equal(r->ar, 3);
    expect_owner(&r->rr[2], "ns1.few.g.test");
    restore_set();
}

/* NSID (RFC 5001) is sent only where it fits: never past the client's UDP size, whatever the
 * answer (here a REFUSED for a 250-byte name, rolled back to the question). */
static void test_nsid_within_the_udp_size(void **state)
{
    (void)state;
    static cfg_t cfg;
    static char nsid[256];
    memset(nsid, 'n', 255);
    cfg.nsid = nsid;
    query_ctx_t *ctx = query_ctx_new();
    assert_non_null(ctx);
    query_ctx_set_config(ctx, &cfg);
    char name[300];
    snprintf(name, sizeof(name), "%.62s.%.62s.%.62s.%.50s.invalid", nsid, nsid, nsid, nsid);
    for (int big = 0; big < 2; big++) {
        qbuf_t q;
        testutil_query_make(&q, 50, 0, big ? name : "www.example.com", WIRE_TYPE_A, 1);
        /* OPT, payload 512, with an empty NSID option */
        static const uint8_t opt[] = {0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 4, 0, 3, 0, 0};
        memcpy(q.b + q.len, opt, sizeof(opt));
        q.len += sizeof(opt);
        wire_put_u16(q.b + 10, 1);
        memset(g_r.b, 0, sizeof(g_r.b));
        g_r.len = query_answer_set(ctx, g_set, q.b, q.len, g_r.b, QUERY_MAX_ANSWER, QUERY_UDP);
        assert_true(g_r.len > 0);
        testutil_answer_parse(&g_r);
        assert_true(g_r.len <= 512);
        assert_non_null(g_r.opt);
        bool has = false;
        const uint8_t *od = g_r.b + g_r.opt->rdoff;
        for (size_t p = 0; p + 4 <= g_r.opt->rdlen; p += 4 + wire_get_u16(od + p + 2))
            has |= wire_get_u16(od + p) == 3;
        if (big)
            assert_false(has); /* 12 + 254 + 4 + 11 + 259 would be 540 */
        else
            assert_true(has);
    }
    query_ctx_free(ctx);
}

/* RFC 6891 7: a query with an OPT gets an OPT back, FORMERR included (Knot DNS does this for
 * a query without a question). */
static void test_formerr_keeps_opt(void **state)
{
    (void)state;
    qbuf_t q;
    testutil_query_make(&q, 20, 0, "www.example.com", WIRE_TYPE_A, 1);
    q.len = WIRE_HEADER_LEN;
    wire_put_u16(q.b + 4, 0);
    testutil_query_add_opt(&q, 1232, 0);
    const resp_t *r = ask(&q, QUERY_UDP);
    assert_int_equal(rcode_of(r), WIRE_RCODE_FORMERR);
    assert_int_equal(r->qd, 0);
    if (!r->opt)
        fail_msg("FORMERR for a query with no question but an OPT has no OPT");
}

/* ---- no allocation per query ---- */

#define MIX_QUERIES 10000

typedef struct mixq {
    qbuf_t q;
    query_transport_t t;
} mixq_t;

static mixq_t g_mix[32];
static size_t g_mix_n;

static void mix_add(const char *name, uint16_t type, uint16_t flags, int edns, uint32_t ttlf,
                    query_transport_t t)
{
    mixq_t *m = &g_mix[g_mix_n++];
    testutil_query_make(&m->q, (uint16_t)g_mix_n, flags, name, type, 1);
    if (edns >= 0)
        testutil_query_add_opt(&m->q, (uint16_t)edns, ttlf);
    m->t = t;
}

static void mix_build(void)
{
    g_mix_n = 0;
    mix_add("www.example.com", WIRE_TYPE_A, RD, -1, 0, QUERY_UDP);
    mix_add("WWW.example.com", WIRE_TYPE_AAAA, RD, 1232, 0x8000, QUERY_UDP);
    mix_add("nope.example.com", WIRE_TYPE_A, 0, -1, 0, QUERY_UDP);
    mix_add("www.example.com", WIRE_TYPE_MX, 0, 1232, 0, QUERY_TCP);
    mix_add("example.com", WIRE_TYPE_MX, 0, -1, 0, QUERY_UDP);
    mix_add("example.com", WIRE_TYPE_NS, 0, -1, 0, QUERY_UDP);
    mix_add("chain1.example.com", WIRE_TYPE_A, 0, -1, 0, QUERY_UDP);
    mix_add("loop1.example.com", WIRE_TYPE_A, 0, -1, 0, QUERY_UDP);
    mix_add("x.sub.example.com", WIRE_TYPE_A, 0, -1, 0, QUERY_UDP);
    mix_add("sub.example.com", WIRE_TYPE_DS, 0, -1, 0, QUERY_UDP);
    mix_add("foo.wild.example.com", WIRE_TYPE_TXT, 0, 1232, 0, QUERY_UDP);
    mix_add("big.example.com", WIRE_TYPE_TXT, 0, -1, 0, QUERY_UDP);
    mix_add("big.example.com", WIRE_TYPE_TXT, 0, 4096, 0, QUERY_TCP);
    mix_add("www.example.net", WIRE_TYPE_A, 0, 1232, 0, QUERY_UDP);
    mix_add("www.example.com", WIRE_TYPE_A, 0, 1232, 0x00010000, QUERY_UDP); /* BADVERS */
    mix_add("www.example.com", WIRE_TYPE_ANY, 0, -1, 0, QUERY_UDP);
    mix_add("example.com", WIRE_TYPE_AXFR, 0, -1, 0, QUERY_TCP);
    mix_add("example.com", WIRE_TYPE_SOA, 4 << 11, -1, 0, QUERY_UDP);        /* NOTIFY */
    mix_add("www.example.com", WIRE_TYPE_A, WIRE_FLAG_QR, -1, 0, QUERY_UDP); /* dropped */
    mix_add("_sip._tcp.example.com", 33, 0, -1, 0, QUERY_UDP);
    mix_add("tocut.example.com", WIRE_TYPE_A, 0, -1, 0, QUERY_UDP);
    /* a FORMERR: two questions */
    mix_add("www.example.com", WIRE_TYPE_A, 0, -1, 0, QUERY_UDP);
    wire_put_u16(g_mix[g_mix_n - 1].q.b + 4, 2);
}

/* Answers MIX_QUERIES queries of the mix; when EXTRA, also allocates and frees a little per
 * query, as a careless change to the engine would. Returns the allocations counted. */
static unsigned long run_mix(bool extra, size_t *answered)
{
    static uint8_t out[QUERY_MAX_ANSWER];
    void *(*volatile alloc)(size_t) = malloc;
    size_t n = 0;
    unsigned long before = allocs_now();
    for (int i = 0; i < MIX_QUERIES; i++) {
        const mixq_t *m = &g_mix[(size_t)i % g_mix_n];
        size_t cap = (i & 1) ? sizeof(out) : 512;
        if (query_answer_set(g_ctx, g_set, m->q.b, m->q.len, out, cap, m->t) > 0)
            n++;
        if (extra) {
            void *p = alloc(32);
            assert_non_null(p);
            free(p);
        }
    }
    if (answered)
        *answered = n;
    return allocs_now() - before;
}

/* The batch lookahead: the zone (and bucket hash) of a query's name, nothing for anything
 * else, whatever the bytes. */
static void test_hint(void **state)
{
    (void)state;
    qbuf_t q;
    query_hint_t h;
    uint8_t lname[WIRE_NAME_MAX];
    const zone_t *com = zone_set_at(g_set, 0), *org = zone_set_at(g_set, 1);
    if (strcmp(zone_name(com), "example.com") != 0) {
        const zone_t *t = com;
        com = org;
        org = t;
    }

    /* Mixed case: the hint works on the lower-case name, as the lookup does. */
    testutil_query_make(&q, 1, 0, "WwW.Example.COM", WIRE_TYPE_A, 1);
    query_hint_start(g_set, q.b, q.len, &h);
    assert_ptr_equal(h.zone, com);
    int l = wire_name_from_text("www.example.com", lname);
    assert_true(l > 0);
    assert_int_equal(h.hash, zone_node_prefetch(com, lname, (size_t)l));
    query_hint_next(&h);

    testutil_query_make(&q, 2, 0, "www.example.org", WIRE_TYPE_A, 1);
    query_hint_start(g_set, q.b, q.len, &h);
    assert_ptr_equal(h.zone, org);

    /* Not ours, no question, two questions, a name cut short, a header cut short. */
    testutil_query_make(&q, 3, 0, "www.example.net", WIRE_TYPE_A, 1);
    query_hint_start(g_set, q.b, q.len, &h);
    assert_null(h.zone);
    query_hint_next(&h);
    testutil_query_make(&q, 4, 0, "www.example.com", WIRE_TYPE_A, 1);
    for (size_t n = 0; n < WIRE_HEADER_LEN + 5; n++) {
        h.zone = com;
        query_hint_start(g_set, q.b, n, &h);
        assert_null(h.zone);
    }
    wire_put_u16(q.b + 4, 0);
    query_hint_start(g_set, q.b, q.len, &h);
    assert_null(h.zone);
    wire_put_u16(q.b + 4, 2);
    query_hint_start(g_set, q.b, q.len, &h);
    assert_null(h.zone);
    /* A compression pointer to itself. */
    wire_put_u16(q.b + 4, 1);
    q.b[WIRE_HEADER_LEN] = 0xC0;
    q.b[WIRE_HEADER_LEN + 1] = WIRE_HEADER_LEN;
    query_hint_start(g_set, q.b, q.len, &h);
    assert_null(h.zone);
    /* No zone set at all. */
    testutil_query_make(&q, 5, 0, "www.example.com", WIRE_TYPE_A, 1);
    query_hint_start(NULL, q.b, q.len, &h);
    assert_null(h.zone);
}

static void test_no_allocation_per_query(void **state)
{
    (void)state;
    counting_init();
    mix_build();

    /* The counter must see a deliberate malloc, or the test below proves nothing. */
    void *(*volatile alloc)(size_t) = malloc;
    unsigned long c0 = allocs_now();
    void *p = alloc(100);
    assert_non_null(p);
    free(p);
    if (allocs_now() - c0 < 1)
        fail_msg("the allocation counter (%s) did not see a malloc: cannot check the "
                 "query path",
                 counting_method);

    /* Warm up (first use of anything lazily allocated outside the engine). */
    size_t answered = 0;
    run_mix(false, &answered);
    assert_true(answered >= MIX_QUERIES - MIX_QUERIES / g_mix_n - 1);

    /* A positive control: one allocation per query is seen as at least that many. */
    unsigned long control = run_mix(true, NULL);
    if (control < MIX_QUERIES)
        fail_msg("the allocation counter (%s) saw %lu allocations for %d queries that each "
                 "allocated",
                 counting_method, control, MIX_QUERIES);

    unsigned long got = run_mix(false, &answered);
    if (got != 0)
        fail_msg("%lu allocations while answering %d queries (%s)", got, MIX_QUERIES,
                 counting_method);
    print_message("no allocation in %d queries (%zu answered), counted with the %s\n", MIX_QUERIES,
                  answered, counting_method);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_flags),
        cmocka_unit_test(test_hint),
        cmocka_unit_test(test_opcodes),
        cmocka_unit_test(test_question_case),
        cmocka_unit_test(test_nxdomain_nodata),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_formerr),
        cmocka_unit_test(test_formerr_keeps_opt),
        cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_cname),
        cmocka_unit_test(test_referral),
        cmocka_unit_test(test_ds_at_cut),
        cmocka_unit_test(test_ds_parent_and_child),
        cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_additional),
        cmocka_unit_test(test_any),
        cmocka_unit_test(test_zone_transfer),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_edns),
        cmocka_unit_test(test_badvers),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_no_allocation_per_query),
        cmocka_unit_test(test_dname),
        cmocka_unit_test(test_dname_by_edit),
        cmocka_unit_test(test_dname_apex_and_cut),
        cmocka_unit_test(test_chain_into_served_child),
        cmocka_unit_test(test_rdata_names_lower_case),
        cmocka_unit_test(test_svcb_additional),
        cmocka_unit_test(test_referral_glue_truncation),
        cmocka_unit_test(test_nsid_within_the_udp_size),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
