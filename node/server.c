/*
 * fennec — DNS workers: sockets bound up front, one thread and one uv loop per worker,
 * orderly stop. The UDP fast path lives in node/udp.c, TCP (RFC 7766) in node/tcp.c.
 */
#include "fennec/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fennec/common.h"
#include "fennec/zone.h"
#include "server_int.h"

#define SERVER_MAX_WORKERS 1024

struct server {
    const cfg_t *cfg;
    unsigned nworkers;
    worker_t *workers;
    bool started;
    bool stopped;
};

bool server_addr_is_wildcard(const cfg_addr_t *addr)
{
    if (addr->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addr->ss;
        return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
    }
    if (addr->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr->ss;
        return sin->sin_addr.s_addr == htonl(INADDR_ANY);
    }
    return false;
}

static unsigned server_worker_count(const cfg_t *cfg)
{
    long n = cfg->workers;
    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > SERVER_MAX_WORKERS)
        n = SERVER_MAX_WORKERS;
    return (unsigned)n;
}

static void server_close_fds(server_t *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        for (size_t j = 0; j < w->nsock; j++) {
            if (w->udp && w->udp[j].fd >= 0) {
                close(w->udp[j].fd);
                w->udp[j].fd = -1;
            }
            if (w->tcp && w->tcp[j].fd >= 0) {
                close(w->tcp[j].fd);
                w->tcp[j].fd = -1;
            }
        }
    }
}

int server_setopt(int fd, int level, int name, int value)
{
    if (setsockopt(fd, level, name, &value, sizeof(value)) < 0)
        return -errno;
    return 0;
}

