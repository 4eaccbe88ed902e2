/*
 * fennec — DNS over TCP (RFC 7766, RFC 1035 4.2.2): 2-byte length framing reassembled
 * across reads, pipelined queries answered in order (answers are computed synchronously),
 * coalesced writes, idle timeout, per-worker connection limit and per-connection limit on
 * answers waiting in the socket. A connection gets at most TCP_ROUND queries per turn;
 * leftovers wait on the worker's ready queue, served from an idle handle so that the loop
 * polls other sockets in between.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fennec/common.h"
#include "fennec/xfr.h"
#include "server_int.h"

/* A zone transfer writes up to this many bytes of messages per turn of the loop, then waits
 * for the socket to take them: a big zone never holds the worker or grows its memory. */
#define TCP_XFR_CHUNK (256 * 1024)

struct tcp_conn {
    worker_t *w;
    uv_tcp_t tcp;
    uv_timer_t timer;
    tcp_link_t all; /* worker's connections */
    tcp_link_t rdy; /* worker's ready queue */
    int handles;    /* open uv handles; freed when both have closed */
    bool on_ready;
    bool reading;
    bool closing;
    bool eof;
    unsigned writes;   /* uv_write requests pending */
    unsigned inflight; /* answers inside those requests */
    uint8_t *buf;      /* bytes received and not consumed yet: [off, len) */
    size_t off;
    size_t len;
    size_t cap;
    struct sockaddr_storage peer; /* the client, for the transfer rules */
    bool has_peer;
    xfr_t *xfr; /* a zone transfer being written: no other query is served meanwhile */
};

typedef struct tcp_wreq {
    uv_write_t req;
    tcp_conn_t *c;
    unsigned answers;
    uint8_t data[];
} tcp_wreq_t;

static void conn_schedule(tcp_conn_t *c);
static void tcp_ready_cb(uv_idle_t *idle);

