/*
 * The HTML status page on "/": what an operator glances at in a browser. Server-rendered,
 * refreshed by a meta tag, with an inline SVG chart of the replication lag: no script and
 * nothing fetched from elsewhere, so it works on a node cut off from the world. The renderers
 * are pure (the snapshot in, text out) so that the unit tests read what a browser gets.
 */
#include "control_int.h"
#include "fennec/common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void control_html_escape(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* ---- the lag chart ------------------------------------------------------------------------ */

#define CHART_SPAN   600.0 /* seconds shown: the last 10 minutes */
#define CHART_LEFT   56
#define CHART_RIGHT  130 /* room for the legend */
#define CHART_TOP    12
#define CHART_BOTTOM 34

static const char *const g_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                       "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define COLOR_COUNT (sizeof(g_colors) / sizeof(g_colors[0]))

/* The smallest of 1, 2, 5 × 10^k at or above V (V > 0). */
static double nice_ceiling(double v)
{
    double p = pow(10, floor(log10(v)));
    for (int i = 0; i < 4; i++) {
        double m = i == 0 ? 1 : i == 1 ? 2 : i == 2 ? 5 : 10;
        if (m * p >= v)
            return m * p;
    }
    return 10 * p;
}

/* An axis value in seconds, short: "0", "0.5", "2", "120". */
static void seconds_label(char *out, size_t len, double v)
{
    if (v == floor(v))
        snprintf(out, len, "%.0f s", v);
    else
        snprintf(out, len, "%g s", v);
}

void control_lag_chart_write(FILE *f, const repl_history_t *h, double now)
{
    const int w = CONTROL_CHART_WIDTH, ht = CONTROL_CHART_HEIGHT;
    const double pw = w - CHART_LEFT - CHART_RIGHT, ph = ht - CHART_TOP - CHART_BOTTOM;
    const double t0 = now - CHART_SPAN;
    bool any = false;
    double top = 0;
    if (h && h->seconds_behind) {
        for (size_t i = 0; i < h->series * h->points; i++) {
            double t = h->start + (double)(i % h->points) * h->step;
            double v = h->seconds_behind[i];
            if (v >= 0 && t >= t0 && t <= now + h->step) {
                any = true;
                if (v > top)
                    top = v;
            }
        }
    }
    double ymax = top > 1 ? nice_ceiling(top) : 1;

    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"seconds behind the primary, last "
            "10 minutes\" font-family=\"sans-serif\" font-size=\"11\">\n",
            w, ht, w, ht);
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
            "stroke=\"#999\"/>\n",
            CHART_LEFT, CHART_TOP, pw, ph);
    /* Horizontal grid and the y labels. */
    for (int i = 0; i <= 4; i++) {
        double v = ymax * i / 4;
        double y = CHART_TOP + ph - ph * i / 4;
        char label[32];
        seconds_label(label, sizeof(label), v);
        if (i > 0 && i < 4)
            fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                    CHART_LEFT, y, CHART_LEFT + pw, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", CHART_LEFT - 4,
                y + 4, label);
    }
    /* The x labels: minutes before now. */
    for (int m = 10; m >= 0; m -= 2) {
        double x = CHART_LEFT + pw * (CHART_SPAN - m * 60.0) / CHART_SPAN;
        char label[16];
        if (m == 0)
            snprintf(label, sizeof(label), "now");
        else
            snprintf(label, sizeof(label), "-%d min", m);
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", x,
                CHART_TOP + ph + 14, label);
    }
    fprintf(f,
            "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">seconds behind the primary, "
            "last 10 minutes</text>\n",
            CHART_LEFT + pw / 2, ht - 4);

    if (!any) {
        fprintf(f,
                "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#666\">no sample "
                "yet</text>\n",
                CHART_LEFT + pw / 2, CHART_TOP + ph / 2);
    }
    /* One polyline per run of samples: a hole or a disconnected node breaks the line, so
     * that no line is drawn across a time nothing was known. */
    for (size_t s = 0; h && any && s < h->series; s++) {
        const char *color = g_colors[s % COLOR_COUNT];
        const double *vals = h->seconds_behind + s * h->points;
        bool open = false;
        size_t run = 0;
        double lastx = 0, lasty = 0;
        for (size_t k = 0; k <= h->points; k++) {
            double t = h->start + (double)k * h->step;
            bool ok = k < h->points && vals[k] >= 0 && t >= t0 && t <= now + h->step;
            if (ok) {
                double tx = t > now ? now : t;
                double x = CHART_LEFT + pw * (tx - t0) / CHART_SPAN;
                double y = CHART_TOP + ph - ph * (vals[k] > ymax ? ymax : vals[k]) / ymax;
                if (!open) {
                    fprintf(f,
                            "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                            "stroke-linecap=\"round\" stroke-linejoin=\"round\" points=\"",
                            color);
                    open = true;
                    run = 0;
                } else {
                    fputc(' ', f);
                }
                fprintf(f, "%.1f,%.1f", x, y);
                lastx = x;
                lasty = y;
                run++;
            } else if (open) {
                if (run == 1) /* a lone sample: a dot */
                    fprintf(f, " %.1f,%.1f", lastx, lasty);
                fputs("\"><title>", f);
                control_html_escape(f, h->ids[s]);
                fputs("</title></polyline>\n", f);
                open = false;
            }
        }
    }
    /* The legend. */
    for (size_t s = 0; h && s < h->series; s++) {
        double y = CHART_TOP + 10 + 16.0 * (double)s;
        if (y > CHART_TOP + ph)
            break;
        fprintf(f,
                "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"3\"/><text x=\"%.0f\" y=\"%.1f\">",
                CHART_LEFT + pw + 8, y - 4, CHART_LEFT + pw + 24, y - 4, g_colors[s % COLOR_COUNT],
                CHART_LEFT + pw + 28, y);
        control_html_escape(f, h->ids[s]);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
}

