/*
 * fennec — health checks and pools (DESIGN: "Health checks and failover").
 *
 * Three parts, in this header:
 *   1. definitions: a health_config_t (checks and pools) parsed from the `health:` section of
 *      the primary's configuration (YAML), the same function for the file and for the text a
 *      health-config entry carries through the log; immutable, reference-counted;
 *   2. the prober: one thread with its own uv loop that probes every check (libcurl multi for
 *      HTTP(S), uv_tcp_connect for TCP) on its interval with jitter, runs each check's state
 *      machine (rise, fall, override) and publishes a new health_state_t on every transition;
 *   3. pool answers: the query engine asks health_pool_answer() for the records of a pool
 *      owner; it reads the published state lock-free (RCU) and never allocates.
 *
 * States: UNKNOWN until a check has a result (served as up), UP after `rise` consecutive
 * successes, DOWN after `fall` consecutive failures; an override (up or down) wins until it is
 * cleared.
 */
#ifndef FENNEC_HEALTH_H
#define FENNEC_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HEALTH_NAME_MAX       64 /* check name, NUL included: 1..63 of [A-Za-z0-9._-] */
#define HEALTH_MAX_STATUS     8  /* expect_status entries */
#define HEALTH_MAX_CHECKS     4096
#define HEALTH_MAX_POOLS      4096
#define HEALTH_MAX_MEMBERS    64    /* per pool */
#define HEALTH_BODY_MAX       65536 /* bytes of a response read for expect_body */
#define HEALTH_CONN_MAX_AGE_S 60 /* reuse_connection: a connection's (and TLS check's) lifetime */

typedef enum health_kind {
    HEALTH_HTTP = 0,
    HEALTH_HTTPS = 1,
    HEALTH_TCP = 2,
} health_kind_t;

typedef enum health_status {
    HEALTH_UNKNOWN = 0, /* no result yet: served as up */
    HEALTH_UP = 1,
    HEALTH_DOWN = 2,
} health_status_t;

typedef enum health_override {
    HEALTH_OVERRIDE_NONE = 0,
    HEALTH_OVERRIDE_UP = 1,
    HEALTH_OVERRIDE_DOWN = 2,
} health_override_t;

typedef struct health_check_def {
    char name[HEALTH_NAME_MAX];
    health_kind_t kind;
    char target[64];              /* the address probed, as written (IPv4 or IPv6) */
    struct sockaddr_storage addr; /* target and port */
    socklen_t addr_len;
    uint16_t port; /* default 80 (http), 443 (https); required for tcp */
    char *path;    /* http(s): default "/" */
    char *host;    /* http(s): Host header and SNI; default the target */
    uint16_t expect_status[HEALTH_MAX_STATUS]; /* default {200} */
    size_t expect_status_count;
    char *expect_body;     /* substring of the first HEALTH_BODY_MAX bytes, or NULL */
    uint64_t interval_ns;  /* default 1 s; 100 ms .. 1 h */
    uint64_t timeout_ns;   /* default 800 ms, at most the interval */
    uint32_t rise;         /* default 2, 1..100 */
    uint32_t fall;         /* default 2, 1..100 */
    bool tls_verify;       /* https: default true */
    char *ca_file;         /* https: CA bundle (PEM) instead of the system's, or NULL */
    bool reuse_connection; /* http(s): keep the connection for the next probes (at most
                            * HEALTH_CONN_MAX_AGE_S old); default false: a new one each time */
} health_check_def_t;

typedef enum health_policy {
    HEALTH_FAILOVER = 0, /* the first healthy member, in order */
    HEALTH_ALL = 1,      /* every healthy member */
    HEALTH_WEIGHTED = 2, /* one healthy member, drawn by weight */
} health_policy_t;

typedef enum health_all_down {
    HEALTH_SERVE_ALL = 0,   /* fail open: every member */
    HEALTH_SERVE_FIRST = 1, /* the first member */
    HEALTH_EMPTY = 2,       /* NODATA */
} health_all_down_t;

typedef struct health_member_def {
    uint8_t addr[16]; /* 4 bytes for A, 16 for AAAA: the rdata served */
    char text[64];    /* as written */
    int check;        /* index into checks */
    uint32_t weight;  /* weighted: 1..1000, default 1 */
} health_member_def_t;

typedef struct health_pool_def {
    uint8_t owner[255]; /* lower-case wire name */
    size_t owner_len;
    char name[1025]; /* text, no trailing dot */
    uint16_t type;   /* 1 (A) or 28 (AAAA) */
    health_policy_t policy;
    uint32_t ttl;          /* default 300 */
    uint32_t degraded_ttl; /* default 10; used while any member is down */
    health_all_down_t all_down;
    health_member_def_t *members;
    size_t member_count;
} health_pool_def_t;

typedef struct health_config {
    int refs; /* atomic */
    health_check_def_t *checks;
    size_t check_count;
    health_pool_def_t *pools;
    size_t pool_count;
    /* What a health-config entry carries, so that every node parses the same text the same
     * way: the section's text, the file it came from and its folder (relative ca_file paths),
     * and the line where the section starts in that file. */
    char *yaml;
    size_t yaml_len;
    char *name;
    char *base;
    unsigned first_line;
} health_config_t;

