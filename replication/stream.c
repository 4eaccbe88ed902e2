/*
 * The replication stream (stream.h). One uv loop in its own thread: the primary's listener
 * and connections, or the secondary's connection to its primary, timers for heartbeats,
 * silence and reconnection, and an async handle the committer pokes after each commit.
 *
 * A secondary's loop thread only reads, decodes, queues and answers: applying entries and
 * building a received snapshot take seconds for a large zone, and a loop busy with them
 * would neither read heartbeats nor ack them, so both ends would find the stream silent.
 * What arrives goes into a FIFO of work items per connection (a batch of entries, or one
 * snapshot chunk), applied one at a time, in order, on the uv thread pool; the after-work
 * callback, back on the loop, acks and starts the next item. Heartbeats are answered while
 * work runs. More than WORK_HIGH bytes of undone work stops reading until it drains to
 * WORK_LOW (the primary bounds what it has in flight, so the kernel's buffers hold the rest).
 */
#include "fennec/stream.h"
#include "fennec/change.h"
#include "fennec/common.h"
#include "fennec/frame.h"
#include "fennec/journal.h"
#include "fennec/repl.h"
#include "fennec/snapshot.h"
#include "fennec/zone.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MOD       "replication"
#define NONCE_LEN 32
#define MAC_LEN   32
#define ROLE_P    "fennec-primary-v1"
#define ROLE_S    "fennec-secondary-v1"
#define BATCH_MAX (1u << 20)  /* bytes of entries read from the journal at a time */
#define WORK_HIGH (64u << 20) /* secondary: undone work above which reading stops, bytes */
#define WORK_LOW  (32u << 20) /* and at or below which it starts again */
/* Bytes of entries gathered into one apply (one journal transaction). Every entry of a batch
 * builds a version kept until the batch is committed: measured with 100-record entries,
 * batches of about 50 apply at 0.2 ms an entry, batches of 128 or more at 2-7 ms. */
#define WORK_ITEM_MAX (256u << 10)

typedef struct conn conn_t;

typedef enum work_kind { WORK_ENTRIES, WORK_CHUNK } work_kind_t;

/* Secondary: one step of applying what the primary sent, done on the thread pool. */
typedef struct work {
    struct work *next;
    work_kind_t kind;
    size_t bytes; /* counted in conn->work_bytes until done */
    /* WORK_ENTRIES: encoded entries in index order, owned */
    uint8_t **data;
    size_t *lens;
    size_t n, cap;
    /* WORK_CHUNK: the frame of one snapshot chunk, owned */
    frame_t *frame;
    /* the outcome, written by the worker, read by the after-work callback */
    int rc;
    const char *why; /* the connection must close, for conn_close(); NULL: done */
    bool installed;  /* the snapshot's last chunk: the snapshot is served */
    char err[600];   /* what to log, or "" */
} work_t;

struct stream {
    const cfg_t *cfg;
    bool primary;
    uint8_t key[4096];
    size_t keylen;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake; /* a commit, or stop */
    uv_tcp_t listener;
    bool listening;
    uv_timer_t tick;      /* heartbeats and silence */
    uv_timer_t reconnect; /* secondary */
    conn_t *conns;        /* primary: every connection; secondary: the one, or NULL */
    unsigned backoff_ms;
    _Atomic int stop;
    _Atomic int announce_dirty; /* an announce state changed: tell the other side now */
    bool started;
};

struct conn {
    stream_t *s;
    conn_t *next;
    uv_tcp_t tcp;
    uv_connect_t connect;
    frame_reader_t rd;
    char peer[80]; /* address, for the log */
    char id[REPL_ID_MAX];
    uint8_t my_nonce[NONCE_LEN];
    uint8_t their_nonce[NONCE_LEN];
    bool got_hello, authed, closing, connected;
    uint64_t peer_applied; /* from the secondary's hello and acks */
    uint64_t last_rx_ms;
    size_t queued; /* bytes written and not yet done */
    /* primary */
    uint64_t next_index;
    snapshot_reader_t *snap;
    bool streaming;
    /* secondary */
    snapshot_builder_t *sb; /* touched by the worker only, while an item runs */
    snapshot_file_t *sf;    /* likewise */
    uint64_t primary_index;
    work_t *wq_head, *wq_tail; /* received, not yet applied, in order */
    work_t *running;           /* handed to the thread pool */
    uv_work_t work_req;
    size_t work_bytes;  /* bytes of the items queued and running */
    bool paused;        /* reading stopped: too much undone work */
    bool in_snapshot;   /* a snapshot is being received (from its first chunk to installed) */
    bool handle_closed; /* on_closed() ran; freed once no item runs */
};

typedef struct wreq {
    uv_write_t req;
    conn_t *c;
    uint8_t *buf;
    size_t len;
} wreq_t;

static void conn_close(conn_t *c, const char *why);
static void pump(conn_t *c);
static void dial(uv_timer_t *t);
static void work_free(work_t *w);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static uint64_t now_ms(stream_t *s)
{
    return uv_now(&s->loop);
}

