/*
 * Unit tests for the prober (health/probe.c). First the state machine of one check (rise,
 * fall, unknown, overrides, what pools make of a state), pure; then real probes against
 * servers this file runs in its own threads on loopback: HTTP answering 200 "ok", 500,
 * slowly, by closing, with bodies bigger than the prober reads; HTTPS with certificates from
 * a test CA made here with the openssl CLI; TCP listening, closed, and with a full accept
 * queue (SYNs dropped: a connect timeout). Last, the CPU the health thread spends on 1,000
 * checks at 1 s, printed.
 *
 * Addresses and ports: 127.0.0.2 - 127.0.0.9 and ::1, TCP ports 16400-16499 (inside the
 * range 16400-16599 given to these tests).
 *
 * Configurations are built by hand (health/config.c parses them from YAML); the weak
 * health_config_ref/unref below free what this file allocates. Pools are read back through
 * health_report_get(), i.e. through the view the prober publishes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fennec/common.h"
#include "fennec/health.h"
#include "testutil.h"

#define MS 1000000ull

/* ---- configurations built by hand --------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = v ? xstrdup(v) : NULL;
}

static health_config_t *cfg_new(size_t nchecks, size_t npools)
{
    health_config_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->refs = 1;
    c->checks = calloc(nchecks ? nchecks : 1, sizeof(*c->checks));
    c->pools = calloc(npools ? npools : 1, sizeof(*c->pools));
    assert_non_null(c->checks);
    assert_non_null(c->pools);
    c->check_count = nchecks;
    c->pool_count = npools;
    return c;
}

/* Check I of C: NAME probes IP:PORT; 200 ms interval, 150 ms timeout, rise 2, fall 2. */
static health_check_def_t *check_set(health_config_t *c, size_t i, const char *name,
                                     health_kind_t kind, const char *ip, uint16_t port)
{
    health_check_def_t *d = &c->checks[i];
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->kind = kind;
    snprintf(d->target, sizeof(d->target), "%s", ip);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&d->addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
        d->addr_len = sizeof(*a6);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&d->addr;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
        d->addr_len = sizeof(*a);
    }
    d->port = port;
    if (kind != HEALTH_TCP) {
        set_str(&d->path, "/healthz");
        set_str(&d->host, ip);
    }
    d->expect_status[0] = 200;
    d->expect_status_count = 1;
    d->interval_ns = 200 * MS;
    d->timeout_ns = 150 * MS;
    d->rise = 2;
    d->fall = 2;
    d->tls_verify = true;
    return d;
}

/* Pool P of C: one member per check in CHECKS (its target is the address), A records. */
static void pool_set(health_config_t *c, size_t p, const char *name, health_policy_t policy,
                     health_all_down_t all_down, const int *checks, size_t n)
{
    health_pool_def_t *d = &c->pools[p];
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->type = 1;
    d->policy = policy;
    d->ttl = 300;
    d->degraded_ttl = 10;
    d->all_down = all_down;
    d->members = calloc(n, sizeof(*d->members));
    assert_non_null(d->members);
    d->member_count = n;
    for (size_t i = 0; i < n; i++) {
        d->members[i].check = checks[i];
        d->members[i].weight = 1;
        snprintf(d->members[i].text, sizeof(d->members[i].text), "%s", c->checks[checks[i]].target);
        assert_int_equal(inet_pton(AF_INET, c->checks[checks[i]].target, d->members[i].addr), 1);
    }
}

/* ---- test servers ------------------------------------------------------------------------- */

typedef enum srv_mode {
    SRV_OK,    /* 200 "ok" */
    SRV_500,   /* 500 "fail" */
    SRV_SLOW,  /* 200 "ok" after a second */
    SRV_CLOSE, /* reads the request, closes without a word */
    SRV_BIG,   /* 200, BIG_LEN bytes of 'x' with "needle" at NEEDLE_AT, in two writes */
    SRV_TCP,   /* accepts and closes */
    SRV_KEEP,  /* 200 "ok" to every request of a connection (keep-alive), until the client
                * closes or the server stops */
} srv_mode_t;

typedef struct srv {
    const char *ip;
    uint16_t port;
    srv_mode_t mode;
    SSL_CTX *tls;
    size_t big_len, needle_at;
    bool concurrent; /* a thread per connection */
    int fd;
    pthread_t th;
    atomic_bool stop;
    atomic_int active; /* connection threads running */
    bool up, mu_ready;
    pthread_mutex_t mu;
    char seen[8][2][128]; /* distinct (SNI, Host) pairs */
    size_t nseen;
    atomic_uint requests;
    atomic_uint connections; /* accepted */
} srv_t;

static bool srv_put(SSL *ssl, int fd, const char *b, size_t len)
{
    while (len > 0) {
        int w = ssl ? SSL_write(ssl, b, (int)len) : (int)send(fd, b, len, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        b += w;
        len -= (size_t)w;
    }
    return true;
}

static void header_value(const char *req, const char *name, char *out, size_t len)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *l = strstr(req, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ')
                h++;
            size_t k = strcspn(h, "\r");
            snprintf(out, len, "%.*s", (int)k, h);
            return;
        }
    }
}

static void srv_note(srv_t *s, const char *sni, const char *host)
{
    pthread_mutex_lock(&s->mu);
    bool known = false;
    for (size_t i = 0; i < s->nseen && !known; i++)
        known = strcmp(s->seen[i][0], sni) == 0 && strcmp(s->seen[i][1], host) == 0;
    if (!known && s->nseen < 8) {
        snprintf(s->seen[s->nseen][0], 128, "%s", sni);
        snprintf(s->seen[s->nseen][1], 128, "%s", host);
        s->nseen++;
    }
    pthread_mutex_unlock(&s->mu);
}

static bool srv_saw(srv_t *s, const char *sni, const char *host)
{
    pthread_mutex_lock(&s->mu);
    bool known = false;
    for (size_t i = 0; i < s->nseen && !known; i++)
        known = strcmp(s->seen[i][0], sni) == 0 && strcmp(s->seen[i][1], host) == 0;
    pthread_mutex_unlock(&s->mu);
    return known;
}

/* Reads one request head into REQ (CAP bytes); false at EOF, error or when stopping. */
static bool srv_read_request(srv_t *s, SSL *ssl, int fd, char *req, size_t cap)
{
    size_t len = 0;
    req[0] = '\0';
    while (len < cap - 1 && !strstr(req, "\r\n\r\n") && !atomic_load(&s->stop)) {
        int r = ssl ? SSL_read(ssl, req + len, (int)(cap - 1 - len))
                    : (int)recv(fd, req + len, cap - 1 - len, 0);
        if (r < 0 && !ssl && s->mode == SRV_KEEP && (errno == EAGAIN || errno == EINTR))
            continue; /* a kept connection's short receive timeout: look at stop again */
        if (r <= 0)
            return false;
        len += (size_t)r;
        req[len] = '\0';
    }
    return strstr(req, "\r\n\r\n") != NULL;
}

