/*
 * fennec — the UDP fast path: a uv_poll_t per socket, recvmmsg/sendmmsg batches over
 * vectors wired once per worker, the kernel's arrival time of every datagram
 * (SO_TIMESTAMPNS) for the overload control, and pktinfo so that an answer on a wildcard
 * socket leaves from the address the query was sent to.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "fennec/common.h"
#include "fennec/zone.h"
#include "server_int.h"

/* Either kind of destination address a datagram was sent to. */
typedef struct udp_dst {
    bool has4;
    bool has6;
    struct in_pktinfo pi4;
    struct in6_pktinfo pi6;
} udp_dst_t;

static void udp_set_rcvbuf(int fd, const cfg_addr_t *addr, uint32_t rcvbuf, bool log_it)
{
    if (rcvbuf == 0)
        return;
    /* The kernel doubles the value it is given; SO_RCVBUFFORCE passes rmem_max as root. */
    int want = rcvbuf > INT_MAX / 2 ? INT_MAX / 2 : (int)rcvbuf;
    bool forced = server_setopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, want) == 0;
    if (!forced)
        (void)server_setopt(fd, SOL_SOCKET, SO_RCVBUF, want);
    if (!log_it)
        return;
    int got = 0;
    socklen_t len = sizeof(got);
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) < 0)
        return;
    /* getsockopt reports the doubled size (data plus bookkeeping). */
    if ((uint64_t)got / 2 < rcvbuf)
        log_warn("udp",
                 "%s: receive buffer %d bytes, %u asked (raise net.core.rmem_max or "
                 "run as root)",
                 addr->text, got / 2, rcvbuf);
    else
        log_info("udp", "receive buffer %d bytes per socket%s", got / 2, forced ? " (forced)" : "");
}

int udp_socket_open(const cfg_addr_t *addr, uint32_t rcvbuf, bool log_rcvbuf)
{
    int rc = 0;
    int family = addr->ss.ss_family;
    bool wildcard = server_addr_is_wildcard(addr);
    int fd = server_socket_new(addr, SOCK_DGRAM, true);
    if (fd < 0)
        return fd;
    if ((rc = server_setopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1)) < 0)
        goto cleanup;
    /* The kernel's count of datagrams dropped at a full queue rides on every datagram. */
    if ((rc = server_setopt(fd, SOL_SOCKET, SO_RXQ_OVFL, 1)) < 0)
        goto cleanup;
    if (wildcard) {
        if (family == AF_INET6) {
            if ((rc = server_setopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)) < 0)
                goto cleanup;
        }
        /* On a dual-stack socket this gives IPv4 datagrams an IP_PKTINFO as well. */
        rc = server_setopt(fd, IPPROTO_IP, IP_PKTINFO, 1);
        if (rc < 0 && family == AF_INET)
            goto cleanup;
        rc = 0;
    }
    udp_set_rcvbuf(fd, addr, rcvbuf, log_rcvbuf);
cleanup:
    return server_socket_bind(fd, addr, rc);
}

void udp_batch_wire(udp_batch_t *b)
{
    memset(b->rmsg, 0, sizeof(b->rmsg));
    memset(b->smsg, 0, sizeof(b->smsg));
    for (size_t i = 0; i < UDP_BATCH; i++) {
        b->riov[i] = (struct iovec){.iov_base = b->rbuf[i], .iov_len = UDP_RECV_SIZE};
        struct msghdr *mh = &b->rmsg[i].msg_hdr;
        mh->msg_name = &b->peer[i];
        mh->msg_namelen = sizeof(b->peer[i]);
        mh->msg_iov = &b->riov[i];
        mh->msg_iovlen = 1;
        mh->msg_control = b->rctl[i].buf;
        mh->msg_controllen = sizeof(b->rctl[i].buf);
        struct msghdr *sh = &b->smsg[i].msg_hdr;
        sh->msg_iov = &b->siov[i];
        sh->msg_iovlen = 1;
    }
}

