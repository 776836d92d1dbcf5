/*  callers — see callers.h. This file: settings and the case key, normal forms, refs, events,
    verification and its grants, reading abusive flags. The extract is in cases.c; the HTTP
    handlers, with change requests and setting flags, in api_callers.c; the bus request in
    delivery.c; booking in booking.c and api_booking.c.

    Everything that two replicas could race on (counting failures, granting, taking a change
    request from one state to the next) is one Lua script, so replicas of intake may serve the
    same case at once. Due times (grants, locks) are business time (gl_now_ms) stored as data;
    the PEXPIREs on these keys only clean up long after the due time has passed.
*/
#include "callers.h"
#include "audit.h"
#include "contacts.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_log.h"
#include "gl/gl_req.h"
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_KEY_BYTES     32
//  How long a grant or lock key lingers after its due time (cleanup only), and how long a call or
//  contact remembers the case it was verified for (delivery details by contact id).
#define S_CLEANUP_MS    (7 * 86400000LL)
#define S_CTX_CASE_MS   (90 * 86400000LL)

struct _callers_t {
    intake_t *intake;
    unsigned char key[S_KEY_BYTES];
    size_t question_count;
    callers_field_t questions[CALLERS_QUESTIONS_MAX];
    int64_t max_failures;
    int64_t lock_ms;
    int64_t grant_ms;
};

static const char *s_field_names[CALLERS_F__COUNT] = {
    "registration_status", "rsd_status", "resettlement_status", "assistance_status",
    "next_appointment", "family_size", "dob", "phones", "language", "location",
};

const char *
callers_field_name (callers_field_t field)
{
    assert ((unsigned) field < CALLERS_F__COUNT);
    return s_field_names[field];
}

intake_t *
callers_intake (callers_t *self)
{
    return self->intake;
}

//  --------------------------------------------------------------------------------------------
//  Normal forms

int
callers_case_no_norm (const char *in, char out[CALLERS_CASE_NO_MAX + 1])
{
    out[0] = 0;
    size_t n = in ? strlen (in) : 0;
    if (n == 0 || n > CALLERS_CASE_NO_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (!(isascii ((unsigned char) c) && (isalnum ((unsigned char) c) || c == '-'))) {
            out[0] = 0;
            return -1;
        }
        out[i] = (char) toupper ((unsigned char) c);
    }
    out[n] = 0;
    return 0;
}

int
callers_phone_norm (const char *in, char out[CALLERS_PHONE_MAX + 2])
{
    out[0] = 0;
    if (!in)
        return -1;
    size_t n = 0, digits = 0;
    const char *p = in;
    if (*p == '+')
        out[n++] = *p++;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (digits == CALLERS_PHONE_MAX) {
                out[0] = 0;
                return -1;
            }
            out[n++] = *p;
            digits++;
        }
        else if (!(digits > 0 && strchr (" -.()", *p))) {
            out[0] = 0;
            return -1;
        }
    }
    out[n] = 0;
    if (digits < 6) {
        out[0] = 0;
        return -1;
    }
    return 0;
}

bool
callers_date_valid (const char *s)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (!s || strlen (s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !(s[i] >= '0' && s[i] <= '9'))
            return false;
    int y = atoi (s), m = atoi (s + 5), d = atoi (s + 8);
    if (y < 1900 || y > 2199 || m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap ? 1 : 0);
}

bool
callers_lang_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0, i = 0;
    if (n == 0 || n > CALLERS_LANG_MAX)
        return false;
    while (i < n && s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return false;
    if (i == n)
        return true;
    if (s[i] != '-')
        return false;
    size_t rest = n - i - 1;
    if (rest < 2 || rest > 8)
        return false;
    for (i++; i < n; i++)
        if (!isascii ((unsigned char) s[i]) || !isalnum ((unsigned char) s[i]))
            return false;
    return true;
}

bool
callers_code_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n > CALLERS_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isascii ((unsigned char) s[i])
              && (isalnum ((unsigned char) s[i]) || strchr ("_.-", s[i]))))
            return false;
    return true;
}

bool
callers_status_valid (const char *s)
{
    if (!s)
        return false;
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
        if ((*p & 0xc0) != 0x80)
            chars++;
    }
    //  UTF-8 validity is checked by whoever read the text (the CSV reader, the JSON parser).
    return chars <= CALLERS_STATUS_MAX;
}

