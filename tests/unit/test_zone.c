/* Unit tests for the zone store (node/zone.c). */
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

#include "fennec/cfg.h"
#include "fennec/common.h"
#include "testutil.h"
#include "fennec/wire.h"
#include "fennec/zone.h"

static const char zone_text[] = "$ORIGIN example.com.\n" /* 1 */
                                "$TTL 3600\n"            /* 2 */
                                "@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300\n"
                                "@ NS ns1\n"                                 /* 4 */
                                "@ NS ns2.example.net.\n"                    /* 5 */
                                "@ MX 10 mail\n"                             /* 6 */
                                "ns1 A 192.0.2.1\n"                          /* 7 */
                                "ns1 AAAA 2001:db8::1\n"                     /* 8 */
                                "mail A 192.0.2.25\n"                        /* 9 */
                                "a.b.c A 192.0.2.3\n"                        /* 10 */
                                "sub NS ns.sub\n"                            /* 11 */
                                "sub NS ns.other.net.\n"                     /* 12 */
                                "ns.sub A 192.0.2.53\n"                      /* 13 */
                                "deep.x.sub A 192.0.2.54\n"                  /* 14 */
                                "*.wild A 192.0.2.99\n"                      /* 15 */
                                "_sip._tcp SRV 10 5 5060 mail\n"             /* 16 */
                                "WWW A 192.0.2.10\n"                         /* 17 */
                                "www A 192.0.2.10 ; the same record again\n" /* 18 */
                                "www 600 A 192.0.2.11\n"                     /* 19 */
                                "txt TXT \"hello\"\n"                        /* 20 */
                                "mx2 MX 20 ns.sub\n";                        /* 21 */

static zone_t *load_ok(const char *origin, const char *text)
{
    zone_t *z = NULL;
    char err[512];
    int rc = zone_load_text(origin, text, strlen(text), "test.zone", &z, err, sizeof(err));
    if (rc != 0)
        fail_msg("zone_load_text: %d %s", rc, err);
    assert_non_null(z);
    return z;
}

static const zone_node_t *find(const zone_t *z, const char *text)
{
    uint8_t w[WIRE_NAME_MAX];
    int l = wire_name_from_text(text, w);
    assert_true(l > 0);
    wire_name_lower(w);
    return zone_node_find(z, w, (size_t)l);
}

static const zone_node_t *must_find(const zone_t *z, const char *text)
{
    const zone_node_t *n = find(z, text);
    if (!n)
        fail_msg("no node %s", text);
    return n;
}

static void test_load_basic(void **state)
{
    (void)state;
    zone_t *z = load_ok("Example.COM.", zone_text);
    assert_string_equal(zone_name(z), "example.com");
    assert_memory_equal(zone_apex_wire(z),
                        "\x07"
                        "example\x03"
                        "com",
                        13);
    assert_int_equal(zone_serial(z), 2024010101u);
    /* 21 lines, 19 records, one duplicate: 18. */
    assert_int_equal(zone_record_count(z), 18);

    const zone_node_t *apex = zone_apex(z);
    assert_non_null(apex);
    assert_ptr_equal(apex, must_find(z, "example.com"));
    assert_true(apex->flags & ZONE_NODE_APEX);
    assert_false(apex->flags & ZONE_NODE_DELEG);
    assert_null(zone_node_cut(z, apex));
    assert_int_equal(apex->labels, 2);
    /* RRsets sorted by type: NS(2) SOA(6) MX(15). */
    assert_int_equal(apex->rrset_count, 3);
    assert_int_equal(apex->rrsets[0].type, WIRE_TYPE_NS);
    assert_int_equal(apex->rrsets[1].type, WIRE_TYPE_SOA);
    assert_int_equal(apex->rrsets[2].type, WIRE_TYPE_MX);
    assert_int_equal(zone_node_rrset(apex, WIRE_TYPE_NS)->count, 2);
    assert_int_equal(zone_node_rrset(apex, WIRE_TYPE_SOA)->compress, ZONE_COMPRESS_TWONAME);
    assert_null(zone_node_rrset(apex, WIRE_TYPE_A));

    /* Names are stored lower case; the duplicate A record is merged; the smallest TTL of the
     * RRset wins. */
    const zone_node_t *www = must_find(z, "www.example.com");
    assert_memory_equal(www->name,
                        "\x03www\x07"
                        "example\x03"
                        "com",
                        17);
    const zone_rrset_t *a = zone_node_rrset(www, WIRE_TYPE_A);
    assert_non_null(a);
    assert_int_equal(a->count, 2);
    assert_int_equal(a->len, 2 * (2 + 4));
    assert_int_equal(a->ttl, 600);
    assert_memory_equal(a->data, "\x00\x04\xc0\x00\x02\x0a\x00\x04\xc0\x00\x02\x0b", 12);
    assert_null(find(z, "nope.example.com"));
    assert_null(find(z, "example.org"));
    assert_null(find(z, "com"));

    const zone_node_t *txt = must_find(z, "txt.example.com");
    const zone_rrset_t *t = zone_node_rrset(txt, WIRE_TYPE_TXT);
    assert_non_null(t);
    assert_int_equal(t->compress, ZONE_COMPRESS_NONE);
    assert_memory_equal(t->data, "\x00\x06\x05hello", 8);
    zone_unref(z);
}