int stream_proof(const uint8_t *key, size_t keylen, const char *role, const uint8_t *their_nonce,
                 const uint8_t *my_nonce, const char *my_id, uint8_t *mac)
{
    uint8_t msg[64 + 2 * NONCE_LEN + REPL_ID_MAX];
    size_t rl = strlen(role), il = strlen(my_id), n = 0;
    if (rl > 64 || il >= REPL_ID_MAX)
        return -EINVAL;
    memcpy(msg + n, role, rl);
    n += rl;
    memcpy(msg + n, their_nonce, NONCE_LEN);
    n += NONCE_LEN;
    memcpy(msg + n, my_nonce, NONCE_LEN);
    n += NONCE_LEN;
    memcpy(msg + n, my_id, il);
    n += il;
    unsigned len = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, n, mac, &len) || len != MAC_LEN)
        return -EIO;
    return 0;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    conn_t *c = w->c;
    c->queued -= w->len;
    free(w->buf);
    free(w);
    if (status < 0) {
        if (!c->closing)
            conn_close(c, uv_strerror(status));
        return;
    }
    if (!c->closing)
        pump(c);
}

/* Sends BUF (LEN bytes, taken over). */
static int send_buf(conn_t *c, uint8_t *buf, size_t len)
{
    if (c->closing) {
        free(buf);
        return -ECANCELED;
    }
    wreq_t *w = malloc(sizeof(*w));
    if (!w) {
        free(buf);
        return -ENOMEM;
    }
    w->c = c;
    w->buf = buf;
    w->len = len;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    c->queued += len;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc < 0) {
        c->queued -= len;
        free(buf);
        free(w);
    }
    return rc;
}

static int send_frame(conn_t *c, const frame_t *f)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    int rc = frame_encode(f, STREAM_ENTRY_MAX, &buf, &len, err, sizeof(err));
    if (rc) {
        log_error(MOD, "%s: cannot encode a frame: %s", c->peer, err);
        return rc;
    }
    return send_buf(c, buf, len);
}

static void send_error(conn_t *c, const char *msg)
{
    Fennec__Replication__Error e = FENNEC__REPLICATION__ERROR__INIT;
    frame_t f = FENNEC__REPLICATION__FRAME__INIT;
    e.message = (char *)msg;
    f.kind_case = FENNEC__REPLICATION__FRAME__KIND_ERROR;
    f.error = &e;
    send_frame(c, &f);
}

static void send_hello(conn_t *c)
{
    Fennec__Replication__Hello h = FENNEC__REPLICATION__HELLO__INIT;
    frame_t f = FENNEC__REPLICATION__FRAME__INIT;
    h.version = STREAM_VERSION;
    h.node_id = c->s->cfg->node_id;
    h.nonce.data = c->my_nonce;
    h.nonce.len = NONCE_LEN;
    h.applied_index = c->s->primary ? 0 : change_index();
    f.kind_case = FENNEC__REPLICATION__FRAME__KIND_HELLO;
    f.hello = &h;
    send_frame(c, &f);
}

static void send_proof(conn_t *c)
{
    uint8_t mac[MAC_LEN];
    if (stream_proof(c->s->key, c->s->keylen, c->s->primary ? ROLE_P : ROLE_S, c->their_nonce,
                     c->my_nonce, c->s->cfg->node_id, mac) != 0) {
        conn_close(c, "cannot compute the proof");
        return;
    }
    Fennec__Replication__Proof p = FENNEC__REPLICATION__PROOF__INIT;
    frame_t f = FENNEC__REPLICATION__FRAME__INIT;
    p.mac.data = mac;
    p.mac.len = MAC_LEN;
    f.kind_case = FENNEC__REPLICATION__FRAME__KIND_PROOF;
    f.proof = &p;
    send_frame(c, &f);
}

static void send_heartbeat(conn_t *c)
{
    Fennec__Replication__Heartbeat h = FENNEC__REPLICATION__HEARTBEAT__INIT;
    frame_t f = FENNEC__REPLICATION__FRAME__INIT;
    h.primary_index = change_index();
    h.time_ns = fennec_wall_ns();
    /* The cluster's announce view, so that every node can check a drain against
     * anycast.min_announced (docs/anycast.md). Small: one id and state per member. */
    repl_announce_view_t view;
    Fennec__Replication__NodeAnnounce *na = NULL, **nap = NULL;
    bool have_view = repl_announce_view_get(&view, fennec_wall_now()) == 0;
    if (have_view && view.count) {
        na = calloc(view.count, sizeof(*na));
        nap = calloc(view.count, sizeof(*nap));
        if (na && nap) {
            for (size_t i = 0; i < view.count; i++) {
                fennec__replication__node_announce__init(&na[i]);
                na[i].id = view.entries[i].id;
                na[i].state = (uint32_t)view.entries[i].state;
                nap[i] = &na[i];
            }
            h.announce = nap;
            h.n_announce = view.count;
        }
    }
    f.kind_case = FENNEC__REPLICATION__FRAME__KIND_HEARTBEAT;
    f.heartbeat = &h;
    send_frame(c, &f);
    free(na);
    free(nap);
    if (have_view)
        repl_announce_view_free(&view);
}

