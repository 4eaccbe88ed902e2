/* Unit tests for BIRD's control protocol (node/bird.c): the reply parser on real and hostile
 * replies, and the client against a real BIRD 2 started for the test (bird -f with its own
 * config, control socket and pidfile in a temporary folder). A missing bird binary fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "fennec/bird.h"
#include "fennec/common.h"

extern char **environ;

/* ---- parser -------------------------------------------------------------------------------- */

static void test_reply_enable(void **state)
{
    (void)state;
    static const char r[] = "0011-fennec_service: enabled\n0000 \n";
    bird_reply_t out;
    assert_int_equal(bird_reply_parse(r, sizeof(r) - 1, &out), 0);
    assert_true(out.done);
    assert_false(out.error);
    assert_int_equal(out.code, 11);
    assert_string_equal(out.msg, "fennec_service: enabled");
    assert_int_equal(out.lines, 2);
}

static void test_reply_error(void **state)
{
    (void)state;
    static const char r[] = "9001 syntax error, unexpected CF_SYM_UNDEFINED\n";
    bird_reply_t out;
    assert_int_equal(bird_reply_parse(r, sizeof(r) - 1, &out), 0);
    assert_true(out.error);
    assert_int_equal(out.code, 9001);
    assert_string_equal(out.msg, "syntax error, unexpected CF_SYM_UNDEFINED");
}

/* A table with continuation lines (" text") and an unsolicited line ("+...") in between. */
static int count_lines(void *arg, const bird_line_t *l)
{
    int *counts = arg;
    counts[0]++;
    if (l->continued)
        counts[1]++;
    if (l->async)
        counts[2]++;
    if (l->continued && l->code != 1006)
        counts[3]++; /* a continuation must carry the code it continues */
    return 0;
}

static void test_reply_continuation_and_async(void **state)
{
    (void)state;
    static const char r[] = "2002-Name       Proto      Table      State  Since         Info\r\n"
                            "1002-fennec_service Static     master4    down   17:51:11.770  \n"
                            "1006-  Channel ipv4\n"
                            "     State:          DOWN\n"
                            "+0022 an unsolicited line\n"
                            "     Table:          master4\n"
                            " \n"
                            "0000 \n";
    bird_parser_t p;
    bird_parser_init(&p);
    int counts[4] = {0};
    /* One byte at a time: lines split anywhere are joined. */
    for (size_t i = 0; i < sizeof(r) - 1; i++)
        assert_int_equal(bird_parser_feed(&p, r + i, 1, count_lines, counts), 0);
    assert_int_equal(counts[0], 8);
    assert_int_equal(counts[1], 3);
    assert_int_equal(counts[2], 1);
    assert_int_equal(counts[3], 0);
    bird_reply_t out;
    assert_int_equal(bird_reply_parse(r, sizeof(r) - 1, &out), 0);
    assert_int_equal(out.code, 2002);
    assert_int_equal(out.lines, 7);
}

static void test_reply_incomplete_and_trailing(void **state)
{
    (void)state;
    bird_reply_t out;
    static const char part[] = "0011-fennec_service: enabled\n";
    assert_int_equal(bird_reply_parse(part, sizeof(part) - 1, &out), FENNEC_ENOTFOUND);
    static const char half[] = "0011-fennec_service: enabled\n0000";
    assert_int_equal(bird_reply_parse(half, sizeof(half) - 1, &out), FENNEC_ENOTFOUND);
    static const char more[] = "0009 ok\n0000 \n";
    assert_int_equal(bird_reply_parse(more, sizeof(more) - 1, &out), FENNEC_EMALFORMED);
    assert_int_equal(bird_reply_parse("", 0, &out), FENNEC_ENOTFOUND);
}

static void test_reply_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "hello\n",       /* no code */
        "001 short\n",   /* three digits */
        "0011x text\n",  /* wrong separator */
        " continued\n",  /* a continuation before any code */
        "+12 async\n",   /* short unsolicited code */
        "0011\n",        /* no separator */
        "00a1 text\n",   /* not a digit */
        "0011-te\0xt\n", /* a NUL in a line (length below counts it) */
    };
    static const size_t lens[] = {6, 10, 11, 11, 10, 5, 10, 12};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bird_parser_t p;
        bird_parser_init(&p);
        int rc = bird_parser_feed(&p, bad[i], lens[i], NULL, NULL);
        if (rc != FENNEC_EMALFORMED)
            fail_msg("case %zu: rc %d", i, rc);
    }
    /* A line longer than BIRD_LINE_MAX, with or without its newline. */
    size_t n = BIRD_LINE_MAX + 10;
    char *big = malloc(n);
    memset(big, 'a', n);
    memcpy(big, "0011-", 5);
    bird_parser_t p;
    bird_parser_init(&p);
    assert_int_equal(bird_parser_feed(&p, big, n, NULL, NULL), FENNEC_EMALFORMED);
    bird_parser_init(&p);
    big[n - 1] = '\n';
    assert_int_equal(bird_parser_feed(&p, big, n, NULL, NULL), FENNEC_EMALFORMED);
    free(big);
}

