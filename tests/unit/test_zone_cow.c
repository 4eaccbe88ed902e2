/*
 * Differential test of zone changes (zone_edit() in node/zone.c). A zone changed record by
 * record with zone_edit() must answer every query byte for byte like the same records
 * loaded from scratch with zone_load_text(), and the versions it replaced, kept alive, must
 * go on answering as they did. A zone_edit() that rebuilds the whole zone defines right; a
 * store whose versions share untouched names is held to it.
 *
 * Changes are drawn by seeded generators from a small universe of names and rdata, so that
 * the cases that need care collide often: empty non-terminals, zone cuts with glue and
 * names below them, wildcards and names beside them, CNAME chains, loops and targets
 * outside the zone, NS/MX/SRV targets whose addresses come and go, RRsets too big for 512
 * bytes. A model of the records predicts what zone_edit() must refuse, and with which code.
 * The runs are deterministic: a failure names the seed and the edit, the changes of that
 * edit and the model's records, and the same seed gets there again.
 *
 * Each zone is built in 1 MiB arenas, which AddressSanitizer maps and unmaps one by one:
 * building a version, not asking it, is what the run time goes to, so the runs are counted
 * in edits and the changes come in batches as well as one by one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <libzscanner/scanner.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/query.h"
#include "fennec/wire.h"
#include "fennec/zone.h"
#include "testutil.h"

#define ORIGIN "example.com"

/* ---- the universe: record kinds with their rdata, and owners ---- */

enum { K_A, K_AAAA, K_TXT, K_MX, K_SRV, K_NS, K_CNAME, K_DS, K_COUNT };

#define POOL_MAX 9

/* A TXT record of BIG() holds 243 bytes: two of them do not fit in 512, three fit in 1232. */
#define X40    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define BIG(c) "\"" c X40 X40 X40 X40 X40 X40 "\""
#define DIGEST "2BB183AF5F22588179A53B0A98631FAD1A292118A8E9E09B4A8C2B7E6E0E0A5F"

typedef struct kind {
    uint16_t type;
    const char *name;
    const char *rdata[POOL_MAX]; /* master-file text relative to ORIGIN; unused ones NULL */
} kind_t;

static const kind_t g_kinds[K_COUNT] = {
    [K_A] = {WIRE_TYPE_A, "A", {"192.0.2.1", "192.0.2.2", "192.0.2.3"}},
    [K_AAAA] = {WIRE_TYPE_AAAA, "AAAA", {"2001:db8::1", "2001:db8::2"}},
    [K_TXT] = {WIRE_TYPE_TXT, "TXT", {"\"a\"", BIG("1"), BIG("2"), BIG("3")}},
    [K_MX] = {WIRE_TYPE_MX,
              "MX",
              {"10 mail", "20 t", "30 ns.sub", "40 ext.example.net.", "50 www"}},
    [K_SRV] = {WIRE_TYPE_SRV,
               "SRV",
               {"0 5 5060 mail", "1 5 5060 t", "2 5 5060 www", "3 5 5060 ext.example.net."}},
    [K_NS] = {WIRE_TYPE_NS, "NS", {"ns1", "ns.sub", "t", "ns.ext.example.net."}},
    [K_CNAME] = {WIRE_TYPE_CNAME,
                 "CNAME",
                 {"www", "chain1", "chain2", "alias", "a.b.c", "x.sub", "foo.w", "nothere",
                  "ext.example.net."}},
    [K_DS] = {WIRE_TYPE_DS, "DS", {"12345 13 2 " DIGEST, "54321 13 2 " DIGEST}},
};

#define M(k) (1u << (k))

typedef struct owner {
    const char *name; /* relative to ORIGIN; "@" is the apex */
    unsigned kinds;   /* M(K_*): the kinds the generator gives it */
} owner_t;

/* The apex comes first. */
static const owner_t g_owners[] = {
    {"@", M(K_A) | M(K_AAAA) | M(K_TXT) | M(K_MX) | M(K_NS) | M(K_CNAME)},
    {"www", M(K_A) | M(K_AAAA) | M(K_TXT) | M(K_MX) | M(K_CNAME)},
    {"mail", M(K_A) | M(K_AAAA)},
    {"ns1", M(K_A) | M(K_AAAA)},
    {"t", M(K_A) | M(K_AAAA) | M(K_TXT)},
    {"a.b.c", M(K_A) | M(K_TXT) | M(K_CNAME)}, /* b.c and c: empty non-terminals */
    {"b.c", M(K_A) | M(K_TXT) | M(K_NS)},
    {"sub", M(K_NS) | M(K_DS) | M(K_A) | M(K_TXT)},
    {"ns.sub", M(K_A) | M(K_AAAA)},
    {"x.sub", M(K_A) | M(K_NS) | M(K_DS)},
    {"deep.x.sub", M(K_A) | M(K_TXT)},
    {"*.sub", M(K_A)},
    {"w", M(K_A) | M(K_TXT)},
    {"*.w", M(K_A) | M(K_TXT) | M(K_MX) | M(K_CNAME)},
    {"exists.w", M(K_A) | M(K_TXT)},
    {"*", M(K_A) | M(K_AAAA) | M(K_TXT) | M(K_CNAME)},
    {"alias", M(K_CNAME) | M(K_A)},
    {"chain1", M(K_CNAME) | M(K_A)},
    {"chain2", M(K_CNAME) | M(K_TXT)},
    {"_sip._tcp", M(K_SRV) | M(K_TXT)},
    {"mx", M(K_MX) | M(K_A)},
};

#define OWNERS (sizeof(g_owners) / sizeof(g_owners[0]))

/* Names that are never owners: below existing names, below wildcards, below cuts. */
static const char *const g_absent[] = {
    "nx",         "nx.www",   "foo.w",   "bar.foo.w",     "foo",     "bar.foo",
    "c",          "_tcp",     "nx.b.c",  "nx.a.b.c",      "foo.sub", "nx.ns.sub",
    "a.exists.w", "nx.x.sub", "nothere", "nx.deep.x.sub", "x.alias",
};

#define ABSENT (sizeof(g_absent) / sizeof(g_absent[0]))

static const uint16_t g_qtypes[] = {
    WIRE_TYPE_A,   WIRE_TYPE_AAAA,  WIRE_TYPE_MX,  WIRE_TYPE_NS, WIRE_TYPE_SRV,
    WIRE_TYPE_TXT, WIRE_TYPE_CNAME, WIRE_TYPE_SOA, WIRE_TYPE_DS, WIRE_TYPE_ANY,
};