static void send_ack(conn_t *c)
{
    Fennec__Replication__Ack a = FENNEC__REPLICATION__ACK__INIT;
    frame_t f = FENNEC__REPLICATION__FRAME__INIT;
    a.applied_index = change_index();
    a.announce = (uint32_t)repl_announce_self_get();
    f.kind_case = FENNEC__REPLICATION__FRAME__KIND_ACK;
    f.ack = &a;
    send_frame(c, &f);
}

/* ---- closing ----------------------------------------------------------------------------- */

/* Frees C once its handle is closed and no item of its work runs; a secondary then dials
 * again, so two connections never apply at once. */
static void conn_free(conn_t *c)
{
    stream_t *s = c->s;
    frame_reader_deinit(&c->rd);
    snapshot_reader_close(c->snap);
    snapshot_builder_free(c->sb);
    snapshot_file_end(c->sf, false);
    for (work_t *w = c->wq_head, *nx; w; w = nx) {
        nx = w->next;
        work_free(w);
    }
    free(c);
    if (!s->primary && !atomic_load(&s->stop)) {
        /* Jittered exponential backoff: a primary back up is not stampeded. */
        unsigned base = s->backoff_ms ? s->backoff_ms : STREAM_BACKOFF_MIN;
        unsigned delay = base / 2 + (unsigned)(((uint64_t)rand() * (base / 2 + 1)) / RAND_MAX);
        s->backoff_ms = base * 2 > STREAM_BACKOFF_MAX ? STREAM_BACKOFF_MAX : base * 2;
        uv_timer_start(&s->reconnect, dial, delay, 0);
    }
}

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->handle_closed = true;
    if (!c->running) /* else the after-work callback frees it */
        conn_free(c);
}