/* Random bytes, and random mutations of a real reply, in random chunks: an error or success,
 * never a crash or a read past the end (ASan watches). */
static void test_reply_garbage_never_crashes(void **state)
{
    (void)state;
    static const char real[] = "0011-fennec_service: enabled\n 1 2 3\n+0022 x\n0000 \n";
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t len = 1 + (size_t)((seed = seed * 1103515245u + 12345u) >> 16) % 200;
        char *buf = malloc(len);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (round & 1)         ? (char)(seed >> 16)
                     : (seed >> 28) == 0 ? (char)(seed >> 16)
                                         : real[i % (sizeof(real) - 1)];
        }
        bird_parser_t p;
        bird_parser_init(&p);
        bird_reply_t r = {0};
        size_t o = 0;
        int rc = 0;
        while (o < len && (rc == 0 || rc == 1)) {
            size_t chunk = 1 + ((seed = seed * 1103515245u + 12345u) >> 16) % 17;
            if (chunk > len - o)
                chunk = len - o;
            rc = bird_parser_feed(&p, buf + o, chunk, bird_reply_collect, &r);
            o += chunk;
        }
        assert_true(rc == 0 || rc == 1 || rc == FENNEC_EMALFORMED);
        bird_reply_t whole;
        rc = bird_reply_parse(buf, len, &whole);
        assert_true(rc == 0 || rc == FENNEC_EMALFORMED || rc == FENNEC_ENOTFOUND);
        assert_true(strlen(whole.msg) < sizeof(whole.msg));
        free(buf);
    }
}

/* ---- a real BIRD --------------------------------------------------------------------------- */

typedef struct lab {
    char dir[64];
    char conf[100];
    char sock[100];
    char pidfile[100];
    pid_t pid;
} lab_t;

static lab_t g_lab;

static const char *bird_binary(void)
{
    static const char *const where[] = {"/usr/sbin/bird", "/usr/bin/bird", "/sbin/bird"};
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
        if (access(where[i], X_OK) == 0)
            return where[i];
    return NULL;
}

static void bird_start(lab_t *l)
{
    const char *bin = bird_binary();
    if (!bin)
        fail_msg("bird not found: install the bird2 package (tests/run.sh does)");
    char *args[] = {(char *)bin, "-f", "-c", l->conf, "-s", l->sock, "-P", l->pidfile, NULL};
    unlink(l->sock);
    int rc = posix_spawn(&l->pid, bin, NULL, NULL, args, environ);
    assert_int_equal(rc, 0);
    /* Ready once the control socket accepts. */
    for (int i = 0; i < 400; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", l->sock);
        bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok)
            return;
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    fail_msg("bird did not open %s within 2 s", l->sock);
}

static void bird_stop(lab_t *l)
{
    if (l->pid > 0) {
        kill(l->pid, SIGTERM);
        waitpid(l->pid, NULL, 0);
        l->pid = 0;
    }
}

static int lab_setup(void **state)
{
    (void)state;
    lab_t *l = &g_lab;
    snprintf(l->dir, sizeof(l->dir), "/tmp/fennec-bird-XXXXXX");
    if (!mkdtemp(l->dir))
        return -1;
    snprintf(l->conf, sizeof(l->conf), "%.60s/bird.conf", l->dir);
    snprintf(l->sock, sizeof(l->sock), "%.60s/bird.ctl", l->dir);
    snprintf(l->pidfile, sizeof(l->pidfile), "%.60s/bird.pid", l->dir);
    FILE *f = fopen(l->conf, "w");
    if (!f)
        return -1;
    fprintf(f, "router id 192.0.2.1;\n"
               "protocol device {}\n"
               "protocol static fennec_service {\n"
               "  disabled yes;\n"
               "  ipv4;\n"
               "  route 192.0.2.53/32 blackhole;\n"
               "}\n"
               "protocol static fennec_service6 {\n"
               "  disabled yes;\n"
               "  ipv6;\n"
               "  route 2001:db8::53/128 blackhole;\n"
               "}\n");
    fclose(f);
    return 0;
}

