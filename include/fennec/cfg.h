/*
 * fennec — configuration (one YAML file, see docs/config.md).
 *
 * cfg_load() reads and validates the whole file; every error names file:line and the key.
 * Unknown keys are errors. The result is immutable once loaded and owned by the caller.
 */
#ifndef FENNEC_CFG_H
#define FENNEC_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fennec/tsig.h"

#define CFG_DEFAULT_DNS     "127.0.0.1:5300"
#define CFG_DEFAULT_CONTROL "127.0.0.1:8053"

typedef enum {
    CFG_ROLE_PRIMARY = 0,
    CFG_ROLE_SECONDARY = 1,
} cfg_role_t;

/* A listen or peer address: "IPv4:port", "[IPv6]:port" or "*:port" (wildcard, both). */
typedef struct cfg_addr {
    char text[80];              /* as written in the config */
    struct sockaddr_storage ss; /* parsed address */
    socklen_t len;              /* length of ss in use */
} cfg_addr_t;

/* An address prefix of a transfer rule ("192.0.2.0/24", "2001:db8::1"). */
typedef struct cfg_prefix {
    int family; /* AF_INET or AF_INET6 */
    unsigned bits;
    uint8_t addr[16]; /* host bits cleared */
} cfg_prefix_t;

/* `transfer:` (AXFR out, docs/config.md): addresses allowed without a key, and keys that may
 * transfer from anywhere. `set` false: not written (no transfers offered). */
typedef struct cfg_transfer {
    bool set;
    cfg_prefix_t *allow;
    size_t allow_count;
    const tsig_key_t **keys; /* into cfg_t.tsig_keys */
    size_t key_count;
} cfg_transfer_t;

typedef struct cfg_zone {
    char *name; /* zone apex, text form without trailing dot ("example.com") */
    char *file; /* path to the master file, resolved relative to the config file's folder */
    char *text; /* built-in zones only: the master file's text (file is NULL then) */
    cfg_transfer_t transfer; /* the zone's own `transfer:`; when not set the global one applies */
} cfg_zone_t;

typedef struct cfg_overload {
    bool codel_enabled;            /* overload.codel: {enabled: true} by default */
    uint64_t codel_target_ns;      /* default 5 ms */
    uint64_t codel_interval_ns;    /* default 100 ms */
    uint32_t codel_backlog;        /* hard bound on queued datagrams read per pass (wakeup) of a
                                      worker before it serves TCP and timers; default 1024 */
    bool cubic_enabled;            /* default true */
    double cubic_threshold;        /* utilization_threshold, default 0.90 */
    double cubic_c;                /* default 0.4 */
    double cubic_beta;             /* default 0.8 */
    double cubic_ema_alpha;        /* default 0.3 */
    double cubic_min_rate;         /* queries per second, default 1 */
    uint32_t udp_rcvbuf;           /* socket receive buffer bytes, default 8 MiB */
    uint64_t udp_coalesce_ns;      /* after a wakeup that read a small batch, wait this long
                                      before reading again (fewer wakeups per query) when
                                      the arrival rate fills the wait; default 400 us; 0 = off */
    uint32_t udp_rcvbuf_congested; /* receive buffer while overloaded (the kernel then sheds
                                      the excess for free), default 48 KiB; 0 = keep */
    bool udp_gso;                  /* equal-size answers to one peer leave as one segmented
                                      send (UDP_SEGMENT) where the kernel has it; default on */
} cfg_overload_t;

typedef struct cfg_tcp {
    uint32_t idle_timeout_ms; /* default 10000 */
    uint32_t max_connections; /* per worker, default 1024 */
    uint32_t max_inflight;    /* pipelined queries in flight per connection, default 64 */
} cfg_tcp_t;

typedef struct cfg_journal {
    uint64_t max_bytes;      /* journal.max_size: the journal's limit on disk; default 1 GiB */
    uint64_t keep;           /* journal.keep: entries kept before the newest snapshot, so a
                                node a little behind needs no snapshot; default 10000 */
    uint64_t snapshot_every; /* journal.snapshot_every: entries between snapshots; 10000 */
} cfg_journal_t;

/* One service address of `anycast.service` with the DNS port of the listen.dns entry that
 * serves it (the address itself, or a wildcard of its family): where the self-check asks. */
typedef struct cfg_service {
    char text[64];              /* the address as written ("192.0.2.53", "2001:db8::53") */
    struct sockaddr_storage ss; /* address and DNS port */
    socklen_t len;
} cfg_service_t;

/* `anycast:` (docs/config.md, docs/anycast.md): read by fennecd (min_announced) and by
 * fennec-supervisor (everything). `set` false: the section is absent. */
