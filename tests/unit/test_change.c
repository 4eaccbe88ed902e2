/*
 * Unit tests for the one write path (node/change.c): loads, reloads, record edits and change
 * batches submitted with change_submit() and checked in the published zone set. Zone files
 * live in a temporary folder; their mtimes are set by hand so that "changed" and "unchanged"
 * do not depend on the clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fennec/cfg.h"
#include "fennec/change.h"
#include "fennec/common.h"
#include "fennec/health.h"
#include "fennec/journal.h"
#include "fennec/repl.h"
#include "fennec/snapshot.h"
#include "testutil.h"
#include "fennec/wire.h"
#include "fennec/zone.h"

#define TYPE_A     1
#define TYPE_CNAME 5
#define TYPE_MX    15

static char g_dir[256];
static char g_com_path[300];
static time_t g_mtime = 1700000000;

static const char com_text[] = "$ORIGIN example.com.\n"
                               "@ 300 SOA ns1 hostmaster 100 7200 3600 1209600 300\n"
                               "@ 300 NS ns1\n"
                               "ns1 300 A 192.0.2.1\n"
                               "www 300 A 192.0.2.10\n"
                               "alias 300 CNAME www\n";
#define COM_RECORDS 5

static const char net_text[] = "$ORIGIN example.net.\n"
                               "@ 300 SOA ns1 hostmaster 7 7200 3600 1209600 300\n"
                               "@ 300 NS ns1\n"
                               "ns1 300 A 192.0.2.2\n";
#define NET_RECORDS 3

static cfg_zone_t g_zones[2];
static cfg_t g_cfg; /* example.com from a file, example.net from text */

/* Writes TEXT to PATH with a new mtime (one second later than the last one written). */
static void write_zone(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    g_mtime++;
    struct timespec ts[2] = {{g_mtime, 0}, {g_mtime, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static int submit(change_t ch, change_result_t *res, char *err, size_t errlen)
{
    return change_submit(&ch, res, err, errlen);
}

/* Serves exactly the zones of g_cfg, loaded fresh from their sources. */
static void reset(void)
{
    change_result_t res;
    char err[512];
    change_shutdown();
    write_zone(g_com_path, com_text);
    int rc = submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err));
    if (rc != 0 || res.failed)
        fail_msg("load: %d %s", rc, err);
}

static const zone_set_t *current(void)
{
    zone_read_lock();
    const zone_set_t *set = zone_set_current();
    zone_read_unlock();
    return set;
}

/* The served zone NAME with a reference (zone_unref()), or NULL. */
static zone_t *served(const char *name)
{
    zone_t *z = NULL;
    zone_read_lock();
    const zone_set_t *set = zone_set_current();
    for (size_t i = 0; i < zone_set_count(set); i++)
        if (strcmp(zone_name(zone_set_at(set, i)), name) == 0) {
            z = (zone_t *)zone_set_at(set, i);
            zone_ref(z);
        }
    zone_read_unlock();
    return z;
}

static uint32_t served_serial(const char *name)
{
    zone_t *z = served(name);
    assert_non_null(z);
    uint32_t s = zone_serial(z);
    zone_unref(z);
    return s;
}

static size_t served_records(const char *name)
{
    zone_t *z = served(name);
    assert_non_null(z);
    size_t n = zone_record_count(z);
    zone_unref(z);
    return n;
}

/* Whether the served zone ZONE has OWNER with an RRset of TYPE holding RDATA (RDLEN bytes). */
static bool has_record(const char *zone, const char *owner, uint16_t type, const uint8_t *rdata,
                       size_t rdlen)
{
    uint8_t w[WIRE_NAME_MAX];
    int l = wire_name_from_text(owner, w);
    assert_true(l > 0);
    wire_name_lower(w);
    zone_t *z = served(zone);
    assert_non_null(z);
    bool found = false;
    const zone_node_t *n = zone_node_find(z, w, (size_t)l);
    const zone_rrset_t *rs = n ? zone_node_rrset(n, type) : NULL;
    const uint8_t *p = rs ? rs->data : NULL;
    for (unsigned i = 0; rs && i < rs->count; i++) {
        uint16_t len = (uint16_t)(p[0] << 8 | p[1]);
        if (len == rdlen && memcmp(p + 2, rdata, rdlen) == 0)
            found = true;
        p += 2 + len;
    }
    zone_unref(z);
    return found;
}

static bool has_a(const char *zone, const char *owner, const char *ip)
{
    uint8_t a[4];
    assert_int_equal(inet_pton(AF_INET, ip, a), 1);
    return has_record(zone, owner, TYPE_A, a, 4);
}

/* A change with its own storage for the owner and rdata. */
typedef struct tchange {
    uint8_t owner[WIRE_NAME_MAX];
    uint8_t rdata[WIRE_NAME_MAX + 2];
} tchange_t;

static zone_change_t mk_a(tchange_t *t, bool add, const char *owner, const char *ip)
{
    assert_true(wire_name_from_text(owner, t->owner) > 0);
    assert_int_equal(inet_pton(AF_INET, ip, t->rdata), 1);
    return (zone_change_t){
        .add = add, .owner = t->owner, .type = TYPE_A, .ttl = 300, .rdata = t->rdata, .rdlen = 4};
}

static zone_change_t mk_cname(tchange_t *t, bool add, const char *owner, const char *target)
{
    assert_true(wire_name_from_text(owner, t->owner) > 0);
    int l = wire_name_from_text(target, t->rdata);
    assert_true(l > 0);
    return (zone_change_t){.add = add,
                           .owner = t->owner,
                           .type = TYPE_CNAME,
                           .ttl = 300,
                           .rdata = t->rdata,
                           .rdlen = (uint16_t)l};
}

static change_t edit(const char *zone, const zone_change_t *changes, size_t count)
{
    return (change_t){
        .kind = CHANGE_EDIT, .zone = zone, .changes = changes, .count = count, .source = "test"};
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_load_serves_the_configured_zones(void **state)
{
    (void)state;
    change_result_t res;
    char err[512];
    change_shutdown();
    assert_null(current());
    write_zone(g_com_path, com_text);
    uint64_t before = change_index();
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    assert_true(res.applied);
    /* One journal entry per zone: two zones, two indexes. */
    assert_int_equal(res.index, before + 2);
    assert_int_equal(change_index(), before + 2);
    assert_int_equal(res.zones, 2);
    assert_int_equal(res.failed, 0);
    assert_int_equal(res.added, COM_RECORDS + NET_RECORDS);
    assert_int_equal(zone_set_count(current()), 2);
    assert_int_equal(served_serial("example.com"), 100);
    assert_int_equal(served_serial("example.net"), 7);
    assert_true(has_a("example.com", "www.example.com", "192.0.2.10"));

    /* Nothing changed: nothing is published and no index is taken. */
    const zone_set_t *set = current();
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    assert_false(res.applied);
    assert_true(res.unchanged);
    assert_int_equal(res.index, before + 2);
    assert_int_equal(change_index(), before + 2);
    assert_ptr_equal(current(), set);
}

static void test_validate_only_applies_nothing(void **state)
{
    (void)state;
    change_result_t res;
    char err[512];
    change_shutdown();
    uint64_t before = change_index();
    write_zone(g_com_path, com_text);
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg, .validate_only = true},
                            &res, err, sizeof(err)),
                     0);
    assert_false(res.applied);
    assert_int_equal(res.zones, 2);
    assert_int_equal(res.failed, 0);
    assert_null(current());
    assert_int_equal(change_index(), before);

    /* A broken file is counted, still without applying anything. */
    write_zone(g_com_path, "@ 300 SOA ns1 h 1 2 3 4 5\n");
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg, .validate_only = true},
                            &res, err, sizeof(err)),
                     0);
    assert_int_equal(res.failed, 1);
    assert_int_equal(res.zones, 1);
    assert_non_null(strstr(err, "example.com"));
    assert_null(current());
    assert_int_equal(change_index(), before);
    reset();
}