int tcp_socket_open(const cfg_addr_t *addr)
{
    int rc = 0;
    int fd = server_socket_new(addr, SOCK_STREAM, true);
    if (fd < 0)
        return fd;
    if ((rc = server_setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0)
        goto cleanup;
    /* Inherited by accepted sockets: answers go out at once. */
    (void)server_setopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
cleanup:
    fd = server_socket_bind(fd, addr, rc);
    if (fd >= 0 && listen(fd, TCP_BACKLOG) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* ---- lists ---- */

static void conn_link(tcp_conn_t **head, tcp_conn_t *c)
{
    c->all.prev = NULL;
    c->all.next = *head;
    if (*head)
        (*head)->all.prev = c;
    *head = c;
}

static void conn_unlink(tcp_conn_t **head, tcp_conn_t *c)
{
    if (c->all.prev)
        c->all.prev->all.next = c->all.next;
    else
        *head = c->all.next;
    if (c->all.next)
        c->all.next->all.prev = c->all.prev;
    c->all.prev = c->all.next = NULL;
}

/* Appends C to the ready queue (FIFO: head w->ready, tail found via prev of head). */
static void conn_ready(tcp_conn_t *c)
{
    worker_t *w = c->w;
    if (c->on_ready || c->closing)
        return;
    c->on_ready = true;
    c->rdy.next = NULL;
    if (!w->ready) {
        c->rdy.prev = c; /* the head's prev is the tail */
        w->ready = c;
        uv_idle_start(&w->ready_idle, tcp_ready_cb);
        return;
    }
    tcp_conn_t *tail = w->ready->rdy.prev;
    tail->rdy.next = c;
    c->rdy.prev = tail;
    w->ready->rdy.prev = c;
}

static void conn_unready(tcp_conn_t *c)
{
    worker_t *w = c->w;
    if (!c->on_ready)
        return;
    c->on_ready = false;
    if (c == w->ready) {
        w->ready = c->rdy.next;
        if (w->ready)
            w->ready->rdy.prev = c->rdy.prev;
    } else {
        c->rdy.prev->rdy.next = c->rdy.next;
        if (c->rdy.next)
            c->rdy.next->rdy.prev = c->rdy.prev;
        else
            w->ready->rdy.prev = c->rdy.prev; /* C was the tail */
    }
    c->rdy.prev = c->rdy.next = NULL;
}

/* ---- life cycle ---- */

static void xfr_unref_work(uv_work_t *req)
{
    zone_unref(req->data);
}

static void xfr_unref_done(uv_work_t *req, int status)
{
    (void)status;
    free(req);
}

/* Ends C's transfer. Its zone reference is dropped off the loop: when it was the last one (the
 * zone changed or went meanwhile), freeing a big version takes a while. */
static void conn_xfr_end(tcp_conn_t *c, int outcome)
{
    if (!c->xfr)
        return;
    query_ctx_xfr_count(c->w->qctx, outcome);
    zone_t *z = xfr_free_keep_zone(c->xfr);
    c->xfr = NULL;
    uv_work_t *req = malloc(sizeof(*req));
    if (req) {
        req->data = z;
        if (uv_queue_work(&c->w->loop, req, xfr_unref_work, xfr_unref_done) == 0)
            return;
        free(req);
    }
    zone_unref(z);
}

static void conn_closed_cb(uv_handle_t *handle)
{
    tcp_conn_t *c = handle->data;
    if (--c->handles > 0)
        return;
    if (c->xfr) {
        /* The loop may be closing: no work queue any more. */
        query_ctx_xfr_count(c->w->qctx, QUERY_XFR_FAILED);
        xfr_free(c->xfr);
    }
    free(c->buf);
    free(c);
}

static void conn_close(tcp_conn_t *c)
{
    worker_t *w = c->w;
    if (c->closing)
        return;
    c->closing = true;
    conn_unready(c);
    conn_unlink(&w->conns, c);
    STAT_ADD(w, tcp_open, -1);
    /* Pending writes complete with UV_ECANCELED before the close callbacks run. */
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
    uv_close((uv_handle_t *)&c->timer, conn_closed_cb);
}

static void conn_close_bad(tcp_conn_t *c)
{
    if (!c->closing)
        STAT_ADD(c->w, tcp_closed_bad, 1);
    conn_close(c);
}

static void conn_idle_cb(uv_timer_t *timer)
{
    tcp_conn_t *c = timer->data;
    STAT_ADD(c->w, tcp_closed_idle, 1);
    conn_close(c);
}

/* Activity: the idle timeout starts over. */
static void conn_touch(tcp_conn_t *c)
{
    uint32_t ms = c->w->cfg->tcp.idle_timeout_ms;
    if (ms > 0 && !c->closing)
        uv_timer_start(&c->timer, conn_idle_cb, ms, 0);
}

/* ---- buffers ---- */

static int conn_reserve(tcp_conn_t *c, size_t need)
{
    if (c->cap >= need)
        return 0;
    size_t cap = c->cap ? c->cap : 512;
    while (cap < need)
        cap *= 2;
    uint8_t *buf = realloc(c->buf, cap);
    if (!buf)
        return -ENOMEM;
    c->buf = buf;
    c->cap = cap;
    return 0;
}

/* Marks USED more bytes as consumed; moving the rest waits until more is read into the
 * buffer, so that serving a long pipeline in turns does not copy it again each turn. */
static void conn_compact(tcp_conn_t *c, size_t used)
{
    c->off += used;
    if (c->off < c->len)
        return;
    c->off = 0;
    c->len = 0;
    if (c->cap > TCP_BUF_KEEP) {
        /* A big message has gone: do not keep 64 KiB per quiet connection. */
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
}

static size_t frame_len(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

/* Whether the buffer holds a whole message (or a bad length, which is work too). */
static bool conn_has_message(const tcp_conn_t *c)
{
    if (c->xfr)
        return false; /* the pipeline waits for the transfer */
    size_t avail = c->len - c->off;
    if (avail < 2)
        return false;
    size_t mlen = frame_len(c->buf + c->off);
    return mlen < 12 || avail - 2 >= mlen;
}

static bool conn_saturated(const tcp_conn_t *c)
{
    uint32_t max = c->w->cfg->tcp.max_inflight;
    return max > 0 && c->inflight >= max;
}

/* ---- writing ---- */

static void conn_write_cb(uv_write_t *req, int status)
{
    tcp_wreq_t *q = req->data;
    tcp_conn_t *c = q->c;

    c->writes--;
    c->inflight -= q->answers;
    free(q);
    if (status < 0) {
        if (status != UV_ECANCELED)
            conn_close_bad(c);
        return;
    }
    conn_touch(c);
    conn_schedule(c);
}

/* Sends the coalesced answers: straight to the socket when nothing is queued before them,
 * the rest (or all) as a queued write that owns a copy. */
static int conn_flush(tcp_conn_t *c)
{
    worker_t *w = c->w;
    size_t len = w->tcp_out_len;
    unsigned answers = w->tcp_out_answers;
    size_t done = 0;
    int rc;

    w->tcp_out_len = 0;
    w->tcp_out_answers = 0;
    if (len == 0)
        return 0;
    STAT_ADD(w, tcp_answered, answers);
    if (c->writes == 0) {
        uv_buf_t b = uv_buf_init((char *)w->tcp_out, (unsigned)len);
        rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (rc >= 0)
            done = (size_t)rc;
        else if (rc != UV_EAGAIN)
            return rc;
        if (done == len)
            return 0;
    }
    tcp_wreq_t *q = malloc(sizeof(*q) + (len - done));
    if (!q)
        return -ENOMEM;
    memcpy(q->data, w->tcp_out + done, len - done);
    q->c = c;
    q->answers = answers;
    q->req.data = q;
    uv_buf_t b = uv_buf_init((char *)q->data, (unsigned)(len - done));
    rc = uv_write(&q->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
    if (rc < 0) {
        free(q);
        return rc;
    }
    c->writes++;
    c->inflight += answers;
    return 0;
}

/* ---- reading ---- */

/*
 * Answers up to TCP_ROUND whole messages from DATA (LEN bytes) while the connection is not
 * saturated; *USED receives the bytes consumed. Returns 0, or an error after which the
 * connection must be closed (a length below a DNS header, a socket error).
 */
static int conn_consume(tcp_conn_t *c, const uint8_t *data, size_t len, size_t *used)
{
    worker_t *w = c->w;
    uint32_t max = w->cfg->tcp.max_inflight;
    size_t off = 0;
    unsigned n = 0;
    int rc = 0;

    while (n < TCP_ROUND && len - off >= 2) {
        size_t mlen = frame_len(data + off);
        if (mlen < 12) {
            rc = FENNEC_EMALFORMED;
            break;
        }
        if (len - off - 2 < mlen)
            break;
        if (max > 0 && c->inflight + w->tcp_out_answers >= max) {
            if ((rc = conn_flush(c)) < 0 || c->inflight >= max)
                break;
        }
        if (TCP_OUT_SIZE - w->tcp_out_len < 2 + TCP_MSG_MAX) {
            if ((rc = conn_flush(c)) < 0)
                break;
        }
        uint8_t *out = w->tcp_out + w->tcp_out_len;
        query_ctx_set_peer(w->qctx, c->has_peer ? (const struct sockaddr *)&c->peer : NULL);
        size_t alen = query_answer(w->qctx, data + off + 2, mlen, out + 2, TCP_MSG_MAX, QUERY_TCP);
        off += 2 + mlen;
        n++;
        query_xfr_t xr;
        if (alen == 0 && query_xfr_take(w->qctx, &xr)) {
            /* A zone transfer: the answers before it go first, then its messages as the
             * socket drains (conn_xfr_pump()); later queries wait. */
            if (xfr_new(&xr, &c->xfr) != 0)
                query_ctx_xfr_count(w->qctx, QUERY_XFR_FAILED);
            break;
        }
        if (alen > 0 && alen <= TCP_MSG_MAX) {
            out[0] = (uint8_t)(alen >> 8);
            out[1] = (uint8_t)alen;
            w->tcp_out_len += 2 + alen;
            w->tcp_out_answers++;
        }
    }
    if (n > 0)
        STAT_ADD(w, tcp_queries, n);
    /* Answers computed before a bad frame still go out. */
    int frc = conn_flush(c);
    if (rc == 0)
        rc = frc;
    *used = off;
    return rc;
}

/* Serves the messages buffered on the connection (its turn on the ready queue). */
static void conn_serve(tcp_conn_t *c)
{
    size_t used = 0;
    int rc = conn_consume(c, c->buf + c->off, c->len - c->off, &used);
    if (rc < 0) {
        conn_close_bad(c);
        return;
    }
    conn_compact(c, used);
    conn_schedule(c);
}

static void conn_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    tcp_conn_t *c = handle->data;
    worker_t *w = c->w;

    (void)suggested;
    if (c->len == c->off) {
        /* Consumed inside the read callback: one buffer serves every connection. */
        *buf = uv_buf_init((char *)w->tcp_in, TCP_READ_SIZE);
        return;
    }
    /* A partial message: read the rest after it, into a buffer sized for it. */
    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    size_t need = c->len < 2 ? 512 : 2 + frame_len(c->buf);
    if (need <= c->len)
        need = c->len + 512;
    if (conn_reserve(c, need) < 0) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void conn_read_stop(tcp_conn_t *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    tcp_conn_t *c = stream->data;
    worker_t *w = c->w;
    size_t used = 0;
    int rc;

    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            /* Half close: answer what is buffered, finish the writes, then close. */
            c->eof = true;
            conn_read_stop(c);
            conn_schedule(c);
        } else {
            conn_close_bad(c);
        }
        return;
    }
    conn_touch(c);
    if (buf->base == (char *)w->tcp_in) {
        rc = conn_consume(c, w->tcp_in, (size_t)nread, &used);
        if (rc == 0 && used < (size_t)nread) {
            rc = conn_reserve(c, (size_t)nread - used);
            if (rc == 0) {
                memcpy(c->buf, w->tcp_in + used, (size_t)nread - used);
                c->off = 0;
                c->len = (size_t)nread - used;
            }
        }
    } else {
        c->len += (size_t)nread;
        rc = conn_consume(c, c->buf + c->off, c->len - c->off, &used);
        if (rc == 0)
            conn_compact(c, used);
    }
    if (rc < 0) {
        conn_close_bad(c);
        return;
    }
    conn_schedule(c);
}

static void conn_read_start(tcp_conn_t *c)
{
    if (c->reading || c->eof || c->closing)
        return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
    if (rc < 0) {
        conn_close_bad(c);
        return;
    }
    c->reading = true;
}

/*
 * Writes the next chunk of C's transfer when the socket has taken the previous one. Returns
 * true while the transfer goes on (the write callback comes back here), false once it has
 * ended.
 */
static bool conn_xfr_pump(tcp_conn_t *c)
{
    worker_t *w = c->w;
    if (c->writes > 0)
        return true;
    tcp_wreq_t *q = malloc(sizeof(*q) + TCP_XFR_CHUNK + XFR_MSG_MAX + 2);
    if (!q) {
        conn_xfr_end(c, QUERY_XFR_FAILED);
        conn_close_bad(c);
        return false;
    }
    size_t len = 0;
    uint64_t now = (uint64_t)time(NULL);
    int rc = 0;
    while (len < TCP_XFR_CHUNK) {
        size_t n = 0;
        rc = xfr_next(c->xfr, q->data + len, XFR_MSG_MAX + 2, now, &n);
        if (rc != 0 || n == 0)
            break;
        len += n;
    }
    if (rc != 0) {
        log_warn("tcp", "zone transfer of %s cut short: %s", zone_name(xfr_zone(c->xfr)),
                 fennec_strerror(rc));
        free(q);
        conn_xfr_end(c, QUERY_XFR_FAILED);
        conn_close_bad(c);
        return false;
    }
    if (len == 0) {
        free(q);
        log_debug("tcp", "zone transfer of %s: %llu records", zone_name(xfr_zone(c->xfr)),
                  (unsigned long long)xfr_records(c->xfr));
        conn_xfr_end(c, QUERY_XFR_DONE);
        return false;
    }
    q->c = c;
    q->answers = 0;
    q->req.data = q;
    uv_buf_t b = uv_buf_init((char *)q->data, (unsigned)len);
    rc = uv_write(&q->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
    if (rc < 0) {
        free(q);
        conn_xfr_end(c, QUERY_XFR_FAILED);
        conn_close_bad(c);
        return false;
    }
    STAT_ADD(w, tcp_answered, 1);
    c->writes++;
    return true;
}

/* Decides, after any change, whether C reads, waits for its turn, waits for its writes or
 * is done. */
static void conn_schedule(tcp_conn_t *c)
{
    if (c->closing)
        return;
    if (c->xfr) {
        conn_read_stop(c);
        conn_unready(c);
        if (conn_xfr_pump(c) || c->closing)
            return;
    }
    bool work = conn_has_message(c);
    bool saturated = conn_saturated(c);
    if (work || saturated) {
        conn_read_stop(c);
        if (work && !saturated)
            conn_ready(c);
        else
            conn_unready(c); /* the write callback brings it back */
        return;
    }
    conn_unready(c);
    if (c->eof) {
        if (c->writes == 0)
            conn_close(c);
        return;
    }
    conn_read_start(c);
}

static void tcp_ready_cb(uv_idle_t *idle)
{
    worker_t *w = idle->data;

    /* One turn for each connection queued now; those that re-queue go to the back. */
    size_t n = 0;
    for (tcp_conn_t *c = w->ready; c; c = c->rdy.next)
        n++;
    while (n-- > 0 && w->ready) {
        tcp_conn_t *c = w->ready;
        conn_unready(c);
        conn_serve(c);
    }
    if (!w->ready)
        uv_idle_stop(idle);
}

/* ---- accepting ---- */

static void tcp_refused_closed_cb(uv_handle_t *handle)
{
    free(handle);
}

static void tcp_refuse(worker_t *w, uv_stream_t *server)
{
    STAT_ADD(w, tcp_refused, 1);
    uv_tcp_t *t = malloc(sizeof(*t));
    if (!t)
        return;
    if (uv_tcp_init(&w->loop, t) < 0) {
        free(t);
        return;
    }
    (void)uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, tcp_refused_closed_cb);
}

static void tcp_connection_cb(uv_stream_t *server, int status)
{
    tcp_listener_t *l = server->data;
    worker_t *w = l->w;
    uint32_t max = w->cfg->tcp.max_connections;

    if (status < 0) {
        log_debug("tcp", "%s: accept: %s", l->addr->text, uv_strerror(status));
        return;
    }
    /* While the worker is overloaded (docs/overload.md) only a quarter of the connections
     * are allowed: new ones are refused at once rather than queued behind the flood. */
    if (max > 0 && w->small_rcvbuf)
        max = max / 4 ? max / 4 : 1;
    if (w->stopping || (max > 0 && STAT_GET(w, tcp_open) >= max)) {
        tcp_refuse(w, server);
        return;
    }
    tcp_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        tcp_refuse(w, server);
        return;
    }
    c->w = w;
    if (uv_tcp_init(&w->loop, &c->tcp) < 0) {
        free(c);
        tcp_refuse(w, server);
        return;
    }
    c->tcp.data = c;
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    conn_link(&w->conns, c);
    STAT_ADD(w, tcp_open, 1);
    STAT_ADD(w, tcp_accepted, 1);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    int plen = sizeof(c->peer);
    c->has_peer = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &plen) == 0;
    conn_touch(c);
    conn_read_start(c);
}

int tcp_listener_start(tcp_listener_t *l)
{
    int rc = uv_tcp_init(&l->w->loop, &l->tcp);
    if (rc < 0)
        return rc;
    l->handle_init = true;
    l->tcp.data = l;
    rc = uv_tcp_open(&l->tcp, l->fd);
    if (rc < 0)
        return rc;
    l->fd = -1; /* closed with the handle from now on */
    return uv_listen((uv_stream_t *)&l->tcp, TCP_BACKLOG, tcp_connection_cb);
}

void tcp_listener_close(tcp_listener_t *l)
{
    if (l->handle_init && !uv_is_closing((uv_handle_t *)&l->tcp))
        uv_close((uv_handle_t *)&l->tcp, NULL);
}

int tcp_worker_init(worker_t *w)
{
    w->tcp_in = malloc(TCP_READ_SIZE);
    w->tcp_out = malloc(TCP_OUT_SIZE);
    if (!w->tcp_in || !w->tcp_out)
        return -ENOMEM;
    int rc = uv_idle_init(&w->loop, &w->ready_idle);
    if (rc < 0)
        return rc;
    w->ready_idle.data = w;
    w->idle_init = true;
    return 0;
}

void tcp_worker_close_all(worker_t *w)
{
    while (w->conns)
        conn_close(w->conns);
    if (w->idle_init && !uv_is_closing((uv_handle_t *)&w->ready_idle))
        uv_close((uv_handle_t *)&w->ready_idle, NULL);
}

void tcp_worker_deinit(worker_t *w)
{
    free(w->tcp_in);
    free(w->tcp_out);
    w->tcp_in = NULL;
    w->tcp_out = NULL;
}
