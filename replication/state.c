/*
 * Replication state: one mutex over a few small tables, so that every reader gets a
 * consistent copy and every writer (stream threads, the write path, the control endpoint)
 * takes the lock for a few table operations only.
 *
 * Why the tables look as they do:
 *   - the commit times of recent entries live in a power-of-two ring indexed by
 *     index & mask, each slot remembering its index, so a lookup is one probe and an entry
 *     that was overwritten is never mistaken for the one asked for;
 *   - the primary's view of a secondary keeps the last index it acked even while it is
 *     disconnected: its lag keeps growing instead of resetting, and a stalled stream never
 *     reads as "0 behind";
 *   - a secondary does not know the commit time of an entry it has not received, so it keeps
 *     what the primary said (index, time) and takes the first report of an index past its
 *     own: that entry was committed at or before that time, so the age is a lower bound,
 *     never an invention;
 *   - the history is a grid of 5 s slots aligned on the wall clock, so two ticks in one slot
 *     take one sample and a silence leaves holes (no sample) rather than stretched lines.
 */
#include "fennec/repl.h"
#include "fennec/common.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "repl"

#define RING_BITS 16
#define RING_SIZE (1u << RING_BITS) /* commit times kept: the last 65536 entries */
#define RING_MASK (RING_SIZE - 1)

#define SEEN_MAX 1024 /* a secondary's reports from the primary, index increasing */

#define HISTORY_STEP 5.0

typedef struct commit_slot {
    uint64_t index; /* 0: empty */
    uint64_t commit_ns;
} commit_slot_t;

typedef struct peer {
    char id[REPL_ID_MAX];
    char address[REPL_ADDR_MAX];
    bool connected;
    repl_peer_state_t state;
    uint64_t applied;
    double last_contact;      /* wall seconds; < 0 never */
    repl_announce_t announce; /* from its last ack; UNKNOWN while disconnected */
} peer_t;

typedef struct series {
    char id[REPL_ID_MAX];
    double values[REPL_HISTORY_POINTS]; /* by slot % REPL_HISTORY_POINTS; < 0: none */
} series_t;

static struct {
    bool primary;
    char node_id[REPL_ID_MAX];
    char primary_addr[REPL_ADDR_MAX];
    char primary_id[REPL_ID_MAX];

    /* The log as applied here. */
    uint64_t index; /* last applied (a primary: its last index) */
    uint64_t index_commit_ns;
    uint64_t snapshot_index; /* last snapshot installed; 0: none */
    uint64_t snapshot_commit_ns;
    commit_slot_t *ring; /* RING_SIZE slots, allocated on first use */

    repl_member_t *members;
    size_t member_count;

    /* Primary: one row per member but itself. */
    peer_t *peers;
    size_t peer_count;

    /* Secondary: its view of the primary. */
    bool p_connected;
    repl_peer_state_t p_state;
    uint64_t p_index; /* the primary's last index, as it said */
    double p_last_contact;
    struct {
        uint64_t index, time_ns;
    } seen[SEEN_MAX];
    size_t seen_first, seen_count; /* a ring of increasing indexes, all past INDEX */

    /* Anycast: this node's announce state; a secondary's copy of the primary's view. */
    repl_announce_t self_announce;
    repl_announce_hook_fn hook;
    void *hook_arg;
    repl_announce_entry_t *view;
    size_t view_count;
    double view_time; /* wall seconds; < 0 never */

    /* Lag history. */
    int64_t h_last_slot; /* slot of the last sample; -1: none */
    size_t h_samples;    /* samples (and holes) in the grid, at most REPL_HISTORY_POINTS */
    series_t *h_series;
    size_t h_series_count;
} g_st = {.h_last_slot = -1, .p_last_contact = -1, .view_time = -1};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_acked; /* an ack, a connect or disconnect, a membership change */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void cond_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g_acked, &attr);
    pthread_condattr_destroy(&attr);
}

static void lock(void)
{
    pthread_once(&g_once, cond_init);
    pthread_mutex_lock(&g_lock);
}

static void unlock(void)
{
    pthread_mutex_unlock(&g_lock);
}

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

