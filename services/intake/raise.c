/*  raise — an agent raises an emergency or requests a referral (docs/api/raise.md).

    Both are events on intake's own log (emergency.raised, referral.requested), written through
    the outbox (contacts.h) together with intake's record of them, which keeps what the event
    must not carry (the agent's notes). The agent is answered 202 as soon as the record and its
    event are safe in Redis: referral, which acts on them, may be down; it takes them from the
    log when it is back. An emergency's append also waits for a Redis replica's acknowledgement
    where replicas exist (GL_PUB_CRITICAL).

    Both take an Idempotency-Key header: a retry after a timeout with the same key and body
    gets the same id, and nothing is raised twice.

    Keys (the {intake} slot):
      intake:{intake}:emergency:<id>      hash  the emergency as raised, with its notes
      intake:{intake}:emergencies:time    zset  ids by time
      intake:{intake}:referral:<id>       hash  the referral request, with its notes
      intake:{intake}:referrals:time      zset  ids by time
*/
#include "audit.h"
#include "contacts.h"
#include "intake.h"
#include "gl/gl_event.h"
#include "gl/gl_clock.h"
#include "gl/gl_pub.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_emergency_types[]
    = { "threat_to_life", "medical",  "violence_or_abuse", "child_at_risk",
        "detention_or_refoulement", "suicide_risk", NULL };
static const char *const s_priorities[] = { "low", "normal", "high", "emergency", NULL };

//  What one kind of raised record is.
typedef struct {
    const char *kind;           //  "emergency", "referral": record type in keys and the audit
    const char *scope;          //  idempotency scope, "emergencies", "referrals"
    const char *id_field;       //  "emergency_id", "referral_id"
    const char *event;          //  event type
    int flags;                  //  gl_pub_send flags
} s_kind_t;

static const s_kind_t s_emergency = { "emergency", "emergencies", "emergency_id",
                                      "emergency.raised", GL_PUB_CRITICAL };
static const s_kind_t s_referral = { "referral", "referrals", "referral_id",
                                     "referral.requested", 0 };

//  Fields of the stored record, typed for reading back (everything else is a string).
static const char *const s_bool_fields[] = { "callback_possible", "consent", NULL };
static const char *const s_int_fields[] = { "created_at", NULL };

static bool
s_in (const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp (list[i], s) == 0)
            return true;
    return false;
}

//  The contact named by field, which the caller must be able to see. 0 with *rec (NULL when
//  the field is absent), or -1 after answering 404 naming the field (or 503).
static int
s_contact (intake_t *intake, http_req_t *req, const char *id, json_t **rec)
{
    *rec = NULL;
    if (!id)
        return 0;
    int rc = contacts_read (intake, id, rec);
    if (rc < 0) {
        http_reply_error (req, 503, "unavailable", "storage unreachable; retry", NULL);
        return -1;
    }
    if (rc > 0 || !contacts_visible (*rec, http_caller (req))) {
        json_decref (*rec);
        *rec = NULL;
        http_reply_error (req, 404, "not_found", "no such contact", "contact_id");
        return -1;
    }
    return 0;
}

