/*
 * fennecd's end of the supervisor link. Reports come in on the main loop and are kept under
 * one mutex; a drain from a control thread is sent straight on the socket (a SOCK_SEQPACKET
 * send is one whole message, so threads do not interleave) and waits on a condition for the
 * report that names its id. The first zone served is sent to the supervisor whenever it
 * changes (looked at every ZONE_POLL_MS): the self-check asks for its SOA.
 */
#include "fennec/anycast.h"

#include "fennec/common.h"
#include "fennec/repl.h"
#include "fennec/zone.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MOD          "anycast"
#define ZONE_POLL_MS 200

static struct {
    int fd;
    bool supervised;
    bool linked;
    bool reported;
    supervisor_report_t rep;
    uint64_t next_id;
    uint64_t last_reply;
    uv_poll_t poll;
    uv_timer_t zone_timer;
    bool handles;
    char zone[256];
} g = {.fd = -1};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void cond_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cond, &attr);
    pthread_condattr_destroy(&attr);
}

static void link_lost(const char *why)
{
    pthread_mutex_lock(&g_lock);
    bool was = g.linked;
    g.linked = false;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    if (g.handles)
        uv_poll_stop(&g.poll);
    if (was) {
        log_warn(MOD,
                 "the link to fennec-supervisor is gone (%s): serving on unsupervised; the "
                 "announcement stays as BIRD has it",
                 why);
        repl_announce_self(REPL_ANNOUNCE_UNKNOWN);
    }
}

static void on_report(const char *buf, size_t len)
{
    supervisor_report_t r;
    if (supervisor_report_decode(buf, len, &r) != 0) {
        log_warn(MOD, "a message from the supervisor that is not a report: ignored");
        return;
    }
    pthread_mutex_lock(&g_lock);
    bool changed = !g.reported || g.rep.state != r.state;
    g.rep = r;
    g.reported = true;
    if (r.reply > g.last_reply)
        g.last_reply = r.reply;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    repl_announce_self(r.state);
    if (changed)
        log_info(MOD, "the supervisor says: %s (%s)", repl_announce_name(r.state), r.reason);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)events;
    if (status < 0) {
        link_lost(uv_strerror(status));
        return;
    }
    char buf[SUPERVISOR_MSG_MAX + 1];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(g.fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                link_lost(strerror(errno));
            return;
        }
        if (n == 0) {
            link_lost("the supervisor closed it");
            return;
        }
        if ((size_t)n > SUPERVISOR_MSG_MAX) {
            log_warn(MOD, "a message of %zd bytes from the supervisor: ignored", n);
            continue;
        }
        on_report(buf, (size_t)n);
    }
}

static int send_json(json_t *o)
{
    char buf[SUPERVISOR_MSG_MAX];
    size_t n = o ? json_dumpb(o, buf, sizeof(buf), JSON_COMPACT) : 0;
    json_decref(o);
    if (n == 0 || n > sizeof(buf))
        return -ENOMEM;
    if (send(g.fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        return -errno;
    return 0;
}

static void on_zone_timer(uv_timer_t *t)
{
    (void)t;
    char first[256] = "";
    zone_read_lock();
    const zone_set_t *set = zone_set_current();
    if (set && zone_set_count(set) > 0)
        snprintf(first, sizeof(first), "%s", zone_name(zone_set_at(set, 0)));
    zone_read_unlock();
    if (strcmp(first, g.zone) == 0 || !g.linked)
        return;
    if (send_json(json_pack("{s:s, s:s}", "type", "zone", "name", first)) == 0)
        snprintf(g.zone, sizeof(g.zone), "%s", first);
}

int anycast_start(uv_loop_t *loop)
{
    pthread_once(&g_once, cond_init);
    const char *v = getenv(SUPERVISOR_FD_ENV);
    if (!v)
        return 0;
    char *end = NULL;
    long fd = strtol(v, &end, 10);
    struct stat st;
    if (end == v || *end || fd < 0 || fd > 65535 || fstat((int)fd, &st) != 0 ||
        !S_ISSOCK(st.st_mode)) {
        log_error(MOD, "%s=%s names no socket: running without the supervisor", SUPERVISOR_FD_ENV,
                  v);
        unsetenv(SUPERVISOR_FD_ENV);
        return -EBADF;
    }
    unsetenv(SUPERVISOR_FD_ENV);
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    fcntl((int)fd, F_SETFL, fcntl((int)fd, F_GETFL) | O_NONBLOCK);
    g.fd = (int)fd;
    g.supervised = true;
    g.linked = true;
    int rc = uv_poll_init(loop, &g.poll, g.fd);
    if (rc == 0) {
        uv_timer_init(loop, &g.zone_timer);
        g.handles = true;
        uv_poll_start(&g.poll, UV_READABLE, on_readable);
        uv_timer_start(&g.zone_timer, on_zone_timer, 0, ZONE_POLL_MS);
    } else {
        log_error(MOD, "supervisor link: %s", uv_strerror(rc));
        g.linked = false;
        return rc;
    }
    log_info(MOD, "running under fennec-supervisor (link on descriptor %d)", g.fd);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

void anycast_stop(void)
{
    if (!g.handles)
        return;
    g.handles = false;
    uv_close((uv_handle_t *)&g.poll, on_closed);
    uv_close((uv_handle_t *)&g.zone_timer, on_closed);
    pthread_mutex_lock(&g_lock);
    g.linked = false;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

void anycast_status_get(anycast_status_t *out)
{
    pthread_mutex_lock(&g_lock);
    out->supervised = g.supervised;
    out->linked = g.linked;
    out->reported = g.reported;
    out->rep = g.rep;
    pthread_mutex_unlock(&g_lock);
}

int anycast_drain(bool drain, uint32_t timeout_ms, supervisor_report_t *after)
{
    pthread_once(&g_once, cond_init);
    pthread_mutex_lock(&g_lock);
    if (!g.supervised) {
        pthread_mutex_unlock(&g_lock);
        return FENNEC_ENOTSUP;
    }
    if (!g.linked) {
        pthread_mutex_unlock(&g_lock);
        return -EPIPE;
    }
    uint64_t id = ++g.next_id;
    pthread_mutex_unlock(&g_lock);
    int rc = send_json(
        json_pack("{s:s, s:b, s:I}", "type", "drain", "drain", drain, "id", (json_int_t)id));
    if (rc != 0)
        return rc == -ENOMEM ? rc : -EPIPE;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g_lock);
    rc = 0;
    while (g.last_reply < id && g.linked && rc == 0)
        if (pthread_cond_timedwait(&g_cond, &g_lock, &deadline) == ETIMEDOUT)
            rc = FENNEC_ETIMEOUT;
    if (g.last_reply >= id)
        rc = 0;
    else if (!g.linked)
        rc = -EPIPE;
    *after = g.rep;
    pthread_mutex_unlock(&g_lock);
    return rc;
}