static void srv_serve(srv_t *s, int fd)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    if (s->mode == SRV_TCP)
        return;
    atomic_fetch_add(&s->connections, 1);
    /* a kept connection waits for its next request; the timeout only lets it see stop */
    struct timeval tv = {.tv_sec = s->mode == SRV_KEEP ? 0 : 1,
                         .tv_usec = s->mode == SRV_KEEP ? 50000 : 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    SSL *ssl = NULL;
    char sni[128] = "", host[128], req[8192];
    if (s->tls) {
        ssl = SSL_new(s->tls);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) <= 0) {
            ERR_clear_error();
            SSL_free(ssl);
            return;
        }
        const char *n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        snprintf(sni, sizeof(sni), "%s", n ? n : "");
    }
    if (!srv_read_request(s, ssl, fd, req, sizeof(req)))
        goto done;
    header_value(req, "host", host, sizeof(host));
    srv_note(s, sni, host);
    atomic_fetch_add(&s->requests, 1);
    switch (s->mode) {
    case SRV_OK:
        srv_put(ssl, fd, ok, sizeof(ok) - 1);
        break;
    case SRV_KEEP: {
        static const char kept[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        while (srv_put(ssl, fd, kept, sizeof(kept) - 1) &&
               srv_read_request(s, ssl, fd, req, sizeof(req)))
            atomic_fetch_add(&s->requests, 1);
        break;
    }
    case SRV_500: {
        static const char r500[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: "
                                   "4\r\nConnection: close\r\n\r\nfail";
        srv_put(ssl, fd, r500, sizeof(r500) - 1);
        break;
    }
    case SRV_SLOW:
        for (int i = 0; i < 100 && !atomic_load(&s->stop); i++)
            usleep(10000);
        srv_put(ssl, fd, ok, sizeof(ok) - 1);
        break;
    case SRV_BIG: {
        char head[128];
        int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                          s->big_len);
        char *body = malloc(s->big_len);
        assert_non_null(body);
        memset(body, 'x', s->big_len);
        memcpy(body + s->needle_at, "needle", 6);
        /* the needle split over two writes 30 ms apart: over two reads of the prober */
        size_t cut = s->needle_at + 3;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (srv_put(ssl, fd, head, (size_t)hl) && srv_put(ssl, fd, body, cut)) {
            usleep(30000);
            srv_put(ssl, fd, body + cut, s->big_len - cut);
        }
        free(body);
        break;
    }
    default:
        break;
    }
done:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
}

typedef struct conn_arg {
    srv_t *s;
    int fd;
} conn_arg_t;

static void *srv_conn_main(void *arg)
{
    conn_arg_t *a = arg;
    srv_serve(a->s, a->fd);
    close(a->fd);
    atomic_fetch_sub(&a->s->active, 1);
    free(a);
    return NULL;
}

static void *srv_main(void *arg)
{
    srv_t *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        conn_arg_t *a = s->concurrent ? malloc(sizeof(*a)) : NULL;
        pthread_t th;
        if (a) {
            a->s = s;
            a->fd = c;
            atomic_fetch_add(&s->active, 1);
            if (pthread_create(&th, NULL, srv_conn_main, a) == 0) {
                pthread_detach(th);
                continue;
            }
            atomic_fetch_sub(&s->active, 1);
            free(a);
        }
        srv_serve(s, c);
        close(c);
    }
    return NULL;
}

static int listen_on(const char *ip, uint16_t port, int backlog)
{
    bool v6 = strchr(ip, ':') != NULL;
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0)
        fail_msg("bind %s port %u: %s", ip, port, strerror(errno));
    assert_int_equal(listen(fd, backlog), 0);
    return fd;
}

/* Servers running, stopped by the teardown of a test that failed half-way. */
static srv_t *g_srvs[16];

static void srv_start(srv_t *s)
{
    if (!s->mu_ready)
        pthread_mutex_init(&s->mu, NULL);
    s->mu_ready = true;
    s->fd = listen_on(s->ip, s->port, 4096);
    atomic_store(&s->stop, false);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    s->up = true;
    for (size_t i = 0; i < 16; i++)
        if (!g_srvs[i]) {
            g_srvs[i] = s;
            break;
        }
}

static void srv_stop(srv_t *s)
{
    if (!s->up)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    while (atomic_load(&s->active) > 0)
        usleep(1000);
    close(s->fd);
    s->up = false;
    for (size_t i = 0; i < 16; i++)
        if (g_srvs[i] == s)
            g_srvs[i] = NULL;
}

/* ---- reading the prober ------------------------------------------------------------------- */

typedef struct snap {
    bool found;
    health_check_state_t st;
    health_probe_counts_t cnt;
} snap_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static snap_t snap_of(const health_report_t *r, const char *name)
{
    snap_t s = {0};
    for (size_t i = 0; r->config && i < r->config->check_count; i++)
        if (strcmp(r->config->checks[i].name, name) == 0) {
            s.found = true;
            s.st = r->states[i];
            s.cnt = r->counts[i];
        }
    return s;
}

static snap_t check_snap(const char *name)
{
    health_report_t r;
    assert_int_equal(health_report_get(&r), 0);
    snap_t s = snap_of(&r, name);
    health_report_free(&r);
    return s;
}

static uint64_t probes(const snap_t *s)
{
    return s->cnt.ok + s->cnt.fail + s->cnt.timeout;
}

/* Waits until check NAME is in state WANT; fails the test after BOUND ms. Returns the wait. */
static double wait_status(const char *name, health_status_t want, double bound)
{
    double t0 = now_ms();
    for (;;) {
        snap_t s = check_snap(name);
        if (!s.found)
            fail_msg("check %s is not in the report", name);
        if (s.st.status == want)
            return now_ms() - t0;
        if (now_ms() - t0 > bound)
            fail_msg("check %s: state %d, not %d, after %.0f ms (last result \"%s\")", name,
                     (int)s.st.status, (int)want, bound, s.st.last_result);
        usleep(5000);
    }
}

/* Waits until check NAME has made at least N probes; fails the test after BOUND ms. */
static void wait_probes(const char *name, uint64_t n, double bound)
{
    double t0 = now_ms();
    for (;;) {
        snap_t s = check_snap(name);
        if (s.found && probes(&s) >= n)
            return;
        if (now_ms() - t0 > bound)
            fail_msg("check %s: %llu probes, not %llu, after %.0f ms", name,
                     (unsigned long long)(s.found ? probes(&s) : 0), (unsigned long long)n, bound);
        usleep(5000);
    }
}

/* Waits until check NAME's last result starts with PREFIX ("200" is whole); fails the test
 * after BOUND ms. */
static void wait_result(const char *name, const char *prefix, double bound)
{
    double t0 = now_ms();
    for (;;) {
        snap_t s = check_snap(name);
        if (s.found && strncmp(s.st.last_result, prefix, strlen(prefix)) == 0 &&
            (prefix[strlen(prefix) - 1] == ' ' || strlen(s.st.last_result) == strlen(prefix)))
            return;
        if (now_ms() - t0 > bound)
            fail_msg("check %s: last result \"%s\", not \"%s...\", after %.0f ms", name,
                     s.st.last_result, prefix, bound);
        usleep(5000);
    }
}

static void prober_up(void)
{
    assert_int_equal(health_start(), 0);
}

/* Stops the prober and empties the view (which holds the last configuration). */
static void prober_down(void)
{
    assert_int_equal(health_configure(NULL), 0);
    health_stop();
}

static void assert_serving(const health_report_t *r, size_t pool, const char *const *want, size_t n,
                           uint32_t ttl)
{
    assert_int_equal(r->pool_serving_count[pool], n);
    for (size_t i = 0; i < n; i++) {
        uint8_t a[4];
        assert_int_equal(inet_pton(AF_INET, want[i], a), 1);
        assert_memory_equal(r->pool_serving[pool][i], a, 4);
    }
    assert_int_equal(r->pool_ttl[pool], ttl);
}

/* After every test, also one that failed half-way: no prober, no servers, an empty view. */
static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < 16; i++)
        if (g_srvs[i])
            srv_stop(g_srvs[i]);
    health_configure(NULL);
    health_stop();
    return 0;
}

/* ---- the state machine -------------------------------------------------------------------- */