static void test_edit_one_record(void **state)
{
    (void)state;
    reset();
    change_result_t res;
    char err[512];
    tchange_t t;
    zone_change_t c = mk_a(&t, true, "new.example.com", "192.0.2.77");
    uint64_t before = change_index();
    assert_int_equal(submit(edit("example.com", &c, 1), &res, err, sizeof(err)), 0);
    assert_true(res.applied);
    assert_int_equal(res.index, before + 1);
    assert_int_equal(res.serial, 101);
    assert_int_equal(res.added, 1);
    assert_int_equal(res.removed, 0);
    assert_int_equal(served_serial("example.com"), 101);
    assert_true(has_a("example.com", "new.example.com", "192.0.2.77"));
    assert_int_equal(served_records("example.com"), COM_RECORDS + 1);
    /* The other zone is the same object as before. */
    assert_int_equal(served_serial("example.net"), 7);

    /* The zone is named in any case, with or without the trailing dot. */
    c = mk_a(&t, false, "NEW.example.com", "192.0.2.77");
    assert_int_equal(submit(edit("Example.COM.", &c, 1), &res, err, sizeof(err)), 0);
    assert_int_equal(res.index, before + 2);
    assert_int_equal(res.removed, 1);
    assert_false(has_a("example.com", "new.example.com", "192.0.2.77"));
    assert_int_equal(served_serial("example.com"), 102);
}

static void test_batch_applies_all_with_one_serial_step(void **state)
{
    (void)state;
    reset();
    change_result_t res;
    char err[512];
    tchange_t t[4];
    zone_change_t c[4] = {
        mk_a(&t[0], true, "a.example.com", "192.0.2.1"),
        mk_a(&t[1], true, "b.example.com", "192.0.2.2"),
        mk_a(&t[2], false, "www.example.com", "192.0.2.10"),
        /* a later change may build on an earlier one of the same batch */
        mk_a(&t[3], false, "a.example.com", "192.0.2.1"),
    };
    uint64_t before = change_index();
    assert_int_equal(submit(edit("example.com", c, 4), &res, err, sizeof(err)), 0);
    assert_true(res.applied);
    assert_int_equal(res.index, before + 1);
    assert_int_equal(res.serial, 101);
    assert_int_equal(res.added, 2);
    assert_int_equal(res.removed, 2);
    assert_int_equal(served_serial("example.com"), 101);
    assert_false(has_a("example.com", "a.example.com", "192.0.2.1"));
    assert_true(has_a("example.com", "b.example.com", "192.0.2.2"));
    assert_false(has_a("example.com", "www.example.com", "192.0.2.10"));
    assert_int_equal(served_records("example.com"), COM_RECORDS);
}

/* Submits the batch C (N changes), expects RC with change AT at fault, and checks that nothing
 * changed: the published set, the serial, the records and the index. */
static void expect_refused(const zone_change_t *c, size_t n, int rc, size_t at, const char *needle)
{
    change_result_t res;
    char err[512];
    const zone_set_t *set = current();
    uint64_t before = change_index();
    uint32_t serial = served_serial("example.com");
    size_t records = served_records("example.com");
    int got = submit(edit("example.com", c, n), &res, err, sizeof(err));
    if (got != rc || res.at != at || !strstr(err, needle))
        fail_msg("got %d at %zu \"%s\", expected %d at %zu with \"%s\"", got, res.at, err, rc, at,
                 needle);
    assert_false(res.applied);
    assert_int_equal(res.index, before);
    assert_int_equal(change_index(), before);
    assert_ptr_equal(current(), set);
    assert_int_equal(served_serial("example.com"), serial);
    assert_int_equal(served_records("example.com"), records);
}

static void test_batch_with_one_bad_change_changes_nothing(void **state)
{
    (void)state;
    reset();
    tchange_t t[5];
    zone_change_t c[5];

    /* A CNAME beside other data (RFC 1034 3.6.2), in the middle of good changes. */
    c[0] = mk_a(&t[0], true, "one.example.com", "192.0.2.1");
    c[1] = mk_cname(&t[1], true, "www.example.com", "one.example.com");
    c[2] = mk_a(&t[2], true, "two.example.com", "192.0.2.2");
    expect_refused(c, 3, FENNEC_EZONE, 1, "CNAME");
    assert_false(has_a("example.com", "one.example.com", "192.0.2.1"));
    assert_false(has_a("example.com", "two.example.com", "192.0.2.2"));

    /* Data beside a CNAME that an earlier change of the batch added. */
    c[0] = mk_cname(&t[0], true, "new.example.com", "www.example.com");
    c[1] = mk_a(&t[1], true, "x.example.com", "192.0.2.9");
    c[2] = mk_a(&t[2], true, "new.example.com", "192.0.2.3");
    expect_refused(c, 3, FENNEC_EZONE, 2, "CNAME");

    /* A name outside the zone, last of five. */
    c[0] = mk_a(&t[0], true, "p.example.com", "192.0.2.1");
    c[1] = mk_a(&t[1], true, "q.example.com", "192.0.2.1");
    c[2] = mk_a(&t[2], false, "www.example.com", "192.0.2.10");
    c[3] = mk_a(&t[3], true, "r.example.com", "192.0.2.1");
    c[4] = mk_a(&t[4], true, "www.example.org", "192.0.2.1");
    expect_refused(c, 5, FENNEC_EZONE, 4, "outside");
    assert_true(has_a("example.com", "www.example.com", "192.0.2.10"));

    /* A record to add that is there, and one to delete that is not. */
    c[0] = mk_a(&t[0], true, "p.example.com", "192.0.2.1");
    c[1] = mk_a(&t[1], true, "www.example.com", "192.0.2.10");
    expect_refused(c, 2, FENNEC_EEXISTS, 1, "exists");
    c[1] = mk_a(&t[1], false, "www.example.com", "192.0.2.11");
    expect_refused(c, 2, FENNEC_ENOTFOUND, 1, "no such record");
    /* ... the same record added twice within the batch. */
    c[1] = mk_a(&t[1], true, "p.example.com", "192.0.2.1");
    expect_refused(c, 2, FENNEC_EEXISTS, 1, "exists");

    /* A batch of one: its only change is at fault. */
    c[0] = mk_a(&t[0], true, "alias.example.com", "192.0.2.1");
    expect_refused(c, 1, FENNEC_EZONE, 0, "CNAME");
}

