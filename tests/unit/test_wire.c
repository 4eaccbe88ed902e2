/* Unit tests for the DNS wire format helpers (node/wire.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/wire.h"

/* A message buffer: a zeroed 12-byte header followed by whatever the test appends. */
typedef struct msg {
    uint8_t b[70000];
    size_t len;
} msg_t;

static msg_t g_msg;

static msg_t *msg_new(void)
{
    memset(&g_msg, 0, sizeof(g_msg));
    g_msg.len = WIRE_HEADER_LEN;
    return &g_msg;
}

/* Appends N raw bytes and returns the offset they start at. */
static size_t msg_put(msg_t *m, const void *bytes, size_t n)
{
    size_t off = m->len;
    memcpy(m->b + off, bytes, n);
    m->len += n;
    return off;
}

/* Appends a label of length L filled with C (no terminator). */
static void msg_label(msg_t *m, uint8_t l, char c)
{
    m->b[m->len++] = l;
    memset(m->b + m->len, c, l);
    m->len += l;
}

static void msg_ptr(msg_t *m, size_t target)
{
    m->b[m->len++] = (uint8_t)(0xC0 | (target >> 8));
    m->b[m->len++] = (uint8_t)target;
}

static int read_at(const msg_t *m, size_t pos, size_t *after, uint8_t *out, bool lower)
{
    size_t p = pos;
    int rc = wire_name_read(m->b, m->len, &p, out, lower);
    if (after)
        *after = p;
    return rc;
}

#define NAME(s) ((const uint8_t *)(s))

/* ---- wire_name_read ---- */

static void test_read_plain(void **state)
{
    (void)state;
    msg_t *m = msg_new();
    uint8_t out[WIRE_NAME_MAX];
    size_t after;
    size_t off = msg_put(m,
                         "\x03WwW\x07"
                         "example\x03"
                         "com\x00",
                         17);

    assert_int_equal(read_at(m, off, &after, out, false), 17);
    assert_int_equal(after, off + 17);
    assert_memory_equal(out,
                        "\x03WwW\x07"
                        "example\x03"
                        "com\x00",
                        17);

    assert_int_equal(read_at(m, off, &after, out, true), 17);
    assert_memory_equal(out,
                        "\x03www\x07"
                        "example\x03"
                        "com\x00",
                        17);

    /* The root name alone. */
    off = msg_put(m, "\x00", 1);
    assert_int_equal(read_at(m, off, &after, out, true), 1);
    assert_int_equal(out[0], 0);
    assert_int_equal(after, off + 1);
}

static void test_read_compressed(void **state)
{
    (void)state;
    msg_t *m = msg_new();
    uint8_t out[WIRE_NAME_MAX];
    size_t after;
    size_t base = msg_put(m,
                          "\x07"
                          "example\x03"
                          "com\x00",
                          13); /* 12 */
    size_t www = msg_put(m, "\x03www", 4);
    msg_ptr(m, base);

    assert_int_equal(read_at(m, www, &after, out, false), 17);
    assert_memory_equal(out,
                        "\x03www\x07"
                        "example\x03"
                        "com\x00",
                        17);
    assert_int_equal(after, www + 6); /* past the first pointer, not past the target */

    /* A pointer to a suffix ("com" inside the first name). */
    size_t mail = msg_put(m, "\x04mail", 5);
    msg_ptr(m, base + 8);
    assert_int_equal(read_at(m, mail, &after, out, false), 10);
    assert_memory_equal(out,
                        "\x04mail\x03"
                        "com\x00",
                        10);
    assert_int_equal(after, mail + 7);

    /* A chain: a pointer to a name that itself ends in a pointer. */
    size_t a = msg_put(m,
                       "\x01"
                       "a",
                       2);
    msg_ptr(m, www);
    assert_int_equal(read_at(m, a, &after, out, false), 19);
    assert_memory_equal(out,
                        "\x01"
                        "a\x03www\x07"
                        "example\x03"
                        "com\x00",
                        19);
    assert_int_equal(after, a + 4);

    /* A name that is only a pointer. */
    size_t only = m->len;
    msg_ptr(m, a);
    assert_int_equal(read_at(m, only, &after, out, true), 19);
    assert_int_equal(after, only + 2);
}

