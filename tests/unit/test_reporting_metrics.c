/*  reporting's aggregates and metrics, in process: a fixture day of calls and agent states with
    hand-computed ASA, abandonment, service level, AHT and occupancy; contacts with a repeat
    (first-contact resolution), a correction and AGD fields; duplicates, unknown types and
    impossible values; the first day of the week and weekend days; the counter store's encoding;
    the Poisson test and the Benjamini-Hochberg adjustment; the statistical export's small-cell
    suppression; the CSV export. The service's sources are compiled in.
*/
#include "../../services/reporting/store.c"
#include "../../services/reporting/aggregates.c"
#include "../../services/reporting/metrics.c"
#include "../../services/reporting/trends.c"
#include "../../services/reporting/export.c"
#include "../../services/reporting/html.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define T_DAY   INT64_C(1773100800000)     //  2026-03-10T00:00:00Z, a Tuesday
#define T_H(h, m, s) (T_DAY + ((h) * 3600 + (m) * 60 + (s)) * INT64_C(1000))

static rep_agg_t *s_agg;

static gl_event_t *
t_event (const char *type, int64_t ts, const char *json)
{
    gl_event_t *ev = gl_event_new (type);
    assert_non_null (ev);
    json_error_t err;
    json_t *data = json_loads (json, 0, &err);
    if (!data)
        fprintf (stderr, "bad fixture %s: %s\n", json, err.text);
    assert_non_null (data);
    json_decref (ev->data);
    ev->data = data;
    ev->ts = ts;
    return ev;
}

static void
t_apply (const char *type, int64_t ts, const char *fmt, ...)
{
    char json[2048];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (json, sizeof json, fmt, ap);
    va_end (ap);
    gl_event_t *ev = t_event (type, ts, json);
    assert_int_equal (rep_agg_apply (s_agg, ev), 0);
    gl_event_destroy (&ev);
}

//  A call's common fields.
#define T_CALL "\"call_id\":\"%s\",\"line\":\"main\",\"language\":\"%s\",\"priority\":\"normal\"," \
               "\"clock\":\"pbx\",\"at\":%lld,\"step\":%d"

static void
t_offered (const char *id, const char *lang, int64_t at)
{
    t_apply ("call.offered", at, "{" T_CALL ",\"position\":1}", id, lang, (long long) at, 1);
}

static void
t_answered (const char *id, const char *lang, int64_t offer, int wait_s, const char *agent)
{
    int64_t at = offer + wait_s * 1000LL;
    t_apply ("call.answered", at, "{" T_CALL ",\"agent_id\":\"%s\",\"wait_ms\":%d,\"via\":\"answer\",\"reported\":{}}",
             id, lang, (long long) at, 2, agent, wait_s * 1000);
}

static void
t_ended (const char *id, const char *lang, int64_t offer, int wait_s, int talk_s, const char *agent)
{
    int64_t at = offer + (wait_s + talk_s) * 1000LL;
    t_apply ("call.ended", at, "{" T_CALL ",\"agent_id\":\"%s\",\"wait_ms\":%d,\"talk_ms\":%d,\"transfers\":0,\"reported\":{\"hold_ms\":5000}}",
             id, lang, (long long) at, 3, agent, wait_s * 1000, talk_s * 1000);
}

static void
t_abandoned (const char *id, const char *lang, int64_t offer, int wait_s)
{
    int64_t at = offer + wait_s * 1000LL;
    t_apply ("call.abandoned", at, "{" T_CALL ",\"wait_ms\":%d,\"position\":1,\"orig_position\":1,\"reported\":{}}",
             id, lang, (long long) at, 2, wait_s * 1000);
}

static void
t_state (const char *agent, const char *from, const char *to, int64_t at, int step)
{
    t_apply ("agent.state_changed", at, "{\"agent_id\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"at\":%lld,\"by\":\"%s\",\"step\":%d}",
             agent, from, to, (long long) at, agent, step);
}

//  One call answered by agent with its agent transitions (steps from *step).
static void
t_call (const char *id, int64_t offer, int wait_s, int talk_s, int wrap_s, const char *agent, int *step)
{
    t_offered (id, "ar", offer);
    t_answered (id, "ar", offer, wait_s, agent);
    int64_t answered = offer + wait_s * 1000LL, ended = answered + talk_s * 1000LL;
    t_state (agent, "available", "on_call", answered, (*step)++);
    t_ended (id, "ar", offer, wait_s, talk_s, agent);
    t_state (agent, "on_call", "wrap_up", ended, (*step)++);
    t_state (agent, "wrap_up", "available", ended + wrap_s * 1000LL, (*step)++);
}

static int
t_setup (void **state)
{
    rep_conf_t conf;
    rep_conf_default (&conf);
    s_agg = rep_agg_new (&conf);
    return s_agg ? 0 : -1;
}

static int
t_teardown (void **state)
{
    rep_agg_destroy (&s_agg);
    return 0;
}

