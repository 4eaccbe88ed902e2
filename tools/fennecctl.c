/*
 * fennecctl — the operator CLI. Talks to a node's control endpoint (docs/api.md) with
 * libcurl; prints tables for people and, with --json, the server's JSON for scripts.
 * Exit codes: 0 done, 1 failed (the server refused, is unreachable, or lacks the feature),
 * 2 usage error, 3 a write with --wait that is applied on the primary but that not every
 * connected node confirmed in time, 4 a drain refused because it would leave fewer than
 * anycast.min_announced nodes announced (or the node cannot tell).
 */
#include "fennec/common.h"
#include "fennec/control.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK          0
#define EXIT_FAIL        1
#define EXIT_USAGE       2
#define EXIT_UNCONFIRMED 3 /* --wait: applied, not confirmed by every connected node */
#define EXIT_REFUSED     4 /* drain: refused by anycast.min_announced or a stale view */

#define DEFAULT_URL "http://127.0.0.1:8053"
#define MAX_ANSWER  (16 * 1024 * 1024)

typedef struct opts {
    const char *url;
    const char *key_file;
    bool json;
    bool watch;
    bool wait;      /* writes: ?wait=all */
    bool all_nodes; /* health: ask every member */
    bool force;     /* zone reload: ?force=1; drain: {"force": true} */
    double interval;
    long timeout;
    char token[CONTROL_TOKEN_LEN + 1];
    bool has_token;
} opts_t;

typedef struct verb verb_t;
typedef int (*verb_fn)(opts_t *o, const verb_t *v, char **args, int nargs);

struct verb {
    const char *name; /* "status", "node add", ... */
    int min_args;
    int max_args; /* -1: no limit */
    const char *usage;
    const char *help;
    verb_fn run;
    bool waits; /* a write that takes --wait */
};

static volatile sig_atomic_t g_stop;

/* ------------------------------------------------------------------------------------------ */
/* HTTP                                                                                       */

typedef struct answer {
    long status;
    char *body;
    size_t len;
    bool overflow;
    json_t *json; /* parsed body when it is JSON */
} answer_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    answer_t *a = userdata;
    size_t n = size * nmemb;
    if (a->len + n > MAX_ANSWER) {
        a->overflow = true;
        return 0;
    }
    char *nb = realloc(a->body, a->len + n + 1);
    if (!nb)
        return 0;
    memcpy(nb + a->len, ptr, n);
    a->len += n;
    nb[a->len] = '\0';
    a->body = nb;
    return n;
}

static void answer_free(answer_t *a)
{
    free(a->body);
    json_decref(a->json);
    memset(a, 0, sizeof(*a));
}

/* The options every request shares: URL, timeouts, where the answer goes (A) and the headers
 * (the token when there is one), which the caller frees with curl_slist_free_all(). */
static struct curl_slist *easy_common(CURL *c, const opts_t *o, const char *url, long timeout,
                                      char *errbuf, answer_t *a)
{
    char auth[CONTROL_TOKEN_LEN + 32];
    struct curl_slist *headers = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->timeout < 5 ? o->timeout : 5L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "fennecctl/" FENNEC_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    headers = curl_slist_append(headers, "Accept: application/json");
    if (o->has_token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
        headers = curl_slist_append(headers, auth);
        memset(auth, 0, sizeof(auth));
    }
    return headers;
}

/* Performs one request; returns 0 when an HTTP answer arrived (any status), else prints why
 * and returns -1. PATH must already be escaped. */
static int http_call(const opts_t *o, const char *method, const char *path, const char *body,
                     answer_t *a)
{
    int rc = -1;
    char url[4096];
    char errbuf[CURL_ERROR_SIZE] = "";
    memset(a, 0, sizeof(*a));
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/')
        ul--;
    /* --wait applies to the writes that take it (main() refuses it elsewhere). */
    bool wait = o->wait && strcmp(method, "GET") != 0;
    if ((size_t)snprintf(url, sizeof(url), "%.*s%s%s", (int)ul, o->url, path,
                         !wait               ? ""
                         : strchr(path, '?') ? "&wait=all"
                                             : "?wait=all") >= sizeof(url)) {
        fprintf(stderr, "fennecctl: the URL is too long\n");
        return -1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "fennecctl: cannot initialise libcurl\n");
        return -1;
    }
    /* A waiting write may take the server's whole wait before it answers. */
    struct curl_slist *headers =
        easy_common(c, o, url, o->timeout + (wait ? CONTROL_WAIT_DEFAULT_MS / 1000 : 0), errbuf, a);
    if (strcmp(method, "POST") == 0) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (a->overflow)
            fprintf(stderr, "fennecctl: the answer from %s is larger than %d bytes\n", url,
                    MAX_ANSWER);
        else
            fprintf(stderr, "fennecctl: cannot reach fennecd at %.*s: %s\n", (int)ul, o->url,
                    errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto cleanup;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    if (a->body)
        a->json = json_loadb(a->body, a->len, 0, NULL);
    rc = 0;
cleanup:
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (rc != 0)
        answer_free(a);
    return rc;
}

/* GET of every URLS[i] at once (one curl multi handle): a node that is slow or gone costs
 * the timeout once, not once per node. ANSWERS[i] gets what came back; ERRS[i] stays empty
 * when an HTTP answer arrived, else says why none did. */
static void http_get_many(const opts_t *o, char **urls, size_t n, answer_t *answers,
                          char (*errs)[CURL_ERROR_SIZE])
{
    CURLM *m = curl_multi_init();
    CURL **easy = calloc(n ? n : 1, sizeof(*easy));
    struct curl_slist **headers = calloc(n ? n : 1, sizeof(*headers));
    if (!m || !easy || !headers) {
        for (size_t i = 0; i < n; i++)
            snprintf(errs[i], CURL_ERROR_SIZE, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        memset(&answers[i], 0, sizeof(answers[i]));
        errs[i][0] = '\0';
        if (!(easy[i] = curl_easy_init())) {
            snprintf(errs[i], CURL_ERROR_SIZE, "cannot initialise libcurl");
            continue;
        }
        headers[i] = easy_common(easy[i], o, urls[i], o->timeout, errs[i], &answers[i]);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, headers[i]);
        curl_easy_setopt(easy[i], CURLOPT_PRIVATE, (void *)(uintptr_t)i);
        curl_multi_add_handle(m, easy[i]);
    }
    int running = 1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            void *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            size_t i = (uintptr_t)priv;
            answer_t *a = &answers[i];
            if (msg->data.result != CURLE_OK) {
                if (!errs[i][0])
                    snprintf(errs[i], CURL_ERROR_SIZE, "%s",
                             a->overflow ? "the answer is too large"
                                         : curl_easy_strerror(msg->data.result));
                continue;
            }
            errs[i][0] = '\0'; /* curl may leave text there on success */
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &a->status);
            if (a->body)
                a->json = json_loadb(a->body, a->len, 0, NULL);
        }
        if (running && curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK)
            break;
    }
cleanup:
    for (size_t i = 0; easy && i < n; i++) {
        if (easy[i]) {
            curl_multi_remove_handle(m, easy[i]);
            curl_easy_cleanup(easy[i]);
        }
        curl_slist_free_all(headers[i]);
    }
    free(easy);
    free(headers);
    if (m)
        curl_multi_cleanup(m);
}

static char *escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e) {
        fprintf(stderr, "fennecctl: out of memory\n");
        exit(EXIT_FAIL);
    }
    return e;
}

/* PREFIX + ARG escaped for a URL path + SUFFIX into PATH (CAP bytes). An argument too long
 * for the path is refused rather than cut short. */
static bool api_path(char *path, size_t cap, const char *prefix, const char *arg,
                     const char *suffix)
{
    char *e = escape(arg);
    int n = snprintf(path, cap, "%s%s%s", prefix, e, suffix);
    curl_free(e);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "fennecctl: argument too long: %.40s...\n", arg);
        return false;
    }
    return true;
}