#define QTYPES  (sizeof(g_qtypes) / sizeof(g_qtypes[0]))
#define QUERIES ((OWNERS + ABSENT) * QTYPES * 2)
_Static_assert(OWNERS + ABSENT <= 64, "a name is a bit of a uint64_t");

/* The largest answer over UDP: the EDNS payload fennec offers. */
#define ANSWER_MAX 1232

static const uint32_t g_ttls[] = {0, 60, 300, 3600, 86400};

/* Wire forms, filled in by setup(). */
static uint8_t g_owner_wire[OWNERS][WIRE_NAME_MAX];
static uint8_t g_rdata[K_COUNT][POOL_MAX][512];
static uint16_t g_rdlen[K_COUNT][POOL_MAX];
static unsigned g_pool[K_COUNT]; /* rdata per kind */

typedef struct query {
    qbuf_t q;
    size_t cap; /* answer buffer: 512 without EDNS, to truncate as the client would */
    char what[320];
} query_t;

static query_t g_queries[QUERIES];

/* ---- the model: which records the zone holds ---- */

typedef struct model {
    bool has[OWNERS][K_COUNT][POOL_MAX];
    uint8_t count[OWNERS][K_COUNT];
    uint32_t ttl[OWNERS][K_COUNT]; /* of the RRset (RFC 2181 5.2): the last one added */
    size_t records;                /* SOA excluded */
    uint32_t serial;
} model_t;

/* One change: a record of the universe, or a change the model does not know (BAD), which
 * zone_edit() must refuse with FENNEC_EZONE. */
typedef struct edit {
    bool add;
    uint8_t owner, kind, rd;
    uint32_t ttl;
    const zone_change_t *bad;
} edit_t;

/* Applies one change as zone_edit() must; returns its code (M is then unchanged). */
static int model_change(model_t *m, const edit_t *e)
{
    if (e->bad)
        return FENNEC_EZONE;
    bool *has = &m->has[e->owner][e->kind][e->rd];
    if (e->add == *has)
        return e->add ? FENNEC_EEXISTS : FENNEC_ENOTFOUND;
    *has = e->add;
    if (e->add) {
        m->count[e->owner][e->kind]++;
        m->ttl[e->owner][e->kind] = e->ttl;
        m->records++;
    } else {
        m->count[e->owner][e->kind]--;
        m->records--;
    }
    return 0;
}

/* The zone rules, on the result of a whole batch. */
static int model_check(const model_t *m)
{
    for (size_t o = 0; o < OWNERS; o++) {
        unsigned cname = m->count[o][K_CNAME];
        bool other = o == 0; /* the apex has its SOA */
        for (int k = 0; k < K_COUNT; k++)
            other |= k != K_CNAME && m->count[o][k] > 0;
        if (cname > 1 || (cname && other))
            return FENNEC_EZONE;
    }
    return m->count[0][K_NS] ? 0 : FENNEC_EZONE;
}

/* Applies a batch to M as zone_edit() must: each change in order, then the rules on the
 * result, then the serial. Returns the code zone_edit() must give; M is meaningless then. */
static int model_apply(model_t *m, const edit_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = model_change(m, &e[i]);
        if (rc)
            return rc;
    }
    int rc = model_check(m);
    if (rc == 0)
        m->serial++; /* RFC 1982: wraps from 4294967295 to 0 */
    return rc;
}

/* The model as a master file, each record with the TTL of its RRset. */
static void model_text(const model_t *m, uint32_t serial, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap,
                                "$ORIGIN " ORIGIN ".\n"
                                "@ 3600 SOA ns1 hostmaster %" PRIu32 " 7200 3600 1209600 300\n",
                                serial);
    for (size_t w = 0; w < OWNERS; w++)
        for (int k = 0; k < K_COUNT; k++)
            for (unsigned d = 0; d < g_pool[k]; d++) {
                if (!m->has[w][k][d])
                    continue;
                assert_true(o < cap);
                o += (size_t)snprintf(out + o, cap - o, "%s %" PRIu32 " %s %s\n", g_owners[w].name,
                                      m->ttl[w][k], g_kinds[k].name, g_kinds[k].rdata[d]);
            }
    assert_true(o < cap);
}

/* ---- one run: a zone, its model, the versions kept alive ---- */

#define BATCH_MAX 64 /* changes in one zone_edit() */
#define KEEP      4  /* versions kept alive after they are replaced, checked again when dropped */

typedef struct version {
    zone_set_t *set;
    uint8_t *ans; /* QUERIES answers of ANSWER_MAX bytes */
    uint16_t *len;
    size_t made; /* the number of the edit that made it (0: the first load) */
} version_t;

typedef struct run {
    uint64_t seed;
    uint64_t rng;
    bool ttl_rule;     /* adds may give an RRset a new TTL */
    unsigned accepted; /* edits accepted */
    model_t model;
    bool applied; /* the model holds the batch being checked */
    version_t cur;
    version_t old[KEEP]; /* a ring; set NULL when empty */
    unsigned old_next;
    version_t scratch;
    version_t replica; /* a second line, kept equal by applying zone_diff() of each edit */
    query_ctx_t *ctx;
    char batch[16384]; /* the batch being applied, for messages */
    /* what was checked */
    size_t changes, changes_refused, edits, edits_refused, answers;
    size_t truncated, referrals, nxdomain, nodata, additional; /* answers of the versions */
} run_t;

static char g_text[65536];