//  The fixture day (docs/metrics.md walks through the same numbers).
static void
t_fixture_day (void)
{
    int a = 1, b = 1;
    t_state ("agent-a", "offline", "available", T_H (8, 0, 0), a++);
    t_state ("agent-b", "offline", "available", T_H (8, 30, 0), b++);
    t_call ("c1", T_H (9, 0, 0), 10, 120, 30, "agent-a", &a);
    t_call ("c2", T_H (9, 5, 0), 25, 300, 60, "agent-b", &b);
    t_call ("c3", T_H (9, 10, 0), 50, 180, 0, "agent-a", &a);
    t_call ("c8", T_H (9, 20, 0), 5, 60, 30, "agent-a", &a);
    t_call ("c4", T_H (9, 30, 0), 90, 240, 30, "agent-b", &b);
    t_offered ("c5", "fr", T_H (9, 40, 0));
    t_abandoned ("c5", "fr", T_H (9, 40, 0), 3);
    t_offered ("c6", "fr", T_H (9, 41, 0));
    t_abandoned ("c6", "fr", T_H (9, 41, 0), 40);
    t_offered ("c7", "ar", T_H (9, 42, 0));
    t_abandoned ("c7", "ar", T_H (9, 42, 0), 120);
    t_apply ("call.not_reached", T_H (23, 0, 0), "{" T_CALL ",\"reason\":\"out_of_hours\",\"wait_ms\":null,\"reported\":{}}",
             "c9", "ar", (long long) T_H (23, 0, 0), 1);
    t_offered ("c10", "ar", T_H (9, 50, 0));
    t_apply ("call.not_reached", T_H (9, 53, 20), "{" T_CALL ",\"reason\":\"callback_requested\",\"wait_ms\":200000,\"reported\":{}}",
             "c10", "ar", (long long) T_H (9, 53, 20), 2);
    t_state ("agent-a", "available", "offline", T_H (10, 0, 0), a++);
    t_state ("agent-b", "available", "offline", T_H (10, 0, 0), b++);
}

static json_t *
t_report (const char *kind, const char *date, int64_t now)
{
    rep_span_t span;
    char field[32], msg[128];
    json_t *q = json_pack ("{s:s}", "date", date);
    assert_int_equal (rep_span_parse (s_agg, kind, q, now, &span, field, sizeof field, msg, sizeof msg), 0);
    json_decref (q);
    return rep_report (s_agg, &span, now, NULL);
}

static int64_t
t_int (json_t *obj, const char *path)
{
    char copy[256];
    snprintf (copy, sizeof copy, "%s", path);
    char *save = NULL;
    json_t *v = obj;
    for (char *k = strtok_r (copy, ".", &save); k; k = strtok_r (NULL, ".", &save))
        v = json_object_get (v, k);
    if (!json_is_integer (v))
        fprintf (stderr, "%s is not an integer\n", path);
    assert_true (json_is_integer (v));
    return json_integer_value (v);
}

static double
t_real (json_t *obj, const char *path)
{
    char copy[256];
    snprintf (copy, sizeof copy, "%s", path);
    char *save = NULL;
    json_t *v = obj;
    for (char *k = strtok_r (copy, ".", &save); k; k = strtok_r (NULL, ".", &save))
        v = json_object_get (v, k);
    assert_true (json_is_number (v));
    return json_number_value (v);
}

