/*
 * fennec — declarations shared by node/server.c, node/udp.c and node/tcp.c only.
 * Not a public header: nothing outside the transport includes it.
 */
#ifndef FENNEC_SERVER_INT_H
#define FENNEC_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "fennec/cfg.h"
#include "fennec/query.h"
#include "fennec/codel.h"
#include "fennec/cubic.h"
#include "fennec/server.h"

#define UDP_BATCH            64   /* datagrams per recvmmsg/sendmmsg */
#define UDP_RECV_SIZE        4096 /* bytes per receive slot; larger datagrams are ignored */
#define UDP_ANSWER_SIZE      4096 /* bytes per answer slot; the engine truncates to fit */
#define UDP_CTRL_SIZE        160  /* control bytes per message (timestamp, pktinfo, drops) */
#define UDP_OVERLOAD_HOLD_NS 1000000000ull /* overload mode lasts this long after a sign */
#define UDP_WARY_NS          10000000000ull /* after an overload, a deep queue alone is a sign of one */
#define UDP_COALESCE_MIN     4     /* datagrams the arrival rate must bring in a coalescing pause */
#define UDP_HINT_START       8     /* the lookahead parses the query this many places ahead, */
#define UDP_HINT_NEXT        4     /* and loads its node this many places ahead */
#define UDP_GSO_SEGS         64    /* answers per segmented send (the kernel allows 64 or more) */
#define UDP_GSO_SIZE         1232  /* larger answers go alone: a segment must fit any path's MTU */
#define UDP_GSO_BYTES        61440 /* bytes per segmented send (one IP packet before segmenting) */

#define TCP_MSG_MAX   65535                   /* largest DNS message over TCP */
#define TCP_READ_SIZE 65536                   /* the worker's shared read buffer */
#define TCP_OUT_SIZE  (2 * (2 + TCP_MSG_MAX)) /* answers coalesced per connection pass */
#define TCP_ROUND     64   /* queries answered per connection per pass (fairness) */
#define TCP_BACKLOG   1024 /* listen() backlog */
#define TCP_BUF_KEEP  4096 /* a connection keeps an emptied buffer up to this size */

/* The transport's counters per worker, written by the worker thread only. */
#define WORKER_STATS_FIELDS(X)                                                                     \
    X(udp_received)                                                                                \
    X(udp_answered)                                                                                \
    X(udp_dropped)                                                                                 \
    X(udp_send_errors)                                                                             \
    X(udp_ignored)                                                                                 \
    X(udp_kernel_drops)                                                                            \
    X(udp_paced)                                                                                   \
    X(udp_shed_codel)                                                                              \
    X(udp_batches)                                                                                 \
    X(udp_segmented)                                                                               \
    X(udp_gso_refused)                                                                             \
    X(tcp_accepted)                                                                                \
    X(tcp_refused)                                                                                 \
    X(tcp_open)                                                                                    \
    X(tcp_queries)                                                                                 \
    X(tcp_answered)                                                                                \
    X(tcp_closed_idle)                                                                             \
    X(tcp_closed_bad)

#define WORKER_STATS_DECLARE(name) uint64_t name;
typedef struct worker_stats {
    WORKER_STATS_FIELDS(WORKER_STATS_DECLARE)
} worker_stats_t;
#undef WORKER_STATS_DECLARE

/* Relaxed atomic load + store: a plain add on x86-64, yet race free for server_stats_get()
 * on another thread (only the owning worker ever writes). */
#define STAT_ADD(w, field, n)                                                                      \
    __atomic_store_n(&(w)->stats.field,                                                            \
                     __atomic_load_n(&(w)->stats.field, __ATOMIC_RELAXED) + (uint64_t)(n),         \
                     __ATOMIC_RELAXED)
#define STAT_GET(w, field) __atomic_load_n(&(w)->stats.field, __ATOMIC_RELAXED)

typedef struct worker worker_t;
typedef struct tcp_conn tcp_conn_t;

