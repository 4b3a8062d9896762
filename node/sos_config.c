/*  sos_config.c: command line and ZPL config file parsing for sosnode.
    The file is read with czmq's zconfig; every numeric setting is range-checked. */
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sos_config.h"
#include "sos_log.h"

static const char s_usage[] =
    "Usage: sosnode --data DIR --listen ENDPOINT [OPTIONS]\n"
    "\n"
    "A node of the sosnode overlay: keeps the directory of workers and chat rooms in LMDB,\n"
    "gossips it to other nodes as signed deltas over ZeroMQ, and serves the rooms it owns.\n"
    "\n"
    "  --data DIR               data directory (identity key, LMDB store); created if missing\n"
    "  --listen ENDPOINT        ZeroMQ endpoint to bind, e.g. tcp://*:7700\n"
    "  --advertise ENDPOINT     endpoint other nodes use to reach this one (default: the\n"
    "                           listen endpoint, when it names a concrete address)\n"
    "  --genesis [ID@]ENDPOINT  a genesis node to bootstrap from (repeatable); with ID (64 hex\n"
    "                           characters) the node there must have that id\n"
    "  --gossip-interval MS     milliseconds between gossip rounds (default 30000)\n"
    "  --fanout N               peers per gossip round and per pushed change (default 3)\n"
    "  --max-failures N         failed exchanges, here and confirmed by others, before a\n"
    "                           suspected worker is removed (default 5)\n"
    "  --probe-helpers K        peers asked to reach a peer that missed an exchange before it\n"
    "                           becomes a suspect (default 3, 0: none, at most 8)\n"
    "  --view-size N            peers kept connected for gossip (the active view; default 0:\n"
    "                           fanout + ln of the workers listed, at most 32)\n"
    "  --room-ttl SECONDS       lifetime of a room created here (default 3600)\n"
    "  --history N              messages kept per room (default 500)\n"
    "  --max-workers N          workers accepted in the directory (default 4096)\n"
    "  --max-rooms N            rooms accepted in the directory (default 100000)\n"
    "  --max-rooms-per-origin N rooms accepted from one owner (default 10000)\n"
    "  --map-size MIB           LMDB map size in MiB (default 1024)\n"
    "  --rate-limit on|off      escalating delays between room creations from one client\n"
    "                           address: 0, 10, 30, 60, 180, 300 s (default on); off\n"
    "                           also lifts --client-rate and --verify-budget\n"
    "  --client-rate N          joins and sends per second from one client address, in\n"
    "                           bursts of up to 10 s of it (default 20)\n"
    "  --max-pending N          long polls and forwards waiting per client address (default\n"
    "                           64; 0: no cap)\n"
    "  --max-pending-total N    long polls and forwards waiting in all (default 16384)\n"
    "  --max-rooms-unvouched N  rooms accepted from owners that are no live worker this node\n"
    "                           exchanged with in the last 10 min (default 10000; 0: no cap)\n"
    "  --room-quota KIB         KiB of messages kept per room: the oldest go first, as with\n"
    "                           --history (default 16384; 0: no quota)\n"
    "  --http [ADDR:]PORT       serve the HTTP API and the web page there (repeatable)\n"
    "  --http-advertise URL     this node's HTTP base URL, as other nodes list it (default:\n"
    "                           http://ADDR:PORT of the first --http, with a concrete ADDR)\n"
    "  --http-cert FILE, --http-key FILE\n"
    "                           PEM certificate and key: serve HTTPS instead of HTTP\n"
    "  --http-body-max BYTES    largest request body accepted (default 65536)\n"
    "  --http-max-conns N       HTTP connections at once, per listener (default 1000)\n"
    "  --http-timeout SECONDS   idle time before an HTTP connection is closed (default 30)\n"
    "  --http-max-waiting N     HTTP requests waiting for a room operation (default 512)\n"
    "  --trust-proxy            take the client address from X-Forwarded-For (only behind a\n"
    "                           reverse proxy that sets it)\n"
    "  --member-idle SECONDS    a join into a full room first removes the members that have\n"
    "                           not polled or sent for this long (default 600)\n"
    "  --max-connections N      connections to the public endpoint at once (default 4096,\n"
    "                           lowered at start to half the open files limit)\n"
    "  --max-connections-per-address N\n"
    "                           connections from one IP address at once (default 64; 0:\n"
    "                           no cap); --rate-limit off lifts it too\n"
    "  --max-peer-connections N open connections to other nodes at most; the least recently\n"
    "                           used is closed to open another (default 512, lowered to fit\n"
    "                           the open files limit)\n"
    "  --allow-private-endpoints [on|off]\n"
    "                           take records naming loopback, private or link-local addresses\n"
    "                           also when this node advertises a public one (default off; a\n"
    "                           node advertising a non-public address always takes them)\n"
    "  --verify-budget N        record signatures checked per second for one sender (peers\n"
    "                           each, strangers together) before its gossip is refused;\n"
    "                           --rate-limit off lifts it (default 4096)\n"
    "  --transport curve|null   curve (default): every connection is encrypted and\n"
    "                           authenticated with CURVE keys derived from node ids; null is\n"
    "                           for tests and benchmarks only, refused unless the environment\n"
    "                           has SOS_ALLOW_NULL_TRANSPORT=1 (it cannot talk to curve nodes)\n"
    "  --max-handshakes N       CURVE handshakes per second from one IP address, in bursts\n"
    "                           of 2 s of it; more are refused and counted (default 200);\n"
    "                           --rate-limit off lifts it (the total stays)\n"
    "  --max-handshakes-total N the same from all addresses (default 2000)\n"
    "  --print-id               print this node's id (from --data, made if missing) and exit\n"
    "  --config FILE            ZPL config file with the same settings; flags win\n"
    "  --log-level LEVEL        error, warning, notice (default), info or debug\n"
    "  --help                   this text\n"
    "  --version                print the version\n"
    "\n"
    "Signals: SIGTERM or SIGINT tell peers the node is leaving, close the store and exit 0.\n";

