/*
 * The control endpoint: libmicrohttpd, never on a DNS worker's thread, so a slow or hostile
 * HTTP client can never stall a DNS answer. Every connection has its own thread (64
 * connections at most): a write waits for the writer lock of the one write path (change.c)
 * without holding up reads such as /metrics or other writers' parsing. The only state the
 * threads share is the control_t, read-only once started. Every request is routed on its
 * first callback (method, path and authorization are known then), so refusals go out before
 * any body is read; bodies are collected up to CONTROL_MAX_BODY and validated with jansson.
 */
#include "control_int.h"
#include "fennec/change.h"
#include "fennec/control.h"
#include "fennec/wire.h"
#include "fennec/common.h"
#include "fennec/zone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MOD "control"

/* ------------------------------------------------------------------------------------------ */
/* authentication helpers                                                                     */

int control_key_read(const char *path, uint8_t *key, size_t *keylen, char *err, size_t errlen)
{
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    uint8_t buf[CONTROL_MAX_KEY + 1];
    size_t n = 0;
    while (n < sizeof(buf)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto cleanup;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    uint8_t *nl = memchr(buf, '\n', n);
    size_t line = nl ? (size_t)(nl - buf) : n;
    if (line > CONTROL_MAX_KEY) {
        rc = FENNEC_EMALFORMED;
        snprintf(err, errlen, "%s: first line is longer than %d bytes", path, CONTROL_MAX_KEY);
        goto cleanup;
    }
    if (line == 0) {
        rc = FENNEC_EMALFORMED;
        snprintf(err, errlen, "%s: the key (first line) is empty", path);
        goto cleanup;
    }
    memcpy(key, buf, line);
    *keylen = line;
cleanup:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

int control_token_derive(const uint8_t *key, size_t keylen, char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (keylen > CONTROL_MAX_KEY ||
        !HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)CONTROL_TOKEN_MESSAGE,
              strlen(CONTROL_TOKEN_MESSAGE), mac, &maclen) ||
        maclen * 2 != CONTROL_TOKEN_LEN)
        return FENNEC_EMALFORMED;
    for (unsigned i = 0; i < maclen; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[CONTROL_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

int control_bearer_parse(const char *header, const char **token, size_t *len)
{
    if (!header)
        return FENNEC_EMALFORMED;
    const char *p = header;
    while (is_space(*p))
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || !is_space(p[6]))
        return FENNEC_EMALFORMED;
    p += 6;
    while (is_space(*p))
        p++;
    const char *start = p;
    while (*p && !is_space(*p)) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return FENNEC_EMALFORMED;
        p++;
    }
    size_t n = (size_t)(p - start);
    while (is_space(*p))
        p++;
    if (n == 0 || *p != '\0')
        return FENNEC_EMALFORMED;
    *token = start;
    *len = n;
    return 0;
}

bool control_bearer_check(const char *header, const char *expected)
{
    const char *tok;
    size_t len;
    if (!expected || control_bearer_parse(header, &tok, &len) != 0)
        return false;
    /* The length of a token is public (always 64); only its bytes are compared in
     * constant time. */
    if (len != strlen(expected))
        return false;
    return CRYPTO_memcmp(tok, expected, len) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* snapshots                                                                                  */

/* Process start from /proc (the clock of the kernel, not of control_new()); falls back to
 * FALLBACK. */
static double process_start_time(double fallback)
{
    double btime = -1, start_ticks = -1;
    char buf[4096];
    FILE *f = fopen("/proc/stat", "re");
    if (f) {
        while (fgets(buf, sizeof(buf), f)) {
            unsigned long long v;
            if (sscanf(buf, "btime %llu", &v) == 1) {
                btime = (double)v;
                break;
            }
        }
        fclose(f);
    }
    f = fopen("/proc/self/stat", "re");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        char *p = strrchr(buf, ')');
        /* After the command come the fields from 3 (state) on; starttime is field 22. */
        char *save = NULL;
        char *tok = p ? strtok_r(p + 1, " ", &save) : NULL;
        for (int field = 3; tok && field < 22; field++)
            tok = strtok_r(NULL, " ", &save);
        unsigned long long ticks;
        if (tok && sscanf(tok, "%llu", &ticks) == 1)
            start_ticks = (double)ticks;
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (btime < 0 || start_ticks < 0 || hz <= 0)
        return fallback;
    return btime + start_ticks / (double)hz;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP                                                                                       */

enum MHD_Result control_send_text(struct MHD_Connection *conn, unsigned status, const char *type,
                                  char *text, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"fennec-control\"");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Sends OBJ (a new reference, consumed) as the JSON body. */
enum MHD_Result control_send_json(struct MHD_Connection *conn, unsigned status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(obj);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    char *nl = realloc(text, n + 2);
    if (nl) {
        text = nl;
        text[n++] = '\n';
        text[n] = '\0';
    }
    return control_send_text(conn, status, "application/json", text, n);
}

enum MHD_Result control_send_error(struct MHD_Connection *conn, unsigned status, const char *fmt,
                                   ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return control_send_json(conn, status, json_pack("{s:s}", "error", msg));
}

/* The one table from a result code to the HTTP status that answers it; anything else is a
 * 500. Authorization (401, 403) and routing (405) answer before any code exists. */
static const struct {
    int rc;
    unsigned status;
} g_rc_status[] = {
    {FENNEC_EMALFORMED, MHD_HTTP_BAD_REQUEST},      /* body or path argument invalid */
    {FENNEC_ENOTFOUND, MHD_HTTP_NOT_FOUND},         /* no such zone, record, endpoint */
    {FENNEC_EEXISTS, MHD_HTTP_CONFLICT},            /* the record to add is there */
    {FENNEC_ESPACE, MHD_HTTP_CONTENT_TOO_LARGE},    /* body over CONTROL_MAX_BODY */
    {FENNEC_EZONE, MHD_HTTP_UNPROCESSABLE_CONTENT}, /* zone does not load, rule broken */
    {FENNEC_ENOTSUP, MHD_HTTP_NOT_IMPLEMENTED},     /* not in this version */
    {FENNEC_ETIMEOUT, MHD_HTTP_GATEWAY_TIMEOUT},    /* ?wait=all: a node did not confirm */
};

static unsigned rc_status(int rc)
{
    for (size_t i = 0; i < sizeof(g_rc_status) / sizeof(g_rc_status[0]); i++)
        if (g_rc_status[i].rc == rc)
            return g_rc_status[i].status;
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* Answers a refusal or failure with code RC; when AT is not SIZE_MAX the answer also names
 * the change of a batch at fault ("change": AT). */
enum MHD_Result control_send_rc_at(struct MHD_Connection *conn, int rc, size_t at, const char *fmt,
                                   ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rc == -ENOMEM)
        snprintf(msg, sizeof(msg), "out of memory");
    else if (!msg[0])
        snprintf(msg, sizeof(msg), "%s", fennec_strerror(rc));
    json_t *o = json_pack("{s:s}", "error", msg);
    if (o && at != SIZE_MAX)
        json_object_set_new(o, "change", json_integer((json_int_t)at));
    return control_send_json(conn, rc_status(rc), o);
}

enum MHD_Result control_send_written(struct MHD_Connection *conn, const request_t *req,
                                     json_t *body, uint64_t index)
{
    if (!req->wait.all)
        return control_send_json(conn, MHD_HTTP_OK, body);
    char lagging[1024];
    int rc = repl_wait_all(index, req->wait.timeout_ms, lagging, sizeof(lagging));
    if (rc == 0)
        return control_send_json(conn, MHD_HTTP_OK, body);
    json_decref(body);
    json_t *ids = json_array();
    char *save = NULL;
    char copy[sizeof(lagging)];
    snprintf(copy, sizeof(copy), "%s", lagging);
    for (char *id = strtok_r(copy, ",", &save); id && ids; id = strtok_r(NULL, ",", &save))
        json_array_append_new(ids, json_string(id));
    char msg[1536];
    snprintf(msg, sizeof(msg),
             "the change is applied and durable on this node (index %llu) and served here, "
             "but not every connected node confirmed it within %u ms: still behind: %s; do "
             "not submit it again",
             (unsigned long long)index, req->wait.timeout_ms, lagging[0] ? lagging : "(none)");
    json_t *o = json_pack("{s:s, s:I, s:o}", "error", msg, "index", (json_int_t)index, "lagging",
                          ids ? ids : json_array());
    return control_send_json(conn, rc_status(rc), o);
}

/* ------------------------------------------------------------------------------------------ */
/* the query string                                                                           */

typedef struct query_walk {
    request_t *req;
    bool seen_force;
    int rc;
    char err[512];
} query_walk_t;

static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    query_walk_t *q = cls;
    if (q->req->route == ROUTE_ZONE_RELOAD && strcmp(key, "force") == 0) {
        /* A reload that serves the file whatever its records: force=1 (or true); 0, false. */
        bool on = value && (strcmp(value, "1") == 0 || strcmp(value, "true") == 0);
        bool off = value && (strcmp(value, "0") == 0 || strcmp(value, "false") == 0);
        if (q->seen_force || (!on && !off)) {
            q->rc = FENNEC_EMALFORMED;
            snprintf(q->err, sizeof(q->err),
                     q->seen_force ? "query parameter \"force\" is given twice"
                                   : "query parameter \"force\" must be 1 or 0 (true or false)");
            return MHD_NO;
        }
        q->seen_force = true;
        q->req->force = on;
        return MHD_YES;
    }
    q->rc = control_wait_arg(&q->req->wait, q->req->write, key, value, q->err, sizeof(q->err));
    return q->rc == 0 ? MHD_YES : MHD_NO;
}

/* The query string of REQ, strictly: 0, or FENNEC_EMALFORMED with a message in Q->err. The
 * status page and /metrics ignore theirs (browsers and scrapers add their own). */
static int query_parse(struct MHD_Connection *conn, request_t *req, query_walk_t *q)
{
    control_wait_init(&req->wait);
    q->req = req;
    q->seen_force = false;
    req->force = false;
    q->rc = 0;
    q->err[0] = '\0';
    if (req->route == ROUTE_PAGE || req->route == ROUTE_METRICS)
        return 0;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_query_arg, q);
    if (q->rc == 0)
        q->rc = control_wait_check(&req->wait, q->err, sizeof(q->err));
    return q->rc;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

/* Splits URL into ROUTE and its argument; sets *ALLOWED to the methods the path takes.
 * Returns ROUTE_NONE for an unknown path. */
static route_t route_match(const char *url, const char *method, char *arg, size_t arglen,
                           const char **allowed, bool *write, bool *method_ok)
{
    static const struct {
        const char *prefix; /* path before the argument, or the whole path */
        const char *suffix; /* path after the argument; NULL when there is no argument */
        route_t get, post, del;
    } table[] = {
        {"/", NULL, ROUTE_PAGE, ROUTE_NONE, ROUTE_NONE},
        {"/metrics", NULL, ROUTE_METRICS, ROUTE_NONE, ROUTE_NONE},
        {"/v1/status", NULL, ROUTE_STATUS, ROUTE_NONE, ROUTE_NONE},
        {"/v1/nodes", NULL, ROUTE_NODES, ROUTE_NODES, ROUTE_NONE},
        {"/v1/nodes/", "", ROUTE_NONE, ROUTE_NONE, ROUTE_NODE},
        {"/v1/zones/", "/reload", ROUTE_NONE, ROUTE_ZONE_RELOAD, ROUTE_NONE},
        {"/v1/zones/", "/records", ROUTE_NONE, ROUTE_ZONE_RECORDS, ROUTE_NONE},
        {"/v1/zones/", "/changes", ROUTE_NONE, ROUTE_ZONE_CHANGES, ROUTE_NONE},
        {"/v1/health", NULL, ROUTE_HEALTH, ROUTE_NONE, ROUTE_NONE},
        {"/v1/health/", "/override", ROUTE_NONE, ROUTE_HEALTH_OVERRIDE, ROUTE_NONE},
        {"/v1/drain", NULL, ROUTE_NONE, ROUTE_DRAIN, ROUTE_NONE},
    };
    bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool is_post = strcmp(method, "POST") == 0;
    bool is_del = strcmp(method, "DELETE") == 0;
    arg[0] = '\0';
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        size_t pl = strlen(table[i].prefix);
        if (!table[i].suffix) {
            if (strcmp(url, table[i].prefix) != 0)
                continue;
        } else {
            if (strncmp(url, table[i].prefix, pl) != 0)
                continue;
            const char *a = url + pl;
            size_t sl = strlen(table[i].suffix);
            size_t al = strlen(a);
            if (al <= sl || strcmp(a + al - sl, table[i].suffix) != 0)
                continue;
            al -= sl;
            if (memchr(a, '/', al) || al >= arglen)
                continue;
            memcpy(arg, a, al);
            arg[al] = '\0';
        }
        route_t g = table[i].get, p = table[i].post, d = table[i].del;
        *allowed = g && p ? "GET, HEAD, POST" : g ? "GET, HEAD" : p ? "POST" : "DELETE";
        *method_ok = true;
        *write = false;
        if (is_get && g)
            return g;
        if (is_post && p) {
            *write = true;
            return p;
        }
        if (is_del && d) {
            *write = true;
            return d;
        }
        *method_ok = false;
        return g ? g : p ? p : d;
    }
    return ROUTE_NONE;
}

/* Authorization for a request; returns MHD_YES after queuing a refusal, or sets *OK. */
static enum MHD_Result authorize(control_t *ctl, struct MHD_Connection *conn, bool write, bool *ok)
{
    const char *auth =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    *ok = false;
    if (write) {
        if (!ctl->has_key)
            return control_send_error(
                conn, MHD_HTTP_FORBIDDEN,
                "writes are disabled on this node: configure cluster.key_file "
                "(one line, e.g. from `openssl rand -hex 32`) and restart fennecd");
        if (!auth)
            return control_send_error(
                conn, MHD_HTTP_UNAUTHORIZED,
                "this request changes the node and needs \"Authorization: Bearer "
                "TOKEN\" (fennecctl --key-file FILE derives it from the cluster "
                "key)");
        if (!control_bearer_check(auth, ctl->token))
            return control_send_error(
                conn, MHD_HTTP_UNAUTHORIZED,
                "the token is not valid for this cluster: check that --key-file "
                "names the same key as cluster.key_file on the node");
        *ok = true;
        return MHD_YES;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && is_loopback(ci->client_addr)) {
        *ok = true;
        return MHD_YES;
    }
    if (ctl->has_key && control_bearer_check(auth, ctl->token)) {
        *ok = true;
        return MHD_YES;
    }
    return control_send_error(conn, MHD_HTTP_UNAUTHORIZED,
                              "reads from other hosts than this one need \"Authorization: Bearer "
                              "TOKEN\" (fennecctl --key-file FILE)");
}

/* Submits CH from a libmicrohttpd thread. Those threads come and go without a hook where they
 * could unregister, so each one is an RCU reader for the call only. */
int control_submit(const change_t *ch, change_result_t *res, char *err, size_t errlen)
{
    zone_reader_register();
    int rc = change_submit(ch, res, err, errlen);
    zone_reader_unregister();
    return rc;
}

static enum MHD_Result dispatch(control_t *ctl, struct MHD_Connection *conn, request_t *req)
{
    if (req->too_big)
        return control_send_rc(conn, FENNEC_ESPACE, "the request body is larger than %d bytes",
                               CONTROL_MAX_BODY);
    switch (req->route) {
    case ROUTE_PAGE:
        return control_handle_page(ctl, conn);
    case ROUTE_METRICS:
        return control_handle_metrics(ctl, conn);
    case ROUTE_STATUS:
        return control_handle_status(ctl, conn);
    case ROUTE_NODES:
        if (req->write)
            return control_handle_node_add(ctl, conn, req);
        return control_handle_nodes(ctl, conn);
    case ROUTE_NODE:
        return control_handle_node_remove(ctl, conn, req);
    case ROUTE_ZONE_RELOAD:
        return control_handle_zone_reload(ctl, conn, req);
    case ROUTE_ZONE_RECORDS:
        return control_handle_zone_records(ctl, conn, req);
    case ROUTE_ZONE_CHANGES:
        return control_handle_zone_changes(ctl, conn, req);
    case ROUTE_HEALTH:
        return control_handle_health(ctl, conn);
    case ROUTE_HEALTH_OVERRIDE:
        return control_handle_health_override(ctl, conn, req);
    case ROUTE_DRAIN:
        return control_handle_drain(ctl, conn, req);
    case ROUTE_NONE:
        break;
    }
    return control_send_rc(conn, FENNEC_ENOTFOUND, "no such endpoint");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    control_t *ctl = cls;
    request_t *req = *con_cls;
    (void)version;

    if (!req) {
        /* First callback: headers only. Refuse what we can before reading any body. */
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        *con_cls = req;
        const char *allowed = NULL;
        bool method_ok = false;
        req->route =
            route_match(url, method, req->arg, sizeof(req->arg), &allowed, &req->write, &method_ok);
        if (req->route == ROUTE_NONE)
            return control_send_rc(conn, FENNEC_ENOTFOUND,
                                   "no such endpoint: %.200s %.200s (see docs/api.md)", method,
                                   url);
        if (!method_ok) {
            char msg[256];
            snprintf(msg, sizeof(msg), "%s is not allowed on %.180s; use %s", method, url, allowed);
            json_t *o = json_pack("{s:s}", "error", msg);
            char *text = json_dumps(o, JSON_INDENT(2));
            json_decref(o);
            if (!text)
                return MHD_NO;
            struct MHD_Response *r =
                MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
            if (!r) {
                free(text);
                return MHD_NO;
            }
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allowed);
            enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
            MHD_destroy_response(r);
            return ret;
        }
        bool ok = false;
        enum MHD_Result ret = authorize(ctl, conn, req->write, &ok);
        if (!ok)
            return ret;
        query_walk_t q;
        if (query_parse(conn, req, &q) != 0)
            return control_send_rc(conn, q.rc, "%s", q.err);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || end == cl || v > CONTROL_MAX_BODY)
                return control_send_rc(conn, FENNEC_ESPACE,
                                       "the request body is larger than %d bytes",
                                       CONTROL_MAX_BODY);
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->too_big || req->len + n > CONTROL_MAX_BODY) {
            req->too_big = true; /* chunked bodies: keep reading, answer 413 at the end */
            free(req->body);
            req->body = NULL;
            req->len = 0;
            return MHD_YES;
        }
        char *nb = realloc(req->body, req->len + n + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + req->len, upload_data, n);
        req->len += n;
        nb[req->len] = '\0';
        req->body = nb;
        return MHD_YES;
    }
    return dispatch(ctl, conn, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request_t *req = *con_cls;
    if (req) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_warn(MOD, "http: %s", msg);
}

