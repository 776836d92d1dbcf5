/*  api_auth — the HTTP side of accounts (auth.h, docs/api/auth.md): login, logout, the caller's
    own account, users and API clients for administrators.

    Every change is audited and published (docs/events.md ("intake: accounts events")): events carry ids and
    role codes, never usernames, display names, passwords or tokens. Nothing here logs a
    username, a password or a token.
*/
#include "audit.h"
#include "auth.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>

#define S_ROLES_MAX 4

//  --------------------------------------------------------------------------------------------
//  Helpers

static int
s_unavailable (http_req_t *req)
{
    return http_reply_error (req, 503, "unavailable", "the account store cannot be reached now",
                             NULL);
}

static int
s_not_found (http_req_t *req, const char *what)
{
    return http_reply_error (req, 404, "not_found", what, NULL);
}

static int
s_invalid (http_req_t *req, const char *field, const char *message)
{
    http_reply_error (req, 400, "invalid_field", message, field);
    return -1;
}

static int
s_too_many (http_req_t *req, int64_t retry_after_s)
{
    char value[24];
    snprintf (value, sizeof value, "%" PRId64, retry_after_s > 0 ? retry_after_s : 1);
    http_set_header (req, "Retry-After", value);
    return http_reply_error (req, 429, "too_many_requests",
                             "too many failed attempts; wait as Retry-After says", NULL);
}

//  An array of distinct strings, each accepted by valid, between min and max of them.
//  Absent: *count untouched (0 on entry), unless required. 0, or answered 400 and -1.
static int
s_body_list (http_req_t *req, const char *field, bool required, size_t min, size_t max,
             bool (*valid) (const char *), const char **out, size_t *count, bool *present)
{
    const json_t *value = json_object_get (http_body (req), field);
    if (present)
        *present = value != NULL;
    if (!value) {
        if (!required)
            return 0;
        http_reply_error (req, 400, "missing_field", "this field is required", field);
        return -1;
    }
    if (!json_is_array (value))
        return s_invalid (req, field, "must be an array of strings");
    size_t n = json_array_size (value);
    if (n < min || n > max) {
        char message[96];
        snprintf (message, sizeof message, "must hold %zu to %zu items", min, max);
        return s_invalid (req, field, message);
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value (json_array_get (value, i));
        if (!s || !valid (s))
            return s_invalid (req, field, "holds an item that is not allowed here");
        for (size_t k = 0; k < i; k++)
            if (strcmp (out[k], s) == 0)
                return s_invalid (req, field, "holds an item twice");
        out[i] = s;
    }
    *count = n;
    return 0;
}

static bool
s_staff_role (const char *code)
{
    uint32_t flag = auth_role_flag (code);
    return flag && flag != GL_ROLE_API_CLIENT;
}

static bool
s_client_role (const char *code)
{
    return auth_role_flag (code) == GL_ROLE_API_CLIENT;
}

static uint32_t
s_roles_of (const char *const *codes, size_t n)
{
    uint32_t roles = 0;
    for (size_t i = 0; i < n; i++)
        roles |= auth_role_flag (codes[i]);
    return roles;
}

//  An event with the acting user's id; data filled by the caller, then auth_emit.
static gl_event_t *
s_event (http_req_t *req, const char *type)
{
    gl_event_t *ev = gl_event_new (type);
    if (ev) {
        json_object_set_new (ev->data, "actor_id", json_string (http_caller (req)->user_id));
        gl_event_set_corr (ev, http_request_id (req));
    }
    return ev;
}

static void
s_set_cookie (intake_t *intake, http_req_t *req, const char *token, int64_t max_age_s)
{
    char cookie[AUTH_TOKEN_LEN + 128];
    bool secure = gl_config_bool (intake->config, "GL_INTAKE_COOKIE_SECURE", false);
    snprintf (cookie, sizeof cookie,
              "gl_session=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%" PRId64 "%s", token,
              max_age_s, secure ? "; Secure" : "");
    http_set_header (req, "Set-Cookie", cookie);
    sodium_memzero (cookie, sizeof cookie);
}