/* RFC 2181 5.2: one TTL per RRset, and node/zone.c picks the smallest. A record given twice
 * with a smaller TTL the second time is still one of the RRset's records. */
static void test_duplicate_ttl(void **state)
{
    (void)state;
    zone_t *z = load_ok("example.com", "@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
                                       "www 3600 A 192.0.2.10\n"
                                       "www 600 A 192.0.2.11\n"
                                       "www 300 A 192.0.2.10\n");
    const zone_rrset_t *a = zone_node_rrset(must_find(z, "www.example.com"), WIRE_TYPE_A);
    assert_int_equal(a->count, 2);
    assert_int_equal(zone_record_count(z), 5);
    if (a->ttl != 300)
        fail_msg("RRset TTL %u: the smallest TTL given (300, on a duplicate) should win", a->ttl);
    zone_unref(z);
}

static void test_empty_non_terminals(void **state)
{
    (void)state;
    zone_t *z = load_ok("example.com", zone_text);
    const zone_node_t *abc = must_find(z, "a.b.c.example.com");
    const zone_node_t *bc = must_find(z, "b.c.example.com");
    const zone_node_t *c = must_find(z, "c.example.com");
    assert_int_equal(abc->rrset_count, 1);
    assert_int_equal(bc->rrset_count, 0);
    assert_int_equal(c->rrset_count, 0);
    /* Each ENT counts the names one label below it. */
    assert_int_equal(abc->children, 0);
    assert_int_equal(bc->children, 1);
    assert_int_equal(c->children, 1);
    assert_int_equal(abc->labels, 5);
    assert_int_equal(bc->labels, 4);
    assert_null(zone_node_cut(z, bc));
    /* _tcp is an ENT above the SRV owner. */
    assert_int_equal(must_find(z, "_tcp.example.com")->rrset_count, 0);
    assert_null(find(z, "a.example.com"));
    zone_unref(z);
}

static void test_delegation(void **state)
{
    (void)state;
    zone_t *z = load_ok("example.com", zone_text);
    const zone_node_t *sub = must_find(z, "sub.example.com");
    const zone_node_t *ns = must_find(z, "ns.sub.example.com");
    const zone_node_t *x = must_find(z, "x.sub.example.com");
    const zone_node_t *deep = must_find(z, "deep.x.sub.example.com");
    assert_true(sub->flags & ZONE_NODE_DELEG);
    assert_false(ns->flags & ZONE_NODE_DELEG);
    assert_ptr_equal(zone_node_cut(z, sub), sub);
    assert_ptr_equal(zone_node_cut(z, ns), sub);
    assert_ptr_equal(zone_node_cut(z, x), sub);
    assert_int_equal(x->rrset_count, 0);
    assert_ptr_equal(zone_node_cut(z, deep), sub);
    /* Not above the cut, nor beside it. */
    assert_null(zone_node_cut(z, zone_apex(z)));
    assert_null(zone_node_cut(z, must_find(z, "www.example.com")));
    assert_null(zone_node_cut(z, must_find(z, "ns1.example.com")));
    /* The apex NS is not a cut. */
    assert_false(zone_apex(z)->flags & ZONE_NODE_DELEG);

    /* A delegation below a delegation: the topmost one is the cut. */
    zone_t *z2 = load_ok("example.com", "@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
                                        "a NS ns.a\nb.a NS ns.b.a\nc.b.a TXT x\n");
    const zone_node_t *a = must_find(z2, "a.example.com");
    assert_ptr_equal(zone_node_cut(z2, must_find(z2, "b.a.example.com")), a);
    assert_ptr_equal(zone_node_cut(z2, must_find(z2, "c.b.a.example.com")), a);
    zone_unref(z2);
    zone_unref(z);
}

static void test_wildcard(void **state)
{
    (void)state;
    zone_t *z = load_ok("example.com", zone_text);
    const zone_node_t *wild = must_find(z, "wild.example.com");
    const zone_node_t *star = must_find(z, "*.wild.example.com");
    assert_int_equal(wild->rrset_count, 0); /* an ENT */
    assert_ptr_equal(zone_node_wildcard(z, wild), star);
    assert_true(wild->flags & ZONE_NODE_HAS_WILDCARD);
    assert_true(star->flags & ZONE_NODE_WILDCARD);
    assert_false(wild->flags & ZONE_NODE_WILDCARD);
    assert_int_equal(wild->children, 1);
    assert_null(zone_node_wildcard(z, zone_apex(z)));
    assert_null(zone_node_wildcard(z, must_find(z, "www.example.com")));
    zone_unref(z);

    /* A wildcard at the apex, and a wildcard that only exists as an ENT. */
    z = load_ok("example.com", "@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
                               "* A 192.0.2.7\na.*.e TXT x\n");
    assert_ptr_equal(zone_node_wildcard(z, zone_apex(z)), must_find(z, "*.example.com"));
    const zone_node_t *e = must_find(z, "e.example.com");
    assert_non_null(zone_node_wildcard(z, e));
    assert_ptr_equal(zone_node_wildcard(z, e), must_find(z, "*.e.example.com"));
    assert_int_equal(zone_node_wildcard(z, e)->rrset_count, 0);
    zone_unref(z);
}

