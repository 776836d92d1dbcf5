/*  referral as a process (gl-referral) against a private redis-server, its business clock driven
    through GL_CLOCK_FILE; the test plays intake (appends referral.requested and emergency.raised
    as "intake-1") and sends the forwarded requests intake would.

    Routing to the on-duty assignee with deadlines in business hours; the whole lifecycle and its
    impossible transitions; idempotent retries; sensitive referrals seen only by their unit;
    escalation reminder -> focal point -> supervisor, each step once, on the clock the test
    drives; the SLA clock paused and resumed; the overdue list; partners: the signed link, its
    tampering and expiry, consent; notifier's partner_contact; the emergency chain from
    dispatch to acknowledgement, its board and delivery reports; bad input; events raised while
    referral was stopped are applied when it starts; the person export (referral.person_export)
    returns exactly the referrals and emergencies of the contact ids intake sends, to protection
    and admin only.

    ctest: timeout=300 */
#include "test_referral_env.h"
#include "gl_testhttp.h"

#define T_PROT      "[\"protection\"]"
#define T_SUPR      "[\"supervisor\"]"
#define T_AGNT      "[\"agent\"]"

static char s_id[8][GL_ID_LEN + 1];

static int
t_setup (void **state)
{
    if (t_env_setup () < 0)
        return -1;
    s_referral = t_spawn_referral ();
    if (s_referral < 0)
        return -1;
    for (int i = 0; i < 8; i++)
        gl_id_new (s_id[i]);
    return 0;
}

static int
t_teardown (void **state)
{
    t_env_teardown ();
    return 0;
}

//  The referral as referral holds it (lifecycle), asked by user with roles/units.
static json_t *
t_get (const char *id, const char *user, const char *roles, const char *units)
{
    json_t *out = t_expect (200, NULL, NULL, "referral.lifecycle", user, roles, units, id, NULL,
                            NULL, NULL);
    json_t *rec = json_incref (json_object_get (out, "referral"));
    json_decref (out);
    return rec;
}