//  --------------------------------------------------------------------------------------------
//  Sessions

//  POST /api/v1/auth/login
static int
s_login (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "username", "password", NULL };
    const char *username = NULL, *password = NULL;
    if (http_body_only (req, fields)
        || http_body_str (req, "username", true, AUTH_USERNAME_MAX, &username)
        || http_body_str (req, "password", true, AUTH_PASSWORD_MAX, &password))
        return -1;
    //  Usernames are kept in lower case; a login in other cases finds the same account.
    char name[4 * AUTH_USERNAME_MAX + 1];
    snprintf (name, sizeof name, "%s", username);
    for (char *p = name; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
    auth_login_t out;
    auth_login (intake, req, name, password, &out);
    if (out.status == 429)
        return s_too_many (req, out.retry_after_s);
    if (out.status == 401)
        return http_reply_error (req, 401, "unauthorized", "wrong username or password", NULL);
    if (out.status != 200)
        return s_unavailable (req);
    json_t *user = NULL;
    if (auth_user_view (intake, out.user_id, &user) != 0) {
        sodium_memzero (&out, sizeof out);
        return s_unavailable (req);
    }
    int64_t max_age = (out.expires_ms - gl_now_ms () + 999) / 1000;
    s_set_cookie (intake, req, out.token, max_age > 0 ? max_age : 0);
    json_t *body = json_pack ("{s:s, s:s, s:I, s:o}", "token", out.token, "csrf_token",
                              out.csrf_token, "expires_ms", (json_int_t) out.expires_ms, "user",
                              user);
    sodium_memzero (&out, sizeof out);
    return http_reply_json (req, 200, body);
}

//  POST /api/v1/auth/logout
static int
s_logout (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { NULL };
    if (http_body_only (req, fields))
        return -1;
    int rc = auth_logout (intake, req);
    if (rc < 0)
        return s_unavailable (req);
    audit_record_req (intake, req, "logout", "user", http_caller (req)->user_id, "");
    s_set_cookie (intake, req, "", 0);
    return http_reply_json (req, 200, json_object ());
}

//  GET /api/v1/auth/me
static int
s_me (intake_t *intake, http_req_t *req)
{
    const http_caller_t *caller = http_caller (req);
    json_t *view = NULL;
    bool client = caller->roles & GL_ROLE_API_CLIENT;
    int rc = client ? auth_client_view (intake, caller->user_id, &view)
                    : auth_user_view (intake, caller->user_id, &view);
    if (rc < 0)
        return s_unavailable (req);
    if (rc > 0)
        return s_not_found (req, "no such account");
    json_object_set_new (view, "kind", json_string (client ? "client" : "user"));
    return http_reply_json (req, 200, view);
}

//  POST /api/v1/auth/password: a user changes their own password.
static int
s_password (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "current_password", "new_password", NULL };
    const char *current = NULL, *fresh = NULL;
    if (http_body_only (req, fields)
        || http_body_str (req, "current_password", true, AUTH_PASSWORD_MAX, &current)
        || http_body_str (req, "new_password", true, AUTH_PASSWORD_MAX, &fresh))
        return -1;
    if (!auth_password_valid (fresh))
        return s_invalid (req, "new_password", "a password has at least 10 characters");
    const char *id = http_caller (req)->user_id;
    int64_t retry = 0;
    int rc = auth_password_check (intake, id, current, &retry);
    if (rc == 2)
        return s_too_many (req, retry);
    if (rc < 0)
        return s_unavailable (req);
    if (rc == 1) {
        audit_record_req (intake, req, "update_failed", "user", id, "wrong_password");
        return s_invalid (req, "current_password", "the current password is wrong");
    }
    gl_event_t *ev = s_event (req, "user.updated");
    if (ev)
        json_object_set_new (ev->data, "fields", json_pack ("[s]", "password"));
    auth_emit (intake, ev, "user_id", "");
    rc = auth_user_set_password (intake, req, id, fresh, true);
    if (rc != 0)
        return rc < 0 ? s_unavailable (req) : s_not_found (req, "no such user");
    audit_record_req (intake, req, "update", "user", id, "password_changed");
    return http_reply_json (req, 200, json_object ());
}