static void conn_close(conn_t *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    stream_t *s = c->s;
    for (conn_t **p = &s->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    if (c->authed) {
        double now = fennec_wall_now();
        if (s->primary) {
            repl_peer_connected(c->id, false, now);
            log_warn(MOD, "node %s (%s) disconnected: %s", c->id, c->peer, why);
        } else {
            repl_primary_connected(false, now);
            log_warn(MOD, "primary %s disconnected: %s; still serving index %llu", c->peer, why,
                     (unsigned long long)change_index());
        }
    } else if (why) {
        log_info(MOD, "%s: stream closed before it was authenticated: %s", c->peer, why);
    }
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* ---- primary: sending ------------------------------------------------------------------------ */

typedef struct batch {
    uint8_t *buf;
    size_t len, cap;
    uint64_t next;
} batch_t;

static int batch_add(uint64_t index, const uint8_t *data, size_t len, void *arg)
{
    batch_t *b = arg;
    size_t need = len + FRAME_HEADER_LEN + 11;
    if (b->len && b->len + need > BATCH_MAX)
        return 1; /* enough for now */
    if (b->len + need > b->cap) {
        size_t ncap = b->cap ? b->cap : 65536;
        while (ncap < b->len + need)
            ncap *= 2;
        uint8_t *nb = realloc(b->buf, ncap);
        if (!nb)
            return -ENOMEM;
        b->buf = nb;
        b->cap = ncap;
    }
    size_t used = 0;
    int rc = frame_entry_wrap(data, len, b->buf + b->len, b->cap - b->len, &used);
    if (rc)
        return rc;
    b->len += used;
    b->next = index + 1;
    return 0;
}

/* Starts sending the snapshot to C; false when there is none that helps. */
static bool snapshot_start(conn_t *c)
{
    const char *dir = change_data_dir();
    uint64_t at = dir ? snapshot_index(dir) : 0;
    if (!at || at + 1 < c->next_index) {
        return false;
    }
    if (snapshot_reader_open(dir, &c->snap) != 0)
        return false;
    log_info(MOD,
             "node %s is at index %llu, older than the journal keeps: sending the snapshot "
             "of index %llu",
             c->id, (unsigned long long)(c->next_index - 1), (unsigned long long)at);
    repl_peer_state_set(c->id, REPL_SNAPSHOT);
    c->next_index = at + 1;
    return true;
}

/* Sends what C lacks while less than the high-water mark is in flight. */
static void pump(conn_t *c)
{
    stream_t *s = c->s;
    if (!s->primary || !c->authed || c->closing)
        return;
    while (c->queued < STREAM_HIGH_WATER && !c->closing) {
        if (c->snap) {
            uint8_t *buf = NULL;
            size_t len = 0;
            int rc = snapshot_reader_next(c->snap, &buf, &len);
            if (rc != 0 || !buf) {
                snapshot_reader_close(c->snap);
                c->snap = NULL;
                if (rc != 0) {
                    conn_close(c, "the snapshot file cannot be read");
                    return;
                }
                repl_peer_state_set(c->id, REPL_CATCHING_UP);
                continue;
            }
            send_buf(c, buf, len);
            continue;
        }
        uint64_t last = change_index();
        if (c->next_index > last)
            break;
        journal_t *j = change_journal();
        if (!j) {
            conn_close(c, "no journal");
            return;
        }
        batch_t b = {.next = c->next_index};
        int rc = journal_read(j, c->next_index, batch_add, &b);
        if (rc == FENNEC_ENOTFOUND) {
            free(b.buf);
            if (snapshot_start(c))
                continue;
            send_error(c, "the entries this node needs are neither in the journal nor in a "
                          "snapshot of the primary");
            conn_close(c, "entries compacted away and no snapshot");
            return;
        }
        if (rc < 0 || (rc != 0 && rc != 1) || b.len == 0) {
            free(b.buf);
            if (b.len == 0 && rc >= 0)
                break; /* committed but not yet readable: the next commit wakes us */
            conn_close(c, "the journal cannot be read");
            return;
        }
        c->next_index = b.next;
        send_buf(c, b.buf, b.len);
    }
}

/* ---- receiving ------------------------------------------------------------------------------ */

static void handle_hello(conn_t *c, const Fennec__Replication__Hello *h)
{
    stream_t *s = c->s;
    if (c->got_hello) {
        conn_close(c, "a second hello");
        return;
    }
    if (h->version != STREAM_VERSION) {
        char msg[128];
        snprintf(msg, sizeof(msg), "protocol version %u is not spoken here (version %u)",
                 h->version, STREAM_VERSION);
        send_error(c, msg);
        conn_close(c, msg);
        return;
    }
    c->got_hello = true;
    memcpy(c->their_nonce, h->nonce.data, NONCE_LEN);
    snprintf(c->id, sizeof(c->id), "%s", h->node_id);
    c->peer_applied = h->applied_index;
    if (s->primary && !repl_member_id_valid(c->id)) {
        send_error(c, "not a valid node id");
        conn_close(c, "hello with an invalid node id");
        return;
    }
    /* The secondary proves itself first; the primary answers with its proof once it accepted
     * the secondary, so "connected" on a secondary means accepted. */
    if (!s->primary) {
        repl_primary_id_set(c->id);
        send_proof(c);
    }
}

static void authenticated(conn_t *c)
{
    stream_t *s = c->s;
    c->authed = true;
    c->rd.max = STREAM_ENTRY_MAX;
    double now = fennec_wall_now();
    if (s->primary) {
        uint64_t last = change_index();
        if (c->peer_applied > last) {
            char msg[256];
            snprintf(msg, sizeof(msg),
                     "this node has index %llu, the primary only %llu: the primary lost entries "
                     "or is another cluster's; start this node with --reseed",
                     (unsigned long long)c->peer_applied, (unsigned long long)last);
            log_error(MOD, "node %s (%s): %s", c->id, c->peer, msg);
            send_error(c, msg);
            c->authed = false;
            conn_close(c, "secondary ahead of the primary");
            return;
        }
        repl_peer_connected(c->id, true, now);
        repl_peer_ack(c->id, c->peer_applied, now);
        c->next_index = c->peer_applied + 1;
        log_info(MOD, "node %s (%s) connected at index %llu (primary at %llu)", c->id, c->peer,
                 (unsigned long long)c->peer_applied, (unsigned long long)last);
        pump(c);
    } else {
        repl_primary_connected(true, now);
        log_info(MOD, "connected to the primary %s at index %llu", c->peer,
                 (unsigned long long)change_index());
    }
}

static void handle_proof(conn_t *c, const Fennec__Replication__Proof *p)
{
    stream_t *s = c->s;
    if (!c->got_hello || c->authed) {
        conn_close(c, "a proof out of turn");
        return;
    }
    uint8_t want[MAC_LEN];
    const char *role = s->primary ? ROLE_S : ROLE_P;
    if (stream_proof(s->key, s->keylen, role, c->my_nonce, c->their_nonce, c->id, want) != 0 ||
        CRYPTO_memcmp(want, p->mac.data, MAC_LEN) != 0) {
        if (s->primary)
            log_error(MOD,
                      "%s (claiming node id %s): wrong cluster key; nothing sent. Give that "
                      "node the cluster's key_file",
                      c->peer, c->id);
        else
            log_error(MOD,
                      "primary %s: its proof does not match our cluster key; not following "
                      "it. Check cluster.key_file on both nodes",
                      c->peer);
        send_error(c, "authentication failed");
        conn_close(c, "authentication failed");
        return;
    }
    if (s->primary && !repl_member_find(c->id, NULL)) {
        log_error(MOD,
                  "%s: node %s holds the cluster key but is not a member; nothing sent. Add "
                  "it on the primary: fennecctl node add %s ADDRESS",
                  c->peer, c->id, c->id);
        send_error(c, "this node id is not a member of the cluster: add it with fennecctl node "
                      "add on the primary");
        conn_close(c, "not a member");
        return;
    }
    if (s->primary)
        send_proof(c);
    authenticated(c);
}

/* ---- secondary: applying, off the loop thread ----------------------------------------------- */

static void work_free(work_t *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->data[i]);
    free(w->data);
    free(w->lens);
    frame_free(w->frame);
    free(w);
}

static void work_push(conn_t *c, work_t *w)
{
    if (c->wq_tail)
        c->wq_tail->next = w;
    else
        c->wq_head = w;
    c->wq_tail = w;
}

/* Queues entry E (packed again: change_apply_entries() takes the bytes), gathered with the
 * entries queued before it while they wait. */
static int work_add_entry(conn_t *c, const Fennec__Replication__Entry *e)
{
    size_t len = fennec__replication__entry__get_packed_size(e);
    work_t *w = c->wq_tail;
    if (!w || w->kind != WORK_ENTRIES || w->bytes + len > WORK_ITEM_MAX) {
        if (!(w = calloc(1, sizeof(*w))))
            return -ENOMEM;
        w->kind = WORK_ENTRIES;
        work_push(c, w);
    }
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 64;
        uint8_t **d = realloc(w->data, ncap * sizeof(*d));
        if (!d)
            return -ENOMEM;
        w->data = d;
        size_t *l = realloc(w->lens, ncap * sizeof(*l));
        if (!l)
            return -ENOMEM;
        w->lens = l;
        w->cap = ncap;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -ENOMEM;
    fennec__replication__entry__pack(e, buf);
    w->data[w->n] = buf;
    w->lens[w->n++] = len;
    w->bytes += len;
    c->work_bytes += len;
    return 0;
}

/* Queues the snapshot chunk of F (taken over). */
static int work_add_chunk(conn_t *c, frame_t *f)
{
    work_t *w = calloc(1, sizeof(*w));
    if (!w) {
        frame_free(f);
        return -ENOMEM;
    }
    w->kind = WORK_CHUNK;
    w->frame = f;
    w->bytes = fennec__replication__snapshot_chunk__get_packed_size(f->snapshot);
    c->work_bytes += w->bytes;
    work_push(c, w);
    return 0;
}

/* Worker: one snapshot chunk saved to the file and added to the zones being built; the last
 * one installs the snapshot. Touches C's sb and sf only. */
static void chunk_apply(conn_t *c, work_t *w)
{
    const Fennec__Replication__SnapshotChunk *ch = w->frame->snapshot;
    char err[512] = "";
    int rc = 0;
    if (ch->seq == 0) {
        snapshot_builder_free(c->sb);
        snapshot_file_end(c->sf, false);
        c->sb = NULL;
        c->sf = NULL;
        const char *dir = change_data_dir();
        if (!dir || (rc = snapshot_builder_new(&c->sb)) != 0 ||
            (rc = snapshot_file_begin(dir, &c->sf)) != 0) {
            w->why = "cannot start receiving a snapshot";
            return;
        }
    }
    if (!c->sb) {
        w->why = "a snapshot chunk without its start";
        return;
    }
    if ((rc = snapshot_file_add(c->sf, ch)) != 0) {
        snprintf(w->err, sizeof(w->err), "snapshot not saved: %s", fennec_strerror(rc));
        w->why = "snapshot not saved";
        return;
    }
    rc = snapshot_builder_add(c->sb, ch, err, sizeof(err));
    if (rc < 0) {
        snprintf(w->err, sizeof(w->err), "the primary's snapshot: %s", err);
        w->why = "a damaged snapshot";
        return;
    }
    if (rc == 0)
        return;
    snapshot_data_t d;
    rc = snapshot_builder_finish(c->sb, &d, err, sizeof(err));
    snapshot_builder_free(c->sb);
    c->sb = NULL;
    int frc = snapshot_file_end(c->sf, rc == 0);
    c->sf = NULL;
    if (rc == 0 && frc != 0) {
        snapshot_data_free(&d);
        snprintf(w->err, sizeof(w->err), "snapshot not saved: %s", fennec_strerror(frc));
        w->why = "snapshot not saved";
        return;
    }
    if (rc == 0)
        rc = change_install_snapshot(&d, err, sizeof(err));
    if (rc != 0) {
        snapshot_data_free(&d);
        snprintf(w->err, sizeof(w->err), "snapshot not installed: %s", err);
        w->why = "snapshot not installed";
        return;
    }
    w->installed = true;
}

/* Worker thread (the uv thread pool): applies the running item. */
static void work_run(uv_work_t *req)
{
    conn_t *c = req->data;
    work_t *w = c->running;
    zone_reader_register(); /* change_apply_entries() reads the served zones */
    if (w->kind == WORK_ENTRIES) {
        char err[512] = "";
        w->rc =
            change_apply_entries((const uint8_t *const *)w->data, w->lens, w->n, err, sizeof(err));
        if (w->rc != 0) {
            snprintf(w->err, sizeof(w->err), "entries from the primary not applied: %s%s", err,
                     w->rc == FENNEC_EZONE ? " (this node's data differs from the primary's: "
                                             "start it with --reseed)"
                                           : "");
            w->why = "entries not applied";
        }
    } else {
        chunk_apply(c, w);
    }
    zone_reader_unregister();
}

static void work_done(uv_work_t *req, int status);

/* Hands the next queued item to the thread pool when none runs. */
static void work_kick(conn_t *c)
{
    if (c->running || !c->wq_head || c->closing)
        return;
    work_t *w = c->wq_head;
    c->wq_head = w->next;
    if (!c->wq_head)
        c->wq_tail = NULL;
    w->next = NULL;
    c->running = w;
    c->work_req.data = c;
    int rc = uv_queue_work(&c->s->loop, &c->work_req, work_run, work_done);
    if (rc < 0) {
        c->running = NULL;
        c->work_bytes -= w->bytes;
        work_free(w);
        log_error(MOD, "cannot hand entries to a worker thread: %s", uv_strerror(rc));
        conn_close(c, "no worker thread");
    }
}

/* Reading stops while more than WORK_HIGH bytes wait, and starts again at WORK_LOW. */
static void work_flow(conn_t *c)
{
    if (c->closing)
        return;
    if (!c->paused && c->work_bytes > WORK_HIGH) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->paused = true;
        log_debug(MOD, "primary %s: %zu MiB received and not yet applied; reading paused", c->peer,
                  c->work_bytes >> 20);
    } else if (c->paused && c->work_bytes <= WORK_LOW) {
        c->paused = false;
        c->last_rx_ms = now_ms(c->s); /* the silence was ours */
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            conn_close(c, "cannot read again");
    }
}

