/*
 * The control endpoint's reads of the node: GET /v1/status, GET /metrics, and the replication
 * views they and GET /v1/nodes share. Every answer is built from one control_view_t taken at
 * once, so the numbers of one answer agree with each other; the renderers are pure functions
 * of the snapshot (control.h) so that the unit tests see what the daemon sends.
 */
#include "control_int.h"
#include "fennec/common.h"
#include "fennec/zone.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int control_view_take(control_t *ctl, control_view_t *v, unsigned what)
{
    bool history = what & CONTROL_VIEW_HISTORY;
    memset(v, 0, sizeof(*v));
    control_snapshot_t *snap = &v->snap;
    snap->node_id = ctl->cfg->node_id;
    snap->role = ctl->cfg->role == CFG_ROLE_PRIMARY ? "primary" : "secondary";
    snap->version = FENNEC_VERSION;
    snap->start_time = ctl->start_time;
    snap->now = fennec_wall_now();
    snap->control_address = ctl->cfg->control.text;
    snap->primary_address = ctl->cfg->has_primary ? ctl->cfg->primary.text : NULL;
    if (ctl->srv) {
        server_stats_get(ctl->srv, &snap->stats);
        unsigned n = server_workers(ctl->srv);
        for (unsigned i = 0; i < n && i < CONTROL_MAX_WORKERS; i++)
            if (server_overload_get(ctl->srv, i, &snap->overload[i]) == 0)
                snap->overload_count = i + 1;
    }

    /* The HTTP thread is an RCU reader only while it reads the zone set: it belongs to
     * libmicrohttpd and ends without a hook where it could unregister. */
    zone_reader_register();
    zone_read_lock();
    const zone_set_t *set = zone_set_current();
    size_t n = set ? zone_set_count(set) : 0;
    control_zone_info_t *zi = calloc(n ? n : 1, sizeof(*zi));
    if (zi) {
        for (size_t i = 0; i < n; i++) {
            const zone_t *z = zone_set_at(set, i);
            snprintf(zi[i].name, sizeof(zi[i].name), "%s", zone_name(z));
            zi[i].serial = zone_serial(z);
            zi[i].records = zone_record_count(z);
        }
    }
    zone_read_unlock();
    zone_reader_unregister();
    if (!zi)
        return -ENOMEM;
    v->zones = zi;
    snap->zones = zi;
    snap->zone_count = n;

    /* Whoever looks at the lag also keeps its history going. */
    repl_history_tick(snap->now);
    int m = repl_members_get(&v->members);
    if (m < 0 || repl_status_get(&v->repl, snap->now) != 0 ||
        (history && repl_history_get(&v->history) != 0)) {
        control_view_release(v);
        return -ENOMEM;
    }
    snap->repl = &v->repl;
    snap->members = v->members;
    snap->member_count = (size_t)m;
    snap->history = history ? &v->history : NULL;
    if (change_journal()) {
        change_journal_stats(&v->journal);
        snap->journal = &v->journal;
    }
    if (what & CONTROL_VIEW_HEALTH) {
        if (health_report_get(&v->health) != 0) {
            control_view_release(v);
            return -ENOMEM;
        }
        snap->health = &v->health;
    }
    /* The cluster's view is shown on every node; this node's own part only under a
     * supervisor. */
    if (repl_announce_view_get(&v->announce, snap->now) != 0) {
        control_view_release(v);
        return -ENOMEM;
    }
    snap->announce = &v->announce;
    snap->anycast_cfg = &ctl->cfg->anycast;
    anycast_status_get(&v->anycast);
    if (v->anycast.supervised)
        snap->anycast = &v->anycast;
    return 0;
}

void control_view_release(control_view_t *v)
{
    free(v->zones);
    free(v->members);
    repl_status_free(&v->repl);
    repl_history_free(&v->history);
    health_report_free(&v->health);
    repl_announce_view_free(&v->announce);
    memset(v, 0, sizeof(*v));
}

/* ---- replication views -------------------------------------------------------------------- */

static bool is_primary(const control_snapshot_t *snap)
{
    return snap->role && strcmp(snap->role, "primary") == 0;
}

static json_t *contact_json(double seconds)
{
    return seconds < 0 ? json_null() : json_real(seconds);
}

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

