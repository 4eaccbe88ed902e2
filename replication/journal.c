/*
 * The journal in LMDB. Keys are 8-byte big-endian indexes, so LMDB's byte order is index
 * order and the first and last entries are a cursor's first and last. The journal keeps no
 * other metadata: first, last and the entry count come from the tree itself, and the
 * continuity check at open is that count == last - first + 1.
 *
 * LMDB keeps no checksums and trusts its pages: a damaged page can make it abort or fault.
 * So each value starts with a CRC-32C of the entry, checked on every read, and journal_open()
 * first walks the whole tree in a child process: a damaged journal then costs that child, not
 * the node, and is reported as damaged.
 */
#include "fennec/journal.h"
#include "fennec/common.h"
#include "fennec/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define CRC_LEN 4 /* the CRC-32C before each entry's bytes */

struct journal {
    MDB_env *env;
    MDB_dbi dbi;
    size_t max_bytes;
    uint64_t first, last; /* as committed; 0 when empty */
    size_t entries;
};

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- CRC-32C (Castagnoli), with the SSE 4.2 instruction where the processor has it ---- */

static uint32_t g_crc_table[256];

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        g_crc_table[i] = c;
    }
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
    }
    c = (uint32_t)c64;
    for (; n; n--)
        c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#endif

uint32_t journal_crc32c(const uint8_t *p, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    uint32_t c = 0xFFFFFFFFu;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc_hw(c, p, n);
#endif
    pthread_once(&once, crc_table_init);
    for (; n; n--)
        c = g_crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* The entry in value V, when its CRC is right. */
static bool value_entry(const MDB_val *v, const uint8_t **data, size_t *len)
{
    if (v->mv_size <= CRC_LEN)
        return false;
    const uint8_t *p = v->mv_data;
    *data = p + CRC_LEN;
    *len = v->mv_size - CRC_LEN;
    return wire_get_u32(p) == journal_crc32c(*data, *len);
}

/* An LMDB code as a fennec one. */
static int from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_MAP_FULL:
        return FENNEC_ESPACE;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_BAD_VALSIZE:
        return FENNEC_EMALFORMED;
    default:
        return rc > 0 ? -rc : -EIO; /* LMDB passes errno values through */
    }
}

static void key_put(uint8_t *k, uint64_t index)
{
    wire_put_u32(k, (uint32_t)(index >> 32));
    wire_put_u32(k + 4, (uint32_t)index);
}

static bool key_get(const MDB_val *k, uint64_t *index)
{
    if (k->mv_size != 8)
        return false;
    const uint8_t *p = k->mv_data;
    *index = (uint64_t)wire_get_u32(p) << 32 | wire_get_u32(p + 4);
    return true;
}

/* Reads first, last and the count in TXN, and checks that the indexes have no gap. */
static int bounds_read(journal_t *j, MDB_txn *txn, char *err, size_t errlen)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    MDB_stat st;
    int rc = mdb_stat(txn, j->dbi, &st);
    if (rc == 0)
        rc = mdb_cursor_open(txn, j->dbi, &c);
    if (rc)
        return say(err, errlen, from_mdb(rc), "journal: %s", mdb_strerror(rc));
    j->first = j->last = 0;
    j->entries = st.ms_entries;
    if (st.ms_entries > 0) {
        if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) != 0 || !key_get(&k, &j->first) ||
            (rc = mdb_cursor_get(c, &k, &v, MDB_LAST)) != 0 || !key_get(&k, &j->last)) {
            mdb_cursor_close(c);
            return say(err, errlen, FENNEC_EMALFORMED, "journal: a key that is not an index%s%s",
                       rc ? ": " : "", rc ? mdb_strerror(rc) : "");
        }
        if (j->first == 0 || j->last < j->first || j->last - j->first + 1 != st.ms_entries) {
            mdb_cursor_close(c);
            return say(err, errlen, FENNEC_EMALFORMED,
                       "journal: damaged: %zu entries between index %llu and %llu (a gap)",
                       (size_t)st.ms_entries, (unsigned long long)j->first,
                       (unsigned long long)j->last);
        }
        if (v.mv_size <= CRC_LEN) {
            mdb_cursor_close(c);
            return say(err, errlen, FENNEC_EMALFORMED, "journal: damaged: entry %llu is empty",
                       (unsigned long long)j->last);
        }
    }
    mdb_cursor_close(c);
    return 0;
}

/*
 * The child's walk: every key an index without gaps, every value's CRC right. Exits 0 (sound),
 * 2 (damaged, the reason written to FD) or dies of whatever LMDB does with a damaged page.
 */
