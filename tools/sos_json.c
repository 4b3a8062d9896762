/*  sos_json.c: conversion of msgpack objects to jansson JSON values (see sos_json.h), used for
    the --json output of the tools. */
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sos_json.h"

//  Length of the valid UTF-8 sequence at s[0..len), or 0 if it is not one (overlong forms,
//  surrogates and code points above U+10FFFF are not valid)
static size_t
s_utf8_seq(const uint8_t *s, size_t len)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

json_t *
sos_json_string_lossy(const char *s, size_t len)
{
    json_t *str = json_stringn(s, len);
    if (str)
        return str;

    //  Not valid UTF-8: each bad byte becomes U+FFFD (3 bytes), so 3 * len bounds the copy
    if (len > SIZE_MAX / 3)
        return NULL;
    char *buf = (char *)malloc(3 * len + 1);
    if (!buf)
        return NULL;
    const uint8_t *in = (const uint8_t *)s;
    size_t out = 0;
    for (size_t i = 0; i < len;) {
        size_t n = s_utf8_seq(in + i, len - i);
        if (n) {
            memcpy(buf + out, in + i, n);
            out += n;
            i += n;
        } else {
            memcpy(buf + out, "\xef\xbf\xbd", 3);
            out += 3;
            i++;
        }
    }
    str = json_stringn(buf, out);
    free(buf);
    return str;
}

static json_t *
s_base64(const void *data, size_t len)
{
    size_t b64_len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = (char *)malloc(b64_len);
    if (!b64)
        return NULL;
    sodium_bin2base64(b64, b64_len, (const unsigned char *)data, len,
                      sodium_base64_VARIANT_ORIGINAL);
    json_t *str = json_string(b64);
    free(b64);
    return str;
}

static json_t *s_convert(const msgpack_object *o, int depth);

//  Set key = value in obj, taking the value's reference in any case
static int
s_object_set(json_t *obj, const msgpack_object *key, json_t *value, int depth)
{
    if (!value)
        return -1;
    json_t *key_str = NULL;
    if (key->type == MSGPACK_OBJECT_STR)
        key_str = sos_json_string_lossy(key->via.str.ptr, key->via.str.size);
    else if (key->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
             key->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        char text[24];
        if (key->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            snprintf(text, sizeof text, "%" PRIu64, key->via.u64);
        else
            snprintf(text, sizeof text, "%" PRId64, key->via.i64);
        key_str = json_string(text);
    } else {
        json_t *key_json = s_convert(key, depth + 1);
        char *text = key_json ? json_dumps(key_json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(key_json);
        if (text)
            key_str = json_string(text);
        free(text);
    }
    if (!key_str) {
        json_decref(value);
        return -1;
    }
    //  The key is valid UTF-8 here and may hold NUL bytes, hence the length form
    int rc =
        json_object_setn_new(obj, json_string_value(key_str), json_string_length(key_str), value);
    json_decref(key_str);
    return rc;
}

static json_t *
s_convert(const msgpack_object *o, int depth)
{
    if (!o || depth > SOS_JSON_MAX_DEPTH)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64))
            return json_null();
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return sos_json_string_lossy(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return s_base64(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return json_pack("{s:i, s:o}", "type", (json_int_t)o->via.ext.type, "data",
                         s_base64(o->via.ext.ptr, o->via.ext.size));
    case MSGPACK_OBJECT_ARRAY: {
        json_t *array = json_array();
        if (!array)
            return NULL;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (json_array_append_new(array, s_convert(&o->via.array.ptr[i], depth + 1))) {
                json_decref(array);
                return NULL;
            }
        }
        return array;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *obj = json_object();
        if (!obj)
            return NULL;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (s_object_set(obj, &kv->key, s_convert(&kv->val, depth + 1), depth)) {
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    }
    return NULL;
}

json_t *
sos_json_from_mp(const msgpack_object *o)
{
    return s_convert(o, 0);
}

char *
sos_json_text(const msgpack_object *o)
{
    if (!o)
        return NULL;
    if (o->type == MSGPACK_OBJECT_STR) {
        char *text = (char *)malloc(o->via.str.size + 1);
        if (text) {
            if (o->via.str.size) /* msgpack-c gives an empty str a NULL pointer */
                memcpy(text, o->via.str.ptr, o->via.str.size);
            text[o->via.str.size] = 0;
        }
        return text;
    }
    json_t *json = s_convert(o, 0);
    if (!json)
        return NULL;
    char *text;
    if (json_is_string(json))
        text = strdup(json_string_value(json)); //  a bin's base64
    else
        text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(json);
    return text;
}
