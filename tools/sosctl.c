/*  sosctl.c: the command-line admin tool and chat client of sosnode. It asks a node for its
    status, workers and rooms, and creates, joins and chats in end-to-end encrypted rooms. */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sos_client.h"
#include "sos_conn.h"
#include "sos_e2e.h"
#include "sos_identity.h"
#include "sos_json.h"
#include "sos_mp.h"
#include "sos_record.h"

#define S_DEFAULT_NODE    "tcp://127.0.0.1:7700"
#define S_DEFAULT_TIMEOUT 5000  /* ms */
#define S_FOLLOW_WAIT     25000 /* ms of each long poll with --follow */
#define S_TIMEOUT_MAX     86400000
#define S_WAIT_MAX        600000
#define S_MSGID_BYTES     16
#define S_TEXT_MAX        (48 * 1024) /* bytes of plaintext; its base64 fits a node's content */
#define S_ROOM_PAGES_MAX  100000
#define S_UNDECRYPTABLE   "[cannot decrypt with this PIN]"

//  Exit codes
#define S_EXIT_OK    0
#define S_EXIT_FAIL  1
#define S_EXIT_USAGE 2
//  Internal: the wait was interrupted by SIGINT or SIGTERM
#define S_INTERRUPTED -1

static const char *s_usage_text =
    "NAME\n"
    "    sosctl - administer a sosnode and chat in its end-to-end encrypted rooms\n"
    "\n"
    "SYNOPSIS\n"
    "    sosctl [--node [NODEID@]ENDPOINT] [--json] [--timeout MS] COMMAND [ARGS]\n"
    "\n"
    "    sosctl status\n"
    "    sosctl workers\n"
    "    sosctl rooms\n"
    "    sosctl room create --emojis E [--pin P] [--description TEXT] [--nickname NAME]\n"
    "    sosctl room join HASH [--nickname NAME]\n"
    "    sosctl room send HASH --member ID --emojis E --pin P TEXT...\n"
    "    sosctl room poll HASH --member ID --emojis E --pin P [--since SEQ] [--wait MS]\n"
    "                    [--follow]\n"
    "    sosctl room leave HASH --member ID\n"
    "    sosctl room info HASH\n"
    "    sosctl --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    sosctl talks to one sosnode over its public ZeroMQ endpoint. Any node of the overlay\n"
    "    serves any room: a node forwards room requests to the room's owner.\n"
    "\n"
    "    A room is named by a few emojis and protected by a PIN, which stays on this machine:\n"
    "    the node sees the room hash (the first 16 hex characters of the SHA-256 of the\n"
    "    emojis), the creator's emojis and ciphertext. Messages are sealed with\n"
    "    XSalsa20-Poly1305 under a key that\n"
    "    Argon2id derives from the emojis, the PIN and the room's creation time, as the web app\n"
    "    does, so sosctl and the web app can share a room.\n"
    "\n"
    "OPTIONS\n"
    "    --node [NODEID@]ENDPOINT\n"
    "                       The node to ask (default $SOSCTL_NODE, else " S_DEFAULT_NODE ").\n"
    "                       Every connection is encrypted with CURVE and keyed by the node's\n"
    "                       id: give it as NODEID@ENDPOINT the first time ('sosnode --data\n"
    "                       DIR --print-id' on that host prints it, as does the 'node ID'\n"
    "                       line of its log). sosctl remembers the id of each node that\n"
    "                       answered in its known-nodes file and takes a bare ENDPOINT from\n"
    "                       there; an ENDPOINT it knows given with another id is refused.\n"
    "    --json             Print the node's reply body as one JSON document on stdout.\n"
    "    --timeout MS       Wait at most MS milliseconds for each reply (default 5000).\n"
    "    -h, --help         Print this text and exit.\n"
    "    -V, --version      Print the version and exit.\n"
    "\n"
    "    Options and arguments may come in any order; put -- before a TEXT that begins with a\n"
    "    dash.\n"
    "\n"
    "COMMANDS\n"
    "    status\n"
    "        The node's id, endpoint, version, uptime, gossip counters and drop counters.\n"
    "\n"
    "    workers\n"
    "        The nodes this node knows: id, fail count, last successful exchange, whether\n"
    "        it is a genesis node, version and endpoint.\n"
    "\n"
    "    rooms\n"
    "        The room directory, all pages of it.\n"
    "\n"
    "    room create --emojis E [--pin P] [--description TEXT] [--nickname NAME]\n"
    "        Create the room of emojis E and join it. Prints the room hash and the member\n"
    "        id that send, poll and leave need. The emojis go to the node as a list (one\n"
    "        element per emoji, joiners and modifiers kept with theirs) and show in every\n"
    "        node's directory, as in the web app: the PIN is the secret. The PIN is\n"
    "        not needed to create: the key depends on the creation time, which the node\n"
    "        sets. The description is public: it shows in every node's directory.\n"
    "\n"
    "    room join HASH [--nickname NAME]\n"
    "        Join a room and print a new member id. Without a nickname the node picks one.\n"
    "\n"
    "    room send HASH --member ID --emojis E --pin P TEXT...\n"
    "        Encrypt TEXT (the words joined by spaces; \"-\" reads it from stdin) and send\n"
    "        it. The request carries a random message id, so that a retry after a timeout\n"
    "        never posts the message twice; sosctl retries once.\n"
    "\n"
    "    room poll HASH --member ID --emojis E --pin P [--since SEQ] [--wait MS] [--follow]\n"
    "        Print the messages with a sequence number above SEQ (default 0: all kept),\n"
    "        waiting up to MS milliseconds (default 0) for one to arrive. Messages that do\n"
    "        not decrypt with this PIN show as " S_UNDECRYPTABLE ".\n"
    "        --follow keeps long-polling (25000 ms each, or --wait) and prints messages as\n"
    "        they arrive, until interrupted.\n"
    "\n"
    "    room leave HASH --member ID\n"
    "        Leave a room; the member id stops working.\n"
    "\n"
    "    room info HASH\n"
    "        Creation and expiry times, members, message count and owner of a room.\n"
    "\n"
    "OUTPUT\n"
    "    Without --json, tables and \"key: value\" lines for people; times are UTC, message\n"
    "    times local. With --json, the reply body as the node sent it (times in ms since the\n"
    "    epoch); rooms merges all pages into {\"rooms\": [...]}; poll adds \"text\" beside each\n"
    "    message's \"content\", the decrypted text or null if it does not decrypt; with\n"
    "    --follow, one JSON document per line for each reply.\n"
    "\n"
    "ENVIRONMENT\n"
    "    SOSCTL_NODE    The default node endpoint.\n"
    "    SOSCTL_PIN     The PIN, when --pin is not given (keeps it out of the process list).\n"
    "    SOSCTL_KNOWN_NODES\n"
    "                   The known-nodes file instead of the one under FILES (/dev/null: none).\n"
    "\n"
    "FILES\n"
    "    $XDG_CONFIG_HOME/sosnode/known_nodes (else ~/.config/sosnode/known_nodes)\n"
    "                   One \"ENDPOINT NODEID\" line per node that answered. A node whose id\n"
    "                   changed on purpose (a new data directory) needs its line removed.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 on success, 1 if the node did not reply or replied with an error, 2 on bad\n"
    "    arguments. Errors print one line on stderr: \"sosctl: MESSAGE\", where the message of\n"
    "    an error reply starts with its code (room_not_found, room_exists,\n"
    "    invalid_room_hash, not_member, too_large, rate_limited, owner_unreachable,\n"
    "    bad_request, unavailable).\n"
    "\n"
    "EXAMPLES\n"
    "    $ sosctl room create --emojis '🔥🌊🦊' --nickname ana\n"
    "    $ export SOSCTL_NODE=tcp://10.0.0.1:7700 SOSCTL_PIN=1234\n"
    "    $ sosctl room send 674e222cc26f2570 --member MID --emojis '🔥🌊🦊' hello\n"
    "    $ sosctl room poll 674e222cc26f2570 --member MID --emojis '🔥🌊🦊' --follow\n"
    "    $ sosctl --json rooms\n";