const char *
sos_config_usage(void)
{
    return s_usage;
}

void
sos_config_defaults(sos_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->gossip_interval_ms = 30000;
    cfg->fanout = 3;
    cfg->max_failures = 5;
    cfg->probe_helpers = 3;
    cfg->room_ttl_s = 3600;
    cfg->history_limit = 500;
    cfg->max_workers = 4096;
    cfg->max_rooms = 100000;
    cfg->max_rooms_per_origin = 10000;
    cfg->max_connections = 4096;
    cfg->max_connections_per_address = 64;
    cfg->map_size = 1024ULL << 20;
    cfg->rate_limit = true;
    cfg->max_peer_connections = 512;
    cfg->verify_budget = 4096;
    cfg->client_rate = 20;
    cfg->max_pending = 64;
    cfg->max_pending_total = 16384;
    cfg->max_rooms_unvouched = 10000;
    cfg->room_quota_kib = 16384;
    cfg->log_level = SOS_LOG_NOTICE;
    cfg->http_body_max = 65536;
    cfg->http_max_conns = 1000;
    cfg->http_timeout_s = 30;
    cfg->http_max_waiting = 512;
    cfg->member_idle_s = 600;
    /*  Far above what the nodes and clients behind one address reconnect at, far below
        what a core's X25519 work could do. */
    cfg->max_handshakes = 200;
    cfg->max_handshakes_total = 2000;
}

static sos_rc
s_copy(char *dest, size_t size, const char *value, const char *name, char *err, size_t errlen)
{
    if (strlen(value) >= size) {
        snprintf(err, errlen, "%s is too long (at most %zu bytes)", name, size - 1);
        return SOS_ERR_INVALID;
    }
    strcpy(dest, value);
    return SOS_OK;
}