/* One node as the primary sees it, with the keys of the status contract. */
static json_t *peer_json(const repl_node_status_t *n)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:I, s:I, s:f, s:o}", "id", n->id, "address", n->address,
                     "connected", n->connected, "state", repl_state_name(n->state), "applied_index",
                     (json_int_t)n->applied_index, "entries_behind", (json_int_t)n->entries_behind,
                     "seconds_behind", n->seconds_behind, "last_contact_seconds",
                     contact_json(n->last_contact_seconds));
}

json_t *control_repl_json(const control_snapshot_t *snap)
{
    const repl_status_t *r = snap->repl;
    if (!r)
        return NULL;
    if (is_primary(snap)) {
        json_t *nodes = json_array();
        for (size_t i = 0; nodes && i < r->node_count; i++)
            if (json_array_append_new(nodes, peer_json(&r->nodes[i])) != 0) {
                json_decref(nodes);
                return NULL;
            }
        return json_pack(
            "{s:s, s:I, s:o, s:o}", "role", "primary", "index", (json_int_t)r->index, "commit_time",
            r->commit_time > 0 ? json_real(r->commit_time) : json_null(), "nodes", nodes);
    }
    return json_pack(
        "{s:s, s:o, s:b, s:s, s:I, s:I, s:I, s:f, s:o}", "role", "secondary", "primary",
        str_or_null(snap->primary_address ? snap->primary_address : r->primary_addr), "connected",
        r->connected, "state", repl_state_name(r->state), "applied_index",
        (json_int_t)r->applied_index, "primary_index", (json_int_t)r->primary_index,
        "entries_behind", (json_int_t)r->entries_behind, "seconds_behind", r->seconds_behind,
        "last_contact_seconds", contact_json(r->last_contact_seconds));
}

/* The address this node has in the member list, else its listen.control. */
static const char *self_address(const control_snapshot_t *snap)
{
    for (size_t i = 0; i < snap->member_count; i++)
        if (snap->node_id && strcmp(snap->members[i].id, snap->node_id) == 0)
            return snap->members[i].address;
    return snap->control_address ? snap->control_address : "";
}

static json_t *row(const char *id, const char *address, json_t *role, bool self, json_t *connected,
                   json_t *state, json_t *applied, json_t *entries, json_t *seconds,
                   json_t *contact)
{
    return json_pack("{s:s, s:s, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o}", "id", id, "address",
                     address, "role", role, "self", self, "connected", connected, "state", state,
                     "applied_index", applied, "entries_behind", entries, "seconds_behind", seconds,
                     "last_contact_seconds", contact);
}

/* A node's row gets its announce state from the cluster view, when there is one. */
static void row_announce(json_t *row, const control_snapshot_t *snap, const char *id)
{
    if (!row)
        return;
    const repl_announce_view_t *v = snap->announce;
    repl_announce_t st = REPL_ANNOUNCE_UNKNOWN;
    for (size_t i = 0; v && i < v->count; i++)
        if (strcmp(v->entries[i].id, id) == 0)
            st = v->entries[i].state;
    json_object_set_new(row, "announced",
                        st == REPL_ANNOUNCE_UNKNOWN ? json_null()
                                                    : json_boolean(st == REPL_ANNOUNCE_ANNOUNCED));
    json_object_set_new(row, "anycast",
                        st == REPL_ANNOUNCE_UNKNOWN ? json_null()
                                                    : json_string(repl_announce_name(st)));
}