//  Options that commands take, as bits
enum {
    S_OPT_EMOJIS = 1 << 0,
    S_OPT_PIN = 1 << 1,
    S_OPT_DESC = 1 << 2,
    S_OPT_NICK = 1 << 3,
    S_OPT_MEMBER = 1 << 4,
    S_OPT_SINCE = 1 << 5,
    S_OPT_WAIT = 1 << 6,
    S_OPT_FOLLOW = 1 << 7,
};

static const char *s_opt_names[] = {"--emojis", "--pin",   "--description", "--nickname",
                                    "--member", "--since", "--wait",        "--follow"};

typedef struct {
    //  Global options
    const char *node;                 //  as given; after s_resolve_node, the bare endpoint
    char node_id[SOS_NODEID_HEX + 1]; //  the id the node must prove (CURVE), "" with NULL
    bool node_known;                  //  the known-nodes file holds it already
    bool json;
    int timeout_ms;
    //  Command options; seen holds the S_OPT_ bits given
    unsigned seen;
    const char *emojis;
    const char *pin;
    const char *description;
    const char *nickname;
    const char *member;
    uint64_t since;
    uint64_t wait_ms;
    //  Positional arguments after the command words
    char **args;
    int nargs;
    sos_conn_t *conn;
    //  The created_at of the room asked last, so that one run asks info once
    char cached_hash[SOS_E2E_HASH_CHARS + 1];
    uint64_t cached_created_at;
} sosctl_t;

typedef int(s_command_fn)(sosctl_t *self);

static int s_cmd_status(sosctl_t *self);
static int s_cmd_workers(sosctl_t *self);
static int s_cmd_rooms(sosctl_t *self);
static int s_cmd_create(sosctl_t *self);
static int s_cmd_join(sosctl_t *self);
static int s_cmd_send(sosctl_t *self);
static int s_cmd_poll(sosctl_t *self);
static int s_cmd_leave(sosctl_t *self);
static int s_cmd_info(sosctl_t *self);

//  The commands: their words, the options each allows and requires, and how many positional
//  arguments follow (max_args -1: any number, joined into one text)
typedef struct {
    const char *word;
    const char *subword;
    unsigned allowed;
    unsigned required;
    int min_args;
    int max_args;
    const char *args_help;
    s_command_fn *fn;
} s_command_t;

static const s_command_t s_commands[] = {
    {"status", NULL, 0, 0, 0, 0, "", s_cmd_status},
    {"workers", NULL, 0, 0, 0, 0, "", s_cmd_workers},
    {"rooms", NULL, 0, 0, 0, 0, "", s_cmd_rooms},
    {"room", "create", S_OPT_EMOJIS | S_OPT_PIN | S_OPT_DESC | S_OPT_NICK, S_OPT_EMOJIS, 0, 0, "",
     s_cmd_create},
    {"room", "join", S_OPT_NICK, 0, 1, 1, "HASH", s_cmd_join},
    {"room", "send", S_OPT_MEMBER | S_OPT_EMOJIS | S_OPT_PIN,
     S_OPT_MEMBER | S_OPT_EMOJIS | S_OPT_PIN, 2, -1, "HASH TEXT", s_cmd_send},
    {"room", "poll",
     S_OPT_MEMBER | S_OPT_EMOJIS | S_OPT_PIN | S_OPT_SINCE | S_OPT_WAIT | S_OPT_FOLLOW,
     S_OPT_MEMBER | S_OPT_EMOJIS | S_OPT_PIN, 1, 1, "HASH", s_cmd_poll},
    {"room", "leave", S_OPT_MEMBER, S_OPT_MEMBER, 1, 1, "HASH", s_cmd_leave},
    {"room", "info", 0, 0, 1, 1, "HASH", s_cmd_info},
};

#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

/* ------------------------------------------------------------- known nodes ---- */

/*  Why a known-nodes file, and no trust on first use: every connection is CURVE, and a
    CURVE client must know the server's key before its first byte, so a bare endpoint has no
    key to try. The id is given once, as NODEID@ENDPOINT, by whoever runs the node; sosctl
    then keeps it, as ssh keeps host keys, and never replaces it: a known endpoint given
    with another id is refused, so that a changed key is a decision and never an accident. */

//  The file's path into out; false if there is no config directory
static bool
s_known_path(char *out, size_t size, bool make_dir)
{
    const char *file = getenv("SOSCTL_KNOWN_NODES");
    if (file && *file)
        return snprintf(out, size, "%s", file) < (int)size;
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    char dir[PATH_MAX];
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.config", home);
    else
        return false;
    if (make_dir)
        mkdir(dir, 0700);
    size_t n = strlen(dir);
    snprintf(dir + n, sizeof dir - n, "/sosnode");
    if (make_dir)
        mkdir(dir, 0700);
    return snprintf(out, size, "%s/known_nodes", dir) < (int)size;
}