static sos_rc
s_number(uint64_t *out, const char *value, uint64_t min, uint64_t max, const char *name, char *err,
         size_t errlen)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || !end || *end || end == value || *value == '-' || v < min || v > max) {
        snprintf(err, errlen, "%s must be a number from %llu to %llu, not '%s'", name,
                 (unsigned long long)min, (unsigned long long)max, value);
        return SOS_ERR_INVALID;
    }
    *out = v;
    return SOS_OK;
}

sos_rc
sos_genesis_parse(sos_genesis_t *g, const char *text)
{
    memset(g, 0, sizeof *g);
    const char *at = strchr(text, '@');
    const char *url = text;
    if (at) {
        if (at - text != SOS_NODEID_HEX)
            return SOS_ERR_INVALID;
        char hex[SOS_NODEID_HEX + 1];
        memcpy(hex, text, SOS_NODEID_HEX);
        hex[SOS_NODEID_HEX] = 0;
        if (!sos_unhex(g->id, SOS_NODEID_BYTES, hex))
            return SOS_ERR_INVALID;
        g->pinned = true;
        url = at + 1;
    }
    if (strncmp(url, "tcp://", 6) != 0 || strlen(url) > SOS_URL_MAX || strlen(url) < 8)
        return SOS_ERR_INVALID;
    strcpy(g->url, url);
    return SOS_OK;
}

static sos_rc
s_add_genesis(sos_config_t *cfg, const char *value, char *err, size_t errlen)
{
    if (cfg->n_genesis >= SOS_GENESIS_MAX) {
        snprintf(err, errlen, "at most %d genesis nodes", SOS_GENESIS_MAX);
        return SOS_ERR_INVALID;
    }
    if (sos_genesis_parse(&cfg->genesis[cfg->n_genesis], value) != SOS_OK) {
        snprintf(err, errlen, "genesis '%s' is not [NODEID@]tcp://HOST:PORT", value);
        return SOS_ERR_INVALID;
    }
    cfg->n_genesis++;
    return SOS_OK;
}