static uint64_t udp_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Reads the arrival time and the destination address from the control messages. */
static uint64_t udp_parse_cmsgs(struct msghdr *mh, uint64_t now_rt, udp_dst_t *dst, uint32_t *drops)
{
    uint64_t arrival = now_rt;

    dst->has4 = false;
    dst->has6 = false;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
            cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            arrival = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        } else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
                   cm->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            memcpy(&dst->pi4, CMSG_DATA(cm), sizeof(dst->pi4));
            dst->has4 = true;
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
                   cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            memcpy(&dst->pi6, CMSG_DATA(cm), sizeof(dst->pi6));
            dst->has6 = true;
        } else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL &&
                   cm->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            memcpy(drops, CMSG_DATA(cm), sizeof(*drops));
        }
    }
    /* A clock step can put the arrival in the future; no negative sojourn. */
    return arrival > now_rt ? now_rt : arrival;
}

/* Sets the answer's source to the query's destination; returns the control length. */
static size_t udp_build_src(udp_ctrl_t *ctl, const udp_dst_t *dst)
{
    struct cmsghdr *cm = &ctl->align;
    memset(ctl->buf, 0, sizeof(ctl->buf));
    if (dst->has4) {
        /* ifindex 0: the routing table picks the way out (anycast may be asymmetric). */
        struct in_pktinfo pi = {.ipi_ifindex = 0, .ipi_spec_dst = dst->pi4.ipi_addr};
        cm->cmsg_level = IPPROTO_IP;
        cm->cmsg_type = IP_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
        return CMSG_SPACE(sizeof(pi));
    }
    if (dst->has6) {
        struct in6_pktinfo pi = {.ipi6_addr = dst->pi6.ipi6_addr, .ipi6_ifindex = 0};
        /* A link-local source is only meaningful on the link it came in on. */
        if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
            pi.ipi6_ifindex = dst->pi6.ipi6_ifindex;
        cm->cmsg_level = IPPROTO_IPV6;
        cm->cmsg_type = IPV6_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
        return CMSG_SPACE(sizeof(pi));
    }
    return 0;
}

/* Verdict of the overload admission step for one datagram. */
typedef enum {
    UDP_ADMIT = 0,
    UDP_SHED_CODEL = 2, /* queue delay too long */
} udp_verdict_t;

/*
 * The time this worker thread has been running or waiting to run (on the run queue, or
 * throttled by a CPU quota) in nanoseconds: /proc/thread-self/schedstat's first two fields.
 * Time blocked in epoll is neither, so the share of wall time is the load on the thread, a
 * CPU quota included (libuv's idle time counts a throttled epoll_wait as idle). Without the
 * file it falls back to the loop's non-idle time.
 */
static void udp_load_sample(worker_t *w, uint64_t *run_ns, uint64_t *wait_ns)
{
    char buf[96];
    if (w->schedstat_fd >= 0) {
        ssize_t n = pread(w->schedstat_fd, buf, sizeof(buf) - 1, 0);
        if (n > 0) {
            buf[n] = 0;
            unsigned long long run = 0, wait = 0;
            if (sscanf(buf, "%llu %llu", &run, &wait) == 2) {
                *run_ns = run;
                *wait_ns = wait;
                return;
            }
        }
    }
    *run_ns = fennec_now_ns() - uv_metrics_idle_time(&w->loop);
    *wait_ns = 0;
}

/* Once per recvmmsg; EMPTIED when it returned fewer datagrams than asked (the socket queue
 * is empty: CoDel leaves its dropping state). NOW_NS is CLOCK_MONOTONIC. Every 20 ms the
 * thread's run-queue wait is sampled: a thread that waited for a CPU 40% of the time is
 * starved (a CPU quota, a machine busy with other work), which is what tells a sustained
 * overload from a burst on an idle server (the wake-up latency of a thread that sleeps and
 * wakes often adds some run-queue wait too, hence the high threshold). Every 100 ms CUBIC
 * gets the load (running + waiting share of wall time). */
