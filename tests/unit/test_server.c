/*
 * Unit tests for the DNS workers (node/server.c, udp.c, tcp.c): a real server on loopback
 * ports 15410-15419 answering from the built-in zone, queried over UDP and TCP sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fennec/change.h"
#include "fennec/common.h"
#include "fennec/server.h"
#include "fennec/zone.h"

#define PORT_V4       15410
#define PORT_V6       15411
#define PORT_WILD     15412
#define PORT_LIMIT    15413
#define PORT_FLOOD    15415
#define PORT_BOUND    15416
#define PORT_STATS    15417
#define IDLE_MS       300
#define MAX_INFLIGHT  8
#define IO_TIMEOUT_MS 3000

static cfg_t g_cfg;
static cfg_addr_t g_addrs[3];
static server_t *g_srv;

static void addr_set(cfg_addr_t *a, const char *ip, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->text, sizeof(a->text), strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a->ss;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
        a->len = sizeof(*s);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)&a->ss;
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
        a->len = sizeof(*s);
    }
}

static void cfg_set(cfg_t *cfg, cfg_addr_t *addrs, size_t count, unsigned workers)
{
    cfg_t *defaults = NULL;
    memset(cfg, 0, sizeof(*cfg));
    /* The overload defaults come from the real config code. */
    if (cfg_default(&defaults) == 0) {
        cfg->overload = defaults->overload;
        cfg_free(defaults);
    }
    cfg->dns = addrs;
    cfg->dns_count = count;
    cfg->workers = workers;
    cfg->overload.udp_rcvbuf = 1 << 20;
    cfg->tcp.idle_timeout_ms = IDLE_MS;
    cfg->tcp.max_connections = 64;
    cfg->tcp.max_inflight = MAX_INFLIGHT;
}

/* A query for NAME/A with id ID, in wire format; returns its length. */
static size_t make_query(uint8_t *buf, uint16_t id, const char *name)
{
    size_t pos = 12;
    memset(buf, 0, 12);
    buf[0] = (uint8_t)(id >> 8);
    buf[1] = (uint8_t)id;
    buf[2] = 0x01; /* RD */
    buf[5] = 1;    /* QDCOUNT */
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        buf[pos++] = (uint8_t)l;
        memcpy(buf + pos, p, l);
        pos += l;
        p += l + (dot ? 1 : 0);
    }
    buf[pos++] = 0;
    buf[pos++] = 0;
    buf[pos++] = 1; /* A */
    buf[pos++] = 0;
    buf[pos++] = 1; /* IN */
    return pos;
}

/* An answer to query ID: id matches, QR and AA set, NOERROR, at least one answer RR. */
static void check_answer(const uint8_t *ans, size_t len, uint16_t id)
{
    assert_true(len >= 12);
    assert_int_equal(((unsigned)ans[0] << 8) | ans[1], id);
    assert_true(ans[2] & 0x80); /* QR */
    assert_true(ans[2] & 0x04); /* AA */
    assert_int_equal(ans[3] & 0x0f, 0);
    assert_true((((unsigned)ans[6] << 8) | ans[7]) >= 1);
}

static int wait_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms);
}

static uint64_t ms_now(void)
{
    return fennec_now_ns() / 1000000u;
}

static int udp_client(int family)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    return fd;
}

static void sockaddr_make(struct sockaddr_storage *ss, socklen_t *len, const char *ip,
                          uint16_t port)
{
    cfg_addr_t a;
    addr_set(&a, ip, port);
    *ss = a.ss;
    *len = a.len;
}

/* A server of its own for one test (one at a time: the config is static, and a server
 * keeps pointing at it): one worker on 127.0.0.1:PORT, the test's config with TWEAK
 * applied, started. */
typedef void (*cfg_tweak_fn)(cfg_t *cfg);