/*  One setting by name, shared by the command line and the config file. */
static sos_rc
s_set(sos_config_t *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    uint64_t v = 0;
    sos_rc rc = SOS_OK;
    if (streq(name, "data"))
        return s_copy(cfg->data_dir, sizeof cfg->data_dir, value, name, err, errlen);
    if (streq(name, "listen"))
        return s_copy(cfg->listen, sizeof cfg->listen, value, name, err, errlen);
    if (streq(name, "advertise"))
        return s_copy(cfg->advertise, sizeof cfg->advertise, value, name, err, errlen);
    if (streq(name, "genesis"))
        return s_add_genesis(cfg, value, err, errlen);
    if (streq(name, "http")) {
        if (cfg->n_http >= SOS_HTTP_MAX) {
            snprintf(err, errlen, "at most %d --http listeners", SOS_HTTP_MAX);
            return SOS_ERR_INVALID;
        }
        rc = s_copy(cfg->http[cfg->n_http], sizeof cfg->http[0], value, name, err, errlen);
        if (rc == SOS_OK)
            cfg->n_http++;
        return rc;
    }
    if (streq(name, "http-advertise"))
        return s_copy(cfg->http_advertise, sizeof cfg->http_advertise, value, name, err, errlen);
    if (streq(name, "http-cert"))
        return s_copy(cfg->http_cert, sizeof cfg->http_cert, value, name, err, errlen);
    if (streq(name, "http-key"))
        return s_copy(cfg->http_key, sizeof cfg->http_key, value, name, err, errlen);
    if (streq(name, "trust-proxy")) {
        if (streq(value, "on") || streq(value, "off")) {
            cfg->trust_proxy = streq(value, "on");
            return SOS_OK;
        }
        snprintf(err, errlen, "trust-proxy must be on or off, not '%s'", value);
        return SOS_ERR_INVALID;
    }
    if (streq(name, "transport")) {
        if (streq(value, "curve") || streq(value, "null")) {
            cfg->transport_null = streq(value, "null");
            return SOS_OK;
        }
        snprintf(err, errlen, "transport must be curve or null, not '%s'", value);
        return SOS_ERR_INVALID;
    }
    if (streq(name, "log-level")) {
        int level = sos_log_level_parse(value);
        if (level < 0) {
            snprintf(err, errlen, "unknown log level '%s'", value);
            return SOS_ERR_INVALID;
        }
        cfg->log_level = level;
        return SOS_OK;
    }
    static const struct {
        const char *name;
        size_t offset;
        uint64_t min, max;
    } numbers[] = {
        {"gossip-interval", offsetof(sos_config_t, gossip_interval_ms), 10, 3600000},
        {"fanout", offsetof(sos_config_t, fanout), 1, 64},
        {"max-failures", offsetof(sos_config_t, max_failures), 1, 1000},
        {"probe-helpers", offsetof(sos_config_t, probe_helpers), 0, 8},
        {"view-size", offsetof(sos_config_t, view_size), 0, 32},
        {"room-ttl", offsetof(sos_config_t, room_ttl_s), 1, 30 * 86400},
        {"history", offsetof(sos_config_t, history_limit), 1, 100000},
        {"max-workers", offsetof(sos_config_t, max_workers), 1, 1000000},
        {"max-rooms", offsetof(sos_config_t, max_rooms), 1, 10000000},
        {"max-rooms-per-origin", offsetof(sos_config_t, max_rooms_per_origin), 1, 10000000},
        {"max-peer-connections", offsetof(sos_config_t, max_peer_connections), 8, 100000},
        {"verify-budget", offsetof(sos_config_t, verify_budget), 512, 10000000},
        {"client-rate", offsetof(sos_config_t, client_rate), 1, 1000000},
        {"max-pending", offsetof(sos_config_t, max_pending), 0, 1000000},
        {"max-pending-total", offsetof(sos_config_t, max_pending_total), 1, 1000000},
        {"room-quota", offsetof(sos_config_t, room_quota_kib), 0, 1024 * 1024},
        {"max-rooms-unvouched", offsetof(sos_config_t, max_rooms_unvouched), 0, 10000000},
        {"http-body-max", offsetof(sos_config_t, http_body_max), 65536, 16 << 20},
        {"http-max-conns", offsetof(sos_config_t, http_max_conns), 1, 1000000},
        {"http-timeout", offsetof(sos_config_t, http_timeout_s), 1, 3600},
        {"http-max-waiting", offsetof(sos_config_t, http_max_waiting), 1, 1000000},
        {"member-idle", offsetof(sos_config_t, member_idle_s), 1, 30 * 86400},
        {"max-connections", offsetof(sos_config_t, max_connections), 1, 1000000},
        {"max-handshakes", offsetof(sos_config_t, max_handshakes), 1, 1000000},
        {"max-handshakes-total", offsetof(sos_config_t, max_handshakes_total), 1, 10000000},
        {"max-connections-per-address", offsetof(sos_config_t, max_connections_per_address), 0,
         1000000},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        if (streq(name, numbers[i].name)) {
            rc = s_number(&v, value, numbers[i].min, numbers[i].max, name, err, errlen);
            if (rc == SOS_OK)
                *(uint32_t *)((char *)cfg + numbers[i].offset) = (uint32_t)v;
            return rc;
        }
    }
    if (streq(name, "rate-limit")) {
        if (streq(value, "on") || streq(value, "off")) {
            cfg->rate_limit = streq(value, "on");
            return SOS_OK;
        }
        snprintf(err, errlen, "rate-limit must be on or off, not '%s'", value);
        return SOS_ERR_INVALID;
    }
    if (streq(name, "allow-private-endpoints")) {
        if (streq(value, "on") || streq(value, "off")) {
            cfg->allow_private_endpoints = streq(value, "on");
            return SOS_OK;
        }
        snprintf(err, errlen, "allow-private-endpoints must be on or off, not '%s'", value);
        return SOS_ERR_INVALID;
    }
    if (streq(name, "map-size")) {
        rc = s_number(&v, value, 1, 1024 * 1024, name, err, errlen);
        if (rc == SOS_OK)
            cfg->map_size = v << 20;
        return rc;
    }
    snprintf(err, errlen, "unknown setting '%s'", name);
    return SOS_ERR_INVALID;
}

