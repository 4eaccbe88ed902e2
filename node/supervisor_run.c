/*
 * fennec-supervisor at run time: one uv loop holds fennecd's process handle, the BIRD
 * client, the self-check sockets, the link to fennecd and the signals. Why it is built so:
 *
 *   - fennecd's exit reaches us through uv_spawn's exit callback (libuv's SIGCHLD handler),
 *     and the first thing that callback does is ask BIRD to disable the protocol on the
 *     connection that is already open: the withdrawal costs one write, not a poll interval;
 *   - the state is computed from inputs (running, check, drain, BIRD's confirmation) by a pure
 *     function, and every change of it is one log line with its reason, so the log, the
 *     counters and what fennecd reports can never disagree;
 *   - the self-check asks every service address from a connected UDP socket: the kernel only
 *     hands us answers whose source is that address, so a check that passes also proves that
 *     replies leave from the service address;
 *   - nothing here ever looks at the primary: a node that lost its primary keeps serving its
 *     last data, and withdrawing it for that would take the whole cluster down at once.
 */
#include "fennec/supervisor.h"

#include "fennec/bird.h"
#include "fennec/common.h"
#include "fennec/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MOD "supervisor"

#define WITHDRAW_WAIT_MS 1000 /* at SIGTERM or giving up: wait this long for BIRD to confirm */
#define REPLY_WAIT_MS    1000 /* a drain's answer waits this long for BIRD */
#define MAX_SERVICE      16

extern char **environ;

typedef struct probe {
    uv_udp_t udp;
    bool live;    /* handle initialised and not closing */
    bool pending; /* a query of this round is unanswered */
    bool ok;
    struct sup *s;
    size_t index;
} probe_t;

typedef struct sup {
    const cfg_t *cfg;
    const cfg_anycast_t *a;
    const supervisor_opts_t *o;
    uv_loop_t *loop;
    bird_ctl_t *bird;

    uv_process_t proc;
    bool proc_live; /* the handle is open (closed in the exit callback) */
    bool running;
    uint64_t started_ns;
    supervisor_restart_t restart;
    uv_timer_t restart_timer;
    bool gave_up;
    bool stopping;
    bool term_sent;
    bool finishing; /* the loop is being closed */
    uv_timer_t stop_timer;

    int link_fd;
    uv_poll_t link_poll;
    bool link_live;
    char zone[256]; /* the first zone fennecd serves, as it said */

    supervisor_check_t check;
    uv_timer_t check_timer;
    uv_timer_t check_timeout;
    probe_t probes[MAX_SERVICE];
    size_t probe_count;
    bool round_active;
    uint16_t qid;
    uint8_t query[512];
    size_t query_len;
    char check_why[256]; /* why the last failed round failed */

    supervisor_report_t rep;
    char cause[256]; /* the reason for the next transition */
    uint64_t pending_reply;
    uv_timer_t reply_timer;

    uv_signal_t sig_term, sig_int, sig_hup;
    int exit_code;
} sup_t;

/* ---- state ------------------------------------------------------------------------------- */

static void send_report(sup_t *s, uint64_t reply);

static supervisor_inputs_t inputs(const sup_t *s)
{
    supervisor_inputs_t in = {.running = s->running,
                              .gave_up = s->gave_up,
                              .stopping = s->stopping,
                              .check_up = s->check.up,
                              .drain = s->rep.drain,
                              .bird = s->bird ? bird_ctl_confirmed(s->bird) : BIRD_UNKNOWN};
    return in;
}

static void cause_set(sup_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cause_set(sup_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->cause, sizeof(s->cause), fmt, ap);
    va_end(ap);
}

/* Recomputes the state from the inputs: tells BIRD what it should do, logs and reports a
 * transition. */
