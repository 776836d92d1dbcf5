/*  gl_wq — see gl_wq.h and docs/workqueue-draft.md.

    Every state change is one Lua script, so that the marker (queued / done), the stream entry,
    the pending list and the dead letters never disagree, whatever crashes in between. The one
    command outside a script is the blocking XREADGROUP that waits for new items (scripts cannot
    block); the entries it delivers are then checked by the claim script given their ids.

    An item's lifecycle in Redis:
      add       SET marker = ID, XADD                     (nothing if the marker is live)
      claim     XAUTOCLAIM idle ones, XREADGROUP new ones  (dead-letter the bad ones)
      complete  extra commands, SET marker "done ID" PX ttl, XACK, XDEL
      dead      XADD dead letter, XACK, XDEL, DEL marker
      replay    XADD new entry, SET marker = new ID, XDEL dead letter
    Done entries are deleted from the stream, so XLEN is the depth and max_len bounds it.
*/
#include "gl/gl_wq.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_GROUP       "gl-wq"
#define S_REASON_MAX  200
#define S_DEAD_LIST_MAX 1000
#define S_ARGS_MAX    4000      //  gl_redis_eval takes fewer than 4096 arguments

//  Shared Lua: check an entry's fields; queue an item unless its key is live; dead-letter.
#define S_LUA_LIB \
"local function wq_inspect (f, keymax, maxp)\n" \
"  local k, p\n" \
"  for i = 1, #f - 1, 2 do\n" \
"    if f[i] == 'k' and k == nil then k = f[i + 1]\n" \
"    elseif f[i] == 'p' and p == nil then p = f[i + 1] end\n" \
"  end\n" \
"  if k == nil then return nil, nil, 'malformed: no item key' end\n" \
"  if #k == 0 or #k > keymax or string.find (k, '[^!-~]') then\n" \
"    return nil, nil, 'malformed: bad item key' end\n" \
"  if p == nil then return k, nil, 'malformed: no payload' end\n" \
"  if #p > maxp then return k, nil, 'malformed: payload too large' end\n" \
"  return k, p, nil\n" \
"end\n" \
"local function wq_enqueue (stream, mk, k, p, now, maxlen)\n" \
"  local m = redis.call ('GET', mk)\n" \
"  if m then\n" \
"    if string.sub (m, 1, 5) == 'done ' then return {1, string.sub (m, 6)} end\n" \
"    if string.match (m, '^%d+%-%d+$') and redis.call ('XRANGE', stream, m, m)[1] then\n" \
"      return {1, m} end\n" \
"  end\n" \
"  if redis.call ('XLEN', stream) >= tonumber (maxlen) then return {2, ''} end\n" \
"  local id = redis.call ('XADD', stream, '*', 'k', k, 'p', p, 't', now)\n" \
"  redis.call ('SET', mk, id)\n" \
"  return {0, id}\n" \
"end\n" \
"local function wq_bury (stream, dead, errs, group, mprefix, id, f, deliveries, reason, now,\n" \
"                        deadmax, maxval, keymax)\n" \
"  local trimmed = 0\n" \
"  if redis.call ('XLEN', dead) >= tonumber (deadmax) then trimmed = 1 end\n" \
"  local a = {dead, 'MAXLEN', deadmax, '*', 'reason', reason, 'deliveries', deliveries,\n" \
"             'when', now, 'id', id}\n" \
"  local err = redis.call ('HGET', errs, id)\n" \
"  if err then a[#a + 1] = 'error'; a[#a + 1] = err end\n" \
"  local k\n" \
"  for i = 1, math.min (#f - 1, 31), 2 do\n" \
"    if f[i] == 'k' and k == nil then k = f[i + 1] end\n" \
"    a[#a + 1] = string.sub (f[i], 1, 64)\n" \
"    a[#a + 1] = string.sub (f[i + 1], 1, maxval)\n" \
"  end\n" \
"  redis.call ('XADD', unpack (a))\n" \
"  redis.call ('XACK', stream, group, id)\n" \
"  redis.call ('XDEL', stream, id)\n" \
"  redis.call ('HDEL', errs, id)\n" \
"  if k and #k > 0 and #k <= keymax then\n" \
"    local mk = mprefix .. k\n" \
"    if redis.pcall ('GET', mk) == id then redis.call ('DEL', mk) end\n" \
"  end\n" \
"  return trimmed\n" \
"end\n"

//  KEYS stream, marker. ARGV maxlen, key, payload, now.
static const char *s_lua_add = S_LUA_LIB
"return wq_enqueue (KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[1])\n";