void
callers_today (char out[11])
{
    time_t t = (time_t) (gl_now_ms () / 1000);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (out, 11, "%Y-%m-%d", &tm);
}

//  --------------------------------------------------------------------------------------------
//  Refs

void
callers_hash (callers_t *self, const char *kind, const char *value, char out[CALLERS_REF_LEN + 1])
{
    crypto_generichash_state st;
    unsigned char digest[CALLERS_REF_LEN / 2];
    crypto_generichash_init (&st, self->key, sizeof self->key, sizeof digest);
    crypto_generichash_update (&st, (const unsigned char *) kind, strlen (kind) + 1);
    crypto_generichash_update (&st, (const unsigned char *) value, strlen (value));
    crypto_generichash_final (&st, digest, sizeof digest);
    sodium_bin2hex (out, CALLERS_REF_LEN + 1, digest, sizeof digest);
}

void
callers_case_ref (callers_t *self, const char *case_no, char out[CALLERS_REF_LEN + 1])
{
    callers_hash (self, "case", case_no, out);
}

void
callers_phone_ref (callers_t *self, const char *phone, char out[CALLERS_REF_LEN + 1])
{
    callers_hash (self, "phone", phone, out);
}

//  --------------------------------------------------------------------------------------------
//  Events

int
callers_event_new (callers_t *self, callers_event_t *e, const char *type, const char *corr,
                   json_t *data)
{
    memset (e, 0, sizeof *e);
    e->ev = data ? gl_event_new (type) : NULL;
    if (!e->ev) {
        json_decref (data);
        return -1;
    }
    if (corr && *corr)
        gl_event_set_corr (e->ev, corr);
    json_object_update (e->ev->data, data);
    json_decref (data);
    e->entry = contacts_outbox_entry (self->intake, e->ev, 0);
    if (!e->entry) {
        callers_event_drop (e);
        return -1;
    }
    return 0;
}

void
callers_event_deliver (callers_t *self, callers_event_t *e)
{
    if (e->ev)
        contacts_outbox_deliver (self->intake, e->ev, 0);
    callers_event_drop (e);
}

void
callers_event_drop (callers_event_t *e)
{
    gl_event_destroy (&e->ev);
    free (e->entry);
    e->entry = NULL;
}

//  --------------------------------------------------------------------------------------------
//  Start and stop

//  The case key: GL_INTAKE_CASE_KEY (64 hex digits), else one kept in Redis, made by the first
//  replica that starts (SET NX, then read back what won).
static int
s_load_key (callers_t *self, char *err, size_t errlen)
{
    const char *hex = gl_config_str (self->intake->config, "GL_INTAKE_CASE_KEY", NULL);
    size_t got = 0;
    if (hex && *hex) {
        if (strlen (hex) != 2 * S_KEY_BYTES
            || sodium_hex2bin (self->key, sizeof self->key, hex, strlen (hex), NULL, &got, NULL)
                   != 0
            || got != S_KEY_BYTES) {
            snprintf (err, errlen, "GL_INTAKE_CASE_KEY must be %d hex digits", 2 * S_KEY_BYTES);
            return -1;
        }
        return 0;
    }
    unsigned char fresh[S_KEY_BYTES];
    randombytes_buf (fresh, sizeof fresh);
    redisReply *r = gl_redis_cmd (self->intake->redis, "SET %s %b NX",
                                  CALLERS_KEY_PREFIX "case_key", fresh, sizeof fresh);
    sodium_memzero (fresh, sizeof fresh);
    if (r)
        freeReplyObject (r);
    r = gl_redis_cmd (self->intake->redis, "GET %s", CALLERS_KEY_PREFIX "case_key");
    int rc = -1;
    if (r && r->type == REDIS_REPLY_STRING && r->len == S_KEY_BYTES) {
        memcpy (self->key, r->str, S_KEY_BYTES);
        rc = 0;
    }
    else
        snprintf (err, errlen, "cannot read or create the case key in Redis");
    if (r)
        freeReplyObject (r);
    if (rc == 0)
        gl_warn ("callers: GL_INTAKE_CASE_KEY is not set: the case key is kept in Redis "
                 "(set it in production, docs/api/callers.md)");
    return rc;
}

