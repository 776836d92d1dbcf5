/*  usercontact — the bus request "intake.user_contact": notifier asks how to reach a staff member
    (an on-duty protection officer's phone for an emergency alarm, an assignee's e-mail for a
    referral reminder). Users are intake's; a service that needs their contact details asks, and
    the read is audited like intake.delivery_details. Schema in docs/events.md ("intake: accounts").

    Request body {user_id: 32 hex, purpose: code, requester: the asking service's name}
    Reply 200    {email: str | nil, phone: str | nil, language: str | nil, disabled: bool}
    Errors       400 (field named), 404 not_found (no such user), 503 unavailable (Redis, or the
                 audit entry cannot be written: no audit, no answer).
*/
#include "audit.h"
#include "auth.h"
#include "callers.h"
#include "intake.h"
#include "gl/gl_log.h"
#include <string.h>

static int
s_bad (gl_rep_error_t *err, const char *field, const char *why)
{
    return gl_rep_error (err, 400, "bad_request", field, "%s", why);
}

static json_t *
s_str_or_null (const json_t *v)
{
    const char *s = json_string_value (v);
    return s && *s ? json_string (s) : json_null ();
}

static int
s_on_user_contact (void *arg, const gl_rep_request_t *req, json_t **reply_body,
                   gl_rep_error_t *err)
{
    intake_t *intake = arg;
    const char *key;
    json_t *value;
    json_object_foreach (req->body, key, value)
        if (strcmp (key, "user_id") && strcmp (key, "purpose") && strcmp (key, "requester"))
            return s_bad (err, key, "unknown field");
    const char *id = json_string_value (json_object_get (req->body, "user_id"));
    const char *purpose = json_string_value (json_object_get (req->body, "purpose"));
    const char *requester = json_string_value (json_object_get (req->body, "requester"));
    if (!id || !gl_id_valid (id))
        return s_bad (err, "user_id", "a user id: 32 lowercase hex digits");
    if (!purpose || !callers_code_valid (purpose))
        return s_bad (err, "purpose", "a code: 1..32 of A-Z a-z 0-9 _ . -");
    if (!delivery_requester_valid (requester))
        return s_bad (err, "requester", "the asking service's name: 1..32 of a-z 0-9 _ -");

    json_t *user = NULL;
    int rc = auth_user_view (intake, id, &user);
    if (rc < 0)
        return gl_rep_error (err, 503, "unavailable", "", "cannot read now");
    if (rc == 1 || !user)
        return gl_rep_error (err, 404, "not_found", "user_id", "no such user");
    //  Audited before anything is read out; the actor is the asking service.
    if (delivery_audit_read (intake, requester, "user_contact", id, purpose) != 0) {
        json_decref (user);
        return gl_rep_error (err, 503, "unavailable", "", "cannot audit the read now");
    }
    json_t *langs = json_object_get (user, "languages");
    *reply_body = json_pack ("{s:o, s:o, s:o, s:b}", "email",
                             s_str_or_null (json_object_get (user, "email")), "phone",
                             s_str_or_null (json_object_get (user, "phone")), "language",
                             s_str_or_null (json_array_get (langs, 0)), "disabled",
                             json_is_true (json_object_get (user, "disabled")));
    json_decref (user);
    gl_debug ("auth: user contact read for %s", requester);
    return *reply_body ? 200 : 500;
}

int
usercontact_register (intake_t *intake)
{
    return gl_rep_on (intake->rep, "intake.user_contact", s_on_user_contact, intake);
}
