/*
 * fennec — shared result codes and logging.
 *
 * Every function that can fail returns int: 0 on success, a negative errno value or one of
 * the FENNEC_E* codes below. fennec_strerror() turns either kind into text.
 */
#ifndef FENNEC_COMMON_H
#define FENNEC_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifndef FENNEC_VERSION
#define FENNEC_VERSION "0.0.0"
#endif

enum {
    FENNEC_EOK = 0,
    FENNEC_EBASE = -10000,
    FENNEC_EMALFORMED, /* input bytes are not well formed */
    FENNEC_ESPACE,     /* output buffer too small */
    FENNEC_ECONFIG,    /* configuration is invalid */
    FENNEC_EZONE,      /* zone file or zone content is invalid */
    FENNEC_ENOTFOUND,  /* no such object */
    FENNEC_EEXISTS,    /* object already exists */
    FENNEC_ENOTSUP,    /* feature not available */
    FENNEC_ETIMEOUT,   /* waited as long as allowed */
    FENNEC_EDAMAGED,   /* stored data is damaged (a journal, a snapshot) */
};

/* Text for a negative errno value or a FENNEC_E* code. Never returns NULL. */
const char *fennec_strerror(int code);

typedef enum {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
} log_level_t;

/* The level below which messages are discarded; default LOG_LEVEL_INFO. Thread safe. */
void log_set_level(log_level_t level);
log_level_t log_get_level(void);

/* Parses "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *text, log_level_t *out);

/* Writes one line to stderr: time, level, module, message. Use the macros below. */
void log_write(log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(module, ...) log_write(LOG_LEVEL_ERROR, module, __VA_ARGS__)
#define log_warn(module, ...)  log_write(LOG_LEVEL_WARN, module, __VA_ARGS__)
#define log_info(module, ...)  log_write(LOG_LEVEL_INFO, module, __VA_ARGS__)
#define log_debug(module, ...)                                                                     \
    do {                                                                                           \
        if (log_get_level() >= LOG_LEVEL_DEBUG)                                                    \
            log_write(LOG_LEVEL_DEBUG, module, __VA_ARGS__);                                       \
    } while (0)

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
uint64_t fennec_now_ns(void);

/* N bytes for a large, short-lived array (a zone being built, a decoded entry), not zeroed;
 * free() it. From 4 MiB on the block is aligned to and backed by huge pages where the kernel
 * offers them (MADV_HUGEPAGE), so filling it costs a few page faults instead of one per
 * 4 KiB. NULL when out of memory. */
void *fennec_alloc_large(size_t n);

/* Wall clock (CLOCK_REALTIME): nanoseconds, and seconds as a double, since 1970. */
uint64_t fennec_wall_ns(void);
double fennec_wall_now(void);

#endif