static health_check_state_t fresh_state(void)
{
    health_check_state_t s;
    memset(&s, 0, sizeof(s));
    s.status = HEALTH_UNKNOWN;
    s.since = 1.0;
    s.last_latency_ms = -1;
    return s;
}

static void test_state_unknown_until_rise_successes(void **state)
{
    (void)state;
    health_check_def_t d = {.rise = 3, .fall = 2};
    health_check_state_t s = fresh_state();
    assert_false(health_check_result(&s, &d, true, 10.0));
    assert_false(health_check_result(&s, &d, true, 11.0)); /* rise - 1 successes: not up */
    assert_int_equal(s.status, HEALTH_UNKNOWN);
    assert_int_equal(s.successes, 2);
    assert_true(s.since == 1.0);
    assert_int_equal(s.transitions, 0);
    assert_true(health_check_result(&s, &d, true, 12.0));
    assert_int_equal(s.status, HEALTH_UP);
    assert_true(s.since == 12.0);
    assert_int_equal(s.transitions, 1);
    assert_true(s.last_ok);
    assert_false(health_check_result(&s, &d, true, 13.0)); /* no change: since stays */
    assert_true(s.since == 12.0);
    assert_int_equal(s.transitions, 1);
}

static void test_state_fall_failures_go_down(void **state)
{
    (void)state;
    health_check_def_t d = {.rise = 1, .fall = 3};
    health_check_state_t s = fresh_state();
    assert_true(health_check_result(&s, &d, true, 1.0));
    assert_false(health_check_result(&s, &d, false, 2.0));
    assert_false(health_check_result(&s, &d, false, 3.0)); /* fall - 1 failures: still up */
    assert_int_equal(s.status, HEALTH_UP);
    assert_false(s.last_ok);
    health_eff_t e = health_effective(&s);
    assert_true(e.up);
    assert_false(e.degraded);
    assert_true(health_check_result(&s, &d, false, 4.0));
    assert_int_equal(s.status, HEALTH_DOWN);
    assert_true(s.since == 4.0);
    assert_int_equal(s.transitions, 2);
    assert_int_equal(s.failures, 3);
    e = health_effective(&s);
    assert_false(e.up);
    assert_true(e.degraded);
    assert_false(health_check_result(&s, &d, false, 5.0));
    assert_int_equal(s.transitions, 2);
}

static void test_state_unknown_goes_down_after_fall_and_back_after_rise(void **state)
{
    (void)state;
    health_check_def_t d = {.rise = 2, .fall = 2};
    health_check_state_t s = fresh_state();
    assert_false(health_check_result(&s, &d, false, 1.0));
    assert_int_equal(s.status, HEALTH_UNKNOWN);
    assert_true(health_check_result(&s, &d, false, 2.0));
    assert_int_equal(s.status, HEALTH_DOWN);
    assert_false(health_check_result(&s, &d, true, 3.0)); /* rise - 1 successes: still down */
    assert_int_equal(s.status, HEALTH_DOWN);
    assert_true(health_check_result(&s, &d, true, 4.0));
    assert_int_equal(s.status, HEALTH_UP);
    assert_int_equal(s.transitions, 2);
}

static void test_state_runs_are_consecutive(void **state)
{
    (void)state;
    health_check_def_t d = {.rise = 3, .fall = 3};
    health_check_state_t s = fresh_state();
    bool seq[] = {true, true, false, true, true};
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
        assert_false(health_check_result(&s, &d, seq[i], (double)i));
    assert_int_equal(s.status, HEALTH_UNKNOWN); /* a failure broke the run of successes */
    assert_true(health_check_result(&s, &d, true, 9.0));
    assert_int_equal(s.status, HEALTH_UP);
    bool down[] = {false, false, true, false, false};
    for (size_t i = 0; i < sizeof(down) / sizeof(down[0]); i++)
        assert_false(health_check_result(&s, &d, down[i], 10.0 + (double)i));
    assert_int_equal(s.status, HEALTH_UP);
    assert_true(health_check_result(&s, &d, false, 20.0));
    assert_int_equal(s.status, HEALTH_DOWN);
}

static void test_state_rise_and_fall_one_follow_every_probe(void **state)
{
    (void)state;
    health_check_def_t d = {.rise = 1, .fall = 1};
    health_check_state_t s = fresh_state();
    assert_true(health_check_result(&s, &d, true, 1.0));
    assert_int_equal(s.status, HEALTH_UP);
    assert_true(health_check_result(&s, &d, false, 2.0));
    assert_int_equal(s.status, HEALTH_DOWN);
    assert_true(health_check_result(&s, &d, true, 3.0));
    assert_int_equal(s.status, HEALTH_UP);
    assert_int_equal(s.transitions, 3);
}

static void test_effective_degraded_rules(void **state)
{
    (void)state;
    health_check_def_t d = {.rise = 2, .fall = 3};
    health_check_state_t s = fresh_state();
    health_eff_t e = health_effective(&s); /* no result yet: served, not degraded */
    assert_true(e.up);
    assert_false(e.degraded);
    health_check_result(&s, &d, false, 1.0); /* unknown after a failed probe */
    e = health_effective(&s);
    assert_true(e.up);
    assert_true(e.degraded);
    health_check_result(&s, &d, true, 2.0); /* unknown, the last probe passed */
    assert_int_equal(s.status, HEALTH_UNKNOWN);
    e = health_effective(&s);
    assert_true(e.up);
    assert_false(e.degraded);
    health_check_result(&s, &d, true, 3.0);
    health_check_result(&s, &d, false, 4.0); /* up with one failure of three */
    assert_int_equal(s.status, HEALTH_UP);
    e = health_effective(&s);
    assert_true(e.up);
    assert_false(e.degraded);
    health_check_result(&s, &d, false, 5.0);
    health_check_result(&s, &d, false, 6.0);
    assert_int_equal(s.status, HEALTH_DOWN);
    e = health_effective(&s);
    assert_false(e.up);
    assert_true(e.degraded);
}

static void test_override_wins_and_the_machine_runs_beneath(void **state)
{
    (void)state;
    health_check_def_t d = {.rise = 1, .fall = 2};
    health_check_state_t s = fresh_state();
    health_check_result(&s, &d, true, 1.0);
    s.override = HEALTH_OVERRIDE_DOWN; /* up, forced down */
    health_eff_t e = health_effective(&s);
    assert_false(e.up);
    assert_true(e.degraded);
    assert_false(health_check_result(&s, &d, false, 2.0));
    assert_true(health_check_result(&s, &d, false, 3.0)); /* still counted under an override */
    assert_int_equal(s.status, HEALTH_DOWN);
    s.override = HEALTH_OVERRIDE_UP; /* down, forced up */
    e = health_effective(&s);
    assert_true(e.up);
    assert_false(e.degraded);
    s.override = HEALTH_OVERRIDE_NONE; /* cleared: the machine's state again */
    e = health_effective(&s);
    assert_false(e.up);
    assert_true(e.degraded);
    s = fresh_state();
    health_check_result(&s, &d, false, 1.0);
    s.override = HEALTH_OVERRIDE_UP; /* unknown after a failure, forced up: not degraded */
    e = health_effective(&s);
    assert_true(e.up);
    assert_false(e.degraded);
}

/* ---- HTTP --------------------------------------------------------------------------------- */

