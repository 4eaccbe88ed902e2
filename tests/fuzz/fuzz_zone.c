/*
 * libFuzzer harness for the zone loader: the input is master-file text for example.com,
 * given to zone_load_text(). It must never crash, hang or leak; an error must come with a
 * message. When the zone loads, a few queries are answered from it and the answers must be
 * well-formed messages.
 *
 * Then the loaded zone goes through the copy-on-write update path: its records (up to 64)
 * are deleted in one update and added back in a second one. When the delete is refused (it
 * would break a zone rule) nothing may have changed; when it is taken, the version after
 * the re-add must hold the records of the original, and every version must still answer
 * with well-formed messages.
 *
 * Inputs with an $INCLUDE directive (at the start of a line) are skipped: it reads any file
 * the process can open (/dev/zero, /dev/stdin), which is a property of master files, not a
 * bug to find here. The word anywhere else (SPF's "include:") is fuzzed like the rest.
 */
#include <ctype.h>
#include <stdbool.h>
#include <libknot/packet/pkt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/query.h"
#include "fennec/wire.h"
#include "fennec/zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Whether DATA holds an $INCLUDE directive, which would make the load read files of this
 * host: "$INCLUDE" (any case) at the start of a line, the only place the scanner takes a
 * directive. The word elsewhere (an SPF record's "include:", a comment) is fuzzed like any
 * other text.
 */
static bool has_include_directive(const uint8_t *data, size_t size)
{
    static const char word[] = "$include";
    const size_t wl = sizeof(word) - 1;
    for (size_t i = 0; i + wl <= size; i++) {
        if (i > 0 && data[i - 1] != '\n' && data[i - 1] != '\r')
            continue;
        size_t k = 0;
        while (k < wl && tolower(data[i + k]) == word[k])
            k++;
        if (k == wl)
            return true;
    }
    return false;
}

static size_t mkq(uint8_t *buf, const char *name, uint16_t qtype, bool edns)
{
    memset(buf, 0, WIRE_HEADER_LEN);
    buf[0] = 0x12;
    buf[1] = 0x34;
    wire_put_u16(buf + 4, 1);
    int l = wire_name_from_text(name, buf + WIRE_HEADER_LEN);
    if (l < 0)
        abort();
    size_t len = WIRE_HEADER_LEN + (size_t)l;
    wire_put_u16(buf + len, qtype);
    wire_put_u16(buf + len + 2, WIRE_CLASS_IN);
    len += 4;
    if (edns) {
        static const uint8_t opt[11] = {0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0};
        memcpy(buf + len, opt, sizeof(opt));
        len += sizeof(opt);
        wire_put_u16(buf + 10, 1);
    }
    return len;
}

static void ask(query_ctx_t *ctx, const zone_set_t *set, const char *name, uint16_t qtype)
{
    static uint8_t out[QUERY_MAX_ANSWER];
    uint8_t q[512];
    for (int i = 0; i < 3; i++) {
        size_t qlen = mkq(q, name, qtype, i == 1);
        query_transport_t t = i == 2 ? QUERY_TCP : QUERY_UDP;
        size_t n = query_answer_set(ctx, set, q, qlen, out, sizeof(out), t);
        if (n < WIRE_HEADER_LEN || out[0] != 0x12 || out[1] != 0x34 || !(out[2] & 0x80))
            abort();
        knot_pkt_t *kp = knot_pkt_new(out, (uint16_t)n, NULL);
        if (!kp)
            abort();
        int rc = knot_pkt_parse(kp, 0);
        knot_pkt_free(kp);
        if (rc != 0) {
            fprintf(stderr, "answer for %s/%u is not well formed (libknot: %d)\n", name, qtype, rc);
            abort();
        }
    }
}

static const struct {
    const char *name;
    uint16_t type;
} g_queries[] = {
    {"example.com", WIRE_TYPE_SOA},     {"example.com", WIRE_TYPE_NS},
    {"example.com", WIRE_TYPE_ANY},     {"example.com", WIRE_TYPE_MX},
    {"www.example.com", WIRE_TYPE_A},   {"www.example.com", WIRE_TYPE_AAAA},
    {"a.example.com", WIRE_TYPE_CNAME}, {"x.y.example.com", WIRE_TYPE_TXT},
    {"*.example.com", WIRE_TYPE_A},     {"sub.example.com", WIRE_TYPE_DS},
    {"a.sub.example.com", WIRE_TYPE_A}, {"_sip._tcp.example.com", WIRE_TYPE_SRV},
};

static void ask_all(query_ctx_t *ctx, zone_t *z)
{
    zone_set_t *set = NULL;
    if (zone_set_new(&z, 1, &set) != 0)
        abort();
    for (size_t i = 0; i < sizeof(g_queries) / sizeof(g_queries[0]); i++)
        ask(ctx, set, g_queries[i].name, g_queries[i].type);
    zone_set_free(set);
}

#define EDITS_MAX 64

typedef struct edits {
    zone_change_t ch[EDITS_MAX];
    size_t n;
} edits_t;

/* Collects up to EDITS_MAX records, SOA excepted, as deletes. */
static int collect(const zone_node_t *node, void *arg)
{
    edits_t *e = arg;
    for (unsigned s = 0; s < node->rrset_count; s++) {
        const zone_rrset_t *rs = &node->rrsets[s];
        const uint8_t *p = rs->data;
        for (unsigned k = 0; k < rs->count && rs->type != WIRE_TYPE_SOA; k++) {
            if (e->n == EDITS_MAX)
                return 1;
            e->ch[e->n++] = (zone_change_t){.add = false,
                                            .owner = node->name,
                                            .type = rs->type,
                                            .ttl = rs->ttl,
                                            .rdata = p + 2,
                                            .rdlen = wire_get_u16(p)};
            p += 2u + wire_get_u16(p);
        }
    }
    return 0;
}

static void edit_round_trip(query_ctx_t *ctx, zone_t *z)
{
    char err[512];
    edits_t e = {.n = 0};
    zone_node_walk(z, collect, &e);
    zone_t *gone = NULL, *back = NULL;
    size_t records = zone_record_count(z);
    int rc = zone_edit(z, e.ch, e.n, &gone, err, sizeof(err));
    if (rc != 0) {
        if (gone || err[0] == 0 || zone_record_count(z) != records)
            abort();
        return;
    }
    if (zone_record_count(gone) != records - e.n || zone_serial(gone) != zone_serial(z) + 1)
        abort();
    ask_all(ctx, gone);
    for (size_t i = 0; i < e.n; i++)
        e.ch[i].add = true;
    if (zone_edit(gone, e.ch, e.n, &back, err, sizeof(err)) != 0) {
        fprintf(stderr, "adding back what was deleted failed: %s\n", err);
        abort();
    }
    if (zone_record_count(back) != records)
        abort();
    ask_all(ctx, back);
    ask_all(ctx, z); /* the original answers as before its successors existed */
    zone_unref(gone);
    zone_unref(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    char err[1024];
    zone_t *z = NULL;
    if (!quiet) {
        log_set_level(LOG_LEVEL_ERROR);
        quiet = true;
    }
    if (has_include_directive(data, size))
        return 0;
    int rc =
        zone_load_text("example.com", (const char *)data, size, "fuzz.zone", &z, err, sizeof(err));
    if (rc != 0) {
        if (z != NULL || err[0] == 0 || !memchr(err, 0, sizeof(err))) {
            fprintf(stderr, "failed load without a message or with a zone\n");
            abort();
        }
        return 0;
    }
    if (!z || zone_apex(z) == NULL || !zone_node_rrset(zone_apex(z), WIRE_TYPE_SOA))
        abort();
    query_ctx_t *ctx = query_ctx_new();
    if (!ctx)
        abort();
    ask_all(ctx, z);
    edit_round_trip(ctx, z);
    query_ctx_free(ctx);
    zone_unref(z);
    return 0;
}