/*  Apply the "sosnode" section of a parsed config tree; what names the source in errors.
    Takes ownership of root. */
static sos_rc
s_load(sos_config_t *cfg, zconfig_t *root, const char *what, char *err, size_t errlen)
{
    sos_rc rc = SOS_OK;
    zconfig_t *section = zconfig_locate(root, "sosnode");
    if (!section) {
        snprintf(err, errlen, "%s has no 'sosnode' section", what);
        rc = SOS_ERR_INVALID;
        goto done;
    }
    for (zconfig_t *item = zconfig_child(section); item && rc == SOS_OK;
         item = zconfig_next(item)) {
        const char *name = zconfig_name(item);
        if (streq(name, "genesis") && zconfig_child(item)) {
            /*  genesis may be a list: one child per node, any names */
            for (zconfig_t *g = zconfig_child(item); g && rc == SOS_OK; g = zconfig_next(g))
                rc = s_add_genesis(cfg, zconfig_value(g), err, errlen);
        } else
            rc = s_set(cfg, name, zconfig_value(item), err, errlen);
    }
done:
    zconfig_destroy(&root);
    return rc;
}

sos_rc
sos_config_load_file(sos_config_t *cfg, const char *path, char *err, size_t errlen)
{
    zconfig_t *root = zconfig_load(path);
    if (!root) {
        snprintf(err, errlen, "cannot read config file '%s' (missing or not ZPL)", path);
        return SOS_ERR_INVALID;
    }
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "config file '%s'", path);
    return s_load(cfg, root, what, err, errlen);
}

sos_rc
sos_config_load_str(sos_config_t *cfg, const char *text, char *err, size_t errlen)
{
    zconfig_t *root = zconfig_str_load(text);
    if (!root) {
        snprintf(err, errlen, "config text is not ZPL");
        return SOS_ERR_INVALID;
    }
    return s_load(cfg, root, "config text", err, errlen);
}

sos_rc
sos_config_parse(sos_config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    /*  First pass: the config file, so that flags can override it. */
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--config")) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config needs a FILE");
                return SOS_ERR_INVALID;
            }
            sos_rc rc = sos_config_load_file(cfg, argv[i + 1], err, errlen);
            if (rc)
                return rc;
        }
    }
    /*  Genesis nodes given on the command line replace those of the file. */
    bool genesis_flag = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (streq(arg, "--help") || streq(arg, "-h")) {
            cfg->show_help = true;
            continue;
        }
        if (streq(arg, "--version")) {
            cfg->show_version = true;
            continue;
        }
        if (streq(arg, "--print-id")) {
            cfg->print_id = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", arg);
            return SOS_ERR_INVALID;
        }
        if (streq(arg, "--trust-proxy") &&
            (i + 1 >= argc || (!streq(argv[i + 1], "on") && !streq(argv[i + 1], "off")))) {
            cfg->trust_proxy = true; /* a bare flag */
            continue;
        }
        if (streq(arg, "--allow-private-endpoints") &&
            (i + 1 >= argc || (!streq(argv[i + 1], "on") && !streq(argv[i + 1], "off")))) {
            cfg->allow_private_endpoints = true; /* a bare flag */
            continue;
        }
        if (i + 1 >= argc) {
            snprintf(err, errlen, "%s needs a value", arg);
            return SOS_ERR_INVALID;
        }
        const char *value = argv[++i];
        if (streq(arg, "--config"))
            continue;
        if (streq(arg, "--genesis") && !genesis_flag) {
            genesis_flag = true;
            cfg->n_genesis = 0;
        }
        sos_rc rc = s_set(cfg, arg + 2, value, err, errlen);
        if (rc)
            return rc;
    }
    return SOS_OK;
}

