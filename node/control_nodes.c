/*
 * /v1/nodes: the member list with each node's replication state, and membership changes.
 * A membership change is a change like any other (change_submit(), CHANGE_MEMBER_ADD and
 * CHANGE_MEMBER_REMOVE): journaled and applied on the primary, it reaches every node through
 * the log. Only the primary takes one; a secondary answers 409 and says where to send it,
 * as the request is well formed and authorized but this node cannot be its origin.
 */
#include "control_int.h"
#include "fennec/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result control_handle_nodes(control_t *ctl, struct MHD_Connection *conn)
{
    control_view_t v;
    if (control_view_take(ctl, &v, 0) != 0)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    json_t *o = control_nodes_json(&v.snap);
    control_view_release(&v);
    if (!o)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    return control_send_json(conn, MHD_HTTP_OK, o);
}

bool control_refused_on_secondary(control_t *ctl, struct MHD_Connection *conn, const char *what,
                                  enum MHD_Result *ret)
{
    if (ctl->cfg->role == CFG_ROLE_PRIMARY)
        return false;
    repl_status_t st;
    char where[256];
    char addr[REPL_ADDR_MAX];
    if (repl_status_get(&st, fennec_wall_now()) == 0 && st.primary_id[0] &&
        repl_member_find(st.primary_id, addr))
        snprintf(where, sizeof(where), "the primary %s at %s", st.primary_id, addr);
    else if (ctl->cfg->has_primary)
        snprintf(where, sizeof(where),
                 "the primary's control endpoint (cluster.primary here is %s, its replication "
                 "listener)",
                 ctl->cfg->primary.text);
    else
        snprintf(where, sizeof(where), "the primary's control endpoint");
    repl_status_free(&st);
    *ret = control_send_error(conn, MHD_HTTP_CONFLICT,
                              "node %s is a secondary: %s are made on the primary; send this "
                              "request to %s",
                              ctl->cfg->node_id, what, where);
    return true;
}

enum MHD_Result control_handle_node_add(control_t *ctl, struct MHD_Connection *conn, request_t *req)
{
    static const char *const keys[] = {"id", "address", NULL};
    enum MHD_Result ret;
    if (control_refused_on_secondary(ctl, conn, "cluster membership changes", &ret))
        return ret;
    char err[1024];
    json_t *root = control_load_object(req->body, req->len, err, sizeof(err));
    if (!root)
        return control_send_rc(conn, FENNEC_EMALFORMED, "%s", err);
    const char *id, *addr;
    cfg_addr_t parsed;
    if (control_check_keys(root, keys, "id, address", err, sizeof(err)) != 0 ||
        !(id = control_get_string(root, "id", REPL_ID_MAX - 1, "node id", err, sizeof(err))) ||
        !(addr =
              control_get_string(root, "address", REPL_ADDR_MAX - 1,
                                 "host:port of the node's control endpoint", err, sizeof(err)))) {
        ret = control_send_rc(conn, FENNEC_EMALFORMED, "%s", err);
    } else if (!repl_member_id_valid(id)) {
        ret = control_send_rc(conn, FENNEC_EMALFORMED,
                              "field \"id\" must be 1 to 63 letters, digits, '-', '_' or '.'");
    } else if (cfg_addr_parse(addr, &parsed) != 0) {
        ret = control_send_rc(conn, FENNEC_EMALFORMED,
                              "field \"address\" must be the node's control endpoint as "
                              "IPv4:port or [IPv6]:port, not \"%.80s\"",
                              addr);
    } else {
        char before[REPL_ADDR_MAX];
        bool known = repl_member_find(id, before);
        change_result_t res;
        change_t ch = {
            .kind = CHANGE_MEMBER_ADD, .member_id = id, .member_address = addr, .source = "api"};
        int rc = control_submit(&ch, &res, err, sizeof(err));
        if (rc == 0)
            ret = control_send_written(conn, req,
                                       json_pack("{s:s, s:s, s:s, s:I}", "id", id, "address", addr,
                                                 "result", known ? "updated" : "added", "index",
                                                 (json_int_t)res.index),
                                       res.index);
        else if (rc == FENNEC_EEXISTS)
            ret =
                control_send_rc(conn, rc, "node %s is a member with address %s already", id, addr);
        else
            ret = control_send_rc(conn, rc, "%s", err);
    }
    json_decref(root);
    return ret;
}

enum MHD_Result control_handle_node_remove(control_t *ctl, struct MHD_Connection *conn,
                                           request_t *req)
{
    enum MHD_Result ret;
    if (!repl_member_id_valid(req->arg))
        return control_send_rc(conn, FENNEC_EMALFORMED,
                               "node id must be 1 to 63 letters, digits, '-', '_' or '.'");
    if (control_refused_on_secondary(ctl, conn, "cluster membership changes", &ret))
        return ret;
    char err[1024];
    change_result_t res;
    change_t ch = {.kind = CHANGE_MEMBER_REMOVE, .member_id = req->arg, .source = "api"};
    int rc = control_submit(&ch, &res, err, sizeof(err));
    if (rc == 0)
        return control_send_written(conn, req,
                                    json_pack("{s:s, s:s, s:I}", "id", req->arg, "result",
                                              "removed", "index", (json_int_t)res.index),
                                    res.index);
    if (rc == FENNEC_ENOTFOUND)
        return control_send_rc(conn, rc, "node %s is not a member of the cluster", req->arg);
    return control_send_rc(conn, rc, "%s", err);
}
