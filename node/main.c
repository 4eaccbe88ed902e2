/*
 * fennecd — the nameserver daemon: reads the config, loads the zones, starts the DNS
 * workers and runs the main uv loop for signals (SIGHUP reloads zones, SIGTERM/SIGINT stop).
 *
 * Exit codes: 0 ok, 1 runtime failure (or --check found a problem), 2 usage or config error.
 */
#include "fennec/anycast.h"
#include "fennec/cfg.h"
#include "fennec/change.h"
#include "fennec/common.h"
#include "fennec/control.h"
#include "fennec/health.h"
#include "fennec/repl.h"
#include "fennec/server.h"
#include "fennec/stream.h"
#include "fennec/zone.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define EXIT_OK      0
#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

typedef struct daemon_state {
    cfg_t *cfg; /* the configuration the server runs with */
    server_t *srv;
    control_t *ctl;          /* NULL when listen.control is not configured */
    stream_t *stream;        /* NULL for a lone primary */
    const char *config_path; /* -c FILE, read again on SIGHUP; NULL: the embedded default */
    cfg_t *live;             /* the configuration whose zones and health are served */
    cfg_t **retired;         /* configurations replaced by SIGHUP, freed at exit (a control
                                thread may still read one) */
    size_t retired_count;
    uv_signal_t sig_hup;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    int exit_code;
} daemon_state_t;

static void usage(FILE *out)
{
    fprintf(out, "Usage: fennecd [-c FILE] [--check] [--reseed] [--log-level LEVEL] [--help]\n"
                 "               [--version]\n"
                 "\n"
                 "  -c, --config FILE    YAML configuration (see docs/config.md); without it\n"
                 "                       fennecd serves the built-in example.com zone on\n"
                 "                       " CFG_DEFAULT_DNS "\n"
                 "      --check          validate the configuration, load every zone, exit\n"
                 "                       0 when everything is fine and 1 otherwise\n"
                 "      --reseed         set the journal and snapshot in data_dir aside (into\n"
                 "                       data_dir/aside-TIME/) and start without them: a\n"
                 "                       secondary fetches everything from the primary again,\n"
                 "                       a primary loads its zone files again (record edits\n"
                 "                       made through the API since are then lost)\n"
                 "  -l, --log-level L    error | warn | info | debug (overrides log_level)\n"
                 "  -h, --help           this text\n"
                 "  -V, --version        print the version\n"
                 "\n"
                 "Signals: SIGHUP reloads changed zone files, SIGTERM and SIGINT stop.\n");
}

