/*  referral.route_preview: where a referral would go, asked before it is requested. gl-referral
    as a process against a private redis-server, its business clock in a file; the test plays
    intake (the forwarded request, then referral.requested with the same inputs as "intake-1").

    For each case the preview's unit, partner, rule line and deadlines are compared with what
    referral then does with a real referral.requested of the same inputs at the same business
    time: a rule naming a unit, a partner rule with and without consent, a unit's own SLA line,
    and a category no rule matches (the default catches it). Malformed and unknown query
    parameters answer 400 naming the field; a caller without a staff role 403.

    ctest: timeout=120 */
#include "test_referral_env.h"

#define T_AGNT  "[\"agent\"]"

static int
t_setup (void **state)
{
    if (t_env_setup () < 0)
        return -1;
    s_referral = t_spawn_referral ();
    return s_referral > 0 ? 0 : -1;
}

static int
t_teardown (void **state)
{
    t_env_teardown ();
    return 0;
}

//  The preview of category/priority/consent (language "ar", as t_request_referral sends), as
//  an agent.
static json_t *
t_preview (const char *category, const char *priority, bool consent)
{
    char query[256];
    snprintf (query, sizeof query,
              "{\"category\":\"%s\",\"priority\":\"%s\",\"consent\":\"%s\",\"language\":\"ar\"}",
              category, priority, consent ? "true" : "false");
    return t_expect (200, NULL, NULL, "referral.route_preview", AGENT, T_AGNT, "[]", NULL, query,
                     NULL, NULL);
}

//  Request a real referral with the same inputs and check referral.routed against preview.
static void
t_same_as_real (const json_t *preview, const char *category, const char *priority, bool consent)
{
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    t_request_referral (id, category, priority, consent);
    json_t *evs = t_wait_events ("referral.routed", id, 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_s (data, "unit", NULL), t_s (preview, "unit", "code"));
    const json_t *partner = json_object_get (preview, "partner");
    if (json_is_null (partner))
        assert_true (json_is_null (json_object_get (data, "partner")));
    else
        assert_string_equal (t_s (data, "partner", NULL), t_s (partner, "code", NULL));
    assert_int_equal (t_i (data, "rule_line", NULL), t_i (preview, "rule", "line"));
    assert_int_equal (json_is_true (json_object_get (data, "by_default")),
                      json_is_true (json_object_get (json_object_get (preview, "rule"), "default")));
    assert_int_equal (json_is_true (json_object_get (data, "sensitive")),
                      json_is_true (json_object_get (preview, "sensitive")));
    //  The clock has not moved: the deadlines are the ones the preview announced.
    assert_int_equal (t_i (data, "ack_due", NULL), t_i (preview, "sla", "ack_due"));
    assert_int_equal (t_i (data, "resolve_due", NULL), t_i (preview, "sla", "resolve_due"));
    json_decref (evs);
}

static void
test_preview_matches_routing (void **state)
{
    t_wait_up ();
    //  A rule naming a unit (line 16: "rule legal * * * legal"), business hours.
    json_t *p = t_preview ("legal.residency", "normal", true);
    assert_string_equal (t_s (p, "unit", "code"), "legal");
    assert_true (json_is_null (json_object_get (p, "partner")));
    assert_int_equal (t_i (p, "rule", "line"), 16);
    assert_false (json_is_true (json_object_get (json_object_get (p, "rule"), "default")));
    assert_string_equal (t_s (p, "rule", "category"), "legal");
    assert_string_equal (t_s (p, "rule", "target"), "legal");
    assert_int_equal (t_i (p, "sla", "ack_ms"), 4 * T_H);
    assert_int_equal (t_i (p, "sla", "resolve_ms"), 72 * T_H);
    assert_true (json_is_true (json_object_get (json_object_get (p, "sla"), "business_hours")));
    assert_int_equal (t_i (p, "sla", "ack_due"), T_MON9 + 4 * T_H);
    assert_int_equal (t_i (p, "sla", "resolve_due"), T_MON9 + 11 * 24 * T_H);
    assert_int_equal (t_i (p, "now", NULL), T_MON9);
    t_same_as_real (p, "legal.residency", "normal", true);
    json_decref (p);

    //  The unit's own SLA line for high ("sla legal high ack=1h resolve=1d").
    p = t_preview ("legal", "high", true);
    assert_int_equal (t_i (p, "sla", "ack_ms"), T_H);
    assert_int_equal (t_i (p, "sla", "resolve_ms"), 24 * T_H);
    t_same_as_real (p, "legal", "high", true);
    json_decref (p);

    //  A partner rule: the partner with consent, its follow-up unit without.
    p = t_preview ("legal.legal_aid", "normal", true);
    assert_string_equal (t_s (p, "unit", "code"), "legal");
    assert_string_equal (t_s (p, "partner", "code"), "nrc");
    assert_string_equal (t_s (p, "rule", "target"), "partner:nrc");
    assert_true (json_is_null (json_object_get (p, "partner_without_consent")));
    t_same_as_real (p, "legal.legal_aid", "normal", true);
    json_decref (p);
    p = t_preview ("legal.legal_aid", "emergency", false);
    assert_string_equal (t_s (p, "unit", "code"), "legal");
    assert_true (json_is_null (json_object_get (p, "partner")));
    assert_string_equal (t_s (p, "partner_without_consent", NULL), "nrc");
    //  Priority emergency runs on wall time: 3 days are 72 hours, not 9 business days.
    assert_false (json_is_true (json_object_get (json_object_get (p, "sla"), "business_hours")));
    assert_int_equal (t_i (p, "sla", "resolve_due"), T_MON9 + 72 * T_H);
    t_same_as_real (p, "legal.legal_aid", "emergency", false);
    json_decref (p);

    //  A sensitive unit.
    p = t_preview ("gbv.disclosure", "normal", true);
    assert_string_equal (t_s (p, "unit", "code"), "gbv");
    assert_true (json_is_true (json_object_get (p, "sensitive")));
    assert_true (json_is_true (json_object_get (json_object_get (p, "unit"), "sensitive")));
    t_same_as_real (p, "gbv.disclosure", "normal", true);
    json_decref (p);

    //  No rule matches: the default line (17) catches it, and the preview says so.
    p = t_preview ("education.school", "low", true);
    assert_string_equal (t_s (p, "unit", "code"), "protection");
    assert_true (json_is_true (json_object_get (json_object_get (p, "rule"), "default")));
    assert_int_equal (t_i (p, "rule", "line"), 17);
    assert_null (json_object_get (json_object_get (p, "rule"), "category"));
    assert_true (json_is_true (json_object_get (json_object_get (p, "unit"), "always_open")));
    assert_false (json_is_true (json_object_get (json_object_get (p, "sla"), "business_hours")));
    t_same_as_real (p, "education.school", "low", true);
    json_decref (p);
}

