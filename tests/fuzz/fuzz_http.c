/*  fuzz_http.c: libFuzzer target for the HTTP front end's request router and the decoding of
    request bodies (node/sos_http): any method and path, any body, as the seed's clients or
    an attacker could send them. Input: one byte picks the method, then the path up to a NUL
    byte, then the body. */
#include <jansson.h>

#include "fuzz_common.h"
#include "sos_http.h"

static bool
s_utf8(const char *s)
{
    return sos_utf8_valid(s, strlen(s));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *methods[] = {"GET", "POST", "OPTIONS", "HEAD", "PUT", "DELETE", ""};
    if (size < 1)
        return 0;
    const char *method = methods[data[0] % (sizeof methods / sizeof methods[0])];
    data++;
    size--;
    const uint8_t *nul = memchr(data, 0, size);
    size_t path_len = nul ? (size_t)(nul - data) : size;
    char *path = malloc(path_len + 1);
    if (!path)
        return 0;
    memcpy(path, data, path_len);
    path[path_len] = '\0';
    const char *body = nul ? (const char *)nul + 1 : "";
    size_t body_len = nul ? size - path_len - 1 : 0;

    char room[17];
    memset(room, 0x55, sizeof room);
    sos_http_route_t route = sos_http_route(method, path, room);
    FUZZ_CHECK(route >= SOS_HTTP_OPTIONS && route <= SOS_HTTP_INFO);
    FUZZ_CHECK(memchr(room, '\0', sizeof room) != NULL);
    if (route >= SOS_HTTP_JOIN)
        FUZZ_CHECK(sos_room_hash_valid(room, strlen(room)));

    json_t *j = sos_http_body(body, body_len);
    FUZZ_CHECK(json_is_object(j));
    json_t *args = json_object();
    sos_http_route_t body_routes[] = {SOS_HTTP_CREATE, SOS_HTTP_JOIN, SOS_HTTP_SEND,
                                      SOS_HTTP_LEAVE};
    for (size_t i = 0; i < sizeof body_routes / sizeof body_routes[0]; i++) {
        json_object_clear(args);
        const char *err = sos_http_body_args(body_routes[i], j, args);
        if (err) {
            FUZZ_CHECK(streq(err, "invalid_room_hash") || streq(err, "missing_content"));
            continue;
        }
        /*  What goes to the node fits the node's limits and is UTF-8. */
        json_t *v = json_object_get(args, "nickname");
        if (v)
            FUZZ_CHECK(json_string_length(v) <= 20 && s_utf8(json_string_value(v)) &&
                       json_string_length(v) > 0);
        v = json_object_get(args, "description");
        if (v)
            FUZZ_CHECK(json_string_length(v) <= 140 && s_utf8(json_string_value(v)));
        v = json_object_get(args, "emojis"); /* the seed's cut: at most 6 elements */
        if (v)
            FUZZ_CHECK(json_is_array(v) && json_array_size(v) <= 6);
        v = json_object_get(args, "room_hash");
        if (v)
            FUZZ_CHECK(sos_room_hash_valid(json_string_value(v), json_string_length(v)));
    }
    json_decref(args);
    json_decref(j);
    free(path);
    return 0;
}
