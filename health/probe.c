/*
 * The prober (health.h, part 2): the health thread, the schedule, the state machine of each
 * check, TCP probes and the API. HTTP(S) probes are in probe_http.c.
 *
 * One thread runs its own uv loop. Each check has a timer that fires its probes on the
 * check's interval with ±10% jitter (so checks configured together drift apart instead of
 * probing in step); the first probe goes out at once. TCP probes are uv_tcp_connect with a
 * timer for the timeout. A probe yields pass or fail and a short text; the state machine here
 * owns rise, fall and overrides (as gdnsd's mon.c does), logs each transition once and
 * republishes the pool view (pool.c) as soon as an effective state changes, at the end of the
 * same callback: no publication timer adds delay to a failover.
 *
 * Locking: g.lock guards the configuration, the check table and every check's state. Each uv
 * callback of the health thread holds it for its whole run, so another thread (configure,
 * override, report) always sees a consistent table and the loop never sees half a change.
 * uv handles and curl handles belong to the health thread alone: health_configure() makes new
 * checks without handles and wakes the thread (uv_async_t), which starts them and closes the
 * removed ones.
 *
 * Cost: nothing is allocated per probe but what curl allocates inside a transfer; each check
 * keeps its timers, its TCP handle and its easy handle.
 */
#include "fennec/common.h"
#include "fennec/health.h"
#include "health_int.h"
#include "probe_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#define MOD         PROBE_MOD
#define JITTER_PCT  10 /* each interval is drawn from interval ± 10% */
#define THREAD_NAME "fennec-health"

