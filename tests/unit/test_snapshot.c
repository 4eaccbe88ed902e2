/*
 * Unit tests for snapshots (replication/snapshot.c): a snapshot written and read back holds
 * the same zones, serials, file sources and members; large zones are cut into several chunks
 * and come back whole; chunks that do not follow on, a file cut short or with a byte changed
 * are refused as damaged, never half loaded; a failed write leaves the old snapshot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fennec/common.h"
#include "fennec/frame.h"
#include "fennec/snapshot.h"
#include "fennec/zone.h"
#include "testutil.h"

static char g_dir[256];

static zone_t *load(const char *origin, const char *text)
{
    zone_t *z = NULL;
    char err[256];
    if (zone_load_text(origin, text, strlen(text), "test", &z, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return z;
}

/* A zone of N hosts with one A record each. */
static zone_t *big_zone(size_t n)
{
    size_t cap = 256 + n * 40;
    char *t = malloc(cap);
    size_t o = (size_t)snprintf(t, cap,
                                "$ORIGIN big.test.\n@ 300 SOA ns h 9 1 1 1 1\n@ 300 NS ns\n"
                                "ns 300 A 192.0.2.1\n");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(t + o, cap - o, "h%zu 60 A 10.%zu.%zu.%zu\n", i, i >> 16 & 255,
                              i >> 8 & 255, i & 255);
    zone_t *z = load("big.test", t);
    free(t);
    return z;
}

static int rec_line(const zone_change_t *ch, void *arg)
{
    FILE *f = arg;
    fprintf(f, "%u %u %u:", ch->type, ch->ttl, ch->rdlen);
    for (int i = 0; ch->owner[i]; i += ch->owner[i] + 1)
        fprintf(f, "%.*s.", ch->owner[i], (const char *)ch->owner + i + 1);
    for (unsigned i = 0; i < ch->rdlen; i++)
        fprintf(f, "%02x", ch->rdata[i]);
    fputc('\n', f);
    return 0;
}

/* Every record of Z as text, in zone_records() order (which is canonical). */
static char *dump(const zone_t *z)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    fprintf(f, "%s %u\n", zone_name(z), zone_serial(z));
    assert_int_equal(zone_records(z, rec_line, f), 0);
    fclose(f);
    return s;
}

static void test_round_trip(void **state)
{
    (void)state;
    zone_t *zones[2] = {load("example.com", "@ 300 SOA ns1 h 7 1 1 1 1\n@ 300 NS ns1\n"
                                            "ns1 300 A 192.0.2.1\n*.w 60 TXT \"x\"\n"),
                        big_zone(60000)};
    assert_int_equal(zone_source_set(zones[0], "/etc/zones/example.com", 0xabcdef), 0);
    repl_member_t members[2] = {{"ns2", "127.0.0.1:8054"}, {"ns3", "[::1]:8055"}};
    snapshot_data_t d = {.index = 4242,
                         .commit_ns = 1764500000123456789ull,
                         .zones = zones,
                         .zone_count = 2,
                         .members = members,
                         .member_count = 2};
    char err[512];
    assert_int_equal(snapshot_write(g_dir, &d, err, sizeof(err)), 0);
    assert_int_equal(snapshot_index(g_dir), 4242);

    /* More than one chunk for the large zone. */
    snapshot_reader_t *r = NULL;
    assert_int_equal(snapshot_reader_open(g_dir, &r), 0);
    size_t frames = 0;
    for (;;) {
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(snapshot_reader_next(r, &buf, &len), 0);
        if (!buf)
            break;
        assert_true(len <= FRAME_HEADER_LEN + SNAPSHOT_CHUNK_BYTES + 4096);
        free(buf);
        frames++;
    }
    snapshot_reader_close(r);
    assert_true(frames >= 5); /* header, small zone, >= 2 chunks of the large one, last */

    snapshot_data_t back;
    assert_int_equal(snapshot_read(g_dir, &back, err, sizeof(err)), 0);
    assert_int_equal(back.index, 4242);
    assert_int_equal(back.commit_ns, 1764500000123456789ull);
    assert_int_equal(back.zone_count, 2);
    assert_int_equal(back.member_count, 2);
    assert_string_equal(back.members[1].id, "ns3");
    assert_string_equal(back.members[1].address, "[::1]:8055");
    for (size_t i = 0; i < 2; i++) {
        char *a = dump(zones[i]), *b = dump(back.zones[i]);
        assert_string_equal(a, b);
        free(a);
        free(b);
        assert_int_equal(zone_record_count(back.zones[i]), zone_record_count(zones[i]));
    }
    uint64_t digest = 0;
    assert_string_equal(zone_source(back.zones[0], &digest), "/etc/zones/example.com");
    assert_int_equal(digest, 0xabcdef);
    assert_null(zone_source(back.zones[1], NULL));
    snapshot_data_free(&back);
    zone_unref(zones[0]);
    zone_unref(zones[1]);
}

static void flip_byte(const char *path, long at)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