//  KEYS stream, dead, errors. ARGV group, consumer, min_idle, count, max_deliveries, now,
//  marker prefix, key max, payload max, cursor, dead max, [ids to inspect...].
//  Returns {cursor, dead-lettered, dead stream trimmed, id, key, payload, deliveries, ...}.
static const char *s_lua_claim = S_LUA_LIB
"local stream, dead, errs = KEYS[1], KEYS[2], KEYS[3]\n"
"local group, consumer, minidle = ARGV[1], ARGV[2], ARGV[3]\n"
"local count, maxd, now, mprefix = tonumber (ARGV[4]), tonumber (ARGV[5]), ARGV[6], ARGV[7]\n"
"local keymax, maxp, deadmax = tonumber (ARGV[8]), tonumber (ARGV[9]), ARGV[11]\n"
"local entries = {}\n"
"local out = {ARGV[10], 0, 0}\n"
"if #ARGV > 11 then\n"
"  for i = 12, #ARGV do\n"
"    local e = redis.call ('XRANGE', stream, ARGV[i], ARGV[i])\n"
"    if e[1] then entries[#entries + 1] = e[1]\n"
"    else redis.call ('XACK', stream, group, ARGV[i]) end\n"
"  end\n"
"else\n"
"  local r = redis.call ('XAUTOCLAIM', stream, group, consumer, minidle, ARGV[10],\n"
"                        'COUNT', count)\n"
"  out[1] = r[1]\n"
"  for _, e in ipairs (r[2]) do if e then entries[#entries + 1] = e end end\n"
"  if #entries < count then\n"
"    local n = redis.call ('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #entries,\n"
"                          'STREAMS', stream, '>')\n"
"    if n then for _, e in ipairs (n[1][2]) do entries[#entries + 1] = e end end\n"
"  end\n"
"end\n"
"for _, e in ipairs (entries) do\n"
"  local id, f = e[1], e[2]\n"
"  local pe = redis.call ('XPENDING', stream, group, id, id, 1)[1]\n"
"  if pe and pe[2] == consumer then\n"
"    local d = pe[4]\n"
"    local k, p, why = wq_inspect (f, keymax, maxp)\n"
"    local skip = false\n"
"    if not why then\n"
"      local m = redis.pcall ('GET', mprefix .. k)\n"
"      if m == 'done ' .. id then\n"
"        redis.call ('XACK', stream, group, id)\n"
"        redis.call ('XDEL', stream, id)\n"
"        redis.call ('HDEL', errs, id)\n"
"        skip = true\n"
"      elseif m ~= id then\n"
"        if type (m) == 'string' then why = 'duplicate: item key belongs to another entry'\n"
"        else why = 'malformed: not added through the queue' end\n"
"      end\n"
"    end\n"
"    if not why and not skip and d > maxd then why = 'max deliveries' end\n"
"    if why then\n"
"      local t = wq_bury (stream, dead, errs, group, mprefix, id, f, d, why, now, deadmax,\n"
"                         maxp, keymax)\n"
"      out[2] = out[2] + 1\n"
"      if t > out[3] then out[3] = t end\n"
"    elseif not skip then\n"
"      out[#out + 1] = id; out[#out + 1] = k; out[#out + 1] = p; out[#out + 1] = d\n"
"    end\n"
"  end\n"
"end\n"
"return out\n";

//  KEYS stream, errors, marker. ARGV group, id, done ttl, ncmds, {argc, argv...}...
static const char *s_lua_complete =
"local stream, errs, mk = KEYS[1], KEYS[2], KEYS[3]\n"
"local group, id = ARGV[1], ARGV[2]\n"
"local m = redis.pcall ('GET', mk)\n"
"if m == 'done ' .. id then\n"
"  redis.call ('XACK', stream, group, id)\n"
"  redis.call ('XDEL', stream, id)\n"
"  redis.call ('HDEL', errs, id)\n"
"  return 1\n"
"end\n"
"if m ~= id or not redis.call ('XPENDING', stream, group, id, id, 1)[1] then return 2 end\n"
"local i = 5\n"
"for c = 1, tonumber (ARGV[4]) do\n"
"  local argc = tonumber (ARGV[i])\n"
"  redis.call (unpack (ARGV, i + 1, i + argc))\n"
"  i = i + argc + 1\n"
"end\n"
"redis.call ('SET', mk, 'done ' .. id, 'PX', ARGV[3])\n"
"redis.call ('XACK', stream, group, id)\n"
"redis.call ('XDEL', stream, id)\n"
"redis.call ('HDEL', errs, id)\n"
"return 0\n";

//  KEYS stream, errors. ARGV group, id, reason.
static const char *s_lua_fail =
"if not redis.call ('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)[1] then return 2 end\n"
"redis.call ('HSET', KEYS[2], ARGV[2], ARGV[3])\n"
"return 0\n";

//  KEYS stream, dead, errors. ARGV group, id, reason, now, marker prefix, dead max, payload max,
//  key max. Returns {code, dead stream trimmed}.
static const char *s_lua_dead = S_LUA_LIB
"local pe = redis.call ('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)[1]\n"
"if not pe then return {2, 0} end\n"
"local e = redis.call ('XRANGE', KEYS[1], ARGV[2], ARGV[2])[1]\n"
"if not e then redis.call ('XACK', KEYS[1], ARGV[1], ARGV[2]); return {2, 0} end\n"
"local t = wq_bury (KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[5], ARGV[2], e[2], pe[4], ARGV[3],\n"
"                  ARGV[4], ARGV[6], tonumber (ARGV[7]), tonumber (ARGV[8]))\n"
"return {0, t}\n";

//  KEYS stream, dead. ARGV dead id, maxlen, now, marker prefix, key max, payload max.
//  Returns {code, id or reason}: 0 replayed, 1 duplicate, 2 full, 3 no such, 4 malformed.
static const char *s_lua_replay = S_LUA_LIB
"local e = redis.call ('XRANGE', KEYS[2], ARGV[1], ARGV[1])[1]\n"
"if not e then return {3, ''} end\n"
"local k, p, why = wq_inspect (e[2], tonumber (ARGV[5]), tonumber (ARGV[6]))\n"
"if why then return {4, why} end\n"
"local r = wq_enqueue (KEYS[1], ARGV[4] .. k, k, p, ARGV[3], ARGV[2])\n"
"if r[1] == 0 then redis.call ('XDEL', KEYS[2], ARGV[1]) end\n"
"return r\n";