//  The id recorded for endpoint into id (SOS_NODEID_HEX + 1 bytes); false if none
static bool
s_known_lookup(const char *endpoint, char *id)
{
    char path[PATH_MAX];
    if (!s_known_path(path, sizeof path, false))
        return false;
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char ep[300], hex[80];
        if (sscanf(line, "%299s %79s", ep, hex) == 2 && streq(ep, endpoint) &&
            strlen(hex) == SOS_NODEID_HEX) {
            snprintf(id, SOS_NODEID_HEX + 1, "%s", hex);
            found = true;
        }
    }
    fclose(f);
    return found;
}

//  Record endpoint's id after the node answered (it proved it holds the id's key)
static void
s_known_add(const char *endpoint, const char *id)
{
    char path[PATH_MAX];
    if (!s_known_path(path, sizeof path, true))
        return;
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    fprintf(f, "%s %s\n", endpoint, id);
    fclose(f);
}

static int s_usage_error(const char *format, ...);
static int s_fail(const char *format, ...);

//  Split self->node into the endpoint and the id to connect with, from the argument or the
//  known-nodes file; the string for sos_conn_new into target. Returns S_EXIT_OK or the exit
//  code of a refusal (printed).
static int
s_resolve_node(sosctl_t *self, char *target, size_t size)
{
    const char *at = strchr(self->node, '@');
    char known[SOS_NODEID_HEX + 1] = "";
    if (at) {
        uint8_t id[SOS_NODEID_BYTES];
        char hex[SOS_NODEID_HEX + 1] = "";
        if (at - self->node == SOS_NODEID_HEX)
            memcpy(hex, self->node, SOS_NODEID_HEX);
        if (!sos_unhex(id, sizeof id, hex))
            return s_usage_error("--node takes [NODEID@]ENDPOINT, NODEID 64 hex characters");
        sos_hex(self->node_id, id, sizeof id);
        self->node = at + 1;
        if (s_known_lookup(self->node, known)) {
            if (!streq(known, self->node_id)) {
                char path[PATH_MAX] = "the known-nodes file";
                s_known_path(path, sizeof path, false);
                return s_fail("%s is known as node %s, not %s: refusing a changed id (a "
                              "different node, or a man in the middle). If the node there was "
                              "given a new identity on purpose, remove its line from %s",
                              self->node, known, self->node_id, path);
            }
            self->node_known = true;
        }
    } else if (s_known_lookup(self->node, known)) {
        snprintf(self->node_id, sizeof self->node_id, "%s", known);
        self->node_known = true;
    } else {
        const char *allow = getenv("SOS_ALLOW_NULL_TRANSPORT");
        if (!allow || !streq(allow, "1"))
            return s_fail("the node id of %s is not known: give --node NODEID@%s (every "
                          "connection is CURVE, keyed by the node id; 'sosnode --data DIR "
                          "--print-id' on that host prints it, as does the 'node ID' line of "
                          "its log)",
                          self->node, self->node);
    }
    if (*self->node_id)
        snprintf(target, size, "%s@%s", self->node_id, self->node);
    else
        snprintf(target, size, "%s", self->node); /* the test-only NULL transport */
    return S_EXIT_OK;
}

/* ------------------------------------------------------------------ output ---- */

//  One line on stderr; returns S_EXIT_FAIL
static int
s_fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("sosctl: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    return S_EXIT_FAIL;
}

static int
s_usage_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("sosctl: ", stderr);
    vfprintf(stderr, format, args);
    fputs(" (see sosctl --help)\n", stderr);
    va_end(args);
    return S_EXIT_USAGE;
}

//  Print text that came from the network on a terminal: control characters (C0, DEL, C1)
//  become '?', so that a node or a room member cannot send escape sequences to it. A newline
//  becomes indent if given, else a space. text is valid UTF-8 (it went through jansson).
static void
s_put_safe(const char *text, const char *indent)
{
    const unsigned char *s = (const unsigned char *)text;
    for (; *s; s++) {
        if (*s == '\n')
            fputs(indent ? indent : " ", stdout);
        else if (*s == '\t')
            putchar(' ');
        else if (*s < 0x20 || *s == 0x7f)
            putchar('?');
        else if (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
            putchar('?');
            s++;
        } else
            putchar(*s);
    }
}

//  Safe text of a JSON string member, "" if absent or not a string
static const char *
s_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static uint64_t
s_uint(const json_t *obj, const char *key)
{
    json_int_t value = json_integer_value(json_object_get(obj, key));
    return value > 0 ? (uint64_t)value : 0;
}

//  "2024-01-31T12:00:00Z" of ms since the epoch, into buf
static const char *
s_fmt_utc(char *buf, size_t size, uint64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "%" PRIu64, ms);
    return buf;
}

//  "1h 02m", "5m 07s", "12s" of a duration in ms, into buf
static const char *
s_fmt_duration(char *buf, size_t size, uint64_t ms)
{
    uint64_t secs = ms / 1000;
    if (secs >= 86400)
        snprintf(buf, size, "%" PRIu64 "d %02" PRIu64 "h", secs / 86400, secs % 86400 / 3600);
    else if (secs >= 3600)
        snprintf(buf, size, "%" PRIu64 "h %02" PRIu64 "m", secs / 3600, secs % 3600 / 60);
    else if (secs >= 60)
        snprintf(buf, size, "%" PRIu64 "m %02" PRIu64 "s", secs / 60, secs % 60);
    else
        snprintf(buf, size, "%" PRIu64 "s", secs);
    return buf;
}

//  "5m 07s ago", "in 59m 12s" or "never" (ms == 0) relative to now
static const char *
s_fmt_relative(char *buf, size_t size, uint64_t ms)
{
    uint64_t now = zclock_time();
    char span[32];
    if (ms == 0)
        snprintf(buf, size, "never");
    else if (ms <= now)
        snprintf(buf, size, "%s ago", s_fmt_duration(span, sizeof span, now - ms));
    else
        snprintf(buf, size, "in %s", s_fmt_duration(span, sizeof span, ms - now));
    return buf;
}

//  Keys whose integer values are times in ms since the epoch
static bool
s_is_time_key(const char *key)
{
    size_t len = strlen(key);
    return (len > 3 && streq(key + len - 3, "_at")) || streq(key, "last_seen") ||
           streq(key, "last_ok") || streq(key, "timestamp");
}

