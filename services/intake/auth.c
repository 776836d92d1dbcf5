/*  auth — see auth.h; the design and its reasons are in docs/api/auth.md.

    Tokens. A session token is "gls_<user id>_<secret>", an API client's "glc_<client id>_<secret>",
    the secret 32 random bytes in base64url. Redis keeps BLAKE2b(server key, token), never the
    token. Because the token names its owner, authenticating a session is one pipelined round
    trip (the session's hash and the user's hash together), and a client's is one HMGET: no
    scan, no Argon2 per request; the stored hash is compared in constant time.

    Time. Idle and absolute timeouts, lock-outs and rate-limit windows are stored as times and
    compared with gl_now_ms(); Redis expiries are set only to clean up, always later than the
    times themselves.

    The session cache. With GL_INTAKE_SESSION_CACHE_MS > 0 (default 1000), an authenticated
    session (its user's roles, units and CSRF hash with it) or API client is kept in the process
    for that long after it was read, so nearly every request authenticates without a round
    trip. Timeouts are still checked on every request against the cached times. This process
    forgets a session at once when it logs out or is dropped, every session of a user whose
    record it changes (disable, roles, units, password), and a client it revokes; another
    replica sees such a change within the cache's lifetime. A cached entry is keyed by the
    token's keyed hash, as in Redis.

    Threads. Everything here runs on the actor's thread; Argon2 runs there too, so a login
    holds the loop for one password hash (GL_INTAKE_ARGON2_*; docs/api/auth.md, "Cost").
*/
#include "auth.h"
#include "audit.h"
#include "contacts.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_PREFIX            "intake:{intake}:"
#define S_SEEN_EVERY_MS     60000       //  last-seen is written at most once a minute
#define S_CLEANUP_SLACK_MS  120000      //  Redis expiries run this much after the stored times
#define S_HASH_HEX          64          //  a keyed hash, in hex
#define S_LIST_MAX          2048        //  a comma-joined list in a user's hash
#define S_OUTBOX            S_PREFIX "outbox"   //  contacts.c's outbox (gl_outbox)
#define S_CACHE_SLOTS       1024        //  session cache: direct-mapped by the token's hash

//  A session as authenticated at its last read from Redis (the session cache).
typedef struct {
    char hash[S_HASH_HEX + 1];          //  the token's keyed hash; "" for a free slot
    char csrf[S_HASH_HEX + 1];          //  the CSRF token's keyed hash ("" when none)
    int64_t created_ms;
    int64_t seen_ms;
    int64_t until_mono;                 //  gl_mono_ms after which it is read again
    bool client;                        //  an API client's token (no timeouts, no CSRF)
    http_caller_t caller;
} s_cached_t;

struct _auth_t {
    intake_t *intake;
    unsigned char key[crypto_generichash_KEYBYTES];
    unsigned long long opslimit;
    size_t memlimit;
    int64_t idle_ms;
    int64_t max_ms;
    int64_t fail_max;                   //  failed logins per username ...
    int64_t fail_window_ms;             //  ... within this window ...
    int64_t lock_ms;                    //  ... lock the username this long
    int64_t ip_fail_max;                //  failed logins per client address ...
    int64_t ip_window_ms;               //  ... within this window, then 429
    const char *ip_header;              //  header naming the client address (behind a proxy)
    bool cookie_secure;
    char dummy_hash[crypto_pwhash_STRBYTES];    //  checked for unknown users (same cost)
    //  The session that authenticated the current request (empty for an API client).
    char cur_session[S_HASH_HEX + 1];
    char cur_user[GL_ID_LEN + 1];
    int64_t cache_ms;                   //  GL_INTAKE_SESSION_CACHE_MS (0: no cache)
    s_cached_t *cache;                  //  S_CACHE_SLOTS entries, or NULL
    //  The event the next write stores with its change (auth_emit).
    gl_event_t *emit;
    const char *emit_id_field;
    const char *emit_post;
};

static const char *const s_role_codes[] = { "agent", "supervisor", "protection", "admin",
                                            "api_client" };
static const uint32_t s_role_flags[] = { GL_ROLE_AGENT, GL_ROLE_SUPERVISOR, GL_ROLE_PROTECTION,
                                         GL_ROLE_ADMIN, GL_ROLE_API_CLIENT };
#define S_ROLES 5

//  --------------------------------------------------------------------------------------------
//  Scripts (every key in the {intake} slot)

//  Every write that changes an account stores its event in the outbox in the same script
//  (auth_emit): gl_emit(outbox, event id, entry without its closing "}}", post, user) appends
//  the user's roles ("r"), units ("u") and disabled flag ("d") as they are after the change, as
//  post asks, then writes the entry. An empty event id: nothing to store.
#define S_LUA_EMIT \
    "local function gl_arr(s)\n" \
    "  if not s or s == '' then return '[]' end\n" \
    "  local t = {}\n" \
    "  for x in string.gmatch(s, '[^,]+') do t[#t + 1] = cjson.encode(x) end\n" \
    "  return '[' .. table.concat(t, ',') .. ']'\n" \
    "end\n" \
    "local function gl_emit(kout, evid, head, post, kuser)\n" \
    "  if evid == '' then return end\n" \
    "  local tail = ''\n" \
    "  if post ~= '' then\n" \
    "    local v = redis.call('HMGET', kuser, 'roles', 'units', 'disabled')\n" \
    "    if string.find(post, 'r', 1, true) then tail = tail .. ',\"roles\":' .. gl_arr(v[1]) end\n" \
    "    if string.find(post, 'u', 1, true) then tail = tail .. ',\"units\":' .. gl_arr(v[2]) end\n" \
    "    if string.find(post, 'd', 1, true) then\n" \
    "      tail = tail .. ',\"disabled\":' .. ((v[3] == '1') and 'true' or 'false')\n" \
    "    end\n" \
    "  end\n" \
    "  redis.call('HSET', kout, evid, head .. tail .. '}}')\n" \
    "end\n"

//  Create a user if the username is free (and, for the bootstrap admin, if no user exists).
//  KEYS: username, user, users, outbox. ARGV: id, index member, first_only, event id, event
//  head, post, then field/value pairs.
static gl_redis_script_t s_lua_user_create = { .source =
    S_LUA_EMIT
    "if ARGV[3] == '1' and redis.call('ZCARD', KEYS[3]) > 0 then return 0 end\n"
    "if redis.call('SETNX', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[2], unpack(ARGV, 7))\n"
    "redis.call('ZADD', KEYS[3], 0, ARGV[2])\n"
    "gl_emit(KEYS[4], ARGV[4], ARGV[5], ARGV[6], KEYS[2])\n"
    "return 1\n" };

//  Change a user that exists, and maybe end its sessions.
//  KEYS: user, user's sessions, outbox. ARGV: drop sessions (1/0), session to keep (or ""),
//  session key prefix, event id, event head, post, then field/value pairs (at least one).
static gl_redis_script_t s_lua_user_change = { .source =
    S_LUA_EMIT
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[1], unpack(ARGV, 7))\n"
    "if ARGV[1] == '1' then\n"
    "  for _, h in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do\n"
    "    if h ~= ARGV[2] then\n"
    "      redis.call('DEL', ARGV[3] .. h)\n"
    "      redis.call('ZREM', KEYS[2], h)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "gl_emit(KEYS[3], ARGV[4], ARGV[5], ARGV[6], KEYS[1])\n"
    "return 1\n" };

//  A failed login. KEYS: failures of the username, its lock, failures of the address.
//  ARGV: now, window, max, lock, ip window, member. Returns the failures counted.
static gl_redis_script_t s_lua_login_failed = { .source =
    "local now = tonumber(ARGV[1])\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[6])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))\n"
    "redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 120000)\n"
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "if n >= tonumber(ARGV[3]) then\n"
    "  redis.call('SET', KEYS[2], string.format('%.0f', now + tonumber(ARGV[4])),\n"
    "             'PX', tonumber(ARGV[4]) + 120000)\n"
    "  redis.call('DEL', KEYS[1])\n"
    "end\n"
    "redis.call('ZADD', KEYS[3], now, ARGV[6])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[5]))\n"
    "redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[5]) + 120000)\n"
    "return n\n" };

//  A new session. KEYS: session, user's sessions. ARGV: hash, now, max lifetime, cleanup ttl,
//  then field/value pairs.
static gl_redis_script_t s_lua_session_new = { .source =
    "redis.call('HSET', KEYS[1], unpack(ARGV, 5))\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "local now = tonumber(ARGV[2])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))\n"
    "redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
    "redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) + 120000)\n"
    "return 1\n" };