/* Loop thread: the running item is done. Acks what it applied and starts the next one. */
static void work_done(uv_work_t *req, int status)
{
    conn_t *c = req->data;
    work_t *w = c->running;
    c->running = NULL;
    c->work_bytes -= w->bytes;
    if (c->handle_closed) {
        work_free(w);
        conn_free(c);
        return;
    }
    if (c->closing || status < 0) {
        work_free(w);
        if (!c->closing)
            conn_close(c, uv_strerror(status));
        return;
    }
    if (w->err[0])
        log_error(MOD, "%s", w->err);
    if (w->why) {
        c->in_snapshot = false;
        conn_close(c, w->why);
        work_free(w);
        return;
    }
    if (w->kind == WORK_ENTRIES) {
        uint64_t applied = change_index();
        repl_primary_state_set(applied >= c->primary_index ? REPL_STREAMING : REPL_CATCHING_UP);
        c->s->backoff_ms = 0; /* a stream that delivers: the next reconnection is quick again */
        send_ack(c);
    } else if (w->installed) {
        c->in_snapshot = false;
        repl_primary_state_set(REPL_CATCHING_UP);
        send_ack(c);
    }
    work_free(w);
    work_flow(c);
    work_kick(c);
}

/* Secondary: a snapshot chunk F, taken over. */
static void handle_chunk(conn_t *c, frame_t *f)
{
    const Fennec__Replication__SnapshotChunk *ch = f->snapshot;
    if (ch->seq == 0) {
        c->in_snapshot = true;
        repl_primary_state_set(REPL_SNAPSHOT);
        log_info(MOD, "receiving a snapshot of index %llu from the primary",
                 (unsigned long long)ch->index);
    } else if (!c->in_snapshot) {
        frame_free(f);
        conn_close(c, "a snapshot chunk without its start");
        return;
    }
    if (work_add_chunk(c, f) != 0)
        conn_close(c, "out of memory");
}

