/*  test_identity.c: unit tests of protocol/sos_identity: the key file (create, load, refuse
    damaged files), signatures, hex and clocks. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto_test.h"

/* The X25519 key of the Ed25519 key pair made from the seed 00 01 02 .. 1f. */
#define S_SEED_CURVE_HEX "4701d08488451f545a409fb58ae3e58581ca40ac3f7f114698cd71deac73ca01"

static char s_dir[] = "/tmp/test_identity.XXXXXX";

static void
s_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", s_dir, name);
}

static void
s_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f);
    if (!f)
        return;
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
}

static void
s_test_key_file(void)
{
    SECTION("a new key file is created with mode 0600 and loaded back");
    char path[512];
    s_path(path, sizeof path, "key");
    sos_identity_t a, b;
    bool created = false;
    CHECK_RC(sos_identity_load_or_create(&a, path, &created), SOS_OK);
    CHECK(created);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == SOS_SECRET_BYTES);
    CHECK_RC(sos_identity_load_or_create(&b, path, &created), SOS_OK);
    CHECK(!created);
    CHECK(memcmp(a.pk, b.pk, SOS_NODEID_BYTES) == 0 && memcmp(a.sk, b.sk, SOS_SECRET_BYTES) == 0);
    CHECK_RC(sos_identity_load_or_create(&b, path, NULL), SOS_OK);

    SECTION("no temporary file is left beside the key");
    int n = 0;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", s_dir);
    FILE *p = popen(cmd, "r");
    CHECK(p && fscanf(p, "%d", &n) == 1 && n == 1);
    if (p)
        pclose(p);

    SECTION("wrong size, mismatched public half, directory and symlink are refused");
    char bad[512];
    s_path(bad, sizeof bad, "short");
    s_write_file(bad, a.sk, SOS_SECRET_BYTES - 1);
    CHECK_RC(sos_identity_load_or_create(&b, bad, &created), SOS_ERR_CORRUPT);
    s_path(bad, sizeof bad, "long");
    uint8_t longer[SOS_SECRET_BYTES + 1] = {0};
    memcpy(longer, a.sk, SOS_SECRET_BYTES);
    s_write_file(bad, longer, sizeof longer);
    CHECK_RC(sos_identity_load_or_create(&b, bad, &created), SOS_ERR_CORRUPT);
    s_path(bad, sizeof bad, "empty");
    s_write_file(bad, "", 0);
    CHECK_RC(sos_identity_load_or_create(&b, bad, &created), SOS_ERR_CORRUPT);
    s_path(bad, sizeof bad, "mismatch");
    uint8_t sk[SOS_SECRET_BYTES];
    memcpy(sk, a.sk, sizeof sk);
    sk[40] ^= 1; /* the public half no longer matches the seed */
    s_write_file(bad, sk, sizeof sk);
    CHECK_RC(sos_identity_load_or_create(&b, bad, &created), SOS_ERR_CORRUPT);
    s_path(bad, sizeof bad, "dir");
    CHECK(mkdir(bad, 0700) == 0);
    CHECK_RC(sos_identity_load_or_create(&b, bad, &created), SOS_ERR_CORRUPT);
    s_path(bad, sizeof bad, "link");
    CHECK(symlink(path, bad) == 0);
    CHECK_RC(sos_identity_load_or_create(&b, bad, &created), SOS_ERR_CORRUPT);
    CHECK(!created);

    SECTION("a key in a missing directory is an I/O error; an empty path is invalid");
    s_path(bad, sizeof bad, "nodir/key");
    CHECK_RC(sos_identity_load_or_create(&b, bad, &created), SOS_ERR_IO);
    CHECK_RC(sos_identity_load_or_create(&b, "", &created), SOS_ERR_INVALID);

    SECTION("wipe zeroes the secret key");
    sos_identity_wipe(&a);
    uint8_t zero[SOS_SECRET_BYTES] = {0};
    CHECK(memcmp(a.sk, zero, sizeof zero) == 0);
}

