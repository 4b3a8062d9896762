/*  sos_http.c: the seed's HTTP API on every node, with the web page and /metrics, served by
    libmicrohttpd in external-poll mode on the node's own zloop.

    Why requests go through the node's ROUTER. A room operation over HTTP must behave
    exactly as the same operation over ZeroMQ: forwarded to the room's owner when another
    node owns it, answered only after the pass that made it has committed to disk, counted
    and rate-limited the same way. So the front end does not touch the store: it holds an
    inproc DEALER connected to the node's ROUTER and sends ordinary [2, req_id, op, args,
    flags] requests, with the client's address in the `client` argument. The node trusts
    `client` only from this DEALER (its routing id is a random secret of the process).

    One thread. libmicrohttpd runs in external mode with epoll: its epoll fd is a zloop
    poller, MHD_run runs when it is readable, and MHD_get_timeout drives a one-shot zloop
    timer. A request that waits for the node (any room operation: durable, forwarded or a
    long poll) suspends its connection; the node's reply builds the HTTP response, resumes
    the connection and runs libmicrohttpd again. Nothing blocks the reactor.

    Limits: connections per listener (--http-max-conns), idle time (--http-timeout), the
    request body (--http-body-max, refused with 413 as soon as Content-Length says so),
    and requests waiting for the node (--http-max-waiting, refused with 503). Each refusal
    is counted in `status` and /metrics and logged. */
#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/socket.h>

#include "sos_client.h"
#include "sos_http.h"
#include "sos_identity.h"
#include "sos_log.h"
#include "sos_mp.h"
#include "sos_record.h"

#define SOS_HTTP_WAIT_SLACK_MS 10000 /* beyond the node's own forward timeout */
#define SOS_HTTP_POLL_WAIT_MAX 30000 /* ms, as the node's poll */
#define SOS_HTTP_ROOMS_MAX     1000  /* rooms listed by GET /rooms (the node's page size) */
#define SOS_HTTP_NICK_CHARS    20
#define SOS_HTTP_DESC_CHARS    140
#define SOS_HTTP_EMOJIS_MAX    6
#define SOS_HTTP_ADDR_MAX      63

/*  Histogram buckets of send latency, in seconds. */
static const double s_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,   0.25,   0.5,   1,    2.5,   5};
#define SOS_HTTP_BUCKETS (sizeof s_buckets / sizeof s_buckets[0])

typedef struct {
    uint64_t requests;
    uint64_t responses[6]; /* by status class: [2] = 2xx ... [5] = 5xx */
    uint64_t too_large;    /* bodies over --http-body-max */
    uint64_t bad_json;     /* bodies that are not a JSON object (taken as empty) */
    uint64_t waiting_full; /* refused: --http-max-waiting requests already wait */
    uint64_t node_timeouts;
    uint64_t too_slow;     /* bodies that took longer than --http-timeout in all */
    uint64_t conn_refused; /* connections over --http-max-conns */
    uint64_t connections;
    uint64_t send_count;
    double send_sum;
    uint64_t send_hist[SOS_HTTP_BUCKETS];
} s_stats_t;

typedef struct _s_req_t s_req_t;
typedef void(s_on_reply_fn)(sos_http_t *self, s_req_t *r, const sos_reply_t *rep);

struct _s_req_t {
    sos_http_t *http;
    struct MHD_Connection *conn;
    char *body;
    size_t body_len;
    bool too_large;
    bool suspended;
    uint64_t req_id; /* while waiting for the node: the key in pending */
    uint64_t deadline_mono;
    uint64_t start_mono;
    sos_http_route_t route;
    char room[SOS_ROOMHASH_LEN + 1];
    s_on_reply_fn *on_reply;
    json_t *workers; /* GET /rooms: node id -> HTTP base URL, from the workers listing */
    struct MHD_Response *response; /* made while suspended, queued when resumed */
    unsigned int status;
};

struct _sos_http_t {
    const sos_config_t *cfg;
    zloop_t *loop;
    zsock_t *dealer;
    const char *node_id;
    struct MHD_Daemon *daemons[SOS_HTTP_MAX];
    zmq_pollitem_t items[SOS_HTTP_MAX];
    size_t n_daemons;
    int timer_id;
    zhashx_t *pending; /* req id -> s_req_t (borrowed: a request is owned by its connection) */
    uint64_t next_id;
    uint64_t open_conns;
    s_stats_t stats;
    msgpack_sbuffer buf;
};

/* ------------------------------------------------------------------ routing ---- */

static bool
s_hex16(const char *s, size_t len)
{
    return sos_room_hash_valid(s, len);
}

sos_http_route_t
sos_http_route(const char *method, const char *path, char room[17])
{
    room[0] = '\0';
    if (streq(method, "OPTIONS"))
        return SOS_HTTP_OPTIONS;
    bool get = streq(method, "GET") || streq(method, "HEAD");
    bool post = streq(method, "POST");
    if (get && (streq(path, "/") || streq(path, "/index.html") || streq(path, "/app.js") ||
                strncmp(path, "/js/", 4) == 0))
        return SOS_HTTP_PAGE;
    if (get && streq(path, "/health"))
        return SOS_HTTP_HEALTH;
    if (get && streq(path, "/metrics"))
        return SOS_HTTP_METRICS;
    if (get && streq(path, "/status"))
        return SOS_HTTP_STATUS;
    if (get && streq(path, "/workers"))
        return SOS_HTTP_WORKERS;
    if (get && streq(path, "/rooms"))
        return SOS_HTTP_ROOMS;
    if (post && streq(path, "/room"))
        return SOS_HTTP_CREATE;
    if (strncmp(path, "/room/", 6) != 0)
        return SOS_HTTP_NOT_FOUND;
    /*  /room/H[/ACTION[/]]: the hash is checked before the action, as the seed does. */
    const char *h = path + 6;
    const char *slash = strchr(h, '/');
    size_t hlen = slash ? (size_t)(slash - h) : strlen(h);
    if (!s_hex16(h, hlen))
        return SOS_HTTP_BAD_HASH;
    memcpy(room, h, SOS_ROOMHASH_LEN);
    room[SOS_ROOMHASH_LEN] = '\0';
    const char *action = slash ? slash + 1 : "";
    size_t alen = strcspn(action, "/");
    if (action[alen] == '/' && action[alen + 1] != '\0')
        return SOS_HTTP_NOT_FOUND;
    static const struct {
        const char *name;
        bool post;
        sos_http_route_t route;
    } actions[] = {
        {"join", true, SOS_HTTP_JOIN},  {"send", true, SOS_HTTP_SEND},
        {"poll", false, SOS_HTTP_POLL}, {"leave", true, SOS_HTTP_LEAVE},
        {"info", false, SOS_HTTP_INFO},
    };
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strlen(actions[i].name) == alen && memcmp(action, actions[i].name, alen) == 0 &&
            (actions[i].post ? post : get))
            return actions[i].route;
    return SOS_HTTP_NOT_FOUND;
}