static void
test_fixture_day_calls (void **state)
{
    t_fixture_day ();
    json_t *r = t_report ("day", "2026-03-10", T_H (12, 0, 0));
    //  9 offered (c1..c8, c10); c9 never entered the queue.
    assert_int_equal (t_int (r, "calls.offered"), 9);
    assert_int_equal (t_int (r, "calls.answered"), 5);
    assert_int_equal (t_int (r, "calls.abandoned"), 2);
    assert_int_equal (t_int (r, "calls.abandoned_short"), 1);
    //  (2 abandoned) / (9 offered - 1 short)
    assert_true (fabs (t_real (r, "calls.abandonment_rate") - 0.25) < 1e-9);
    //  (10 + 25 + 50 + 5 + 90) / 5 = 36 s
    assert_int_equal (t_int (r, "calls.asa_ms"), 36000);
    //  within 20 s: c1, c8 -> 2 / 8; within 60 s: c1, c2, c3, c8 -> 4 / 8
    assert_true (fabs (t_real (r, "calls.service_level.20") - 0.25) < 1e-9);
    assert_true (fabs (t_real (r, "calls.service_level.60") - 0.5) < 1e-9);
    assert_int_equal (t_int (r, "calls.longest_wait_ms"), 120000);
    assert_int_equal (t_int (r, "calls.longest_answer_wait_ms"), 90000);
    //  talk 900 s + wrap-up 150 s over 5 handled = 210 s
    assert_int_equal (t_int (r, "calls.handled"), 5);
    assert_int_equal (t_int (r, "calls.talk_ms"), 900000);
    assert_int_equal (t_int (r, "calls.wrap_up_ms"), 150000);
    assert_int_equal (t_int (r, "calls.hold_ms"), 25000);
    assert_int_equal (t_int (r, "calls.aht_ms"), 210000);
    assert_int_equal (t_int (r, "calls.not_reached"), 2);
    assert_int_equal (t_int (r, "calls.not_reached_by_reason.out_of_hours"), 1);
    assert_int_equal (t_int (r, "calls.not_reached_by_reason.callback_requested"), 1);
    //  By language: fr had c5 (short) and c6.
    assert_int_equal (t_int (r, "calls.by_language.fr.offered"), 2);
    assert_int_equal (t_int (r, "calls.by_language.fr.abandoned"), 1);
    assert_true (fabs (t_real (r, "calls.by_language.fr.abandonment_rate") - 1.0) < 1e-9);
    assert_int_equal (t_int (r, "calls.by_language.ar.answered"), 5);
    //  Wait distribution of answered calls: <=10 s: c1, c8; <=30: c2; <=60: c3; <=120: c4.
    json_t *hist = json_object_get (json_object_get (r, "calls"), "answer_wait_distribution");
    assert_int_equal (json_integer_value (json_object_get (json_array_get (hist, 0), "calls")), 2);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (hist, 2), "calls")), 1);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (hist, 4), "calls")), 1);
    //  Hours: everything offered in the 09 hour.
    json_t *h9 = json_array_get (json_object_get (r, "hours"), 9);
    assert_int_equal (json_integer_value (json_object_get (h9, "offered")), 9);
    //  Agents: occupancy = (on call + wrap-up) / (available + on call + wrap-up)
    json_t *agents = json_object_get (r, "agents");
    assert_int_equal (json_array_size (agents), 2);
    size_t i;
    json_t *ag;
    json_array_foreach (agents, i, ag) {
        const char *id = json_string_value (json_object_get (ag, "agent_id"));
        if (!strcmp (id, "agent-a")) {
            assert_int_equal (t_int (ag, "answered"), 3);
            assert_int_equal (t_int (ag, "time_ms.available"), 6780000);
            assert_int_equal (t_int (ag, "time_ms.on_call"), 360000);
            assert_int_equal (t_int (ag, "time_ms.wrap_up"), 60000);
            assert_true (fabs (t_real (ag, "occupancy") - 0.0583) < 1e-9);
            assert_int_equal (t_int (ag, "aht_ms"), 140000);
        }
        else {
            assert_string_equal (id, "agent-b");
            assert_int_equal (t_int (ag, "time_ms.available"), 4770000);
            assert_true (fabs (t_real (ag, "occupancy") - 0.1167) < 1e-9);
        }
    }
    json_decref (r);
    //  The same figures in the week and the month.
    r = t_report ("week", "2026-03-12", T_H (12, 0, 0));
    assert_string_equal (json_string_value (json_object_get (json_object_get (r, "period"), "from")), "2026-03-09");
    assert_int_equal (t_int (r, "calls.asa_ms"), 36000);
    assert_int_equal (json_array_size (json_object_get (r, "days")), 7);
    json_decref (r);
    r = t_report ("month", "2026-03-31", T_H (12, 0, 0));
    assert_int_equal (t_int (r, "calls.offered"), 9);
    assert_int_equal (t_int (r, "calls.aht_ms"), 210000);
    json_decref (r);
    //  Ranges: a whole month (read from its month bucket) with days around it, and days only.
    const char *ranges[][2] = { { "2026-02-27", "2026-04-02" }, { "2026-03-10", "2026-03-10" },
                                { "2026-03-01", "2026-03-31" } };
    for (int k = 0; k < 3; k++) {
        rep_span_t rspan;
        char rf[32], rm[128];
        json_t *rq = json_pack ("{s:s, s:s}", "from", ranges[k][0], "to", ranges[k][1]);
        assert_int_equal (rep_span_parse (s_agg, "range", rq, T_DAY, &rspan, rf, sizeof rf, rm, sizeof rm), 0);
        json_decref (rq);
        r = rep_report (s_agg, &rspan, T_DAY, NULL);
        assert_int_equal (t_int (r, "calls.offered"), 9);
        assert_int_equal (t_int (r, "calls.asa_ms"), 36000);
        assert_int_equal (t_int (r, "calls.longest_wait_ms"), 120000);
        json_decref (r);
    }
    //  An agent's own figures only.
    rep_span_t span;
    char field[32], msg[128];
    json_t *q = json_pack ("{s:s}", "date", "2026-03-10");
    assert_int_equal (rep_span_parse (s_agg, "day", q, T_DAY, &span, field, sizeof field, msg, sizeof msg), 0);
    json_decref (q);
    r = rep_report (s_agg, &span, T_DAY, "agent-b");
    assert_null (json_object_get (r, "calls"));
    assert_int_equal (json_array_size (json_object_get (r, "agents")), 1);
    json_decref (r);
}