static bool rdata_has_name(const zone_rrset_t *rs, unsigned i, size_t off, const char *text)
{
    uint8_t w[WIRE_NAME_MAX];
    const uint8_t *p = rs->data;
    for (unsigned k = 0; k < i; k++)
        p += 2 + wire_get_u16(p);
    int l = wire_name_from_text(text, w);
    return l > 0 && wire_name_equal(p + 2 + off, w);
}

/* The additional-section target of record I of RS in Z. */
static const zone_node_t *addl_at(const zone_t *z, const zone_rrset_t *rs, unsigned i)
{
    const uint8_t *p = rs->data;
    for (unsigned k = 0; k < i; k++)
        p += 2 + wire_get_u16(p);
    return zone_addl_target(z, rs, p + 2, wire_get_u16(p));
}

/* Whether no record of RS in Z has an additional-section target. */
static bool addl_none(const zone_t *z, const zone_rrset_t *rs)
{
    for (unsigned i = 0; i < rs->count; i++)
        if (addl_at(z, rs, i))
            return false;
    return true;
}

static void test_additional_targets(void **state)
{
    (void)state;
    zone_t *z = load_ok("example.com", zone_text);
    const zone_node_t *apex = zone_apex(z);
    const zone_node_t *ns1 = must_find(z, "ns1.example.com");
    const zone_node_t *mail = must_find(z, "mail.example.com");
    const zone_node_t *nssub = must_find(z, "ns.sub.example.com");

    /* Apex NS: ns1 is in the zone with addresses, ns2.example.net is not. */
    const zone_rrset_t *ns = zone_node_rrset(apex, WIRE_TYPE_NS);
    assert_int_equal(ns->addl, ZONE_ADDL_NAME0);
    assert_int_equal(ns->compress, ZONE_COMPRESS_NAME0);
    for (unsigned i = 0; i < ns->count; i++) {
        if (rdata_has_name(ns, i, 0, "ns1.example.com"))
            assert_ptr_equal(addl_at(z, ns, i), ns1);
        else
            assert_null(addl_at(z, ns, i));
    }

    /* MX: the name after the preference. */
    const zone_rrset_t *mx = zone_node_rrset(apex, WIRE_TYPE_MX);
    assert_int_equal(mx->addl, ZONE_ADDL_NAME2);
    assert_int_equal(mx->compress, ZONE_COMPRESS_NAME2);
    assert_ptr_equal(addl_at(z, mx, 0), mail);

    /* SRV: the name after priority, weight and port; never compressed. */
    const zone_rrset_t *srv = zone_node_rrset(must_find(z, "_sip._tcp.example.com"), 33);
    assert_non_null(srv);
    assert_int_equal(srv->addl, ZONE_ADDL_NAME6);
    assert_int_equal(srv->compress, ZONE_COMPRESS_NONE);
    assert_ptr_equal(addl_at(z, srv, 0), mail);

    /* Delegation NS: the glue below the cut. */
    const zone_rrset_t *dns = zone_node_rrset(must_find(z, "sub.example.com"), WIRE_TYPE_NS);
    for (unsigned i = 0; i < dns->count; i++) {
        if (rdata_has_name(dns, i, 0, "ns.sub.example.com"))
            assert_ptr_equal(addl_at(z, dns, i), nssub);
        else
            assert_null(addl_at(z, dns, i));
    }
    /* A target without addresses gives no additional node at all. */
    zone_t *z2 =
        load_ok("example.com", "@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 TXT x\n@ MX 1 nowhere\n");
    assert_true(addl_none(z2, zone_node_rrset(zone_apex(z2), WIRE_TYPE_NS)));
    assert_true(addl_none(z2, zone_node_rrset(zone_apex(z2), WIRE_TYPE_MX)));
    /* Record types with no names to follow. */
    assert_true(addl_none(z, zone_node_rrset(must_find(z, "txt.example.com"), WIRE_TYPE_TXT)));
    zone_unref(z2);
    zone_unref(z);
}

/* Loads TEXT expecting failure; returns the message. */
static const char *load_err(const char *text)
{
    static char err[1024];
    zone_t *z = (zone_t *)1;
    memset(err, 0, sizeof(err));
    int rc = zone_load_text("example.com", text, strlen(text), "test.zone", &z, err, sizeof(err));
    if (rc == 0)
        fail_msg("zone loaded but should not have:\n%s", text);
    assert_true(rc < 0);
    assert_ptr_equal(z, (zone_t *)1); /* *out untouched */
    assert_true(err[0] != 0);
    return err;
}

