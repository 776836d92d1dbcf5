/*  auth — intake's accounts: users (staff with roles, units and languages), sessions, API
    clients, and the authentication hook (intake->authenticate) every non-PUBLIC route goes
    through (docs/api/auth.md).

    Credentials, on every route but login:
      - Authorization: Bearer <token>   a session token (from POST /api/v1/auth/login) or an API
                                        client's token (POST /api/v1/clients). No CSRF token.
      - Cookie: gl_session=<token>      a session; POST/PUT/PATCH/DELETE must also carry
                                        X-CSRF-Token (the csrf_token login returned).
    Tokens are 256 random bits; Redis holds only their keyed hash (BLAKE2b under the server key),
    so a copy of Redis does not let anyone in. Roles, units and disabled are read from the user on
    every request (one pipelined round trip with the session), so a change takes effect at once.

    Handlers read the caller with http_caller (req): user_id (a user's or an API client's id),
    roles (GL_ROLE_*), units. Other concerns read a user (its languages, units, roles) with
    auth_user_get, e.g. referral's rosters naming users by id, or agent state and languages.

    Redis keys (all in the {intake} slot, docs/api/auth.md "Keys"):
      intake:{intake}:user:<id>             hash   the user
      intake:{intake}:username:<name>       string the user id (makes usernames unique)
      intake:{intake}:users                 zset   "<username>:<id>" (listing by username)
      intake:{intake}:session:<hash>        hash   a session
      intake:{intake}:user_sessions:<id>    zset   a user's session hashes (ended together)
      intake:{intake}:client:<id>           hash   an API client (with its token's hash)
      intake:{intake}:clients               zset   client ids
      intake:{intake}:login_fail:<name>     zset   failed login times (lock-out)
      intake:{intake}:login_lock:<name>     string locked until (ms)
      intake:{intake}:login_ip:<ip>         zset   login attempts per address (rate limit)
      intake:{intake}:token_key             string the server key when GL_INTAKE_TOKEN_KEY is unset
*/
#ifndef INTAKE_AUTH_H
#define INTAKE_AUTH_H
#include "http.h"
#include "gl/gl_event.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _auth_t auth_t;

//  Limits (docs/api/auth.md).
#define AUTH_USERNAME_MAX   64          //  [a-z0-9._-], starts with a letter or digit
#define AUTH_PASSWORD_MIN   10          //  characters (UTF-8 code points)
#define AUTH_PASSWORD_MAX   256
#define AUTH_DISPLAY_MAX    128
#define AUTH_LANGS_MAX      16          //  languages a user speaks
#define AUTH_LANG_LEN       15          //  a language code: [a-z]{2,3} optionally -[A-Za-z0-9]{2,8}
#define AUTH_CLIENT_NAME_MAX 128

//  A user as other concerns see it (no password hash, no username).
typedef struct {
    char id[GL_ID_LEN + 1];
    uint32_t roles;                     //  GL_ROLE_AGENT | SUPERVISOR | PROTECTION | ADMIN
    bool disabled;
    size_t unit_count;
    char units[HTTP_UNITS_MAX][HTTP_UNIT_LEN + 1];
    size_t language_count;
    char languages[AUTH_LANGS_MAX][AUTH_LANG_LEN + 1];
} auth_user_t;

//  Read the configuration (GL_INTAKE_TOKEN_KEY, GL_INTAKE_ARGON2_OPSLIMIT/_MEMLIMIT,
//  GL_INTAKE_SESSION_IDLE_S/_MAX_S, lock-out and rate-limit settings, GL_INTAKE_COOKIE_SECURE),
//  load or create the server key, create the bootstrap admin (GL_INTAKE_BOOTSTRAP_ADMIN=
//  username:password, only when no user exists), and install auth_authenticate as
//  intake->authenticate. Needs intake->redis and intake->pub. NULL with the reason in err.
auth_t *auth_new (intake_t *intake, char *err, size_t errlen);

//  Free. NULLs *self_p.
void auth_destroy (auth_t **self_p);

//  The authentication hook (http_auth_fn): 0 with caller filled, 401 for missing, unknown,
//  expired or revoked credentials, a disabled user, or a cookie session without its CSRF token
//  on a state-changing method; 503 when Redis cannot be reached.
int auth_authenticate (intake_t *intake, http_req_t *req, http_caller_t *caller);

//  Read user id. 0 with *out filled, 1 when there is no such user (or id is malformed), -1 when
//  Redis cannot be reached. A disabled user is returned with out->disabled set.
int auth_user_get (intake_t *intake, const char *id, auth_user_t *out);

//  Roles and their codes: "agent", "supervisor", "protection", "admin", "api_client".
//  The flag of a code, or 0 for an unknown code.
uint32_t auth_role_flag (const char *code);
//  The code of one flag, or NULL.
const char *auth_role_code (uint32_t flag);
//  A new JSON array of the codes of roles, in the order above.
json_t *auth_roles_json (uint32_t roles);

//  True when s is a well-formed unit id: 1..HTTP_UNIT_LEN of [a-z0-9_-].
bool auth_unit_valid (const char *s);

//  Routes (api_auth.c): login, logout, me, password; users; API clients.
void api_auth_routes (intake_t *intake);

//  --------------------------------------------------------------------------------------------
//  The model behind api_auth.c (the HTTP side of this concern). Other concerns use the functions
//  above. Unless said otherwise: 0 done, 1 no such user or client, -1 Redis cannot be reached.

#define AUTH_TOKEN_LEN      80          //  "gls_" or "glc_", an id, "_", 43 base64url characters
#define AUTH_SECRET_LEN     43          //  256 random bits, base64url without padding