sos_rc
sos_config_validate(sos_config_t *cfg, char *err, size_t errlen)
{
    if (!*cfg->data_dir) {
        snprintf(err, errlen, "--data DIR is required");
        return SOS_ERR_INVALID;
    }
    if (!*cfg->listen) {
        snprintf(err, errlen, "--listen ENDPOINT is required");
        return SOS_ERR_INVALID;
    }
    if (strncmp(cfg->listen, "tcp://", 6) != 0) {
        snprintf(err, errlen, "--listen must be a tcp:// endpoint");
        return SOS_ERR_INVALID;
    }
    if (!*cfg->advertise) {
        const char *host = cfg->listen + 6;
        if (*host == '*' || strncmp(host, "0.0.0.0:", 8) == 0) {
            snprintf(err, errlen,
                     "--listen %s binds every address: give --advertise tcp://HOST:PORT",
                     cfg->listen);
            return SOS_ERR_INVALID;
        }
        strcpy(cfg->advertise, cfg->listen);
    }
    if (strncmp(cfg->advertise, "tcp://", 6) != 0 || strchr(cfg->advertise + 6, '*')) {
        snprintf(err, errlen, "--advertise must be a concrete tcp://HOST:PORT");
        return SOS_ERR_INVALID;
    }
    if (cfg->transport_null) {
        const char *allow = getenv(SOS_NULL_TRANSPORT_ENV);
        if (!allow || !streq(allow, "1")) {
            snprintf(err, errlen,
                     "--transport null sends everything in clear and is for tests only: set "
                     "%s=1 in the environment to allow it",
                     SOS_NULL_TRANSPORT_ENV);
            return SOS_ERR_INVALID;
        }
    } else {
        for (uint32_t i = 0; i < cfg->n_genesis; i++) {
            if (!cfg->genesis[i].pinned) {
                snprintf(err, errlen,
                         "genesis %s needs its node id, as NODEID@%s: every connection is "
                         "CURVE, keyed by the id (run 'sosnode --data DIR --print-id' on that "
                         "node, or read the 'node ID' line of its log)",
                         cfg->genesis[i].url, cfg->genesis[i].url);
                return SOS_ERR_INVALID;
            }
        }
    }
    if (!*cfg->http_cert != !*cfg->http_key) {
        snprintf(err, errlen, "--http-cert and --http-key go together");
        return SOS_ERR_INVALID;
    }
    if (*cfg->http_advertise &&
        !sos_http_url_valid(cfg->http_advertise, strlen(cfg->http_advertise))) {
        snprintf(err, errlen, "--http-advertise must be http(s)://HOST:PORT");
        return SOS_ERR_INVALID;
    }
    if (!*cfg->http_advertise && cfg->n_http) {
        /*  The first listener's address when it names one, else the ZeroMQ endpoint's host:
            the URL other nodes and the seed's clients are given for this node. */
        const char *scheme = *cfg->http_cert ? "https" : "http";
        const char *colon = strrchr(cfg->http[0], ':');
        const char *port = colon ? colon + 1 : cfg->http[0];
        char host[SOS_URL_MAX + 1] = "";
        if (colon && colon != cfg->http[0] && strncmp(cfg->http[0], "0.0.0.0:", 8) != 0 &&
            cfg->http[0][0] != '*')
            snprintf(host, sizeof host, "%.*s", (int)(colon - cfg->http[0]), cfg->http[0]);
        else {
            const char *h = cfg->advertise + 6;
            const char *c = strrchr(h, ':');
            snprintf(host, sizeof host, "%.*s", c ? (int)(c - h) : (int)strlen(h), h);
        }
        snprintf(cfg->http_advertise, sizeof cfg->http_advertise, "%s://%s:%s", scheme, host, port);
    }
    return SOS_OK;
}
