/*
 * libFuzzer harness for the query engine: the input is one DNS message, answered over UDP
 * and over TCP into a 512-byte and a 65535-byte buffer from a zone set that uses every
 * feature the engine knows (CNAME chains and loops, delegations with glue, wildcards, ENTs,
 * big RRsets, additional records, a child zone beside its parent, DNAMEs (chained, growing,
 * too long), SVCB/HTTPS in both modes, chains between the zones, NSID and CH TXT identity
 * from a configuration).
 *
 * The batch lookahead (query_hint_start/next) reads every input first.
 *
 * Checked on every answer: its length is within the buffer (and within 1232 bytes over
 * UDP), and a non-empty answer is a well-formed DNS message (libknot's parser) with QR set
 * and the query's ID.
 */
#include <libknot/packet/pkt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/cfg.h"
#include "fennec/common.h"
#include "fennec/query.h"
#include "fennec/wire.h"
#include "fennec/zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char parent_zone[] =
    "$ORIGIN example.com.\n"
    "$TTL 3600\n"
    "@ 86400 SOA ns1 hostmaster 2024010101 7200 3600 1209600 300\n"
    "@ NS ns1\n"
    "@ NS ns2.example.net.\n"
    "@ MX 10 mail\n"
    "@ MX 20 mail.sub\n"
    "@ TXT \"v=spf1 -all\"\n"
    "ns1 A 192.0.2.1\n"
    "ns1 AAAA 2001:db8::1\n"
    "mail A 192.0.2.25\n"
    "www A 192.0.2.10\n"
    "www A 192.0.2.11\n"
    "www AAAA 2001:db8::10\n"
    "alias CNAME www\n"
    "c1 CNAME c2\n"
    "c2 CNAME c3\n"
    "c3 CNAME alias\n"
    "loop1 CNAME loop2\n"
    "loop2 CNAME loop1\n"
    "self CNAME self\n"
    "ext CNAME www.example.org.\n"
    "nx CNAME nothere\n"
    "tocut CNAME www.sub\n"
    "towild CNAME x.wild\n"
    "a.b.c A 192.0.2.3\n"
    "sub NS ns.sub\n"
    "sub NS ns.example.net.\n"
    "sub DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n"
    "ns.sub A 192.0.2.53\n"
    "ns.sub AAAA 2001:db8::53\n"
    "deep.x.sub A 192.0.2.54\n"
    "*.wild A 192.0.2.99\n"
    "*.wild MX 10 mail\n"
    "*.cn CNAME www\n"
    "*.x.y A 192.0.2.98\n"
    "_sip._tcp SRV 10 5 5060 mail\n"
    "ptr PTR www\n"
    "dn DNAME example.org.\n"
    "dd DNAME dn.example.com.\n"
    "grow DNAME x.grow.example.com.\n"
    "long DNAME "
    "a123456789a123456789a123456789a123456789a123456789a123456789a12."
    "b123456789b123456789b123456789b123456789b123456789b123456789b12."
    "c123456789c123456789c123456789c123456789c123456789c123456789c12.example.com.\n"
    "occluded.grow A 192.0.2.5\n"
    "todn CNAME www.dn\n"
    "_443._https SVCB 1 www alpn=h2\n"
    "halias HTTPS 0 svc\n"
    "svc HTTPS 1 . alpn=h3\n"
    "svc HTTPS 2 www\n"
    "svc A 192.0.2.12\n"
    "nosvc HTTPS 0 .\n"
    "tosub2 CNAME www.sub2\n"
    "unk TYPE65000 \\# 3 010203\n"
    "minfo MINFO rm em\n"
    "empty TXT \"\"\n";

static zone_set_t *g_set;
static query_ctx_t *g_ctx;

static void add_big(char *text, size_t cap, const char *owner, int count)
{
    for (int i = 0; i < count; i++) {
        size_t o = strlen(text);
        o += (size_t)snprintf(text + o, cap - o, "%s TXT \"%03d", owner, i);
        memset(text + o, 'q', 180);
        o += 180;
        snprintf(text + o, cap - o, "\"\n");
    }
}

static zone_t *load(const char *origin, const char *text)
{
    char err[512];
    zone_t *z = NULL;
    if (zone_load_text(origin, text, strlen(text), origin, &z, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_query: cannot load %s: %s\n", origin, err);
        abort();
    }
    return z;
}

static void init(void)
{
    static char text[65536];
    snprintf(text, sizeof(text), "%s", parent_zone);
    add_big(text, sizeof(text), "big", 12);   /* > 1232 bytes */
    add_big(text, sizeof(text), "mid", 4);    /* > 512 bytes */
    add_big(text, sizeof(text), "huge", 300); /* > 16 KiB: names past the pointer range */
    zone_t *z[3];
    z[0] = load("example.com", text);
    z[1] = load("sub2.example.com", "@ 60 SOA ns1 h 1 2 3 4 5\n@ 60 NS ns1\nns1 60 A 192.0.2.7\n"
                                    "* 60 AAAA 2001:db8::7\n");
    z[2] = load("example.org", "@ 60 SOA ns1 h 1 2 3 4 5\n@ 60 NS ns1\nns1 60 A 192.0.2.8\n");
    if (zone_set_new(z, 3, &g_set) != 0)
        abort();
    for (int i = 0; i < 3; i++)
        zone_unref(z[i]);
    g_ctx = query_ctx_new();
    if (!g_ctx)
        abort();
    /* NSID and identity on, so that their options and answers are fuzzed too */
    static cfg_t cfg;
    cfg.nsid = "fuzz-node-1";
    cfg.identity = "fuzz node";
    query_ctx_set_config(g_ctx, &cfg);
    log_set_level(LOG_LEVEL_ERROR);
}

static void check(const uint8_t *q, size_t qlen, const uint8_t *out, size_t n, size_t cap,
                  query_transport_t t)
{
    if (n > cap) {
        fprintf(stderr, "answer of %zu bytes in a %zu-byte buffer\n", n, cap);
        abort();
    }
    if (n == 0)
        return;
    if (n < WIRE_HEADER_LEN || qlen < 2 || memcmp(out, q, 2) != 0 || !(out[2] & 0x80)) {
        fprintf(stderr, "answer without a header, QR or the query's ID\n");
        abort();
    }
    if (t == QUERY_UDP && n > 1232) {
        fprintf(stderr, "UDP answer of %zu bytes\n", n);
        abort();
    }
    knot_pkt_t *kp = knot_pkt_new((void *)out, (uint16_t)n, NULL);
    if (!kp)
        abort();
    int rc = knot_pkt_parse(kp, 0);
    knot_pkt_free(kp);
    if (rc != 0) {
        fprintf(stderr, "answer is not a well-formed message (libknot: %d)\n", rc);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[QUERY_MAX_ANSWER];
    static const size_t caps[2] = {512, QUERY_MAX_ANSWER};
    if (!g_set)
        init();
    /* The batch lookahead reads the same hostile bytes first. */
    query_hint_t hint;
    query_hint_start(g_set, data, size, &hint);
    query_hint_next(&hint);
    for (int t = 0; t < 2; t++) {
        for (int c = 0; c < 2; c++) {
            size_t n =
                query_answer_set(g_ctx, g_set, data, size, out, caps[c], t ? QUERY_TCP : QUERY_UDP);
            check(data, size, out, n, caps[c], t ? QUERY_TCP : QUERY_UDP);
        }
    }
    return 0;
}