//  --------------------------------------------------------------------------------------------
//  Users

//  An optional string field that may be "" (to remove a value): *out NULL when absent.
static int
s_body_optional_str (http_req_t *req, const char *field, size_t max, const char **out)
{
    *out = NULL;
    json_t *v = json_object_get (http_body (req), field);
    if (!v)
        return 0;
    if (!json_is_string (v))
        return s_invalid (req, field, "must be a string");
    if (json_string_length (v) > max)
        return s_invalid (req, field, "too long");
    *out = json_string_value (v);
    return 0;
}

//  The fields of a user in a body (create: all that are required; update: those present).
static int
s_parse_spec (http_req_t *req, bool create, auth_spec_t *spec, unsigned *fields)
{
    memset (spec, 0, sizeof *spec);
    *fields = 0;
    const char *roles[S_ROLES_MAX + 1];
    size_t nroles = 0;
    bool has_roles, has_units, has_languages;
    const char *display = NULL, *email = NULL, *phone = NULL;
    if (s_body_list (req, "roles", create, 1, S_ROLES_MAX, s_staff_role, roles, &nroles,
                     &has_roles)
        || s_body_list (req, "units", false, 0, HTTP_UNITS_MAX, auth_unit_valid, spec->units,
                        &spec->unit_count, &has_units)
        || s_body_list (req, "languages", false, 0, AUTH_LANGS_MAX, auth_language_valid,
                        spec->languages, &spec->language_count, &has_languages)
        || http_body_str (req, "display_name", false, AUTH_DISPLAY_MAX, &display)
        || s_body_optional_str (req, "email", AUTH_EMAIL_MAX, &email)
        || s_body_optional_str (req, "phone", AUTH_PHONE_MAX, &phone))
        return -1;
    if (display && (strchr (display, '\n') || strchr (display, '\r')))
        return s_invalid (req, "display_name", "must be one line");
    if (email && *email && !auth_email_valid (email))
        return s_invalid (req, "email", "an e-mail address: one '@', no spaces, at most 254 "
                                        "characters (\"\" removes it)");
    if (phone && *phone && !auth_phone_valid (phone))
        return s_invalid (req, "phone", "a phone number: an optional '+' then 6 to 15 digits "
                                        "(\"\" removes it)");
    spec->email = email ? email : "";
    spec->phone = phone ? phone : "";
    spec->roles = s_roles_of (roles, nroles);
    spec->display_name = display ? display : "";
    *fields = (has_roles ? AUTH_SET_ROLES : 0u) | (has_units ? AUTH_SET_UNITS : 0u)
              | (has_languages ? AUTH_SET_LANGUAGES : 0u)
              | (display || create ? AUTH_SET_DISPLAY_NAME : 0u)
              | (email || create ? AUTH_SET_EMAIL : 0u) | (phone || create ? AUTH_SET_PHONE : 0u);
    return 0;
}

//  user.created / user.updated: the user's id, roles and units as they are after the change
//  (added by the write's script), fields (stolen) and, for user.updated, disabled — ids and codes
//  only. Stored by the next write (auth_emit).
static void
s_user_emit (intake_t *intake, http_req_t *req, const char *type, json_t *fields)
{
    gl_event_t *ev = s_event (req, type);
    if (ev && fields)
        json_object_set (ev->data, "fields", fields);
    json_decref (fields);
    auth_emit (intake, ev, "user_id", strcmp (type, "user.updated") == 0 ? "rud" : "ru");
}

