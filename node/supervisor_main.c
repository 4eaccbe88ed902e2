/*
 * fennec-supervisor — starts fennecd and couples its life to the node's anycast announcement
 * in BIRD (docs/anycast.md). A thin main: options, the config, pidfiles; supervisor.h does
 * the rest.
 *
 * Exit codes: 0 stopped by SIGTERM/SIGINT (withdrawn, fennecd stopped), 1 runtime failure,
 * 2 usage or config error, 3 fennecd exited more often than anycast.restart allows (the node
 * stays withdrawn).
 */
#include "fennec/cfg.h"
#include "fennec/common.h"
#include "fennec/supervisor.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK      0
#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fennec-supervisor -c CONFIG [--fennecd PATH] [--pidfile FILE]\n"
            "                         [--fennecd-pidfile FILE] [--log-level LEVEL]\n"
            "\n"
            "Starts fennecd -c CONFIG, withdraws the node's anycast service routes in BIRD\n"
            "the moment fennecd exits, starts it again with backoff (anycast.restart), and\n"
            "announces once a DNS query to every service address has been answered\n"
            "anycast.check.rise times in a row. See docs/anycast.md.\n"
            "\n"
            "  -c, --config FILE        the node's configuration (needs an anycast section)\n"
            "      --fennecd PATH       the fennecd to run (default: fennecd beside this\n"
            "                           program)\n"
            "      --pidfile FILE       write this program's pid to FILE\n"
            "      --fennecd-pidfile F  write fennecd's pid to F at each start; a fennecd\n"
            "                           still running under that pid from an earlier run is\n"
            "                           stopped first\n"
            "  -l, --log-level L        error | warn | info | debug (default: the config's)\n"
            "  -h, --help               this text\n"
            "  -V, --version            print the version\n"
            "\n"
            "Signals: SIGTERM and SIGINT withdraw, stop fennecd and exit 0; SIGHUP is passed\n"
            "on to fennecd. Exit status 3: fennecd exited more than anycast.restart.intensity\n"
            "times within anycast.restart.period; the node stays withdrawn.\n");
}

/* fennecd beside this program. */
static char *default_fennecd(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return strdup("fennecd");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return strdup("fennecd");
    slash[1] = '\0';
    size_t need = strlen(self) + sizeof("fennecd");
    char *out = malloc(need);
    if (out)
        snprintf(out, need, "%sfennecd", self);
    return out;
}

static int pidfile_write(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f) == 0 ? 0 : -errno;
}

/* A fennecd that an earlier supervisor left running (it was killed with SIGKILL, say) holds
 * the ports: stop it before starting another. Only a process named fennecd is touched. */
static void stop_leftover(const char *pidfile)
{
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (!f)
        return;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 1 || kill((pid_t)pid, 0) != 0)
        return;
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    f = fopen(path, "r");
    if (f) {
        if (!fgets(comm, sizeof(comm), f))
            comm[0] = '\0';
        fclose(f);
    }
    comm[strcspn(comm, "\n")] = '\0';
    if (strcmp(comm, "fennecd") != 0)
        return;
    log_warn("supervisor", "a fennecd from an earlier run still runs (pid %ld, %s): stopping it",
             pid, pidfile);
    kill((pid_t)pid, SIGTERM);
    for (int i = 0; i < SUPERVISOR_STOP_TIMEOUT_S * 20 && kill((pid_t)pid, 0) == 0; i++)
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    if (kill((pid_t)pid, 0) == 0)
        kill((pid_t)pid, SIGKILL);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"fennecd", required_argument, NULL, 'f'},
        {"pidfile", required_argument, NULL, 'p'},
        {"fennecd-pidfile", required_argument, NULL, 'P'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *fennecd = NULL, *pidfile = NULL, *fpidfile = NULL;
    const char *level_arg = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'f':
            fennecd = optarg;
            break;
        case 'p':
            pidfile = optarg;
            break;
        case 'P':
            fpidfile = optarg;
            break;
        case 'l':
            level_arg = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("fennec-supervisor %s\n", FENNEC_VERSION);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc || !config) {
        fprintf(stderr,
                optind < argc ? "fennec-supervisor: unexpected argument '%s'\n"
                              : "fennec-supervisor: -c CONFIG is required%s\n",
                optind < argc ? argv[optind] : "");
        usage(stderr);
        return EXIT_USAGE;
    }
    log_level_t level;
    if (level_arg && log_level_parse(level_arg, &level) != 0) {
        fprintf(stderr,
                "fennec-supervisor: --log-level: '%s': expected error, warn, info or "
                "debug\n",
                level_arg);
        return EXIT_USAGE;
    }
    char err[1024];
    cfg_t *cfg = NULL;
    if (cfg_load(config, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "fennec-supervisor: %s\n", err);
        return EXIT_USAGE;
    }
    if (!cfg->anycast.set) {
        fprintf(stderr,
                "fennec-supervisor: %s: no anycast section: the supervisor needs "
                "anycast.service and anycast.bird_socket (docs/config.md)\n",
                config);
        cfg_free(cfg);
        return EXIT_USAGE;
    }
    if (!level_arg && log_level_parse(cfg->log_level, &level) != 0)
        level = LOG_LEVEL_INFO;
    log_set_level(level);

    /* fennecd gets the same file whatever its working directory becomes. */
    char *abs_config = realpath(config, NULL);
    char *fennecd_path = fennecd ? strdup(fennecd) : default_fennecd();
    int code = EXIT_RUNTIME;
    if (!abs_config || !fennecd_path) {
        fprintf(stderr, "fennec-supervisor: %s: %s\n", config,
                abs_config ? "out of memory" : strerror(errno));
        goto cleanup;
    }
    if (access(fennecd_path, X_OK) != 0) {
        fprintf(stderr, "fennec-supervisor: %s: %s (use --fennecd PATH)\n", fennecd_path,
                strerror(errno));
        code = EXIT_USAGE;
        goto cleanup;
    }
    signal(SIGPIPE, SIG_IGN);
    int rc;
    if (pidfile && (rc = pidfile_write(pidfile)) != 0) {
        fprintf(stderr, "fennec-supervisor: --pidfile %s: %s\n", pidfile, strerror(-rc));
        goto cleanup;
    }
    if (fpidfile)
        stop_leftover(fpidfile);
    supervisor_opts_t so = {
        .config_path = abs_config, .fennecd_path = fennecd_path, .fennecd_pidfile = fpidfile};
    code = supervisor_run(cfg, &so);
    if (pidfile)
        unlink(pidfile);
cleanup:
    free(abs_config);
    free(fennecd_path);
    cfg_free(cfg);
    return code;
}