//  Store fields (a JSON object of strings, bools, integers and nulls) as the record of kind
//  with its event (data), and answer 202 {<id_field>: id}; or replay an earlier answer for the
//  same Idempotency-Key.
static int
s_raise (intake_t *intake, http_req_t *req, const s_kind_t *kind, json_t *fields, json_t *data)
{
    bool has_idem = false;
    char idem_key[160], body_hash[CONTACTS_HASH_HEX + 1];
    if (contacts_idempotency (intake, req, kind->scope, &has_idem, idem_key, sizeof idem_key,
                              body_hash))
        return -1;
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    int64_t now = gl_now_ms ();
    json_object_set_new (fields, "id", json_string (id));
    json_object_set_new (fields, "created_at", json_integer (now));
    json_object_set_new (data, kind->id_field, json_string (id));

    //  The hash fields: name, value pairs (nulls are not stored).
    size_t n = 0;
    const char **argv = calloc (2 * json_object_size (fields), sizeof *argv);
    char (*nums)[24] = calloc (json_object_size (fields), sizeof *nums);
    const char *key;
    json_t *value;
    json_object_foreach (fields, key, value) {
        if (!argv || !nums || json_is_null (value))
            continue;
        const char *text = json_string_value (value);
        if (json_is_boolean (value))
            text = json_is_true (value) ? "1" : "0";
        else if (json_is_integer (value)) {
            snprintf (nums[n], sizeof nums[n], "%" JSON_INTEGER_FORMAT,
                      json_integer_value (value));
            text = nums[n];
        }
        argv[2 * n] = key;
        argv[2 * n + 1] = text;
        n++;
    }
    char record_key[96], index[96], idem_value[GL_ID_LEN + CONTACTS_HASH_HEX + 2];
    snprintf (record_key, sizeof record_key, CONTACTS_PREFIX "%s:%s", kind->kind, id);
    snprintf (index, sizeof index, CONTACTS_PREFIX "%s:time", kind->scope);
    snprintf (idem_value, sizeof idem_value, "%s %s", id, body_hash);
    contacts_write_t w = { .record_key = record_key, .id = id, .created_at = now,
                           .idem_key = has_idem ? idem_key : NULL, .idem_value = idem_value,
                           .nindex = 1, .index = { index }, .nfields = n, .fields = argv };
    //  The audit entry is written by the same script as the record (one round trip).
    audit_entry_t audit;
    if (audit_entry_req (intake, req, "create", kind->kind, id, "", &audit) == 0)
        w.audit = &audit;
    gl_event_t *ev = gl_event_new (kind->event);
    char stored[GL_ID_LEN + CONTACTS_HASH_HEX + 2] = "";
    int rc = -1;
    if (ev && argv && nums) {
        json_decref (ev->data);
        ev->data = json_incref (data);
        gl_event_set_corr (ev, id);
        rc = contacts_write_new (intake, &w, ev, kind->flags, NULL, stored, sizeof stored);
    }
    gl_event_destroy (&ev);
    free (argv);
    free (nums);
    if (rc < 0)
        return http_reply_error (req, 503, "unavailable", "storage unreachable; retry", NULL);
    if (rc == 1) {
        const char *space = strchr (stored, ' ');
        if (!space || space - stored != GL_ID_LEN || strcmp (space + 1, body_hash) != 0)
            return http_reply_error (req, 409, "idempotency_conflict",
                                     "this Idempotency-Key was used with another body", NULL);
        memcpy (id, stored, GL_ID_LEN);
        id[GL_ID_LEN] = 0;
        http_set_header (req, "Idempotent-Replayed", "true");
    }
    return http_reply_json (req, 202, json_pack ("{s:s}", kind->id_field, id));
}

//  POST /api/v1/emergencies
static int
s_emergency_raise (intake_t *intake, http_req_t *req)
{
    static const char *const allowed[]
        = { "contact_id", "call_id", "type", "location", "callback_possible", "notes", NULL };
    const char *contact_id = NULL, *call_id = NULL, *type = NULL, *location = NULL;
    const char *notes = NULL;
    bool callback = false;
    if (http_body_only (req, allowed) || http_body_id (req, "contact_id", false, &contact_id)
        || http_body_id (req, "call_id", false, &call_id)
        || http_body_enum (req, "type", true, s_emergency_types, &type)
        || http_body_str (req, "location", false, GL_EVENT_LOCATION_MAX, &location)
        || http_body_bool (req, "callback_possible", true, &callback)
        || http_body_str (req, "notes", false, CONTACTS_NOTES_MAX, &notes))
        return -1;
    if (!contact_id && !call_id)
        return http_reply_error (req, 400, "missing_field", "give contact_id or call_id (or both)",
                                 "contact_id");
    if (location && !gl_event_location_valid (location))
        return http_reply_error (req, 400, "invalid_field",
                                 "'location' must be a location code: letters, digits, '_', '.', "
                                 "'-'",
                                 "location");
    json_t *contact = NULL;
    if (s_contact (intake, req, contact_id, &contact))
        return -1;
    const http_caller_t *who = http_caller (req);
    json_t *language = contact ? json_object_get (contact, "language") : NULL;
    json_t *fields = json_pack ("{s:s?, s:s?, s:s, s:s?, s:b, s:s?, s:s, s:O?}", "contact_id",
                                contact_id, "call_id", call_id, "type", type, "location",
                                location, "callback_possible", callback, "notes",
                                notes && *notes ? notes : NULL, "agent_id", who->user_id,
                                "language", language);
    json_t *data = json_pack ("{s:s, s:s?, s:s?, s:s?, s:b, s:s, s:O?}", "type", type,
                              "contact_id", contact_id, "call_id", call_id, "location", location,
                              "callback_possible", callback, "agent_id", who->user_id,
                              "language", language);
    json_decref (contact);
    int rc = fields && data ? s_raise (intake, req, &s_emergency, fields, data)
                            : http_reply_error (req, 500, "internal", "out of memory", NULL);
    json_decref (fields);
    json_decref (data);
    return rc;
}

