/*
 * BIRD's control protocol: the reply parser and a client that keeps one protocol of one BIRD
 * in the state fennec wants. One connection is kept open so that a withdrawal costs one write
 * and one reply on an established socket: no connect, no fork, no exec when fennecd dies.
 * Only one command is in flight at a time; the desired state may change meanwhile, and the
 * newest one is sent when the reply comes (states, not events, so nothing queues up).
 */
#include "fennec/bird.h"

#include "fennec/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define MOD "bird"

/* ---- reply parser ----------------------------------------------------------------------- */

void bird_parser_init(bird_parser_t *p)
{
    p->len = 0;
    p->code = -1;
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One complete line (newline removed) of LEN bytes. */
static int parse_line(bird_parser_t *p, const char *s, size_t len, bird_line_fn fn, void *arg)
{
    bird_line_t l = {0};
    if (len > 0 && s[len - 1] == '\r')
        len--;
    if (memchr(s, '\0', len))
        return FENNEC_EMALFORMED;
    size_t o = 0;
    if (len > 0 && s[0] == '+') {
        l.async = true;
        o = 1;
    }
    if (!l.async && len > 0 && s[0] == ' ') {
        if (p->code < 0)
            return FENNEC_EMALFORMED;
        l.code = p->code;
        l.continued = true;
        l.text = s + 1;
        l.len = len - 1;
        return fn ? fn(arg, &l) : 0;
    }
    if (len < o + 5 || !digit(s[o]) || !digit(s[o + 1]) || !digit(s[o + 2]) || !digit(s[o + 3]))
        return FENNEC_EMALFORMED;
    char sep = s[o + 4];
    if (sep != '-' && sep != ' ')
        return FENNEC_EMALFORMED;
    l.code =
        (s[o] - '0') * 1000 + (s[o + 1] - '0') * 100 + (s[o + 2] - '0') * 10 + (s[o + 3] - '0');
    l.last = sep == ' ';
    l.text = s + o + 5;
    l.len = len - o - 5;
    if (!l.async)
        p->code = l.last ? -1 : l.code;
    return fn ? fn(arg, &l) : 0;
}

int bird_parser_feed(bird_parser_t *p, const char *data, size_t len, bird_line_fn fn, void *arg)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t take = nl ? (size_t)(nl - (data + i)) : len - i;
        if (p->len + take > sizeof(p->line))
            return FENNEC_EMALFORMED;
        memcpy(p->line + p->len, data + i, take);
        p->len += take;
        i += take;
        if (!nl)
            break;
        i++; /* the newline */
        size_t n = p->len;
        p->len = 0;
        int rc = parse_line(p, p->line, n, fn, arg);
        if (rc)
            return rc;
    }
    return 0;
}

int bird_reply_collect(void *arg, const bird_line_t *line)
{
    bird_reply_t *r = arg;
    if (line->async || r->done)
        return 0;
    if (r->lines++ == 0) {
        r->code = line->code;
        size_t n = line->len < sizeof(r->msg) - 1 ? line->len : sizeof(r->msg) - 1;
        memcpy(r->msg, line->text, n);
        r->msg[n] = '\0';
    }
    if (line->code >= 8000 && !r->error) {
        r->error = true;
        r->code = line->code;
        size_t n = line->len < sizeof(r->msg) - 1 ? line->len : sizeof(r->msg) - 1;
        memcpy(r->msg, line->text, n);
        r->msg[n] = '\0';
    }
    if (line->last) {
        r->done = true;
        return 1;
    }
    return 0;
}

int bird_reply_parse(const char *data, size_t len, bird_reply_t *out)
{
    bird_parser_t *p = malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    bird_parser_init(p);
    memset(out, 0, sizeof(*out));
    size_t consumed = 0;
    int rc = 0;
    /* Line by line, to know where the reply ended. */
    while (consumed < len && rc == 0) {
        const char *nl = memchr(data + consumed, '\n', len - consumed);
        size_t n = nl ? (size_t)(nl - (data + consumed)) + 1 : len - consumed;
        if (out->done) {
            rc = FENNEC_EMALFORMED; /* bytes after the last line */
            break;
        }
        rc = bird_parser_feed(p, data + consumed, n, bird_reply_collect, out);
        if (rc == 1)
            rc = 0;
        consumed += n;
    }
    if (rc == 0 && (!out->done || p->len > 0))
        rc = out->done ? FENNEC_EMALFORMED : FENNEC_ENOTFOUND;
    free(p);
    return rc;
}

