/*  api_booking — POST /api/v1/appointments: an agent books a slot for a verified caller
    (docs/api/booking.md). The booking itself is scheduler's (booking.c), which answers the
    request when scheduler has answered, without holding up the loop.
*/
#include "audit.h"
#include "callers.h"
#include "forward.h"
#include "gl/gl_log.h"
#include "gl/gl_req.h"
#include <string.h>

#define S_START_MAX 7258118400000LL     //  2200-01-01, unix ms

//  POST /api/v1/appointments {case_no, call_id | contact_id, service, centre, slot_id | start}
static int
s_book (intake_t *intake, http_req_t *req)
{
    callers_t *self = intake->callers;
    static const char *const allowed[] = { "case_no", "call_id", "contact_id", "service",
                                           "centre",  "slot_id", "start",      NULL };
    const char *case_in = NULL, *call = NULL, *contact = NULL, *service = NULL, *centre = NULL,
               *slot = NULL;
    char key[FORWARD_KEY_LEN + 1];
    int64_t start = 0;
    if (http_body_only (req, allowed) || http_body_str (req, "case_no", true, 64, &case_in)
        || http_body_id (req, "call_id", false, &call)
        || http_body_id (req, "contact_id", false, &contact)
        || http_body_str (req, "service", true, CALLERS_CODE_MAX, &service)
        || http_body_str (req, "centre", true, CALLERS_CODE_MAX, &centre)
        || http_body_str (req, "slot_id", false, CALLERS_CODE_MAX, &slot)
        || http_body_int (req, "start", false, 1, S_START_MAX, &start)
        || forward_idem_key (intake, req, key) != 0)
        return -1;
    char case_no[CALLERS_CASE_NO_MAX + 1], ref[CALLERS_REF_LEN + 1];
    if (callers_case_no_norm (case_in, case_no) != 0)
        return http_reply_error (req, 400, "invalid_field",
                                 "a case number is 1..32 of A-Z, a-z, 0-9 and -", "case_no");
    if (!callers_code_valid (service))
        return http_reply_error (req, 400, "invalid_field", "a service code", "service");
    if (!callers_code_valid (centre))
        return http_reply_error (req, 400, "invalid_field", "a centre code", "centre");
    if (slot && !callers_code_valid (slot))
        return http_reply_error (req, 400, "invalid_field", "a slot id", "slot_id");
    if (!slot == !start)
        return http_reply_error (req, 400, slot ? "invalid_field" : "missing_field",
                                 "give the slot_id or the start (unix ms), one of them",
                                 "slot_id");
    if (!call == !contact)
        return http_reply_error (req, 400, call ? "invalid_field" : "missing_field",
                                 "give the call_id or the contact_id the caller is on, one of them",
                                 "call_id");
    const char *ctx = call ? call : contact;
    callers_case_ref (self, case_no, ref);

    //  Only for a caller verified in this call or contact.
    int64_t until = 0, locked_until = 0;
    int locked = callers_locked (self, ref, &locked_until);
    if (locked < 0)
        return http_reply_error (req, 503, "unavailable", "cannot check the case now", NULL);
    if (locked)
        return http_reply_error (req, 423, "locked",
                                 "too many failed verifications: the case is locked for a while",
                                 NULL);
    int granted = callers_grant_check (self, http_caller (req)->user_id, ref, ctx, &until);
    if (granted < 0)
        return http_reply_error (req, 503, "unavailable", "cannot check the case now", NULL);
    if (!granted)
        return http_reply_error (req, 403, "verification_required",
                                 "verify the caller in this call or contact first", NULL);
    char language[CALLERS_LANG_MAX + 1] = "";
    if (cases_field (self, ref, CALLERS_F_LANGUAGE, language, sizeof language) < 0)
        return http_reply_error (req, 503, "unavailable", "cannot read the case now", NULL);
    if (audit_record_req (intake, req, "book", "case", ref, "requested") != 0)
        return http_reply_error (req, 503, "unavailable", "cannot audit the booking now", NULL);

    json_t *body = json_pack ("{s:s, s:s, s:s, s:o, s:s}", "case_no", case_no, "service", service,
                              "centre", centre, "language",
                              *language ? json_string (language) : json_null (), "agent_id",
                              http_caller (req)->user_id);
    if (!body)
        return http_reply_error (req, 500, "internal", "cannot build the request", NULL);
    json_object_set_new (body, call ? "call_id" : "contact_id", json_string (ctx));
    if (slot)
        json_object_set_new (body, "slot_id", json_string (slot));
    else
        json_object_set_new (body, "start", json_integer ((json_int_t) start));
    int rc = booking_book (self, req, key, body, ref);     //  answers, now or later
    json_decref (body);
    return rc;
}

void
api_booking_routes (intake_t *intake)
{
    http_route (intake->http, "POST", "/api/v1/appointments", GL_ROLE_AGENT | GL_ROLE_SUPERVISOR,
                s_book);
}
