/*
 * /v1/health: what this node's prober sees (every node probes on its own, so each node answers
 * with its own view), and overrides. An override is a change like any other
 * (CHANGE_HEALTH_OVERRIDE): journaled on the primary, it reaches every node through the log
 * and is applied there by the one apply function, so only the primary takes one; a secondary
 * answers 409 and says where to send it, as for membership changes.
 */
#include "control_int.h"
#include "fennec/common.h"
#include "fennec/health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the view (pure) ---------------------------------------------------------------------- */

const char *control_health_state_name(health_status_t s)
{
    switch (s) {
    case HEALTH_UP:
        return "up";
    case HEALTH_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

static const char *kind_name(health_kind_t k)
{
    switch (k) {
    case HEALTH_HTTPS:
        return "https";
    case HEALTH_TCP:
        return "tcp";
    default:
        return "http";
    }
}

static json_t *override_json(health_override_t o)
{
    if (o == HEALTH_OVERRIDE_UP)
        return json_string("up");
    if (o == HEALTH_OVERRIDE_DOWN)
        return json_string("down");
    return json_null();
}

/* A check as its pools take it: the override wins, else the machine's state (unknown is
 * served as up; the name keeps it apart so that an operator sees no result came yet). */
static const char *member_state(const health_check_state_t *s)
{
    if (s->override == HEALTH_OVERRIDE_UP)
        return "up";
    if (s->override == HEALTH_OVERRIDE_DOWN)
        return "down";
    return control_health_state_name(s->status);
}

static json_t *check_json(const health_check_def_t *d, const health_check_state_t *s)
{
    bool probed = s->last_latency_ms >= 0;
    return json_pack("{s:s, s:s, s:s, s:s, s:f, s:o, s:o, s:o, s:I}", "name", d->name, "type",
                     kind_name(d->kind), "target", d->target, "state",
                     control_health_state_name(s->status), "since", s->since, "last_result",
                     probed ? json_string(s->last_result) : json_null(), "last_latency_ms",
                     probed ? json_real(s->last_latency_ms) : json_null(), "override",
                     override_json(s->override), "transitions", (json_int_t)s->transitions);
}

static json_t *address_json(const uint8_t *addr, uint16_t type)
{
    char text[INET6_ADDRSTRLEN];
    int af = type == 28 ? AF_INET6 : AF_INET;
    if (!inet_ntop(af, addr, text, sizeof(text)))
        return json_string("?");
    return json_string(text);
}

static json_t *pool_json(const health_report_t *r, size_t p)
{
    const health_pool_def_t *d = &r->config->pools[p];
    json_t *serving = json_array();
    json_t *members = json_array();
    if (!serving || !members)
        goto fail;
    for (size_t i = 0; i < r->pool_serving_count[p] && i < HEALTH_MAX_MEMBERS; i++)
        if (json_array_append_new(serving, address_json(r->pool_serving[p][i], d->type)) != 0)
            goto fail;
    for (size_t i = 0; i < d->member_count; i++) {
        const health_member_def_t *m = &d->members[i];
        const health_check_def_t *c = &r->config->checks[m->check];
        json_t *o = json_pack("{s:o, s:s, s:s}", "address", address_json(m->addr, d->type), "check",
                              c->name, "state", member_state(&r->states[m->check]));
        if (json_array_append_new(members, o) != 0)
            goto fail;
    }
    return json_pack("{s:s, s:s, s:I, s:o, s:o}", "name", d->name, "type",
                     d->type == 28 ? "AAAA" : "A", "ttl_now", (json_int_t)r->pool_ttl[p], "serving",
                     serving, "members", members);
fail:
    json_decref(serving);
    json_decref(members);
    return NULL;
}

json_t *control_health_json(const health_report_t *r)
{
    json_t *checks = json_array();
    json_t *pools = json_array();
    if (!checks || !pools)
        goto fail;
    const health_config_t *cfg = r ? r->config : NULL;
    for (size_t i = 0; cfg && i < cfg->check_count; i++)
        if (json_array_append_new(checks, check_json(&cfg->checks[i], &r->states[i])) != 0)
            goto fail;
    for (size_t p = 0; cfg && p < cfg->pool_count; p++)
        if (json_array_append_new(pools, pool_json(r, p)) != 0)
            goto fail;
    return json_pack("{s:o, s:o}", "checks", checks, "pools", pools);
fail:
    json_decref(checks);
    json_decref(pools);
    return NULL;
}

/* ---- handlers ----------------------------------------------------------------------------- */

enum MHD_Result control_handle_health(control_t *ctl, struct MHD_Connection *conn)
{
    (void)ctl;
    health_report_t r;
    if (health_report_get(&r) != 0)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    json_t *o = control_health_json(&r);
    health_report_free(&r);
    if (!o)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    return control_send_json(conn, MHD_HTTP_OK, o);
}

static bool check_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= HEALTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

enum MHD_Result control_handle_health_override(control_t *ctl, struct MHD_Connection *conn,
                                               request_t *req)
{
    static const char *const keys[] = {"state", NULL};
    char err[1024];
    if (!check_name_ok(req->arg))
        return control_send_rc(conn, FENNEC_EMALFORMED,
                               "check name must be 1 to 63 letters, digits, '-', '_' or '.'");
    json_t *root = control_load_object(req->body, req->len, err, sizeof(err));
    if (!root)
        return control_send_rc(conn, FENNEC_EMALFORMED, "%s", err);
    enum MHD_Result ret;
    const char *state;
    if (control_check_keys(root, keys, "state", err, sizeof(err)) != 0 ||
        !(state = control_get_string(root, "state", 8, "\"up\", \"down\" or \"clear\"", err,
                                     sizeof(err)))) {
        ret = control_send_rc(conn, FENNEC_EMALFORMED, "%s", err);
    } else if (strcmp(state, "up") != 0 && strcmp(state, "down") != 0 &&
               strcmp(state, "clear") != 0) {
        ret = control_send_rc(conn, FENNEC_EMALFORMED,
                              "field \"state\" must be \"up\", \"down\" or \"clear\"");
    } else if (!control_refused_on_secondary(ctl, conn, "health overrides", &ret)) {
        health_override_t o = strcmp(state, "up") == 0     ? HEALTH_OVERRIDE_UP
                              : strcmp(state, "down") == 0 ? HEALTH_OVERRIDE_DOWN
                                                           : HEALTH_OVERRIDE_NONE;
        change_result_t res;
        change_t ch = {.kind = CHANGE_HEALTH_OVERRIDE,
                       .check = req->arg,
                       .override_state = o,
                       .source = "api"};
        int rc = control_submit(&ch, &res, err, sizeof(err));
        if (rc == 0)
            ret = control_send_written(conn, req,
                                       json_pack("{s:s, s:o, s:s, s:I}", "check", req->arg,
                                                 "override", override_json(o), "result",
                                                 o == HEALTH_OVERRIDE_NONE ? "cleared" : "set",
                                                 "index", (json_int_t)res.index),
                                       res.index);
        else if (rc == FENNEC_ENOTFOUND)
            ret = control_send_rc(conn, rc,
                                  "no health check named %s in the health section (GET "
                                  "/v1/health lists them)",
                                  req->arg);
        else
            ret = control_send_rc(conn, rc, "%s", err);
    }
    json_decref(root);
    return ret;
}