static void expect_msg(const char *err, const char *prefix, const char *word)
{
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, word))
        fail_msg("message \"%s\" should start with \"%s\" and mention \"%s\"", err, prefix, word);
}

#define HEAD   "$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n" /* lines 1-4 */
#define HEAD_N 4

static void test_errors(void **state)
{
    (void)state;
    const char *err;

    err = load_err("$TTL 300\n@ NS ns1\nns1 A 192.0.2.1\n");
    expect_msg(err, "test.zone:", "SOA");
    err = load_err("$TTL 300\n@ SOA ns1 h 1 2 3 4 5\nns1 A 192.0.2.1\n");
    expect_msg(err, "test.zone:", "NS");
    err = load_err("");
    expect_msg(err, "test.zone:", "SOA");
    err = load_err(HEAD "x SOA ns1 h 2 2 3 4 5\n@ SOA ns1 h 2 2 3 4 5\n");
    expect_msg(err, "test.zone:", "SOA");

    /* CNAME beside other data: either of the two lines is a good answer. */
    err = load_err(HEAD "www CNAME ns1\nfoo TXT bar\nwww A 192.0.2.9\n");
    if (strncmp(err, "test.zone:5:", 12) != 0 && strncmp(err, "test.zone:7:", 12) != 0)
        fail_msg("CNAME and other data: \"%s\"", err);
    assert_non_null(strstr(err, "CNAME"));
    assert_non_null(strstr(err, "www.example.com"));

    err = load_err(HEAD "www CNAME ns1\nfoo TXT bar\nwww CNAME foo\n");
    if (strncmp(err, "test.zone:5:", 12) != 0 && strncmp(err, "test.zone:7:", 12) != 0)
        fail_msg("two CNAMEs: \"%s\"", err);
    assert_non_null(strstr(err, "CNAME"));

    /* The generic form (RFC 3597) must still give a known type its own format. */
    err = load_err(HEAD "* A \\# 3 010203\n");
    expect_msg(err, "test.zone:5:", "form of type A");
    err = load_err(HEAD "x AAAA \\# 4 c0000201\n");
    expect_msg(err, "test.zone:5:", "AAAA");
    err = load_err(HEAD "x MX \\# 4 000a0378\n"); /* the name runs off the end */
    expect_msg(err, "test.zone:5:", "MX");
    err = load_err(HEAD "x NS \\# 3 000000\n"); /* bytes after the root name */
    expect_msg(err, "test.zone:5:", "NS");
    err = load_err(HEAD "x NAPTR \\# 6 000a00140501\n"); /* a string past the end */
    expect_msg(err, "test.zone:5:", "NAPTR");
    zone_unref(load_ok("example.com", HEAD "x A \\# 4 c0000201\nx MX \\# 3 000a00\n"
                                           "x TYPE65000 \\# 3 010203\nx TXT \\# 2 0161\n"));

    /* An edit is held to the same rule. */
    {
        zone_t *z = load_ok("example.com", HEAD), *nz = NULL;
        char msg[256];
        static const uint8_t owner[] = "\001x\007example\003com";
        static const uint8_t bad[] = {1, 2, 3}, good[] = {192, 0, 2, 7};
        zone_change_t ch = {.add = true,
                            .owner = owner,
                            .type = WIRE_TYPE_A,
                            .ttl = 300,
                            .rdata = bad,
                            .rdlen = sizeof(bad)};
        assert_int_not_equal(zone_edit(z, &ch, 1, &nz, msg, sizeof(msg)), 0);
        assert_null(nz);
        assert_non_null(strstr(msg, "form"));
        ch.rdata = good;
        ch.rdlen = sizeof(good);
        assert_int_equal(zone_edit(z, &ch, 1, &nz, msg, sizeof(msg)), 0);
        zone_unref(nz);
        zone_unref(z);
    }

    /* A CNAME at the apex. */
    err = load_err(HEAD "@ CNAME www\n");
    expect_msg(err, "test.zone", "CNAME");

    /* Outside the zone, absolute and through $ORIGIN. */
    err = load_err(HEAD "www.example.org. A 192.0.2.1\n");
    expect_msg(err, "test.zone:5:", "outside");
    err = load_err(HEAD "foo A 192.0.2.1\n$ORIGIN com.\nbar A 192.0.2.1\n");
    expect_msg(err, "test.zone:7:", "outside");
    err = load_err(HEAD "badexample.com. A 192.0.2.1\n");
    expect_msg(err, "test.zone:5:", "outside");

    /* Syntax errors: the line number is the one of the bad line. */
    err = load_err(HEAD "www A 192.0.2.1\nbad A 999.0.2.1\n");
    expect_msg(err, "test.zone:6:", "");
    err = load_err(HEAD "\n\n\nwww BOGUSTYPE x\n");
    expect_msg(err, "test.zone:8:", "");
    err = load_err(HEAD "www MX mail\n");
    expect_msg(err, "test.zone:5:", "");

    /* Class other than IN. */
    err = load_err(HEAD "www CH TXT x\n");
    expect_msg(err, "test.zone:5:", "");

    /* $INCLUDE of a file that is not there. */
    err = load_err(HEAD "$INCLUDE /nonexistent/fennec-test/missing.zone\n");
    expect_msg(err, "test.zone:5:", "");
    (void)HEAD_N;
}