static void run_fail(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fails the test, saying how to get back here: seed, edit, batch and the model's zone. */
static void run_fail(run_t *r, const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    model_text(&r->model, r->model.serial, g_text, sizeof(g_text));
    print_message("the model's records %s the batch:\n%s", r->applied ? "after" : "before", g_text);
    fail_msg("seed %" PRIu64 ", edit %zu: %s; the changes: [%s]", r->seed, r->edits, msg, r->batch);
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned rng_below(run_t *r, unsigned n)
{
    return (unsigned)(rng_next(&r->rng) % n);
}

static void version_alloc(version_t *v)
{
    v->set = NULL;
    v->ans = malloc((size_t)QUERIES * ANSWER_MAX);
    v->len = malloc(QUERIES * sizeof(*v->len));
    assert_non_null(v->ans);
    assert_non_null(v->len);
}

static void version_release(version_t *v)
{
    zone_set_free(v->set);
    free(v->ans);
    free(v->len);
    memset(v, 0, sizeof(*v));
}

/* A set around Z, which it takes over. */
static zone_set_t *set_of(zone_t *z)
{
    zone_set_t *set = NULL;
    assert_int_equal(zone_set_new(&z, 1, &set), 0);
    zone_unref(z);
    return set;
}

#define ALL_NAMES UINT64_MAX

/* Whether query I asks one of NAMES (a bit per owner, then per absent name). */
static bool query_in(size_t i, uint64_t names)
{
    return names >> (i / (QTYPES * 2)) & 1;
}

/* Asks the queries of NAMES from V's set, recording the answers in V. */
static void version_ask(run_t *r, version_t *v, uint64_t names)
{
    static uint8_t out[QUERY_MAX_ANSWER];
    for (size_t i = 0; i < QUERIES; i++) {
        const query_t *q = &g_queries[i];
        if (!query_in(i, names))
            continue;
        size_t n = query_answer_set(r->ctx, v->set, q->q.b, q->q.len, out, q->cap, QUERY_UDP);
        if (n < WIRE_HEADER_LEN || n > ANSWER_MAX)
            run_fail(r, "%s: an answer of %zu bytes", q->what, n);
        memcpy(v->ans + i * ANSWER_MAX, out, n);
        v->len[i] = (uint16_t)n;
    }
}

/* Counts the kinds of answers R's current version gave, to show what the runs reach. */
static void run_tally(run_t *r)
{
    for (size_t i = 0; i < QUERIES; i++) {
        const uint8_t *a = r->cur.ans + i * ANSWER_MAX;
        uint16_t flags = wire_get_u16(a + 2), an = wire_get_u16(a + 6), ns = wire_get_u16(a + 8);
        bool edns = g_queries[i].cap != 512;
        r->truncated += (flags & WIRE_FLAG_TC) != 0;
        r->nxdomain += (flags & 0xF) == WIRE_RCODE_NXDOMAIN;
        r->referrals += (flags & 0xF) == 0 && !(flags & WIRE_FLAG_AA) && ns > 0;
        r->nodata += (flags & 0xF) == 0 && (flags & WIRE_FLAG_AA) && an == 0 && ns > 0;
        r->additional += wire_get_u16(a + 10) > edns;
    }
}

/* Names the first difference between two answers to query I, in a few words. */
static void describe_diff(const version_t *a, const version_t *b, size_t i, char *out, size_t cap)
{
    static resp_t ra, rb;
    ra.len = a->len[i];
    rb.len = b->len[i];
    memcpy(ra.b, a->ans + i * ANSWER_MAX, ra.len);
    memcpy(rb.b, b->ans + i * ANSWER_MAX, rb.len);
    testutil_answer_parse(&ra);
    testutil_answer_parse(&rb);
    size_t o = (size_t)snprintf(
        out, cap, "%zu/%zu bytes, flags %04x/%04x, counts %u.%u.%u/%u.%u.%u", ra.len, rb.len,
        ra.flags, rb.flags, ra.an, ra.ns, ra.ar, rb.an, rb.ns, rb.ar);
    int n = ra.nrr < rb.nrr ? ra.nrr : rb.nrr;
    for (int k = 0; k < n; k++) {
        const rr_t *x = &ra.rr[k], *y = &rb.rr[k];
        char xo[WIRE_NAME_TEXT_MAX], yo[WIRE_NAME_TEXT_MAX];
        if (x->sec == y->sec && x->type == y->type && x->ttl == y->ttl && x->rdlen == y->rdlen &&
            wire_name_equal(x->owner, y->owner) &&
            memcmp(ra.b + x->rdoff, rb.b + y->rdoff, x->rdlen) == 0)
            continue;
        wire_name_to_text(x->owner, xo);
        wire_name_to_text(y->owner, yo);
        snprintf(out + o, cap - o,
                 "; record %d: section %d %s type %u ttl %" PRIu32 " rdlen %u / section %d "
                 "%s type %u ttl %" PRIu32 " rdlen %u",
                 k, x->sec, xo, x->type, x->ttl, x->rdlen, y->sec, yo, y->type, y->ttl, y->rdlen);
        return;
    }
}

/* Every answer of GOT to the queries of NAMES must be the one of WANT, byte for byte. */
static void version_expect(run_t *r, const version_t *got, const version_t *want, uint64_t names,
                           const char *what)
{
    for (size_t i = 0; i < QUERIES; i++) {
        if (!query_in(i, names))
            continue;
        r->answers++;
        if (got->len[i] == want->len[i] &&
            memcmp(got->ans + i * ANSWER_MAX, want->ans + i * ANSWER_MAX, got->len[i]) == 0)
            continue;
        char diff[4096] = "";
        print_message("seed %" PRIu64 ", edit %zu: %s: %s differ\n", r->seed, r->edits, what,
                      g_queries[i].what);
        describe_diff(got, want, i, diff, sizeof(diff));
        run_fail(r, "%s: answers to %s differ: %s", what, g_queries[i].what, diff);
    }
}

/* Asks V again the queries of NAMES and expects the answers it gave when it was made. */
static void version_recheck(run_t *r, const version_t *v, uint64_t names, const char *what)
{
    static version_t again;
    if (!again.ans)
        version_alloc(&again); /* kept for the whole process */
    again.set = v->set;
    version_ask(r, &again, names);
    char label[96];
    snprintf(label, sizeof(label), "%s (the version of edit %zu)", what, v->made);
    version_expect(r, &again, v, names, label);
}

/* What a journal entry holds: removed and added records, copied. */
typedef struct diff_copy {
    zone_change_t ch[4096];
    uint8_t owner[4096][WIRE_NAME_MAX];
    uint8_t rdata[4096][600];
    size_t n;
    bool adds_started, order_broken;
} diff_copy_t;

static int diff_copy_one(const zone_change_t *c, void *arg)
{
    diff_copy_t *d = arg;
    if (d->n == 4096 || c->rdlen > 600)
        return -ENOSPC;
    if (c->add)
        d->adds_started = true;
    else if (d->adds_started)
        d->order_broken = true;
    int l = wire_name_len(c->owner, WIRE_NAME_MAX);
    memcpy(d->owner[d->n], c->owner, (size_t)l);
    memcpy(d->rdata[d->n], c->rdata, c->rdlen);
    d->ch[d->n] = *c;
    d->ch[d->n].owner = d->owner[d->n];
    d->ch[d->n].rdata = d->rdata[d->n];
    d->n++;
    return 0;
}

static diff_copy_t g_diff, g_whole;

/*
 * A replica follows by differences, as a secondary does: zone_diff(OLD, NEW) applied to the
 * replica's newest version (another line, loaded on its own) must answer exactly as NEW; and
 * NEW rebuilt from its records (zone_records(), zone_from_records()) too.
 */
static void run_replicate(run_t *r, const zone_t *old, const zone_t *z)
{
    char err[512];
    g_diff.n = 0;
    g_diff.adds_started = g_diff.order_broken = false;
    if (zone_diff(old, z, diff_copy_one, &g_diff) != 0)
        run_fail(r, "zone_diff failed");
    if (g_diff.order_broken)
        run_fail(r, "zone_diff gave a removed record after an added one");
    zone_t *base = (zone_t *)zone_set_at(r->replica.set, 0), *next = NULL;
    zone_update_t *up = NULL;
    int rc =
        zone_update_begin(base, ZONE_UPDATE_SOA | ZONE_UPDATE_KEEP_SERIAL, &up, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < g_diff.n; i++)
        rc = zone_update_apply(up, &g_diff.ch[i], err, sizeof(err));
    rc = rc ? (zone_update_abort(up), rc) : zone_update_commit(up, &next, err, sizeof(err));
    if (rc != 0)
        run_fail(r, "the difference (%zu records) does not apply to the replica: %s", g_diff.n,
                 err);
    if (zone_serial(next) != zone_serial(z) || zone_record_count(next) != zone_record_count(z))
        run_fail(r, "replica: serial %u, %zu records; primary: serial %u, %zu records",
                 zone_serial(next), zone_record_count(next), zone_serial(z), zone_record_count(z));
    zone_set_free(r->replica.set);
    r->replica.set = set_of(next);
    version_ask(r, &r->replica, ALL_NAMES);
    version_expect(r, &r->replica, &r->cur, ALL_NAMES, "the replica following by differences");

    g_whole.n = 0;
    if (zone_records(z, diff_copy_one, &g_whole) != 0 || g_whole.n != zone_record_count(z))
        run_fail(r, "zone_records gave %zu of %zu records", g_whole.n, zone_record_count(z));
    zone_t *w = NULL;
    if (zone_from_records(ORIGIN, g_whole.ch, g_whole.n, "entry", &w, err, sizeof(err)) != 0)
        run_fail(r, "the zone's own records do not make a zone: %s", err);
    zone_set_free(r->scratch.set);
    r->scratch.set = set_of(w);
    version_ask(r, &r->scratch, ALL_NAMES);
    version_expect(r, &r->scratch, &r->cur, ALL_NAMES, "the zone rebuilt from its records");
}

/* Loads the model from scratch into r->scratch and expects R's current version to answer
 * exactly as it does. */
static void run_compare_scratch(run_t *r)
{
    char err[512];
    zone_t *z = NULL;
    uint32_t serial = zone_serial(zone_set_at(r->cur.set, 0));
    model_text(&r->model, serial, g_text, sizeof(g_text));
    if (zone_load_text(ORIGIN, g_text, strlen(g_text), "scratch.zone", &z, err, sizeof(err)))
        run_fail(r, "the model does not load: %s", err);
    zone_set_free(r->scratch.set);
    r->scratch.set = set_of(z);
    size_t want = zone_record_count(z), got = zone_record_count(zone_set_at(r->cur.set, 0));
    if (got != want || want != r->model.records + 1)
        run_fail(r, "%zu records, loaded from scratch %zu, in the model %zu + SOA", got, want,
                 r->model.records);
    version_ask(r, &r->scratch, ALL_NAMES);
    version_expect(r, &r->cur, &r->scratch, ALL_NAMES,
                   "edited zone against the zone loaded from scratch");
}

static void run_init(run_t *r, uint64_t seed, uint32_t serial, bool ttl_rule)
{
    memset(r, 0, sizeof(*r));
    r->seed = seed;
    r->rng = seed;
    r->ttl_rule = ttl_rule;
    r->model.serial = serial;
    /* The smallest valid zone: SOA, NS ns1 at the apex, the address of ns1. */
    r->model.has[0][K_NS][0] = true;
    r->model.count[0][K_NS] = 1;
    r->model.ttl[0][K_NS] = 3600;
    r->model.has[3][K_A][0] = true;
    r->model.count[3][K_A] = 1;
    r->model.ttl[3][K_A] = 3600;
    r->model.records = 2;
    assert_string_equal(g_owners[3].name, "ns1");
    r->ctx = query_ctx_new();
    assert_non_null(r->ctx);
    version_alloc(&r->cur);
    version_alloc(&r->scratch);
    version_alloc(&r->replica);
    char err[512];
    zone_t *z = NULL;
    model_text(&r->model, serial, g_text, sizeof(g_text));
    if (zone_load_text(ORIGIN, g_text, strlen(g_text), "start.zone", &z, err, sizeof(err)))
        fail_msg("%s", err);
    r->cur.set = set_of(z);
    if (zone_load_text(ORIGIN, g_text, strlen(g_text), "start.zone", &z, err, sizeof(err)))
        fail_msg("%s", err);
    r->replica.set = set_of(z);
    version_ask(r, &r->cur, ALL_NAMES);
    run_tally(r);
}

static void run_deinit(run_t *r)
{
    /* The versions still alive answer as they did, newest first. */
    for (unsigned i = 0; i < KEEP; i++) {
        version_t *v = &r->old[(r->old_next + KEEP - 1 - i) % KEEP];
        if (!v->set)
            continue;
        version_recheck(r, v, ALL_NAMES, "a version kept alive");
        version_release(v);
    }
    version_release(&r->cur);
    version_release(&r->scratch);
    version_release(&r->replica);
    query_ctx_free(r->ctx);
}

static void edit_text(const edit_t *e, char *out, size_t cap)
{
    char owner[WIRE_NAME_TEXT_MAX];
    if (e->bad) {
        wire_name_to_text(e->bad->owner, owner);
        snprintf(out, cap, "%c%s type %u (%u bytes of rdata, refused)", e->bad->add ? '+' : '-',
                 owner, e->bad->type, e->bad->rdlen);
        return;
    }
    snprintf(out, cap, "%c%s %" PRIu32 " %s %s", e->add ? '+' : '-', g_owners[e->owner].name,
             e->ttl, g_kinds[e->kind].name, g_kinds[e->kind].rdata[e->rd]);
}

/*
 * Applies a batch with zone_edit() and checks everything that follows: the code the model
 * predicts, a message when refused, the serial, the old version answering as before, the
 * new one answering as the same records loaded from scratch. Returns the code; the message
 * is left in ERR.
 */
static int run_edit(run_t *r, const edit_t *e, size_t n, char *err, size_t errlen)
{
    zone_change_t ch[BATCH_MAX];
    assert_true(n <= sizeof(ch) / sizeof(ch[0]));
    size_t o = 0;
    r->batch[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].bad) {
            ch[i] = *e[i].bad;
        } else {
            ch[i] = (zone_change_t){.add = e[i].add,
                                    .owner = g_owner_wire[e[i].owner],
                                    .type = g_kinds[e[i].kind].type,
                                    .ttl = e[i].ttl,
                                    .rdata = g_rdata[e[i].kind][e[i].rd],
                                    .rdlen = g_rdlen[e[i].kind][e[i].rd]};
        }
        char t[1280];
        edit_text(&e[i], t, sizeof(t));
        o += (size_t)snprintf(r->batch + o, sizeof(r->batch) - o, "%s%s", i ? "; " : "", t);
        assert_true(o < sizeof(r->batch));
    }
    r->applied = false;
    model_t next = r->model;
    int want = model_apply(&next, e, n);
    zone_t *old = (zone_t *)zone_set_at(r->cur.set, 0); /* the newest version: it takes updates */
    uint32_t old_serial = zone_serial(old);
    zone_t *z = NULL;
    err[0] = 0;
    int rc = zone_edit(old, ch, n, &z, err, errlen);
    r->changes += n;
    r->edits++;
    if (rc != want)
        run_fail(r, "zone_edit gave %d (%s: %s), the model %d (%s)", rc, fennec_strerror(rc), err,
                 want, fennec_strerror(want));
    if (zone_serial(old) != old_serial)
        run_fail(r, "the old version's serial moved from %" PRIu32 " to %" PRIu32, old_serial,
                 zone_serial(old));
    if (rc != 0) {
        if (z)
            run_fail(r, "a refused change returned a zone");
        if (!err[0])
            run_fail(r, "refused (%s) without a message", fennec_strerror(rc));
        r->changes_refused += n;
        r->edits_refused++;
        /* Every answer is asked again at the next accepted change; here the names that
         * were touched, and the apex (its SOA is in every negative answer). */
        uint64_t names = 1;
        for (size_t i = 0; i < n; i++)
            names |= e[i].bad ? 0 : (uint64_t)1 << e[i].owner;
        version_recheck(r, &r->cur, names, "the zone after a refused change");
        return rc;
    }
    if (zone_serial(z) != next.serial)
        run_fail(r, "serial %" PRIu32 " after %" PRIu32 ", expected %" PRIu32, zone_serial(z),
                 old_serial, next.serial);
    r->model = next;
    r->applied = true;
    r->accepted++;
    /* The replaced version joins the ring of versions kept alive; the one it evicts is
     * asked once more and dropped while newer versions are still in use. */
    version_t *slot = &r->old[r->old_next];
    r->old_next = (r->old_next + 1) % KEEP;
    if (slot->set) {
        version_recheck(r, slot, ALL_NAMES, "a version kept alive, before it is dropped");
        zone_set_free(slot->set);
        slot->set = NULL;
    } else {
        version_alloc(slot);
    }
    version_t prev = r->cur;
    r->cur = *slot;
    *slot = prev;
    r->cur.set = set_of(z);
    r->cur.made = r->edits;
    version_recheck(r, slot, ALL_NAMES, "the version replaced");
    version_ask(r, &r->cur, ALL_NAMES);
    run_tally(r);
    run_replicate(r, zone_set_at(slot->set, 0), z);
    run_compare_scratch(r);
    return 0;
}

