/* Result codes, logging and clocks shared by every module. */
#include "fennec/common.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <strings.h>
#include <time.h>

static _Atomic int g_log_level = LOG_LEVEL_INFO;

const char *fennec_strerror(int code)
{
    switch (code) {
    case FENNEC_EOK:
        return "ok";
    case FENNEC_EMALFORMED:
        return "malformed input";
    case FENNEC_ESPACE:
        return "not enough space";
    case FENNEC_ECONFIG:
        return "invalid configuration";
    case FENNEC_EZONE:
        return "invalid zone";
    case FENNEC_ENOTFOUND:
        return "not found";
    case FENNEC_EEXISTS:
        return "already exists";
    case FENNEC_ENOTSUP:
        return "not supported";
    case FENNEC_ETIMEOUT:
        return "timed out";
    case FENNEC_EDAMAGED:
        return "stored data is damaged";
    default:
        break;
    }
    if (code < 0 && code > FENNEC_EBASE)
        return strerror(-code);
    return "unknown error";
}

void log_set_level(log_level_t level)
{
    atomic_store(&g_log_level, (int)level);
}

log_level_t log_get_level(void)
{
    return (log_level_t)atomic_load_explicit(&g_log_level, memory_order_relaxed);
}

int log_level_parse(const char *text, log_level_t *out)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return -22; /* -EINVAL */
}

void log_write(log_level_t level, const char *module, const char *fmt, ...)
{
    static const char *tags[] = {"error", "warn", "info", "debug"};
    if ((int)level > atomic_load_explicit(&g_log_level, memory_order_relaxed))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    /* One fprintf per line so that lines from several threads do not interleave. */
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            tags[level], module, msg);
}

uint64_t fennec_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t fennec_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double fennec_wall_now(void)
{
    return (double)fennec_wall_ns() / 1e9;
}

#define HUGE_PAGE (2u << 20)

void *fennec_alloc_large(size_t n)
{
    if (n < (4u << 20))
        return malloc(n ? n : 1);
    size_t bytes = (n + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, bytes) != 0)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}
