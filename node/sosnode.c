/*  sosnode.c: the sosnode daemon's entry point: settings, logging, then the node actor.
    Exit codes: 0 clean stop, 1 cannot start (store, identity, socket), 2 bad arguments. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <czmq.h>

#include "sos_config.h"
#include "sos_log.h"
#include "sos_node.h"

/*  Every connection to the public endpoint holds a file descriptor, and at the limit the
    node can accept none: take the hard limit rather than the soft one (often 1024, which a
    single stranger's idle connections reach), up to 65536. */
static rlim_t
s_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            sos_log_info("open files limit raised from %llu to %llu", (unsigned long long)was,
                         (unsigned long long)want);
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536 ? 65536 : rl.rlim_cur;
}

/*  czmq allows 1,024 sockets by default and asserts when asked for one more; the node
    checks every socket it makes, but the limit itself should be the file limit (every
    ZeroMQ socket holds at least one descriptor). The connections to other nodes (a socket
    and a TCP connection each) may then take a quarter of the descriptors; the public
    endpoint's connections take at most half (sos_node.c), and the rest is the store's,
    the log's and the HTTP front end's. */
static void
s_fit_sockets(sos_config_t *cfg, rlim_t files)
{
    size_t limit = zsys_socket_limit();
    size_t sockets = files < limit ? (size_t)files : limit;
    zsys_set_max_sockets(sockets);
    size_t fit = files > 256 ? (size_t)(files - 128) / 4 : 32;
    if (fit > sockets - 16)
        fit = sockets > 48 ? sockets - 16 : 32;
    if (cfg->max_peer_connections > fit) {
        sos_log_notice("max-peer-connections lowered from %u to %zu to fit %llu open files",
                       cfg->max_peer_connections, fit, (unsigned long long)files);
        cfg->max_peer_connections = (uint32_t)fit;
    }
}

/*  --print-id: the id of the node whose data directory is cfg's, made if there is none yet,
    so that an operator (or a test) can give it to others before the node first starts:
    with CURVE, a node id is what others need to connect (PROTOCOL.md, "Transport"). */
static int
s_print_id(const sos_config_t *cfg)
{
    if (!*cfg->data_dir) {
        fprintf(stderr, "sosnode: --print-id needs --data DIR\n");
        return 2;
    }
    if (sos_crypto_init() != SOS_OK)
        return 1;
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "sosnode: cannot make %s: %s\n", cfg->data_dir, strerror(errno));
        return 1;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/identity.key", cfg->data_dir);
    sos_identity_t id;
    sos_rc rc = sos_identity_load_or_create(&id, path, NULL);
    if (rc) {
        fprintf(stderr, "sosnode: cannot load the identity %s: %s\n", path, sos_strerror(rc));
        return 1;
    }
    char hex[SOS_NODEID_HEX + 1];
    printf("%s\n", sos_hex(hex, id.pk, SOS_NODEID_BYTES));
    sos_identity_wipe(&id);
    return 0;
}

int
main(int argc, char **argv)
{
    sos_config_t cfg;
    char err[512] = "";
    sos_config_defaults(&cfg);
    if (sos_config_parse(&cfg, argc, argv, err, sizeof err) != SOS_OK) {
        fprintf(stderr, "sosnode: %s (try --help)\n", err);
        return 2;
    }
    if (cfg.show_help) {
        fputs(sos_config_usage(), stdout);
        return 0;
    }
    if (cfg.show_version) {
        printf("sosnode %s\n", SOS_VERSION);
        return 0;
    }
    if (cfg.print_id)
        return s_print_id(&cfg);
    if (sos_config_validate(&cfg, err, sizeof err) != SOS_OK) {
        fprintf(stderr, "sosnode: %s (try --help)\n", err);
        return 2;
    }
    sos_log_set_level(cfg.log_level);
    zsys_set_logident("sosnode");
    rlim_t files = s_raise_fd_limit();
    zsys_init();
    s_fit_sockets(&cfg, files);
    if (sos_crypto_init() != SOS_OK) {
        fprintf(stderr, "sosnode: libsodium failed to initialise\n");
        return 1;
    }
    sos_rc rc;
    char why[PATH_MAX + 256];
    sos_node_t *node = sos_node_new(&cfg, &rc, why, sizeof why);
    if (!node) {
        /*  One line on stderr: what failed, on which directory, file or endpoint */
        fprintf(stderr, "sosnode: cannot start: %s\n", *why ? why : sos_strerror(rc));
        return 1;
    }
    int status = sos_node_run(node);
    sos_node_destroy(&node);
    sos_log_notice("stopped");
    return status;
}
