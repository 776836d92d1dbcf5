/*  libFuzzer target: referral's configuration parser (services/referral/config.c) never crashes,
    leaks or hangs on any bytes; a refusal names "fuzz.conf:<line>: " and a reason; an accepted
    configuration holds together: every rule, roster line, partner and SLA names a declared
    unit, every unit has an SLA for every priority, and the business clock arithmetic on it is
    monotonic and its own inverse. config.c is compiled in (fuzz targets link glshared only). */
#include "../../services/referral/config.c"
#include <stdint.h>

static void
s_check (const rf_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_rules; i++)
        if (!rf_config_unit (cfg, cfg->rules[i].unit)
            || (cfg->rules[i].partner[0] && !rf_config_partner (cfg, cfg->rules[i].partner)))
            abort ();
    for (size_t i = 0; i < cfg->n_roster; i++)
        if (!rf_config_unit (cfg, cfg->roster[i].unit))
            abort ();
    for (size_t i = 0; i < cfg->n_partners; i++)
        if (!rf_config_unit (cfg, cfg->partners[i].unit))
            abort ();
    for (size_t i = 0; i < cfg->n_units; i++)
        for (int p = 0; p < RF_PRIORITY__COUNT; p++)
            if (!rf_config_sla (cfg, cfg->units[i].code, (rf_priority_t) p))
                abort ();
    if (!rf_config_unit (cfg, cfg->emergency_unit))
        abort ();
    int64_t t = INT64_C(1767571200000) + 3 * 3600000;
    for (int64_t d = 60000; d < INT64_C(400) * 3600000; d = d * 3 + 7) {
        int64_t end = rf_config_business_add (cfg, false, t, d);
        if (end < t + d && cfg->n_hours == 0)
            abort ();
        if (end < t)
            abort ();
        //  Ten years without business hours falls back to wall time; otherwise exact.
        if (end - t < INT64_C(3650) * 86400000 && rf_config_business_between (cfg, false, t, end) != d)
            abort ();
    }
    rf_uid_t a, b;
    rf_config_on_duty (cfg, cfg->emergency_unit, t, a, b);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err[256] = "";
    rf_config_t *cfg = rf_config_parse ("fuzz.conf", (const char *) data, size, err, sizeof err);
    if (!cfg) {
        if (strncmp (err, "fuzz.conf:", 10) != 0 || !strstr (err + 10, ": "))
            abort ();
        return 0;
    }
    s_check (cfg);
    rf_config_destroy (&cfg);
    return 0;
}