static inline void udp_batch_begin(worker_t *w, uint64_t now_ns, bool emptied)
{
    /* Sampled here rather than from a timer so that a flood cannot starve the update. */
    if (now_ns - w->starve_last_ns >= 10000000ull) {
        uint64_t run, wait;
        udp_load_sample(w, &run, &wait);
        if (w->starve_last_ns) {
            /* Two samples in a row: a short competitor (the kernel's softirq thread during
             * a burst) is not a starved worker. */
            bool now_starved =
                (double)(wait - w->starve_last_wait) > 0.4 * (double)(now_ns - w->starve_last_ns);
            w->starved = now_starved && w->starved_prev;
            w->starved_prev = now_starved;
        }
        w->starve_last_wait = wait;
        w->starve_last_ns = now_ns;
        if (w->starved)
            w->last_cpu_ns = now_ns;
        if (w->cubic_on && now_ns - w->util_last_ns >= 100000000ull) {
            double load =
                (double)(run + wait - w->util_last_busy) / (double)(now_ns - w->util_last_ns);
            if (cubic_update(&w->cubic, load > 1 ? 1 : load, now_ns))
                log_debug("udp", "worker %u: load %.2f, admitted rate now %.0f qps", w->index, load,
                          cubic_rate(&w->cubic));
            w->util_last_busy = run + wait;
            w->util_last_ns = now_ns;
        }
    }
    if (w->codel_on && emptied)
        codel_queue_empty(&w->codel);
}

/* A sign of overload (see udp_rcvbuf_adjust()) less than WINDOW_NS ago: within the hold,
 * the worker is overloaded; within the wary window, a deep queue alone is a new sign. */
static inline bool udp_sign_within(const worker_t *w, uint64_t now_ns, uint64_t window_ns)
{
    return w->last_short_ns && now_ns - w->last_short_ns < window_ns;
}

/* Per datagram, before it is parsed, in arrival order. SOJOURN_NS is the time since the
 * kernel received it (SO_TIMESTAMPNS); NOW_NS is CLOCK_MONOTONIC. CUBIC does not appear
 * here: it limits how much udp_poll_cb() reads, so its excess never costs a read.
 * CoDel drops by the RFC 8289 control law, and while it is in its dropping state it also
 * drops every datagram that waited longer than the target: unlike a TCP flow, a DNS client
 * does not slow down when one of its packets is dropped, and an answer that late is worth
 * less than a fresh one (docs/overload.md). */
static inline udp_verdict_t udp_admit(worker_t *w, uint64_t sojourn_ns, uint64_t now_ns)
{
    /* A queue twice the target deep while the thread is starved of CPU is the first sign of
     * overload: the small receive buffer stops the queue from growing at once, long before
     * CoDel's interval has passed. A burst on an idle server is not starved: it stays in
     * the large buffer and is answered. Once overloaded, a datagram older than twice the
     * target is the backlog of the surge: dropped. */
    if (sojourn_ns > 2 * w->codel.target_ns &&
        (w->starved || udp_sign_within(w, now_ns, UDP_WARY_NS)))
        w->last_short_ns = now_ns;
    if (w->codel_on && sojourn_ns > 2 * w->codel.target_ns &&
        udp_sign_within(w, now_ns, UDP_OVERLOAD_HOLD_NS))
        return UDP_SHED_CODEL;
    /* CoDel follows every datagram (RFC 8289 state), but its drops apply only while the
     * thread is short of CPU (starved, or reading at CUBIC's limit) in the last second, and
     * then its dropping state drops every datagram above the target. A burst on an idle
     * server that takes longer than an interval to drain is answered in full. */
    bool cpu_bound = (w->last_cpu_ns && now_ns - w->last_cpu_ns < 1000000000ull) ||
                     !w->cubic_on; /* without CUBIC, plain CoDel on every standing queue */
    if (w->codel_on && codel_should_drop(&w->codel, sojourn_ns, now_ns) && cpu_bound)
        return UDP_SHED_CODEL;
    if (w->codel_on && cpu_bound && codel_dropping(&w->codel) && sojourn_ns > w->codel.target_ns)
        return UDP_SHED_CODEL;
    return UDP_ADMIT;
}