/* Handles frame F; returns true when it took F over (a snapshot chunk queued). */
/* Secondary: the primary's announce view in heartbeat H (none from an older primary). */
static void announce_view_take(const Fennec__Replication__Heartbeat *h, double now)
{
    size_t n = h->n_announce;
    if (n == 0)
        return;
    if (n > 4096)
        n = 4096; /* members are far fewer; never trust a count blindly */
    repl_announce_entry_t *e = calloc(n, sizeof(*e));
    if (!e)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const Fennec__Replication__NodeAnnounce *a = h->announce[i];
        if (!a || !a->id || !repl_member_id_valid(a->id))
            continue;
        snprintf(e[k].id, sizeof(e[k].id), "%s", a->id);
        e[k].state =
            a->state < REPL_ANNOUNCE_COUNT ? (repl_announce_t)a->state : REPL_ANNOUNCE_UNKNOWN;
        k++;
    }
    repl_announce_view_set(e, k, now);
    free(e);
}

static bool handle_frame(conn_t *c, frame_t *f)
{
    stream_t *s = c->s;
    double now = fennec_wall_now();
    switch (f->kind_case) {
    case FENNEC__REPLICATION__FRAME__KIND_HELLO:
        handle_hello(c, f->hello);
        return false;
    case FENNEC__REPLICATION__FRAME__KIND_PROOF:
        handle_proof(c, f->proof);
        return false;
    case FENNEC__REPLICATION__FRAME__KIND_ERROR:
        log_error(MOD, "%s%s%s says: %.300s", s->primary ? "node " : "primary ",
                  s->primary ? c->id : c->peer, "", f->error->message);
        conn_close(c, "the other side gave up");
        return false;
    default:
        break;
    }
    if (!c->authed) {
        conn_close(c, "data before authentication");
        return false;
    }
    if (s->primary) {
        if (f->kind_case != FENNEC__REPLICATION__FRAME__KIND_ACK) {
            conn_close(c, "a secondary sent something else than an ack");
            return false;
        }
        c->peer_applied = f->ack->applied_index;
        repl_peer_ack(c->id, c->peer_applied, now);
        repl_peer_announce(c->id, f->ack->announce < REPL_ANNOUNCE_COUNT
                                      ? (repl_announce_t)f->ack->announce
                                      : REPL_ANNOUNCE_UNKNOWN);
        repl_peer_state_set(c->id, c->snap                             ? REPL_SNAPSHOT
                                   : c->peer_applied >= change_index() ? REPL_STREAMING
                                                                       : REPL_CATCHING_UP);
        return false;
    }
    switch (f->kind_case) {
    case FENNEC__REPLICATION__FRAME__KIND_ENTRY:
        if (f->entry->index > c->primary_index) {
            c->primary_index = f->entry->index;
            repl_primary_seen(f->entry->index, f->entry->commit_time_ns, now);
        }
        if (work_add_entry(c, f->entry) != 0)
            conn_close(c, "out of memory");
        return false;
    case FENNEC__REPLICATION__FRAME__KIND_SNAPSHOT:
        handle_chunk(c, f);
        return true;
    case FENNEC__REPLICATION__FRAME__KIND_HEARTBEAT:
        if (f->heartbeat->primary_index > c->primary_index)
            c->primary_index = f->heartbeat->primary_index;
        repl_primary_seen(f->heartbeat->primary_index, f->heartbeat->time_ns, now);
        announce_view_take(f->heartbeat, now);
        if (!c->running && !c->wq_head && !c->in_snapshot) {
            if (change_index() >= c->primary_index)
                s->backoff_ms = 0; /* caught up: the stream works */
            repl_primary_state_set(change_index() >= c->primary_index ? REPL_STREAMING
                                                                      : REPL_CATCHING_UP);
        }
        send_ack(c); /* also tells the primary this node is alive while work runs */
        return false;
    default:
        conn_close(c, "a primary sent something a primary does not send");
        return false;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static _Thread_local char slab[65536];
    *buf = uv_buf_init(slab, sizeof(slab));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "closed by the other side" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || c->closing)
        return;
    c->last_rx_ms = now_ms(c->s);
    char err[256];
    if (frame_reader_feed(&c->rd, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        frame_t *f = NULL;
        frame_reader_next(&c->rd, &f, err, sizeof(err));
        log_error(MOD, "%s%s%s: %s; closing", c->peer, c->id[0] ? " node " : "", c->id, err);
        conn_close(c, "a bad frame");
        return;
    }
    while (!c->closing) {
        frame_t *f = NULL;
        if (frame_reader_next(&c->rd, &f, err, sizeof(err)) != 0) {
            log_error(MOD, "%s%s%s: %s; closing", c->peer, c->id[0] ? " node " : "", c->id, err);
            conn_close(c, "a bad frame");
            break;
        }
        if (!f)
            break;
        if (!handle_frame(c, f))
            frame_free(f);
    }
    /* Everything this read brought is queued: entries that came together apply together. */
    work_flow(c);
    work_kick(c);
}

/* ---- connections ------------------------------------------------------------------------------
 */

static conn_t *conn_new(stream_t *s)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->s = s;
    frame_reader_init(&c->rd, STREAM_HANDSHAKE_MAX);
    RAND_bytes(c->my_nonce, NONCE_LEN);
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    c->last_rx_ms = now_ms(s);
    return c;
}

