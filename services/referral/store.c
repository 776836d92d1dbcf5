/*  store — how referral changes Redis: every change is a list of commands (rf_ops_t), run either
    in a subscriber's transaction (gl_tx, with the cursor advance) or by one Lua script that
    first compares the record's version (so two replicas, or a request racing the escalation
    timer, never both apply a change made from the same state), checks the request's
    idempotency marker, runs the commands (the record, its indexes, the outbox entries of its
    events) and stores the request's reply, all or nothing.
*/
#include "referral.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <inttypes.h>
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct _rf_ops_t {
    char **args;        //  n, arg1 … argn, n, …  (counts as decimal strings)
    size_t count, cap;
    size_t commands;
};

rf_ops_t *
rf_ops_new (void)
{
    rf_ops_t *self = calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
rf_ops_destroy (rf_ops_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rf_ops_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free (self->args[i]);
    free (self->args);
    free (self);
    *self_p = NULL;
}

static void
s_push (rf_ops_t *self, const char *s)
{
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 32;
        self->args = realloc (self->args, self->cap * sizeof *self->args);
        assert (self->args);
    }
    self->args[self->count] = strdup (s);
    assert (self->args[self->count]);
    self->count++;
}

void
rf_ops_add (rf_ops_t *self, int argc, ...)
{
    char n[16];
    snprintf (n, sizeof n, "%d", argc);
    s_push (self, n);
    va_list ap;
    va_start (ap, argc);
    for (int i = 0; i < argc; i++)
        s_push (self, va_arg (ap, const char *));
    va_end (ap);
    self->commands++;
}

void
rf_ops_hset_json (rf_ops_t *self, const char *key, const json_t *obj)
{
    size_t n = json_object_size (obj);
    if (n == 0)
        return;
    char count[16];
    snprintf (count, sizeof count, "%zu", 2 + 2 * n);
    s_push (self, count);
    s_push (self, "HSET");
    s_push (self, key);
    const char *field;
    json_t *v;
    json_object_foreach ((json_t *) obj, field, v) {
        char buf[32];
        const char *s = "";
        if (json_is_string (v))
            s = json_string_value (v);
        else if (json_is_integer (v)) {
            snprintf (buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value (v));
            s = buf;
        }
        else if (json_is_boolean (v))
            s = json_is_true (v) ? "1" : "0";
        s_push (self, field);
        s_push (self, s);
    }
    self->commands++;
}

size_t
rf_ops_count (rf_ops_t *self)
{
    return self->commands;
}

int
rf_ops_to_tx (rf_ops_t *self, gl_tx_t *tx)
{
    size_t i = 0;
    while (i < self->count) {
        int n = atoi (self->args[i]);
        if (gl_tx_cmd (tx, n, (const char **) &self->args[i + 1], NULL) < 0)
            return -1;
        i += (size_t) n + 1;
    }
    return 0;
}

//  KEYS[1] the record, KEYS[2] the idempotency key (or the record again when none).
//  ARGV[1] expected version ("" : the record must not exist), ARGV[2] the marker ("" : no
//  idempotency), ARGV[3] the stored reply, ARGV[4] its TTL (ms), ARGV[5..] the op list.
static gl_redis_script_t s_apply = { .source =
    "local v = redis.call('HGET', KEYS[1], 'version')\n"
    "if ARGV[1] == '' then\n"
    "  if v then return 'CONFLICT' end\n"
    "elseif v ~= ARGV[1] then return 'CONFLICT' end\n"
    "if ARGV[2] ~= '' then\n"
    "  local cur = redis.call('GET', KEYS[2])\n"
    "  if cur and cur ~= ARGV[2] then return 'IN_PROGRESS' end\n"
    "end\n"
    "local i = 5\n"
    "while i <= #ARGV do\n"
    "  local n = tonumber(ARGV[i])\n"
    "  redis.call(unpack(ARGV, i + 1, i + n))\n"
    "  i = i + n + 1\n"
    "end\n"
    "if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) end\n"
    "return 'OK'\n" };

