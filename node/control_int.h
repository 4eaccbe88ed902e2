/*
 * fennec — what the files of the control endpoint share (control.c: libmicrohttpd glue, routes,
 * authorization, the error table; control_request.c: request bodies and the query string;
 * control_zones.c: zone writes; control_status.c: /v1/status, /metrics and the replication
 * views; control_nodes.c: /v1/nodes; control_health.c: /v1/health and overrides;
 * control_page.c: the HTML status page). Private to
 * node/control*.c. Every function here runs on a connection's thread.
 */
#ifndef FENNEC_CONTROL_INT_H
#define FENNEC_CONTROL_INT_H

#include <microhttpd.h>

#include "fennec/anycast.h"
#include "fennec/change.h"
#include "fennec/control.h"
#include "fennec/repl.h"

#include <stdatomic.h>

struct control {
    const cfg_t *cfg;
    _Atomic(const cfg_t *) zones_cfg; /* the zones API reloads read: cfg, or SIGHUP's newer one */
    server_t *srv;
    struct MHD_Daemon *mhd;
    bool has_key;
    char token[CONTROL_TOKEN_LEN + 1];
    double start_time;
};

typedef enum {
    ROUTE_NONE = 0,
    ROUTE_PAGE,
    ROUTE_METRICS,
    ROUTE_STATUS,
    ROUTE_NODES,
    ROUTE_NODE,
    ROUTE_ZONE_RELOAD,
    ROUTE_ZONE_RECORDS,
    ROUTE_ZONE_CHANGES,
    ROUTE_HEALTH,
    ROUTE_HEALTH_OVERRIDE,
    ROUTE_DRAIN,
} route_t;

typedef struct request {
    route_t route;
    bool write;
    char arg[256]; /* the {zone}, {id} or {check} of the path */
    char *body;
    size_t len;
    bool too_big;
    control_wait_t wait; /* ?wait=all&timeout_ms=N of a write */
    bool force;          /* ?force=1 of a zone reload */
} request_t;

/* ---- answers (each consumes what it is given and queues one response) ---- */

/* TEXT (LEN bytes, malloc()ed) as the body, with content type TYPE. */
enum MHD_Result control_send_text(struct MHD_Connection *conn, unsigned status, const char *type,
                                  char *text, size_t len);

/* OBJ (a new reference) as the JSON body. */
enum MHD_Result control_send_json(struct MHD_Connection *conn, unsigned status, json_t *obj);

/* {"error": MESSAGE} with the HTTP status of RC (the one table in control.c); AT not SIZE_MAX
 * adds "change": AT (the change of a batch at fault). An empty message says RC. */
enum MHD_Result control_send_rc_at(struct MHD_Connection *conn, int rc, size_t at, const char *fmt,
                                   ...) __attribute__((format(printf, 4, 5)));

#define control_send_rc(conn, rc, ...) control_send_rc_at(conn, rc, SIZE_MAX, __VA_ARGS__)

/* {"error": MESSAGE} with STATUS. */
enum MHD_Result control_send_error(struct MHD_Connection *conn, unsigned status, const char *fmt,
                                   ...) __attribute__((format(printf, 3, 4)));

/*
 * The answer to a write that succeeded with journal index INDEX: BODY (a new reference) with
 * 200, or, when REQ asked for ?wait=all, first repl_wait_all(INDEX): on a timeout a 504 whose
 * error says the change is applied and durable here and names the nodes still behind
 * ("lagging": [ids], "index": INDEX), and BODY is dropped.
 */
enum MHD_Result control_send_written(struct MHD_Connection *conn, const request_t *req,
                                     json_t *body, uint64_t index);

/* ---- request bodies ---- */

/* BODY (LEN bytes) as a JSON object, or NULL with a message in ERR. */
json_t *control_load_object(const char *body, size_t len, char *err, size_t errlen);

/* FENNEC_EMALFORMED (ERR says which) when OBJ has a key not in ALLOWED (NULL-terminated; LIST
 * names them for the message). */
int control_check_keys(json_t *obj, const char *const *allowed, const char *list, char *err,
                       size_t errlen);

/* The string member KEY of OBJ, 1..MAX characters without NUL; NULL with a message in ERR
 * (WHAT says what the field holds). Borrowed from OBJ. */
const char *control_get_string(json_t *obj, const char *key, size_t max, const char *what,
                               char *err, size_t errlen);

/* ---- a view of the node for one answer ---- */

typedef struct control_view {
    control_snapshot_t snap; /* points into the fields below */
    control_zone_info_t *zones;
    repl_status_t repl;
    repl_member_t *members;
    repl_history_t history;
    change_journal_stats_t journal;
    health_report_t health;
    anycast_status_t anycast;
    repl_announce_view_t announce;
} control_view_t;

#define CONTROL_VIEW_HISTORY 1u /* the lag history (the status page's chart) */
#define CONTROL_VIEW_HEALTH  2u /* the health checks and pools */

/* Takes the statistics, the zone list and the replication state now, and what WHAT asks for
 * (CONTROL_VIEW_*); ticks the lag history first. 0 or -ENOMEM (nothing to release then). */
int control_view_take(control_t *ctl, control_view_t *v, unsigned what);
void control_view_release(control_view_t *v);

/* Changes that only the primary originates (membership, health overrides): on a secondary,
 * queues a 409 whose message says that WHAT is made on the primary and names where to send
 * the request, and returns true; on the primary returns false. */
bool control_refused_on_secondary(control_t *ctl, struct MHD_Connection *conn, const char *what,
                                  enum MHD_Result *ret);

/* change_submit() from a libmicrohttpd thread (an RCU reader for the call only). */
int control_submit(const change_t *ch, change_result_t *res, char *err, size_t errlen);

/* ---- handlers ---- */

enum MHD_Result control_handle_status(control_t *ctl, struct MHD_Connection *conn);
enum MHD_Result control_handle_metrics(control_t *ctl, struct MHD_Connection *conn);
enum MHD_Result control_handle_page(control_t *ctl, struct MHD_Connection *conn);
enum MHD_Result control_handle_nodes(control_t *ctl, struct MHD_Connection *conn);
enum MHD_Result control_handle_node_add(control_t *ctl, struct MHD_Connection *conn,
                                        request_t *req);
enum MHD_Result control_handle_node_remove(control_t *ctl, struct MHD_Connection *conn,
                                           request_t *req);
enum MHD_Result control_handle_zone_reload(control_t *ctl, struct MHD_Connection *conn,
                                           request_t *req);
enum MHD_Result control_handle_zone_records(control_t *ctl, struct MHD_Connection *conn,
                                            request_t *req);
enum MHD_Result control_handle_zone_changes(control_t *ctl, struct MHD_Connection *conn,
                                            request_t *req);
enum MHD_Result control_handle_health(control_t *ctl, struct MHD_Connection *conn);
enum MHD_Result control_handle_health_override(control_t *ctl, struct MHD_Connection *conn,
                                               request_t *req);
enum MHD_Result control_handle_drain(control_t *ctl, struct MHD_Connection *conn, request_t *req);

#endif