static void
test_preview_bad_query (void **state)
{
    static const struct {
        const char *query, *code, *field;
    } cases[] = {
        { "{\"priority\":\"normal\",\"consent\":\"true\"}", "missing_field", "category" },
        { "{\"category\":\"Legal!\",\"priority\":\"normal\",\"consent\":\"true\"}", "invalid_field",
          "category" },
        { "{\"category\":\"legal.a.b\",\"priority\":\"normal\",\"consent\":\"true\"}",
          "invalid_field", "category" },
        { "{\"category\":\"legal\",\"consent\":\"true\"}", "missing_field", "priority" },
        { "{\"category\":\"legal\",\"priority\":\"urgent\",\"consent\":\"true\"}", "invalid_field",
          "priority" },
        { "{\"category\":\"legal\",\"priority\":\"normal\"}", "missing_field", "consent" },
        { "{\"category\":\"legal\",\"priority\":\"normal\",\"consent\":\"yes\"}", "invalid_field",
          "consent" },
        { "{\"category\":\"legal\",\"priority\":\"normal\",\"consent\":\"true\",\"language\":\"a\"}",
          "invalid_field", "language" },
        { "{\"category\":\"legal\",\"priority\":\"normal\",\"consent\":\"true\","
          "\"language\":\"ar_SY\"}",
          "invalid_field", "language" },
        { "{\"category\":\"legal\",\"priority\":\"normal\",\"consent\":\"true\","
          "\"location\":\"a b\"}",
          "invalid_field", "location" },
        { "{\"category\":\"legal\",\"priority\":\"normal\",\"consent\":\"true\",\"location\":\"\"}",
          "invalid_field", "location" },
        { "{\"category\":\"legal\",\"priority\":\"normal\",\"consent\":\"true\",\"unit\":\"gbv\"}",
          "unknown_field", "unit" },
        { "{\"category\":\"legal\",\"priority\":7,\"consent\":\"true\"}", "invalid_field",
          "priority" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        json_decref (t_expect (400, cases[i].code, cases[i].field, "referral.route_preview", AGENT,
                               T_AGNT, "[]", NULL, cases[i].query, NULL, NULL));
    //  Well-formed optional inputs are accepted.
    json_t *p = t_expect (200, NULL, NULL, "referral.route_preview", AGENT, T_AGNT, "[]", NULL,
                          "{\"category\":\"legal\",\"priority\":\"normal\",\"consent\":\"false\","
                          "\"language\":\"ar-SY\",\"location\":\"zaatari\"}",
                          NULL, NULL);
    assert_string_equal (t_s (p, "unit", "code"), "legal");
    json_decref (p);
}

static void
test_preview_roles (void **state)
{
    const char *q = "{\"category\":\"legal\",\"priority\":\"normal\",\"consent\":\"true\"}";
    json_decref (t_expect (403, "forbidden", NULL, "referral.route_preview", AGENT,
                           "[\"api_client\"]", "[]", NULL, q, NULL, NULL));
    json_decref (t_expect (403, "forbidden", NULL, "referral.route_preview", AGENT, "[]", "[]",
                           NULL, q, NULL, NULL));
    static const char *const staff[] = { "[\"supervisor\"]", "[\"protection\"]", "[\"admin\"]",
                                         NULL };
    for (size_t i = 0; staff[i]; i++)
        json_decref (t_expect (200, NULL, NULL, "referral.route_preview", SUP, staff[i], "[]",
                               NULL, q, NULL, NULL));
    json_decref (t_expect (400, "invalid_field", "caller.user_id", "referral.route_preview",
                           "nobody", T_AGNT, "[]", NULL, q, NULL, NULL));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_preview_matches_routing),
        cmocka_unit_test (test_preview_bad_query),
        cmocka_unit_test (test_preview_roles),
        cmocka_unit_test (test_clean_stop),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