/* ------------------------------------------------------------------------------------------ */
/* lifecycle                                                                                  */

int control_new(const cfg_t *cfg, server_t *srv, control_t **out)
{
    int rc = 0;
    uint8_t key[CONTROL_MAX_KEY];
    size_t keylen = 0;
    control_t *ctl = calloc(1, sizeof(*ctl));
    if (!ctl)
        return -ENOMEM;
    ctl->cfg = cfg;
    atomic_store(&ctl->zones_cfg, cfg);
    ctl->srv = srv;
    ctl->start_time = process_start_time(fennec_wall_now());
    /* jansson seeds its hash function on first use; do it here, before the HTTP threads. */
    json_object_seed(0);
    if (!cfg->has_control) {
        log_error(MOD, "listen.control is not configured");
        rc = FENNEC_ECONFIG;
        goto cleanup;
    }
    if (cfg->key_file) {
        char err[512];
        rc = control_key_read(cfg->key_file, key, &keylen, err, sizeof(err));
        if (rc != 0) {
            log_error(MOD, "cluster.key_file: %s", err);
            goto cleanup;
        }
        rc = control_token_derive(key, keylen, ctl->token);
        if (rc != 0) {
            log_error(MOD, "cannot derive the API token: %s", fennec_strerror(rc));
            goto cleanup;
        }
        ctl->has_key = true;
    } else {
        log_warn(MOD, "no cluster.key_file: API writes (zone reload, record and node edits) "
                      "are refused");
    }
    *out = ctl;
    ctl = NULL;
cleanup:
    OPENSSL_cleanse(key, sizeof(key));
    free(ctl);
    return rc;
}