//  Create a client. KEYS: client, clients. ARGV: id, then field/value pairs.
static gl_redis_script_t s_lua_client_create = { .source =
    S_LUA_EMIT
    "redis.call('HSET', KEYS[1], unpack(ARGV, 5))\n"
    "redis.call('ZADD', KEYS[2], 0, ARGV[1])\n"
    "gl_emit(KEYS[3], ARGV[2], ARGV[3], ARGV[4], KEYS[1])\n"
    "return 1\n" };

//  Revoke a client. KEYS: client, outbox. ARGV: now, event id, event head, post. 0 unknown,
//  1 revoked, 2 already revoked.
static gl_redis_script_t s_lua_client_revoke = { .source =
    S_LUA_EMIT
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "local r = redis.call('HGET', KEYS[1], 'revoked_ms')\n"
    "if r and r ~= '' and r ~= '0' then return 2 end\n"
    "redis.call('HSET', KEYS[1], 'revoked_ms', ARGV[1])\n"
    "gl_emit(KEYS[2], ARGV[2], ARGV[3], ARGV[4], KEYS[1])\n"
    "return 1\n" };

//  --------------------------------------------------------------------------------------------
//  Small helpers

static auth_t *
s_self (intake_t *intake)
{
    assert (intake && intake->auth);
    return intake->auth;
}

static int64_t
s_atoll (const char *s, int64_t def)
{
    if (!s || !*s)
        return def;
    char *end;
    long long v = strtoll (s, &end, 10);
    return *end ? def : (int64_t) v;
}

static void
s_hex (const unsigned char *bin, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[bin[i] >> 4];
        out[2 * i + 1] = hex[bin[i] & 15];
    }
    out[2 * len] = 0;
}

//  BLAKE2b-256 of data under the server key, in hex (S_HASH_HEX + 1 bytes).
static void
s_keyed_hash (auth_t *self, const char *domain, const void *data, size_t len, char *out)
{
    unsigned char digest[32];
    crypto_generichash_state st;
    crypto_generichash_init (&st, self->key, sizeof self->key, sizeof digest);
    //  Domain separation: a username's hash is never a token's.
    crypto_generichash_update (&st, (const unsigned char *) domain, strlen (domain) + 1);
    crypto_generichash_update (&st, data, len);
    crypto_generichash_final (&st, digest, sizeof digest);
    s_hex (digest, sizeof digest, out);
}

//  A new secret: 32 random bytes in base64url (AUTH_SECRET_LEN + 1 bytes).
static void
s_secret (char *out)
{
    unsigned char raw[32];
    randombytes_buf (raw, sizeof raw);
    sodium_bin2base64 (out, AUTH_SECRET_LEN + 1, raw, sizeof raw,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero (raw, sizeof raw);
}

//  Parse a token: kind 's' (session) or 'c' (client), and its owner's id. false when malformed.
static bool
s_token_parse (const char *token, char *kind, char id[GL_ID_LEN + 1])
{
    if (!token || strlen (token) != AUTH_TOKEN_LEN || strncmp (token, "gl", 2) != 0
        || (token[2] != 's' && token[2] != 'c') || token[3] != '_' || token[4 + GL_ID_LEN] != '_')
        return false;
    memcpy (id, token + 4, GL_ID_LEN);
    id[GL_ID_LEN] = 0;
    if (!gl_id_valid (id))
        return false;
    for (const char *p = token + 5 + GL_ID_LEN; *p; p++)
        if (!isalnum ((unsigned char) *p) && *p != '-' && *p != '_')
            return false;
    *kind = token[2];
    return true;
}

static size_t
s_utf8_chars (const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char) *s & 0xC0) != 0x80)
            n++;
    return n;
}

bool
auth_email_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n < 3 || n > AUTH_EMAIL_MAX)
        return false;
    const char *at = strchr (s, '@');
    if (!at || at == s || !at[1] || strchr (at + 1, '@'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

bool
auth_phone_valid (const char *s)
{
    if (!s)
        return false;
    if (*s == '+')
        s++;
    size_t n = strlen (s);
    if (n < 6 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool
auth_username_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n > AUTH_USERNAME_MAX
        || !(islower ((unsigned char) s[0]) || isdigit ((unsigned char) s[0])))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.'
              || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

bool
auth_password_valid (const char *s)
{
    size_t n = s ? s_utf8_chars (s) : 0;
    return n >= AUTH_PASSWORD_MIN && n <= AUTH_PASSWORD_MAX;
}

bool
auth_language_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n < 2 || n > AUTH_LANG_LEN)
        return false;
    size_t i = 0;
    while (i < n && s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return false;
    while (i < n) {
        if (s[i++] != '-')
            return false;
        size_t start = i;
        while (i < n && isalnum ((unsigned char) s[i]))
            i++;
        if (i == start || i - start > 8)
            return false;
    }
    return true;
}

uint32_t
auth_role_flag (const char *code)
{
    for (size_t i = 0; code && i < S_ROLES; i++)
        if (strcmp (code, s_role_codes[i]) == 0)
            return s_role_flags[i];
    return 0;
}

const char *
auth_role_code (uint32_t flag)
{
    for (size_t i = 0; i < S_ROLES; i++)
        if (flag == s_role_flags[i])
            return s_role_codes[i];
    return NULL;
}

json_t *
auth_roles_json (uint32_t roles)
{
    json_t *array = json_array ();
    for (size_t i = 0; array && i < S_ROLES; i++)
        if (roles & s_role_flags[i])
            json_array_append_new (array, json_string (s_role_codes[i]));
    return array;
}

//  Roles from their stored form ("agent,admin"); unknown codes are ignored (and logged).
static uint32_t
s_roles_parse (const char *csv)
{
    uint32_t roles = 0;
    char buf[128];
    snprintf (buf, sizeof buf, "%s", csv ? csv : "");
    char *save = NULL;
    for (char *code = strtok_r (buf, ",", &save); code; code = strtok_r (NULL, ",", &save)) {
        uint32_t flag = auth_role_flag (code);
        if (!flag)
            gl_warn ("auth: an unknown role code in Redis is ignored");
        roles |= flag;
    }
    return roles;
}

static void
s_roles_csv (uint32_t roles, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < S_ROLES; i++)
        if (roles & s_role_flags[i])
            n += (size_t) snprintf (out + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "",
                                    s_role_codes[i]);
}

static void
s_join (const char *const *items, size_t count, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < count; i++)
        n += (size_t) snprintf (out + n, n < cap ? cap - n : 0, "%s%s", i ? "," : "", items[i]);
}

//  Split a stored list into fixed slots; items that are malformed or over the slots are dropped.
static size_t
s_split (const char *csv, char *slots, size_t slot_len, size_t max, bool (*valid) (const char *))
{
    char buf[S_LIST_MAX];
    snprintf (buf, sizeof buf, "%s", csv ? csv : "");
    size_t count = 0;
    char *save = NULL;
    for (char *item = strtok_r (buf, ",", &save); item && count < max;
         item = strtok_r (NULL, ",", &save))
        if (valid (item) && strlen (item) < slot_len)
            snprintf (slots + count++ * slot_len, slot_len, "%s", item);
    return count;
}

static json_t *
s_csv_json (const char *csv)
{
    json_t *array = json_array ();
    char buf[S_LIST_MAX];
    snprintf (buf, sizeof buf, "%s", csv ? csv : "");
    char *save = NULL;
    for (char *item = strtok_r (buf, ",", &save); item; item = strtok_r (NULL, ",", &save))
        json_array_append_new (array, json_string (item));
    return array;
}

static const char *
s_elem (const redisReply *reply, size_t i)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || i >= reply->elements)
        return NULL;
    const redisReply *e = reply->element[i];
    return e->type == REDIS_REPLY_STRING ? e->str : NULL;
}

