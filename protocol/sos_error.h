/*  sos_error.h: the one error type of sosnode.
    Every module converts foreign codes (LMDB, libsodium, zmq, errno) to these at its edge. */
#ifndef SOS_ERROR_H
#define SOS_ERROR_H

typedef enum {
    SOS_OK = 0,
    SOS_ERR_NOMEM,     /* allocation failed */
    SOS_ERR_IO,        /* file or socket I/O failed (see errno in the log line) */
    SOS_ERR_INVALID,   /* a caller-supplied argument is invalid */
    SOS_ERR_NOT_FOUND, /* no such key / record / room */
    SOS_ERR_EXISTS,    /* key already present */
    SOS_ERR_MALFORMED, /* bytes from the wire or disk do not decode */
    SOS_ERR_TOO_LARGE, /* a length or count exceeds its ceiling */
    SOS_ERR_SIGNATURE, /* an Ed25519 signature does not verify */
    SOS_ERR_VERSION,   /* unknown protocol or record version */
    SOS_ERR_REPLAY,    /* timestamp outside the window, or nonce seen before */
    SOS_ERR_STALE,     /* a record older than or equal to what we hold */
    SOS_ERR_FULL,      /* a cap (per origin or total) is reached */
    SOS_ERR_MAP_FULL,  /* the LMDB map is full */
    SOS_ERR_LOCKED,    /* the data directory is in use by another process */
    SOS_ERR_CORRUPT,   /* the data directory is damaged or not ours */
    SOS_ERR_TIMEOUT,   /* no answer in time */
    SOS_ERR_CRYPTO,    /* a libsodium primitive failed (other than verify) */
    SOS_ERR_NO_SPACE,  /* the file system of the data directory is full (or over quota) */
    SOS_ERR_RECEIVER,  /* a gossip envelope bound to another node */
    SOS_ERR_PARTIAL,   /* input ends before the object does: more bytes are needed */
    SOS_ERR_MAX
} sos_rc;

/*  Return a short, static, human-readable text for rc. Never NULL. */
const char *sos_strerror(sos_rc rc);

#endif
