/* Prometheus text exposition (format 0.0.4) of a control snapshot. */
#include "fennec/anycast.h"
#include "fennec/control.h"

#include <errno.h>
#include <libknot/descriptor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const g_rcode_names[QUERY_RCODE_MAX] = {
    [0] = "NOERROR",  [1] = "FORMERR",    [2] = "SERVFAIL", [3] = "NXDOMAIN",  [4] = "NOTIMP",
    [5] = "REFUSED",  [6] = "YXDOMAIN",   [7] = "YXRRSET",  [8] = "NXRRSET",   [9] = "NOTAUTH",
    [10] = "NOTZONE", [11] = "DSOTYPENI", [16] = "BADVERS", [17] = "BADKEY",   [18] = "BADTIME",
    [19] = "BADMODE", [20] = "BADNAME",   [21] = "BADALG",  [22] = "BADTRUNC", [23] = "BADCOOKIE",
};

const char *control_rcode_name(unsigned rcode)
{
    if (rcode >= QUERY_RCODE_MAX)
        return NULL;
    return g_rcode_names[rcode];
}

void control_prom_escape(FILE *f, const char *value)
{
    for (const char *p = value; *p; p++) {
        switch (*p) {
        case '\\':
            fputs("\\\\", f);
            break;
        case '"':
            fputs("\\\"", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        default:
            fputc(*p, f);
            break;
        }
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(FILE *f, const char *name, const char *label, const char *value, uint64_t v)
{
    if (label) {
        fprintf(f, "%s{%s=\"", name, label);
        control_prom_escape(f, value);
        fprintf(f, "\"} %llu\n", (unsigned long long)v);
    } else {
        fprintf(f, "%s %llu\n", name, (unsigned long long)v);
    }
}

/* A metric without labels: its HELP and TYPE lines and its one sample. */
static void metric_u64(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
    family(f, name, type, help);
    sample_u64(f, name, NULL, NULL, v);
}

/* Query types always exported (even at zero) so that dashboards see the series from the
 * start; other types appear once they have been asked for. */
static bool qtype_always(unsigned t)
{
    static const unsigned common[] = {1, 2, 5, 6, 12, 15, 16, 28, 33, 43, 48, 65, 255};
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        if (common[i] == t)
            return true;
    return false;
}

static void sample_double(FILE *f, const char *name, const char *node, double v)
{
    fprintf(f, "%s{node=\"", name);
    control_prom_escape(f, node);
    fprintf(f, "\"} %.6f\n", v);
}

/* The replication families. The per-node ones have a sample per secondary on a primary, and
 * one for the node itself on a secondary (its view of the primary). A node never heard from
 * has no last-contact sample rather than a made-up one. */
static void replication_write(FILE *f, const control_snapshot_t *snap)
{
    const repl_status_t *r = snap->repl;
    bool primary = snap->role && strcmp(snap->role, "primary") == 0;
    const char *self = snap->node_id ? snap->node_id : "";

    metric_u64(f, "fennec_replication_index", "gauge",
               "Last index of the cluster's log as this node knows it: a primary's own, a "
               "secondary's as the primary last said.",
               primary ? r->index : r->primary_index);
    metric_u64(f, "fennec_replication_applied_index", "gauge",
               "Last index of the log applied (durable and served) on this node.",
               primary ? r->index : r->applied_index);

    family(f, "fennec_replication_entries_behind", "gauge",
           "Log entries a node has not applied (primary's last index minus the node's applied "
           "index), by node.");
    if (primary)
        for (size_t i = 0; i < r->node_count; i++)
            sample_u64(f, "fennec_replication_entries_behind", "node", r->nodes[i].id,
                       r->nodes[i].entries_behind);
    else
        sample_u64(f, "fennec_replication_entries_behind", "node", self, r->entries_behind);

    family(f, "fennec_replication_seconds_behind", "gauge",
           "Age of the oldest log entry a node has not applied, 0 when it has them all, by "
           "node; it keeps growing while a node is disconnected.");
    if (primary)
        for (size_t i = 0; i < r->node_count; i++)
            sample_double(f, "fennec_replication_seconds_behind", r->nodes[i].id,
                          r->nodes[i].seconds_behind);
    else
        sample_double(f, "fennec_replication_seconds_behind", self, r->seconds_behind);

    family(f, "fennec_replication_connected", "gauge",
           "1 while a node's replication stream is up (on a secondary: its stream from the "
           "primary), by node.");
    if (primary)
        for (size_t i = 0; i < r->node_count; i++)
            sample_u64(f, "fennec_replication_connected", "node", r->nodes[i].id,
                       r->nodes[i].connected ? 1 : 0);
    else
        sample_u64(f, "fennec_replication_connected", "node", self, r->connected ? 1 : 0);

    family(f, "fennec_replication_last_contact_seconds", "gauge",
           "Seconds since a node was last heard from on its replication stream, by node.");
    if (primary) {
        for (size_t i = 0; i < r->node_count; i++)
            if (r->nodes[i].last_contact_seconds >= 0)
                sample_double(f, "fennec_replication_last_contact_seconds", r->nodes[i].id,
                              r->nodes[i].last_contact_seconds);
    } else if (r->last_contact_seconds >= 0) {
        sample_double(f, "fennec_replication_last_contact_seconds", self, r->last_contact_seconds);
    }
}

/* The journal: commit (fsync) durations as a histogram, entries, snapshots, disk use. */
static void journal_write(FILE *f, const change_journal_stats_t *j)
{
    family(f, "fennec_journal_fsync_seconds", "histogram",
           "Duration of the journal's durable commits (one per group of changes), seconds.");
    for (unsigned b = 0; b < CHANGE_FSYNC_BUCKETS; b++)
        fprintf(f, "fennec_journal_fsync_seconds_bucket{le=\"%g\"} %llu\n", j->bucket_le[b],
                (unsigned long long)j->bucket[b]);
    fprintf(f, "fennec_journal_fsync_seconds_bucket{le=\"+Inf\"} %llu\n",
            (unsigned long long)j->count);
    fprintf(f, "fennec_journal_fsync_seconds_sum %.9f\n", j->sum);
    fprintf(f, "fennec_journal_fsync_seconds_count %llu\n", (unsigned long long)j->count);
    metric_u64(f, "fennec_journal_entries_total", "counter",
               "Entries this node appended to its journal since it started.", j->entries);
    metric_u64(f, "fennec_journal_commit_failures_total", "counter",
               "Journal commits that failed (the changes were refused).", j->failures);
    metric_u64(f, "fennec_journal_snapshots_total", "counter",
               "Snapshots written since the node started.", j->snapshots);
    metric_u64(f, "fennec_journal_first_index", "gauge", "First index the journal keeps.",
               j->first_index);
    metric_u64(f, "fennec_journal_snapshot_index", "gauge", "Index of the newest snapshot.",
               j->snapshot_index);
    metric_u64(f, "fennec_journal_bytes", "gauge", "Bytes the journal's entries use.",
               j->bytes_used);
    metric_u64(f, "fennec_journal_bytes_max", "gauge", "The journal's size limit, bytes.",
               j->bytes_max);
}

/* A sample with the label check=CHECK and, when KEY is not NULL, KEY=VALUE. */
static void check_label(FILE *f, const char *name, const char *check, const char *key,
                        const char *value)
{
    fprintf(f, "%s{check=\"", name);
    control_prom_escape(f, check);
    if (key) {
        fprintf(f, "\",%s=\"", key);
        control_prom_escape(f, value);
    }
    fputs("\"} ", f);
}

/* The health checks of this node's prober, one sample (or a few) per check. A check that was
 * never probed has no latency sample rather than a made-up one. */
static void health_write(FILE *f, const health_report_t *r)
{
    const health_config_t *cfg = r->config;
    size_t n = cfg ? cfg->check_count : 0;
    family(f, "fennec_health_check_up", "gauge",
           "1 while a health check counts as up for its pools (up, no result yet, or overridden "
           "up), 0 while it is down or overridden down; this node's view.");
    for (size_t i = 0; i < n; i++) {
        check_label(f, "fennec_health_check_up", cfg->checks[i].name, NULL, NULL);
        fprintf(f, "%d\n", health_effective(&r->states[i]).up ? 1 : 0);
    }
    family(f, "fennec_health_check_latency_seconds", "gauge",
           "Duration of a health check's last probe (until its result, a failure included), "
           "seconds.");
    for (size_t i = 0; i < n; i++) {
        if (r->states[i].last_latency_ms < 0)
            continue;
        check_label(f, "fennec_health_check_latency_seconds", cfg->checks[i].name, NULL, NULL);
        fprintf(f, "%.6f\n", r->states[i].last_latency_ms / 1e3);
    }
    family(f, "fennec_health_transitions_total", "counter",
           "State changes of a health check's state machine, by the state it went to.");
    for (size_t i = 0; i < n; i++) {
        check_label(f, "fennec_health_transitions_total", cfg->checks[i].name, "to", "up");
        fprintf(f, "%llu\n", (unsigned long long)r->counts[i].to_up);
        check_label(f, "fennec_health_transitions_total", cfg->checks[i].name, "to", "down");
        fprintf(f, "%llu\n", (unsigned long long)r->counts[i].to_down);
    }
    family(f, "fennec_health_probes_total", "counter",
           "Probes of a health check by result: ok, fail (an answer or error that fails the "
           "check), timeout.");
    static const char *const results[] = {"ok", "fail", "timeout"};
    for (size_t i = 0; i < n; i++) {
        const uint64_t v[] = {r->counts[i].ok, r->counts[i].fail, r->counts[i].timeout};
        for (size_t k = 0; k < 3; k++) {
            check_label(f, "fennec_health_probes_total", cfg->checks[i].name, "result", results[k]);
            fprintf(f, "%llu\n", (unsigned long long)v[k]);
        }
    }
}

/* The node's anycast announcement as its supervisor reports it, and the cluster's count. */
static void anycast_write(FILE *f, const control_snapshot_t *snap)
{
    const anycast_status_t *a = snap->anycast;
    const supervisor_report_t *r = &a->rep;
    metric_u64(f, "fennec_anycast_announced", "gauge",
               "1 while this node's service addresses are announced (BIRD confirmed it), else 0.",
               a->reported && r->state == REPL_ANNOUNCE_ANNOUNCED);
    family(f, "fennec_anycast_state", "gauge",
           "1 for the announce state this node is in (announced, withdrawn, draining, drained, "
           "down), 0 for the others.");
    for (int i = 1; i < REPL_ANNOUNCE_COUNT; i++)
        sample_u64(f, "fennec_anycast_state", "state", repl_announce_name((repl_announce_t)i),
                   a->reported && (int)r->state == i);
    family(f, "fennec_anycast_transitions_total", "counter",
           "Changes of this node's announce state since the supervisor started, by the state "
           "it went to.");
    for (int i = 1; i < REPL_ANNOUNCE_COUNT; i++)
        sample_u64(f, "fennec_anycast_transitions_total", "to",
                   repl_announce_name((repl_announce_t)i), r->transitions[i]);
    metric_u64(f, "fennec_supervisor_restarts_total", "counter",
               "Times fennec-supervisor started fennecd again after it exited.", r->restarts);
    metric_u64(f, "fennec_anycast_supervisor_linked", "gauge",
               "1 while the link to fennec-supervisor is up.", a->linked);
    metric_u64(f, "fennec_anycast_bird_connected", "gauge",
               "1 while the supervisor is connected to BIRD's control socket.", r->bird_connected);
    if (snap->announce) {
        metric_u64(f, "fennec_anycast_cluster_announced", "gauge",
                   "Nodes of the cluster announced, as this node's view says.",
                   snap->announce->announced);
        metric_u64(f, "fennec_anycast_cluster_nodes", "gauge",
                   "Nodes in this node's view of the cluster's announcements.",
                   snap->announce->count);
        metric_u64(f, "fennec_anycast_cluster_view_fresh", "gauge",
                   "1 while this node's view of the cluster's announcements is fresh (a "
                   "secondary: the primary reported it recently).",
                   snap->announce->fresh);
    }
}

int control_metrics_render(const control_snapshot_t *snap, char **out, size_t *len)
{
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    if (!f)
        return -ENOMEM;
    const server_stats_t *s = &snap->stats;
    const query_stats_t *q = &s->query;

    family(f, "fennec_build_info", "gauge", "Build of the running fennecd; the value is 1.");
    fputs("fennec_build_info{version=\"", f);
    control_prom_escape(f, snap->version ? snap->version : "");
    fputs("\",node=\"", f);
    control_prom_escape(f, snap->node_id ? snap->node_id : "");
    fputs("\",role=\"", f);
    control_prom_escape(f, snap->role ? snap->role : "");
    fputs("\"} 1\n", f);

    family(f, "process_start_time_seconds", "gauge",
           "Start time of the process since the Unix epoch in seconds.");
    fprintf(f, "process_start_time_seconds %.3f\n", snap->start_time);

    family(f, "fennec_workers", "gauge", "DNS worker threads.");
    fprintf(f, "fennec_workers %u\n", s->workers);

    family(f, "fennec_dns_queries_total", "counter", "DNS queries received, by transport.");
    sample_u64(f, "fennec_dns_queries_total", "transport", "udp", q->queries[QUERY_UDP]);
    sample_u64(f, "fennec_dns_queries_total", "transport", "tcp", q->queries[QUERY_TCP]);

    family(f, "fennec_dns_responses_total", "counter", "DNS answers sent, by response code.");
    for (unsigned r = 0; r < QUERY_RCODE_MAX; r++) {
        const char *name = control_rcode_name(r);
        if (r <= 5 || q->rcode[r] != 0) {
            char other[16];
            if (!name) {
                snprintf(other, sizeof(other), "RCODE%u", r);
                name = other;
            }
            sample_u64(f, "fennec_dns_responses_total", "rcode", name, q->rcode[r]);
        }
    }

    family(f, "fennec_dns_queries_by_qtype_total", "counter",
           "DNS queries received, by query type (OTHER for types above 255).");
    for (unsigned t = 0; t < 256; t++) {
        if (q->qtype[t] == 0 && !qtype_always(t))
            continue;
        char name[32];
        if (knot_rrtype_to_string((uint16_t)t, name, sizeof(name)) < 0)
            snprintf(name, sizeof(name), "TYPE%u", t);
        sample_u64(f, "fennec_dns_queries_by_qtype_total", "qtype", name, q->qtype[t]);
    }
    sample_u64(f, "fennec_dns_queries_by_qtype_total", "qtype", "OTHER", q->qtype_other);

    metric_u64(f, "fennec_dns_queries_ignored_total", "counter",
               "DNS messages not answered because they were responses or too short for a header.",
               q->dropped);

    metric_u64(f, "fennec_dns_truncated_total", "counter", "DNS answers sent with the TC bit.",
               q->truncated);

    family(f, "fennec_tsig_total", "counter", "Signed (TSIG) queries, by outcome.");
    static const char *const tsig_results[QUERY_TSIG_MAX] = {"ok",      "badkey",   "badsig",
                                                             "badtime", "badtrunc", "formerr"};
    for (unsigned i = 0; i < QUERY_TSIG_MAX; i++)
        sample_u64(f, "fennec_tsig_total", "result", tsig_results[i], q->tsig[i]);
    family(f, "fennec_axfr_total", "counter",
           "Zone transfer requests (AXFR, IXFR answered as AXFR), by outcome.");
    static const char *const xfr_results[QUERY_XFR_MAX] = {"refused", "started", "done", "failed",
                                                           "udp_soa"};
    for (unsigned i = 0; i < QUERY_XFR_MAX; i++)
        sample_u64(f, "fennec_axfr_total", "result", xfr_results[i], q->xfr[i]);

    metric_u64(f, "fennec_udp_received_total", "counter", "UDP datagrams read.", s->udp_received);
    metric_u64(f, "fennec_udp_answered_total", "counter", "UDP answers the kernel accepted.",
               s->udp_answered);
    metric_u64(f, "fennec_udp_ignored_total", "counter",
               "UDP datagrams read and not answered: oversized, responses, runts.", s->udp_ignored);
    metric_u64(f, "fennec_udp_send_dropped_total", "counter",
               "UDP answers dropped because the socket send buffer was full.", s->udp_dropped);
    metric_u64(f, "fennec_udp_send_errors_total", "counter",
               "UDP answers the kernel refused for another reason.", s->udp_send_errors);

    metric_u64(f, "fennec_udp_batches_total", "counter",
               "recvmmsg calls that returned datagrams (received / batches = mean batch size).",
               s->udp_batches);
    metric_u64(f, "fennec_udp_gso_refused_total", "counter",
               "Groups of equal-size answers the kernel refused to segment (a route MTU below "
               "the answer size, a device without checksum offload); sent one by one.",
               s->udp_gso_refused);
    metric_u64(f, "fennec_udp_segmented_total", "counter",
               "UDP answers that left in a segmented send with equal-size answers to the same "
               "client (UDP_SEGMENT).",
               s->udp_segmented);

    family(f, "fennec_dns_answer_latency_seconds", "histogram",
           "UDP answer latency: from the query's arrival in the kernel (SO_TIMESTAMPNS) to the "
           "answer handed to the kernel, queueing included.");
    {
        uint64_t cum = 0;
        for (unsigned b = 0; b < SERVER_LATENCY_BUCKETS; b++) {
            cum += s->udp_latency[b];
            fprintf(f, "fennec_dns_answer_latency_seconds_bucket{le=\"%g\"} %llu\n",
                    server_latency_bounds_us[b] / 1e6, (unsigned long long)cum);
        }
        cum += s->udp_latency[SERVER_LATENCY_BUCKETS];
        fprintf(f, "fennec_dns_answer_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
        fprintf(f, "fennec_dns_answer_latency_seconds_sum %.9f\n", s->udp_latency_sum_ns / 1e9);
        fprintf(f, "fennec_dns_answer_latency_seconds_count %llu\n", (unsigned long long)cum);
    }

    family(f, "fennec_overload_shed_total", "counter",
           "UDP queries read and dropped unanswered by overload control, by reason: codel "
           "(waited too long in the queue).");
    sample_u64(f, "fennec_overload_shed_total", "reason", "codel", s->udp_shed_codel);
    metric_u64(f, "fennec_overload_paced_total", "counter",
               "Times a worker stopped reading UDP at CUBIC's admitted rate; the excess stays in "
               "the kernel queue and is dropped there (fennec_udp_kernel_drops_total).",
               s->udp_paced);
    family(f, "fennec_overload_admitted_rate", "gauge",
           "CUBIC's admitted UDP query rate per worker, queries per second (its maximum while "
           "it does not limit).");
    for (unsigned i = 0; i < snap->overload_count; i++)
        fprintf(f, "fennec_overload_admitted_rate{worker=\"%u\"} %.0f\n", i,
                snap->overload[i].admitted_rate);
    family(f, "fennec_overload_load", "gauge",
           "Smoothed load on each worker thread (running or waiting to run, a CPU quota "
           "included), 0..1.");
    for (unsigned i = 0; i < snap->overload_count; i++)
        fprintf(f, "fennec_overload_load{worker=\"%u\"} %.3f\n", i, snap->overload[i].load);
    family(f, "fennec_overload_congestion_events_total", "counter",
           "CUBIC congestion events (load above the threshold) per worker.");
    for (unsigned i = 0; i < snap->overload_count; i++)
        fprintf(f, "fennec_overload_congestion_events_total{worker=\"%u\"} %llu\n", i,
                (unsigned long long)snap->overload[i].congestion_events);
    family(f, "fennec_overload_codel_dropping", "gauge",
           "1 while a worker's CoDel is in its dropping state.");
    for (unsigned i = 0; i < snap->overload_count; i++)
        fprintf(f, "fennec_overload_codel_dropping{worker=\"%u\"} %d\n", i,
                snap->overload[i].codel_dropping ? 1 : 0);
    family(f, "fennec_overload_small_rcvbuf", "gauge",
           "1 while a worker's UDP sockets use overload.udp_rcvbuf_congested.");
    for (unsigned i = 0; i < snap->overload_count; i++)
        fprintf(f, "fennec_overload_small_rcvbuf{worker=\"%u\"} %d\n", i,
                snap->overload[i].small_rcvbuf ? 1 : 0);
    metric_u64(f, "fennec_udp_kernel_drops_total", "counter",
               "UDP queries the kernel dropped because the socket receive queue was full.",
               s->udp_kernel_drops);

    metric_u64(f, "fennec_tcp_connections_accepted_total", "counter", "TCP connections accepted.",
               s->tcp_accepted);
    metric_u64(f, "fennec_tcp_connections_refused_total", "counter",
               "TCP connections closed at once because the connection limit was reached.",
               s->tcp_refused);
    metric_u64(f, "fennec_tcp_connections_open", "gauge", "TCP connections open now.", s->tcp_open);
    family(f, "fennec_tcp_connections_closed_total", "counter",
           "TCP connections closed by the server, by reason.");
    sample_u64(f, "fennec_tcp_connections_closed_total", "reason", "idle", s->tcp_closed_idle);
    sample_u64(f, "fennec_tcp_connections_closed_total", "reason", "error", s->tcp_closed_bad);

    metric_u64(f, "fennec_tcp_messages_received_total", "counter", "DNS messages read over TCP.",
               s->tcp_queries);
    metric_u64(f, "fennec_tcp_answers_total", "counter",
               "DNS answers written (or queued) over TCP.", s->tcp_answered);

    family(f, "fennec_zones", "gauge", "Zones served.");
    fprintf(f, "fennec_zones %zu\n", snap->zone_count);
    if (snap->zone_count > 0) {
        family(f, "fennec_zone_serial", "gauge", "SOA serial of each zone served.");
        for (size_t i = 0; i < snap->zone_count; i++)
            sample_u64(f, "fennec_zone_serial", "zone", snap->zones[i].name, snap->zones[i].serial);
        family(f, "fennec_zone_records", "gauge", "Resource records in each zone served.");
        for (size_t i = 0; i < snap->zone_count; i++)
            sample_u64(f, "fennec_zone_records", "zone", snap->zones[i].name,
                       snap->zones[i].records);
    }

    if (snap->repl)
        replication_write(f, snap);
    if (snap->journal)
        journal_write(f, snap->journal);
    if (snap->health)
        health_write(f, snap->health);
    if (snap->anycast)
        anycast_write(f, snap);

    if (fclose(f) != 0) {
        free(buf);
        return -ENOMEM;
    }
    *out = buf;
    *len = blen;
    return 0;
}