static void update(sup_t *s)
{
    supervisor_inputs_t in = inputs(s);
    bird_ctl_want(s->bird, supervisor_want_announce(&in));
    in = inputs(s); /* bird_ctl_want() may not change the confirmed state synchronously */
    repl_announce_t to = supervisor_state_of(&in);
    if (to == s->rep.state)
        return;
    const char *why = s->cause;
    char bird_why[480];
    if (!bird_ctl_connected(s->bird) && supervisor_want_announce(&in)) {
        snprintf(bird_why, sizeof(bird_why), "%.250s; BIRD not reachable: %.200s", s->cause,
                 bird_ctl_error(s->bird));
        why = bird_why;
    }
    log_info(MOD, "anycast: %s -> %s (%s)", repl_announce_name(s->rep.state),
             repl_announce_name(to), why);
    s->rep.state = to;
    s->rep.since = fennec_wall_now();
    s->rep.transitions[to]++;
    snprintf(s->rep.reason, sizeof(s->rep.reason), "%s", why);
    send_report(s, 0);
}

/* ---- the link to fennecd ------------------------------------------------------------------- */

static void send_report(sup_t *s, uint64_t reply)
{
    if (!s->link_live)
        return;
    char buf[SUPERVISOR_MSG_MAX];
    s->rep.reply = reply;
    s->rep.bird_connected = bird_ctl_connected(s->bird);
    supervisor_text_copy(s->rep.bird_error, sizeof(s->rep.bird_error), bird_ctl_error(s->bird));
    int n = supervisor_report_encode(&s->rep, buf, sizeof(buf));
    s->rep.reply = 0;
    if (n < 0)
        return;
    /* A report is a state, not an event: one lost to a full buffer is replaced by the next. */
    if (send(s->link_fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_debug(MOD, "report to fennecd: %s", strerror(errno));
}

static void answer_pending(sup_t *s)
{
    if (!s->pending_reply)
        return;
    uv_timer_stop(&s->reply_timer);
    uint64_t id = s->pending_reply;
    s->pending_reply = 0;
    send_report(s, id);
}

static void on_reply_timeout(uv_timer_t *t)
{
    answer_pending(t->data);
}

/* A drain asks BIRD to withdraw; its answer waits until BIRD confirmed (or cannot). */
static void maybe_answer(sup_t *s)
{
    if (!s->pending_reply)
        return;
    if (bird_ctl_settled(s->bird) || !bird_ctl_connected(s->bird))
        answer_pending(s);
}

static void link_close(sup_t *s);

static void on_link_closed(uv_handle_t *h)
{
    sup_t *s = h->data;
    close(s->link_fd);
    s->link_fd = -1;
}

static void link_close(sup_t *s)
{
    if (!s->link_live)
        return;
    s->link_live = false;
    uv_poll_stop(&s->link_poll);
    uv_close((uv_handle_t *)&s->link_poll, on_link_closed);
}

static void link_message(sup_t *s, const char *buf, size_t len)
{
    json_t *o = json_loadb(buf, len, 0, NULL);
    const json_t *type = json_object_get(o, "type");
    if (!json_is_object(o) || !json_is_string(type)) {
        log_warn(MOD, "fennecd sent a message that is not one: ignored");
    } else if (strcmp(json_string_value(type), "drain") == 0) {
        const json_t *d = json_object_get(o, "drain");
        const json_t *id = json_object_get(o, "id");
        if (json_is_boolean(d)) {
            bool drain = json_is_true(d);
            if (drain != s->rep.drain) {
                s->rep.drain = drain;
                log_info(MOD, "%s requested through fennecd's control API",
                         drain ? "drain" : "undrain");
                cause_set(s, "%s requested", drain ? "drain" : "undrain");
            }
            answer_pending(s); /* an older request is answered by now */
            s->pending_reply = json_is_integer(id) && json_integer_value(id) > 0
                                   ? (uint64_t)json_integer_value(id)
                                   : 0;
            update(s);
            if (s->pending_reply)
                uv_timer_start(&s->reply_timer, on_reply_timeout, REPLY_WAIT_MS, 0);
            maybe_answer(s);
        }
    } else if (strcmp(json_string_value(type), "zone") == 0) {
        const json_t *n = json_object_get(o, "name");
        const char *name = json_is_string(n) ? json_string_value(n) : "";
        if (strlen(name) < sizeof(s->zone) && strcmp(name, s->zone) != 0) {
            snprintf(s->zone, sizeof(s->zone), "%s", name);
            log_debug(MOD, "fennecd serves %s first: the self-check asks for its SOA",
                      name[0] ? name : "(nothing)");
        }
    }
    json_decref(o);
}

static void on_link(uv_poll_t *h, int status, int events)
{
    sup_t *s = h->data;
    (void)events;
    if (status < 0) {
        link_close(s);
        return;
    }
    char buf[SUPERVISOR_MSG_MAX + 1];
    for (int i = 0; i < 64 && s->link_live; i++) {
        ssize_t n = recv(s->link_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                link_close(s);
            return;
        }
        if (n == 0) { /* fennecd closed its end: its exit callback follows */
            link_close(s);
            return;
        }
        if ((size_t)n > SUPERVISOR_MSG_MAX) {
            log_warn(MOD, "fennecd sent a message of %zd bytes: ignored", n);
            continue;
        }
        link_message(s, buf, (size_t)n);
    }
}

/* ---- the self-check --------------------------------------------------------------------- */

static void on_check_timeout(uv_timer_t *t);

static void round_finish(sup_t *s, bool ok)
{
    s->round_active = false;
    uv_timer_stop(&s->check_timeout);
    for (size_t i = 0; i < s->probe_count; i++)
        s->probes[i].pending = false;
    if (!ok)
        log_debug(MOD, "self-check failed: %s", s->check_why);
    if (!s->running)
        return;
    if (supervisor_check_result(&s->check, ok)) {
        if (s->check.up)
            cause_set(s, "self-check: %u answer(s) in a row from every service address",
                      s->check.ok_run);
        else
            cause_set(s, "self-check failed %u time(s) in a row: %s", s->check.fail_run,
                      s->check_why);
        update(s);
    }
}

/* The answer to our query: our id, QR, NOERROR, authoritative. */
static bool answer_good(const sup_t *s, const uint8_t *p, size_t len, char *why, size_t whylen)
{
    if (len < 12) {
        snprintf(why, whylen, "an answer of %zu bytes", len);
        return false;
    }
    if (((p[0] << 8) | p[1]) != s->qid) {
        snprintf(why, whylen, "an answer to another query");
        return false;
    }
    if (!(p[2] & 0x80) || (p[3] & 0x0f) != 0 || !(p[2] & 0x04)) {
        snprintf(why, whylen, "rcode %u%s", p[3] & 0x0f,
                 (p[2] & 0x04) ? "" : ", not authoritative");
        return false;
    }
    return true;
}

static void on_probe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[4096]; /* the loop's thread; consumed in the receive callback */
    (void)h;
    (void)suggested;
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_probe_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                          const struct sockaddr *addr, unsigned flags)
{
    probe_t *p = h->data;
    sup_t *s = p->s;
    (void)addr;
    if (nread == 0 || (flags & UV_UDP_PARTIAL) || !s->round_active || !p->pending)
        return;
    char why[128];
    const char *svc = s->a->service[p->index].text;
    if (nread < 0) {
        snprintf(s->check_why, sizeof(s->check_why), "%s: %s", svc, uv_strerror((int)nread));
        round_finish(s, false);
        return;
    }
    if (!answer_good(s, (const uint8_t *)buf->base, (size_t)nread, why, sizeof(why))) {
        if (strcmp(why, "an answer to another query") == 0)
            return; /* a late answer of an earlier round */
        snprintf(s->check_why, sizeof(s->check_why), "%s: %s", svc, why);
        round_finish(s, false);
        return;
    }
    p->pending = false;
    p->ok = true;
    for (size_t i = 0; i < s->probe_count; i++)
        if (s->probes[i].pending)
            return;
    round_finish(s, true);
}

static void probe_closed(uv_handle_t *h)
{
    (void)h;
}

static void probe_close(probe_t *p)
{
    if (p->live) {
        p->live = false;
        uv_close((uv_handle_t *)&p->udp, probe_closed);
    }
}

/* A connected UDP socket to service address I on its DNS port: the kernel drops answers
 * from any other source, so the check also proves where replies come from. */
static int probe_open(sup_t *s, probe_t *p, size_t i)
{
    const cfg_service_t *svc = &s->a->service[i];
    p->s = s;
    p->index = i;
    int rc = uv_udp_init_ex(s->loop, &p->udp, svc->ss.ss_family);
    if (rc < 0)
        return rc;
    p->udp.data = p;
    p->live = true;
    if ((rc = uv_udp_connect(&p->udp, (const struct sockaddr *)&svc->ss)) < 0 ||
        (rc = uv_udp_recv_start(&p->udp, on_probe_alloc, on_probe_recv)) < 0) {
        probe_close(p);
        return rc;
    }
    return 0;
}

static bool query_build(sup_t *s)
{
    const char *qname = s->a->check_qname ? s->a->check_qname : s->zone;
    if (!qname[0]) {
        snprintf(s->check_why, sizeof(s->check_why),
                 "fennecd serves no zone yet (set anycast.check.qname to ask for another name)");
        return false;
    }
    uint8_t *q = s->query;
    s->qid = (uint16_t)(rand() & 0xffff);
    q[0] = (uint8_t)(s->qid >> 8);
    q[1] = (uint8_t)s->qid;
    q[2] = 0; /* a query, no recursion */
    q[3] = 0;
    q[4] = 0;
    q[5] = 1; /* one question */
    memset(q + 6, 0, 6);
    int wl = wire_name_from_text(qname, q + 12);
    if (wl < 0) {
        snprintf(s->check_why, sizeof(s->check_why), "%.200s: not a domain name", qname);
        return false;
    }
    size_t o = 12 + (size_t)wl;
    q[o++] = 0;
    q[o++] = 6; /* SOA */
    q[o++] = 0;
    q[o++] = 1; /* IN */
    s->query_len = o;
    return true;
}

static void on_check(uv_timer_t *t)
{
    sup_t *s = t->data;
    if (!s->running || s->stopping || s->gave_up)
        return;
    if (s->round_active) {
        snprintf(s->check_why, sizeof(s->check_why), "no answer within the interval");
        round_finish(s, false);
    }
    if (!query_build(s)) {
        round_finish(s, false);
        return;
    }
    s->round_active = true;
    for (size_t i = 0; i < s->probe_count; i++) {
        probe_t *p = &s->probes[i];
        const char *svc = s->a->service[i].text;
        p->ok = false;
        p->pending = true;
        int rc = p->live ? 0 : probe_open(s, p, i);
        if (rc < 0) {
            snprintf(s->check_why, sizeof(s->check_why), "%s: %s", svc, uv_strerror(rc));
            round_finish(s, false);
            return;
        }
        uv_buf_t b = uv_buf_init((char *)s->query, (unsigned)s->query_len);
        rc = uv_udp_try_send(&p->udp, &b, 1, NULL);
        if (rc < 0) {
            snprintf(s->check_why, sizeof(s->check_why), "%s: send: %s", svc, uv_strerror(rc));
            probe_close(p); /* opened again next round */
            round_finish(s, false);
            return;
        }
    }
    uv_timer_start(&s->check_timeout, on_check_timeout, s->a->check_timeout_ns / 1000000, 0);
}

static void on_check_timeout(uv_timer_t *t)
{
    sup_t *s = t->data;
    if (!s->round_active)
        return;
    size_t o = 0;
    o += (size_t)snprintf(s->check_why, sizeof(s->check_why), "no answer within %llu ms from",
                          (unsigned long long)(s->a->check_timeout_ns / 1000000));
    for (size_t i = 0; i < s->probe_count && o < sizeof(s->check_why); i++)
        if (s->probes[i].pending)
            o += (size_t)snprintf(s->check_why + o, sizeof(s->check_why) - o, " %s",
                                  s->a->service[i].text);
    round_finish(s, false);
}

/* ---- fennecd's process --------------------------------------------------------------------- */

static void finish(sup_t *s);
static void spawn_fennecd(sup_t *s);

static void pidfile_write(const char *path, long pid)
{
    if (!path)
        return;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%ld\n", pid) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        log_warn(MOD, "pidfile %s: %s", path, strerror(errno));
}

static void on_proc_closed(uv_handle_t *h)
{
    sup_t *s = h->data;
    s->proc_live = false;
}

static void after_withdrawn(sup_t *s);
static void on_restart(uv_timer_t *t);

/* Counts an exit of fennecd (or a start that failed) at NOW against the restart intensity.
 * True when it may start again, after *DELAY ns of backoff; false when it is one too many:
 * the node gives up and stays withdrawn, and the cause says so ("fennecd WHAT: WHY; N
 * EVENTS within P s, ..."). */
static bool restart_allowed(sup_t *s, const char *what, const char *why, const char *events,
                            uint64_t now, uint64_t *delay)
{
    if (supervisor_restart_crash(&s->restart, now, delay))
        return true;
    s->gave_up = true;
    cause_set(s,
              "fennecd %s: %s; %zu %s within %llu s, more than anycast.restart.intensity %u: "
              "giving up, staying withdrawn",
              what, why, supervisor_restart_recent(&s->restart, now), events,
              (unsigned long long)(s->a->restart_period_ns / 1000000000ull),
              s->a->restart_intensity);
    update(s);
    log_error(MOD, "%s", s->cause);
    after_withdrawn(s);
    return false;
}

static void on_exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    sup_t *s = proc->data;
    /* Withdraw first: everything else can wait a few microseconds. */
    bird_ctl_want(s->bird, false);
    s->running = false;
    uint64_t now = uv_hrtime();
    char how[96];
    if (term_signal)
        snprintf(how, sizeof(how), "killed by signal %d", term_signal);
    else
        snprintf(how, sizeof(how), "exit status %lld", (long long)exit_status);
    uv_close((uv_handle_t *)proc, on_proc_closed);
    link_close(s);
    if (s->o->fennecd_pidfile)
        unlink(s->o->fennecd_pidfile);
    s->round_active = false;
    uv_timer_stop(&s->check_timeout);
    supervisor_check_init(&s->check, s->a->check_rise, s->a->check_fall);
    s->zone[0] = '\0';

    if (s->stopping) {
        log_info(MOD, "fennecd stopped (%s)", how);
        cause_set(s, "fennecd stopped: %s", how);
        update(s);
        finish(s);
        return;
    }
    double ran = (double)(now - s->started_ns) / 1e9;
    uint64_t delay = 0;
    if (!restart_allowed(s, "exited", how, "exits", now, &delay))
        return;
    cause_set(s, "fennecd exited: %s", how);
    update(s);
    log_warn(MOD,
             "fennecd exited after %.3f s: %s; starting it again in %llu ms (exit %zu of %u "
             "allowed within %llu s)",
             ran, how, (unsigned long long)(delay / 1000000),
             supervisor_restart_recent(&s->restart, now), s->a->restart_intensity,
             (unsigned long long)(s->a->restart_period_ns / 1000000000ull));
    uv_timer_start(&s->restart_timer, on_restart, delay / 1000000, 0);
}