/* ---- changes the model does not know ---- */

static const uint8_t g_apex_wire[] = "\007example\003com";

static const zone_change_t *soa_change(void)
{
    static const uint8_t rd[] = "\003ns1\007example\003com\000"
                                "\012hostmaster\007example\003com\000"
                                "\000\000\000\001\000\000\034\040\000\000\016\020"
                                "\000\022\165\000\000\000\001\054";
    static const zone_change_t ch = {.add = true,
                                     .owner = g_apex_wire,
                                     .type = WIRE_TYPE_SOA,
                                     .ttl = 3600,
                                     .rdata = rd,
                                     .rdlen = sizeof(rd) - 1};
    return &ch;
}

static const uint8_t g_www_net[] = "\003www\007example\003net";
static const uint8_t g_www_com[] = "\003www\007example\003com";
static const uint8_t g_addr[] = {192, 0, 2, 9};

/* An owner outside the zone. */
static const zone_change_t g_outside = {.add = true,
                                        .owner = g_www_net,
                                        .type = WIRE_TYPE_A,
                                        .ttl = 300,
                                        .rdata = g_addr,
                                        .rdlen = sizeof(g_addr)};

/* An A record of three bytes. */
static const zone_change_t g_short_a = {
    .add = true, .owner = g_www_com, .type = WIRE_TYPE_A, .ttl = 300, .rdata = g_addr, .rdlen = 3};