/* Receive and send vectors of one UDP batch, wired once per worker and reused. */
typedef union udp_ctrl {
    struct cmsghdr align;
    uint8_t buf[UDP_CTRL_SIZE];
} udp_ctrl_t;

typedef struct udp_batch {
    struct mmsghdr rmsg[UDP_BATCH];
    struct iovec riov[UDP_BATCH];
    struct sockaddr_storage peer[UDP_BATCH];
    udp_ctrl_t rctl[UDP_BATCH];
    struct mmsghdr smsg[UDP_BATCH];
    struct iovec siov[UDP_BATCH];
    udp_ctrl_t sctl[UDP_BATCH];
    uint8_t rbuf[UDP_BATCH][UDP_RECV_SIZE];
    uint8_t abuf[UDP_BATCH][UDP_ANSWER_SIZE];
    uint64_t arrival[UDP_BATCH];  /* kernel arrival time (CLOCK_REALTIME) of answer k */
    query_hint_t hint[UDP_BATCH]; /* lookahead of datagram i (query_hint_start()) */
    /* Answers of one size to one peer from one source leave in one segmented send. */
    struct mmsghdr gmsg[UDP_BATCH];
    struct iovec giov[UDP_BATCH];
    udp_ctrl_t gctl[UDP_BATCH];
    uint8_t group[UDP_BATCH];  /* group of answer k */
    uint8_t gcount[UDP_BATCH]; /* answers in group g */
    uint8_t gfirst[UDP_BATCH]; /* first answer of group g */
    uint8_t gnext[UDP_BATCH];  /* where group g's next answer goes in giov while filling */
    uint8_t gorder[UDP_BATCH]; /* answers in group order: giov[j] is answer gorder[j] */
} udp_batch_t;

/* One UDP socket of one worker for one listen address. */
typedef struct udp_sock {
    worker_t *w;
    const cfg_addr_t *addr;
    int fd;
    bool wildcard; /* bound to the any address: answers carry a pktinfo source */
    bool gso;      /* the kernel segments a send of equal-size answers (UDP_SEGMENT) */
    bool poll_init;
    uv_poll_t poll;
    uint32_t ovfl_seen; /* the kernel's drop count for this socket last seen */
} udp_sock_t;

/* One TCP listener of one worker for one listen address. */
typedef struct tcp_listener {
    worker_t *w;
    const cfg_addr_t *addr;
    int fd; /* -1 once the uv handle owns it */
    bool handle_init;
    uv_tcp_t tcp;
} tcp_listener_t;

/* Intrusive doubly linked list of connections. */
typedef struct tcp_link {
    tcp_conn_t *prev;
    tcp_conn_t *next;
} tcp_link_t;

struct worker {
    server_t *srv;
    const cfg_t *cfg;
    unsigned index;
    int cpu; /* CPU to pin to, or -1 */

    uv_loop_t loop;
    bool loop_init;
    uv_async_t stop_async;
    bool async_init;
    uv_thread_t thread;
    bool thread_started;
    bool stopping;

    query_ctx_t *qctx;

    size_t nsock; /* = cfg->dns_count */
    udp_sock_t *udp;
    tcp_listener_t *tcp;

    /* UDP batch vectors and buffers (heap: about 600 KiB). */
    udp_batch_t *batch;

    /* TCP: a shared read buffer (a read is consumed inside its callback), the coalescing
     * answer buffer of the connection being served, every open connection and the
     * connections with buffered work waiting for their turn (served from an idle handle). */
    uint8_t *tcp_in;
    uint8_t *tcp_out;
    size_t tcp_out_len;
    unsigned tcp_out_answers;
    tcp_conn_t *conns;
    tcp_conn_t *ready;
    uv_idle_t ready_idle;
    bool idle_init;