static void on_restart(uv_timer_t *t)
{
    sup_t *s = t->data;
    if (s->stopping || s->gave_up)
        return;
    s->rep.restarts++;
    spawn_fennecd(s);
}

/* The environment of fennecd: ours, with SUPERVISOR_FD_ENV set to FD. */
static char **child_env(int fd)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0, plen = strlen(SUPERVISOR_FD_ENV);
    for (size_t i = 0; i < n; i++)
        if (!(strncmp(environ[i], SUPERVISOR_FD_ENV, plen) == 0 && environ[i][plen] == '='))
            env[k++] = environ[i];
    static char var[64];
    snprintf(var, sizeof(var), "%s=%d", SUPERVISOR_FD_ENV, fd);
    env[k++] = var;
    env[k] = NULL;
    return env;
}

/* A start that fails (no such program, ...) counts as an exit: the same intensity applies. */
static void spawn_failed(sup_t *s, const char *why)
{
    uint64_t now = uv_hrtime(), delay = 0;
    if (!restart_allowed(s, "cannot start", why, "failures", now, &delay))
        return;
    log_error(MOD, "cannot start %s: %s; trying again in %llu ms", s->o->fennecd_path, why,
              (unsigned long long)(delay / 1000000));
    uv_timer_start(&s->restart_timer, on_restart, delay / 1000000, 0);
}