static void test_index_counts_applied_changes_only(void **state)
{
    (void)state;
    reset();
    change_result_t res;
    char err[512];
    tchange_t t;
    zone_change_t c = mk_a(&t, true, "n.example.com", "192.0.2.1");
    uint64_t i0 = change_index();
    assert_true(i0 > 0);
    assert_int_equal(submit(edit("example.com", &c, 1), &res, err, sizeof(err)), 0);
    assert_int_equal(res.index, i0 + 1);
    /* refused: the same record again */
    assert_int_equal(submit(edit("example.com", &c, 1), &res, err, sizeof(err)), FENNEC_EEXISTS);
    assert_int_equal(res.index, i0 + 1);
    /* nothing to change: an unchanged file */
    assert_int_equal(submit((change_t){.kind = CHANGE_RELOAD, .zone = "example.com", .cfg = &g_cfg},
                            &res, err, sizeof(err)),
                     0);
    assert_false(res.applied);
    assert_int_equal(res.index, i0 + 1);
    /* validated only */
    c = mk_a(&t, false, "n.example.com", "192.0.2.1");
    change_t ch = edit("example.com", &c, 1);
    ch.validate_only = true;
    assert_int_equal(submit(ch, &res, err, sizeof(err)), 0);
    assert_false(res.applied);
    assert_int_equal(res.index, i0 + 1);
    assert_true(has_a("example.com", "n.example.com", "192.0.2.1"));
    /* applied */
    assert_int_equal(submit(edit("example.com", &c, 1), &res, err, sizeof(err)), 0);
    assert_int_equal(res.index, i0 + 2);
    assert_int_equal(change_index(), i0 + 2);
}

static void test_reload_of_an_unchanged_file_keeps_the_edits(void **state)
{
    (void)state;
    reset();
    change_result_t res;
    char err[512];
    tchange_t t;
    zone_change_t c = mk_a(&t, true, "kept.example.com", "192.0.2.99");
    assert_int_equal(submit(edit("example.com", &c, 1), &res, err, sizeof(err)), 0);
    const zone_set_t *set = current();
    uint64_t before = change_index();

    assert_int_equal(
        submit((change_t){.kind = CHANGE_RELOAD, .zone = "example.com.", .cfg = &g_cfg}, &res, err,
               sizeof(err)),
        0);
    assert_true(res.unchanged);
    assert_false(res.applied);
    assert_int_equal(res.serial, 101);
    assert_int_equal(res.added + res.removed, 0);
    assert_int_equal(res.index, before);
    assert_ptr_equal(current(), set);
    assert_true(has_a("example.com", "kept.example.com", "192.0.2.99"));

    /* The same for every zone (SIGHUP). */
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    assert_true(res.unchanged);
    assert_false(res.applied);
    assert_ptr_equal(current(), set);
    assert_true(has_a("example.com", "kept.example.com", "192.0.2.99"));

    /* Zones with built-in text never change. */
    assert_int_equal(submit((change_t){.kind = CHANGE_RELOAD, .zone = "example.net", .cfg = &g_cfg},
                            &res, err, sizeof(err)),
                     0);
    assert_true(res.unchanged);
    assert_int_equal(res.serial, 7);
    assert_ptr_equal(current(), set);
}

static void test_reload_of_a_changed_file(void **state)
{
    (void)state;
    reset();
    change_result_t res;
    char err[512];
    uint64_t before = change_index();
    write_zone(g_com_path, "$ORIGIN example.com.\n"
                           "@ 300 SOA ns1 hostmaster 200 7200 3600 1209600 300\n"
                           "@ 300 NS ns1\n"
                           "ns1 300 A 192.0.2.1\n"
                           "www 300 A 192.0.2.20\n");
    assert_int_equal(submit((change_t){.kind = CHANGE_RELOAD, .zone = "example.com", .cfg = &g_cfg},
                            &res, err, sizeof(err)),
                     0);
    assert_true(res.applied);
    assert_false(res.unchanged);
    assert_int_equal(res.index, before + 1);
    assert_int_equal(res.serial, 200);
    assert_true(res.added > 0);
    assert_true(res.removed > 0);
    assert_int_equal(served_serial("example.com"), 200);
    assert_true(has_a("example.com", "www.example.com", "192.0.2.20"));
    assert_false(has_a("example.com", "www.example.com", "192.0.2.10"));

    /* A file that does not load: refused with FILE:LINE, the served version stays. */
    const zone_set_t *set = current();
    write_zone(g_com_path, "$ORIGIN example.com.\n"
                           "@ 300 SOA ns1 hostmaster 300 7200 3600 1209600 300\n"
                           "@ 300 NS ns1\n"
                           "www 300 A 192.0.2.300\n");
    assert_int_equal(submit((change_t){.kind = CHANGE_RELOAD, .zone = "example.com", .cfg = &g_cfg},
                            &res, err, sizeof(err)),
                     FENNEC_EZONE);
    assert_non_null(strstr(err, "com.zone:4"));
    assert_false(res.applied);
    assert_int_equal(change_index(), before + 1);
    assert_ptr_equal(current(), set);
    assert_int_equal(served_serial("example.com"), 200);

    /* SIGHUP with the broken file: counted, logged, the served version stays. */
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    assert_int_equal(res.failed, 1);
    assert_false(res.applied);
    assert_int_equal(res.zones, 2);
    assert_ptr_equal(current(), set);
    assert_int_equal(served_serial("example.com"), 200);

    /* A missing file is a refusal too. */
    char gone[320];
    snprintf(gone, sizeof(gone), "%s/missing.zone", g_dir);
    cfg_zone_t zones[1] = {{.name = "example.com", .file = gone}};
    cfg_t cfg = {.zones = zones, .zone_count = 1};
    assert_int_equal(submit((change_t){.kind = CHANGE_RELOAD, .zone = "example.com", .cfg = &cfg},
                            &res, err, sizeof(err)),
                     FENNEC_EZONE);
    assert_non_null(strstr(err, "missing.zone"));
    assert_ptr_equal(current(), set);
}

static void test_zones_no_longer_configured_disappear(void **state)
{
    (void)state;
    reset();
    change_result_t res;
    char err[512];
    uint64_t before = change_index();
    cfg_t only_com = {.zones = g_zones, .zone_count = 1};
    assert_int_equal(
        submit((change_t){.kind = CHANGE_LOAD, .cfg = &only_com}, &res, err, sizeof(err)), 0);
    assert_true(res.applied);
    assert_int_equal(res.index, before + 1);
    assert_int_equal(res.zones, 1);
    assert_int_equal(res.removed, NET_RECORDS);
    assert_int_equal(zone_set_count(current()), 1);
    assert_null(served("example.net"));
    assert_non_null(current());

    /* A reload or an edit of the zone that is gone: not found. */
    assert_int_equal(
        submit((change_t){.kind = CHANGE_RELOAD, .zone = "example.net", .cfg = &only_com}, &res,
               err, sizeof(err)),
        FENNEC_ENOTFOUND);
    assert_non_null(strstr(err, "not configured"));
    tchange_t t;
    zone_change_t c = mk_a(&t, true, "x.example.net", "192.0.2.1");
    assert_int_equal(submit(edit("example.net", &c, 1), &res, err, sizeof(err)), FENNEC_ENOTFOUND);
    assert_non_null(strstr(err, "not loaded"));
    assert_int_equal(change_index(), before + 1);

    /* Back in the configuration: loaded again; a reload of a zone that is configured but not
     * served loads it. */
    assert_int_equal(submit((change_t){.kind = CHANGE_RELOAD, .zone = "example.net", .cfg = &g_cfg},
                            &res, err, sizeof(err)),
                     0);
    assert_true(res.applied);
    assert_int_equal(res.added, NET_RECORDS);
    assert_int_equal(res.serial, 7);
    assert_int_equal(zone_set_count(current()), 2);
    assert_int_equal(served_serial("example.net"), 7);

    /* No zones at all: an empty set is served. */
    cfg_t none = {0};
    size_t all = served_records("example.com") + served_records("example.net");
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &none}, &res, err, sizeof(err)),
                     0);
    assert_true(res.applied);
    assert_int_equal(res.removed, all);
    assert_int_equal(res.zones, 0);
    assert_non_null(current());
    assert_int_equal(zone_set_count(current()), 0);
}

