/*  sos_identity.c: the node's Ed25519 key pair on disk, signing and verifying, and the
    shared helpers for hex and clocks. A thin layer over libsodium. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sos_identity.h"

sos_rc
sos_crypto_init(void)
{
    return sodium_init() < 0 ? SOS_ERR_CRYPTO : SOS_OK;
}

/*  The file holds libsodium's 64-byte secret key as it is (seed, then public key). A key is
    valid only if the public half is the one the seed derives; anything else is not ours. */
static sos_rc
s_identity_read(sos_identity_t *id, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return SOS_ERR_IO;
    if (!S_ISREG(st.st_mode) || st.st_size != SOS_SECRET_BYTES)
        return SOS_ERR_CORRUPT;

    size_t got = 0;
    while (got < SOS_SECRET_BYTES) {
        ssize_t n = read(fd, id->sk + got, SOS_SECRET_BYTES - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return SOS_ERR_IO;
        if (n == 0)
            return SOS_ERR_CORRUPT; /* shrank under us */
        got += (size_t)n;
    }

    uint8_t seed[crypto_sign_SEEDBYTES];
    uint8_t sk[SOS_SECRET_BYTES];
    crypto_sign_ed25519_sk_to_seed(seed, id->sk);
    crypto_sign_seed_keypair(id->pk, sk, seed);
    int same = sodium_memcmp(sk, id->sk, SOS_SECRET_BYTES);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    if (same != 0) {
        sos_identity_wipe(id);
        return SOS_ERR_CORRUPT;
    }
    return SOS_OK;
}

static sos_rc
s_write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return SOS_ERR_IO;
        data += n;
        len -= (size_t)n;
    }
    return SOS_OK;
}

/*  Make the rename durable: fsync the directory that holds path. */
static void
s_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static sos_rc
s_identity_create(sos_identity_t *id, const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) >= (int)sizeof tmp)
        return SOS_ERR_INVALID;
    int fd = mkstemp(tmp); /* created with mode 0600 */
    if (fd < 0)
        return SOS_ERR_IO;

    sos_identity_generate(id);
    sos_rc rc = SOS_OK;
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0)
        rc = SOS_ERR_IO;
    if (!rc)
        rc = s_write_all(fd, id->sk, SOS_SECRET_BYTES);
    if (!rc && fsync(fd) != 0)
        rc = SOS_ERR_IO;
    if (close(fd) != 0 && !rc)
        rc = SOS_ERR_IO;
    if (!rc && rename(tmp, path) != 0)
        rc = SOS_ERR_IO;
    if (rc) {
        unlink(tmp);
        sos_identity_wipe(id);
        return rc;
    }
    s_sync_dir(path);
    return SOS_OK;
}

sos_rc
sos_identity_load_or_create(sos_identity_t *id, const char *path, bool *created)
{
    assert(id);
    if (created)
        *created = false;
    if (!path || !*path)
        return SOS_ERR_INVALID;

    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        sos_rc rc = s_identity_read(id, fd);
        close(fd);
        return rc;
    }
    if (errno == ELOOP)
        return SOS_ERR_CORRUPT; /* a symlink where the key should be */
    if (errno != ENOENT)
        return SOS_ERR_IO;

    sos_rc rc = s_identity_create(id, path);
    if (!rc && created)
        *created = true;
    return rc;
}

void
sos_identity_generate(sos_identity_t *id)
{
    assert(id);
    crypto_sign_keypair(id->pk, id->sk);
}

void
sos_identity_wipe(sos_identity_t *id)
{
    if (id)
        sodium_memzero(id->sk, sizeof id->sk);
}

sos_rc
sos_identity_curve_keys(uint8_t pk[SOS_CURVE_KEY_BYTES], uint8_t sk[SOS_CURVE_KEY_BYTES],
                        const sos_identity_t *id)
{
    if (crypto_sign_ed25519_pk_to_curve25519(pk, id->pk) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(sk, id->sk) != 0) {
        sodium_memzero(sk, SOS_CURVE_KEY_BYTES);
        return SOS_ERR_CRYPTO;
    }
    return SOS_OK;
}

