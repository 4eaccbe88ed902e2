/*
 * Unit tests for reading zone files (node/zone_load.c): TTLs without $TTL (RFC 1035 5.1),
 * TTLs above 2^31 - 1 (RFC 2181 8), CRLF and mixed line ends, $INCLUDE at depth, and the
 * reload's change detection through included files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fennec/common.h"
#include "fennec/wire.h"
#include "fennec/zone.h"
#include "testutil.h"

/* ---- warnings, captured ---- */

static char g_warn[32][1024];
static int g_warns;

static void on_warn(const char *msg, void *arg)
{
    (void)arg;
    if (g_warns < 32)
        snprintf(g_warn[g_warns], sizeof(g_warn[0]), "%s", msg);
    g_warns++;
}

static int setup_warn(void **state)
{
    (void)state;
    g_warns = 0;
    zone_warn_hook(on_warn, NULL);
    return 0;
}

static int teardown_warn(void **state)
{
    (void)state;
    zone_warn_hook(NULL, NULL);
    return 0;
}

/* The number of captured warnings that start with PREFIX and contain WORD. */
static int warned(const char *prefix, const char *word)
{
    int n = 0;
    for (int i = 0; i < g_warns && i < 32; i++)
        if (strncmp(g_warn[i], prefix, strlen(prefix)) == 0 && strstr(g_warn[i], word))
            n++;
    return n;
}

static void warnings_print(void)
{
    for (int i = 0; i < g_warns && i < 32; i++)
        print_message("warning: %s\n", g_warn[i]);
}

/* ---- helpers ---- */

static char g_dir[256];

static int setup_dir(void **state)
{
    setup_warn(state);
    return testutil_tmpdir_make(g_dir, sizeof(g_dir), "zonefile");
}

static int teardown_dir(void **state)
{
    teardown_warn(state);
    return testutil_tmpdir_remove(g_dir);
}

static zone_t *text_ok(const char *text)
{
    zone_t *z = NULL;
    char err[1024];
    g_warns = 0;
    int rc = zone_load_text("example.com", text, strlen(text), "test.zone", &z, err, sizeof(err));
    if (rc != 0)
        fail_msg("zone_load_text: %d %s", rc, err);
    return z;
}

static const char *text_err(const char *text)
{
    static char err[1024];
    zone_t *z = NULL;
    g_warns = 0;
    int rc = zone_load_text("example.com", text, strlen(text), "test.zone", &z, err, sizeof(err));
    if (rc == 0)
        fail_msg("loaded, expected an error: %s", text);
    assert_null(z);
    return err;
}