/* ---- the generator ---- */

/* A record of the universe at random. */
static void random_record(run_t *r, edit_t *e)
{
    e->owner = (uint8_t)rng_below(r, OWNERS);
    unsigned kinds = g_owners[e->owner].kinds;
    unsigned pick = rng_below(r, (unsigned)__builtin_popcount(kinds));
    for (e->kind = 0; !(kinds & M(e->kind)) || pick--; e->kind++)
        ;
    e->rd = (uint8_t)rng_below(r, g_pool[e->kind]);
}

/* The TTL of an add: without the TTL rule, the RRset's own when it has records, so that
 * the RRset's TTL does not depend on which rule the zone applies. */
static void random_ttl_for(run_t *r, const model_t *w, edit_t *e)
{
    e->ttl = g_ttls[rng_below(r, sizeof(g_ttls) / sizeof(g_ttls[0]))];
    if (!r->ttl_rule && w->count[e->owner][e->kind])
        e->ttl = w->ttl[e->owner][e->kind];
}

/* Whether adding E to W keeps a CNAME alone at its name. */
static bool cname_ok(const model_t *w, const edit_t *e)
{
    if (e->kind != K_CNAME)
        return w->count[e->owner][K_CNAME] == 0;
    if (e->owner == 0)
        return false;
    for (int k = 0; k < K_COUNT; k++)
        if (w->count[e->owner][k])
            return false;
    return true;
}

