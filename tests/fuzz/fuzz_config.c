/*  fuzz_config.c: libFuzzer target for sosnode's config file parser (node/sos_config): ZPL text
    through czmq's zconfig into the settings, then the checks the daemon makes before it starts. */
#include <czmq.h>

#include "fuzz_common.h"
#include "sos_config.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sos_config_t cfg; /* static: PATH_MAX and the genesis list make it large */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';

    char err[512];
    memset(err, 0x55, sizeof err);
    sos_config_defaults(&cfg);
    sos_rc rc = sos_config_load_str(&cfg, text, err, sizeof err);
    if (rc) {
        FUZZ_CHECK(rc == SOS_ERR_INVALID && memchr(err, '\0', sizeof err) != NULL);
    } else {
        FUZZ_CHECK(cfg.n_genesis <= SOS_GENESIS_MAX);
        FUZZ_CHECK(memchr(cfg.data_dir, '\0', sizeof cfg.data_dir) &&
                   memchr(cfg.listen, '\0', sizeof cfg.listen) &&
                   memchr(cfg.advertise, '\0', sizeof cfg.advertise));
        if (sos_config_validate(&cfg, err, sizeof err) == SOS_OK)
            FUZZ_CHECK(strncmp(cfg.advertise, "tcp://", 6) == 0 && cfg.data_dir[0] != '\0');
    }
    free(text);
    return 0;
}