static void
test_bad_events_counted (void **state)
{
    t_offered ("x1", "ar", T_H (11, 0, 0));
    //  The same step again (an outbox sweep's duplicate): counted once.
    t_offered ("x1", "ar", T_H (11, 0, 0));
    //  A negative wait, an answer before the offer, a missing field, an unknown type.
    t_apply ("call.answered", T_H (11, 0, 5), "{" T_CALL ",\"agent_id\":\"a\",\"wait_ms\":-5}",
             "x1", "ar", (long long) T_H (11, 0, 5), 2);
    t_apply ("call.answered", T_H (10, 0, 0), "{" T_CALL ",\"agent_id\":\"a\",\"wait_ms\":5}",
             "x1", "ar", (long long) T_H (10, 0, 0), 2);
    t_apply ("call.ended", T_H (11, 0, 0), "{\"call_id\":\"x1\"}");
    t_apply ("shiny.new_thing", T_H (11, 0, 0), "{}");
    t_apply ("contact.created", T_H (11, 0, 0), "{\"channel\":3}");
    rep_store_t *st = rep_agg_store (s_agg);
    assert_int_equal (rep_store_get (st, "d2026-03-10", "calls.offered"), 1);
    assert_int_equal (rep_store_get (st, "d2026-03-10", "calls.answered"), 0);
    assert_int_equal (rep_store_get (st, "t", "events.duplicate|type=call"), 1);
    assert_int_equal (rep_store_get (st, "t", "events.rejected|reason=impossible_wait_ms"), 1);
    assert_int_equal (rep_store_get (st, "t", "events.rejected|reason=answer_before_offer"), 1);
    assert_int_equal (rep_store_get (st, "t", "events.rejected|reason=missing_at"), 1);
    assert_int_equal (rep_store_get (st, "t", "events.rejected|reason=missing_contact_id"), 1);
    assert_int_equal (rep_store_get (st, "t", "events.unknown|type=shiny.new_thing"), 1);
    //  A step name that would collide with a maximum is not taken as a step.
    t_apply ("emergency.ack_max", T_H (11, 0, 0), "{\"emergency_id\":\"e9\"}");
    assert_int_equal (rep_store_get (st, "t", "events.unknown|type=emergency.ack_max"), 1);
    //  A value that is not a code does not become a dimension.
    t_apply ("call.offered", T_H (11, 1, 0), "{\"call_id\":\"x2\",\"line\":\"a b<script>\",\"at\":%lld,\"step\":1}",
             (long long) T_H (11, 1, 0));
    assert_int_equal (rep_store_get (st, "d2026-03-10", "calls.offered|line=invalid"), 1);
    assert_int_equal (rep_store_get (st, "d2026-03-10", "calls.offered|lang=none"), 1);
}

#define T_CONTACT "{\"contact_id\":\"%s\",\"channel\":\"call\",\"direction\":\"inbound\",\"language\":\"ar\"," \
                  "\"categories\":%s,\"outcome\":\"%s\",\"frustration\":%s,\"anonymous\":false,\"sensitive\":false," \
                  "\"agent_id\":\"agent-a\",\"agd\":{\"sex\":\"female\",\"age_group\":\"18-59\",\"nationality\":\"SYR\"," \
                  "\"specific_needs\":[\"SM-CI\"],\"location\":null},\"repeat\":%s,\"repeat_of\":%s%s}"