static void test_http_status_body_close_and_refused(void **state)
{
    (void)state;
    static srv_t ok;
    ok = (srv_t){.ip = "127.0.0.2", .port = 16400, .mode = SRV_OK};
    static srv_t s500;
    s500 = (srv_t){.ip = "127.0.0.2", .port = 16401, .mode = SRV_500};
    static srv_t closes;
    closes = (srv_t){.ip = "127.0.0.2", .port = 16402, .mode = SRV_CLOSE};
    srv_start(&ok);
    srv_start(&s500);
    srv_start(&closes);
    health_config_t *c = cfg_new(6, 0);
    health_check_def_t *d = check_set(c, 0, "ok", HEALTH_HTTP, "127.0.0.2", 16400);
    set_str(&d->host, "www.example.test");
    set_str(&d->expect_body, "ok");
    check_set(c, 1, "s500", HEALTH_HTTP, "127.0.0.2", 16401);
    d = check_set(c, 2, "want500", HEALTH_HTTP, "127.0.0.2", 16401);
    d->expect_status[0] = 503;
    d->expect_status[1] = 500;
    d->expect_status_count = 2;
    check_set(c, 3, "closes", HEALTH_HTTP, "127.0.0.2", 16402);
    d = check_set(c, 4, "mismatch", HEALTH_HTTP, "127.0.0.2", 16400);
    set_str(&d->expect_body, "healthy");
    check_set(c, 5, "refused", HEALTH_HTTP, "127.0.0.2", 16406);
    for (size_t i = 0; i < 6; i++)
        c->checks[i].rise = c->checks[i].fall = 1;
    prober_up();
    assert_int_equal(health_start(), -EALREADY);
    assert_int_equal(health_configure(c), 0);
    wait_status("ok", HEALTH_UP, 2000);
    wait_status("want500", HEALTH_UP, 2000);
    wait_status("s500", HEALTH_DOWN, 2000);
    wait_status("closes", HEALTH_DOWN, 2000);
    wait_status("mismatch", HEALTH_DOWN, 2000);
    wait_status("refused", HEALTH_DOWN, 2000);
    wait_probes("ok", 2, 2000);

    snap_t s = check_snap("ok");
    assert_string_equal(s.st.last_result, "200");
    assert_true(s.st.last_ok);
    assert_true(s.st.last_latency_ms >= 0 && s.st.last_latency_ms < 150);
    assert_true(s.cnt.ok >= 2);
    assert_int_equal(s.cnt.fail + s.cnt.timeout, 0);
    assert_int_equal(s.cnt.to_up, 1);
    assert_int_equal(s.cnt.to_down, 0);
    assert_int_equal(s.st.transitions, 1);
    assert_true(srv_saw(&ok, "", "www.example.test")); /* Host is `host`, no port */
    s = check_snap("want500");
    assert_string_equal(s.st.last_result, "500");
    s = check_snap("s500");
    assert_string_equal(s.st.last_result, "500");
    assert_int_equal(s.cnt.ok, 0);
    assert_true(s.cnt.fail >= 1);
    assert_int_equal(s.cnt.to_down, 1);
    assert_int_equal(s.cnt.to_up, 0);
    s = check_snap("closes");
    assert_string_equal(s.st.last_result, "empty reply");
    s = check_snap("mismatch");
    assert_string_equal(s.st.last_result, "200, body mismatch");
    s = check_snap("refused");
    assert_string_equal(s.st.last_result, "connect refused");
    assert_true(srv_saw(&ok, "", "127.0.0.2")); /* `host` defaults to the target */

    prober_down();
    health_config_unref(c);
    srv_stop(&ok);
    srv_stop(&s500);
    srv_stop(&closes);
}

static void test_http_slower_than_timeout_fails_as_timeout(void **state)
{
    (void)state;
    static srv_t slow;
    slow = (srv_t){.ip = "127.0.0.2", .port = 16403, .mode = SRV_SLOW};
    srv_start(&slow);
    health_config_t *c = cfg_new(1, 0);
    health_check_def_t *d = check_set(c, 0, "slow", HEALTH_HTTP, "127.0.0.2", 16403);
    d->interval_ns = 250 * MS;
    d->timeout_ns = 150 * MS;
    d->fall = 1;
    prober_up();
    assert_int_equal(health_configure(c), 0);
    wait_status("slow", HEALTH_DOWN, 2000);
    snap_t s = check_snap("slow");
    assert_string_equal(s.st.last_result, "timeout");
    assert_true(s.cnt.timeout >= 1);
    assert_int_equal(s.cnt.fail + s.cnt.ok, 0);
    assert_true(s.st.last_latency_ms >= 140 && s.st.last_latency_ms < 600);
    /* the next probe is in flight, or soon: dropping the check abandons it */
    wait_probes("slow", 2, 2000);
    usleep(50000);
    prober_down();
    health_config_unref(c);
    srv_stop(&slow);
}

static void test_http_body_is_read_up_to_the_cap(void **state)
{
    (void)state;
    /* "needle" ends on the last byte the prober reads, or one byte beyond it */
    static srv_t near;
    near = (srv_t){.ip = "127.0.0.2",
                   .port = 16404,
                   .mode = SRV_BIG,
                   .big_len = 256 * 1024,
                   .needle_at = HEALTH_BODY_MAX - 6};
    static srv_t far;
    far = (srv_t){.ip = "127.0.0.2",
                  .port = 16405,
                  .mode = SRV_BIG,
                  .big_len = 256 * 1024,
                  .needle_at = HEALTH_BODY_MAX - 5};
    srv_start(&near);
    srv_start(&far);
    health_config_t *c = cfg_new(2, 0);
    health_check_def_t *d = check_set(c, 0, "near", HEALTH_HTTP, "127.0.0.2", 16404);
    set_str(&d->expect_body, "needle");
    d->interval_ns = 400 * MS;
    d->timeout_ns = 300 * MS;
    d->rise = d->fall = 1;
    d = check_set(c, 1, "far", HEALTH_HTTP, "127.0.0.2", 16405);
    set_str(&d->expect_body, "needle");
    d->interval_ns = 400 * MS;
    d->timeout_ns = 300 * MS;
    d->rise = d->fall = 1;
    prober_up();
    assert_int_equal(health_configure(c), 0);
    wait_status("near", HEALTH_UP, 3000);
    wait_status("far", HEALTH_DOWN, 3000);
    snap_t s = check_snap("near");
    assert_string_equal(s.st.last_result, "200");
    s = check_snap("far");
    assert_string_equal(s.st.last_result, "200, body mismatch"); /* stopped, not timed out */
    assert_int_equal(s.cnt.timeout, 0);
    prober_down();
    health_config_unref(c);
    srv_stop(&near);
    srv_stop(&far);
}

/* ---- HTTPS -------------------------------------------------------------------------------- */

static char g_dir[256];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d; output in %s/log): %s", rc, g_dir, cmd);
}

/* A test CA, a second CA nobody trusts, and a certificate for www.example.test from the
 * first; in g_dir. */
static void make_certs(void)
{
    static const char key[] = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    static const char ca_ext[] =
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign";
    sh("command -v openssl >/dev/null");
    for (int i = 1; i <= 2; i++)
        sh("cd %s && openssl req -x509 %s -keyout ca%d.key -out ca%d.pem -days 2 "
           "-subj '/CN=fennec test CA %d' %s >>log 2>&1",
           g_dir, key, i, i, i, ca_ext);
    sh("cd %s && printf 'subjectAltName=DNS:www.example.test\\nbasicConstraints=CA:FALSE\\n"
       "keyUsage=critical,digitalSignature\\nextendedKeyUsage=serverAuth\\n' >srv.ext && "
       "openssl req %s -keyout srv.key -out srv.csr -subj '/CN=www.example.test' >>log 2>&1 && "
       "openssl x509 -req -in srv.csr -CA ca1.pem -CAkey ca1.key -CAcreateserial -out srv.pem "
       "-days 2 -extfile srv.ext >>log 2>&1",
       g_dir, key);
}

