/*  sos_error.c: texts for the error codes of sos_error.h. */
#include "sos_error.h"

static const char *s_texts[SOS_ERR_MAX] = {
    [SOS_OK] = "success",
    [SOS_ERR_NOMEM] = "out of memory",
    [SOS_ERR_IO] = "I/O error",
    [SOS_ERR_INVALID] = "invalid argument",
    [SOS_ERR_NOT_FOUND] = "not found",
    [SOS_ERR_EXISTS] = "already exists",
    [SOS_ERR_MALFORMED] = "malformed input",
    [SOS_ERR_TOO_LARGE] = "too large",
    [SOS_ERR_SIGNATURE] = "bad signature",
    [SOS_ERR_VERSION] = "unknown version",
    [SOS_ERR_REPLAY] = "replayed or out-of-window message",
    [SOS_ERR_STALE] = "stale record",
    [SOS_ERR_FULL] = "capacity reached",
    [SOS_ERR_MAP_FULL] = "database map is full",
    [SOS_ERR_LOCKED] = "data directory is locked by another process",
    [SOS_ERR_CORRUPT] = "data directory is corrupt or not a sosnode store",
    [SOS_ERR_TIMEOUT] = "timed out",
    [SOS_ERR_CRYPTO] = "cryptographic primitive failed",
    [SOS_ERR_NO_SPACE] = "no space left on the data directory's device",
    [SOS_ERR_RECEIVER] = "message bound to another node",
    [SOS_ERR_PARTIAL] = "incomplete input",
};

const char *
sos_strerror(sos_rc rc)
{
    if ((unsigned)rc >= SOS_ERR_MAX || !s_texts[rc])
        return "unknown error";
    return s_texts[rc];
}