/* While overloaded the sockets get the small receive buffer, so that the kernel drops the
 * excess before anyone pays for reading it; back to the large one (bursts) a second after
 * the last sign of overload: the read budget ran out, a deep queue while the thread was
 * starved, or the small buffer overflowing. A standing queue alone (CoDel dropping) is not
 * a sign: a long burst on an idle server drains it and must not lose its tail. */
static void udp_rcvbuf_adjust(worker_t *w, uint64_t now_ns)
{
    uint32_t small = w->cfg->overload.udp_rcvbuf_congested;
    if (small == 0 || small >= w->cfg->overload.udp_rcvbuf)
        return;
    bool overloaded = udp_sign_within(w, now_ns, UDP_OVERLOAD_HOLD_NS);
    if (overloaded == w->small_rcvbuf)
        return;
    w->small_rcvbuf = overloaded;
    for (size_t j = 0; j < w->nsock; j++)
        udp_set_rcvbuf(w->udp[j].fd, w->udp[j].addr,
                       overloaded ? small : w->cfg->overload.udp_rcvbuf, false);
    log_debug("udp", "worker %u: %s receive buffer", w->index, overloaded ? "small" : "large");
}

static void udp_poll_cb(uv_poll_t *handle, int status, int events);

/* Stops reading the worker's UDP sockets for WAIT_NS (a timerfd: libuv's timers count in
 * milliseconds, too coarse for this). */
static void udp_pause(worker_t *w, uint64_t wait_ns)
{
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(wait_ns / 1000000000ull),
                                          .tv_nsec = (long)(wait_ns % 1000000000ull)}};
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec < 1000)
        its.it_value.tv_nsec = 1000;
    if (timerfd_settime(w->pace_fd, 0, &its, NULL) < 0)
        return; /* no pause rather than a stall */
    w->paused = true;
    for (size_t j = 0; j < w->nsock; j++)
        if (w->udp[j].poll_init)
            uv_poll_stop(&w->udp[j].poll);
}

const uint32_t server_latency_bounds_us[SERVER_LATENCY_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};

/* Answer latency of the COUNT answers just sent: one clock read per batch. */
static void udp_latency_record(worker_t *w, unsigned count)
{
    uint64_t now = udp_realtime_ns(), sum = 0;
    for (unsigned k = 0; k < count; k++) {
        uint64_t d = now > w->batch->arrival[k] ? now - w->batch->arrival[k] : 0;
        uint64_t us = d / 1000;
        unsigned i = 0;
        while (i < SERVER_LATENCY_BUCKETS && us > server_latency_bounds_us[i])
            i++;
        __atomic_store_n(&w->latency[i], __atomic_load_n(&w->latency[i], __ATOMIC_RELAXED) + 1,
                         __ATOMIC_RELAXED);
        sum += d;
    }
    __atomic_store_n(&w->latency_sum_ns,
                     __atomic_load_n(&w->latency_sum_ns, __ATOMIC_RELAXED) + sum, __ATOMIC_RELAXED);
}

/* Sends messages [0, count) of VEC with as few sendmmsg calls as the kernel allows; SEGS
 * (NULL: one each) gives the answers each message carries. Returns the index of a
 * segmented message (several answers) the kernel refused, with the error in *REFUSED, so
 * that its answers can go one by one: whatever the reason (a route MTU below the segment
 * size is EMSGSIZE on current kernels, EINVAL on older ones), they are not lost with it.
 * Otherwise returns COUNT. */