static int
s_int_reply (redisReply *reply)
{
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? (int) reply->integer : -1;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        gl_error ("auth: redis error: %s", reply->str);
    if (reply)
        freeReplyObject (reply);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Events

void
auth_emit (intake_t *intake, gl_event_t *ev, const char *id_field, const char *post)
{
    auth_t *self = s_self (intake);
    gl_event_destroy (&self->emit);
    self->emit = ev;
    self->emit_id_field = id_field;
    self->emit_post = post ? post : "";
}

//  What a write passes to its script for the pending event: its id and its outbox entry without
//  the closing "}}" (head, the caller frees), or "" and NULL when there is none. id (the record
//  the write creates or changes) goes into the event's id field first.
typedef struct {
    gl_event_t *ev;
    char *head;
    const char *post;
} s_emit_t;

static void
s_emit_take (auth_t *self, const char *id, s_emit_t *e)
{
    e->ev = self->emit;
    e->head = NULL;
    e->post = self->emit_post ? self->emit_post : "";
    self->emit = NULL;
    if (!e->ev)
        return;
    if (self->emit_id_field && id)
        json_object_set_new (e->ev->data, self->emit_id_field, json_string (id));
    char *entry = contacts_outbox_entry (self->intake, e->ev, 0);
    size_t len = entry ? strlen (entry) : 0;
    if (len < 4 || strcmp (entry + len - 2, "}}") != 0 || entry[len - 3] == '{') {
        //  Out of memory, or no data to append to: the change goes ahead without its event.
        gl_error ("auth: %s cannot be stored in the outbox; it is lost", e->ev->type);
        free (entry);
        gl_event_destroy (&e->ev);
        return;
    }
    entry[len - 2] = 0;
    e->head = entry;
}

//  After the write: when it applied, its event is in the outbox; deliver it now.
static void
s_emit_done (auth_t *self, s_emit_t *e, bool applied)
{
    if (e->ev && applied && contacts_outbox_sweep (self->intake) < 0)
        gl_warn ("auth: %s stored; it will be published by the outbox sweep", e->ev->type);
    gl_event_destroy (&e->ev);
    free (e->head);
    e->head = NULL;
}

//  --------------------------------------------------------------------------------------------
//  Users

typedef struct {
    bool found;
    char id[GL_ID_LEN + 1];
    char username[AUTH_USERNAME_MAX + 1];
    char pwhash[crypto_pwhash_STRBYTES];
    uint32_t roles;
    bool disabled;
} s_login_user_t;

static void
s_key (char *out, size_t cap, const char *kind, const char *id)
{
    snprintf (out, cap, S_PREFIX "%s:%s", kind, id);
}

//  --------------------------------------------------------------------------------------------
//  The session cache

static s_cached_t *
s_cache_slot (auth_t *self, const char *hash)
{
    //  The hash is a keyed BLAKE2b in hex: its first digits are as good as any hash of it.
    uint32_t h = 0;
    for (int i = 0; i < 8 && hash[i]; i++)
        h = h * 16 + (uint32_t) (hash[i] <= '9' ? hash[i] - '0' : (hash[i] | 0x20) - 'a' + 10);
    return &self->cache[h % S_CACHE_SLOTS];
}

static void
s_cache_clear (s_cached_t *slot)
{
    sodium_memzero (slot, sizeof *slot);
}

//  The live cached entry of a session, or NULL.
static s_cached_t *
s_cache_find (auth_t *self, const char *hash, const char *user_id)
{
    if (!self->cache)
        return NULL;
    s_cached_t *slot = s_cache_slot (self, hash);
    if (!slot->hash[0] || strcmp (slot->hash, hash) != 0)
        return NULL;
    if (gl_mono_ms () >= slot->until_mono || strcmp (slot->caller.user_id, user_id) != 0) {
        s_cache_clear (slot);
        return NULL;
    }
    return slot;
}

static void
s_cache_put (auth_t *self, const char *hash, const char *csrf, int64_t created_ms,
             int64_t seen_ms, const http_caller_t *caller)
{
    if (!self->cache)
        return;
    s_cached_t *slot = s_cache_slot (self, hash);
    snprintf (slot->hash, sizeof slot->hash, "%s", hash);
    snprintf (slot->csrf, sizeof slot->csrf, "%s", csrf && strlen (csrf) == S_HASH_HEX ? csrf : "");
    slot->created_ms = created_ms;
    slot->seen_ms = seen_ms;
    slot->until_mono = gl_mono_ms () + self->cache_ms;
    slot->client = false;
    slot->caller = *caller;
}

//  Forget one session (its token's hash).
static void
s_cache_forget (auth_t *self, const char *hash)
{
    if (!self->cache || !hash || !hash[0])
        return;
    s_cached_t *slot = s_cache_slot (self, hash);
    if (strcmp (slot->hash, hash) == 0)
        s_cache_clear (slot);
}

//  Forget every session of a user (their record changed).
static void
s_cache_forget_user (auth_t *self, const char *user_id)
{
    for (size_t i = 0; self->cache && i < S_CACHE_SLOTS; i++)
        if (self->cache[i].hash[0] && strcmp (self->cache[i].caller.user_id, user_id) == 0)
            s_cache_clear (&self->cache[i]);
}

int
auth_user_get (intake_t *intake, const char *id, auth_user_t *out)
{
    assert (intake && out);
    memset (out, 0, sizeof *out);
    if (!gl_id_valid (id))
        return 1;
    char key[128];
    s_key (key, sizeof key, "user", id);
    redisReply *r
        = gl_redis_cmd (intake->redis, "HMGET %s id roles units languages disabled", key);
    if (!r)
        return -1;
    int rc = 1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 5 && s_elem (r, 0)
        && strcmp (s_elem (r, 0), id) == 0) {
        snprintf (out->id, sizeof out->id, "%s", id);
        out->roles = s_roles_parse (s_elem (r, 1)) & ~GL_ROLE_API_CLIENT;
        out->unit_count = s_split (s_elem (r, 2), &out->units[0][0], sizeof out->units[0],
                                   HTTP_UNITS_MAX, auth_unit_valid);
        out->language_count = s_split (s_elem (r, 3), &out->languages[0][0],
                                       sizeof out->languages[0], AUTH_LANGS_MAX,
                                       auth_language_valid);
        const char *disabled = s_elem (r, 4);
        out->disabled = disabled && strcmp (disabled, "1") == 0;
        rc = 0;
    }
    else if (r->type == REDIS_REPLY_ERROR) {
        gl_error ("auth: redis error: %s", r->str);
        rc = -1;
    }
    freeReplyObject (r);
    return rc;
}

//  The field/value pairs of spec's fields, into argv from position n (which must have room).
static int
s_spec_pairs (const auth_spec_t *spec, unsigned fields, const char **argv, int n, char *roles,
              char *units, char *languages)
{
    if (fields & AUTH_SET_ROLES) {
        s_roles_csv (spec->roles, roles, 128);
        argv[n++] = "roles";
        argv[n++] = roles;
    }
    if (fields & AUTH_SET_UNITS) {
        s_join (spec->units, spec->unit_count, units, S_LIST_MAX);
        argv[n++] = "units";
        argv[n++] = units;
    }
    if (fields & AUTH_SET_LANGUAGES) {
        s_join (spec->languages, spec->language_count, languages, S_LIST_MAX);
        argv[n++] = "languages";
        argv[n++] = languages;
    }
    if (fields & AUTH_SET_DISPLAY_NAME) {
        argv[n++] = "display_name";
        argv[n++] = spec->display_name ? spec->display_name : "";
    }
    if (fields & AUTH_SET_EMAIL) {
        argv[n++] = "email";
        argv[n++] = spec->email ? spec->email : "";
    }
    if (fields & AUTH_SET_PHONE) {
        argv[n++] = "phone";
        argv[n++] = spec->phone ? spec->phone : "";
    }
    return n;
}

static int
s_hash_password (auth_t *self, const char *password, char out[crypto_pwhash_STRBYTES])
{
    if (crypto_pwhash_str (out, password, strlen (password), self->opslimit, self->memlimit)
        != 0) {
        gl_error ("auth: cannot hash a password (out of memory for Argon2id?)");
        return -1;
    }
    return 0;
}

//  Create a user; first_only: only when there is no user yet (the bootstrap admin).
static int
s_user_create (auth_t *self, const auth_spec_t *spec, const char *password, bool first_only,
               char id[GL_ID_LEN + 1])
{
    char pwhash[crypto_pwhash_STRBYTES];
    if (s_hash_password (self, password, pwhash) != 0)
        return -1;
    gl_id_new (id);
    char kname[128], kuser[128], member[AUTH_USERNAME_MAX + GL_ID_LEN + 2], now[24];
    char roles[128], units[S_LIST_MAX], languages[S_LIST_MAX];
    s_key (kname, sizeof kname, "username", spec->username);
    s_key (kuser, sizeof kuser, "user", id);
    snprintf (member, sizeof member, "%s:%s", spec->username, id);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    s_emit_t e;
    s_emit_take (self, id, &e);
    const char *argv[44] = { kname,
                             kuser,
                             S_PREFIX "users",
                             S_OUTBOX,
                             id,
                             member,
                             first_only ? "1" : "0",
                             e.ev ? e.ev->id : "",
                             e.head ? e.head : "",
                             e.post,
                             "id",
                             id,
                             "username",
                             spec->username,
                             "pwhash",
                             pwhash,
                             "disabled",
                             "0",
                             "created_ms",
                             now,
                             "updated_ms",
                             now };
    int n = s_spec_pairs (spec, AUTH_SET_ROLES | AUTH_SET_UNITS | AUTH_SET_LANGUAGES
                                    | AUTH_SET_DISPLAY_NAME | AUTH_SET_EMAIL | AUTH_SET_PHONE,
                          argv, 22, roles, units, languages);
    int rc = s_int_reply (
        gl_redis_eval (self->intake->redis, &s_lua_user_create, 4, n, argv, NULL));
    sodium_memzero (pwhash, sizeof pwhash);
    s_emit_done (self, &e, rc == 1);
    return rc < 0 ? -1 : rc == 1 ? 0 : 1;
}