int server_socket_new(const cfg_addr_t *addr, int type, bool reuseport)
{
    int family = addr->ss.ss_family;
    if (family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = reuseport ? server_setopt(fd, SOL_SOCKET, SO_REUSEPORT, 1) : 0;
    /* "::" serves IPv4 too (v4-mapped); a specific IPv6 address only IPv6. */
    if (rc == 0 && family == AF_INET6)
        rc = server_setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, server_addr_is_wildcard(addr) ? 0 : 1);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int server_socket_bind(int fd, const cfg_addr_t *addr, int rc)
{
    if (rc == 0 && bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/*
 * Whether ADDR is free: our own sockets share ports through SO_REUSEPORT, which would also
 * let a second fennecd bind the same address and silently take half the queries. A probe
 * bound without SO_REUSEPORT fails while anyone else holds the address.
 */
static int server_addr_exclusive(const cfg_addr_t *addr)
{
    static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
    for (size_t i = 0; i < 2; i++) {
        int fd = server_socket_new(addr, types[i], false);
        if (fd < 0)
            return fd;
        /* TCP: SO_REUSEADDR only passes over TIME_WAIT leftovers, never a listener. */
        if (types[i] == SOCK_STREAM)
            (void)server_setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
        fd = server_socket_bind(fd, addr, 0);
        if (fd < 0)
            return fd;
        close(fd);
    }
    return 0;
}

int server_new(const cfg_t *cfg, server_t **out)
{
    int rc = 0;
    server_t *srv = NULL;

    *out = NULL;
    if (!cfg || cfg->dns_count == 0)
        return -EINVAL;
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->cfg = cfg;
    srv->nworkers = server_worker_count(cfg);
    srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
    if (!srv->workers) {
        rc = -ENOMEM;
        goto cleanup;
    }
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        w->srv = srv;
        w->cfg = cfg;
        w->index = i;
        w->cpu = cfg->cpu_affinity_count ? cfg->cpu_affinity[i % cfg->cpu_affinity_count] : -1;
        w->nsock = cfg->dns_count;
        w->pace_fd = -1;
        w->udp = calloc(w->nsock, sizeof(*w->udp));
        w->tcp = calloc(w->nsock, sizeof(*w->tcp));
        if (!w->udp || !w->tcp) {
            rc = -ENOMEM;
            goto cleanup;
        }
        for (size_t j = 0; j < w->nsock; j++) {
            w->udp[j].fd = -1;
            w->tcp[j].fd = -1;
        }
    }
    for (size_t j = 0; j < cfg->dns_count; j++) {
        rc = server_addr_exclusive(&cfg->dns[j]);
        if (rc < 0) {
            log_error("server", "%s: %s%s", cfg->dns[j].text, fennec_strerror(rc),
                      rc == -EADDRINUSE ? " (another process, perhaps another fennecd, has it)"
                                        : "");
            goto cleanup;
        }
    }
    /* Worker by worker so that a conflict shows on the first socket of each address. */
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        for (size_t j = 0; j < w->nsock; j++) {
            const cfg_addr_t *addr = &cfg->dns[j];
            int fd = udp_socket_open(addr, cfg->overload.udp_rcvbuf, i == 0 && j == 0);
            if (fd < 0) {
                rc = fd;
                log_error("server", "udp %s: %s", addr->text, fennec_strerror(rc));
                goto cleanup;
            }
            w->udp[j] = (udp_sock_t){.w = w,
                                     .addr = addr,
                                     .fd = fd,
                                     .wildcard = server_addr_is_wildcard(addr),
                                     .gso = cfg->overload.udp_gso && udp_gso_usable(fd)};
            fd = tcp_socket_open(addr);
            if (fd < 0) {
                rc = fd;
                log_error("server", "tcp %s: %s", addr->text, fennec_strerror(rc));
                goto cleanup;
            }
            w->tcp[j] = (tcp_listener_t){.w = w, .addr = addr, .fd = fd};
        }
    }
    for (size_t j = 0; j < cfg->dns_count; j++)
        log_info("server", "listening on %s (udp, tcp) with %u worker%s", cfg->dns[j].text,
                 srv->nworkers, srv->nworkers == 1 ? "" : "s");
    *out = srv;
    srv = NULL;
cleanup:
    server_free(srv);
    return rc;
}

static void worker_stop_cb(uv_async_t *handle)
{
    worker_t *w = handle->data;
    w->stopping = true;
    for (size_t j = 0; j < w->nsock; j++) {
        udp_sock_close(&w->udp[j]);
        tcp_listener_close(&w->tcp[j]);
    }
    tcp_worker_close_all(w);
    udp_worker_close(w);
    uv_close((uv_handle_t *)&w->stop_async, NULL);
}

static void worker_pin(worker_t *w)
{
    if (w->cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (w->cpu >= CPU_SETSIZE) {
        log_warn("server", "worker %u: cpu %d out of range", w->index, w->cpu);
        return;
    }
    CPU_SET(w->cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0)
        log_warn("server", "worker %u: cannot pin to cpu %d: %s", w->index, w->cpu, strerror(rc));
    else
        log_debug("server", "worker %u pinned to cpu %d", w->index, w->cpu);
}

static void worker_main(void *arg)
{
    worker_t *w = arg;
    char name[16];

    /* Shows in top -H and /proc: "fennec-dns-3". */
    snprintf(name, sizeof(name), "fennec-dns-%u", w->index);
    pthread_setname_np(pthread_self(), name);
    worker_pin(w);
    /* This thread's CPU time and run-queue wait (which includes time throttled by a CPU
     * quota): the load signal CUBIC works from (udp_load_sample()). */
    w->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    zone_reader_register();
    uv_run(&w->loop, UV_RUN_DEFAULT);
    zone_reader_unregister();
    if (w->schedstat_fd >= 0)
        close(w->schedstat_fd);
}

/* CoDel and CUBIC state from the config (docs/overload.md). */
static int worker_overload_init(worker_t *w)
{
    const cfg_overload_t *o = &w->cfg->overload;
    uint64_t now = fennec_now_ns();
    int rc = uv_loop_configure(&w->loop, UV_METRICS_IDLE_TIME);
    if (rc < 0)
        return rc;
    w->codel_on = o->codel_enabled;
    w->cubic_on = o->cubic_enabled;
    rc = codel_init(&w->codel, o->codel_target_ns, o->codel_interval_ns);
    if (rc < 0)
        return rc;
    cubic_params_t cp;
    cubic_params_default(&cp);
    cp.threshold = o->cubic_threshold;
    cp.c = o->cubic_c;
    cp.beta = o->cubic_beta;
    cp.ema_alpha = o->cubic_ema_alpha;
    cp.min_rate = o->cubic_min_rate;
    if (cp.max_rate < cp.min_rate)
        cp.max_rate = cp.min_rate;
    rc = cubic_init(&w->cubic, &cp, now);
    if (rc < 0)
        return rc;
    w->util_last_ns = now;
    w->util_last_busy = 0;
    w->schedstat_fd = -1;
    return 0;
}

static int worker_prepare(worker_t *w)
{
    int rc;

    w->batch = malloc(sizeof(*w->batch));
    if (!w->batch)
        return -ENOMEM;
    udp_batch_wire(w->batch);
    w->qctx = query_ctx_new();
    if (!w->qctx)
        return -ENOMEM;
    query_ctx_set_config(w->qctx, w->cfg);
    rc = uv_loop_init(&w->loop);
    if (rc < 0)
        return rc;
    w->loop_init = true;
    w->loop.data = w;
    rc = worker_overload_init(w);
    if (rc < 0)
        return rc;
    rc = uv_async_init(&w->loop, &w->stop_async, worker_stop_cb);
    if (rc < 0)
        return rc;
    w->async_init = true;
    w->stop_async.data = w;
    rc = tcp_worker_init(w);
    if (rc < 0)
        return rc;
    rc = udp_worker_init(w);
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < w->nsock; j++) {
        rc = udp_sock_start(&w->udp[j]);
        if (rc < 0) {
            log_error("server", "udp %s: %s", w->udp[j].addr->text, fennec_strerror(rc));
            return rc;
        }
        rc = tcp_listener_start(&w->tcp[j]);
        if (rc < 0) {
            log_error("server", "tcp %s: %s", w->tcp[j].addr->text, fennec_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* Closes whatever a worker put on its loop, runs the loop until the close callbacks are
 * done and releases the loop. Runs on the worker's thread or, when it never started, here. */
static void worker_drain(worker_t *w)
{
    if (!w->loop_init)
        return;
    if (w->async_init && !uv_is_closing((uv_handle_t *)&w->stop_async))
        worker_stop_cb(&w->stop_async);
    for (int i = 0; i < 16; i++) {
        uv_run(&w->loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&w->loop) == 0) {
            w->loop_init = false;
            return;
        }
    }
    log_error("server", "worker %u: loop still busy at stop", w->index);
}

int server_start(server_t *srv)
{
    int rc = 0;

    if (!srv)
        return -EINVAL;
    if (srv->started)
        return srv->stopped ? -EINVAL : 0;
    srv->started = true;
    /* libuv writes to sockets with write(2): a peer's reset must not kill the process. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        rc = worker_prepare(w);
        if (rc < 0)
            goto cleanup;
        rc = uv_thread_create(&w->thread, worker_main, w);
        if (rc < 0) {
            log_error("server", "worker %u: cannot start thread: %s", i, uv_strerror(rc));
            goto cleanup;
        }
        w->thread_started = true;
    }
    log_info("server", "%u worker%s started", srv->nworkers, srv->nworkers == 1 ? "" : "s");
cleanup:
    if (rc < 0)
        server_stop(srv);
    return rc;
}

void server_stop(server_t *srv)
{
    if (!srv || !srv->started || srv->stopped)
        return;
    srv->stopped = true;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        if (w->thread_started)
            uv_async_send(&w->stop_async);
    }
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        if (w->thread_started) {
            uv_thread_join(&w->thread);
            w->thread_started = false;
        }
        /* Also closes the loop of a worker whose thread never ran. */
        worker_drain(w);
    }
    server_close_fds(srv);
    log_info("server", "workers stopped");
}

void server_free(server_t *srv)
{
    if (!srv)
        return;
    server_stop(srv);
    if (srv->workers) {
        server_close_fds(srv);
        for (unsigned i = 0; i < srv->nworkers; i++) {
            worker_t *w = &srv->workers[i];
            tcp_worker_deinit(w);
            query_ctx_free(w->qctx);
            free(w->batch);
            free(w->udp);
            free(w->tcp);
        }
        free(srv->workers);
    }
    free(srv);
}

unsigned server_workers(const server_t *srv)
{
    return srv ? srv->nworkers : 0;
}

static void query_stats_add(query_stats_t *sum, const query_stats_t *s)
{
    for (size_t i = 0; i < 2; i++)
        sum->queries[i] += s->queries[i];
    for (size_t i = 0; i < QUERY_RCODE_MAX; i++)
        sum->rcode[i] += s->rcode[i];
    sum->dropped += s->dropped;
    sum->truncated += s->truncated;
    for (size_t i = 0; i < 256; i++)
        sum->qtype[i] += s->qtype[i];
    sum->qtype_other += s->qtype_other;
    for (size_t i = 0; i < QUERY_TSIG_MAX; i++)
        sum->tsig[i] += s->tsig[i];
    for (size_t i = 0; i < QUERY_XFR_MAX; i++)
        sum->xfr[i] += s->xfr[i];
}

int server_overload_get(const server_t *srv, unsigned i, server_overload_t *out)
{
    if (!srv || i >= srv->nworkers)
        return -EINVAL;
    const worker_t *w = &srv->workers[i];
    memset(out, 0, sizeof(*out));
    out->admitted_rate = cubic_rate(&w->cubic);
    out->load = cubic_utilization(&w->cubic);
    out->congestion_events = cubic_events(&w->cubic);
    /* Plain reads of the worker's CoDel state: a moment old at worst. */
    out->codel_dropping = w->codel.dropping;
    out->codel_entries = codel_entries(&w->codel);
    out->small_rcvbuf = w->small_rcvbuf;
    return 0;
}

void server_stats_get(const server_t *srv, server_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!srv)
        return;
    out->workers = srv->nworkers;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        const worker_t *w = &srv->workers[i];
#define WORKER_STATS_SUM(name) out->name += STAT_GET(w, name);
        WORKER_STATS_FIELDS(WORKER_STATS_SUM)
#undef WORKER_STATS_SUM
        for (unsigned b = 0; b <= SERVER_LATENCY_BUCKETS; b++)
            out->udp_latency[b] += __atomic_load_n(&w->latency[b], __ATOMIC_RELAXED);
        out->udp_latency_sum_ns += __atomic_load_n(&w->latency_sum_ns, __ATOMIC_RELAXED);
        /* Plain loads of another thread's counters: may tear, see server.h. */
        if (w->qctx)
            query_stats_add(&out->query, query_ctx_stats(w->qctx));
    }
}