/* ---- client ------------------------------------------------------------------------------ */

typedef enum {
    PHASE_DOWN = 0,   /* waiting for the retry timer */
    PHASE_CONNECTING, /* uv_pipe_connect() in progress */
    PHASE_GREETING,   /* connected, waiting for "0001 BIRD ... ready." */
    PHASE_IDLE,       /* ready for a command */
    PHASE_BUSY,       /* a command is in flight */
} phase_t;

struct bird_ctl {
    uv_loop_t *loop;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char proto[80];
    bird_ctl_fn fn;
    void *arg;

    uv_pipe_t pipe;
    bool pipe_live; /* initialised and not yet closed */
    uv_connect_t connect_req;
    uv_write_t write_req;
    char wbuf[128];
    uv_timer_t retry;
    uv_timer_t reply_timer;

    phase_t phase;
    bool want_set;
    bool want;
    bool sent;    /* the state the command in flight asks for */
    bool refused; /* BIRD refused the last command: wait for the retry timer */
    bird_state_t confirmed;
    bird_parser_t parser;
    bird_reply_t reply;
    unsigned retry_ms;
    bool outage; /* an outage was logged and not yet ended */
    char err[384];
    char last_logged[384];

    bool freeing;
    int open_handles; /* while freeing: handles not yet closed */
};

static void ctl_connect(bird_ctl_t *b);
static void kick(bird_ctl_t *b);
static void on_retry(uv_timer_t *t);

static void notify(bird_ctl_t *b)
{
    if (b->fn && !b->freeing)
        b->fn(b, b->arg);
}

static void maybe_free(bird_ctl_t *b)
{
    if (b->freeing && b->open_handles == 0)
        free(b);
}

static void on_handle_closed(uv_handle_t *h)
{
    bird_ctl_t *b = h->data;
    if (h == (uv_handle_t *)&b->pipe)
        b->pipe_live = false;
    if (b->freeing) {
        b->open_handles--;
        maybe_free(b);
        return;
    }
    if (h == (uv_handle_t *)&b->pipe && b->phase == PHASE_DOWN) {
        unsigned d = b->retry_ms ? b->retry_ms : BIRD_RETRY_MIN_MS;
        b->retry_ms = d * 2 > BIRD_RETRY_MAX_MS ? BIRD_RETRY_MAX_MS : d * 2;
        uv_timer_start(&b->retry, on_retry, d, 0);
    }
}

/* The connection failed or BIRD said something we cannot follow: close, retry later. */
static void ctl_fail(bird_ctl_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ctl_fail(bird_ctl_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, sizeof(b->err), fmt, ap);
    va_end(ap);
    if (!b->outage) {
        log_warn(MOD,
                 "BIRD at %s not reachable: %s; retrying every %u ms at most, and %s protocol "
                 "%s once it answers",
                 b->path, b->err, BIRD_RETRY_MAX_MS,
                 !b->want_set ? "then leaving"
                 : b->want    ? "then enabling"
                              : "then disabling",
                 b->proto);
        b->outage = true;
    } else {
        log_debug(MOD, "BIRD at %s: still not reachable: %s", b->path, b->err);
    }
    uv_timer_stop(&b->reply_timer);
    b->phase = PHASE_DOWN;
    b->confirmed = BIRD_UNKNOWN;
    b->refused = false;
    if (b->pipe_live && !uv_is_closing((uv_handle_t *)&b->pipe)) {
        uv_read_stop((uv_stream_t *)&b->pipe);
        uv_close((uv_handle_t *)&b->pipe, on_handle_closed);
    } else if (!b->pipe_live) {
        unsigned d = b->retry_ms ? b->retry_ms : BIRD_RETRY_MIN_MS;
        b->retry_ms = d * 2 > BIRD_RETRY_MAX_MS ? BIRD_RETRY_MAX_MS : d * 2;
        uv_timer_start(&b->retry, on_retry, d, 0);
    }
    notify(b);
}

static void on_reply_timeout(uv_timer_t *t)
{
    bird_ctl_t *b = t->data;
    ctl_fail(b, "no answer within %d ms", BIRD_REPLY_TIMEOUT_MS);
}

