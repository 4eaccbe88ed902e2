/*
 * fennec — the control plane: an HTTP endpoint (libmicrohttpd, a thread per connection, never
 * a DNS worker) serving the JSON API under /v1/, Prometheus metrics on /metrics and a small
 * HTML status page on /. See docs/api.md. Writes to zones are submitted to change_submit()
 * (change.h), the one write path; a write waiting for another one holds only its own
 * connection's thread.
 *
 * Writes need "Authorization: Bearer TOKEN" where TOKEN is the lower-case hex of
 * HMAC-SHA256(cluster key, "fennec-control"); reads need no token from loopback clients.
 *
 * The pure helpers below (token, header, body validation, metrics text) are exported so that
 * fennecctl and the unit tests use the very same code as the daemon.
 */
#ifndef FENNEC_CONTROL_H
#define FENNEC_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "fennec/cfg.h"
#include "fennec/change.h"
#include "fennec/query.h"
#include "fennec/repl.h"
#include "fennec/server.h"
#include "fennec/zone.h"

typedef struct control control_t;

/* Largest request body accepted; larger bodies are answered 413. */
#define CONTROL_MAX_BODY (64 * 1024)

/* Key material: a cluster key is at most this many bytes. */
#define CONTROL_MAX_KEY 4096

/* The message the token is an HMAC of. */
#define CONTROL_TOKEN_MESSAGE "fennec-control"

/* Hex characters in a token (SHA-256), without the terminating NUL. */
#define CONTROL_TOKEN_LEN 64

/*
 * Creates the control endpoint for CFG (which must have has_control) serving statistics of
 * SRV (borrowed; may be NULL, then counters read as zero). Reads cluster.key_file when it is
 * configured: a key file that cannot be read or whose first line is empty is an error (logged
 * with the path). Nothing listens until control_start(). CFG and SRV must outlive it.
 */
int control_new(const cfg_t *cfg, server_t *srv, control_t **out);

/* The configuration whose zones API reloads use from now on (after SIGHUP read the file
 * again): borrowed, it must outlive CTL. CTL NULL: a no-op. Any thread. */
void control_zones_set(control_t *ctl, const cfg_t *cfg);

/* Binds cfg->control and starts the HTTP threads. A bind error is returned (and logged). */
int control_start(control_t *ctl);

/* Stops the HTTP threads (waits for them) and closes the socket. Idempotent. */
void control_stop(control_t *ctl);

/* Stops and frees. control_free(NULL) is a no-op. */
void control_free(control_t *ctl);

/* ---- authentication helpers ---- */

/*
 * Reads the cluster key from PATH: the bytes of the first line without its newline.
 * KEY must hold CONTROL_MAX_KEY bytes. Errors: -errno when the file cannot be read,
 * FENNEC_EMALFORMED when the first line is empty or longer than CONTROL_MAX_KEY
 * (ERR says which).
 */
int control_key_read(const char *path, uint8_t *key, size_t *keylen, char *err, size_t errlen);

/* Writes the token for KEY (lower-case hex of HMAC-SHA256(KEY, "fennec-control")) and a NUL
 * into OUT (CONTROL_TOKEN_LEN + 1 bytes). Returns 0 or FENNEC_EMALFORMED (OpenSSL failure). */
int control_token_derive(const uint8_t *key, size_t keylen, char *out);

/*
 * Extracts the token from an Authorization header value "Bearer TOKEN" (scheme
 * case-insensitive, spaces around the token allowed). On success *TOKEN points into HEADER
 * and *LEN is its length. Returns 0, or FENNEC_EMALFORMED for anything else (NULL included).
 */
int control_bearer_parse(const char *header, const char **token, size_t *len);

/* True when the Authorization header HEADER carries EXPECTED (a NUL-terminated token).
 * The token bytes are compared in constant time. */
bool control_bearer_check(const char *header, const char *expected);

/* ---- request bodies ---- */

typedef enum {
    CONTROL_RECORD_ADD = 0,
    CONTROL_RECORD_DELETE = 1,
} control_record_op_t;

/* A validated record edit ({"action","name","ttl","type","rdata"}), ready for a zone edit. */
typedef struct control_record_req {
    control_record_op_t op;
    char owner[1032];        /* absolute owner name, presentation format (escapes kept), lower case,
                                without trailing dot */
    uint8_t owner_wire[255]; /* the same, lower-case wire format */
    size_t owner_len;
    uint32_t ttl;       /* 0..ZONE_TTL_MAX */
    uint32_t ttl_asked; /* an add asking for a TTL above ZONE_TTL_MAX: that TTL (ttl is then
                           ZONE_TTL_MAX, RFC 2181 8); else 0 */
    uint16_t type;
    char type_name[32];   /* mnemonic as the zone parser knows it, or "TYPEnnn" */
    uint8_t rdata[65535]; /* wire rdata as parsed by the zone file parser */
    size_t rdata_len;
} control_record_req_t;