//  What a user is made of, for create and update. Strings are borrowed and already validated.
typedef struct {
    const char *username;
    const char *display_name;
    uint32_t roles;
    size_t unit_count;
    const char *units[HTTP_UNITS_MAX];
    size_t language_count;
    const char *languages[AUTH_LANGS_MAX];
    const char *email;                  //  "" for none: where notifier e-mails the user
    const char *phone;                  //  "" for none: SMS and voice alarms
} auth_spec_t;

//  Which fields auth_user_update sets.
#define AUTH_SET_ROLES          1u
#define AUTH_SET_UNITS          2u
#define AUTH_SET_LANGUAGES      4u
#define AUTH_SET_DISPLAY_NAME   8u
#define AUTH_SET_EMAIL          16u
#define AUTH_SET_PHONE          32u
#define AUTH_EMAIL_MAX          254
#define AUTH_PHONE_MAX          16          //  "+" and up to 15 digits (E.164)

//  E-mail: 3..254 printable ASCII characters without spaces, one "@" with text on both sides.
bool auth_email_valid (const char *s);
//  Phone: an optional "+" then 6..15 digits.
bool auth_phone_valid (const char *s);

//  The bus request "intake.user_contact" (usercontact.c), registered by auth_new.
int usercontact_register (intake_t *intake);

//  The outcome of a login.
typedef struct {
    int status;                         //  200, 401 (wrong credentials), 429, 503
    int64_t retry_after_s;              //  with 429
    char token[AUTH_TOKEN_LEN + 1];     //  with 200
    char csrf_token[AUTH_SECRET_LEN + 1];
    char user_id[GL_ID_LEN + 1];
    int64_t expires_ms;                 //  the session's absolute end
} auth_login_t;

//  Username: 1..AUTH_USERNAME_MAX of [a-z0-9._-], starting with a letter or digit.
bool auth_username_valid (const char *s);
//  Password policy: AUTH_PASSWORD_MIN..AUTH_PASSWORD_MAX characters.
bool auth_password_valid (const char *s);
//  A language code: [a-z]{2,3}, optionally followed by -[A-Za-z0-9]{1,8} parts, at most
//  AUTH_LANG_LEN characters.
bool auth_language_valid (const char *s);

//  Log in (POST /api/v1/auth/login): rate limits, lock-out, password check, new session, audit.
//  Always 0; the outcome is in out->status.
int auth_login (intake_t *intake, http_req_t *req, const char *username, const char *password,
                auth_login_t *out);

//  Delete the session that authenticated req (the current request). 0, 1 when req was not
//  authenticated by a session (an API client), -1.
int auth_logout (intake_t *intake, http_req_t *req);

//  Create a user; id receives its new id. 1 when the username is taken.
int auth_user_create (intake_t *intake, const auth_spec_t *spec, const char *password,
                      char id[GL_ID_LEN + 1]);

//  The user as the API shows it: {id, username, display_name, roles, units, languages,
//  disabled, created_ms, updated_ms}. *out is the caller's.
int auth_user_view (intake_t *intake, const char *id, json_t **out);

//  Set the fields of spec named by fields (AUTH_SET_*).
int auth_user_update (intake_t *intake, const char *id, const auth_spec_t *spec,
                      unsigned fields);

//  Disable (every session of the user is deleted) or enable.
int auth_user_set_disabled (intake_t *intake, const char *id, bool disabled);

//  Set a new password; deletes the user's sessions (but the one of req when keep_current, for a
//  user changing their own) and clears a lock-out.
int auth_user_set_password (intake_t *intake, http_req_t *req, const char *id,
                            const char *password, bool keep_current);

//  Check a user's current password (a user changing their own). 0 right, 1 wrong (counted as a
//  failed login), 2 locked out (*retry_after_s set), -1.
int auth_password_check (intake_t *intake, const char *id, const char *password,
                         int64_t *retry_after_s);

//  A page of users by username: *items (the caller's) of user views, next_cursor (empty on the
//  last page; capacity HTTP_CURSOR_MAX + 1). 0, 1 for a cursor that was not ours, -1.
int auth_users_page (intake_t *intake, const http_page_t *page, json_t **items,
                     char *next_cursor);

//  Create an API client; id and token (shown once) receive its id and its token.
int auth_client_create (intake_t *intake, const char *name, uint32_t roles,
                        char id[GL_ID_LEN + 1], char token[AUTH_TOKEN_LEN + 1]);

//  The client as the API shows it: {id, name, roles, created_ms, revoked, revoked_ms}.
int auth_client_view (intake_t *intake, const char *id, json_t **out);

//  Revoke: its token stops working at once. 0, 1 unknown, 2 already revoked, -1.
int auth_client_revoke (intake_t *intake, const char *id);

//  A page of clients (by id), as auth_users_page.
int auth_clients_page (intake_t *intake, const http_page_t *page, json_t **items,
                       char *next_cursor);

//  The event (taken; NULL for none) that the next account write (create, update, disable,
//  enable, password, client create or revoke) stores in the outbox in the same script as its
//  change, so the change never happens without its event (gl_outbox.h); it is published right
//  after. id_field (e.g. "user_id", or NULL) is set to the id of the record written; post says
//  which of the user's fields the script adds as they are after the change: "r" roles, "u" units,
//  "d" disabled. If the write does not apply (no such user, username taken), or no write
//  follows before the next request, the event is dropped.
void auth_emit (intake_t *intake, gl_event_t *ev, const char *id_field, const char *post);

#endif