static void
test_route_and_lifecycle (void **state)
{
    t_wait_up ();
    const char *id = s_id[0];
    t_request_referral (id, "legal.residency", "normal", true);
    json_t *evs = t_wait_events ("referral.routed", id, 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_s (data, "unit", NULL), "legal");
    assert_string_equal (t_s (data, "assignee", NULL), L1);
    //  4 business hours from Monday 09:00; 3 days = 72 business hours of 8-hour days.
    assert_int_equal (t_i (data, "ack_due", NULL), T_MON9 + 4 * T_H);
    assert_int_equal (t_i (data, "resolve_due", NULL), T_MON9 + 11 * 24 * T_H);
    assert_false (json_is_true (json_object_get (data, "sensitive")));
    json_decref (evs);
    json_t *n = t_notices (id, "referral.assigned");
    assert_int_equal (json_array_size (n), 1);
    json_t *notice = json_array_get (n, 0);
    assert_string_equal (t_s (notice, "recipient", "kind"), "user");
    assert_string_equal (t_s (notice, "recipient", "id"), L1);
    assert_string_equal (t_s (notice, "priority", NULL), "routine");
    assert_string_equal (t_s (notice, "params", "category"), "legal.residency");
    assert_int_equal (strlen (t_s (notice, "notification_id", NULL)), 32);
    json_decref (n);

    //  Who sees it: supervisors, protection staff, the agent who asked; not another agent.
    json_t *rec = t_get (id, SUP, T_SUPR, "[]");
    assert_string_equal (t_s (rec, "status", NULL), "routed");
    json_decref (rec);
    json_decref (t_get (id, AGENT, T_AGNT, "[]"));
    json_decref (t_expect (404, "not_found", "id", "referral.lifecycle", P2, T_AGNT, "[]", id,
                           NULL, NULL, NULL));
    //  Who acts: the unit, not a protection officer of another unit.
    json_decref (t_expect (403, "forbidden", NULL, "referral.ack", P1, T_PROT, "[\"protection\"]",
                           id, NULL, NULL, "k-ack-1"));
    //  Acknowledge; a retry with the same key gets the same answer, a new request a 409.
    t_advance (30 * T_M);
    json_t *a = t_expect (200, NULL, NULL, "referral.ack", L1, T_PROT, "[\"legal\"]", id, NULL,
                          NULL, "k-ack-2");
    assert_string_equal (t_s (a, "referral", "status"), "acknowledged");
    assert_int_equal (t_i (a, "referral", "acked_at"), T_MON9 + 30 * T_M);
    json_t *b = t_expect (200, NULL, NULL, "referral.ack", L1, T_PROT, "[\"legal\"]", id, NULL,
                          NULL, "k-ack-2");
    assert_true (json_equal (a, b));
    json_decref (a);
    json_decref (b);
    json_decref (t_expect (409, "invalid_transition", "status", "referral.ack", L1, T_PROT,
                           "[\"legal\"]", id, NULL, NULL, "k-ack-3"));
    json_t *acks = t_wait_events ("referral.acknowledged", id, 1);
    assert_int_equal (json_array_size (acks), 1);
    json_decref (acks);

    json_decref (t_expect (200, NULL, NULL, "referral.start", L1, T_PROT, "[\"legal\"]", id,
                           NULL, NULL, "k-start"));
    json_decref (t_expect (400, "missing_field", "outcome", "referral.close", L1, T_PROT,
                           "[\"legal\"]", id, NULL, NULL, "k-close-0"));
    json_decref (t_expect (400, "invalid_field", "outcome", "referral.close", L1, T_PROT,
                           "[\"legal\"]", id, NULL, "{\"outcome\":\"done\"}", "k-close-1"));
    json_decref (t_expect (200, NULL, NULL, "referral.comment", L1, T_PROT, "[\"legal\"]", id,
                           NULL, "{\"text\":\"Called Mrs Example back on 0790000001\"}",
                           "k-comment"));
    json_decref (t_expect (400, "invalid_field", "text", "referral.comment", L1, T_PROT,
                           "[\"legal\"]", id, NULL, "{\"text\":\"\"}", "k-comment-2"));
    json_t *c = t_expect (200, NULL, NULL, "referral.close", L1, T_PROT, "[\"legal\"]", id, NULL,
                          "{\"outcome\":\"assistance_provided\"}", "k-close-2");
    assert_string_equal (t_s (c, "referral", "status"), "closed");
    assert_string_equal (t_s (c, "referral", "outcome"), "assistance_provided");
    json_decref (c);
    json_decref (t_expect (409, "invalid_transition", "status", "referral.reject", L1, T_PROT,
                           "[\"legal\"]", id, NULL, "{\"reason\":\"wrong_unit\"}", "k-reject"));
    json_t *closed = t_wait_events ("referral.closed", id, 1);
    assert_true (json_is_true (json_object_get (json_object_get (json_array_get (closed, 0), "data"),
                                                "within_sla")));
    json_decref (closed);

    //  The lifecycle: every step in order, the comment kept here and nowhere else.
    json_t *life = t_expect (200, NULL, NULL, "referral.lifecycle", L1, T_PROT, "[\"legal\"]", id,
                             NULL, NULL, NULL);
    json_t *history = json_object_get (life, "history");
    static const char *const steps[] = { "routed", "acknowledged", "started", "commented",
                                         "closed" };
    assert_int_equal (json_array_size (history), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal (t_s (json_array_get (history, i), "action", NULL), steps[i]);
    assert_int_equal (json_array_size (json_object_get (life, "comments")), 1);
    json_decref (life);
    json_t *all = t_events (NULL, id);
    char *dump = json_dumps (all, JSON_COMPACT);
    assert_null (strstr (dump, "0790000001"));
    assert_null (strstr (dump, "Example"));
    free (dump);
    json_decref (all);
    static const char *const secrets[] = { "0790000001", "Mrs Example", NULL };
    t_log_clean (secrets);
}

static void
test_sensitive_only_for_the_unit (void **state)
{
    const char *id = s_id[1];
    t_request_referral (id, "gbv.disclosure", "normal", true);
    json_t *evs = t_wait_events ("referral.routed", id, 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_s (data, "unit", NULL), "gbv");
    assert_string_equal (t_s (data, "assignee", NULL), G1);
    assert_true (json_is_true (json_object_get (data, "sensitive")));
    json_decref (evs);
    //  The notice names no category.
    json_t *n = t_notices (id, "referral.assigned");
    assert_null (json_object_get (json_object_get (json_array_get (n, 0), "params"), "category"));
    json_decref (n);
    //  Not a supervisor, not another unit's protection officer, not the agent: 404.
    json_decref (t_expect (404, "not_found", "id", "referral.lifecycle", SUP, T_SUPR, "[]", id,
                           NULL, NULL, NULL));
    json_decref (t_expect (404, "not_found", "id", "referral.lifecycle", P1, T_PROT,
                           "[\"protection\"]", id, NULL, NULL, NULL));
    json_decref (t_expect (404, "not_found", "id", "referral.lifecycle", AGENT, T_AGNT, "[]", id,
                           NULL, NULL, NULL));
    json_decref (t_expect (404, "not_found", "id", "referral.ack", SUP, T_SUPR, "[]", id, NULL,
                           NULL, "k-s1"));
    //  Lists leave it out for them, and show it to the unit.
    json_t *inbox = t_expect (200, NULL, NULL, "referral.inbox", SUP, T_SUPR, "[]", NULL, NULL,
                              NULL, NULL);
    char *dump = json_dumps (inbox, JSON_COMPACT);
    assert_null (strstr (dump, id));
    free (dump);
    json_decref (inbox);
    inbox = t_expect (200, NULL, NULL, "referral.inbox", G1, T_PROT, "[\"gbv\"]", NULL,
                      "{\"unit\":\"gbv\"}", NULL, NULL);
    assert_int_equal (json_array_size (json_object_get (inbox, "referrals")), 1);
    assert_string_equal (t_s (json_array_get (json_object_get (inbox, "referrals"), 0),
                              "referral_id", NULL), id);
    json_decref (inbox);
    inbox = t_expect (200, NULL, NULL, "referral.inbox", G1, T_PROT, "[\"gbv\"]", NULL,
                      "{\"assignee\":\"me\"}", NULL, NULL);
    assert_int_equal (json_array_size (json_object_get (inbox, "referrals")), 1);
    json_decref (inbox);
    json_t *rec = t_get (id, G1, T_PROT, "[\"gbv\"]");
    assert_true (json_is_true (json_object_get (rec, "sensitive")));
    assert_true (json_is_true (json_object_get (rec, "consent")));
    json_decref (rec);
    json_decref (t_expect (200, NULL, NULL, "referral.ack", G1, T_PROT, "[\"gbv\"]", id, NULL,
                           NULL, "k-s2"));
}

static void
test_escalation_on_the_business_clock (void **state)
{
    //  Monday 15:30 of the next week; a high legal referral: 1 business hour to acknowledge,
    //  half an hour today and half an hour on Tuesday morning.
    t_clock_set (T_MON9 + 7 * 24 * T_H + 6 * T_H + 30 * T_M);
    int64_t tue = T_MON9 + 8 * 24 * T_H - T_H;     //  Tuesday 08:00
    const char *id = s_id[2];
    t_request_referral (id, "legal.civil_documentation", "high", true);
    json_t *evs = t_wait_events ("referral.routed", id, 1);
    assert_int_equal (t_i (json_object_get (json_array_get (evs, 0), "data"), "ack_due", NULL),
                      tue + 30 * T_M);
    json_decref (evs);
    //  The reminder at the deadline, to the assignee.
    t_clock_set (tue + 30 * T_M);
    evs = t_wait_events ("referral.escalated", id, 1);
    json_t *d = json_object_get (json_array_get (evs, 0), "data");
    assert_int_equal (t_i (d, "level", NULL), 1);
    assert_string_equal (t_s (d, "step", NULL), "reminder");
    assert_string_equal (t_s (d, "to", NULL), L1);
    json_decref (evs);
    json_t *n = t_notices (id, "referral.reminder");
    assert_int_equal (json_array_size (n), 1);
    assert_string_equal (t_s (json_array_get (n, 0), "recipient", "id"), L1);
    json_decref (n);
    //  Overdue now.
    json_t *od = t_expect (200, NULL, NULL, "referral.overdue", SUP, T_SUPR, "[]", NULL,
                           "{\"unit\":\"legal\"}", NULL, NULL);
    json_t *items = json_object_get (od, "referrals");
    bool found = false;
    for (size_t i = 0; i < json_array_size (items); i++)
        if (strcmp (t_s (json_array_get (items, i), "referral_id", NULL), id) == 0) {
            found = true;
            assert_string_equal (t_s (json_array_get (items, i), "overdue", NULL), "acknowledgement");
        }
    assert_true (found);
    json_decref (od);
    //  An hour later the focal point, two hours later the supervisor.
    t_clock_set (tue + 90 * T_M);
    evs = t_wait_events ("referral.escalated", id, 2);
    d = json_object_get (json_array_get (evs, 1), "data");
    assert_string_equal (t_s (d, "step", NULL), "focal");
    assert_string_equal (t_s (d, "to", NULL), F_LEGAL);
    json_decref (evs);
    t_clock_set (tue + 150 * T_M);
    evs = t_wait_events ("referral.escalated", id, 3);
    d = json_object_get (json_array_get (evs, 2), "data");
    assert_string_equal (t_s (d, "step", NULL), "supervisor");
    assert_string_equal (t_s (d, "to", NULL), S_LEGAL);
    json_decref (evs);
    n = t_notices (id, "referral.escalated");
    assert_int_equal (json_array_size (n), 2);
    assert_string_equal (t_s (json_array_get (n, 1), "recipient", "id"), S_LEGAL);
    assert_int_equal (json_array_size (json_object_get (json_array_get (n, 1), "channels")), 3);
    json_decref (n);
    //  Nothing more fires: a day later, acknowledged, still three steps.
    t_advance (24 * T_H);
    json_decref (t_expect (200, NULL, NULL, "referral.ack", L1, T_PROT, "[\"legal\"]", id, NULL,
                           NULL, "k-e1"));
    json_decref (t_wait_events ("referral.acknowledged", id, 1));
    evs = t_events ("referral.escalated", id);
    assert_int_equal (json_array_size (evs), 3);
    json_decref (evs);
}

static void
test_sla_pause_and_resume (void **state)
{
    //  Wednesday 10:30 (week 2): normal legal referral, due at 14:30.
    int64_t wed = T_MON9 + 9 * 24 * T_H - 9 * T_H;     //  Wednesday 00:00
    t_clock_set (wed + 10 * T_H + 30 * T_M);
    const char *id = s_id[3];
    t_request_referral (id, "legal.residency", "normal", true);
    json_decref (t_wait_events ("referral.routed", id, 1));
    t_clock_set (wed + 11 * T_H + 30 * T_M);
    json_decref (t_expect (400, "missing_field", "reason", "referral.pause", L1, T_PROT,
                           "[\"legal\"]", id, NULL, NULL, "k-p0"));
    json_decref (t_expect (200, NULL, NULL, "referral.pause", L1, T_PROT, "[\"legal\"]", id, NULL,
                           "{\"reason\":\"waiting_for_person\"}", "k-p1"));
    json_decref (t_expect (409, "already_paused", "status", "referral.pause", L1, T_PROT,
                           "[\"legal\"]", id, NULL, "{\"reason\":\"waiting_for_person\"}", "k-p2"));
    //  A day passes: no escalation while paused. Then resume: 3 business hours were left.
    t_clock_set (wed + 24 * T_H + 12 * T_H);
    json_t *r = t_expect (200, NULL, NULL, "referral.resume", L1, T_PROT, "[\"legal\"]", id, NULL,
                          NULL, "k-p3");
    assert_int_equal (t_i (r, "referral", "ack_due"), wed + 24 * T_H + 15 * T_H);
    assert_false (json_is_true (json_object_get (json_object_get (r, "referral"), "paused")));
    json_decref (r);
    json_t *evs = t_events ("referral.escalated", id);
    assert_int_equal (json_array_size (evs), 0);
    json_decref (evs);
    json_decref (t_expect (409, "not_paused", "status", "referral.resume", L1, T_PROT,
                           "[\"legal\"]", id, NULL, NULL, "k-p4"));
    //  And at the new deadline the reminder comes.
    t_clock_set (wed + 24 * T_H + 15 * T_H);
    evs = t_wait_events ("referral.escalated", id, 1);
    assert_string_equal (t_s (json_object_get (json_array_get (evs, 0), "data"), "step", NULL),
                         "reminder");
    json_decref (evs);
    evs = t_events ("referral.paused", id);
    assert_int_equal (json_array_size (evs), 1);
    json_decref (evs);
}

static void
test_priority_change (void **state)
{
    //  Thursday 10:00 (week 2): a normal legal referral (4 business hours), made high (1 hour)
    //  half an hour later: due at 11:00, escalated at once when the clock gets there.
    int64_t thu = T_MON9 + 10 * 24 * T_H - 9 * T_H;
    t_clock_set (thu + 10 * T_H);
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    t_request_referral (id, "legal.residency", "normal", true);
    json_decref (t_wait_events ("referral.routed", id, 1));
    t_advance (30 * T_M);
    json_decref (t_expect (400, "invalid_field", "priority", "referral.priority", L1, T_PROT,
                           "[\"legal\"]", id, NULL, "{\"priority\":\"urgent\"}", "k-pr0"));
    json_decref (t_expect (409, "unchanged", "priority", "referral.priority", L1, T_PROT,
                           "[\"legal\"]", id, NULL, "{\"priority\":\"normal\"}", "k-pr1"));
    json_decref (t_expect (403, "forbidden", NULL, "referral.priority", P1, T_PROT,
                           "[\"protection\"]", id, NULL, "{\"priority\":\"high\"}", "k-pr2"));
    json_t *r = t_expect (200, NULL, NULL, "referral.priority", L1, T_PROT, "[\"legal\"]", id,
                          NULL, "{\"priority\":\"high\"}", "k-pr3");
    assert_string_equal (t_s (r, "referral", "priority"), "high");
    assert_int_equal (t_i (r, "referral", "ack_due"), thu + 11 * T_H);
    //  resolve: 1d = 24 business hours: Thursday 6, Friday 8, Monday 8, Tuesday 2.
    assert_int_equal (t_i (r, "referral", "resolve_due"), thu + 5 * 24 * T_H + 10 * T_H);
    json_decref (r);
    json_t *evs = t_wait_events ("referral.updated", id, 1);
    json_t *d = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_s (d, "from_priority", NULL), "normal");
    assert_string_equal (json_string_value (json_array_get (json_object_get (d, "changed"), 0)),
                         "priority");
    json_decref (evs);
    t_clock_set (thu + 11 * T_H);
    evs = t_wait_events ("referral.escalated", id, 1);
    assert_int_equal (t_i (json_object_get (json_array_get (evs, 0), "data"), "due", NULL),
                      thu + 11 * T_H);
    json_decref (evs);
}