static unsigned udp_sendmmsg(worker_t *w, udp_sock_t *s, struct mmsghdr *vec, unsigned count,
                             const uint8_t *segs, int *refused)
{
    unsigned off = 0;

    while (off < count) {
        int n = sendmmsg(s->fd, vec + off, count - off, 0);
        if (n > 0) {
            uint64_t answers = (uint64_t)n;
            if (segs) {
                uint64_t segmented = 0;
                answers = 0;
                for (unsigned j = off; j < off + (unsigned)n; j++) {
                    answers += segs[j];
                    segmented += segs[j] > 1 ? segs[j] : 0;
                }
                if (segmented)
                    STAT_ADD(w, udp_segmented, segmented);
            }
            off += (unsigned)n;
            STAT_ADD(w, udp_answered, answers);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            /* Send buffer full: the rest of the batch is lost. */
            uint64_t lost = count - off;
            if (segs) {
                lost = 0;
                for (unsigned j = off; j < count; j++)
                    lost += segs[j];
            }
            STAT_ADD(w, udp_dropped, lost);
            return count;
        }
        if (n < 0 && segs && segs[off] > 1) {
            *refused = errno;
            return off;
        }
        /* The first remaining message was refused (unreachable peer, bad address): skip it. */
        log_debug("udp", "%s: sendmmsg: %s", s->addr->text, strerror(n < 0 ? errno : EIO));
        STAT_ADD(w, udp_send_errors, segs ? segs[off] : 1);
        off++;
    }
    return count;
}

/* Same peer, same source: the answers may share one segmented send. */
static bool udp_same_route(const struct msghdr *a, const struct msghdr *b)
{
    return a->msg_namelen == b->msg_namelen && a->msg_controllen == b->msg_controllen &&
           memcmp(a->msg_name, b->msg_name, a->msg_namelen) == 0 &&
           (a->msg_controllen == 0 ||
            memcmp(a->msg_control, b->msg_control, a->msg_controllen) == 0);
}

/*
 * Groups answers [0, count) by peer, source and size into b->gmsg: a group of several is one
 * message whose UDP_SEGMENT control tells the kernel to cut it into datagrams of that size,
 * so that the route lookup, the IP output and, on loopback, the IP input are paid once per
 * group (docs/transport.md). Answers to one peer may leave in another order than they came,
 * which UDP never promised. Returns the number of groups, or 0 when no two answers share one.
 */
static unsigned udp_group(udp_batch_t *b, unsigned count)
{
    unsigned ng = 0;

    for (unsigned k = 0; k < count; k++) {
        size_t size = b->siov[k].iov_len;
        unsigned g = ng;
        if (size <= UDP_GSO_SIZE) {
            for (unsigned j = 0; j < ng; j++) {
                unsigned f = b->gfirst[j];
                if (b->siov[f].iov_len == size && b->gcount[j] < UDP_GSO_SEGS &&
                    (b->gcount[j] + 1u) * size <= UDP_GSO_BYTES &&
                    udp_same_route(&b->smsg[k].msg_hdr, &b->smsg[f].msg_hdr)) {
                    g = j;
                    break;
                }
            }
        }
        if (g == ng) {
            b->gfirst[ng] = (uint8_t)k;
            b->gcount[ng] = 0;
            ng++;
        }
        b->gcount[g]++;
        b->group[k] = (uint8_t)g;
    }
    if (ng == count)
        return 0;

    unsigned start = 0;
    for (unsigned g = 0; g < ng; g++) {
        b->gnext[g] = (uint8_t)start;
        start += b->gcount[g];
    }
    for (unsigned k = 0; k < count; k++) {
        unsigned j = b->gnext[b->group[k]]++;
        b->giov[j] = b->siov[k];
        b->gorder[j] = (uint8_t)k;
    }
    for (unsigned g = 0; g < ng; g++) {
        const struct msghdr *first = &b->smsg[b->gfirst[g]].msg_hdr;
        struct msghdr *mh = &b->gmsg[g].msg_hdr;
        *mh = *first;
        mh->msg_iov = &b->giov[b->gnext[g] - b->gcount[g]];
        mh->msg_iovlen = b->gcount[g];
        if (b->gcount[g] == 1)
            continue;
        /* The source pktinfo (if any) and then the segment size. */
        udp_ctrl_t *ctl = &b->gctl[g];
        size_t clen = first->msg_controllen;
        memset(ctl->buf, 0, sizeof(ctl->buf));
        if (clen)
            memcpy(ctl->buf, first->msg_control, clen);
        struct cmsghdr *cm = (struct cmsghdr *)(ctl->buf + clen);
        uint16_t seg = (uint16_t)b->giov[b->gnext[g] - 1].iov_len;
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(seg));
        memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
        mh->msg_control = ctl->buf;
        mh->msg_controllen = clen + CMSG_SPACE(sizeof(seg));
    }
    return ng;
}

