/*
 * HTTP(S) probes (probe_int.h): libcurl transfers on one multi handle driven by the health
 * thread's loop, after curl's multi-uv example: the socket callback keeps one uv_poll_t per
 * socket, the timer callback one uv_timer_t, and every finished transfer is taken off the
 * multi handle after each curl_multi_socket_action(). Each check keeps its easy handle, options
 * set once; poll contexts come from a free list; a transfer added during a callback is started
 * at the callback's end rather than on curl's 0 ms timer (a loop iteration less per probe).
 *
 * What a probe tests: a new connection (FRESH_CONNECT, FORBID_REUSE) to the member's address
 * (CURLOPT_CONNECT_TO) for a URL that names `host`, so Host and SNI are the service's name and
 * the certificate is verified for it; a full TLS handshake (no session cache: a resumed
 * session skips the certificate); the status against the expected list; expect_body in the
 * first HEALTH_BODY_MAX bytes, where the transfer stops. A check with reuse_connection keeps
 * its connection (keep-alive) for the next probes, for at most HEALTH_CONN_MAX_AGE_S: about
 * half the CPU per probe, at the price of not seeing a listener that no longer accepts while
 * the kept connection still answers. Sockets close with an RST (probe_abortive_close).
 */
#include "fennec/common.h"
#include "probe_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A socket curl asked us to watch. */
typedef struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    int events; /* UV_READABLE | UV_WRITABLE being watched */
    struct sock *next_free;
} sock_t;

static struct {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    bool kick; /* transfers were added: start them at the callback's end */
    sock_t *free_socks;
} g_http;

static bool status_expected(const health_check_def_t *d, long status)
{
    if (d->expect_status_count == 0)
        return status == 200;
    for (size_t i = 0; i < d->expect_status_count && i < HEALTH_MAX_STATUS; i++)
        if (d->expect_status[i] == status)
            return true;
    return false;
}

/* Looks for the pattern in DATA (N bytes) and in the join of the previous chunk's tail with
 * DATA's head, so a match across chunks is found, with 2 * pat_len bytes of memory. */
static void body_match(probe_check_t *c, const char *data, size_t n)
{
    const char *pat = c->def->expect_body;
    size_t m = c->pat_len, keep_max = m - 1;
    size_t add = n < keep_max ? n : keep_max;
    memcpy(c->win + c->tail_len, data, add);
    if (memmem(c->win, c->tail_len + add, pat, m) || memmem(data, n, pat, m)) {
        c->body_found = true;
        return;
    }
    if (n >= keep_max) {
        memcpy(c->win, data + n - keep_max, keep_max);
        c->tail_len = keep_max;
    } else {
        size_t total = c->tail_len + n; /* the window holds the old tail and all of DATA */
        size_t keep = total < keep_max ? total : keep_max;
        memmove(c->win, c->win + total - keep, keep);
        c->tail_len = keep;
    }
}

/* The body: searched for expect_body in its first HEALTH_BODY_MAX bytes; the transfer is
 * stopped there (a short count makes curl end it with CURLE_WRITE_ERROR, taken as the end). */
/* Every probe's socket closes with an RST once the answer is in (probe_abortive_close). */
static int on_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    (void)ud;
    (void)purpose;
    probe_abortive_close(fd);
    return CURL_SOCKOPT_OK;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    probe_check_t *c = ud;
    size_t len = size * nmemb;
    size_t room = HEALTH_BODY_MAX - c->body_seen;
    size_t take = len < room ? len : room;
    if (c->def->expect_body && !c->body_found && take > 0)
        body_match(c, data, take);
    c->body_seen += take;
    if (take < len) {
        c->capped = true;
        return 0;
    }
    return len;
}

static bool is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
        return true;
    default:
        return false;
    }
}

/* PREFIX and S into OUT (LEN bytes), cut to fit: curl's messages run to 256 bytes. */
static void text_put(char *out, size_t len, const char *prefix, const char *s)
{
    size_t p = strlen(prefix), k = strlen(s);
    if (p > len - 1)
        p = len - 1;
    if (k > len - 1 - p)
        k = len - 1 - p;
    memcpy(out, prefix, p);
    memcpy(out + p, s, k);
    out[p + k] = '\0';
}

static void http_done(probe_check_t *c, CURLcode rc)
{
    char res[sizeof(c->st.last_result)];
    bool ok = false, timed_out = false;
    const char *err = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    c->in_multi = false;
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && c->capped)) {
        long status = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        bool body_ok = !c->def->expect_body || c->body_found;
        ok = status_expected(c->def, status) && body_ok;
        snprintf(res, sizeof(res), "%ld%s", status,
                 status_expected(c->def, status) && !body_ok ? ", body mismatch" : "");
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        timed_out = true;
        snprintf(res, sizeof(res), "timeout");
    } else if (rc == CURLE_COULDNT_CONNECT) {
        long e = 0;
        curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &e);
        if (e == ECONNREFUSED)
            snprintf(res, sizeof(res), "connect refused");
        else if (e > 0)
            snprintf(res, sizeof(res), "connect: %s", uv_strerror((int)-e));
        else
            text_put(res, sizeof(res), "connect: ", err);
    } else if (is_tls_error(rc)) {
        text_put(res, sizeof(res), "TLS: ", err);
    } else if (rc == CURLE_GOT_NOTHING) {
        snprintf(res, sizeof(res), "empty reply");
    } else {
        text_put(res, sizeof(res), "", err);
    }
    probe_done(c, ok, timed_out, res);
    probe_end(c);
}