json_t *
sos_http_body(const char *data, size_t len)
{
    json_t *j = NULL;
    if (data && len) {
        json_error_t err;
        j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return j;
}

/* --------------------------------------------------------------- responses ---- */

static void
s_cors(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Content-Type");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "3600");
}

/*  A response with body (copied) and type, CORS headers on. NULL if memory is short. */
static struct MHD_Response *
s_response(const char *body, size_t len, const char *type)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return NULL;
    if (type)
        MHD_add_response_header(resp, "Content-Type", type);
    s_cors(resp);
    return resp;
}

/*  Times are seconds with millisecond precision, as JSON numbers (1796015839.5): 13
    significant digits keep every millisecond of dates up to the year 2286 exact. */
static json_t *
s_seconds(uint64_t ms)
{
    return json_real((double)ms / 1000.0);
}

static struct MHD_Response *
s_json_response(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(13)) : NULL;
    struct MHD_Response *resp =
        text ? s_response(text, strlen(text), "application/json")
             : s_response("{\"error\":\"unavailable\"}", 23, "application/json");
    free(text);
    return resp;
}

static void
s_count_status(sos_http_t *self, unsigned int status)
{
    unsigned int cls = status / 100;
    if (cls < 6)
        self->stats.responses[cls]++;
}

/*  Answer now (the connection is not suspended). Takes the reference to j. */
static enum MHD_Result
s_answer(sos_http_t *self, struct MHD_Connection *c, unsigned int status, json_t *j)
{
    struct MHD_Response *resp = s_json_response(j);
    json_decref(j);
    if (!resp)
        return MHD_NO;
    s_count_status(self, status);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static json_t *
s_error_json(const char *code)
{
    return json_pack("{s:s}", "error", code);
}

static enum MHD_Result
s_answer_error(sos_http_t *self, struct MHD_Connection *c, unsigned int status, const char *code)
{
    return s_answer(self, c, status, s_error_json(code));
}

/*  The HTTP status of one of the node's error codes. */
static unsigned int
s_status_of(const char *code)
{
    static const struct {
        const char *code;
        unsigned int status;
    } map[] = {
        {SOS_E_NOT_MEMBER, 403},  {SOS_E_TOO_LARGE, 413},         {SOS_E_OWNER_UNREACHABLE, 503},
        {SOS_E_UNAVAILABLE, 503}, {SOS_E_INVALID_ROOM_HASH, 400}, {SOS_E_ROOM_NOT_FOUND, 404},
        {SOS_E_ROOM_EXISTS, 409}, {SOS_E_RATE_LIMITED, 429},      {SOS_E_BAD_REQUEST, 400},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (streq(code, map[i].code))
            return map[i].status;
    return 500;
}

/*  Set the response of a suspended request (taking j) and resume its connection. */
static void
s_finish(sos_http_t *self, s_req_t *r, unsigned int status, json_t *j)
{
    if (r->response)
        MHD_destroy_response(r->response);
    r->response = s_json_response(j);
    json_decref(j);
    r->status = status;
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
}

/* ------------------------------------------------------ msgpack to JSON ---- */

/*  The node's reply bodies, as JSON; depth bounded by sos_mp_parse. NULL for a type JSON has
    no word for (bin, ext). */
static json_t *
s_mp_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer(o->via.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = s_mp_json(&o->via.array.ptr[i]);
            if (v)
                json_array_append_new(a, v);
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size > 64)
                continue;
            char key[65];
            memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = '\0';
            json_t *v = s_mp_json(&kv->val);
            if (v)
                json_object_set_new(m, key, v);
        }
        return m;
    }
    default:
        return NULL;
    }
}

static uint64_t
s_body_uint(const sos_reply_t *rep, const char *key)
{
    uint64_t v = 0;
    sos_mp_uint(sos_mp_map_get(rep->body, key), &v);
    return v;
}

static json_t *
s_body_field(const sos_reply_t *rep, const char *key)
{
    const msgpack_object *o = sos_mp_map_get(rep->body, key);
    json_t *j = o ? s_mp_json(o) : NULL;
    return j ? j : json_null();
}

/* -------------------------------------------------------- node requests ---- */

/*  A request argument as msgpack: strings, unsigned integers, booleans, and arrays and maps
    of them (a list of emojis); anything else, or deeper than the node decodes, is nil. */
static void
s_json_mp(msgpack_packer *pk, json_t *v, int depth)
{
    if (json_is_string(v))
        sos_mp_pack_strn(pk, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v) && json_integer_value(v) >= 0)
        msgpack_pack_uint64(pk, (uint64_t)json_integer_value(v));
    else if (json_is_true(v))
        msgpack_pack_true(pk);
    else if (json_is_false(v))
        msgpack_pack_false(pk);
    else if (json_is_array(v) && depth < 4) {
        msgpack_pack_array(pk, json_array_size(v));
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) s_json_mp(pk, e, depth + 1);
    } else if (json_is_object(v) && depth < 4) {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            sos_mp_pack_str(pk, k);
            s_json_mp(pk, e, depth + 1);
        }
    } else
        msgpack_pack_nil(pk);
}

/*  503 unavailable now: queued at once while in the access handler, or, for a request
    already suspended (a second step, as GET /rooms has), set and resumed. */
static enum MHD_Result
s_refuse(sos_http_t *self, s_req_t *r)
{
    if (r->suspended) {
        s_finish(self, r, 503, s_error_json(SOS_E_UNAVAILABLE));
        return MHD_YES;
    }
    return s_answer_error(self, r->conn, 503, SOS_E_UNAVAILABLE);
}

/*  Send op with args (a JSON object, borrowed) to the node and suspend r until its reply.
    Returns MHD_YES, or answers 503 when the node cannot take it. */
static enum MHD_Result
s_ask(sos_http_t *self, s_req_t *r, const char *op, json_t *args, uint64_t wait_ms,
      s_on_reply_fn *on_reply)
{
    if (zhashx_size(self->pending) >= self->cfg->http_max_waiting) {
        self->stats.waiting_full++;
        sos_log_info("http: %zu requests wait already: refused", zhashx_size(self->pending));
        return s_refuse(self, r);
    }
    msgpack_sbuffer_clear(&self->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->buf, msgpack_sbuffer_write);
    uint64_t id = ++self->next_id;
    sos_request_pack_begin(&pk, id, op);
    msgpack_pack_map(&pk, json_object_size(args));
    const char *key;
    json_t *v;
    json_object_foreach(args, key, v)
    {
        sos_mp_pack_str(&pk, key);
        s_json_mp(&pk, v, 0);
    }
    sos_request_pack_end(&pk, 0);
    if (zmq_send(zsock_resolve(self->dealer), self->buf.data, self->buf.size, ZMQ_DONTWAIT) < 0) {
        sos_log_warning("http: cannot send to the node: %s", zmq_strerror(zmq_errno()));
        return s_refuse(self, r);
    }
    char k[24];
    snprintf(k, sizeof k, "%llu", (unsigned long long)id);
    zhashx_insert(self->pending, k, r);
    r->req_id = id;
    r->on_reply = on_reply;
    r->deadline_mono = sos_mono_ms() + wait_ms + SOS_HTTP_WAIT_SLACK_MS;
    if (!r->suspended) {
        r->suspended = true;
        MHD_suspend_connection(r->conn);
    }
    return MHD_YES;
}