/* ---- the page ----------------------------------------------------------------------------- */

/* A cell from a JSON value: strings escaped, numbers as they are, null as "-". */
static void cell(FILE *f, const json_t *v, bool seconds)
{
    fputs("<td>", f);
    if (json_is_string(v))
        control_html_escape(f, json_string_value(v));
    else if (json_is_boolean(v))
        fputs(json_is_true(v) ? "yes" : "no", f);
    else if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        fprintf(f, seconds ? "%.3f s" : "%g", json_real_value(v));
    else
        fputs("-", f);
    fputs("</td>", f);
}

static int replication_write(FILE *f, const control_snapshot_t *snap)
{
    const repl_status_t *r = snap->repl;
    fputs("<h2>Replication</h2>\n", f);
    if (strcmp(snap->role ? snap->role : "", "primary") == 0) {
        fprintf(f, "<p>primary, log index %llu</p>\n", (unsigned long long)r->index);
    } else {
        fputs("<p>secondary of ", f);
        const char *primary = snap->primary_address ? snap->primary_address : r->primary_addr;
        control_html_escape(f, primary[0] ? primary : "(unknown)");
        fprintf(f, " (%s), applied %llu of %llu</p>\n", repl_state_name(r->state),
                (unsigned long long)r->applied_index, (unsigned long long)r->primary_index);
    }
    json_t *nodes = control_nodes_json(snap);
    if (!nodes)
        return -ENOMEM;
    fputs("<table><tr><th>node</th><th>address</th><th>role</th><th>state</th>"
          "<th>connected</th><th>applied</th><th>entries behind</th><th>seconds behind</th>"
          "<th>last contact</th></tr>\n",
          f);
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(nodes, "nodes"), i, n)
    {
        fputs("<tr>", f);
        cell(f, json_object_get(n, "id"), false);
        cell(f, json_object_get(n, "address"), false);
        cell(f, json_object_get(n, "role"), false);
        cell(f, json_object_get(n, "state"), false);
        cell(f, json_object_get(n, "connected"), false);
        cell(f, json_object_get(n, "applied_index"), false);
        cell(f, json_object_get(n, "entries_behind"), false);
        cell(f, json_object_get(n, "seconds_behind"), true);
        cell(f, json_object_get(n, "last_contact_seconds"), true);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    json_decref(nodes);
    fputs("<h3>Seconds behind, last 10 minutes</h3>\n<div>", f);
    control_lag_chart_write(f, snap->history, snap->now);
    fputs("</div>\n", f);
    return 0;
}