/* The "warnings" of answer J on standard error, each {"change": I, "message": M}; FILE and
 * LINES (NLINES of them, NULL: none) name the line of the change file change I came from. */
static void print_warnings(const json_t *j, const char *file, const size_t *lines, size_t nlines)
{
    json_t *list = json_is_object(j) ? json_object_get(j, "warnings") : NULL;
    size_t i;
    json_t *w;
    json_array_foreach(list, i, w)
    {
        json_t *at = json_object_get(w, "change");
        const char *msg = json_string_value(json_object_get(w, "message"));
        json_int_t k = json_is_integer(at) ? json_integer_value(at) : -1;
        if (lines && k >= 0 && (size_t)k < nlines)
            fprintf(stderr, "fennecctl: warning: %s:%zu: %s\n", file, lines[k], msg ? msg : "");
        else
            fprintf(stderr, "fennecctl: warning: %s\n", msg ? msg : "");
    }
}

static void print_json(const json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text) {
        puts(text);
        free(text);
    }
}

/* Turns a non-2xx answer into a message and exit code 1; 0 for success. */
static int answer_check(const opts_t *o, const verb_t *v, const answer_t *a)
{
    if (a->status >= 200 && a->status < 300) {
        if (!a->json) {
            fprintf(stderr, "fennecctl: %s: the server's answer is not JSON\n", v->name);
            return EXIT_FAIL;
        }
        return EXIT_OK;
    }
    const char *msg = NULL;
    if (a->json && json_is_object(a->json))
        msg = json_string_value(json_object_get(a->json, "error"));
    if (!msg)
        msg = "(no message)";
    char line[2048];
    if (a->status == 504 && json_is_array(json_object_get(a->json, "lagging"))) {
        snprintf(line, sizeof(line), "not confirmed by every node: %s", msg);
        fprintf(stderr, "fennecctl: %s: %s\n", v->name, line);
        if (o->json)
            print_json(a->json);
        return EXIT_UNCONFIRMED;
    }
    switch (a->status) {
    case 501:
        if (strstr(msg, "not available in this version"))
            snprintf(line, sizeof(line), "%s", msg);
        else
            snprintf(line, sizeof(line), "not available in this version of fennec (%s)", msg);
        break;
    case 401:
        snprintf(line, sizeof(line), "not authorized: %s%s", msg,
                 o->has_token ? "" : " [no key given: use --key-file FILE or FENNEC_KEY_FILE]");
        break;
    case 403:
        snprintf(line, sizeof(line), "refused: %s", msg);
        break;
    default:
        snprintf(line, sizeof(line), "%s (HTTP %ld)", msg, a->status);
        break;
    }
    fprintf(stderr, "fennecctl: %s: %s\n", v->name, line);
    if (o->json) {
        json_t *e = json_pack("{s:s, s:I}", "error", line, "http_status", (json_int_t)a->status);
        print_json(e);
        json_decref(e);
    }
    return EXIT_FAIL;
}

/* One request whose JSON answer is printed as is with --json; returns the exit code and
 * leaves the answer in A for the table printer when it succeeded. */
static int request(opts_t *o, const verb_t *v, const char *method, const char *path, json_t *body,
                   answer_t *a)
{
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text) {
            fprintf(stderr, "fennecctl: out of memory\n");
            return EXIT_FAIL;
        }
    }
    int rc = http_call(o, method, path, text, a);
    free(text);
    if (rc != 0)
        return EXIT_FAIL;
    int ex = answer_check(o, v, a);
    if (ex != EXIT_OK) {
        answer_free(a);
        return ex;
    }
    if (o->json)
        print_json(a->json);
    return EXIT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* output helpers                                                                             */

static json_int_t jint(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (json_int_t)json_real_value(v);
    return 0;
}

static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "-";
}

static void format_duration(json_int_t s, char *out, size_t len)
{
    if (s < 0)
        s = 0;
    long long d = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60;
    if (d)
        snprintf(out, len, "%lldd %lldh %lldm %llds", d, h, m, sec);
    else if (h)
        snprintf(out, len, "%lldh %lldm %llds", h, m, sec);
    else if (m)
        snprintf(out, len, "%lldm %llds", m, sec);
    else
        snprintf(out, len, "%llds", sec);
}

/* A table: a header row and rows of cells, printed with aligned columns. */
typedef struct table {
    int cols;
    size_t rows;
    char **cells; /* rows+1 rows of cols cells, row 0 the header */
} table_t;

static void table_add(table_t *t, const char *const *cells)
{
    char **nc = realloc(t->cells, (t->rows + 1) * (size_t)t->cols * sizeof(char *));
    if (!nc) {
        fprintf(stderr, "fennecctl: out of memory\n");
        exit(EXIT_FAIL);
    }
    t->cells = nc;
    for (int i = 0; i < t->cols; i++)
        t->cells[t->rows * (size_t)t->cols + (size_t)i] = strdup(cells[i] ? cells[i] : "-");
    t->rows++;
}

static void table_print(table_t *t)
{
    size_t *width = calloc((size_t)t->cols, sizeof(*width));
    if (!width) {
        fprintf(stderr, "fennecctl: out of memory\n");
        exit(EXIT_FAIL);
    }
    for (size_t r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) {
            const char *s = t->cells[r * (size_t)t->cols + (size_t)c];
            size_t n = s ? strlen(s) : 0;
            if (n > width[c])
                width[c] = n;
        }
    for (size_t r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->cols; c++) {
            const char *s = t->cells[r * (size_t)t->cols + (size_t)c];
            if (c == t->cols - 1)
                printf("%s\n", s ? s : "");
            else
                printf("%-*s  ", (int)width[c], s ? s : "");
        }
    }
    for (size_t i = 0; i < t->rows * (size_t)t->cols; i++)
        free(t->cells[i]);
    free(width);
    free(t->cells);
    t->cells = NULL;
    t->rows = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* verbs                                                                                      */

/* A number or "-" (null: the node does not know it). */
static void cell_int(const json_t *n, const char *key, char *out, size_t len)
{
    const json_t *v = json_object_get(n, key);
    if (json_is_number(v))
        snprintf(out, len, "%lld", (long long)jint(n, key));
    else
        snprintf(out, len, "-");
}

static void cell_seconds(const json_t *n, const char *key, char *out, size_t len)
{
    const json_t *v = json_object_get(n, key);
    if (json_is_number(v))
        snprintf(out, len, "%.3f", json_number_value(v));
    else
        snprintf(out, len, "-");
}