static void test_read_pointer_loops(void **state)
{
    (void)state;
    msg_t *m = msg_new();
    uint8_t out[WIRE_NAME_MAX];
    size_t after = 999;

    /* A pointer to itself. */
    size_t self = m->len;
    msg_ptr(m, self);
    assert_int_equal(read_at(m, self, &after, out, false), FENNEC_EMALFORMED);

    /* A -> B -> A: A points forward to B, B points back to A. */
    m = msg_new();
    size_t a = msg_put(m,
                       "\x01"
                       "a",
                       2);
    msg_ptr(m, a + 4);
    size_t b = msg_put(m,
                       "\x01"
                       "b",
                       2);
    msg_ptr(m, a);
    assert_int_equal(b, a + 4);
    assert_int_equal(read_at(m, a, NULL, out, false), FENNEC_EMALFORMED);
    assert_int_equal(read_at(m, b, NULL, out, false), FENNEC_EMALFORMED);

    /* A pointer to a label inside its own name (a loop through the name's own labels). */
    m = msg_new();
    size_t n = msg_put(m,
                       "\x01"
                       "x\x01"
                       "y",
                       4);
    msg_ptr(m, n + 2);
    assert_int_equal(read_at(m, n, NULL, out, false), FENNEC_EMALFORMED);
}

static void test_read_forward_and_header_pointers(void **state)
{
    (void)state;
    msg_t *m = msg_new();
    uint8_t out[WIRE_NAME_MAX];

    /* A forward pointer to a perfectly good name. */
    size_t fwd = m->len;
    msg_ptr(m, fwd + 2);
    msg_put(m,
            "\x03"
            "com\x00",
            5);
    assert_int_equal(read_at(m, fwd, NULL, out, false), FENNEC_EMALFORMED);

    /* A pointer into the header, even when the header bytes look like a name. */
    m = msg_new();
    memcpy(m->b,
           "\x01"
           "a\x00",
           3);
    size_t hp = m->len;
    msg_ptr(m, 0);
    assert_int_equal(read_at(m, hp, NULL, out, false), FENNEC_EMALFORMED);
    m->len = hp;
    msg_ptr(m, 11);
    assert_int_equal(read_at(m, hp, NULL, out, false), FENNEC_EMALFORMED);
}

static void test_read_bad_label_types(void **state)
{
    (void)state;
    msg_t *m = msg_new();
    uint8_t out[WIRE_NAME_MAX];
    size_t off = msg_put(m,
                         "\x40"
                         "abc\x00",
                         5); /* 0x40: extended label type */
    assert_int_equal(read_at(m, off, NULL, out, false), FENNEC_EMALFORMED);
    m = msg_new();
    off = msg_put(m, "\x80\x00", 2); /* 0x80: reserved */
    assert_int_equal(read_at(m, off, NULL, out, false), FENNEC_EMALFORMED);
    m = msg_new();
    off = msg_put(m,
                  "\x01"
                  "a\x7f\x00",
                  4); /* 127 after a good label */
    assert_int_equal(read_at(m, off, NULL, out, false), FENNEC_EMALFORMED);
}