static void test_load_keeps_a_failing_zone_and_changes_the_others(void **state)
{
    (void)state;
    reset();
    change_result_t res;
    char err[512];
    tchange_t t;
    zone_change_t c = mk_a(&t, true, "edit.example.net", "192.0.2.5");
    assert_int_equal(submit(edit("example.net", &c, 1), &res, err, sizeof(err)), 0);
    write_zone(g_com_path, "@ 300 SOA ns1 h 1 2 3 4 5\n");
    char extra[320];
    snprintf(extra, sizeof(extra), "%s/org.zone", g_dir);
    write_zone(extra, "$ORIGIN example.org.\n@ 300 SOA ns1 h 3 2 3 4 5\n@ 300 NS ns1\n"
                      "ns1 300 A 192.0.2.3\n");
    cfg_zone_t zones[3] = {g_zones[0], g_zones[1], {.name = "example.org", .file = extra}};
    cfg_t cfg = {.zones = zones, .zone_count = 3};
    uint64_t before = change_index();
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &cfg}, &res, err, sizeof(err)),
                     0);
    assert_true(res.applied);
    assert_int_equal(res.index, before + 1);
    assert_int_equal(res.failed, 1);
    assert_int_equal(res.zones, 3);
    assert_non_null(strstr(err, "example.com"));
    assert_int_equal(served_serial("example.com"), 100);
    assert_int_equal(served_serial("example.org"), 3);
    assert_true(has_a("example.net", "edit.example.net", "192.0.2.5"));
}

static void test_invalid_changes_are_refused(void **state)
{
    (void)state;
    reset();
    change_result_t res;
    char err[512];
    const zone_set_t *set = current();
    uint64_t before = change_index();
    assert_int_equal(submit((change_t){.kind = CHANGE_RELOAD, .zone = "example.org", .cfg = &g_cfg},
                            &res, err, sizeof(err)),
                     FENNEC_ENOTFOUND);
    assert_int_equal(submit(edit("example.com", NULL, 0), &res, err, sizeof(err)),
                     FENNEC_EMALFORMED);
    assert_int_equal(submit(edit(NULL, NULL, 0), &res, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_int_equal(submit(edit("bad..name", NULL, 0), &res, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD}, &res, err, sizeof(err)),
                     FENNEC_EMALFORMED);
    assert_int_equal(submit((change_t){.kind = (change_kind_t)99}, &res, err, sizeof(err)),
                     FENNEC_EMALFORMED);
    assert_int_equal(change_submit(NULL, &res, err, sizeof(err)), FENNEC_EMALFORMED);
    /* No room for a message is fine too. */
    assert_int_equal(submit(edit("example.com", NULL, 0), &res, NULL, 0), FENNEC_EMALFORMED);
    assert_int_equal(change_index(), before);
    assert_ptr_equal(current(), set);
}

#define WRITERS         8
#define EDITS_PER_WRITE 25

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    int failures = 0;
    zone_reader_register();
    for (int i = 0; i < EDITS_PER_WRITE; i++) {
        tchange_t t;
        char owner[64], ip[32];
        snprintf(owner, sizeof(owner), "w%d.example.com", id);
        snprintf(ip, sizeof(ip), "10.0.%d.%d", id, i);
        zone_change_t c;
        /* cmocka's assertions belong to the main thread: count failures instead. */
        if (wire_name_from_text(owner, t.owner) <= 0 || inet_pton(AF_INET, ip, t.rdata) != 1) {
            failures++;
            continue;
        }
        c = (zone_change_t){
            .add = true, .owner = t.owner, .type = TYPE_A, .ttl = 60, .rdata = t.rdata, .rdlen = 4};
        change_result_t res;
        char err[256];
        change_t ch = edit("example.com", &c, 1);
        if (change_submit(&ch, &res, err, sizeof(err)) != 0 || !res.applied)
            failures++;
    }
    zone_reader_unregister();
    return (void *)(intptr_t)failures;
}

/* Writers on several threads lose nothing: every edit is served and numbered once. */
static void test_concurrent_writers_lose_nothing(void **state)
{
    (void)state;
    reset();
    uint64_t before = change_index();
    uint32_t serial = served_serial("example.com");
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < WRITERS; i++) {
        void *failures = NULL;
        assert_int_equal(pthread_join(th[i], &failures), 0);
        assert_int_equal((intptr_t)failures, 0);
    }
    assert_int_equal(change_index(), before + WRITERS * EDITS_PER_WRITE);
    assert_int_equal(served_serial("example.com"), serial + WRITERS * EDITS_PER_WRITE);
    assert_int_equal(served_records("example.com"), COM_RECORDS + WRITERS * EDITS_PER_WRITE);
    for (int id = 0; id < WRITERS; id++)
        for (int i = 0; i < EDITS_PER_WRITE; i++) {
            char owner[64], ip[32];
            snprintf(owner, sizeof(owner), "w%d.example.com", id);
            snprintf(ip, sizeof(ip), "10.0.%d.%d", id, i);
            assert_true(has_a("example.com", owner, ip));
        }
}

/* ---- with a journal ---------------------------------------------------------------------- */

static char g_data[300];

static void journal_open_at(const char *dir, bool primary, size_t max_bytes, uint64_t keep,
                            uint64_t *index)
{
    change_shutdown();
    change_close();
    char err[1024] = "";
    change_config_t cc = {.data_dir = dir,
                          .node_id = "ns1",
                          .primary = primary,
                          .journal_max_bytes = max_bytes,
                          .journal_keep = keep,
                          .snapshot_every = 1000000};
    int rc = change_open(&cc, index, err, sizeof(err));
    if (rc != 0)
        fail_msg("change_open(%s): %d %s", dir, rc, err);
}

/* A primary's journal in g_data = g_dir/NAME (journal_open_at()), with g_cfg's zones loaded
 * into it: the start of most tests below. */