sos_rc
sos_nodeid_to_curve(uint8_t pk[SOS_CURVE_KEY_BYTES], const uint8_t node_id[SOS_NODEID_BYTES])
{
    return crypto_sign_ed25519_pk_to_curve25519(pk, node_id) == 0 ? SOS_OK : SOS_ERR_CRYPTO;
}

void
sos_sign(uint8_t sig[SOS_SIG_BYTES], const uint8_t *msg, size_t len, const sos_identity_t *id)
{
    assert(sig && id && (msg || len == 0));
    crypto_sign_detached(sig, NULL, msg, len, id->sk);
}

sos_rc
sos_verify(const uint8_t sig[SOS_SIG_BYTES], const uint8_t *msg, size_t len,
           const uint8_t pk[SOS_NODEID_BYTES])
{
    assert(sig && pk && (msg || len == 0));
    if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
        return SOS_ERR_SIGNATURE;
    return SOS_OK;
}

/*  The signatures in use for sos_sign_domain and sos_verify_domain: NULL for Ed25519 (see
    sos_sign_set_implementation). */
static const sos_sign_impl_t *s_sign_impl;

void
sos_sign_set_implementation(const sos_sign_impl_t *impl)
{
    s_sign_impl = impl && impl->sign && impl->verify ? impl : NULL;
}

void
sos_sign_domain(uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg, size_t len,
                const sos_identity_t *id)
{
    assert(sig && domain && id && (msg || len == 0));
    if (s_sign_impl) {
        s_sign_impl->sign(s_sign_impl->arg, sig, domain, msg, len, id);
        return;
    }
    crypto_sign_state st;
    crypto_sign_init(&st);
    crypto_sign_update(&st, (const unsigned char *)domain, strlen(domain) + 1);
    if (len)
        crypto_sign_update(&st, msg, len);
    crypto_sign_final_create(&st, sig, NULL, id->sk);
    sodium_memzero(&st, sizeof st);
}

sos_rc
sos_verify_domain(const uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg,
                  size_t len, const uint8_t pk[SOS_NODEID_BYTES])
{
    assert(sig && domain && pk && (msg || len == 0));
    if (s_sign_impl)
        return s_sign_impl->verify(s_sign_impl->arg, sig, domain, msg, len, pk);
    crypto_sign_state st;
    crypto_sign_init(&st);
    crypto_sign_update(&st, (const unsigned char *)domain, strlen(domain) + 1);
    if (len)
        crypto_sign_update(&st, msg, len);
    if (crypto_sign_final_verify(&st, (unsigned char *)sig, pk) != 0)
        return SOS_ERR_SIGNATURE;
    return SOS_OK;
}

char *
sos_hex(char *out, const uint8_t *bin, size_t len)
{
    assert(out && (bin || len == 0));
    return sodium_bin2hex(out, 2 * len + 1, bin, len);
}

bool
sos_unhex(uint8_t *out, size_t len, const char *hex)
{
    if (!out || !hex || strnlen(hex, 2 * len + 1) != 2 * len)
        return false;
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_hex2bin(out, len, hex, 2 * len, NULL, &bin_len, &end) != 0)
        return false;
    return bin_len == len && end == hex + 2 * len;
}

static uint64_t
s_clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*  The clocks in use: NULL for the real ones (see sos_clock_set_implementation). */
static const sos_clock_impl_t *s_clock_impl;

void
sos_clock_set_implementation(const sos_clock_impl_t *impl)
{
    s_clock_impl = impl && impl->now_ms && impl->mono_ms ? impl : NULL;
}

uint64_t
sos_now_ms(void)
{
    return s_clock_impl ? s_clock_impl->now_ms() : s_clock_ms(CLOCK_REALTIME);
}

uint64_t
sos_mono_ms(void)
{
    return s_clock_impl ? s_clock_impl->mono_ms() : s_clock_ms(CLOCK_MONOTONIC);
}
