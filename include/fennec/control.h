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

#include "fennec/cfg.h"
#include "fennec/query.h"
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
    uint32_t ttl;
    uint16_t type;
    char type_name[32];   /* mnemonic as the zone parser knows it, or "TYPEnnn" */
    uint8_t rdata[65535]; /* wire rdata as parsed by the zone file parser */
    size_t rdata_len;
} control_record_req_t;

/*
 * Parses and validates a record edit BODY (LEN bytes, JSON) for zone ZONE (text apex without
 * trailing dot). "name" is relative to ZONE unless it ends in a dot, "@" is the apex; an
 * absolute name must be inside ZONE. TTL 0..2147483647. TYPE a mnemonic (A, AAAA, MX, ...)
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
    uint8_t *data; /* owners and rdata of the changes */
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
} control_snapshot_t;

/* Writes VALUE escaped for a Prometheus label value (\\, \" and \n) to F. */
void control_prom_escape(FILE *f, const char *value);

/* Renders SNAP in the Prometheus text exposition format (version 0.0.4) into a new
 * NUL-terminated buffer *OUT (free()) of *LEN bytes. Returns 0 or -ENOMEM. */
int control_metrics_render(const control_snapshot_t *snap, char **out, size_t *len);

/* The text name of an rcode ("NOERROR", ...) or NULL for unnamed values. */
const char *control_rcode_name(unsigned rcode);

#endif