static void journal_loaded(const char *name, size_t max_bytes, uint64_t keep, uint64_t *index)
{
    change_result_t res;
    char err[512];
    snprintf(g_data, sizeof(g_data), "%s/%s", g_dir, name);
    journal_open_at(g_data, true, max_bytes, keep, index);
    write_zone(g_com_path, com_text);
    if (submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
}

static void journal_done(void)
{
    change_shutdown();
    change_close();
}

/* Every record of every served zone, as sorted text lines: what two nodes compare. */
static int dump_rec(const zone_change_t *ch, void *arg)
{
    char owner[WIRE_NAME_TEXT_MAX];
    wire_name_to_text(ch->owner, owner);
    FILE *f = arg;
    fprintf(f, "%s %u %u ", owner, ch->type, ch->ttl);
    for (unsigned i = 0; i < ch->rdlen; i++)
        fprintf(f, "%02x", ch->rdata[i]);
    fputc('\n', f);
    return 0;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *served_dump(void)
{
    char *text = NULL, *out = NULL;
    size_t len = 0, olen = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    zone_read_lock();
    const zone_set_t *set = zone_set_current();
    for (size_t i = 0; i < zone_set_count(set); i++) {
        fprintf(f, "zone %s serial %u\n", zone_name(zone_set_at(set, i)),
                zone_serial(zone_set_at(set, i)));
        zone_records(zone_set_at(set, i), dump_rec, f);
    }
    zone_read_unlock();
    fclose(f);
    char *lines[4096];
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < 4096;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    qsort(lines, n, sizeof(*lines), line_cmp);
    f = open_memstream(&out, &olen);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", lines[i]);
    fclose(f);
    free(text);
    return out;
}

/* A lone primary keeps its record edits, members and index across a restart; the unchanged
 * zone file then changes nothing. */
static void test_journal_restart_keeps_edits(void **state)
{
    (void)state;
    uint64_t index = 99;
    snprintf(g_data, sizeof(g_data), "%s/data-restart", g_dir);
    journal_open_at(g_data, true, 0, 0, &index);
    assert_int_equal(index, 0);
    write_zone(g_com_path, com_text);
    change_result_t res;
    char err[512];
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    assert_int_equal(res.index, 2);
    tchange_t t1, t2;
    zone_change_t c[2] = {mk_a(&t1, true, "n.example.com", "192.0.2.77"),
                          mk_a(&t2, false, "www.example.com", "192.0.2.10")};
    assert_int_equal(submit(edit("example.com", c, 2), &res, err, sizeof(err)), 0);
    assert_int_equal(res.index, 3);
    assert_int_equal(submit((change_t){.kind = CHANGE_MEMBER_ADD,
                                       .member_id = "ns2",
                                       .member_address = "127.0.0.1:8054"},
                            &res, err, sizeof(err)),
                     0);
    assert_int_equal(res.index, 4);
    /* refused membership changes take no index */
    assert_int_equal(submit((change_t){.kind = CHANGE_MEMBER_ADD,
                                       .member_id = "ns2",
                                       .member_address = "127.0.0.1:8054"},
                            &res, err, sizeof(err)),
                     FENNEC_EEXISTS);
    assert_int_equal(submit((change_t){.kind = CHANGE_MEMBER_REMOVE, .member_id = "ns1"}, &res, err,
                            sizeof(err)),
                     FENNEC_EMALFORMED);
    assert_int_equal(submit((change_t){.kind = CHANGE_MEMBER_REMOVE, .member_id = "ns9"}, &res, err,
                            sizeof(err)),
                     FENNEC_ENOTFOUND);
    assert_int_equal(submit((change_t){.kind = CHANGE_MEMBER_ADD,
                                       .member_id = "bad id",
                                       .member_address = "127.0.0.1:1"},
                            &res, err, sizeof(err)),
                     FENNEC_EMALFORMED);
    assert_int_equal(change_index(), 4);
    uint32_t serial = served_serial("example.com");
    char *before = served_dump();

    journal_open_at(g_data, true, 0, 0, &index);
    assert_int_equal(index, 4);
    assert_int_equal(change_index(), 4);
    char *after = served_dump();
    assert_string_equal(before, after);
    free(after);
    assert_true(has_a("example.com", "n.example.com", "192.0.2.77"));
    assert_false(has_a("example.com", "www.example.com", "192.0.2.10"));
    assert_int_equal(served_serial("example.com"), serial);
    char addr[REPL_ADDR_MAX];
    assert_true(repl_member_find("ns2", addr));
    assert_string_equal(addr, "127.0.0.1:8054");
    /* The start-up load of the same files: nothing to do, the edits stay. */
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    assert_false(res.applied);
    assert_int_equal(change_index(), 4);
    assert_true(has_a("example.com", "n.example.com", "192.0.2.77"));
    /* A file that changed is a difference from what is served: edits elsewhere stay. */
    write_zone(g_com_path, "$ORIGIN example.com.\n"
                           "@ 300 SOA ns1 hostmaster 100 7200 3600 1209600 300\n"
                           "@ 300 NS ns1\n"
                           "ns1 300 A 192.0.2.1\n"
                           "www 300 A 192.0.2.10\n"
                           "www 300 A 192.0.2.11\n"
                           "alias 300 CNAME www\n");
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    assert_true(res.applied);
    assert_int_equal(change_index(), 5);
    assert_true(has_a("example.com", "www.example.com", "192.0.2.11"));
    free(before);
    before = served_dump();
    journal_open_at(g_data, true, 0, 0, &index);
    assert_int_equal(index, 5);
    after = served_dump();
    assert_string_equal(before, after);
    free(before);
    free(after);
    journal_done();
}

/* A snapshot lets the journal drop old entries; a restart reads the snapshot, then the
 * entries after it. */
static void test_journal_snapshot_and_compaction(void **state)
{
    (void)state;
    uint64_t index;
    journal_loaded("data-snap", 0, 2, &index);
    change_result_t res;
    char err[512];
    for (int i = 0; i < 10; i++) {
        tchange_t t;
        char ip[32];
        snprintf(ip, sizeof(ip), "192.0.2.%d", 100 + i);
        zone_change_t c = mk_a(&t, true, "s.example.com", ip);
        assert_int_equal(submit(edit("example.com", &c, 1), &res, err, sizeof(err)), 0);
    }
    assert_int_equal(change_index(), 12);
    assert_int_equal(change_snapshot_now(err, sizeof(err)), 0);
    assert_int_equal(snapshot_index(g_data), 12);
    change_journal_stats_t js;
    change_journal_stats(&js);
    assert_int_equal(js.snapshot_index, 12);
    assert_int_equal(js.first_index, 11); /* keep 2: 11 and 12 */
    assert_int_equal(js.last_index, 12);
    tchange_t t;
    zone_change_t c = mk_a(&t, true, "after.example.com", "192.0.2.200");
    assert_int_equal(submit(edit("example.com", &c, 1), &res, err, sizeof(err)), 0);
    char *before = served_dump();
    journal_open_at(g_data, true, 0, 2, &index);
    assert_int_equal(index, 13);
    char *after = served_dump();
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_true(has_a("example.com", "after.example.com", "192.0.2.200"));
    assert_true(has_a("example.com", "s.example.com", "192.0.2.109"));
    journal_done();
}

typedef struct copied {
    uint8_t *data[256];
    size_t len[256];
    size_t n;
} copied_t;

static int copy_entry(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
    (void)index;
    copied_t *c = arg;
    if (c->n == 256)
        return 1;
    c->data[c->n] = malloc(len);
    memcpy(c->data[c->n], data, len);
    c->len[c->n++] = len;
    return 0;
}

/* A secondary given the primary's entries serves exactly what the primary serves: diffs
 * (adds, deletes, TTL changes), a reload that became a whole zone, a zone removed. */
static void test_secondary_applies_the_primary_entries(void **state)
{
    (void)state;
    uint64_t index;
    char pdir[300], sdir[300];
    snprintf(pdir, sizeof(pdir), "%s/data-p", g_dir);
    snprintf(sdir, sizeof(sdir), "%s/data-s", g_dir);
    journal_open_at(pdir, true, 0, 0, &index);
    write_zone(g_com_path, com_text);
    change_result_t res;
    char err[512];
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    tchange_t t1, t2, t3;
    zone_change_t c[3] = {mk_a(&t1, true, "a.b.example.com", "192.0.2.1"),
                          mk_a(&t2, true, "www.example.com", "192.0.2.12"),
                          mk_cname(&t3, false, "alias.example.com", "www.example.com")};
    c[1].ttl = 30; /* the whole RRset takes TTL 30 */
    assert_int_equal(submit(edit("example.com", c, 3), &res, err, sizeof(err)), 0);
    zone_change_t d = mk_a(&t1, false, "a.b.example.com", "192.0.2.1");
    assert_int_equal(submit(edit("example.com", &d, 1), &res, err, sizeof(err)), 0);
    /* A file rewritten in full: applied as a whole zone. */
    write_zone(g_com_path, "$ORIGIN example.com.\n"
                           "@ 600 SOA ns9 hostmaster 500 7200 3600 1209600 300\n"
                           "@ 600 NS ns9\n"
                           "ns9 600 A 192.0.2.9\n"
                           "x 600 TXT \"new\"\n"
                           "y 600 TXT \"new\"\n"
                           "z 600 TXT \"new\"\n");
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    assert_int_equal(submit((change_t){.kind = CHANGE_MEMBER_ADD,
                                       .member_id = "ns2",
                                       .member_address = "127.0.0.1:8054"},
                            &res, err, sizeof(err)),
                     0);
    /* example.net no longer configured: removed */
    cfg_t only_com = {.zones = g_zones, .zone_count = 1};
    assert_int_equal(
        submit((change_t){.kind = CHANGE_LOAD, .cfg = &only_com}, &res, err, sizeof(err)), 0);
    uint64_t last = change_index();
    assert_int_equal(last, 7);
    char *primary = served_dump();
    copied_t ent = {0};
    assert_int_equal(journal_read(change_journal(), 1, copy_entry, &ent), 0);
    assert_int_equal(ent.n, last);

    journal_open_at(sdir, false, 0, 0, &index);
    assert_int_equal(index, 0);
    const uint8_t *const *data = (const uint8_t *const *)ent.data;
    /* a gap is refused and changes nothing */
    assert_int_equal(change_apply_entries(data + 1, ent.len + 1, 1, err, sizeof(err)),
                     FENNEC_EMALFORMED);
    assert_int_equal(change_index(), 0);
    /* in two groups, the second one starting with a resend */
    assert_int_equal(change_apply_entries(data, ent.len, 3, err, sizeof(err)), 0);
    assert_int_equal(change_index(), 3);
    assert_int_equal(change_apply_entries(data + 2, ent.len + 2, ent.n - 2, err, sizeof(err)), 0);
    assert_int_equal(change_index(), last);
    char *secondary = served_dump();
    assert_string_equal(primary, secondary);
    assert_true(repl_member_find("ns2", NULL));
    /* a secondary takes no change of its own */
    tchange_t t4;
    zone_change_t e = mk_a(&t4, true, "q.example.com", "192.0.2.1");
    assert_int_equal(submit(edit("example.com", &e, 1), &res, err, sizeof(err)), FENNEC_ENOTSUP);
    /* and restarts from its own journal */
    journal_open_at(sdir, false, 0, 0, &index);
    assert_int_equal(index, last);
    char *again = served_dump();
    assert_string_equal(primary, again);
    free(again);
    free(primary);
    free(secondary);
    for (size_t i = 0; i < ent.n; i++)
        free(ent.data[i]);
    journal_done();
}

/* A journal that cannot take a change refuses it, and every change built on it: nothing of
 * them is served, the index stays, and the next change starts from what is served. */
static void test_journal_full_refuses_and_rolls_back(void **state)
{
    (void)state;
    uint64_t index;
    journal_loaded("data-full", 256 * 1024, 1, &index);
    change_result_t res;
    char err[512];
    int rc = 0, accepted = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        tchange_t t;
        char owner[64];
        snprintf(owner, sizeof(owner), "f%d.example.com", i);
        zone_change_t c = mk_a(&t, true, owner, "192.0.2.1");
        rc = submit(edit("example.com", &c, 1), &res, err, sizeof(err));
        if (rc == 0)
            accepted++;
    }
    assert_int_equal(rc, FENNEC_ESPACE);
    assert_non_null(strstr(err, "journal"));
    assert_true(accepted > 10);
    uint64_t at = change_index();
    uint32_t serial = served_serial("example.com");
    char owner[64];
    snprintf(owner, sizeof(owner), "f%d.example.com", accepted);
    assert_false(has_a("example.com", owner, "192.0.2.1"));
    /* a snapshot compacts the journal: the same change then goes through */
    assert_int_equal(change_snapshot_now(err, sizeof(err)), 0);
    tchange_t t;
    zone_change_t c = mk_a(&t, true, owner, "192.0.2.1");
    assert_int_equal(submit(edit("example.com", &c, 1), &res, err, sizeof(err)), 0);
    assert_int_equal(res.index, at + 1);
    assert_int_equal(served_serial("example.com"), serial + 1);
    assert_true(has_a("example.com", owner, "192.0.2.1"));
    journal_done();
}

/* Damage is found at start, with what to do. */
static void test_damaged_journal_and_snapshot_are_found(void **state)
{
    (void)state;
    uint64_t index;
    journal_loaded("data-damaged", 0, 0, &index);
    char err[1024];
    assert_int_equal(change_snapshot_now(err, sizeof(err)), 0);
    journal_done();
    /* a snapshot cut short */
    char path[400];
    snprintf(path, sizeof(path), "%s/snapshot", g_data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 3), 0);
    change_config_t cc = {.data_dir = g_data, .node_id = "ns1", .primary = true};
    assert_int_equal(change_open(&cc, &index, err, sizeof(err)), FENNEC_EDAMAGED);
    assert_non_null(strstr(err, "snapshot"));
    assert_non_null(strstr(err, "--reseed"));
    /* a journal file of garbage */
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/data.mdb", g_data);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 8192; i++)
        fputc(i * 7 & 0xff, f);
    fclose(f);
    assert_int_not_equal(change_open(&cc, &index, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "--reseed"));
    assert_null(change_journal());
}