static void
s_forget(sos_http_t *self, s_req_t *r)
{
    if (!r->req_id)
        return;
    char k[24];
    snprintf(k, sizeof k, "%llu", (unsigned long long)r->req_id);
    zhashx_delete(self->pending, k);
    r->req_id = 0;
}

/*  An error reply from the node, as the seed's clients expect it. */
static void
s_node_error(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    char code[33];
    size_t n = rep->status_len < 32 ? rep->status_len : 32;
    memcpy(code, rep->status, n);
    code[n] = '\0';
    json_t *j = s_error_json(code);
    if (streq(code, SOS_E_RATE_LIMITED))
        json_object_set_new(j, "retry_after",
                            json_integer((json_int_t)s_body_uint(rep, "retry_after")));
    s_finish(self, r, s_status_of(code), j);
}

/* ------------------------------------------------------------ seed API ---- */

/*  Cut UTF-8 text to at most max_chars code points and max_bytes bytes, at a character
    boundary. Returns the byte length kept. */
static size_t
s_utf8_cut(const char *s, size_t len, size_t max_chars, size_t max_bytes)
{
    size_t i = 0, chars = 0;
    while (i < len && chars < max_chars) {
        size_t step = 1;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0xf0)
            step = 4;
        else if (c >= 0xe0)
            step = 3;
        else if (c >= 0xc0)
            step = 2;
        if (i + step > len || i + step > max_bytes)
            break;
        i += step;
        chars++;
    }
    return i;
}

/*  A string field of the body cut as the seed cuts it, or dflt when absent or empty. */
static json_t *
s_text(json_t *body, const char *key, const char *dflt, size_t max_chars, size_t max_bytes,
       bool trim)
{
    json_t *v = json_object_get(body, key);
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    size_t len = json_is_string(v) ? json_string_length(v) : 0;
    if (trim) {
        while (len && strchr(" \t\r\n", *s)) {
            s++;
            len--;
        }
        while (len && strchr(" \t\r\n", s[len - 1]))
            len--;
    }
    if (!len && dflt)
        return json_string(dflt);
    /*  jansson gives valid UTF-8; a NUL byte would end the node's string, so stop there. */
    const char *nul = memchr(s, '\0', len);
    if (nul)
        len = (size_t)(nul - s);
    return json_stringn(s, s_utf8_cut(s, len, max_chars, max_bytes));
}

/*  The creator's emojis for the node: the list cut to its first 6 elements, as the seed
    does. The node checks each (1..32 bytes of UTF-8) before it writes anything, and the
    room record carries the list exactly as given. */
static json_t *
s_emojis_arg(json_t *body)
{
    json_t *list = json_object_get(body, "emojis");
    json_t *cut = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (i == SOS_HTTP_EMOJIS_MAX)
            break;
        json_array_append(cut, e);
    }
    return cut;
}

/*  A room's emojis as the seed lists them: the record's list (`emoji_list`). */
static json_t *
s_room_emojis(json_t *room)
{
    json_t *list = json_object_get(room, "emoji_list");
    return json_is_array(list) ? json_incref(list) : json_array();
}

/*  A worker's HTTP base URL: its record's http_url once records carry one (protocol
    version 2), this node's own --http-advertise, else its ZeroMQ endpoint. */
static json_t *
s_worker_url(sos_http_t *self, json_t *worker)
{
    json_t *http = json_object_get(worker, "http_url");
    if (json_is_string(http) && json_string_length(http))
        return json_incref(http);
    json_t *id = json_object_get(worker, "node_id");
    if (json_is_string(id) && streq(json_string_value(id), self->node_id) &&
        *self->cfg->http_advertise)
        return json_string(self->cfg->http_advertise);
    json_t *url = json_object_get(worker, "url");
    return json_is_string(url) ? json_incref(url) : json_string("");
}

static json_t *
s_room_reply(const sos_reply_t *rep, const char *room)
{
    json_t *j = json_object();
    json_object_set_new(j, "room_hash", json_string(room));
    json_object_set_new(j, "mode", json_string("fixed"));
    json_object_set_new(j, "created_at", s_seconds(s_body_uint(rep, "created_at")));
    json_object_set_new(j, "expires_at", s_seconds(s_body_uint(rep, "expires_at")));
    json_object_set_new(j, "member_id", s_body_field(rep, "member_id"));
    json_object_set_new(j, "members", s_body_field(rep, "members"));
    return j;
}

static void
s_on_create(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    s_finish(self, r, 200, s_room_reply(rep, r->room));
}

static void
s_on_join(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    json_t *j = s_room_reply(rep, r->room);
    json_object_set_new(j, "message_count",
                        json_integer((json_int_t)s_body_uint(rep, "message_count")));
    uint64_t last = s_body_uint(rep, "last_message_ts");
    json_object_set_new(j, "last_message_ts", last ? s_seconds(last) : json_integer(0));
    s_finish(self, r, 200, j);
}

static void
s_on_send(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    double s = (double)(sos_mono_ms() - r->start_mono) / 1000.0;
    self->stats.send_count++;
    self->stats.send_sum += s;
    for (size_t i = 0; i < SOS_HTTP_BUCKETS; i++)
        if (s <= s_buckets[i])
            self->stats.send_hist[i]++;
    json_t *j = json_object();
    json_object_set_new(j, "id", s_body_field(rep, "id"));
    json_object_set_new(j, "timestamp", s_seconds(s_body_uint(rep, "timestamp")));
    json_object_set_new(j, "seq", json_integer((json_int_t)s_body_uint(rep, "seq")));
    s_finish(self, r, 200, j);
}

static void
s_on_poll(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    json_t *j = json_object();
    json_t *messages = json_array();
    const msgpack_object *items = NULL;
    uint32_t n = 0;
    sos_mp_array(sos_mp_map_get(rep->body, "messages"), &items, &n, UINT32_MAX);
    for (uint32_t i = 0; i < n; i++) {
        json_t *m = s_mp_json(&items[i]);
        if (!json_is_object(m)) {
            json_decref(m);
            continue;
        }
        json_t *ts = json_object_get(m, "timestamp");
        json_object_set_new(m, "timestamp",
                            s_seconds(json_is_integer(ts) ? (uint64_t)json_integer_value(ts) : 0));
        json_array_append_new(messages, m);
    }
    json_object_set_new(j, "messages", messages);
    json_object_set_new(j, "members", s_body_field(rep, "members"));
    json_object_set_new(j, "expires_at", s_seconds(s_body_uint(rep, "expires_at")));
    json_object_set_new(j, "message_count",
                        json_integer((json_int_t)s_body_uint(rep, "message_count")));
    json_object_set_new(j, "last_seq", json_integer((json_int_t)s_body_uint(rep, "last_seq")));
    s_finish(self, r, 200, j);
}