const char *repl_state_name(repl_peer_state_t st)
{
    switch (st) {
    case REPL_NEVER_CONNECTED:
        return "never_connected";
    case REPL_DISCONNECTED:
        return "disconnected";
    case REPL_SNAPSHOT:
        return "snapshot";
    case REPL_CATCHING_UP:
        return "catching_up";
    case REPL_STREAMING:
        return "streaming";
    }
    return "unknown";
}

bool repl_member_id_valid(const char *id)
{
    if (!id)
        return false;
    size_t n = strlen(id);
    if (n == 0 || n >= REPL_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* ---- set up ------------------------------------------------------------------------------ */

static void reset_locked(void)
{
    free(g_st.ring);
    free(g_st.members);
    free(g_st.peers);
    free(g_st.h_series);
    free(g_st.view);
    repl_announce_t self = g_st.self_announce;
    repl_announce_hook_fn hook = g_st.hook;
    void *hook_arg = g_st.hook_arg;
    memset(&g_st, 0, sizeof(g_st));
    g_st.self_announce = self; /* the supervisor link may report before the stream starts */
    g_st.hook = hook;
    g_st.hook_arg = hook_arg;
    g_st.h_last_slot = -1;
    g_st.p_last_contact = -1;
    g_st.view_time = -1;
}

void repl_state_init(const char *node_id, bool primary, const char *primary_addr)
{
    lock();
    reset_locked();
    g_st.primary = primary;
    copy_str(g_st.node_id, sizeof(g_st.node_id), node_id);
    copy_str(g_st.primary_addr, sizeof(g_st.primary_addr), primary_addr);
    pthread_cond_broadcast(&g_acked);
    unlock();
}

void repl_state_reset(void)
{
    lock();
    reset_locked();
    pthread_cond_broadcast(&g_acked);
    unlock();
}

/* ---- the log ----------------------------------------------------------------------------- */

static void ring_put(uint64_t index, uint64_t commit_ns)
{
    if (!g_st.ring) {
        g_st.ring = calloc(RING_SIZE, sizeof(*g_st.ring));
        if (!g_st.ring)
            return; /* lag then falls back on the last commit time: a lower bound */
    }
    commit_slot_t *s = &g_st.ring[index & RING_MASK];
    s->index = index;
    s->commit_ns = commit_ns;
}

/* Commit time of INDEX, or 0 when it is no longer (or never was) in the ring. */
static uint64_t ring_get(uint64_t index)
{
    if (!g_st.ring || index == 0)
        return 0;
    const commit_slot_t *s = &g_st.ring[index & RING_MASK];
    return s->index == index ? s->commit_ns : 0;
}

/* Drops the reports from the primary about entries applied here now. */
static void seen_prune(void)
{
    while (g_st.seen_count > 0 && g_st.seen[g_st.seen_first].index <= g_st.index) {
        g_st.seen_first = (g_st.seen_first + 1) % SEEN_MAX;
        g_st.seen_count--;
    }
}

void repl_applied(uint64_t index, uint64_t commit_ns)
{
    lock();
    ring_put(index, commit_ns);
    if (index >= g_st.index) {
        g_st.index = index;
        g_st.index_commit_ns = commit_ns;
    }
    if (g_st.p_index < g_st.index)
        g_st.p_index = g_st.index;
    seen_prune();
    unlock();
}

void repl_applied_snapshot(uint64_t index, uint64_t commit_ns)
{
    lock();
    ring_put(index, commit_ns);
    g_st.snapshot_index = index;
    g_st.snapshot_commit_ns = commit_ns;
    if (index >= g_st.index) {
        g_st.index = index;
        g_st.index_commit_ns = commit_ns;
    }
    if (g_st.p_index < g_st.index)
        g_st.p_index = g_st.index;
    seen_prune();
    unlock();
}

/*
 * Commit time (ns) of the oldest entry after APPLIED, as well as this node knows it: from the
 * ring; else, for an entry older than the ring, the oldest time the ring or the snapshot
 * still vouches for (a later entry, so a lower bound of the age); 0 when none.
 */
static uint64_t oldest_unapplied_ns(uint64_t applied)
{
    uint64_t want = applied + 1;
    uint64_t t = ring_get(want);
    if (t)
        return t;
    if (g_st.index >= RING_SIZE) {
        uint64_t lo = g_st.index - RING_SIZE + 1;
        if (lo > want && (t = ring_get(lo)) != 0)
            return t;
    }
    if (g_st.snapshot_index >= want && g_st.snapshot_commit_ns)
        return g_st.snapshot_commit_ns;
    return g_st.index_commit_ns;
}

static double age(uint64_t ns, double now)
{
    if (ns == 0)
        return 0;
    double a = now - (double)ns / 1e9;
    return a > 0 ? a : 0; /* a clock behind the primary's does not make lag negative */
}

/* A secondary's seconds_behind: the first report of an index it has not applied. */
static double secondary_seconds_behind(double now)
{
    if (g_st.p_index <= g_st.index || g_st.seen_count == 0)
        return 0;
    return age(g_st.seen[g_st.seen_first].time_ns, now);
}

/* ---- membership -------------------------------------------------------------------------- */

static peer_t *peer_find(const char *id)
{
    for (size_t i = 0; i < g_st.peer_count; i++)
        if (strcmp(g_st.peers[i].id, id) == 0)
            return &g_st.peers[i];
    return NULL;
}

int repl_members_set(const repl_member_t *members, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (!repl_member_id_valid(members[i].id) ||
            strnlen(members[i].address, REPL_ADDR_MAX) >= REPL_ADDR_MAX)
            return FENNEC_EMALFORMED;
        for (size_t j = 0; j < i; j++)
            if (strcmp(members[i].id, members[j].id) == 0)
                return FENNEC_EMALFORMED;
    }
    repl_member_t *m = NULL;
    peer_t *p = NULL;
    if (count) {
        m = calloc(count, sizeof(*m));
        p = calloc(count, sizeof(*p));
        if (!m || !p) {
            free(m);
            free(p);
            return -ENOMEM;
        }
        memcpy(m, members, count * sizeof(*m));
    }

    lock();
    /* Every member but this node gets a row; a row that stays keeps what it knew. */
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(m[i].id, g_st.node_id) == 0)
            continue;
        const peer_t *old = peer_find(m[i].id);
        if (old) {
            p[n] = *old;
        } else {
            copy_str(p[n].id, sizeof(p[n].id), m[i].id);
            p[n].state = REPL_NEVER_CONNECTED;
            p[n].last_contact = -1;
            log_info(MOD, "member %s (%s) joined", m[i].id, m[i].address);
        }
        copy_str(p[n].address, sizeof(p[n].address), m[i].address);
        n++;
    }
    for (size_t i = 0; i < g_st.peer_count; i++) {
        bool kept = false;
        for (size_t j = 0; j < n && !kept; j++)
            kept = strcmp(p[j].id, g_st.peers[i].id) == 0;
        if (!kept)
            log_info(MOD, "member %s left", g_st.peers[i].id);
    }
    free(g_st.members);
    free(g_st.peers);
    g_st.members = m;
    g_st.member_count = count;
    g_st.peers = p;
    g_st.peer_count = n;
    pthread_cond_broadcast(&g_acked); /* a removed node no longer holds a wait */
    unlock();
    return 0;
}