static void reply_done(bird_ctl_t *b)
{
    uv_timer_stop(&b->reply_timer);
    b->phase = PHASE_IDLE;
    const bird_reply_t *r = &b->reply;
    bird_state_t before = b->confirmed;
    if (!r->error && (r->code == 11 || r->code == 10) && b->sent) {
        b->confirmed = BIRD_ENABLED;
    } else if (!r->error && (r->code == 9 || r->code == 8) && !b->sent) {
        b->confirmed = BIRD_DISABLED;
    } else {
        snprintf(b->err, sizeof(b->err), "BIRD refused \"%s %s\": %04d %s",
                 b->sent ? "enable" : "disable", b->proto, r->code, r->msg);
        if (strcmp(b->err, b->last_logged) != 0) {
            log_error(MOD,
                      "%s (is protocol %s defined in BIRD's configuration?); retrying every "
                      "%d ms",
                      b->err, b->proto, BIRD_RETRY_MAX_MS);
            snprintf(b->last_logged, sizeof(b->last_logged), "%s", b->err);
        }
        b->confirmed = BIRD_UNKNOWN;
        b->refused = true;
        uv_timer_start(&b->retry, on_retry, BIRD_RETRY_MAX_MS, 0);
        if (before != b->confirmed)
            notify(b);
        return;
    }
    b->err[0] = '\0';
    b->last_logged[0] = '\0';
    log_debug(MOD, "BIRD: %s %s: %04d %s", b->sent ? "enable" : "disable", b->proto, r->code,
              r->msg);
    notify(b);
    kick(b);
}

static int on_line(void *arg, const bird_line_t *l)
{
    bird_ctl_t *b = arg;
    if (l->async)
        return 0;
    switch (b->phase) {
    case PHASE_GREETING:
        if (l->code != 1 || !l->last)
            return FENNEC_EMALFORMED;
        uv_timer_stop(&b->reply_timer);
        b->phase = PHASE_IDLE;
        b->retry_ms = 0;
        b->err[0] = '\0';
        if (b->outage)
            log_info(MOD, "BIRD at %s answers again", b->path);
        else
            log_debug(MOD, "connected to BIRD at %s", b->path);
        b->outage = false;
        notify(b);
        kick(b);
        return 0;
    case PHASE_BUSY:
        bird_reply_collect(&b->reply, l);
        if (b->reply.done)
            reply_done(b);
        return 0;
    default:
        return FENNEC_EMALFORMED; /* BIRD speaks only when spoken to */
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    static char slab[8192]; /* the loop's thread only; consumed before the next read */
    (void)h;
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    bird_ctl_t *b = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        ctl_fail(b, "%s", nread == UV_EOF ? "BIRD closed the connection" : uv_strerror((int)nread));
        return;
    }
    int rc = bird_parser_feed(&b->parser, buf->base, (size_t)nread, on_line, b);
    if (rc != 0 && b->phase != PHASE_DOWN)
        ctl_fail(b, "a reply that is not BIRD's control protocol");
}

static void on_written(uv_write_t *req, int status)
{
    bird_ctl_t *b = req->data;
    if (status < 0 && status != UV_ECANCELED && b->phase == PHASE_BUSY)
        ctl_fail(b, "write: %s", uv_strerror(status));
}

static void send_command(bird_ctl_t *b)
{
    b->sent = b->want;
    /* A name ending in '*' is a pattern, which BIRD takes quoted; its reply starts with the
     * first protocol's code (every match is enabled or disabled alike). */
    bool pattern = b->proto[0] && b->proto[strlen(b->proto) - 1] == '*';
    int n = snprintf(b->wbuf, sizeof(b->wbuf), pattern ? "%s \"%s\"\n" : "%s %s\n",
                     b->sent ? "enable" : "disable", b->proto);
    memset(&b->reply, 0, sizeof(b->reply));
    b->phase = PHASE_BUSY;
    uv_buf_t buf = uv_buf_init(b->wbuf, (unsigned)n);
    b->write_req.data = b;
    int rc = uv_write(&b->write_req, (uv_stream_t *)&b->pipe, &buf, 1, on_written);
    if (rc < 0) {
        ctl_fail(b, "write: %s", uv_strerror(rc));
        return;
    }
    uv_timer_start(&b->reply_timer, on_reply_timeout, BIRD_REPLY_TIMEOUT_MS, 0);
}