static void test_https_verifies_name_and_ca_unless_told_not_to(void **state)
{
    (void)state;
    char path[512], ca1[300], ca2[300];
    assert_int_equal(testutil_tmpdir_make(g_dir, sizeof(g_dir), "health"), 0);
    make_certs();
    snprintf(ca1, sizeof(ca1), "%s/ca1.pem", g_dir);
    snprintf(ca2, sizeof(ca2), "%s/ca2.pem", g_dir);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    snprintf(path, sizeof(path), "%s/srv.pem", g_dir);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, path), 1);
    snprintf(path, sizeof(path), "%s/srv.key", g_dir);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
    static srv_t tls;
    tls = (srv_t){.ip = "127.0.0.3", .port = 16410, .mode = SRV_OK, .tls = ctx, .concurrent = true};
    srv_start(&tls);

    static const struct {
        const char *name, *host;
        int ca; /* 0: the system's store */
        bool verify;
        health_status_t want;
    } cases[] = {
        {"good", "www.example.test", 1, true, HEALTH_UP},
        {"wrong-name", "other.example.test", 1, true, HEALTH_DOWN},
        {"wrong-name-noverify", "other.example.test", 1, false, HEALTH_UP},
        {"unknown-ca", "www.example.test", 2, true, HEALTH_DOWN},
        {"unknown-ca-noverify", "www.example.test", 2, false, HEALTH_UP},
        {"system-store", "www.example.test", 0, true, HEALTH_DOWN},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    health_config_t *c = cfg_new(n, 0);
    for (size_t i = 0; i < n; i++) {
        health_check_def_t *d = check_set(c, i, cases[i].name, HEALTH_HTTPS, "127.0.0.3", 16410);
        set_str(&d->host, cases[i].host);
        set_str(&d->ca_file, cases[i].ca == 1 ? ca1 : cases[i].ca == 2 ? ca2 : NULL);
        d->tls_verify = cases[i].verify;
        /* Handshakes are slow under the sanitizers and on a loaded machine (tests run in
         * parallel): a timeout here would read as a TLS verdict it is not. */
        d->interval_ns = 2000 * MS;
        d->timeout_ns = 1800 * MS;
        d->rise = d->fall = 1;
    }
    prober_up();
    assert_int_equal(health_configure(c), 0);
    for (size_t i = 0; i < n; i++) {
        wait_status(cases[i].name, cases[i].want, 10000);
        wait_result(cases[i].name, cases[i].want == HEALTH_UP ? "200" : "TLS: ", 10000);
        if (cases[i].want == HEALTH_DOWN)
            assert_int_equal(check_snap(cases[i].name).cnt.ok, 0);
    }
    /* the server saw SNI and Host equal to `host`, and only such pairs */
    assert_true(srv_saw(&tls, "www.example.test", "www.example.test"));
    assert_true(srv_saw(&tls, "other.example.test", "other.example.test"));
    pthread_mutex_lock(&tls.mu);
    for (size_t i = 0; i < tls.nseen; i++)
        assert_string_equal(tls.seen[i][0], tls.seen[i][1]);
    pthread_mutex_unlock(&tls.mu);

    prober_down();
    health_config_unref(c);
    srv_stop(&tls);
    SSL_CTX_free(ctx);
    testutil_tmpdir_remove(g_dir);
}

static void test_ipv6_members(void **state)
{
    (void)state;
    static srv_t s;
    s = (srv_t){.ip = "::1", .port = 16450, .mode = SRV_OK};
    srv_start(&s);
    health_config_t *c = cfg_new(3, 0);
    health_check_def_t *d = check_set(c, 0, "v6", HEALTH_HTTP, "::1", 16450);
    set_str(&d->host, NULL); /* the target, bracketed */
    d->rise = 1;
    d = check_set(c, 1, "v6name", HEALTH_HTTP, "::1", 16450);
    set_str(&d->host, "www.example.test");
    d->rise = 1;
    check_set(c, 2, "v6tcp", HEALTH_TCP, "::1", 16450)->rise = 1;
    prober_up();
    assert_int_equal(health_configure(c), 0);
    wait_status("v6", HEALTH_UP, 2000);
    wait_status("v6name", HEALTH_UP, 2000);
    wait_status("v6tcp", HEALTH_UP, 2000);
    assert_true(srv_saw(&s, "", "[::1]"));
    assert_true(srv_saw(&s, "", "www.example.test"));
    prober_down();
    health_config_unref(c);
    srv_stop(&s);
}

/* ---- TCP ---------------------------------------------------------------------------------- */

static void test_tcp_connect_refused_and_timeout(void **state)
{
    (void)state;
    static srv_t listening;
    listening = (srv_t){.ip = "127.0.0.4", .port = 16420, .mode = SRV_TCP};
    srv_start(&listening);
    /* a listener that never accepts, its queue full (backlog 0, one connection in it): the
     * kernel drops further SYNs and a connect times out */
    int full = listen_on("127.0.0.4", 16422, 0);
    int filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(16422)};
    inet_pton(AF_INET, "127.0.0.4", &a.sin_addr);
    assert_int_equal(connect(filler, (struct sockaddr *)&a, sizeof(a)), 0);

    health_config_t *c = cfg_new(3, 0);
    check_set(c, 0, "open", HEALTH_TCP, "127.0.0.4", 16420);
    check_set(c, 1, "closed", HEALTH_TCP, "127.0.0.4", 16421);
    check_set(c, 2, "full", HEALTH_TCP, "127.0.0.4", 16422);
    prober_up();
    assert_int_equal(health_configure(c), 0);
    wait_status("open", HEALTH_UP, 2000);
    wait_status("closed", HEALTH_DOWN, 2000);
    wait_status("full", HEALTH_DOWN, 2000);
    snap_t s = check_snap("open");
    assert_string_equal(s.st.last_result, "connected");
    assert_int_equal(s.cnt.fail + s.cnt.timeout, 0);
    s = check_snap("closed");
    assert_string_equal(s.st.last_result, "connect refused");
    assert_true(s.cnt.fail >= 2);
    assert_int_equal(s.cnt.timeout, 0);
    s = check_snap("full");
    assert_string_equal(s.st.last_result, "timeout");
    assert_true(s.cnt.timeout >= 2);
    assert_int_equal(s.cnt.fail, 0);
    assert_true(s.st.last_latency_ms >= 140 && s.st.last_latency_ms < 600);
    assert_true(atomic_load(&listening.requests) == 0); /* TCP checks send nothing */
    prober_down();
    health_config_unref(c);
    close(filler);
    close(full);
    srv_stop(&listening);
}

/* ---- failover ----------------------------------------------------------------------------- */