/* The NTH record of W (in universe order). */
static void nth_record(const model_t *w, size_t nth, edit_t *e)
{
    for (size_t o = 0; o < OWNERS; o++)
        for (int k = 0; k < K_COUNT; k++)
            for (unsigned d = 0; d < g_pool[k]; d++)
                if (w->has[o][k][d] && nth-- == 0) {
                    e->owner = (uint8_t)o;
                    e->kind = (uint8_t)k;
                    e->rd = (uint8_t)d;
                    return;
                }
    fail_msg("the model has no record %zu", nth);
}

/* Applies E to the working model W when it is valid on its own. */
static void working_apply(model_t *w, const edit_t *e)
{
    model_t t = *w;
    if (model_change(&t, e) == 0)
        *w = t;
}

/* Changes that zone_edit() must refuse, alone or in any batch (at most ROOM; returns how
 * many): mostly one change, the deletes of every NS of the apex for that rule. */
static size_t random_bad(run_t *r, model_t *w, edit_t *e, size_t room)
{
    memset(e, 0, sizeof(*e));
    e->ttl = 300;
    switch (rng_below(r, 7)) {
    case 0: /* a record that is there, again */
        if (!w->records)
            goto soa;
        nth_record(w, rng_below(r, (unsigned)w->records), e);
        e->add = true;
        random_ttl_for(r, w, e);
        break;
    case 1: /* the delete of a record that is not there */
        for (int tries = 0; tries < 64; tries++) {
            random_record(r, e);
            if (!w->has[e->owner][e->kind][e->rd])
                break;
        }
        if (w->has[e->owner][e->kind][e->rd])
            goto soa;
        break;
    case 2: /* CNAME beside other data, a second CNAME, data beside a CNAME */
        for (int tries = 0; tries < 64; tries++) {
            random_record(r, e);
            e->add = true;
            if (!w->has[e->owner][e->kind][e->rd] && !cname_ok(w, e))
                break;
        }
        if (w->has[e->owner][e->kind][e->rd] || cname_ok(w, e))
            goto soa;
        random_ttl_for(r, w, e);
        break;
    case 3:
        e->bad = &g_outside;
        return 1;
    case 4:
        e->bad = &g_short_a;
        return 1;
    case 5: { /* every NS of the apex away */
        size_t n = 0;
        if (w->count[0][K_NS] > room)
            goto soa;
        for (unsigned d = 0; d < g_pool[K_NS]; d++)
            if (w->has[0][K_NS][d])
                e[n++] = (edit_t){.owner = 0, .kind = K_NS, .rd = (uint8_t)d, .ttl = 60};
        for (size_t i = 0; i < n; i++)
            working_apply(w, &e[i]);
        return n;
    }
    default:
    soa:
        memset(e, 0, sizeof(*e));
        e->bad = soa_change();
        return 1;
    }
    working_apply(w, e);
    return 1;
}

/*
 * Valid changes for W, the model as the batch has left it so far (at most ROOM; returns
 * how many): the delete of a record that is there or the add of one that is not and keeps
 * the CNAME rule; now and then data replaced by a CNAME or a CNAME by data in one go,
 * which breaks the rule half way but not at the end.
 */
static size_t random_good(run_t *r, model_t *w, edit_t *e, size_t room)
{
    unsigned p = rng_below(r, 100);
    memset(e, 0, sizeof(*e));
    if (p < 6 && room >= 2) {
        random_record(r, e);
        unsigned o = e->owner, have = 0, kinds = 0;
        for (int k = 0; k < K_COUNT; k++) {
            have += w->count[o][k];
            kinds |= w->count[o][k] ? M(k) : 0;
        }
        if (o != 0 && (g_owners[o].kinds & M(K_CNAME)) && have + 1 <= room && have > 0) {
            /* Whatever is at the name, replaced by what it may hold instead. */
            size_t n = 0;
            edit_t add = {.add = true, .owner = (uint8_t)o};
            if (kinds == M(K_CNAME)) {
                unsigned other = g_owners[o].kinds & ~M(K_CNAME);
                for (add.kind = 0; !(other & M(add.kind)); add.kind++)
                    ;
            } else {
                add.kind = K_CNAME;
            }
            add.rd = (uint8_t)rng_below(r, g_pool[add.kind]);
            random_ttl_for(r, w, &add);
            e[n++] = add;
            for (int k = 0; k < K_COUNT; k++)
                for (unsigned d = 0; d < g_pool[k]; d++)
                    if (w->has[o][k][d])
                        e[n++] = (edit_t){
                            .owner = (uint8_t)o, .kind = (uint8_t)k, .rd = (uint8_t)d, .ttl = 3600};
            for (size_t i = 0; i < n; i++)
                working_apply(w, &e[i]);
            return n;
        }
    }
    if (p < 50 && w->records > 1) {
        nth_record(w, rng_below(r, (unsigned)w->records), e);
        e->ttl = 86400; /* a delete matches whatever the TTL */
        if (!(e->owner == 0 && e->kind == K_NS && w->count[0][K_NS] == 1)) {
            working_apply(w, e);
            return 1;
        }
    }
    for (int tries = 0; tries < 32; tries++) {
        memset(e, 0, sizeof(*e));
        random_record(r, e);
        e->add = true;
        if (!w->has[e->owner][e->kind][e->rd] && cname_ok(w, e)) {
            random_ttl_for(r, w, e);
            working_apply(w, e);
            return 1;
        }
    }
    /* A full zone: make room. */
    nth_record(w, rng_below(r, (unsigned)w->records), e);
    e->add = false;
    working_apply(w, e);
    return 1;
}

/* A single change, a small batch or a large one; one in three holds changes that must be
 * refused. */
static size_t random_batch(run_t *r, edit_t *e)
{
    unsigned p = rng_below(r, 10);
    size_t n = p < 4 ? 1 : p < 7 ? 2 + rng_below(r, 7) : 9 + rng_below(r, BATCH_MAX - 16);
    size_t bad_at = rng_below(r, 3) == 0 ? rng_below(r, (unsigned)n) : n;
    model_t w = r->model;
    size_t i = 0;
    while (i < n) {
        if (i == bad_at)
            i += random_bad(r, &w, &e[i], BATCH_MAX - i);
        else
            i += random_good(r, &w, &e[i], n - i);
    }
    return i;
}