//  KEYS stream, dead. ARGV group.
static const char *s_lua_stats =
"return {redis.call ('XLEN', KEYS[1]), redis.call ('XPENDING', KEYS[1], ARGV[1])[1],\n"
"        redis.call ('XLEN', KEYS[2])}\n";

//  KEYS stream. ARGV group, self, idle ms.
static const char *s_lua_prune =
"local n = 0\n"
"for _, c in ipairs (redis.call ('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do\n"
"  local name, pending, idle\n"
"  for i = 1, #c - 1, 2 do\n"
"    if c[i] == 'name' then name = c[i + 1]\n"
"    elseif c[i] == 'pending' then pending = c[i + 1]\n"
"    elseif c[i] == 'idle' then idle = c[i + 1] end\n"
"  end\n"
"  if name and name ~= ARGV[2] and pending == 0 and idle and idle > tonumber (ARGV[3]) then\n"
"    redis.call ('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)\n"
"    n = n + 1\n"
"  end\n"
"end\n"
"return n\n";

typedef enum {
    S_ADD = 0, S_CLAIM, S_COMPLETE, S_FAIL, S_DEAD, S_REPLAY, S_STATS, S_PRUNE, S_NSCRIPTS
} s_script_t;

struct _gl_wq_t {
    gl_redis_t *redis;                  //  borrowed
    char name[GL_WQ_NAME_MAX + 1];
    char consumer[GL_WQ_NAME_MAX + 1];  //  "" for a producer
    gl_wq_opts_t opts;
    char stream[GL_WQ_NAME_MAX + 16];
    char dead[GL_WQ_NAME_MAX + 24];
    char errs[GL_WQ_NAME_MAX + 24];
    char mprefix[GL_WQ_NAME_MAX + 24];
    char cursor[GL_WQ_ID_MAX];          //  where the next XAUTOCLAIM scan resumes
    bool group_ready;
    //  Per object, not static: the SHA is filled in on first use, and objects may live in
    //  different threads.
    gl_redis_script_t scripts[S_NSCRIPTS];
    char errstr[256];
};

struct _gl_wq_item_t {
    char id[GL_WQ_ID_MAX];
    char *key;
    char *payload;
    size_t len;
    int64_t deliveries;
};

struct _gl_wq_dead_t {
    char id[GL_WQ_ID_MAX];
    char item_id[GL_WQ_ID_MAX];
    char *key;
    char *payload;
    size_t len;
    char *reason;
    char *error;
    int64_t deliveries;
    int64_t when;
};

//  --------------------------------------------------------------------------------------------
//  Helpers

static int
s_err (gl_wq_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_err (gl_wq_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->errstr, sizeof self->errstr, fmt, ap);
    va_end (ap);
    return -1;
}

static bool
s_valid_name (const char *s)
{
    if (!s)
        return false;
    size_t n = strlen (s);
    if (n == 0 || n > GL_WQ_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool
s_valid_key (const char *s)
{
    if (!s)
        return false;
    size_t n = strlen (s);
    if (n == 0 || n > GL_WQ_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '!' || s[i] > '~')
            return false;
    return true;
}

//  A stream id "ms-seq", both decimal.
static bool
s_valid_id (const char *s, size_t len)
{
    if (!s || len == 0 || len >= GL_WQ_ID_MAX)
        return false;
    size_t dash = 0, digits = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '-' && dash == 0 && digits > 0) {
            dash = i;
            digits = 0;
        }
        else if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else
            return false;
    }
    return dash > 0 && digits > 0;
}

static bool
s_is_str (const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING && r->str;
}

static bool
s_is_id (const redisReply *r)
{
    return s_is_str (r) && s_valid_id (r->str, r->len);
}

static char *
s_memdup (const char *src, size_t len)
{
    char *copy = malloc (len + 1);
    if (copy) {
        memcpy (copy, src, len);
        copy[len] = 0;
    }
    return copy;
}

static int
s_group_create (gl_wq_t *self)
{
    redisReply *r
        = gl_redis_cmd (self->redis, "XGROUP CREATE %s %s 0 MKSTREAM", self->stream, S_GROUP);
    if (!r)
        return s_err (self, "redis unavailable: %s", gl_redis_errstr (self->redis));
    bool ok = r->type != REDIS_REPLY_ERROR || gl_redis_reply_is_error (r, "BUSYGROUP");
    if (!ok)
        s_err (self, "cannot create consumer group: %.200s", r->str ? r->str : "?");
    freeReplyObject (r);
    self->group_ready = ok;
    return ok ? 0 : -1;
}

//  Run a script. Error replies become NULL with errstr set; a missing group (the stream was
//  deleted, or Redis lost its data) is created again and the script retried once.
static redisReply *
s_eval (gl_wq_t *self, s_script_t script, int nkeys, int argc, const char **argv,
        const size_t *argvlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!self->group_ready && s_group_create (self) != 0)
            return NULL;
        redisReply *r = gl_redis_eval (self->redis, &self->scripts[script], nkeys, argc, argv,
                                       argvlen);
        if (!r) {
            s_err (self, "redis unavailable: %s", gl_redis_errstr (self->redis));
            return NULL;
        }
        if (r->type != REDIS_REPLY_ERROR)
            return r;
        bool nogroup = r->str && strstr (r->str, "NOGROUP");
        s_err (self, "redis: %.200s", r->str ? r->str : "error");
        freeReplyObject (r);
        if (!nogroup)
            return NULL;
        self->group_ready = false;
    }
    return NULL;
}