//  The partner's token, out of its notice's link.
static void
t_partner_token (const char *id, char *token, size_t len)
{
    json_t *n = t_notices (id, "referral.partner");
    assert_int_equal (json_array_size (n), 1);
    json_t *notice = json_array_get (n, 0);
    assert_string_equal (t_s (notice, "recipient", "kind"), "partner");
    assert_string_equal (t_s (notice, "recipient", "code"), "nrc");
    assert_string_equal (t_s (notice, "language", NULL), "fr");
    assert_string_equal (json_string_value (json_array_get (json_object_get (notice, "channels"), 0)),
                         "email");
    const char *link = t_s (notice, "params", "ack_link");
    assert_non_null (link);
    assert_true (strncmp (link, "https://greenline.test/partner-ack?token=", 41) == 0);
    snprintf (token, len, "%s", link + 41);
    json_decref (n);
}

static void
test_partner_link (void **state)
{
    const char *id = s_id[4], *late = s_id[5], *noconsent = s_id[6];
    t_request_referral (id, "legal.legal_aid", "normal", true);
    t_request_referral (late, "legal.legal_aid", "normal", true);
    t_request_referral (noconsent, "legal.legal_aid", "normal", false);
    json_t *evs = t_wait_events ("referral.routed", id, 1);
    json_t *d = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_s (d, "partner", NULL), "nrc");
    assert_true (json_is_null (json_object_get (d, "assignee")));
    json_decref (evs);
    evs = t_wait_events ("referral.routed", noconsent, 1);
    d = json_object_get (json_array_get (evs, 0), "data");
    assert_true (json_is_null (json_object_get (d, "partner")));
    assert_string_equal (t_s (d, "unit", NULL), "legal");
    json_decref (evs);
    json_decref (t_wait_events ("referral.routed", late, 1));

    char token[256], body[400];
    t_partner_token (id, token, sizeof token);
    //  Tampered: refused.
    char bad[256];
    snprintf (bad, sizeof bad, "%s", token);
    bad[strlen (bad) - 1] = bad[strlen (bad) - 1] == '0' ? '1' : '0';
    snprintf (body, sizeof body, "{\"token\":\"%s\"}", bad);
    json_decref (t_expect (400, "invalid_field", "token", "referral.partner_ack", AGENT, "[]", "[]",
                           NULL, NULL, body, "k-pa0"));
    json_decref (t_expect (400, "missing_field", "token", "referral.partner_ack", AGENT, "[]",
                           "[]", NULL, NULL, "{}", "k-pa1"));
    snprintf (body, sizeof body, "{\"token\":\"%s\"}", token);
    json_t *ok = t_expect (200, NULL, NULL, "referral.partner_ack", AGENT, "[]", "[]", NULL, NULL,
                           body, "k-pa2");
    assert_string_equal (t_s (ok, "status", NULL), "acknowledged");
    assert_null (json_object_get (ok, "referral"));
    json_decref (ok);
    //  A retry with the same key gets the stored answer: still nothing of the record.
    ok = t_expect (200, NULL, NULL, "referral.partner_ack", AGENT, "[]", "[]", NULL, NULL, body,
                   "k-pa2");
    assert_string_equal (t_s (ok, "status", NULL), "acknowledged");
    assert_int_equal (json_object_size (ok), 2);
    json_decref (ok);
    ok = t_expect (200, NULL, NULL, "referral.partner_ack", AGENT, "[]", "[]", NULL, NULL, body,
                   "k-pa3");
    assert_string_equal (t_s (ok, "status", NULL), "already_acknowledged");
    json_decref (ok);
    evs = t_wait_events ("referral.acknowledged", id, 1);
    assert_string_equal (t_s (json_object_get (json_array_get (evs, 0), "data"), "by", NULL),
                         "partner:nrc");
    json_decref (evs);
    //  Expired after a day.
    t_partner_token (late, token, sizeof token);
    t_advance (25 * T_H);
    snprintf (body, sizeof body, "{\"token\":\"%s\"}", token);
    json_decref (t_expect (422, "expired", "token", "referral.partner_ack", AGENT, "[]", "[]",
                           NULL, NULL, body, "k-pa4"));
    //  notifier's question: the partner's addresses.
    gl_reply_t reply = { 0 };
    json_t *q = json_pack ("{s:s}", "code", "nrc");
    assert_int_equal (gl_req_call (s_client, "referral.partner_contact", NULL, q, 5000, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_string_equal (t_s (reply.body, "email", NULL), "referrals@nrc.example.org");
    assert_true (json_is_null (json_object_get (reply.body, "webhook_url")));
    assert_string_equal (t_s (reply.body, "language", NULL), "fr");
    json_object_set_new (q, "code", json_string ("nobody"));
    assert_int_equal (gl_req_call (s_client, "referral.partner_contact", NULL, q, 5000, &reply), 0);
    assert_int_equal (reply.status, 404);
    json_object_set_new (q, "code", json_integer (7));
    assert_int_equal (gl_req_call (s_client, "referral.partner_contact", NULL, q, 5000, &reply), 0);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "code");
    json_decref (q);
    gl_reply_clear (&reply);
    static const char *const secrets[] = { "referrals@nrc.example.org", NULL };
    t_log_clean (secrets);
}

