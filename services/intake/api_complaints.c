/*  api_complaints — the complaints and feedback API (docs/api/complaints.md). Settings,
    deadlines and visibility are in complaints.c, storage in docstore.c.

    Who may do what:
      - agents, supervisors and protection staff log complaints and read them; supervisors and
        protection staff handle them (classify, acknowledge, start, respond, close);
      - a sensitive complaint (PSEA, fraud, staff misconduct) exists only for the designated
        focal point (complaints_visible): to anyone else it answers 404 and is left out of
        lists, even for the agent who logged it, once logged;
      - every read of a complaint is audited before it is answered (detail "sensitive" for a
        sensitive one), every denied read of a sensitive one too, and every change after it is
        made.

    The states: received → acknowledged → in_progress → responded → closed. in_progress may be
    skipped; closing needs the answer given to the person (the response, or an answer in the
    close request) unless the person could not be reached or withdrew; closing a complaint never
    acknowledged is refused unless GL_INTAKE_CFM_CLOSE_UNACKNOWLEDGED allows it.
*/
#include "audit.h"
#include "complaints.h"
#include "contacts.h"
#include "docstore.h"
#include "auth.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_pub.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY       CONTACTS_PREFIX "complaint:"
#define S_INDEX     CONTACTS_PREFIX "complaints:time"

static const char *const s_types[] = { "complaint", "feedback", "suggestion", "appreciation",
                                       NULL };
static const char *const s_channels[] = { "call", "walk_in", "sms", "email", "web", "letter",
                                          "suggestion_box", NULL };
static const char *const s_kinds[] = { "psea", "fraud", "staff_misconduct", NULL };
static const char *const s_statuses[] = { "received", "acknowledged", "in_progress", "responded",
                                          "closed", NULL };
static const char *const s_response_channels[] = { "call", "sms", "email", "in_person", "letter",
                                                    "notice", NULL };
static const char *const s_outcomes[] = { "resolved", "not_resolved", "referred", "withdrawn",
                                          "unreachable", NULL };

//  Fields a list shows (no description, response, answer or identifiers).
static const char *const s_summary[]
    = { "id",        "type",          "channel",     "language",       "category",
        "sensitive", "sensitive_kind", "anonymous",  "status",         "received_at",
        "acknowledge_due", "respond_due", "assigned_to", "contact_id", "overdue",
        "overdue_kind", "version", NULL };

static const char *
s_str (const json_t *rec, const char *name)
{
    return docstore_str (rec, name);
}

static bool
s_is (const json_t *rec, const char *name, const char *value)
{
    const char *s = s_str (rec, name);
    return s && strcmp (s, value) == 0;
}

//  The record as the API shows it: with "overdue" and "overdue_kind" as of now.
static json_t *
s_view (const json_t *rec)
{
    json_t *view = json_deep_copy (rec);
    if (!view)
        return NULL;
    int64_t now = gl_now_ms ();
    const char *kind = NULL;
    if (s_is (rec, "status", "received") && now > docstore_int (rec, "acknowledge_due", INT64_MAX))
        kind = "acknowledge";
    else if ((s_is (rec, "status", "received") || s_is (rec, "status", "acknowledged")
              || s_is (rec, "status", "in_progress"))
             && now > docstore_int (rec, "respond_due", INT64_MAX))
        kind = "respond";
    json_object_set_new (view, "overdue", json_boolean (kind != NULL));
    json_object_set_new (view, "overdue_kind", kind ? json_string (kind) : json_null ());
    return view;
}

static json_t *
s_summary_of (const json_t *view)
{
    json_t *item = json_object ();
    for (size_t i = 0; item && s_summary[i]; i++)
        json_object_set (item, s_summary[i], json_object_get (view, s_summary[i]));
    return item;
}

static gl_event_t *
s_event (const json_t *rec, const char *type)
{
    return complaints_event (rec, type);
}