static void verify_child(const char *dir, int fd)
{
    /* LMDB's own assertion message would only repeat what the parent reports. */
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0)
        dup2(null, STDERR_FILENO);
    char why[256] = "";
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NOLOCK, 0640);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (rc == 0)
        rc = mdb_cursor_open(txn, dbi, &c);
    uint64_t expect = 0, index = 0;
    while (rc == 0 && (rc = mdb_cursor_get(c, &k, &v, expect ? MDB_NEXT : MDB_FIRST)) == 0) {
        const uint8_t *data;
        size_t len;
        if (!key_get(&k, &index) || (expect && index != expect)) {
            snprintf(why, sizeof(why), "a key that is not the next index after %llu",
                     (unsigned long long)(expect ? expect - 1 : 0));
            break;
        }
        if (!value_entry(&v, &data, &len)) {
            snprintf(why, sizeof(why), "entry %llu does not match its checksum",
                     (unsigned long long)index);
            break;
        }
        expect = index + 1;
    }
    if (!why[0] && rc != 0 && rc != MDB_NOTFOUND)
        snprintf(why, sizeof(why), "%s", mdb_strerror(rc));
    if (why[0]) {
        ssize_t w = write(fd, why, strlen(why));
        (void)w;
        _exit(2);
    }
    _exit(0);
}