//  A scalar or an array of scalars for people; other values as compact JSON
static void
s_put_value(const char *key, const json_t *value)
{
    if (json_is_string(value))
        s_put_safe(json_string_value(value), NULL);
    else if (json_is_integer(value) && s_is_time_key(key) && json_integer_value(value) > 0) {
        char utc[32], rel[48];
        uint64_t ms = (uint64_t)json_integer_value(value);
        printf("%s (%s)", s_fmt_utc(utc, sizeof utc, ms), s_fmt_relative(rel, sizeof rel, ms));
    } else if (json_is_array(value)) {
        size_t i;
        const json_t *item;
        json_array_foreach(value, i, item)
        {
            if (i)
                fputs(", ", stdout);
            if (json_is_string(item))
                s_put_safe(json_string_value(item), NULL);
            else {
                char *text = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
                s_put_safe(text ? text : "?", NULL);
                free(text);
            }
        }
    } else {
        char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        s_put_safe(text ? text : "?", NULL);
        free(text);
    }
}

//  Every member of obj as "key: value" lines, nested objects as "outer.inner: value"
static void
s_print_kv(const json_t *obj, const char *prefix)
{
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        if (json_is_object(value) && json_object_size(value) > 0) {
            char *nested = zsys_sprintf("%s%s.", prefix, key);
            if (nested)
                s_print_kv(value, nested);
            zstr_free(&nested);
            continue;
        }
        fputs(prefix, stdout);
        s_put_safe(key, NULL);
        fputs(": ", stdout);
        s_put_value(key, value);
        putchar('\n');
    }
}

static void
s_print_json(const json_t *json, bool one_line)
{
    json_dumpf(json, stdout, one_line ? JSON_COMPACT : JSON_INDENT(2));
    putchar('\n');
    fflush(stdout);
}

/* ------------------------------------------------------------- requests ---- */

//  Why a request failed, for callers that retry some failures and report the others
typedef struct {
    sos_rc rc;            //  SOS_ERR_TIMEOUT, SOS_ERR_IO, ... or SOS_OK for an error reply
    int timeout_ms;       //  of the wait that timed out
    char status[64];      //  error code of an error reply, "" otherwise
    char message[512];    //  its message, control characters replaced
    uint64_t retry_after; //  its retry_after, 0 if none
} s_error_t;

static void
s_copy_printable(char *dest, size_t size, const char *text)
{
    //  Through jansson first, so that invalid UTF-8 does not reach the terminal either
    json_t *json = sos_json_string_lossy(text, strlen(text));
    snprintf(dest, size, "%s", json ? json_string_value(json) : "?");
    json_decref(json);
    for (unsigned char *s = (unsigned char *)dest; *s; s++)
        if (*s < 0x20 || *s == 0x7f)
            *s = '?';
}

//  Send the request begun on the connection and wait at most timeout_ms for its reply. On
//  S_EXIT_OK *json_p is the reply body as JSON, which the caller releases. Otherwise err
//  says what failed and nothing is printed: see s_report. Returns S_INTERRUPTED if SIGINT
//  or SIGTERM ended the wait.
static int
s_call_ex(sosctl_t *self, int timeout_ms, json_t **json_p, s_error_t *err)
{
    *json_p = NULL;
    memset(err, 0, sizeof *err);
    err->timeout_ms = timeout_ms;
    sos_conn_reply_t *reply = NULL;
    err->rc = sos_conn_call(self->conn, timeout_ms, &reply);
    if (err->rc == SOS_ERR_IO && zsys_interrupted)
        return S_INTERRUPTED;
    if (err->rc != SOS_OK)
        return S_EXIT_FAIL;
    if (*self->node_id && !self->node_known) {
        //  A reply came through CURVE: the node holds the id's key
        s_known_add(self->node, self->node_id);
        self->node_known = true;
    }

    int code = S_EXIT_OK;
    if (!sos_conn_reply_ok(reply)) {
        s_copy_printable(err->status, sizeof err->status, sos_conn_reply_status(reply));
        s_copy_printable(err->message, sizeof err->message, sos_conn_reply_message(reply));
        err->retry_after = sos_conn_reply_retry_after(reply);
        code = S_EXIT_FAIL;
    } else {
        *json_p = sos_json_from_mp(sos_conn_reply_body(reply));
        if (!*json_p) {
            err->rc = SOS_ERR_MALFORMED;
            code = S_EXIT_FAIL;
        }
    }
    sos_conn_reply_destroy(&reply);
    return code;
}

//  Print the one error line of a failed call; returns the exit code
static int
s_report(sosctl_t *self, int code, const s_error_t *err)
{
    if (code == S_INTERRUPTED)
        return s_fail("interrupted");
    if (err->rc == SOS_ERR_TIMEOUT && *self->node_id)
        return s_fail("no reply from %s within %d ms (the node is down, or the node there "
                      "does not hold id %.16s...)",
                      self->node, err->timeout_ms, self->node_id);
    if (err->rc == SOS_ERR_TIMEOUT)
        return s_fail("no reply from %s within %d ms", self->node, err->timeout_ms);
    if (err->rc == SOS_ERR_MALFORMED)
        return s_fail("cannot convert the reply of %s", self->node);
    if (err->rc != SOS_OK)
        return s_fail("cannot send to %s: %s", self->node, sos_strerror(err->rc));
    fflush(stdout);
    fprintf(stderr, "sosctl: %s", err->status);
    if (*err->message)
        fprintf(stderr, ": %s", err->message);
    if (err->retry_after)
        fprintf(stderr, " (retry after %" PRIu64 " s)", err->retry_after);
    fputc('\n', stderr);
    return S_EXIT_FAIL;
}

//  s_call_ex with the reply timeout, reporting any failure
static int
s_call(sosctl_t *self, json_t **json_p)
{
    s_error_t err;
    int code = s_call_ex(self, self->timeout_ms, json_p, &err);
    return code ? s_report(self, code, &err) : S_EXIT_OK;
}

//  True if text is valid UTF-8
static bool
s_utf8_valid(const char *text)
{
    json_t *json = json_string(text);
    json_decref(json);
    return json != NULL;
}

//  The room's created_at, asked with info once per run
static int
s_created_at(sosctl_t *self, const char *room_hash, uint64_t *created_at)
{
    if (streq(self->cached_hash, room_hash)) {
        *created_at = self->cached_created_at;
        return S_EXIT_OK;
    }
    msgpack_packer *pk = sos_conn_begin(self->conn, "info");
    msgpack_pack_map(pk, 1);
    sos_mp_pack_kv_str(pk, "room_hash", room_hash);
    json_t *body;
    int code = s_call(self, &body);
    if (code)
        return code;
    json_t *value = json_object_get(body, "created_at");
    if (!json_is_integer(value) || json_integer_value(value) <= 0) {
        json_decref(body);
        return s_fail("the info reply of %s has no created_at", self->node);
    }
    *created_at = (uint64_t)json_integer_value(value);
    json_decref(body);
    snprintf(self->cached_hash, sizeof self->cached_hash, "%s", room_hash);
    self->cached_created_at = *created_at;
    return S_EXIT_OK;
}