int
auth_user_create (intake_t *intake, const auth_spec_t *spec, const char *password,
                  char id[GL_ID_LEN + 1])
{
    return s_user_create (s_self (intake), spec, password, false, id);
}

//  The API's view of a user hash (an HGETALL reply).
static json_t *
s_user_json (const redisReply *r)
{
    const char *f[11] = { 0 };
    static const char *const names[] = { "id",        "username",   "display_name",
                                         "roles",     "units",      "languages",
                                         "disabled",  "created_ms", "updated_ms",
                                         "email",     "phone" };
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        for (size_t k = 0; k < 11; k++)
            if (s_elem (r, i) && strcmp (s_elem (r, i), names[k]) == 0)
                f[k] = s_elem (r, i + 1);
    if (!f[0] || !gl_id_valid (f[0]))
        return NULL;
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b, s:I, s:I}", "id", f[0],
                      "username", f[1] ? f[1] : "", "display_name", f[2] ? f[2] : "", "email",
                      f[9] ? f[9] : "", "phone", f[10] ? f[10] : "", "roles",
                      auth_roles_json (s_roles_parse (f[3]) & ~GL_ROLE_API_CLIENT), "units",
                      s_csv_json (f[4]), "languages", s_csv_json (f[5]), "disabled",
                      f[6] && strcmp (f[6], "1") == 0, "created_ms",
                      (json_int_t) s_atoll (f[7], 0), "updated_ms",
                      (json_int_t) s_atoll (f[8], 0));
}

int
auth_user_view (intake_t *intake, const char *id, json_t **out)
{
    *out = NULL;
    if (!gl_id_valid (id))
        return 1;
    char key[128];
    s_key (key, sizeof key, "user", id);
    redisReply *r = gl_redis_cmd (intake->redis, "HGETALL %s", key);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_ARRAY ? 1 : -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        *out = s_user_json (r);
        rc = *out ? 0 : 1;
    }
    freeReplyObject (r);
    return rc;
}

//  Run s_user_change: pairs (field/value, npairs strings) on user id; sessions dropped when
//  drop, but keep.
static int
s_user_change_run (auth_t *self, const char *id, bool drop, const char *keep, const char **pairs,
                   int npairs)
{
    if (!gl_id_valid (id))
        return 1;
    char kuser[128], ksessions[128], now[24];
    s_key (kuser, sizeof kuser, "user", id);
    s_key (ksessions, sizeof ksessions, "user_sessions", id);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    s_emit_t e;
    s_emit_take (self, id, &e);
    const char *argv[52] = { kuser,
                             ksessions,
                             S_OUTBOX,
                             drop ? "1" : "0",
                             keep ? keep : "",
                             S_PREFIX "session:",
                             e.ev ? e.ev->id : "",
                             e.head ? e.head : "",
                             e.post,
                             "updated_ms",
                             now };
    int n = 11;
    for (int i = 0; i < npairs && n < 52; i++)
        argv[n++] = pairs[i];
    int rc = s_int_reply (
        gl_redis_eval (self->intake->redis, &s_lua_user_change, 3, n, argv, NULL));
    //  Roles, units, disabled or password changed (or may have: the outcome may be unknown).
    s_cache_forget_user (self, id);
    s_emit_done (self, &e, rc == 1);
    return rc < 0 ? -1 : rc == 1 ? 0 : 1;
}

int
auth_user_update (intake_t *intake, const char *id, const auth_spec_t *spec, unsigned fields)
{
    char roles[128], units[S_LIST_MAX], languages[S_LIST_MAX];
    const char *pairs[12];
    int n = s_spec_pairs (spec, fields, pairs, 0, roles, units, languages);
    return s_user_change_run (s_self (intake), id, false, NULL, pairs, n);
}

int
auth_user_set_disabled (intake_t *intake, const char *id, bool disabled)
{
    const char *pairs[] = { "disabled", disabled ? "1" : "0" };
    return s_user_change_run (s_self (intake), id, disabled, NULL, pairs, 2);
}

//  The keys of a username's failures and lock.
static void
s_lock_keys (auth_t *self, const char *username, char *kfail, char *klock)
{
    char h[S_HASH_HEX + 1];
    s_keyed_hash (self, "username", username, strlen (username), h);
    snprintf (kfail, 128, S_PREFIX "login_fail:%s", h);
    snprintf (klock, 128, S_PREFIX "login_lock:%s", h);
}

int
auth_user_set_password (intake_t *intake, http_req_t *req, const char *id, const char *password,
                        bool keep_current)
{
    auth_t *self = s_self (intake);
    json_t *user = NULL;
    int rc = auth_user_view (intake, id, &user);
    if (rc != 0)
        return rc;
    char kfail[128], klock[128];
    s_lock_keys (self, json_string_value (json_object_get (user, "username")), kfail, klock);
    json_decref (user);
    char pwhash[crypto_pwhash_STRBYTES];
    if (s_hash_password (self, password, pwhash) != 0)
        return -1;
    const char *pairs[] = { "pwhash", pwhash };
    bool keep = keep_current && strcmp (self->cur_user, id) == 0 && self->cur_session[0];
    rc = s_user_change_run (self, id, true, keep ? self->cur_session : NULL, pairs, 2);
    sodium_memzero (pwhash, sizeof pwhash);
    if (rc == 0) {
        redisReply *r = gl_redis_cmd (intake->redis, "DEL %s %s", kfail, klock);
        if (r)
            freeReplyObject (r);
    }
    (void) req;
    return rc;
}

//  The users' index holds "username:id", in username order; cursors are such members.
static bool
s_member_split (const char *member, char *id)
{
    const char *colon = member ? strrchr (member, ':') : NULL;
    if (!colon || !gl_id_valid (colon + 1))
        return false;
    memcpy (id, colon + 1, GL_ID_LEN + 1);
    return true;
}

//  A page from an index zset (all scores 0, so ZRANGEBYLEX orders members), then each record's
//  hash in one pipeline, each turned into JSON by view.
static int
s_page (auth_t *self, const char *index, bool member_is_id, const http_page_t *page,
        json_t *(*view) (const redisReply *), json_t **items, char *next_cursor)
{
    *items = NULL;
    next_cursor[0] = 0;
    char start[HTTP_CURSOR_MAX + 2] = "-";
    if (page->has_cursor) {
        char id[GL_ID_LEN + 1];
        if (member_is_id ? !gl_id_valid (page->cursor) : !s_member_split (page->cursor, id))
            return 1;
        snprintf (start, sizeof start, "(%s", page->cursor);
    }
    redisReply *r = gl_redis_cmd (self->intake->redis, "ZRANGEBYLEX %s %s + LIMIT 0 %d", index,
                                  start, page->limit + 1);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject (r);
        return -1;
    }
    size_t count = r->elements > (size_t) page->limit ? (size_t) page->limit : r->elements;
    if (r->elements > (size_t) page->limit && s_elem (r, count - 1))
        snprintf (next_cursor, HTTP_CURSOR_MAX + 1, "%s", s_elem (r, count - 1));
    int rc = 0;
    size_t sent = 0;
    for (size_t i = 0; i < count; i++) {
        char id[GL_ID_LEN + 1];
        const char *member = s_elem (r, i);
        bool ok = member_is_id ? gl_id_valid (member) : s_member_split (member, id);
        if (!ok)
            continue;
        char key[128];
        s_key (key, sizeof key, member_is_id ? "client" : "user", member_is_id ? member : id);
        if (gl_redis_append (self->intake->redis, "HGETALL %s", key) != 0) {
            rc = -1;
            break;
        }
        sent++;
    }
    freeReplyObject (r);
    *items = json_array ();
    for (size_t i = 0; i < sent; i++) {
        redisReply *h = gl_redis_reply (self->intake->redis);
        if (!h) {
            rc = -1;
            break;
        }
        json_t *item = h->type == REDIS_REPLY_ARRAY && h->elements > 0 ? view (h) : NULL;
        if (item)
            json_array_append_new (*items, item);
        freeReplyObject (h);
    }
    if (rc != 0) {
        json_decref (*items);
        *items = NULL;
    }
    return rc;
}

