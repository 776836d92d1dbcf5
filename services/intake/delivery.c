/*  delivery — the bus request "intake.delivery_details": notifier and scheduler ask intake for a
    caller's phone and language when they must reach them (ARCHITECTURE.md: a service that needs
    personal data asks the owner by request, and that read is audited). Schema in
    docs/events.md ("intake: callers").

    Request body {person_ref: a case number, or the id of a call or contact verified for a case,
                  purpose: code, requester: the asking service's name}
    Reply 200    {phone: str | nil, phones: [str], language: str | nil}
    Errors       400 (field named), 404 not_found (no such case, or the contact is linked to
                 none), 503 unavailable (Redis, or the audit entry cannot be written: no audit,
                 no answer).

    The bus token (GL_BUS_TOKENS) says the caller is one of our services; requester says which,
    and is what the audit trail records as the actor.
*/
#include "audit.h"
#include "callers.h"
#include "calls.h"
#include "intake.h"
#include "gl/gl_log.h"
#include <string.h>

#define S_REQUESTER_MAX 32

static int
s_bad (gl_rep_error_t *err, const char *field, const char *why)
{
    return gl_rep_error (err, 400, "bad_request", field, "%s", why);
}

bool
delivery_requester_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n > S_REQUESTER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'
              || s[i] == '-'))
            return false;
    return true;
}

int
delivery_audit_read (intake_t *intake, const char *requester, const char *record_type,
                     const char *record_id, const char *purpose)
{
    http_caller_t who = { .roles = GL_ROLE_API_CLIENT };
    snprintf (who.user_id, sizeof who.user_id, "%s", requester);
    char detail[CALLERS_CODE_MAX + 1];
    snprintf (detail, sizeof detail, "%s", purpose);
    for (char *p = detail; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char) (*p - 'A' + 'a');
    return audit_record (intake, &who, "read", record_type, record_id, detail);
}

//  The number and IVR language a call came with, when no case is linked to it (an abandoned
//  call to call back). Audited as a read of the call's number, like an agent's.
static int
s_call_number (intake_t *intake, const char *id, const char *purpose, const char *requester,
               json_t **reply_body, gl_rep_error_t *err)
{
    redisReply *r = gl_redis_cmd (intake->redis, "HMGET " CALLS_PREFIX "call:%s number language",
                                  id);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (r)
            freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", "", "cannot read now");
    }
    const redisReply *number = r->element[0], *language = r->element[1];
    if (number->type != REDIS_REPLY_STRING || number->len == 0) {
        freeReplyObject (r);
        return gl_rep_error (err, 404, "not_found", "person_ref",
                             "no case is linked to this call or contact, and no such call is "
                             "kept with a number");
    }
    if (delivery_audit_read (intake, requester, "call", id, purpose) != 0) {
        freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", "", "cannot audit the read now");
    }
    json_t *lang = language->type == REDIS_REPLY_STRING && language->len > 0
                       ? json_stringn (language->str, language->len)
                       : json_null ();
    *reply_body = json_pack ("{s:s#, s:[s#], s:o}", "phone", number->str, (int) number->len,
                             "phones", number->str, (int) number->len, "language", lang);
    freeReplyObject (r);
    return *reply_body ? 200 : 500;
}

static int
s_on_delivery (void *arg, const gl_rep_request_t *req, json_t **reply_body, gl_rep_error_t *err)
{
    callers_t *self = arg;
    intake_t *intake = callers_intake (self);
    const char *key;
    json_t *value;
    json_object_foreach (req->body, key, value)
        if (strcmp (key, "person_ref") && strcmp (key, "purpose") && strcmp (key, "requester"))
            return s_bad (err, key, "unknown field");
    const char *person = json_string_value (json_object_get (req->body, "person_ref"));
    const char *purpose = json_string_value (json_object_get (req->body, "purpose"));
    const char *requester = json_string_value (json_object_get (req->body, "requester"));
    if (!person || !*person)
        return s_bad (err, "person_ref", "a case number or a call or contact id");
    if (!purpose || !callers_code_valid (purpose))
        return s_bad (err, "purpose", "a code: 1..32 of A-Z a-z 0-9 _ . -");
    if (!delivery_requester_valid (requester))
        return s_bad (err, "requester", "the asking service's name: 1..32 of a-z 0-9 _ -");

    //  A lowercase id is a call or contact; anything else must be a case number.
    char ref[CALLERS_REF_LEN + 1];
    if (gl_id_valid (person)) {
        int rc = callers_context_case (self, person, ref);
        if (rc < 0)
            return gl_rep_error (err, 503, "unavailable", "", "cannot read now");
        if (rc == 1)
            //  No case: a call from the queue still has the number it came from (a callback
            //  for an abandoned call), for as long as the call is kept.
            return s_call_number (intake, person, purpose, requester, reply_body, err);
    }
    else {
        char case_no[CALLERS_CASE_NO_MAX + 1];
        if (callers_case_no_norm (person, case_no) != 0)
            return s_bad (err, "person_ref", "a case number or a call or contact id");
        callers_case_ref (self, case_no, ref);
    }
    //  Audited before anything is read out; the actor is the asking service.
    if (delivery_audit_read (intake, requester, "delivery_details", ref, purpose) != 0)
        return gl_rep_error (err, 503, "unavailable", "", "cannot audit the read now");

    char phones[CALLERS_PHONES_MAX * (CALLERS_PHONE_MAX + 3)], language[CALLERS_LANG_MAX + 1];
    int rc = cases_field (self, ref, CALLERS_F_PHONES, phones, sizeof phones);
    if (rc == 0)
        rc = cases_field (self, ref, CALLERS_F_LANGUAGE, language, sizeof language);
    if (rc < 0)
        return gl_rep_error (err, 503, "unavailable", "", "cannot read now");
    if (rc == 1)
        return gl_rep_error (err, 404, "not_found", "person_ref", "no such case");
    json_t *list = json_array ();
    for (const char *p = phones; *p;) {
        size_t len = strcspn (p, ";");
        json_array_append_new (list, json_stringn (p, len));
        p += len + (p[len] == ';');
    }
    json_t *first = json_array_get (list, 0);
    *reply_body = json_pack ("{s:O, s:o, s:o}", "phone", first ? first : json_null (), "phones",
                             list, "language", *language ? json_string (language) : json_null ());
    gl_debug ("callers: delivery details read for %s", requester);
    return *reply_body ? 200 : 500;
}

int
delivery_register (callers_t *self, gl_rep_t *rep)
{
    return gl_rep_on (rep, "intake.delivery_details", s_on_delivery, self);
}