static int do_status(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)args;
    (void)nargs;
    answer_t a;
    int ex = request(o, v, "GET", "/v1/status", NULL, &a);
    if (ex != EXIT_OK || o->json) {
        if (ex == EXIT_OK)
            answer_free(&a);
        return ex;
    }
    const json_t *j = a.json;
    char up[64];
    format_duration(jint(j, "uptime_seconds"), up, sizeof(up));
    const json_t *q = json_object_get(j, "queries");
    printf("node      %s (%s)\n", jstr(j, "node_id"), jstr(j, "role"));
    printf("version   %s\n", jstr(j, "version"));
    printf("uptime    %s\n", up);
    printf("workers   %lld\n", (long long)jint(j, "workers"));
    printf("queries   %lld (UDP %lld, TCP %lld)\n", (long long)jint(q, "total"),
           (long long)jint(q, "udp"), (long long)jint(q, "tcp"));
    const json_t *resp = json_object_get(q, "responses");
    if (json_is_object(resp) && json_object_size(resp) > 0) {
        printf("answers  ");
        const char *k;
        const json_t *val;
        json_object_foreach((json_t *)resp, k, val)
        {
            printf(" %s %lld", k, (long long)json_integer_value(val));
        }
        printf("\n");
    }
    const json_t *r = json_object_get(j, "replication");
    if (json_is_object(r) && strcmp(jstr(r, "role"), "primary") == 0) {
        size_t nn = json_array_size(json_object_get(r, "nodes")), linked = 0, k;
        const json_t *n;
        json_array_foreach(json_object_get(r, "nodes"), k, n)
        {
            if (json_is_true(json_object_get(n, "connected")))
                linked++;
        }
        printf("log       index %lld, %zu of %zu secondaries connected\n",
               (long long)jint(r, "index"), linked, nn);
    } else if (json_is_object(r)) {
        char sb[32];
        cell_seconds(r, "seconds_behind", sb, sizeof(sb));
        printf("log       applied %lld of %lld (%lld entries, %s s behind), primary %s, %s\n",
               (long long)jint(r, "applied_index"), (long long)jint(r, "primary_index"),
               (long long)jint(r, "entries_behind"), sb, jstr(r, "primary"), jstr(r, "state"));
    }
    const json_t *ac = json_object_get(j, "anycast");
    if (json_is_object(ac)) {
        const json_t *cl = json_object_get(ac, "cluster");
        const json_t *svc = json_object_get(ac, "service");
        char since[64] = "-";
        const json_t *sv = json_object_get(ac, "since");
        if (json_is_number(sv)) {
            double ago = (double)time(NULL) - json_number_value(sv);
            format_duration((json_int_t)(ago > 0 ? ago : 0), since, sizeof(since));
        }
        printf("anycast   %s for %s (%s)\n", jstr(ac, "state"), since, jstr(ac, "reason"));
        printf("          service");
        size_t k;
        const json_t *x;
        json_array_foreach(svc, k, x)
        {
            printf("%s %s", k ? "," : "", json_string_value(x) ? json_string_value(x) : "?");
        }
        printf("; %lld transition(s), %lld restart(s) of fennecd%s%s\n",
               (long long)jint(ac, "transitions"), (long long)jint(ac, "restarts"),
               strcmp(jstr(ac, "supervisor"), "linked") == 0 ? "" : "; supervisor gone",
               json_is_true(json_object_get(json_object_get(ac, "bird"), "connected"))
                   ? ""
                   : "; BIRD not reachable");
        if (json_is_object(cl))
            printf("cluster   %lld of %lld node(s) announced, min_announced %lld%s\n",
                   (long long)jint(cl, "announced"), (long long)jint(cl, "nodes"),
                   (long long)jint(cl, "min_announced"),
                   json_is_true(json_object_get(cl, "fresh")) ? "" : " (stale view: primary away)");
    }
    const json_t *zones = json_object_get(j, "zones");
    printf("\n");
    table_t t = {.cols = 3};
    table_add(&t, (const char *const[]){"ZONE", "SERIAL", "RECORDS"});
    size_t i;
    const json_t *z;
    json_array_foreach(zones, i, z)
    {
        char serial[32], records[32];
        snprintf(serial, sizeof(serial), "%lld", (long long)jint(z, "serial"));
        snprintf(records, sizeof(records), "%lld", (long long)jint(z, "records"));
        table_add(&t, (const char *const[]){jstr(z, "name"), serial, records});
    }
    if (json_array_size(zones) == 0)
        table_add(&t, (const char *const[]){"(no zones served)", "", ""});
    table_print(&t);
    answer_free(&a);
    return EXIT_OK;
}

/* The rows of GET /v1/nodes: every node with its replication state ("nodes"); LAG_ONLY
 * leaves out the address and the role. */
static void print_nodes(const json_t *j, bool lag_only)
{
    table_t t = {.cols = lag_only ? 6 : 9};
    if (lag_only)
        table_add(&t, (const char *const[]){"NODE", "STATE", "APPLIED", "ENTRIES_BEHIND",
                                            "SECONDS_BEHIND", "LAST_CONTACT"});
    else
        table_add(&t, (const char *const[]){"NODE", "ADDRESS", "ROLE", "STATE", "APPLIED",
                                            "ENTRIES_BEHIND", "SECONDS_BEHIND", "LAST_CONTACT",
                                            "ANYCAST"});
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(j, "nodes"), i, n)
    {
        char id[96], applied[32], eb[32], sb[32], lc[32];
        snprintf(id, sizeof(id), "%s%s", jstr(n, "id"),
                 json_is_true(json_object_get(n, "self")) ? " (this node)" : "");
        cell_int(n, "applied_index", applied, sizeof(applied));
        cell_int(n, "entries_behind", eb, sizeof(eb));
        cell_seconds(n, "seconds_behind", sb, sizeof(sb));
        cell_seconds(n, "last_contact_seconds", lc, sizeof(lc));
        if (lag_only)
            table_add(&t, (const char *const[]){id, jstr(n, "state"), applied, eb, sb, lc});
        else
            table_add(&t, (const char *const[]){id, jstr(n, "address"), jstr(n, "role"),
                                                jstr(n, "state"), applied, eb, sb, lc,
                                                jstr(n, "anycast")});
    }
    table_print(&t);
}

static int do_nodes(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)args;
    (void)nargs;
    answer_t a;
    int ex = request(o, v, "GET", "/v1/nodes", NULL, &a);
    if (ex == EXIT_OK && !o->json)
        print_nodes(a.json, false);
    if (ex == EXIT_OK)
        answer_free(&a);
    return ex;
}

static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int do_lag(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)args;
    (void)nargs;
    if (o->watch) {
        struct sigaction sa = {.sa_handler = on_sigint};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    for (;;) {
        answer_t a;
        int ex = request(o, v, "GET", "/v1/nodes", NULL, &a);
        if (ex != EXIT_OK)
            return ex;
        if (!o->json) {
            if (o->watch && isatty(STDOUT_FILENO))
                printf("\033[H\033[2J");
            print_nodes(a.json, true);
        }
        answer_free(&a);
        fflush(stdout);
        if (!o->watch)
            return EXIT_OK;
        struct timespec ts = {.tv_sec = (time_t)o->interval,
                              .tv_nsec = (long)((o->interval - (double)(time_t)o->interval) * 1e9)};
        while (!g_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        if (g_stop)
            return EXIT_OK;
        if (!o->json)
            printf("\n");
    }
}

static int do_node_add(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)nargs;
    answer_t a;
    int ex = request(o, v, "POST", "/v1/nodes",
                     json_pack("{s:s, s:s}", "id", args[0], "address", args[1]), &a);
    if (ex == EXIT_OK) {
        if (!o->json)
            printf("node %s (%s) added\n", args[0], args[1]);
        answer_free(&a);
    }
    return ex;
}

static int do_node_remove(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)nargs;
    char path[1024];
    if (!api_path(path, sizeof(path), "/v1/nodes/", args[0], ""))
        return EXIT_USAGE;
    answer_t a;
    int ex = request(o, v, "DELETE", path, NULL, &a);
    if (ex == EXIT_OK) {
        if (!o->json)
            printf("node %s removed\n", args[0]);
        answer_free(&a);
    }
    return ex;
}

static int do_zone_reload(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)nargs;
    char path[1024];
    if (!api_path(path, sizeof(path), "/v1/zones/", args[0],
                  o->force ? "/reload?force=1" : "/reload"))
        return EXIT_USAGE;
    answer_t a;
    int ex = request(o, v, "POST", path, NULL, &a);
    if (ex == EXIT_OK) {
        if (!o->json && strcmp(jstr(a.json, "result"), "unchanged") == 0)
            printf("zone %s unchanged (its records are the ones it was loaded from; nothing "
                   "applied, --force reloads anyway); serial %lld, index %lld\n",
                   jstr(a.json, "zone"), (long long)jint(a.json, "serial"),
                   (long long)jint(a.json, "index"));
        else if (!o->json)
            printf("zone %s reloaded: %lld added, %lld deleted; serial %lld, index %lld\n",
                   jstr(a.json, "zone"), (long long)jint(a.json, "added"),
                   (long long)jint(a.json, "deleted"), (long long)jint(a.json, "serial"),
                   (long long)jint(a.json, "index"));
        answer_free(&a);
    }
    return ex;
}