static server_t *own_server(uint16_t port, cfg_tweak_fn tweak)
{
    static cfg_t cfg;
    static cfg_addr_t addr;
    server_t *srv = NULL;
    addr_set(&addr, "127.0.0.1", port);
    cfg_set(&cfg, &addr, 1, 1);
    tweak(&cfg);
    assert_int_equal(server_new(&cfg, &srv), 0);
    assert_int_equal(server_start(srv), 0);
    return srv;
}

static void own_server_free(server_t *srv)
{
    server_stop(srv);
    server_free(srv);
}

static void long_idle(cfg_t *cfg)
{
    cfg->tcp.idle_timeout_ms = 5000;
}

static void two_connections(cfg_t *cfg)
{
    cfg->tcp.max_connections = 2;
}

static void pass_of_eight(cfg_t *cfg)
{
    cfg->overload.codel_backlog = 8;
}

/* Sends one query over UDP to IP:PORT and checks the answer and its source address. */
static void udp_roundtrip(const char *ip, uint16_t port, uint16_t id)
{
    struct sockaddr_storage to, from;
    socklen_t tolen, fromlen = sizeof(from);
    uint8_t q[512], ans[4096];

    sockaddr_make(&to, &tolen, ip, port);
    int fd = udp_client(to.ss_family);
    size_t qlen = make_query(q, id, "www.example.com");
    assert_int_equal(sendto(fd, q, qlen, 0, (struct sockaddr *)&to, tolen), (ssize_t)qlen);
    assert_int_equal(wait_readable(fd, IO_TIMEOUT_MS), 1);
    ssize_t n = recvfrom(fd, ans, sizeof(ans), 0, (struct sockaddr *)&from, &fromlen);
    assert_true(n > 0);
    check_answer(ans, (size_t)n, id);
    /* The answer leaves from the address the query was sent to. */
    assert_int_equal(from.ss_family, to.ss_family);
    if (to.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&to;
        const struct sockaddr_in *b = (const struct sockaddr_in *)&from;
        assert_int_equal(a->sin_addr.s_addr, b->sin_addr.s_addr);
        assert_int_equal(a->sin_port, b->sin_port);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&to;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&from;
        assert_memory_equal(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr));
        assert_int_equal(a->sin6_port, b->sin6_port);
    }
    close(fd);
}

static int tcp_connect(const char *ip, uint16_t port)
{
    struct sockaddr_storage to;
    socklen_t tolen;
    sockaddr_make(&to, &tolen, ip, port);
    int fd = socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, tolen), 0);
    return fd;
}

static void send_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Reads exactly LEN bytes; returns 0, or -1 on EOF/reset/timeout. */
static int recv_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        if (wait_readable(fd, IO_TIMEOUT_MS) != 1)
            return -1;
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one framed answer and checks it. */
static void tcp_expect(int fd, uint16_t id)
{
    uint8_t len[2], ans[65535];
    assert_int_equal(recv_all(fd, len, 2), 0);
    size_t l = ((size_t)len[0] << 8) | len[1];
    assert_true(l >= 12);
    assert_int_equal(recv_all(fd, ans, l), 0);
    check_answer(ans, l, id);
}

/* Frames a query into BUF (2-byte length + message); returns the framed length. */
static size_t frame_query(uint8_t *buf, uint16_t id)
{
    size_t n = make_query(buf + 2, id, "www.example.com");
    buf[0] = (uint8_t)(n >> 8);
    buf[1] = (uint8_t)n;
    return n + 2;
}