static int
s_load_questions (callers_t *self, char *err, size_t errlen)
{
    const char *text
        = gl_config_str (self->intake->config, "GL_INTAKE_VERIFY_QUESTIONS", "dob,family_size");
    static const callers_field_t allowed[]
        = { CALLERS_F_DOB, CALLERS_F_FAMILY_SIZE, CALLERS_F_PHONES, CALLERS_F_LOCATION };
    char copy[128];
    snprintf (copy, sizeof copy, "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r (copy, ", ", &save); tok; tok = strtok_r (NULL, ", ", &save)) {
        //  "phone" names the question; the field is "phones".
        const char *name = strcmp (tok, "phone") == 0 ? "phones" : tok;
        bool found = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
            if (strcmp (name, s_field_names[allowed[i]]) != 0)
                continue;
            for (size_t k = 0; k < self->question_count; k++)
                if (self->questions[k] == allowed[i])
                    goto bad;
            self->questions[self->question_count++] = allowed[i];
            found = true;
        }
        if (!found)
            goto bad;
    }
    if (self->question_count == 0)
        goto bad;
    return 0;
bad:
    snprintf (err, errlen,
              "GL_INTAKE_VERIFY_QUESTIONS must list, once each, some of dob, family_size, "
              "phone, location");
    return -1;
}

callers_t *
callers_new (intake_t *intake, char *err, size_t errlen)
{
    assert (intake && intake->redis && intake->pub && intake->rep);
    if (sodium_init () < 0) {
        snprintf (err, errlen, "libsodium cannot start");
        return NULL;
    }
    callers_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->intake = intake;
    gl_config_t *config = intake->config;
    self->max_failures = gl_config_int (config, "GL_INTAKE_VERIFY_MAX_FAILURES", 3, 1, 100);
    self->lock_ms = 1000 * gl_config_int (config, "GL_INTAKE_VERIFY_LOCK_S", 1800, 1, 604800);
    self->grant_ms = 1000 * gl_config_int (config, "GL_INTAKE_VERIFY_GRANT_S", 3600, 1, 86400);
    gl_config_int (config, "GL_INTAKE_IMPORT_MAX_ROWS", 100000, 1, 10000000);
    if (gl_config_error (config)) {
        snprintf (err, errlen, "%s", gl_config_error (config));
        callers_destroy (&self);
        return NULL;
    }
    if (s_load_questions (self, err, errlen) != 0 || s_load_key (self, err, errlen) != 0) {
        callers_destroy (&self);
        return NULL;
    }
    if (delivery_register (self, intake->rep) != 0) {
        snprintf (err, errlen, "cannot register intake.delivery_details");
        callers_destroy (&self);
        return NULL;
    }
    return self;
}