typedef struct cfg_anycast {
    bool set;
    cfg_service_t *service; /* at least one */
    size_t service_count;
    char *bird_socket;          /* BIRD's control socket, resolved like zone files */
    char *bird_protocol;        /* default "fennec_service" */
    uint32_t min_announced;     /* default 1 */
    uint64_t check_interval_ns; /* default 100 ms */
    uint64_t check_timeout_ns;  /* default 50 ms; not longer than the interval */
    uint32_t check_rise;        /* default 2 */
    uint32_t check_fall;        /* default 2 */
    char *check_qname; /* NULL: the first zone the node serves (fennecd tells the supervisor) */
    uint64_t restart_backoff_ns;     /* default 100 ms */
    uint64_t restart_backoff_max_ns; /* default 5 s */
    uint32_t restart_intensity;      /* default 5 */
    uint64_t restart_period_ns;      /* default 60 s */
} cfg_anycast_t;

struct health_config;

typedef struct cfg {
    char *path; /* the file it was read from ("<builtin>" for the default config) */

    char *node_id;
    cfg_role_t role;
    char *data_dir;

    cfg_addr_t *dns; /* listen.dns: UDP and TCP, at least one */
    size_t dns_count;
    bool has_control;
    cfg_addr_t control;
    bool has_replication;
    cfg_addr_t replication;

    bool has_primary; /* cluster.primary */
    cfg_addr_t primary;
    char *key_file; /* cluster.key_file, resolved like zone files; NULL when absent */

    unsigned workers;  /* 0 = auto (one per core) */
    int *cpu_affinity; /* optional list of CPUs to pin workers to, round robin */
    size_t cpu_affinity_count;

    cfg_zone_t *zones;
    size_t zone_count;

    cfg_overload_t overload;
    cfg_tcp_t tcp;
    cfg_journal_t journal;
    struct health_config *health; /* health: checks and pools (health.h), one reference; NULL
                                     when the section is absent */
    char *log_level;              /* "error" | "warn" | "info" | "debug"; default "info" */
    tsig_keyring_t tsig_keys;     /* tsig_keys: read by every node from its own file */
    cfg_transfer_t transfer;      /* transfer: the rule of zones without their own */
    char *nsid;                   /* nsid: what an NSID option (RFC 5001) answers, or NULL (off) */
    char *identity;        /* identity: the CH TXT answer of id.server and hostname.bind, or NULL */
    cfg_anycast_t anycast; /* anycast: the supervisor's and the drain's settings */
} cfg_t;

/*
 * Reads and validates PATH. On success *out is a new cfg_t (free with cfg_free()).
 * On failure returns FENNEC_ECONFIG (or -errno when the file cannot be read) and writes a
 * message "FILE:LINE: KEY: what is wrong" into err.
 */
int cfg_load(const char *path, cfg_t **out, char *err, size_t errlen);

/* Same as cfg_load() for YAML text in memory; NAME is used in messages and as the base
 * folder for relative paths is the current directory. */
int cfg_parse(const char *yaml, size_t len, const char *name, cfg_t **out, char *err,
              size_t errlen);

/* The embedded default configuration: node "fennec1", primary, DNS on 127.0.0.1:5300,
 * control on 127.0.0.1:8053, the built-in example.com zone. */
int cfg_default(cfg_t **out);

/* Parses an address as in the config ("127.0.0.1:53", "[::1]:53", "*:53"). */
int cfg_addr_parse(const char *text, cfg_addr_t *out);

void cfg_free(cfg_t *cfg);

/* Whether A and B agree on everything a running node cannot change (node, listen, cluster,
 * workers, CPU affinity, overload, tcp, journal, tsig_keys, transfer, nsid, identity): zones,
 * health and
 * log_level aside. */
bool cfg_same_runtime(const cfg_t *a, const cfg_t *b);

/* The transfer rule of the zone NAME (text, lower case, no trailing dot): the zone's own when
 * its entry has one, else the global one. Never NULL. */
const cfg_transfer_t *cfg_transfer_for(const cfg_t *cfg, const char *name);

/* Whether RULE lets a client at PEER (an AF_INET or AF_INET6 address, NULL: unknown) that
 * signed its request with KEY (verified; NULL: unsigned) transfer. */
bool cfg_transfer_allows(const cfg_transfer_t *rule, const struct sockaddr *peer,
                         const tsig_key_t *key);

/* The `health:` section on its own: see health_config_parse() (health.h), which calls it. */
int cfg_health_parse(const char *yaml, size_t len, const char *name, const char *base,
                     unsigned first_line, struct health_config **out, char *err, size_t errlen);

#endif