#define JWRITERS 8

/* Concurrent writers with a journal: every change is journaled and served once, and they
 * share commits (fewer commits than entries). */
static void test_group_commit(void **state)
{
    (void)state;
    uint64_t index;
    journal_loaded("data-group", 0, 0, &index);
    change_journal_stats_t before, after;
    change_journal_stats(&before);
    uint64_t i0 = change_index();
    pthread_t th[JWRITERS];
    for (int i = 0; i < JWRITERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < JWRITERS; i++) {
        void *failures = NULL;
        assert_int_equal(pthread_join(th[i], &failures), 0);
        assert_int_equal((intptr_t)failures, 0);
    }
    change_journal_stats(&after);
    uint64_t entries = after.entries - before.entries;
    uint64_t groups = after.groups - before.groups;
    assert_int_equal(entries, JWRITERS * EDITS_PER_WRITE);
    assert_int_equal(change_index(), i0 + entries);
    assert_true(groups < entries);
    assert_int_equal(after.count - before.count, groups);
    char *served_before = served_dump();
    journal_open_at(g_data, true, 0, 0, &index);
    char *served_after = served_dump();
    assert_string_equal(served_before, served_after);
    free(served_before);
    free(served_after);
    journal_done();
}

/* ---- health through the log -------------------------------------------------------------- */

