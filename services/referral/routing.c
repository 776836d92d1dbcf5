/*  routing — which unit (or partner) a referral goes to.

    The rules of the configuration are tried in file order; the first whose category, location,
    language and priority all match wins, and the default catches the rest:
      - category "*" matches anything; a category matches itself and its subcategories
        ("gbv" matches "gbv.at_risk"; "gbv.at_risk" matches only itself);
      - location "*" matches anything, including none; a code matches only itself;
      - language "*" matches anything; "ar" matches "ar" and "ar-SY";
      - priority "*" matches any priority.
    A partner receives the referral only when the person consented to sharing it outside the
    agency; without consent it goes to the unit that follows the partner's referrals.
*/
#include "referral.h"
#include <string.h>

static bool
s_category_match (const char *pattern, const char *category)
{
    if (strcmp (pattern, "*") == 0)
        return true;
    size_t n = strlen (pattern);
    return strncmp (pattern, category, n) == 0 && (category[n] == 0 || category[n] == '.');
}

static bool
s_language_match (const char *pattern, const char *language)
{
    if (strcmp (pattern, "*") == 0)
        return true;
    if (!language || !*language)
        return false;
    size_t n = strlen (pattern);
    return strncasecmp (pattern, language, n) == 0 && (language[n] == 0 || language[n] == '-');
}

static bool
s_location_match (const char *pattern, const char *location)
{
    return strcmp (pattern, "*") == 0 || (location && strcmp (pattern, location) == 0);
}

int
rf_route (const rf_config_t *cfg, const char *category, const char *location,
          const char *language, rf_priority_t priority, bool consent, rf_route_t *out)
{
    memset (out, 0, sizeof *out);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const rf_rule_t *r = &cfg->rules[i];
        if (!r->is_default
            && (!s_category_match (r->category, category) || !s_location_match (r->location, location)
                || !s_language_match (r->language, language)
                || (r->priority != -1 && r->priority != (int) priority)))
            continue;
        strcpy (out->unit, r->unit);
        if (r->partner[0] && consent)
            strcpy (out->partner, r->partner);
        out->rule_line = r->line;
        out->rule_index = i;
        out->by_default = r->is_default;
        return 0;
    }
    return -1;
}