static void spawn_fennecd(sup_t *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        spawn_failed(s, strerror(errno));
        return;
    }
    char **env = child_env(3);
    if (!env) {
        close(sv[0]);
        close(sv[1]);
        spawn_failed(s, "out of memory");
        return;
    }
    char *args[] = {(char *)s->o->fennecd_path, "-c", (char *)s->o->config_path, NULL};
    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 1;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = sv[1];
    uv_process_options_t po = {.exit_cb = on_exit_cb,
                               .file = s->o->fennecd_path,
                               .args = args,
                               .env = env,
                               .stdio_count = 4,
                               .stdio = stdio};
    int rc = uv_spawn(s->loop, &s->proc, &po);
    free(env);
    close(sv[1]);
    if (rc < 0) {
        close(sv[0]);
        /* libuv wants the handle closed even when the spawn failed. */
        s->proc.data = s;
        s->proc_live = true;
        uv_close((uv_handle_t *)&s->proc, on_proc_closed);
        spawn_failed(s, uv_strerror(rc));
        return;
    }
    s->proc.data = s;
    s->proc_live = true;
    s->running = true;
    s->started_ns = uv_hrtime();
    pidfile_write(s->o->fennecd_pidfile, (long)s->proc.pid);
    s->link_fd = sv[0];
    if (uv_poll_init(s->loop, &s->link_poll, s->link_fd) == 0) {
        s->link_poll.data = s;
        s->link_live = true;
        uv_poll_start(&s->link_poll, UV_READABLE, on_link);
    } else {
        close(s->link_fd);
        s->link_fd = -1;
    }
    supervisor_check_init(&s->check, s->a->check_rise, s->a->check_fall);
    log_info(MOD, "fennecd started: pid %d, %s -c %s", s->proc.pid, s->o->fennecd_path,
             s->o->config_path);
    cause_set(s, "fennecd started (pid %d); waiting for %u self-check answer(s) in a row",
              s->proc.pid, s->a->check_rise);
    update(s);
    send_report(s, 0); /* fennecd learns the state (drain, counters) it starts with */
}