static void test_read_name_too_long(void **state)
{
    (void)state;
    msg_t *m = msg_new();
    uint8_t out[WIRE_NAME_MAX + 16];

    /* 255 bytes exactly, built through three pointers: accepted. */
    size_t p0 = m->len;
    msg_label(m, 61, 'a');
    m->b[m->len++] = 0;
    size_t p1 = m->len;
    msg_label(m, 63, 'b');
    msg_ptr(m, p0);
    size_t p2 = m->len;
    msg_label(m, 63, 'c');
    msg_ptr(m, p1);
    size_t p3 = m->len;
    msg_label(m, 63, 'd');
    msg_ptr(m, p2);
    assert_int_equal(read_at(m, p3, NULL, out, false), 255);

    /* One more byte (a 62-byte first label): 256, rejected. */
    m = msg_new();
    p0 = m->len;
    msg_label(m, 62, 'a');
    m->b[m->len++] = 0;
    p1 = m->len;
    msg_label(m, 63, 'b');
    msg_ptr(m, p0);
    p2 = m->len;
    msg_label(m, 63, 'c');
    msg_ptr(m, p1);
    p3 = m->len;
    msg_label(m, 63, 'd');
    msg_ptr(m, p2);
    assert_int_equal(read_at(m, p2, NULL, out, false), 64 + 64 + 63 + 1);
    assert_int_equal(read_at(m, p3, NULL, out, false), FENNEC_EMALFORMED);

    /* Without pointers: five 63-byte labels. */
    m = msg_new();
    size_t off = m->len;
    for (int i = 0; i < 5; i++)
        msg_label(m, 63, 'x');
    m->b[m->len++] = 0;
    assert_int_equal(read_at(m, off, NULL, out, false), FENNEC_EMALFORMED);

    /* Many short labels through a long pointer chain also hit the limit. */
    m = msg_new();
    size_t prev = m->len;
    m->b[m->len++] = 0;
    for (int i = 0; i < 200; i++) {
        size_t here = m->len;
        msg_label(m, 1, 'k');
        msg_ptr(m, prev);
        prev = here;
    }
    assert_int_equal(read_at(m, prev, NULL, out, false), FENNEC_EMALFORMED);
}

static void test_read_truncated(void **state)
{
    (void)state;
    msg_t *m = msg_new();
    uint8_t out[WIRE_NAME_MAX];
    size_t off = msg_put(m, "\x03ww", 3); /* label runs past the end */
    assert_int_equal(read_at(m, off, NULL, out, false), FENNEC_EMALFORMED);
    m = msg_new();
    off = msg_put(m, "\x03www", 4); /* no terminating root label */
    assert_int_equal(read_at(m, off, NULL, out, false), FENNEC_EMALFORMED);
    m = msg_new();
    msg_put(m,
            "\x03"
            "com\x00",
            5);
    off = msg_put(m, "\xC0", 1); /* half a pointer */
    assert_int_equal(read_at(m, off, NULL, out, false), FENNEC_EMALFORMED);
    /* Reading at or past the end. */
    assert_int_equal(read_at(m, m->len, NULL, out, false), FENNEC_EMALFORMED);
    assert_int_equal(read_at(m, m->len + 5, NULL, out, false), FENNEC_EMALFORMED);
    /* On error *pos is left alone. */
    m = msg_new();
    off = m->len;
    msg_ptr(m, off + 1);
    size_t p = off;
    assert_int_equal(wire_name_read(m->b, m->len, &p, out, false), FENNEC_EMALFORMED);
    assert_int_equal(p, off);
}

/* ---- text conversion ---- */

static void round_trip(const char *text, const char *expect_text, const void *wire, size_t wlen)
{
    uint8_t out[WIRE_NAME_MAX];
    char back[WIRE_NAME_TEXT_MAX];
    int l = wire_name_from_text(text, out);
    if (l != (int)wlen)
        fail_msg("\"%s\": length %d, expected %zu", text, l, wlen);
    assert_memory_equal(out, wire, wlen);
    assert_int_equal(wire_name_len(out, sizeof(out)), (int)wlen);
    wire_name_to_text(out, back);
    assert_string_equal(back, expect_text);
    /* And the text form reads back to the same wire form. */
    uint8_t again[WIRE_NAME_MAX];
    assert_int_equal(wire_name_from_text(back, again), (int)wlen);
    assert_memory_equal(again, wire, wlen);
}

static void test_text_round_trip(void **state)
{
    (void)state;
    round_trip("www.example.com", "www.example.com",
               "\x03www\x07"
               "example\x03"
               "com",
               17);
    round_trip("www.example.com.", "www.example.com",
               "\x03www\x07"
               "example\x03"
               "com",
               17);
    round_trip("WwW.Example.COM", "WwW.Example.COM",
               "\x03WwW\x07"
               "Example\x03"
               "COM",
               17);
    round_trip(".", ".", "\x00", 1);
    round_trip("com", "com",
               "\x03"
               "com",
               5);
    /* An escaped dot stays inside its label. */
    round_trip("a\\.b.c", "a\\.b.c",
               "\x03"
               "a.b\x01"
               "c",
               7);
    /* Decimal escapes: printable ones come back as the character. */
    round_trip("\\065bc.d", "Abc.d",
               "\x03"
               "Abc\x01"
               "d",
               7);
    /* Space, a control byte and a high byte come back as \DDD. */
    round_trip("a\\032b", "a\\032b",
               "\x03"
               "a b",
               5);
    round_trip("\\000\\255", "\\000\\255", "\x02\x00\xff", 4);
    /* Characters that are special in master files are escaped on output. */
    round_trip("\\@\\$\\(\\)\\;\\\"\\\\", "\\@\\$\\(\\)\\;\\\"\\\\", "\x07@$();\"\\", 9);
    round_trip("*.example.com", "*.example.com",
               "\x01*\x07"
               "example\x03"
               "com",
               15);
}

