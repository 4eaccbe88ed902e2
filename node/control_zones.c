/*
 * The zone writes of the control endpoint: reload, record edit, change batch. Each one
 * validates its request, submits one change to the one write path (change_submit()) and
 * answers with the change's index, after ?wait=all when asked.
 */
#include "control_int.h"
#include "fennec/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------------------------ */
/* zone names                                                                                 */

static void name_canon(const char *in, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", in);
    size_t n = strlen(out);
    if (n > 1 && out[n - 1] == '.')
        out[n - 1] = '\0';
}

static bool name_eq(const char *a, const char *b)
{
    char ca[1030], cb[1030];
    name_canon(a, ca, sizeof(ca));
    name_canon(b, cb, sizeof(cb));
    return strcasecmp(ca, cb) == 0;
}

static const cfg_zone_t *cfg_zone_find(const cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->zone_count; i++)
        if (name_eq(cfg->zones[i].name, name))
            return &cfg->zones[i];
    return NULL;
}

/* Adds {"change": AT, "message": ...} to the "warnings" of BODY for an add that asked for
 * TTL ASKED above ZONE_TTL_MAX (capped, RFC 2181 8), and logs it. */
static void warn_ttl(json_t *body, const char *zone, size_t at, uint32_t asked)
{
    if (!body || !asked)
        return;
    char msg[160];
    snprintf(msg, sizeof(msg), "TTL %u is above %u (RFC 2181 section 8): capped to %u", asked,
             ZONE_TTL_MAX, ZONE_TTL_MAX);
    log_warn("control", "%s: change %zu: %s", zone, at, msg);
    json_t *list = json_object_get(body, "warnings");
    if (!list) {
        list = json_array();
        json_object_set_new(body, "warnings", list);
    }
    json_array_append_new(list, json_pack("{s:I, s:s}", "change", (json_int_t)at, "message", msg));
}

/* ------------------------------------------------------------------------------------------ */
/* handlers                                                                                   */

enum MHD_Result control_handle_zone_reload(control_t *ctl, struct MHD_Connection *conn,
                                           request_t *req)
{
    char err[1024];
    change_result_t res;
    change_t ch = {.kind = CHANGE_RELOAD,
                   .zone = req->arg,
                   .cfg = atomic_load(&ctl->zones_cfg),
                   .force = req->force,
                   .source = req->force ? "api, forced" : "api"};
    int rc = control_submit(&ch, &res, err, sizeof(err));
    if (rc == FENNEC_EZONE)
        return control_send_rc(conn, rc, "%s; the previous version is still served", err);
    if (rc != 0)
        return control_send_rc(conn, rc, "%s", err);
    char canon[1030];
    name_canon(req->arg, canon, sizeof(canon));
    for (char *p = canon; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    return control_send_written(conn, req,
                                json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "zone", canon, "result",
                                          res.unchanged ? "unchanged" : "reloaded", "added",
                                          (json_int_t)res.added, "deleted", (json_int_t)res.removed,
                                          "serial", (json_int_t)res.serial, "index",
                                          (json_int_t)res.index),
                                res.index);
}

enum MHD_Result control_handle_zone_records(control_t *ctl, struct MHD_Connection *conn,
                                            request_t *req)
{
    const cfg_zone_t *cz = cfg_zone_find(atomic_load(&ctl->zones_cfg), req->arg);
    if (!cz)
        return control_send_rc(conn, FENNEC_ENOTFOUND, "zone %s is not configured on this node",
                               req->arg);
    control_record_req_t *rr = malloc(sizeof(*rr));
    if (!rr)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    char err[1024];
    enum MHD_Result ret;
    int rc =
        control_record_parse(cz->name, req->body ? req->body : "", req->len, rr, err, sizeof(err));
    if (rc != 0) {
        ret = control_send_rc(conn, rc, "%s", err);
    } else {
        zone_change_t zc;
        control_record_change(rr, &zc);
        change_result_t res;
        change_t ch = {
            .kind = CHANGE_EDIT, .zone = cz->name, .changes = &zc, .count = 1, .source = "api"};
        rc = control_submit(&ch, &res, err, sizeof(err));
        if (rc == 0) {
            json_t *body =
                json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "zone", cz->name, "result",
                          rr->op == CONTROL_RECORD_ADD ? "added" : "deleted", "name", rr->owner,
                          "type", rr->type_name, "ttl", (json_int_t)rr->ttl, "serial",
                          (json_int_t)res.serial, "index", (json_int_t)res.index);
            warn_ttl(body, cz->name, 0, rr->ttl_asked);
            ret = control_send_written(conn, req, body, res.index);
        } else
            ret = control_send_rc(conn, rc, "%s", err);
    }
    free(rr);
    return ret;
}

enum MHD_Result control_handle_zone_changes(control_t *ctl, struct MHD_Connection *conn,
                                            request_t *req)
{
    const cfg_zone_t *cz = cfg_zone_find(atomic_load(&ctl->zones_cfg), req->arg);
    if (!cz)
        return control_send_rc(conn, FENNEC_ENOTFOUND, "zone %s is not configured on this node",
                               req->arg);
    char err[1024];
    size_t at = SIZE_MAX;
    control_batch_t batch;
    int rc = control_batch_parse(cz->name, req->body ? req->body : "", req->len, &batch, &at, err,
                                 sizeof(err));
    if (rc != 0)
        return control_send_rc_at(conn, rc, at, "%s", err);
    change_result_t res;
    change_t ch = {.kind = CHANGE_EDIT,
                   .zone = cz->name,
                   .changes = batch.changes,
                   .count = batch.count,
                   .source = "api"};
    rc = control_submit(&ch, &res, err, sizeof(err));
    enum MHD_Result ret;
    if (rc == 0) {
        json_t *body = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "zone", cz->name, "result",
                                 "applied", "applied", (json_int_t)batch.count, "added",
                                 (json_int_t)res.added, "deleted", (json_int_t)res.removed,
                                 "serial", (json_int_t)res.serial, "index", (json_int_t)res.index);
        for (size_t i = 0; batch.ttl_asked && i < batch.count; i++)
            warn_ttl(body, cz->name, i, batch.ttl_asked[i]);
        ret = control_send_written(conn, req, body, res.index);
    } else if (res.at != SIZE_MAX)
        ret = control_send_rc_at(conn, rc, res.at, "changes[%zu]: %s; nothing was changed", res.at,
                                 err);
    else
        ret = control_send_rc(conn, rc, "%s; nothing was changed", err);
    control_batch_deinit(&batch);
    return ret;
}
