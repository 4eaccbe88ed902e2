/*
 * libFuzzer harness for TSIG (node/tsig.c) and signed queries through the query engine,
 * zone transfers included. The first input byte chooses what happens to the rest, a DNS
 * message: answered as it is, or first signed with the harness's key (so that fuzzed
 * messages get past the MAC check into the engine), with a skewed clock or a cut MAC; over
 * UDP or TCP. An allowed AXFR is then written to the end.
 *
 * Checked: answers are well formed (libknot's parser) and within their buffer; an answer
 * to a validly signed message is never unsigned: unless it is a FORMERR its last record is
 * a TSIG, and a NOERROR one verifies with the request's MAC; transfer messages stay within
 * 65535 bytes and a transfer ends.
 */
#include <libknot/packet/pkt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fennec/cfg.h"
#include "fennec/common.h"
#include "fennec/query.h"
#include "fennec/tsig.h"
#include "fennec/wire.h"
#include "fennec/xfr.h"
#include "fennec/zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="

static const char zone_text[] = "$ORIGIN example.com.\n$TTL 500\n"
                                "@ SOA ns1 host 3 604800 86400 2419200 604800\n"
                                "@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n"
                                "txt TXT \"hello\"\nmx MX 10 www\n";

static zone_set_t *g_set;
static query_ctx_t *g_ctx;
static cfg_t *g_cfg;
static struct sockaddr_in g_peer;
static uint8_t g_out[QUERY_MAX_ANSWER];
static uint8_t g_xfr[XFR_MSG_MAX + 2];

static void init(void)
{
    char err[256];
    zone_t *z = NULL;
    static const char y[] = "node: {id: f1}\nlisten: {dns: [\"127.0.0.1:5300\"]}\n"
                            "tsig_keys:\n"
                            "  - {name: k1, algorithm: hmac-sha256, secret: \"" SECRET "\"}\n"
                            "  - {name: k2, algorithm: hmac-md5, secret: \"" SECRET "\"}\n"
                            "transfer: {allow: [\"127.0.0.1\"], tsig: [k1]}\n";
    if (zone_load_text("example.com", zone_text, strlen(zone_text), "z", &z, err, sizeof(err)) ||
        zone_set_new(&z, 1, &g_set) ||
        cfg_parse(y, strlen(y), "f.yaml", &g_cfg, err, sizeof(err))) {
        fprintf(stderr, "fuzz_tsig: setup: %s\n", err);
        abort();
    }
    zone_unref(z);
    g_ctx = query_ctx_new();
    query_ctx_set_config(g_ctx, g_cfg);
    g_peer.sin_family = AF_INET;
    g_peer.sin_addr.s_addr = htonl(0x7f000001);
}

static void check_parse(const uint8_t *msg, size_t len)
{
    uint8_t *copy = malloc(len);
    memcpy(copy, msg, len);
    knot_pkt_t *kp = knot_pkt_new(copy, (uint16_t)len, NULL);
    if (!kp || knot_pkt_parse(kp, 0) != 0) {
        fprintf(stderr, "fuzz_tsig: an answer libknot cannot parse\n");
        abort();
    }
    knot_pkt_free(kp);
    free(copy);
}

/* Type of the last record of MSG, or 0; *AT receives its offset (0 when the records do not
 * end exactly at LEN). */