static void test_stopped_server_goes_down_after_fall_and_returns_after_rise(void **state)
{
    (void)state;
    static srv_t a;
    a = (srv_t){.ip = "127.0.0.5", .port = 16430, .mode = SRV_OK};
    static srv_t b;
    b = (srv_t){.ip = "127.0.0.6", .port = 16431, .mode = SRV_OK};
    srv_start(&a);
    srv_start(&b);
    health_config_t *c = cfg_new(2, 1);
    check_set(c, 0, "web1", HEALTH_HTTP, "127.0.0.5", 16430);
    check_set(c, 1, "web2", HEALTH_HTTP, "127.0.0.6", 16431);
    int members[] = {0, 1};
    pool_set(c, 0, "www.example.test", HEALTH_FAILOVER, HEALTH_SERVE_ALL, members, 2);
    const char *first[] = {"127.0.0.5"}, *second[] = {"127.0.0.6"};
    /* a probe every 200 ms ± 10%; fall 2, rise 2: within 2 × 220 ms plus a margin */
    const double bound = 2 * 220 + 250;
    prober_up();
    assert_int_equal(health_configure(c), 0);
    wait_status("web1", HEALTH_UP, 2000);
    wait_status("web2", HEALTH_UP, 2000);
    health_report_t r;
    assert_int_equal(health_report_get(&r), 0);
    assert_serving(&r, 0, first, 1, 300);
    health_report_free(&r);

    srv_stop(&a);
    double t = wait_status("web1", HEALTH_DOWN, 3000);
    print_message("web1 down %.0f ms after its server stopped (bound %.0f)\n", t, bound);
    assert_true(t <= bound);
    assert_int_equal(health_report_get(&r), 0);
    assert_serving(&r, 0, second, 1, 10); /* published with the transition */
    snap_t s = snap_of(&r, "web1");
    assert_int_equal(s.st.transitions, 2);
    assert_int_equal(s.cnt.to_up, 1);
    assert_int_equal(s.cnt.to_down, 1);
    assert_string_equal(s.st.last_result, "connect refused");
    health_report_free(&r);

    srv_start(&a);
    t = wait_status("web1", HEALTH_UP, 3000);
    print_message("web1 up %.0f ms after its server returned (bound %.0f)\n", t, bound);
    assert_true(t <= bound);
    assert_int_equal(health_report_get(&r), 0);
    assert_serving(&r, 0, first, 1, 300);
    assert_int_equal(snap_of(&r, "web1").cnt.to_up, 2);
    health_report_free(&r);

    prober_down();
    health_config_unref(c);
    srv_stop(&a);
    srv_stop(&b);
}

/* reuse_connection: the probes of a check ride one kept connection; without it each probe is
 * a connection of its own; a kept connection whose server stops is no reason to stay up. */
static void test_reuse_connection_keeps_one_connection_and_still_sees_a_stop(void **state)
{
    (void)state;
    static srv_t k, f;
    k = (srv_t){.ip = "127.0.0.5", .port = 16432, .mode = SRV_KEEP, .concurrent = true};
    f = (srv_t){.ip = "127.0.0.6", .port = 16433, .mode = SRV_KEEP, .concurrent = true};
    srv_start(&k);
    srv_start(&f);
    health_config_t *c = cfg_new(2, 0);
    check_set(c, 0, "kept", HEALTH_HTTP, "127.0.0.5", 16432)->reuse_connection = true;
    check_set(c, 1, "fresh", HEALTH_HTTP, "127.0.0.6", 16433);
    prober_up();
    assert_int_equal(health_configure(c), 0);
    wait_status("kept", HEALTH_UP, 2000);
    wait_status("fresh", HEALTH_UP, 2000);
    for (int i = 0; i < 200 && (atomic_load(&k.requests) < 6 || atomic_load(&f.requests) < 6); i++)
        usleep(10000);
    unsigned kr = atomic_load(&k.requests), kc = atomic_load(&k.connections);
    unsigned fr = atomic_load(&f.requests), fc = atomic_load(&f.connections);
    print_message("kept: %u requests over %u connections; fresh: %u over %u\n", kr, kc, fr, fc);
    assert_true(kr >= 6 && fr >= 6);
    assert_int_equal(kc, 1);
    assert_true(fc + 1 >= fr); /* one each (the last may still be on its way) */

    /* a probe every 200 ms ± 10%, fall 2: the stop is seen as on a new connection */
    srv_stop(&k);
    double t = wait_status("kept", HEALTH_DOWN, 3000);
    print_message("kept: down %.0f ms after its server stopped\n", t);
    assert_true(t <= 2 * 220 + 250);
    health_report_t r;
    assert_int_equal(health_report_get(&r), 0);
    assert_string_equal(snap_of(&r, "kept").st.last_result, "connect refused");
    health_report_free(&r);
    srv_start(&k);
    wait_status("kept", HEALTH_UP, 3000);

    prober_down();
    health_config_unref(c);
    srv_stop(&k);
    srv_stop(&f);
}

static void test_unknown_after_a_failure_is_served_with_degraded_ttl(void **state)
{
    (void)state;
    health_config_t *c = cfg_new(1, 1);
    health_check_def_t *d = check_set(c, 0, "new", HEALTH_TCP, "127.0.0.4", 16421);
    d->fall = 3;
    d->interval_ns = 300 * MS;
    int members[] = {0};
    pool_set(c, 0, "www.example.test", HEALTH_FAILOVER, HEALTH_EMPTY, members, 1);
    const char *addr[] = {"127.0.0.4"};
    prober_up();
    assert_int_equal(health_configure(c), 0);
    health_report_t r;
    assert_int_equal(health_report_get(&r), 0); /* before any result: served, full TTL */
    if (r.counts[0].fail == 0)
        assert_serving(&r, 0, addr, 1, 300);
    health_report_free(&r);
    double t0 = now_ms();
    for (;;) {
        assert_int_equal(health_report_get(&r), 0);
        if (r.states[0].status == HEALTH_UNKNOWN && r.states[0].failures >= 1)
            break;
        health_report_free(&r);
        if (now_ms() - t0 > 2000)
            fail_msg("no failed probe seen");
        usleep(2000);
    }
    assert_serving(&r, 0, addr, 1, 10); /* still served, with degraded_ttl */
    health_report_free(&r);
    wait_status("new", HEALTH_DOWN, 3000);
    assert_int_equal(health_report_get(&r), 0);
    assert_serving(&r, 0, addr, 0, 10); /* all_down: empty */
    health_report_free(&r);
    prober_down();
    health_config_unref(c);
}

static void test_override_republishes_at_once(void **state)
{
    (void)state;
    static srv_t s;
    s = (srv_t){.ip = "127.0.0.7", .port = 16440, .mode = SRV_OK};
    srv_start(&s);
    health_config_t *c = cfg_new(1, 1);
    health_check_def_t *d = check_set(c, 0, "web", HEALTH_HTTP, "127.0.0.7", 16440);
    d->rise = d->fall = 1;
    int members[] = {0};
    pool_set(c, 0, "www.example.test", HEALTH_FAILOVER, HEALTH_EMPTY, members, 1);
    const char *addr[] = {"127.0.0.7"};
    prober_up();
    assert_int_equal(health_configure(c), 0);
    wait_status("web", HEALTH_UP, 2000);
    assert_int_equal(health_override_set("nope", HEALTH_OVERRIDE_DOWN), FENNEC_ENOTFOUND);
    assert_int_equal(health_override_set("web", (health_override_t)7), -EINVAL);

    health_report_t r;
    assert_int_equal(health_override_set("web", HEALTH_OVERRIDE_DOWN), 0);
    assert_int_equal(health_report_get(&r), 0);
    assert_int_equal(r.states[0].override, HEALTH_OVERRIDE_DOWN);
    assert_int_equal(r.states[0].status, HEALTH_UP);
    assert_serving(&r, 0, addr, 0, 10);
    uint64_t before = r.counts[0].ok;
    health_report_free(&r);
    wait_probes("web", before + 2, 2000); /* probes go on under the override */
    assert_int_equal(health_report_get(&r), 0);
    assert_serving(&r, 0, addr, 0, 10);
    health_report_free(&r);

    assert_int_equal(health_override_set("web", HEALTH_OVERRIDE_NONE), 0);
    assert_int_equal(health_report_get(&r), 0);
    assert_int_equal(r.states[0].override, HEALTH_OVERRIDE_NONE);
    assert_serving(&r, 0, addr, 1, 300);
    health_report_free(&r);

    srv_stop(&s);
    wait_status("web", HEALTH_DOWN, 2000);
    assert_int_equal(health_override_set("web", HEALTH_OVERRIDE_UP), 0);
    assert_int_equal(health_report_get(&r), 0);
    assert_serving(&r, 0, addr, 1, 300);
    health_report_free(&r);
    prober_down();
    health_config_unref(c);
}