int control_start(control_t *ctl)
{
    int rc = 0;
    const cfg_addr_t *a = &ctl->cfg->control;
    int family = a->ss.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        log_error(MOD, "%s: socket: %s", a->text, strerror(errno));
        return rc;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6) {
        /* "*:port" is the IPv6 wildcard serving IPv4 too. */
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
        int v6only = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) ? 0 : 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 64) != 0) {
        rc = -errno;
        log_error(MOD, "%s: cannot listen: %s", a->text, strerror(errno));
        close(fd);
        return rc;
    }
    /* A thread per connection: a write that waits for the writer lock (or loads a big zone)
     * holds its own thread only, so reads and other connections go on. The connection limit
     * bounds the threads. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    ctl->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, ctl, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, ctl,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!ctl->mhd) {
        log_error(MOD, "%s: cannot start the HTTP server", a->text);
        close(fd);
        return -EIO;
    }
    log_info(MOD, "listening on http://%s (API writes %s)", a->text,
             ctl->has_key ? "need a token" : "disabled");
    return rc;
}

void control_stop(control_t *ctl)
{
    if (ctl && ctl->mhd) {
        MHD_stop_daemon(ctl->mhd);
        ctl->mhd = NULL;
    }
}

void control_free(control_t *ctl)
{
    if (!ctl)
        return;
    control_stop(ctl);
    OPENSSL_cleanse(ctl->token, sizeof(ctl->token));
    free(ctl);
}

void control_zones_set(control_t *ctl, const cfg_t *cfg)
{
    if (ctl)
        atomic_store(&ctl->zones_cfg, cfg);
}
