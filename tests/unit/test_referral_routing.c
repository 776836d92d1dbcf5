/*  referral's routing table (services/referral/routing.c) against the shipped sample
    configuration and a table of its own: first match wins, categories match their
    subcategories (and nothing that merely starts with the same letters), language prefixes,
    locations, priorities, partners only with consent, the default; and the partners' signed
    acknowledgement tokens (partners.c): round trip, tampering, expiry, malformed input.
    The sources are compiled in (tests link glshared only). */
#include "../../services/referral/config.c"
#include "../../services/referral/partners.c"
#include "../../services/referral/routing.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static rf_config_t *
s_sample (void)
{
    char path[512], err[256] = "";
    const char *src = getenv ("GL_SOURCE_DIR");
    snprintf (path, sizeof path, "%s/config/referral.conf", src ? src : "../..");
    rf_config_t *cfg = rf_config_load (path, err, sizeof err);
    if (!cfg)
        fprintf (stderr, "%s\n", err);
    assert_non_null (cfg);
    return cfg;
}

typedef struct {
    const char *category, *location, *language, *priority;
    bool consent;
    const char *unit, *partner;
    bool by_default;
} s_case_t;

static void
s_check (const rf_config_t *cfg, const s_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const s_case_t *c = &cases[i];
        rf_route_t r;
        assert_int_equal (rf_route (cfg, c->category, c->location, c->language,
                                    (rf_priority_t) rf_priority_parse (c->priority), c->consent, &r),
                          0);
        if (strcmp (r.unit, c->unit) != 0 || strcmp (r.partner, c->partner) != 0)
            fprintf (stderr, "case %zu (%s): got %s/%s, want %s/%s\n", i, c->category, r.unit,
                     r.partner, c->unit, c->partner);
        assert_string_equal (r.unit, c->unit);
        assert_string_equal (r.partner, c->partner);
        assert_int_equal (r.by_default, c->by_default);
        assert_true (r.rule_line > 0);
        //  rule_index names the rule that matched (the route preview reads it).
        assert_true (r.rule_index < cfg->n_rules);
        assert_int_equal (cfg->rules[r.rule_index].line, r.rule_line);
        assert_int_equal (cfg->rules[r.rule_index].is_default, r.by_default);
    }
}

static void
test_sample_table (void **state)
{
    rf_config_t *cfg = s_sample ();
    const s_case_t cases[] = {
        { "gbv", NULL, "ar", "normal", true, "gbv", "", false },
        { "gbv.disclosure", NULL, "ar", "emergency", true, "gbv", "", false },
        { "psea.allegation", NULL, NULL, "high", false, "psea", "", false },
        { "child_protection.separated", "zaatari", "ar-SY", "high", true, "child_protection", "", false },
        { "protection_concern.detention", NULL, "fr", "high", true, "protection", "", false },
        //  The more specific rule comes first in the file and wins.
        { "registration.status", NULL, "en", "normal", true, "rsd", "", false },
        { "registration.renewal", NULL, "en", "normal", true, "registration", "", false },
        { "cash_assistance.payment", NULL, "ar", "low", true, "cbi", "", false },
        //  Partners: with consent the partner, without it the partner's unit.
        { "health.mental_health", NULL, "ar", "normal", true, "health", "irc_health", false },
        { "health.mental_health", NULL, "ar", "normal", false, "health", "", false },
        { "legal.legal_aid", NULL, "en", "normal", true, "legal", "nrc_legal", false },
        { "legal.residency", NULL, "en", "normal", true, "legal", "", false },
        { "health.access", NULL, "en", "high", true, "health", "", false },
        //  No category rule: an emergency goes to protection by the priority rule, anything
        //  else to the default.
        { "information_request.office", NULL, "en", "emergency", true, "protection", "", false },
        { "information_request.office", NULL, "en", "normal", true, "protection", "", true },
        { "other", NULL, NULL, "low", true, "protection", "", true },
    };
    s_check (cfg, cases, sizeof cases / sizeof cases[0]);
    rf_config_destroy (&cfg);
}

