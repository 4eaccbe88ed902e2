/*
 * libFuzzer harness for the configuration parser: the input is YAML text given to
 * cfg_parse(). It must never crash, hang or leak, and a rejected input must come with a
 * message. cfg_parse() reads no files, so any input is safe to try.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/cfg.h"
#include "fennec/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    cfg_t *cfg = NULL;
    memset(err, 0, sizeof(err));
    int rc = cfg_parse((const char *)data, size, "fuzz.yaml", &cfg, err, sizeof(err));
    if (rc == 0) {
        if (!cfg || cfg->dns_count == 0 || !cfg->dns) {
            fprintf(stderr, "accepted config without a DNS listener\n");
            abort();
        }
        for (size_t i = 0; i < cfg->zone_count; i++) {
            if (!cfg->zones[i].name || (!cfg->zones[i].file && !cfg->zones[i].text)) {
                fprintf(stderr, "accepted zone %zu without a name or a source\n", i);
                abort();
            }
        }
        cfg_free(cfg);
        return 0;
    }
    if (err[0] == 0 || err[sizeof(err) - 1] != 0) {
        fprintf(stderr, "rejected config (%d) without a message\n", rc);
        abort();
    }
    return 0;
}