static void
s_marker_key (gl_wq_t *self, const char *item_key, char *buf, size_t size)
{
    snprintf (buf, size, "%s%s", self->mprefix, item_key);
}

static void
s_log_dead (gl_wq_t *self, long long buried, long long trimmed)
{
    if (buried > 0)
        gl_warn ("wq %s: %lld item(s) dead-lettered", self->name, buried);
    if (trimmed > 0)
        gl_warn ("wq %s: dead-letter stream at its limit (%" PRId64 "), oldest dropped",
                 self->name, self->opts.dead_max_len);
}

//  --------------------------------------------------------------------------------------------
//  Life cycle

static int
s_opts_resolve (gl_wq_opts_t *o)
{
    if (o->max_deliveries < 0 || o->reclaim_idle_ms < 0 || o->max_len < 0 || o->batch < 0
        || o->done_ttl_ms < 0 || o->dead_max_len < 0)
        return -1;
    if (o->max_deliveries == 0)
        o->max_deliveries = 5;
    if (o->reclaim_idle_ms == 0)
        o->reclaim_idle_ms = 30000;
    if (o->max_len == 0)
        o->max_len = 100000;
    if (o->batch == 0)
        o->batch = 16;
    if (o->max_payload == 0)
        o->max_payload = 256 * 1024;
    if (o->done_ttl_ms == 0)
        o->done_ttl_ms = 7LL * 24 * 3600 * 1000;
    if (o->dead_max_len == 0)
        o->dead_max_len = 100000;
    //  The batch bounds a claim's memory (batch * max_payload) and its argument count.
    if (o->batch > 1000 || o->max_payload > 64 * 1024 * 1024 || o->max_deliveries > 1000000)
        return -1;
    return 0;
}

gl_wq_t *
gl_wq_new (gl_redis_t *redis, const char *name, const char *consumer, const gl_wq_opts_t *opts)
{
    assert (redis);
    if (!s_valid_name (name) || (consumer && !s_valid_name (consumer))) {
        gl_error ("wq: invalid queue or consumer name (want [A-Za-z0-9._-], 1..%d chars)",
                  GL_WQ_NAME_MAX);
        return NULL;
    }
    gl_wq_opts_t o = opts ? *opts : (gl_wq_opts_t) { 0 };
    if (s_opts_resolve (&o) != 0) {
        gl_error ("wq %s: invalid options", name);
        return NULL;
    }
    gl_wq_t *self = calloc (1, sizeof (gl_wq_t));
    if (!self)
        return NULL;
    self->redis = redis;
    self->opts = o;
    snprintf (self->name, sizeof self->name, "%s", name);
    snprintf (self->consumer, sizeof self->consumer, "%s", consumer ? consumer : "");
    snprintf (self->stream, sizeof self->stream, "gl:wq:{%s}", name);
    snprintf (self->dead, sizeof self->dead, "gl:wq:{%s}:dead", name);
    snprintf (self->errs, sizeof self->errs, "gl:wq:{%s}:errors", name);
    snprintf (self->mprefix, sizeof self->mprefix, "gl:wq:{%s}:k:", name);
    snprintf (self->cursor, sizeof self->cursor, "0-0");
    const char *sources[S_NSCRIPTS] = { s_lua_add,  s_lua_claim,  s_lua_complete, s_lua_fail,
                                        s_lua_dead, s_lua_replay, s_lua_stats,    s_lua_prune };
    for (int i = 0; i < S_NSCRIPTS; i++)
        self->scripts[i].source = sources[i];
    if (s_group_create (self) != 0)
        gl_warn ("wq %s: %s; will retry", self->name, self->errstr);
    return self;
}