//  Derive the room key of the given emojis and PIN
static int
s_room_key(sosctl_t *self, const char *room_hash, uint8_t key[SOS_E2E_KEY_BYTES])
{
    char expected[SOS_E2E_HASH_CHARS + 1];
    sos_e2e_room_hash(expected, self->emojis);
    if (!streq(expected, room_hash)) {
        fputs("sosctl: the emojis do not match room ", stderr);
        fputs(room_hash, stderr);
        fputs(" (their hash is ", stderr);
        fputs(expected, stderr);
        fputs(")\n", stderr);
        return S_EXIT_FAIL;
    }
    uint64_t created_at = 0;
    int code = s_created_at(self, room_hash, &created_at);
    if (code)
        return code;
    sos_rc rc = sos_e2e_derive_key(key, self->emojis, self->pin, created_at);
    if (rc != SOS_OK)
        return s_fail("cannot derive the room key: %s", sos_strerror(rc));
    return S_EXIT_OK;
}

/* ------------------------------------------------------------- commands ---- */

static int
s_cmd_status(sosctl_t *self)
{
    msgpack_pack_map(sos_conn_begin(self->conn, "status"), 0);
    json_t *body;
    int code = s_call(self, &body);
    if (code)
        return code;
    if (self->json)
        s_print_json(body, false);
    else
        s_print_kv(body, "");
    json_decref(body);
    return S_EXIT_OK;
}

static int
s_cmd_workers(sosctl_t *self)
{
    msgpack_pack_map(sos_conn_begin(self->conn, "workers"), 0);
    json_t *body;
    int code = s_call(self, &body);
    if (code)
        return code;
    if (self->json) {
        s_print_json(body, false);
        json_decref(body);
        return S_EXIT_OK;
    }
    printf("%-12s  %5s  %-12s  %-7s  %-8s  %s\n", "NODE", "FAILS", "LAST_OK", "GENESIS", "VERSION",
           "URL");
    size_t i;
    json_t *worker;
    json_array_foreach(json_object_get(body, "workers"), i, worker)
    {
        char node_id[13], last_ok[48];
        snprintf(node_id, sizeof node_id, "%s", s_str(worker, "node_id"));
        s_fmt_relative(last_ok, sizeof last_ok, s_uint(worker, "last_ok"));
        //  ages only: "5m 07s ago" fits the column without the " ago"
        char *ago = strstr(last_ok, " ago");
        if (ago)
            *ago = 0;
        s_put_safe(node_id, NULL);
        printf("%*s  %5" PRIu64 "  %-12s  %-7s  ", (int)(12 - strlen(node_id)), "",
               s_uint(worker, "fail_count"), last_ok,
               json_is_true(json_object_get(worker, "is_genesis")) ? "yes" : "no");
        //  the worker record's version: it grows at every restart of that node
        printf("%8" PRIu64 "  ", s_uint(worker, "version"));
        s_put_safe(s_str(worker, "url"), NULL);
        putchar('\n');
    }
    json_decref(body);
    return S_EXIT_OK;
}

static int
s_cmd_rooms(sosctl_t *self)
{
    //  Follow the "next" cursor until the last page, and print all rooms as one list
    json_t *rooms = json_array();
    if (!rooms)
        return s_fail("out of memory");
    char after[SOS_E2E_HASH_CHARS + 1] = "";
    int code = S_EXIT_OK;
    for (int page = 0;; page++) {
        if (page == S_ROOM_PAGES_MAX) {
            code = s_fail("more than %d pages of rooms from %s", S_ROOM_PAGES_MAX, self->node);
            goto done;
        }
        msgpack_packer *pk = sos_conn_begin(self->conn, "rooms");
        msgpack_pack_map(pk, *after ? 1 : 0);
        if (*after)
            sos_mp_pack_kv_str(pk, "after", after);
        json_t *body;
        code = s_call(self, &body);
        if (code)
            goto done;
        json_t *page_rooms = json_object_get(body, "rooms");
        if (json_is_array(page_rooms))
            json_array_extend(rooms, page_rooms);
        const char *next = json_string_value(json_object_get(body, "next"));
        //  A cursor that does not move forward would loop for ever
        bool more = next && sos_e2e_room_hash_valid(next) && strcmp(next, after) > 0;
        if (more)
            snprintf(after, sizeof after, "%s", next);
        else if (next) {
            json_decref(body);
            code = s_fail("%s sent a bad rooms cursor", self->node);
            goto done;
        }
        json_decref(body);
        if (!more)
            break;
    }
    if (self->json) {
        json_t *doc = json_pack("{s:O}", "rooms", rooms);
        if (!doc) {
            code = s_fail("out of memory");
            goto done;
        }
        s_print_json(doc, false);
        json_decref(doc);
        goto done;
    }
    printf("%-16s  %-10s  %-12s  %s\n", "ROOM", "EXPIRES", "OWNER", "DESCRIPTION");
    size_t i;
    json_t *room;
    json_array_foreach(rooms, i, room)
    {
        char hash[SOS_E2E_HASH_CHARS + 1], owner[13], expires[48];
        snprintf(hash, sizeof hash, "%s", s_str(room, "room_hash"));
        snprintf(owner, sizeof owner, "%s", s_str(room, "owner"));
        s_fmt_relative(expires, sizeof expires, s_uint(room, "expires_at"));
        if (!strncmp(expires, "in ", 3))
            memmove(expires, expires + 3, strlen(expires + 3) + 1);
        else if (strcmp(expires, "never"))
            snprintf(expires, sizeof expires, "expired");
        s_put_safe(hash, NULL);
        printf("%*s  %-10s  ", (int)(16 - strlen(hash)), "", expires);
        s_put_safe(owner, NULL);
        printf("%*s  ", (int)(12 - strlen(owner)), "");
        if (*s_str(room, "emojis")) {
            s_put_safe(s_str(room, "emojis"), NULL);
            fputs("  ", stdout);
        }
        s_put_safe(s_str(room, "description"), NULL);
        if (json_is_true(json_object_get(room, "contested")))
            fputs("  [contested]", stdout);
        putchar('\n');
    }
done:
    json_decref(rooms);
    return code;
}

