/*  api_retention — retention and the person export (docs/api/retention.md):
      POST /api/v1/retention/purge     admin: run the purge now (retention.h), audited
      POST /api/v1/persons/export      protection or admin: everything intake holds about one
                                       person (a data-subject access request), audited,
                                       with scheduler's and referral's parts asked by bus,
                                       both at once and without holding the loop
    The purge's timer is armed here too (retention_start), as route registration is the one
    place this concern is called from at start. */
#include "audit.h"
#include "contacts.h"
#include "forward.h"
#include "intake.h"
#include "retention.h"
#include "gl/gl_log.h"
#include <string.h>

//  The services that hold personal data of their own, asked for their part of an export by a
//  bus request "<service>.person_export" (docs/api/retention.md, "Other services"). Referral
//  holds intake's contact ids, not the person's numbers: it is sent the ids of the contacts
//  found here. A service without an endpoint configured, or that does not answer 200, is
//  listed under not_asked.
static const struct {
    const char *service;
    const char *op;
    bool contact_ids;
} s_others[] = { { "scheduler", "scheduler.person_export", false },
                 { "referral", "referral.person_export", true } };

//  An export waiting for the other services' parts: each answer {records, complete} goes under
//  out[<service>], the services that gave none under out.not_asked; the last answer replies.
typedef struct {
    http_req_t *req;                    //  deferred
    json_t *out;
    json_t *not_asked;
    size_t waiting;
} s_export_t;

typedef struct {
    s_export_t *export;
    size_t k;                           //  index in s_others
} s_part_t;

static void
s_export_done (s_export_t *e)
{
    json_object_set_new (e->out, "not_asked", e->not_asked);
    http_reply_json (e->req, 200, e->out);
    free (e);
}

static void
s_on_part (intake_t *intake, const gl_reply_t *reply, void *arg)
{
    (void) intake;
    s_part_t *part = arg;
    s_export_t *e = part->export;
    const char *service = s_others[part->k].service;
    json_t *records = json_object_get (reply->body, "records");
    if (!reply->local && reply->status == 200 && json_is_object (records)) {
        bool complete = json_is_true (json_object_get (reply->body, "complete"));
        json_object_set_new (e->out, service,
                             json_pack ("{s:O, s:b}", "records", records, "complete", complete));
        if (!complete)
            json_object_set_new (e->out, "complete", json_false ());
    }
    else {
        gl_warn ("intake: person export: %s did not answer %s (status %d %s)", service,
                 s_others[part->k].op, reply->status, reply->error_code ? reply->error_code : "");
        json_array_append_new (e->not_asked, json_string (service));
    }
    free (part);
    if (--e->waiting == 0)
        s_export_done (e);
}

//  Ask the other services for the person's records, all at once and without holding intake's
//  loop (forward_call); the answer goes out when the last of them has answered or timed out
//  (GL_INTAKE_<NAME>_TIMEOUT_MS). out is taken.
static int
s_ask_others (intake_t *intake, http_req_t *req, const char *kind, const char *value, json_t *out)
{
    static const struct {
        uint32_t flag;
        const char *name;
    } roles[] = { { GL_ROLE_AGENT, "agent" },           { GL_ROLE_SUPERVISOR, "supervisor" },
                  { GL_ROLE_PROTECTION, "protection" }, { GL_ROLE_ADMIN, "admin" },
                  { GL_ROLE_API_CLIENT, "api_client" } };
    const http_caller_t *who = http_caller (req);
    json_t *r = json_array (), *u = json_array ();
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (who->roles & roles[i].flag)
            json_array_append_new (r, json_string (roles[i].name));
    for (size_t i = 0; i < who->unit_count; i++)
        json_array_append_new (u, json_string (who->units[i]));
    //  The identifier as intake normalised it (retention_export has checked it).
    char norm[CONTACTS_NUMBER_MAX + CONTACTS_PHONE_MAX + 8] = "";
    if (strcmp (kind, "phone") == 0)
        contacts_phone_normalise (value, contacts_country (intake), norm, sizeof norm);
    else
        contacts_number_normalise (value, norm, sizeof norm);
    json_t *ids = json_array ();
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get (out, "contacts"), i, c) {
        const char *id = json_string_value (json_object_get (c, "id"));
        if (id)
            json_array_append_new (ids, json_string (id));
    }
    s_export_t *e = calloc (1, sizeof *e);
    if (!e) {
        json_decref (r);
        json_decref (u);
        json_decref (ids);
        json_decref (out);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    *e = (s_export_t) { .req = req, .out = out, .not_asked = json_array () };
    //  One more than the calls while they are being sent, so that none can finish the export
    //  before the last is out (answers come later, from the loop, but a refusal comes at once).
    e->waiting = 1;
    for (size_t k = 0; k < sizeof s_others / sizeof s_others[0]; k++) {
        json_t *body = json_pack ("{s:{s:s, s:O, s:O}, s:s}", "caller", "user_id", who->user_id,
                                  "roles", r, "units", u, kind, norm);
        if (s_others[k].contact_ids)
            json_object_set (body, "contact_ids", ids);
        s_part_t *part = malloc (sizeof *part);
        gl_reply_t refusal = { 0 };
        int rc = -1;
        if (part && body) {
            *part = (s_part_t) { .export = e, .k = k };
            rc = forward_call (intake, s_others[k].service, s_others[k].op, NULL, body,
                               s_on_part, part, &refusal);
        }
        json_decref (body);
        if (rc == 0)
            e->waiting++;
        else {
            free (part);
            if (refusal.error_code && strcmp (refusal.error_code, "not_configured") != 0)
                gl_warn ("intake: person export: %s not asked (%s)", s_others[k].service,
                         refusal.error_code);
            json_array_append_new (e->not_asked, json_string (s_others[k].service));
        }
        gl_reply_clear (&refusal);
    }
    json_decref (r);
    json_decref (u);
    json_decref (ids);
    if (--e->waiting == 0) {
        s_export_done (e);
        return 0;
    }
    http_defer (req);
    return 0;
}

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
    return s_ask_others (intake, req, kind, value, out);
}

void
api_retention_routes (intake_t *intake)
{
    http_route (intake->http, "POST", "/api/v1/retention/purge", GL_ROLE_ADMIN, s_purge);
    http_route (intake->http, "POST", "/api/v1/persons/export",
                GL_ROLE_PROTECTION | GL_ROLE_ADMIN, s_export);
    retention_start (intake);
}