/* Applies EDITS random batches. */
static void run_random(run_t *r, size_t edits)
{
    edit_t e[BATCH_MAX];
    char err[512];
    for (size_t k = 0; k < edits; k++) {
        size_t n = random_batch(r, e);
        run_edit(r, e, n, err, sizeof(err));
    }
}

static void run_report(const run_t *r, const char *what)
{
    print_message("%s, seed %" PRIu64 ": %zu changes in %zu edits (%zu changes in %zu edits "
                  "refused), serial %" PRIu32 ", %zu records at the end; %zu answers compared; "
                  "the versions gave %zu truncated answers, %zu referrals, %zu NXDOMAIN, %zu "
                  "NODATA, %zu with additional records\n",
                  what, r->seed, r->changes, r->edits, r->changes_refused, r->edits_refused,
                  r->model.serial, r->model.records, r->answers, r->truncated, r->referrals,
                  r->nxdomain, r->nodata, r->additional);
}

/* ---- setup: wire forms of the universe, the queries ---- */

typedef struct pool_fill {
    int kind;
    unsigned rd;
    int err;
} pool_fill_t;

static void pool_record(zs_scanner_t *s)
{
    pool_fill_t *f = s->process.data;
    while (f->rd == g_pool[f->kind]) {
        f->kind++;
        f->rd = 0;
    }
    if (f->kind >= K_COUNT || s->r_type != g_kinds[f->kind].type ||
        s->r_data_length > sizeof(g_rdata[0][0])) {
        f->err = 1;
        s->state = ZS_STATE_STOP;
        return;
    }
    memcpy(g_rdata[f->kind][f->rd], s->r_data, s->r_data_length);
    g_rdlen[f->kind][f->rd] = (uint16_t)s->r_data_length;
    f->rd++;
}

static void pool_error(zs_scanner_t *s)
{
    pool_fill_t *f = s->process.data;
    fprintf(stderr, "rdata pool, line %" PRIu64 ": %s\n", s->line_counter,
            zs_strerror(s->error.code));
    f->err = 1;
    s->state = ZS_STATE_STOP;
}

static int setup(void **state)
{
    (void)state;
    size_t o = 0;
    for (int k = 0; k < K_COUNT; k++) {
        for (g_pool[k] = 0; g_pool[k] < POOL_MAX && g_kinds[k].rdata[g_pool[k]]; g_pool[k]++)
            o += (size_t)snprintf(g_text + o, sizeof(g_text) - o, "@ %s %s\n", g_kinds[k].name,
                                  g_kinds[k].rdata[g_pool[k]]);
    }
    /* The rdata of the universe in wire form, read by the zone file scanner. */
    zs_scanner_t *s = malloc(sizeof(*s));
    pool_fill_t f = {0, 0, 0};
    if (!s || zs_init(s, ORIGIN ".", WIRE_CLASS_IN, 3600) != 0 ||
        zs_set_input_string(s, g_text, o) != 0 ||
        zs_set_processing(s, pool_record, pool_error, &f) != 0 || zs_parse_all(s) != 0 || f.err ||
        f.kind != K_COUNT - 1 || f.rd != g_pool[K_COUNT - 1]) {
        fprintf(stderr, "cannot read the rdata pool\n");
        return -1;
    }
    zs_deinit(s);
    free(s);

    size_t q = 0;
    for (size_t n = 0; n < OWNERS + ABSENT; n++) {
        const char *rel = n < OWNERS ? g_owners[n].name : g_absent[n - OWNERS];
        char name[256];
        if (strcmp(rel, "@") == 0)
            snprintf(name, sizeof(name), "%s", ORIGIN);
        else
            snprintf(name, sizeof(name), "%s.%s", rel, ORIGIN);
        if (n < OWNERS) {
            int l = wire_name_from_text(name, g_owner_wire[n]);
            if (l < 0)
                return -1;
        }
        for (size_t t = 0; t < QTYPES; t++) {
            for (int edns = 0; edns < 2; edns++) {
                query_t *qq = &g_queries[q];
                testutil_query_make(&qq->q, (uint16_t)q, 0, name, g_qtypes[t], WIRE_CLASS_IN);
                if (edns)
                    testutil_query_add_opt(&qq->q, 1232, 0);
                qq->cap = edns ? QUERY_MAX_ANSWER : 512;
                snprintf(qq->what, sizeof(qq->what), "%s type %u %s", name, g_qtypes[t],
                         edns ? "EDNS" : "512");
                q++;
            }
        }
    }
    assert_int_equal(q, QUERIES);
    return 0;
}

/* ---- building edits by name ---- */

static unsigned owner_index(const char *name)
{
    for (unsigned i = 0; i < OWNERS; i++)
        if (strcmp(g_owners[i].name, name) == 0)
            return i;
    fail_msg("no owner %s in the universe", name);
    return 0;
}

static edit_t rec(bool add, const char *owner, int kind, const char *rdata, uint32_t ttl)
{
    edit_t e = {
        .add = add, .owner = (uint8_t)owner_index(owner), .kind = (uint8_t)kind, .ttl = ttl};
    for (e.rd = 0; e.rd < g_pool[kind]; e.rd++)
        if (strcmp(g_kinds[kind].rdata[e.rd], rdata) == 0)
            return e;
    fail_msg("no %s %s in the universe", g_kinds[kind].name, rdata);
    return e;
}

#define ADD(o, k, rd, ttl) rec(true, o, k, rd, ttl)
#define DEL(o, k, rd)      rec(false, o, k, rd, 0)

static void expect_words(const char *err, const char *w1, const char *w2)
{
    if (!strstr(err, w1) || (w2 && !strstr(err, w2)))
        fail_msg("message \"%s\" should mention \"%s\"%s%s%s", err, w1, w2 ? " and \"" : "",
                 w2 ? w2 : "", w2 ? "\"" : "");
}

/* ---- tests ---- */