//  Length of the emoji at the start of s: one code point and the code points that join it
//  (ZWJ U+200D and what follows it, variation selectors U+FE00-FE0F, skin tones
//  U+1F3FB-1F3FF, tags U+E0020-E007F); 0 at the end or on bytes that are not UTF-8
static size_t
s_emoji_len(const char *s)
{
    size_t at = 0;
    bool joined = true; //  the first code point always starts the emoji
    while (s[at]) {
        const unsigned char *p = (const unsigned char *)s + at;
        int len = *p < 0x80         ? 1
                  : (*p >> 5) == 6  ? 2
                  : (*p >> 4) == 14 ? 3
                  : (*p >> 3) == 30 ? 4
                                    : 0;
        if (!len)
            return 0;
        uint32_t cp = len == 1 ? *p : *p & (0x7f >> len);
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        bool combining = cp == 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f) ||
                         (cp >= 0x1f3fb && cp <= 0x1f3ff) || (cp >= 0xe0020 && cp <= 0xe007f);
        if (!combining && !joined)
            break;
        joined = cp == 0x200d;
        at += (size_t)len;
    }
    return at;
}

static int
s_cmd_create(sosctl_t *self)
{
    char room_hash[SOS_E2E_HASH_CHARS + 1];
    sos_e2e_room_hash(room_hash, self->emojis);
    //  The list of emojis, as the node wants it (at most 6, each at most 32 bytes; the node
    //  checks again); the room hash stays the hash of the text as typed
    size_t at[7], len[7], n = 0;
    for (size_t pos = 0; self->emojis[pos];) {
        size_t l = s_emoji_len(self->emojis + pos);
        if (!l || n == 6 || l > 32)
            return s_usage_error("--emojis must be 1 to 6 emojis of UTF-8");
        at[n] = pos;
        len[n++] = l;
        pos += l;
    }
    msgpack_packer *pk = sos_conn_begin(self->conn, "create");
    msgpack_pack_map(pk, 2 + (self->description ? 1 : 0) + (self->nickname ? 1 : 0));
    sos_mp_pack_kv_str(pk, "room_hash", room_hash);
    sos_mp_pack_str(pk, "emojis");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        sos_mp_pack_strn(pk, self->emojis + at[i], len[i]);
    if (self->description)
        sos_mp_pack_kv_str(pk, "description", self->description);
    if (self->nickname)
        sos_mp_pack_kv_str(pk, "nickname", self->nickname);
    json_t *body;
    int code = s_call(self, &body);
    if (code)
        return code;
    if (self->json)
        s_print_json(body, false);
    else
        s_print_kv(body, "");
    json_decref(body);
    return S_EXIT_OK;
}

static int
s_cmd_join(sosctl_t *self)
{
    msgpack_packer *pk = sos_conn_begin(self->conn, "join");
    msgpack_pack_map(pk, 1 + (self->nickname ? 1 : 0));
    sos_mp_pack_kv_str(pk, "room_hash", self->args[0]);
    if (self->nickname)
        sos_mp_pack_kv_str(pk, "nickname", self->nickname);
    json_t *body;
    int code = s_call(self, &body);
    if (code)
        return code;
    if (self->json)
        s_print_json(body, false);
    else
        s_print_kv(body, "");
    json_decref(body);
    return S_EXIT_OK;
}

//  The text to send: the words after HASH joined by spaces, or stdin for "-". A new string.
static char *
s_send_text(sosctl_t *self, int *code)
{
    *code = S_EXIT_OK;
    if (self->nargs == 2 && streq(self->args[1], "-")) {
        char *text = (char *)malloc(S_TEXT_MAX + 2);
        if (!text) {
            *code = s_fail("out of memory");
            return NULL;
        }
        size_t len = fread(text, 1, S_TEXT_MAX + 1, stdin);
        if (ferror(stdin)) {
            free(text);
            *code = s_fail("cannot read the text from stdin");
            return NULL;
        }
        text[len] = 0;
        //  As echo | sosctl ... -: the line's end is not part of the message
        if (len && text[len - 1] == '\n')
            text[--len] = 0;
        if (len && text[len - 1] == '\r')
            text[--len] = 0;
        return text;
    }
    size_t len = 0;
    for (int i = 1; i < self->nargs; i++)
        len += strlen(self->args[i]) + 1;
    char *text = (char *)malloc(len + 1);
    if (!text) {
        *code = s_fail("out of memory");
        return NULL;
    }
    text[0] = 0;
    for (int i = 1; i < self->nargs; i++) {
        if (i > 1)
            strcat(text, " ");
        strcat(text, self->args[i]);
    }
    return text;
}

static int
s_cmd_send(sosctl_t *self)
{
    const char *room_hash = self->args[0];
    uint8_t key[SOS_E2E_KEY_BYTES];
    char *content = NULL;
    json_t *body = NULL;
    int code;
    char *text = s_send_text(self, &code);
    if (!text)
        return code;
    size_t text_len = strlen(text);
    if (text_len == 0) {
        free(text);
        return s_usage_error("the message is empty");
    }
    if (text_len > S_TEXT_MAX) {
        free(text);
        return s_usage_error("the message is longer than %d bytes", S_TEXT_MAX);
    }
    if (!s_utf8_valid(text)) {
        free(text);
        return s_usage_error("the message is not valid UTF-8");
    }
    code = s_room_key(self, room_hash, key);
    if (code)
        goto done;
    sos_rc rc = sos_e2e_seal(&content, key, text, text_len);
    if (rc != SOS_OK) {
        code = s_fail("cannot encrypt: %s", sos_strerror(rc));
        goto done;
    }
    uint8_t msg_id_bin[S_MSGID_BYTES];
    char msg_id[2 * S_MSGID_BYTES + 1];
    randombytes_buf(msg_id_bin, sizeof msg_id_bin);
    sos_hex(msg_id, msg_id_bin, sizeof msg_id_bin);

    msgpack_packer *pk = sos_conn_begin(self->conn, "send");
    msgpack_pack_map(pk, 4);
    sos_mp_pack_kv_str(pk, "room_hash", room_hash);
    sos_mp_pack_kv_str(pk, "member_id", self->member);
    sos_mp_pack_kv_str(pk, "content", content);
    sos_mp_pack_kv_str(pk, "msg_id", msg_id);
    //  The same frame again after a timeout: the node stores a msg_id once, and a late
    //  reply to the first send also answers the second (same req_id)
    s_error_t err;
    code = s_call_ex(self, self->timeout_ms, &body, &err);
    if (code == S_EXIT_FAIL && err.rc == SOS_ERR_TIMEOUT)
        code = s_call_ex(self, self->timeout_ms, &body, &err);
    if (code) {
        code = s_report(self, code, &err);
        goto done;
    }
    if (self->json)
        s_print_json(body, false);
    else
        s_print_kv(body, "");
done:
    sodium_memzero(key, sizeof key);
    json_decref(body);
    free(content);
    free(text);
    return code;
}