static void
s_on_info(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    json_t *j = json_object();
    json_object_set_new(j, "room_hash", json_string(r->room));
    json_object_set_new(j, "mode", json_string("fixed"));
    json_object_set_new(j, "created_at", s_seconds(s_body_uint(rep, "created_at")));
    json_object_set_new(j, "expires_at", s_seconds(s_body_uint(rep, "expires_at")));
    json_object_set_new(j, "members", s_body_field(rep, "members"));
    json_object_set_new(j, "message_count",
                        json_integer((json_int_t)s_body_uint(rep, "message_count")));
    json_object_set_new(j, "time_remaining",
                        json_integer((json_int_t)s_body_uint(rep, "time_remaining")));
    s_finish(self, r, 200, j);
}

static void
s_on_leave(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    s_finish(self, r, 200, json_pack("{s:s}", "status", "left"));
}

static void
s_on_status(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    json_t *j = s_mp_json(rep->body);
    json_object_set_new(j, "http_url", json_string(self->cfg->http_advertise));
    s_finish(self, r, 200, j);
}

static void
s_on_workers(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    json_t *src = s_body_field(rep, "workers");
    json_t *list = json_array();
    size_t i;
    json_t *w;
    json_array_foreach(src, i, w)
    {
        json_t *o = json_object();
        json_object_set_new(o, "url", s_worker_url(self, w));
        json_t *ls = json_object_get(w, "last_seen");
        json_t *lo = json_object_get(w, "last_ok");
        json_object_set_new(o, "last_seen",
                            s_seconds(json_is_integer(ls) ? (uint64_t)json_integer_value(ls) : 0));
        json_object_set_new(o, "last_ok",
                            s_seconds(json_is_integer(lo) ? (uint64_t)json_integer_value(lo) : 0));
        json_object_set(o, "fail_count", json_object_get(w, "fail_count"));
        json_object_set(o, "is_genesis", json_object_get(w, "is_genesis"));
        json_object_set(o, "node_id", json_object_get(w, "node_id"));
        json_object_set(o, "endpoint", json_object_get(w, "url"));
        json_array_append_new(list, o);
    }
    json_decref(src);
    s_finish(self, r, 200, json_pack("{s:o}", "workers", list));
}

static int
s_by_expiry(const void *a, const void *b)
{
    double x = json_real_value(json_object_get(*(json_t *const *)a, "expires_at"));
    double y = json_real_value(json_object_get(*(json_t *const *)b, "expires_at"));
    return x < y ? -1 : x > y;
}

static void
s_on_rooms(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    json_t *src = s_body_field(rep, "rooms");
    size_t n = json_array_size(src), kept = 0;
    json_t **rooms = calloc(n ? n : 1, sizeof *rooms);
    uint64_t now = sos_now_ms();
    size_t i;
    json_t *room;
    json_array_foreach(src, i, room)
    {
        json_t *exp = json_object_get(room, "expires_at");
        uint64_t expires = json_is_integer(exp) ? (uint64_t)json_integer_value(exp) : 0;
        if (!rooms || expires <= now)
            continue;
        json_t *ca = json_object_get(room, "created_at");
        json_t *owner = json_object_get(room, "owner");
        json_t *url =
            owner && r->workers ? json_object_get(r->workers, json_string_value(owner)) : NULL;
        json_t *o = json_object();
        json_object_set(o, "room_hash", json_object_get(room, "room_hash"));
        json_object_set_new(o, "emojis", s_room_emojis(room));
        json_object_set(o, "description", json_object_get(room, "description"));
        json_object_set_new(o, "created_at",
                            s_seconds(json_is_integer(ca) ? (uint64_t)json_integer_value(ca) : 0));
        json_object_set_new(o, "expires_at", s_seconds(expires));
        json_object_set(o, "worker", url ? url : json_object_get(room, "worker"));
        json_object_set(o, "owner", owner);
        rooms[kept++] = o;
    }
    qsort(rooms, kept, sizeof *rooms, s_by_expiry);
    json_t *list = json_array();
    for (i = 0; i < kept; i++)
        json_array_append_new(list, rooms[i]);
    free(rooms);
    json_decref(src);
    s_finish(self, r, 200, json_pack("{s:o}", "rooms", list));
}

/*  GET /rooms asks for the workers first, to give each room its owner's HTTP URL. */
static void
s_on_rooms_workers(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    json_t *src = s_body_field(rep, "workers");
    r->workers = json_object();
    size_t i;
    json_t *w;
    json_array_foreach(src, i, w)
    {
        json_t *id = json_object_get(w, "node_id");
        if (json_is_string(id) && json_string_length(id))
            json_object_set_new(r->workers, json_string_value(id), s_worker_url(self, w));
    }
    json_decref(src);
    json_t *args = json_pack("{s:i}", "limit", SOS_HTTP_ROOMS_MAX);
    s_ask(self, r, "rooms", args, 0, s_on_rooms);
    json_decref(args);
}

const char *
sos_http_body_args(sos_http_route_t route, json_t *body, json_t *args)
{
    switch (route) {
    case SOS_HTTP_CREATE: {
        json_t *h = json_object_get(body, "room_hash");
        if (!json_is_string(h) || !s_hex16(json_string_value(h), json_string_length(h)))
            return SOS_E_INVALID_ROOM_HASH;
        json_object_set(args, "room_hash", h);
        json_object_set_new(args, "nickname",
                            s_text(body, "nickname", "creator", SOS_HTTP_NICK_CHARS, 20, false));
        json_object_set_new(args, "description",
                            s_text(body, "description", NULL, SOS_HTTP_DESC_CHARS, 140, true));
        json_object_set_new(args, "emojis", s_emojis_arg(body));
        return NULL;
    }
    case SOS_HTTP_JOIN:
        json_object_set_new(args, "nickname",
                            s_text(body, "nickname", "anon", SOS_HTTP_NICK_CHARS, 20, false));
        return NULL;
    case SOS_HTTP_SEND: {
        json_t *content = json_object_get(body, "content");
        if (!json_is_string(content) || !json_string_length(content))
            return "missing_content";
        json_object_set(args, "content", content);
        json_t *id = json_object_get(body, "msg_id");
        if (json_is_string(id))
            json_object_set(args, "msg_id", id);
        json_t *m = json_object_get(body, "member_id");
        json_object_set_new(args, "member_id",
                            json_is_string(m) ? json_incref(m) : json_string(""));
        return NULL;
    }
    case SOS_HTTP_LEAVE: {
        json_t *m = json_object_get(body, "member_id");
        json_object_set_new(args, "member_id",
                            json_is_string(m) ? json_incref(m) : json_string(""));
        return NULL;
    }
    default:
        return NULL;
    }
}