//  POST /api/v1/referrals
static int
s_referral_request (intake_t *intake, http_req_t *req)
{
    static const char *const allowed[]
        = { "contact_id", "category", "priority", "consent", "notes", NULL };
    const char *contact_id = NULL, *category = NULL, *priority = NULL, *notes = NULL;
    bool consent = false;
    if (http_body_only (req, allowed) || http_body_id (req, "contact_id", true, &contact_id)
        || http_body_str (req, "category", true, TAXONOMY_CODE_MAX, &category)
        || http_body_enum (req, "priority", true, s_priorities, &priority)
        || http_body_bool (req, "consent", true, &consent)
        || http_body_str (req, "notes", false, CONTACTS_NOTES_MAX, &notes))
        return -1;
    if (!taxonomy_find (contacts_taxonomy (intake), category, NULL, NULL))
        return http_reply_error (req, 400, "invalid_field",
                                 "'category' must be a category code of the taxonomy", "category");
    if (!consent && strcmp (priority, "emergency") != 0)
        return http_reply_error (req, 400, "invalid_field",
                                 "a referral needs the caller's consent unless its priority is "
                                 "emergency",
                                 "consent");
    json_t *contact = NULL;
    if (s_contact (intake, req, contact_id, &contact))
        return -1;
    const http_caller_t *who = http_caller (req);
    json_t *language = json_object_get (contact, "language");
    json_t *fields = json_pack ("{s:s, s:s, s:s, s:b, s:s?, s:s, s:O?}", "contact_id", contact_id,
                                "category", category, "priority", priority, "consent", consent,
                                "notes", notes && *notes ? notes : NULL, "agent_id", who->user_id,
                                "language", language);
    json_t *data = json_pack ("{s:s, s:s, s:s, s:b, s:s, s:O?}", "contact_id", contact_id,
                              "category", category, "priority", priority, "consent", consent,
                              "agent_id", who->user_id, "language", language);
    json_decref (contact);
    int rc = fields && data ? s_raise (intake, req, &s_referral, fields, data)
                            : http_reply_error (req, 500, "internal", "out of memory", NULL);
    json_decref (fields);
    json_decref (data);
    return rc;
}

//  GET /api/v1/emergencies/{id}, /api/v1/referrals/{id}: intake's record, notes included.
//  Agents see the ones they raised (others answer 404); supervisors and protection staff every
//  one. Audited before it is answered.
static int
s_read (intake_t *intake, http_req_t *req, const s_kind_t *kind)
{
    const char *id = http_param (req, "id");
    if (!gl_id_valid (id))
        return http_reply_error (req, 404, "not_found", "no such record", NULL);
    redisReply *r = gl_redis_cmd (intake->redis, "HGETALL " CONTACTS_PREFIX "%s:%s", kind->kind,
                                  id);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return http_reply_error (req, 503, "unavailable", "storage unreachable; retry", NULL);
    }
    json_t *rec = json_object ();
    for (size_t i = 0; rec && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        json_t *value = s_in (s_bool_fields, k->str)  ? json_boolean (strcmp (v->str, "1") == 0)
                        : s_in (s_int_fields, k->str) ? json_integer (strtoll (v->str, NULL, 10))
                                                      : json_stringn (v->str, v->len);
        json_object_set_new (rec, k->str, value);
    }
    freeReplyObject (r);
    const http_caller_t *who = http_caller (req);
    const char *author = json_string_value (json_object_get (rec, "agent_id"));
    bool visible = (who->roles & (GL_ROLE_SUPERVISOR | GL_ROLE_PROTECTION))
                   || (author && strcmp (author, who->user_id) == 0);
    if (json_object_size (rec) == 0 || !visible) {
        json_decref (rec);
        return http_reply_error (req, 404, "not_found", "no such record", NULL);
    }
    if (audit_record_req (intake, req, "read", kind->kind, id, "") != 0) {
        json_decref (rec);
        return http_reply_error (req, 503, "unavailable", "cannot audit the read now; retry",
                                 NULL);
    }
    //  The record's own id field is "id"; the API names it as the POST answered it.
    json_object_set (rec, kind->id_field, json_object_get (rec, "id"));
    json_object_del (rec, "id");
    return http_reply_json (req, 200, rec);
}

static int
s_emergency_get (intake_t *intake, http_req_t *req)
{
    return s_read (intake, req, &s_emergency);
}

static int
s_referral_get (intake_t *intake, http_req_t *req)
{
    return s_read (intake, req, &s_referral);
}

void
api_raise_routes (intake_t *intake)
{
    http_t *http = intake->http;
    uint32_t raisers = GL_ROLE_AGENT | GL_ROLE_SUPERVISOR;
    uint32_t readers = GL_ROLE_AGENT | GL_ROLE_SUPERVISOR | GL_ROLE_PROTECTION;
    http_route (http, "POST", "/api/v1/emergencies", raisers, s_emergency_raise);
    http_route (http, "GET", "/api/v1/emergencies/{id}", readers, s_emergency_get);
    http_route (http, "POST", "/api/v1/referrals", raisers, s_referral_request);
    http_route (http, "GET", "/api/v1/referrals/{id}", readers, s_referral_get);
}