//  Decrypt each message of a poll reply: for JSON, add "text" (null if it does not decrypt);
//  for people, print one line each. Returns the highest seq seen (or since).
static uint64_t
s_poll_show(sosctl_t *self, json_t *body, const uint8_t key[SOS_E2E_KEY_BYTES], uint64_t since)
{
    size_t i;
    json_t *msg;
    json_array_foreach(json_object_get(body, "messages"), i, msg)
    {
        uint64_t seq = s_uint(msg, "seq");
        if (seq > since)
            since = seq;
        char *text = NULL;
        size_t text_len = 0;
        const char *content = json_string_value(json_object_get(msg, "content"));
        if (!content || sos_e2e_open(&text, &text_len, key, content) != SOS_OK)
            text = NULL;
        json_t *text_json = text ? sos_json_string_lossy(text, text_len) : json_null();
        if (self->json)
            json_object_set(msg, "text", text_json);
        else {
            time_t secs = (time_t)(s_uint(msg, "timestamp") / 1000);
            struct tm tm;
            char when[16] = "??:??:??";
            if (localtime_r(&secs, &tm))
                strftime(when, sizeof when, "%H:%M:%S", &tm);
            printf("[%s] #%" PRIu64 " ", when, seq);
            s_put_safe(s_str(msg, "sender"), NULL);
            fputs(": ", stdout);
            s_put_safe(text_json && json_is_string(text_json) ? json_string_value(text_json)
                                                              : S_UNDECRYPTABLE,
                       "\n    ");
            putchar('\n');
        }
        json_decref(text_json);
        if (text)
            sodium_memzero(text, text_len);
        free(text);
    }
    if (self->json)
        s_print_json(body, self->seen & S_OPT_FOLLOW);
    fflush(stdout);
    return since;
}

//  Sleep up to ms, waking early on SIGINT / SIGTERM
static void
s_sleep(uint64_t ms)
{
    int64_t until = zclock_mono() + (int64_t)ms;
    while (!zsys_interrupted && zclock_mono() < until)
        zclock_sleep(50);
}

static int
s_cmd_poll(sosctl_t *self)
{
    const char *room_hash = self->args[0];
    bool follow = self->seen & S_OPT_FOLLOW;
    uint64_t since = self->since;
    uint64_t wait_ms = (self->seen & S_OPT_WAIT) ? self->wait_ms : follow ? S_FOLLOW_WAIT : 0;
    uint8_t key[SOS_E2E_KEY_BYTES];
    int code = s_room_key(self, room_hash, key);
    if (code)
        goto done;

    //  With --follow, only the first poll's failure ends the run: later, a silent or busy
    //  node is waited for (as tail -f waits for a file), while an error such as a gone room
    //  or member ends it
    for (bool first = true;; first = false) {
        msgpack_packer *pk = sos_conn_begin(self->conn, "poll");
        msgpack_pack_map(pk, 4);
        sos_mp_pack_kv_str(pk, "room_hash", room_hash);
        sos_mp_pack_kv_str(pk, "member_id", self->member);
        sos_mp_pack_kv_uint(pk, "since", since);
        sos_mp_pack_kv_uint(pk, "wait_ms", wait_ms);
        json_t *body;
        s_error_t err;
        code = s_call_ex(self, (int)wait_ms + self->timeout_ms, &body, &err);
        if (code == S_INTERRUPTED && follow) {
            code = S_EXIT_OK;
            break;
        }
        if (code == S_EXIT_FAIL && follow && !first &&
            (err.rc == SOS_ERR_TIMEOUT || streq(err.status, SOS_E_RATE_LIMITED) ||
             streq(err.status, SOS_E_UNAVAILABLE) || streq(err.status, SOS_E_OWNER_UNREACHABLE))) {
            //  A node's retry_after is trusted up to a minute
            uint64_t pause_s = err.retry_after ? err.retry_after : 1;
            s_sleep(pause_s > 60 ? 60000 : pause_s * 1000);
            if (zsys_interrupted) {
                code = S_EXIT_OK;
                break;
            }
            continue;
        }
        if (code) {
            code = s_report(self, code, &err);
            break;
        }
        since = s_poll_show(self, body, key, since);
        json_decref(body);
        if (!follow || zsys_interrupted)
            break;
    }
done:
    sodium_memzero(key, sizeof key);
    return code == S_INTERRUPTED ? s_fail("interrupted") : code;
}

static int
s_cmd_leave(sosctl_t *self)
{
    msgpack_packer *pk = sos_conn_begin(self->conn, "leave");
    msgpack_pack_map(pk, 2);
    sos_mp_pack_kv_str(pk, "room_hash", self->args[0]);
    sos_mp_pack_kv_str(pk, "member_id", self->member);
    json_t *body;
    int code = s_call(self, &body);
    if (code)
        return code;
    if (self->json)
        s_print_json(body, false);
    else
        printf("left room %s\n", self->args[0]);
    json_decref(body);
    return S_EXIT_OK;
}

static int
s_cmd_info(sosctl_t *self)
{
    msgpack_packer *pk = sos_conn_begin(self->conn, "info");
    msgpack_pack_map(pk, 1);
    sos_mp_pack_kv_str(pk, "room_hash", self->args[0]);
    json_t *body;
    int code = s_call(self, &body);
    if (code)
        return code;
    if (self->json)
        s_print_json(body, false);
    else
        s_print_kv(body, "");
    json_decref(body);
    return S_EXIT_OK;
}

/* ------------------------------------------------------------ arguments ---- */

static bool
s_parse_uint(const char *text, uint64_t max, uint64_t *out)
{
    if (!text || *text < '0' || *text > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || *end || value > max)
        return false;
    *out = value;
    return true;
}

//  Lower-case a room hash argument in place and check it
static bool
s_room_hash_arg(char *hash)
{
    for (char *s = hash; *s; s++)
        if (*s >= 'A' && *s <= 'F')
            *s = (char)(*s - 'A' + 'a');
    return sos_e2e_room_hash_valid(hash);
}