static void
s_test_sign(void)
{
    SECTION("sign and verify; another message, key or signature fails");
    sos_identity_t a, b;
    sos_identity_generate(&a);
    sos_identity_generate(&b);
    CHECK(memcmp(a.pk, b.pk, SOS_NODEID_BYTES) != 0);
    const uint8_t msg[] = "hello, overlay";
    uint8_t sig[SOS_SIG_BYTES];
    sos_sign(sig, msg, sizeof msg, &a);
    CHECK_RC(sos_verify(sig, msg, sizeof msg, a.pk), SOS_OK);
    CHECK_RC(sos_verify(sig, msg, sizeof msg - 1, a.pk), SOS_ERR_SIGNATURE);
    CHECK_RC(sos_verify(sig, msg, sizeof msg, b.pk), SOS_ERR_SIGNATURE);
    sig[0] ^= 1;
    CHECK_RC(sos_verify(sig, msg, sizeof msg, a.pk), SOS_ERR_SIGNATURE);
    sos_sign(sig, NULL, 0, &a);
    CHECK_RC(sos_verify(sig, NULL, 0, a.pk), SOS_OK);

    SECTION("signatures from the seed key are deterministic");
    sos_identity_t s1, s2;
    test_seed_identity(&s1, 0);
    test_seed_identity(&s2, 0);
    uint8_t sig2[SOS_SIG_BYTES];
    sos_sign(sig, msg, sizeof msg, &s1);
    sos_sign(sig2, msg, sizeof msg, &s2);
    CHECK(memcmp(sig, sig2, sizeof sig) == 0);
}

static void
s_test_sign_domain(void)
{
    SECTION("domain signatures: verify only in their own domain, never as plain Ed25519");
    sos_identity_t a, b;
    test_seed_identity(&a, 0);
    sos_identity_generate(&b);
    const uint8_t msg[] = "signed bytes";
    uint8_t sig[SOS_SIG_BYTES], again[SOS_SIG_BYTES];
    sos_sign_domain(sig, SOS_DOMAIN_RECORD, msg, sizeof msg, &a);
    CHECK_RC(sos_verify_domain(sig, SOS_DOMAIN_RECORD, msg, sizeof msg, a.pk), SOS_OK);
    CHECK_RC(sos_verify_domain(sig, SOS_DOMAIN_ENVELOPE, msg, sizeof msg, a.pk), SOS_ERR_SIGNATURE);
    CHECK_RC(sos_verify_domain(sig, SOS_DOMAIN_RECORD, msg, sizeof msg - 1, a.pk),
             SOS_ERR_SIGNATURE);
    CHECK_RC(sos_verify_domain(sig, SOS_DOMAIN_RECORD, msg, sizeof msg, b.pk), SOS_ERR_SIGNATURE);
    CHECK_RC(sos_verify(sig, msg, sizeof msg, a.pk), SOS_ERR_SIGNATURE);
    /*  The prefix's NUL is signed: a shorter prefix with the missing byte moved into the
        message is another signed text. */
    CHECK_RC(sos_verify_domain(sig, "sosnode/2/recor", (const uint8_t *)"d\0signed bytes",
                               sizeof "d\0signed bytes", a.pk),
             SOS_ERR_SIGNATURE);
    sos_sign(again, msg, sizeof msg, &a);
    CHECK_RC(sos_verify_domain(again, SOS_DOMAIN_RECORD, msg, sizeof msg, a.pk), SOS_ERR_SIGNATURE);
    sos_sign_domain(again, SOS_DOMAIN_RECORD, msg, sizeof msg, &a);
    CHECK(memcmp(sig, again, sizeof sig) == 0); /* deterministic, as Ed25519 */
    sos_sign_domain(sig, SOS_DOMAIN_ENVELOPE, NULL, 0, &a);
    CHECK_RC(sos_verify_domain(sig, SOS_DOMAIN_ENVELOPE, NULL, 0, a.pk), SOS_OK);
}

static void
s_test_hex(void)
{
    SECTION("hex round trip; unhex wants exactly 2 * len hex digits");
    const uint8_t bin[4] = {0x00, 0xab, 0x7f, 0xff};
    char hex[9];
    CHECK(sos_hex(hex, bin, sizeof bin) == hex && strcmp(hex, "00ab7fff") == 0);
    uint8_t out[4];
    CHECK(sos_unhex(out, sizeof out, "00ab7fff") && memcmp(out, bin, 4) == 0);
    CHECK(sos_unhex(out, sizeof out, "00AB7FFF") && memcmp(out, bin, 4) == 0);
    CHECK(!sos_unhex(out, sizeof out, "00ab7ff"));   /* short */
    CHECK(!sos_unhex(out, sizeof out, "00ab7fff0")); /* trailing */
    CHECK(!sos_unhex(out, sizeof out, "00ab7fffzz"));
    CHECK(!sos_unhex(out, sizeof out, "00ab7fzz"));
    CHECK(!sos_unhex(out, sizeof out, "00ab 7ff"));
    CHECK(!sos_unhex(out, sizeof out, ""));
    CHECK(!sos_unhex(out, sizeof out, NULL));
    CHECK(sos_unhex(out, 0, ""));
    CHECK(!sos_unhex(out, 0, "00"));
    char empty[1];
    CHECK(strcmp(sos_hex(empty, NULL, 0), "") == 0);
}