//  POST /api/v1/users
static int
s_user_create (intake_t *intake, http_req_t *req)
{
    static const char *const fields[]
        = { "username", "password", "roles",  "units",
            "languages", "display_name", "email", "phone", NULL };
    const char *username = NULL, *password = NULL;
    auth_spec_t spec;
    unsigned set;
    if (http_body_only (req, fields)
        || http_body_str (req, "username", true, AUTH_USERNAME_MAX, &username)
        || http_body_str (req, "password", true, AUTH_PASSWORD_MAX, &password)
        || s_parse_spec (req, true, &spec, &set))
        return -1;
    if (!auth_username_valid (username))
        return s_invalid (req, "username",
                          "lower-case letters, digits, '.', '_' and '-', starting with a letter "
                          "or digit");
    if (!auth_password_valid (password))
        return s_invalid (req, "password", "a password has at least 10 characters");
    spec.username = username;
    char id[GL_ID_LEN + 1];
    s_user_emit (intake, req, "user.created", NULL);
    int rc = auth_user_create (intake, &spec, password, id);
    if (rc < 0)
        return s_unavailable (req);
    if (rc == 1)
        return http_reply_error (req, 409, "conflict", "this username is taken", "username");
    audit_record_req (intake, req, "create", "user", id, "");
    json_t *view = NULL;
    if (auth_user_view (intake, id, &view) != 0)
        return s_unavailable (req);
    return http_reply_json (req, 201, view);
}

//  GET /api/v1/users
static int
s_user_list (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "limit", "cursor", NULL };
    http_page_t page;
    if (http_query_only (req, params) || http_page (req, &page))
        return -1;
    json_t *items = NULL;
    char next[HTTP_CURSOR_MAX + 1];
    int rc = auth_users_page (intake, &page, &items, next);
    if (rc == 1)
        return http_reply_error (req, 400, "invalid_parameter", "this cursor is not valid",
                                 "cursor");
    if (rc < 0)
        return s_unavailable (req);
    return http_reply_page (req, items, next[0] ? next : NULL);
}

//  GET /api/v1/users/{id}
static int
s_user_get (intake_t *intake, http_req_t *req)
{
    json_t *view = NULL;
    int rc = auth_user_view (intake, http_param (req, "id"), &view);
    if (rc < 0)
        return s_unavailable (req);
    if (rc > 0)
        return s_not_found (req, "no such user");
    return http_reply_json (req, 200, view);
}

//  The names of the fields an update sets, for the event.
static json_t *
s_field_names (unsigned set)
{
    json_t *names = json_array ();
    if (set & AUTH_SET_ROLES)
        json_array_append_new (names, json_string ("roles"));
    if (set & AUTH_SET_UNITS)
        json_array_append_new (names, json_string ("units"));
    if (set & AUTH_SET_LANGUAGES)
        json_array_append_new (names, json_string ("languages"));
    if (set & AUTH_SET_DISPLAY_NAME)
        json_array_append_new (names, json_string ("display_name"));
    if (set & AUTH_SET_EMAIL)
        json_array_append_new (names, json_string ("email"));
    if (set & AUTH_SET_PHONE)
        json_array_append_new (names, json_string ("phone"));
    return names;
}

//  PATCH /api/v1/users/{id}
static int
s_user_update (intake_t *intake, http_req_t *req)
{
    static const char *const fields[]
        = { "roles", "units", "languages", "display_name", "email", "phone", NULL };
    auth_spec_t spec;
    unsigned set;
    if (http_body_only (req, fields) || s_parse_spec (req, false, &spec, &set))
        return -1;
    if (set == 0)
        return http_reply_error (req, 400, "missing_field", "nothing to change", NULL);
    const char *id = http_param (req, "id");
    //  An admin cannot take their own admin role away: the last admin would lock everyone out.
    if ((set & AUTH_SET_ROLES) && !(spec.roles & GL_ROLE_ADMIN)
        && strcmp (id, http_caller (req)->user_id) == 0)
        return http_reply_error (req, 409, "conflict", "you cannot remove your own admin role",
                                 "roles");
    s_user_emit (intake, req, "user.updated", s_field_names (set));
    int rc = auth_user_update (intake, id, &spec, set);
    if (rc < 0)
        return s_unavailable (req);
    if (rc > 0)
        return s_not_found (req, "no such user");
    audit_record_req (intake, req, "update", "user", id,
                      (set & AUTH_SET_ROLES) ? "roles_changed" : "profile_changed");
    json_t *view = NULL;
    if (auth_user_view (intake, id, &view) != 0)
        return s_unavailable (req);
    return http_reply_json (req, 200, view);
}