/* Sends answers [0, count): grouped into segmented sends where the socket allows it. */
static void udp_send_batch(worker_t *w, udp_sock_t *s, unsigned count)
{
    udp_batch_t *b = w->batch;
    unsigned ng = s->gso && count > 1 ? udp_group(b, count) : 0;

    int refused = 0;

    if (ng == 0) {
        (void)udp_sendmmsg(w, s, b->smsg, count, NULL, &refused);
        return;
    }
    unsigned off = 0;
    while (off < ng) {
        off += udp_sendmmsg(w, s, b->gmsg + off, ng - off, b->gcount + off, &refused);
        if (off >= ng)
            break;
        /* Group OFF could not be segmented (the kernel or the route refuses it): its answers
         * go one by one. A kernel without the option or a device without checksum offload
         * refuses every group: stop trying on this socket. */
        if (refused == EIO || refused == ENOPROTOOPT || refused == EOPNOTSUPP) {
            log_info("udp", "%s: segmented sends refused (%s), sending one by one", s->addr->text,
                     strerror(refused));
            s->gso = false;
        }
        STAT_ADD(w, udp_gso_refused, 1);
        unsigned first = b->gnext[off] - b->gcount[off];
        for (unsigned j = first; j < b->gnext[off]; j++)
            (void)udp_sendmmsg(w, s, &b->smsg[b->gorder[j]], 1, NULL, &refused);
        off++;
    }
}

bool udp_gso_usable(int fd)
{
    /* Setting the default segment size to 0 (none) fails where the kernel lacks UDP_SEGMENT. */
    return server_setopt(fd, SOL_UDP, UDP_SEGMENT, 0) == 0;
}