static void
s_test_clocks(void)
{
    SECTION("the wall clock is after 2023 and the monotonic clock does not go back");
    CHECK(sos_now_ms() > 1672531200000ULL);
    uint64_t m1 = sos_mono_ms();
    usleep(20 * 1000);
    uint64_t m2 = sos_mono_ms();
    CHECK(m2 >= m1 + 19);
}

static uint64_t s_fake_now = 1700000000000ULL, s_fake_mono = 42;
static uint64_t
s_fake_now_ms(void)
{
    return s_fake_now;
}
static uint64_t
s_fake_mono_ms(void)
{
    return s_fake_mono;
}

static void
s_test_clock_hook(void)
{
    SECTION("an injected clock replaces both clocks until NULL restores the real ones");
    static const sos_clock_impl_t fake = {s_fake_now_ms, s_fake_mono_ms};
    sos_clock_set_implementation(&fake);
    CHECK(sos_now_ms() == 1700000000000ULL && sos_mono_ms() == 42);
    s_fake_now += 5000;
    s_fake_mono += 5000;
    CHECK(sos_now_ms() == 1700000005000ULL && sos_mono_ms() == 5042);
    sos_clock_set_implementation(NULL);
    CHECK(sos_now_ms() > 1700000005000ULL && sos_mono_ms() != 5042);
    SECTION("an implementation missing a function is refused: the real clocks stay");
    static const sos_clock_impl_t half = {s_fake_now_ms, NULL};
    sos_clock_set_implementation(&half);
    CHECK(sos_now_ms() > 1700000005000ULL);
}

static void
s_test_curve(void)
{
    SECTION("the CURVE pair derived from an identity is a working X25519 pair");
    sos_identity_t a, b;
    sos_identity_generate(&a);
    sos_identity_generate(&b);
    uint8_t apk[SOS_CURVE_KEY_BYTES], ask[SOS_CURVE_KEY_BYTES];
    uint8_t bpk[SOS_CURVE_KEY_BYTES], bsk[SOS_CURVE_KEY_BYTES];
    CHECK(sos_identity_curve_keys(apk, ask, &a) == SOS_OK);
    CHECK(sos_identity_curve_keys(bpk, bsk, &b) == SOS_OK);
    uint8_t derived[SOS_CURVE_KEY_BYTES];
    CHECK(crypto_scalarmult_base(derived, ask) == 0);
    CHECK(memcmp(derived, apk, sizeof apk) == 0);
    SECTION("a node id alone gives the same public key as the node's own pair");
    uint8_t from_id[SOS_CURVE_KEY_BYTES];
    CHECK(sos_nodeid_to_curve(from_id, a.pk) == SOS_OK);
    CHECK(memcmp(from_id, apk, sizeof apk) == 0);
    CHECK(sos_nodeid_to_curve(from_id, b.pk) == SOS_OK);
    CHECK(memcmp(from_id, apk, sizeof apk) != 0);
    SECTION("both sides agree on the shared secret (what CURVE's handshake relies on)");
    uint8_t s1[crypto_scalarmult_BYTES], s2[crypto_scalarmult_BYTES];
    CHECK(crypto_scalarmult(s1, ask, bpk) == 0);
    CHECK(crypto_scalarmult(s2, bsk, apk) == 0);
    CHECK(memcmp(s1, s2, sizeof s1) == 0);
    SECTION("a known answer: the key of a fixed seed (also in soswire.py's test)");
    uint8_t seed[crypto_sign_SEEDBYTES];
    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)i;
    sos_identity_t k;
    crypto_sign_seed_keypair(k.pk, k.sk, seed);
    CHECK(sos_nodeid_to_curve(from_id, k.pk) == SOS_OK);
    char hex[2 * SOS_CURVE_KEY_BYTES + 1];
    sos_hex(hex, from_id, sizeof from_id);
    CHECK(strcmp(hex, S_SEED_CURVE_HEX) == 0);
    SECTION("an id that is no point on the curve gives no key");
    uint8_t bad[SOS_NODEID_BYTES];
    memset(bad, 0xff, sizeof bad);
    CHECK(sos_nodeid_to_curve(from_id, bad) != SOS_OK);
    sos_identity_wipe(&a);
    sos_identity_wipe(&b);
    sodium_memzero(ask, sizeof ask);
    sodium_memzero(bsk, sizeof bsk);
}

int
main(void)
{
    test_init("test_identity: keys, signatures, hex, clocks");
    CHECK(mkdtemp(s_dir));
    s_test_key_file();
    s_test_sign();
    s_test_sign_domain();
    s_test_hex();
    s_test_clocks();
    s_test_clock_hook();
    s_test_curve();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    CHECK(system(cmd) == 0);
    return test_done("test_identity");
}
