/*
 * fennec — BIRD's control protocol (the unix socket given to `bird -s`), spoken directly:
 * no birdc per event. Two parts:
 *
 * 1. A pure reply parser. BIRD answers a command with lines "DDDD-text" (more lines follow),
 *    "DDDD text" (the last line of the reply), " text" (continues the previous code) and
 *    "+DDDD text" (unsolicited, not part of any reply). Codes 0xxx are success, 1xxx-2xxx
 *    table output, 8xxx and 9xxx errors. `enable P` answers 0011 (0010 when already enabled),
 *    `disable P` 0009 (0008), each followed by "0000 ". The parser checks every length and
 *    never reads past what it is given: garbage is an error, never a crash.
 *
 * 2. A client on a uv loop (bird_ctl_*) that keeps one connection to BIRD, holds a desired
 *    state for one protocol (enabled = the service routes announced, disabled = withdrawn)
 *    and applies it whenever it differs from what BIRD last confirmed: at once when connected
 *    and idle, after the reply in flight otherwise, and again after every reconnection (BIRD
 *    may have restarted with the protocol's configured state). A BIRD that is not reachable
 *    is retried every BIRD_RETRY_MIN_MS, doubling up to BIRD_RETRY_MAX_MS, logged once per
 *    outage; a reply that takes longer than BIRD_REPLY_TIMEOUT_MS counts as a lost connection.
 *    Everything runs on the loop's thread.
 */
#ifndef FENNEC_BIRD_H
#define FENNEC_BIRD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define BIRD_LINE_MAX         4096 /* longest reply line accepted, newline excluded */
#define BIRD_RETRY_MIN_MS     50
#define BIRD_RETRY_MAX_MS     1000
#define BIRD_REPLY_TIMEOUT_MS 2000

/* ---- reply parser (pure) ------------------------------------------------------------------ */

typedef struct bird_line {
    int code;         /* 0..9999; a continuation line carries the code it continues */
    bool last;        /* "DDDD text": the reply ends with this line */
    bool continued;   /* " text": continues the previous line's code */
    bool async;       /* "+DDDD text": unsolicited, not part of a reply */
    const char *text; /* the text after the code and separator, not NUL-terminated */
    size_t len;
} bird_line_t;

/* Called for each complete line; return non-zero to stop feeding (that value is returned). */
typedef int (*bird_line_fn)(void *arg, const bird_line_t *line);

typedef struct bird_parser {
    char line[BIRD_LINE_MAX];
    size_t len;
    int code; /* code of the last line with one; -1 before any */
} bird_parser_t;

void bird_parser_init(bird_parser_t *p);

/*
 * Feeds LEN bytes of DATA; FN gets every line completed by them (a line ends with '\n'; a
 * trailing '\r' is dropped). Returns 0, FN's non-zero value, or FENNEC_EMALFORMED for a line
 * that is not of BIRD's forms (no 4-digit code, a wrong separator, a continuation before any
 * code, a NUL byte) or longer than BIRD_LINE_MAX; the parser must be re-initialised after an
 * error (the connection is not trusted any more).
 */
int bird_parser_feed(bird_parser_t *p, const char *data, size_t len, bird_line_fn fn, void *arg);

/* The outcome of one reply, as bird_reply_collect() gathers it. */
typedef struct bird_reply {
    bool done;     /* the last line arrived */
    int code;      /* the first line's code (0011, 9001, ...) */
    bool error;    /* some line's code is 8000 or more */
    char msg[256]; /* the first line's text (or the first error line's), NUL-terminated */
    size_t lines;
} bird_reply_t;

/* A bird_line_fn that gathers lines into a bird_reply_t (ARG); ignores unsolicited lines and
 * anything after the last line (returns 1 to say a reply is complete). */
int bird_reply_collect(void *arg, const bird_line_t *line);

/* Parses LEN bytes holding exactly one whole reply into OUT. Returns 0, FENNEC_EMALFORMED
 * (garbage, or bytes after the reply's last line) or FENNEC_ENOTFOUND (the reply is not
 * complete). Pure; for tests and tools. */
int bird_reply_parse(const char *data, size_t len, bird_reply_t *out);

/* ---- client on a uv loop ------------------------------------------------------------------ */

typedef enum bird_state {
    BIRD_UNKNOWN = 0, /* not confirmed by BIRD (not connected, or no reply yet) */
    BIRD_ENABLED,
    BIRD_DISABLED,
} bird_state_t;

typedef struct bird_ctl bird_ctl_t;

/* Called on the loop thread when the confirmed state or the connection changes. */
typedef void (*bird_ctl_fn)(bird_ctl_t *b, void *arg);

/*
 * Starts a client of the BIRD at SOCKET_PATH for PROTOCOL (a BIRD symbol, or a pattern ending in
 * '*' for several protocols; both are copied) on LOOP, connecting at once. Nothing is sent until
 * bird_ctl_want(). FN (may be NULL) hears of changes. Returns 0, -ENAMETOOLONG (a path longer than
 * a unix socket takes) or -ENOMEM.
 */
int bird_ctl_new(uv_loop_t *loop, const char *socket_path, const char *protocol, bird_ctl_fn fn,
                 void *arg, bird_ctl_t **out);

/* The state BIRD should have: enabled (announce) or not (withdraw). Sent at once when the
 * connection is idle. */
void bird_ctl_want(bird_ctl_t *b, bool enabled);

/* What BIRD last confirmed for the protocol (BIRD_UNKNOWN while not connected). */
bird_state_t bird_ctl_confirmed(const bird_ctl_t *b);

/* Whether BIRD confirmed the state last asked for with bird_ctl_want(). */
bool bird_ctl_settled(const bird_ctl_t *b);

/* Whether the connection is up (greeting received). */
bool bird_ctl_connected(const bird_ctl_t *b);

/* The last error (connection or BIRD's refusal), "" when none since the last success. */
const char *bird_ctl_error(const bird_ctl_t *b);

/* Closes the connection and the timers; B is freed once libuv has closed them (run the loop).
 * NULL: a no-op. */
void bird_ctl_free(bird_ctl_t *b);

#endif