static int lab_teardown(void **state)
{
    (void)state;
    bird_stop(&g_lab);
    unlink(g_lab.conf);
    unlink(g_lab.sock);
    unlink(g_lab.pidfile);
    rmdir(g_lab.dir);
    return 0;
}

/* "up" or "down" for PROTO, asked on a connection of our own, as birdc would. */
static void bird_proto_state(const lab_t *l, const char *proto, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", l->sock);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return;
    }
    char cmd[128], buf[8192];
    snprintf(cmd, sizeof(cmd), "show protocols %s\n", proto);
    size_t n = 0;
    /* The greeting, then the reply up to its "0000 " line. */
    bool sent = false;
    while (n < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        if (!sent && strstr(buf, "0001 ")) {
            if (write(fd, cmd, strlen(cmd)) < 0)
                break;
            sent = true;
            n = 0;
        } else if (sent && strstr(buf, "\n0000 ")) {
            break;
        }
    }
    close(fd);
    char *line = strstr(buf, "1002-");
    char name[80], type[32], table[32], st[16];
    if (line && sscanf(line + 5, "%79s %31s %31s %15s", name, type, table, st) == 4)
        snprintf(out, cap, "%s", st);
}

typedef struct waiter {
    bird_ctl_t *b;
    int events;
} waiter_t;