//  notification.requested to the focal point of a sensitive complaint (the contract in
//  docs/events.md): ids and codes only.
static gl_event_t *
s_alert (intake_t *intake, const json_t *rec)
{
    gl_event_t *ev = gl_event_new ("notification.requested");
    if (!ev)
        return NULL;
    char nid[GL_ID_LEN + 1];
    gl_id_new (nid);
    json_t *channels = NULL;
    json_t *recipient
        = complaints_focal_recipient (intake, s_str (rec, "sensitive_kind"), &channels);
    json_t *params = json_pack ("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "complaint_id",
                                json_object_get (rec, "id"), "kind",
                                json_object_get (rec, "sensitive_kind"), "type",
                                json_object_get (rec, "type"), "channel",
                                json_object_get (rec, "channel"), "received_at",
                                json_object_get (rec, "received_at"), "acknowledge_due",
                                json_object_get (rec, "acknowledge_due"));
    if (!recipient || !channels || !params) {
        json_decref (channels);
        json_decref (recipient);
        json_decref (params);
        gl_event_destroy (&ev);
        return NULL;
    }
    //  json_pack takes the three references ("o"), also when it fails.
    json_t *data = json_pack ("{s:s, s:s, s:s, s:o, s:o, s:n, s:o}", "notification_id", nid,
                              "template", "complaint.sensitive", "priority", "emergency",
                              "channels", channels, "recipient", recipient, "language", "params",
                              params);
    if (!data) {
        gl_event_destroy (&ev);
        return NULL;
    }
    json_decref (ev->data);
    ev->data = data;
    gl_event_set_corr (ev, s_str (rec, "id"));
    return ev;
}

//  --------------------------------------------------------------------------------------------
//  POST /api/v1/complaints

static int
s_bad (http_req_t *req, const char *code, const char *field, const char *message)
{
    http_reply_error (req, 400, code, message, field);
    return -1;
}

//  Validate the body of a new complaint into rec. -1 after answering.
static int
s_parse_new (intake_t *intake, http_req_t *req, json_t *rec)
{
    static const char *const fields[]
        = { "type",       "channel",     "language",   "category",   "sensitive_kind",
            "anonymous",  "contact_id",  "case_number", "phone",     "description", NULL };
    const char *type = NULL, *channel = NULL, *language = NULL, *category = NULL, *kind = NULL,
               *contact_id = NULL, *case_number = NULL, *phone = NULL, *description = NULL;
    bool anonymous = false;
    if (http_body_only (req, fields) || http_body_enum (req, "type", true, s_types, &type)
        || http_body_enum (req, "channel", true, s_channels, &channel)
        || http_body_str (req, "language", true, 15, &language)
        || http_body_str (req, "category", false, COMPLAINTS_CODE_MAX, &category)
        || http_body_bool (req, "anonymous", false, &anonymous)
        || http_body_id (req, "contact_id", false, &contact_id)
        || http_body_str (req, "case_number", false, CONTACTS_NUMBER_MAX, &case_number)
        || http_body_str (req, "phone", false, CONTACTS_PHONE_MAX, &phone)
        || http_body_str (req, "description", true, COMPLAINTS_TEXT_MAX, &description))
        return -1;
    const json_t *k = json_object_get (http_body (req), "sensitive_kind");
    if (k && !json_is_null (k) && http_body_enum (req, "sensitive_kind", false, s_kinds, &kind))
        return -1;
    if (!auth_language_valid (language))
        return s_bad (req, "invalid_field", "language",
                      "'language' must be a language code such as \"ar\" or \"fr-CA\"");
    if (category && !docstore_code_valid (category, COMPLAINTS_CODE_MAX))
        return s_bad (req, "invalid_field", "category",
                      "'category' must be a code: [a-z0-9_.-], starting with a letter or digit");
    char norm_case[CONTACTS_NUMBER_MAX + 8] = "", norm_phone[CONTACTS_PHONE_MAX + 8] = "";
    if (case_number && *case_number
        && contacts_number_normalise (case_number, norm_case, sizeof norm_case) != 0)
        return s_bad (req, "invalid_field", "case_number",
                      "'case_number' must be letters and digits");
    if (phone && *phone
        && contacts_phone_normalise (phone, contacts_country (intake), norm_phone,
                                     sizeof norm_phone)
               != 0)
        return s_bad (req, "invalid_field", "phone", "'phone' is not a phone number");
    bool identified = contact_id || *norm_case || *norm_phone;
    if (anonymous && identified)
        return s_bad (req, "invalid_field", "anonymous",
                      "an anonymous complaint carries no contact_id, case_number or phone");
    if (!anonymous && !identified)
        return s_bad (req, "missing_field", "anonymous",
                      "give contact_id, case_number or phone to answer the person, or set "
                      "anonymous to true");
    json_object_set_new (rec, "type", json_string (type));
    json_object_set_new (rec, "channel", json_string (channel));
    json_object_set_new (rec, "language", json_string (language));
    json_object_set_new (rec, "category", category && *category ? json_string (category)
                                                                : json_null ());
    json_object_set_new (rec, "sensitive", json_boolean (kind != NULL));
    json_object_set_new (rec, "sensitive_kind", kind ? json_string (kind) : json_null ());
    json_object_set_new (rec, "anonymous", json_boolean (anonymous));
    json_object_set_new (rec, "contact_id", contact_id ? json_string (contact_id) : json_null ());
    json_object_set_new (rec, "case_number", *norm_case ? json_string (norm_case) : json_null ());
    json_object_set_new (rec, "phone", *norm_phone ? json_string (norm_phone) : json_null ());
    json_object_set_new (rec, "description", json_string (description));
    return 0;
}

