/*  docstore — see docstore.h. */
#include "docstore.h"
#include "contacts.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct _docstore_tx_t {
    intake_t *intake;
    json_t *ops;                        //  [{op, key, ...}], strings only
    size_t nevents;
    gl_event_t *events[DOCSTORE_EVENTS_MAX];
    int flags[DOCSTORE_EVENTS_MAX];
    bool failed;                        //  out of memory, or too many events
};

//  ARGV[1]: the operations, as JSON. Checks first (versions, the claim, hsetnx fields), then
//  writes; returns {code, value}.
static gl_redis_script_t s_commit = {
    .source =
        "local ops = cjson.decode(ARGV[1])\n"
        "for _, o in ipairs(ops) do\n"
        "  if o.op == 'put' then\n"
        "    local v = redis.call('HGET', o.key, 'v')\n"
        "    local have = v and tonumber(v) or 0\n"
        "    if have ~= tonumber(o.expect) then return {2, ''} end\n"
        "  elseif o.op == 'claim' then\n"
        "    local v = redis.call('GET', o.key)\n"
        "    if v then return {1, v} end\n"
        "  elseif o.op == 'hsetnx' then\n"
        "    if redis.call('HEXISTS', o.key, o.field) == 1 then return {3, ''} end\n"
        "  end\n"
        "end\n"
        "for _, o in ipairs(ops) do\n"
        "  if o.op == 'put' then redis.call('HSET', o.key, 'doc', o.doc, 'v', o.v)\n"
        "  elseif o.op == 'zadd' then redis.call('ZADD', o.key, o.score, o.member)\n"
        "  elseif o.op == 'zrem' then redis.call('ZREM', o.key, o.member)\n"
        "  elseif o.op == 'sadd' then redis.call('SADD', o.key, o.member)\n"
        "  elseif o.op == 'srem' then redis.call('SREM', o.key, o.member)\n"
        "  elseif o.op == 'hset' or o.op == 'hsetnx' then\n"
        "    redis.call('HSET', o.key, o.field, o.value)\n"
        "  elseif o.op == 'claim' then redis.call('SET', o.key, o.value, 'PX', o.ttl)\n"
        "  end\n"
        "end\n"
        "return {0, ''}\n"
};

//  --------------------------------------------------------------------------------------------
//  Reads

static json_t *
s_doc_of (const redisReply *r, int64_t *version, const char *what)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    json_error_t err;
    json_t *doc = json_loadb (r->element[0]->str, r->element[0]->len, 0, &err);
    if (!json_is_object (doc)) {
        gl_error ("docstore: %s holds no JSON object", what);
        json_decref (doc);
        return NULL;
    }
    long long v = 0;
    if (version)
        *version = gl_redis_reply_int (r->element[1], &v) == 0 ? (int64_t) v : 0;
    return doc;
}

int
docstore_read (intake_t *intake, const char *key, json_t **doc, int64_t *version)
{
    assert (intake && key && doc);
    *doc = NULL;
    redisReply *r = gl_redis_cmd (intake->redis, "HMGET %s doc v", key);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        freeReplyObject (r);
        return -1;
    }
    if (r->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject (r);
        return 1;
    }
    *doc = s_doc_of (r, version, "a record");
    freeReplyObject (r);
    return *doc ? 0 : -1;
}

int
docstore_read_many (intake_t *intake, const char *const *keys, size_t n, json_t **docs)
{
    assert (intake && (keys || n == 0) && (docs || n == 0));
    for (size_t i = 0; i < n; i++)
        docs[i] = NULL;
    for (size_t i = 0; i < n; i++)
        if (gl_redis_append (intake->redis, "HMGET %s doc v", keys[i]) != 0)
            return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = gl_redis_reply (intake->redis);
        if (!r) {
            rc = -1;
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY)
            rc = -1;
        else
            docs[i] = s_doc_of (r, NULL, "a record");
        freeReplyObject (r);
    }
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            json_decref (docs[i]), docs[i] = NULL;
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Transactions

docstore_tx_t *
docstore_tx_new (intake_t *intake)
{
    assert (intake);
    docstore_tx_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->intake = intake;
    self->ops = json_array ();
    if (!self->ops) {
        free (self);
        return NULL;
    }
    return self;
}

void
docstore_tx_destroy (docstore_tx_t **self_p)
{
    docstore_tx_t *self = *self_p;
    if (!self)
        return;
    json_decref (self->ops);
    for (size_t i = 0; i < self->nevents; i++)
        gl_event_destroy (&self->events[i]);
    free (self);
    *self_p = NULL;
}

static void
s_add (docstore_tx_t *self, json_t *op)
{
    if (!op || json_array_append_new (self->ops, op) != 0)
        self->failed = true;
}

static void
s_num (char *buf, size_t len, int64_t n)
{
    snprintf (buf, len, "%" PRId64, n);
}