static void
test_contacts_fcr_and_corrections (void **state)
{
    t_apply ("contact.created", T_H (9, 0, 0), T_CONTACT, "k1", "[\"health\",\"health.medication\"]",
             "information_given", "false", "false", "null", "");
    t_apply ("contact.created", T_H (10, 0, 0), T_CONTACT, "k2", "[\"legal\"]", "referral_made",
             "true", "false", "null", "");
    t_apply ("contact.created", T_H (11, 0, 0), T_CONTACT, "k4", "[]", "silent", "false", "false",
             "null", "");
    //  Two days later, a repeat of k1: k1 was not resolved at first contact.
    t_apply ("contact.created", T_H (9, 0, 0) + 2 * 86400000LL, T_CONTACT, "k3", "[\"health\"]",
             "information_given", "false", "true", "\"k1\"", "");
    //  k2 corrected: a second category.
    t_apply ("contact.updated", T_H (12, 0, 0), T_CONTACT, "k2", "[\"legal\",\"shelter\"]",
             "referral_made", "true", "false", "null", ",\"version\":2");
    //  The same update again (duplicate) and an older version: ignored.
    t_apply ("contact.updated", T_H (12, 0, 0), T_CONTACT, "k2", "[\"food\"]",
             "referral_made", "true", "false", "null", ",\"version\":2");
    json_t *r = t_report ("day", "2026-03-10", T_H (12, 0, 0));
    assert_int_equal (t_int (r, "contacts.total"), 3);
    assert_int_equal (t_int (r, "contacts.by_category.health"), 1);
    assert_int_equal (t_int (r, "contacts.by_category.legal"), 1);
    assert_int_equal (t_int (r, "contacts.by_category.shelter"), 1);
    assert_null (json_object_get (json_object_get (json_object_get (r, "contacts"), "by_category"), "food"));
    assert_int_equal (t_int (r, "contacts.frustrated"), 1);
    assert_int_equal (t_int (r, "contacts.frustrated_by_category.shelter"), 1);
    assert_int_equal (t_int (r, "contacts.agd.sex.female"), 3);
    assert_int_equal (t_int (r, "contacts.agd.age_sex.18-59.female"), 3);
    assert_int_equal (t_int (r, "contacts.agd.specific_needs.SM-CI"), 3);
    assert_int_equal (t_int (r, "contacts.agd.location.none"), 3);
    //  FCR: k1 and k2 eligible (k4 is silent), k1 repeated: 1 / 2; provisional until 7 days
    //  after the day.
    assert_int_equal (t_int (r, "fcr.eligible"), 2);
    assert_int_equal (t_int (r, "fcr.repeated"), 1);
    assert_true (fabs (t_real (r, "fcr.rate") - 0.5) < 1e-9);
    assert_true (json_is_true (json_object_get (json_object_get (r, "fcr"), "provisional")));
    json_decref (r);
    r = t_report ("day", "2026-03-10", T_DAY + 9 * 86400000LL);
    assert_true (json_is_false (json_object_get (json_object_get (r, "fcr"), "provisional")));
    json_decref (r);
    rep_store_t *st = rep_agg_store (s_agg);
    assert_int_equal (rep_store_get (st, "t", "events.duplicate|type=contact.updated"), 1);
    //  k1 corrected to a silent call: no longer an issue, so neither eligible nor repeated.
    t_apply ("contact.updated", T_H (13, 0, 0), T_CONTACT, "k1", "[]", "silent", "false", "false",
             "null", ",\"version\":2");
    r = t_report ("day", "2026-03-10", T_H (13, 0, 0));
    assert_int_equal (t_int (r, "fcr.eligible"), 1);
    assert_int_equal (t_int (r, "fcr.repeated"), 0);
    assert_true (fabs (t_real (r, "fcr.rate") - 1.0) < 1e-9);
    assert_int_equal (t_int (r, "contacts.total"), 3);
    assert_null (json_object_get (json_object_get (json_object_get (r, "contacts"), "by_category"), "health"));
    json_decref (r);
}

