/*  audit — intake's audit trail: who read or changed what, and when (docs/api/audit.md).

    Append-only: one Redis stream, intake:{intake}:audit, entries added with XADD and never
    edited; its length is bounded by GL_INTAKE_AUDIT_MAXLEN (approximate trimming of the oldest
    entries; default 10,000,000 entries). Supervisors and admins query it with GET /api/v1/audit.

    Each entry: actor (user or API client id, "" for none), role (the caller's roles as codes,
    comma-separated), action, record type, record id, detail code, time (gl_now_ms), request id.
    Actions, record types and detail codes are short codes ([a-z0-9_.-], at most 64 characters),
    never personal data: "read", "create", "update", "delete", "verify_failed", "login_failed" ...

    In a handler:

        if (audit_record (intake, http_caller (req), "read", "case", id, "status") != 0)
            return http_reply_error (req, 503, "unavailable", "cannot audit the read now", NULL);

    A read of a sensitive record whose audit entry cannot be written should not be answered.
*/
#ifndef INTAKE_AUDIT_H
#define INTAKE_AUDIT_H
#include "http.h"

#define AUDIT_CODE_MAX 64

//  Append one entry. who may be NULL (the service itself, e.g. at start). The request id is the
//  one of the HTTP request being handled when who is that request's caller (http_caller (req)),
//  else empty; use audit_record_req to name the request explicitly. 0, or -1 when an argument is
//  not a well-formed code (logged as a bug) or Redis cannot be reached.
int audit_record (intake_t *intake, const http_caller_t *who, const char *action,
                  const char *record_type, const char *record_id, const char *detail_code);

//  Same, with the caller and request id taken from req.
int audit_record_req (intake_t *intake, http_req_t *req, const char *action,
                      const char *record_type, const char *record_id, const char *detail_code);

//  Remember the request being handled (called by the authentication hook; audit_record uses it).
void audit_set_current (intake_t *intake, http_req_t *req, const http_caller_t *caller);

//  Route (api_audit.c): GET /api/v1/audit.
void api_audit_routes (intake_t *intake);

#endif
