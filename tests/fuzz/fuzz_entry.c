/*
 * libFuzzer harness for the journal reader: the input is the bytes of one journal entry, as
 * a node reads them back from its journal at start or receives them from its primary. They
 * are decoded and checked (frame_entry_decode()) and, when they pass, applied to a small
 * served zone (entry_zone_apply()) exactly as the write path applies them. Nothing may crash,
 * leak or hang; an entry that applies must leave a zone that answers (its serial and record
 * count are the ones a diff names), and the zone it was applied to must be untouched.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/entry.h"
#include "fennec/frame.h"
#include "fennec/zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char g_zone[] = "$ORIGIN example.com.\n"
                             "@ 300 SOA ns1 hostmaster 7 7200 3600 1209600 300\n"
                             "@ 300 NS ns1\n"
                             "ns1 300 A 192.0.2.1\n"
                             "www 300 A 192.0.2.10\n"
                             "*.w 60 TXT \"x\"\n"
                             "sub 300 NS ns.sub\n"
                             "ns.sub 300 A 192.0.2.53\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    entry_t *e = NULL;
    if (frame_entry_decode(data, size, &e, err, sizeof(err)) != 0) {
        if (!err[0])
            abort(); /* a refusal says why */
        return 0;
    }
    zone_t *z = NULL;
    if (zone_load_text("example.com", g_zone, sizeof(g_zone) - 1, "fuzz", &z, err, sizeof(err)))
        abort();
    uint32_t serial = zone_serial(z);
    size_t records = zone_record_count(z);
    size_t pos = 0;
    zone_t *fresh = NULL;
    int rc = entry_zone_apply(e, &z, 1, &pos, &fresh, err, sizeof(err));
    if (zone_serial(z) != serial || zone_record_count(z) != records)
        abort(); /* the served version changed */
    if (rc == 0 && fresh) {
        if (e->payload_case == FENNEC__REPLICATION__ENTRY__PAYLOAD_ZONE_DIFF &&
            (zone_serial(fresh) != e->zone_diff->serial_after ||
             zone_record_count(fresh) != e->zone_diff->records_after))
            abort();
        if (!zone_apex(fresh) || !zone_node_rrset(zone_apex(fresh), 6))
            abort(); /* every zone has its SOA */
        zone_discard(fresh);
    } else if (rc != 0 && !err[0]) {
        abort();
    }
    zone_unref(z);
    frame_entry_free(e);
    return 0;
}
