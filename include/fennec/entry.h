/*
 * fennec — journal entries (proto/replication.proto, Entry) made from zone versions, and
 * applied to them. The write path (change.c) packs each change as entries, journals the
 * bytes, and then applies the very bytes it journaled with entry_zone_apply(), on the
 * primary, on a secondary and when a node replays its journal at start: one function decides
 * what an entry does, so every node serves the same thing for the same index.
 *
 * Pure code over immutable zones: any thread; the zones passed in are borrowed.
 */
#ifndef FENNEC_ENTRY_H
#define FENNEC_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "fennec/health.h"
#include "fennec/repl.h"
#include "fennec/zone.h"
#include "replication.pb-c.h"

typedef Fennec__Replication__Entry entry_t;

/* An override in force: CHECK forced up or down (health_override_t, never NONE). */
typedef struct entry_override {
    char check[HEALTH_NAME_MAX];
    health_override_t state;
} entry_override_t;

/*
 * Packs one entry with INDEX and COMMIT_NS into a new buffer *OUT (free()) of *LEN bytes:
 *   entry_pack_diff():    TO as a difference from FROM (a version of the same zone; TO's
 *                         file source and record count go along);
 *   entry_pack_whole():   every record of Z;
 *   entry_pack_removed(): zone ZONE (text apex) is no longer served;
 *   entry_pack_members(): the member list is MEMBERS[0..COUNT).
 * Returns 0 or -ENOMEM.
 */
int entry_pack_diff(uint64_t index, uint64_t commit_ns, const zone_t *from, const zone_t *to,
                    uint8_t **out, size_t *len);
int entry_pack_whole(uint64_t index, uint64_t commit_ns, const zone_t *z, uint8_t **out,
                     size_t *len);
int entry_pack_removed(uint64_t index, uint64_t commit_ns, const char *zone, uint8_t **out,
                       size_t *len);
int entry_pack_members(uint64_t index, uint64_t commit_ns, const repl_member_t *members,
                       size_t count, uint8_t **out, size_t *len);
/* entry_pack_health(): the health section is HC (NULL: none); entry_pack_override(): CHECK's
 * override becomes STATE (NONE clears it). */
int entry_pack_health(uint64_t index, uint64_t commit_ns, const health_config_t *hc, uint8_t **out,
                      size_t *len);
int entry_pack_override(uint64_t index, uint64_t commit_ns, const char *check,
                        health_override_t state, uint8_t **out, size_t *len);

/* The health section a HealthConfig message names (*OUT NULL when empty): parsed with
 * health_config_parse(). Its errors. */
int entry_health(const Fennec__Replication__HealthConfig *m, health_config_t **out, char *err,
                 size_t errlen);

/*
 * Applies the zone payload of E (a zone diff, a whole zone or a removal) to ZONES[0..COUNT)
 * (the zones served before E, borrowed). *POS receives the position in ZONES of the zone E
 * is about (SIZE_MAX: not served yet) and *FRESH the zone's next version (one reference,
 * the caller's; NULL when E removes it). A diff is applied to the newest version of its line
 * (ZONES[*POS]), which then has *FRESH as successor: zone_discard() it when not published.
 * Errors (ERR says which): FENNEC_ENOTFOUND (a diff or removal of a zone not served),
 * FENNEC_EZONE (the records do not apply, or the result's serial or record count is not the
 * one the entry names: the node's data differs from the primary's and needs a snapshot),
 * FENNEC_EMALFORMED (E has no zone payload), -ENOMEM, -EBUSY.
 */
int entry_zone_apply(const entry_t *e, zone_t *const *zones, size_t count, size_t *pos,
                     zone_t **fresh, char *err, size_t errlen);

/* The members of a membership payload, into a new array *OUT (free()); returns the count or
 * -ENOMEM. */
int entry_members(const Fennec__Replication__Membership *m, repl_member_t **out);

/* The zone name of E's zone payload, or NULL. */
const char *entry_zone_name(const entry_t *e);

#endif
