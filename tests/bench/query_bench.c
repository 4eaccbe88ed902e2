/*
 * fennec benchmark: the zone store and the query engine without sockets. Loads a zone file,
 * builds the queries of a dnsperf query file ("name type" per line, EDNS with 1232 bytes),
 * answers them QUERIES times in a row with query_answer_set() and prints the load time, the
 * RSS after the load and the nanoseconds per answer (the best of 3 passes). With EDITS, it
 * first adds EDITS new A records one zone_edit() at a time and deletes them again in batches
 * of 100, and prints the microseconds per single edit, the changes per second of the
 * batches and the RSS after the adds.
 *
 * usage: query_bench ZONEFILE ORIGIN QUERYFILE [QUERIES [EDITS]]
 * Built by tests/bench/query_bench.sh against the library of a build tree, so that two
 * versions of fennec can be compared on the same machine in one run.
 */
#include "fennec/query.h"
#include "fennec/wire.h"
#include "fennec/zone.h"

#include <libknot/descriptor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

typedef struct query {
    uint8_t wire[WIRE_NAME_MAX + 32];
    size_t len;
} query_t;

static int query_build(query_t *q, const char *name, const char *type, uint16_t id)
{
    uint16_t t;
    if (knot_rrtype_from_string(type, &t) != 0)
        return -1;
    memset(q->wire, 0, WIRE_HEADER_LEN);
    wire_put_u16(q->wire, id);
    wire_put_u16(q->wire + 4, 1);
    wire_put_u16(q->wire + 10, 1);
    int l = wire_name_from_text(name, q->wire + WIRE_HEADER_LEN);
    if (l < 0)
        return -1;
    size_t p = WIRE_HEADER_LEN + (size_t)l;
    wire_put_u16(q->wire + p, t);
    wire_put_u16(q->wire + p + 2, WIRE_CLASS_IN);
    p += 4;
    static const uint8_t opt[] = {0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0};
    memcpy(q->wire + p, opt, sizeof(opt));
    q->len = p + sizeof(opt);
    return 0;
}

/* The name and address of new record I. */
static void edit_make(long i, const char *origin, uint8_t *owner, uint8_t *rd, zone_change_t *ch,
                      bool add)
{
    char text[WIRE_NAME_TEXT_MAX];
    snprintf(text, sizeof(text), "edit%ld.%s.", i, origin);
    wire_name_from_text(text, owner);
    rd[0] = 192;
    rd[1] = 0;
    rd[2] = 2;
    rd[3] = (uint8_t)i;
    *ch = (zone_change_t){
        .add = add, .owner = owner, .type = WIRE_TYPE_A, .ttl = 300, .rdata = rd, .rdlen = 4};
}

static int edit_bench(zone_t **z, const char *origin, long edits)
{
    char err[512];
    long rss0 = rss_kib();
    double t0 = now_s();
    for (long i = 0; i < edits; i++) {
        uint8_t owner[WIRE_NAME_MAX], rd[4];
        zone_change_t ch;
        zone_t *nz = NULL;
        edit_make(i, origin, owner, rd, &ch, true);
        if (zone_edit(*z, &ch, 1, &nz, err, sizeof(err)) != 0) {
            fprintf(stderr, "query_bench: edit %ld: %s\n", i, err);
            return 1;
        }
        zone_unref(*z);
        *z = nz;
    }
    double single = (now_s() - t0) / (double)edits * 1e6;
    long rss = rss_kib();
    t0 = now_s();
    for (long b = 0; b + 100 <= edits; b += 100) {
        static uint8_t owners[100][WIRE_NAME_MAX], rds[100][4];
        zone_change_t ch[100];
        zone_t *nz = NULL;
        for (int k = 0; k < 100; k++)
            edit_make(b + k, origin, owners[k], rds[k], &ch[k], false);
        if (zone_edit(*z, ch, 100, &nz, err, sizeof(err)) != 0) {
            fprintf(stderr, "query_bench: batch at %ld: %s\n", b, err);
            return 1;
        }
        zone_unref(*z);
        *z = nz;
    }
    double rate = (double)(edits / 100 * 100) / (now_s() - t0);
    printf("edit_us %.2f\nrss_growth_by_adds_kib %ld\nbatch_changes_per_s %.0f\n", single,
           rss - rss0, rate);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: query_bench ZONEFILE ORIGIN QUERYFILE [QUERIES [EDITS]]\n");
        return 2;
    }
    long total = argc > 4 ? atol(argv[4]) : 2000000;
    if (total <= 0 || total > 1000000000) {
        fprintf(stderr, "query_bench: QUERIES between 1 and 1000000000\n");
        return 2;
    }
    char err[1024];
    zone_t *z = NULL;
    double t0 = now_s();
    if (zone_load_file(argv[2], argv[1], &z, err, sizeof(err)) != 0) {
        fprintf(stderr, "query_bench: %s\n", err);
        return 1;
    }
    double load = now_s() - t0;
    long rss = rss_kib();
    /* The edits first, on a heap that holds the zone only; they leave its records as they
     * were (every name added is deleted again). */
    long edits = argc > 5 ? atol(argv[5]) : 0;
    if (edits > 0 && edits <= 10000000 && edit_bench(&z, argv[2], edits) != 0)
        return 1;

    FILE *f = fopen(argv[3], "r");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    size_t n = 0, cap = 1024;
    query_t *qs = malloc(cap * sizeof(*qs));
    char line[600], name[512], type[32];
    while (qs && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%511s %31s", name, type) != 2)
            continue;
        if (n == cap) {
            cap *= 2;
            query_t *g = realloc(qs, cap * sizeof(*qs));
            if (!g)
                break;
            qs = g;
        }
        if (query_build(&qs[n], name, type, (uint16_t)n) == 0)
            n++;
    }
    fclose(f);
    if (!qs || n == 0) {
        fprintf(stderr, "query_bench: no queries in %s\n", argv[3]);
        return 1;
    }

    zone_set_t *set = NULL;
    query_ctx_t *ctx = query_ctx_new();
    if (zone_set_new(&z, 1, &set) != 0 || !ctx) {
        fprintf(stderr, "query_bench: out of memory\n");
        return 1;
    }
    uint8_t out[65535];
    size_t bytes = 0;
    double best = 1e9;
    for (int pass = 0; pass < 3; pass++) {
        double a = now_s();
        for (long i = 0; i < total; i++) {
            const query_t *q = &qs[(size_t)i % n];
            bytes += query_answer_set(ctx, set, q->wire, q->len, out, sizeof(out), QUERY_UDP);
        }
        double dt = (now_s() - a) / (double)total * 1e9;
        if (dt < best)
            best = dt;
    }
    printf("load_s %.3f\nrss_kib %ld\nrecords %zu\nns_per_query %.1f\nanswer_bytes %zu\n", load,
           rss, zone_record_count(z), best, bytes / 3 / (size_t)total);
    zone_set_free(set);
    zone_unref(z);
    query_ctx_free(ctx);
    free(qs);
    return 0;
}