/* -------------------------------------------------------------- metrics ---- */

static void
s_metric(zchunk_t *out, const char *name, const char *type, const char *help, uint64_t value)
{
    char line[512];
    int n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
                     type, name, (unsigned long long)value);
    if (n > 0)
        zchunk_extend(out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/*  The name and unit of a status counter in Prometheus terms. */
static void
s_metric_name(char *dest, size_t size, const char *group, const char *key, const char **type)
{
    *type = "counter";
    if (streq(group, "")) {
        *type = "gauge";
        if (streq(key, "uptime_s"))
            snprintf(dest, size, "sosnode_uptime_seconds");
        else if (streq(key, "gossip_interval_ms"))
            snprintf(dest, size, "sosnode_gossip_interval_milliseconds");
        else
            snprintf(dest, size, "sosnode_%s", key);
        return;
    }
    if (streq(group, "http") && streq(key, "open_connections")) {
        *type = "gauge";
        snprintf(dest, size, "sosnode_http_open_connections");
        return;
    }
    if (streq(group, "http") && streq(key, "waiting")) {
        *type = "gauge";
        snprintf(dest, size, "sosnode_http_waiting_requests");
        return;
    }
    bool bytes = strncmp(key, "bytes_", 6) == 0;
    if (bytes) {
        /*  bytes_in -> sosnode_gossip_in_bytes_total */
        const char *rest = key + 5;
        snprintf(dest, size, "sosnode_%s%s_bytes_total", group, rest);
    } else
        snprintf(dest, size, "sosnode_%s_%s_total", group, key);
}

/*  status's gossip_exchange_ms [count, sum_ms, cumulative counts...] as a histogram. */
static void
s_exchange_histogram(zchunk_t *out, const msgpack_object *o)
{
    static const uint64_t bounds[SOS_EXCHANGE_BUCKETS] = SOS_EXCHANGE_BUCKETS_MS;
    const msgpack_object *items;
    uint32_t n;
    uint64_t v[2 + SOS_EXCHANGE_BUCKETS];
    if (!o || !sos_mp_array(o, &items, &n, 2 + SOS_EXCHANGE_BUCKETS) ||
        n != 2 + SOS_EXCHANGE_BUCKETS)
        return;
    for (uint32_t i = 0; i < n; i++)
        if (!sos_mp_uint(&items[i], &v[i]))
            return;
    char line[256];
    int len = snprintf(line, sizeof line,
                       "# HELP sosnode_gossip_exchange_seconds round trip of a gossip SYNC to its "
                       "SYNC_ACK\n# TYPE sosnode_gossip_exchange_seconds histogram\n");
    zchunk_extend(out, line, (size_t)len);
    for (int i = 0; i < SOS_EXCHANGE_BUCKETS; i++) {
        len =
            snprintf(line, sizeof line, "sosnode_gossip_exchange_seconds_bucket{le=\"%g\"} %llu\n",
                     (double)bounds[i] / 1000.0, (unsigned long long)v[2 + i]);
        zchunk_extend(out, line, (size_t)len);
    }
    len = snprintf(line, sizeof line,
                   "sosnode_gossip_exchange_seconds_bucket{le=\"+Inf\"} %llu\n"
                   "sosnode_gossip_exchange_seconds_sum %.3f\n"
                   "sosnode_gossip_exchange_seconds_count %llu\n",
                   (unsigned long long)v[0], (double)v[1] / 1000.0, (unsigned long long)v[0]);
    zchunk_extend(out, line, (size_t)len);
}

static void
s_on_metrics(sos_http_t *self, s_req_t *r, const sos_reply_t *rep)
{
    zchunk_t *out = zchunk_new(NULL, 8192);
    const msgpack_object *body = rep->body;
    for (uint32_t i = 0; i < body->via.map.size; i++) {
        const msgpack_object_kv *kv = &body->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size > 48)
            continue;
        char key[49];
        memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
        key[kv->key.via.str.size] = '\0';
        char name[128], help[160];
        const char *type;
        uint64_t v;
        if (sos_mp_uint(&kv->val, &v)) {
            s_metric_name(name, sizeof name, "", key, &type);
            snprintf(help, sizeof help, "status %s", key);
            s_metric(out, name, type, help, v);
        } else if (sos_mp_is_map(&kv->val)) {
            for (uint32_t k = 0; k < kv->val.via.map.size; k++) {
                const msgpack_object_kv *kv2 = &kv->val.via.map.ptr[k];
                if (kv2->key.type != MSGPACK_OBJECT_STR || kv2->key.via.str.size > 48 ||
                    !sos_mp_uint(&kv2->val, &v))
                    continue;
                char sub[49];
                memcpy(sub, kv2->key.via.str.ptr, kv2->key.via.str.size);
                sub[kv2->key.via.str.size] = '\0';
                s_metric_name(name, sizeof name, key, sub, &type);
                snprintf(help, sizeof help, "status %s.%s", key, sub);
                s_metric(out, name, type, help, v);
            }
        }
    }
    s_exchange_histogram(out, sos_mp_map_get(body, "gossip_exchange_ms"));
    char line[256];
    zchunk_extend(out,
                  "# HELP sosnode_http_send_latency_seconds time from an HTTP send to its "
                  "durable answer\n# TYPE sosnode_http_send_latency_seconds histogram\n",
                  strlen("# HELP sosnode_http_send_latency_seconds time from an HTTP send to "
                         "its durable answer\n# TYPE sosnode_http_send_latency_seconds "
                         "histogram\n"));
    for (size_t i = 0; i < SOS_HTTP_BUCKETS; i++) {
        int n = snprintf(line, sizeof line,
                         "sosnode_http_send_latency_seconds_bucket{le=\"%g\"} %llu\n", s_buckets[i],
                         (unsigned long long)self->stats.send_hist[i]);
        zchunk_extend(out, line, (size_t)n);
    }
    int n = snprintf(line, sizeof line,
                     "sosnode_http_send_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
                     "sosnode_http_send_latency_seconds_sum %.6f\n"
                     "sosnode_http_send_latency_seconds_count %llu\n",
                     (unsigned long long)self->stats.send_count, self->stats.send_sum,
                     (unsigned long long)self->stats.send_count);
    zchunk_extend(out, line, (size_t)n);
    if (r->response)
        MHD_destroy_response(r->response);
    r->response =
        s_response((const char *)zchunk_data(out), zchunk_size(out), "text/plain; version=0.0.4");
    r->status = 200;
    zchunk_destroy(&out);
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
}

/* --------------------------------------------------------------- the page ---- */

typedef struct {
    const char *path;
    const char *type;
    const char *data;
    size_t size;
} s_web_file_t;

#include "sos_http_page.h" /* s_web_files[], generated from web/ at build time */