//  A retry with an Idempotency-Key already used: the same answer, or 409 for another body.
static int
s_replay (intake_t *intake, http_req_t *req, const char *stored, const char *body_hash)
{
    const char *space = strchr (stored, ' ');
    if (!space || space - stored != GL_ID_LEN || strcmp (space + 1, body_hash) != 0)
        return http_reply_error (req, 409, "idempotency_conflict",
                                 "this Idempotency-Key was used with another body", NULL);
    char key[128];
    snprintf (key, sizeof key, S_KEY "%.*s", GL_ID_LEN, stored);
    json_t *rec = NULL;
    int rc = docstore_read (intake, key, &rec, NULL);
    if (rc < 0)
        return docstore_unavailable (req);
    if (rc > 0)
        return http_reply_error (req, 409, "idempotency_conflict",
                                 "this Idempotency-Key's complaint no longer exists", NULL);
    http_set_header (req, "Idempotent-Replayed", "true");
    json_t *view = s_view (rec);
    json_decref (rec);
    return http_reply_json (req, 201, view);
}

static int
s_create (intake_t *intake, http_req_t *req)
{
    const http_caller_t *who = http_caller (req);
    json_t *rec = json_object ();
    bool has_idem = false;
    char idem_key[160], body_hash[CONTACTS_HASH_HEX + 1];
    if (!rec)
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    if (s_parse_new (intake, req, rec)
        || contacts_idempotency (intake, req, "complaints", &has_idem, idem_key,
                                 sizeof idem_key, body_hash)) {
        json_decref (rec);
        return -1;
    }
    //  The contact it was logged in must exist, for this caller.
    const char *contact_id = s_str (rec, "contact_id");
    if (contact_id) {
        json_t *contact = NULL;
        int found = contacts_read (intake, contact_id, &contact);
        bool visible = found == 0 && contacts_visible (contact, who);
        json_decref (contact);
        if (found < 0) {
            json_decref (rec);
            return docstore_unavailable (req);
        }
        if (!visible) {
            json_decref (rec);
            return http_reply_error (req, 404, "not_found", "no such contact", "contact_id");
        }
    }
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    int64_t now = gl_now_ms (), ack_due, respond_due;
    bool sensitive = json_is_true (json_object_get (rec, "sensitive"));
    complaints_deadlines (intake, s_str (rec, "type"), sensitive, now, &ack_due, &respond_due);
    json_object_set_new (rec, "id", json_string (id));
    json_object_set_new (rec, "status", json_string ("received"));
    json_object_set_new (rec, "received_at", json_integer (now));
    json_object_set_new (rec, "created_by", json_string (who->user_id));
    json_object_set_new (rec, "acknowledge_due", json_integer (ack_due));
    json_object_set_new (rec, "respond_due", json_integer (respond_due));
    json_object_set_new (rec, "assigned_to", json_null ());
    json_object_set_new (rec, "response", json_null ());
    json_object_set_new (rec, "response_channel", json_null ());
    json_object_set_new (rec, "outcome", json_null ());
    json_object_set_new (rec, "answer", json_null ());
    json_object_set_new (rec, "version", json_integer (1));
    json_object_set_new (rec, "updated_at", json_integer (now));
    json_object_set_new (rec, "updated_by", json_string (who->user_id));
    json_object_set_new (rec, "history", json_pack ("[{s:s, s:I, s:s}]", "status", "received",
                                                    "at", (json_int_t) now, "by", who->user_id));

    char key[128], idem_value[GL_ID_LEN + CONTACTS_HASH_HEX + 2];
    snprintf (key, sizeof key, S_KEY "%s", id);
    snprintf (idem_value, sizeof idem_value, "%s %s", id, body_hash);
    docstore_tx_t *tx = docstore_tx_new (intake);
    if (!tx) {
        json_decref (rec);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    if (has_idem)
        docstore_tx_claim (tx, idem_key, idem_value, complaints_idem_ttl_ms (intake));
    docstore_tx_put (tx, key, rec, 0, 1);
    docstore_tx_zadd (tx, S_INDEX, now, id);
    complaints_due_index (tx, rec);
    gl_event_t *ev = s_event (rec, "complaint.received");
    docstore_tx_event (tx, &ev, 0);
    if (sensitive) {
        gl_event_t *alert = s_alert (intake, rec);
        docstore_tx_event (tx, &alert, GL_PUB_CRITICAL);
    }
    char stored[GL_ID_LEN + CONTACTS_HASH_HEX + 2] = "";
    int rc = docstore_tx_commit (&tx, stored, sizeof stored);
    if (rc == 1) {
        json_decref (rec);
        return s_replay (intake, req, stored, body_hash);
    }
    if (rc != 0) {
        json_decref (rec);
        return docstore_unavailable (req);
    }
    audit_record_req (intake, req, "create", "complaint", id, sensitive ? "sensitive" : "");
    json_t *view = s_view (rec);
    json_decref (rec);
    return http_reply_json (req, 201, view);
}

//  --------------------------------------------------------------------------------------------
//  GET /api/v1/complaints/{id}

//  Read the complaint of the path for the caller. 0 with *rec and *version, or -1 after
//  answering 404/503; a sensitive one the caller may not see answers 404, audited.
static int
s_load (intake_t *intake, http_req_t *req, json_t **rec, int64_t *version)
{
    const char *id = http_param (req, "id");
    if (!gl_id_valid (id))
        return http_reply_error (req, 404, "not_found", "no such complaint", NULL), -1;
    char key[128];
    snprintf (key, sizeof key, S_KEY "%s", id);
    int rc = docstore_read (intake, key, rec, version);
    if (rc < 0)
        return docstore_unavailable (req), -1;
    if (rc > 0)
        return http_reply_error (req, 404, "not_found", "no such complaint", NULL), -1;
    if (!complaints_visible (intake, *rec, http_caller (req))) {
        json_decref (*rec);
        *rec = NULL;
        if (audit_record_req (intake, req, "read_denied", "complaint", id, "sensitive") != 0)
            return docstore_unavailable (req), -1;
        return http_reply_error (req, 404, "not_found", "no such complaint", NULL), -1;
    }
    return 0;
}

static int
s_get (intake_t *intake, http_req_t *req)
{
    json_t *rec = NULL;
    int64_t version = 0;
    if (s_load (intake, req, &rec, &version))
        return -1;
    bool sensitive = json_is_true (json_object_get (rec, "sensitive"));
    if (audit_record_req (intake, req, "read", "complaint", http_param (req, "id"),
                          sensitive ? "sensitive" : "")
        != 0) {
        json_decref (rec);
        return http_reply_error (req, 503, "unavailable", "cannot audit the read now; retry",
                                 NULL);
    }
    json_t *view = s_view (rec);
    json_decref (rec);
    return http_reply_json (req, 200, view);
}

//  --------------------------------------------------------------------------------------------
//  GET /api/v1/complaints

typedef struct {
    http_req_t *req;
    const char *status;
    const char *type;
    int overdue;                        //  -1 any, 0 not overdue, 1 overdue
    int sensitive;                      //  -1 any
    bool audit_failed;
} s_list_t;

static bool
s_list_filter (intake_t *intake, void *arg, const json_t *doc, json_t **item)
{
    s_list_t *q = arg;
    if (!complaints_visible (intake, doc, http_caller (q->req)))
        return false;
    if ((q->status && !s_is (doc, "status", q->status))
        || (q->type && !s_is (doc, "type", q->type)))
        return false;
    bool sensitive = json_is_true (json_object_get (doc, "sensitive"));
    if (q->sensitive >= 0 && sensitive != (q->sensitive == 1))
        return false;
    json_t *view = s_view (doc);
    if (!view)
        return false;
    bool overdue = json_is_true (json_object_get (view, "overdue"));
    if (q->overdue >= 0 && overdue != (q->overdue == 1)) {
        json_decref (view);
        return false;
    }
    //  Every sensitive record shown is a read of it.
    if (sensitive
        && audit_record_req (intake, q->req, "read", "complaint", s_str (doc, "id"), "list")
               != 0) {
        q->audit_failed = true;
        json_decref (view);
        return false;
    }
    *item = s_summary_of (view);
    json_decref (view);
    return *item != NULL;
}

static int
s_list (intake_t *intake, http_req_t *req)
{
    static const char *const params[]
        = { "status", "type", "overdue", "sensitive", "limit", "cursor", NULL };
    http_page_t page;
    s_list_t q = { .req = req, .overdue = -1, .sensitive = -1 };
    bool overdue = false, sensitive = false;
    if (http_query_only (req, params) || http_page (req, &page))
        return -1;
    q.status = http_query (req, "status");
    q.type = http_query (req, "type");
    bool has_overdue = http_query (req, "overdue") != NULL,
         has_sensitive = http_query (req, "sensitive") != NULL;
    if (docstore_query_bool (req, "overdue", &overdue)
        || docstore_query_bool (req, "sensitive", &sensitive))
        return -1;
    if (has_overdue)
        q.overdue = overdue;
    if (has_sensitive)
        q.sensitive = sensitive;
    bool known = !q.status;
    for (size_t i = 0; !known && s_statuses[i]; i++)
        known = strcmp (q.status, s_statuses[i]) == 0;
    if (!known)
        return http_reply_error (req, 400, "invalid_parameter", "not a complaint status",
                                 "status");
    known = !q.type;
    for (size_t i = 0; !known && s_types[i]; i++)
        known = strcmp (q.type, s_types[i]) == 0;
    if (!known)
        return http_reply_error (req, 400, "invalid_parameter", "not a complaint type", "type");
    if (audit_record_req (intake, req, "search", "complaint", "", "list") != 0)
        return http_reply_error (req, 503, "unavailable", "cannot audit the search now; retry",
                                 NULL);
    json_t *items = NULL;
    char next[HTTP_CURSOR_MAX + 1];
    int rc = docstore_page (intake, S_INDEX, S_KEY, &page, s_list_filter, &q, &items, next);
    if (rc == 1)
        return http_reply_error (req, 400, "invalid_parameter",
                                 "'cursor' is not a cursor this API gave out", "cursor");
    if (rc != 0 || q.audit_failed) {
        json_decref (items);
        return docstore_unavailable (req);
    }
    return http_reply_page (req, items, *next ? next : NULL);
}

//  --------------------------------------------------------------------------------------------
//  Changes: PATCH and the transitions

//  Store rec (version + 1 over version) with its event; answer the new view. Consumes rec.
static int
s_store (intake_t *intake, http_req_t *req, json_t *rec, int64_t version, const char *ev_type,
         json_t *extra, bool alert, const char *audit_action)
{
    const http_caller_t *who = http_caller (req);
    int64_t now = gl_now_ms ();
    json_object_set_new (rec, "version", json_integer (version + 1));
    json_object_set_new (rec, "updated_at", json_integer (now));
    json_object_set_new (rec, "updated_by", json_string (who->user_id));
    char key[128];
    snprintf (key, sizeof key, S_KEY "%s", s_str (rec, "id"));
    docstore_tx_t *tx = docstore_tx_new (intake);
    gl_event_t *ev = s_event (rec, ev_type);
    if (!tx || !ev) {
        docstore_tx_destroy (&tx);
        gl_event_destroy (&ev);
        json_decref (extra);
        json_decref (rec);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    if (extra)
        json_object_update (ev->data, extra);
    json_decref (extra);
    json_object_set_new (ev->data, "by", json_string (who->user_id));
    docstore_tx_put (tx, key, rec, version, version + 1);
    complaints_due_index (tx, rec);
    docstore_tx_event (tx, &ev, 0);
    if (alert) {
        gl_event_t *a = s_alert (intake, rec);
        docstore_tx_event (tx, &a, GL_PUB_CRITICAL);
    }
    int rc = docstore_tx_commit (&tx, NULL, 0);
    if (rc != 0) {
        json_decref (rec);
        if (rc == 2)
            return http_reply_error (req, 409, "conflict",
                                     "the complaint changed meanwhile; read it and retry", NULL);
        return docstore_unavailable (req);
    }
    audit_record_req (intake, req, audit_action, "complaint", s_str (rec, "id"),
                      json_is_true (json_object_get (rec, "sensitive")) ? "sensitive" : "");
    json_t *view = s_view (rec);
    json_decref (rec);
    return http_reply_json (req, 200, view);
}

static void
s_history (json_t *rec, const char *status, int64_t at, const char *by)
{
    json_t *h = json_object_get (rec, "history");
    if (!json_is_array (h)) {
        h = json_array ();
        json_object_set_new (rec, "history", h);
    }
    json_array_append_new (h, json_pack ("{s:s, s:I, s:s}", "status", status, "at",
                                         (json_int_t) at, "by", by));
}

static int
s_conflict (http_req_t *req, const char *message)
{
    return http_reply_error (req, 409, "invalid_transition", message, "status");
}

static int
s_patch (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "category", "sensitive_kind", "assigned_to", NULL };
    const json_t *body = http_body (req);
    const char *category = NULL, *kind = NULL, *assigned = NULL;
    if (http_body_only (req, fields))
        return -1;
    const json_t *c = json_object_get (body, "category");
    const json_t *k = json_object_get (body, "sensitive_kind");
    const json_t *a = json_object_get (body, "assigned_to");
    //  Each may be null: no category, not sensitive (refused below), nobody assigned.
    if ((c && !json_is_null (c)
         && http_body_str (req, "category", true, COMPLAINTS_CODE_MAX, &category))
        || (k && !json_is_null (k)
            && http_body_enum (req, "sensitive_kind", true, s_kinds, &kind))
        || (a && !json_is_null (a) && http_body_id (req, "assigned_to", true, &assigned)))
        return -1;
    if (category && !docstore_code_valid (category, COMPLAINTS_CODE_MAX))
        return s_bad (req, "invalid_field", "category",
                      "'category' must be a code: [a-z0-9_.-], starting with a letter or digit");
    if (!c && !k && !a)
        return s_bad (req, "missing_field", NULL, "nothing to change");
    json_t *rec = NULL;
    int64_t version = 0;
    if (s_load (intake, req, &rec, &version))
        return -1;
    if (s_is (rec, "status", "closed")) {
        json_decref (rec);
        return s_conflict (req, "a closed complaint cannot be changed");
    }
    bool was_sensitive = json_is_true (json_object_get (rec, "sensitive"));
    if (was_sensitive && k && json_is_null (k)) {
        json_decref (rec);
        return http_reply_error (req, 422, "sensitive_kept",
                                 "a sensitive complaint stays sensitive; change its kind instead",
                                 "sensitive_kind");
    }
    json_t *changed = json_array ();
    if (c && !json_equal (json_object_get (rec, "category"), c)) {
        json_object_set_new (rec, "category", category ? json_string (category) : json_null ());
        json_array_append_new (changed, json_string ("category"));
    }
    if (k && !json_equal (json_object_get (rec, "sensitive_kind"), k)) {
        json_object_set_new (rec, "sensitive_kind", kind ? json_string (kind) : json_null ());
        json_object_set_new (rec, "sensitive", json_boolean (kind != NULL));
        json_array_append_new (changed, json_string ("sensitive_kind"));
    }
    if (a && !json_equal (json_object_get (rec, "assigned_to"), a)) {
        json_object_set_new (rec, "assigned_to", assigned ? json_string (assigned) : json_null ());
        json_array_append_new (changed, json_string ("assigned_to"));
    }
    if (json_array_size (changed) == 0) {
        json_decref (changed);
        json_t *view = s_view (rec);
        json_decref (rec);
        return http_reply_json (req, 200, view);
    }
    bool now_sensitive = json_is_true (json_object_get (rec, "sensitive"));
    if (now_sensitive && !was_sensitive) {
        //  Sensitive from now on: its deadlines become the sensitive ones, when sooner.
        int64_t ack_due, respond_due;
        complaints_deadlines (intake, s_str (rec, "type"), true,
                              docstore_int (rec, "received_at", gl_now_ms ()), &ack_due,
                              &respond_due);
        if (ack_due < docstore_int (rec, "acknowledge_due", INT64_MAX))
            json_object_set_new (rec, "acknowledge_due", json_integer (ack_due));
        if (respond_due < docstore_int (rec, "respond_due", INT64_MAX))
            json_object_set_new (rec, "respond_due", json_integer (respond_due));
    }
    json_t *extra = json_pack ("{s:o, s:O?}", "changed", changed, "assigned_to",
                               json_object_get (rec, "assigned_to"));
    return s_store (intake, req, rec, version, "complaint.updated", extra,
                    now_sensitive && !was_sensitive, "update");
}

static int
s_acknowledge (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { NULL };
    if (http_body_only (req, fields))
        return -1;
    json_t *rec = NULL;
    int64_t version = 0;
    if (s_load (intake, req, &rec, &version))
        return -1;
    if (!s_is (rec, "status", "received")) {
        json_decref (rec);
        return s_conflict (req, "only a received complaint can be acknowledged; this one was "
                                "acknowledged already");
    }
    int64_t now = gl_now_ms ();
    const char *by = http_caller (req)->user_id;
    bool late = now > docstore_int (rec, "acknowledge_due", INT64_MAX);
    json_object_set_new (rec, "status", json_string ("acknowledged"));
    json_object_set_new (rec, "acknowledged_at", json_integer (now));
    json_object_set_new (rec, "acknowledged_by", json_string (by));
    s_history (rec, "acknowledged", now, by);
    return s_store (intake, req, rec, version, "complaint.acknowledged",
                    json_pack ("{s:I, s:b}", "acknowledged_at", (json_int_t) now, "late", late),
                    false, "acknowledge");
}

static int
s_start (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { NULL };
    if (http_body_only (req, fields))
        return -1;
    json_t *rec = NULL;
    int64_t version = 0;
    if (s_load (intake, req, &rec, &version))
        return -1;
    if (!s_is (rec, "status", "acknowledged")) {
        const char *message = s_is (rec, "status", "received")
                                  ? "acknowledge the complaint before starting work on it"
                                  : "work on this complaint has started already";
        json_decref (rec);
        return s_conflict (req, message);
    }
    int64_t now = gl_now_ms ();
    const char *by = http_caller (req)->user_id;
    json_object_set_new (rec, "status", json_string ("in_progress"));
    json_object_set_new (rec, "started_at", json_integer (now));
    json_object_set_new (rec, "started_by", json_string (by));
    s_history (rec, "in_progress", now, by);
    return s_store (intake, req, rec, version, "complaint.updated",
                    json_pack ("{s:[s]}", "changed", "status"), false, "update");
}

static int
s_respond (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "response", "response_channel", NULL };
    const char *response = NULL, *channel = NULL;
    if (http_body_only (req, fields)
        || http_body_str (req, "response", true, COMPLAINTS_TEXT_MAX, &response)
        || http_body_enum (req, "response_channel", true, s_response_channels, &channel))
        return -1;
    json_t *rec = NULL;
    int64_t version = 0;
    if (s_load (intake, req, &rec, &version))
        return -1;
    if (!s_is (rec, "status", "acknowledged") && !s_is (rec, "status", "in_progress")) {
        const char *message = s_is (rec, "status", "received")
                                  ? "acknowledge the complaint before responding to it"
                                  : "this complaint has been responded to already";
        json_decref (rec);
        return s_conflict (req, message);
    }
    int64_t now = gl_now_ms ();
    const char *by = http_caller (req)->user_id;
    bool late = now > docstore_int (rec, "respond_due", INT64_MAX);
    json_object_set_new (rec, "status", json_string ("responded"));
    json_object_set_new (rec, "responded_at", json_integer (now));
    json_object_set_new (rec, "responded_by", json_string (by));
    json_object_set_new (rec, "response", json_string (response));
    json_object_set_new (rec, "response_channel", json_string (channel));
    s_history (rec, "responded", now, by);
    return s_store (intake, req, rec, version, "complaint.responded",
                    json_pack ("{s:I, s:b, s:s}", "responded_at", (json_int_t) now, "late", late,
                               "response_channel", channel),
                    false, "respond");
}