static void kick(bird_ctl_t *b)
{
    if (b->phase != PHASE_IDLE || !b->want_set || b->refused || b->freeing)
        return;
    bird_state_t target = b->want ? BIRD_ENABLED : BIRD_DISABLED;
    if (b->confirmed != target)
        send_command(b);
}

static void on_connect(uv_connect_t *req, int status)
{
    bird_ctl_t *b = req->data;
    if (b->freeing)
        return;
    if (status < 0) {
        ctl_fail(b, "connect: %s", uv_strerror(status));
        return;
    }
    b->phase = PHASE_GREETING;
    bird_parser_init(&b->parser);
    int rc = uv_read_start((uv_stream_t *)&b->pipe, on_alloc, on_read);
    if (rc < 0) {
        ctl_fail(b, "read: %s", uv_strerror(rc));
        return;
    }
    uv_timer_start(&b->reply_timer, on_reply_timeout, BIRD_REPLY_TIMEOUT_MS, 0);
}

static void ctl_connect(bird_ctl_t *b)
{
    int rc = uv_pipe_init(b->loop, &b->pipe, 0);
    if (rc < 0) {
        b->phase = PHASE_DOWN;
        ctl_fail(b, "%s", uv_strerror(rc));
        return;
    }
    b->pipe.data = b;
    b->pipe_live = true;
    b->phase = PHASE_CONNECTING;
    b->connect_req.data = b;
    uv_pipe_connect(&b->connect_req, &b->pipe, b->path, on_connect);
}

static void on_retry(uv_timer_t *t)
{
    bird_ctl_t *b = t->data;
    if (b->phase == PHASE_DOWN && !b->pipe_live) {
        ctl_connect(b);
    } else if (b->phase == PHASE_IDLE && b->refused) {
        b->refused = false;
        kick(b);
    }
}

int bird_ctl_new(uv_loop_t *loop, const char *socket_path, const char *protocol, bird_ctl_fn fn,
                 void *arg, bird_ctl_t **out)
{
    bird_ctl_t *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    if (strlen(socket_path) >= sizeof(b->path) || strlen(protocol) >= sizeof(b->proto)) {
        free(b);
        return -ENAMETOOLONG;
    }
    snprintf(b->path, sizeof(b->path), "%s", socket_path);
    snprintf(b->proto, sizeof(b->proto), "%s", protocol);
    b->loop = loop;
    b->fn = fn;
    b->arg = arg;
    uv_timer_init(loop, &b->retry);
    uv_timer_init(loop, &b->reply_timer);
    b->retry.data = b;
    b->reply_timer.data = b;
    ctl_connect(b);
    *out = b;
    return 0;
}

void bird_ctl_want(bird_ctl_t *b, bool enabled)
{
    if (b->want_set && b->want == enabled)
        return;
    b->want_set = true;
    b->want = enabled;
    /* A refusal of the other state no longer holds this one back. */
    if (b->refused) {
        b->refused = false;
        uv_timer_stop(&b->retry);
    }
    kick(b);
}

bird_state_t bird_ctl_confirmed(const bird_ctl_t *b)
{
    return b->confirmed;
}

bool bird_ctl_settled(const bird_ctl_t *b)
{
    return b->want_set && b->confirmed == (b->want ? BIRD_ENABLED : BIRD_DISABLED);
}

bool bird_ctl_connected(const bird_ctl_t *b)
{
    return b->phase == PHASE_IDLE || b->phase == PHASE_BUSY;
}

const char *bird_ctl_error(const bird_ctl_t *b)
{
    return b->err;
}

void bird_ctl_free(bird_ctl_t *b)
{
    if (!b || b->freeing)
        return;
    b->freeing = true;
    b->open_handles = 2;
    uv_close((uv_handle_t *)&b->retry, on_handle_closed);
    uv_close((uv_handle_t *)&b->reply_timer, on_handle_closed);
    if (b->pipe_live) {
        b->open_handles++;
        if (!uv_is_closing((uv_handle_t *)&b->pipe))
            uv_close((uv_handle_t *)&b->pipe, on_handle_closed);
    }
}
