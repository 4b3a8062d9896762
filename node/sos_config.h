/*  sos_config.h: sosnode's settings, from the command line and a ZPL config file (czmq's
    zconfig). Flags win over the file; the file wins over the defaults. */
#ifndef SOS_CONFIG_H
#define SOS_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "sos_error.h"
#include "sos_identity.h"
#include "sos_record.h"

#define SOS_GENESIS_MAX        64
#define SOS_HTTP_MAX           8   /* --http listeners */
#define SOS_HTTP_URL_MAX       255 /* --http-advertise: the HTTP base URL put in the worker record */
#define SOS_NULL_TRANSPORT_ENV "SOS_ALLOW_NULL_TRANSPORT" /* =1 allows --transport null */

typedef struct {
    char url[SOS_URL_MAX + 1];
    bool pinned; /* given as NODEID@ENDPOINT: the node there must have this id */
    uint8_t id[SOS_NODEID_BYTES];
} sos_genesis_t;

typedef struct {
    char data_dir[PATH_MAX];
    char listen[SOS_URL_MAX + 1];
    char advertise[SOS_URL_MAX + 1];
    uint32_t n_genesis;
    sos_genesis_t genesis[SOS_GENESIS_MAX];
    uint32_t gossip_interval_ms;   /* 30000 */
    uint32_t fanout;               /* 3 */
    uint32_t max_failures;         /* 5 */
    uint32_t probe_helpers;        /* 3: peers asked to reach one that missed an exchange */
    uint32_t view_size;            /* peers kept connected (the active view); 0: fanout + ln N */
    uint32_t room_ttl_s;           /* 3600 */
    uint32_t history_limit;        /* 500 messages kept per room */
    uint32_t max_workers;          /* 4096 */
    uint32_t max_rooms;            /* 100000 */
    uint32_t max_rooms_per_origin; /* 10000 */
    uint64_t map_size;             /* LMDB map, bytes */
    bool rate_limit;               /* escalating delays on room creation per client address */
    uint32_t max_connections;      /* 4096: on the public endpoint (lowered to fit the fd limit) */
    uint32_t max_connections_per_address; /* 64; 0: none; lifted by rate_limit off */
    uint32_t max_peer_connections; /* open DEALERs to peers (512; lowered to fit the fd limit) */
    bool allow_private_endpoints;  /* take records naming non-public addresses (see README) */
    uint32_t verify_budget;        /* record signature checks per second per sender (4096) */
    uint32_t client_rate;          /* 20: joins and sends per second per client address (burst
                                      10 s of it), while rate_limit is on */
    uint32_t max_pending;          /* 64: long polls and forwards waiting per client address;
                                      0 = no cap */
    uint32_t max_pending_total;    /* 16384: long polls and forwards waiting in all */
    uint32_t max_rooms_unvouched;  /* 10000: rooms from origins that are no live worker we
                                      exchanged with (see sos_merge.c); 0 = no cap */
    uint32_t room_quota_kib;       /* 16384: KiB of messages kept per room (the oldest go
                                      first, as with the history limit); 0 = no quota */
    int log_level;                 /* sos_log_level_t */
    bool transport_null;           /* test only: the NULL mechanism instead of CURVE (needs
                                      SOS_ALLOW_NULL_TRANSPORT=1 in the environment) */
    uint32_t max_handshakes;       /* 200: CURVE handshakes per second from one address */
    uint32_t max_handshakes_total; /* 2000: and from all addresses */
    bool print_id;                 /* --print-id: print the node id of --data and exit */
    bool show_help;
    bool show_version;
    /* HTTP front end (sos_http.c) */
    uint32_t n_http;
    char http[SOS_HTTP_MAX][64];               /* [ADDR:]PORT */
    char http_advertise[SOS_HTTP_URL_MAX + 1]; /* the node's HTTP base URL; "" = derived */
    char http_cert[PATH_MAX];                  /* PEM files: TLS when both are given */
    char http_key[PATH_MAX];
    uint32_t http_body_max;    /* bytes of a request body (65536) */
    uint32_t http_max_conns;   /* connections at once, per listener (1000) */
    uint32_t http_timeout_s;   /* idle seconds before a connection is closed (30) */
    uint32_t http_max_waiting; /* requests waiting for the node at once (512) */
    bool trust_proxy;          /* take the client address from X-Forwarded-For */
    uint32_t member_idle_s;    /* a full room first drops members quiet this long (600) */
} sos_config_t;

/*  Fill cfg with the defaults. */
void sos_config_defaults(sos_config_t *cfg);

/*  Parse argv (argv[0] is the program). A --config FILE anywhere on the line is read first;
    then the other flags override it. Returns SOS_OK, or SOS_ERR_INVALID with a one-line
    reason in err (errlen bytes). --help and --version only set show_help / show_version. */
sos_rc sos_config_parse(sos_config_t *cfg, int argc, char **argv, char *err, size_t errlen);

/*  Load settings from a ZPL file (see README, "Configuration"). Returns SOS_OK, or
    SOS_ERR_INVALID with a one-line reason in err; settings read before the bad one stay set. */
sos_rc sos_config_load_file(sos_config_t *cfg, const char *path, char *err, size_t errlen);

/*  As sos_config_load_file, from the ZPL text itself (NUL-terminated). */
sos_rc sos_config_load_str(sos_config_t *cfg, const char *text, char *err, size_t errlen);

/*  Check the result: required settings, ranges; derives advertise from listen when it is not
    given and listen names a concrete address. With CURVE (the default) every genesis must be
    given as NODEID@ENDPOINT; --transport null is refused unless the environment has
    SOS_ALLOW_NULL_TRANSPORT=1. */
sos_rc sos_config_validate(sos_config_t *cfg, char *err, size_t errlen);

/*  Parse "[NODEID@]ENDPOINT" into g. */
sos_rc sos_genesis_parse(sos_genesis_t *g, const char *text);

/*  The usage text for --help. */
const char *sos_config_usage(void);

#endif