int repl_members_get(repl_member_t **out)
{
    *out = NULL;
    lock();
    int n = (int)g_st.member_count;
    if (n > 0) {
        *out = malloc((size_t)n * sizeof(**out));
        if (*out)
            memcpy(*out, g_st.members, (size_t)n * sizeof(**out));
        else
            n = -ENOMEM;
    }
    unlock();
    return n;
}

bool repl_member_find(const char *id, char *address)
{
    bool found = false;
    lock();
    for (size_t i = 0; i < g_st.member_count && !found; i++) {
        if (strcmp(g_st.members[i].id, id) == 0) {
            found = true;
            if (address)
                copy_str(address, REPL_ADDR_MAX, g_st.members[i].address);
        }
    }
    unlock();
    return found;
}

/* ---- primary: its view of each secondary --------------------------------------------------- */

static void peer_state_change(peer_t *p, repl_peer_state_t to, const char *why)
{
    if (p->state == to)
        return;
    log_info(MOD, "node %s: %s -> %s (%s)", p->id, repl_state_name(p->state), repl_state_name(to),
             why);
    p->state = to;
}

void repl_peer_connected(const char *id, bool connected, double now)
{
    lock();
    peer_t *p = peer_find(id);
    if (p) {
        if (connected) {
            p->connected = true;
            p->last_contact = now;
            if (p->state == REPL_NEVER_CONNECTED || p->state == REPL_DISCONNECTED)
                peer_state_change(p, REPL_CATCHING_UP, "stream authenticated");
        } else if (p->connected) {
            p->connected = false;
            p->announce = REPL_ANNOUNCE_UNKNOWN;
            peer_state_change(p, REPL_DISCONNECTED, "stream ended");
        }
        pthread_cond_broadcast(&g_acked);
    } else {
        log_debug(MOD, "node %s: not a member, stream event ignored", id);
    }
    unlock();
}