/* ---- configuration changes ---------------------------------------------------------------- */

static health_config_t *three_checks(const char *b_path)
{
    health_config_t *c = cfg_new(3, 0);
    health_check_def_t *d = check_set(c, 0, "a", HEALTH_HTTP, "127.0.0.7", 16441);
    d->rise = 1;
    d = check_set(c, 1, "b", HEALTH_HTTP, "127.0.0.7", 16441);
    set_str(&d->path, b_path);
    d->rise = 1;
    d = check_set(c, 2, "c", HEALTH_TCP, "127.0.0.7", 16441);
    d->rise = 1;
    return c;
}

static void test_unchanged_checks_keep_state_across_configure(void **state)
{
    (void)state;
    static srv_t s;
    s = (srv_t){.ip = "127.0.0.7", .port = 16441, .mode = SRV_OK};
    srv_start(&s);
    health_config_t *c1 = three_checks("/healthz");
    prober_up();
    assert_int_equal(health_configure(c1), 0);
    wait_status("a", HEALTH_UP, 2000);
    wait_status("b", HEALTH_UP, 2000);
    wait_status("c", HEALTH_UP, 2000);
    wait_probes("a", 3, 2000);
    assert_int_equal(health_override_set("a", HEALTH_OVERRIDE_DOWN), 0);
    snap_t a1 = check_snap("a");

    /* a: the same definition in a new configuration; b: another path; c: removed; d: new,
     * with an interval of 5 s */
    health_config_t *c2 = three_checks("/other");
    check_set(c2, 2, "d", HEALTH_TCP, "127.0.0.7", 16441)->interval_ns = 5000 * MS;
    double t0 = now_ms();
    assert_int_equal(health_configure(c2), 0);
    health_report_t r;
    assert_int_equal(health_report_get(&r), 0);
    assert_ptr_equal(r.config, c2);
    assert_int_equal(r.config->check_count, 3);
    snap_t a2 = snap_of(&r, "a"), b2 = snap_of(&r, "b"), d2 = snap_of(&r, "d");
    assert_false(snap_of(&r, "c").found);
    health_report_free(&r);
    assert_int_equal(a2.st.status, HEALTH_UP);
    assert_int_equal(a2.st.override, HEALTH_OVERRIDE_DOWN);
    assert_int_equal(a2.st.transitions, a1.st.transitions);
    assert_true(a2.st.since == a1.st.since);
    assert_true(a2.cnt.ok >= a1.cnt.ok);
    assert_int_equal(a2.cnt.to_up, 1);
    /* b starts again: a new check, probed at once, whose first probe may already be in
     * (loopback answers within a millisecond); the old b had three probes and more */
    assert_true(probes(&b2) <= 1);
    if (probes(&b2) == 0) {
        assert_int_equal(b2.st.status, HEALTH_UNKNOWN);
        assert_int_equal(b2.st.transitions, 0);
    }
    assert_true(b2.cnt.to_up <= 1);
    assert_int_equal(d2.st.status, HEALTH_UNKNOWN);
    /* a new check is probed at once, not after its interval */
    wait_probes("d", 1, 500);
    print_message("a new check's first probe came %.0f ms after health_configure()\n",
                  now_ms() - t0);
    wait_status("b", HEALTH_UP, 2000);
    /* the same configuration again: everything kept */
    snap_t b3 = check_snap("b");
    assert_int_equal(health_configure(c2), 0);
    snap_t b4 = check_snap("b");
    assert_int_equal(b4.st.status, HEALTH_UP);
    assert_true(b4.cnt.ok >= b3.cnt.ok);
    assert_true(b4.st.since == b3.st.since);
    prober_down();
    health_config_unref(c1);
    health_config_unref(c2);
    srv_stop(&s);
}

/* One definition with every field set, and the ways to change one field. */
static health_config_t *full_def(int change)
{
    health_config_t *c = cfg_new(1, 0);
    health_check_def_t *d = check_set(c, 0, "x", HEALTH_HTTPS, "127.0.0.9", 16499);
    set_str(&d->host, "www.example.test");
    set_str(&d->expect_body, "ok");
    set_str(&d->ca_file, "/nonexistent/ca.pem");
    d->expect_status[1] = 204;
    d->expect_status_count = 2;
    struct sockaddr_in *a = (struct sockaddr_in *)&d->addr;
    switch (change) {
    case 1:
        snprintf(d->name, sizeof(d->name), "y");
        break;
    case 2:
        d->kind = HEALTH_HTTP;
        break;
    case 3:
        snprintf(d->target, sizeof(d->target), "127.0.0.10");
        break;
    case 4:
        a->sin_addr.s_addr = htonl(0x7f00000a);
        break;
    case 5:
        a->sin_port = htons(16498);
        break;
    case 6:
        d->port = 16498;
        break;
    case 7:
        set_str(&d->path, "/other");
        break;
    case 8:
        set_str(&d->host, "www2.example.test");
        break;
    case 9:
        d->expect_status[1] = 200;
        break;
    case 10:
        d->expect_status_count = 1;
        break;
    case 11:
        set_str(&d->expect_body, "OK");
        break;
    case 12:
        set_str(&d->expect_body, NULL);
        break;
    case 13:
        d->interval_ns += MS;
        break;
    case 14:
        d->timeout_ns += MS;
        break;
    case 15:
        d->rise = 3;
        break;
    case 16:
        d->fall = 3;
        break;
    case 17:
        d->tls_verify = false;
        break;
    case 18:
        set_str(&d->ca_file, NULL);
        break;
    case 19:
        set_str(&d->host, NULL);
        break;
    case 20:
        d->addr_len = sizeof(struct sockaddr_storage);
        break;
    case 21:
        d->reuse_connection = true;
        break;
    default:
        break;
    }
    return c;
}

static void test_any_changed_field_starts_the_check_again(void **state)
{
    (void)state;
    /* without the health thread: configure and overrides work on the table alone; the
     * override is the state that shows whether the check was kept */
    for (int change = 0; change <= 21; change++) {
        health_config_t *base = full_def(0), *next = full_def(change);
        assert_int_equal(health_configure(base), 0);
        assert_int_equal(health_override_set("x", HEALTH_OVERRIDE_DOWN), 0);
        assert_int_equal(health_configure(next), 0);
        health_report_t r;
        assert_int_equal(health_report_get(&r), 0);
        assert_non_null(r.config);
        bool kept = r.states[0].override == HEALTH_OVERRIDE_DOWN;
        health_report_free(&r);
        if (kept != (change == 0))
            fail_msg("change %d: the check was %s", change, kept ? "kept" : "started again");
        assert_int_equal(health_configure(NULL), 0);
        health_config_unref(base);
        health_config_unref(next);
    }
    health_stop();
}

static void test_checks_configured_before_start_are_probed_at_start(void **state)
{
    (void)state;
    static srv_t s;
    s = (srv_t){.ip = "127.0.0.7", .port = 16442, .mode = SRV_TCP};
    srv_start(&s);
    health_config_t *c = cfg_new(1, 0);
    check_set(c, 0, "early", HEALTH_TCP, "127.0.0.7", 16442)->interval_ns = 5000 * MS;
    assert_int_equal(health_configure(c), 0);
    usleep(100000);
    assert_int_equal(probes((snap_t[]){check_snap("early")}), 0);
    prober_up();
    wait_probes("early", 1, 500);
    health_stop();
    health_stop(); /* idempotent */
    health_report_t r;
    assert_int_equal(health_report_get(&r), 0); /* a stopped prober keeps no checks */
    assert_null(r.config);
    health_report_free(&r);
    assert_int_equal(health_configure(NULL), 0);
    health_config_unref(c);
    srv_stop(&s);
}