static int parse_ttl(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* Up to 2^32 - 1: the server caps a TTL above 2147483647 and says so (RFC 2181 8). */
    if (errno || end == s || *end != '\0' || v < 0 || v > 4294967295LL)
        return -1;
    *out = v;
    return 0;
}

static int do_record(opts_t *o, const verb_t *v, char **args, int nargs, const char *action)
{
    long long ttl;
    if (parse_ttl(args[2], &ttl) != 0) {
        fprintf(stderr,
                "fennecctl: %s: TTL must be a number of seconds from 0 to 2147483647 (up to "
                "4294967295 is capped), not "
                "\"%s\"\nusage: fennecctl %s\n",
                v->name, args[2], v->usage);
        return EXIT_USAGE;
    }
    /* RDATA may be given as one argument or as several (MX 10 mail): joined by spaces. */
    size_t len = 1;
    for (int i = 4; i < nargs; i++)
        len += strlen(args[i]) + 1;
    char *rdata = calloc(1, len);
    if (!rdata) {
        fprintf(stderr, "fennecctl: out of memory\n");
        return EXIT_FAIL;
    }
    for (int i = 4; i < nargs; i++) {
        if (i > 4)
            strcat(rdata, " ");
        strcat(rdata, args[i]);
    }
    char path[1024];
    if (!api_path(path, sizeof(path), "/v1/zones/", args[0], "/records")) {
        free(rdata);
        return EXIT_USAGE;
    }
    json_t *body = json_pack("{s:s, s:s, s:I, s:s, s:s}", "action", action, "name", args[1], "ttl",
                             (json_int_t)ttl, "type", args[3], "rdata", rdata);
    if (!body) {
        free(rdata);
        fprintf(stderr, "fennecctl: %s: arguments must be valid UTF-8\n", v->name);
        return EXIT_USAGE;
    }
    answer_t a;
    int ex = request(o, v, "POST", path, body, &a);
    if (ex == EXIT_OK) {
        /* The server's canonical owner, TTL and type; the RDATA as the operator wrote it
         * (the server keeps it in wire format and does not echo it). */
        print_warnings(a.json, NULL, NULL, 0);
        if (!o->json)
            printf("%s %s %lld %s %s; serial %lld\n", jstr(a.json, "result"), jstr(a.json, "name"),
                   (long long)jint(a.json, "ttl"), jstr(a.json, "type"), rdata,
                   (long long)jint(a.json, "serial"));
        answer_free(&a);
    }
    free(rdata);
    return ex;
}

/* Largest change file read (comments included); the batch itself must fit CONTROL_MAX_BODY. */
#define MAX_APPLY_INPUT (16 * 1024 * 1024)

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The next blank-separated word of *P (NUL-terminated in place); NULL at the end. */
static char *next_word(char **p)
{
    char *s = *p;
    while (is_blank(*s))
        s++;
    if (!*s)
        return NULL;
    char *e = s;
    while (*e && !is_blank(*e))
        e++;
    *p = *e ? e + 1 : e;
    *e = '\0';
    return s;
}

/*
 * One line of a change file, "add|delete NAME TTL TYPE RDATA...", as a record edit for the
 * batch; RDATA is the rest of the line as written. Returns NULL with a reason in WHY.
 */
static json_t *apply_line(char *text, char *why, size_t whylen)
{
    char *p = text;
    char *action = next_word(&p), *name = next_word(&p), *ttl = next_word(&p),
         *type = next_word(&p);
    while (is_blank(*p))
        p++;
    char *rdata = p;
    size_t n = strlen(rdata);
    while (n > 0 && is_blank(rdata[n - 1]))
        rdata[--n] = '\0';
    long long t;
    if (!action || !name || !ttl || !type || !*rdata) {
        snprintf(why, whylen, "expected \"add|delete NAME TTL TYPE RDATA\"");
        return NULL;
    }
    if (strcmp(action, "add") != 0 && strcmp(action, "delete") != 0) {
        snprintf(why, whylen, "the action must be add or delete, not \"%.32s\"", action);
        return NULL;
    }
    if (parse_ttl(ttl, &t) != 0) {
        snprintf(why, whylen,
                 "the TTL must be a number of seconds from 0 to 2147483647 (up to 4294967295 is "
                 "capped), not "
                 "\"%.32s\"",
                 ttl);
        return NULL;
    }
    json_t *e = json_pack("{s:s, s:s, s:I, s:s, s:s}", "action", action, "name", name, "ttl",
                          (json_int_t)t, "type", type, "rdata", rdata);
    if (!e)
        snprintf(why, whylen, "the line is not valid UTF-8");
    return e;
}

/* Reads the change file F (named NAME in messages) into LIST; LINES receives the line number
 * of each change. Returns 0, or EXIT_USAGE after printing why. */
static int apply_read(const verb_t *v, FILE *f, const char *name, json_t *list, size_t **lines)
{
    char *line = NULL, why[256];
    size_t cap = 0, total = 0, lineno = 0;
    ssize_t n;
    int ex = EXIT_OK;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        total += (size_t)n;
        if (total > MAX_APPLY_INPUT) {
            fprintf(stderr, "fennecctl: %s: %s is larger than %d bytes; nothing was sent\n",
                    v->name, name, MAX_APPLY_INPUT);
            ex = EXIT_USAGE;
            break;
        }
        if (strlen(line) != (size_t)n) {
            fprintf(stderr,
                    "fennecctl: %s: %s:%zu: the line contains a NUL byte; nothing was "
                    "sent\n",
                    v->name, name, lineno);
            ex = EXIT_USAGE;
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        const char *s = line;
        while (is_blank(*s))
            s++;
        if (!*s || *s == '#')
            continue;
        json_t *e = apply_line(line, why, sizeof(why));
        size_t *nl = e ? realloc(*lines, (json_array_size(list) + 1) * sizeof(**lines)) : NULL;
        if (!e || !nl) {
            json_decref(e);
            fprintf(stderr, "fennecctl: %s: %s:%zu: %s; nothing was sent\n", v->name, name, lineno,
                    e ? "out of memory" : why);
            ex = e ? EXIT_FAIL : EXIT_USAGE;
            break;
        }
        *lines = nl;
        (*lines)[json_array_size(list)] = lineno;
        json_array_append_new(list, e);
    }
    if (ex == EXIT_OK && ferror(f)) {
        fprintf(stderr, "fennecctl: %s: cannot read %s: %s; nothing was sent\n", v->name, name,
                strerror(errno));
        ex = EXIT_USAGE;
    }
    if (ex == EXIT_OK && json_array_size(list) == 0) {
        fprintf(stderr,
                "fennecctl: %s: %s has no changes (only blank lines and comments); nothing was "
                "sent\nusage: fennecctl %s\n",
                v->name, name, v->usage);
        ex = EXIT_USAGE;
    }
    free(line);
    return ex;
}