/* Takes every finished transfer off the multi handle. */
static void drain(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(g_http.multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result; /* M dies with the removal */
        void *p = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &p);
        curl_multi_remove_handle(g_http.multi, e);
        if (p)
            http_done(p, rc);
    }
}

static void on_sock_closed(uv_handle_t *handle)
{
    sock_t *k = handle->data;
    if (!g_http.multi) { /* shutting down */
        free(k);
        return;
    }
    k->next_free = g_http.free_socks;
    g_http.free_socks = k;
}

static void on_sock_event(uv_poll_t *handle, int status, int events)
{
    sock_t *k = handle->data;
    int flags = 0, running = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    probe_lock();
    if (g_http.multi) {
        CURLMcode rc = curl_multi_socket_action(g_http.multi, k->fd, flags, &running);
        if (rc != CURLM_OK)
            log_debug(PROBE_MOD, "curl: %s", curl_multi_strerror(rc));
        drain();
    }
    probe_unlock();
}

/* curl: watch S for WHAT (runs inside curl calls, under the prober's lock). */
static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    (void)userp;
    sock_t *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k) /* closing stops it */
            uv_close((uv_handle_t *)&k->poll, on_sock_closed);
        return 0;
    }
    if (!k) {
        k = g_http.free_socks;
        if (k)
            g_http.free_socks = k->next_free;
        else if (!(k = malloc(sizeof(*k))))
            return -1;
        if (uv_poll_init_socket(g_http.loop, &k->poll, s) != 0) {
            k->next_free = g_http.free_socks;
            g_http.free_socks = k;
            return -1;
        }
        k->poll.data = k;
        k->fd = s;
        k->events = 0;
        curl_multi_assign(g_http.multi, s, k);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    /* uv_poll_start() costs two epoll_ctl calls even when nothing changes */
    if (ev != k->events && uv_poll_start(&k->poll, ev, on_sock_event) == 0)
        k->events = ev;
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    (void)t;
    int running = 0;
    probe_lock();
    if (g_http.multi) {
        curl_multi_socket_action(g_http.multi, CURL_SOCKET_TIMEOUT, 0, &running);
        drain();
    }
    probe_unlock();
}

/* curl: call back in TIMEOUT_MS (-1: never). 0 becomes 1 ms: curl is never re-entered. */
static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    (void)userp;
    if (timeout_ms < 0)
        uv_timer_stop(&g_http.timer);
    else
        uv_timer_start(&g_http.timer, on_curl_timeout, timeout_ms ? (uint64_t)timeout_ms : 1, 0);
    return 0;
}

/* The address of D as text, for CURLOPT_CONNECT_TO. */
static int addr_text(const health_check_def_t *d, char *out, size_t len)
{
    if (d->addr.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&d->addr;
        return inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)len) ? 0 : -EINVAL;
    }
    if (d->addr.ss_family == AF_INET6 && len > 2) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&d->addr;
        out[0] = '[';
        if (!inet_ntop(AF_INET6, &a->sin6_addr, out + 1, (socklen_t)(len - 2)))
            return -EINVAL;
        size_t l = strlen(out);
        if (l + 2 > len)
            return -EINVAL;
        out[l] = ']';
        out[l + 1] = '\0';
        return 0;
    }
    return -EINVAL;
}

/*
 * The easy handle of an HTTP(S) check, made once: the URL names `host`, so Host and SNI are
 * the service's name and the certificate is verified for it, while CURLOPT_CONNECT_TO sends
 * the connection to the member's address. Unless the check has reuse_connection, every probe
 * is a new connection (FRESH_CONNECT, FORBID_REUSE) with a full TLS handshake (no session
 * cache): a probe that rode on an old connection or a resumed session would not test what a
 * new client meets.
 */
