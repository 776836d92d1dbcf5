/*  intake's complaints and feedback over real HTTP: gl-intake as a process against a private
    redis-server, its business clock driven through GL_CLOCK_FILE.

    The state machine received → acknowledged → in_progress → responded → closed with its
    deadlines per type on the driven clock (overdue to acknowledge, then to respond; each passed
    deadline announced once by complaint.overdue; "late" in the events); impossible transitions answered 409 naming the state, closing without an
    answer 422; bad bodies 400 naming the field; anonymous complaints; a sensitive complaint
    (PSEA) invisible to agents, supervisors and protection staff who are not the focal point,
    visible to the focal point, every read and refused read audited, and the focal point
    alerted with notification.requested; a complaint made sensitive later; Idempotency-Key
    retries; a sensitive complaint and its alert stored while the log cannot be written and intake
    killed: both delivered once after the restart; no description, answer or phone number in
    any event.

    ctest: timeout=180 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include "gl_testintake.h"
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T_WAIT_MS       60000
#define T_HOUR_MS       INT64_C(3600000)
#define T_DAY_MS        INT64_C(86400000)

enum { U_ADMIN, U_AGENT1, U_AGENT2, U_SUPER, U_PROT, U_FOCAL, U_COUNT };
static gl_testintake_account_t s_users[U_COUNT] = {
    { "admin", NULL, NULL, "", "" },
    { "agent1", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "agent2", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "super1", "[\"supervisor\"]", "[\"unit-a\"]", "", "" },
    { "prot1", "[\"protection\"]", "[\"unit-a\"]", "", "" },
    { "focal1", "[\"protection\"]", "[\"psea-fp\"]", "", "" },
};

#define GL_TESTINTAKE_HARNESS
#include "gl_testintake.h"

//  --------------------------------------------------------------------------------------------
//  Helpers

static void
t_create_id (int user, const char *body, char *id)
{
    json_t *rec = t_call_json (user, "POST", "/api/v1/complaints", body, 201);
    snprintf (id, GL_ID_LEN + 1, "%s", t_str (rec, "id"));
    assert_true (gl_id_valid (id));
    json_decref (rec);
}

static json_t *
t_get (int user, const char *id, int status)
{
    char path[128];
    snprintf (path, sizeof path, "/api/v1/complaints/%s", id);
    return t_call_json (user, "GET", path, NULL, status);
}

static json_t *
t_act (int user, const char *id, const char *action, const char *body, int status)
{
    char path[160];
    snprintf (path, sizeof path, "/api/v1/complaints/%s/%s", id, action);
    return t_call_json (user, "POST", path, body ? body : "{}", status);
}

static void
t_act_error (int user, const char *id, const char *action, const char *body, int status,
             const char *code, const char *field)
{
    char path[160];
    snprintf (path, sizeof path, "/api/v1/complaints/%s/%s", id, action);
    t_call_error (user, "POST", path, body ? body : "{}", status, code, field);
}

static int
t_setup (void **state)
{
    const char *extra[]
        = { "GL_INTAKE_CFM_FOCAL_PSEA=unit:psea-fp", "GL_INTAKE_CFM_SWEEP_MS=200", NULL };
    return t_setup_common (extra);
}

//  --------------------------------------------------------------------------------------------
//  The state machine on the driven clock

static void
test_lifecycle (void **state)
{
    t_secret ("SECRET-complaint-text-lifecycle");
    t_secret ("SECRET-response-lifecycle");
    t_secret ("0791234567");
    t_secret ("791234567");
    int64_t received = s_now;
    char id[GL_ID_LEN + 1];
    t_create_id (U_AGENT1,
                 "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                 "\"category\":\"distribution\",\"phone\":\"0791234567\","
                 "\"description\":\"SECRET-complaint-text-lifecycle\"}",
                 id);
    json_t *rec = t_get (U_AGENT2, id, 200);
    assert_string_equal (t_str (rec, "status"), "received");
    assert_string_equal (t_str (rec, "phone"), "962791234567");
    assert_int_equal (t_int (rec, "acknowledge_due"), received + 24 * T_HOUR_MS);
    assert_int_equal (t_int (rec, "respond_due"), received + 168 * T_HOUR_MS);
    assert_false (json_is_true (json_object_get (rec, "overdue")));
    assert_false (json_is_true (json_object_get (rec, "sensitive")));
    json_decref (rec);

    //  Agents log and read; they do not handle.
    char path[160];
    snprintf (path, sizeof path, "/api/v1/complaints/%s/acknowledge", id);
    assert_int_equal (t_call_status (U_AGENT1, "POST", path, "{}"), 403);

    //  Impossible transitions, named.
    t_act_error (U_SUPER, id, "start", NULL, 409, "invalid_transition", "status");
    t_act_error (U_SUPER, id, "respond",
                 "{\"response\":\"SECRET-response-lifecycle\",\"response_channel\":\"call\"}",
                 409, "invalid_transition", "status");
    t_act_error (U_SUPER, id, "close", "{\"outcome\":\"resolved\",\"answer\":\"x\"}", 409,
                 "invalid_transition", "status");

    //  A day and an hour later it is overdue for acknowledgement.
    t_clock_advance (25 * T_HOUR_MS);
    rec = t_get (U_SUPER, id, 200);
    assert_true (json_is_true (json_object_get (rec, "overdue")));
    assert_string_equal (t_str (rec, "overdue_kind"), "acknowledge");
    json_decref (rec);
    //  The passed deadline is announced, once.
    json_t *over = t_wait_events ("complaint.overdue", id, 1);
    json_t *od = json_object_get (json_array_get (over, 0), "data");
    assert_string_equal (t_str (od, "overdue_kind"), "acknowledge");
    assert_int_equal (t_int (od, "due"), received + 24 * T_HOUR_MS);
    json_decref (over);
    json_t *page = t_call_json (U_SUPER, "GET", "/api/v1/complaints?overdue=true", NULL, 200);
    assert_true (t_has_id (page, id));
    assert_null (json_object_get (json_array_get (json_object_get (page, "items"), 0),
                                  "description"));
    json_decref (page);
    page = t_call_json (U_SUPER, "GET", "/api/v1/complaints?overdue=false", NULL, 200);
    assert_false (t_has_id (page, id));
    json_decref (page);

    rec = t_act (U_SUPER, id, "acknowledge", NULL, 200);
    assert_string_equal (t_str (rec, "status"), "acknowledged");
    assert_false (json_is_true (json_object_get (rec, "overdue")));
    json_decref (rec);
    t_act_error (U_SUPER, id, "acknowledge", NULL, 409, "invalid_transition", "status");
    //  Closing without the answer given to the person is refused.
    t_act_error (U_SUPER, id, "close", "{\"outcome\":\"resolved\"}", 422, "answer_required",
                 "answer");
    rec = t_act (U_PROT, id, "start", NULL, 200);
    assert_string_equal (t_str (rec, "status"), "in_progress");
    json_decref (rec);

    //  Past the response deadline: overdue to respond.
    t_clock_advance (7 * T_DAY_MS);
    rec = t_get (U_SUPER, id, 200);
    assert_string_equal (t_str (rec, "overdue_kind"), "respond");
    json_decref (rec);
    over = t_wait_events ("complaint.overdue", id, 2);
    od = json_object_get (json_array_get (over, 1), "data");
    assert_string_equal (t_str (od, "overdue_kind"), "respond");
    assert_string_equal (t_str (od, "status"), "in_progress");
    json_decref (over);
    t_act_error (U_SUPER, id, "respond", "{\"response_channel\":\"call\"}", 400, "missing_field",
                 "response");
    t_act_error (U_SUPER, id, "respond",
                 "{\"response\":\"SECRET-response-lifecycle\",\"response_channel\":\"pigeon\"}",
                 400, "invalid_field", "response_channel");
    rec = t_act (U_SUPER, id, "respond",
                 "{\"response\":\"SECRET-response-lifecycle\",\"response_channel\":\"call\"}",
                 200);
    assert_string_equal (t_str (rec, "status"), "responded");
    json_decref (rec);
    t_act_error (U_SUPER, id, "respond",
                 "{\"response\":\"again\",\"response_channel\":\"call\"}", 409,
                 "invalid_transition", "status");
    rec = t_act (U_SUPER, id, "close", "{\"outcome\":\"resolved\"}", 200);
    assert_string_equal (t_str (rec, "status"), "closed");
    assert_string_equal (t_str (rec, "answer"), "SECRET-response-lifecycle");
    assert_int_equal (json_array_size (json_object_get (rec, "history")), 5);
    json_decref (rec);
    t_act_error (U_SUPER, id, "close", "{\"outcome\":\"resolved\"}", 409, "invalid_transition",
                 "status");
    snprintf (path, sizeof path, "/api/v1/complaints/%s", id);
    t_call_error (U_SUPER, "PATCH", path, "{\"category\":\"other\"}", 409, "invalid_transition",
                  "status");

    //  The events: ids, codes and due times, in order; lateness recorded.
    json_t *evs = t_wait_events (NULL, id, 7);
    static const char *const types[]
        = { "complaint.received", "complaint.overdue",  "complaint.acknowledged",
            "complaint.updated",  "complaint.overdue",  "complaint.responded",
            "complaint.closed" };
    for (size_t i = 0; i < 7; i++)
        assert_string_equal (t_str (json_array_get (evs, i), "type"), types[i]);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_str (data, "type"), "complaint");
    assert_string_equal (t_str (data, "channel"), "call");
    assert_true (json_is_false (json_object_get (data, "sensitive")));
    assert_int_equal (t_int (data, "acknowledge_due"), received + 24 * T_HOUR_MS);
    assert_int_equal (t_int (data, "respond_due"), received + 168 * T_HOUR_MS);
    assert_null (json_object_get (data, "description"));
    data = json_object_get (json_array_get (evs, 2), "data");
    assert_true (json_is_true (json_object_get (data, "late")));
    data = json_object_get (json_array_get (evs, 5), "data");
    assert_true (json_is_true (json_object_get (data, "late")));
    data = json_object_get (json_array_get (evs, 6), "data");
    assert_string_equal (t_str (data, "outcome"), "resolved");
    assert_string_equal (t_str (data, "status"), "closed");
    json_decref (evs);
}

//  Deadlines per type, the policy on closing, anonymous feedback.
static void
test_types_and_anonymous (void **state)
{
    int64_t received = s_now;
    char id[GL_ID_LEN + 1];
    t_create_id (U_AGENT1,
                 "{\"type\":\"suggestion\",\"channel\":\"suggestion_box\",\"language\":\"fr\","
                 "\"anonymous\":true,\"description\":\"Ouvrir le samedi\"}",
                 id);
    json_t *rec = t_get (U_SUPER, id, 200);
    assert_true (json_is_true (json_object_get (rec, "anonymous")));
    assert_true (json_is_null (json_object_get (rec, "phone")));
    assert_int_equal (t_int (rec, "acknowledge_due"), received + 72 * T_HOUR_MS);
    assert_int_equal (t_int (rec, "respond_due"), received + 720 * T_HOUR_MS);
    json_decref (rec);
    //  Anonymous: nobody to answer; acknowledged, then closed as unreachable without an answer.
    json_decref (t_act (U_SUPER, id, "acknowledge", NULL, 200));
    rec = t_act (U_SUPER, id, "close", "{\"outcome\":\"unreachable\"}", 200);
    assert_string_equal (t_str (rec, "status"), "closed");
    assert_true (json_is_null (json_object_get (rec, "answer")));
    json_decref (rec);

    //  Logged in a contact: the contact is the way back to the person.
    json_t *contact = t_call_json (U_AGENT1, "POST", "/api/v1/contacts",
                                   "{\"channel\":\"call\",\"anonymous\":true,"
                                   "\"language\":\"ar\",\"categories\":[\"education\"],"
                                   "\"outcome\":\"complaint_logged\"}",
                                   201);
    char body[300];
    snprintf (body, sizeof body,
              "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
              "\"contact_id\":\"%s\",\"description\":\"x\"}",
              t_str (contact, "id"));
    rec = t_call_json (U_AGENT2, "POST", "/api/v1/complaints", body, 201);
    assert_string_equal (t_str (rec, "contact_id"), t_str (contact, "id"));
    json_decref (rec);
    json_decref (contact);

    //  Feedback closed straight after acknowledgement with the answer given there and then.
    t_create_id (U_AGENT2,
                 "{\"type\":\"appreciation\",\"channel\":\"walk_in\",\"language\":\"en\","
                 "\"case_number\":\"ABC-123\",\"description\":\"thanks\"}",
                 id);
    json_decref (t_act (U_SUPER, id, "acknowledge", NULL, 200));
    rec = t_act (U_SUPER, id, "close",
                 "{\"outcome\":\"resolved\",\"answer\":\"thanked on the spot\"}", 200);
    assert_string_equal (t_str (rec, "answer"), "thanked on the spot");
    json_decref (rec);

    //  Listing by type and status.
    json_t *page = t_call_json (U_AGENT1, "GET",
                                "/api/v1/complaints?type=appreciation&status=closed", NULL, 200);
    assert_true (t_has_id (page, id));
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get (page, "items"), i, item)
        assert_string_equal (t_str (item, "type"), "appreciation");
    json_decref (page);
    t_call_error (U_AGENT1, "GET", "/api/v1/complaints?status=lost", NULL, 400,
                  "invalid_parameter", "status");
    t_call_error (U_AGENT1, "GET", "/api/v1/complaints?colour=red", NULL, 400,
                  "unknown_parameter", "colour");
}

static void
test_validation (void **state)
{
    const char *path = "/api/v1/complaints";
    t_call_error (U_AGENT1, "POST", path,
                  "{\"channel\":\"call\",\"language\":\"ar\",\"anonymous\":true,"
                  "\"description\":\"x\"}",
                  400, "missing_field", "type");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"rant\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"anonymous\":true,\"description\":\"x\"}",
                  400, "invalid_field", "type");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"anonymous\":true,\"phone\":\"0791234567\",\"description\":\"x\"}",
                  400, "invalid_field", "anonymous");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"description\":\"x\"}",
                  400, "missing_field", "anonymous");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"anonymous\":true,\"sensitive_kind\":\"gossip\",\"description\":\"x\"}",
                  400, "invalid_field", "sensitive_kind");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"Arabic!\","
                  "\"anonymous\":true,\"description\":\"x\"}",
                  400, "invalid_field", "language");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"anonymous\":true,\"description\":\"x\",\"mood\":\"bad\"}",
                  400, "unknown_field", "mood");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"contact_id\":\"not-an-id\",\"description\":\"x\"}",
                  400, "invalid_field", "contact_id");
    //  An oversized description.
    size_t big = 4100;
    char *body = malloc (big + 200);
    assert_non_null (body);
    int n = snprintf (body, big + 200,
                      "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                      "\"anonymous\":true,\"description\":\"");
    memset (body + n, 'a', big);
    snprintf (body + n + big, 200, "\"}");
    t_call_error (U_AGENT1, "POST", path, body, 400, "invalid_field", "description");
    free (body);
    //  A contact that does not exist.
    char nobody[GL_ID_LEN + 1], with_contact[256];
    gl_id_new (nobody);
    snprintf (with_contact, sizeof with_contact,
              "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
              "\"contact_id\":\"%s\",\"description\":\"x\"}",
              nobody);
    t_call_error (U_AGENT1, "POST", path, with_contact, 404, "not_found", "contact_id");
    //  Malformed JSON, and unknown complaints.
    assert_int_equal (t_call_status (U_AGENT1, "POST", path, "{\"type\":"), 400);
    char missing[GL_ID_LEN + 1];
    gl_id_new (missing);
    json_decref (t_get (U_SUPER, missing, 404));
    t_act_error (U_SUPER, missing, "acknowledge", NULL, 404, "not_found", NULL);
    json_decref (t_get (U_SUPER, "nope", 404));
}

//  --------------------------------------------------------------------------------------------
//  Sensitive complaints

static void
test_sensitive (void **state)
{
    t_secret ("SECRET-psea-allegation");
    char id[GL_ID_LEN + 1];
    json_t *rec = t_call_json (U_AGENT1, "POST", "/api/v1/complaints",
                               "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                               "\"anonymous\":true,\"sensitive_kind\":\"psea\","
                               "\"description\":\"SECRET-psea-allegation\"}",
                               201);
    snprintf (id, sizeof id, "%s", t_str (rec, "id"));
    assert_true (json_is_true (json_object_get (rec, "sensitive")));
    //  Sensitive deadlines: an hour to acknowledge.
    assert_int_equal (t_int (rec, "acknowledge_due"), t_int (rec, "received_at") + T_HOUR_MS);
    json_decref (rec);

    //  Nobody but the focal point sees it: not the agent who logged it, nor another agent, a
    //  supervisor, or protection staff outside the PSEA focal unit.
    int blind[] = { U_AGENT1, U_AGENT2, U_SUPER, U_PROT };
    for (size_t i = 0; i < 4; i++) {
        json_decref (t_get (blind[i], id, 404));
        json_t *page = t_call_json (blind[i], "GET", "/api/v1/complaints?limit=200", NULL, 200);
        assert_false (t_has_id (page, id));
        json_decref (page);
    }
    t_act_error (U_SUPER, id, "acknowledge", NULL, 404, "not_found", NULL);
    rec = t_get (U_FOCAL, id, 200);
    assert_string_equal (t_str (rec, "description"), "SECRET-psea-allegation");
    assert_string_equal (t_str (rec, "sensitive_kind"), "psea");
    json_decref (rec);
    json_t *page = t_call_json (U_FOCAL, "GET", "/api/v1/complaints?sensitive=true", NULL, 200);
    assert_true (t_has_id (page, id));
    json_decref (page);
    json_decref (t_act (U_FOCAL, id, "acknowledge", NULL, 200));

    //  Every read audited: the focal point's reads, the refused ones.
    char path[300];
    snprintf (path, sizeof path,
              "/api/v1/audit?record_type=complaint&action=read_denied&record_id=%s", id);
    page = t_call_json (U_SUPER, "GET", path, NULL, 200);
    assert_true (json_array_size (json_object_get (page, "items")) >= 4);
    json_decref (page);
    snprintf (path, sizeof path, "/api/v1/audit?record_type=complaint&action=read&record_id=%s",
              id);
    page = t_call_json (U_SUPER, "GET", path, NULL, 200);
    json_t *items = json_object_get (page, "items");
    assert_int_equal (json_array_size (items), 2);          //  the GET and the list
    size_t i;
    json_t *entry;
    json_array_foreach (items, i, entry)
        assert_string_equal (t_str (entry, "actor"), s_users[U_FOCAL].id);
    json_decref (page);

    //  The focal point was alerted at once: notification.requested to the PSEA unit.
    json_t *evs = t_wait_events ("notification.requested", id, 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_str (data, "template"), "complaint.sensitive");
    assert_string_equal (t_str (data, "priority"), "emergency");
    assert_true (gl_id_valid (t_str (data, "notification_id")));
    json_t *recipient = json_object_get (data, "recipient");
    assert_string_equal (t_str (recipient, "kind"), "unit");
    assert_string_equal (t_str (recipient, "code"), "psea-fp");
    assert_string_equal (json_string_value (json_array_get (json_object_get (data, "channels"),
                                                            0)),
                         "console");
    assert_string_equal (t_str (json_object_get (data, "params"), "complaint_id"), id);
    json_decref (evs);
    evs = t_wait_events ("complaint.received", id, 1);
    data = json_object_get (json_array_get (evs, 0), "data");
    assert_true (json_is_true (json_object_get (data, "sensitive")));
    json_decref (evs);

    //  Fraud goes to protection staff (the default focal point: the protection role).
    t_create_id (U_AGENT1,
                 "{\"type\":\"complaint\",\"channel\":\"sms\",\"language\":\"en\","
                 "\"anonymous\":true,\"sensitive_kind\":\"fraud\",\"description\":\"d\"}",
                 id);
    json_decref (t_get (U_PROT, id, 200));
    json_decref (t_get (U_SUPER, id, 404));
    evs = t_wait_events ("notification.requested", id, 1);
    recipient = json_object_get (json_object_get (json_array_get (evs, 0), "data"), "recipient");
    assert_string_equal (t_str (recipient, "kind"), "role");
    assert_string_equal (t_str (recipient, "role"), "protection");
    json_decref (evs);
}

//  An ordinary complaint found to be about staff misconduct: made sensitive, alerted, hidden.
static void
test_made_sensitive (void **state)
{
    char id[GL_ID_LEN + 1];
    t_create_id (U_AGENT1,
                 "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                 "\"case_number\":\"XYZ-9\",\"description\":\"d\"}",
                 id);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/complaints/%s", id);
    t_call_error (U_SUPER, "PATCH", path, "{}", 400, "missing_field", NULL);
    t_call_error (U_SUPER, "PATCH", path, "{\"sensitive_kind\":\"bad\"}", 400, "invalid_field",
                  "sensitive_kind");
    json_t *rec = t_call_json (U_SUPER, "PATCH", path,
                               "{\"sensitive_kind\":\"staff_misconduct\",\"category\":\"conduct\"}",
                               200);
    assert_true (json_is_true (json_object_get (rec, "sensitive")));
    assert_int_equal (t_int (rec, "acknowledge_due"), t_int (rec, "received_at") + T_HOUR_MS);
    json_decref (rec);
    //  The supervisor who reclassified it no longer sees it; the focal point (protection) does.
    json_decref (t_get (U_SUPER, id, 404));
    json_decref (t_get (U_AGENT1, id, 404));
    rec = t_get (U_PROT, id, 200);
    assert_string_equal (t_str (rec, "category"), "conduct");
    json_decref (rec);
    t_call_error (U_PROT, "PATCH", path, "{\"sensitive_kind\":null}", 422, "sensitive_kept",
                  "sensitive_kind");
    json_t *evs = t_wait_events ("complaint.updated", id, 1);
    json_t *changed = json_object_get (json_object_get (json_array_get (evs, 0), "data"),
                                       "changed");
    assert_int_equal (json_array_size (changed), 2);
    json_decref (evs);
    json_decref (t_wait_events ("notification.requested", id, 1));
}

static void
test_idempotency (void **state)
{
    const char *body = "{\"type\":\"feedback\",\"channel\":\"web\",\"language\":\"en\","
                       "\"anonymous\":true,\"description\":\"retry me\"}";
    t_resp_t a = t_call (U_AGENT1, "POST", "/api/v1/complaints", "Idempotency-Key: k-1\r\n", body);
    t_expect (&a, 201);
    t_resp_t b = t_call (U_AGENT1, "POST", "/api/v1/complaints", "Idempotency-Key: k-1\r\n", body);
    t_expect (&b, 201);
    json_t *ja = t_json (&a), *jb = t_json (&b);
    assert_string_equal (t_str (ja, "id"), t_str (jb, "id"));
    assert_non_null (gl_test_http_header (&b, "Idempotent-Replayed"));
    json_decref (t_wait_events ("complaint.received", t_str (ja, "id"), 1));
    json_decref (ja);
    json_decref (jb);
    gl_test_http_free (&a);
    gl_test_http_free (&b);
    t_resp_t c = t_call (U_AGENT1, "POST", "/api/v1/complaints", "Idempotency-Key: k-1\r\n",
                         "{\"type\":\"feedback\",\"channel\":\"web\",\"language\":\"en\","
                         "\"anonymous\":true,\"description\":\"another\"}");
    t_expect (&c, 409);
    gl_test_http_free (&c);
}


//  --------------------------------------------------------------------------------------------
//  A record and its events, never one without the other

//  Forbid (or allow again) intake's writes to the bus log, and only those: Redis's ACL lets the
//  default user write everything but gl:log:*, which it may still read.
static void
t_log_writable (bool writable)
{
    redisReply *r = writable ? gl_redis_cmd (s_rc, "ACL SETUSER default resetkeys ~*")
                             : gl_redis_cmd (s_rc, "ACL SETUSER default resetkeys ~intake:* "
                                                   "~gl:src:* ~gl:sources ~gl:cur:* "
                                                   "~gl:lease:* %%R~gl:log:*");
    assert_non_null (r);
    assert_int_equal (r->type, REDIS_REPLY_STATUS);
    freeReplyObject (r);
}

static long long
t_outbox_len (void)
{
    redisReply *r = gl_redis_cmd (s_rc, "HLEN intake:{intake}:outbox");
    assert_non_null (r);
    long long n = r->integer;
    freeReplyObject (r);
    return n;
}

//  The appends fail after a sensitive complaint was stored with its two events, and intake is
//  killed before its sweep could deliver them: the restarted intake delivers both, once; a
//  transition whose append fails while intake runs is delivered by the sweep.
static void
test_outbox (void **state)
{
    t_log_writable (false);
    json_t *rec = t_call_json (U_AGENT1, "POST", "/api/v1/complaints",
                               "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                               "\"anonymous\":true,\"sensitive_kind\":\"psea\","
                               "\"description\":\"d\"}",
                               201);
    char id[GL_ID_LEN + 1];
    snprintf (id, sizeof id, "%s", t_str (rec, "id"));
    json_decref (rec);
    kill (s_in->pid, SIGKILL);
    assert_true (WIFSIGNALED (gl_test_wait (s_in->pid, 10000)));
    s_in->pid = -1;
    json_t *evs = t_events (NULL, id);
    assert_int_equal (json_array_size (evs), 0);
    json_decref (evs);
    assert_int_equal (t_outbox_len (), 2);
    t_log_writable (true);
    //  The dead process's lease expires on the business clock first.
    t_clock_write (s_now + 11000);
    assert_int_equal (gl_testintake_restart (s_in, NULL), 0);
    json_decref (t_wait_events ("complaint.received", id, 1));
    json_decref (t_wait_events ("notification.requested", id, 1));
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (t_outbox_len () > 0 && gl_mono_ms () < deadline)
        gl_sleep_ms (50);
    assert_int_equal (t_outbox_len (), 0);

    t_log_writable (false);
    json_decref (t_act (U_FOCAL, id, "acknowledge", NULL, 200));
    assert_int_equal (t_outbox_len (), 1);
    t_log_writable (true);
    json_decref (t_wait_events ("complaint.acknowledged", id, 1));
    gl_sleep_ms (300);
    json_decref (t_wait_events ("complaint.received", id, 1));
}


//  No description, response, answer or phone number the tests sent is in intake's log (nor in
//  any event: every t_events call checks).
static void
test_no_personal_data (void **state)
{
    json_decref (t_events (NULL, NULL));
    char *text = gl_testintake_log (s_in);
    assert_non_null (text);
    assert_true (strlen (text) > 0);
    for (int i = 0; i < s_in->secretc; i++) {
        if (strstr (text, s_in->secrets[i]))
            fprintf (stderr, "personal data in intake's log: %s\n", s_in->secrets[i]);
        assert_null (strstr (text, s_in->secrets[i]));
    }
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_lifecycle),
        cmocka_unit_test (test_types_and_anonymous),
        cmocka_unit_test (test_validation),
        cmocka_unit_test (test_sensitive),
        cmocka_unit_test (test_made_sensitive),
        cmocka_unit_test (test_idempotency),
        cmocka_unit_test (test_outbox),
        cmocka_unit_test (test_no_personal_data),
    };
    return cmocka_run_group_tests_name ("intake complaints", tests, t_setup, t_teardown);
}
