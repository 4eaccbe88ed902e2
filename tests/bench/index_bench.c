/*
 * fennec benchmark: three choices of a zone's name index, measured on the same names.
 *
 * usage: index_bench ZONEFILE QUERYFILE [LOOKUPS]
 *
 * Reads the owner names of ZONEFILE (first token of each record line, relative to $ORIGIN,
 * '@' = the origin, the previous owner for lines that start with blank space), adds every
 * ancestor up to the origin (empty non-terminals are nodes in the zone store too), and
 * builds over the distinct lower-case wire names:
 *   1. hash:   the zone store's design, FNV-1a over the wire name, chained buckets
 *              (a power of two, at least twice the names), the name stored in the node;
 *   2. sorted: an array of pointers to the names in canonical DNS order (RFC 4034 6.1),
 *              binary search;
 *   3. critbit: a crit-bit tree (a binary radix tree) over a key in which the labels are
 *              reversed, so that its order is the canonical order.
 * Each is timed while built, its bytes are counted by the allocator below, and it then
 * answers LOOKUPS (default 2,000,000) names drawn at random from the first column of
 * QUERYFILE: exact lookups, and the closest-encloser walk (remove labels until a hit).
 * The hit and miss counts, and the order of the two ordered indexes, must agree: the
 * program exits 1 if they do not.
 */
#include "fennec/common.h"
#include "fennec/wire.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 3 /* each lookup loop runs this often; the fastest run is reported */

/* ---- counted memory: every index byte is requested here ---- */

typedef struct counter {
    size_t bytes;  /* bytes requested (rounded to 8) */
    size_t allocs; /* number of requests */
} counter_t;

#define CHUNK (1u << 20)

typedef struct chunk {
    struct chunk *next;
    size_t used;
    uint8_t data[];
} chunk_t;

typedef struct pool {
    counter_t *count;
    chunk_t *head;
} pool_t;

static void *counted_calloc(counter_t *c, size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p) {
        c->bytes += (n * size + 7) & ~(size_t)7;
        c->allocs++;
    }
    return p;
}

/* Small objects come from 1 MiB chunks, as in the zone store's arena; only the bytes asked
 * for are counted (the unused tail of the last chunk is not). */
static void *pool_alloc(pool_t *p, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!p->head || p->head->used + n > CHUNK) {
        chunk_t *c = malloc(sizeof(*c) + CHUNK);
        if (!c)
            return NULL;
        c->next = p->head;
        c->used = 0;
        p->head = c;
    }
    void *r = p->head->data + p->head->used;
    p->head->used += n;
    p->count->bytes += n;
    p->count->allocs++;
    return r;
}

static void pool_free(pool_t *p)
{
    while (p->head) {
        chunk_t *next = p->head->next;
        free(p->head);
        p->head = next;
    }
}

/* ---- names ---- */

typedef struct name_list {
    uint8_t *buf; /* wire names back to back */
    size_t used, cap;
    uint32_t *off; /* start of each name in buf */
    uint8_t *len;
    size_t n, ncap;
} name_list_t;

static int list_add(name_list_t *l, const uint8_t *name, size_t len)
{
    if (l->used + len > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : (1u << 20);
        uint8_t *b = realloc(l->buf, cap);
        if (!b)
            return -ENOMEM;
        l->buf = b;
        l->cap = cap;
    }
    if (l->n == l->ncap) {
        size_t cap = l->ncap ? l->ncap * 2 : 4096;
        uint32_t *o = realloc(l->off, cap * sizeof(*o));
        if (!o)
            return -ENOMEM;
        l->off = o;
        uint8_t *ln = realloc(l->len, cap);
        if (!ln)
            return -ENOMEM;
        l->len = ln;
        l->ncap = cap;
    }
    memcpy(l->buf + l->used, name, len);
    l->off[l->n] = (uint32_t)l->used;
    l->len[l->n] = (uint8_t)len;
    l->used += len;
    l->n++;
    return 0;
}

static inline const uint8_t *list_name(const name_list_t *l, size_t i)
{
    return l->buf + l->off[i];
}

static void list_free(name_list_t *l)
{
    free(l->buf);
    free(l->off);
    free(l->len);
}

