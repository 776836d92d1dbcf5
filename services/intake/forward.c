/*  forward — see forward.h. One handler serves every forwarded route: it finds the route's entry
    by method and pattern, builds the request body, asks the owning service and answers with
    what it said.
*/
#include "forward.h"
#include "audit.h"
#include "callers.h"
#include "gl/gl_id.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define S_TABLES_MAX    16
#define S_CLIENTS_MAX   8
#define S_NAME_MAX      31

typedef struct {
    char name[S_NAME_MAX + 1];
    gl_req_t *req;                      //  NULL when GL_ENDPOINT_<NAME> is not set
    int timeout_ms;
    gl_metric_t *unavailable;           //  answers of 503 <name>_unavailable
} s_client_t;

struct _forward_t {
    const forward_route_t *tables[S_TABLES_MAX];
    size_t sizes[S_TABLES_MAX];
    size_t ntables;
    s_client_t clients[S_CLIENTS_MAX];
    size_t nclients;
};

static struct _forward_t *
s_self (intake_t *intake)
{
    if (!intake->forward)
        intake->forward = calloc (1, sizeof (struct _forward_t));
    assert (intake->forward);
    return intake->forward;
}

void
forward_destroy (intake_t *intake)
{
    assert (intake);
    struct _forward_t *self = intake->forward;
    if (!self)
        return;
    for (size_t i = 0; i < self->nclients; i++)
        gl_req_destroy (&self->clients[i].req);
    free (self);
    intake->forward = NULL;
}

//  --------------------------------------------------------------------------------------------
//  Clients

static void
s_upper (const char *name, char *out, size_t len)
{
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        out[i] = (char) toupper ((unsigned char) name[i]);
    out[i] = 0;
}

static s_client_t *
s_client (intake_t *intake, const char *service)
{
    struct _forward_t *self = s_self (intake);
    for (size_t i = 0; i < self->nclients; i++)
        if (strcmp (self->clients[i].name, service) == 0)
            return &self->clients[i];
    assert (self->nclients < S_CLIENTS_MAX && strlen (service) <= S_NAME_MAX);
    s_client_t *c = &self->clients[self->nclients++];
    snprintf (c->name, sizeof c->name, "%s", service);
    char upper[S_NAME_MAX + 1], key[S_NAME_MAX + 32];
    s_upper (service, upper, sizeof upper);
    snprintf (key, sizeof key, "GL_INTAKE_%s_TIMEOUT_MS", upper);
    c->timeout_ms = (int) gl_config_int (intake->config, key, 2000, 1, GL_REQ_TTL_MAX);
    snprintf (key, sizeof key, "GL_ENDPOINT_%s", upper);
    const char *endpoint = gl_config_str (intake->config, key, NULL);
    if (endpoint && *endpoint) {
        c->req = gl_req_new_curve (endpoint, intake->curve);
        if (!c->req)
            gl_warn ("forward: %s is not a valid endpoint list: %s answers 503", key, service);
    }
    else
        gl_warn ("forward: %s is not set: requests for %s answer 503", key, service);
    if (c->req) {
        //  The token: GL_INTAKE_<NAME>_TOKEN, else the first of GL_BUS_TOKENS.
        snprintf (key, sizeof key, "GL_INTAKE_%s_TOKEN", upper);
        const char *token = gl_config_str (intake->config, key, NULL);
        char first[GL_REQ_AUTH_MAX + 1] = "";
        if (!token || !*token) {
            gl_req_first_token (gl_config_str (intake->config, "GL_BUS_TOKENS", NULL), first);
            token = first;
        }
        if (*token && gl_req_set_auth (c->req, token) != 0)
            gl_warn ("forward: the bus token for %s is not valid (printable ASCII, no spaces or "
                     "commas)",
                     service);
    }
    char metric[64];
    snprintf (metric, sizeof metric, "service=\"%s\"", service);
    c->unavailable = gl_metrics_counter ("greenline_intake_forward_unavailable_total",
                                         "Forwarded requests answered 503 because the owning "
                                         "service did not answer usefully",
                                         metric);
    return c;
}

gl_req_t *
forward_client (intake_t *intake, const char *service)
{
    assert (intake && service);
    return s_client (intake, service)->req;
}

int
forward_timeout_ms (intake_t *intake, const char *service)
{
    assert (intake && service);
    return s_client (intake, service)->timeout_ms;
}

//  --------------------------------------------------------------------------------------------
//  The handler

static const forward_route_t *
s_find (intake_t *intake, http_req_t *req)
{
    struct _forward_t *self = s_self (intake);
    const char *method = http_method (req), *pattern = http_route_pattern (req);
    for (size_t t = 0; t < self->ntables; t++)
        for (size_t i = 0; i < self->sizes[t]; i++) {
            const forward_route_t *r = &self->tables[t][i];
            if (strcmp (r->pattern, pattern) == 0 && strcmp (r->method, method) == 0)
                return r;
        }
    return NULL;
}