void
docstore_tx_put (docstore_tx_t *self, const char *key, const json_t *doc, int64_t expect,
                 int64_t new_version)
{
    assert (self && key && doc);
    char *text = json_dumps (doc, JSON_COMPACT);
    char e[24], v[24];
    s_num (e, sizeof e, expect);
    s_num (v, sizeof v, new_version);
    s_add (self, text ? json_pack ("{s:s, s:s, s:s, s:s, s:s}", "op", "put", "key", key, "doc",
                                   text, "expect", e, "v", v)
                      : NULL);
    free (text);
}

void
docstore_tx_zadd (docstore_tx_t *self, const char *key, int64_t score, const char *member)
{
    char s[24];
    s_num (s, sizeof s, score);
    s_add (self, json_pack ("{s:s, s:s, s:s, s:s}", "op", "zadd", "key", key, "score", s,
                            "member", member));
}

static void
s_member_op (docstore_tx_t *self, const char *op, const char *key, const char *member)
{
    s_add (self, json_pack ("{s:s, s:s, s:s}", "op", op, "key", key, "member", member));
}

void
docstore_tx_zrem (docstore_tx_t *self, const char *key, const char *member)
{
    s_member_op (self, "zrem", key, member);
}

void
docstore_tx_sadd (docstore_tx_t *self, const char *key, const char *member)
{
    s_member_op (self, "sadd", key, member);
}

void
docstore_tx_srem (docstore_tx_t *self, const char *key, const char *member)
{
    s_member_op (self, "srem", key, member);
}

void
docstore_tx_hset (docstore_tx_t *self, const char *key, const char *field, const char *value)
{
    s_add (self, json_pack ("{s:s, s:s, s:s, s:s}", "op", "hset", "key", key, "field", field,
                            "value", value));
}

void
docstore_tx_hsetnx (docstore_tx_t *self, const char *key, const char *field, const char *value)
{
    s_add (self, json_pack ("{s:s, s:s, s:s, s:s}", "op", "hsetnx", "key", key, "field", field,
                            "value", value));
}

void
docstore_tx_claim (docstore_tx_t *self, const char *key, const char *value, int64_t ttl_ms)
{
    char t[24];
    s_num (t, sizeof t, ttl_ms);
    s_add (self, json_pack ("{s:s, s:s, s:s, s:s}", "op", "claim", "key", key, "value", value,
                            "ttl", t));
}

void
docstore_tx_event (docstore_tx_t *self, gl_event_t **ev_p, int flags)
{
    assert (self && ev_p);
    gl_event_t *ev = *ev_p;
    *ev_p = NULL;
    if (!ev || self->nevents == DOCSTORE_EVENTS_MAX) {
        gl_event_destroy (&ev);
        self->failed = true;
        return;
    }
    char *entry = contacts_outbox_entry (self->intake, ev, flags);
    if (!entry) {
        gl_event_destroy (&ev);
        self->failed = true;
        return;
    }
    docstore_tx_hset (self, CONTACTS_PREFIX "outbox", ev->id, entry);
    free (entry);
    self->flags[self->nevents] = flags;
    self->events[self->nevents++] = ev;
}

int
docstore_tx_commit (docstore_tx_t **self_p, char *stored, size_t stored_len)
{
    assert (self_p && *self_p);
    docstore_tx_t *self = *self_p;
    int rc = -1;
    char *text = self->failed ? NULL : json_dumps (self->ops, JSON_COMPACT);
    redisReply *r = NULL;
    if (text) {
        const char *argv[] = { text };
        r = gl_redis_eval (self->intake->redis, &s_commit, 0, 1, argv, NULL);
    }
    long long code = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2
        && gl_redis_reply_int (r->element[0], &code) == 0) {
        rc = (int) code;
        if (rc == 1 && stored && r->element[1]->type == REDIS_REPLY_STRING)
            snprintf (stored, stored_len, "%s", r->element[1]->str);
    }
    else if (r)
        gl_error ("docstore: commit failed: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (r)
        freeReplyObject (r);
    free (text);
    if (rc == 0)
        for (size_t i = 0; i < self->nevents; i++)
            contacts_outbox_deliver (self->intake, self->events[i], self->flags[i]);
    docstore_tx_destroy (self_p);
    return rc < -1 || rc > 3 ? -1 : rc;
}

//  --------------------------------------------------------------------------------------------
//  Pages

//  The cursor text is "<score> <id>": the last index entry looked at.
static int
s_parse_cursor (const char *text, int64_t *score, char *id)
{
    const char *space = strchr (text, ' ');
    if (!space || space == text || space - text > 15 || !gl_id_valid (space + 1))
        return -1;
    for (const char *p = text; p < space; p++)
        if (*p < '0' || *p > '9')
            return -1;
    *score = (int64_t) strtoll (text, NULL, 10);
    memcpy (id, space + 1, GL_ID_LEN + 1);
    return 0;
}