void
gl_wq_destroy (gl_wq_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

const char *
gl_wq_errstr (gl_wq_t *self)
{
    assert (self);
    return self->errstr;
}

//  --------------------------------------------------------------------------------------------
//  Producing

int
gl_wq_add (gl_wq_t *self, const char *item_key, const void *payload, size_t len, char *id_out)
{
    assert (self);
    if (!s_valid_key (item_key))
        return s_err (self, "add: invalid item key (want printable ASCII, 1..%d bytes)",
                      GL_WQ_KEY_MAX);
    if (!payload && len > 0)
        return s_err (self, "add: no payload");
    if (len > self->opts.max_payload)
        return s_err (self, "add: payload of %zu bytes exceeds the limit of %zu", len,
                      self->opts.max_payload);
    char mk[GL_WQ_NAME_MAX + GL_WQ_KEY_MAX + 32];
    s_marker_key (self, item_key, mk, sizeof mk);
    char maxlen[24], now[24];
    snprintf (maxlen, sizeof maxlen, "%" PRId64, self->opts.max_len);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    const char *argv[] = { self->stream, mk, maxlen, item_key, payload ? payload : "", now };
    size_t lens[] = { strlen (self->stream), strlen (mk), strlen (maxlen), strlen (item_key),
                      len, strlen (now) };
    redisReply *r = s_eval (self, S_ADD, 2, 6, argv, lens);
    if (!r)
        return -1;
    int rc = -1;
    long long code = -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || gl_redis_reply_int (r->element[0], &code) != 0)
        s_err (self, "add: unexpected reply");
    else if (code == 2)
        s_err (self, "add: queue full (max_len %" PRId64 ")", self->opts.max_len);
    else if ((code == 0 || code == 1) && s_is_id (r->element[1])) {
        if (id_out)
            snprintf (id_out, GL_WQ_ID_MAX, "%s", r->element[1]->str);
        rc = (int) code;
    }
    else
        s_err (self, "add: unexpected reply");
    freeReplyObject (r);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Claiming

static gl_wq_item_t *
s_item_new (const redisReply *id, const redisReply *key, const redisReply *payload,
            long long deliveries)
{
    gl_wq_item_t *item = calloc (1, sizeof (gl_wq_item_t));
    if (!item)
        return NULL;
    memcpy (item->id, id->str, id->len);
    item->key = s_memdup (key->str, key->len);
    item->payload = s_memdup (payload->str, payload->len);
    item->len = payload->len;
    item->deliveries = deliveries;
    if (!item->key || !item->payload)
        gl_wq_item_free (&item);
    return item;
}

//  Run the claim script: reclaim and read (nids == 0), or inspect the entries ids that a
//  blocking read delivered. Appends the good items to items[*count..max).
static int
s_claim_run (gl_wq_t *self, int max, char (*ids)[GL_WQ_ID_MAX], int nids, gl_wq_item_t **items,
             int *count)
{
    char minidle[16], cnt[16], maxd[16], now[24], keymax[16], maxp[24], deadmax[24];
    snprintf (minidle, sizeof minidle, "%d", self->opts.reclaim_idle_ms);
    snprintf (cnt, sizeof cnt, "%d", max);
    snprintf (maxd, sizeof maxd, "%d", self->opts.max_deliveries);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    snprintf (keymax, sizeof keymax, "%d", GL_WQ_KEY_MAX);
    snprintf (maxp, sizeof maxp, "%zu", self->opts.max_payload);
    snprintf (deadmax, sizeof deadmax, "%" PRId64, self->opts.dead_max_len);
    const char *argv[14 + 1000] = { self->stream, self->dead,   self->errs, S_GROUP,
                                    self->consumer, minidle,   cnt,        maxd,
                                    now,          self->mprefix, keymax,   maxp,
                                    self->cursor, deadmax };
    int argc = 14;
    for (int i = 0; i < nids && i < 1000; i++)
        argv[argc++] = ids[i];
    redisReply *r = s_eval (self, S_CLAIM, 3, argc, argv, NULL);
    if (!r)
        return -1;
    long long buried = 0, trimmed = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || (r->elements - 3) % 4 != 0
        || gl_redis_reply_int (r->element[1], &buried) != 0
        || gl_redis_reply_int (r->element[2], &trimmed) != 0) {
        freeReplyObject (r);
        return s_err (self, "claim: unexpected reply");
    }
    if (nids == 0)
        snprintf (self->cursor, sizeof self->cursor, "%s",
                  s_is_id (r->element[0]) ? r->element[0]->str : "0-0");
    s_log_dead (self, buried, trimmed);
    int rc = 0;
    for (size_t i = 3; i + 3 < r->elements; i += 4) {
        long long deliveries = 0;
        redisReply **e = r->element + i;
        if (!s_is_id (e[0]) || !s_is_str (e[1]) || !s_is_str (e[2])
            || gl_redis_reply_int (e[3], &deliveries) != 0) {
            rc = s_err (self, "claim: unexpected reply");
            break;
        }
        //  An item we could not keep (no memory, or more than asked for, which the script
        //  does not return) stays pending and is reclaimed later.
        if (*count >= max)
            break;
        gl_wq_item_t *item = s_item_new (e[0], e[1], e[2], deliveries);
        if (!item) {
            rc = s_err (self, "claim: out of memory");
            break;
        }
        items[(*count)++] = item;
    }
    freeReplyObject (r);
    return rc;
}

//  Wait up to block_ms for new entries; collect their ids only (the claim script checks them).
static int
s_block_read (gl_wq_t *self, int max, int block_ms, char (*ids)[GL_WQ_ID_MAX], int *nids)
{
    *nids = 0;
    if (!self->group_ready && s_group_create (self) != 0)
        return -1;
    redisReply *r = gl_redis_cmd (self->redis, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >",
                                  S_GROUP, self->consumer, max, block_ms, self->stream);
    if (!r)
        return s_err (self, "redis unavailable: %s (block_ms must be below the command timeout)",
                      gl_redis_errstr (self->redis));
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        if (r->str && strstr (r->str, "NOGROUP"))
            self->group_ready = false;
        rc = s_err (self, "redis: %.200s", r->str ? r->str : "error");
    }
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
             && r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2
             && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; i < entries->elements && *nids < max; i++) {
            redisReply *e = entries->element[i];
            //  Entries that do not even have an id stay pending; they are reclaimed and
            //  dead-lettered by the claim script later.
            if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1 && s_is_id (e->element[0]))
                snprintf (ids[(*nids)++], GL_WQ_ID_MAX, "%s", e->element[0]->str);
        }
    }
    else if (r->type != REDIS_REPLY_NIL)
        rc = s_err (self, "claim: unexpected reply to XREADGROUP");
    freeReplyObject (r);
    return rc;
}

