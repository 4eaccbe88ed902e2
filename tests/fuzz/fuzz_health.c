/*
 * libFuzzer harness for the health section of the configuration: the input is the text of a
 * `health:` section, as it comes from a file or from a health-config entry of the log. It
 * must be parsed or refused with a message naming the place, never crash, leak or hang; what
 * parses must parse again from its own kept text into an equal definition.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fennec/common.h"
#include "fennec/health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    health_config_t *hc = NULL, *again = NULL;
    char err[512] = "";
    int rc = health_config_parse((const char *)data, size, "fuzz.yaml", "/etc/fennec", 3, &hc, err,
                                 sizeof(err));
    if (rc != 0) {
        if (rc != FENNEC_ECONFIG && rc != -ENOMEM)
            abort();
        if (rc == FENNEC_ECONFIG && strncmp(err, "fuzz.yaml:", 10) != 0)
            abort(); /* a refusal names the place */
        return 0;
    }
    if (health_config_parse(hc->yaml, hc->yaml_len, hc->name, hc->base, hc->first_line, &again, err,
                            sizeof(err)) != 0 ||
        !health_config_equal(hc, again))
        abort();
    for (size_t i = 0; i < hc->pool_count; i++)
        for (size_t k = 0; k < hc->pools[i].member_count; k++)
            if (hc->pools[i].members[k].check < 0 ||
                (size_t)hc->pools[i].members[k].check >= hc->check_count)
                abort();
    health_config_unref(again);
    health_config_unref(hc);
    return 0;
}