//  POST /api/v1/users/{id}/disable and /enable
static int
s_user_disabled (intake_t *intake, http_req_t *req, bool disabled)
{
    static const char *const fields[] = { NULL };
    if (http_body_only (req, fields))
        return -1;
    const char *id = http_param (req, "id");
    if (disabled && strcmp (id, http_caller (req)->user_id) == 0)
        return http_reply_error (req, 409, "conflict", "you cannot disable yourself", NULL);
    if (disabled)
        auth_emit (intake, s_event (req, "user.disabled"), "user_id", "");
    else
        s_user_emit (intake, req, "user.updated", json_pack ("[s]", "disabled"));
    int rc = auth_user_set_disabled (intake, id, disabled);
    if (rc < 0)
        return s_unavailable (req);
    if (rc > 0)
        return s_not_found (req, "no such user");
    audit_record_req (intake, req, "update", "user", id, disabled ? "disabled" : "enabled");
    json_t *view = NULL;
    if (auth_user_view (intake, id, &view) != 0)
        return s_unavailable (req);
    return http_reply_json (req, 200, view);
}

static int
s_user_disable (intake_t *intake, http_req_t *req)
{
    return s_user_disabled (intake, req, true);
}

static int
s_user_enable (intake_t *intake, http_req_t *req)
{
    return s_user_disabled (intake, req, false);
}

//  POST /api/v1/users/{id}/password: an admin sets a new password (the user's sessions end).
static int
s_user_password (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "password", NULL };
    const char *password = NULL;
    if (http_body_only (req, fields)
        || http_body_str (req, "password", true, AUTH_PASSWORD_MAX, &password))
        return -1;
    if (!auth_password_valid (password))
        return s_invalid (req, "password", "a password has at least 10 characters");
    const char *id = http_param (req, "id");
    gl_event_t *ev = s_event (req, "user.updated");
    if (ev)
        json_object_set_new (ev->data, "fields", json_pack ("[s]", "password"));
    auth_emit (intake, ev, "user_id", "");
    int rc = auth_user_set_password (intake, req, id, password, false);
    if (rc < 0)
        return s_unavailable (req);
    if (rc > 0)
        return s_not_found (req, "no such user");
    audit_record_req (intake, req, "update", "user", id, "password_reset");
    return http_reply_json (req, 200, json_object ());
}

//  --------------------------------------------------------------------------------------------
//  API clients

//  POST /api/v1/clients
static int
s_client_create (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "name", "roles", NULL };
    const char *name = NULL;
    const char *roles[2] = { "api_client", NULL };
    size_t nroles = 1;
    if (http_body_only (req, fields)
        || http_body_str (req, "name", true, AUTH_CLIENT_NAME_MAX, &name)
        || s_body_list (req, "roles", false, 1, 1, s_client_role, roles, &nroles, NULL))
        return -1;
    if (strchr (name, '\n') || strchr (name, '\r'))
        return s_invalid (req, "name", "must be one line");
    char id[GL_ID_LEN + 1], token[AUTH_TOKEN_LEN + 1];
    gl_event_t *ev = s_event (req, "client.created");
    if (ev)
        json_object_set_new (ev->data, "roles", auth_roles_json (GL_ROLE_API_CLIENT));
    auth_emit (intake, ev, "client_id", "");
    if (auth_client_create (intake, name, GL_ROLE_API_CLIENT, id, token) != 0)
        return s_unavailable (req);
    audit_record_req (intake, req, "create", "client", id, "");
    json_t *view = NULL;
    if (auth_client_view (intake, id, &view) != 0) {
        sodium_memzero (token, sizeof token);
        return s_unavailable (req);
    }
    json_object_set_new (view, "token", json_string (token));
    sodium_memzero (token, sizeof token);
    return http_reply_json (req, 201, view);
}

