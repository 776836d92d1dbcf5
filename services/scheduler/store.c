/*  store — every write scheduler makes goes through one Lua script, so that a change, the events
    that tell about it (outbox entries, gl_outbox.h) and the stored reply to the request that
    asked for it (gl_rep.h, "Exactly-once effects") happen in one atomic step or not at all.

    The script first checks guards (nothing is written when one fails):
      ver     the record's "version" field still holds what the handler read (optimistic
              concurrency: two replicas, or a handler racing a timer, cannot both apply);
      cap     a slot's booked count is below its capacity (the last-place race: Redis runs one
              script at a time, so exactly one of two racing bookings passes);
      free    the person holds no booked appointment overlapping the new one;
      absent  a hash field does not exist yet;
      zhas    a due item is still in its sorted set (a reminder or an expired lease that another
              replica has not handled already);
    then runs the commands, writes the outbox entries and, when the request had an idempotency
    key, the stored reply. Keys are passed as arguments (KEYS holds the idempotency key and the
    outbox): every key carries the {scheduler} hash tag, so the script stays on one Cluster slot. The idempotency key must hold this request's marker or nothing: a
    request that lost its marker to a retry does not apply twice.
*/
#include "scheduler.h"
#include "gl/gl_log.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static gl_redis_script_t s_write = { .source =
    "local a = ARGV\n"
    "if KEYS[1] ~= '-' then\n"
    "  local cur = redis.call('GET', KEYS[1])\n"
    "  if cur and cur ~= a[1] then return 0 end\n"
    "end\n"
    "local i = 4\n"
    "local g = tonumber(a[i]); i = i + 1\n"
    "for _ = 1, g do\n"
    "  local kind = a[i]\n"
    "  if kind == 'ver' then\n"
    "    local v = redis.call('HGET', a[i+1], 'version') or '0'\n"
    "    if v ~= a[i+2] then return -1 end\n"
    "    i = i + 3\n"
    "  elseif kind == 'cap' then\n"
    "    local n = tonumber(redis.call('HGET', a[i+1], a[i+2]) or '0')\n"
    "    if n >= tonumber(a[i+3]) then return -2 end\n"
    "    i = i + 4\n"
    "  elseif kind == 'free' then\n"
    "    local s = tonumber(a[i+2])\n"
    "    local ids = redis.call('ZRANGEBYSCORE', a[i+1], s - 86400000, '(' .. a[i+3])\n"
    "    for _, id in ipairs(ids) do\n"
    "      if id ~= a[i+4] then\n"
    "        local rec = redis.call('HMGET', a[i+5] .. id, 'end', 'status')\n"
    "        if rec[2] == 'booked' and tonumber(rec[1] or '0') > s then return -3 end\n"
    "      end\n"
    "    end\n"
    "    i = i + 6\n"
    "  elseif kind == 'zhas' then\n"
    "    if not redis.call('ZSCORE', a[i+1], a[i+2]) then return -5 end\n"
    "    i = i + 3\n"
    "  elseif kind == 'absent' then\n"
    "    if redis.call('HEXISTS', a[i+1], a[i+2]) == 1 then return -4 end\n"
    "    i = i + 3\n"
    "  else\n"
    "    return redis.error_reply('bad guard')\n"
    "  end\n"
    "end\n"
    "local c = tonumber(a[i]); i = i + 1\n"
    "for _ = 1, c do\n"
    "  local n = tonumber(a[i])\n"
    "  redis.call(unpack(a, i + 1, i + n))\n"
    "  i = i + n + 1\n"
    "end\n"
    "local e = tonumber(a[i]); i = i + 1\n"
    "for _ = 1, e do\n"
    "  redis.call('HSET', KEYS[2], a[i], a[i+1]); i = i + 2\n"
    "end\n"
    "if a[2] ~= '' then redis.call('SET', KEYS[1], a[2], 'PX', a[3]) end\n"
    "return 1\n" };

//  A growable vector of byte strings.
typedef struct {
    char **v;
    size_t *len;
    size_t n, cap;
    bool oom;
} s_vec_t;