static int
s_parse(sosctl_t *self, int argc, char **argv, const s_command_t **command)
{
    enum {
        O_NODE = 256,
        O_JSON,
        O_TIMEOUT,
        O_EMOJIS,
        O_PIN,
        O_DESC,
        O_NICK,
        O_MEMBER,
        O_SINCE,
        O_WAIT
    };
    static const struct option options[] = {
        {"node", required_argument, NULL, O_NODE},
        {"json", no_argument, NULL, O_JSON},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"emojis", required_argument, NULL, O_EMOJIS},
        {"pin", required_argument, NULL, O_PIN},
        {"description", required_argument, NULL, O_DESC},
        {"nickname", required_argument, NULL, O_NICK},
        {"member", required_argument, NULL, O_MEMBER},
        {"since", required_argument, NULL, O_SINCE},
        {"wait", required_argument, NULL, O_WAIT},
        {"follow", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    uint64_t number;
    while (true) {
        int opt = getopt_long(argc, argv, ":fhV", options, NULL);
        if (opt == -1)
            break;
        switch (opt) {
        case 'h':
            fputs(s_usage_text, stdout);
            return -1;
        case 'V':
            printf("sosctl %s\n", SOS_VERSION);
            return -1;
        case O_NODE:
            self->node = optarg;
            break;
        case O_JSON:
            self->json = true;
            break;
        case O_TIMEOUT:
            if (!s_parse_uint(optarg, S_TIMEOUT_MAX, &number) || number == 0)
                return s_usage_error("--timeout takes milliseconds from 1 to %d", S_TIMEOUT_MAX);
            self->timeout_ms = (int)number;
            break;
        case O_EMOJIS:
            self->emojis = optarg;
            self->seen |= S_OPT_EMOJIS;
            break;
        case O_PIN:
            self->pin = optarg;
            self->seen |= S_OPT_PIN;
            break;
        case O_DESC:
            self->description = optarg;
            self->seen |= S_OPT_DESC;
            break;
        case O_NICK:
            self->nickname = optarg;
            self->seen |= S_OPT_NICK;
            break;
        case O_MEMBER:
            self->member = optarg;
            self->seen |= S_OPT_MEMBER;
            break;
        case O_SINCE:
            if (!s_parse_uint(optarg, UINT64_MAX, &self->since))
                return s_usage_error("--since takes a sequence number");
            self->seen |= S_OPT_SINCE;
            break;
        case O_WAIT:
            if (!s_parse_uint(optarg, S_WAIT_MAX, &self->wait_ms))
                return s_usage_error("--wait takes milliseconds from 0 to %d", S_WAIT_MAX);
            self->seen |= S_OPT_WAIT;
            break;
        case 'f':
            self->seen |= S_OPT_FOLLOW;
            break;
        case ':':
            return s_usage_error("option %s needs a value", argv[optind - 1]);
        default:
            if (optopt)
                return s_usage_error("unknown option -%c", optopt);
            return s_usage_error("unknown option %s", argv[optind - 1]);
        }
    }

    //  The command words, then its positional arguments
    char **words = argv + optind;
    int nwords = argc - optind;
    if (nwords == 0)
        return s_usage_error("no command given");
    const s_command_t *found = NULL;
    bool word_known = false;
    for (size_t i = 0; i < S_NCOMMANDS && !found; i++) {
        const s_command_t *c = &s_commands[i];
        if (!streq(c->word, words[0]))
            continue;
        word_known = true;
        if (!c->subword)
            found = c;
        else if (nwords > 1 && streq(c->subword, words[1]))
            found = c;
    }
    if (!found && word_known && nwords == 1)
        return s_usage_error("'%s' needs a command: create, join, send, poll, leave or info",
                             words[0]);
    if (!found && word_known)
        return s_usage_error("unknown command '%s %s'", words[0], words[1]);
    if (!found)
        return s_usage_error("unknown command '%s'", words[0]);
    int skip = found->subword ? 2 : 1;
    self->args = words + skip;
    self->nargs = nwords - skip;

    const char *name = found->subword ? found->subword : found->word;
    if (!self->pin && (found->allowed & S_OPT_PIN) && getenv("SOSCTL_PIN")) {
        self->pin = getenv("SOSCTL_PIN");
        self->seen |= S_OPT_PIN;
    }
    for (size_t bit = 0; bit < sizeof s_opt_names / sizeof s_opt_names[0]; bit++) {
        if ((self->seen & (1u << bit)) && !(found->allowed & (1u << bit)))
            return s_usage_error("%s does not take %s", name, s_opt_names[bit]);
        if (!(self->seen & (1u << bit)) && (found->required & (1u << bit)))
            return s_usage_error("%s needs %s%s", name, s_opt_names[bit],
                                 (1u << bit) == S_OPT_PIN ? " (or SOSCTL_PIN)" : "");
    }
    if (self->nargs < found->min_args || (found->max_args >= 0 && self->nargs > found->max_args))
        return s_usage_error("usage: sosctl %s%s%s %s", found->word, found->subword ? " " : "",
                             found->subword ? found->subword : "", found->args_help);
    if (found->min_args > 0 && !s_room_hash_arg(self->args[0]))
        return s_usage_error("'%s' is not a room hash (16 hex characters)", self->args[0]);
    if (self->emojis) {
        if (!*self->emojis || strlen(self->emojis) > SOS_EMOJIS_MAX || !s_utf8_valid(self->emojis))
            return s_usage_error("--emojis takes 1 to %d bytes of UTF-8", SOS_EMOJIS_MAX);
    }
    if (self->member && !*self->member)
        return s_usage_error("--member is empty");
    *command = found;
    return S_EXIT_OK;
}

int
main(int argc, char **argv)
{
    sosctl_t self = {0};
    self.timeout_ms = S_DEFAULT_TIMEOUT;
    self.node = getenv("SOSCTL_NODE");
    if (!self.node || !*self.node)
        self.node = S_DEFAULT_NODE;

    const s_command_t *command = NULL;
    int code = s_parse(&self, argc, argv, &command);
    if (code == -1)
        return fflush(stdout) ? S_EXIT_FAIL : S_EXIT_OK;
    if (code)
        return code;
    if (sodium_init() < 0)
        return s_fail("cannot initialise libsodium");

    //  czmq's handler sets zsys_interrupted on SIGINT and SIGTERM; waits return early then
    zsys_init();
    char target[SOS_NODEID_HEX + 300];
    code = s_resolve_node(&self, target, sizeof target);
    if (code)
        return code;
    self.conn = sos_conn_new(target);
    if (!self.conn)
        return s_usage_error("cannot connect to '%s': not a ZeroMQ endpoint", self.node);
    code = command->fn(&self);
    if (code == S_INTERRUPTED)
        code = s_fail("interrupted");
    sos_conn_destroy(&self.conn);
    if (fflush(stdout) || ferror(stdout))
        return s_fail("cannot write the output");
    return code;
}