int
auth_users_page (intake_t *intake, const http_page_t *page, json_t **items, char *next_cursor)
{
    return s_page (s_self (intake), S_PREFIX "users", false, page, s_user_json, items,
                   next_cursor);
}

//  --------------------------------------------------------------------------------------------
//  API clients

int
auth_client_create (intake_t *intake, const char *name, uint32_t roles, char id[GL_ID_LEN + 1],
                    char token[AUTH_TOKEN_LEN + 1])
{
    auth_t *self = s_self (intake);
    gl_id_new (id);
    char secret[AUTH_SECRET_LEN + 1];
    s_secret (secret);
    snprintf (token, AUTH_TOKEN_LEN + 1, "glc_%s_%s", id, secret);
    sodium_memzero (secret, sizeof secret);
    char hash[S_HASH_HEX + 1], key[128], now[24], codes[128];
    s_keyed_hash (self, "token", token, strlen (token), hash);
    s_key (key, sizeof key, "client", id);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    s_roles_csv (roles, codes, sizeof codes);
    s_emit_t e;
    s_emit_take (self, id, &e);
    const char *argv[] = { key,        S_PREFIX "clients", S_OUTBOX,   id,
                           e.ev ? e.ev->id : "", e.head ? e.head : "", e.post, "id",
                           id,         "name",             name,       "roles",
                           codes,      "token_hash",       hash,       "created_ms",
                           now,        "revoked_ms",       "0" };
    int rc = s_int_reply (gl_redis_eval (intake->redis, &s_lua_client_create, 3,
                                         (int) (sizeof argv / sizeof argv[0]), argv, NULL));
    s_emit_done (self, &e, rc == 1);
    return rc == 1 ? 0 : -1;
}

static json_t *
s_client_json (const redisReply *r)
{
    const char *f[5] = { 0 };
    static const char *const names[] = { "id", "name", "roles", "created_ms", "revoked_ms" };
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        for (size_t k = 0; k < 5; k++)
            if (s_elem (r, i) && strcmp (s_elem (r, i), names[k]) == 0)
                f[k] = s_elem (r, i + 1);
    if (!f[0] || !gl_id_valid (f[0]))
        return NULL;
    int64_t revoked = s_atoll (f[4], 0);
    return json_pack ("{s:s, s:s, s:o, s:I, s:b, s:I}", "id", f[0], "name", f[1] ? f[1] : "",
                      "roles", auth_roles_json (s_roles_parse (f[2]) & GL_ROLE_API_CLIENT),
                      "created_ms", (json_int_t) s_atoll (f[3], 0), "revoked", revoked > 0,
                      "revoked_ms", (json_int_t) revoked);
}

int
auth_client_view (intake_t *intake, const char *id, json_t **out)
{
    *out = NULL;
    if (!gl_id_valid (id))
        return 1;
    char key[128];
    s_key (key, sizeof key, "client", id);
    redisReply *r = gl_redis_cmd (intake->redis, "HGETALL %s", key);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_ARRAY ? 1 : -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        *out = s_client_json (r);
        rc = *out ? 0 : 1;
    }
    freeReplyObject (r);
    return rc;
}

int
auth_client_revoke (intake_t *intake, const char *id)
{
    if (!gl_id_valid (id)) {
        auth_emit (intake, NULL, NULL, NULL);
        return 1;
    }
    char key[128], now[24];
    s_key (key, sizeof key, "client", id);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    auth_t *self = s_self (intake);
    s_emit_t e;
    s_emit_take (self, id, &e);
    const char *argv[] = { key, S_OUTBOX, now, e.ev ? e.ev->id : "", e.head ? e.head : "",
                           e.post };
    int rc = s_int_reply (gl_redis_eval (intake->redis, &s_lua_client_revoke, 2, 6, argv, NULL));
    s_cache_forget_user (self, id);
    s_emit_done (self, &e, rc == 1);
    return rc < 0 ? -1 : rc == 0 ? 1 : rc == 1 ? 0 : 2;
}

int
auth_clients_page (intake_t *intake, const http_page_t *page, json_t **items, char *next_cursor)
{
    return s_page (s_self (intake), S_PREFIX "clients", true, page, s_client_json, items,
                   next_cursor);
}

//  --------------------------------------------------------------------------------------------
//  Login

//  The client's address, for the per-address limit: the header GL_INTAKE_CLIENT_IP_HEADER
//  names (set by the TLS proxy in front) when configured, else the TCP peer's address; "direct"
//  when neither is a well-formed address (see docs/api/auth.md).
static void
s_client_address (auth_t *self, http_req_t *req, char *out, size_t cap)
{
    snprintf (out, cap, "direct");
    const char *value = self->ip_header ? http_header (req, self->ip_header) : http_peer (req);
    unsigned char buf[sizeof (struct in6_addr)];
    char text[INET6_ADDRSTRLEN + 1];
    if (!value || strlen (value) >= sizeof text)
        return;
    snprintf (text, sizeof text, "%s", value);
    if (inet_pton (AF_INET, text, buf) == 1 || inet_pton (AF_INET6, text, buf) == 1)
        snprintf (out, cap, "%s", text);
}

//  Load what a login needs of the user called username. 0 (found or not), -1.
static int
s_login_user (auth_t *self, const char *username, s_login_user_t *u)
{
    memset (u, 0, sizeof *u);
    char kname[128];
    s_key (kname, sizeof kname, "username", username);
    redisReply *r = gl_redis_cmd (self->intake->redis, "GET %s", kname);
    if (!r)
        return -1;
    bool known = r->type == REDIS_REPLY_STRING && gl_id_valid (r->str);
    if (known)
        snprintf (u->id, sizeof u->id, "%s", r->str);
    freeReplyObject (r);
    if (!known)
        return 0;
    char kuser[128];
    s_key (kuser, sizeof kuser, "user", u->id);
    r = gl_redis_cmd (self->intake->redis, "HMGET %s username pwhash roles disabled", kuser);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 && s_elem (r, 0) && s_elem (r, 1)
        && strlen (s_elem (r, 1)) < sizeof u->pwhash) {
        u->found = true;
        snprintf (u->username, sizeof u->username, "%s", s_elem (r, 0));
        snprintf (u->pwhash, sizeof u->pwhash, "%s", s_elem (r, 1));
        u->roles = s_roles_parse (s_elem (r, 2)) & ~GL_ROLE_API_CLIENT;
        u->disabled = s_elem (r, 3) && strcmp (s_elem (r, 3), "1") == 0;
    }
    freeReplyObject (r);
    return 0;
}

//  Is the username locked, or the address over its budget? 0 no, 1 yes (*retry_s), -1.
static int
s_login_limited (auth_t *self, const char *klock, const char *kip, int64_t now, int64_t *retry_s,
                 const char **why)
{
    char min[24];
    snprintf (min, sizeof min, "(%" PRId64, now - self->ip_window_ms);
    if (gl_redis_append (self->intake->redis, "GET %s", klock) != 0
        || gl_redis_append (self->intake->redis, "ZRANGEBYSCORE %s %s +inf WITHSCORES", kip, min)
               != 0)
        return -1;
    redisReply *lock = gl_redis_reply (self->intake->redis);
    redisReply *ip = lock ? gl_redis_reply (self->intake->redis) : NULL;
    int rc = lock && ip ? 0 : -1;
    int64_t until = lock && lock->type == REDIS_REPLY_STRING ? s_atoll (lock->str, 0) : 0;
    if (rc == 0 && until > now) {
        *retry_s = (until - now + 999) / 1000;
        *why = "username_locked";
        rc = 1;
    }
    else if (rc == 0 && ip->type == REDIS_REPLY_ARRAY
             && (int64_t) (ip->elements / 2) >= self->ip_fail_max && ip->elements >= 2) {
        //  Free again when the oldest failure in the window leaves it.
        int64_t oldest = s_atoll (s_elem (ip, 1), now);
        *retry_s = (oldest + self->ip_window_ms - now + 999) / 1000;
        if (*retry_s < 1)
            *retry_s = 1;
        *why = "address_limited";
        rc = 1;
    }
    if (lock)
        freeReplyObject (lock);
    if (ip)
        freeReplyObject (ip);
    return rc;
}