static void
s_push (s_vec_t *vec, const char *s, size_t len)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 32;
        char **v = realloc (vec->v, cap * sizeof *v);
        size_t *l = v ? realloc (vec->len, cap * sizeof *l) : NULL;
        if (v)
            vec->v = v;
        if (!v || !l) {
            vec->oom = true;
            return;
        }
        vec->len = l;
        vec->cap = cap;
    }
    char *copy = malloc (len + 1);
    if (!copy) {
        vec->oom = true;
        return;
    }
    memcpy (copy, s, len);
    copy[len] = 0;
    vec->v[vec->n] = copy;
    vec->len[vec->n++] = len;
}

static void
s_pushs (s_vec_t *vec, const char *s)
{
    s_push (vec, s, strlen (s));
}

static void
s_pushi (s_vec_t *vec, int64_t n)
{
    char buf[24];
    snprintf (buf, sizeof buf, "%lld", (long long) n);
    s_pushs (vec, buf);
}

static void
s_clear (s_vec_t *vec)
{
    for (size_t i = 0; i < vec->n; i++)
        free (vec->v[i]);
    vec->n = 0;
    vec->oom = false;
}

static void
s_free (s_vec_t *vec)
{
    s_clear (vec);
    free (vec->v);
    free (vec->len);
    memset (vec, 0, sizeof *vec);
}

#define S_EVENTS_MAX 64

struct _sched_write_t {
    s_vec_t guards;
    size_t guard_count;
    s_vec_t cmds;
    size_t cmd_count;
    gl_event_t *events[S_EVENTS_MAX];
    size_t event_count;
    char idem_key[600];
    char marker[64];
    char *reply;
    size_t reply_len;
    int64_t reply_ttl;
    bool overflow;
};

sched_write_t *
sched_write_new (void)
{
    return calloc (1, sizeof (sched_write_t));
}

void
sched_write_reset (sched_write_t *self)
{
    s_clear (&self->guards);
    s_clear (&self->cmds);
    self->guard_count = self->cmd_count = 0;
    for (size_t i = 0; i < self->event_count; i++)
        gl_event_destroy (&self->events[i]);
    self->event_count = 0;
    free (self->reply);
    self->reply = NULL;
    self->reply_len = 0;
    self->idem_key[0] = 0;
    self->overflow = false;
}

void
sched_write_destroy (sched_write_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sched_write_t *self = *self_p;
    sched_write_reset (self);
    s_free (&self->guards);
    s_free (&self->cmds);
    free (self);
    *self_p = NULL;
}

void
sched_write_ver (sched_write_t *self, const char *key, int64_t expected)
{
    s_pushs (&self->guards, "ver");
    s_pushs (&self->guards, key);
    s_pushi (&self->guards, expected);
    self->guard_count++;
}

void
sched_write_cap (sched_write_t *self, const char *key, const char *field, int max)
{
    s_pushs (&self->guards, "cap");
    s_pushs (&self->guards, key);
    s_pushs (&self->guards, field);
    s_pushi (&self->guards, max);
    self->guard_count++;
}

void
sched_write_free (sched_write_t *self, const char *key, int64_t start, int64_t end,
                  const char *self_id)
{
    s_pushs (&self->guards, "free");
    s_pushs (&self->guards, key);
    s_pushi (&self->guards, start);
    s_pushi (&self->guards, end);
    s_pushs (&self->guards, self_id ? self_id : "");
    s_pushs (&self->guards, SCHED_PREFIX "appt:");
    self->guard_count++;
}

void
sched_write_absent (sched_write_t *self, const char *key, const char *field)
{
    s_pushs (&self->guards, "absent");
    s_pushs (&self->guards, key);
    s_pushs (&self->guards, field);
    self->guard_count++;
}

void
sched_write_zhas (sched_write_t *self, const char *key, const char *member)
{
    s_pushs (&self->guards, "zhas");
    s_pushs (&self->guards, key);
    s_pushs (&self->guards, member);
    self->guard_count++;
}