static void
test_lifecycles (void **state)
{
    t_apply ("emergency.raised", T_H (9, 0, 0), "{\"emergency_id\":\"e1\",\"type\":\"medical\",\"agent_id\":\"a\"}");
    t_apply ("emergency.acknowledged", T_H (9, 2, 0), "{\"emergency_id\":\"e1\",\"delay_ms\":120000,\"within_sla\":true}");
    t_apply ("emergency.acknowledged", T_H (9, 2, 0), "{\"emergency_id\":\"e1\",\"delay_ms\":120000,\"within_sla\":true}");
    t_apply ("referral.requested", T_H (9, 0, 0), "{\"referral_id\":\"r1\",\"category\":\"legal\",\"priority\":\"high\"}");
    t_apply ("referral.routed", T_H (9, 1, 0), "{\"referral_id\":\"r1\",\"unit\":\"legal\"}");
    t_apply ("referral.acknowledged", T_H (9, 5, 0), "{\"referral_id\":\"r1\",\"unit\":\"legal\",\"at\":%lld,\"ack_due\":%lld}", (long long) T_H (9, 5, 0), (long long) T_H (10, 0, 0));
    t_apply ("appointment.booked", T_H (9, 0, 0), "{\"appointment_id\":\"b1\",\"centre\":\"kla-1\"}");
    t_apply ("appointment.booked", T_H (9, 0, 0), "{\"appointment_id\":\"b2\",\"centre\":\"kla-1\"}");
    t_apply ("appointment.attended", T_H (15, 0, 0), "{\"appointment_id\":\"b1\"}");
    t_apply ("appointment.no_show", T_H (15, 0, 0), "{\"appointment_id\":\"b2\"}");
    t_apply ("complaint.received", T_H (9, 0, 0), "{\"complaint_id\":\"p1\",\"category\":\"staff\",\"respond_due\":%lld}", (long long) T_H (10, 0, 0));
    t_apply ("complaint.received", T_H (9, 0, 0), "{\"complaint_id\":\"p2\",\"category\":\"staff\"}");
    t_apply ("complaint.closed", T_H (11, 0, 0), "{\"complaint_id\":\"p2\"}");
    t_apply ("outbound.attempt_started", T_H (9, 0, 0), "{\"campaign_id\":\"x\"}");
    t_apply ("outbound.outcome", T_H (9, 0, 0), "{\"campaign_id\":\"x\",\"outcome\":\"reached\",\"answered\":true}");
    t_apply ("outbound.outcome", T_H (9, 0, 0), "{\"campaign_id\":\"x\",\"outcome\":\"no_answer\",\"answered\":false}");
    t_apply ("qa.review_completed", T_H (9, 0, 0), "{\"review_id\":\"q1\",\"agent_id\":\"agent-a\",\"percent\":80,\"passed\":true,\"scores\":{\"greeting\":10,\"empathy\":6}}");
    json_t *r = t_report ("day", "2026-03-10", T_H (12, 0, 0));
    assert_int_equal (t_int (r, "emergencies.raised"), 1);
    assert_int_equal (t_int (r, "emergencies.acknowledged"), 1);
    assert_int_equal (t_int (r, "emergencies.time_to_ack_avg_ms"), 120000);
    assert_int_equal (t_int (r, "referrals.requested"), 1);
    assert_int_equal (t_int (r, "referrals.by_priority.high"), 1);
    json_t *rows = json_object_get (json_object_get (r, "referrals"), "routed_by_unit_priority");
    assert_int_equal (json_array_size (rows), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (rows, 0), "unit")), "legal");
    assert_string_equal (json_string_value (json_object_get (json_array_get (rows, 0), "priority")), "high");
    assert_int_equal (t_int (r, "referrals.sla.met"), 1);
    assert_int_equal (t_int (r, "appointments.booked"), 2);
    assert_int_equal (t_int (r, "appointments.attended"), 1);
    assert_int_equal (t_int (r, "appointments.missed"), 1);
    assert_true (fabs (t_real (r, "appointments.attendance_rate") - 0.5) < 1e-9);
    assert_int_equal (t_int (r, "complaints.received"), 2);
    assert_int_equal (t_int (r, "complaints.closed"), 1);
    assert_int_equal (t_int (r, "complaints.overdue_now"), 1);
    assert_int_equal (t_int (r, "outbound.attempts"), 2);
    assert_true (fabs (t_real (r, "outbound.reach_rate") - 0.5) < 1e-9);
    assert_true (fabs (t_real (r, "qa.by_criterion.empathy") - 6) < 1e-9);
    assert_true (fabs (t_real (r, "qa.avg_score") - 80) < 1e-9);
    assert_true (fabs (t_real (r, "emergencies.ack_within_sla_rate") - 1.0) < 1e-9);
    json_decref (r);
}

static void
test_week_start_and_weekend (void **state)
{
    rep_conf_t conf;
    rep_conf_default (&conf);
    gl_config_t *config = gl_config_new ();
    gl_config_set (config, "GL_REPORTING_WEEK_START", "sunday");
    gl_config_set (config, "GL_REPORTING_WEEKEND", "friday,saturday");
    char err[256];
    assert_int_equal (rep_conf_load (&conf, config, err, sizeof err), 0);
    rep_agg_t *agg = rep_agg_new (&conf);
    char key[24];
    rep_agg_period (agg, T_H (12, 0, 0), 'w', key);
    assert_string_equal (key, "w2026-03-08");
    rep_agg_period (agg, T_H (12, 0, 0), 'h', key);
    assert_string_equal (key, "h2026-03-10T12");
    rep_span_t span;
    char field[32], msg[128];
    json_t *q = json_pack ("{s:s}", "date", "2026-03-10");
    assert_int_equal (rep_span_parse (agg, "week", q, 0, &span, field, sizeof field, msg, sizeof msg), 0);
    json_decref (q);
    assert_string_equal (span.from, "2026-03-08");
    json_t *r = rep_report (agg, &span, T_DAY, NULL);
    //  2026-03-13 is a Friday: a weekend day here.
    json_t *fri = json_array_get (json_object_get (r, "days"), 5);
    assert_string_equal (json_string_value (json_object_get (fri, "date")), "2026-03-13");
    assert_true (json_is_true (json_object_get (fri, "weekend")));
    assert_true (json_is_false (json_object_get (json_array_get (json_object_get (r, "days"), 1), "weekend")));
    json_decref (r);
    rep_agg_destroy (&agg);
    //  Bad settings name their key.
    gl_config_set (config, "GL_REPORTING_WEEKEND", "friday,caturday");
    assert_int_equal (rep_conf_load (&conf, config, err, sizeof err), -1);
    assert_non_null (strstr (err, "GL_REPORTING_WEEKEND"));
    gl_config_set (config, "GL_REPORTING_WEEKEND", "friday");
    gl_config_set (config, "GL_REPORTING_SL_THRESHOLDS_S", "60,20");
    assert_int_equal (rep_conf_load (&conf, config, err, sizeof err), -1);
    assert_non_null (strstr (err, "GL_REPORTING_SL_THRESHOLDS_S"));
    gl_config_destroy (&config);
    //  Spans: bad dates and ranges are refused naming the field.
    q = json_pack ("{s:s}", "date", "2026-02-30");
    assert_int_equal (rep_span_parse (s_agg, "day", q, 0, &span, field, sizeof field, msg, sizeof msg), -1);
    assert_string_equal (field, "date");
    json_decref (q);
    q = json_pack ("{s:s, s:s}", "from", "2026-03-10", "to", "2026-03-01");
    assert_int_equal (rep_span_parse (s_agg, "range", q, 0, &span, field, sizeof field, msg, sizeof msg), -1);
    assert_string_equal (field, "to");
    json_decref (q);
    q = json_pack ("{s:s, s:s}", "from", "2024-01-01", "to", "2026-03-01");
    assert_int_equal (rep_span_parse (s_agg, "range", q, 0, &span, field, sizeof field, msg, sizeof msg), -1);
    json_decref (q);
    q = json_object ();
    assert_int_equal (rep_span_parse (s_agg, "year", q, 0, &span, field, sizeof field, msg, sizeof msg), -1);
    assert_string_equal (field, "period");
    json_decref (q);
}