static int
s_close (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "outcome", "answer", NULL };
    const char *outcome = NULL, *answer = NULL;
    if (http_body_only (req, fields) || http_body_enum (req, "outcome", true, s_outcomes, &outcome)
        || http_body_str (req, "answer", false, COMPLAINTS_TEXT_MAX, &answer))
        return -1;
    json_t *rec = NULL;
    int64_t version = 0;
    if (s_load (intake, req, &rec, &version))
        return -1;
    if (s_is (rec, "status", "closed")) {
        json_decref (rec);
        return s_conflict (req, "this complaint is closed already");
    }
    if (s_is (rec, "status", "received") && !complaints_close_unacknowledged (intake)) {
        json_decref (rec);
        return s_conflict (req, "a complaint never acknowledged cannot be closed (policy): "
                                "acknowledge it first");
    }
    bool no_answer_needed
        = strcmp (outcome, "unreachable") == 0 || strcmp (outcome, "withdrawn") == 0;
    bool has_answer = (answer && *answer) || s_is (rec, "status", "responded");
    if (!has_answer && !no_answer_needed) {
        json_decref (rec);
        return http_reply_error (req, 422, "answer_required",
                                 "closing needs the answer given to the person: respond first, "
                                 "or give 'answer' (or close as unreachable or withdrawn)",
                                 "answer");
    }
    int64_t now = gl_now_ms ();
    const char *by = http_caller (req)->user_id;
    json_object_set_new (rec, "status", json_string ("closed"));
    json_object_set_new (rec, "closed_at", json_integer (now));
    json_object_set_new (rec, "closed_by", json_string (by));
    json_object_set_new (rec, "outcome", json_string (outcome));
    if (answer && *answer)
        json_object_set_new (rec, "answer", json_string (answer));
    else if (!json_is_string (json_object_get (rec, "answer")))
        json_object_set (rec, "answer", json_object_get (rec, "response"));
    s_history (rec, "closed", now, by);
    bool late = json_integer_value (json_object_get (rec, "responded_at")) == 0
                && now > docstore_int (rec, "respond_due", INT64_MAX);
    return s_store (intake, req, rec, version, "complaint.closed",
                    json_pack ("{s:I, s:s, s:b, s:b}", "closed_at", (json_int_t) now, "outcome",
                               outcome, "answered", !json_is_null (json_object_get (rec, "answer")),
                               "late", late),
                    false, "close");
}

void
api_complaints_routes (intake_t *intake)
{
    http_t *http = intake->http;
    uint32_t staff = GL_ROLE_AGENT | GL_ROLE_SUPERVISOR | GL_ROLE_PROTECTION;
    uint32_t handlers = GL_ROLE_SUPERVISOR | GL_ROLE_PROTECTION;
    http_route (http, "POST", "/api/v1/complaints", staff, s_create);
    http_route (http, "GET", "/api/v1/complaints", staff, s_list);
    http_route (http, "GET", "/api/v1/complaints/{id}", staff, s_get);
    http_route (http, "PATCH", "/api/v1/complaints/{id}", handlers, s_patch);
    http_route (http, "POST", "/api/v1/complaints/{id}/acknowledge", handlers, s_acknowledge);
    http_route (http, "POST", "/api/v1/complaints/{id}/start", handlers, s_start);
    http_route (http, "POST", "/api/v1/complaints/{id}/respond", handlers, s_respond);
    http_route (http, "POST", "/api/v1/complaints/{id}/close", handlers, s_close);
}
