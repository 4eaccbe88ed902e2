/*
 * fennec — replication state: what a node knows about the log and the other nodes, for the
 * status contract (docs/replication.md, /v1/status "replication", /metrics, fennecctl lag,
 * the status page). The stream code (primary and secondary) and the write path (change.c)
 * report events here; the control endpoint reads consistent copies. One mutex inside; every
 * function may be called from any thread and never blocks on I/O.
 *
 * Times: *_ns arguments are wall-clock nanoseconds since 1970 (commit times travel between
 * nodes); NOW arguments are wall-clock seconds since 1970 as a double (fennec_now_wall()).
 *
 * Lag, per node, as the DESIGN's status contract has it:
 *   entries_behind       = the primary's last index - the node's applied index (never < 0);
 *   seconds_behind       = now - commit time of the oldest entry the node has not applied,
 *                          0 when it has applied everything it knows of;
 *   connected, last_contact_seconds: so that a stalled stream never reads as "0 behind".
 */
#ifndef FENNEC_REPL_H
#define FENNEC_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPL_ID_MAX   64 /* node id, NUL included: 1..63 of [A-Za-z0-9._-] */
#define REPL_ADDR_MAX 80 /* host:port, NUL included */

typedef enum repl_peer_state {
    REPL_NEVER_CONNECTED = 0,
    REPL_DISCONNECTED,
    REPL_SNAPSHOT,    /* receiving (secondary) or being sent (primary) a snapshot */
    REPL_CATCHING_UP, /* connected, more than one heartbeat's worth of entries behind */
    REPL_STREAMING,   /* connected and following the log */
} repl_peer_state_t;

/* "never_connected", "disconnected", "snapshot", "catching_up", "streaming". */
const char *repl_state_name(repl_peer_state_t st);

/* A member of the cluster, as the log says (membership entries). */
typedef struct repl_member {
    char id[REPL_ID_MAX];
    char address[REPL_ADDR_MAX]; /* the node's control endpoint */
} repl_member_t;

/* A node's anycast announce state (docs/anycast.md), as its supervisor reports it. The values
 * travel in the replication stream (acks and heartbeats): never renumber them. */
typedef enum repl_announce {
    REPL_ANNOUNCE_UNKNOWN = 0, /* no supervisor, not connected, or an older node */
    REPL_ANNOUNCE_ANNOUNCED = 1,
    REPL_ANNOUNCE_WITHDRAWN = 2,
    REPL_ANNOUNCE_DRAINING = 3,
    REPL_ANNOUNCE_DRAINED = 4,
    REPL_ANNOUNCE_DOWN = 5,
} repl_announce_t;

#define REPL_ANNOUNCE_COUNT 6

/* "unknown", "announced", "withdrawn", "draining", "drained", "down". */
const char *repl_announce_name(repl_announce_t st);

/* The state named S (as repl_announce_name() writes it), or -1. */
int repl_announce_parse(const char *s);

/* ---- set up ---------------------------------------------------------------------------- */

/* This node: its id and role (true: primary). Called once at start, before the rest. */
void repl_state_init(const char *node_id, bool primary, const char *primary_addr);

/* Forgets everything (end of process, tests). */
void repl_state_reset(void);

/* ---- the log (both roles) ---------------------------------------------------------------- */

/* Entry INDEX, committed by the primary at COMMIT_NS, is durable and applied here. Called by
 * the write path for every entry in index order (a primary's own commits, a secondary's
 * applied entries, the journal replayed at start). Keeps the commit times of the recent
 * entries (at least the last 65536) for seconds_behind. */
void repl_applied(uint64_t index, uint64_t commit_ns);

/* A snapshot at INDEX was installed: every entry up to INDEX counts as applied. */
void repl_applied_snapshot(uint64_t index, uint64_t commit_ns);