/* ---- stopping ------------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void close_if(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

/* Closes every handle: uv_run() then returns. */
static void finish(sup_t *s)
{
    if (s->finishing)
        return;
    s->finishing = true;
    link_close(s);
    for (size_t i = 0; i < s->probe_count; i++)
        probe_close(&s->probes[i]);
    close_if((uv_handle_t *)&s->restart_timer);
    close_if((uv_handle_t *)&s->stop_timer);
    close_if((uv_handle_t *)&s->check_timer);
    close_if((uv_handle_t *)&s->check_timeout);
    close_if((uv_handle_t *)&s->reply_timer);
    close_if((uv_handle_t *)&s->sig_term);
    close_if((uv_handle_t *)&s->sig_int);
    close_if((uv_handle_t *)&s->sig_hup);
    bird_ctl_free(s->bird);
    s->bird = NULL;
}

static void on_kill_timeout(uv_timer_t *t)
{
    sup_t *s = t->data;
    if (s->running) {
        log_warn(MOD, "fennecd did not stop within %d s of SIGTERM: SIGKILL",
                 SUPERVISOR_STOP_TIMEOUT_S);
        uv_process_kill(&s->proc, SIGKILL);
    }
}

/* Withdrawn (or waited long enough for BIRD): stop fennecd, or end when giving up. */
static void proceed(sup_t *s)
{
    if (s->finishing || s->term_sent)
        return;
    s->term_sent = true;
    uv_timer_stop(&s->stop_timer);
    if (s->gave_up) {
        if (!bird_ctl_settled(s->bird))
            log_error(MOD, "BIRD did not confirm the withdrawal (%s)",
                      bird_ctl_error(s->bird)[0] ? bird_ctl_error(s->bird) : "no answer");
        s->exit_code = SUPERVISOR_EXIT_GAVE_UP;
        finish(s);
        return;
    }
    if (!s->running) {
        finish(s);
        return;
    }
    log_info(MOD, "stopping fennecd (pid %d)", s->proc.pid);
    uv_process_kill(&s->proc, SIGTERM);
    uv_timer_start(&s->stop_timer, on_kill_timeout, SUPERVISOR_STOP_TIMEOUT_S * 1000, 0);
}