static health_config_t *health_of(const char *text)
{
    health_config_t *hc = NULL;
    char err[512];
    if (health_config_parse(text, strlen(text), "h.yaml", NULL, 1, &hc, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return hc;
}

static const char g_health1[] =
    "health:\n  checks:\n    - {name: web1, type: tcp, target: 192.0.2.10, port: 80}\n"
    "    - {name: web2, type: tcp, target: 192.0.2.11, port: 80}\n"
    "  pools:\n    - {name: www.example.com, members: [{address: 192.0.2.10, check: web1}, "
    "{address: 192.0.2.11, check: web2}]}\n";

/* The health section of a load is an entry when its definitions change; overrides are
 * entries; a secondary ends with the same section and overrides; both survive a restart;
 * a pool outside every served zone is refused and the previous section stays. */
static void test_health_replicates(void **state)
{
    (void)state;
    uint64_t index;
    char pdir[300], sdir[300];
    snprintf(pdir, sizeof(pdir), "%s/data-hp", g_dir);
    snprintf(sdir, sizeof(sdir), "%s/data-hs", g_dir);
    journal_open_at(pdir, true, 0, 0, &index);
    write_zone(g_com_path, com_text);
    cfg_t cfg = g_cfg;
    cfg.health = health_of(g_health1);
    change_result_t res;
    char err[512];
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &cfg}, &res, err, sizeof(err)),
                     0);
    assert_int_equal(res.index, 3); /* two zones, then the health section */
    /* the same definitions again (even as other text): no entry */
    health_config_unref(cfg.health);
    cfg.health = health_of("health:\n  checks:\n"
                           "    - {name: web1, type: tcp, target: 192.0.2.10, port: 80}\n"
                           "    - {port: 80, name: web2, type: tcp, target: 192.0.2.11}\n"
                           "  pools:\n    - {name: WWW.example.com., members: [{address: "
                           "192.0.2.10, check: web1}, {address: 192.0.2.11, check: web2}]}\n");
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &cfg}, &res, err, sizeof(err)),
                     0);
    assert_false(res.applied);
    assert_int_equal(change_index(), 3);
    /* overrides */
    assert_int_equal(submit((change_t){.kind = CHANGE_HEALTH_OVERRIDE,
                                       .check = "web1",
                                       .override_state = HEALTH_OVERRIDE_DOWN},
                            &res, err, sizeof(err)),
                     0);
    assert_int_equal(res.index, 4);
    assert_int_equal(submit((change_t){.kind = CHANGE_HEALTH_OVERRIDE,
                                       .check = "nope",
                                       .override_state = HEALTH_OVERRIDE_UP},
                            &res, err, sizeof(err)),
                     FENNEC_ENOTFOUND);
    assert_int_equal(submit((change_t){.kind = CHANGE_HEALTH_OVERRIDE,
                                       .check = "web2",
                                       .override_state = HEALTH_OVERRIDE_UP},
                            &res, err, sizeof(err)),
                     0);
    assert_int_equal(submit((change_t){.kind = CHANGE_HEALTH_OVERRIDE,
                                       .check = "web2",
                                       .override_state = HEALTH_OVERRIDE_NONE},
                            &res, err, sizeof(err)),
                     0);
    assert_int_equal(change_index(), 6);
    /* a pool in no served zone: the section is refused, counted as failed, nothing changes */
    health_config_t *stray = health_of(
        "health:\n  checks:\n    - {name: web1, type: tcp, target: 192.0.2.10, port: 80}\n"
        "  pools:\n    - {name: www.example.org, members: [{address: 192.0.2.10, check: "
        "web1}]}\n");
    cfg_t bad = g_cfg;
    bad.health = stray;
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &bad}, &res, err, sizeof(err)),
                     0);
    assert_int_equal(res.failed, 1);
    assert_non_null(strstr(err, "www.example.org"));
    assert_int_equal(change_index(), 6);
    health_config_unref(stray);

    /* a snapshot holds the section and the overrides too */
    assert_int_equal(change_snapshot_now(err, sizeof(err)), 0);
    snapshot_data_t sd;
    assert_int_equal(snapshot_read(pdir, &sd, err, sizeof(err)), 0);
    assert_non_null(sd.health);
    assert_true(health_config_equal(sd.health, cfg.health));
    assert_int_equal(sd.override_count, 1);
    assert_string_equal(sd.overrides[0].check, "web1");
    assert_int_equal(sd.overrides[0].state, HEALTH_OVERRIDE_DOWN);
    snapshot_data_free(&sd);

    copied_t ent = {0};
    assert_int_equal(journal_read(change_journal(), 1, copy_entry, &ent), 0);
    assert_int_equal(ent.n, 6);
    /* a secondary: the same section and overrides, from the entries */
    journal_open_at(sdir, false, 0, 0, &index);
    assert_int_equal(
        change_apply_entries((const uint8_t *const *)ent.data, ent.len, ent.n, err, sizeof(err)),
        0);
    assert_int_equal(change_index(), 6);
    assert_int_equal(change_snapshot_now(err, sizeof(err)), 0);
    assert_int_equal(snapshot_read(sdir, &sd, err, sizeof(err)), 0);
    assert_true(health_config_equal(sd.health, cfg.health));
    assert_int_equal(sd.override_count, 1);
    snapshot_data_free(&sd);
    /* the primary restarts with its section and overrides */
    journal_open_at(pdir, true, 0, 0, &index);
    assert_int_equal(index, 6);
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &cfg}, &res, err, sizeof(err)),
                     0);
    assert_false(res.applied); /* the file's section is what the journal restored */
    /* removing the section: an entry, and overrides of checks that are gone go too */
    cfg_t none = g_cfg;
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &none}, &res, err, sizeof(err)),
                     0);
    assert_true(res.applied);
    assert_int_equal(change_index(), 7);
    assert_int_equal(change_snapshot_now(err, sizeof(err)), 0);
    assert_int_equal(snapshot_read(pdir, &sd, err, sizeof(err)), 0);
    assert_null(sd.health);
    assert_int_equal(sd.override_count, 0);
    snapshot_data_free(&sd);
    for (size_t i = 0; i < ent.n; i++)
        free(ent.data[i]);
    health_config_unref(cfg.health);
    journal_done();
}

/* ---- the records rule of snapshots -------------------------------------------------------- */

#define REC_MIN      45   /* snapshot_records of the test */
#define REC_INTERVAL 1000 /* snapshot_records_ms of the test */

static void journal_open_records(const char *dir, bool primary, uint64_t *index)
{
    change_shutdown();
    change_close();
    char err[1024] = "";
    change_config_t cc = {.data_dir = dir,
                          .node_id = "ns1",
                          .primary = primary,
                          .snapshot_every = 1000000, /* the entries rule never fires here */
                          .snapshot_records = REC_MIN,
                          .snapshot_records_ms = REC_INTERVAL};
    int rc = change_open(&cc, index, err, sizeof(err));
    if (rc != 0)
        fail_msg("change_open(%s): %d %s", dir, rc, err);
}

static uint64_t snapshots_taken(void)
{
    change_journal_stats_t js;
    change_journal_stats(&js);
    return js.snapshots;
}