static char g_dir[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Sets the file's mtime explicitly, so that changes are seen even within one clock tick. */
static void set_mtime(const char *path, time_t sec)
{
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static int setup_dir(void **state)
{
    (void)state;
    return testutil_tmpdir_make(g_dir, sizeof(g_dir), "zone");
}

static int teardown_dir(void **state)
{
    (void)state;
    return testutil_tmpdir_remove(g_dir);
}

static void test_include(void **state)
{
    (void)state;
    char inc[300], main_text[600], err[1024];
    zone_t *z = NULL;
    snprintf(inc, sizeof(inc), "%s/inc.zone", g_dir);

    /* A good include. */
    write_file(inc, "www A 192.0.2.10\n");
    snprintf(main_text, sizeof(main_text), HEAD "$INCLUDE %s\n", inc);
    z = load_ok("example.com", main_text);
    assert_non_null(find(z, "www.example.com"));
    zone_unref(z);

    /* A syntax error inside the included file names that file and its line. */
    write_file(inc, "www A 192.0.2.10\nbad A 300.0.0.1\n");
    assert_true(zone_load_text("example.com", main_text, strlen(main_text), "test.zone", &z, err,
                               sizeof(err)) < 0);
    char want[400];
    snprintf(want, sizeof(want), "%s:2:", inc);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("syntax error in an included file: \"%s\", expected \"%s...\"", err, want);

    /* So does a content error found after parsing (CNAME and other data). */
    write_file(inc, "www A 192.0.2.10\nwww CNAME ns1\n");
    assert_true(zone_load_text("example.com", main_text, strlen(main_text), "test.zone", &z, err,
                               sizeof(err)) < 0);
    if (strncmp(err, inc, strlen(inc)) != 0)
        fail_msg("CNAME conflict in an included file reported as \"%s\", expected it to name %s",
                 err, inc);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[300], err[1024];
    zone_t *z = NULL;
    snprintf(path, sizeof(path), "%s/file.zone", g_dir);
    write_file(path, HEAD "www A 192.0.2.10\n");
    assert_int_equal(zone_load_file("example.com", path, &z, err, sizeof(err)), 0);
    assert_int_equal(zone_record_count(z), 4);
    zone_unref(z);

    write_file(path, HEAD "\nwww A 192.0.2\n");
    assert_int_equal(zone_load_file("example.com", path, &z, err, sizeof(err)), FENNEC_EZONE);
    char want[400];
    snprintf(want, sizeof(want), "%s:6:", path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("\"%s\", expected \"%s...\"", err, want);

    snprintf(path, sizeof(path), "%s/missing.zone", g_dir);
    assert_true(zone_load_file("example.com", path, &z, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "missing.zone"));
}

static zone_t *zone_for(const char *origin)
{
    char text[512];
    snprintf(text, sizeof(text),
             "$ORIGIN %s.\n@ 300 SOA ns1 h 7 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n", origin);
    return load_ok(origin, text);
}

/* One change of NAME (text, relative to example.com) with an A record 192.0.2.LAST. */
static int edit_a(zone_t *z, bool add, const char *name, uint8_t last, zone_t **out)
{
    char text[300], err[256];
    uint8_t w[WIRE_NAME_MAX], rd[4] = {192, 0, 2, last};
    snprintf(text, sizeof(text), "%s.example.com.", name);
    assert_true(wire_name_from_text(text, w) > 0);
    zone_change_t ch = {
        .add = add, .owner = w, .type = WIRE_TYPE_A, .ttl = 300, .rdata = rd, .rdlen = 4};
    return zone_edit(z, &ch, 1, out, err, sizeof(err));
}

static void test_reload_diff(void **state)
{
    (void)state;
    char path[300], inc[300], text[800], err[1024];
    zone_t *z = NULL, *nz = NULL;
    zone_reload_stats_t st;
    snprintf(path, sizeof(path), "%s/reload.zone", g_dir);
    snprintf(inc, sizeof(inc), "%s/reload.inc", g_dir);
    write_file(inc, "www A 192.0.2.1\n");
    snprintf(text, sizeof(text),
             "$ORIGIN example.com.\n@ 300 SOA ns1 h 10 2 3 4 5\n@ 300 NS ns1\n"
             "ns1 300 A 192.0.2.53\nold 300 TXT gone\n$INCLUDE %s\n",
             inc);
    write_file(path, text);
    assert_int_equal(zone_load_file("example.com", path, &z, err, sizeof(err)), 0);

    /* Only the mtime changed: the records are the same, nothing to do. */
    set_mtime(path, 1700000000);
    assert_int_equal(zone_reload_file(z, path, &nz, &st, err, sizeof(err)), 0);
    assert_null(nz);
    assert_true(st.unchanged);
    assert_int_equal(st.serial, 10);

    /* An edit, then the file unchanged: the edit stays. */
    assert_int_equal(edit_a(z, true, "edited", 7, &nz), 0);
    zone_unref(z);
    z = nz;
    assert_int_equal(zone_reload_file(z, path, &nz, &st, err, sizeof(err)), 0);
    assert_null(nz);
    assert_non_null(find(z, "edited.example.com"));

    /* Only the included file changes (the top-level file is untouched): a new version with
     * the difference, the edit gone, the serial moved on from the served one because the
     * file's (10) is not newer than the served 11. */
    write_file(inc, "www A 192.0.2.2\n");
    assert_int_equal(zone_reload_file(z, path, &nz, &st, err, sizeof(err)), 0);
    assert_non_null(nz);
    assert_false(st.unchanged);
    assert_int_equal(st.added, 1);   /* www A 192.0.2.2 */
    assert_int_equal(st.removed, 2); /* www A 192.0.2.1, edited A */
    assert_int_equal(zone_serial(nz), 12);
    assert_int_equal(st.serial, 12);
    const zone_node_t *www = must_find(nz, "www.example.com");
    assert_memory_equal(zone_node_rrset(www, WIRE_TYPE_A)->data + 2, "\xc0\x00\x02\x02", 4);
    assert_null(find(nz, "edited.example.com"));
    assert_non_null(find(nz, "old.example.com"));
    /* The old version answers as before. */
    assert_memory_equal(zone_node_rrset(must_find(z, "www.example.com"), WIRE_TYPE_A)->data + 2,
                        "\xc0\x00\x02\x01", 4);
    zone_unref(z);
    z = nz;

    /* A newer serial in the file is taken as it is; a TTL change replaces the RRset. The file
     * has no $TTL, so www (in the include, without a TTL) takes the TTL written last before
     * it (RFC 1035 5.1): ns1's, which moves from 300 to 600 and takes www's along. */
    snprintf(text, sizeof(text),
             "$ORIGIN example.com.\n@ 300 SOA ns1 h 20 2 3 4 5\n@ 300 NS ns1\n"
             "ns1 600 A 192.0.2.53\n$INCLUDE %s\n",
             inc);
    write_file(path, text);
    assert_int_equal(zone_reload_file(z, path, &nz, &st, err, sizeof(err)), 0);
    assert_non_null(nz);
    assert_int_equal(zone_serial(nz), 20);
    assert_int_equal(st.added, 2);   /* ns1 A and www A at TTL 600 */
    assert_int_equal(st.removed, 3); /* ns1 A and www A at TTL 300, old TXT */
    assert_int_equal(zone_node_rrset(must_find(nz, "ns1.example.com"), WIRE_TYPE_A)->ttl, 600);
    assert_int_equal(zone_node_rrset(must_find(nz, "www.example.com"), WIRE_TYPE_A)->ttl, 600);
    assert_null(find(nz, "old.example.com"));
    zone_unref(z);
    z = nz;

    /* A broken file: an error naming the line, the served version untouched. */
    write_file(path, "$ORIGIN example.com.\n@ 300 SOA ns1 h 21 2 3 4 5\nx A 1.2.3\n");
    assert_int_equal(zone_reload_file(z, path, &nz, &st, err, sizeof(err)), FENNEC_EZONE);
    assert_null(nz);
    assert_non_null(strstr(err, "reload.zone:3:"));
    assert_int_equal(zone_serial(z), 20);
    /* A file without NS at the apex is refused by the same rules as a load. */
    write_file(path, "$ORIGIN example.com.\n@ 300 SOA ns1 h 22 2 3 4 5\nx A 192.0.2.1\n");
    assert_int_equal(zone_reload_file(z, path, &nz, &st, err, sizeof(err)), FENNEC_EZONE);
    assert_non_null(strstr(err, "no NS"));
    zone_unref(z);
}

/* Thousands of names added one by one to a small zone (the index grows several times while
 * older versions are alive), then removed in another order: every version finds exactly
 * its names, and the empty non-terminals come and go with them. */
static void test_index_growth(void **state)
{
    (void)state;
    enum { N = 3000, KEEP = 7 };
    zone_t *z = zone_for("example.com");
    zone_t *kept[KEEP] = {0};
    size_t kept_n[KEEP];
    size_t base_nodes = zone_record_count(z);
    char name[64];
    for (int i = 0; i < N; i++) {
        zone_t *nz = NULL;
        snprintf(name, sizeof(name), "h%d.g%d", i, i % 50);
        assert_int_equal(edit_a(z, true, name, (uint8_t)i, &nz), 0);
        if (i % 500 == 0) {
            kept[i / 500] = z; /* keep the version before this edit */
            kept_n[i / 500] = (size_t)i;
        } else {
            zone_unref(z);
        }
        z = nz;
    }
    assert_int_equal(zone_record_count(z), base_nodes + N);
    {
        /* One update that adds more names than the index has slots. */
        zone_t *nz = NULL;
        zone_change_t *ch = calloc(N, sizeof(*ch));
        uint8_t(*w)[WIRE_NAME_MAX] = calloc(N, WIRE_NAME_MAX);
        static const uint8_t rd[2] = {1, 'x'};
        char err[256];
        assert_non_null(ch);
        assert_non_null(w);
        for (int i = 0; i < N; i++) {
            snprintf(name, sizeof(name), "b%d.batch.example.com.", i);
            assert_true(wire_name_from_text(name, w[i]) > 0);
            ch[i] = (zone_change_t){.add = true,
                                    .owner = w[i],
                                    .type = WIRE_TYPE_TXT,
                                    .ttl = 60,
                                    .rdata = rd,
                                    .rdlen = 2};
        }
        assert_int_equal(zone_edit(z, ch, N, &nz, err, sizeof(err)), 0);
        assert_int_equal(zone_record_count(nz), base_nodes + 2 * N);
        for (int i = 0; i < N; i += 101) {
            snprintf(name, sizeof(name), "b%d.batch.example.com", i);
            must_find(nz, name);
        }
        /* and the same names out again in one update */
        for (int i = 0; i < N; i++)
            ch[i].add = false;
        zone_t *nz2 = NULL;
        assert_int_equal(zone_edit(nz, ch, N, &nz2, err, sizeof(err)), 0);
        assert_null(find(nz2, "batch.example.com"));
        zone_unref(z);
        zone_unref(nz);
        z = nz2;
        free(ch);
        free(w);
    }
    assert_non_null(must_find(z, "g7.example.com")); /* an ENT */
    assert_int_equal(must_find(z, "g7.example.com")->children, N / 50);
    for (int k = 0; k < KEEP && kept[k]; k++) {
        for (int i = 0; i < N; i += 97) {
            snprintf(name, sizeof(name), "h%d.g%d.example.com", i, i % 50);
            if ((size_t)i < kept_n[k])
                must_find(kept[k], name);
            else
                assert_null(find(kept[k], name));
        }
    }
    for (int i = N - 1; i >= 0; i--) {
        zone_t *nz = NULL;
        int j = (i * 7) % N; /* every name once, in another order */
        snprintf(name, sizeof(name), "h%d.g%d", j, j % 50);
        assert_int_equal(edit_a(z, false, name, (uint8_t)j, &nz), 0);
        zone_unref(z);
        z = nz;
    }
    assert_int_equal(zone_record_count(z), base_nodes);
    assert_null(find(z, "g7.example.com"));
    assert_int_equal(zone_apex(z)->children, 1); /* ns1 */
    assert_int_equal(zone_serial(z), 7 + 2 * N + 2);
    for (int k = 0; k < KEEP; k++)
        zone_unref(kept[k]);
    zone_unref(z);
}

/* Only the newest version of a zone takes an update; a failed one leaves it open. */
static void test_version_line(void **state)
{
    (void)state;
    zone_t *z = zone_for("example.com"), *a = NULL, *b = NULL;
    assert_int_equal(edit_a(z, false, "nothere", 1, &a), FENNEC_ENOTFOUND);
    assert_null(a);
    assert_int_equal(edit_a(z, true, "x", 1, &a), 0);
    assert_int_equal(edit_a(z, true, "y", 1, &b), -EBUSY);
    assert_null(b);
    assert_int_equal(edit_a(a, true, "y", 1, &b), 0);
    assert_int_equal(zone_serial(z), 7);
    assert_int_equal(zone_serial(a), 8);
    assert_int_equal(zone_serial(b), 9);
    /* A committed version that is discarded (never published) leaves its base free to take
     * another update; the base still answers as before. */
    zone_t *c = NULL, *d = NULL;
    assert_int_equal(edit_a(b, true, "discarded", 1, &c), 0);
    assert_int_equal(edit_a(b, true, "other", 1, &d), -EBUSY);
    zone_discard(c);
    assert_null(find(b, "discarded.example.com"));
    assert_int_equal(edit_a(b, true, "other", 1, &c), 0);
    assert_non_null(find(c, "other.example.com"));
    assert_null(find(c, "discarded.example.com"));
    /* The newest can go before the older ones: each older one holds its successor. */
    zone_unref(c);
    zone_unref(b);
    assert_non_null(find(a, "x.example.com"));
    zone_unref(a);
    assert_null(find(z, "x.example.com"));
    zone_unref(z);
}

static void test_set_find(void **state)
{
    (void)state;
    zone_t *zs[4] = {zone_for("example.com"), zone_for("sub.example.com"), zone_for("example.org"),
                     zone_for("a.b.sub.example.com")};
    zone_set_t *set = NULL;
    assert_int_equal(zone_set_new(zs, 4, &set), 0);
    for (int i = 0; i < 4; i++)
        zone_unref(zs[i]); /* the set holds its own references */
    assert_int_equal(zone_set_count(set), 4);

    struct {
        const char *q;
        int want; /* index into zs, or -1 */
    } cases[] = {
        {"example.com", 0},
        {"www.example.com", 0},
        {"sub.example.com", 1},
        {"www.sub.example.com", 1},
        {"b.sub.example.com", 1},
        {"a.b.sub.example.com", 3},
        {"x.a.b.sub.example.com", 3},
        {"d.c.x.y.sub.example.com", 1},
        {"d.c.x.y.example.com", 0},
        {"xsub.example.com", 0},
        {"example.org", 2},
        {"example.net", -1},
        {"com", -1},
        {".", -1},
    };
    /* The same answers from 4 zones (a scan) and from 4 + 20 (the apex index); in the big
     * set the four come after filler zones, and one filler repeats an apex. */
    zone_t *big[24];
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), i == 19 ? "example.org" : "z%d.test", i);
        big[i] = zone_for(name);
    }
    for (int i = 0; i < 4; i++)
        big[20 + i] = zs[i];
    zone_set_t *bigset = NULL;
    assert_int_equal(zone_set_new(big, 24, &bigset), 0);
    for (int i = 0; i < 20; i++)
        zone_unref(big[i]);
    for (int s = 0; s < 2; s++) {
        const zone_set_t *in = s ? bigset : set;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            uint8_t w[WIRE_NAME_MAX];
            int l = wire_name_from_text(cases[i].q, w);
            const zone_t *got = zone_set_find(in, w, (size_t)l);
            const zone_t *want = cases[i].want < 0 ? NULL : zs[cases[i].want];
            if (s && cases[i].want == 2)
                want = big[19]; /* the first example.org in the big set answers */
            if (got != want)
                fail_msg("%s (%s): got %s", cases[i].q, s ? "index" : "scan",
                         got ? zone_name(got) : "(none)");
        }
    }
    for (int i = 0; i < 19; i++) {
        uint8_t w[WIRE_NAME_MAX];
        snprintf(name, sizeof(name), "www.Z%d.test", i);
        int l = wire_name_from_text(name, w);
        wire_name_lower(w);
        assert_ptr_equal(zone_set_find(bigset, w, (size_t)l), zone_set_at(bigset, (size_t)i));
    }
    assert_null(zone_set_find(NULL, (const uint8_t *)"", 1));
    assert_null(zone_set_at(set, 4));
    zone_set_free(set);
    zone_set_free(bigset);
    zone_set_free(NULL);

    /* A root zone holds everything. */
    zone_t *root = load_ok(".", ". SOA a. b. 1 2 3 4 5\n. NS a.\n");
    assert_int_equal(wire_name_labels(zone_apex_wire(root)), 0);
    assert_int_equal(zone_set_new(&root, 1, &set), 0);
    zone_unref(root);
    assert_ptr_equal(zone_set_find(set,
                                   (const uint8_t *)"\x03"
                                                    "com",
                                   5),
                     root);
    zone_set_free(set);
}

