/*
 * libFuzzer harness for the API's change bodies: the input is given to control_batch_parse()
 * (a change batch) and control_record_parse() (one record edit) for example.com. Neither may
 * crash, hang or leak; a refusal must come with a message, and a refusal of a batch that
 * names a change must name one of its changes; an accepted batch must hold changes whose
 * owners are names inside the zone.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/control.h"
#include "fennec/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t apex[] = "\7example\3com";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    size_t at = 0;
    control_batch_t b;
    memset(err, 0, sizeof(err));
    int rc =
        control_batch_parse("example.com", (const char *)data, size, &b, &at, err, sizeof(err));
    if (rc == 0) {
        if (b.count == 0 || !b.changes) {
            fprintf(stderr, "accepted an empty batch\n");
            abort();
        }
        for (size_t i = 0; i < b.count; i++) {
            int l = wire_name_len(b.changes[i].owner, WIRE_NAME_MAX);
            if (l < 0 || !wire_name_in(b.changes[i].owner, (size_t)l, apex, sizeof(apex))) {
                fprintf(stderr, "accepted change %zu with an owner outside the zone\n", i);
                abort();
            }
        }
        control_batch_deinit(&b);
    } else if (err[0] == 0 || err[sizeof(err) - 1] != 0 || b.changes || b.data) {
        fprintf(stderr, "refused batch (%d) without a message, or with memory left\n", rc);
        abort();
    } else if (at != SIZE_MAX && strncmp(err, "changes[", 8) != 0) {
        fprintf(stderr, "refused batch names change %zu but not in its message: %s\n", at, err);
        abort();
    }

    control_record_req_t *rr = malloc(sizeof(*rr));
    if (!rr)
        return 0;
    memset(err, 0, sizeof(err));
    rc = control_record_parse("example.com", (const char *)data, size, rr, err, sizeof(err));
    if (rc != 0 && (err[0] == 0 || err[sizeof(err) - 1] != 0)) {
        fprintf(stderr, "refused record edit (%d) without a message\n", rc);
        abort();
    }
    free(rr);
    return 0;
}