static int do_zone_apply(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)nargs;
    const char *file = args[1];
    bool std_in = strcmp(file, "-") == 0;
    const char *name = std_in ? "<stdin>" : file;
    char path[1024];
    if (!api_path(path, sizeof(path), "/v1/zones/", args[0], "/changes"))
        return EXIT_USAGE;
    FILE *f = std_in ? stdin : fopen(file, "re");
    if (!f) {
        fprintf(stderr, "fennecctl: %s: cannot open %s: %s\n", v->name, file, strerror(errno));
        return EXIT_USAGE;
    }
    json_t *list = json_array();
    size_t *lines = NULL;
    char *body = NULL;
    answer_t a = {0};
    int ex = list ? apply_read(v, f, name, list, &lines) : EXIT_FAIL;
    if (!std_in)
        fclose(f);
    if (ex != EXIT_OK)
        goto cleanup;
    json_t *root = json_pack("{s:O}", "changes", list);
    body = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!body) {
        fprintf(stderr, "fennecctl: out of memory\n");
        ex = EXIT_FAIL;
        goto cleanup;
    }
    if (strlen(body) > CONTROL_MAX_BODY) {
        fprintf(stderr,
                "fennecctl: %s: the %zu changes of %s make %zu bytes of JSON, more than the %d "
                "a batch may have: split the file; nothing was sent\n",
                v->name, json_array_size(list), name, strlen(body), CONTROL_MAX_BODY);
        ex = EXIT_USAGE;
        goto cleanup;
    }
    if (http_call(o, "POST", path, body, &a) != 0) {
        ex = EXIT_FAIL;
        goto cleanup;
    }
    /* A refused batch names its change by position: say which line of the file it was. */
    json_t *at = json_is_object(a.json) ? json_object_get(a.json, "change") : NULL;
    const char *msg = at ? json_string_value(json_object_get(a.json, "error")) : NULL;
    if (json_is_integer(at) && msg && json_integer_value(at) >= 0 &&
        (size_t)json_integer_value(at) < json_array_size(list)) {
        char *where = NULL;
        if (asprintf(&where, "%s:%zu: %s", name, lines[json_integer_value(at)], msg) >= 0) {
            json_object_set_new(a.json, "error", json_string(where));
            free(where);
        }
    }
    ex = answer_check(o, v, &a);
    if (ex != EXIT_OK)
        goto cleanup;
    print_warnings(a.json, name, lines, json_array_size(list));
    if (o->json) {
        print_json(a.json);
    } else {
        char applied[32], added[32], deleted[32], serial[32], index[32];
        snprintf(applied, sizeof(applied), "%lld", (long long)jint(a.json, "applied"));
        snprintf(added, sizeof(added), "%lld", (long long)jint(a.json, "added"));
        snprintf(deleted, sizeof(deleted), "%lld", (long long)jint(a.json, "deleted"));
        snprintf(serial, sizeof(serial), "%lld", (long long)jint(a.json, "serial"));
        snprintf(index, sizeof(index), "%lld", (long long)jint(a.json, "index"));
        table_t t = {.cols = 6};
        table_add(&t,
                  (const char *const[]){"ZONE", "APPLIED", "ADDED", "DELETED", "SERIAL", "INDEX"});
        table_add(&t, (const char *const[]){jstr(a.json, "zone"), applied, added, deleted, serial,
                                            index});
        table_print(&t);
    }
cleanup:
    answer_free(&a);
    free(body);
    free(lines);
    json_decref(list);
    return ex;
}

static int do_record_add(opts_t *o, const verb_t *v, char **args, int nargs)
{
    return do_record(o, v, args, nargs, "add");
}

static int do_record_delete(opts_t *o, const verb_t *v, char **args, int nargs)
{
    return do_record(o, v, args, nargs, "delete");
}

/* ---- health ------------------------------------------------------------------------------ */

/* How long ago the wall time SINCE of a check was, by this host's clock ("-" when unknown). */
static void cell_since(const json_t *c, char *out, size_t len)
{
    const json_t *v = json_object_get(c, "since");
    if (!json_is_number(v)) {
        snprintf(out, len, "-");
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double ago = (double)ts.tv_sec + ts.tv_nsec / 1e9 - json_number_value(v);
    char d[48];
    format_duration((json_int_t)(ago > 0 ? ago : 0), d, sizeof(d));
    snprintf(out, len, "%s ago", d);
}

/* A check's state, with its override when it has one: "down (override up)". */
static void cell_state(const json_t *c, char *out, size_t len)
{
    const char *ovr = json_string_value(json_object_get(c, "override"));
    if (ovr)
        snprintf(out, len, "%s (override %s)", jstr(c, "state"), ovr);
    else
        snprintf(out, len, "%s", jstr(c, "state"));
}

/* Addresses of a JSON array, separated by spaces; "(none: NODATA)" for an empty one. */
static void cell_serving(const json_t *pool, char *out, size_t len)
{
    const json_t *arr = json_object_get(pool, "serving");
    size_t used = 0, i;
    const json_t *a;
    out[0] = '\0';
    json_array_foreach(arr, i, a)
    {
        int n = snprintf(out + used, len - used, "%s%s", i ? " " : "",
                         json_string_value(a) ? json_string_value(a) : "?");
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    if (json_array_size(arr) == 0)
        snprintf(out, len, "(none: NODATA)");
}

static void print_health(const json_t *j)
{
    const json_t *checks = json_object_get(j, "checks");
    if (json_array_size(checks) == 0) {
        printf("no health checks configured\n");
        return;
    }
    table_t t = {.cols = 9};
    table_add(&t, (const char *const[]){"CHECK", "TYPE", "TARGET", "STATE", "SINCE", "LAST_RESULT",
                                        "LATENCY", "OVERRIDE", "TRANSITIONS"});
    size_t i;
    const json_t *c;
    json_array_foreach(checks, i, c)
    {
        char since[64], latency[32], transitions[32];
        cell_since(c, since, sizeof(since));
        const json_t *lat = json_object_get(c, "last_latency_ms");
        if (json_is_number(lat))
            snprintf(latency, sizeof(latency), "%.1f ms", json_number_value(lat));
        else
            snprintf(latency, sizeof(latency), "-");
        snprintf(transitions, sizeof(transitions), "%lld", (long long)jint(c, "transitions"));
        table_add(&t, (const char *const[]){jstr(c, "name"), jstr(c, "type"), jstr(c, "target"),
                                            jstr(c, "state"), since, jstr(c, "last_result"),
                                            latency, jstr(c, "override"), transitions});
    }
    table_print(&t);
    const json_t *pools = json_object_get(j, "pools");
    if (json_array_size(pools) == 0)
        return;
    printf("\n");
    t = (table_t){.cols = 5};
    table_add(&t, (const char *const[]){"POOL", "TYPE", "TTL", "SERVING", "MEMBERS"});
    const json_t *p;
    json_array_foreach(pools, i, p)
    {
        char ttl[32], serving[2048], members[4096];
        snprintf(ttl, sizeof(ttl), "%lld", (long long)jint(p, "ttl_now"));
        cell_serving(p, serving, sizeof(serving));
        size_t used = 0, k;
        const json_t *m;
        members[0] = '\0';
        json_array_foreach(json_object_get(p, "members"), k, m)
        {
            int n = snprintf(members + used, sizeof(members) - used, "%s%s (%s %s)", k ? ", " : "",
                             jstr(m, "address"), jstr(m, "check"), jstr(m, "state"));
            if (n < 0 || (size_t)n >= sizeof(members) - used)
                break;
            used += (size_t)n;
        }
        table_add(&t,
                  (const char *const[]){jstr(p, "name"), jstr(p, "type"), ttl, serving, members});
    }
    table_print(&t);
}

/* The object named NAME in the array KEY of J, or NULL. */
static const json_t *find_named(const json_t *j, const char *key, const char *name)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(j, key), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0)
            return e;
    }
    return NULL;
}

/* Adds to NAMES (an array of strings) the names of the array KEY of J it lacks, in order. */
static void names_union(json_t *names, const json_t *j, const char *key)
{
    size_t i, k;
    const json_t *e, *have;
    json_array_foreach(json_object_get(j, key), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        bool seen = false;
        json_array_foreach(names, k, have)
        {
            seen |= n && strcmp(json_string_value(have), n) == 0;
        }
        if (n && !seen)
            json_array_append_new(names, json_string(n));
    }
}