void
sched_write_cmd (sched_write_t *self, int argc, const char **argv)
{
    s_pushi (&self->cmds, argc);
    for (int i = 0; i < argc; i++)
        s_pushs (&self->cmds, argv[i] ? argv[i] : "");
    self->cmd_count++;
}

void
sched_write_cmdv (sched_write_t *self, const char *first, ...)
{
    const char *argv[24];
    int argc = 0;
    va_list ap;
    va_start (ap, first);
    for (const char *s = first; s && argc < 24; s = va_arg (ap, const char *))
        argv[argc++] = s;
    va_end (ap);
    sched_write_cmd (self, argc, argv);
}

void
sched_write_event (sched_write_t *self, gl_event_t **ev_p)
{
    if (self->event_count == S_EVENTS_MAX) {
        self->overflow = true;
        gl_event_destroy (ev_p);
        return;
    }
    self->events[self->event_count++] = *ev_p;
    *ev_p = NULL;
}

void
sched_write_reply (sched_write_t *self, scheduler_t *sched, const gl_rep_request_t *req,
                   int status, const json_t *body)
{
    free (self->reply);
    self->reply = NULL;
    self->idem_key[0] = 0;
    //  No key, or idempotency off: nothing to store.
    if (!req || !req->key[0]
        || gl_rep_idem_key (sched->rep, req, self->idem_key, sizeof self->idem_key) != 0) {
        self->idem_key[0] = 0;
        return;
    }
    if (gl_rep_idem_encode (req, status, body, NULL, &self->reply, &self->reply_len) != 0
        || gl_rep_idem_marker (req, self->marker, sizeof self->marker) != 0)
        self->overflow = true;
}

sched_write_rc_t
sched_write_run (scheduler_t *sched, sched_write_t *self)
{
    if (self->overflow || self->guards.oom || self->cmds.oom)
        return SCHED_WRITE_ERROR;
    s_vec_t argv = { 0 };
    //  KEYS[1]: the idempotency key, gl_rep's "<prefix><op>:<key>", or "-" for none
    bool with_reply = self->idem_key[0] && self->reply;
    s_pushs (&argv, with_reply ? self->idem_key : "-");
    s_pushs (&argv, gl_outbox_key (sched->outbox));
    s_pushs (&argv, with_reply ? self->marker : "");
    if (with_reply)
        s_push (&argv, self->reply, self->reply_len);
    else
        s_pushs (&argv, "");
    s_pushi (&argv, gl_rep_idem_ttl_ms (sched->rep) > 0 ? gl_rep_idem_ttl_ms (sched->rep)
                                                         : 86400000);
    s_pushi (&argv, (int64_t) self->guard_count);
    for (size_t i = 0; i < self->guards.n; i++)
        s_push (&argv, self->guards.v[i], self->guards.len[i]);
    s_pushi (&argv, (int64_t) self->cmd_count);
    for (size_t i = 0; i < self->cmds.n; i++)
        s_push (&argv, self->cmds.v[i], self->cmds.len[i]);
    s_pushi (&argv, (int64_t) self->event_count);
    for (size_t i = 0; i < self->event_count; i++) {
        char *entry = gl_outbox_entry (sched->outbox, self->events[i], 0);
        if (!entry) {
            argv.oom = true;
            break;
        }
        s_pushs (&argv, self->events[i]->id);
        s_pushs (&argv, entry);
        free (entry);
    }
    if (argv.oom) {
        s_free (&argv);
        return SCHED_WRITE_ERROR;
    }
    redisReply *r = gl_redis_eval (sched->redis, &s_write, 2, (int) argv.n, (const char **) argv.v,
                       argv.len);
    s_free (&argv);
    long long rc = -9;
    if (!r || gl_redis_reply_int (r, &rc) != 0) {
        gl_warn ("scheduler: write failed: %s",
                 !r ? gl_redis_errstr (sched->redis)
                    : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        rc = SCHED_WRITE_ERROR;
    }
    if (r)
        freeReplyObject (r);
    if (rc == SCHED_WRITE_OK)
        for (size_t i = 0; i < self->event_count; i++)
            gl_outbox_deliver (sched->outbox, self->events[i], 0);
    return (sched_write_rc_t) rc;
}