static const s_web_file_t *
s_web_file(const char *path)
{
    if (streq(path, "/index.html"))
        path = "/";
    for (size_t i = 0; i < sizeof s_web_files / sizeof s_web_files[0]; i++)
        if (streq(path, s_web_files[i].path))
            return &s_web_files[i];
    return NULL;
}

/* -------------------------------------------------------------- dispatch ---- */

static void
s_client_address(sos_http_t *self, struct MHD_Connection *c, char *dest, size_t size)
{
    *dest = '\0';
    if (self->cfg->trust_proxy) {
        const char *xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
        if (xff) {
            while (*xff == ' ')
                xff++;
            size_t len = strcspn(xff, ", ");
            if (len && len < size) {
                memcpy(dest, xff, len);
                dest[len] = '\0';
                return;
            }
        }
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, dest, (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, dest, (socklen_t)size);
}

/*  A query parameter as a number of ms: seconds with a fraction (since) or an integer. */
static uint64_t
s_query_seconds_ms(struct MHD_Connection *c, const char *key)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    if (!v || !*v)
        return 0;
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || !isfinite(d) || d <= 0)
        return 0;
    if (d > 1e15)
        return UINT64_MAX / 2;
    return (uint64_t)llround(d * 1000.0);
}

static uint64_t
s_query_uint(struct MHD_Connection *c, const char *key, bool *present)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    *present = false;
    if (!v || !*v || *v == '-')
        return 0;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end)
        return 0;
    *present = true;
    return n;
}

static enum MHD_Result
s_dispatch(sos_http_t *self, s_req_t *r, const char *method, const char *path)
{
    struct MHD_Connection *c = r->conn;
    r->route = sos_http_route(method, path, r->room);
    if (r->too_large) {
        self->stats.too_large++;
        sos_log_info("http: a request body over %u bytes refused", self->cfg->http_body_max);
        return s_answer_error(self, c, 413, SOS_E_TOO_LARGE);
    }
    char client[SOS_HTTP_ADDR_MAX + 1];
    s_client_address(self, c, client, sizeof client);
    json_t *body = NULL, *args = NULL;
    if (r->route == SOS_HTTP_CREATE || r->route == SOS_HTTP_JOIN || r->route == SOS_HTTP_SEND ||
        r->route == SOS_HTTP_LEAVE) {
        body = sos_http_body(r->body, r->body_len);
        if (r->body_len && !json_object_size(body))
            self->stats.bad_json++;
        if (!body)
            return s_answer_error(self, c, 503, SOS_E_UNAVAILABLE);
    }
    args = json_object();
    json_object_set_new(args, "client", json_string(client));
    if (*r->room)
        json_object_set_new(args, "room_hash", json_string(r->room));
    enum MHD_Result ret = MHD_YES;
    switch (r->route) {
    case SOS_HTTP_OPTIONS: {
        struct MHD_Response *resp = s_response("", 0, NULL);
        s_count_status(self, 204);
        ret = MHD_queue_response(c, 204, resp);
        MHD_destroy_response(resp);
        break;
    }
    case SOS_HTTP_NOT_FOUND:
        ret = s_answer_error(self, c, 404, "not_found");
        break;
    case SOS_HTTP_BAD_HASH:
        ret = s_answer_error(self, c, 400, SOS_E_INVALID_ROOM_HASH);
        break;
    case SOS_HTTP_PAGE: {
        const s_web_file_t *f = s_web_file(path);
        if (!f) {
            ret = s_answer_error(self, c, 404, "not_found");
            break;
        }
        char type[64];
        snprintf(type, sizeof type, "%s; charset=utf-8", f->type);
        /*  The files live in the binary for its whole life: no copy. */
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(f->size, (void *)f->data, MHD_RESPMEM_PERSISTENT);
        if (!resp) {
            ret = MHD_NO;
            break;
        }
        MHD_add_response_header(resp, "Content-Type", type);
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        s_cors(resp);
        s_count_status(self, 200);
        ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        break;
    }
    case SOS_HTTP_HEALTH:
        ret =
            s_answer(self, c, 200,
                     json_pack("{s:s,s:I}", "status", "ok", "timestamp", (json_int_t)sos_now_ms()));
        break;
    case SOS_HTTP_METRICS:
        json_object_clear(args);
        ret = s_ask(self, r, "status", args, 0, s_on_metrics);
        break;
    case SOS_HTTP_STATUS:
        json_object_clear(args);
        ret = s_ask(self, r, "status", args, 0, s_on_status);
        break;
    case SOS_HTTP_WORKERS:
        json_object_clear(args);
        ret = s_ask(self, r, "workers", args, 0, s_on_workers);
        break;
    case SOS_HTTP_ROOMS:
        json_object_clear(args);
        ret = s_ask(self, r, "workers", args, 0, s_on_rooms_workers);
        break;
    case SOS_HTTP_CREATE:
    case SOS_HTTP_JOIN:
    case SOS_HTTP_SEND:
    case SOS_HTTP_LEAVE: {
        static const struct {
            sos_http_route_t route;
            const char *op;
            s_on_reply_fn *fn;
        } ops[] = {{SOS_HTTP_CREATE, "create", s_on_create},
                   {SOS_HTTP_JOIN, "join", s_on_join},
                   {SOS_HTTP_SEND, "send", s_on_send},
                   {SOS_HTTP_LEAVE, "leave", s_on_leave}};
        const char *err = sos_http_body_args(r->route, body, args);
        if (err) {
            ret = s_answer_error(self, c, 400, err);
            break;
        }
        if (r->route == SOS_HTTP_CREATE)
            snprintf(r->room, sizeof r->room, "%s",
                     json_string_value(json_object_get(args, "room_hash")));
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            if (ops[i].route == r->route)
                ret = s_ask(self, r, ops[i].op, args, 0, ops[i].fn);
        break;
    }
    case SOS_HTTP_POLL: {
        const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "member_id");
        json_object_set_new(args, "member_id", json_string(m ? m : ""));
        bool has_seq = false, has_wait = false;
        uint64_t since_seq = s_query_uint(c, "since_seq", &has_seq);
        uint64_t wait = s_query_uint(c, "wait", &has_wait);
        if (has_seq)
            json_object_set_new(args, "since", json_integer((json_int_t)(since_seq & INT64_MAX)));
        else
            json_object_set_new(args, "since_ts",
                                json_integer((json_int_t)s_query_seconds_ms(c, "since")));
        if (wait > SOS_HTTP_POLL_WAIT_MAX)
            wait = SOS_HTTP_POLL_WAIT_MAX;
        if (wait)
            json_object_set_new(args, "wait_ms", json_integer((json_int_t)wait));
        ret = s_ask(self, r, "poll", args, wait, s_on_poll);
        break;
    }
    case SOS_HTTP_INFO:
        ret = s_ask(self, r, "info", args, 0, s_on_info);
        break;
    }
    json_decref(body);
    json_decref(args);
    return ret;
}