//  GET /api/v1/clients
static int
s_client_list (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "limit", "cursor", NULL };
    http_page_t page;
    if (http_query_only (req, params) || http_page (req, &page))
        return -1;
    json_t *items = NULL;
    char next[HTTP_CURSOR_MAX + 1];
    int rc = auth_clients_page (intake, &page, &items, next);
    if (rc == 1)
        return http_reply_error (req, 400, "invalid_parameter", "this cursor is not valid",
                                 "cursor");
    if (rc < 0)
        return s_unavailable (req);
    return http_reply_page (req, items, next[0] ? next : NULL);
}

//  GET /api/v1/clients/{id}
static int
s_client_get (intake_t *intake, http_req_t *req)
{
    json_t *view = NULL;
    int rc = auth_client_view (intake, http_param (req, "id"), &view);
    if (rc < 0)
        return s_unavailable (req);
    if (rc > 0)
        return s_not_found (req, "no such API client");
    return http_reply_json (req, 200, view);
}

//  DELETE /api/v1/clients/{id}: revoke (the record stays, for the audit trail).
static int
s_client_revoke (intake_t *intake, http_req_t *req)
{
    const char *id = http_param (req, "id");
    auth_emit (intake, s_event (req, "client.revoked"), "client_id", "");
    int rc = auth_client_revoke (intake, id);
    if (rc < 0)
        return s_unavailable (req);
    if (rc == 1)
        return s_not_found (req, "no such API client");
    if (rc == 0)
        audit_record_req (intake, req, "revoke", "client", id, "");
    json_t *view = NULL;
    if (auth_client_view (intake, id, &view) != 0)
        return s_unavailable (req);
    return http_reply_json (req, 200, view);
}

void
api_auth_routes (intake_t *intake)
{
    http_t *http = intake->http;
    http_route (http, "POST", "/api/v1/auth/login", GL_ROLE_PUBLIC, s_login);
    http_route (http, "POST", "/api/v1/auth/logout", GL_ROLE_STAFF, s_logout);
    http_route (http, "GET", "/api/v1/auth/me", GL_ROLE_STAFF | GL_ROLE_API_CLIENT, s_me);
    http_route (http, "POST", "/api/v1/auth/password", GL_ROLE_STAFF, s_password);
    http_route (http, "POST", "/api/v1/users", GL_ROLE_ADMIN, s_user_create);
    http_route (http, "GET", "/api/v1/users", GL_ROLE_ADMIN, s_user_list);
    http_route (http, "GET", "/api/v1/users/{id}", GL_ROLE_ADMIN, s_user_get);
    http_route (http, "PATCH", "/api/v1/users/{id}", GL_ROLE_ADMIN, s_user_update);
    http_route (http, "POST", "/api/v1/users/{id}/disable", GL_ROLE_ADMIN, s_user_disable);
    http_route (http, "POST", "/api/v1/users/{id}/enable", GL_ROLE_ADMIN, s_user_enable);
    http_route (http, "POST", "/api/v1/users/{id}/password", GL_ROLE_ADMIN, s_user_password);
    http_route (http, "POST", "/api/v1/clients", GL_ROLE_ADMIN, s_client_create);
    http_route (http, "GET", "/api/v1/clients", GL_ROLE_ADMIN, s_client_list);
    http_route (http, "GET", "/api/v1/clients/{id}", GL_ROLE_ADMIN, s_client_get);
    http_route (http, "DELETE", "/api/v1/clients/{id}", GL_ROLE_ADMIN, s_client_revoke);
}