/*
 * Parses and validates a record edit BODY (LEN bytes, JSON) for zone ZONE (text apex without
 * trailing dot). "name" is relative to ZONE unless it ends in a dot, "@" is the apex; an
 * absolute name must be inside ZONE. TTL 0..4294967295: above 2147483647 it is capped to it
 * (RFC 2181 8) and an add says so in ttl_asked. TYPE a mnemonic (A, AAAA, MX, ...)
 * or TYPEnnn; SOA and the meta types are refused. RDATA is presentation format, parsed by the
 * zone file parser. Returns 0 or FENNEC_EMALFORMED with a message for a person in ERR
 * (FENNEC_ESPACE when LEN > CONTROL_MAX_BODY).
 */
int control_record_parse(const char *zone, const char *body, size_t len, control_record_req_t *out,
                         char *err, size_t errlen);

/* The zone change RR describes, for change_submit(); it points into RR. */
void control_record_change(const control_record_req_t *rr, zone_change_t *out);

/* A change batch parsed by control_batch_parse(): COUNT changes in order, pointing into DATA,
 * which the batch owns. */
typedef struct control_batch {
    zone_change_t *changes;
    size_t count;
    uint8_t *data;       /* owners and rdata of the changes */
    uint32_t *ttl_asked; /* NULL, or per change its control_record_req_t ttl_asked */
} control_batch_t;

/*
 * Parses a change batch BODY (LEN bytes, JSON) for zone ZONE: {"changes": [EDIT, ...]} with
 * at least one EDIT, each validated exactly as control_record_parse() validates a record edit
 * (the same function does it). On success *OUT holds the changes (control_batch_deinit()).
 * On error returns FENNEC_EMALFORMED (FENNEC_ESPACE when LEN > CONTROL_MAX_BODY, -ENOMEM),
 * leaves *OUT empty and writes a message for a person into ERR; when one change is at fault
 * the message starts with "changes[I]: " and *AT is I (0-based), else *AT is SIZE_MAX.
 */
int control_batch_parse(const char *zone, const char *body, size_t len, control_batch_t *out,
                        size_t *at, char *err, size_t errlen);

/* Frees what a batch holds; the batch is empty after. NULL is a no-op. */
void control_batch_deinit(control_batch_t *b);

/* ---- Prometheus text ---- */

/* A point-in-time view the metrics and status renderers work from. */
typedef struct control_zone_info {
    char name[256];
    uint32_t serial;
    size_t records;
} control_zone_info_t;

#define CONTROL_MAX_WORKERS 64 /* the config's limit on workers */

typedef struct control_snapshot {
    const char *node_id;
    const char *role; /* "primary" | "secondary" */
    const char *version;
    double start_time;    /* process start, seconds since the epoch */
    double now;           /* seconds since the epoch */
    server_stats_t stats; /* summed over the workers (stats.workers included) */
    server_overload_t overload[CONTROL_MAX_WORKERS]; /* per worker, first overload_count */
    unsigned overload_count;
    const control_zone_info_t *zones;
    size_t zone_count;
    /* Replication, all borrowed; REPL NULL leaves replication out of every rendering. */
    const char *control_address;  /* this node's control endpoint (listen.control) */
    const char *primary_address;  /* a secondary's cluster.primary; NULL: from REPL */
    const repl_status_t *repl;    /* repl_status_get() at NOW */
    const repl_member_t *members; /* the member list (repl_members_get()) */
    size_t member_count;
    const repl_history_t *history;         /* lag history (repl_history_get()); NULL: no chart */
    const change_journal_stats_t *journal; /* the journal's commits; NULL: no journal */
    /* Health checks and pools (health_report_get() at NOW), borrowed; NULL leaves health out
     * of every rendering. A report without a configuration means no checks. */
    const health_report_t *health;
    /* Anycast (docs/anycast.md), borrowed; ANYCAST NULL leaves anycast out of every rendering
     * (fennecd runs without a supervisor). */
    const struct anycast_status *anycast; /* the supervisor's last report */
    const repl_announce_view_t *announce; /* the cluster's announce view */
    const cfg_anycast_t *anycast_cfg;     /* service addresses, min_announced */
} control_snapshot_t;

/* Writes VALUE escaped for a Prometheus label value (\\, \" and \n) to F. */
void control_prom_escape(FILE *f, const char *value);

/* Renders SNAP in the Prometheus text exposition format (version 0.0.4) into a new
 * NUL-terminated buffer *OUT (free()) of *LEN bytes. Returns 0 or -ENOMEM. */
int control_metrics_render(const control_snapshot_t *snap, char **out, size_t *len);

/* The text name of an rcode ("NOERROR", ...) or NULL for unnamed values. */
const char *control_rcode_name(unsigned rcode);

/* ---- replication views (pure: everything comes from the snapshot) ---- */

/*
 * The "replication" object of GET /v1/status for SNAP (SNAP->repl not NULL), as the status
 * contract has it (docs/api.md). The form follows SNAP->role: "primary" gives role, index,
 * commit_time and nodes (every member but this node); anything else the secondary form (role,
 * primary, connected, state, applied_index, primary_index, entries_behind, seconds_behind,
 * last_contact_seconds). A last contact that never happened is null. Returns a new reference
 * or NULL (out of memory).
 */
