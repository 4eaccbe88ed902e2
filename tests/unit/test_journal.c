/* Unit tests for the journal (replication/journal.c), each in a fresh temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <lmdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fennec/common.h"
#include "testutil.h"
#include "fennec/journal.h"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    return testutil_tmpdir_make(g_dir, sizeof(g_dir), "journal");
}

static int teardown(void **state)
{
    (void)state;
    return testutil_tmpdir_remove(g_dir);
}

static journal_t *open_ok(size_t max)
{
    journal_t *j = NULL;
    char err[512];
    int rc = journal_open(g_dir, max, &j, err, sizeof(err));
    if (rc)
        fail_msg("journal_open: %d %s", rc, err);
    return j;
}

/* Appends entries FROM..TO, entry I holding "entry I" repeated to SIZE bytes. */
static int append_range(journal_t *j, uint64_t from, uint64_t to, size_t size, char *err,
                        size_t errlen)
{
    size_t n = (size_t)(to - from + 1);
    journal_rec_t *recs = calloc(n, sizeof(*recs));
    uint8_t *data = calloc(n, size);
    assert_non_null(recs);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++) {
        uint8_t *d = data + i * size;
        for (size_t k = 0; k < size; k++)
            d[k] = (uint8_t)((from + i) * 31 + k);
        recs[i] = (journal_rec_t){from + i, d, size};
    }
    int rc = journal_append(j, recs, n, err, errlen);
    free(recs);
    free(data);
    return rc;
}

typedef struct seen {
    uint64_t first, last;
    size_t count;
    size_t size;
    bool bad;
    uint64_t stop_at;
} seen_t;

static int on_entry(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
    seen_t *s = arg;
    if (s->count == 0)
        s->first = index;
    else if (index != s->last + 1)
        s->bad = true;
    s->last = index;
    s->count++;
    for (size_t k = 0; k < len; k++)
        if (data[k] != (uint8_t)(index * 31 + k) || len != s->size)
            s->bad = true;
    return s->stop_at && index == s->stop_at ? 7 : 0;
}

static void test_append_read_reopen(void **state)
{
    (void)state;
    char err[512];
    journal_t *j = open_ok(0);
    journal_info_t info;
    journal_info_get(j, &info);
    assert_int_equal(info.first, 0);
    assert_int_equal(info.last, 0);
    /* One group of 1,000 entries in one commit, then single ones. */
    assert_int_equal(append_range(j, 1, 1000, 100, err, sizeof(err)), 0);
    assert_int_equal(append_range(j, 1001, 1001, 100, err, sizeof(err)), 0);
    assert_int_equal(append_range(j, 1002, 1010, 100, err, sizeof(err)), 0);
    journal_close(j);

    j = open_ok(0); /* what was acknowledged is there after a reopen */
    journal_info_get(j, &info);
    assert_int_equal(info.first, 1);
    assert_int_equal(info.last, 1010);
    assert_int_equal(info.entries, 1010);
    assert_true(info.bytes_used > 1010 * 100);
    seen_t s = {.size = 100};
    assert_int_equal(journal_read(j, 0, on_entry, &s), 0);
    assert_int_equal(s.count, 1010);
    assert_int_equal(s.first, 1);
    assert_int_equal(s.last, 1010);
    assert_false(s.bad);
    s = (seen_t){.size = 100, .stop_at = 600};
    assert_int_equal(journal_read(j, 500, on_entry, &s), 7); /* stopped by the callback */
    assert_int_equal(s.first, 500);
    assert_int_equal(s.count, 101);
    s = (seen_t){.size = 100};
    assert_int_equal(journal_read(j, 1011, on_entry, &s), 0); /* past the end: nothing */
    assert_int_equal(s.count, 0);
    journal_close(j);
}

static void test_sequence_is_checked(void **state)
{
    (void)state;
    char err[512];
    journal_t *j = open_ok(0);
    /* An empty journal starts where the first entry says (after a snapshot, say). */
    assert_int_equal(append_range(j, 41, 45, 10, err, sizeof(err)), 0);
    /* A gap, a repeat and index 0 are refused, and nothing of the group is written. */
    assert_int_equal(append_range(j, 47, 50, 10, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "out of sequence"));
    assert_int_equal(append_range(j, 45, 46, 10, err, sizeof(err)), FENNEC_EMALFORMED);
    journal_rec_t bad[2] = {{46, (const uint8_t *)"x", 1}, {48, (const uint8_t *)"y", 1}};
    assert_int_equal(journal_append(j, bad, 2, err, sizeof(err)), FENNEC_EMALFORMED);
    journal_rec_t empty = {46, (const uint8_t *)"", 0};
    assert_int_equal(journal_append(j, &empty, 1, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "empty"));
    journal_info_t info;
    journal_info_get(j, &info);
    assert_int_equal(info.last, 45);
    assert_int_equal(append_range(j, 46, 46, 10, err, sizeof(err)), 0);
    journal_close(j);
    j = open_ok(0);
    journal_info_get(j, &info);
    assert_int_equal(info.first, 41);
    assert_int_equal(info.last, 46);
    journal_close(j);
}