static inline uint32_t fnv1a(const uint8_t *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= name[i];
        h *= 16777619u;
    }
    return h;
}

/* Distinct-name filter for reading the zone (not measured): open addressing over list
 * indexes. */
typedef struct seen {
    uint32_t *slot; /* index + 1, 0 = empty */
    size_t mask, n;
} seen_t;

static int seen_grow(seen_t *s, const name_list_t *l)
{
    size_t cap = s->slot ? (s->mask + 1) * 2 : 1u << 16;
    uint32_t *slot = calloc(cap, sizeof(*slot));
    if (!slot)
        return -ENOMEM;
    for (size_t i = 0; s->slot && i <= s->mask; i++) {
        uint32_t v = s->slot[i];
        if (!v)
            continue;
        size_t j = fnv1a(list_name(l, v - 1), l->len[v - 1]) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = v;
    }
    free(s->slot);
    s->slot = slot;
    s->mask = cap - 1;
    return 0;
}

/* Adds NAME to L unless it is there already. */
static int add_distinct(seen_t *s, name_list_t *l, const uint8_t *name, size_t len)
{
    if (!s->slot || (s->n + 1) * 2 > s->mask + 1) {
        int rc = seen_grow(s, l);
        if (rc < 0)
            return rc;
    }
    size_t j = fnv1a(name, len) & s->mask;
    for (; s->slot[j]; j = (j + 1) & s->mask) {
        uint32_t v = s->slot[j] - 1;
        if (l->len[v] == len && memcmp(list_name(l, v), name, len) == 0)
            return 0;
    }
    int rc = list_add(l, name, len);
    if (rc < 0)
        return rc;
    s->slot[j] = (uint32_t)l->n;
    s->n++;
    return 0;
}

/* Reads the owners of the zone file PATH into L (distinct, ancestors added first). */
static int read_owners(const char *path, name_list_t *l, uint8_t *apex, int *apex_len)
{
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    seen_t seen = {0};
    char origin[WIRE_NAME_TEXT_MAX] = ".";
    char owner[WIRE_NAME_TEXT_MAX] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    *apex_len = 0;
    while (getline(&line, &cap, f) > 0) {
        char tok[WIRE_NAME_TEXT_MAX];
        if (line[0] == ';' || line[0] == '\n' || line[0] == '\r' || line[0] == '\0')
            continue;
        if (line[0] == '$') {
            if (sscanf(line, "$ORIGIN %1000s", tok) == 1) {
                snprintf(origin, sizeof(origin), "%s", tok);
                *apex_len = wire_name_from_text(origin, apex);
                if (*apex_len < 0) {
                    rc = *apex_len;
                    goto cleanup;
                }
                wire_name_lower(apex);
            }
            continue;
        }
        if (line[0] != ' ' && line[0] != '\t') {
            if (sscanf(line, "%1000s", tok) != 1)
                continue;
            if (strcmp(tok, "@") == 0)
                snprintf(owner, sizeof(owner), "%s", origin);
            else if (tok[strlen(tok) - 1] == '.')
                snprintf(owner, sizeof(owner), "%s", tok);
            else if (strcmp(origin, ".") == 0)
                snprintf(owner, sizeof(owner), "%.1000s.", tok);
            else
                snprintf(owner, sizeof(owner), "%.500s.%.500s", tok, origin);
        }
        if (owner[0] == '\0' || *apex_len <= 0)
            continue; /* no owner yet, or no origin: not a record of this zone */
        uint8_t wire[WIRE_NAME_MAX];
        int len = wire_name_from_text(owner, wire);
        if (len < 0) {
            fprintf(stderr, "index_bench: bad owner name %s\n", owner);
            rc = len;
            goto cleanup;
        }
        wire_name_lower(wire);
        if (!wire_name_in(wire, (size_t)len, apex, (size_t)*apex_len))
            continue; /* out of zone */
        /* Ancestors first, from the apex down: the walk below the apex gives their starts. */
        int starts[128], ns = 0;
        for (int p = 0; p < len - *apex_len; p += 1 + wire[p])
            starts[ns++] = p;
        rc = add_distinct(&seen, l, apex, (size_t)*apex_len);
        for (int i = ns - 1; rc == 0 && i >= 0; i--)
            rc = add_distinct(&seen, l, wire + starts[i], (size_t)(len - starts[i]));
        if (rc < 0)
            goto cleanup;
    }
    if (*apex_len <= 0)
        rc = FENNEC_EZONE;
cleanup:
    free(seen.slot);
    free(line);
    fclose(f);
    return rc;
}