static void
test_emergency_chain (void **state)
{
    //  Saturday 03:00 (week 3): outside business hours, the 24x7 roster has P1 on duty.
    int64_t sat3 = T_MON9 + 19 * 24 * T_H - 6 * T_H;
    t_clock_set (sat3);
    char e1[GL_ID_LEN + 1], e2[GL_ID_LEN + 1];
    gl_id_new (e1);
    gl_id_new (e2);
    t_raise_emergency (e1);
    json_t *evs = t_wait_events ("emergency.dispatched", e1, 1);
    json_t *d = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_s (d, "on_duty", NULL), P1);
    assert_int_equal (t_i (d, "ack_due", NULL), sat3 + 5 * T_M);
    json_decref (evs);
    json_t *n = t_notices (e1, "emergency.alarm");
    assert_int_equal (json_array_size (n), 2);
    //  One change's events reach the log in any order.
    size_t user = strcmp (t_s (json_array_get (n, 0), "recipient", "kind"), "user") == 0 ? 0 : 1;
    json_t *alarm = json_array_get (n, user);
    assert_string_equal (t_s (alarm, "priority", NULL), "emergency");
    assert_string_equal (t_s (alarm, "recipient", "id"), P1);
    json_t *ch = json_object_get (alarm, "channels");
    assert_int_equal (json_array_size (ch), 3);
    assert_string_equal (json_string_value (json_array_get (ch, 0)), "sms");
    assert_string_equal (json_string_value (json_array_get (ch, 1)), "voice");
    assert_string_equal (json_string_value (json_array_get (ch, 2)), "console");
    assert_string_equal (t_s (json_array_get (n, 1 - user), "recipient", "role"), "supervisor");
    json_decref (n);
    //  The operator's gauge counts it.
    int64_t until = gl_mono_ms () + T_WAIT_MS;
    for (;;) {
        static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        gl_test_resp_t m = gl_test_http_raw (s_health_port, get, sizeof get - 1);
        bool one = m.status == 200
                   && strstr (m.body, "\ngreenline_referral_emergencies_unacknowledged 1\n");
        gl_test_http_free (&m);
        if (one)
            break;
        assert_true (gl_mono_ms () < until);
        gl_sleep_ms (50);
    }
    //  The board: supervisors and the emergency unit; undelivered until notifier reports.
    json_decref (t_expect (403, "forbidden", NULL, "referral.emergency_board", L1, T_PROT,
                           "[\"legal\"]", NULL, NULL, NULL, NULL));
    json_t *board = t_expect (200, NULL, NULL, "referral.emergency_board", SUP, T_SUPR, "[]", NULL,
                              NULL, NULL, NULL);
    json_t *first = json_array_get (json_object_get (board, "emergencies"), 0);
    assert_string_equal (t_s (first, "emergency_id", NULL), e1);
    assert_true (json_is_true (json_object_get (first, "undelivered")));
    assert_int_equal (t_i (board, "unacknowledged", NULL), 1);
    json_decref (board);
    //  Every 2 minutes: re-sent; past the 5-minute deadline: backup, focal, supervisors.
    t_advance (2 * T_M);
    evs = t_wait_events ("emergency.escalated", e1, 1);
    assert_string_equal (t_s (json_object_get (json_array_get (evs, 0), "data"), "step", NULL), "resend");
    json_decref (evs);
    t_advance (2 * T_M);
    json_decref (t_wait_events ("emergency.escalated", e1, 2));
    t_advance (1 * T_M);   //  the deadline
    evs = t_wait_events ("emergency.escalated", e1, 3);
    assert_string_equal (t_s (json_object_get (json_array_get (evs, 2), "data"), "step", NULL), "backup");
    json_decref (evs);
    n = t_notices (e1, "emergency.escalated");
    assert_int_equal (json_array_size (n), 1);
    assert_string_equal (t_s (json_array_get (n, 0), "recipient", "id"), P2);
    assert_string_equal (t_s (json_array_get (n, 0), "priority", NULL), "emergency");
    json_decref (n);
    t_advance (2 * T_M);
    evs = t_wait_events ("emergency.escalated", e1, 4);
    assert_string_equal (t_s (json_object_get (json_array_get (evs, 3), "data"), "step", NULL), "focal");
    json_decref (evs);
    t_advance (2 * T_M);
    evs = t_wait_events ("emergency.escalated", e1, 5);
    assert_string_equal (t_s (json_object_get (json_array_get (evs, 4), "data"), "step", NULL), "supervisor");
    json_decref (evs);
    //  notifier reports a delivery: the board stops saying undelivered.
    char err[256];
    gl_pub_t *notifier = gl_pub_new (s_r, "notifier-1", NULL, err, sizeof err);
    assert_non_null (notifier);
    gl_event_t *sent = gl_event_new ("notification.sent");
    gl_event_set_corr (sent, e1);
    json_object_set_new (sent->data, "template", json_string ("emergency.alarm"));
    json_object_set_new (sent->data, "channel", json_string ("sms"));
    assert_int_equal (gl_pub_send (notifier, sent, 0), 0);
    gl_event_destroy (&sent);
    gl_pub_destroy (&notifier);
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    for (;;) {
        board = t_expect (200, NULL, NULL, "referral.emergency_board", P1, T_PROT,
                          "[\"protection\"]", NULL, NULL, NULL, NULL);
        first = json_array_get (json_object_get (board, "emergencies"), 0);
        bool delivered = t_i (first, "delivered", NULL) == 1;
        if (delivered)
            assert_false (json_is_true (json_object_get (first, "undelivered")));
        json_decref (board);
        if (delivered)
            break;
        assert_true (gl_mono_ms () < deadline);
        gl_sleep_ms (50);
    }
    //  The backup acknowledges; a second acknowledgement changes nothing.
    json_t *a = t_expect (200, NULL, NULL, "referral.emergency_ack", P2, T_PROT,
                          "[\"protection\"]", e1, NULL, NULL, "k-ea1");
    assert_string_equal (t_s (a, "emergency", "status"), "acknowledged");
    assert_string_equal (t_s (a, "emergency", "acked_by"), P2);
    json_decref (a);
    a = t_expect (200, NULL, NULL, "referral.emergency_ack", P1, T_PROT, "[\"protection\"]", e1,
                  NULL, NULL, "k-ea2");
    assert_string_equal (t_s (a, "emergency", "acked_by"), P2);
    json_decref (a);
    json_decref (t_expect (404, "not_found", "id", "referral.emergency_ack", L1, T_PROT,
                           "[\"legal\"]", e1, NULL, NULL, "k-ea3"));
    //  Ten minutes on, a second emergency: it tops the board; the first stopped escalating.
    t_advance (10 * T_M);
    t_raise_emergency (e2);
    json_decref (t_wait_events ("emergency.dispatched", e2, 1));
    evs = t_events ("emergency.escalated", e1);
    assert_int_equal (json_array_size (evs), 5);
    json_decref (evs);
    evs = t_events ("emergency.acknowledged", e1);
    assert_int_equal (json_array_size (evs), 1);
    json_decref (evs);
    board = t_expect (200, NULL, NULL, "referral.emergency_board", SUP, T_SUPR, "[]", NULL, NULL,
                      NULL, NULL);
    json_t *list = json_object_get (board, "emergencies");
    assert_string_equal (t_s (json_array_get (list, 0), "emergency_id", NULL), e2);
    assert_string_equal (t_s (json_array_get (list, 1), "emergency_id", NULL), e1);
    json_decref (board);
    json_decref (t_expect (409, "invalid_transition", "status", "referral.emergency_close", P1,
                           T_PROT, "[\"protection\"]", e2, NULL, "{\"outcome\":\"person_safe\"}",
                           "k-ec1"));
    json_decref (t_expect (400, "invalid_field", "outcome", "referral.emergency_close", P1, T_PROT,
                           "[\"protection\"]", e1, NULL, "{\"outcome\":\"fine\"}", "k-ec2"));
    a = t_expect (200, NULL, NULL, "referral.emergency_close", P1, T_PROT, "[\"protection\"]", e1,
                  NULL, "{\"outcome\":\"person_safe\"}", "k-ec3");
    assert_string_equal (t_s (a, "emergency", "status"), "closed");
    json_decref (a);
    json_decref (t_expect (200, NULL, NULL, "referral.emergency_ack", SUP, T_SUPR, "[]", e2, NULL,
                           NULL, "k-ea4"));
}