static void test_text_errors(void **state)
{
    (void)state;
    uint8_t out[WIRE_NAME_MAX];
    char text[600];

    assert_int_equal(wire_name_from_text("a..b", out), FENNEC_EMALFORMED);
    assert_int_equal(wire_name_from_text(".a", out), FENNEC_EMALFORMED);
    assert_int_equal(wire_name_from_text("a.b..", out), FENNEC_EMALFORMED);
    assert_int_equal(wire_name_from_text("a\\", out), FENNEC_EMALFORMED);
    assert_int_equal(wire_name_from_text("\\256", out), FENNEC_EMALFORMED);
    assert_int_equal(wire_name_from_text("\\99", out), FENNEC_EMALFORMED);
    assert_int_equal(wire_name_from_text("\\1a1", out), FENNEC_EMALFORMED);

    /* 63-byte labels are fine, 64 is not. */
    memset(text, 'a', 63);
    text[63] = 0;
    assert_int_equal(wire_name_from_text(text, out), 65);
    memset(text, 'a', 64);
    text[64] = 0;
    assert_int_equal(wire_name_from_text(text, out), FENNEC_EMALFORMED);
    /* 63 escaped bytes are one label of 63. */
    text[0] = 0;
    for (int i = 0; i < 63; i++)
        strcat(text, "\\046");
    assert_int_equal(wire_name_from_text(text, out), 65);
    strcat(text, "\\046");
    assert_int_equal(wire_name_from_text(text, out), FENNEC_EMALFORMED);

    /* 255 bytes in wire form are fine (63+63+63+61 characters), 256 are not. */
    size_t o = 0;
    int lens[4] = {63, 63, 63, 61};
    for (int i = 0; i < 4; i++) {
        memset(text + o, 'a' + i, (size_t)lens[i]);
        o += (size_t)lens[i];
        text[o++] = '.';
    }
    text[o] = 0;
    assert_int_equal(wire_name_from_text(text, out), 255);
    text[o - 1] = 0; /* without the trailing dot */
    assert_int_equal(wire_name_from_text(text, out), 255);
    text[o - 1] = 'e';
    text[o] = 0;
    assert_int_equal(wire_name_from_text(text, out), FENNEC_EMALFORMED);
}

static void test_name_helpers(void **state)
{
    (void)state;
    assert_int_equal(wire_name_labels(NAME("\x00")), 0);
    assert_int_equal(wire_name_labels(NAME("\x03www\x07"
                                           "example\x03"
                                           "com")),
                     3);
    assert_true(wire_name_equal(NAME("\x03WWW\x02"
                                     "eX"),
                                NAME("\x03www\x02"
                                     "Ex")));
    assert_false(wire_name_equal(NAME("\x03www\x02"
                                      "ex"),
                                 NAME("\x03www\x02"
                                      "ey")));
    assert_false(wire_name_equal(NAME("\x02ww\x00"), NAME("\x03www")));
    uint8_t n[] = "\x03WwW\x02"
                  "Ex";
    wire_name_lower(n);
    assert_memory_equal(n,
                        "\x03www\x02"
                        "ex",
                        8);
    assert_int_equal(wire_name_len(NAME("\x03"
                                        "com"),
                                   5),
                     5);
    assert_int_equal(wire_name_len(NAME("\x03"
                                        "com"),
                                   4),
                     FENNEC_EMALFORMED);
    assert_int_equal(wire_name_len(NAME("\x40"
                                        "abc"),
                                   10),
                     FENNEC_EMALFORMED);
    assert_int_equal(wire_name_len(NAME("\xC0\x0C"), 10), FENNEC_EMALFORMED);
}