void
callers_destroy (callers_t **self_p)
{
    assert (self_p);
    callers_t *self = *self_p;
    if (!self)
        return;
    sodium_memzero (self->key, sizeof self->key);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------------------------
//  Locks and grants

//  KEYS[1] vfail; ARGV now, max failures, lock ms, cleanup ms. Failures are forgotten after a
//  success, a lock, or lock ms without a failure. Returns {failures, locked_until}.
static gl_redis_script_t s_fail_script = { .source =
    "local now = tonumber(ARGV[1])\n"
    "local locked = tonumber(redis.call('HGET', KEYS[1], 'locked_until') or '0')\n"
    "if locked > now then return {tonumber(ARGV[2]), locked} end\n"
    "local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')\n"
    "local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')\n"
    "if now - last > tonumber(ARGV[3]) then count = 0 end\n"
    "count = count + 1\n"
    "local until_ms = 0\n"
    "if count >= tonumber(ARGV[2]) then until_ms = now + tonumber(ARGV[3]) end\n"
    "redis.call('HSET', KEYS[1], 'count', until_ms > 0 and 0 or count, 'last', now,\n"
    "           'locked_until', until_ms)\n"
    "redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))\n"
    "return {count, until_ms}\n" };

//  KEYS[1] grant, KEYS[2] ctx_grants, KEYS[3] ctx_case, KEYS[4] vfail; ARGV until, keep ms,
//  ref, ctx keep ms.
static gl_redis_script_t s_grant_script = { .source =
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "redis.call('SADD', KEYS[2], KEYS[1])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"
    "redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])\n"
    "redis.call('DEL', KEYS[4])\n"
    "return 1\n" };

//  KEYS[1] ctx_grants.
static gl_redis_script_t s_end_script = { .source =
    "local keys = redis.call('SMEMBERS', KEYS[1])\n"
    "for _, k in ipairs(keys) do redis.call('DEL', k) end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return #keys\n" };

int
callers_locked (callers_t *self, const char *ref, int64_t *until)
{
    redisReply *r = gl_redis_cmd (self->intake->redis, "HGET %svfail:%s locked_until",
                                  CALLERS_KEY_PREFIX, ref);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    long long v = 0;
    if (r->type == REDIS_REPLY_STRING)
        gl_redis_reply_int (r, &v);
    freeReplyObject (r);
    *until = v;
    return v > gl_now_ms () ? 1 : 0;
}

int
callers_grant_check (callers_t *self, const char *user_id, const char *ref, const char *ctx,
                     int64_t *until)
{
    redisReply *r = gl_redis_cmd (self->intake->redis, "GET %sgrant:%s:%s:%s",
                                  CALLERS_KEY_PREFIX, user_id, ref, ctx);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    long long v = 0;
    if (r->type == REDIS_REPLY_STRING)
        gl_redis_reply_int (r, &v);
    freeReplyObject (r);
    *until = v;
    return v > gl_now_ms () ? 1 : 0;
}

int
callers_context_end (callers_t *self, const char *ctx)
{
    char key[128];
    snprintf (key, sizeof key, "%sctx_grants:%s", CALLERS_KEY_PREFIX, ctx);
    const char *argv[] = { key };
    redisReply *r = gl_redis_eval (self->intake->redis, &s_end_script, 1, 1, argv, NULL);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (r)
        freeReplyObject (r);
    return rc;
}

int
callers_context_case (callers_t *self, const char *ctx, char ref[CALLERS_REF_LEN + 1])
{
    redisReply *r
        = gl_redis_cmd (self->intake->redis, "GET %sctx_case:%s", CALLERS_KEY_PREFIX, ctx);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    int rc = 1;
    if (r->type == REDIS_REPLY_STRING && r->len == CALLERS_REF_LEN) {
        memcpy (ref, r->str, CALLERS_REF_LEN);
        ref[CALLERS_REF_LEN] = 0;
        rc = 0;
    }
    freeReplyObject (r);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Verification

//  The caller's answer to question q, in the stored form (dob and location as given, family size
//  as digits, a phone in its normal form). 0, or answers 400 and returns -1.
static int
s_answer (http_req_t *req, callers_field_t q, const json_t *value, char *out, size_t outlen)
{
    char field[48];
    snprintf (field, sizeof field, "answers.%s",
              q == CALLERS_F_PHONES ? "phone" : s_field_names[q]);
    if (!value) {
        http_reply_error (req, 400, "missing_field", "this question must be answered", field);
        return -1;
    }
    const char *text = json_string_value (value);
    switch (q) {
    case CALLERS_F_DOB:
        if (!callers_date_valid (text))
            break;
        snprintf (out, outlen, "%s", text);
        return 0;
    case CALLERS_F_FAMILY_SIZE:
        if (!json_is_integer (value) || json_integer_value (value) < 1
            || json_integer_value (value) > 99)
            break;
        snprintf (out, outlen, "%d", (int) json_integer_value (value));
        return 0;
    case CALLERS_F_PHONES: {
        char phone[CALLERS_PHONE_MAX + 2];
        if (callers_phone_norm (text, phone) != 0)
            break;
        snprintf (out, outlen, "%s", phone);
        return 0;
    }
    case CALLERS_F_LOCATION:
        if (!callers_code_valid (text))
            break;
        snprintf (out, outlen, "%s", text);
        return 0;
    default:
        break;
    }
    static const char *why[CALLERS_F__COUNT] = {
        [CALLERS_F_DOB] = "a date YYYY-MM-DD",
        [CALLERS_F_FAMILY_SIZE] = "an integer 1..99",
        [CALLERS_F_PHONES] = "a phone number",
        [CALLERS_F_LOCATION] = "a location code",
    };
    char message[64];
    snprintf (message, sizeof message, "must be %s", why[q] ? why[q] : "valid");
    http_reply_error (req, 400, "invalid_field", message, field);
    return -1;
}

//  Does the answer match what the extract holds? Phones: any number on file.
static bool
s_matches (callers_field_t q, const char *answer, const char *held)
{
    if (q != CALLERS_F_PHONES)
        return strcmp (answer, held) == 0;
    size_t n = strlen (answer);
    for (const char *p = held; *p;) {
        size_t len = strcspn (p, ";");
        if (len == n && memcmp (p, answer, n) == 0)
            return true;
        p += len + (p[len] == ';');
    }
    return false;
}

//  Record a failure; answers 200 {verified: false} or 423. audit first records the attempt.
static int
s_failed (callers_t *self, http_req_t *req, const char *ref)
{
    char key[128], now[24], max[24], lock[24], keep[24];
    snprintf (key, sizeof key, "%svfail:%s", CALLERS_KEY_PREFIX, ref);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    snprintf (max, sizeof max, "%" PRId64, self->max_failures);
    snprintf (lock, sizeof lock, "%" PRId64, self->lock_ms);
    snprintf (keep, sizeof keep, "%lld", S_CLEANUP_MS);
    const char *argv[] = { key, now, max, lock, keep };
    redisReply *r = gl_redis_eval (self->intake->redis, &s_fail_script, 1, 5, argv, NULL);
    long long count = 0, until = 0;
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2
           && gl_redis_reply_int (r->element[0], &count) == 0
           && gl_redis_reply_int (r->element[1], &until) == 0;
    if (r)
        freeReplyObject (r);
    if (!ok)
        return http_reply_error (req, 503, "unavailable", "cannot record the attempt now", NULL);
    bool locked = until > 0;
    if (audit_record_req (self->intake, req, "verify_failed", "case", ref,
                          locked ? "locked" : "wrong_answers")
        != 0)
        return http_reply_error (req, 503, "unavailable", "cannot audit the attempt now", NULL);
    if (locked) {
        char retry[24];
        snprintf (retry, sizeof retry, "%lld", (until - gl_now_ms () + 999) / 1000);
        http_set_header (req, "Retry-After", retry);
        return http_reply_error (req, 423, "locked",
                                 "too many failed verifications: the case is locked for a while",
                                 NULL);
    }
    long long left = self->max_failures - count;
    return http_reply_json (req, 200,
                            json_pack ("{s:b, s:I}", "verified", 0, "attempts_left",
                                       (json_int_t) (left > 0 ? left : 0)));
}

static int
s_granted (callers_t *self, http_req_t *req, const char *ref, const char *ctx)
{
    const http_caller_t *who = http_caller (req);
    if (audit_record_req (self->intake, req, "verify_ok", "case", ref, "") != 0)
        return http_reply_error (req, 503, "unavailable", "cannot audit the attempt now", NULL);
    int64_t until = gl_now_ms () + self->grant_ms;
    char grant[160], ctx_grants[96], ctx_case[96], vfail[96], until_s[24], keep[24], ctx_keep[24];
    snprintf (grant, sizeof grant, "%sgrant:%s:%s:%s", CALLERS_KEY_PREFIX, who->user_id, ref, ctx);
    snprintf (ctx_grants, sizeof ctx_grants, "%sctx_grants:%s", CALLERS_KEY_PREFIX, ctx);
    snprintf (ctx_case, sizeof ctx_case, "%sctx_case:%s", CALLERS_KEY_PREFIX, ctx);
    snprintf (vfail, sizeof vfail, "%svfail:%s", CALLERS_KEY_PREFIX, ref);
    snprintf (until_s, sizeof until_s, "%" PRId64, until);
    snprintf (keep, sizeof keep, "%" PRId64, (int64_t) (self->grant_ms + S_CLEANUP_MS));
    snprintf (ctx_keep, sizeof ctx_keep, "%lld", S_CTX_CASE_MS);
    const char *argv[] = { grant, ctx_grants, ctx_case, vfail, until_s, keep, ref, ctx_keep };
    redisReply *r = gl_redis_eval (self->intake->redis, &s_grant_script, 4, 8, argv, NULL);
    bool ok = r && r->type == REDIS_REPLY_INTEGER;
    if (r)
        freeReplyObject (r);
    if (!ok)
        return http_reply_error (req, 503, "unavailable", "cannot record the grant now", NULL);
    return http_reply_json (req, 200,
                            json_pack ("{s:b, s:I}", "verified", 1, "verified_until",
                                       (json_int_t) until));
}

size_t
callers_verify_questions (callers_t *self, const char **names, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < self->question_count && n < max; i++) {
        callers_field_t q = self->questions[i];
        names[n++] = q == CALLERS_F_PHONES ? "phone" : s_field_names[q];
    }
    return n;
}

int
callers_verify (callers_t *self, http_req_t *req, const char *ref, const char *ctx,
                const json_t *answers)
{
    //  The answers: exactly the configured questions.
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) answers, key, value) {
        const char *name = strcmp (key, "phone") == 0 ? "phones" : key;
        bool asked = false;
        for (size_t i = 0; i < self->question_count; i++)
            asked = asked || strcmp (name, s_field_names[self->questions[i]]) == 0;
        if (!asked || strcmp (key, "phones") == 0) {
            char field[48];
            snprintf (field, sizeof field, "answers.%.32s", key);
            return http_reply_error (req, 400, "unknown_field", "not one of the questions asked",
                                     field);
        }
    }
    char given[CALLERS_QUESTIONS_MAX][CALLERS_STATUS_MAX * 4 + 1];
    for (size_t i = 0; i < self->question_count; i++) {
        callers_field_t q = self->questions[i];
        const char *name = q == CALLERS_F_PHONES ? "phone" : s_field_names[q];
        if (s_answer (req, q, json_object_get (answers, name), given[i], sizeof given[i]) != 0)
            return -1;
    }
    int64_t until = 0;
    int locked = callers_locked (self, ref, &until);
    if (locked < 0)
        return http_reply_error (req, 503, "unavailable", "cannot check the case now", NULL);
    if (locked) {
        if (audit_record_req (self->intake, req, "verify_refused", "case", ref, "locked") != 0)
            return http_reply_error (req, 503, "unavailable", "cannot audit the attempt now",
                                     NULL);
        char retry[24];
        snprintf (retry, sizeof retry, "%" PRId64, (until - gl_now_ms () + 999) / 1000);
        http_set_header (req, "Retry-After", retry);
        return http_reply_error (req, 423, "locked",
                                 "too many failed verifications: the case is locked for a while",
                                 NULL);
    }
    bool all = true;
    for (size_t i = 0; i < self->question_count; i++) {
        char held[CALLERS_STATUS_MAX * 4 + 1];
        int rc = cases_field (self, ref, self->questions[i], held, sizeof held);
        if (rc < 0)
            return http_reply_error (req, 503, "unavailable", "cannot read the case now", NULL);
        if (rc == 1) {
            if (audit_record_req (self->intake, req, "verify_failed", "case", ref, "unknown_case")
                != 0)
                return http_reply_error (req, 503, "unavailable", "cannot audit the attempt now",
                                         NULL);
            return http_reply_error (req, 404, "not_found", "no such case in the extract", NULL);
        }
        if (!*held) {
            char field[48];
            callers_field_t q = self->questions[i];
            snprintf (field, sizeof field, "answers.%s",
                      q == CALLERS_F_PHONES ? "phone" : s_field_names[q]);
            if (audit_record_req (self->intake, req, "verify_refused", "case", ref, "no_data")
                != 0)
                return http_reply_error (req, 503, "unavailable", "cannot audit the attempt now",
                                         NULL);
            return http_reply_error (req, 409, "cannot_verify",
                                     "the extract holds nothing to check this answer against",
                                     field);
        }
        all = all && s_matches (self->questions[i], given[i], held);
    }
    sodium_memzero (given, sizeof given);
    return all ? s_granted (self, req, ref, ctx) : s_failed (self, req, ref);
}

//  --------------------------------------------------------------------------------------------
//  Abusive flags

int
callers_flag_get (callers_t *self, const char *ref, json_t **out)
{
    redisReply *r = gl_redis_cmd (self->intake->redis, "HMGET %sflag:%s id reason kind at",
                                  CALLERS_KEY_PREFIX, ref);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    int rc = 1;
    if (r->element[0]->type == REDIS_REPLY_STRING) {
        long long at = 0;
        gl_redis_reply_int (r->element[3], &at);
        *out = json_pack ("{s:s, s:s, s:s, s:I}", "id", r->element[0]->str, "reason",
                          r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "",
                          "kind",
                          r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "",
                          "flagged_at", (json_int_t) at);
        rc = *out ? 0 : -1;
    }
    freeReplyObject (r);
    return rc;
}