int
docstore_page (intake_t *intake, const char *index, const char *prefix, const http_page_t *page,
               docstore_filter_fn *filter, void *arg, json_t **items, char *next_cursor)
{
    assert (intake && index && prefix && page && filter && items && next_cursor);
    *items = NULL;
    *next_cursor = 0;
    int64_t cur_score = -1;
    char cur_id[GL_ID_LEN + 1] = "";
    if (page->has_cursor && s_parse_cursor (page->cursor, &cur_score, cur_id) != 0)
        return 1;
    char hi[24] = "+inf";
    if (cur_score >= 0)
        s_num (hi, sizeof hi, cur_score);
    json_t *out = json_array ();
    size_t offset = 0, scanned = 0;
    bool exhausted = false, failed = !out;
    char last[GL_ID_LEN + 24] = "";
    while (!failed && (int) json_array_size (out) < page->limit && scanned < DOCSTORE_SCAN_MAX) {
        char off[24], count[24];
        snprintf (off, sizeof off, "%zu", offset);
        snprintf (count, sizeof count, "%d", DOCSTORE_BATCH);
        const char *argv[] = { "ZREVRANGEBYSCORE", index, hi, "-inf", "WITHSCORES", "LIMIT", off,
                               count };
        redisReply *r = gl_redis_cmdargv (intake->redis, 8, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject (r);
            failed = true;
            break;
        }
        size_t got = r->elements / 2;
        offset += got;
        exhausted = got < DOCSTORE_BATCH;
        char keys[DOCSTORE_BATCH][128];
        const char *keyp[DOCSTORE_BATCH];
        const char *ids[DOCSTORE_BATCH];
        int64_t scores[DOCSTORE_BATCH];
        size_t n = 0;
        for (size_t i = 0; i < got; i++) {
            const redisReply *m = r->element[2 * i], *s = r->element[2 * i + 1];
            if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING
                || !gl_id_valid (m->str))
                continue;
            int64_t score = (int64_t) strtoll (s->str, NULL, 10);
            //  Entries up to and including the cursor were on earlier pages.
            if (cur_score >= 0 && score == cur_score && strcmp (m->str, cur_id) >= 0)
                continue;
            snprintf (keys[n], sizeof keys[n], "%s%s", prefix, m->str);
            keyp[n] = keys[n];
            ids[n] = m->str;
            scores[n++] = score;
        }
        json_t *docs[DOCSTORE_BATCH];
        if (docstore_read_many (intake, keyp, n, docs) != 0)
            failed = true;
        for (size_t i = 0; !failed && i < n; i++) {
            if ((int) json_array_size (out) >= page->limit || scanned >= DOCSTORE_SCAN_MAX) {
                exhausted = false;
                break;
            }
            scanned++;
            snprintf (last, sizeof last, "%" PRId64 " %s", scores[i], ids[i]);
            json_t *item = NULL;
            if (docs[i] && filter (intake, arg, docs[i], &item))
                json_array_append_new (out, item ? item : json_deep_copy (docs[i]));
            else
                json_decref (item);
        }
        for (size_t i = 0; !failed && i < n; i++)
            json_decref (docs[i]);
        freeReplyObject (r);
        if (exhausted)
            break;
    }
    if (failed) {
        json_decref (out);
        return -1;
    }
    *items = out;
    if (!exhausted && *last)
        snprintf (next_cursor, HTTP_CURSOR_MAX + 1, "%s", last);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Helpers

const char *
docstore_str (const json_t *doc, const char *name)
{
    return json_string_value (json_object_get (doc, name));
}

int64_t
docstore_int (const json_t *doc, const char *name, int64_t def)
{
    const json_t *v = json_object_get (doc, name);
    return json_is_integer (v) ? (int64_t) json_integer_value (v) : def;
}

bool
docstore_code_valid (const char *s, size_t max)
{
    size_t n = s ? strlen (s) : 0;
    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                  || (i > 0 && (c == '_' || c == '.' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

int
docstore_query_ms (http_req_t *req, const char *name, int64_t *out)
{
    const char *s = http_query (req, name);
    if (!s)
        return 0;
    size_t n = strlen (s);
    bool ok = n >= 1 && n <= 15;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= '0' && s[i] <= '9';
    if (!ok) {
        http_reply_error (req, 400, "invalid_parameter",
                          "a time is unix milliseconds (digits only)", name);
        return -1;
    }
    *out = (int64_t) strtoll (s, NULL, 10);
    return 0;
}

int
docstore_query_bool (http_req_t *req, const char *name, bool *out)
{
    const char *s = http_query (req, name);
    if (!s)
        return 0;
    if (strcmp (s, "true") == 0 || strcmp (s, "false") == 0) {
        *out = strcmp (s, "true") == 0;
        return 0;
    }
    http_reply_error (req, 400, "invalid_parameter", "must be true or false", name);
    return -1;
}

int
docstore_unavailable (http_req_t *req)
{
    return http_reply_error (req, 503, "unavailable", "storage unreachable; retry", NULL);
}