static void
test_own_table (void **state)
{
    const char *text =
        "unit a 24x7\nunit b\nunit c\nunit d\n"
        "roster a daily 00:00-24:00 a1000000000000000000000000000001\n"
        "partner p unit=c email=x@y.org\n"
        "rule health * ar high a\n"
        "rule health zaatari * * b\n"
        "rule health * * * partner:p\n"
        "rule he * * * d\n"
        "rule * * fr * d\n"
        "default c\n"
        "sla * * ack=1h resolve=1d\n"
        "escalation focal=1h supervisor=2h\n"
        "emergency a ack=5m repeat=1m\n"
        "ack_link https://x.org/ack ttl=1d\n";
    char err[256] = "";
    rf_config_t *cfg = rf_config_parse ("own.conf", text, strlen (text), err, sizeof err);
    if (!cfg)
        fprintf (stderr, "%s\n", err);
    assert_non_null (cfg);
    const s_case_t cases[] = {
        { "health.access", NULL, "ar-JO", "high", true, "a", "", false },    //  language prefix
        { "health.access", NULL, "AR", "high", true, "a", "", false },       //  any case
        { "health.access", NULL, "arc", "high", true, "c", "p", false },     //  not a prefix of "ar"
        { "health.access", "zaatari", "ar", "normal", true, "b", "", false },
        { "health.access", "azraq", "en", "normal", true, "c", "p", false },
        { "health.access", NULL, NULL, "normal", false, "c", "", false },    //  no consent
        { "healthcare", NULL, "en", "normal", true, "c", "", true },         //  not under "health"
        { "he", NULL, "en", "normal", true, "d", "", false },
        { "other", NULL, "fr-CA", "low", true, "d", "", false },
        { "other", NULL, "en", "low", true, "c", "", true },
    };
    s_check (cfg, cases, sizeof cases / sizeof cases[0]);
    //  Without a default nothing matches (the loader refuses such a file; the function says -1).
    cfg->n_rules = 2;
    rf_route_t r;
    assert_int_equal (rf_route (cfg, "other", NULL, NULL, RF_LOW, true, &r), -1);
    rf_config_destroy (&cfg);
}

static void
test_partner_tokens (void **state)
{
    rf_config_t *cfg = s_sample ();
    const char *id = "0123456789abcdef0123456789abcdef";
    char token[256], rid[GL_ID_LEN + 1], partner[RF_CODE_MAX + 1];
    int64_t now = INT64_C(1767571200000);
    assert_int_equal (rf_partner_token (cfg, id, "nrc_legal", now + 1000, token, sizeof token), 0);
    assert_int_equal (rf_partner_token_check (cfg, token, now, rid, partner), 0);
    assert_string_equal (rid, id);
    assert_string_equal (partner, "nrc_legal");
    //  Expired.
    assert_int_equal (rf_partner_token_check (cfg, token, now + 1001, rid, partner), -2);
    //  Every single changed character breaks it.
    size_t n = strlen (token);
    for (size_t i = 0; i < n; i++) {
        char bad[256];
        strcpy (bad, token);
        bad[i] = bad[i] == '1' ? '2' : '1';
        if (strcmp (bad, token) == 0)
            continue;
        assert_int_equal (rf_partner_token_check (cfg, bad, now, rid, partner), -1);
    }
    //  Another key does not verify it.
    rf_config_t *other = s_sample ();
    strcpy (other->signing_key, "another-key-another-key-another-key-0000");
    assert_int_equal (rf_partner_token_check (other, token, now, rid, partner), -1);
    rf_config_destroy (&other);
    //  Malformed input.
    static const char *const junk[] = { "", ".", "....", "x.y.z.w", "0123456789abcdef0123456789abcdef",
                                        NULL };
    for (size_t i = 0; junk[i]; i++)
        assert_int_equal (rf_partner_token_check (cfg, junk[i], now, rid, partner), -1);
    assert_int_equal (rf_partner_token_check (cfg, NULL, now, rid, partner), -1);
    char longer[400];
    memset (longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    assert_int_equal (rf_partner_token_check (cfg, longer, now, rid, partner), -1);
    //  Too small a buffer is refused, not cut.
    assert_int_equal (rf_partner_token (cfg, id, "nrc_legal", now, token, 40), -1);
    rf_config_destroy (&cfg);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_sample_table),
        cmocka_unit_test (test_own_table),
        cmocka_unit_test (test_partner_tokens),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