static void conn_begin(conn_t *c)
{
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 10);
    c->next = c->s->conns;
    c->s->conns = c;
    c->connected = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_hello(c);
}

static void peer_name(uv_tcp_t *t, bool remote, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[64] = "?";
    int port = 0;
    int rc = remote ? uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len)
                    : uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len);
    if (rc == 0 && ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(out, cap, "%s:%d", host, port);
    } else if (rc == 0 && ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(out, cap, "[%s]:%d", host, port);
    } else {
        snprintf(out, cap, "?");
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    stream_t *s = server->data;
    if (status < 0)
        return;
    conn_t *c = conn_new(s);
    if (!c)
        return;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    peer_name(&c->tcp, true, c->peer, sizeof(c->peer));
    conn_begin(c);
}

static void on_connected(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0) {
        log_debug(MOD, "primary %s: %s", c->peer, uv_strerror(status));
        repl_primary_connected(false, fennec_wall_now());
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    conn_begin(c);
}

static void dial(uv_timer_t *t)
{
    stream_t *s = t->data;
    if (atomic_load(&s->stop) || s->conns)
        return;
    conn_t *c = conn_new(s);
    if (!c)
        return;
    snprintf(c->peer, sizeof(c->peer), "%s", s->cfg->primary.text);
    c->connect.data = c;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&s->cfg->primary.ss,
                            on_connected);
    if (rc < 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
}

/* ---- timers and wake-ups ------------------------------------------------------------------------
 */