    /* Overload control (docs/overload.md), consulted by udp_batch_begin() and udp_admit()
     * in node/udp.c. Utilization is sampled from the loop's idle time per batch. */
    codel_t codel;
    cubic_t cubic;
    bool codel_on;
    bool cubic_on;
    uint64_t util_last_ns;
    uint64_t util_last_busy; /* CPU time + run-queue wait at util_last_ns */
    int schedstat_fd;        /* /proc/thread-self/schedstat of the worker thread, or -1 */
    uint64_t starve_last_ns; /* run-queue wait sampled every 20 ms */
    uint64_t starve_last_wait;
    bool starved;         /* waited for a CPU 40% of the last two samples or more */
    bool starved_prev;    /* the previous sample alone */
    uint64_t last_cpu_ns; /* last time the thread was short of CPU (starved, or paced) */
    /* Read pacing: past the admitted rate the worker stops reading its UDP sockets until
     * the budget refills, so the excess stays in (and is dropped by) the kernel queue. */
    int pace_fd; /* timerfd */
    uv_poll_t pace_poll;
    bool pace_init;
    bool paused;
    uint64_t last_short_ns; /* last sign of overload: budget ran out or CoDel dropping */
    /* Arrival rate for coalescing: datagrams read in the current window of about 10 ms. */
    uint64_t rate_since_ns;
    uint64_t rate_count;
    uint64_t rate_pps;
    bool small_rcvbuf; /* sockets on overload.udp_rcvbuf_congested */

    worker_stats_t stats;
    uint64_t latency[SERVER_LATENCY_BUCKETS + 1]; /* written by the worker (relaxed) */
    uint64_t latency_sum_ns;
};

/* node/server.c */

/* setsockopt() of one int; 0 or -errno. */
int server_setopt(int fd, int level, int name, int value);

/* A non-blocking socket of TYPE for ADDR's family, SO_REUSEPORT when asked, IPV6_V6ONLY off
 * for a wildcard address and on otherwise. Returns the fd or -errno. */
int server_socket_new(const cfg_addr_t *addr, int type, bool reuseport);

/* The last step of opening a socket from server_socket_new(): with RC 0 (its options went
 * well) binds FD to ADDR and returns FD; otherwise, or when the bind fails, closes FD and
 * returns the error (-errno). Options set before the bind apply to the first datagram. */
int server_socket_bind(int fd, const cfg_addr_t *addr, int rc);

/* node/udp.c */

/* Creates, configures and binds one UDP socket for ADDR; logs the effective receive buffer
 * once per process when LOG_RCVBUF is set. Returns the fd or a negative errno. */
int udp_socket_open(const cfg_addr_t *addr, uint32_t rcvbuf, bool log_rcvbuf);

/* Wires the batch vectors (once per worker). */
void udp_batch_wire(udp_batch_t *b);
/* Whether the kernel segments sends on FD (UDP_SEGMENT, Linux 4.18). */
bool udp_gso_usable(int fd);

/* Starts polling S on its worker's loop. */
int udp_sock_start(udp_sock_t *s);

/* Stops polling and closes the handle (the fd is closed by server_free()). */
void udp_sock_close(udp_sock_t *s);

/* The worker's UDP pacing timer: init once per worker, close when stopping. */
int udp_worker_init(worker_t *w);
void udp_worker_close(worker_t *w);

/* node/tcp.c */

/* Creates, configures, binds and listens on one TCP socket for ADDR. Returns the fd or a
 * negative errno. */
int tcp_socket_open(const cfg_addr_t *addr);

/* Initializes the worker's TCP state (buffers, idle handle). */
int tcp_worker_init(worker_t *w);

/* Frees the worker's TCP buffers (after its loop has finished). */
void tcp_worker_deinit(worker_t *w);

/* Hands L's fd to a uv_tcp_t on the worker's loop and starts accepting. */
int tcp_listener_start(tcp_listener_t *l);

/* Closes L's handle. */
void tcp_listener_close(tcp_listener_t *l);

/* Closes every connection of the worker and its idle handle (stop path). */
void tcp_worker_close_all(worker_t *w);

/* node/server.c */

/* Whether ADDR is the any address (IPv4 or IPv6). */
bool server_addr_is_wildcard(const cfg_addr_t *addr);

#endif
