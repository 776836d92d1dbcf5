/*  api_retention — retention and the person export (docs/api/retention.md):
      POST /api/v1/retention/purge     admin: run the purge now (retention.h), audited
      POST /api/v1/persons/export      protection or admin: everything intake holds about one
                                       person (a data-subject access request), audited
    The purge's timer is armed here too (retention_start), as route registration is the one
    place this concern is called from at start. */
#include "audit.h"
#include "intake.h"
#include "retention.h"
#include <string.h>

//  The services that hold personal data of their own and would be asked for their part of an
//  export by a bus request "<service>.person_export" once they answer it (docs/api/retention.md,
//  "Other services"). Neither answers it yet, so the export says they were not asked.
static const char *const s_not_asked[] = { "scheduler", "referral", NULL };

static int
s_purge (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { NULL };
    if (http_body_only (req, fields) != 0)
        return -1;
    if (audit_record_req (intake, req, "purge", "retention", "", "on_demand") != 0)
        return http_reply_error (req, 503, "unavailable", "cannot audit the purge now; retry",
                                 NULL);
    json_t *report = NULL;
    int rc = retention_purge (intake, &report);
    if (rc != 0) {
        json_decref (report);
        return http_reply_error (req, 503, "unavailable",
                                 "storage unreachable; part of the purge may be done; retry",
                                 NULL);
    }
    return http_reply_json (req, 200, report);
}

static int
s_export (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "case_number", "individual_number", "phone", NULL };
    if (http_body_only (req, fields) != 0)
        return -1;
    const char *kind = NULL, *value = NULL;
    for (size_t i = 0; fields[i]; i++) {
        const char *v = NULL;
        if (http_body_str (req, fields[i], false, 32, &v) != 0)
            return -1;
        if (v && *v) {
            if (kind)
                return http_reply_error (req, 400, "invalid_field",
                                         "give exactly one of case_number, individual_number "
                                         "and phone",
                                         fields[i]);
            kind = fields[i];
            value = v;
        }
    }
    if (!kind)
        return http_reply_error (req, 400, "missing_field",
                                 "give one of case_number, individual_number and phone",
                                 "case_number");
    json_t *out = NULL;
    int rc = retention_export (intake, kind, value, &out);
    if (rc == 1)
        return http_reply_error (req, 400, "invalid_field",
                                 strcmp (kind, "phone") == 0 ? "not a phone number"
                                                             : "not a case or individual number",
                                 kind);
    if (rc != 0)
        return http_reply_error (req, 503, "unavailable", "storage unreachable; retry", NULL);
    //  The export is audited before anything is shown; the entry names the kind of identifier,
    //  never the identifier itself.
    if (audit_record_req (intake, req, "export", "person", "", kind) != 0) {
        json_decref (out);
        return http_reply_error (req, 503, "unavailable", "cannot audit the export now; retry",
                                 NULL);
    }
    json_t *na = json_array ();
    for (size_t i = 0; s_not_asked[i]; i++)
        json_array_append_new (na, json_string (s_not_asked[i]));
    json_object_set_new (out, "not_asked", na);
    return http_reply_json (req, 200, out);
}

void
api_retention_routes (intake_t *intake)
{
    http_route (intake->http, "POST", "/api/v1/retention/purge", GL_ROLE_ADMIN, s_purge);
    http_route (intake->http, "POST", "/api/v1/persons/export",
                GL_ROLE_PROTECTION | GL_ROLE_ADMIN, s_export);
    retention_start (intake);
}