void repl_peer_state_set(const char *id, repl_peer_state_t st)
{
    lock();
    peer_t *p = peer_find(id);
    if (p && p->connected && st != REPL_NEVER_CONNECTED && st != REPL_DISCONNECTED)
        peer_state_change(p, st, "stream");
    unlock();
}

void repl_peer_ack(const char *id, uint64_t applied, double now)
{
    lock();
    peer_t *p = peer_find(id);
    if (p) {
        if (applied > p->applied)
            p->applied = applied;
        p->last_contact = now;
        pthread_cond_broadcast(&g_acked);
    }
    unlock();
}

/* ---- secondary: its view of the primary ---------------------------------------------------- */

static void primary_state_change(repl_peer_state_t to, const char *why)
{
    if (g_st.p_state == to)
        return;
    log_info(MOD, "primary %s: %s -> %s (%s)", g_st.primary_addr, repl_state_name(g_st.p_state),
             repl_state_name(to), why);
    g_st.p_state = to;
}

void repl_primary_connected(bool connected, double now)
{
    lock();
    if (connected) {
        g_st.p_connected = true;
        g_st.p_last_contact = now;
        if (g_st.p_state == REPL_NEVER_CONNECTED || g_st.p_state == REPL_DISCONNECTED)
            primary_state_change(REPL_CATCHING_UP, "stream authenticated");
    } else if (g_st.p_connected) {
        g_st.p_connected = false;
        primary_state_change(REPL_DISCONNECTED, "stream ended");
    }
    unlock();
}

void repl_primary_state_set(repl_peer_state_t st)
{
    lock();
    if (g_st.p_connected && st != REPL_NEVER_CONNECTED && st != REPL_DISCONNECTED)
        primary_state_change(st, "stream");
    unlock();
}

void repl_primary_id_set(const char *id)
{
    lock();
    copy_str(g_st.primary_id, sizeof(g_st.primary_id), id);
    unlock();
}

void repl_primary_seen(uint64_t index, uint64_t time_ns, double now)
{
    lock();
    g_st.p_last_contact = now;
    if (index > g_st.p_index)
        g_st.p_index = index;
    if (index > g_st.index) {
        size_t last = (g_st.seen_first + g_st.seen_count + SEEN_MAX - 1) % SEEN_MAX;
        if (g_st.seen_count > 0 && g_st.seen[last].index >= index) {
            /* Not news: an earlier report already covers this index, at an earlier time. */
        } else if (g_st.seen_count == SEEN_MAX) {
            /* Full: the newest report moves forward; the oldest ones, which give the ages,
             * stay. The entries in between get a later time: a smaller, still true, age. */
            g_st.seen[last].index = index;
            g_st.seen[last].time_ns = time_ns;
        } else {
            size_t at = (g_st.seen_first + g_st.seen_count) % SEEN_MAX;
            g_st.seen[at].index = index;
            g_st.seen[at].time_ns = time_ns;
            g_st.seen_count++;
        }
    }
    unlock();
}

/* ---- reading ----------------------------------------------------------------------------- */