/*
 * health --all-nodes: every member's own view. Each node probes on its own, so a failure that
 * one node sees and the others do not (a cut path, a firewall) shows as one column apart,
 * while a server that is really down shows on every column. The node list comes from the node
 * asked (GET /v1/nodes: its own row, then the member list); every node is asked at once.
 */
static int do_health_all(opts_t *o, const verb_t *v)
{
    answer_t list;
    if (http_call(o, "GET", "/v1/nodes", NULL, &list) != 0)
        return EXIT_FAIL;
    int ex = answer_check(o, v, &list);
    if (ex != EXIT_OK) {
        answer_free(&list);
        return ex;
    }
    const json_t *rows = json_object_get(list.json, "nodes");
    size_t n = json_array_size(rows);
    char **urls = calloc(n ? n : 1, sizeof(*urls));
    answer_t *answers = calloc(n ? n : 1, sizeof(*answers));
    char(*errs)[CURL_ERROR_SIZE] = calloc(n ? n : 1, sizeof(*errs));
    json_t *out = json_array(), *names = json_array(), *pnames = json_array();
    if (!urls || !answers || !errs || !out || !names || !pnames) {
        fprintf(stderr, "fennecctl: out of memory\n");
        exit(EXIT_FAIL);
    }
    /* The node asked is reached as the user reached it; the others at their control endpoint,
     * with the same scheme. */
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/')
        ul--;
    const char *sep = strstr(o->url, "://");
    int schemelen = sep ? (int)(sep - o->url) : 4;
    const char *scheme = sep ? o->url : "http";
    bool primary_seen = false, asked_secondary = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(rows, i);
        bool self = json_is_true(json_object_get(r, "self"));
        const char *role = json_string_value(json_object_get(r, "role"));
        primary_seen |= role && strcmp(role, "primary") == 0;
        asked_secondary |= self && role && strcmp(role, "secondary") == 0;
        size_t cap = ul + strlen(jstr(r, "address")) + 32;
        if (!(urls[i] = malloc(cap))) {
            fprintf(stderr, "fennecctl: out of memory\n");
            exit(EXIT_FAIL);
        }
        if (self)
            snprintf(urls[i], cap, "%.*s/v1/health", (int)ul, o->url);
        else
            snprintf(urls[i], cap, "%.*s://%s/v1/health", schemelen, scheme, jstr(r, "address"));
    }
    http_get_many(o, urls, n, answers, errs);

    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(rows, i);
        answer_t *a = &answers[i];
        bool ok = !errs[i][0] && a->status == 200 && json_is_object(a->json) &&
                  json_is_array(json_object_get(a->json, "checks"));
        if (!ok && !errs[i][0]) {
            const char *msg = a->json ? json_string_value(json_object_get(a->json, "error")) : NULL;
            if (a->status)
                snprintf(errs[i], CURL_ERROR_SIZE, "HTTP %ld%s%s", a->status, msg ? ": " : "",
                         msg ? msg : "");
            else
                snprintf(errs[i], CURL_ERROR_SIZE, "no answer");
        }
        if (ok) {
            names_union(names, a->json, "checks");
            names_union(pnames, a->json, "pools");
        } else {
            missing++;
        }
        json_array_append_new(out, json_pack("{s:s, s:s, s:b, s:O?, s:s?}", "id", jstr(r, "id"),
                                             "address", jstr(r, "address"), "self",
                                             json_is_true(json_object_get(r, "self")), "health",
                                             ok ? a->json : NULL, "error", ok ? NULL : errs[i]));
    }

    if (o->json) {
        json_t *o_all = json_pack("{s:o}", "nodes", out);
        out = NULL;
        print_json(o_all);
        json_decref(o_all);
    } else if (json_array_size(names) == 0 && missing < n) {
        printf("no health checks configured\n");
    } else {
        table_t t = {.cols = 1 + (int)n};
        const char **cells = calloc(n + 1, sizeof(*cells));
        char(*text)[128] = calloc(n + 1, sizeof(*text));
        if (!cells || !text) {
            fprintf(stderr, "fennecctl: out of memory\n");
            exit(EXIT_FAIL);
        }
        cells[0] = "CHECK";
        for (size_t i = 0; i < n; i++)
            cells[i + 1] = jstr(json_array_get(rows, i), "id");
        table_add(&t, cells);
        for (int pass = 0; pass < 2; pass++) {
            json_t *list_names = pass == 0 ? names : pnames;
            if (pass == 1) {
                if (json_array_size(pnames) == 0)
                    break;
                table_print(&t);
                printf("\n");
                t = (table_t){.cols = 1 + (int)n};
                cells[0] = "POOL (serving)";
                for (size_t i = 0; i < n; i++)
                    cells[i + 1] = jstr(json_array_get(rows, i), "id");
                table_add(&t, cells);
            }
            size_t k;
            const json_t *name;
            json_array_foreach(list_names, k, name)
            {
                cells[0] = json_string_value(name);
                for (size_t i = 0; i < n; i++) {
                    const answer_t *a = &answers[i];
                    const json_t *e = NULL;
                    if (errs[i][0]) {
                        cells[i + 1] = "no answer";
                        continue;
                    }
                    e = find_named(a->json, pass == 0 ? "checks" : "pools", cells[0]);
                    if (!e) {
                        cells[i + 1] = "-";
                        continue;
                    }
                    if (pass == 0) {
                        cell_state(e, text[i + 1], sizeof(text[i + 1]));
                    } else {
                        char serving[96];
                        cell_serving(e, serving, sizeof(serving));
                        snprintf(text[i + 1], sizeof(text[i + 1]), "%s ttl %lld", serving,
                                 (long long)jint(e, "ttl_now"));
                    }
                    cells[i + 1] = text[i + 1];
                }
                table_add(&t, cells);
            }
        }
        table_print(&t);
        free(cells);
        free(text);
    }
    for (size_t i = 0; i < n; i++)
        if (errs[i][0])
            fprintf(stderr, "fennecctl: %s --all-nodes: node %s at %s did not answer: %s\n",
                    v->name, jstr(json_array_get(rows, i), "id"),
                    jstr(json_array_get(rows, i), "address"), errs[i]);
    if (asked_secondary && !primary_seen)
        fprintf(stderr,
                "fennecctl: %s --all-nodes: the node asked is a secondary that does not know "
                "the primary's control endpoint, so the primary is not in the table: ask the "
                "primary, or register the primary as a member (node add)\n",
                v->name);
    for (size_t i = 0; i < n; i++) {
        free(urls[i]);
        answer_free(&answers[i]);
    }
    free(urls);
    free(answers);
    free(errs);
    json_decref(out);
    json_decref(names);
    json_decref(pnames);
    answer_free(&list);
    return missing ? EXIT_FAIL : EXIT_OK;
}

static int do_health(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)args;
    (void)nargs;
    if (o->all_nodes)
        return do_health_all(o, v);
    answer_t a;
    int ex = request(o, v, "GET", "/v1/health", NULL, &a);
    if (ex != EXIT_OK)
        return ex;
    if (!o->json)
        print_health(a.json);
    answer_free(&a);
    return EXIT_OK;
}

static int do_health_override(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)nargs;
    const char *state = args[1];
    if (strcmp(state, "up") != 0 && strcmp(state, "down") != 0 && strcmp(state, "clear") != 0) {
        fprintf(stderr,
                "fennecctl: %s: the state must be up, down or clear, not \"%s\"\nusage: "
                "fennecctl %s\n",
                v->name, state, v->usage);
        return EXIT_USAGE;
    }
    char path[1024];
    if (!api_path(path, sizeof(path), "/v1/health/", args[0], "/override"))
        return EXIT_USAGE;
    answer_t a;
    int ex = request(o, v, "POST", path, json_pack("{s:s}", "state", state), &a);
    if (ex == EXIT_OK) {
        if (!o->json)
            printf("check %s: override %s; index %lld\n", args[0],
                   strcmp(state, "clear") == 0 ? "cleared" : state,
                   (long long)jint(a.json, "index"));
        answer_free(&a);
    }
    return ex;
}