/* Reads the first column of each line of the query file into L (lower-case wire names). */
static int read_queries(const char *path, name_list_t *l)
{
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    while (getline(&line, &cap, f) > 0) {
        char tok[WIRE_NAME_TEXT_MAX];
        uint8_t wire[WIRE_NAME_MAX];
        if (sscanf(line, "%1000s", tok) != 1 || tok[0] == '#')
            continue;
        int len = wire_name_from_text(tok, wire);
        if (len < 0)
            continue;
        wire_name_lower(wire);
        rc = list_add(l, wire, (size_t)len);
        if (rc < 0)
            break;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- 1. the chained hash table ---- */

typedef struct hnode {
    struct hnode *next;
    uint32_t hash;
    uint32_t value;
    uint8_t len;
    uint8_t name[];
} hnode_t;

typedef struct htab {
    hnode_t **bucket;
    uint32_t mask;
    pool_t pool;
} htab_t;

static const hnode_t *htab_find(const htab_t *t, const uint8_t *name, size_t len)
{
    uint32_t h = fnv1a(name, len);
    for (const hnode_t *n = t->bucket[h & t->mask]; n; n = n->next) {
        if (n->hash == h && n->len == len && memcmp(n->name, name, len) == 0)
            return n;
    }
    return NULL;
}

static int htab_build(htab_t *t, counter_t *c, const name_list_t *l)
{
    size_t nb = 1;
    while (nb < 2 * l->n)
        nb <<= 1;
    t->pool = (pool_t){.count = c};
    t->mask = (uint32_t)(nb - 1);
    t->bucket = counted_calloc(c, nb, sizeof(*t->bucket));
    if (!t->bucket)
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        const uint8_t *name = list_name(l, i);
        size_t len = l->len[i];
        if (htab_find(t, name, len))
            continue; /* find-or-create, as a zone builder does */
        hnode_t *n = pool_alloc(&t->pool, sizeof(*n) + len);
        if (!n)
            return -ENOMEM;
        n->hash = fnv1a(name, len);
        n->value = (uint32_t)i;
        n->len = (uint8_t)len;
        memcpy(n->name, name, len);
        n->next = t->bucket[n->hash & t->mask];
        t->bucket[n->hash & t->mask] = n;
    }
    return 0;
}

static void htab_free(htab_t *t)
{
    free(t->bucket);
    pool_free(&t->pool);
}

static inline int htab_lookup(const void *t, const uint8_t *name, size_t len, uint32_t *value)
{
    const hnode_t *n = htab_find(t, name, len);
    if (!n)
        return 0;
    *value = n->value;
    return 1;
}

/* ---- 2. the sorted array in canonical order ---- */

typedef struct srec {
    uint32_t value;
    uint8_t len;
    uint8_t name[];
} srec_t;

typedef struct sarr {
    const srec_t **rec;
    size_t n;
    pool_t pool;
} sarr_t;

/* Start offsets of the labels of NAME (not the root); returns their number. */
static inline int label_starts(const uint8_t *name, uint8_t *starts)
{
    int n = 0;
    for (int p = 0; name[p]; p += 1 + name[p])
        starts[n++] = (uint8_t)p;
    return n;
}

/* RFC 4034 6.1: labels compared from the rightmost, as lower-case octet strings, a label
 * that is a prefix of the other sorting first; a name that is a suffix sorting first. */
static int canon_cmp_pre(const uint8_t *a, const uint8_t *as, int an, const uint8_t *b)
{
    uint8_t bs[128];
    int bn = label_starts(b, bs);
    int i = an - 1, j = bn - 1;
    for (; i >= 0 && j >= 0; i--, j--) {
        const uint8_t *la = a + as[i], *lb = b + bs[j];
        unsigned m = la[0] < lb[0] ? la[0] : lb[0];
        int r = memcmp(la + 1, lb + 1, m);
        if (r)
            return r;
        if (la[0] != lb[0])
            return la[0] < lb[0] ? -1 : 1;
    }
    return (i >= 0) - (j >= 0);
}

static int canon_cmp(const uint8_t *a, const uint8_t *b)
{
    uint8_t as[128];
    int an = label_starts(a, as);
    return canon_cmp_pre(a, as, an, b);
}

static int srec_cmp(const void *x, const void *y)
{
    const srec_t *a = *(const srec_t *const *)x, *b = *(const srec_t *const *)y;
    return canon_cmp(a->name, b->name);
}

static int sarr_build(sarr_t *s, counter_t *c, const name_list_t *l)
{
    s->pool = (pool_t){.count = c};
    s->rec = counted_calloc(c, l->n, sizeof(*s->rec));
    if (!s->rec)
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        srec_t *r = pool_alloc(&s->pool, sizeof(*r) + l->len[i]);
        if (!r)
            return -ENOMEM;
        r->value = (uint32_t)i;
        r->len = l->len[i];
        memcpy(r->name, list_name(l, i), r->len);
        s->rec[i] = r;
    }
    qsort(s->rec, l->n, sizeof(*s->rec), srec_cmp);
    /* Drop duplicates, as a builder must. */
    size_t n = l->n ? 1 : 0;
    for (size_t i = 1; i < l->n; i++) {
        if (canon_cmp(s->rec[n - 1]->name, s->rec[i]->name) != 0)
            s->rec[n++] = s->rec[i];
    }
    s->n = n;
    return 0;
}