static void test_probes_follow_the_interval(void **state)
{
    (void)state;
    static srv_t s;
    s = (srv_t){.ip = "127.0.0.7", .port = 16443, .mode = SRV_TCP};
    srv_start(&s);
    enum { N = 20 };
    health_config_t *c = cfg_new(N, 0);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%02d", i);
        check_set(c, (size_t)i, name, HEALTH_TCP, "127.0.0.7", 16443)->interval_ns = 100 * MS;
    }
    prober_up();
    assert_int_equal(health_configure(c), 0);
    usleep(2000 * 1000);
    health_report_t r;
    assert_int_equal(health_report_get(&r), 0);
    for (int i = 0; i < N; i++) {
        /* one at once, then one per 100 ms ± 10%: 19 to 23 in 2 s, some slack for the box */
        uint64_t k = r.counts[i].ok;
        if (k < 16 || k > 24)
            fail_msg("check %s: %llu probes in 2 s at 100 ms", r.config->checks[i].name,
                     (unsigned long long)k);
    }
    health_report_free(&r);
    prober_down();
    health_config_unref(c);
    srv_stop(&s);
}

/* ---- cost --------------------------------------------------------------------------------- */

/* CPU time of the threads named fennec-health (the prober's, and any thread it started, such
 * as the RCU reclaimer), ms. */
static double health_thread_cpu_ms(void)
{
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    struct dirent *e;
    double ms = 0;
    int threads = 0;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        bool ours = fgets(buf, sizeof(buf), f) && strncmp(buf, "fennec-health", 13) == 0;
        fclose(f);
        if (!ours)
            continue;
        threads++;
        snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
        unsigned long long ns = 0;
        if ((f = fopen(path, "r"))) {
            bool got = fscanf(f, "%llu", &ns) == 1;
            fclose(f);
            if (got) {
                ms += (double)ns / 1e6;
                continue;
            }
        }
        /* no schedstat: utime + stime in clock ticks */
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        assert_non_null(f = fopen(path, "r"));
        assert_non_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        unsigned long long ut = 0, st = 0;
        const char *p = strrchr(buf, ')');
        assert_non_null(p);
        assert_int_equal(
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
        ms += (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
    }
    closedir(dir);
    if (threads == 0)
        fail_msg("no thread named fennec-health");
    return ms;
}

/* Resident memory of the process, KiB. */
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void measure(health_kind_t kind, bool reuse, uint16_t port, const char *what)
{
    enum { N = 1000 };
    static srv_t s;
    s = (srv_t){.ip = "127.0.0.8",
                .port = port,
                .mode = kind == HEALTH_TCP ? SRV_TCP
                        : reuse            ? SRV_KEEP
                                           : SRV_OK,
                .concurrent = reuse};
    srv_start(&s);
    health_config_t *c = cfg_new(N, 0);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c%04d", i);
        health_check_def_t *d = check_set(c, (size_t)i, name, kind, "127.0.0.8", port);
        d->reuse_connection = reuse;
        d->interval_ns = 1000 * MS;
        d->timeout_ns = 800 * MS;
    }
    long rss0 = rss_kib();
    prober_up();
    assert_int_equal(health_configure(c), 0);
    usleep(1500 * 1000); /* the first probes, at once, and the second round */
    health_report_t r0, r1;
    assert_int_equal(health_report_get(&r0), 0);
    double cpu0 = health_thread_cpu_ms(), w0 = now_ms();
    usleep(5000 * 1000);
    double cpu1 = health_thread_cpu_ms(), w1 = now_ms();
    assert_int_equal(health_report_get(&r1), 0);
    uint64_t n = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        n += r1.counts[i].ok - r0.counts[i].ok;
        bad += r1.counts[i].fail + r1.counts[i].timeout;
        if (r1.states[i].status != HEALTH_UP)
            fail_msg("check %s is not up: %s", r1.config->checks[i].name, r1.states[i].last_result);
    }
    double wall = w1 - w0, cpu = cpu1 - cpu0;
    print_message("health thread, %d %s checks at 1 s: %.0f ms CPU in %.0f ms = %.1f%% of a "
                  "core (%llu probes, %.1f us each)\n",
                  N, what, cpu, wall, 100.0 * cpu / wall, (unsigned long long)n,
                  n ? cpu * 1000.0 / (double)n : 0.0);
    print_message("  resident memory grew by %ld KiB with the prober and its %d checks\n",
                  rss_kib() - rss0, N);
    assert_int_equal(bad, 0);
    assert_true(n >= (uint64_t)(N * 4)); /* about 5 s of probes at 1 s */
    assert_true(n <= (uint64_t)(N * 7));
    health_report_free(&r0);
    health_report_free(&r1);
    prober_down();
    health_config_unref(c);
    srv_stop(&s);
}

static void test_cost_of_a_thousand_checks(void **state)
{
    (void)state;
    measure(HEALTH_HTTP, false, 16480, "HTTP");
    measure(HEALTH_HTTP, true, 16482, "HTTP (reuse_connection)");
    measure(HEALTH_TCP, false, 16481, "TCP");
}

/* An argument runs the tests whose names match it (cmocka's pattern: * and ?). */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    signal(SIGPIPE, SIG_IGN); /* the test servers write to probes that have gone */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_state_unknown_until_rise_successes, teardown),
        cmocka_unit_test_teardown(test_state_fall_failures_go_down, teardown),
        cmocka_unit_test_teardown(test_state_unknown_goes_down_after_fall_and_back_after_rise,
                                  teardown),
        cmocka_unit_test_teardown(test_state_runs_are_consecutive, teardown),
        cmocka_unit_test_teardown(test_state_rise_and_fall_one_follow_every_probe, teardown),
        cmocka_unit_test_teardown(test_effective_degraded_rules, teardown),
        cmocka_unit_test_teardown(test_override_wins_and_the_machine_runs_beneath, teardown),
        cmocka_unit_test_teardown(test_http_status_body_close_and_refused, teardown),
        cmocka_unit_test_teardown(test_http_slower_than_timeout_fails_as_timeout, teardown),
        cmocka_unit_test_teardown(test_http_body_is_read_up_to_the_cap, teardown),
        cmocka_unit_test_teardown(test_https_verifies_name_and_ca_unless_told_not_to, teardown),
        cmocka_unit_test_teardown(test_ipv6_members, teardown),
        cmocka_unit_test_teardown(test_tcp_connect_refused_and_timeout, teardown),
        cmocka_unit_test_teardown(test_stopped_server_goes_down_after_fall_and_returns_after_rise,
                                  teardown),
        cmocka_unit_test_teardown(test_reuse_connection_keeps_one_connection_and_still_sees_a_stop,
                                  teardown),
        cmocka_unit_test_teardown(test_unknown_after_a_failure_is_served_with_degraded_ttl,
                                  teardown),
        cmocka_unit_test_teardown(test_override_republishes_at_once, teardown),
        cmocka_unit_test_teardown(test_unchanged_checks_keep_state_across_configure, teardown),
        cmocka_unit_test_teardown(test_any_changed_field_starts_the_check_again, teardown),
        cmocka_unit_test_teardown(test_checks_configured_before_start_are_probed_at_start,
                                  teardown),
        cmocka_unit_test_teardown(test_probes_follow_the_interval, teardown),
        cmocka_unit_test_teardown(test_cost_of_a_thousand_checks, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