static void on_withdraw_wait(uv_timer_t *t)
{
    proceed(t->data);
}

static void after_withdrawn(sup_t *s)
{
    uv_timer_stop(&s->restart_timer);
    if (bird_ctl_settled(s->bird))
        proceed(s);
    else
        uv_timer_start(&s->stop_timer, on_withdraw_wait, WITHDRAW_WAIT_MS, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    sup_t *s = h->data;
    if (signum == SIGHUP) {
        if (s->running) {
            log_info(MOD, "SIGHUP: passed on to fennecd");
            uv_process_kill(&s->proc, SIGHUP);
        }
        return;
    }
    if (s->stopping)
        return;
    log_info(MOD, "%s: withdrawing, then stopping fennecd",
             signum == SIGTERM ? "SIGTERM" : "SIGINT");
    s->stopping = true;
    cause_set(s, "supervisor stopping: %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    update(s);
    answer_pending(s);
    after_withdrawn(s);
}

static void on_bird(bird_ctl_t *b, void *arg)
{
    sup_t *s = arg;
    (void)b;
    if (s->finishing)
        return;
    update(s);
    maybe_answer(s);
    if ((s->stopping || s->gave_up) && !s->term_sent && bird_ctl_settled(s->bird))
        proceed(s);
}

/* ---- start ----------------------------------------------------------------------------------- */

int supervisor_run(const cfg_t *cfg, const supervisor_opts_t *opts)
{
    static sup_t st; /* one per process; handles must outlive uv_run() */
    sup_t *s = &st;
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->a = &cfg->anycast;
    s->o = opts;
    s->loop = uv_default_loop();
    s->link_fd = -1;
    s->rep.state = REPL_ANNOUNCE_DOWN;
    s->rep.since = fennec_wall_now();
    snprintf(s->rep.reason, sizeof(s->rep.reason), "supervisor starting");
    snprintf(s->cause, sizeof(s->cause), "supervisor starting");
    s->probe_count = s->a->service_count < MAX_SERVICE ? s->a->service_count : MAX_SERVICE;
    supervisor_restart_init(&s->restart, s->a);
    supervisor_check_init(&s->check, s->a->check_rise, s->a->check_fall);
    srand((unsigned)(uv_hrtime() ^ (uint64_t)getpid()));

    uv_timer_t *timers[] = {&s->restart_timer, &s->stop_timer, &s->check_timer, &s->check_timeout,
                            &s->reply_timer};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        uv_timer_init(s->loop, timers[i]);
        timers[i]->data = s;
    }
    uv_signal_t *sigs[] = {&s->sig_term, &s->sig_int, &s->sig_hup};
    int signums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        uv_signal_init(s->loop, sigs[i]);
        sigs[i]->data = s;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    int rc = bird_ctl_new(s->loop, s->a->bird_socket, s->a->bird_protocol, on_bird, s, &s->bird);
    if (rc != 0) {
        log_error(MOD, "BIRD client: %s", fennec_strerror(rc));
        finish(s);
        uv_run(s->loop, UV_RUN_DEFAULT);
        return 1;
    }
    /* Whatever an earlier run left announced is withdrawn until this fennecd answers. */
    bird_ctl_want(s->bird, false);
    uint64_t iv = s->a->check_interval_ns / 1000000;
    uv_timer_start(&s->check_timer, on_check, iv, iv);
    log_info(MOD,
             "supervising %s -c %s: BIRD %s protocol %s, service %s%s, check every %llu ms "
             "(timeout %llu ms, rise %u, fall %u), restart intensity %u in %llu s",
             opts->fennecd_path, opts->config_path, s->a->bird_socket, s->a->bird_protocol,
             s->a->service[0].text, s->a->service_count > 1 ? " and more" : "",
             (unsigned long long)iv, (unsigned long long)(s->a->check_timeout_ns / 1000000),
             s->a->check_rise, s->a->check_fall, s->a->restart_intensity,
             (unsigned long long)(s->a->restart_period_ns / 1000000000ull));
    spawn_fennecd(s);
    uv_run(s->loop, UV_RUN_DEFAULT);
    uv_loop_close(s->loop);
    if (s->exit_code == 0)
        log_info(MOD, "stopped");
    return s->exit_code;
}