/* Whether the server closed FD within MS milliseconds (EOF or reset). */
static bool closed_within(int fd, int ms)
{
    uint8_t b[16];
    if (wait_readable(fd, ms) != 1)
        return false;
    ssize_t n = recv(fd, b, sizeof(b), 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    change_result_t res;

    /* The zone is served through the write path, as fennecd serves it at start. */
    log_set_level(LOG_LEVEL_WARN);
    static cfg_zone_t zones[1] = {{.name = "example.com", .text = (char *)zone_builtin_example}};
    cfg_t zcfg = {.zones = zones, .zone_count = 1};
    change_t load = {.kind = CHANGE_LOAD, .cfg = &zcfg, .source = "test"};
    zone_reader_register();
    if (change_submit(&load, &res, err, sizeof(err)) != 0 || res.failed) {
        fprintf(stderr, "zone: %s\n", err);
        return -1;
    }

    addr_set(&g_addrs[0], "127.0.0.1", PORT_V4);
    addr_set(&g_addrs[1], "::1", PORT_V6);
    addr_set(&g_addrs[2], "::", PORT_WILD);
    cfg_set(&g_cfg, g_addrs, 3, 2);
    if (server_new(&g_cfg, &g_srv) != 0)
        return -1;
    if (server_start(g_srv) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    server_stop(g_srv);
    server_stop(g_srv); /* idempotent */
    server_free(g_srv);
    g_srv = NULL;
    change_shutdown();
    zone_reader_unregister();
    return 0;
}

static void test_workers(void **state)
{
    (void)state;
    assert_int_equal(server_workers(g_srv), 2);
}

static void test_udp_v4_v6(void **state)
{
    (void)state;
    udp_roundtrip("127.0.0.1", PORT_V4, 0x1001);
    udp_roundtrip("::1", PORT_V6, 0x1002);
}

static void test_udp_wildcard_source(void **state)
{
    (void)state;
    /* Without IP_PKTINFO the kernel would answer 127.0.0.2 from 127.0.0.1. */
    udp_roundtrip("127.0.0.2", PORT_WILD, 0x2001);
    udp_roundtrip("127.0.0.1", PORT_WILD, 0x2002);
    udp_roundtrip("::1", PORT_WILD, 0x2003);
    udp_roundtrip("::ffff:127.0.0.3", PORT_WILD, 0x2004);
}

/* Sends COUNT queries in one sendmmsg from one socket to IP:PORT (names of a few answer
 * sizes, several of each) and checks that every answer arrives as its own datagram, once,
 * echoing its own question, from the address the queries went to. */
static void udp_burst(const char *ip, uint16_t port, uint16_t idbase, unsigned count)
{
    static const char *const names[] = {"www.example.com",    "ns1.example.com",
                                        "ns2.example.com",    "mail.example.com",
                                        "a.apps.example.com", "bbbb.apps.example.com"};
    struct sockaddr_storage to;
    socklen_t tolen;
    uint8_t q[64][128];
    size_t qlen[64];
    struct mmsghdr mm[64];
    struct iovec iov[64];
    bool seen[64] = {false};

    assert_true(count <= 64);
    sockaddr_make(&to, &tolen, ip, port);
    int fd = udp_client(to.ss_family);
    memset(mm, 0, sizeof(mm));
    for (unsigned i = 0; i < count; i++) {
        qlen[i] = make_query(q[i], (uint16_t)(idbase + i), names[i % 6]);
        iov[i] = (struct iovec){.iov_base = q[i], .iov_len = qlen[i]};
        mm[i].msg_hdr.msg_name = &to;
        mm[i].msg_hdr.msg_namelen = tolen;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    assert_int_equal(sendmmsg(fd, mm, count, 0), (int)count);
    for (unsigned got = 0; got < count; got++) {
        uint8_t ans[4096];
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        assert_int_equal(wait_readable(fd, IO_TIMEOUT_MS), 1);
        ssize_t n = recvfrom(fd, ans, sizeof(ans), 0, (struct sockaddr *)&from, &fromlen);
        assert_true(n >= 12);
        unsigned id = ((unsigned)ans[0] << 8) | ans[1];
        assert_true(id >= idbase && id < idbase + count);
        unsigned i = id - idbase;
        assert_false(seen[i]);
        seen[i] = true;
        check_answer(ans, (size_t)n, (uint16_t)id);
        /* The question (name, type, class) is this query's own. */
        assert_true((size_t)n >= qlen[i]);
        assert_memory_equal(ans + 12, q[i] + 12, qlen[i] - 12);
        assert_int_equal(fromlen, tolen);
        assert_memory_equal(&from, &to, tolen);
    }
    close(fd);
}

/* Answers of one size to one client leave in segmented sends: each still arrives as its own
 * datagram, over IPv4, IPv6 and the wildcard socket (a pktinfo source and a segment size in
 * one send). */
static void test_udp_segmented(void **state)
{
    (void)state;
    static const struct {
        const char *ip;
        uint16_t port;
    } to[] = {{"127.0.0.1", PORT_V4}, {"::1", PORT_V6}, {"127.0.0.2", PORT_WILD}};
    for (size_t t = 0; t < sizeof(to) / sizeof(to[0]); t++) {
        server_stats_t before, after;
        server_stats_get(g_srv, &before);
        /* The server may wake before the whole burst is queued and read it in small pieces;
         * a few rounds make sure that some batch held several answers of one size. */
        for (unsigned round = 0; round < 20; round++) {
            udp_burst(to[t].ip, to[t].port, (uint16_t)(0xc000 + 64 * round), 64);
            server_stats_get(g_srv, &after);
            if (after.udp_segmented > before.udp_segmented + 64)
                break;
        }
        assert_true(after.udp_segmented > before.udp_segmented + 64);
        assert_int_equal(after.udp_dropped, before.udp_dropped);
        assert_int_equal(after.udp_send_errors, before.udp_send_errors);
    }
}

static void test_udp_response_ignored(void **state)
{
    (void)state;
    struct sockaddr_storage to;
    socklen_t tolen;
    uint8_t q[512], ans[512];
    sockaddr_make(&to, &tolen, "127.0.0.1", PORT_V4);
    int fd = udp_client(AF_INET);
    size_t qlen = make_query(q, 0x3001, "www.example.com");
    q[2] |= 0x80; /* a response: never answered */
    assert_int_equal(sendto(fd, q, qlen, 0, (struct sockaddr *)&to, tolen), (ssize_t)qlen);
    q[2] &= 0x7f;
    q[1] = 0x02;
    assert_int_equal(sendto(fd, q, qlen, 0, (struct sockaddr *)&to, tolen), (ssize_t)qlen);
    assert_int_equal(wait_readable(fd, IO_TIMEOUT_MS), 1);
    ssize_t n = recv(fd, ans, sizeof(ans), 0);
    check_answer(ans, (size_t)n, 0x3002); /* the first answer is the second query's */
    close(fd);
}

static void test_tcp_basic(void **state)
{
    (void)state;
    const char *ips[] = {"127.0.0.1", "::1", "127.0.0.2", "::1"};
    uint16_t ports[] = {PORT_V4, PORT_V6, PORT_WILD, PORT_WILD};
    for (size_t i = 0; i < 4; i++) {
        uint8_t buf[600];
        int fd = tcp_connect(ips[i], ports[i]);
        send_all(fd, buf, frame_query(buf, (uint16_t)(0x4000 + i)));
        tcp_expect(fd, (uint16_t)(0x4000 + i));
        close(fd);
    }
}

static void test_tcp_pipelined(void **state)
{
    (void)state;
    uint8_t buf[1200];
    int fd = tcp_connect("127.0.0.1", PORT_V4);
    size_t n = frame_query(buf, 0x5001);
    n += frame_query(buf + n, 0x5002);
    send_all(fd, buf, n); /* both in one write */
    tcp_expect(fd, 0x5001);
    tcp_expect(fd, 0x5002);
    close(fd);
}

static void test_tcp_split_prefix(void **state)
{
    (void)state;
    uint8_t buf[600];
    int fd = tcp_connect("127.0.0.1", PORT_V4);
    size_t n = frame_query(buf, 0x6001);
    struct timespec pause = {0, 50 * 1000000};
    send_all(fd, buf, 1); /* half of the length prefix */
    nanosleep(&pause, NULL);
    send_all(fd, buf + 1, 5);
    nanosleep(&pause, NULL);
    send_all(fd, buf + 6, n - 6);
    tcp_expect(fd, 0x6001);
    close(fd);
}

static void test_tcp_many_pipelined(void **state)
{
    (void)state;
    /* More queries than one turn (64) and than max_inflight, in one write. */
    enum { N = 300 };
    uint8_t *buf = malloc(N * 40);
    assert_non_null(buf);
    size_t n = 0;
    for (unsigned i = 0; i < N; i++)
        n += frame_query(buf + n, (uint16_t)(0x7000 + i));
    int fd = tcp_connect("127.0.0.1", PORT_V4);
    send_all(fd, buf, n);
    for (unsigned i = 0; i < N; i++)
        tcp_expect(fd, (uint16_t)(0x7000 + i));
    free(buf);
    close(fd);
}

static void test_tcp_idle_timeout(void **state)
{
    (void)state;
    int fd = tcp_connect("127.0.0.1", PORT_V4);
    uint64_t t0 = ms_now();
    assert_true(closed_within(fd, IO_TIMEOUT_MS));
    uint64_t dt = ms_now() - t0;
    assert_true(dt >= IDLE_MS - 50);
    assert_true(dt < IO_TIMEOUT_MS);
    close(fd);

    /* Activity resets the timer: a query at 2/3 of the timeout keeps it open past it. */
    uint8_t buf[600];
    struct timespec pause = {0, (IDLE_MS * 2 / 3) * 1000000L};
    fd = tcp_connect("127.0.0.1", PORT_V4);
    t0 = ms_now();
    nanosleep(&pause, NULL);
    send_all(fd, buf, frame_query(buf, 0x8001));
    tcp_expect(fd, 0x8001);
    assert_true(closed_within(fd, IO_TIMEOUT_MS));
    assert_true(ms_now() - t0 >= IDLE_MS * 2 / 3 + IDLE_MS - 50);
    close(fd);
}

static void test_tcp_bad_length(void **state)
{
    (void)state;
    uint8_t bad[] = {0, 5, 1, 2, 3, 4, 5};
    int fd = tcp_connect("127.0.0.1", PORT_V4);
    send_all(fd, bad, sizeof(bad));
    assert_true(closed_within(fd, IDLE_MS / 2));
    close(fd);

    uint8_t zero[] = {0, 0};
    fd = tcp_connect("127.0.0.1", PORT_V4);
    send_all(fd, zero, sizeof(zero));
    assert_true(closed_within(fd, IDLE_MS / 2));
    close(fd);
}

static void test_tcp_half_close(void **state)
{
    (void)state;
    uint8_t buf[600];
    int fd = tcp_connect("127.0.0.1", PORT_V4);
    send_all(fd, buf, frame_query(buf, 0x9001));
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    tcp_expect(fd, 0x9001);
    assert_true(closed_within(fd, IDLE_MS / 2));
    close(fd);
}

static void test_tcp_flood_does_not_block_others(void **state)
{
    (void)state;
    /* Client A pipelines queries without reading answers until its socket is full: the
     * worker must stop reading A (in-flight limit) and keep serving client B on the same
     * (single) worker. */
    enum { MAX_BYTES = 8 << 20 };
    server_t *srv = NULL;
    uint8_t frame[600];

    srv = own_server(PORT_FLOOD, long_idle);

    size_t flen = frame_query(frame, 0xc000);
    /* Small buffers on A so that the kernel cannot absorb the flood. */
    struct sockaddr_storage to;
    socklen_t tolen;
    sockaddr_make(&to, &tolen, "127.0.0.1", PORT_FLOOD);
    int a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(a >= 0);
    int small = 16384;
    assert_int_equal(setsockopt(a, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    assert_int_equal(connect(a, (struct sockaddr *)&to, tolen), 0);
    size_t sent = 0;
    while (sent < MAX_BYTES) {
        ssize_t n = send(a, frame, flen, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        sent += (size_t)n;
        if ((size_t)n < flen)
            break; /* the rest of this frame would block: leave it partial */
    }
    assert_true(sent < MAX_BYTES); /* backpressure reached the client */
    size_t queries = sent / flen;
    assert_true(queries > MAX_INFLIGHT);

    uint8_t buf[600];
    uint64_t t0 = ms_now();
    int b = tcp_connect("127.0.0.1", PORT_FLOOD);
    send_all(b, buf, frame_query(buf, 0xc001));
    tcp_expect(b, 0xc001);
    assert_true(ms_now() - t0 < 1000);
    close(b);

    /* A gets every answer, in order, once it reads. */
    for (size_t i = 0; i < queries; i++)
        tcp_expect(a, 0xc000);
    close(a);

    server_stats_t st;
    server_stats_get(srv, &st);
    assert_int_equal(st.tcp_queries, queries + 1);
    own_server_free(srv);
}

static void test_tcp_connection_limit(void **state)
{
    (void)state;
    server_t *srv = NULL;
    server_stats_t st;
    uint8_t buf[600];
    int fds[3];

    srv = own_server(PORT_LIMIT, two_connections);
    for (int i = 0; i < 2; i++) {
        fds[i] = tcp_connect("127.0.0.1", PORT_LIMIT);
        send_all(fds[i], buf, frame_query(buf, (uint16_t)(0xa000 + i)));
        tcp_expect(fds[i], (uint16_t)(0xa000 + i));
    }
    fds[2] = tcp_connect("127.0.0.1", PORT_LIMIT);
    assert_true(closed_within(fds[2], IDLE_MS / 2));
    server_stats_get(srv, &st);
    assert_int_equal(st.tcp_accepted, 2);
    assert_int_equal(st.tcp_refused, 1);
    assert_int_equal(st.tcp_open, 2);
    /* The first two still work. */
    send_all(fds[0], buf, frame_query(buf, 0xa010));
    tcp_expect(fds[0], 0xa010);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    own_server_free(srv);
}

/* overload.codel.backlog bounds the datagrams read per pass: with 8, a burst of 64 needs
 * at least 8 reads, and every query is still answered (the rest waits for the next pass). */
static void test_udp_pass_bound(void **state)
{
    (void)state;
    server_t *srv = NULL;
    server_stats_t st;

    srv = own_server(PORT_BOUND, pass_of_eight);
    udp_burst("127.0.0.1", PORT_BOUND, 0xd000, 64);
    /* The worker counts a batch after sending it: the client may hold the last answers
     * before the counters do. Wait for them, 2 s at most. */
    for (int i = 0; i < 200; i++) {
        server_stats_get(srv, &st);
        if (st.udp_answered >= 64)
            break;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    assert_int_equal(st.udp_answered, 64);
    assert_true(st.udp_batches >= 8);
    assert_true(st.udp_received <= 8 * st.udp_batches);
    own_server_free(srv);
}

static void test_bind_conflict(void **state)
{
    (void)state;
    cfg_t cfg;
    cfg_addr_t addr;
    server_t *srv = (server_t *)&cfg;

    /* A UDP socket without SO_REUSEPORT holds the port: server_new must fail. */
    addr_set(&addr, "127.0.0.1", PORT_LIMIT + 1);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr.ss, addr.len), 0);
    cfg_set(&cfg, &addr, 1, 2);
    assert_int_equal(server_new(&cfg, &srv), -EADDRINUSE);
    assert_null(srv);
    close(fd);

    /* Created and freed without being started. */
    assert_int_equal(server_new(&cfg, &srv), 0);
    server_stop(srv);
    server_free(srv);
    server_free(NULL);
}

/* The counters move by exactly what a known set of messages does, on a server of its own
 * (so no other test's connections or timers count). */
static void test_stats(void **state)
{
    (void)state;
    server_t *srv = own_server(PORT_STATS, long_idle);
    server_stats_t a, b;
    server_stats_get(srv, &a);

    /* UDP: two queries answered; a response and a runt read and ignored */
    udp_roundtrip("127.0.0.1", PORT_STATS, 0xc001);
    udp_roundtrip("127.0.0.1", PORT_STATS, 0xc002);
    struct sockaddr_storage to;
    socklen_t tolen;
    uint8_t q[512];
    sockaddr_make(&to, &tolen, "127.0.0.1", PORT_STATS);
    int fd = udp_client(AF_INET);
    size_t qlen = make_query(q, 0xc003, "www.example.com");
    q[2] |= 0x80;
    assert_int_equal(sendto(fd, q, qlen, 0, (struct sockaddr *)&to, tolen), (ssize_t)qlen);
    assert_int_equal(sendto(fd, q, 5, 0, (struct sockaddr *)&to, tolen), 5);
    close(fd);

    /* TCP: three pipelined queries on one connection, then one bad length on another */
    uint8_t buf[3 * 600];
    size_t n = 0;
    for (uint16_t i = 0; i < 3; i++)
        n += frame_query(buf + n, (uint16_t)(0xc010 + i));
    fd = tcp_connect("127.0.0.1", PORT_STATS);
    send_all(fd, buf, n);
    for (uint16_t i = 0; i < 3; i++)
        tcp_expect(fd, (uint16_t)(0xc010 + i));
    close(fd);
    uint8_t bad[] = {0, 5, 1, 2, 3, 4, 5};
    fd = tcp_connect("127.0.0.1", PORT_STATS);
    send_all(fd, bad, sizeof(bad));
    assert_true(closed_within(fd, IDLE_MS / 2));
    close(fd);

    /* the workers count after they answer: wait until everything is counted, then a
     * little longer, so that a count too many would show */
    for (int i = 0; i < 200; i++) {
        server_stats_get(srv, &b);
        if (b.udp_received - a.udp_received >= 4 && b.tcp_queries - a.tcp_queries >= 3 &&
            b.tcp_closed_bad - a.tcp_closed_bad >= 1)
            break;
        usleep(10000);
    }
    usleep(100000);
    server_stats_get(srv, &b);
    assert_int_equal(b.workers, 1);
    assert_int_equal(b.udp_received - a.udp_received, 4);
    assert_int_equal(b.udp_answered - a.udp_answered, 2);
    assert_int_equal(b.udp_ignored - a.udp_ignored, 2);
    assert_int_equal(b.udp_dropped - a.udp_dropped, 0);
    assert_int_equal(b.udp_send_errors - a.udp_send_errors, 0);
    assert_int_equal(b.tcp_accepted - a.tcp_accepted, 2);
    assert_int_equal(b.tcp_queries - a.tcp_queries, 3);
    assert_int_equal(b.tcp_answered - a.tcp_answered, 3);
    assert_int_equal(b.tcp_closed_bad - a.tcp_closed_bad, 1);
    assert_int_equal(b.tcp_closed_idle - a.tcp_closed_idle, 0);
    assert_int_equal(b.tcp_refused - a.tcp_refused, 0);
    assert_int_equal(b.query.queries[QUERY_UDP] - a.query.queries[QUERY_UDP], 2);
    assert_int_equal(b.query.queries[QUERY_TCP] - a.query.queries[QUERY_TCP], 3);
    assert_int_equal(b.query.rcode[0] - a.query.rcode[0], 5);
    assert_int_equal(b.query.qtype[1] - a.query.qtype[1], 5);
    own_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_udp_v4_v6),
        cmocka_unit_test(test_udp_wildcard_source),
        cmocka_unit_test(test_udp_response_ignored),
        cmocka_unit_test(test_udp_segmented),
        cmocka_unit_test(test_tcp_basic),
        cmocka_unit_test(test_tcp_pipelined),
        cmocka_unit_test(test_tcp_split_prefix),
        cmocka_unit_test(test_tcp_many_pipelined),
        cmocka_unit_test(test_tcp_idle_timeout),
        cmocka_unit_test(test_tcp_bad_length),
        cmocka_unit_test(test_tcp_half_close),
        cmocka_unit_test(test_tcp_flood_does_not_block_others),
        cmocka_unit_test(test_tcp_connection_limit),
        cmocka_unit_test(test_udp_pass_bound),
        cmocka_unit_test(test_bind_conflict),
        cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