static uint16_t last_rr(const uint8_t *msg, size_t len, size_t *at)
{
    size_t pos = WIRE_HEADER_LEN;
    uint8_t tmp[WIRE_NAME_MAX];
    uint16_t t = 0;
    *at = 0;
    for (unsigned i = 0; i < wire_get_u16(msg + 4); i++) {
        if (wire_name_read(msg, len, &pos, tmp, false) < 0)
            return 0;
        pos += 4;
    }
    uint32_t n = (uint32_t)wire_get_u16(msg + 6) + wire_get_u16(msg + 8) + wire_get_u16(msg + 10);
    size_t start = 0;
    for (uint32_t i = 0; i < n; i++) {
        start = pos;
        if (wire_name_read(msg, len, &pos, tmp, false) < 0 || pos + 10 > len)
            return 0;
        t = wire_get_u16(msg + pos);
        pos += 10 + (size_t)wire_get_u16(msg + pos + 8);
    }
    if (pos == len)
        *at = start;
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_ctx)
        init();
    if (size < 1 + WIRE_HEADER_LEN || size > 4096)
        return 0;
    uint8_t mode = data[0];
    uint8_t q[4096 + TSIG_RR_MAX];
    size_t qlen = size - 1;
    memcpy(q, data + 1, qlen);
    bool sign = mode & 1;
    query_transport_t t = (mode & 2) ? QUERY_TCP : QUERY_UDP;
    uint8_t mac[TSIG_MAC_MAX];
    const tsig_key_t *key = &g_cfg->tsig_keys.keys[(mode >> 2) & 1];
    uint64_t now = (uint64_t)time(NULL);
    size_t trunc = (mode & 0x40) ? (size_t)(mode >> 3 & 7) * 3 + 8 : 0;
    uint64_t when = (mode & 0x80) ? now - 100000 : now;
    bool signed_ok = false;
    if (sign) {
        size_t unsigned_len = qlen, at = 0;
        signed_ok = tsig_query_sign(key, q, &qlen, sizeof(q), when, 300, trunc, mac) == 0 &&
                    !(mode & 0x80) && trunc == 0;
        /* Only when the records of the message, read as the engine reads them, end with the
         * TSIG just added does the engine see a signed query. */
        signed_ok = signed_ok && last_rr(q, qlen, &at) == TSIG_TYPE && at == unsigned_len;
    }
    query_ctx_set_peer(g_ctx, (mode & 0x20) ? (const struct sockaddr *)&g_peer : NULL);
    size_t cap = (mode & 0x10) ? 512 : sizeof(g_out);
    size_t n = query_answer_set(g_ctx, g_set, q, qlen, g_out, cap, t);
    if (n > cap)
        abort();
    if (n > 0) {
        check_parse(g_out, n);
        uint8_t rcode = g_out[3] & 15;
        /* The query must itself have been well formed for the TSIG to have been seen. */
        size_t at = 0;
        if (signed_ok && rcode != WIRE_RCODE_FORMERR && last_rr(g_out, n, &at) != TSIG_TYPE) {
            fprintf(stderr, "fuzz_tsig: an unsigned answer to a signed query (rcode %u)\n", rcode);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "%02x", g_out[i]);
            fprintf(stderr, "\n");
            abort();
        }
        if (signed_ok && rcode == WIRE_RCODE_NOERROR &&
            tsig_answer_verify(key, g_out, n, mac, tsig_alg_mac_len(key->alg)) != 0) {
            fprintf(stderr, "fuzz_tsig: a signed answer that does not verify\n");
            abort();
        }
    }
    query_xfr_t xr;
    if (query_xfr_take(g_ctx, &xr)) {
        xfr_t *x = NULL;
        if (xfr_new(&xr, &x) != 0)
            return 0;
        for (unsigned i = 0;; i++) {
            size_t w = 0;
            if (xfr_next(x, g_xfr, sizeof(g_xfr), now, &w) != 0 || w == 0)
                break;
            check_parse(g_xfr + 2, w - 2);
            if (i > 1000)
                abort(); /* a transfer of this zone never takes so many messages */
        }
        xfr_free(x);
    }
    /* The record reader on the raw input as well. */
    tsig_req_t req;
    for (size_t at = WIRE_HEADER_LEN; at < qlen && at < WIRE_HEADER_LEN + 64; at++)
        (void)tsig_request_check(&g_cfg->tsig_keys, q, qlen, at, now, &req);
    return 0;
}