/* POST /v1/drain. A refusal by the min_announced rule (409) exits EXIT_REFUSED, so that a
 * script can tell "not now" from "failed". */
static int drain_request(opts_t *o, const verb_t *v, bool drain)
{
    json_t *body = json_pack("{s:b, s:b}", "drain", drain, "force", drain && o->force);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        fprintf(stderr, "fennecctl: out of memory\n");
        return EXIT_FAIL;
    }
    answer_t a;
    int rc = http_call(o, "POST", "/v1/drain", text, &a);
    free(text);
    if (rc != 0)
        return EXIT_FAIL;
    if (a.status == 409 && json_is_object(a.json)) {
        fprintf(stderr, "fennecctl: %s: %s\n", v->name, jstr(a.json, "error"));
        if (o->json)
            print_json(a.json);
        answer_free(&a);
        return EXIT_REFUSED;
    }
    int ex = answer_check(o, v, &a);
    if (ex == EXIT_OK) {
        if (o->json)
            print_json(a.json);
        else
            printf("%s: %s (%s)%s\n", drain ? "drain" : "undrain", jstr(a.json, "state"),
                   jstr(a.json, "reason"),
                   json_is_true(json_object_get(a.json, "bird_connected"))
                       ? ""
                       : "; BIRD is not reachable: the supervisor applies it when BIRD answers");
    }
    answer_free(&a);
    return ex;
}

static int do_drain(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)args;
    (void)nargs;
    return drain_request(o, v, true);
}

static int do_undrain(opts_t *o, const verb_t *v, char **args, int nargs)
{
    (void)args;
    (void)nargs;
    return drain_request(o, v, false);
}

static const verb_t g_verbs[] = {
    {"status", 0, 0, "status",
     "Shows the node: id, role, version, uptime, workers, zones "
     "with their serials and query totals.",
     do_status, false},
    {"nodes", 0, 0, "nodes",
     "Lists the cluster's nodes, this node first, with their address, role and replication "
     "state: entries and seconds behind the primary and seconds since last contact. The "
     "primary sees every node; a secondary sees itself and the member list (\"-\" where it "
     "cannot know).",
     do_nodes, false},
    {"node add", 2, 2, "node add ID ADDRESS",
     "Registers node ID in the cluster; ADDRESS is the node's control endpoint (IPv4:port or "
     "[IPv6]:port, its listen.control), which the CLI and the primary use to reach it. The "
     "membership goes through the log to every node; send it to the primary (a secondary "
     "refuses it with 409). Adding a member again with another address changes its address. "
     "Needs the cluster key; --wait waits until every connected node has it.",
     do_node_add, true},
    {"node remove", 1, 1, "node remove ID",
     "Removes node ID from the cluster (on the primary; the primary itself cannot be "
     "removed). Needs the cluster key; --wait waits until every connected node has it.",
     do_node_remove, true},
    {"zone reload", 1, 1, "zone reload [--force] NAME",
     "Reloads zone NAME from its file (and every $INCLUDEd file, at any depth) on the node and "
     "serves it if it loads, then prints \"reloaded\" with what changed (records added and "
     "deleted), the serial and the index, or \"unchanged\" when the records are the ones the "
     "zone was loaded from (nothing is applied then and record edits stay). --force serves "
     "the file anyway: always \"reloaded\", a new serial, record edits dropped. On an error "
     "the previous version stays in service and the error (file:line) is shown. Needs the "
     "cluster key.",
     do_zone_reload, true},
    {"zone apply", 2, 2, "zone apply ZONE FILE|-",
     "Applies the changes in FILE (- reads standard input) to ZONE as one batch: all of them, "
     "served at once with one step of the SOA serial, or none. One change per line: "
     "\"add|delete NAME TTL TYPE RDATA\", fields as for record add, RDATA the rest of the "
     "line; blank lines and lines starting with # are skipped. A line that is not a change is "
     "a usage error naming the line (exit 2, nothing sent); a change the server refuses is "
     "named by its line too (exit 1, nothing changed). At most 64 KiB of changes as JSON "
     "(about 600 A records) per batch. Needs the cluster key.",
     do_zone_apply, true},
    {"record add", 5, -1, "record add ZONE NAME TTL TYPE RDATA...",
     "Adds a record to ZONE. NAME is relative to the zone (\"@\" for the apex) unless it ends "
     "in a dot; RDATA is in master-file format and may span several arguments "
     "(record add example.com mail 300 MX 10 mx1). The change is served at once and the SOA "
     "serial moves on by one. Edits are kept in memory only: a restart, zone reload, or a "
     "SIGHUP after the zone file changed drops them (see docs/cli.md). Exits 1 when the record "
     "exists already "
     "(409) or the result breaks a zone rule such as a CNAME beside other data (422). Needs the "
     "cluster key.",
     do_record_add, true},
    {"record delete", 5, -1, "record delete ZONE NAME TTL TYPE RDATA...",
     "Deletes the record NAME TYPE RDATA from ZONE (arguments as for record add; the TTL is not "
     "compared). Exits 1 when there is no such record (404). Needs the cluster key.",
     do_record_delete, true},
    {"health", 0, 0, "health [--all-nodes]",
     "Shows this node's health checks (type, target, state, since when, last result and its "
     "latency, override, transitions) and pools (TTL and what each serves now). Every node "
     "probes on its own: --all-nodes asks every member (from GET /v1/nodes) at once and "
     "prints a check x node table of states, then what each pool serves on each node, so one "
     "node's view apart from the others shows at once; a node that does not answer shows as "
     "\"no answer\" and makes the exit code 1.",
     do_health, false},
    {"health override", 2, 2, "health override CHECK up|down|clear",
     "Forces CHECK up or down on every node regardless of its probes, or clears the override "
     "(the probes decide again). The override goes through the log like any change: send it "
     "to the primary (a secondary refuses it with 409). Needs the cluster key; --wait waits "
     "until every connected node has it.",
     do_health_override, true},
    {"drain", 0, 0, "drain [--force]",
     "Withdraws this node's anycast service addresses (through fennec-supervisor and BIRD) "
     "and keeps them withdrawn, across restarts of fennecd, until undrain; the node goes on "
     "answering whatever still reaches it. Refused (exit 4) when fewer than "
     "anycast.min_announced nodes would stay announced, or when the node cannot tell (its "
     "primary is away); --force drains anyway.",
     do_drain, false},
    {"undrain", 0, 0, "undrain",
     "Ends a drain: the node is announced again once its self-check passes.", do_undrain, false},
    {"lag", 0, 0, "lag [--watch] [--interval SECONDS]",
     "Shows every node's replication lag (state, entries and seconds behind the primary, "
     "seconds since last contact: a stalled node is never shown as caught up); with "
     "--watch, refreshes every --interval seconds (default 2) until interrupted.",
     do_lag, false},
};

#define VERB_COUNT (sizeof(g_verbs) / sizeof(g_verbs[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: fennecctl [OPTIONS] COMMAND [ARGS]\n\n"
               "Controls a fennec node through its HTTP control endpoint.\n\ncommands:\n");
    for (size_t i = 0; i < VERB_COUNT; i++)
        fprintf(f, "  %s\n", g_verbs[i].usage);
    fprintf(f,
            "\noptions:\n"
            "  -s, --server URL   control endpoint (default $FENNEC_URL, else %s)\n"
            "  --key-file FILE    cluster key file, needed for changes (default "
            "$FENNEC_KEY_FILE)\n"
            "  --json             print the server's JSON instead of tables\n"
            "  --timeout SECONDS  give up on the server after this long (default 10)\n"
            "  --wait             on record add|delete, zone apply|reload, node add|remove,\n"
            "                     health override:\n"
            "                     answer once every connected node has applied the change\n"
            "                     (at most 10 s more; exit 3 when one has not)\n"
            "  --all-nodes        on health: ask every node of the cluster\n"
            "  --force            on zone reload: serve the file even if its records did not\n"
            "                     change (record edits made since are dropped); on drain:\n"
            "                     drain even below anycast.min_announced\n"
            "  -h, --help         this help; COMMAND --help explains one command\n"
            "  -V, --version      print the version\n"
            "\nexit codes: 0 done, 1 failed (refused, unreachable, or not available in this "
            "version), 2 usage error, 3 applied on the primary but not confirmed by every "
            "connected node (--wait), 4 drain refused (anycast.min_announced)\n",
            DEFAULT_URL);
}