static void
test_bad_input (void **state)
{
    const char *id = s_id[7];
    //  A malformed event is skipped; the next one is applied.
    char bad_id[GL_ID_LEN + 1];
    gl_id_new (bad_id);
    t_intake_event ("referral.requested", bad_id,
                    json_pack ("{s:s, s:s, s:s, s:b, s:s, s:s}", "contact_id", "nope",
                               "category", "Legal!", "priority", "urgent", "consent", true,
                               "agent_id", AGENT, "referral_id", bad_id));
    t_request_referral (id, "legal.residency", "normal", true);
    json_decref (t_wait_events ("referral.routed", id, 1));
    json_decref (t_expect (404, "not_found", "id", "referral.lifecycle", SUP, T_SUPR, "[]", bad_id,
                           NULL, NULL, NULL));
    //  The forwarded shape checked.
    gl_reply_t reply = { 0 };
    json_t *q = json_pack ("{s:{}, s:{}}", "params", "query");
    assert_int_equal (gl_req_call (s_client, "referral.inbox", NULL, q, 5000, &reply), 0);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "caller");
    json_decref (q);
    gl_reply_clear (&reply);
    json_decref (t_expect (400, "invalid_field", "caller.user_id", "referral.inbox", "bob",
                           T_SUPR, "[]", NULL, NULL, NULL, NULL));
    json_decref (t_expect (400, "invalid_field", "limit", "referral.inbox", SUP, T_SUPR, "[]",
                           NULL, "{\"limit\":\"0\"}", NULL, NULL));
    json_decref (t_expect (400, "invalid_field", "unit", "referral.inbox", SUP, T_SUPR, "[]",
                           NULL, "{\"unit\":\"nowhere\"}", NULL, NULL));
    json_decref (t_expect (400, "invalid_field", "priority", "referral.inbox", SUP, T_SUPR, "[]",
                           NULL, "{\"priority\":\"urgent\"}", NULL, NULL));
    json_decref (t_expect (404, "not_found", "id", "referral.ack", L1, T_PROT, "[\"legal\"]",
                           "../../etc", NULL, NULL, "k-b0"));
    //  Re-routing: unknown unit, nothing given, both given; then to protection.
    json_decref (t_expect (422, "unknown_unit", "unit", "referral.reroute", L1, T_PROT,
                           "[\"legal\"]", id, NULL, "{\"unit\":\"nowhere\",\"reason\":\"wrong_unit\"}",
                           "k-b1"));
    json_decref (t_expect (400, "missing_field", "unit", "referral.reroute", L1, T_PROT,
                           "[\"legal\"]", id, NULL, "{\"reason\":\"wrong_unit\"}", "k-b2"));
    json_decref (t_expect (400, "invalid_field", "partner", "referral.reroute", L1, T_PROT,
                           "[\"legal\"]", id, NULL,
                           "{\"unit\":\"gbv\",\"partner\":\"nrc\",\"reason\":\"wrong_unit\"}", "k-b3"));
    json_decref (t_expect (409, "same_destination", "unit", "referral.reroute", L1, T_PROT,
                           "[\"legal\"]", id, NULL, "{\"unit\":\"legal\",\"reason\":\"wrong_unit\"}",
                           "k-b4"));
    json_t *r = t_expect (200, NULL, NULL, "referral.reroute", L1, T_PROT, "[\"legal\"]", id, NULL,
                          "{\"unit\":\"protection\",\"reason\":\"wrong_unit\"}", "k-b5");
    assert_string_equal (t_s (r, "referral", "unit"), "protection");
    assert_string_equal (t_s (r, "referral", "assignee"), P1);
    assert_string_equal (t_s (r, "referral", "status"), "routed");
    assert_int_equal (t_i (r, "referral", "reroutes"), 1);
    json_decref (r);
    json_t *evs = t_wait_events ("referral.rerouted", id, 1);
    assert_string_equal (t_s (json_object_get (json_array_get (evs, 0), "data"), "from_unit", NULL),
                         "legal");
    json_decref (evs);
    //  The legal unit can no longer act on it.
    json_decref (t_expect (403, "forbidden", NULL, "referral.ack", L1, T_PROT, "[\"legal\"]", id,
                           NULL, NULL, "k-b6"));
    //  The same idempotency key with another body is refused by the request server.
    json_decref (t_expect (422, "key_reused", NULL, "referral.reroute", L1, T_PROT, "[\"legal\"]",
                           id, NULL, "{\"unit\":\"gbv\",\"reason\":\"wrong_unit\"}", "k-b5"));
    //  units
    json_t *u = t_expect (200, NULL, NULL, "referral.units", AGENT, T_AGNT, "[]", NULL, NULL,
                          NULL, NULL);
    assert_int_equal (json_array_size (json_object_get (u, "units")), 3);
    json_decref (u);
}