const char *probe_http_setup(probe_check_t *c)
{
    const health_check_def_t *d = c->def;
    char addr[INET6_ADDRSTRLEN + 2], line[1200];
    if (addr_text(d, addr, sizeof(addr)) < 0)
        return "bad address";
    const char *host = d->host && d->host[0] ? d->host : d->target;
    const char *path = d->path && d->path[0] ? d->path : "/";
    bool v6 = strchr(host, ':') != NULL;
    size_t ulen = strlen(host) + strlen(path) + 32;
    if (strlen(host) > 1000 || !(c->url = malloc(ulen)))
        return "out of memory";
    snprintf(c->url, ulen, "%s://%s%s%s:%u%s", d->kind == HEALTH_HTTPS ? "https" : "http",
             v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)d->port, path);
    snprintf(line, sizeof(line), "::%s:%u", addr, (unsigned)d->port);
    if (!(c->connect_to = curl_slist_append(NULL, line)))
        return "out of memory";
    /* Host is `host` exactly, as name-based virtual hosts match it, whatever the port. */
    snprintf(line, sizeof(line), "Host: %s%s%s", v6 ? "[" : "", host, v6 ? "]" : "");
    struct curl_slist *h = curl_slist_append(NULL, line);
    if (!h)
        return "out of memory";
    c->headers = h;
    if (!d->reuse_connection) {
        if (!(h = curl_slist_append(c->headers, "Connection: close")))
            return "out of memory";
        c->headers = h;
    }
    if (d->expect_body) {
        c->pat_len = strlen(d->expect_body);
        if (c->pat_len && !(c->win = malloc(2 * c->pat_len)))
            return "out of memory";
    }
    if (!(c->easy = curl_easy_init()))
        return "out of memory";
    CURL *e = c->easy;
    long tmo = (long)probe_ms(d->timeout_ns);
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, c->url);
    SET(CURLOPT_CONNECT_TO, c->connect_to);
    SET(CURLOPT_HTTPHEADER, c->headers);
    SET(CURLOPT_PRIVATE, (void *)c);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)c);
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, tmo);
    SET(CURLOPT_CONNECTTIMEOUT_MS, tmo);
    if (d->reuse_connection) {
        SET(CURLOPT_MAXLIFETIME_CONN, (long)HEALTH_CONN_MAX_AGE_S);
    } else {
        SET(CURLOPT_FRESH_CONNECT, 1L);
        SET(CURLOPT_FORBID_REUSE, 1L);
    }
    SET(CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, ""); /* never through a proxy from the environment */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_USERAGENT, "fennec-health/" FENNEC_VERSION);
    SET(CURLOPT_SSL_SESSIONID_CACHE, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, d->tls_verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, d->tls_verify ? 2L : 0L);
    if (d->ca_file)
        SET(CURLOPT_CAINFO, d->ca_file);
#undef SET
    if (rc != CURLE_OK) {
        log_warn(PROBE_MOD, "check %s: curl refuses an option: %s", d->name,
                 curl_easy_strerror(rc));
        return "curl setup failed";
    }
    return NULL;
}

void probe_http_start(probe_check_t *c)
{
    c->body_seen = 0;
    c->body_found = c->def->expect_body && c->pat_len == 0; /* "" is in every body */
    c->capped = false;
    c->tail_len = 0;
    c->errbuf[0] = '\0';
    CURLMcode rc = curl_multi_add_handle(g_http.multi, c->easy);
    if (rc != CURLM_OK) {
        probe_done(c, false, false, curl_multi_strerror(rc));
        probe_end(c);
        return;
    }
    c->in_multi = true;
    g_http.kick = true;
}

void probe_http_abandon(probe_check_t *c)
{
    if (c->in_multi) {
        curl_multi_remove_handle(g_http.multi, c->easy);
        c->in_multi = false;
    }
}

void probe_http_free(probe_check_t *c)
{
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->connect_to);
    curl_slist_free_all(c->headers);
    free(c->url);
    free(c->win);
    c->easy = NULL;
    c->connect_to = c->headers = NULL;
    c->url = c->win = NULL;
}

void probe_http_settle(void)
{
    while (g_http.kick && g_http.multi) {
        int running = 0;
        g_http.kick = false;
        curl_multi_socket_action(g_http.multi, CURL_SOCKET_TIMEOUT, 0, &running);
        drain();
    }
}

static void on_timer_closed(uv_handle_t *t)
{
    (void)t;
    while (g_http.free_socks) { /* poll handles closed from now on are freed at once */
        sock_t *k = g_http.free_socks;
        g_http.free_socks = k->next_free;
        free(k);
    }
}

int probe_http_init(uv_loop_t *loop)
{
    g_http.kick = false;
    g_http.multi = curl_multi_init();
    if (!g_http.multi)
        return -ENOMEM;
    curl_multi_setopt(g_http.multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(g_http.multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    /* room for every kept connection (reuse_connection): by default curl keeps only 4 per
     * transfer in progress, and probes are added one at a time */
    curl_multi_setopt(g_http.multi, CURLMOPT_MAXCONNECTS, (long)HEALTH_MAX_CHECKS);
    uv_timer_init(loop, &g_http.timer);
    g_http.loop = loop; /* set: the timer is to be closed */
    return 0;
}

void probe_http_deinit(void)
{
    if (g_http.multi)
        curl_multi_cleanup(g_http.multi);
    g_http.multi = NULL;
    if (g_http.loop)
        uv_close((uv_handle_t *)&g_http.timer, on_timer_closed);
    g_http.loop = NULL;
}
