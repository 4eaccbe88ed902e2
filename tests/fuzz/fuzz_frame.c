/*
 * libFuzzer harness for the replication stream's frame reader: the input is a stream of
 * bytes from a peer, fed to one frame_reader_t in pieces whose sizes come from the input
 * itself. It must never crash, hang, leak or hold more than the maximum frame; a refused
 * stream must say why and stay refused; every frame it hands out must pass frame_check() and
 * encode back into a frame that reads as a message of the same kind (byte equality is not
 * asked: a peer's bytes may encode the same message differently, unknown fields included).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX 4096 /* a small maximum, so that the limit is reached often */

static void round_trip(const frame_t *f)
{
    char err[256];
    uint8_t *buf = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    if (frame_check(f, err, sizeof(err)) != 0)
        abort(); /* the reader handed out a frame that fails the check */
    if (frame_encode(f, FRAME_MAX_DEFAULT, &buf, &len, err, sizeof(err)) != 0)
        abort();
    frame_reader_t r;
    frame_t *g = NULL;
    frame_reader_init(&r, FRAME_MAX_DEFAULT);
    if (frame_reader_feed(&r, buf, len) != 0 || frame_reader_next(&r, &g, err, sizeof(err)) != 0 ||
        !g)
        abort();
    if (g->kind_case != f->kind_case ||
        frame_encode(g, FRAME_MAX_DEFAULT, &again, &len2, err, sizeof(err)) != 0)
        abort();
    frame_free(g);
    frame_reader_deinit(&r);
    free(buf);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    frame_reader_t r;
    frame_reader_init(&r, FUZZ_MAX);
    size_t pos = 0;
    int refused = 0;
    while (pos < size) {
        /* The first byte of each piece says how long the piece is. */
        size_t piece = (size_t)data[pos++] % 64 + 1;
        if (piece > size - pos)
            piece = size - pos;
        int rc = frame_reader_feed(&r, data + pos, piece);
        pos += piece;
        if (rc != 0 && rc != FENNEC_EMALFORMED)
            abort();
        for (;;) {
            char err[256] = "";
            frame_t *f = NULL;
            rc = frame_reader_next(&r, &f, err, sizeof(err));
            if (rc != 0) {
                if (f || !err[0])
                    abort();
                refused = rc;
                break;
            }
            if (!f)
                break;
            round_trip(f);
            frame_free(f);
        }
        if (refused) {
            /* Refused once, refused for good. */
            char err[256];
            frame_t *f = NULL;
            if (frame_reader_feed(&r, data, 0) == 0 || frame_reader_next(&r, &f, err, 256) == 0)
                abort();
            break;
        }
        if (r.len - r.start > FUZZ_MAX + 4 + 64)
            abort(); /* more than one frame's worth held */
    }
    frame_reader_deinit(&r);
    return 0;
}