static void
s_login_failed_count (auth_t *self, const char *kfail, const char *klock, const char *kip,
                      int64_t now)
{
    char snow[24], window[24], max[24], lock[24], ipwin[24], member[GL_ID_LEN + 1];
    snprintf (snow, sizeof snow, "%" PRId64, now);
    snprintf (window, sizeof window, "%" PRId64, self->fail_window_ms);
    snprintf (max, sizeof max, "%" PRId64, self->fail_max);
    snprintf (lock, sizeof lock, "%" PRId64, self->lock_ms);
    snprintf (ipwin, sizeof ipwin, "%" PRId64, self->ip_window_ms);
    gl_id_new (member);
    const char *argv[] = { kfail, klock, kip, snow, window, max, lock, ipwin, member };
    redisReply *r = gl_redis_eval (self->intake->redis, &s_lua_login_failed, 3, 9, argv, NULL);
    if (s_int_reply (r) < 0)
        gl_warn ("auth: a failed login could not be counted (redis unreachable)");
}

//  Audit a login attempt of this request: actor is who acted (the user after a success, nobody
//  before), record the account concerned (empty for an unknown username).
static void
s_audit_login (intake_t *intake, http_req_t *req, const char *actor, uint32_t roles,
               const char *record, const char *action, const char *detail)
{
    http_caller_t who;
    memset (&who, 0, sizeof who);
    snprintf (who.user_id, sizeof who.user_id, "%s", actor);
    who.roles = roles;
    audit_set_current (intake, req, &who);
    audit_record (intake, &who, action, "user", record, detail);
    audit_set_current (intake, NULL, NULL);
}

//  The session: a new token and CSRF token, stored by their hashes.
static int
s_session_create (auth_t *self, const char *user_id, int64_t now, auth_login_t *out)
{
    char secret[AUTH_SECRET_LEN + 1];
    s_secret (secret);
    snprintf (out->token, sizeof out->token, "gls_%s_%s", user_id, secret);
    sodium_memzero (secret, sizeof secret);
    s_secret (out->csrf_token);
    char hash[S_HASH_HEX + 1], csrf[S_HASH_HEX + 1], sid[GL_ID_LEN + 1];
    s_keyed_hash (self, "token", out->token, strlen (out->token), hash);
    s_keyed_hash (self, "csrf", out->csrf_token, strlen (out->csrf_token), csrf);
    gl_id_new (sid);
    char ksession[128], ksessions[128], snow[24], max[24], ttl[24];
    s_key (ksession, sizeof ksession, "session", hash);
    s_key (ksessions, sizeof ksessions, "user_sessions", user_id);
    snprintf (snow, sizeof snow, "%" PRId64, now);
    snprintf (max, sizeof max, "%" PRId64, self->max_ms);
    snprintf (ttl, sizeof ttl, "%" PRId64, self->idle_ms + S_CLEANUP_SLACK_MS);
    const char *argv[] = { ksession, ksessions, hash, snow, max, ttl, "uid", user_id, "sid", sid,
                           "csrf", csrf, "created_ms", snow, "seen_ms", snow };
    int rc = s_int_reply (gl_redis_eval (self->intake->redis, &s_lua_session_new, 2,
                                         (int) (sizeof argv / sizeof argv[0]), argv, NULL));
    out->expires_ms = now + self->max_ms;
    return rc == 1 ? 0 : -1;
}

int
auth_login (intake_t *intake, http_req_t *req, const char *username, const char *password,
            auth_login_t *out)
{
    auth_t *self = s_self (intake);
    memset (out, 0, sizeof *out);
    out->status = 503;
    int64_t now = gl_now_ms ();
    char address[INET6_ADDRSTRLEN + 1], kfail[128], klock[128], kip[128], h[S_HASH_HEX + 1];
    s_client_address (self, req, address, sizeof address);
    s_keyed_hash (self, "address", address, strlen (address), h);
    snprintf (kip, sizeof kip, S_PREFIX "login_ip:%s", h);
    s_lock_keys (self, username, kfail, klock);

    const char *why = NULL;
    int limited = s_login_limited (self, klock, kip, now, &out->retry_after_s, &why);
    if (limited < 0)
        return 0;
    s_login_user_t u;
    if (s_login_user (self, username, &u) != 0)
        return 0;
    if (limited == 1) {
        s_audit_login (intake, req, "", 0, u.found ? u.id : "", "login_refused", why);
        out->status = 429;
        return 0;
    }
    //  Unknown users cost the same Argon2 check as known ones, so timing does not tell them apart.
    bool right = crypto_pwhash_str_verify (u.found ? u.pwhash : self->dummy_hash, password,
                                           strlen (password))
                 == 0;
    if (!u.found || !right || u.disabled) {
        s_login_failed_count (self, kfail, klock, kip, now);
        s_audit_login (intake, req, "", 0, u.found ? u.id : "", "login_failed",
                       !u.found ? "unknown_user" : !right ? "wrong_password" : "disabled");
        out->status = 401;
        return 0;
    }
    //  The cost settings went up since this hash was made: hash it again, now that we have it.
    if (crypto_pwhash_str_needs_rehash (u.pwhash, self->opslimit, self->memlimit) != 0) {
        char pwhash[crypto_pwhash_STRBYTES];
        const char *pairs[] = { "pwhash", pwhash };
        if (s_hash_password (self, password, pwhash) == 0)
            s_user_change_run (self, u.id, false, NULL, pairs, 2);
        sodium_memzero (pwhash, sizeof pwhash);
    }
    redisReply *r = gl_redis_cmd (intake->redis, "DEL %s", kfail);
    if (r)
        freeReplyObject (r);
    if (s_session_create (self, u.id, now, out) != 0) {
        sodium_memzero (out->token, sizeof out->token);
        return 0;
    }
    snprintf (out->user_id, sizeof out->user_id, "%s", u.id);
    s_audit_login (intake, req, u.id, u.roles, u.id, "login", "password");
    out->status = 200;
    return 0;
}

int
auth_password_check (intake_t *intake, const char *id, const char *password,
                     int64_t *retry_after_s)
{
    auth_t *self = s_self (intake);
    json_t *user = NULL;
    int rc = auth_user_view (intake, id, &user);
    if (rc != 0)
        return rc < 0 ? -1 : 1;
    char username[AUTH_USERNAME_MAX + 1];
    snprintf (username, sizeof username, "%s",
              json_string_value (json_object_get (user, "username")));
    json_decref (user);
    int64_t now = gl_now_ms ();
    char kfail[128], klock[128];
    s_lock_keys (self, username, kfail, klock);
    //  The address budget is for logins: a signed-in user's wrong passwords count against the
    //  username only (their address key is one that is never over budget).
    const char *kip = S_PREFIX "login_ip:signed-in";
    const char *why = NULL;
    int limited = s_login_limited (self, klock, kip, now, retry_after_s, &why);
    if (limited == 1 && strcmp (why, "address_limited") == 0)
        limited = 0;
    if (limited != 0)
        return limited < 0 ? -1 : 2;
    s_login_user_t u;
    if (s_login_user (self, username, &u) != 0)
        return -1;
    if (!u.found || strcmp (u.id, id) != 0)
        return 1;
    if (crypto_pwhash_str_verify (u.pwhash, password, strlen (password)) == 0)
        return 0;
    s_login_failed_count (self, kfail, klock, kip, now);
    return 1;
}