/* One recvmmsg of at most MAX datagrams + answers + sendmmsg. Returns the number read. */
static int udp_batch_run(worker_t *w, udp_sock_t *s, unsigned max)
{
    udp_batch_t *b = w->batch;
    int n;

    for (size_t i = 0; i < UDP_BATCH; i++) {
        b->rmsg[i].msg_hdr.msg_namelen = sizeof(b->peer[i]);
        b->rmsg[i].msg_hdr.msg_controllen = sizeof(b->rctl[i].buf);
        b->rmsg[i].msg_hdr.msg_flags = 0;
    }
    do {
        n = recvmmsg(s->fd, b->rmsg, max, 0, NULL);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            log_debug("udp", "%s: recvmmsg: %s", s->addr->text, strerror(errno));
        udp_batch_begin(w, fennec_now_ns(), true);
        return 0;
    }

    uint64_t now_rt = udp_realtime_ns();
    uint64_t now = fennec_now_ns();
    uint64_t ignored = 0, shed_codel = 0;
    uint32_t drops = s->ovfl_seen;
    unsigned k = 0;

    udp_batch_begin(w, now, (unsigned)n < max);
    if (w->cubic_on)
        cubic_consume(&w->cubic, (uint32_t)n);
    /* One read-side section for the batch, so that the lookahead of a query a few places
     * ahead (UDP_HINT_START, then UDP_HINT_NEXT) works on the zones its answer will use:
     * the cache misses of several lookups overlap instead of adding up. */
    zone_read_lock();
    const zone_set_t *set = zone_set_current();
    for (int j = 0; j < n && j < UDP_HINT_START; j++) {
        query_hint_start(set, b->rbuf[j], b->rmsg[j].msg_len, &b->hint[j]);
        if (j < UDP_HINT_NEXT)
            query_hint_next(&b->hint[j]);
    }
    for (int i = 0; i < n; i++) {
        struct msghdr *mh = &b->rmsg[i].msg_hdr;
        size_t len = b->rmsg[i].msg_len;
        udp_dst_t dst;

        if (i + UDP_HINT_START < n)
            query_hint_start(set, b->rbuf[i + UDP_HINT_START], b->rmsg[i + UDP_HINT_START].msg_len,
                             &b->hint[i + UDP_HINT_START]);
        if (i + UDP_HINT_NEXT < n)
            query_hint_next(&b->hint[i + UDP_HINT_NEXT]);

        uint64_t arrival = udp_parse_cmsgs(mh, now_rt, &dst, &drops);
        if (mh->msg_flags & MSG_TRUNC) {
            ignored++; /* larger than any query fennec answers */
            continue;
        }
        switch (udp_admit(w, now_rt - arrival, now)) {
        case UDP_ADMIT:
            break;
        case UDP_SHED_CODEL:
            shed_codel++;
            continue;
        }
        query_ctx_set_peer(w->qctx, (const struct sockaddr *)&b->peer[i]);
        size_t alen =
            query_answer_set(w->qctx, set, b->rbuf[i], len, b->abuf[k], UDP_ANSWER_SIZE, QUERY_UDP);
        if (alen == 0 || alen > UDP_ANSWER_SIZE) {
            ignored++;
            continue;
        }
        struct msghdr *sh = &b->smsg[k].msg_hdr;
        sh->msg_name = &b->peer[i];
        sh->msg_namelen = mh->msg_namelen;
        b->siov[k].iov_base = b->abuf[k];
        b->siov[k].iov_len = alen;
        b->arrival[k] = arrival;
        size_t clen = s->wildcard ? udp_build_src(&b->sctl[k], &dst) : 0;
        sh->msg_control = clen ? b->sctl[k].buf : NULL;
        sh->msg_controllen = clen;
        sh->msg_flags = 0;
        k++;
    }
    zone_read_unlock();
    STAT_ADD(w, udp_received, n);
    STAT_ADD(w, udp_batches, 1);
    if (ignored)
        STAT_ADD(w, udp_ignored, ignored);
    if (drops != s->ovfl_seen) {
        STAT_ADD(w, udp_kernel_drops, (uint32_t)(drops - s->ovfl_seen));
        s->ovfl_seen = drops;
        /* The small buffer overflowing means the overload goes on. */
        if (w->small_rcvbuf)
            w->last_short_ns = now;
    }
    if (shed_codel)
        STAT_ADD(w, udp_shed_codel, shed_codel);
    if (k > 0) {
        udp_send_batch(w, s, k);
        udp_latency_record(w, k);
    }
    return n;
}

