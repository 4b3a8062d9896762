/*  sosnode.c: the sosnode daemon's entry point: settings, logging, then the node actor.
    Exit codes: 0 clean stop, 1 cannot start (store, identity, socket), 2 bad arguments. */
#include <limits.h>
#include <stdio.h>

#include "sos_config.h"
#include "sos_log.h"
#include "sos_node.h"

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
    if (sos_config_validate(&cfg, err, sizeof err) != SOS_OK) {
        fprintf(stderr, "sosnode: %s (try --help)\n", err);
        return 2;
    }
    sos_log_set_level(cfg.log_level);
    zsys_set_logident("sosnode");
    zsys_init();
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