int
auth_logout (intake_t *intake, http_req_t *req)
{
    auth_t *self = s_self (intake);
    (void) req;
    if (!self->cur_session[0])
        return 1;
    char ksession[128], ksessions[128];
    s_key (ksession, sizeof ksession, "session", self->cur_session);
    s_key (ksessions, sizeof ksessions, "user_sessions", self->cur_user);
    if (gl_redis_append (intake->redis, "DEL %s", ksession) != 0
        || gl_redis_append (intake->redis, "ZREM %s %s", ksessions, self->cur_session) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        redisReply *r = gl_redis_reply (intake->redis);
        if (!r)
            return -1;
        if (r->type == REDIS_REPLY_ERROR)
            rc = -1;
        freeReplyObject (r);
    }
    s_cache_forget (self, self->cur_session);
    self->cur_session[0] = 0;
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  The authentication hook

//  The token of a request: the bearer token, else the gl_session cookie (*cookie set).
static bool
s_request_token (http_req_t *req, char *out, size_t cap, bool *cookie)
{
    *cookie = false;
    const char *authz = http_header (req, "Authorization");
    if (authz) {
        if (strncasecmp (authz, "Bearer ", 7) != 0)
            return false;
        const char *t = authz + 7;
        while (*t == ' ')
            t++;
        if (strlen (t) >= cap)
            return false;
        snprintf (out, cap, "%s", t);
        return true;
    }
    const char *cookies = http_header (req, "Cookie");
    for (const char *p = cookies; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr (p, ';');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        if (len > 11 && strncmp (p, "gl_session=", 11) == 0) {
            if (len - 11 >= cap)
                return false;
            memcpy (out, p + 11, len - 11);
            out[len - 11] = 0;
            *cookie = true;
            return true;
        }
        p += len;
    }
    return false;
}

static int
s_auth_client (auth_t *self, const char *token, const char *id, http_caller_t *caller)
{
    char key[128], hash[S_HASH_HEX + 1];
    s_key (key, sizeof key, "client", id);
    s_keyed_hash (self, "token", token, strlen (token), hash);
    s_cached_t *hit = s_cache_find (self, hash, id);
    if (hit && hit->client) {
        *caller = hit->caller;
        return 0;
    }
    redisReply *r = gl_redis_cmd (self->intake->redis, "HMGET %s token_hash roles revoked_ms", key);
    if (!r)
        return 503;
    int rc = 401;
    const char *stored = s_elem (r, 0);
    if (stored && strlen (stored) == S_HASH_HEX && sodium_memcmp (stored, hash, S_HASH_HEX) == 0
        && s_atoll (s_elem (r, 2), 0) == 0) {
        snprintf (caller->user_id, sizeof caller->user_id, "%s", id);
        caller->roles = s_roles_parse (s_elem (r, 1)) & GL_ROLE_API_CLIENT;
        rc = 0;
        s_cache_put (self, hash, NULL, 0, 0, caller);
        if (self->cache)
            s_cache_slot (self, hash)->client = true;
    }
    freeReplyObject (r);
    return rc;
}

static void
s_session_drop (auth_t *self, const char *ksession, const char *user_id, const char *hash)
{
    s_cache_forget (self, hash);
    char ksessions[128];
    s_key (ksessions, sizeof ksessions, "user_sessions", user_id);
    redisReply *r = gl_redis_cmd (self->intake->redis, "DEL %s", ksession);
    if (r)
        freeReplyObject (r);
    r = gl_redis_cmd (self->intake->redis, "ZREM %s %s", ksessions, hash);
    if (r)
        freeReplyObject (r);
}

//  A cookie is sent by the browser on its own; a state change must also prove that the page
//  read the CSRF token, which another site cannot. true when the request may go on.
static bool
s_csrf_ok (auth_t *self, http_req_t *req, bool cookie, const char *csrf)
{
    if (!cookie || strcmp (http_method (req), "GET") == 0)
        return true;
    const char *given = http_header (req, "X-CSRF-Token");
    char given_hash[S_HASH_HEX + 1];
    bool ok = given && csrf && strlen (given) == AUTH_SECRET_LEN && strlen (csrf) == S_HASH_HEX;
    if (ok) {
        s_keyed_hash (self, "csrf", given, strlen (given), given_hash);
        ok = sodium_memcmp (given_hash, csrf, S_HASH_HEX) == 0;
    }
    if (!ok)
        http_set_header (req, "WWW-Authenticate", "Bearer error=\"csrf_token_required\"");
    return ok;
}

//  Record that the session was used, at most once a minute. Returns the seen time now stored.
static int64_t
s_session_touch (auth_t *self, const char *ksession, int64_t now, int64_t seen)
{
    if (now - seen < S_SEEN_EVERY_MS)
        return seen;
    char snow[24];
    snprintf (snow, sizeof snow, "%" PRId64, now);
    gl_redis_t *redis = self->intake->redis;
    redisReply *w = gl_redis_cmd (redis, "HSET %s seen_ms %s", ksession, snow);
    if (w)
        freeReplyObject (w);
    w = gl_redis_cmd (redis, "PEXPIRE %s %" PRId64, ksession, self->idle_ms + S_CLEANUP_SLACK_MS);
    if (w)
        freeReplyObject (w);
    return now;
}

static void
s_session_current (auth_t *self, const char *hash, const char *user_id)
{
    snprintf (self->cur_session, sizeof self->cur_session, "%s", hash);
    snprintf (self->cur_user, sizeof self->cur_user, "%s", user_id);
}

static int
s_auth_session (auth_t *self, http_req_t *req, const char *token, const char *user_id,
                bool cookie, http_caller_t *caller)
{
    char hash[S_HASH_HEX + 1], ksession[128], kuser[128];
    s_keyed_hash (self, "token", token, strlen (token), hash);
    s_key (ksession, sizeof ksession, "session", hash);
    int64_t now = gl_now_ms ();
    s_cached_t *hit = s_cache_find (self, hash, user_id);
    if (hit && hit->client)
        hit = NULL;                     //  not a session's (cannot happen: other token, other hash)
    if (hit && (now - hit->seen_ms > self->idle_ms || now - hit->created_ms > self->max_ms)) {
        s_cache_clear (hit);            //  timed out: the read below drops it
        hit = NULL;
    }
    if (hit) {
        if (!s_csrf_ok (self, req, cookie, hit->csrf[0] ? hit->csrf : NULL))
            return 401;
        *caller = hit->caller;
        s_session_current (self, hash, user_id);
        hit->seen_ms = s_session_touch (self, ksession, now, hit->seen_ms);
        return 0;
    }
    s_key (kuser, sizeof kuser, "user", user_id);
    gl_redis_t *redis = self->intake->redis;
    //  One round trip: the session and its user, so roles and disabled are always current.
    if (gl_redis_append (redis, "HMGET %s uid csrf created_ms seen_ms", ksession) != 0
        || gl_redis_append (redis, "HMGET %s roles units disabled", kuser) != 0)
        return 503;
    redisReply *s = gl_redis_reply (redis);
    redisReply *u = s ? gl_redis_reply (redis) : NULL;
    if (!s || !u) {
        if (s)
            freeReplyObject (s);
        return 503;
    }
    int rc = 401;
    const char *uid = s_elem (s, 0), *csrf = s_elem (s, 1);
    int64_t created = s_atoll (s_elem (s, 2), 0), seen = s_atoll (s_elem (s, 3), 0);
    if (!uid || strcmp (uid, user_id) != 0)
        goto done;
    if (now - seen > self->idle_ms || now - created > self->max_ms) {
        s_session_drop (self, ksession, user_id, hash);
        goto done;
    }
    if (u->type != REDIS_REPLY_ARRAY || u->elements != 3 || !s_elem (u, 0)
        || (s_elem (u, 2) && strcmp (s_elem (u, 2), "1") == 0))
        goto done;
    if (!s_csrf_ok (self, req, cookie, csrf))
        goto done;
    snprintf (caller->user_id, sizeof caller->user_id, "%s", user_id);
    caller->roles = s_roles_parse (s_elem (u, 0)) & ~GL_ROLE_API_CLIENT;
    caller->unit_count = s_split (s_elem (u, 1), &caller->units[0][0], sizeof caller->units[0],
                                  HTTP_UNITS_MAX, auth_unit_valid);
    s_session_current (self, hash, user_id);
    rc = 0;
    seen = s_session_touch (self, ksession, now, seen);
    s_cache_put (self, hash, csrf, created, seen, caller);
done:
    freeReplyObject (s);
    freeReplyObject (u);
    return rc;
}

int
auth_authenticate (intake_t *intake, http_req_t *req, http_caller_t *caller)
{
    auth_t *self = intake ? intake->auth : NULL;
    if (!self)
        return 401;
    self->cur_session[0] = 0;
    self->cur_user[0] = 0;
    audit_set_current (intake, NULL, NULL);
    gl_event_destroy (&self->emit);     //  one a write did not take (it returned early)
    char token[AUTH_TOKEN_LEN + 2], id[GL_ID_LEN + 1], kind;
    bool cookie;
    if (!s_request_token (req, token, sizeof token, &cookie) || !s_token_parse (token, &kind, id)
        || (cookie && kind != 's')) {
        http_set_header (req, "WWW-Authenticate", "Bearer");
        return 401;
    }
    int rc = kind == 'c' ? s_auth_client (self, token, id, caller)
                         : s_auth_session (self, req, token, id, cookie, caller);
    sodium_memzero (token, sizeof token);
    if (rc == 0)
        audit_set_current (intake, req, caller);
    else {
        memset (caller, 0, sizeof *caller);
        if (rc == 401 && !http_header (req, "WWW-Authenticate"))
            http_set_header (req, "WWW-Authenticate", "Bearer");
    }
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Start and stop

//  The server key: GL_INTAKE_TOKEN_KEY (64 hex digits), or one kept in Redis, made at the first
//  start (SET NX, so replicas starting together agree).
static int
s_load_key (auth_t *self, char *err, size_t errlen)
{
    const char *hex = gl_config_str (self->intake->config, "GL_INTAKE_TOKEN_KEY", NULL);
    size_t len = 0;
    if (hex && *hex) {
        if (strlen (hex) != 2 * sizeof self->key
            || sodium_hex2bin (self->key, sizeof self->key, hex, strlen (hex), NULL, &len, NULL)
                   != 0
            || len != sizeof self->key) {
            snprintf (err, errlen, "GL_INTAKE_TOKEN_KEY must be %zu hex digits",
                      2 * sizeof self->key);
            return -1;
        }
        return 0;
    }
    unsigned char fresh[sizeof self->key];
    char fresh_hex[2 * sizeof fresh + 1];
    randombytes_buf (fresh, sizeof fresh);
    s_hex (fresh, sizeof fresh, fresh_hex);
    sodium_memzero (fresh, sizeof fresh);
    redisReply *r = gl_redis_cmd (self->intake->redis, "SET %s %s NX", S_PREFIX "token_key",
                                  fresh_hex);
    if (r)
        freeReplyObject (r);
    sodium_memzero (fresh_hex, sizeof fresh_hex);
    r = gl_redis_cmd (self->intake->redis, "GET %s", S_PREFIX "token_key");
    int rc = -1;
    if (r && r->type == REDIS_REPLY_STRING && r->len == 2 * sizeof self->key
        && sodium_hex2bin (self->key, sizeof self->key, r->str, r->len, NULL, &len, NULL) == 0
        && len == sizeof self->key)
        rc = 0;
    if (r)
        freeReplyObject (r);
    if (rc != 0)
        snprintf (err, errlen, "cannot read or create the token key in Redis");
    else
        gl_info ("auth: GL_INTAKE_TOKEN_KEY is not set: using the key kept in Redis");
    return rc;
}

//  GL_INTAKE_BOOTSTRAP_ADMIN=username:password: the first admin, made only when no user exists.
static int
s_bootstrap (auth_t *self, char *err, size_t errlen)
{
    const char *value = gl_config_str (self->intake->config, "GL_INTAKE_BOOTSTRAP_ADMIN", NULL);
    if (!value || !*value)
        return 0;
    const char *colon = strchr (value, ':');
    char username[AUTH_USERNAME_MAX + 2] = "";
    size_t ulen = colon ? (size_t) (colon - value) : 0;
    if (colon && ulen < sizeof username) {
        memcpy (username, value, ulen);
        username[ulen] = 0;
    }
    const char *password = colon ? colon + 1 : "";
    if (!auth_username_valid (username) || s_utf8_chars (password) == 0
        || s_utf8_chars (password) > AUTH_PASSWORD_MAX) {
        snprintf (err, errlen, "GL_INTAKE_BOOTSTRAP_ADMIN must be username:password");
        return -1;
    }
    auth_spec_t spec = { .username = username, .display_name = "", .roles = GL_ROLE_ADMIN };
    gl_event_t *ev = gl_event_new ("user.created");
    if (ev)
        json_object_set_new (ev->data, "actor_id", json_string (""));
    auth_emit (self->intake, ev, "user_id", "ru");
    char id[GL_ID_LEN + 1];
    int rc = s_user_create (self, &spec, password, true, id);
    if (rc < 0) {
        snprintf (err, errlen, "cannot create the bootstrap admin (redis unreachable)");
        return -1;
    }
    if (rc == 1)
        return 0;                       //  users exist already: nothing to do
    if (!auth_password_valid (password))
        gl_warn ("auth: the bootstrap admin's password is shorter than the policy's %d "
                 "characters; change it (POST /api/v1/auth/password)",
                 AUTH_PASSWORD_MIN);
    gl_info ("auth: bootstrap admin %s created", id);
    audit_record (self->intake, NULL, "create", "user", id, "bootstrap_admin");
    return 0;
}

static int
s_settings (auth_t *self, char *err, size_t errlen)
{
    gl_config_t *config = self->intake->config;
    self->opslimit = (unsigned long long) gl_config_int (
        config, "GL_INTAKE_ARGON2_OPSLIMIT", crypto_pwhash_OPSLIMIT_INTERACTIVE,
        crypto_pwhash_OPSLIMIT_MIN, 64);
    self->memlimit = (size_t) gl_config_int (config, "GL_INTAKE_ARGON2_MEMLIMIT",
                                             crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                             crypto_pwhash_MEMLIMIT_MIN, (int64_t) 4 << 30);
    self->idle_ms = 1000 * gl_config_int (config, "GL_INTAKE_SESSION_IDLE_S", 1800, 60, 86400);
    self->max_ms = 1000 * gl_config_int (config, "GL_INTAKE_SESSION_MAX_S", 43200, 60, 2592000);
    self->fail_max = gl_config_int (config, "GL_INTAKE_LOGIN_MAX_FAILURES", 5, 1, 1000);
    self->fail_window_ms
        = 1000 * gl_config_int (config, "GL_INTAKE_LOGIN_WINDOW_S", 900, 1, 86400);
    self->lock_ms = 1000 * gl_config_int (config, "GL_INTAKE_LOGIN_LOCK_S", 900, 1, 86400);
    self->ip_fail_max = gl_config_int (config, "GL_INTAKE_LOGIN_IP_MAX_FAILURES", 50, 1, 100000);
    self->ip_window_ms
        = 1000 * gl_config_int (config, "GL_INTAKE_LOGIN_IP_WINDOW_S", 900, 1, 86400);
    self->ip_header = gl_config_str (config, "GL_INTAKE_CLIENT_IP_HEADER", NULL);
    if (self->ip_header && !*self->ip_header)
        self->ip_header = NULL;
    self->cookie_secure = gl_config_bool (config, "GL_INTAKE_COOKIE_SECURE", false);
    self->cache_ms = gl_config_int (config, "GL_INTAKE_SESSION_CACHE_MS", 1000, 0, 10000);
    //  Read by audit.c and api_audit.c at each use; checked here so a bad value stops the start.
    gl_config_int (config, "GL_INTAKE_AUDIT_MAXLEN", 10000000, 1000, 1000000000);
    gl_config_int (config, "GL_INTAKE_AUDIT_SCAN", 10000, 100, 10000000);
    if (gl_config_error (config)) {
        snprintf (err, errlen, "%s", gl_config_error (config));
        return -1;
    }
    return 0;
}

auth_t *
auth_new (intake_t *intake, char *err, size_t errlen)
{
    assert (intake && intake->redis && intake->config);
    if (sodium_init () < 0) {
        snprintf (err, errlen, "libsodium cannot start");
        return NULL;
    }
    auth_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->intake = intake;
    intake->auth = self;
    if (s_settings (self, err, errlen) != 0 || s_load_key (self, err, errlen) != 0)
        goto fail;
    if (crypto_pwhash_str (self->dummy_hash, "not a password", 14, self->opslimit,
                           self->memlimit)
        != 0) {
        snprintf (err, errlen, "cannot hash with GL_INTAKE_ARGON2_MEMLIMIT (out of memory?)");
        goto fail;
    }
    if (self->cache_ms > 0 && !(self->cache = calloc (S_CACHE_SLOTS, sizeof *self->cache))) {
        snprintf (err, errlen, "out of memory");
        goto fail;
    }
    if (s_bootstrap (self, err, errlen) != 0)
        goto fail;
    if (usercontact_register (intake) != 0) {
        snprintf (err, errlen, "cannot register intake.user_contact");
        goto fail;
    }
    intake->authenticate = auth_authenticate;
    return self;
fail:
    intake->auth = NULL;
    auth_destroy (&self);
    return NULL;
}

void
auth_destroy (auth_t **self_p)
{
    assert (self_p);
    auth_t *self = *self_p;
    if (!self)
        return;
    gl_event_destroy (&self->emit);
    if (self->intake && self->intake->authenticate == auth_authenticate)
        self->intake->authenticate = http_authenticate_nobody;
    sodium_memzero (self->key, sizeof self->key);
    if (self->cache) {
        sodium_memzero (self->cache, S_CACHE_SLOTS * sizeof *self->cache);
        free (self->cache);
    }
    free (self);
    *self_p = NULL;
}