static enum MHD_Result
s_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
         const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    sos_http_t *self = cls;
    s_req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->http = self;
        r->conn = c;
        *con_cls = r;
        r->start_mono = sos_mono_ms();
        self->stats.requests++;
        /*  Refuse a body announced too large before reading it. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > self->cfg->http_body_max) {
            r->too_large = true;
            self->stats.too_large++;
            sos_log_info("http: a request body of %s bytes refused", cl);
            return s_answer_error(self, c, 413, SOS_E_TOO_LARGE);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        /*  A body trickled in just fast enough to beat the idle timeout still gets no more
            than that time in all: the connection is closed. */
        if (sos_mono_ms() - r->start_mono > (uint64_t)self->cfg->http_timeout_s * 1000) {
            self->stats.too_slow++;
            sos_log_info("http: a request body took over %u s: connection closed",
                         self->cfg->http_timeout_s);
            return MHD_NO;
        }
        if (r->too_large || r->body_len + n > self->cfg->http_body_max) {
            r->too_large = true; /* read on and refuse at the end (a chunked body) */
            free(r->body);
            r->body = NULL;
            r->body_len = 0;
            return MHD_YES;
        }
        char *b = realloc(r->body, r->body_len + n);
        if (!b)
            return MHD_NO;
        memcpy(b + r->body_len, upload_data, n);
        r->body = b;
        r->body_len += n;
        return MHD_YES;
    }
    if (r->response) {
        /*  Resumed: the node answered. */
        s_count_status(self, r->status);
        enum MHD_Result ret = MHD_queue_response(c, r->status, r->response);
        MHD_destroy_response(r->response);
        r->response = NULL;
        return ret;
    }
    if (r->req_id)
        return MHD_YES; /* still waiting */
    char path[1024];
    snprintf(path, sizeof path, "%s", url);
    return s_dispatch(self, r, method, path);
}

static void
s_completed(void *cls, struct MHD_Connection *c, void **con_cls,
            enum MHD_RequestTerminationCode toe)
{
    sos_http_t *self = cls;
    s_req_t *r = *con_cls;
    if (!r)
        return;
    s_forget(self, r);
    if (r->response)
        MHD_destroy_response(r->response);
    json_decref(r->workers);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void
s_connection(void *cls, struct MHD_Connection *c, void **socket_context,
             enum MHD_ConnectionNotificationCode toe)
{
    sos_http_t *self = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        self->stats.connections++;
        self->open_conns++;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && self->open_conns)
        self->open_conns--;
}

/*  A new connection over the cap is closed at once, counted and logged (libmicrohttpd's own
    cap, a little above, is only a backstop: it refuses without telling us). */
static enum MHD_Result
s_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    sos_http_t *self = cls;
    uint64_t cap =
        (uint64_t)self->cfg->http_max_conns * (self->cfg->n_http ? self->cfg->n_http : 1);
    if (self->open_conns < cap)
        return MHD_YES;
    self->stats.conn_refused++;
    if (self->stats.conn_refused == 1)
        sos_log_warning("http: %llu connections open: new ones are refused (further refusals "
                        "are logged at info level)",
                        (unsigned long long)self->open_conns);
    else
        sos_log_info("http: connection refused: %llu open", (unsigned long long)self->open_conns);
    return MHD_NO;
}

/* ------------------------------------------------------------- reactor ---- */

static int s_on_timer(zloop_t *loop, int timer_id, void *arg);

/*  Run every daemon, then arm the timer for the earliest timeout any of them asks for. */
static void
s_run(sos_http_t *self)
{
    MHD_UNSIGNED_LONG_LONG best = 1000;
    for (size_t i = 0; i < self->n_daemons; i++) {
        MHD_run(self->daemons[i]);
        MHD_UNSIGNED_LONG_LONG t;
        if (MHD_get_timeout(self->daemons[i], &t) == MHD_YES && t < best)
            best = t;
    }
    if (self->timer_id >= 0)
        zloop_timer_end(self->loop, self->timer_id);
    self->timer_id = zloop_timer(self->loop, best ? (size_t)best : 1, 1, s_on_timer, self);
}

/*  Requests the node did not answer in time (it always answers; this is a safety net). */
static void
s_sweep(sos_http_t *self)
{
    uint64_t now = sos_mono_ms();
    zlistx_t *late = NULL;
    for (s_req_t *r = zhashx_first(self->pending); r; r = zhashx_next(self->pending))
        if (now >= r->deadline_mono) {
            if (!late)
                late = zlistx_new();
            zlistx_add_end(late, r);
        }
    if (!late)
        return;
    for (s_req_t *r = zlistx_first(late); r; r = zlistx_next(late)) {
        self->stats.node_timeouts++;
        s_forget(self, r);
        s_finish(self, r, 503, s_error_json(SOS_E_UNAVAILABLE));
    }
    sos_log_warning("http: %zu requests got no answer from the node in time", zlistx_size(late));
    zlistx_destroy(&late);
}

static int
s_on_timer(zloop_t *loop, int timer_id, void *arg)
{
    sos_http_t *self = arg;
    self->timer_id = -1;
    s_sweep(self);
    s_run(self);
    return 0;
}

static int
s_on_epoll(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_run(arg);
    return 0;
}

static int
s_on_dealer(zloop_t *loop, zsock_t *sock, void *arg)
{
    sos_http_t *self = arg;
    void *h = zsock_resolve(self->dealer);
    for (int i = 0; i < 256; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, h, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        sos_mp_doc_t doc;
        sos_reply_t rep;
        if (sos_reply_decode(&rep, &doc, zmq_msg_data(&msg), zmq_msg_size(&msg)) == SOS_OK) {
            char k[24];
            snprintf(k, sizeof k, "%llu", (unsigned long long)rep.req_id);
            s_req_t *r = zhashx_lookup(self->pending, k);
            if (r) {
                s_forget(self, r);
                if (sos_reply_ok(&rep))
                    r->on_reply(self, r, &rep);
                else if (r->route == SOS_HTTP_LEAVE && rep.status_len == strlen(SOS_E_NOT_MEMBER) &&
                         memcmp(rep.status, SOS_E_NOT_MEMBER, rep.status_len) == 0)
                    s_on_leave(self, r, &rep); /* leaving twice is fine, as the seed says */
                else
                    s_node_error(self, r, &rep);
            }
        }
        sos_mp_doc_release(&doc);
        zmq_msg_close(&msg);
    }
    s_run(self);
    return 0;
}

/* ----------------------------------------------------------- lifecycle ---- */

static char *
s_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > 0 && size < (16 << 20) && fseek(f, 0, SEEK_SET) == 0) {
            data = calloc(1, (size_t)size + 1);
            if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
                free(data);
                data = NULL;
            }
        }
    }
    fclose(f);
    return data;
}

/*  libmicrohttpd's own messages (a refused connection at the cap, a broken request) go to
    the log at info level: a flood of hostile connections must not flood the log. */