/*
 * Parses the text of a `health:` section, YAML (a document whose root mapping has the one key
 * `health`, as cut from a configuration file). NAME and FIRST_LINE place messages: errors read
 * "NAME:LINE: KEY: what" with LINE counted from FIRST_LINE (the line of `health:` in the file);
 * BASE (or NULL: the current folder) is the folder relative paths (ca_file) start from.
 * Checks every rule: names, addresses, ports, durations and their bounds, every pool member's
 * check exists, a pool's type and its members' addresses agree, no pool twice. On success
 * *OUT holds one reference. Errors: FENNEC_ECONFIG (ERR says what), -ENOMEM.
 */
int health_config_parse(const char *yaml, size_t len, const char *name, const char *base,
                        unsigned first_line, health_config_t **out, char *err, size_t errlen);

/* Whether A and B define the same checks and pools (both NULL or empty: true). */
bool health_config_equal(const health_config_t *a, const health_config_t *b);
void health_config_ref(health_config_t *c);
void health_config_unref(health_config_t *c); /* NULL: a no-op */

/* ---- state ------------------------------------------------------------------------------ */

typedef struct health_check_state {
    health_status_t status; /* the state the machine is in (overrides aside) */
    health_override_t override;
    double since;           /* wall clock of the last transition (or of the start) */
    bool last_ok;           /* the last probe's result */
    char last_result[128];  /* "200", "timeout", "connect refused", "TLS: ...", ... */
    double last_latency_ms; /* of the last probe; < 0: none yet */
    uint64_t transitions;
    uint32_t successes, failures; /* consecutive, for rise/fall */
} health_check_state_t;

/* What pools make of a check: UP (served) unless DOWN or overridden down; DEGRADED (pools
 * with it use degraded_ttl) when down, overridden down, or UNKNOWN after a failed probe. */
typedef struct health_eff {
    bool up;
    bool degraded;
} health_eff_t;

health_eff_t health_effective(const health_check_state_t *s);

/*
 * The state machine of one check: a probe result OK arrives at time NOW (wall seconds).
 * Returns true when the check's status changed (UNKNOWN -> UP on the first success counts
 * only once `rise` successes are in; UNKNOWN -> DOWN after `fall` failures). Pure.
 */
bool health_check_result(health_check_state_t *s, const health_check_def_t *def, bool ok,
                         double now);

/* ---- the prober: one per process ----------------------------------------------------------- */

/* Starts the health thread (no checks until health_configure()). -errno, -ENOMEM. */
int health_start(void);

/* Stops it (waits for the thread; in-flight probes are abandoned). Idempotent. */
void health_stop(void);

/*
 * The checks and pools to run from now on (CONFIG: one reference taken; NULL: none). A check
 * whose name and definition are unchanged keeps its state and schedule; a new one is probed at
 * once (then on its interval, with jitter); a removed one stops. Pools are republished at once
 * from the states. Any thread (the write path calls it when a health-config entry applies).
 */
int health_configure(health_config_t *config);

/* Sets (UP/DOWN) or clears (NONE) the override of CHECK; FENNEC_ENOTFOUND for an unknown
 * check. Pools are republished at once. Any thread (called when an override entry applies). */
int health_override_set(const char *check, health_override_t o);

/* A copy of every check's definition name and state, in configuration order, and the pools
 * with what each serves now, for /v1/health, /metrics and the status page. */
typedef struct health_probe_counts {
    uint64_t ok, fail, timeout; /* probes by result */
    uint64_t to_up, to_down;    /* transitions by destination */
} health_probe_counts_t;

typedef struct health_report {
    health_config_t *config;       /* one reference; NULL when there are no checks */
    health_check_state_t *states;  /* config->check_count */
    health_probe_counts_t *counts; /* config->check_count */
    /* per pool: what is served now */
    uint32_t *pool_ttl;         /* config->pool_count */
    size_t *pool_serving_count; /* config->pool_count */
    uint8_t (*pool_serving)[HEALTH_MAX_MEMBERS][16];
} health_report_t;

int health_report_get(health_report_t *out);
void health_report_free(health_report_t *r);

/* ---- pool answers (query engine) ---------------------------------------------------------- */

/*
 * The records to serve for OWNER (lower-case wire name, LEN bytes) and QTYPE (1 or 28), when
 * it is a pool: writes up to MAX addresses into ADDRS (each 4 or 16 bytes, by type), *COUNT
 * and *TTL, and returns true. Returns false when OWNER/QTYPE is not a pool (answer from the
 * zone). *COUNT 0 with true: NODATA (all_down: empty). RAND is a per-worker random value for
 * a weighted draw. Lock-free (RCU read side: the caller is a registered reader inside
 * zone_read_lock()); no allocation.
 */
bool health_pool_answer(const uint8_t *owner, size_t len, uint16_t qtype, uint32_t rand,
                        uint8_t (*addrs)[16], size_t max, size_t *count, uint32_t *ttl);

/* Whether any pool exists: lets the query engine skip the lookup for free. */
bool health_pools_active(void);

/* Whether OWNER (lower-case wire name) is the owner of a pool of either type: such a name
 * exists for DNS even when its zone has no record there (other types get NODATA). Same
 * threading rules as health_pool_answer(). */
bool health_pool_exists(const uint8_t *owner, size_t len);

#endif
