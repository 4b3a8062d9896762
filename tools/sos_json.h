/*  sos_json.h: msgpack objects as jansson JSON values, for the tools' --json output.
    Generic: any document a node sends converts, whatever its fields. */
#ifndef SOS_JSON_H
#define SOS_JSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

/*  Deepest nesting converted; deeper documents give NULL. */
#define SOS_JSON_MAX_DEPTH 32

/*  Convert o to a new JSON value (a new reference the caller releases with json_decref), or
    NULL if o is NULL, nests deeper than SOS_JSON_MAX_DEPTH or allocation fails.

        nil -> null, bool -> true/false, positive and negative integers -> integer (an
        unsigned integer above INT64_MAX becomes a real), float32/float64 -> real (NaN and
        infinities, which JSON cannot hold, become null), str -> string, bin -> string of
        its standard base64 (with padding), ext -> object {"type": n, "data": base64},
        array -> array, map -> object.

    Strings that are not valid UTF-8 are converted with each bad byte replaced by U+FFFD, as
    are map keys. A map key that is an integer becomes its decimal text; a key of any other
    type becomes the compact JSON of the key. When a key repeats, the last value wins. */
json_t *sos_json_from_mp(const msgpack_object *o);

/*  A new JSON string of s[0..len), with invalid UTF-8 bytes replaced by U+FFFD. NULL on
    allocation failure. */
json_t *sos_json_string_lossy(const char *s, size_t len);

/*  A new NUL-terminated text of o for humans, which the caller frees with free(): a str or
    bin as its bytes (bin as base64), anything else as compact JSON. NULL on failure. */
char *sos_json_text(const msgpack_object *o);

#endif