/* A damaged file is refused whole, with where; no snapshot is "none", not damage. */
static void test_damage_is_found(void **state)
{
    (void)state;
    char err[512], path[400];
    snapshot_data_t back;
    snprintf(path, sizeof(path), "%s/%s", g_dir, SNAPSHOT_FILE);
    unlink(path);
    assert_int_equal(snapshot_read(g_dir, &back, err, sizeof(err)), FENNEC_ENOTFOUND);
    assert_int_equal(snapshot_index(g_dir), 0);

    zone_t *z = big_zone(20000);
    snapshot_data_t d = {.index = 9, .zones = &z, .zone_count = 1};
    assert_int_equal(snapshot_write(g_dir, &d, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);

    /* cut short: at the end, and in the middle of a chunk */
    assert_int_equal(truncate(path, st.st_size - 1), 0);
    assert_int_equal(snapshot_read(g_dir, &back, err, sizeof(err)), FENNEC_EDAMAGED);
    assert_non_null(strstr(err, "snapshot"));
    assert_int_equal(snapshot_write(g_dir, &d, err, sizeof(err)), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    assert_int_equal(snapshot_read(g_dir, &back, err, sizeof(err)), FENNEC_EDAMAGED);

    /* a length prefix changed: too long, or the chunks no longer follow */
    assert_int_equal(snapshot_write(g_dir, &d, err, sizeof(err)), 0);
    flip_byte(path, 0);
    assert_int_equal(snapshot_read(g_dir, &back, err, sizeof(err)), FENNEC_EDAMAGED);

    /* a byte inside the records of the large zone */
    assert_int_equal(snapshot_write(g_dir, &d, err, sizeof(err)), 0);
    flip_byte(path, st.st_size / 2);
    int rc = snapshot_read(g_dir, &back, err, sizeof(err));
    if (rc == 0) {
        /* A flipped rdata byte can still be a record: then the zone differs, visibly. */
        char *a = dump(z), *b = dump(back.zones[0]);
        assert_string_not_equal(a, b);
        free(a);
        free(b);
        snapshot_data_free(&back);
    } else {
        assert_int_equal(rc, FENNEC_EDAMAGED);
    }
    zone_unref(z);
}

/* Chunks that do not follow on are refused by the builder. */
static void test_builder_refuses_out_of_order(void **state)
{
    (void)state;
    char err[256];
    snapshot_builder_t *b = NULL;
    Fennec__Replication__SnapshotChunk c = FENNEC__REPLICATION__SNAPSHOT_CHUNK__INIT;
    assert_int_equal(snapshot_builder_new(&b), 0);
    c.index = 5;
    c.seq = 1; /* not the header */
    assert_int_equal(snapshot_builder_add(b, &c, err, sizeof(err)), FENNEC_EDAMAGED);
    assert_non_null(strstr(err, "chunk 1"));
    snapshot_builder_free(b);

    assert_int_equal(snapshot_builder_new(&b), 0);
    c.seq = 0;
    c.zone_count = 1;
    assert_int_equal(snapshot_builder_add(b, &c, err, sizeof(err)), 0);
    c.seq = 1;
    c.index = 6; /* another snapshot's chunk */
    assert_int_equal(snapshot_builder_add(b, &c, err, sizeof(err)), FENNEC_EDAMAGED);
    snapshot_builder_free(b);

    /* the last chunk before the zones the header announced */
    assert_int_equal(snapshot_builder_new(&b), 0);
    c.seq = 0;
    c.index = 5;
    assert_int_equal(snapshot_builder_add(b, &c, err, sizeof(err)), 0);
    c.seq = 1;
    c.last = true;
    assert_int_equal(snapshot_builder_add(b, &c, err, sizeof(err)), FENNEC_EDAMAGED);
    assert_non_null(strstr(err, "header says 1"));
    snapshot_data_t out;
    assert_int_equal(snapshot_builder_finish(b, &out, err, sizeof(err)), FENNEC_EDAMAGED);
    snapshot_builder_free(b);
}

/* A write that cannot happen leaves the snapshot there. */
static void test_failed_write_keeps_the_old_one(void **state)
{
    (void)state;
    char err[512];
    zone_t *z = big_zone(100);
    snapshot_data_t d = {.index = 77, .zones = &z, .zone_count = 1};
    assert_int_equal(snapshot_write(g_dir, &d, err, sizeof(err)), 0);
    char blocker[400];
    snprintf(blocker, sizeof(blocker), "%s/%s.new", g_dir, SNAPSHOT_FILE);
    assert_int_equal(mkdir(blocker, 0700), 0); /* the temporary file cannot be made */
    d.index = 78;
    assert_true(snapshot_write(g_dir, &d, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "snapshot"));
    assert_int_equal(snapshot_index(g_dir), 77);
    assert_int_equal(rmdir(blocker), 0);
    zone_unref(z);
}

static int setup(void **state)
{
    (void)state;
    return testutil_tmpdir_make(g_dir, sizeof(g_dir), "snapshot");
}

static int teardown(void **state)
{
    (void)state;
    return testutil_tmpdir_remove(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_damage_is_found),
        cmocka_unit_test(test_builder_refuses_out_of_order),
        cmocka_unit_test(test_failed_write_keeps_the_old_one),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