/* "127.0.0.1:5300, [::1]:5300" */
static void addr_list(const cfg_t *cfg, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->dns_count && o < cap; i++) {
        int k = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", cfg->dns[i].text);
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

static void zone_list(const zone_set_t *set, char *buf, size_t cap)
{
    size_t o = 0, n = zone_set_count(set);
    buf[0] = '\0';
    if (n == 0) {
        snprintf(buf, cap, "none");
        return;
    }
    for (size_t i = 0; i < n && o < cap; i++) {
        const zone_t *z = zone_set_at(set, i);
        int k = snprintf(buf + o, cap - o, "%s%s (serial %u)", i ? ", " : "", zone_name(z),
                         zone_serial(z));
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

/* SIGHUP: reload the zone files of the running configuration, as one change. Each file is read
 * again with its $INCLUDEs at any depth; a zone whose records are the ones it was loaded from
 * is kept as served (stamps are not trusted either way), a zone that fails to load keeps its
 * previous version.
 * Changes to the config file itself apply at restart (the workers and the control endpoint
 * hold it). */
static void reload(daemon_state_t *st)
{
    if (st->cfg->role != CFG_ROLE_PRIMARY) {
        log_info("main", "SIGHUP on a secondary: nothing to reload (zones come from the "
                         "primary)");
        return;
    }
    char err[1024];
    /* The configuration file again: its zones and health section apply now; what cannot
     * change while running (addresses, node, cluster) waits for a restart. */
    cfg_t *fresh = NULL;
    if (st->config_path && cfg_load(st->config_path, &fresh, err, sizeof(err)) != 0) {
        log_error("main",
                  "SIGHUP: the configuration is not read again: %s; reloading the zone "
                  "files of the running one",
                  err);
        fresh = NULL;
    }
    if (fresh && !cfg_same_runtime(fresh, st->cfg))
        log_warn("main",
                 "SIGHUP: %s: changes outside zones and health (node, listen, cluster, "
                 "workers, overload, journal, tsig_keys, transfer) apply at the next restart",
                 st->config_path);
    const cfg_t *use = fresh ? fresh : st->live;
    change_t ch = {.kind = CHANGE_LOAD, .cfg = use, .source = "SIGHUP"};
    change_result_t res;
    int rc = change_submit(&ch, &res, err, sizeof(err));
    if (rc != 0) {
        log_error("main", "reload failed: %s; still serving the previous zones",
                  err[0] ? err : fennec_strerror(rc));
        cfg_free(fresh);
        return;
    }
    if (fresh) {
        cfg_t **r = realloc(st->retired, (st->retired_count + 1) * sizeof(*r));
        if (r) {
            st->retired = r;
            if (st->live != st->cfg)
                st->retired[st->retired_count++] = st->live;
            st->live = fresh;
            control_zones_set(st->ctl, fresh);
        } else {
            cfg_free(fresh); /* served already; only API reloads keep the old file list */
        }
    }
    char zones[1024];
    zone_read_lock();
    zone_list(zone_set_current(), zones, sizeof(zones));
    zone_read_unlock();
    if (res.failed)
        log_warn("main", "reload: %zu zone(s) failed to load (see above); serving %s", res.failed,
                 zones);
    else
        log_info("main", "reload: serving %s", zones);
}

static void on_close(uv_handle_t *h)
{
    (void)h;
}

static void stop_all(daemon_state_t *st);

static void on_signal(uv_signal_t *sig, int signum)
{
    daemon_state_t *st = sig->data;
    if (signum == SIGHUP) {
        log_info("main", "SIGHUP: reloading zones");
        reload(st);
        return;
    }
    log_info("main", "%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    stop_all(st);
}

/* Stops the control endpoint and the workers and closes the signal handles, so that the
 * main loop ends. */
static void stop_all(daemon_state_t *st)
{
    anycast_stop();
    control_stop(st->ctl);
    server_stop(st->srv);
    uv_close((uv_handle_t *)&st->sig_hup, on_close);
    uv_close((uv_handle_t *)&st->sig_term, on_close);
    uv_close((uv_handle_t *)&st->sig_int, on_close);
}

static int check_only(cfg_t *cfg)
{
    /* The change a start would submit, validated and not applied. */
    change_t ch = {.kind = CHANGE_LOAD, .cfg = cfg, .validate_only = true, .source = "--check"};
    change_result_t res;
    char err[1024];
    zone_reader_register();
    int rc = change_submit(&ch, &res, err, sizeof(err));
    zone_reader_unregister();
    if (rc != 0) {
        fprintf(stderr, "fennecd: %s: loading zones failed: %s\n", cfg->path,
                err[0] ? err : fennec_strerror(rc));
        return EXIT_RUNTIME;
    }
    if (res.failed) {
        fprintf(stderr, "fennecd: %s: %zu of %zu zone(s) failed to load\n", cfg->path, res.failed,
                cfg->zone_count);
        return EXIT_RUNTIME;
    }
    printf("%s: configuration OK, %zu zone(s) loaded\n", cfg->path, res.zones);
    return EXIT_OK;
}

/* The start-up load of a primary's zone files: unchanged ones keep what the journal restored,
 * record edits included; changed ones are applied as differences. */
static int load_zone_files(const cfg_t *cfg)
{
    char err[1024];
    change_t load = {.kind = CHANGE_LOAD, .cfg = cfg, .source = "start"};
    change_result_t res;
    int rc = change_submit(&load, &res, err, sizeof(err));
    if (rc != 0) {
        log_error("main", "loading zones failed: %s", err[0] ? err : fennec_strerror(rc));
        return rc;
    }
    if (res.failed)
        log_warn("main", "%zu of %zu zone(s) failed to load and are not served", res.failed,
                 cfg->zone_count);
    return 0;
}

/* --reseed: the journal and snapshot of DIR move to DIR/aside-TIME/ (kept for a person to
 * look at), and the node starts without them. */
static int data_set_aside(const char *dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "snapshot", "snapshot.new"};
    char aside[4200];
    snprintf(aside, sizeof(aside), "%s/aside-%lld", dir, (long long)time(NULL));
    bool made = false;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char from[4200], to[8500];
        snprintf(from, sizeof(from), "%s/%s", dir, files[i]);
        if (access(from, F_OK) != 0)
            continue;
        if (!made && mkdir(aside, 0700) != 0 && errno != EEXIST) {
            log_error("main", "--reseed: %s: %s", aside, strerror(errno));
            return -errno;
        }
        made = true;
        snprintf(to, sizeof(to), "%s/%s", aside, files[i]);
        if (rename(from, to) != 0) {
            log_error("main", "--reseed: %s: %s", from, strerror(errno));
            return -errno;
        }
    }
    if (made)
        log_warn("main", "--reseed: the journal and snapshot of %s are set aside in %s", dir,
                 aside);
    return 0;
}

static int signal_start(uv_loop_t *loop, uv_signal_t *h, int signum, daemon_state_t *st)
{
    int rc = uv_signal_init(loop, h);
    if (rc)
        return rc;
    h->data = st;
    return uv_signal_start(h, on_signal, signum);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"reseed", no_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *level_arg = NULL;
    bool check = false, reseed = false;
    daemon_state_t st = {0};
    int code = EXIT_RUNTIME;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'r':
            reseed = true;
            break;
        case 'l':
            level_arg = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("fennecd %s\n", FENNEC_VERSION);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fennecd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    log_level_t level;
    if (level_arg && log_level_parse(level_arg, &level) != 0) {
        fprintf(stderr, "fennecd: --log-level: '%s': expected error, warn, info or debug\n",
                level_arg);
        return EXIT_USAGE;
    }

    char err[1024];
    if (config_path) {
        rc = cfg_load(config_path, &st.cfg, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "fennecd: %s\n", err);
            return check ? EXIT_RUNTIME : EXIT_USAGE;
        }
    } else {
        rc = cfg_default(&st.cfg);
        if (rc != 0) {
            fprintf(stderr, "fennecd: default configuration: %s\n", fennec_strerror(rc));
            return EXIT_RUNTIME;
        }
    }

    st.config_path = config_path;
    st.live = st.cfg;
    if (!level_arg && log_level_parse(st.cfg->log_level, &level) != 0)
        level = LOG_LEVEL_INFO;
    log_set_level(level);

    if (check) {
        code = check_only(st.cfg);
        goto cleanup;
    }

    signal(SIGPIPE, SIG_IGN);
    if (!config_path)
        log_info("main",
                 "no -c given: running the embedded default configuration "
                 "(zone example.com on %s; see fennecd --help)",
                 CFG_DEFAULT_DNS);

    /* The main thread submits changes (start, SIGHUP) and reads the served set. */
    zone_reader_register();
    bool primary = st.cfg->role == CFG_ROLE_PRIMARY;
    repl_state_init(st.cfg->node_id, primary, st.cfg->has_primary ? st.cfg->primary.text : "");
    if (reseed && (rc = data_set_aside(st.cfg->data_dir)) != 0)
        goto unregister;
    /* The prober runs on every node: checks come with the log (a primary's from its file). */
    if ((rc = health_start()) != 0) {
        log_error("main", "cannot start the health checks: %s", fennec_strerror(rc));
        goto unregister;
    }
    /* What this node served before it stopped: its snapshot and journal. */
    change_config_t cc = {.data_dir = st.cfg->data_dir,
                          .node_id = st.cfg->node_id,
                          .primary = primary,
                          .journal_max_bytes = st.cfg->journal.max_bytes,
                          .journal_keep = st.cfg->journal.keep,
                          .snapshot_every = st.cfg->journal.snapshot_every,
                          .health = true};
    uint64_t restored = 0;
    rc = change_open(&cc, &restored, err, sizeof(err));
    if (rc != 0) {
        log_error("main", "%s", err);
        health_stop();
        goto unregister;
    }
    /* A primary restored from its journal answers from that data at once and reads its zone
     * files once the listeners run; a new one loads them first. */
    if (primary && restored == 0 && (rc = load_zone_files(st.cfg)) != 0)
        goto unpublish;
    if (!primary && st.cfg->zone_count)
        log_warn("main", "zones in the configuration of a secondary are ignored: zones come "
                         "from the primary through replication");

    rc = server_new(st.cfg, &st.srv);
    if (rc != 0) {
        log_error("main", "cannot set up listeners: %s", fennec_strerror(rc));
        goto unpublish;
    }

    uv_loop_t *loop = uv_default_loop();
    if ((rc = signal_start(loop, &st.sig_hup, SIGHUP, &st)) ||
        (rc = signal_start(loop, &st.sig_term, SIGTERM, &st)) ||
        (rc = signal_start(loop, &st.sig_int, SIGINT, &st))) {
        log_error("main", "signal handlers: %s", uv_strerror(rc));
        goto free_server;
    }

    rc = server_start(st.srv);
    if (rc != 0) {
        log_error("main", "cannot start workers: %s", fennec_strerror(rc));
        stop_all(&st);
        uv_run(loop, UV_RUN_DEFAULT);
        goto free_server;
    }
    if (primary && restored > 0 && (rc = load_zone_files(st.cfg)) != 0) {
        stop_all(&st);
        uv_run(loop, UV_RUN_DEFAULT);
        goto free_server;
    }

    /* Under fennec-supervisor: its reports and our drains travel on the link. */
    anycast_start(loop);

    if (st.cfg->has_control) {
        rc = control_new(st.cfg, st.srv, &st.ctl);
        if (rc == 0)
            rc = control_start(st.ctl);
        if (rc != 0) {
            log_error("main", "control endpoint %s: %s", st.cfg->control.text, fennec_strerror(rc));
            stop_all(&st);
            uv_run(loop, UV_RUN_DEFAULT);
            goto free_server;
        }
    }

    if (st.cfg->key_file || st.cfg->has_replication || st.cfg->has_primary) {
        uint8_t key[CONTROL_MAX_KEY];
        size_t keylen = 0;
        rc = st.cfg->key_file ? control_key_read(st.cfg->key_file, key, &keylen, err, sizeof(err))
                              : 0;
        if (rc == 0)
            rc = stream_start(st.cfg, key, keylen, &st.stream, err, sizeof(err));
        OPENSSL_cleanse(key, sizeof(key));
        if (rc != 0) {
            log_error("main", "replication: %s", err);
            stop_all(&st);
            uv_run(loop, UV_RUN_DEFAULT);
            goto free_server;
        }
    }

    char addrs[512], zones[1024];
    addr_list(st.cfg, addrs, sizeof(addrs));
    zone_read_lock();
    zone_list(zone_set_current(), zones, sizeof(zones));
    zone_read_unlock();
    log_info("main",
             "fennecd %s started: node %s (%s), config %s, %u worker(s), dns %s, control %s, "
             "zones %s",
             FENNEC_VERSION, st.cfg->node_id,
             st.cfg->role == CFG_ROLE_PRIMARY ? "primary" : "secondary", st.cfg->path,
             server_workers(st.srv), addrs, st.cfg->has_control ? st.cfg->control.text : "off",
             zones);

    rc = uv_run(loop, UV_RUN_DEFAULT);
    code = EXIT_OK;
    log_info("main", "stopped");

free_server:
    stream_stop(st.stream);
    control_free(st.ctl);
    server_stop(st.srv);
    server_free(st.srv);
    uv_loop_close(uv_default_loop());
unpublish:
    change_shutdown();
    change_close();
    health_stop();
unregister:
    zone_reader_unregister();
cleanup:
    for (size_t i = 0; i < st.retired_count; i++)
        cfg_free(st.retired[i]);
    free(st.retired);
    if (st.live != st.cfg)
        cfg_free(st.live);
    cfg_free(st.cfg);
    return code;
}