static struct {
    pthread_mutex_t lock;
    bool running, stopping;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    health_config_t *cfg;
    probe_check_t **checks; /* cfg->check_count, in configuration order */
    size_t n;
    health_eff_t *eff; /* n: scratch for publishing */
    bool dirty;        /* the view needs publishing (again, after a failure) */
    bool publish_failing;
    probe_check_t *retired; /* removed while live: the health thread closes them */
    uint64_t rng;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc;

/* ---- the state machine (pure) ------------------------------------------------------------ */

health_eff_t health_effective(const health_check_state_t *s)
{
    health_eff_t e = {.up = true, .degraded = false};
    if (s->override == HEALTH_OVERRIDE_UP)
        return e;
    if (s->override == HEALTH_OVERRIDE_DOWN || s->status == HEALTH_DOWN) {
        e.up = false;
        e.degraded = true;
        return e;
    }
    /* failures counts the failed probes since the last success: UNKNOWN with failures is
     * "unknown after a failed probe". */
    if (s->status == HEALTH_UNKNOWN && s->failures > 0)
        e.degraded = true;
    return e;
}

bool health_check_result(health_check_state_t *s, const health_check_def_t *def, bool ok,
                         double now)
{
    health_status_t to = s->status;
    s->last_ok = ok;
    if (ok) {
        s->failures = 0;
        if (s->successes < UINT32_MAX)
            s->successes++;
        if (s->successes >= def->rise)
            to = HEALTH_UP;
    } else {
        s->successes = 0;
        if (s->failures < UINT32_MAX)
            s->failures++;
        if (s->failures >= def->fall)
            to = HEALTH_DOWN;
    }
    if (to == s->status)
        return false;
    s->status = to;
    s->since = now;
    s->transitions++;
    return true;
}

static const char *status_name(health_status_t s)
{
    switch (s) {
    case HEALTH_UP:
        return "up";
    case HEALTH_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

static void state_init(health_check_state_t *s)
{
    memset(s, 0, sizeof(*s));
    s->status = HEALTH_UNKNOWN;
    s->override = HEALTH_OVERRIDE_NONE;
    s->since = fennec_wall_now();
    s->last_latency_ms = -1;
}

/* ---- definitions ------------------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool addr_eq(const health_check_def_t *a, const health_check_def_t *b)
{
    if (a->addr_len != b->addr_len || a->addr.ss_family != b->addr.ss_family)
        return false;
    if (a->addr.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->addr;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&b->addr;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->addr;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->addr;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return memcmp(&a->addr, &b->addr, a->addr_len) == 0;
}

/* Every field: a check that changes in any way starts again from UNKNOWN. */
static bool def_eq(const health_check_def_t *a, const health_check_def_t *b)
{
    if (strcmp(a->name, b->name) != 0 || a->kind != b->kind || strcmp(a->target, b->target) != 0 ||
        !addr_eq(a, b) || a->port != b->port || !str_eq(a->path, b->path) ||
        !str_eq(a->host, b->host) || a->expect_status_count != b->expect_status_count ||
        !str_eq(a->expect_body, b->expect_body) || a->interval_ns != b->interval_ns ||
        a->timeout_ns != b->timeout_ns || a->rise != b->rise || a->fall != b->fall ||
        a->tls_verify != b->tls_verify || !str_eq(a->ca_file, b->ca_file) ||
        a->reuse_connection != b->reuse_connection)
        return false;
    for (size_t i = 0; i < a->expect_status_count && i < HEALTH_MAX_STATUS; i++)
        if (a->expect_status[i] != b->expect_status[i])
            return false;
    return true;
}

uint64_t probe_ms(uint64_t ns)
{
    uint64_t ms = ns / 1000000;
    return ms ? ms : 1;
}

static uint64_t rng_next(void)
{
    uint64_t x = g.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g.rng = x;
    return x;
}

static uint64_t jittered(uint64_t ms)
{
    uint64_t span = ms * JITTER_PCT / 100;
    if (span == 0)
        return ms;
    return ms - span + rng_next() % (2 * span + 1);
}

/* ---- checks ------------------------------------------------------------------------------ */

static probe_check_t *check_new(health_config_t *cfg, size_t i)
{
    probe_check_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cfg = cfg; /* the reference is taken when the configuration is committed */
    c->def = &cfg->checks[i];
    state_init(&c->st);
    return c;
}

static void check_free(probe_check_t *c)
{
    probe_http_free(c);
    health_config_unref(c->cfg);
    free(c);
}

/* The view from every check's effective state; on failure the previous view stays and the
 * next callback tries again. */
static int publish(void)
{
    for (size_t i = 0; i < g.n; i++)
        g.eff[i] = health_effective(&g.checks[i]->st);
    int rc = health_view_publish(g.cfg, g.eff);
    if (rc < 0) {
        if (!g.publish_failing)
            log_warn(MOD, "publishing the pool view failed: %s (the previous view stays)",
                     fennec_strerror(rc));
        g.publish_failing = true;
        g.dirty = true;
        return rc;
    }
    g.publish_failing = false;
    g.dirty = false;
    return 0;
}

static void flush(void)
{
    if (g.dirty)
        publish();
}

void probe_lock(void)
{
    pthread_mutex_lock(&g.lock);
}

void probe_unlock(void)
{
    probe_http_settle();
    flush();
    pthread_mutex_unlock(&g.lock);
}

void probe_done(probe_check_t *c, bool ok, bool timed_out, const char *result)
{
    health_check_state_t *s = &c->st;
    health_eff_t before = health_effective(s);
    health_status_t from = s->status;
    snprintf(s->last_result, sizeof(s->last_result), "%s", result);
    s->last_latency_ms = (double)(uv_hrtime() - c->t0) / 1e6;
    if (ok)
        c->counts.ok++;
    else if (timed_out)
        c->counts.timeout++;
    else
        c->counts.fail++;
    log_debug(MOD, "check %s: %s in %.1f ms", c->def->name, result, s->last_latency_ms);
    bool moved = health_check_result(s, c->def, ok, fennec_wall_now());
    if (moved) {
        if (s->status == HEALTH_UP)
            c->counts.to_up++;
        else
            c->counts.to_down++;
        char why[160];
        if (timed_out)
            snprintf(why, sizeof(why), "timeout after %llu ms",
                     (unsigned long long)probe_ms(c->def->timeout_ns));
        else
            snprintf(why, sizeof(why), "%s", result);
        uint32_t k = ok ? s->successes : s->failures;
        log_info(MOD, "check %s: %s -> %s (%s, %u %s)", c->def->name, status_name(from),
                 status_name(s->status), why, k,
                 ok ? (k == 1 ? "success" : "successes") : (k == 1 ? "failure" : "failures"));
    }
    health_eff_t after = health_effective(s);
    if (moved || before.up != after.up || before.degraded != after.degraded)
        g.dirty = true;
}

static void probe_start(probe_check_t *c);

void probe_end(probe_check_t *c)
{
    c->busy = false;
    if (c->pending && !c->retired)
        probe_start(c);
}

/* ---- TCP --------------------------------------------------------------------------------- */

static void on_tcp_closed(uv_handle_t *h);
static void on_closed(uv_handle_t *h);

void probe_abortive_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void tcp_finish(probe_check_t *c, bool ok, bool timed_out, const char *result)
{
    c->decided = true;
    uv_timer_stop(&c->tmo);
    probe_done(c, ok, timed_out, result);
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0)
        probe_abortive_close(fd);
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

static const char *tcp_why(int status)
{
    return status == UV_ECONNREFUSED ? "connect refused" : uv_strerror(status);
}

static void on_tcp_connect(uv_connect_t *req, int status)
{
    probe_check_t *c = req->data;
    probe_lock();
    if (!c->decided) /* else the timeout or a removal closed it (UV_ECANCELED) */
        tcp_finish(c, status == 0, false, status == 0 ? "connected" : tcp_why(status));
    probe_unlock();
}

static void on_tcp_timeout(uv_timer_t *t)
{
    probe_check_t *c = t->data;
    probe_lock();
    if (!c->decided)
        tcp_finish(c, false, true, "timeout");
    probe_unlock();
}

static void on_tcp_closed(uv_handle_t *h)
{
    probe_check_t *c = h->data;
    probe_lock();
    c->tcp_open = false;
    if (c->retired) {
        on_closed(h); /* may free C */
    } else {
        c->open--;
        probe_end(c);
    }
    probe_unlock();
}

static void tcp_start(probe_check_t *c)
{
    int rc = uv_tcp_init(&g.loop, &c->tcp);
    if (rc < 0) {
        probe_done(c, false, false, uv_strerror(rc));
        probe_end(c);
        return;
    }
    c->tcp.data = c;
    c->conn.data = c;
    c->tcp_open = true;
    c->open++;
    c->decided = false;
    rc = uv_tcp_connect(&c->conn, &c->tcp, (const struct sockaddr *)&c->def->addr, on_tcp_connect);
    if (rc < 0) {
        c->decided = true;
        probe_done(c, false, false, tcp_why(rc));
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
        return;
    }
    uv_timer_start(&c->tmo, on_tcp_timeout, probe_ms(c->def->timeout_ns), 0);
}

/* ---- schedule ---------------------------------------------------------------------------- */

static void probe_start(probe_check_t *c)
{
    c->busy = true;
    c->pending = false;
    c->t0 = uv_hrtime();
    if (c->setup_err) {
        probe_done(c, false, false, c->setup_err);
        probe_end(c);
    } else if (c->def->kind == HEALTH_TCP) {
        tcp_start(c);
    } else {
        probe_http_start(c);
    }
}

static void on_due(uv_timer_t *t)
{
    probe_check_t *c = t->data;
    probe_lock();
    if (!c->retired) {
        uv_timer_start(&c->due, on_due, jittered(probe_ms(c->def->interval_ns)), 0);
        if (c->busy)
            c->pending = true;
        else
            probe_start(c);
    }
    probe_unlock();
}

/* Makes C's handles and sends its first probe at once (health thread). */
static void check_live(probe_check_t *c)
{
    uv_timer_init(&g.loop, &c->due);
    uv_timer_init(&g.loop, &c->tmo);
    c->due.data = c;
    c->tmo.data = c;
    c->open = 2;
    c->live = true;
    if (c->def->kind != HEALTH_TCP)
        c->setup_err = probe_http_setup(c);
    else if (c->def->addr_len == 0)
        c->setup_err = "bad address";
    uv_timer_start(&c->due, on_due, 0, 0);
}

static void on_closed(uv_handle_t *h)
{
    probe_check_t *c = h->data;
    if (--c->open == 0)
        check_free(c);
}

/* Abandons C's probe and closes its handles; C is freed by the last close (health thread). */
static void check_close(probe_check_t *c)
{
    c->retired = true;
    c->decided = true;
    probe_http_abandon(c);
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    uv_close((uv_handle_t *)&c->due, on_closed);
    uv_close((uv_handle_t *)&c->tmo, on_closed);
}

/* Drops every check and the configuration (under g.lock; live checks: health thread). */
static void drop_all(void)
{
    for (size_t i = 0; i < g.n; i++) {
        if (g.checks[i]->live)
            check_close(g.checks[i]);
        else
            check_free(g.checks[i]);
    }
    free(g.checks);
    free(g.eff);
    g.checks = NULL;
    g.eff = NULL;
    g.n = 0;
    health_config_unref(g.cfg);
    g.cfg = NULL;
    g.dirty = false; /* the view stays as last published */
    while (g.retired) {
        probe_check_t *c = g.retired;
        g.retired = c->next_retired;
        check_close(c);
    }
}

static void on_wake(uv_async_t *a)
{
    (void)a;
    probe_lock();
    if (g.stopping) {
        drop_all();
        probe_http_deinit();
        uv_close((uv_handle_t *)&g.wake, NULL);
        pthread_mutex_unlock(&g.lock); /* nothing to start or publish: the loop ends */
        return;
    }
    while (g.retired) {
        probe_check_t *c = g.retired;
        g.retired = c->next_retired;
        check_close(c);
    }
    for (size_t i = 0; i < g.n; i++)
        if (!g.checks[i]->live)
            check_live(g.checks[i]);
    probe_unlock();
}

static void thread_main(void *arg)
{
    (void)arg;
    /* OpenSSL may write to a socket the peer has closed: the error is enough. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_setname_np(pthread_self(), THREAD_NAME);
    uv_run(&g.loop, UV_RUN_DEFAULT);
}

/* ---- the API ----------------------------------------------------------------------------- */

static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int health_start(void)
{
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK) {
        log_error(MOD, "curl: %s", curl_easy_strerror(g_curl_init_rc));
        return -EIO;
    }
    int rc = 0;
    pthread_mutex_lock(&g.lock);
    if (g.running) {
        pthread_mutex_unlock(&g.lock);
        return -EALREADY;
    }
    if ((rc = uv_loop_init(&g.loop)) < 0) {
        pthread_mutex_unlock(&g.lock);
        return rc;
    }
    uv_async_init(&g.loop, &g.wake, on_wake);
    if ((rc = probe_http_init(&g.loop)) < 0)
        goto fail;
    g.rng = (uv_hrtime() ^ ((uint64_t)(uintptr_t)&g << 16)) | 1;
    g.stopping = false;
    if ((rc = uv_thread_create(&g.thread, thread_main, NULL)) < 0)
        goto fail;
    g.running = true;
    uv_async_send(&g.wake); /* checks configured before the start */
    pthread_mutex_unlock(&g.lock);
    log_info(MOD, "prober started");
    return 0;
fail:
    probe_http_deinit();
    uv_close((uv_handle_t *)&g.wake, NULL);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_loop_close(&g.loop);
    pthread_mutex_unlock(&g.lock);
    return rc;
}

void health_stop(void)
{
    pthread_mutex_lock(&g.lock);
    if (g.running) {
        g.stopping = true;
        uv_async_send(&g.wake);
        pthread_mutex_unlock(&g.lock);
        uv_thread_join(&g.thread);
        pthread_mutex_lock(&g.lock);
        uv_loop_close(&g.loop);
        g.running = false;
        g.stopping = false;
        log_info(MOD, "prober stopped");
    }
    drop_all(); /* nothing live is left: the checks of a prober never started */
    pthread_mutex_unlock(&g.lock);
}

static int cmp_check_name(const void *a, const void *b)
{
    const probe_check_t *x = *(probe_check_t *const *)a, *y = *(probe_check_t *const *)b;
    return strcmp(x->def->name, y->def->name);
}

/* The old check to keep for D: same name, same definition, not yet taken. SORTED: the old
 * checks by name. */
static probe_check_t *find_kept(probe_check_t **sorted, size_t n, const health_check_def_t *d)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(sorted[mid]->def->name, d->name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < n && strcmp(sorted[lo]->def->name, d->name) == 0; lo++)
        if (!sorted[lo]->matched && def_eq(sorted[lo]->def, d))
            return sorted[lo];
    return NULL;
}

int health_configure(health_config_t *config)
{
    size_t n = config ? config->check_count : 0;
    int rc = 0;
    size_t kept = 0, added = 0;
    pthread_mutex_lock(&g.lock);
    probe_check_t **arr = calloc(n ? n : 1, sizeof(*arr));
    health_eff_t *eff = calloc(n ? n : 1, sizeof(*eff));
    bool *fresh = calloc(n ? n : 1, sizeof(*fresh));
    probe_check_t **sorted = calloc(g.n ? g.n : 1, sizeof(*sorted));
    if (!arr || !eff || !fresh || !sorted) {
        rc = -ENOMEM;
        goto fail;
    }
    if (g.n) {
        memcpy(sorted, g.checks, g.n * sizeof(*sorted));
        qsort(sorted, g.n, sizeof(*sorted), cmp_check_name);
    }
    for (size_t i = 0; i < n; i++) {
        probe_check_t *c = find_kept(sorted, g.n, &config->checks[i]);
        if (c) {
            c->matched = true;
            kept++;
        } else if ((c = check_new(config, i))) {
            fresh[i] = true;
            added++;
        } else {
            rc = -ENOMEM;
            goto fail;
        }
        arr[i] = c;
        eff[i] = health_effective(&c->st);
    }
    /* Published before anything changes here: a view that cannot be made leaves the prober
     * on its old configuration, still in step with the view. */
    if ((rc = health_view_publish(config, eff)) < 0)
        goto fail;
    for (size_t j = 0; j < g.n; j++) {
        probe_check_t *c = g.checks[j];
        if (c->matched)
            continue;
        if (c->live) {
            c->retired = true; /* its timer fires no more probes */
            c->next_retired = g.retired;
            g.retired = c;
        } else {
            check_free(c);
        }
    }
    for (size_t i = 0; i < n; i++) {
        probe_check_t *c = arr[i];
        if (!fresh[i]) {
            c->matched = false;
            if (c->cfg != config) {
                health_config_ref(config);
                health_config_unref(c->cfg);
                c->cfg = config;
            }
            c->def = &config->checks[i];
        } else {
            health_config_ref(config);
        }
    }
    size_t removed = g.n - kept;
    free(g.checks);
    free(g.eff);
    g.checks = arr;
    g.eff = eff;
    g.n = n;
    if (config)
        health_config_ref(config);
    health_config_unref(g.cfg);
    g.cfg = config;
    g.dirty = false;
    g.publish_failing = false;
    if (g.running && !g.stopping)
        uv_async_send(&g.wake);
    pthread_mutex_unlock(&g.lock);
    free(fresh);
    free(sorted);
    log_info(MOD, "checks configured: %zu (%zu kept, %zu new, %zu removed)", n, kept, added,
             removed);
    return 0;
fail:
    for (size_t i = 0; arr && i < n; i++) {
        if (arr[i] && fresh[i]) {
            arr[i]->cfg = NULL; /* no reference was taken */
            check_free(arr[i]);
        } else if (arr[i]) {
            arr[i]->matched = false;
        }
    }
    pthread_mutex_unlock(&g.lock);
    free(arr);
    free(eff);
    free(fresh);
    free(sorted);
    return rc;
}

int health_override_set(const char *check, health_override_t o)
{
    if (!check ||
        (o != HEALTH_OVERRIDE_NONE && o != HEALTH_OVERRIDE_UP && o != HEALTH_OVERRIDE_DOWN))
        return -EINVAL;
    pthread_mutex_lock(&g.lock);
    probe_check_t *c = NULL;
    for (size_t i = 0; i < g.n && !c; i++)
        if (strcmp(g.checks[i]->def->name, check) == 0)
            c = g.checks[i];
    if (!c) {
        pthread_mutex_unlock(&g.lock);
        return FENNEC_ENOTFOUND;
    }
    if (c->st.override != o) {
        c->st.override = o;
        log_info(MOD, "check %s: override %s", c->def->name,
                 o == HEALTH_OVERRIDE_UP     ? "up"
                 : o == HEALTH_OVERRIDE_DOWN ? "down"
                                             : "cleared");
    }
    /* On failure the override stays set and the health thread publishes it on its next
     * callback. */
    int rc = publish();
    pthread_mutex_unlock(&g.lock);
    return rc;
}

int health_report_get(health_report_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&g.lock);
    if (!g.cfg || g.n == 0) {
        pthread_mutex_unlock(&g.lock);
        return 0;
    }
    size_t n = g.n, np = g.cfg->pool_count;
    out->states = calloc(n, sizeof(*out->states));
    out->counts = calloc(n, sizeof(*out->counts));
    out->pool_ttl = calloc(np ? np : 1, sizeof(*out->pool_ttl));
    out->pool_serving_count = calloc(np ? np : 1, sizeof(*out->pool_serving_count));
    out->pool_serving = calloc(np ? np : 1, sizeof(*out->pool_serving));
    if (!out->states || !out->counts || !out->pool_ttl || !out->pool_serving_count ||
        !out->pool_serving) {
        pthread_mutex_unlock(&g.lock);
        health_report_free(out);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        out->states[i] = g.checks[i]->st;
        out->counts[i] = g.checks[i]->counts;
    }
    for (size_t p = 0; p < np; p++)
        if (!health_view_pool(p, out->pool_serving[p], &out->pool_serving_count[p],
                              &out->pool_ttl[p]))
            out->pool_serving_count[p] = 0;
    health_config_ref(g.cfg);
    out->config = g.cfg;
    pthread_mutex_unlock(&g.lock);
    return 0;
}

void health_report_free(health_report_t *r)
{
    if (!r)
        return;
    free(r->states);
    free(r->counts);
    free(r->pool_ttl);
    free(r->pool_serving_count);
    free(r->pool_serving);
    health_config_unref(r->config);
    memset(r, 0, sizeof(*r));
}
