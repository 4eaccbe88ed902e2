/*
 * Anycast in the control API: the "anycast" object of /v1/status and POST /v1/drain.
 *
 * A drain is relayed to fennec-supervisor, which owns the announcement; this file only
 * decides whether it may happen. The rule (DESIGN, "Deploy and anycast"): a drain never
 * leaves fewer than anycast.min_announced nodes announced unless forced. The count comes from
 * the cluster's announce view (repl.h): the primary's own, or the one the primary last sent a
 * secondary. A secondary whose view is stale (its primary is away) cannot know the count and
 * refuses, saying so; losing the primary never withdraws anything by itself.
 */
#include "control_int.h"
#include "fennec/anycast.h"
#include "fennec/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_WAIT_MS 3000

static json_t *cluster_json(const control_snapshot_t *snap)
{
    const repl_announce_view_t *v = snap->announce;
    if (!v)
        return json_null();
    return json_pack("{s:I, s:I, s:b, s:o, s:I}", "announced", (json_int_t)v->announced, "nodes",
                     (json_int_t)v->count, "fresh", v->fresh, "age_seconds",
                     v->age < 0 ? json_null() : json_real(v->age), "min_announced",
                     (json_int_t)(snap->anycast_cfg ? snap->anycast_cfg->min_announced : 1));
}

json_t *control_anycast_json(const control_snapshot_t *snap)
{
    const anycast_status_t *a = snap->anycast;
    if (!a)
        return json_null();
    const supervisor_report_t *r = &a->rep;
    json_t *service = json_array();
    for (size_t i = 0; service && snap->anycast_cfg && i < snap->anycast_cfg->service_count; i++)
        json_array_append_new(service, json_string(snap->anycast_cfg->service[i].text));
    uint64_t transitions = 0;
    for (int i = 0; i < REPL_ANNOUNCE_COUNT; i++)
        transitions += r->transitions[i];
    return json_pack("{s:s, s:o, s:s, s:I, s:I, s:b, s:s, s:{s:b, s:o}, s:o, s:o}", "state",
                     a->reported ? repl_announce_name(r->state) : "unknown", "since",
                     a->reported ? json_real(r->since) : json_null(), "reason", r->reason,
                     "transitions", (json_int_t)transitions, "restarts", (json_int_t)r->restarts,
                     "drain", r->drain, "supervisor", a->linked ? "linked" : "gone", "bird",
                     "connected", r->bird_connected, "error",
                     r->bird_error[0] ? json_string(r->bird_error) : json_null(), "service",
                     service ? service : json_array(), "cluster", cluster_json(snap));
}

/* The ids of the announced nodes in V, "n1, n2", into BUF. */
static void announced_ids(const repl_announce_view_t *v, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < v->count && o < cap; i++) {
        if (v->entries[i].state != REPL_ANNOUNCE_ANNOUNCED)
            continue;
        int k = snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", v->entries[i].id);
        if (k < 0)
            break;
        o += (size_t)k;
    }
    if (!buf[0])
        snprintf(buf, cap, "none");
}

static json_t *refusal(const char *msg, const repl_announce_view_t *v, uint32_t min)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:b}", "error", msg, "announced",
                     (json_int_t)v->announced, "nodes", (json_int_t)v->count, "min_announced",
                     (json_int_t)min, "fresh", v->fresh);
}

enum MHD_Result control_handle_drain(control_t *ctl, struct MHD_Connection *conn, request_t *req)
{
    static const char *const keys[] = {"drain", "force", NULL};
    char err[1024];
    json_t *root = control_load_object(req->body, req->len, err, sizeof(err));
    if (!root)
        return control_send_rc(conn, FENNEC_EMALFORMED, "%s", err);
    if (control_check_keys(root, keys, "drain, force", err, sizeof(err)) != 0) {
        json_decref(root);
        return control_send_rc(conn, FENNEC_EMALFORMED, "%s", err);
    }
    json_t *jd = json_object_get(root, "drain"), *jf = json_object_get(root, "force");
    if (!json_is_boolean(jd) || (jf && !json_is_boolean(jf))) {
        json_decref(root);
        return control_send_rc(conn, FENNEC_EMALFORMED,
                               "the body is {\"drain\": true|false, \"force\": true|false}: "
                               "\"drain\" is required, both are booleans");
    }
    bool drain = json_is_true(jd), force = jf && json_is_true(jf);
    json_decref(root);