static uint64_t snapshot_at(void)
{
    change_journal_stats_t js;
    change_journal_stats(&js);
    return js.snapshot_index;
}

/* Waits (at most MAX_MS) until N snapshots were taken in this process; false if not. */
static bool snapshots_reach(uint64_t n, int max_ms)
{
    for (int i = 0; i < max_ms / 5 && snapshots_taken() < n; i++)
        usleep(5000);
    return snapshots_taken() >= n;
}

static double ms_since(uint64_t t0)
{
    return (double)(fennec_now_ns() - t0) / 1e6;
}

/* A batch of COUNT A records rPREFIX-N.example.com (added, or deleted when !ADD). */
static void records_batch(const char *prefix, int from, int count, bool add)
{
    tchange_t *t = calloc((size_t)count, sizeof(*t));
    zone_change_t *c = calloc((size_t)count, sizeof(*c));
    assert_non_null(t);
    assert_non_null(c);
    for (int i = 0; i < count; i++) {
        char owner[64], ip[32];
        snprintf(owner, sizeof(owner), "%s-%d.example.com", prefix, from + i);
        snprintf(ip, sizeof(ip), "10.9.%d.%d", (from + i) / 250, (from + i) % 250 + 1);
        c[i] = mk_a(&t[i], add, owner, ip);
    }
    change_result_t res;
    char err[512];
    int rc = submit(edit("example.com", c, (size_t)count), &res, err, sizeof(err));
    if (rc != 0)
        fail_msg("batch %s: %d %s", prefix, rc, err);
    free(c);
    free(t);
}

/* A snapshot is taken once the entries since the last one changed max(snapshot_records, 25% of
 * the records served) records: whole zones count all their records, diffs their records
 * removed and added; by that rule at most one per snapshot_records_ms, the one due then taken
 * when the time is up without another write; a secondary counts the entries it applies. */
static void test_snapshot_after_many_records(void **state)
{
    (void)state;
    uint64_t index;
    char pdir[300], sdir[300];
    snprintf(pdir, sizeof(pdir), "%s/data-records-p", g_dir);
    snprintf(sdir, sizeof(sdir), "%s/data-records-s", g_dir);
    journal_open_records(pdir, true, &index);
    uint64_t base = snapshots_taken();
    write_zone(g_com_path, com_text);
    change_result_t res;
    char err[512];
    /* two whole zones: 8 records; then 20 added: 28 < 45 */
    assert_int_equal(submit((change_t){.kind = CHANGE_LOAD, .cfg = &g_cfg}, &res, err, sizeof(err)),
                     0);
    records_batch("a", 0, 20, true);
    usleep(300 * 1000);
    assert_int_equal(snapshots_taken(), base);
    assert_int_equal(snapshot_index(pdir), 0);

    /* the same 20 deleted: 48 >= 45 (without the whole zones 40, without deletes 28) */
    uint64_t t1 = fennec_now_ns();
    records_batch("a", 0, 20, false);
    uint64_t at1 = change_index();
    assert_true(snapshots_reach(base + 1, 5000));
    assert_int_equal(snapshot_at(), at1);
    assert_int_equal(snapshot_index(pdir), at1);

    /* 1,000 more at once: due, but not within REC_INTERVAL of the last one; then taken when
     * the interval is up although nothing else is written */
    records_batch("b", 0, 1000, true);
    uint64_t at2 = change_index();
    usleep(100 * 1000);
    double early = ms_since(t1);
    if (early >= REC_INTERVAL)
        fail_msg("the test was too slow to check the interval (%.0f ms)", early);
    assert_int_equal(snapshots_taken(), base + 1);
    assert_true(snapshots_reach(base + 2, REC_INTERVAL + 5000));
    assert_true(ms_since(t1) >= REC_INTERVAL);
    assert_int_equal(snapshot_at(), at2);

    /* 1,256 records served after 248 more: 25% is 314, above snapshot_records, so 248 changes
     * are not enough, even once the interval is over... */
    records_batch("c", 0, 248, true);
    usleep((REC_INTERVAL + 300) * 1000);
    assert_int_equal(snapshots_taken(), base + 2);
    /* ...100 more are (348 >= 25% of 1,356 = 339) */
    records_batch("c", 248, 100, true);
    uint64_t at3 = change_index();
    assert_true(snapshots_reach(base + 3, 5000));
    assert_int_equal(snapshot_at(), at3);

    /* A secondary applying the same entries counts them the same way. */
    copied_t ent = {0};
    assert_int_equal(journal_read(change_journal(), 1, copy_entry, &ent), 0);
    assert_int_equal(ent.n, at3);
    journal_open_records(sdir, false, &index);
    uint64_t sbase = snapshots_taken();
    /* the two whole zones and the first batch: 28 records, not due */
    assert_int_equal(
        change_apply_entries((const uint8_t *const *)ent.data, ent.len, 3, err, sizeof(err)), 0);
    usleep(300 * 1000);
    assert_int_equal(snapshots_taken(), sbase);
    assert_int_equal(change_apply_entries((const uint8_t *const *)ent.data + 3, ent.len + 3, 1, err,
                                          sizeof(err)),
                     0);
    assert_true(snapshots_reach(sbase + 1, 5000));
    assert_int_equal(snapshot_index(sdir), 4);
    for (size_t i = 0; i < ent.n; i++)
        free(ent.data[i]);
    journal_done();
}

static int setup(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_ERROR);
    if (testutil_tmpdir_make(g_dir, sizeof(g_dir), "change") != 0)
        return -1;
    snprintf(g_com_path, sizeof(g_com_path), "%s/com.zone", g_dir);
    g_zones[0] = (cfg_zone_t){.name = "example.com", .file = g_com_path};
    g_zones[1] = (cfg_zone_t){.name = "Example.NET.", .text = (char *)net_text};
    memset(&g_cfg, 0, sizeof(g_cfg));
    g_cfg.zones = g_zones;
    g_cfg.zone_count = 2;
    zone_reader_register();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    change_shutdown();
    change_close();
    zone_reader_unregister();
    return testutil_tmpdir_remove(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_serves_the_configured_zones),
        cmocka_unit_test(test_validate_only_applies_nothing),
        cmocka_unit_test(test_edit_one_record),
        cmocka_unit_test(test_batch_applies_all_with_one_serial_step),
        cmocka_unit_test(test_batch_with_one_bad_change_changes_nothing),
        cmocka_unit_test(test_index_counts_applied_changes_only),
        cmocka_unit_test(test_reload_of_an_unchanged_file_keeps_the_edits),
        cmocka_unit_test(test_reload_of_a_changed_file),
        cmocka_unit_test(test_zones_no_longer_configured_disappear),
        cmocka_unit_test(test_load_keeps_a_failing_zone_and_changes_the_others),
        cmocka_unit_test(test_invalid_changes_are_refused),
        cmocka_unit_test(test_concurrent_writers_lose_nothing),
        cmocka_unit_test(test_journal_restart_keeps_edits),
        cmocka_unit_test(test_journal_snapshot_and_compaction),
        cmocka_unit_test(test_secondary_applies_the_primary_entries),
        cmocka_unit_test(test_journal_full_refuses_and_rolls_back),
        cmocka_unit_test(test_damaged_journal_and_snapshot_are_found),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_health_replicates),
        cmocka_unit_test(test_snapshot_after_many_records),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
