/*
 * fennec — the DNS workers: one thread per worker, each with its own uv loop, its own
 * SO_REUSEPORT UDP socket per listen address (recvmmsg/sendmmsg through uv_poll_t) and its
 * own TCP listener per address (RFC 7766). Answers come from query_answer().
 */
#ifndef FENNEC_SERVER_H
#define FENNEC_SERVER_H

#include "fennec/cfg.h"
#include "fennec/query.h"

typedef struct server server_t;

/* Creates the workers' sockets (binding every listen address; a bind error is returned
 * here, with the address in the log) without starting threads. CFG must outlive the server. */
int server_new(const cfg_t *cfg, server_t **out);

/* Starts the worker threads. */
int server_start(server_t *srv);

/* Asks every worker to stop, waits for them and closes their sockets. Idempotent. */
void server_stop(server_t *srv);

/* Frees a stopped server. server_free(NULL) is a no-op. */
void server_free(server_t *srv);

/* Number of worker threads. */
unsigned server_workers(const server_t *srv);

/* Counters summed over the workers (see docs/transport.md). */
/* Upper bounds of the UDP answer-latency histogram buckets, in microseconds; the last bucket
 * (+Inf) is implied. */
#define SERVER_LATENCY_BUCKETS 13
extern const uint32_t server_latency_bounds_us[SERVER_LATENCY_BUCKETS];

typedef struct server_stats {
    unsigned workers;
    uint64_t udp_received;     /* datagrams read */
    uint64_t udp_answered;     /* answers the kernel accepted */
    uint64_t udp_dropped;      /* answers dropped because the socket send buffer was full */
    uint64_t udp_send_errors;  /* answers the kernel refused for another reason */
    uint64_t udp_ignored;      /* read, not answered: oversized datagrams, responses, runts */
    uint64_t udp_kernel_drops; /* dropped by the kernel at a full receive queue (SO_RXQ_OVFL):
                                  where CUBIC's excess goes, never read */
    uint64_t udp_paced;        /* times reading stopped at the admitted rate (CUBIC) */
    uint64_t udp_shed_codel;   /* read, not parsed: queue delay too long (CoDel) */
    uint64_t udp_batches;      /* recvmmsg calls that returned datagrams */
    uint64_t udp_segmented;    /* answers that left in a segmented send (UDP_SEGMENT) */
    uint64_t udp_gso_refused;  /* groups the kernel refused to segment, sent one by one */
    uint64_t tcp_accepted;     /* connections accepted */
    uint64_t tcp_refused;      /* connections closed at once: max_connections reached */
    uint64_t tcp_open;         /* connections open now */
    uint64_t tcp_queries;      /* DNS messages read over TCP */
    uint64_t tcp_answered;     /* answers written (or queued) over TCP */
    uint64_t tcp_closed_idle;  /* connections closed by the idle timeout */
    uint64_t tcp_closed_bad;   /* connections closed for a bad length or a socket error */
    query_stats_t query;       /* the query engine's counters of every worker, summed */
    /* UDP answer latency, kernel arrival (SO_TIMESTAMPNS) to the answer handed to the
     * kernel: answers per bucket (not cumulative; the last is above every bound), and the
     * sum in nanoseconds. */
    uint64_t udp_latency[SERVER_LATENCY_BUCKETS + 1];
    uint64_t udp_latency_sum_ns;
} server_stats_t;

/*
 * Sums every worker's counters into OUT. Callable from any thread while the server runs:
 * the transport counters are read with relaxed atomic loads and the query engine's counters
 * with plain loads, without locks, so a snapshot may be slightly inconsistent (one counter
 * a few queries ahead of another). Counters are monotonic except tcp_open.
 */
void server_stats_get(const server_t *srv, server_stats_t *out);

/* Overload control state of one worker (docs/overload.md). Any thread; values may be a
 * moment old. */
typedef struct server_overload {
    double admitted_rate; /* CUBIC's admitted rate, qps (its maximum when not limiting) */
    double load;          /* smoothed load on the worker thread, 0..1 */
    uint64_t congestion_events;
    bool codel_dropping;    /* CoDel in its dropping state */
    uint64_t codel_entries; /* times CoDel entered the dropping state */
    bool small_rcvbuf;      /* on overload.udp_rcvbuf_congested */
} server_overload_t;

/* Fills OUT for worker I (< server_workers()); returns -EINVAL for another I. */
int server_overload_get(const server_t *srv, unsigned i, server_overload_t *out);

#endif