static void
test_store_encoding (void **state)
{
    rep_store_t *a = rep_store_new (4);
    rep_store_add (a, "d2026-01-01", "calls.offered", 3);
    rep_store_add (a, "d2026-01-01", "calls.wait_max", 7);
    rep_store_add (a, "d2026-01-01", "calls.wait_max", 5);
    rep_store_add (a, "d2026-01-01", "calls.offered", -1);
    rep_store_add (a, "d2026-01-01", "_overflow", 0);
    rep_store_add (a, "d2026-01-01", "x|a=1", 1);
    //  Full: a fifth name is dropped and counted.
    rep_store_add (a, "d2026-01-01", "x|a=2", 1);
    assert_int_equal (rep_store_get (a, "d2026-01-01", "calls.wait_max"), 7);
    assert_int_equal (rep_store_get (a, "d2026-01-01", "calls.offered"), 2);
    assert_int_equal (rep_store_get (a, "d2026-01-01", "_overflow"), 1);
    char *text = rep_store_encode (a, "d2026-01-01");
    rep_store_t *b = rep_store_new (4);
    assert_int_equal (rep_store_decode (b, "d2026-01-01", text, strlen (text)), 0);
    char *da = rep_store_dump (a), *db = rep_store_dump (b);
    assert_string_equal (da, db);
    free (da);
    free (db);
    free (text);
    assert_int_equal (rep_store_decode (b, "d2", "no tab\n", 7), -1);
    assert_int_equal (rep_store_decode (b, "d3", "a\tx1\n", 5), -1);
    rep_store_destroy (&a);
    rep_store_destroy (&b);
}

static void
test_poisson_and_bh (void **state)
{
    assert_true (fabs (rep_poisson_upper (10, 4.0) - 0.00813224279693403) < 1e-9);
    assert_true (fabs (rep_poisson_upper (1, 0.5) - 0.3934693402873666) < 1e-9);
    assert_true (fabs (rep_poisson_upper (30, 20.0) - 0.021818217525557237) < 1e-9);
    assert_true (rep_poisson_upper (0, 3.0) == 1.0);
    double p[] = { 0.01, 0.04, 0.03, 0.5 }, q[4];
    rep_bh_adjust (p, q, 4);
    assert_true (fabs (q[0] - 0.04) < 1e-12);
    assert_true (fabs (q[1] - 0.16 / 3) < 1e-12);
    assert_true (fabs (q[2] - 0.16 / 3) < 1e-12);
    assert_true (fabs (q[3] - 0.5) < 1e-12);
}

static void
t_contacts (int64_t day_ms, const char *cat, int n, bool frustrated)
{
    static int seq;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf (id, sizeof id, "tc%d", seq++);
        char cats[64];
        snprintf (cats, sizeof cats, "[\"%s\"]", cat);
        t_apply ("contact.created", day_ms, T_CONTACT, id, cats, "information_given",
                 frustrated ? "true" : "false", "false", "null", "");
    }
}