static void
test_raised_while_down (void **state)
{
    int status = gl_test_stop (s_referral, 20000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    s_referral = -1;
    char rid[GL_ID_LEN + 1], eid[GL_ID_LEN + 1];
    gl_id_new (rid);
    gl_id_new (eid);
    t_request_referral (rid, "health.access", "high", true);
    t_raise_emergency (eid);
    s_referral = t_spawn_referral ();
    assert_true (s_referral > 0);
    json_decref (t_wait_events ("referral.routed", rid, 1));
    json_decref (t_wait_events ("emergency.dispatched", eid, 1));
    json_t *n = t_notices (eid, "emergency.alarm");
    assert_true (json_array_size (n) >= 2);
    json_decref (n);
}

//  referral.person_export as intake sends it: {caller, <identifier>, contact_ids} (body taken).
static int
t_export (const char *roles, json_t *body, json_t **out)
{
    json_error_t e;
    json_object_set_new (body, "caller",
                         json_pack ("{s:s, s:o, s:[]}", "user_id", P1, "roles",
                                    json_loads (roles, 0, &e), "units"));
    gl_reply_t reply = { 0 };
    int rc = gl_req_call (s_client, "referral.person_export", NULL, body, 10000, &reply);
    json_decref (body);
    assert_int_equal (rc, 0);
    int status = reply.status;
    if (status >= 400)
        *out = json_pack ("{s:s, s:s}", "code", reply.error_code ? reply.error_code : "",
                          "field", reply.error_field ? reply.error_field : "");
    else
        *out = json_incref (reply.body);
    gl_reply_clear (&reply);
    return status;
}

static void
t_export_error (const char *roles, json_t *body, int want, const char *code, const char *field)
{
    json_t *out = NULL;
    int status = t_export (roles, body, &out);
    if (status != want || strcmp (t_s (out, "code", NULL), code) != 0)
        fprintf (stderr, "person_export: expected %d %s, got %d %s %s\n", want, code, status,
                 t_s (out, "code", NULL), t_s (out, "field", NULL));
    assert_int_equal (status, want);
    assert_string_equal (t_s (out, "code", NULL), code);
    assert_string_equal (t_s (out, "field", NULL), field);
    json_decref (out);
}

//  True when records[kind] holds exactly the ids (field) given, in any order.
static bool
t_has_exactly (json_t *out, const char *kind, const char *field, const char *a, const char *b)
{
    json_t *list = json_object_get (json_object_get (out, "records"), kind);
    size_t want = (a ? 1 : 0) + (b ? 1 : 0);
    if (json_array_size (list) != want)
        return false;
    size_t i;
    json_t *v;
    json_array_foreach (list, i, v) {
        const char *id = t_s (v, field, NULL);
        if (!id || !((a && strcmp (id, a) == 0) || (b && strcmp (id, b) == 0)))
            return false;
    }
    return true;
}

//  The person export: the referrals and emergencies raised from the person's contacts (the
//  ids intake found), with history, comments and consent; nobody else's. Protection and admin
//  only; bad bodies named.
static void
test_person_export (void **state)
{
    const char *cx = "c0000000000000000000000000000a01", *cy = "c0000000000000000000000000000a02",
               *cz = "c0000000000000000000000000000a03";
    char r1[GL_ID_LEN + 1], r2[GL_ID_LEN + 1], r3[GL_ID_LEN + 1], e1[GL_ID_LEN + 1];
    gl_id_new (r1);
    gl_id_new (r2);
    gl_id_new (r3);
    gl_id_new (e1);
    t_intake_event ("referral.requested", r1,
                    json_pack ("{s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "contact_id", cx,
                               "category", "legal.residency", "priority", "normal", "consent",
                               true, "agent_id", AGENT, "language", "ar", "referral_id", r1));
    t_intake_event ("referral.requested", r2,
                    json_pack ("{s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "contact_id", cy,
                               "category", "legal.residency", "priority", "low", "consent", false,
                               "agent_id", AGENT, "language", "ar", "referral_id", r2));
    t_intake_event ("referral.requested", r3,
                    json_pack ("{s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "contact_id", cz,
                               "category", "legal.residency", "priority", "normal", "consent",
                               true, "agent_id", AGENT, "language", "ar", "referral_id", r3));
    t_intake_event ("emergency.raised", e1,
                    json_pack ("{s:s, s:s, s:n, s:s, s:b, s:s, s:s, s:s}", "type", "medical",
                               "contact_id", cy, "call_id", "location", "zaatari",
                               "callback_possible", true, "agent_id", AGENT, "language", "ar",
                               "emergency_id", e1));
    json_decref (t_wait_events ("referral.routed", r1, 1));
    json_decref (t_wait_events ("referral.routed", r2, 1));
    json_decref (t_wait_events ("referral.routed", r3, 1));
    json_decref (t_wait_events ("emergency.dispatched", e1, 1));
    json_decref (t_expect (200, NULL, NULL, "referral.comment", L1, T_PROT, "[\"legal\"]", r1,
                           NULL, "{\"text\":\"EXPORT-COMMENT\"}", "k-export-comment"));

    //  The person's two contacts (x, y): their referrals and emergency, nobody else's.
    json_t *out = NULL;
    assert_int_equal (t_export (T_PROT,
                                json_pack ("{s:s, s:[s,s]}", "case_number", "QZA11C00001",
                                           "contact_ids", cx, cy),
                                &out),
                      200);
    assert_true (json_is_true (json_object_get (out, "complete")));
    assert_true (t_has_exactly (out, "referrals", "referral_id", r1, r2));
    assert_true (t_has_exactly (out, "emergencies", "emergency_id", e1, NULL));
    assert_true (t_has_exactly (out, "consents", "referral_id", r1, r2));
    json_t *list = json_object_get (json_object_get (out, "records"), "referrals");
    for (size_t i = 0; i < json_array_size (list); i++) {
        json_t *ref = json_array_get (list, i);
        bool first = strcmp (t_s (ref, "referral_id", NULL), r1) == 0;
        assert_string_equal (t_s (ref, "contact_id", NULL), first ? cx : cy);
        assert_true (json_array_size (json_object_get (ref, "history")) >= 1);
        json_t *comments = json_object_get (ref, "comments");
        assert_int_equal (json_array_size (comments), first ? 1 : 0);
        if (first)
            assert_string_equal (t_s (json_array_get (comments, 0), "text", NULL),
                                 "EXPORT-COMMENT");
    }
    list = json_object_get (json_object_get (out, "records"), "consents");
    for (size_t i = 0; i < json_array_size (list); i++) {
        json_t *c = json_array_get (list, i);
        bool first = strcmp (t_s (c, "referral_id", NULL), r1) == 0;
        assert_true (json_is_boolean (json_object_get (c, "consent")));
        assert_true (json_is_true (json_object_get (c, "consent")) == first);
        assert_true (t_i (c, "at", NULL) > 0);
    }
    json_decref (out);
    //  Admins too; another person (z) gets z's only; no contacts: nothing, complete.
    assert_int_equal (t_export ("[\"admin\"]",
                                json_pack ("{s:s, s:[s]}", "phone", "962790555001",
                                           "contact_ids", cz),
                                &out),
                      200);
    assert_true (t_has_exactly (out, "referrals", "referral_id", r3, NULL));
    assert_true (t_has_exactly (out, "emergencies", "emergency_id", NULL, NULL));
    json_decref (out);
    assert_int_equal (t_export (T_PROT,
                                json_pack ("{s:s, s:[]}", "individual_number", "IND77",
                                           "contact_ids"),
                                &out),
                      200);
    assert_true (t_has_exactly (out, "referrals", "referral_id", NULL, NULL));
    assert_true (t_has_exactly (out, "emergencies", "emergency_id", NULL, NULL));
    assert_true (json_is_true (json_object_get (out, "complete")));
    json_decref (out);

    //  Other roles: 403, even a supervisor of the unit.
    t_export_error (T_AGNT, json_pack ("{s:s, s:[s]}", "case_number", "QZA1", "contact_ids", cx),
                    403, "forbidden", "");
    t_export_error (T_SUPR, json_pack ("{s:s, s:[s]}", "case_number", "QZA1", "contact_ids", cx),
                    403, "forbidden", "");
    //  Bad bodies: named.
    t_export_error (T_PROT, json_pack ("{s:[s]}", "contact_ids", cx), 400, "missing_field",
                    "case_number");
    t_export_error (T_PROT,
                    json_pack ("{s:s, s:s, s:[s]}", "case_number", "QZA1", "phone", "9627",
                               "contact_ids", cx),
                    400, "invalid_field", "phone");
    t_export_error (T_PROT, json_pack ("{s:s}", "case_number", "QZA1"), 400, "missing_field",
                    "contact_ids");
    t_export_error (T_PROT, json_pack ("{s:s, s:s}", "case_number", "QZA1", "contact_ids", cx),
                    400, "invalid_field", "contact_ids");
    t_export_error (T_PROT,
                    json_pack ("{s:s, s:[s]}", "case_number", "QZA1", "contact_ids", "nope"),
                    400, "invalid_field", "contact_ids");
    t_export_error (T_PROT,
                    json_pack ("{s:s, s:[s]}", "case_number", "QZ\"A1", "contact_ids", cx),
                    400, "invalid_field", "case_number");
    t_export_error (T_PROT,
                    json_pack ("{s:i, s:[s]}", "case_number", 5, "contact_ids", cx),
                    400, "invalid_field", "case_number");
    t_export_error (T_PROT,
                    json_pack ("{s:s, s:[s], s:i}", "case_number", "QZA1", "contact_ids", cx,
                               "extra", 1),
                    400, "unknown_field", "extra");
    json_t *many = json_array ();
    for (int i = 0; i < 1001; i++)
        json_array_append_new (many, json_string (cx));
    t_export_error (T_PROT, json_pack ("{s:s, s:o}", "case_number", "QZA1", "contact_ids", many),
                    400, "invalid_field", "contact_ids");
    //  Each export logged by the kind of identifier, never its value.
    FILE *f = fopen (s_log_path, "r");
    assert_non_null (f);
    char line[4096];
    int lines = 0;
    while (fgets (line, sizeof line, f)) {
        assert_null (strstr (line, "QZA"));
        assert_null (strstr (line, "962790555001"));
        lines += strstr (line, "referral: person export by") != NULL;
    }
    fclose (f);
    assert_int_equal (lines, 3);
}

//  A year and more later, what was closed is purged (record, history, comments, the closed
//  emergency); what is still open stays.
static void
test_retention_purge (void **state)
{
    const char *closed = s_id[0], *open = s_id[3];
    t_advance (400 * 24 * T_H);
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    for (;;) {
        redisReply *r = gl_redis_cmd (s_r, "EXISTS referral:{referral}:ref:%s "
                                           "referral:{referral}:ref:%s:history "
                                           "referral:{referral}:ref:%s:comments",
                                      closed, closed, closed);
        assert_non_null (r);
        long long left = r->integer;
        freeReplyObject (r);
        r = gl_redis_cmd (s_r, "ZCARD referral:{referral}:emg:closed");
        left += r->integer;
        freeReplyObject (r);
        if (left == 0)
            break;
        assert_true (gl_mono_ms () < deadline);
        gl_sleep_ms (50);
    }
    json_decref (t_expect (404, "not_found", "id", "referral.lifecycle", L1, T_PROT, "[\"legal\"]",
                           closed, NULL, NULL, NULL));
    json_t *rec = t_get (open, L1, T_PROT, "[\"legal\"]");
    assert_string_equal (t_s (rec, "status", NULL), "routed");
    json_decref (rec);
    //  The events stay: they carry no personal data.
    json_t *evs = t_events ("referral.closed", closed);
    assert_int_equal (json_array_size (evs), 1);
    json_decref (evs);
}

//  A configuration with a mistake stops the start, naming the file and line.
static void
test_bad_config_stops_the_start (void **state)
{
    char bad[280];
    snprintf (bad, sizeof bad, "%.260s/bad.conf", s_dir);
    FILE *f = fopen (bad, "w");
    assert_non_null (f);
    fputs ("unit protection 24x7\nroster protection daily 00:00-24:00 not-a-user\n", f);
    fclose (f);
    char saved[300];
    snprintf (saved, sizeof saved, "%s", s_conf_path);
    snprintf (s_conf_path, sizeof s_conf_path, "%s", bad);
    pid_t pid = t_spawn_referral_at (gl_test_free_port (), 0);
    snprintf (s_conf_path, sizeof s_conf_path, "%s", saved);
    assert_true (pid > 0);
    int status = gl_test_wait (pid, 30000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 1);
    FILE *log = fopen (s_log_path, "r");
    assert_non_null (log);
    char line[2048], want[400];
    assert_true (strlen (bad) < 300);
    snprintf (want, sizeof want, "%s:2: primary and backup must be user ids", bad);
    bool found = false;
    while (fgets (line, sizeof line, log))
        found |= strstr (line, want) != NULL;
    fclose (log);
    assert_true (found);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_route_and_lifecycle),
        cmocka_unit_test (test_sensitive_only_for_the_unit),
        cmocka_unit_test (test_escalation_on_the_business_clock),
        cmocka_unit_test (test_sla_pause_and_resume),
        cmocka_unit_test (test_priority_change),
        cmocka_unit_test (test_partner_link),
        cmocka_unit_test (test_emergency_chain),
        cmocka_unit_test (test_bad_input),
        cmocka_unit_test (test_raised_while_down),
        cmocka_unit_test (test_person_export),
        cmocka_unit_test (test_retention_purge),
        cmocka_unit_test (test_bad_config_stops_the_start),
        cmocka_unit_test (test_clean_stop),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