int
gl_wq_claim (gl_wq_t *self, int max, int block_ms, gl_wq_item_t **items, int *count)
{
    assert (self && items && count);
    *count = 0;
    if (!self->consumer[0])
        return s_err (self, "claim: this handle has no consumer name");
    if (max <= 0)
        return s_err (self, "claim: max must be positive");
    if (max > self->opts.batch)
        max = self->opts.batch;
    if (s_claim_run (self, max, NULL, 0, items, count) != 0)
        return -1;
    if (*count > 0 || block_ms <= 0)
        return 0;
    char (*ids)[GL_WQ_ID_MAX] = calloc ((size_t) max, GL_WQ_ID_MAX);
    if (!ids)
        return s_err (self, "claim: out of memory");
    int nids = 0;
    int rc = s_block_read (self, max, block_ms, ids, &nids);
    if (rc == 0 && nids > 0)
        rc = s_claim_run (self, max, ids, nids, items, count);
    free (ids);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Completing, failing, dead-lettering

int
gl_wq_complete (gl_wq_t *self, gl_wq_item_t *item, int ncmds, const gl_wq_cmd_t *cmds)
{
    assert (self && item && ncmds >= 0 && (ncmds == 0 || cmds));
    int argc = 3 + 4;
    for (int c = 0; c < ncmds; c++) {
        assert (cmds[c].argc >= 1 && cmds[c].argv);
        if (cmds[c].argc > S_ARGS_MAX)
            return s_err (self, "complete: too many arguments in the extra commands");
        argc += 1 + cmds[c].argc;
        if (argc > S_ARGS_MAX)
            return s_err (self, "complete: too many arguments in the extra commands");
    }
    const char **argv = calloc ((size_t) argc, sizeof (char *));
    size_t *lens = calloc ((size_t) argc, sizeof (size_t));
    char (*nums)[16] = calloc ((size_t) ncmds + 2, 16);
    if (!argv || !lens || !nums) {
        free (argv), free (lens), free (nums);
        return s_err (self, "complete: out of memory");
    }
    char mk[GL_WQ_NAME_MAX + GL_WQ_KEY_MAX + 32];
    s_marker_key (self, item->key, mk, sizeof mk);
    snprintf (nums[0], 16, "%" PRId64, self->opts.done_ttl_ms);
    snprintf (nums[1], 16, "%d", ncmds);
    int n = 0;
    argv[n++] = self->stream;
    argv[n++] = self->errs;
    argv[n++] = mk;
    argv[n++] = S_GROUP;
    argv[n++] = item->id;
    argv[n++] = nums[0];
    argv[n++] = nums[1];
    for (int i = 0; i < n; i++)
        lens[i] = strlen (argv[i]);
    for (int c = 0; c < ncmds; c++) {
        snprintf (nums[c + 2], 16, "%d", cmds[c].argc);
        lens[n] = strlen (nums[c + 2]);
        argv[n++] = nums[c + 2];
        for (int a = 0; a < cmds[c].argc; a++) {
            assert (cmds[c].argv[a]);
            lens[n] = cmds[c].argvlen ? cmds[c].argvlen[a] : strlen (cmds[c].argv[a]);
            argv[n++] = cmds[c].argv[a];
        }
    }
    redisReply *r = s_eval (self, S_COMPLETE, 3, argc, argv, lens);
    free (argv), free (lens), free (nums);
    if (!r)
        return -1;
    long long code = -1;
    int rc = -1;
    if (gl_redis_reply_int (r, &code) == 0 && code >= 0 && code <= 2)
        rc = (int) code;
    else
        s_err (self, "complete: unexpected reply");
    freeReplyObject (r);
    return rc;
}

//  A reason as stored: "unspecified" when NULL, cut at S_REASON_MAX bytes.
static size_t
s_reason (const char **reason)
{
    if (!*reason || !**reason)
        *reason = "unspecified";
    size_t len = strlen (*reason);
    return len > S_REASON_MAX ? S_REASON_MAX : len;
}

int
gl_wq_fail (gl_wq_t *self, gl_wq_item_t *item, const char *reason)
{
    assert (self && item);
    size_t rlen = s_reason (&reason);
    const char *argv[] = { self->stream, self->errs, S_GROUP, item->id, reason };
    size_t lens[] = { strlen (self->stream), strlen (self->errs), strlen (S_GROUP),
                      strlen (item->id), rlen };
    redisReply *r = s_eval (self, S_FAIL, 2, 5, argv, lens);
    if (!r)
        return -1;
    long long code = -1;
    int rc = -1;
    if (gl_redis_reply_int (r, &code) == 0 && (code == 0 || code == GL_WQ_GONE))
        rc = (int) code;
    else
        s_err (self, "fail: unexpected reply");
    freeReplyObject (r);
    return rc;
}

int
gl_wq_dead (gl_wq_t *self, gl_wq_item_t *item, const char *reason)
{
    assert (self && item);
    size_t rlen = s_reason (&reason);
    char now[24], deadmax[24], maxp[24], keymax[16];
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    snprintf (deadmax, sizeof deadmax, "%" PRId64, self->opts.dead_max_len);
    snprintf (maxp, sizeof maxp, "%zu", self->opts.max_payload);
    snprintf (keymax, sizeof keymax, "%d", GL_WQ_KEY_MAX);
    const char *argv[] = { self->stream, self->dead, self->errs,    S_GROUP, item->id,
                           reason,       now,        self->mprefix, deadmax, maxp,
                           keymax };
    size_t lens[11];
    for (int i = 0; i < 11; i++)
        lens[i] = strlen (argv[i]);
    lens[5] = rlen;
    redisReply *r = s_eval (self, S_DEAD, 3, 11, argv, lens);
    if (!r)
        return -1;
    long long code = -1, trimmed = 0;
    int rc = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2
        && gl_redis_reply_int (r->element[0], &code) == 0
        && gl_redis_reply_int (r->element[1], &trimmed) == 0 && (code == 0 || code == GL_WQ_GONE))
        rc = (int) code;
    else
        s_err (self, "dead: unexpected reply");
    freeReplyObject (r);
    if (rc == 0)
        s_log_dead (self, 1, trimmed);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Dead letters

static int64_t
s_field_int (const redisReply *v)
{
    long long n = 0;
    return gl_redis_reply_int (v, &n) == 0 ? (int64_t) n : -1;
}

static char *
s_field_str (const redisReply *v, size_t max)
{
    return s_memdup (v->str, v->len > max ? max : v->len);
}

//  One dead letter from an XRANGE entry [id, [field, value, ...]]. The first occurrence of a
//  field wins: the meta fields are written before the item's, whatever the item held.
static gl_wq_dead_t *
s_dead_new (gl_wq_t *self, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !s_is_id (e->element[0])
        || e->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    gl_wq_dead_t *d = calloc (1, sizeof (gl_wq_dead_t));
    if (!d)
        return NULL;
    memcpy (d->id, e->element[0]->str, e->element[0]->len);
    d->deliveries = -1;
    d->when = -1;
    const redisReply *f = e->element[1];
    bool ok = true;
    for (size_t i = 0; ok && i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (!s_is_str (k) || !s_is_str (v))
            continue;
        if (strcmp (k->str, "reason") == 0 && !d->reason)
            ok = (d->reason = s_field_str (v, 256)) != NULL;
        else if (strcmp (k->str, "error") == 0 && !d->error)
            ok = (d->error = s_field_str (v, 256)) != NULL;
        else if (strcmp (k->str, "deliveries") == 0 && d->deliveries < 0)
            d->deliveries = s_field_int (v);
        else if (strcmp (k->str, "when") == 0 && d->when < 0)
            d->when = s_field_int (v);
        else if (strcmp (k->str, "id") == 0 && !d->item_id[0] && s_valid_id (v->str, v->len))
            memcpy (d->item_id, v->str, v->len);
        else if (strcmp (k->str, "k") == 0 && !d->key)
            ok = (d->key = s_field_str (v, GL_WQ_KEY_MAX)) != NULL;
        else if (strcmp (k->str, "p") == 0 && !d->payload) {
            d->len = v->len > self->opts.max_payload ? self->opts.max_payload : v->len;
            ok = (d->payload = s_field_str (v, self->opts.max_payload)) != NULL;
        }
    }
    if (ok && !d->reason)
        ok = (d->reason = strdup ("unknown")) != NULL;
    if (!ok)
        gl_wq_dead_free (&d);
    return d;
}

int
gl_wq_dead_list (gl_wq_t *self, const char *after, int max, gl_wq_dead_t **entries, int *count)
{
    assert (self && entries && count);
    *count = 0;
    if (max <= 0 || max > S_DEAD_LIST_MAX)
        return s_err (self, "dead list: max must be 1..%d", S_DEAD_LIST_MAX);
    char start[GL_WQ_ID_MAX + 1] = "-";
    if (after && *after) {
        if (!s_valid_id (after, strlen (after)))
            return s_err (self, "dead list: invalid id");
        snprintf (start, sizeof start, "(%s", after);
    }
    redisReply *r
        = gl_redis_cmd (self->redis, "XRANGE %s %s + COUNT %d", self->dead, start, max);
    if (!r)
        return s_err (self, "redis unavailable: %s", gl_redis_errstr (self->redis));
    int rc = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        rc = s_err (self, "dead list: %.200s", r->type == REDIS_REPLY_ERROR && r->str ? r->str
                                                                             : "unexpected reply");
    for (size_t i = 0; rc == 0 && i < r->elements && *count < max; i++) {
        gl_wq_dead_t *d = s_dead_new (self, r->element[i]);
        if (!d) {
            rc = s_err (self, "dead list: malformed entry or out of memory");
            break;
        }
        entries[(*count)++] = d;
    }
    freeReplyObject (r);
    if (rc != 0)
        while (*count > 0)
            gl_wq_dead_free (&entries[--(*count)]);
    return rc;
}

int
gl_wq_dead_replay (gl_wq_t *self, const char *dead_id, char *id_out)
{
    assert (self);
    if (!dead_id || !s_valid_id (dead_id, strlen (dead_id)))
        return s_err (self, "replay: invalid id");
    char maxlen[24], now[24], keymax[16], maxp[24];
    snprintf (maxlen, sizeof maxlen, "%" PRId64, self->opts.max_len);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    snprintf (keymax, sizeof keymax, "%d", GL_WQ_KEY_MAX);
    snprintf (maxp, sizeof maxp, "%zu", self->opts.max_payload);
    const char *argv[] = { self->stream, self->dead, dead_id, maxlen, now, self->mprefix, keymax,
                           maxp };
    redisReply *r = s_eval (self, S_REPLAY, 2, 8, argv, NULL);
    if (!r)
        return -1;
    long long code = -1;
    int rc = -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || gl_redis_reply_int (r->element[0], &code) != 0 || !s_is_str (r->element[1]))
        s_err (self, "replay: unexpected reply");
    else if (code == 2)
        s_err (self, "replay: queue full (max_len %" PRId64 ")", self->opts.max_len);
    else if (code == 3)
        s_err (self, "replay: no such dead letter");
    else if (code == 4)
        s_err (self, "replay: cannot replay (%.100s)", r->element[1]->str);
    else if ((code == 0 || code == 1) && s_is_id (r->element[1])) {
        if (id_out)
            snprintf (id_out, GL_WQ_ID_MAX, "%s", r->element[1]->str);
        rc = (int) code;
    }
    else
        s_err (self, "replay: unexpected reply");
    freeReplyObject (r);
    if (rc == 0)
        gl_info ("wq %s: dead letter %s replayed", self->name, dead_id);
    return rc;
}