static void test_full_and_compact(void **state)
{
    (void)state;
    char err[512];
    journal_t *j = open_ok(1u << 20); /* 1 MiB */
    uint64_t next = 1;
    int rc = 0;
    /* Fill it in groups of 10 entries of 4 KiB: it must say full, not crash. */
    for (int i = 0; i < 100 && rc == 0; i++, next += 10)
        rc = append_range(j, next, next + 9, 4096, err, sizeof(err));
    assert_int_equal(rc, FENNEC_ESPACE);
    assert_non_null(strstr(err, "full"));
    next -= 10; /* the refused group */
    journal_info_t info;
    journal_info_get(j, &info);
    assert_int_equal(info.last, next - 1);
    uint64_t last = info.last;
    /* Everything acknowledged is intact; compaction makes room again. */
    seen_t s = {.size = 4096};
    assert_int_equal(journal_read(j, 1, on_entry, &s), 0);
    assert_int_equal(s.count, last);
    assert_false(s.bad);
    assert_int_equal(journal_compact(j, last - 5, err, sizeof(err)), 0);
    journal_info_get(j, &info);
    assert_int_equal(info.first, last - 5);
    assert_int_equal(info.entries, 6);
    assert_int_equal(append_range(j, next, next + 9, 4096, err, sizeof(err)), 0);
    /* What was compacted away needs a snapshot. */
    s = (seen_t){.size = 4096};
    assert_int_equal(journal_read(j, 1, on_entry, &s), FENNEC_ENOTFOUND);
    assert_int_equal(journal_read(j, last - 5, on_entry, &s), 0);
    assert_int_equal(s.count, 16);
    journal_close(j);
    j = open_ok(1u << 20);
    journal_info_get(j, &info);
    assert_int_equal(info.first, last - 5);
    assert_int_equal(info.last, next + 9);
    /* Compacting everything leaves an empty journal that continues from anywhere. */
    assert_int_equal(journal_compact(j, next + 10, err, sizeof(err)), 0);
    journal_info_get(j, &info);
    assert_int_equal(info.entries, 0);
    assert_int_equal(info.first, 0);
    journal_close(j);
}

/* A journal with a hole (not written by this module) is found at open, with a message. */
static void test_damage_is_found_at_open(void **state)
{
    (void)state;
    char err[512];
    journal_t *j = open_ok(0);
    assert_int_equal(append_range(j, 1, 10, 16, err, sizeof(err)), 0);
    journal_close(j);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, g_dir, 0, 0640), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    uint8_t k5[8] = {0, 0, 0, 0, 0, 0, 0, 5};
    MDB_val k = {8, k5};
    assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    j = NULL;
    assert_int_equal(journal_open(g_dir, 0, &j, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_null(j);
    assert_non_null(strstr(err, "damaged"));
    assert_non_null(strstr(err, "next index after 4"));

    /* Not a journal at all. */
    char path[300];
    snprintf(path, sizeof(path), "%s/data.mdb", g_dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 8192; i++)
        fputc(0x5a, f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/lock.mdb", g_dir);
    unlink(path);
    assert_true(journal_open(g_dir, 0, &j, err, sizeof(err)) != 0);
    assert_null(j);
    assert_non_null(strstr(err, "damaged"));
}

static int count_entries(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
    (void)index;
    (void)data;
    (void)len;
    (*(size_t *)arg)++;
    return 0;
}

/* Any page of the file zeroed, or a byte of an entry changed: refused as damaged or read as
 * it was, never a crash of the process that opens it. */
static void test_damaged_pages_never_crash(void **state)
{
    (void)state;
    char err[512], path[300];
    journal_t *j = open_ok(0);
    assert_int_equal(append_range(j, 1, 300, 700, err, sizeof(err)), 0);
    journal_close(j);
    snprintf(path, sizeof(path), "%s/data.mdb", g_dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    uint8_t *orig = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fread(orig, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    size_t refused = 0, whole = 0;
    for (long page = 0; page < size / 4096; page++) {
        uint8_t *copy = malloc((size_t)size);
        memcpy(copy, orig, (size_t)size);
        memset(copy + page * 4096, 0, 4096);
        f = fopen(path, "wb");
        fwrite(copy, 1, (size_t)size, f);
        fclose(f);
        free(copy);
        j = NULL;
        int rc = journal_open(g_dir, 0, &j, err, sizeof(err));
        if (rc != 0) {
            assert_int_equal(rc, FENNEC_EMALFORMED);
            assert_non_null(strstr(err, "damaged"));
            refused++;
            continue;
        }
        size_t n = 0;
        rc = journal_read(j, 0, count_entries, &n);
        assert_true(rc == 0 || rc == FENNEC_EDAMAGED);
        whole += rc == 0 && n == 300;
        journal_close(j);
    }
    assert_true(refused > 0);
    /* one byte of one entry's bytes changed: its checksum says so */
    uint8_t *copy = malloc((size_t)size);
    memcpy(copy, orig, (size_t)size);
    uint8_t needle[16]; /* bytes 100..115 of entry 150, as append_range() wrote them */
    for (size_t k = 0; k < sizeof(needle); k++)
        needle[k] = (uint8_t)(150 * 31 + 100 + k);
    uint8_t *hit = memmem(copy, (size_t)size, needle, sizeof(needle));
    assert_non_null(hit);
    hit[3] ^= 1;
    f = fopen(path, "wb");
    fwrite(copy, 1, (size_t)size, f);
    fclose(f);
    free(copy);
    free(orig);
    j = NULL;
    assert_int_equal(journal_open(g_dir, 0, &j, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "checksum"));
    print_message("%zu of %ld pages zeroed were refused, %zu read whole\n", refused, size / 4096,
                  whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequence_is_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_and_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_is_found_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_pages_never_crash, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