json_t *control_repl_json(const control_snapshot_t *snap);

/*
 * The body of GET /v1/nodes for SNAP: {"nodes": [ROW, ...]}, ROW = {id, address, role,
 * connected, state, applied_index, entries_behind, seconds_behind, last_contact_seconds}.
 * This node's row comes first (on a primary: always caught up, state "streaming"; on a
 * secondary: its view of the primary), then every other member in member-list order. On a
 * secondary the other members' replication fields are null (only the primary sees them) and
 * their role is "primary" for the member named SNAP->repl->primary_id, else "secondary" once
 * the primary's id is known, else null. Returns a new reference or NULL (out of memory).
 */
json_t *control_nodes_json(const control_snapshot_t *snap);

/* ---- anycast (pure: everything comes from the snapshot) ---- */

/*
 * The "anycast" object of GET /v1/status for SNAP, or JSON null when SNAP->anycast is NULL:
 * {state ("announced" | "withdrawn" | "draining" | "drained" | "down" | "unknown" before the
 * first report), since (wall seconds), reason, transitions (total), restarts, drain,
 * supervisor ("linked" | "gone"), bird: {connected, error}, service: [addresses],
 * cluster: {announced, nodes, fresh, age_seconds, min_announced}}. Returns a new reference or
 * NULL (out of memory).
 */
json_t *control_anycast_json(const control_snapshot_t *snap);

/* ---- health (pure: everything comes from the report) ---- */

/*
 * The body of GET /v1/health for R (NULL or without a configuration: no checks, no pools):
 * {"checks": [CHECK, ...], "pools": [POOL, ...]} in configuration order, with
 * CHECK = {name, type ("http" | "https" | "tcp"), target, state ("up" | "down" | "unknown":
 * the state machine's, overrides aside), since (wall seconds), last_result (null before the
 * first probe), last_latency_ms (null before the first probe), override ("up" | "down" |
 * null), transitions} and POOL = {name, type ("A" | "AAAA"), ttl_now, serving: [addresses],
 * members: [{address, check, state}]}, where a member's state is its check as the pool takes
 * it: the override when there is one, else the check's state. Returns a new reference or NULL
 * (out of memory).
 */
json_t *control_health_json(const health_report_t *r);

/* The name of a check's state as the API writes it ("up", "down", "unknown"). */
const char *control_health_state_name(health_status_t s);

/* ---- status page ---- */

/* Writes S to F with <, >, &, " and ' escaped for HTML text and attribute values. */
void control_html_escape(FILE *f, const char *s);

/* Size of the lag chart, in SVG user units (pixels). */
#define CONTROL_CHART_WIDTH  720
#define CONTROL_CHART_HEIGHT 240

/*
 * Writes to F an inline SVG chart of seconds_behind over H's samples: one <polyline> per
 * series (a series with no sample at all gets none; a hole or a disconnected sample, < 0,
 * breaks its line into several polylines), a legend with the ids escaped, axis labels in
 * seconds and minutes before NOW (seconds since the epoch). The vertical scale fits the
 * largest sample (at least 1 s). H may be NULL or empty: the chart then says there is no
 * sample yet. Pure; no script, no external resource.
 */
void control_lag_chart_write(FILE *f, const repl_history_t *h, double now);

/* The HTML status page for SNAP (node, zones, answers, health checks and pools, replication
 * table and lag chart) in a new NUL-terminated buffer *OUT (free()) of *LEN bytes. Returns 0
 * or -ENOMEM. */
int control_page_render(const control_snapshot_t *snap, char **out, size_t *len);

/* ---- ?wait=all on writes ---- */

#define CONTROL_WAIT_DEFAULT_MS 10000 /* timeout_ms when the query does not give one */
#define CONTROL_WAIT_MAX_MS     60000

/* The query string of a write: wait=all and timeout_ms=N (1..CONTROL_WAIT_MAX_MS). */
typedef struct control_wait {
    bool all;            /* wait until every connected node has applied the change */
    uint32_t timeout_ms; /* CONTROL_WAIT_DEFAULT_MS unless timeout_ms= was given */
    bool has_timeout;
    bool has_wait;
} control_wait_t;

/* Empties W: no wait, the default timeout. */
void control_wait_init(control_wait_t *w);

/*
 * Takes one query argument KEY=VALUE (VALUE NULL when the argument had no '=') into W. Strict:
 * WRITE false (a read) refuses every argument; a write knows "wait" (only "all") and
 * "timeout_ms" (a decimal integer 1..CONTROL_WAIT_MAX_MS, nothing else); an unknown key, a
 * key given twice or a bad value is FENNEC_EMALFORMED with a message for a person in ERR.
 */
int control_wait_arg(control_wait_t *w, bool write, const char *key, const char *value, char *err,
                     size_t errlen);

/* After the last argument: timeout_ms without wait=all is FENNEC_EMALFORMED (ERR says so). */
int control_wait_check(const control_wait_t *w, char *err, size_t errlen);

#endif