/* Walks the journal in DIR in a child process (see the top of this file). */
static int verify(const char *dir, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (access(path, F_OK) != 0)
        return 0; /* a new journal */
    int fds[2];
    if (pipe(fds) != 0)
        return say(err, errlen, -errno, "%s: %s", dir, strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return say(err, errlen, -e, "%s: cannot check the journal: %s", dir, strerror(e));
    }
    if (pid == 0) {
        close(fds[0]);
        verify_child(dir, fds[1]);
    }
    close(fds[1]);
    char why[256] = "";
    ssize_t n = read(fds[0], why, sizeof(why) - 1);
    why[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        snprintf(why, sizeof(why), "reading it stops with signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    return say(err, errlen, FENNEC_EMALFORMED, "%s: the journal is damaged: %s", dir,
               why[0] ? why : "it cannot be read");
}

int journal_open(const char *dir, size_t max_bytes, journal_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return say(err, errlen, -errno, "%s: %s", dir, strerror(errno));
    int vrc = verify(dir, err, errlen);
    if (vrc)
        return vrc;
    journal_t *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->max_bytes = max_bytes ? max_bytes : ((size_t)1 << 30);
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&j->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(j->env, j->max_bytes);
    if (rc == 0)
        rc = mdb_env_open(j->env, dir, MDB_NOTLS, 0640);
    if (rc == 0)
        rc = mdb_txn_begin(j->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &j->dbi);
    if (rc) {
        rc = say(err, errlen, from_mdb(rc), "%s: cannot open the journal: %s", dir,
                 mdb_strerror(rc));
        goto fail;
    }
    if ((rc = bounds_read(j, txn, err, errlen)) != 0)
        goto fail;
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        rc = say(err, errlen, from_mdb(rc), "%s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    *out = j;
    return 0;
fail:
    if (txn)
        mdb_txn_abort(txn);
    if (j->env)
        mdb_env_close(j->env);
    free(j);
    return rc;
}

int journal_set_relaxed(journal_t *j, bool relaxed)
{
    int rc = mdb_env_set_flags(j->env, MDB_NOMETASYNC, relaxed ? 1 : 0);
    return rc ? from_mdb(rc) : 0;
}

void journal_close(journal_t *j)
{
    if (!j)
        return;
    mdb_env_close(j->env);
    free(j);
}

/* Bytes of pages the entries occupy now (free pages not counted). */
static size_t used_bytes(journal_t *j)
{
    MDB_txn *txn = NULL;
    MDB_stat st;
    size_t used = 0;
    if (mdb_txn_begin(j->env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_stat(txn, j->dbi, &st) == 0)
            used = (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize;
        mdb_txn_abort(txn);
    }
    return used;
}

/* Appends stop at this share of the size: LMDB copies pages on write, so a compaction and
 * the free-page list need room of their own even in a journal that is "full". */
#define JOURNAL_FILL_PCT 80

/* Whether the file system of the journal lacks room for NEED more bytes (LMDB reports a
 * write cut short by a full disk as an I/O error). */
static bool disk_full(journal_t *j, size_t need)
{
    const char *path = NULL;
    struct statvfs st;
    if (mdb_env_get_path(j->env, &path) != 0 || statvfs(path, &st) != 0)
        return false;
    return (uint64_t)st.f_bavail * st.f_frsize < need + 64 * 1024;
}

int journal_append(journal_t *j, const journal_rec_t *recs, size_t count, char *err, size_t errlen)
{
    uint64_t next = j->last ? j->last + 1 : (count ? recs[0].index : 0);
    for (size_t i = 0; i < count; i++) {
        if (recs[i].index != next + i || recs[i].index == 0)
            return say(err, errlen, FENNEC_EMALFORMED,
                       "journal: entry %llu out of sequence (the next index is %llu)",
                       (unsigned long long)recs[i].index, (unsigned long long)(next + i));
        if (recs[i].len == 0)
            return say(err, errlen, FENNEC_EMALFORMED, "journal: entry %llu is empty",
                       (unsigned long long)recs[i].index);
    }
    if (count == 0)
        return 0;
    size_t incoming = 0;
    for (size_t i = 0; i < count; i++)
        incoming += recs[i].len + CRC_LEN + 64; /* key and node header, roughly */
    MDB_txn *txn = NULL;
    int rc = 0;
    if (used_bytes(j) + incoming > j->max_bytes / 100 * JOURNAL_FILL_PCT)
        rc = MDB_MAP_FULL;
    else
        rc = mdb_txn_begin(j->env, NULL, 0, &txn);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        uint8_t kb[8];
        key_put(kb, recs[i].index);
        MDB_val k = {sizeof(kb), kb}, v = {recs[i].len + CRC_LEN, NULL};
        rc = mdb_put(txn, j->dbi, &k, &v, MDB_APPEND | MDB_RESERVE);
        if (rc == 0) {
            uint8_t *p = v.mv_data;
            wire_put_u32(p, journal_crc32c(recs[i].data, recs[i].len));
            memcpy(p + CRC_LEN, recs[i].data, recs[i].len);
        }
    }
    if (rc) {
        if (txn)
            mdb_txn_abort(txn);
    } else {
        rc = mdb_txn_commit(txn); /* durable: LMDB syncs on commit */
    }
    if (rc == MDB_MAP_FULL)
        return say(err, errlen, FENNEC_ESPACE,
                   "journal: full (%d%% of %zu bytes): entries %llu..%llu refused; compact the "
                   "journal or raise its size",
                   JOURNAL_FILL_PCT, j->max_bytes, (unsigned long long)recs[0].index,
                   (unsigned long long)recs[count - 1].index);
    if (rc && disk_full(j, incoming))
        return say(err, errlen, -ENOSPC,
                   "journal: entries %llu..%llu not written: the disk of the data_dir is full "
                   "(%s)",
                   (unsigned long long)recs[0].index, (unsigned long long)recs[count - 1].index,
                   mdb_strerror(rc));
    if (rc)
        return say(err, errlen, from_mdb(rc), "journal: entries %llu..%llu not written: %s",
                   (unsigned long long)recs[0].index, (unsigned long long)recs[count - 1].index,
                   mdb_strerror(rc));
    if (!j->first)
        j->first = recs[0].index;
    j->last = recs[count - 1].index;
    j->entries += count;
    return 0;
}

int journal_read(journal_t *j, uint64_t from,
                 int (*fn)(uint64_t index, const uint8_t *data, size_t len, void *arg), void *arg)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    int rc = mdb_txn_begin(j->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_cursor_open(txn, j->dbi, &c);
    if (rc) {
        if (txn)
            mdb_txn_abort(txn);
        return from_mdb(rc);
    }
    uint8_t kb[8];
    key_put(kb, from);
    MDB_val k = {sizeof(kb), kb}, v;
    int out = 0;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    uint64_t expect = from, index = 0;
    bool first = true;
    while (rc == 0) {
        if (!key_get(&k, &index)) {
            out = FENNEC_EMALFORMED;
            break;
        }
        if (first && from != 0 && index != from) {
            out = FENNEC_ENOTFOUND; /* compacted away */
            break;
        }
        if (!first && index != expect) {
            out = FENNEC_EMALFORMED; /* a gap appeared: not written by this module */
            break;
        }
        first = false;
        expect = index + 1;
        const uint8_t *data;
        size_t len;
        if (!value_entry(&v, &data, &len)) {
            out = FENNEC_EDAMAGED;
            break;
        }
        if ((out = fn(index, data, len, arg)) != 0)
            break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (out == 0 && rc != 0 && rc != MDB_NOTFOUND)
        out = from_mdb(rc);
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return out;
}

int journal_compact(journal_t *j, uint64_t below, char *err, size_t errlen)
{
    if (!j->first || below <= j->first)
        return 0;
    if (below > j->last + 1)
        below = j->last + 1;
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    int rc = mdb_txn_begin(j->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_cursor_open(txn, j->dbi, &c);
    MDB_val k, v;
    size_t dropped = 0;
    while (rc == 0 && (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
        uint64_t index;
        if (!key_get(&k, &index) || index >= below)
            break;
        rc = mdb_cursor_del(c, 0);
        dropped++;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (c)
        mdb_cursor_close(c);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (rc)
        return say(err, errlen, from_mdb(rc), "journal: compaction below %llu failed: %s",
                   (unsigned long long)below, mdb_strerror(rc));
    j->entries -= dropped;
    j->first = j->entries ? below : 0;
    if (!j->entries)
        j->last = 0;
    return 0;
}

void journal_info_get(journal_t *j, journal_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->first = j->first;
    info->last = j->last;
    info->entries = j->entries;
    info->bytes_max = j->max_bytes;
    info->bytes_used = used_bytes(j);
}