/* A duration in seconds, short: "42 s", "5 min 3 s", "2 h 10 min". */
static void age_write(FILE *f, double s)
{
    long long v = s > 0 ? (long long)s : 0;
    if (v < 60)
        fprintf(f, "%lld s", v);
    else if (v < 3600)
        fprintf(f, "%lld min %lld s", v / 60, v % 60);
    else
        fprintf(f, "%lld h %lld min", v / 3600, v % 3600 / 60);
}

/* The Checks and Pools tables, from the same JSON as GET /v1/health, so that the page and the
 * API cannot tell two stories. A check's state cell carries its class (state-up, -down,
 * -unknown) for the colours. */
static int health_write(FILE *f, const control_snapshot_t *snap)
{
    json_t *h = control_health_json(snap->health);
    if (!h)
        return -ENOMEM;
    fputs("<h2>Health checks</h2>\n", f);
    const json_t *checks = json_object_get(h, "checks");
    if (json_array_size(checks) == 0) {
        fputs("<p>no health checks configured</p>\n", f);
        json_decref(h);
        return 0;
    }
    fputs("<table id=\"checks\"><tr><th>check</th><th>type</th><th>target</th><th>state</th>"
          "<th>override</th><th>since</th><th>last result</th><th>latency</th>"
          "<th>transitions</th></tr>\n",
          f);
    size_t i;
    const json_t *c;
    json_array_foreach(checks, i, c)
    {
        const char *state = json_string_value(json_object_get(c, "state"));
        fputs("<tr>", f);
        cell(f, json_object_get(c, "name"), false);
        cell(f, json_object_get(c, "type"), false);
        cell(f, json_object_get(c, "target"), false);
        fputs("<td class=\"state-", f);
        control_html_escape(f, state);
        fputs("\">", f);
        control_html_escape(f, state);
        fputs("</td>", f);
        cell(f, json_object_get(c, "override"), false);
        fputs("<td>", f);
        age_write(f, snap->now - json_number_value(json_object_get(c, "since")));
        fputs(" ago</td>", f);
        cell(f, json_object_get(c, "last_result"), false);
        const json_t *lat = json_object_get(c, "last_latency_ms");
        if (json_is_number(lat))
            fprintf(f, "<td>%.1f ms</td>", json_number_value(lat));
        else
            fputs("<td>-</td>", f);
        cell(f, json_object_get(c, "transitions"), false);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<h2>Pools</h2>\n", f);
    const json_t *pools = json_object_get(h, "pools");
    if (json_array_size(pools) == 0) {
        fputs("<p>no pools configured</p>\n", f);
        json_decref(h);
        return 0;
    }
    fputs("<table id=\"pools\"><tr><th>pool</th><th>type</th><th>TTL now</th><th>serving</th>"
          "<th>members</th></tr>\n",
          f);
    const json_t *p;
    json_array_foreach(pools, i, p)
    {
        fputs("<tr>", f);
        cell(f, json_object_get(p, "name"), false);
        cell(f, json_object_get(p, "type"), false);
        cell(f, json_object_get(p, "ttl_now"), false);
        fputs("<td>", f);
        size_t k;
        const json_t *a;
        json_array_foreach(json_object_get(p, "serving"), k, a)
        {
            if (k)
                fputs(" ", f);
            control_html_escape(f, json_string_value(a));
        }
        if (json_array_size(json_object_get(p, "serving")) == 0)
            fputs("(nothing: NODATA)", f);
        fputs("</td><td>", f);
        const json_t *m;
        json_array_foreach(json_object_get(p, "members"), k, m)
        {
            if (k)
                fputs(", ", f);
            control_html_escape(f, json_string_value(json_object_get(m, "address")));
            fputs(" (", f);
            control_html_escape(f, json_string_value(json_object_get(m, "check")));
            fputs(": ", f);
            control_html_escape(f, json_string_value(json_object_get(m, "state")));
            fputs(")", f);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    json_decref(h);
    return 0;
}

int control_page_render(const control_snapshot_t *snap, char **out, size_t *len)
{
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&text, &tlen);
    if (!f)
        return -ENOMEM;
    int rc = 0;
    const query_stats_t *q = &snap->stats.query;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
          "<meta http-equiv=\"refresh\" content=\"5\"><title>fennec ",
          f);
    control_html_escape(f, snap->node_id);
    fputs("</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
          "collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
          ".state-up{background:#dfd}.state-down{background:#fdd}.state-unknown{background:#eee}"
          "</style>"
          "</head><body>\n<h1>fennec ",
          f);
    control_html_escape(f, snap->node_id);
    fputs("</h1>\n<table><tr><th>role</th><td>", f);
    control_html_escape(f, snap->role);
    fputs("</td></tr><tr><th>version</th><td>", f);
    control_html_escape(f, snap->version);
    fprintf(f,
            "</td></tr><tr><th>uptime</th><td>%.0f s</td></tr><tr><th>workers</th><td>%u</td>"
            "</tr><tr><th>queries</th><td>%llu (UDP %llu, TCP %llu)</td></tr></table>\n",
            snap->now - snap->start_time, snap->stats.workers,
            (unsigned long long)(q->queries[0] + q->queries[1]),
            (unsigned long long)q->queries[QUERY_UDP], (unsigned long long)q->queries[QUERY_TCP]);
    fputs("<h2>Zones</h2>\n<table><tr><th>zone</th><th>serial</th><th>records</th></tr>\n", f);
    for (size_t i = 0; i < snap->zone_count; i++) {
        fputs("<tr><td>", f);
        control_html_escape(f, snap->zones[i].name);
        fprintf(f, "</td><td>%u</td><td>%zu</td></tr>\n", snap->zones[i].serial,
                snap->zones[i].records);
    }
    fputs("</table>\n", f);
    if (snap->health)
        rc = health_write(f, snap);
    if (snap->repl && rc == 0)
        rc = replication_write(f, snap);
    fputs("<h2>Answers by response code</h2>\n<table>", f);
    for (unsigned r = 0; r < QUERY_RCODE_MAX; r++) {
        const char *name = control_rcode_name(r);
        if (name && (r <= 5 || q->rcode[r]))
            fprintf(f, "<tr><th>%s</th><td>%llu</td></tr>", name, (unsigned long long)q->rcode[r]);
    }
    fputs("</table>\n<p><a href=\"/metrics\">metrics</a> &middot; <a href=\"/v1/status\">"
          "status JSON</a> &middot; <a href=\"/v1/nodes\">nodes JSON</a> &middot; "
          "<a href=\"/v1/health\">health JSON</a></p>\n</body></html>\n",
          f);
    if (fclose(f) != 0 && rc == 0)
        rc = -ENOMEM;
    if (rc != 0) {
        free(text);
        return rc;
    }
    *out = text;
    *len = tlen;
    return 0;
}

enum MHD_Result control_handle_page(control_t *ctl, struct MHD_Connection *conn)
{
    control_view_t v;
    char *text = NULL;
    size_t len = 0;
    if (control_view_take(ctl, &v, CONTROL_VIEW_HISTORY | CONTROL_VIEW_HEALTH) != 0)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    int rc = control_page_render(&v.snap, &text, &len);
    control_view_release(&v);
    if (rc != 0)
        return control_send_rc(conn, -ENOMEM, "out of memory");
    return control_send_text(conn, MHD_HTTP_OK, "text/html; charset=utf-8", text, len);
}