rf_store_rc_t
rf_store_apply (gl_redis_t *redis, const char *record_key, const char *version,
                const char *idem_key, const char *marker, const char *idem_value,
                size_t idem_len, int64_t idem_ttl_ms, rf_ops_t *ops)
{
    size_t argc = 6 + ops->count;
    const char **argv = calloc (argc, sizeof *argv);
    size_t *lens = calloc (argc, sizeof *lens);
    assert (argv && lens);
    char ttl[24];
    snprintf (ttl, sizeof ttl, "%lld", (long long) idem_ttl_ms);
    bool idem = idem_key && marker && idem_value;
    argv[0] = record_key;
    argv[1] = idem ? idem_key : record_key;
    argv[2] = version ? version : "";
    argv[3] = idem ? marker : "";
    argv[4] = idem ? idem_value : "";
    argv[5] = ttl;
    for (size_t i = 0; i < ops->count; i++)
        argv[6 + i] = ops->args[i];
    //  The stored reply is msgpack: binary, with its own length.
    for (size_t i = 0; i < argc; i++)
        lens[i] = i == 4 && idem ? idem_len : strlen (argv[i]);
    redisReply *r = gl_redis_eval (redis, &s_apply, 2, (int) argc, argv, lens);
    free (argv);
    free (lens);
    rf_store_rc_t rc = RF_STORE_ERROR;
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) {
        if (strcmp (r->str, "OK") == 0)
            rc = RF_STORE_OK;
        else if (strcmp (r->str, "CONFLICT") == 0)
            rc = RF_STORE_CONFLICT;
        else if (strcmp (r->str, "IN_PROGRESS") == 0)
            rc = RF_STORE_IN_PROGRESS;
    }
    else if (r && r->type == REDIS_REPLY_ERROR)
        gl_error ("referral: store script failed: %s", r->str);
    if (r)
        freeReplyObject (r);
    return rc;
}

json_t *
rf_store_hgetall (gl_redis_t *redis, const char *key, bool *failed)
{
    *failed = false;
    redisReply *r = gl_redis_cmd (redis, "HGETALL %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        *failed = true;
        return NULL;
    }
    json_t *obj = NULL;
    if (r->elements >= 2) {
        obj = json_object ();
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i + 1]->type == REDIS_REPLY_STRING)
                json_object_set_new (obj, r->element[i]->str,
                                     json_stringn (r->element[i + 1]->str, r->element[i + 1]->len));
    }
    freeReplyObject (r);
    return obj;
}

const char *
rf_str (const json_t *rec, const char *field)
{
    const char *s = json_string_value (json_object_get (rec, field));
    return s ? s : "";
}

int64_t
rf_int (const json_t *rec, const char *field)
{
    json_t *v = json_object_get (rec, field);
    if (json_is_integer (v))
        return json_integer_value (v);
    const char *s = json_string_value (v);
    return s && *s ? strtoll (s, NULL, 10) : 0;
}

bool
rf_bool (const json_t *rec, const char *field)
{
    json_t *v = json_object_get (rec, field);
    if (json_is_boolean (v))
        return json_is_true (v);
    const char *s = json_string_value (v);
    return s && strcmp (s, "1") == 0;
}

//  --------------------------------------------------------------------------------------------
//  A change in the making

void
rf_change_init (rf_change_t *c, referral_t *self, const char *id, const char *key,
                const char *by)
{
    assert (c && self && id && key);
    memset (c, 0, sizeof *c);
    c->self = self;
    snprintf (c->id, sizeof c->id, "%s", id);
    snprintf (c->key, sizeof c->key, "%s", key);
    snprintf (c->by, sizeof c->by, "%s", by ? by : "");
    c->set = json_object ();
    c->ops = rf_ops_new ();
    c->now = gl_now_ms ();
}

void
rf_change_clear (rf_change_t *c)
{
    assert (c);
    json_decref (c->rec);
    json_decref (c->set);
    rf_ops_destroy (&c->ops);
    rf_events_drop (&c->evs);
    c->rec = c->set = NULL;
}

void
rf_change_set_str (rf_change_t *c, const char *field, const char *v)
{
    json_object_set_new (c->set, field, json_string (v ? v : ""));
    json_object_set_new (c->rec, field, json_string (v ? v : ""));
}

void
rf_change_set_int (rf_change_t *c, const char *field, int64_t v)
{
    char buf[24];
    snprintf (buf, sizeof buf, "%" PRId64, v);
    rf_change_set_str (c, field, buf);
}

void
rf_change_event (rf_change_t *c, const char *type, const char *id_field, json_t *extra,
                 int flags)
{
    gl_event_t *ev = gl_event_new (type);
    if (!ev) {
        json_decref (extra);
        return;
    }
    gl_event_set_corr (ev, c->id);
    json_object_set_new (ev->data, id_field, json_string (c->id));
    json_object_set_new (ev->data, "unit", json_string (rf_str (c->rec, "unit")));
    json_object_set_new (ev->data, "status", json_string (rf_str (c->rec, "status")));
    if (extra) {
        json_object_update (ev->data, extra);
        json_decref (extra);
    }
    if (rf_events_add (c->self, &c->evs, c->ops, ev, flags) < 0)
        gl_error ("referral: event %s of %s not queued", type, c->id);
}