static void test_publish(void **state)
{
    (void)state;
    zone_t *z = zone_for("example.com");
    zone_set_t *s1 = NULL, *s2 = NULL;
    assert_int_equal(zone_set_new(&z, 1, &s1), 0);
    assert_int_equal(zone_set_new(&z, 1, &s2), 0);
    zone_unref(z);

    zone_reader_register();
    zone_read_lock();
    assert_null(zone_set_current());
    zone_read_unlock();

    zone_set_publish(s1);
    zone_read_lock();
    assert_ptr_equal(zone_set_current(), s1);
    assert_int_equal(zone_set_count(zone_set_current()), 1);
    zone_read_unlock();

    /* Publishing s2 frees s1 (ASan would see a leak or a double free otherwise); the zone
     * they share stays alive through s2. */
    zone_set_publish(s2);
    zone_read_lock();
    const zone_set_t *cur = zone_set_current();
    assert_ptr_equal(cur, s2);
    assert_string_equal(zone_name(zone_set_at(cur, 0)), "example.com");
    zone_read_unlock();

    zone_set_publish(NULL);
    zone_read_lock();
    assert_null(zone_set_current());
    zone_read_unlock();
    zone_reader_unregister();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_basic),
        cmocka_unit_test(test_duplicate_ttl),
        cmocka_unit_test(test_empty_non_terminals),
        cmocka_unit_test(test_delegation),
        cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_additional_targets),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_set_find),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_reload_diff),
        cmocka_unit_test(test_index_growth),
        cmocka_unit_test(test_version_line),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