static void udp_poll_cb(uv_poll_t *handle, int status, int events)
{
    udp_sock_t *s = handle->data;
    worker_t *w = s->w;

    (void)events;
    if (status < 0) {
        log_warn("udp", "%s: poll: %s", s->addr->text, uv_strerror(status));
        return;
    }
    /* At most overload.codel.backlog datagrams per pass, then back to the loop so that TCP
     * and timers get their turn; level-triggered: what is left wakes the loop again. */
    uint32_t bound = w->cfg->overload.codel_backlog ? w->cfg->overload.codel_backlog : 1;
    int total = 0;
    while ((uint32_t)total < bound) {
        uint32_t max = bound - (uint32_t)total < UDP_BATCH ? bound - (uint32_t)total : UDP_BATCH;
        if (w->cubic_on) {
            uint64_t now = fennec_now_ns();
            uint32_t avail = cubic_available(&w->cubic, now);
            if (avail == 0) {
                w->last_short_ns = now;
                w->last_cpu_ns = now;
                STAT_ADD(w, udp_paced, 1);
                udp_rcvbuf_adjust(w, now);
                /* Wait for half a batch: reading a few at a time costs more per query. */
                udp_pause(w, cubic_wait_ns(&w->cubic, UDP_BATCH / 2, now));
                return;
            }
            if (avail < max)
                max = avail;
        }
        int n = udp_batch_run(w, s, max);
        total += n;
        if (n < (int)max)
            break;
    }
    uint64_t now = fennec_now_ns();
    udp_rcvbuf_adjust(w, now);
    w->rate_count += (uint64_t)total;
    if (now - w->rate_since_ns >= 10000000ull) {
        w->rate_pps = w->rate_count * 1000000000ull / (now - w->rate_since_ns);
        w->rate_count = 0;
        w->rate_since_ns = now;
    }
    /* A few datagrams per wakeup at a steady rate: wait a little so that the next wakeup
     * finds a fuller batch (fewer syscalls and wakeups per query, for us and the client,
     * and larger segmented sends). Only when the rate fills the pause with a few
     * datagrams: at a low rate the wait would add latency and save nothing. */
    uint64_t co = w->cfg->overload.udp_coalesce_ns;
    if (co && total > 0 && total < UDP_BATCH && !w->paused &&
        w->rate_pps * co >= UDP_COALESCE_MIN * 1000000000ull)
        udp_pause(w, co);
}

static void udp_resume_cb(uv_poll_t *handle, int status, int events)
{
    worker_t *w = handle->data;
    uint64_t expirations;
    (void)status;
    (void)events;
    if (read(w->pace_fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
        return; /* woken without an expiry */
    w->paused = false;
    if (w->stopping)
        return;
    for (size_t j = 0; j < w->nsock; j++)
        if (w->udp[j].poll_init && !uv_is_closing((uv_handle_t *)&w->udp[j].poll))
            uv_poll_start(&w->udp[j].poll, UV_READABLE, udp_poll_cb);
}

int udp_worker_init(worker_t *w)
{
    w->pace_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->pace_fd < 0)
        return -errno;
    int rc = uv_poll_init(&w->loop, &w->pace_poll, w->pace_fd);
    if (rc < 0)
        return rc;
    w->pace_init = true;
    w->pace_poll.data = w;
    return uv_poll_start(&w->pace_poll, UV_READABLE, udp_resume_cb);
}

static void udp_pace_closed(uv_handle_t *handle)
{
    worker_t *w = handle->data;
    close(w->pace_fd);
    w->pace_fd = -1;
}

void udp_worker_close(worker_t *w)
{
    if (w->pace_init && !uv_is_closing((uv_handle_t *)&w->pace_poll))
        uv_close((uv_handle_t *)&w->pace_poll, udp_pace_closed);
    else if (!w->pace_init && w->pace_fd >= 0) {
        close(w->pace_fd);
        w->pace_fd = -1;
    }
}

int udp_sock_start(udp_sock_t *s)
{
    int rc = uv_poll_init(&s->w->loop, &s->poll, s->fd);
    if (rc < 0)
        return rc;
    s->poll_init = true;
    s->poll.data = s;
    return uv_poll_start(&s->poll, UV_READABLE, udp_poll_cb);
}

void udp_sock_close(udp_sock_t *s)
{
    if (!s->poll_init || uv_is_closing((uv_handle_t *)&s->poll))
        return;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, NULL);
}