static void sarr_free(sarr_t *s)
{
    free(s->rec);
    pool_free(&s->pool);
}

static inline int sarr_lookup(const void *v, const uint8_t *name, size_t len, uint32_t *value)
{
    const sarr_t *s = v;
    uint8_t qs[128];
    int qn = label_starts(name, qs);
    size_t lo = 0, hi = s->n;
    (void)len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = canon_cmp_pre(name, qs, qn, s->rec[mid]->name);
        if (r == 0) {
            *value = s->rec[mid]->value;
            return 1;
        }
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

/* ---- 3. the crit-bit tree over reversed-label keys ---- */

/*
 * Key: the labels from the rightmost, each label's bytes then a 0 byte. A 0 byte inside a
 * label becomes 1 1 and a 1 byte becomes 1 2, so the separator is the smallest byte, no
 * label byte is 0, and byte order of keys is the canonical order of the names. Bytes past
 * the end of a key read as 0; no two keys are equal that way, because every key ends in a
 * separator and a label is never empty.
 */
#define KEY_MAX 512

static inline int name_to_key(const uint8_t *name, uint8_t *key)
{
    uint8_t st[128];
    int n = label_starts(name, st), k = 0;
    for (int i = n - 1; i >= 0; i--) {
        const uint8_t *lab = name + st[i];
        for (unsigned j = 1; j <= lab[0]; j++) {
            uint8_t b = lab[j];
            if (b <= 1) {
                key[k++] = 1;
                key[k++] = (uint8_t)(b + 1);
            } else {
                key[k++] = b;
            }
        }
        key[k++] = 0;
    }
    return k;
}

typedef struct cleaf {
    uint32_t value;
    uint16_t klen;
    uint8_t key[];
} cleaf_t;

typedef struct cnode {
    void *child[2]; /* tagged: low bit set = internal node */
    uint32_t byte;
    uint8_t otherbits; /* every bit but the critical one */
} cnode_t;

typedef struct cbt {
    void *root;
    size_t n;
    pool_t pool;
} cbt_t;

static inline int is_node(const void *p)
{
    return (int)((uintptr_t)p & 1);
}

static inline cnode_t *as_node(void *p)
{
    return (cnode_t *)((uintptr_t)p - 1);
}

static inline uint8_t key_at(const uint8_t *key, size_t klen, size_t i)
{
    return i < klen ? key[i] : 0;
}

static inline const cleaf_t *cbt_walk(const cbt_t *t, const uint8_t *key, size_t klen)
{
    void *p = t->root;
    while (is_node(p)) {
        const cnode_t *q = as_node(p);
        uint8_t c = key_at(key, klen, q->byte);
        p = q->child[(1 + (q->otherbits | c)) >> 8];
    }
    return p;
}

/* Returns 1 when inserted, 0 when the key was there, or -ENOMEM. */
static int cbt_insert(cbt_t *t, const uint8_t *key, size_t klen, uint32_t value)
{
    if (!t->root) {
        cleaf_t *leaf = pool_alloc(&t->pool, sizeof(*leaf) + klen);
        if (!leaf)
            return -ENOMEM;
        leaf->value = value;
        leaf->klen = (uint16_t)klen;
        memcpy(leaf->key, key, klen);
        t->root = leaf;
        t->n = 1;
        return 1;
    }
    const cleaf_t *best = cbt_walk(t, key, klen);
    size_t max = klen > best->klen ? klen : best->klen;
    size_t newbyte = 0;
    unsigned newotherbits = 0;
    for (; newbyte < max; newbyte++) {
        newotherbits = key_at(key, klen, newbyte) ^ key_at(best->key, best->klen, newbyte);
        if (newotherbits)
            break;
    }
    if (newbyte == max)
        return 0;
    newotherbits |= newotherbits >> 1;
    newotherbits |= newotherbits >> 2;
    newotherbits |= newotherbits >> 4;
    newotherbits = (newotherbits & ~(newotherbits >> 1)) ^ 255;
    unsigned c = key_at(best->key, best->klen, newbyte);
    int newdir = (int)((1 + (newotherbits | c)) >> 8);

    cnode_t *node = pool_alloc(&t->pool, sizeof(*node));
    cleaf_t *leaf = pool_alloc(&t->pool, sizeof(*leaf) + klen);
    if (!node || !leaf)
        return -ENOMEM;
    leaf->value = value;
    leaf->klen = (uint16_t)klen;
    memcpy(leaf->key, key, klen);
    node->byte = (uint32_t)newbyte;
    node->otherbits = (uint8_t)newotherbits;
    node->child[1 - newdir] = leaf;

    void **where = &t->root;
    while (is_node(*where)) {
        cnode_t *q = as_node(*where);
        if (q->byte > newbyte || (q->byte == newbyte && q->otherbits > newotherbits))
            break;
        c = key_at(key, klen, q->byte);
        where = &q->child[(1 + (q->otherbits | c)) >> 8];
    }
    node->child[newdir] = *where;
    *where = (void *)((uintptr_t)node + 1);
    t->n++;
    return 1;
}

static int cbt_build(cbt_t *t, counter_t *c, const name_list_t *l)
{
    t->root = NULL;
    t->n = 0;
    t->pool = (pool_t){.count = c};
    for (size_t i = 0; i < l->n; i++) {
        uint8_t key[KEY_MAX];
        int klen = name_to_key(list_name(l, i), key);
        int rc = cbt_insert(t, key, (size_t)klen, (uint32_t)i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void cbt_free(cbt_t *t)
{
    pool_free(&t->pool);
}

static inline int cbt_lookup(const void *v, const uint8_t *name, size_t len, uint32_t *value)
{
    const cbt_t *t = v;
    uint8_t key[KEY_MAX];
    (void)len;
    if (!t->root)
        return 0;
    int klen = name_to_key(name, key);
    const cleaf_t *leaf = cbt_walk(t, key, (size_t)klen);
    if (leaf->klen != klen || memcmp(leaf->key, key, (size_t)klen) != 0)
        return 0;
    *value = leaf->value;
    return 1;
}

/* In-order walk (canonical order): checks that leaf number i holds the same name as the
 * sorted array's entry i, and sums the depths of the leaves into *DEPTHS and their maximum
 * into *MAXD. Iterative, with an explicit stack as deep as the longest key in bits. */
static int cbt_check_order(const cbt_t *t, const sarr_t *s, size_t *depths, size_t *maxd)
{
    static void *stack[KEY_MAX * 8 + 1];
    static size_t sdepth[KEY_MAX * 8 + 1];
    size_t sp = 0, i = 0, d = 0;
    void *p = t->root;
    *depths = *maxd = 0;
    if (!p)
        return s->n == 0 ? 0 : -1;
    for (;;) {
        while (is_node(p)) {
            if (sp == sizeof(stack) / sizeof(stack[0]))
                return -1;
            d++;
            sdepth[sp] = d;
            stack[sp++] = as_node(p)->child[1];
            p = as_node(p)->child[0];
        }
        const cleaf_t *leaf = p;
        if (i >= s->n || s->rec[i]->value != leaf->value)
            return -1;
        *depths += d;
        if (d > *maxd)
            *maxd = d;
        i++;
        if (sp == 0)
            break;
        p = stack[--sp];
        d = sdepth[sp];
    }
    return i == s->n ? 0 : -1;
}

/* ---- the measurements ---- */

typedef int (*lookup_fn)(const void *index, const uint8_t *name, size_t len, uint32_t *value);

typedef struct result {
    const char *label;
    double build_ms;
    counter_t mem;
    double lookup_ns, encloser_ns;
    size_t hits, misses, probes, enc_labels;
    uint64_t sum; /* of the values found: keeps the loops honest, and must agree */
} result_t;

static void run_lookups(result_t *r, const void *index, lookup_fn fn, const name_list_t *q,
                        const uint32_t *order, size_t count)
{
    r->lookup_ns = r->encloser_ns = 1e18;
    for (int round = 0; round < ROUNDS; round++) {
        size_t hits = 0;
        uint64_t sum = 0;
        uint64_t t0 = fennec_now_ns();
        for (size_t i = 0; i < count; i++) {
            uint32_t k = order[i], v;
            if (fn(index, list_name(q, k), q->len[k], &v)) {
                hits++;
                sum += v;
            }
        }
        double ns = (double)(fennec_now_ns() - t0) / (double)count;
        if (ns < r->lookup_ns)
            r->lookup_ns = ns;
        r->hits = hits;
        r->misses = count - hits;
        r->sum = sum;
    }
    for (int round = 0; round < ROUNDS; round++) {
        size_t probes = 0, labels = 0;
        uint64_t sum = 0;
        uint64_t t0 = fennec_now_ns();
        for (size_t i = 0; i < count; i++) {
            uint32_t k = order[i], v = 0;
            const uint8_t *name = list_name(q, k);
            size_t len = q->len[k];
            for (;;) {
                probes++;
                if (fn(index, name, len, &v))
                    break;
                if (name[0] == 0)
                    break; /* not even the root: outside the zone */
                len -= 1u + name[0];
                name += 1u + name[0];
            }
            sum += v;
            labels += (size_t)wire_name_labels(name);
        }
        double ns = (double)(fennec_now_ns() - t0) / (double)count;
        if (ns < r->encloser_ns)
            r->encloser_ns = ns;
        r->probes = probes;
        r->enc_labels = labels;
        r->sum += sum;
    }
}

int main(int argc, char **argv)
{
    int rc = 1;
    name_list_t names = {0}, queries = {0};
    htab_t ht = {0};
    sarr_t sa = {0};
    cbt_t cb = {0};
    uint32_t *order = NULL;
    uint8_t apex[WIRE_NAME_MAX];
    int apex_len = 0;
    size_t depths = 0, maxd = 0;
    size_t count = 2000000;
    result_t res[3] = {{.label = "hash (FNV-1a, chained)"},
                       {.label = "sorted array (canonical)"},
                       {.label = "crit-bit (reversed labels)"}};

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: index_bench ZONEFILE QUERYFILE [LOOKUPS]\n");
        return 2;
    }
    if (argc == 4) {
        char *end;
        unsigned long v = strtoul(argv[3], &end, 10);
        if (*end || v == 0 || v > 100000000ul) {
            fprintf(stderr, "index_bench: LOOKUPS must be 1..100000000\n");
            return 2;
        }
        count = v;
    }
    int err = read_owners(argv[1], &names, apex, &apex_len);
    if (err < 0) {
        fprintf(stderr, "index_bench: %s: %s\n", argv[1], fennec_strerror(err));
        goto cleanup;
    }
    err = read_queries(argv[2], &queries);
    if (err < 0 || queries.n == 0) {
        fprintf(stderr, "index_bench: %s: no queries read\n", argv[2]);
        goto cleanup;
    }
    order = malloc(count * sizeof(*order));
    if (!order)
        goto cleanup;
    uint64_t x = 0x9E3779B97F4A7C15ull; /* xorshift64, fixed seed: the same draw every run */
    for (size_t i = 0; i < count; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order[i] = (uint32_t)(x % queries.n);
    }

    uint64_t t0 = fennec_now_ns();
    if (htab_build(&ht, &res[0].mem, &names) < 0)
        goto cleanup;
    res[0].build_ms = (double)(fennec_now_ns() - t0) / 1e6;
    t0 = fennec_now_ns();
    if (sarr_build(&sa, &res[1].mem, &names) < 0)
        goto cleanup;
    res[1].build_ms = (double)(fennec_now_ns() - t0) / 1e6;
    t0 = fennec_now_ns();
    if (cbt_build(&cb, &res[2].mem, &names) < 0)
        goto cleanup;
    res[2].build_ms = (double)(fennec_now_ns() - t0) / 1e6;

    /* Every name is found by all three, with its own value. */
    for (size_t i = 0; i < names.n; i++) {
        uint32_t v[3] = {~0u, ~0u, ~0u};
        const uint8_t *nm = list_name(&names, i);
        if (!htab_lookup(&ht, nm, names.len[i], &v[0]) ||
            !sarr_lookup(&sa, nm, names.len[i], &v[1]) ||
            !cbt_lookup(&cb, nm, names.len[i], &v[2]) || v[0] != i || v[1] != i || v[2] != i) {
            fprintf(stderr, "index_bench: FAIL: name %zu not found by every index\n", i);
            goto cleanup;
        }
    }
    if (sa.n != names.n || cb.n != names.n || cbt_check_order(&cb, &sa, &depths, &maxd) != 0) {
        fprintf(stderr, "index_bench: FAIL: sorted array and crit-bit order differ\n");
        goto cleanup;
    }

    run_lookups(&res[0], &ht, htab_lookup, &queries, order, count);
    run_lookups(&res[1], &sa, sarr_lookup, &queries, order, count);
    run_lookups(&res[2], &cb, cbt_lookup, &queries, order, count);
    for (int i = 1; i < 3; i++) {
        if (res[i].hits != res[0].hits || res[i].misses != res[0].misses ||
            res[i].probes != res[0].probes || res[i].enc_labels != res[0].enc_labels ||
            res[i].sum != res[0].sum) {
            fprintf(stderr, "index_bench: FAIL: %s disagrees with %s\n", res[i].label,
                    res[0].label);
            goto cleanup;
        }
    }
    if (res[0].hits == 0 || res[0].misses == 0) {
        fprintf(stderr, "index_bench: FAIL: the query mix has no hits or no misses\n");
        goto cleanup;
    }

    printf("names: %zu distinct owners and empty non-terminals (%zu bytes of wire names)\n",
           names.n, names.used);
    printf("lookups: %zu, drawn from %zu query names: %zu hits, %zu misses; closest encloser: "
           "%zu probes\n",
           count, queries.n, res[0].hits, res[0].misses, res[0].probes);
    printf("crit-bit tree: leaf depth %.1f on average, %zu at most; binary search: %.1f "
           "steps\n",
           (double)depths / (double)names.n, maxd, log2((double)names.n));
    printf("\n| index | build ms | bytes | bytes/name | allocations | lookup ns | "
           "closest-encloser ns |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < 3; i++) {
        printf("| %s | %.0f | %zu | %.1f | %zu | %.0f | %.0f |\n", res[i].label, res[i].build_ms,
               res[i].mem.bytes, (double)res[i].mem.bytes / (double)names.n, res[i].mem.allocs,
               res[i].lookup_ns, res[i].encloser_ns);
    }
    rc = 0;
cleanup:
    htab_free(&ht);
    sarr_free(&sa);
    cbt_free(&cb);
    free(order);
    list_free(&names);
    list_free(&queries);
    return rc;
}
