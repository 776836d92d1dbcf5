/*  audit — see audit.h.

    The stream's entry ids are the business time (gl_now_ms) of the entry, so a query by time
    range is a range of ids (XREVRANGE to from), not a scan. One Lua script appends: the id is
    <now>-0, or the last id's ms with the next sequence when the clock has not moved past it
    (several entries in one millisecond, or a business clock set back), so ids only grow and an
    XADD never fails for an id in the past. The entry keeps the real time as its own field "ts".
*/
#include "audit.h"
#include "aredis.h"
#include "auth.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <string.h>

#define S_AUDIT_KEY AUDIT_KEY

//  The request being handled, as the authentication hook saw it (one actor thread per process;
//  thread-local so that a second actor in one process, as in tests, keeps its own).
static _Thread_local struct {
    const http_caller_t *who;           //  the pointer handlers pass (http_caller (req))
    http_caller_t copy;                 //  its content then, to tell a reused address apart
    char request_id[GL_ID_LEN + 1];
} s_current;

//  The same function runs inside other scripts (AUDIT_LUA): one format, one id rule.
static gl_redis_script_t s_append = { .source = AUDIT_LUA
                                      "return audit_append(KEYS[1], ARGV, 1)\n" };

//  A code: 1..AUDIT_CODE_MAX of [a-z0-9_.-] (empty allowed when may_be_empty).
static bool
s_code_valid (const char *s, bool may_be_empty)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0)
        return may_be_empty && s;
    if (n > AUDIT_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'
              || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

void
audit_set_current (intake_t *intake, http_req_t *req, const http_caller_t *caller)
{
    (void) intake;
    s_current.who = caller;
    if (caller)
        s_current.copy = *caller;
    const char *id = req ? http_request_id (req) : NULL;
    snprintf (s_current.request_id, sizeof s_current.request_id, "%s", id ? id : "");
}

//  Fill e with an entry's arguments (AUDIT_ARGC strings). 0, or -1 for a malformed code.
static int
s_prepare (intake_t *intake, const http_caller_t *who, const char *request_id,
           const char *action, const char *record_type, const char *record_id,
           const char *detail_code, audit_entry_t *e)
{
    assert (intake && e);
    if (!s_code_valid (action, false) || !s_code_valid (record_type, false)
        || !s_code_valid (record_id, true) || !s_code_valid (detail_code, true)) {
        gl_error ("audit: refused an entry with a malformed code (a bug in the caller)");
        return -1;
    }
    e->roles[0] = 0;
    size_t n = 0;
    for (uint32_t bit = GL_ROLE_AGENT; who && bit <= GL_ROLE_API_CLIENT; bit <<= 1) {
        const char *code = (who->roles & bit) ? auth_role_code (bit) : NULL;
        if (code)
            n += (size_t) snprintf (e->roles + n, sizeof e->roles - n, "%s%s", n ? "," : "",
                                    code);
    }
    snprintf (e->now, sizeof e->now, "%" PRId64, gl_now_ms ());
    //  Read once per configuration (the profile showed the environment scan on every write).
    static _Thread_local const gl_config_t *config;
    static _Thread_local int64_t maxlen;
    if (config != intake->config) {
        maxlen = gl_config_int (intake->config, "GL_INTAKE_AUDIT_MAXLEN", 10000000, 1000,
                                1000000000);
        config = intake->config;
    }
    snprintf (e->maxlen, sizeof e->maxlen, "%" PRId64, maxlen);
    const char *argv[AUDIT_ARGC] = { e->now,    e->maxlen,   "ts",        e->now,
                                     "actor",   who ? who->user_id : "", "roles", e->roles,
                                     "action",  action,      "type",      record_type,
                                     "id",      record_id ? record_id : "", "detail",
                                     detail_code ? detail_code : "", "req",
                                     request_id ? request_id : "" };
    memcpy (e->argv, argv, sizeof argv);
    return 0;
}

static int
s_append_entry (intake_t *intake, const http_caller_t *who, const char *request_id,
                const char *action, const char *record_type, const char *record_id,
                const char *detail_code)
{
    audit_entry_t e;
    if (s_prepare (intake, who, request_id, action, record_type, record_id, detail_code, &e)
        != 0)
        return -1;
    const char *argv[1 + AUDIT_ARGC] = { S_AUDIT_KEY };
    memcpy (argv + 1, e.argv, sizeof e.argv);
    redisReply *reply = gl_redis_eval (intake->redis, &s_append, 1,
                                       (int) (sizeof argv / sizeof argv[0]), argv, NULL);
    int rc = reply && reply->type == REDIS_REPLY_STRING ? 0 : -1;
    if (rc != 0)
        gl_error ("audit: cannot append (%s)",
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "redis unreachable");
    if (reply)
        freeReplyObject (reply);
    return rc;
}

int
audit_entry_req (intake_t *intake, http_req_t *req, const char *action,
                 const char *record_type, const char *record_id, const char *detail_code,
                 audit_entry_t *out)
{
    assert (req && out);
    return s_prepare (intake, http_caller (req), http_request_id (req), action, record_type,
                      record_id, detail_code, out);
}

int
audit_record (intake_t *intake, const http_caller_t *who, const char *action,
              const char *record_type, const char *record_id, const char *detail_code)
{
    const char *request_id = "";
    if (who && who == s_current.who && who->roles == s_current.copy.roles
        && strcmp (who->user_id, s_current.copy.user_id) == 0)
        request_id = s_current.request_id;
    return s_append_entry (intake, who, request_id, action, record_type, record_id, detail_code);
}

int
audit_record_req (intake_t *intake, http_req_t *req, const char *action,
                  const char *record_type, const char *record_id, const char *detail_code)
{
    assert (req);
    return s_append_entry (intake, http_caller (req), http_request_id (req), action, record_type,
                           record_id, detail_code);
}

//  An entry on its way over the asynchronous connection: its strings, for a synchronous retry.
typedef struct {
    intake_t *intake;
    const char *argv[1 + AUDIT_ARGC];
    char block[];
} s_later_t;

static void
s_on_appended (redisReply *reply, void *arg)
{
    s_later_t *later = arg;
    redisReply *retry;
    reply = aredis_settle (later->intake->aredis, reply, &s_append, 1, 1 + AUDIT_ARGC,
                           later->argv, NULL, &retry);
    if (!reply || reply->type != REDIS_REPLY_STRING)
        gl_error ("audit: cannot append (%s)",
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "redis unreachable");
    if (retry)
        freeReplyObject (retry);
    free (later);
}

int
audit_record_req_later (intake_t *intake, http_req_t *req, const char *action,
                        const char *record_type, const char *record_id, const char *detail_code)
{
    assert (intake && req);
    audit_entry_t e;
    if (s_prepare (intake, http_caller (req), http_request_id (req), action, record_type,
                   record_id, detail_code, &e)
        != 0)
        return -1;
    const char *argv[1 + AUDIT_ARGC] = { S_AUDIT_KEY };
    memcpy (argv + 1, e.argv, sizeof e.argv);
    size_t total = 0;
    for (size_t i = 0; i < 1 + AUDIT_ARGC; i++)
        total += strlen (argv[i]) + 1;
    s_later_t *later = intake->aredis ? malloc (sizeof *later + total) : NULL;
    if (later) {
        later->intake = intake;
        char *at = later->block;
        for (size_t i = 0; i < 1 + AUDIT_ARGC; i++) {
            size_t n = strlen (argv[i]);
            memcpy (at, argv[i], n + 1);
            later->argv[i] = at;
            at += n + 1;
        }
        if (aredis_eval (intake->aredis, &s_append, 1, 1 + AUDIT_ARGC, later->argv, NULL,
                         s_on_appended, later)
            == 0)
            return 0;
        free (later);
    }
    return s_append_entry (intake, http_caller (req), http_request_id (req), action, record_type,
                           record_id, detail_code);
}