static void peer_status(const peer_t *p, repl_node_status_t *o, double now)
{
    memset(o, 0, sizeof(*o));
    copy_str(o->id, sizeof(o->id), p->id);
    copy_str(o->address, sizeof(o->address), p->address);
    o->connected = p->connected;
    o->state = p->state;
    o->applied_index = p->applied;
    o->entries_behind = g_st.index > p->applied ? g_st.index - p->applied : 0;
    o->seconds_behind = o->entries_behind ? age(oldest_unapplied_ns(p->applied), now) : 0;
    o->last_contact_seconds = p->last_contact < 0 ? -1 : fmax(0, now - p->last_contact);
}

int repl_status_get(repl_status_t *out, double now)
{
    memset(out, 0, sizeof(*out));
    lock();
    out->primary = g_st.primary;
    copy_str(out->node_id, sizeof(out->node_id), g_st.node_id);
    copy_str(out->primary_addr, sizeof(out->primary_addr), g_st.primary_addr);
    copy_str(out->primary_id, sizeof(out->primary_id), g_st.primary_id);
    out->index = g_st.index;
    out->commit_time = (double)g_st.index_commit_ns / 1e9;
    out->last_contact_seconds = -1;
    if (g_st.primary) {
        if (g_st.peer_count) {
            out->nodes = calloc(g_st.peer_count, sizeof(*out->nodes));
            if (!out->nodes) {
                unlock();
                return -ENOMEM;
            }
            for (size_t i = 0; i < g_st.peer_count; i++)
                peer_status(&g_st.peers[i], &out->nodes[i], now);
            out->node_count = g_st.peer_count;
        }
    } else {
        out->connected = g_st.p_connected;
        out->state = g_st.p_state;
        out->applied_index = g_st.index;
        out->primary_index = g_st.p_index > g_st.index ? g_st.p_index : g_st.index;
        out->entries_behind = out->primary_index - g_st.index;
        out->seconds_behind = secondary_seconds_behind(now);
        if (g_st.p_last_contact >= 0)
            out->last_contact_seconds = fmax(0, now - g_st.p_last_contact);
    }
    unlock();
    return 0;
}

void repl_status_free(repl_status_t *st)
{
    if (!st)
        return;
    free(st->nodes);
    st->nodes = NULL;
    st->node_count = 0;
}

/* Ids of the connected secondaries that have not acked INDEX, into BUF; their count. */
static size_t lagging_list(uint64_t index, char *buf, size_t len)
{
    size_t n = 0, used = 0;
    if (buf && len)
        buf[0] = '\0';
    for (size_t i = 0; i < g_st.peer_count; i++) {
        const peer_t *p = &g_st.peers[i];
        if (!p->connected || p->applied >= index)
            continue;
        if (buf && len && used < len) {
            int w = snprintf(buf + used, len - used, "%s%s", n ? "," : "", p->id);
            used += w > 0 ? (size_t)w : 0;
        }
        n++;
    }
    return n;
}

int repl_wait_all(uint64_t index, uint32_t timeout_ms, char *lagging, size_t laglen)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    int rc = 0;
    lock();
    for (;;) {
        if (lagging_list(index, NULL, 0) == 0)
            break;
        int w = pthread_cond_timedwait(&g_acked, &g_lock, &deadline);
        if (w == ETIMEDOUT) {
            if (lagging_list(index, lagging, laglen) > 0)
                rc = FENNEC_ETIMEOUT;
            break;
        }
    }
    unlock();
    if (rc == 0 && lagging && laglen)
        lagging[0] = '\0';
    return rc;
}

/* ---- lag history ------------------------------------------------------------------------- */

static series_t *series_find(const char *id)
{
    for (size_t i = 0; i < g_st.h_series_count; i++)
        if (strcmp(g_st.h_series[i].id, id) == 0)
            return &g_st.h_series[i];
    return NULL;
}

/* The series wanted now, in order (a primary: itself then its peers; a secondary: itself),
 * keeping the samples of those that already had one. */
static int series_sync(void)
{
    size_t want = g_st.primary ? 1 + g_st.peer_count : 1;
    series_t *s = calloc(want, sizeof(*s));
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < want; i++) {
        const char *id = i == 0 ? g_st.node_id : g_st.peers[i - 1].id;
        const series_t *old = series_find(id);
        if (old) {
            s[i] = *old;
        } else {
            copy_str(s[i].id, sizeof(s[i].id), id);
            for (size_t k = 0; k < REPL_HISTORY_POINTS; k++)
                s[i].values[k] = -1;
        }
    }
    free(g_st.h_series);
    g_st.h_series = s;
    g_st.h_series_count = want;
    return 0;
}