static void verb_usage(FILE *f, const verb_t *v)
{
    fprintf(f, "usage: fennecctl [OPTIONS] %s\n\n%s\n\nSee fennecctl --help for OPTIONS.\n",
            v->usage, v->help);
}

/* Finds the verb named by the first one or two positional words. */
static const verb_t *verb_find(char **pos, int npos, int *words)
{
    if (npos >= 2) {
        char two[128];
        snprintf(two, sizeof(two), "%s %s", pos[0], pos[1]);
        for (size_t i = 0; i < VERB_COUNT; i++)
            if (strcmp(g_verbs[i].name, two) == 0) {
                *words = 2;
                return &g_verbs[i];
            }
    }
    if (npos >= 1)
        for (size_t i = 0; i < VERB_COUNT; i++)
            if (strcmp(g_verbs[i].name, pos[0]) == 0) {
                *words = 1;
                return &g_verbs[i];
            }
    return NULL;
}

/* Names the subcommands of a group word ("node" -> node add, node remove). */
static bool group_usage(FILE *f, const char *word)
{
    size_t wl = strlen(word);
    bool any = false;
    for (size_t i = 0; i < VERB_COUNT; i++)
        if (strncmp(g_verbs[i].name, word, wl) == 0 && g_verbs[i].name[wl] == ' ') {
            if (!any)
                fprintf(f, "usage:\n");
            fprintf(f, "  fennecctl [OPTIONS] %s\n", g_verbs[i].usage);
            any = true;
        }
    return any;
}

static int option_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    const char *a = argv[*i];
    size_t nl = strlen(name);
    if (strncmp(a, name, nl) == 0 && a[nl] == '=') {
        *out = a + nl + 1;
        return 1;
    }
    if (strcmp(a, name) != 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "fennecctl: %s needs a value\n", name);
        return -1;
    }
    *out = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    opts_t o = {.interval = 2.0, .timeout = 10};
    char **pos = calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0;
    bool help = false, version = false, only_pos = false;
    const char *interval = NULL, *timeout = NULL;
    int ex = EXIT_USAGE;
    if (!pos)
        return EXIT_FAIL;
    o.url = getenv("FENNEC_URL");
    o.key_file = getenv("FENNEC_KEY_FILE");
    if (o.key_file && !*o.key_file)
        o.key_file = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            pos[npos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help = true;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            version = true;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--watch") == 0 || strcmp(a, "-w") == 0) {
            o.watch = true;
        } else if (strcmp(a, "--wait") == 0) {
            o.wait = true;
        } else if (strcmp(a, "--all-nodes") == 0) {
            o.all_nodes = true;
        } else if (strcmp(a, "--force") == 0) {
            o.force = true;
        } else if ((r = option_value(argc, argv, &i, "-s", &o.url)) != 0 ||
                   (r = option_value(argc, argv, &i, "--server", &o.url)) != 0 ||
                   (r = option_value(argc, argv, &i, "--key-file", &o.key_file)) != 0 ||
                   (r = option_value(argc, argv, &i, "--interval", &interval)) != 0 ||
                   (r = option_value(argc, argv, &i, "--timeout", &timeout)) != 0) {
            if (r < 0)
                goto cleanup;
        } else if (a[1] != '-' && a[1] >= '0' && a[1] <= '9') {
            pos[npos++] = argv[i]; /* a negative number is an argument, not an option */
        } else {
            fprintf(stderr, "fennecctl: unknown option %s (see fennecctl --help)\n", a);
            goto cleanup;
        }
    }
    if (version) {
        printf("fennecctl %s\n", FENNEC_VERSION);
        ex = EXIT_OK;
        goto cleanup;
    }
    int words = 0;
    const verb_t *v = verb_find(pos, npos, &words);
    if (help) {
        if (v)
            verb_usage(stdout, v);
        else if (npos == 0 || !group_usage(stdout, pos[0]))
            usage(stdout);
        ex = EXIT_OK;
        goto cleanup;
    }
    if (npos == 0) {
        usage(stderr);
        goto cleanup;
    }
    if (!v) {
        if (!group_usage(stderr, pos[0]))
            fprintf(stderr, "fennecctl: unknown command \"%s\" (see fennecctl --help)\n", pos[0]);
        goto cleanup;
    }
    int nargs = npos - words;
    if (nargs < v->min_args || (v->max_args >= 0 && nargs > v->max_args)) {
        fprintf(stderr, "fennecctl: %s: %s arguments\nusage: fennecctl %s\n", v->name,
                nargs < v->min_args ? "missing" : "too many", v->usage);
        goto cleanup;
    }
    if (o.watch && strcmp(v->name, "lag") != 0) {
        fprintf(stderr, "fennecctl: --watch only applies to lag\n");
        goto cleanup;
    }
    if (o.wait && !v->waits) {
        fprintf(stderr, "fennecctl: --wait only applies to record add|delete, zone apply|reload, "
                        "node add|remove and health override\n");
        goto cleanup;
    }
    if (o.force && strcmp(v->name, "zone reload") != 0 && strcmp(v->name, "drain") != 0) {
        fprintf(stderr, "fennecctl: --force only applies to zone reload and drain\n");
        goto cleanup;
    }
    if (o.all_nodes && strcmp(v->name, "health") != 0) {
        fprintf(stderr, "fennecctl: --all-nodes only applies to health\n");
        goto cleanup;
    }
    if (interval) {
        char *end = NULL;
        o.interval = strtod(interval, &end);
        if (end == interval || *end || !(o.interval >= 0.1 && o.interval <= 3600)) {
            fprintf(stderr, "fennecctl: --interval must be 0.1 to 3600 seconds\n");
            goto cleanup;
        }
    }
    if (timeout) {
        char *end = NULL;
        o.timeout = strtol(timeout, &end, 10);
        if (end == timeout || *end || o.timeout < 1 || o.timeout > 3600) {
            fprintf(stderr, "fennecctl: --timeout must be 1 to 3600 seconds\n");
            goto cleanup;
        }
    }
    if (!o.url || !*o.url)
        o.url = DEFAULT_URL;
    if (o.key_file) {
        uint8_t key[CONTROL_MAX_KEY];
        size_t keylen = 0;
        char err[512];
        if (control_key_read(o.key_file, key, &keylen, err, sizeof(err)) != 0) {
            fprintf(stderr, "fennecctl: cannot read the cluster key: %s\n", err);
            ex = EXIT_FAIL;
            goto cleanup;
        }
        int rc = control_token_derive(key, keylen, o.token);
        memset(key, 0, sizeof(key));
        if (rc != 0) {
            fprintf(stderr, "fennecctl: cannot derive the token from the key\n");
            ex = EXIT_FAIL;
            goto cleanup;
        }
        o.has_token = true;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "fennecctl: cannot initialise libcurl\n");
        ex = EXIT_FAIL;
        goto cleanup;
    }
    ex = v->run(&o, v, pos + words, nargs);
    curl_global_cleanup();
cleanup:
    memset(o.token, 0, sizeof(o.token));
    free(pos);
    return ex;
}