static void on_tick(uv_timer_t *t)
{
    stream_t *s = t->data;
    uint64_t now = now_ms(s);
    repl_history_tick(fennec_wall_now());
    for (conn_t *c = s->conns, *nx; c; c = nx) {
        nx = c->next;
        if (c->closing || !c->connected)
            continue;
        if (c->paused) {
            /* Not reading: the primary's heartbeats wait in the socket, so its silence is
             * ours; ack on its behalf so that it knows this node is alive. */
            c->last_rx_ms = now;
            send_ack(c);
            continue;
        }
        if (now - c->last_rx_ms > STREAM_DEAD_MS) {
            conn_close(c, "silent for too long");
            continue;
        }
        if (s->primary && c->authed) {
            send_heartbeat(c);
            pump(c);
        }
    }
}

static void on_wake(uv_async_t *a)
{
    stream_t *s = a->data;
    if (atomic_load(&s->stop)) {
        for (conn_t *c = s->conns, *nx; c; c = nx) {
            nx = c->next;
            conn_close(c, "stopping");
        }
        if (s->listening)
            uv_close((uv_handle_t *)&s->listener, NULL);
        uv_close((uv_handle_t *)&s->tick, NULL);
        uv_close((uv_handle_t *)&s->reconnect, NULL);
        uv_close((uv_handle_t *)&s->wake, NULL);
        return;
    }
    bool announce = atomic_exchange(&s->announce_dirty, 0);
    for (conn_t *c = s->conns; c; c = c->next) {
        /* A drain elsewhere is checked against this view: it should not wait for a tick. */
        if (announce && c->authed && c->connected && !c->closing) {
            if (s->primary)
                send_heartbeat(c);
            else
                send_ack(c);
        }
        pump(c);
    }
}

static void on_announce(void *arg)
{
    stream_t *s = arg;
    atomic_store(&s->announce_dirty, 1);
    uv_async_send(&s->wake);
}

static void on_commit(uint64_t index, void *arg)
{
    (void)index;
    stream_t *s = arg;
    uv_async_send(&s->wake);
}

static void thread_main(void *arg)
{
    stream_t *s = arg;
    zone_reader_register();
    uv_run(&s->loop, UV_RUN_DEFAULT);
    zone_reader_unregister();
}

int stream_start(const cfg_t *cfg, const uint8_t *key, size_t keylen, stream_t **out, char *err,
                 size_t errlen)
{
    bool primary = cfg->role == CFG_ROLE_PRIMARY;
    *out = NULL;
    if (primary && !cfg->has_replication)
        return 0; /* a lone primary: nothing to stream */
    if (!key || keylen == 0 || keylen > sizeof(((stream_t *)0)->key)) {
        snprintf(err, errlen,
                 "replication needs cluster.key_file (the same key on every node: `openssl rand "
                 "-hex 32 > cluster.key`)");
        return FENNEC_ECONFIG;
    }
    stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = cfg;
    s->primary = primary;
    memcpy(s->key, key, keylen);
    s->keylen = keylen;
    int rc = uv_loop_init(&s->loop);
    if (rc) {
        free(s);
        return rc;
    }
    uv_async_init(&s->loop, &s->wake, on_wake);
    s->wake.data = s;
    uv_timer_init(&s->loop, &s->tick);
    s->tick.data = s;
    uv_timer_init(&s->loop, &s->reconnect);
    s->reconnect.data = s;
    if (primary) {
        uv_tcp_init(&s->loop, &s->listener);
        s->listener.data = s;
        rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&cfg->replication.ss, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
        if (rc) {
            snprintf(err, errlen, "listen.replication %s: %s", cfg->replication.text,
                     uv_strerror(rc));
            uv_close((uv_handle_t *)&s->listener, NULL);
            uv_close((uv_handle_t *)&s->wake, NULL);
            uv_close((uv_handle_t *)&s->tick, NULL);
            uv_close((uv_handle_t *)&s->reconnect, NULL);
            uv_run(&s->loop, UV_RUN_DEFAULT);
            uv_loop_close(&s->loop);
            free(s);
            return rc;
        }
        s->listening = true;
        log_info(MOD, "serving the journal on %s to member nodes", cfg->replication.text);
    } else {
        uv_timer_start(&s->reconnect, dial, 0, 0);
    }
    uv_timer_start(&s->tick, on_tick, STREAM_HEARTBEAT_MS, STREAM_HEARTBEAT_MS);
    change_on_commit(on_commit, s);
    repl_announce_hook_set(on_announce, s);
    if (uv_thread_create(&s->thread, thread_main, s) != 0) {
        change_on_commit(NULL, NULL);
        repl_announce_hook_set(NULL, NULL);
        snprintf(err, errlen, "cannot start the replication thread");
        atomic_store(&s->stop, 1);
        on_wake(&s->wake);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        free(s);
        return -EAGAIN;
    }
    s->started = true;
    *out = s;
    return 0;
}

void stream_stop(stream_t *s)
{
    if (!s)
        return;
    change_on_commit(NULL, NULL);
    repl_announce_hook_set(NULL, NULL);
    atomic_store(&s->stop, 1);
    uv_async_send(&s->wake);
    uv_thread_join(&s->thread);
    uv_loop_close(&s->loop);
    free(s);
}