/* Random single changes and batches, several seeds; one starts at the last serial. */
static void test_edit_random_matches_load(void **state)
{
    (void)state;
    static const struct {
        uint64_t seed;
        uint32_t serial;
    } runs[] = {{1, 4294967295u}, {2, 1}, {0x5eed, 2147483647u}, {20260317, 2026031700}};
    static run_t r;
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        run_init(&r, runs[i].seed, runs[i].serial, false);
        run_random(&r, 40);
        if (runs[i].serial == 4294967295u && r.accepted > 0 && r.model.serial != r.accepted - 1)
            fail_msg("serial %" PRIu32 " after %u edits from 4294967295", r.model.serial,
                     r.accepted);
        run_report(&r, "random edits");
        run_deinit(&r);
    }
}

/*
 * A batch with one bad change among good ones changes nothing, wherever the bad one is:
 * zone_edit() fails with the right code, says what is wrong, and the zone answers as
 * before. The zone rules hold for the result of the batch, not for each step of it.
 */
static void test_edit_batch_refused_whole(void **state)
{
    (void)state;
    static run_t r;
    char err[512];
    run_init(&r, 0, 100, false);
    edit_t base[] = {
        ADD("www", K_A, "192.0.2.1", 300), ADD("mail", K_A, "192.0.2.1", 300),
        ADD("@", K_MX, "10 mail", 300),    ADD("alias", K_CNAME, "www", 300),
        ADD("sub", K_NS, "ns.sub", 300),   ADD("ns.sub", K_A, "192.0.2.2", 300),
        ADD("*.w", K_TXT, "\"a\"", 300),
    };
    assert_int_equal(run_edit(&r, base, sizeof(base) / sizeof(base[0]), err, sizeof(err)), 0);

    const edit_t good[] = {
        ADD("t", K_A, "192.0.2.3", 60),
        DEL("mail", K_A, "192.0.2.1"),
        ADD("www", K_AAAA, "2001:db8::1", 60),
        ADD("_sip._tcp", K_SRV, "1 5 5060 t", 60),
    };
    static const struct {
        const char *what;
        int rc;
        const char *w1, *w2;
    } bads[] = {
        {"CNAME beside data", FENNEC_EZONE, "CNAME", "www." ORIGIN},
        {"owner outside the zone", FENNEC_EZONE, "outside", "www.example.net"},
        {"rdata not of the form of its type", FENNEC_EZONE, "form", "www." ORIGIN},
        {"a second CNAME", FENNEC_EZONE, "CNAME", NULL},
        {"delete of a missing record", FENNEC_ENOTFOUND, "ns1." ORIGIN, NULL},
        {"add of an existing record", FENNEC_EEXISTS, "ns1." ORIGIN, NULL},
        {"an SOA edit", FENNEC_EZONE, "SOA", NULL},
        {"delete of the last apex NS", FENNEC_EZONE, "NS", NULL},
    };
    const edit_t bad_edits[] = {
        ADD("www", K_CNAME, "chain1", 60),
        {.bad = &g_outside},
        {.bad = &g_short_a},
        ADD("alias", K_CNAME, "chain2", 60),
        DEL("ns1", K_AAAA, "2001:db8::1"),
        ADD("ns1", K_A, "192.0.2.1", 3600),
        {.bad = soa_change()},
        DEL("@", K_NS, "ns1"),
    };
    size_t ng = sizeof(good) / sizeof(good[0]);
    for (size_t b = 0; b < sizeof(bads) / sizeof(bads[0]); b++) {
        for (size_t pos = 0; pos <= ng; pos += 2) {
            edit_t batch[8];
            size_t n = 0;
            for (size_t g = 0; g <= ng; g++) {
                if (g == pos)
                    batch[n++] = bad_edits[b];
                if (g < ng)
                    batch[n++] = good[g];
            }
            int rc = run_edit(&r, batch, n, err, sizeof(err));
            if (rc != bads[b].rc)
                fail_msg("%s at %zu: %d (%s), expected %s", bads[b].what, pos, rc, err,
                         fennec_strerror(bads[b].rc));
            expect_words(err, bads[b].w1, bads[b].w2);
            version_recheck(&r, &r.cur, ALL_NAMES, bads[b].what);
        }
    }
    assert_int_equal(r.edits_refused, sizeof(bads) / sizeof(bads[0]) * 3);

    /* The good changes alone go through. */
    assert_int_equal(run_edit(&r, good, ng, err, sizeof(err)), 0);
    /* Data replaced by a CNAME in one batch, and a CNAME by data: the result is valid. */
    edit_t to_cname[] = {ADD("www", K_CNAME, "chain1", 60), DEL("www", K_A, "192.0.2.1"),
                         DEL("www", K_AAAA, "2001:db8::1")};
    assert_int_equal(run_edit(&r, to_cname, 3, err, sizeof(err)), 0);
    edit_t from_cname[] = {ADD("alias", K_A, "192.0.2.2", 60), DEL("alias", K_CNAME, "www")};
    assert_int_equal(run_edit(&r, from_cname, 2, err, sizeof(err)), 0);
    run_report(&r, "batches with a bad change");
    run_deinit(&r);
}

/*
 * RFC 2181 5.2: an RRset has one TTL; adding a record gives the whole RRset the added
 * record's TTL; a delete matches owner, type and rdata whatever the TTL. A zone_edit() that
 * keeps the smallest TTL of the RRset (as rrset_build() in node/zone.c does for a whole
 * load) fails here, at the second edit.
 */
static void test_edit_ttl_of_rrset_is_last_added(void **state)
{
    (void)state;
    static run_t r;
    char err[512];
    run_init(&r, 7, 42, true);
    edit_t first[] = {ADD("www", K_A, "192.0.2.1", 300)};
    assert_int_equal(run_edit(&r, first, 1, err, sizeof(err)), 0);
    edit_t longer[] = {ADD("www", K_A, "192.0.2.2", 3600)}; /* both records now 3600 */
    assert_int_equal(run_edit(&r, longer, 1, err, sizeof(err)), 0);
    edit_t shorter[] = {ADD("www", K_A, "192.0.2.3", 60)};
    assert_int_equal(run_edit(&r, shorter, 1, err, sizeof(err)), 0);
    edit_t del[] = {DEL("www", K_A, "192.0.2.1")};
    del[0].ttl = 86400;
    assert_int_equal(run_edit(&r, del, 1, err, sizeof(err)), 0);
    run_random(&r, 16);
    run_report(&r, "random edits with RRset TTLs that change");
    run_deinit(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_random_matches_load),
        cmocka_unit_test(test_edit_batch_refused_whole),
        cmocka_unit_test(test_edit_ttl_of_rrset_is_last_added),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