__attribute__((format(printf, 2, 0))) static void
s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    sos_log_info("http: %s", line);
}

static struct MHD_Daemon *
s_start(sos_http_t *self, const char *spec, const char *cert, const char *key, char *why,
        size_t why_size)
{
    /*  [ADDR:]PORT, ADDR an IPv4 address, a name, or [IPv6]. */
    char host[128] = "";
    const char *colon = strrchr(spec, ':');
    const char *port = colon ? colon + 1 : spec;
    if (colon) {
        const char *h = spec;
        size_t len = (size_t)(colon - spec);
        if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
            h++;
            len -= 2;
        }
        if (len >= sizeof host) {
            snprintf(why, why_size, "--http %s: address too long", spec);
            return NULL;
        }
        memcpy(host, h, len);
        host[len] = '\0';
    }
    char *end = NULL;
    unsigned long p = strtoul(port, &end, 10);
    if (!*port || *end || p > 65535) {
        snprintf(why, why_size, "--http %s: not [ADDR:]PORT", spec);
        return NULL;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(*host && !streq(host, "*") ? host : NULL, port, &hints, &ai);
    if (gai || !ai) {
        snprintf(why, why_size, "--http %s: %s", spec, gai_strerror(gai));
        return NULL;
    }
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (cert)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls[] = {
        {cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)cert},
        {cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)key},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)p, s_accept, self, s_access, self, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)self->cfg->http_max_conns + 16,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)self->cfg->http_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned int)1, MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_NOTIFY_CONNECTION, s_connection, self, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log,
        self, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d)
        snprintf(why, why_size, "cannot serve HTTP on %s (in use, or no permission)", spec);
    return d;
}

sos_http_t *
sos_http_new(const sos_config_t *cfg, zloop_t *loop, const char *inproc, const uint8_t *local_id,
             size_t local_id_len, const char *node_id, char *why, size_t why_size)
{
    sos_http_t *self = calloc(1, sizeof *self);
    char *cert = NULL, *key = NULL;
    if (!self) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->loop = loop;
    self->node_id = node_id;
    self->timer_id = -1;
    msgpack_sbuffer_init(&self->buf);
    self->pending = zhashx_new();
    self->dealer = zsock_new(ZMQ_DEALER);
    if (!self->pending || !self->dealer) {
        snprintf(why, why_size, "out of memory");
        goto fail;
    }
    zsock_set_linger(self->dealer, 0);
    zsock_set_sndhwm(self->dealer, 0);
    zsock_set_rcvhwm(self->dealer, 0);
    zmq_setsockopt(zsock_resolve(self->dealer), ZMQ_ROUTING_ID, local_id, local_id_len);
    if (zsock_connect(self->dealer, "%s", inproc) < 0) {
        snprintf(why, why_size, "cannot connect to %s", inproc);
        goto fail;
    }
    if (*cfg->http_cert) {
        cert = s_read_file(cfg->http_cert);
        key = s_read_file(cfg->http_key);
        if (!cert || !key) {
            snprintf(why, why_size, "cannot read --http-cert %s or --http-key %s", cfg->http_cert,
                     cfg->http_key);
            goto fail;
        }
    }
    for (uint32_t i = 0; i < cfg->n_http; i++) {
        struct MHD_Daemon *d = s_start(self, cfg->http[i], cert, key, why, why_size);
        if (!d)
            goto fail;
        self->daemons[self->n_daemons] = d;
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
        zmq_pollitem_t *item = &self->items[self->n_daemons];
        self->n_daemons++;
        item->socket = NULL;
        item->fd = info ? info->epoll_fd : -1;
        item->events = ZMQ_POLLIN;
        if (item->fd < 0 || zloop_poller(loop, item, s_on_epoll, self) < 0) {
            snprintf(why, why_size, "cannot poll HTTP on %s", cfg->http[i]);
            goto fail;
        }
        sos_log_notice("serving HTTP on %s (%s)", cfg->http[i], cfg->http_advertise);
    }
    zloop_reader(loop, self->dealer, s_on_dealer, self);
    s_run(self);
    if (key)
        sodium_memzero(key, strlen(key));
    free(cert);
    free(key);
    return self;
fail:
    if (key)
        sodium_memzero(key, strlen(key));
    free(cert);
    free(key);
    sos_log_error("%s", why);
    sos_http_destroy(&self);
    return NULL;
}

void
sos_http_destroy(sos_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sos_http_t *self = *self_p;
    /*  Answer whoever still waits, so that no connection stays suspended at the stop. */
    if (self->pending) {
        zlistx_t *all = zhashx_values(self->pending);
        for (s_req_t *r = zlistx_first(all); r; r = zlistx_next(all)) {
            s_forget(self, r);
            s_finish(self, r, 503, s_error_json(SOS_E_UNAVAILABLE));
        }
        zlistx_destroy(&all);
    }
    for (size_t i = 0; i < self->n_daemons; i++) {
        MHD_run(self->daemons[i]);
        zloop_poller_end(self->loop, &self->items[i]);
        MHD_stop_daemon(self->daemons[i]);
    }
    if (self->timer_id >= 0)
        zloop_timer_end(self->loop, self->timer_id);
    if (self->dealer)
        zloop_reader_end(self->loop, self->dealer);
    zsock_destroy(&self->dealer);
    zhashx_destroy(&self->pending);
    msgpack_sbuffer_destroy(&self->buf);
    free(self);
    *self_p = NULL;
}

void
sos_http_pack_stats(const sos_http_t *self, msgpack_packer *pk)
{
    if (!self) {
        msgpack_pack_map(pk, 0);
        return;
    }
    const s_stats_t *s = &self->stats;
    msgpack_pack_map(pk, 14);
    sos_mp_pack_kv_uint(pk, "too_slow", s->too_slow);
    sos_mp_pack_kv_uint(pk, "conn_refused", s->conn_refused);
    sos_mp_pack_kv_uint(pk, "open_connections", self->open_conns);
    sos_mp_pack_kv_uint(pk, "requests", s->requests);
    sos_mp_pack_kv_uint(pk, "connections", s->connections);
    sos_mp_pack_kv_uint(pk, "responses_2xx", s->responses[2]);
    sos_mp_pack_kv_uint(pk, "responses_4xx", s->responses[4]);
    sos_mp_pack_kv_uint(pk, "responses_5xx", s->responses[5]);
    sos_mp_pack_kv_uint(pk, "too_large", s->too_large);
    sos_mp_pack_kv_uint(pk, "bad_json", s->bad_json);
    sos_mp_pack_kv_uint(pk, "waiting_full", s->waiting_full);
    sos_mp_pack_kv_uint(pk, "node_timeouts", s->node_timeouts);
    sos_mp_pack_kv_uint(pk, "waiting", zhashx_size(self->pending));
    sos_mp_pack_kv_uint(pk, "sends", s->send_count);
}