static void on_event(bird_ctl_t *b, void *arg)
{
    (void)b;
    ((waiter_t *)arg)->events++;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs LOOP until COND(B) holds or MS milliseconds passed; returns whether it held. */
static bool run_until(uv_loop_t *loop, bird_ctl_t *b, bool (*cond)(const bird_ctl_t *), unsigned ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 2, 2);
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000ull;
    bool ok = false;
    while (!(ok = cond(b)) && uv_hrtime() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool is_settled(const bird_ctl_t *b)
{
    return bird_ctl_settled(b);
}

static bool is_disconnected(const bird_ctl_t *b)
{
    return !bird_ctl_connected(b);
}

static bool has_error(const bird_ctl_t *b)
{
    return bird_ctl_error(b)[0] != '\0';
}

static void client_free(uv_loop_t *loop, bird_ctl_t *b)
{
    bird_ctl_free(b);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_client_enable_disable(void **state)
{
    (void)state;
    lab_t *l = &g_lab;
    bird_start(l);
    uv_loop_t loop;
    uv_loop_init(&loop);
    waiter_t w = {0};
    bird_ctl_t *b = NULL;
    assert_int_equal(bird_ctl_new(&loop, l->sock, "fennec_service", on_event, &w, &b), 0);
    char st[16];
    bird_proto_state(l, "fennec_service", st, sizeof(st));
    assert_string_equal(st, "down");

    bird_ctl_want(b, true);
    assert_true(run_until(&loop, b, is_settled, 2000));
    assert_int_equal(bird_ctl_confirmed(b), BIRD_ENABLED);
    bird_proto_state(l, "fennec_service", st, sizeof(st));
    assert_string_equal(st, "up");

    /* A withdrawal on the open connection: measured, it is one round trip. */
    uint64_t t0 = uv_hrtime();
    bird_ctl_want(b, false);
    assert_true(run_until(&loop, b, is_settled, 2000));
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    print_message("disable confirmed by BIRD %.3f ms after it was asked\n", ms);
    assert_true(ms < 100);
    assert_int_equal(bird_ctl_confirmed(b), BIRD_DISABLED);
    bird_proto_state(l, "fennec_service", st, sizeof(st));
    assert_string_equal(st, "down");

    /* Asking for the state BIRD has changes nothing and sends nothing. */
    int before = w.events;
    bird_ctl_want(b, false);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(w.events, before);
    assert_true(w.events >= 3); /* connected, enabled, disabled */
    client_free(&loop, b);
    bird_stop(l);
}

/* A name ending in '*' is one pattern for the IPv4 and IPv6 service protocols: both follow. */
static void test_client_pattern(void **state)
{
    (void)state;
    lab_t *l = &g_lab;
    bird_start(l);
    uv_loop_t loop;
    uv_loop_init(&loop);
    waiter_t w = {0};
    bird_ctl_t *b = NULL;
    assert_int_equal(bird_ctl_new(&loop, l->sock, "fennec_service*", on_event, &w, &b), 0);
    char v4[16], v6[16];
    bird_ctl_want(b, true);
    assert_true(run_until(&loop, b, is_settled, 2000));
    assert_int_equal(bird_ctl_confirmed(b), BIRD_ENABLED);
    bird_proto_state(l, "fennec_service", v4, sizeof(v4));
    bird_proto_state(l, "fennec_service6", v6, sizeof(v6));
    assert_string_equal(v4, "up");
    assert_string_equal(v6, "up");
    bird_ctl_want(b, false);
    assert_true(run_until(&loop, b, is_settled, 2000));
    assert_int_equal(bird_ctl_confirmed(b), BIRD_DISABLED);
    bird_proto_state(l, "fennec_service", v4, sizeof(v4));
    bird_proto_state(l, "fennec_service6", v6, sizeof(v6));
    assert_string_equal(v4, "down");
    assert_string_equal(v6, "down");
    client_free(&loop, b);
    bird_stop(l);
}

static void test_client_unknown_protocol(void **state)
{
    (void)state;
    lab_t *l = &g_lab;
    bird_start(l);
    uv_loop_t loop;
    uv_loop_init(&loop);
    bird_ctl_t *b = NULL;
    assert_int_equal(bird_ctl_new(&loop, l->sock, "no_such_protocol", NULL, NULL, &b), 0);
    bird_ctl_want(b, true);
    assert_true(run_until(&loop, b, has_error, 2000));
    assert_false(bird_ctl_settled(b));
    assert_non_null(strstr(bird_ctl_error(b), "BIRD refused \"enable no_such_protocol\""));
    assert_true(bird_ctl_connected(b));
    client_free(&loop, b);
    bird_stop(l);
}

/* BIRD absent at first: the client keeps trying and applies the wanted state once BIRD
 * answers; BIRD restarted (its config says disabled): applied again. */
static void test_client_waits_for_bird(void **state)
{
    (void)state;
    lab_t *l = &g_lab;
    unlink(l->sock);
    uv_loop_t loop;
    uv_loop_init(&loop);
    bird_ctl_t *b = NULL;
    assert_int_equal(bird_ctl_new(&loop, l->sock, "fennec_service", NULL, NULL, &b), 0);
    bird_ctl_want(b, true);
    assert_false(run_until(&loop, b, is_settled, 300));
    assert_false(bird_ctl_connected(b));
    assert_non_null(strstr(bird_ctl_error(b), "connect"));
    bird_start(l);
    assert_true(run_until(&loop, b, is_settled, 3000));
    char st[16];
    bird_proto_state(l, "fennec_service", st, sizeof(st));
    assert_string_equal(st, "up");

    bird_stop(l);
    assert_true(run_until(&loop, b, is_disconnected, 2000));
    assert_int_equal(bird_ctl_confirmed(b), BIRD_UNKNOWN);
    bird_start(l);
    bird_proto_state(l, "fennec_service", st, sizeof(st));
    assert_string_equal(st, "down"); /* as its config says, until the client is back */
    assert_true(run_until(&loop, b, is_settled, 3000));
    bird_proto_state(l, "fennec_service", st, sizeof(st));
    assert_string_equal(st, "up");
    client_free(&loop, b);
    bird_stop(l);
}

/* A server that is not BIRD: garbage instead of a greeting closes the connection. */
static void test_client_garbage_server(void **state)
{
    (void)state;
    char path[100];
    snprintf(path, sizeof(path), "%.60s/fake.ctl", g_lab.dir);
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", path);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    bird_ctl_t *b = NULL;
    assert_int_equal(bird_ctl_new(&loop, path, "fennec_service", NULL, NULL, &b), 0);
    bird_ctl_want(b, true);
    uv_run(&loop, UV_RUN_NOWAIT);
    int cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    static const char junk[] = "HTTP/1.1 200 OK\r\n\r\n";
    assert_true(write(cfd, junk, sizeof(junk) - 1) > 0);
    assert_true(run_until(&loop, b, has_error, 2000));
    assert_non_null(strstr(bird_ctl_error(b), "not BIRD's control protocol"));
    assert_false(bird_ctl_connected(b));
    close(cfd);
    client_free(&loop, b);
    close(lfd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_enable),
        cmocka_unit_test(test_reply_error),
        cmocka_unit_test(test_reply_continuation_and_async),
        cmocka_unit_test(test_reply_incomplete_and_trailing),
        cmocka_unit_test(test_reply_malformed),
        cmocka_unit_test(test_reply_garbage_never_crashes),
        cmocka_unit_test(test_client_enable_disable),
        cmocka_unit_test(test_client_pattern),
        cmocka_unit_test(test_client_unknown_protocol),
        cmocka_unit_test(test_client_waits_for_bird),
        cmocka_unit_test(test_client_garbage_server),
    };
    return cmocka_run_group_tests(tests, lab_setup, lab_teardown);
}