int
gl_wq_dead_delete (gl_wq_t *self, const char *dead_id)
{
    assert (self);
    if (!dead_id || !s_valid_id (dead_id, strlen (dead_id)))
        return s_err (self, "dead delete: invalid id");
    redisReply *r = gl_redis_cmd (self->redis, "XDEL %s %s", self->dead, dead_id);
    if (!r)
        return s_err (self, "redis unavailable: %s", gl_redis_errstr (self->redis));
    long long n = 0;
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR)
        rc = s_err (self, "redis: %.200s", r->str ? r->str : "error");
    else if (gl_redis_reply_int (r, &n) != 0 || n != 1)
        rc = s_err (self, "dead delete: no such dead letter");
    freeReplyObject (r);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Metrics and housekeeping

int
gl_wq_stats (gl_wq_t *self, gl_wq_stats_t *stats)
{
    assert (self && stats);
    const char *argv[] = { self->stream, self->dead, S_GROUP };
    redisReply *r = s_eval (self, S_STATS, 2, 3, argv, NULL);
    if (!r)
        return -1;
    long long depth = 0, pending = 0, dead = 0;
    int rc = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3
        || gl_redis_reply_int (r->element[0], &depth) != 0
        || gl_redis_reply_int (r->element[1], &pending) != 0
        || gl_redis_reply_int (r->element[2], &dead) != 0)
        rc = s_err (self, "stats: unexpected reply");
    else
        *stats = (gl_wq_stats_t) { .depth = depth, .pending = pending, .dead = dead };
    freeReplyObject (r);
    return rc;
}