void repl_history_tick(double now)
{
    if (!(now >= 0))
        return;
    int64_t slot = (int64_t)floor(now / HISTORY_STEP);
    lock();
    if (g_st.h_last_slot >= 0 && slot <= g_st.h_last_slot) {
        if (slot + (int64_t)REPL_HISTORY_POINTS >= g_st.h_last_slot) {
            unlock(); /* not due yet (or a small step back of the clock) */
            return;
        }
        g_st.h_last_slot = -1; /* the clock went far back: start again */
        g_st.h_samples = 0;
        for (size_t i = 0; i < g_st.h_series_count; i++)
            for (size_t k = 0; k < REPL_HISTORY_POINTS; k++)
                g_st.h_series[i].values[k] = -1;
    }
    if (series_sync() != 0) {
        unlock();
        return;
    }
    /* Slots passed without a tick are holes. */
    int64_t from = g_st.h_last_slot < 0 ? slot : g_st.h_last_slot + 1;
    if (slot - from >= (int64_t)REPL_HISTORY_POINTS)
        from = slot - (int64_t)REPL_HISTORY_POINTS + 1;
    for (int64_t k = from; k < slot; k++)
        for (size_t i = 0; i < g_st.h_series_count; i++)
            g_st.h_series[i].values[k % REPL_HISTORY_POINTS] = -1;
    size_t at = (size_t)(slot % REPL_HISTORY_POINTS);
    for (size_t i = 0; i < g_st.h_series_count; i++) {
        double v;
        if (g_st.primary) {
            v = 0; /* the primary itself */
            if (i > 0) {
                repl_node_status_t ns;
                peer_status(&g_st.peers[i - 1], &ns, now);
                v = ns.connected ? ns.seconds_behind : -1;
            }
        } else {
            v = g_st.p_connected ? secondary_seconds_behind(now) : -1;
        }
        g_st.h_series[i].values[at] = v;
    }
    uint64_t added = g_st.h_last_slot < 0 ? 1 : (uint64_t)(slot - g_st.h_last_slot);
    g_st.h_samples = g_st.h_samples + added > REPL_HISTORY_POINTS ? REPL_HISTORY_POINTS
                                                                  : g_st.h_samples + (size_t)added;
    g_st.h_last_slot = slot;
    unlock();
}

int repl_history_get(repl_history_t *out)
{
    memset(out, 0, sizeof(*out));
    out->step = HISTORY_STEP;
    lock();
    size_t n = g_st.h_samples, s = g_st.h_series_count;
    if (n == 0 || s == 0) {
        unlock();
        return 0;
    }
    out->ids = calloc(s, sizeof(*out->ids));
    out->seconds_behind = calloc(s * n, sizeof(double));
    if (!out->ids || !out->seconds_behind) {
        unlock();
        repl_history_free(out);
        return -ENOMEM;
    }
    int64_t first = g_st.h_last_slot - (int64_t)n + 1;
    out->start = (double)first * HISTORY_STEP;
    out->points = n;
    out->series = s;
    for (size_t i = 0; i < s; i++) {
        copy_str(out->ids[i], REPL_ID_MAX, g_st.h_series[i].id);
        for (size_t k = 0; k < n; k++)
            out->seconds_behind[i * n + k] =
                g_st.h_series[i].values[(first + (int64_t)k) % REPL_HISTORY_POINTS];
    }
    unlock();
    return 0;
}

void repl_history_free(repl_history_t *h)
{
    if (!h)
        return;
    free(h->ids);
    free(h->seconds_behind);
    memset(h, 0, sizeof(*h));
}

/* ---- anycast ------------------------------------------------------------------------------ */