static void test_name_in(void **state)
{
    (void)state;
    const uint8_t *zone = NAME("\x07"
                               "example\x03"
                               "com");
    assert_true(wire_name_in(NAME("\x03www\x07"
                                  "example\x03"
                                  "com"),
                             17, zone, 13));
    assert_true(wire_name_in(NAME("\x07"
                                  "example\x03"
                                  "com"),
                             13, zone, 13));
    assert_true(wire_name_in(NAME("\x01"
                                  "a\x01"
                                  "b\x07"
                                  "example\x03"
                                  "com"),
                             17, zone, 13));
    /* Same trailing bytes, but not on a label boundary. */
    assert_false(wire_name_in(NAME("\x0a"
                                   "badexample\x03"
                                   "com"),
                              16, zone, 13));
    assert_false(wire_name_in(NAME("\x05x\x03"
                                   "com"),
                              7,
                              NAME("\x03"
                                   "com"),
                              5));
    /* Parents and siblings are not inside. */
    assert_false(wire_name_in(NAME("\x03"
                                   "com"),
                              5, zone, 13));
    assert_false(wire_name_in(NAME("\x07"
                                   "example\x03"
                                   "net"),
                              13, zone, 13));
    assert_false(wire_name_in(NAME("\x00"), 1, zone, 13));
    /* Everything is inside the root. */
    assert_true(wire_name_in(NAME("\x03"
                                  "com"),
                             5, NAME("\x00"), 1));
    assert_true(wire_name_in(NAME("\x00"), 1, NAME("\x00"), 1));
}

/* ---- writing with compression ---- */

static void expect_read_back(const uint8_t *pkt, size_t len, size_t off, const uint8_t *name)
{
    uint8_t out[WIRE_NAME_MAX];
    size_t p = off;
    int l = wire_name_read(pkt, len, &p, out, false);
    assert_true(l > 0);
    assert_int_equal(l, wire_name_len(name, WIRE_NAME_MAX));
    assert_true(wire_name_equal(out, name));
}

static void test_write_compression(void **state)
{
    (void)state;
    uint8_t pkt[512] = {0};
    wire_compr_t c;
    wire_compr_reset(&c);
    size_t pos = WIRE_HEADER_LEN;
    const uint8_t *www = NAME("\x03www\x07"
                              "example\x03"
                              "com");

    /* First time: written in full. */
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    assert_int_equal(pos, WIRE_HEADER_LEN + 17);
    assert_memory_equal(pkt + WIRE_HEADER_LEN, www, 17);

    /* Second time: one 2-byte pointer to the first. */
    size_t second = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    assert_int_equal(pos, second + 2);
    assert_int_equal(pkt[second], 0xC0);
    assert_int_equal(pkt[second + 1], WIRE_HEADER_LEN);

    /* A different first label: the label, then a pointer to "example.com" (offset 16). */
    size_t mail = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos,
                                     NAME("\x04mail\x07"
                                          "example\x03"
                                          "com"),
                                     &c),
                     0);
    assert_int_equal(pos, mail + 7);
    assert_memory_equal(pkt + mail, "\x04mail\xC0\x10", 7);

    /* A suffix of a name written later: "mail.example.com" is known through the pointer. */
    size_t x = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos,
                                     NAME("\x01x\x04mail\x07"
                                          "example\x03"
                                          "com"),
                                     &c),
                     0);
    assert_memory_equal(pkt + x, "\x01x", 2);
    assert_int_equal(wire_get_u16(pkt + x + 2), 0xC000 | mail);
    assert_int_equal(pos, x + 4);

    /* Case-insensitive match. */
    size_t up = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos,
                                     NAME("\x03WWW\x07"
                                          "EXAMPLE\x03"
                                          "COM"),
                                     &c),
                     0);
    assert_int_equal(pos, up + 2);
    assert_int_equal(wire_get_u16(pkt + up), 0xC000 | WIRE_HEADER_LEN);

    /* Only "com" in common. */
    size_t net = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos,
                                     NAME("\x03"
                                          "foo\x03"
                                          "com"),
                                     &c),
                     0);
    assert_memory_equal(pkt + net,
                        "\x03"
                        "foo\xC0\x18",
                        6);

    /* Nothing in common: written in full. */
    size_t org = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos,
                                     NAME("\x03"
                                          "org"),
                                     &c),
                     0);
    assert_memory_equal(pkt + org,
                        "\x03"
                        "org",
                        5);

    /* The root is one zero byte. */
    size_t root = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, NAME(""), &c), 0);
    assert_int_equal(pos, root + 1);
    assert_int_equal(pkt[root], 0);

    /* Every name reads back as written. */
    expect_read_back(pkt, pos, WIRE_HEADER_LEN, www);
    expect_read_back(pkt, pos, second, www);
    expect_read_back(pkt, pos, mail,
                     NAME("\x04mail\x07"
                          "example\x03"
                          "com"));
    expect_read_back(pkt, pos, x,
                     NAME("\x01x\x04mail\x07"
                          "example\x03"
                          "com"));
    expect_read_back(pkt, pos, up, www);
    expect_read_back(pkt, pos, net,
                     NAME("\x03"
                          "foo\x03"
                          "com"));
    expect_read_back(pkt, pos, org,
                     NAME("\x03"
                          "org"));
}