/* The membership the log says now (a membership entry was applied; also at start). MEMBERS
 * (COUNT) is copied. On a primary every member but itself gets a row (never_connected until
 * its stream connects); a row that stays keeps what it knew; a removed member's row is
 * dropped (and no longer holds repl_wait_all()). Returns 0, FENNEC_EMALFORMED (an id that is
 * not repl_member_id_valid(), an address of REPL_ADDR_MAX bytes or more, an id twice; nothing
 * changes) or -ENOMEM. */
int repl_members_set(const repl_member_t *members, size_t count);

/* Copies the member list into a new array *OUT (free()), returns the count (0: *OUT NULL)
 * or -ENOMEM. */
int repl_members_get(repl_member_t **out);

/* Whether ID is a member; its address into ADDRESS (REPL_ADDR_MAX bytes) when not NULL. */
bool repl_member_find(const char *id, char *address);

/* Whether ID is a well-formed node id: 1..63 characters of [A-Za-z0-9._-]. Pure. */
bool repl_member_id_valid(const char *id);

/* ---- primary: its view of each secondary --------------------------------------------------- */

/* A stream from node ID was authenticated (CONNECTED true: state catching_up until the
 * stream says otherwise) or ended (false: state disconnected; the node keeps its applied
 * index, so its lag keeps growing). An ID that is not a member is ignored. */
void repl_peer_connected(const char *id, bool connected, double now);

/* What the stream to ID is doing (REPL_SNAPSHOT, REPL_CATCHING_UP, REPL_STREAMING); ignored
 * while ID is not connected (never_connected and disconnected follow repl_peer_connected()). */
void repl_peer_state_set(const char *id, repl_peer_state_t st);

/* Node ID acknowledged that it applied everything up to APPLIED (any frame from it also
 * counts as contact). */
void repl_peer_ack(const char *id, uint64_t applied, double now);

/* ---- secondary: its view of the primary ---------------------------------------------------- */

/* The stream to the primary was authenticated (true: catching_up until the stream says
 * otherwise) or ended (false: disconnected). */
void repl_primary_connected(bool connected, double now);

/* What the stream from the primary is doing (REPL_SNAPSHOT, REPL_CATCHING_UP, REPL_STREAMING);
 * ignored while not connected. */
void repl_primary_state_set(repl_peer_state_t st);

/* The primary's node id, as the stream's handshake names it (optional: until it is known, a
 * secondary cannot tell which member is the primary). */
void repl_primary_id_set(const char *id);

/* The primary said (heartbeat or entry) that its last index is INDEX, at its clock TIME_NS.
 * A secondary's seconds_behind is its age now of the first such report of an index it has not
 * applied (that entry was committed then or before: the age is a lower bound, exact when the
 * report is the entry itself with its commit time). */
void repl_primary_seen(uint64_t index, uint64_t time_ns, double now);

/* ---- anycast: the cluster's announce view ------------------------------------------------ */

/* A secondary's view counts as fresh while the primary's last report is at most this old. */
#define REPL_ANNOUNCE_FRESH_S 2.0

/* This node's own state (the supervisor link reports it; UNKNOWN: no supervisor). */
void repl_announce_self(repl_announce_t st);
repl_announce_t repl_announce_self_get(void);

/* FN(ARG) is called whenever this node's state or (on a primary) a node's reported state
 * changes, so that the stream sends it at once rather than with the next heartbeat. FN runs
 * under the state's lock on the thread that reported the change: it must only wake someone
 * (uv_async_send()). NULL clears it; once this returns, FN is not running. */
typedef void (*repl_announce_hook_fn)(void *arg);
void repl_announce_hook_set(repl_announce_hook_fn fn, void *arg);

/* Primary: node ID reported ST in an ack. A disconnected node reads as UNKNOWN. */
void repl_peer_announce(const char *id, repl_announce_t st);

typedef struct repl_announce_entry {
    char id[REPL_ID_MAX];
    repl_announce_t state;
} repl_announce_entry_t;

/* Secondary: the primary's view of every node (ENTRIES, COUNT; copied), received at NOW. An
 * empty view (an older primary) is ignored. */
void repl_announce_view_set(const repl_announce_entry_t *entries, size_t count, double now);