int64_t
gl_wq_depth (gl_wq_t *self)
{
    gl_wq_stats_t stats;
    return gl_wq_stats (self, &stats) == 0 ? stats.depth : -1;
}

int
gl_wq_prune_consumers (gl_wq_t *self, int64_t idle_ms)
{
    assert (self);
    if (idle_ms < 0)
        return s_err (self, "prune: idle_ms must not be negative");
    char idle[24];
    snprintf (idle, sizeof idle, "%" PRId64, idle_ms);
    const char *argv[] = { self->stream, S_GROUP, self->consumer, idle };
    redisReply *r = s_eval (self, S_PRUNE, 1, 4, argv, NULL);
    if (!r)
        return -1;
    long long n = -1;
    int rc = gl_redis_reply_int (r, &n) == 0 && n >= 0 ? (int) n : -1;
    if (rc < 0)
        s_err (self, "prune: unexpected reply");
    freeReplyObject (r);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Items and dead letters

const char *
gl_wq_item_id (const gl_wq_item_t *item)
{
    assert (item);
    return item->id;
}

const char *
gl_wq_item_key (const gl_wq_item_t *item)
{
    assert (item);
    return item->key;
}

const void *
gl_wq_item_payload (const gl_wq_item_t *item, size_t *len)
{
    assert (item);
    if (len)
        *len = item->len;
    return item->payload;
}

int64_t
gl_wq_item_deliveries (const gl_wq_item_t *item)
{
    assert (item);
    return item->deliveries;
}

void
gl_wq_item_free (gl_wq_item_t **item_p)
{
    assert (item_p);
    gl_wq_item_t *item = *item_p;
    if (!item)
        return;
    free (item->key);
    free (item->payload);
    free (item);
    *item_p = NULL;
}

const char *
gl_wq_dead_id (const gl_wq_dead_t *entry)
{
    assert (entry);
    return entry->id;
}

const char *
gl_wq_dead_item_id (const gl_wq_dead_t *entry)
{
    assert (entry);
    return entry->item_id;
}

const char *
gl_wq_dead_item_key (const gl_wq_dead_t *entry)
{
    assert (entry);
    return entry->key;
}

const void *
gl_wq_dead_payload (const gl_wq_dead_t *entry, size_t *len)
{
    assert (entry);
    if (len)
        *len = entry->len;
    return entry->payload;
}

const char *
gl_wq_dead_reason (const gl_wq_dead_t *entry)
{
    assert (entry);
    return entry->reason;
}

const char *
gl_wq_dead_error (const gl_wq_dead_t *entry)
{
    assert (entry);
    return entry->error;
}

int64_t
gl_wq_dead_deliveries (const gl_wq_dead_t *entry)
{
    assert (entry);
    return entry->deliveries;
}

int64_t
gl_wq_dead_when (const gl_wq_dead_t *entry)
{
    assert (entry);
    return entry->when;
}

void
gl_wq_dead_free (gl_wq_dead_t **entry_p)
{
    assert (entry_p);
    gl_wq_dead_t *d = *entry_p;
    if (!d)
        return;
    free (d->key);
    free (d->payload);
    free (d->reason);
    free (d->error);
    free (d);
    *entry_p = NULL;
}