static void test_write_no_table(void **state)
{
    (void)state;
    uint8_t pkt[512] = {0};
    size_t pos = WIRE_HEADER_LEN;
    const uint8_t *www = NAME("\x03www\x07"
                              "example\x03"
                              "com");
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, NULL), 0);
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, NULL), 0);
    assert_int_equal(pos, WIRE_HEADER_LEN + 34);
    assert_memory_equal(pkt + WIRE_HEADER_LEN + 17, www, 17);
}

static void test_write_space(void **state)
{
    (void)state;
    uint8_t pkt[512];
    memset(pkt, 0xEE, sizeof(pkt));
    wire_compr_t c;
    wire_compr_reset(&c);
    const uint8_t *www = NAME("\x03www\x07"
                              "example\x03"
                              "com");
    size_t pos = WIRE_HEADER_LEN;

    /* One byte short of the full name. */
    assert_int_equal(wire_name_write(pkt, WIRE_HEADER_LEN + 16, &pos, www, &c), FENNEC_ESPACE);
    assert_int_equal(pos, WIRE_HEADER_LEN);
    assert_int_equal(c.n, 0);
    /* Nothing at all past the capacity was touched. */
    assert_int_equal(pkt[WIRE_HEADER_LEN + 16], 0xEE);
    /* Exactly enough. */
    assert_int_equal(wire_name_write(pkt, WIRE_HEADER_LEN + 17, &pos, www, &c), 0);
    assert_int_equal(pos, WIRE_HEADER_LEN + 17);
    /* A pointer needs two bytes. */
    size_t p2 = pos;
    assert_int_equal(wire_name_write(pkt, p2 + 1, &pos, www, &c), FENNEC_ESPACE);
    assert_int_equal(pos, p2);
    assert_int_equal(wire_name_write(pkt, p2 + 2, &pos, www, &c), 0);
    assert_int_equal(pos, p2 + 2);
    /* A label then a pointer: 5 + 2 bytes; 6 is not enough. */
    size_t p3 = pos;
    unsigned n_before = c.n;
    assert_int_equal(wire_name_write(pkt, p3 + 6, &pos,
                                     NAME("\x04mail\x07"
                                          "example\x03"
                                          "com"),
                                     &c),
                     FENNEC_ESPACE);
    assert_int_equal(pos, p3);
    assert_int_equal(c.n, n_before);
    /* The root needs one byte. */
    assert_int_equal(wire_name_write(pkt, p3, &pos, NAME(""), NULL), FENNEC_ESPACE);
}