    anycast_status_t st;
    anycast_status_get(&st);
    if (!st.supervised)
        return control_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "node %s: fennecd runs without fennec-supervisor, which owns "
                                  "the anycast announcement: nothing to drain (start the node "
                                  "with fennec-supervisor -c CONFIG)",
                                  ctl->cfg->node_id);
    if (!st.linked)
        return control_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "node %s: the link to fennec-supervisor is gone (the "
                                  "supervisor stopped): the announcement cannot be changed "
                                  "from here",
                                  ctl->cfg->node_id);
    uint32_t min = ctl->cfg->anycast.min_announced;
    if (drain && !force) {
        repl_announce_view_t v;
        if (repl_announce_view_get(&v, fennec_wall_now()) != 0)
            return control_send_rc(conn, -ENOMEM, "out of memory");
        /* Our own row of the view (its first) is our current state: taken from the same view
         * as the count, so that the two agree. */
        bool self_announced = v.count > 0 && v.entries[0].state == REPL_ANNOUNCE_ANNOUNCED;
        char ids[512], msg[1024];
        announced_ids(&v, ids, sizeof(ids));
        json_t *o = NULL;
        if (!v.fresh) {
            if (v.age < 0)
                snprintf(msg, sizeof(msg),
                         "drain of %s refused: this node has no view of the cluster's "
                         "announcements yet (its primary has not reported one), so it cannot "
                         "tell whether anycast.min_announced %u would still be announced; "
                         "force it (fennecctl drain --force) if you know",
                         ctl->cfg->node_id, min);
            else
                snprintf(msg, sizeof(msg),
                         "drain of %s refused: this node's view of the cluster's "
                         "announcements is %.1f s old (the primary is not reachable), so it "
                         "cannot tell whether anycast.min_announced %u would still be "
                         "announced; force it (fennecctl drain --force) if you know",
                         ctl->cfg->node_id, v.age, min);
            o = refusal(msg, &v, min);
        } else if (self_announced && v.announced < (size_t)min + 1) {
            snprintf(msg, sizeof(msg),
                     "drain of %s refused: %zu of %zu node(s) are announced (%s); draining "
                     "this one leaves %zu, fewer than anycast.min_announced %u; undrain or "
                     "start another node first, or force it (fennecctl drain --force)",
                     ctl->cfg->node_id, v.announced, v.count, ids, v.announced - 1, min);
            o = refusal(msg, &v, min);
        }
        repl_announce_view_free(&v);
        if (o) {
            log_warn("anycast", "%s", msg);
            return control_send_json(conn, MHD_HTTP_CONFLICT, o);
        }
    }
    if (drain && force)
        log_warn("anycast", "drain of %s forced: anycast.min_announced (%u) not checked",
                 ctl->cfg->node_id, min);
    supervisor_report_t after;
    int rc = anycast_drain(drain, DRAIN_WAIT_MS, &after);
    if (rc == -EPIPE)
        return control_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "the link to fennec-supervisor is gone: the request did not "
                                  "reach it");
    if (rc == FENNEC_ETIMEOUT)
        return control_send_error(conn, MHD_HTTP_GATEWAY_TIMEOUT,
                                  "fennec-supervisor did not answer within %d ms; the %s may "
                                  "still happen: see GET /v1/status",
                                  DRAIN_WAIT_MS, drain ? "drain" : "undrain");
    if (rc != 0)
        return control_send_rc(conn, rc, "%s", fennec_strerror(rc));
    return control_send_json(
        conn, MHD_HTTP_OK,
        json_pack("{s:s, s:b, s:b, s:s, s:b, s:o}", "state", repl_announce_name(after.state),
                  "drain", after.drain, "forced", drain && force, "reason", after.reason,
                  "bird_connected", after.bird_connected, "bird_error",
                  after.bird_error[0] ? json_string(after.bird_error) : json_null()));
}