const char *repl_announce_name(repl_announce_t st)
{
    switch (st) {
    case REPL_ANNOUNCE_ANNOUNCED:
        return "announced";
    case REPL_ANNOUNCE_WITHDRAWN:
        return "withdrawn";
    case REPL_ANNOUNCE_DRAINING:
        return "draining";
    case REPL_ANNOUNCE_DRAINED:
        return "drained";
    case REPL_ANNOUNCE_DOWN:
        return "down";
    case REPL_ANNOUNCE_UNKNOWN:
        break;
    }
    return "unknown";
}

int repl_announce_parse(const char *s)
{
    for (int i = 0; s && i < REPL_ANNOUNCE_COUNT; i++)
        if (strcmp(s, repl_announce_name((repl_announce_t)i)) == 0)
            return i;
    return -1;
}

static repl_announce_t announce_clamp(repl_announce_t st)
{
    return (unsigned)st < REPL_ANNOUNCE_COUNT ? st : REPL_ANNOUNCE_UNKNOWN;
}

void repl_announce_hook_set(repl_announce_hook_fn fn, void *arg)
{
    lock();
    g_st.hook = fn;
    g_st.hook_arg = arg;
    unlock();
}

void repl_announce_self(repl_announce_t st)
{
    lock();
    st = announce_clamp(st);
    bool changed = g_st.self_announce != st;
    g_st.self_announce = st;
    if (changed && g_st.hook)
        g_st.hook(g_st.hook_arg);
    unlock();
}

repl_announce_t repl_announce_self_get(void)
{
    lock();
    repl_announce_t st = g_st.self_announce;
    unlock();
    return st;
}

void repl_peer_announce(const char *id, repl_announce_t st)
{
    lock();
    peer_t *p = peer_find(id);
    st = announce_clamp(st);
    if (p && p->connected && p->announce != st) {
        p->announce = st;
        if (g_st.hook)
            g_st.hook(g_st.hook_arg);
    }
    unlock();
}

void repl_announce_view_set(const repl_announce_entry_t *entries, size_t count, double now)
{
    if (count == 0)
        return;
    repl_announce_entry_t *copy = calloc(count, sizeof(*copy));
    if (!copy)
        return; /* the old view ages and stops counting as fresh */
    for (size_t i = 0; i < count; i++) {
        copy_str(copy[i].id, sizeof(copy[i].id), entries[i].id);
        copy[i].state = announce_clamp(entries[i].state);
    }
    lock();
    free(g_st.view);
    g_st.view = copy;
    g_st.view_count = count;
    g_st.view_time = now;
    unlock();
}

int repl_announce_view_get(repl_announce_view_t *out, double now)
{
    memset(out, 0, sizeof(*out));
    lock();
    size_t cap = 1 + (g_st.primary ? g_st.peer_count : g_st.view_count);
    repl_announce_entry_t *e = calloc(cap, sizeof(*e));
    if (!e) {
        unlock();
        return -ENOMEM;
    }
    size_t n = 0;
    copy_str(e[n].id, sizeof(e[n].id), g_st.node_id);
    e[n++].state = g_st.self_announce;
    if (g_st.primary) {
        for (size_t i = 0; i < g_st.peer_count; i++) {
            copy_str(e[n].id, sizeof(e[n].id), g_st.peers[i].id);
            e[n++].state = g_st.peers[i].connected ? g_st.peers[i].announce : REPL_ANNOUNCE_UNKNOWN;
        }
        out->fresh = true;
        out->age = 0;
    } else {
        for (size_t i = 0; i < g_st.view_count; i++) {
            if (strcmp(g_st.view[i].id, g_st.node_id) == 0)
                continue;
            e[n++] = g_st.view[i];
        }
        out->age = g_st.view_time < 0 ? -1 : (now > g_st.view_time ? now - g_st.view_time : 0);
        out->fresh = g_st.view_time >= 0 && out->age <= REPL_ANNOUNCE_FRESH_S;
    }
    unlock();
    for (size_t i = 0; i < n; i++)
        if (e[i].state == REPL_ANNOUNCE_ANNOUNCED)
            out->announced++;
    out->entries = e;
    out->count = n;
    return 0;
}

void repl_announce_view_free(repl_announce_view_t *v)
{
    if (!v)
        return;
    free(v->entries);
    memset(v, 0, sizeof(*v));
}