typedef struct repl_announce_view {
    bool fresh;       /* a primary's own view always is; a secondary's: see REPL_ANNOUNCE_FRESH_S */
    double age;       /* seconds since the primary reported it (0 on the primary); < 0: never */
    size_t announced; /* entries in state ANNOUNCED */
    repl_announce_entry_t *entries; /* this node first, then the others; free() */
    size_t count;
} repl_announce_view_t;

/* The view at NOW: on a primary itself and every member (as their last acks say); on a
 * secondary the primary's last report with this node's own row replaced by its current state
 * (or only this node when no report came). Returns 0 or -ENOMEM. */
int repl_announce_view_get(repl_announce_view_t *out, double now);
void repl_announce_view_free(repl_announce_view_t *v);

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct repl_node_status {
    char id[REPL_ID_MAX];
    char address[REPL_ADDR_MAX];
    bool self; /* this node (a primary lists itself first) */
    bool connected;
    repl_peer_state_t state;
    uint64_t applied_index;
    uint64_t entries_behind;
    double seconds_behind;
    double last_contact_seconds; /* < 0: never */
} repl_node_status_t;

typedef struct repl_status {
    bool primary;
    char node_id[REPL_ID_MAX];
    char primary_addr[REPL_ADDR_MAX]; /* secondary: cluster.primary */
    char primary_id[REPL_ID_MAX];     /* secondary: the primary's id; "" while unknown */
    uint64_t index;                   /* primary: its last index; secondary: its applied index */
    double commit_time;               /* commit time of INDEX, seconds since 1970; 0: none */
    /* secondary only: */
    bool connected;
    repl_peer_state_t state;
    uint64_t applied_index;
    uint64_t primary_index;
    uint64_t entries_behind;
    double seconds_behind;
    double last_contact_seconds; /* < 0: never */
    /* primary: every member but itself; secondary: empty. Owned: repl_status_free(). */
    repl_node_status_t *nodes;
    size_t node_count;
} repl_status_t;

/* A consistent copy of the state at NOW. Returns 0 or -ENOMEM. */
int repl_status_get(repl_status_t *out, double now);
void repl_status_free(repl_status_t *st);

/*
 * Waits until every connected secondary has acknowledged INDEX, at most TIMEOUT_MS.
 * Returns 0 (all connected nodes have it; also when none is connected) or FENNEC_ETIMEOUT
 * with the ids of the nodes still behind in LAGGING (LAGLEN bytes, may be 0; comma-separated,
 * "ns2,ns3", truncated to fit; "" on 0). A node that disconnects while waited for no longer
 * counts. Blocks the calling thread only (a control connection's thread); the timeout runs on
 * CLOCK_MONOTONIC.
 */
int repl_wait_all(uint64_t index, uint32_t timeout_ms, char *lagging, size_t laglen);

/* ---- lag history for the status page -------------------------------------------------------- */

#define REPL_HISTORY_POINTS 120 /* one sample every 5 s: the last 10 minutes */

typedef struct repl_history {
    double start; /* time of the first sample, seconds since 1970 */
    double step;  /* seconds between samples */
    size_t points;
    size_t series; /* one per node (primary: every member; secondary: itself) */
    char (*ids)[REPL_ID_MAX];
    double *seconds_behind; /* series × points, row-major; < 0: no sample (not connected) */
} repl_history_t;

/* Takes a sample now when the last one is at least step old (called by the control endpoint
 * and the stream threads; cheap when no sample is due). Samples sit on a grid of 5 s slots
 * aligned on the wall clock: slots that passed without a tick hold no sample (< 0). */
void repl_history_tick(double now);

/* A copy of the last samples (at most REPL_HISTORY_POINTS, oldest first; none before the
 * first tick: POINTS and SERIES 0) into *OUT, freed with repl_history_free(). Sample k is at
 * START + k × STEP. Returns 0 or -ENOMEM (*OUT empty). */
int repl_history_get(repl_history_t *out);

/* Frees what repl_history_get() filled in; H may be NULL or empty. */
void repl_history_free(repl_history_t *h);

#endif