static zone_t *file_ok(const char *path)
{
    zone_t *z = NULL;
    char err[1024];
    g_warns = 0;
    int rc = zone_load_file("example.com", path, &z, err, sizeof(err));
    if (rc != 0)
        fail_msg("zone_load_file %s: %d %s", path, rc, err);
    return z;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void path_in(char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s/%s", g_dir, rel);
}

/* The TTL of NAME/TYPE in Z, or -1 when there is no such RRset. */
static long long ttl_of(const zone_t *z, const char *name, uint16_t type)
{
    uint8_t w[WIRE_NAME_MAX];
    int l = wire_name_from_text(name, w);
    assert_true(l > 0);
    wire_name_lower(w);
    const zone_node_t *n = zone_node_find(z, w, (size_t)l);
    const zone_rrset_t *rs = n ? zone_node_rrset(n, type) : NULL;
    return rs ? (long long)rs->ttl : -1;
}

static bool has_a(const zone_t *z, const char *name, const uint8_t addr[4])
{
    uint8_t w[WIRE_NAME_MAX];
    int l = wire_name_from_text(name, w);
    assert_true(l > 0);
    wire_name_lower(w);
    const zone_node_t *n = zone_node_find(z, w, (size_t)l);
    const zone_rrset_t *rs = n ? zone_node_rrset(n, WIRE_TYPE_A) : NULL;
    if (!rs)
        return false;
    const uint8_t *p = rs->data;
    for (unsigned i = 0; i < rs->count; i++) {
        uint16_t len = wire_get_u16(p);
        if (len == 4 && memcmp(p + 2, addr, 4) == 0)
            return true;
        p += 2u + len;
    }
    return false;
}

static int count_change(const zone_change_t *ch, void *arg)
{
    (void)ch;
    (*(size_t *)arg)++;
    return 0;
}

/* How many records A and B do not share (0: the same records, TTLs included). */
static size_t differences(const zone_t *a, const zone_t *b)
{
    size_t n = 0;
    assert_int_equal(zone_diff(a, b, count_change, &n), 0);
    return n;
}

/* ---- RFC 1035 5.1: no $TTL ---- */

static void test_no_ttl_takes_last_written(void **state)
{
    (void)state;
    zone_t *z = text_ok("$ORIGIN example.com.\n"                 /* 1 */
                        "@ IN SOA ns1 h 1 7200 3600 86400 300\n" /* 2: no TTL, none before */
                        "@ 600 IN NS ns1\n"                      /* 3 */
                        "ns1 IN A 192.0.2.1\n"                   /* 4: takes 600 */
                        "x 700 A 192.0.2.2\n"                    /* 5 */
                        "y A 192.0.2.3\n"                        /* 6: takes 700 */
                        "z AAAA 2001:db8::1\n"                   /* 7: takes 700 */
                        "$TTL 100\n"                             /* 8 */
                        "w A 192.0.2.4\n"                        /* 9: $TTL */
                        "v 50 A 192.0.2.5\n");                   /* 10 */
    assert_int_equal(ttl_of(z, "example.com", WIRE_TYPE_SOA), ZONE_TTL_DEFAULT);
    assert_int_equal(ttl_of(z, "example.com", WIRE_TYPE_NS), 600);
    assert_int_equal(ttl_of(z, "ns1.example.com", WIRE_TYPE_A), 600);
    assert_int_equal(ttl_of(z, "x.example.com", WIRE_TYPE_A), 700);
    assert_int_equal(ttl_of(z, "y.example.com", WIRE_TYPE_A), 700);
    assert_int_equal(ttl_of(z, "z.example.com", WIRE_TYPE_AAAA), 700);
    assert_int_equal(ttl_of(z, "w.example.com", WIRE_TYPE_A), 100);
    assert_int_equal(ttl_of(z, "v.example.com", WIRE_TYPE_A), 50);
    /* One warning for the zone, naming the first record that needed a TTL. */
    if (g_warns != 1 || warned("test.zone:2:", "$TTL") != 1) {
        warnings_print();
        fail_msg("expected one warning naming test.zone:2:, got %d", g_warns);
    }
    zone_unref(z);

    /* The first record without a TTL comes after one with a TTL: it takes that one. */
    z = text_ok("$ORIGIN example.com.\n@ 900 SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n");
    assert_int_equal(ttl_of(z, "example.com", WIRE_TYPE_NS), 900);
    assert_int_equal(ttl_of(z, "ns1.example.com", WIRE_TYPE_A), 900);
    assert_int_equal(warned("test.zone:3:", "900"), 1);
    assert_int_equal(g_warns, 1);
    zone_unref(z);

    /* With $TTL first: no warning, records take it. */
    z = text_ok("$ORIGIN example.com.\n$TTL 120\n@ SOA ns1 h 1 2 3 4 5\n@ 30 NS ns1\n"
                "ns1 A 192.0.2.1\n");
    assert_int_equal(ttl_of(z, "ns1.example.com", WIRE_TYPE_A), 120);
    assert_int_equal(ttl_of(z, "example.com", WIRE_TYPE_NS), 30);
    assert_int_equal(g_warns, 0);
    zone_unref(z);

    /* Every TTL written: no warning either. */
    z = text_ok("$ORIGIN example.com.\n@ 1 SOA ns1 h 1 2 3 4 5\n@ 2 NS ns1\nns1 3 A 192.0.2.1\n");
    assert_int_equal(g_warns, 0);
    zone_unref(z);
}

static void test_no_ttl_across_include(void **state)
{
    (void)state;
    char inc[300], top[300], text[600];
    path_in(inc, sizeof(inc), "nottl.inc");
    path_in(top, sizeof(top), "nottl.zone");
    write_file(inc, "a A 192.0.2.1\nb 42 A 192.0.2.2\n");
    snprintf(text, sizeof(text),
             "$ORIGIN example.com.\n@ 77 SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.9\n"
             "$INCLUDE %s\nc A 192.0.2.3\n",
             inc);
    write_file(top, text);
    zone_t *z = file_ok(top);
    assert_int_equal(ttl_of(z, "a.example.com", WIRE_TYPE_A), 77);
    assert_int_equal(ttl_of(z, "b.example.com", WIRE_TYPE_A), 42);
    assert_int_equal(ttl_of(z, "c.example.com", WIRE_TYPE_A), 42); /* after the include */
    assert_int_equal(g_warns, 1);
    zone_unref(z);
}

/* ---- RFC 2181 8: at most 2^31 - 1 ---- */

static void test_ttl_capped(void **state)
{
    (void)state;
    /* Case 16. */
    zone_t *z = text_ok("$TTL 300\n" /* 1 */
                        "@ IN SOA ns1.outside.example. root.example.com. 3 3600 600 86400 300\n"
                        "@ IN NS ns1.outside.example.\n"   /* 3 */
                        "big 2147483648 IN A 192.0.2.1\n"  /* 4 */
                        "max 4294967295 IN A 192.0.2.2\n"  /* 5 */
                        "ok 2147483647 IN A 192.0.2.3\n"); /* 6 */
    assert_int_equal(ttl_of(z, "big.example.com", WIRE_TYPE_A), ZONE_TTL_MAX);
    assert_int_equal(ttl_of(z, "max.example.com", WIRE_TYPE_A), ZONE_TTL_MAX);
    assert_int_equal(ttl_of(z, "ok.example.com", WIRE_TYPE_A), ZONE_TTL_MAX);
    if (g_warns != 2 || warned("test.zone:4:", "2147483648") != 1 ||
        warned("test.zone:5:", "4294967295") != 1) {
        warnings_print();
        fail_msg("expected warnings naming test.zone:4: and test.zone:5:");
    }
    assert_int_equal(warned("test.zone:4:", "capped to 2147483647"), 1);
    zone_unref(z);

    /* A $TTL above the limit: capped where it is used. */
    z = text_ok("$TTL 4294967295\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 60 A 192.0.2.1\n");
    assert_int_equal(ttl_of(z, "example.com", WIRE_TYPE_SOA), ZONE_TTL_MAX);
    assert_int_equal(ttl_of(z, "example.com", WIRE_TYPE_NS), ZONE_TTL_MAX);
    assert_int_equal(ttl_of(z, "ns1.example.com", WIRE_TYPE_A), 60);
    assert_true(warned("test.zone:2:", "$TTL") >= 1);
    zone_unref(z);

    /* The written 4294967295 before any $TTL (the mark the loader uses) is told from a
     * missing TTL: capped, and the record after it without a TTL takes the capped value. */
    z = text_ok("$ORIGIN example.com.\n@ 10 SOA ns1 h 1 2 3 4 5\n@ 10 NS ns1\n"
                "max 4294967295 A 192.0.2.1\nnext A 192.0.2.2\nnone A 192.0.2.3\n");
    assert_int_equal(ttl_of(z, "max.example.com", WIRE_TYPE_A), ZONE_TTL_MAX);
    assert_int_equal(ttl_of(z, "next.example.com", WIRE_TYPE_A), ZONE_TTL_MAX);
    assert_int_equal(warned("test.zone:4:", "4294967295"), 1);
    assert_int_equal(warned("test.zone:5:", "$TTL"), 1);
    assert_int_equal(g_warns, 2);
    zone_unref(z);
    z = text_ok("$ORIGIN example.com.\n@ 4294967294 SOA ns1 h 1 2 3 4 5\n@ NS ns1\n"
                "a A 192.0.2.1\n");
    assert_int_equal(ttl_of(z, "a.example.com", WIRE_TYPE_A), ZONE_TTL_MAX);
    zone_unref(z);

    /* SOA MINIMUM is the TTL of negative answers: capped too; the other timers are kept. */
    z = text_ok("$TTL 60\n@ SOA ns1 h 1 4294967295 4294967295 4294967295 4294967295\n@ NS ns1\n");
    assert_true(warned("test.zone:2:", "MINIMUM") == 1);
    {
        uint8_t w[WIRE_NAME_MAX];
        int l = wire_name_from_text("example.com", w);
        const zone_rrset_t *soa = zone_node_rrset(zone_node_find(z, w, (size_t)l), WIRE_TYPE_SOA);
        uint16_t len = wire_get_u16(soa->data);
        const uint8_t *end = soa->data + 2 + len;
        assert_int_equal(wire_get_u32(end - 4), ZONE_TTL_MAX);
        assert_int_equal(wire_get_u32(end - 8), UINT32_MAX);  /* EXPIRE */
        assert_int_equal(wire_get_u32(end - 16), UINT32_MAX); /* REFRESH */
    }
    zone_unref(z);

    /* Many: the first ten named, then one line with the count. */
    char text[4096];
    size_t o = (size_t)snprintf(text, sizeof(text), "$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n");
    for (int i = 0; i < 25; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "h%d 3000000000 A 192.0.2.%d\n", i, i);
    z = text_ok(text);
    assert_int_equal(g_warns, 11);
    assert_non_null(strstr(g_warn[10], "15 more"));
    zone_unref(z);

    /* Not a 32-bit number at all: an error naming the line. */
    const char *err =
        text_err("$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nx 4294967296 A 192.0.2.1\n");
    assert_int_equal(strncmp(err, "test.zone:4:", 12), 0);
}

/* ---- line ends ---- */

static const char lf_zone[] = "$ORIGIN example.com.\n"
                              "$TTL 300\n"
                              "@ IN SOA ns1 hostmaster ( 1 ; serial\n"
                              "  7200 3600 ; refresh retry\n"
                              "  86400 300 )\n"
                              "@ IN NS ns1\n"
                              "ns1 IN A 192.0.2.1 ; a comment\n"
                              "; a line of comment\n"
                              "\n"
                              "t IN TXT \"hello world\"\n"
                              "t2 IN TXT \"a\" \"b;c\"\n"
                              "t3 IN TXT ( \"multi\"\n"
                              "  \"line\" )\n"
                              "u IN TXT unquoted\n"
                              "$INCLUDE %s\n"
                              "$ORIGIN sub.example.com.\n"
                              "v 60 IN A 192.0.2.2\n"
                              "w IN MX 10 mail\n";

/* TEXT with every LF made CRLF (EVERY 1), or every other one (EVERY 2). */
static void to_crlf(const char *text, char *out, size_t len, int every)
{
    size_t o = 0;
    int line = 0;
    for (const char *p = text; *p && o + 3 < len; p++) {
        if (*p == '\n' && line++ % every == 0)
            out[o++] = '\r';
        out[o++] = *p;
    }
    out[o] = '\0';
}

static void test_crlf_same_records(void **state)
{
    (void)state;
    char inc_lf[300], inc_crlf[300], lf[300], crlf[300], mixed[300], text[2048], conv[4096];
    path_in(inc_lf, sizeof(inc_lf), "lf.inc");
    path_in(inc_crlf, sizeof(inc_crlf), "crlf.inc");
    path_in(lf, sizeof(lf), "lf.zone");
    path_in(crlf, sizeof(crlf), "crlf.zone");
    path_in(mixed, sizeof(mixed), "mixed.zone");
    write_file(inc_lf, "i IN A 192.0.2.9\n$TTL 30\nj IN TXT \"end\"\n");
    write_file(inc_crlf, "i IN A 192.0.2.9\r\n$TTL 30\r\nj IN TXT \"end\"\r\n");

    snprintf(text, sizeof(text), lf_zone, inc_lf);
    write_file(lf, text);
    zone_t *zl = file_ok(lf);
    assert_int_equal(zone_record_count(zl), 11);

    snprintf(text, sizeof(text), lf_zone, inc_crlf);
    to_crlf(text, conv, sizeof(conv), 1);
    write_file(crlf, conv);
    zone_t *zc = file_ok(crlf);
    assert_int_equal(differences(zl, zc), 0);
    assert_int_equal(g_warns, 0);

    to_crlf(text, conv, sizeof(conv), 2);
    write_file(mixed, conv);
    zone_t *zm = file_ok(mixed);
    assert_int_equal(differences(zl, zm), 0);

    /* The last line without any line end, after CR only, and as text in memory. */
    size_t n = strlen(conv);
    assert_true(conv[n - 1] == '\n');
    conv[n - 1] = '\0';
    write_file(mixed, conv);
    zone_t *zn = file_ok(mixed);
    assert_int_equal(differences(zl, zn), 0);
    zone_unref(zn);
    to_crlf(text, conv, sizeof(conv), 1);
    conv[strlen(conv) - 1] = '\0'; /* ends in CR */
    zn = text_ok(conv);
    assert_int_equal(differences(zl, zn), 0);

    /* The TXT strings keep their bytes: no CR sneaks into them. */
    assert_int_equal(zone_record_count(zc), 11);
    zone_unref(zn);
    zone_unref(zm);
    zone_unref(zc);
    zone_unref(zl);

    /* A CR that does not end a line is refused, naming the line. */
    const char *err = text_err("$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nx\rA 192.0.2.1\n");
    assert_int_equal(strncmp(err, "test.zone:4:", 12), 0);
}

/* ---- $INCLUDE at depth, and reloads ---- */

static void test_include_depth_reload(void **state)
{
    (void)state;
    char top[300], d1[300], d2[300], a[300], b[300], c[300], cnew[300], text[600], err[1024];
    path_in(d1, sizeof(d1), "one");
    path_in(d2, sizeof(d2), "one/two");
    assert_int_equal(mkdir(d1, 0700), 0);
    assert_int_equal(mkdir(d2, 0700), 0);
    path_in(top, sizeof(top), "deep.zone");
    path_in(a, sizeof(a), "one/a.inc");
    path_in(b, sizeof(b), "one/two/b.inc");
    path_in(c, sizeof(c), "one/two/c.inc");
    path_in(cnew, sizeof(cnew), "one/two/c.new");
    /* Relative names, each taken from the including file's folder. */
    write_file(top, "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 5 2 3 4 5\n@ NS ns1\n"
                    "ns1 A 192.0.2.53\n$INCLUDE one/a.inc\n");
    write_file(a, "a A 192.0.2.1\n$INCLUDE two/b.inc\n");
    write_file(b, "b A 192.0.2.2\n$INCLUDE c.inc\n");
    write_file(c, "deep A 192.0.2.3\n");
    zone_t *z = file_ok(top), *nz = NULL;
    static const uint8_t a3[4] = {192, 0, 2, 3}, a4[4] = {192, 0, 2, 4}, a5[4] = {192, 0, 2, 5};
    assert_true(has_a(z, "deep.example.com", a3));
    zone_reload_stats_t st;

    /* Nothing changed. */
    assert_int_equal(zone_reload_file(z, top, &nz, &st, err, sizeof(err)), 0);
    assert_null(nz);
    assert_true(st.unchanged);

    /* The file three includes down changes, same size, same mtime second. */
    struct stat before;
    assert_int_equal(stat(c, &before), 0);
    write_file(c, "deep A 192.0.2.4\n");
    struct timespec ts[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, c, ts, 0), 0);
    assert_int_equal(zone_reload_file(z, top, &nz, &st, err, sizeof(err)), 0);
    assert_non_null(nz);
    assert_false(st.unchanged);
    assert_int_equal(st.added, 1);
    assert_int_equal(st.removed, 1);
    assert_true(has_a(nz, "deep.example.com", a4));
    zone_unref(z);
    z = nz;

    /* Replaced by rename. */
    write_file(cnew, "deep A 192.0.2.5\n");
    assert_int_equal(rename(cnew, c), 0);
    assert_int_equal(zone_reload_file(z, top, &nz, &st, err, sizeof(err)), 0);
    assert_non_null(nz);
    assert_true(has_a(nz, "deep.example.com", a5));
    zone_unref(z);
    z = nz;

    /* An include appears three deep, then goes. */
    write_file(c, "deep A 192.0.2.5\n$INCLUDE c.new\n");
    write_file(cnew, "deeper A 192.0.2.6\n");
    assert_int_equal(zone_reload_file(z, top, &nz, &st, err, sizeof(err)), 0);
    assert_non_null(nz);
    assert_int_equal(st.added, 1);
    zone_unref(z);
    z = nz;
    write_file(c, "deep A 192.0.2.5\n");
    assert_int_equal(zone_reload_file(z, top, &nz, &st, err, sizeof(err)), 0);
    assert_non_null(nz);
    assert_int_equal(st.removed, 1);
    zone_unref(z);
    z = nz;

    /* An included file that is gone: an error naming the including file and line; the served
     * version stays. */
    write_file(c, "deep A 192.0.2.5\n$INCLUDE gone.inc\n");
    assert_int_equal(zone_reload_file(z, top, &nz, &st, err, sizeof(err)), FENNEC_EZONE);
    assert_null(nz);
    snprintf(text, sizeof(text), "%s:2: $INCLUDE", c);
    if (strncmp(err, text, strlen(text)) != 0)
        fail_msg("\"%s\", expected \"%s...\"", err, text);

    /* A file that includes itself: refused, not followed for ever. */
    write_file(c, "deep A 192.0.2.5\n$INCLUDE c.inc\n");
    assert_int_equal(zone_reload_file(z, top, &nz, &st, err, sizeof(err)), FENNEC_EZONE);
    assert_null(nz);
    assert_non_null(strstr(err, "include itself"));
    zone_unref(z);
}