static void
test_trends (void **state)
{
    //  Four baseline weeks of about 10 health and 20 legal contacts, then a week with 25 health
    //  (rising) and 22 legal (not).
    int64_t week0 = T_DAY - 28 * 86400000LL;        //  a Tuesday, 4 weeks earlier
    int health[] = { 9, 11, 10, 10 }, legal[] = { 20, 19, 21, 20 };
    for (int w = 0; w < 4; w++) {
        t_contacts (week0 + w * 7 * 86400000LL, "health", health[w], false);
        t_contacts (week0 + w * 7 * 86400000LL, "legal", legal[w], false);
    }
    t_contacts (T_DAY, "health", 25, true);
    t_contacts (T_DAY, "legal", 22, false);
    t_contacts (T_DAY, "rare", 2, false);
    rep_span_t span;
    char field[32], msg[128];
    json_t *q = json_pack ("{s:s}", "date", "2026-03-10");
    assert_int_equal (rep_span_parse (s_agg, "week", q, 0, &span, field, sizeof field, msg, sizeof msg), 0);
    json_decref (q);
    json_t *t = rep_trends (s_agg, &span, T_DAY);
    json_t *cats = json_object_get (t, "categories");
    //  rare (2 < min count 5) is listed but not tested
    assert_int_equal (json_integer_value (json_object_get (cats, "tested")), 2);
    json_t *rising = json_object_get (cats, "rising");
    assert_int_equal (json_array_size (rising), 1);
    json_t *row = json_array_get (rising, 0);
    assert_string_equal (json_string_value (json_object_get (row, "category")), "health");
    assert_int_equal (json_integer_value (json_object_get (row, "observed")), 25);
    assert_true (fabs (json_real_value (json_object_get (row, "expected")) - 10.0) < 1e-9);
    assert_true (fabs (json_real_value (json_object_get (row, "p_value")) - rep_poisson_upper (25, 10.0)) < 1e-15);
    //  Frustration: health frustrated 25 against 0 before.
    json_t *fr = json_object_get (json_object_get (t, "frustration"), "rising");
    assert_int_equal (json_array_size (fr), 1);
    json_decref (t);
}

static void
test_stats_export_suppression (void **state)
{
    t_contacts (T_DAY, "health", 10, false);
    t_contacts (T_DAY, "legal", 6, false);
    t_contacts (T_DAY, "shelter", 2, false);
    rep_span_t span;
    char field[32], msg[128];
    json_t *q = json_pack ("{s:s, s:s}", "from", "2026-03-10", "to", "2026-03-10");
    assert_int_equal (rep_span_parse (s_agg, "range", q, 0, &span, field, sizeof field, msg, sizeof msg), 0);
    json_decref (q);
    char *csv = NULL;
    json_t *ex = rep_stats_export (s_agg, &span, 'd', &csv);
    size_t i;
    json_t *row;
    int seen = 0;
    json_array_foreach (json_object_get (ex, "rows"), i, row) {
        const char *dim = json_string_value (json_object_get (row, "dimension"));
        const char *val = json_string_value (json_object_get (row, "value"));
        const char *measure = json_string_value (json_object_get (row, "measure"));
        if (strcmp (measure, "contacts"))
            continue;
        if (!strcmp (dim, "total")) {
            assert_int_equal (json_integer_value (json_object_get (row, "count")), 18);
            seen++;
        }
        if (!strcmp (dim, "category")) {
            //  shelter (2) is below 5; legal (6) is hidden too, or 18 - 10 would give shelter.
            bool hidden = json_is_true (json_object_get (row, "suppressed"));
            assert_true (hidden == (strcmp (val, "health") != 0));
            assert_true (hidden ? json_is_null (json_object_get (row, "count"))
                                : json_integer_value (json_object_get (row, "count")) == 10);
            seen++;
        }
        if (!strcmp (dim, "sex")) {
            assert_int_equal (json_integer_value (json_object_get (row, "count")), 18);
            seen++;
        }
    }
    assert_int_equal (seen, 5);
    assert_non_null (strstr (csv, "period,measure,dimension,value,count,suppressed\r\n"));
    assert_non_null (strstr (csv, "2026-03-10,contacts,category,shelter,,1\r\n"));
    assert_non_null (strstr (csv, "2026-03-10,contacts,category,health,10,0\r\n"));
    free (csv);
    json_decref (ex);
    //  The report as CSV.
    json_t *r = t_report ("day", "2026-03-10", T_DAY);
    char *text = rep_report_csv (r);
    assert_non_null (strstr (text, "section,metric,dimension,value\r\n"));
    assert_non_null (strstr (text, "contacts,by_category,health,10\r\n"));
    assert_non_null (strstr (text, "calls,service_level,20,\r\n"));
    free (text);
    //  The HTML page: self-contained, charts, the language's labels and direction.
    char *html = rep_report_html (r, "fr");
    assert_non_null (strstr (html, "<html lang=\"fr\" dir=\"ltr\">"));
    assert_non_null (strstr (html, "Appels présentés"));
    assert_non_null (strstr (html, "<svg"));
    assert_null (strstr (html, "<script"));
    assert_null (strstr (html, "src="));
    free (html);
    html = rep_report_html (r, "ar");
    assert_non_null (strstr (html, "dir=\"rtl\""));
    free (html);
    json_decref (r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_fixture_day_calls, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_bad_events_counted, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_contacts_fcr_and_corrections, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_lifecycles, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_week_start_and_weekend, t_setup, t_teardown),
        cmocka_unit_test (test_store_encoding),
        cmocka_unit_test (test_poisson_and_bh),
        cmocka_unit_test_setup_teardown (test_trends, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_stats_export_suppression, t_setup, t_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