static json_t *
s_caller (const http_caller_t *who)
{
    static const struct {
        uint32_t flag;
        const char *name;
    } roles[] = { { GL_ROLE_AGENT, "agent" },
                  { GL_ROLE_SUPERVISOR, "supervisor" },
                  { GL_ROLE_PROTECTION, "protection" },
                  { GL_ROLE_ADMIN, "admin" },
                  { GL_ROLE_API_CLIENT, "api_client" } };
    json_t *r = json_array (), *u = json_array ();
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (who->roles & roles[i].flag)
            json_array_append_new (r, json_string (roles[i].name));
    for (size_t i = 0; i < who->unit_count; i++)
        json_array_append_new (u, json_string (who->units[i]));
    return json_pack ("{s:s, s:o, s:o}", "user_id", who->user_id, "roles", r, "units", u);
}

int
forward_idem_key (intake_t *intake, http_req_t *req, char out[FORWARD_KEY_LEN + 1])
{
    const char *header = http_header (req, "Idempotency-Key");
    if (!header) {
        char id[GL_ID_LEN + 1];
        gl_id_new (id);
        snprintf (out, FORWARD_KEY_LEN + 1, "n-%s", id);
        return 0;
    }
    if (!*header || !gl_req_key_valid (header))
        return http_reply_error (req, 400, "invalid_header",
                                 "Idempotency-Key: 1..128 printable ASCII characters, no spaces",
                                 "Idempotency-Key"),
               -1;
    char material[GL_ID_LEN + GL_REQ_KEY_MAX + 64], hash[CALLERS_REF_LEN + 1];
    snprintf (material, sizeof material, "%s\n%s\n%s", http_caller (req)->user_id,
              http_route_pattern (req), header);
    callers_hash (intake->callers, "forward", material, hash);
    snprintf (out, FORWARD_KEY_LEN + 1, "h-%s", hash);
    return 0;
}

static bool
s_passed_on (int status)
{
    return status == 400 || status == 403 || status == 404 || status == 409 || status == 410
           || status == 422 || status == 423 || status == 429;
}

static int
s_forward (intake_t *intake, http_req_t *req)
{
    const forward_route_t *route = s_find (intake, req);
    assert (route);             //  every route with this handler is in a table
    const char *method = http_method (req);
    bool changing = strcmp (method, "GET") != 0;
    char key[FORWARD_KEY_LEN + 1] = "";
    if (changing && forward_idem_key (intake, req, key) != 0)
        return -1;
    const json_t *body = http_body (req);
    json_t *params = http_params_json (req), *query = http_query_json (req);
    json_t *request = json_pack ("{s:o, s:o, s:o, s:o}", "caller", s_caller (http_caller (req)),
                                 "params", params ? params : json_object (), "query",
                                 query ? query : json_object (), "body",
                                 body ? json_incref ((json_t *) body) : json_object ());
    if (!request)
        return http_reply_error (req, 500, "internal", "out of memory", NULL);

    const char *id = http_param (req, "id");
    if ((route->flags & FORWARD_AUDIT)
        && audit_record_req (intake, req, changing ? "forward" : "read", route->op,
                             id && gl_id_valid (id) ? id : "", "requested")
               != 0) {
        json_decref (request);
        return http_reply_error (req, 503, "unavailable", "cannot write the audit trail now",
                                 NULL);
    }
    s_client_t *c = s_client (intake, route->service);
    gl_reply_t reply = { 0 };
    int rc = -1;
    if (c->req)
        rc = gl_req_call (c->req, route->op, changing ? key : NULL, request, c->timeout_ms,
                          &reply);
    json_decref (request);
    int status = reply.status;
    int answered;
    if (rc == 0 && (status == 200 || status == 201 || status == 202)) {
        if (status == 200 && (route->flags & FORWARD_CREATED))
            status = 201;
        answered = http_reply_json (req, status, json_incref (reply.body));
    }
    else if (rc == 0 && s_passed_on (status))
        answered = http_reply_error (req, status,
                                     reply.error_code && *reply.error_code ? reply.error_code
                                                                           : "refused",
                                     reply.error_message ? reply.error_message : "",
                                     reply.error_field && *reply.error_field ? reply.error_field
                                                                             : NULL);
    else {
        if (c->req)
            gl_warn ("forward: %s %s answered %d %s", route->op, reply.id, status,
                     reply.error_code ? reply.error_code : "");
        gl_metric_inc (c->unavailable, 1);
        char code[S_NAME_MAX + 16], message[256];
        snprintf (code, sizeof code, "%s_unavailable", route->service);
        snprintf (message, sizeof message,
                  "%s did not answer%s; it may or may not have acted: retry%s", route->service,
                  c->req ? " in time" : " (not configured)",
                  changing ? " with the same Idempotency-Key" : "");
        answered = http_reply_error (req, 503, code, message, NULL);
    }
    gl_reply_clear (&reply);
    return answered;
}

void
forward_routes (intake_t *intake, const forward_route_t *routes, size_t n)
{
    assert (intake && routes && n > 0);
    struct _forward_t *self = s_self (intake);
    assert (self->ntables < S_TABLES_MAX);
    for (size_t i = 0; i < n; i++) {
        const forward_route_t *r = &routes[i];
        assert (r->method && r->pattern && r->service && r->op);
        assert (strlen (r->service) <= S_NAME_MAX && gl_req_op_valid (r->op));
        http_route (intake->http, r->method, r->pattern, r->roles, s_forward);
    }
    self->tables[self->ntables] = routes;
    self->sizes[self->ntables] = n;
    self->ntables++;
}