/* A device or a FIFO would be read without end (or block): refused at the $INCLUDE. */
static void test_include_not_regular(void **state)
{
    (void)state;
    char fifo[300], text[600];
    const char *err = text_err("$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n$INCLUDE /dev/zero\n");
    if (strncmp(err, "test.zone:4:", 12) != 0 || !strstr(err, "not a regular file"))
        fail_msg("$INCLUDE /dev/zero: \"%s\"", err);
    path_in(fifo, sizeof(fifo), "pipe.inc");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(text, sizeof(text), "$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n$INCLUDE %s\n", fifo);
    err = text_err(text);
    assert_non_null(strstr(err, "not a regular file"));
    zone_t *z = NULL;
    char msg[512];
    assert_int_equal(zone_load_file("example.com", fifo, &z, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "not a regular file"));
}

/* --force: a file whose records did not change is served anyway, as a new version. */
static void test_reload_force(void **state)
{
    (void)state;
    char top[300], err[1024];
    path_in(top, sizeof(top), "force.zone");
    write_file(top, "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 7 2 3 4 5\n@ NS ns1\n"
                    "ns1 A 192.0.2.53\n");
    zone_t *z = file_ok(top), *nz = NULL;
    zone_reload_stats_t st;
    assert_int_equal(zone_reload(z, top, 0, &nz, &st, err, sizeof(err)), 0);
    assert_null(nz);
    assert_true(st.unchanged);
    assert_int_equal(zone_reload(z, top, ZONE_RELOAD_FORCE, &nz, &st, err, sizeof(err)), 0);
    assert_non_null(nz);
    assert_false(st.unchanged);
    assert_int_equal(st.added + st.removed, 0);
    assert_int_equal(zone_serial(nz), 8); /* moved on: never the same serial for new data */
    zone_unref(z);
    z = nz;

    /* A record edit, then a forced reload of the unchanged file: the edit is gone. */
    uint8_t w[WIRE_NAME_MAX], rd[4] = {192, 0, 2, 77};
    assert_true(wire_name_from_text("edit.example.com.", w) > 0);
    zone_change_t ch = {
        .add = true, .owner = w, .type = WIRE_TYPE_A, .ttl = 60, .rdata = rd, .rdlen = 4};
    assert_int_equal(zone_edit(z, &ch, 1, &nz, err, sizeof(err)), 0);
    zone_unref(z);
    z = nz;
    assert_int_equal(zone_reload(z, top, 0, &nz, &st, err, sizeof(err)), 0);
    assert_null(nz); /* unforced: the edit stays */
    assert_int_equal(zone_reload(z, top, ZONE_RELOAD_FORCE, &nz, &st, err, sizeof(err)), 0);
    assert_non_null(nz);
    assert_int_equal(st.removed, 1);
    assert_int_equal(ttl_of(nz, "edit.example.com", WIRE_TYPE_A), -1);
    zone_unref(z);
    z = nz;
    /* After it, an unforced reload finds the file unchanged again. */
    assert_int_equal(zone_reload(z, top, 0, &nz, &st, err, sizeof(err)), 0);
    assert_null(nz);
    assert_true(st.unchanged);
    zone_unref(z);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_ttl_takes_last_written, setup_warn, teardown_warn),
        cmocka_unit_test_setup_teardown(test_no_ttl_across_include, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ttl_capped, setup_warn, teardown_warn),
        cmocka_unit_test_setup_teardown(test_crlf_same_records, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_include_depth_reload, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_reload_force, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_include_not_regular, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