static void test_compr_trim(void **state)
{
    (void)state;
    uint8_t pkt[512] = {0};
    wire_compr_t c;
    wire_compr_reset(&c);
    size_t pos = WIRE_HEADER_LEN;
    const uint8_t *www = NAME("\x03www\x07"
                              "example\x03"
                              "com");
    const uint8_t *foo = NAME("\x03"
                              "foo\x03"
                              "bar");
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    assert_int_equal(c.n, 3); /* one entry per label */
    size_t second = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, foo, &c), 0);
    assert_int_equal(c.n, 5);

    /* Roll the second name back: its entries go, the first name's stay. */
    wire_compr_trim(&c, second);
    assert_int_equal(c.n, 3);
    pos = second;
    pkt[second] = 0xFF; /* garbage where the rolled-back name was */
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, foo, &c), 0);
    assert_memory_equal(pkt + second, foo, 9); /* written in full again, no stale pointer */
    size_t p = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    assert_int_equal(pos, p + 2);

    /* Trimming at 0 forgets everything. */
    wire_compr_trim(&c, 0);
    assert_int_equal(c.n, 0);
    p = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    assert_int_equal(pos, p + 17);
    /* Trimming past the end changes nothing. */
    unsigned n = c.n;
    wire_compr_trim(&c, sizeof(pkt));
    assert_int_equal(c.n, n);
}

static void test_compr_limits(void **state)
{
    (void)state;
    static uint8_t pkt[65535];
    memset(pkt, 0, sizeof(pkt));
    wire_compr_t c;
    wire_compr_reset(&c);
    size_t pos = WIRE_HEADER_LEN;
    size_t offs[200];
    uint8_t names[200][32];

    /* More distinct names than the table holds: never overflows, always reads back. */
    for (int i = 0; i < 200; i++) {
        char text[32];
        snprintf(text, sizeof(text), "n%d.z%d.example", i, i % 7);
        assert_true(wire_name_from_text(text, names[i]) > 0);
        offs[i] = pos;
        assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, names[i], &c), 0);
        assert_true(c.n <= WIRE_COMPR_MAX);
    }
    for (int i = 0; i < 200; i++)
        expect_read_back(pkt, pos, offs[i], names[i]);

    /* Names past offset 0x3FFF cannot be pointed to: the same name written again far out
     * must still read back correctly. */
    wire_compr_reset(&c);
    pos = 0x3FF8;
    const uint8_t *www = NAME("\x03www\x07"
                              "example\x03"
                              "com");
    size_t far1 = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    size_t far2 = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    size_t far3 = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    expect_read_back(pkt, pos, far1, www);
    expect_read_back(pkt, pos, far2, www);
    expect_read_back(pkt, pos, far3, www);

    /* A name that starts past 0x3FFF is never a compression target. */
    wire_compr_reset(&c);
    pos = 0x4100;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    size_t p = pos;
    assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
    assert_int_equal(pos, p + 17);

    /* The edge, exactly (RFC 1035 4.1.4: a pointer has 14 bits): a name written at 0x3FFF
     * is pointed to; one written at 0x4000 never is. Both read back. */
    for (size_t at = 0x3FFF; at <= 0x4000; at++) {
        wire_compr_reset(&c);
        pos = at;
        assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
        assert_int_equal(pos, at + 17);
        size_t again = pos;
        assert_int_equal(wire_name_write(pkt, sizeof(pkt), &pos, www, &c), 0);
        if (at == 0x3FFF) {
            assert_int_equal(pos, again + 2);
            assert_int_equal(wire_get_u16(pkt + again), 0xC000 | 0x3FFF);
        } else {
            assert_int_equal(pos, again + 17); /* written out whole: no pointer at all */
        }
        expect_read_back(pkt, pos, at, www);
        expect_read_back(pkt, pos, again, www);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_plain),
        cmocka_unit_test(test_read_compressed),
        cmocka_unit_test(test_read_pointer_loops),
        cmocka_unit_test(test_read_forward_and_header_pointers),
        cmocka_unit_test(test_read_bad_label_types),
        cmocka_unit_test(test_read_name_too_long),
        cmocka_unit_test(test_read_truncated),
        cmocka_unit_test(test_text_round_trip),
        cmocka_unit_test(test_text_errors),
        cmocka_unit_test(test_name_helpers),
        cmocka_unit_test(test_name_in),
        cmocka_unit_test(test_write_compression),
        cmocka_unit_test(test_write_no_table),
        cmocka_unit_test(test_write_space),
        cmocka_unit_test(test_compr_trim),
        cmocka_unit_test(test_compr_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