json_t *control_nodes_json(const control_snapshot_t *snap)
{
    const repl_status_t *r = snap->repl;
    if (!r)
        return NULL;
    const char *self_id = snap->node_id ? snap->node_id : "";
    bool primary = is_primary(snap);
    json_t *nodes = json_array();
    if (!nodes)
        return NULL;
    json_t *me;
    if (primary)
        me = row(self_id, self_address(snap), json_string("primary"), true, json_true(),
                 json_string(repl_state_name(REPL_STREAMING)), json_integer((json_int_t)r->index),
                 json_integer(0), json_real(0), json_real(0));
    else
        me = row(self_id, self_address(snap), json_string("secondary"), true,
                 json_boolean(r->connected), json_string(repl_state_name(r->state)),
                 json_integer((json_int_t)r->applied_index),
                 json_integer((json_int_t)r->entries_behind), json_real(r->seconds_behind),
                 contact_json(r->last_contact_seconds));
    row_announce(me, snap, self_id);
    if (json_array_append_new(nodes, me) != 0)
        goto fail;
    for (size_t i = 0; i < snap->member_count; i++) {
        const repl_member_t *m = &snap->members[i];
        if (strcmp(m->id, self_id) == 0)
            continue;
        const repl_node_status_t *n = NULL;
        for (size_t k = 0; primary && k < r->node_count && !n; k++)
            if (strcmp(r->nodes[k].id, m->id) == 0)
                n = &r->nodes[k];
        json_t *o;
        if (n) {
            o = row(m->id, m->address, json_string("secondary"), false, json_boolean(n->connected),
                    json_string(repl_state_name(n->state)),
                    json_integer((json_int_t)n->applied_index),
                    json_integer((json_int_t)n->entries_behind), json_real(n->seconds_behind),
                    contact_json(n->last_contact_seconds));
        } else {
            /* A secondary knows the other members from the log only, not their lag. */
            json_t *role =
                primary ? json_string("secondary")
                : r->primary_id[0]
                    ? json_string(strcmp(r->primary_id, m->id) == 0 ? "primary" : "secondary")
                    : json_null();
            o = row(m->id, m->address, role, false, json_null(), json_null(), json_null(),
                    json_null(), json_null(), json_null());
        }
        row_announce(o, snap, m->id);
        if (json_array_append_new(nodes, o) != 0)
            goto fail;
    }
    return json_pack("{s:o}", "nodes", nodes);
fail:
    json_decref(nodes);
    return NULL;
}

/* ---- handlers ----------------------------------------------------------------------------- */

static json_t *queries_json(const server_stats_t *s)
{
    const query_stats_t *q = &s->query;
    json_t *rcodes = json_object();
    for (unsigned r = 0; r < QUERY_RCODE_MAX; r++) {
        const char *name = control_rcode_name(r);
        char other[16];
        if (r > 5 && q->rcode[r] == 0)
            continue;
        if (!name) {
            snprintf(other, sizeof(other), "RCODE%u", r);
            name = other;
        }
        json_object_set_new(rcodes, name, json_integer((json_int_t)q->rcode[r]));
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "total",
                     (json_int_t)(q->queries[0] + q->queries[1]), "udp",
                     (json_int_t)q->queries[QUERY_UDP], "tcp", (json_int_t)q->queries[QUERY_TCP],
                     "ignored", (json_int_t)q->dropped, "truncated", (json_int_t)q->truncated,
                     "responses", rcodes);
}

enum MHD_Result control_handle_status(control_t *ctl, struct MHD_Connection *conn)
{
    control_view_t v;
    if (control_view_take(ctl, &v, 0) != 0)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    const control_snapshot_t *snap = &v.snap;
    json_t *zones = json_array();
    for (size_t i = 0; i < snap->zone_count; i++)
        json_array_append_new(zones, json_pack("{s:s, s:I, s:I}", "name", v.zones[i].name, "serial",
                                               (json_int_t)v.zones[i].serial, "records",
                                               (json_int_t)v.zones[i].records));
    double up = snap->now - snap->start_time;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "node_id",
                          snap->node_id, "role", snap->role, "version", snap->version,
                          "uptime_seconds", (json_int_t)(up > 0 ? up : 0), "start_time",
                          (json_int_t)snap->start_time, "workers", (json_int_t)snap->stats.workers,
                          "zones", zones, "queries", queries_json(&snap->stats), "replication",
                          control_repl_json(snap), "anycast", control_anycast_json(snap));
    control_view_release(&v);
    if (!o)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    return control_send_json(conn, MHD_HTTP_OK, o);
}

enum MHD_Result control_handle_metrics(control_t *ctl, struct MHD_Connection *conn)
{
    control_view_t v;
    char *text = NULL;
    size_t len = 0;
    if (control_view_take(ctl, &v, CONTROL_VIEW_HEALTH) != 0)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    int rc = control_metrics_render(&v.snap, &text, &len);
    control_view_release(&v);
    if (rc != 0)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    return control_send_text(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                             len);
}
