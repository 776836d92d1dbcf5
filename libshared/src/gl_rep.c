/*  gl_rep — see gl_rep.h. The wire format is documented in docs/events.md ("Requests").

    Where is what: gl_rep_parse_request (the frame -> gl_rep_request_t, every rule of the wire
    format), s_drain (socket -> queue, stamping arrival), s_process (the checks in order, the
    handler, the answer), s_idem_* (the stored replies in Redis).
*/
#include "gl/gl_rep.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_msgpack.h"
#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DIGEST 32             //  BLAKE2b-256 for tokens and request bodies
#define S_MARKER "pending:"

typedef struct {
    char op[GL_REQ_OP_MAX + 1];
    gl_rep_fn *fn;
    void *arg;
} s_handler_t;

//  A request read off the socket, waiting for its turn.
typedef struct {
    zframe_t *identity;
    zframe_t *payload;
    int64_t received_ms;
} s_item_t;

//  Claim the key for a request, or return what is there: a stored reply or another request's
//  pending marker. KEYS[1] key; ARGV[1] our marker, ARGV[2] marker lifetime (ms).
static const char *s_claim_lua =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then return cur end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return false\n";

//  Replace our own marker with the stored reply (or remove it when ARGV[2] is empty). A stored
//  reply already there (written by the handler with its effect, or by another request after our
//  marker expired) is left alone. KEYS[1] key; ARGV[1] our marker, ARGV[2] value, ARGV[3] ms.
static const char *s_finish_lua =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == ARGV[1] then\n"
    "  if ARGV[2] == '' then redis.call('DEL', KEYS[1])\n"
    "  else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end\n"
    "  return 1\n"
    "end\n"
    "if not cur and ARGV[2] ~= '' then\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

struct _gl_rep_t {
    zsock_t *sock;
    char *endpoint;
    gl_mp_limits_t limits;
    zlist_t *queue;             //  s_item_t, oldest first
    size_t queue_max;
    s_handler_t *handlers;
    size_t nhandlers;
    unsigned char *tokens;      //  ntokens digests of S_DIGEST bytes
    size_t ntokens;
    gl_redis_t *redis;          //  borrowed; NULL when idempotency is off
    char *idem_prefix;
    int64_t idem_ttl_ms;
    gl_redis_script_t claim;    //  per instance: the script caches its SHA1
    gl_redis_script_t finish;
    gl_rep_stats_t stats;
};

static void
s_item_destroy (s_item_t **item_p)
{
    s_item_t *item = *item_p;
    if (!item)
        return;
    zframe_destroy (&item->identity);
    zframe_destroy (&item->payload);
    free (item);
    *item_p = NULL;
}

gl_rep_t *
gl_rep_new (const char *bind_endpoint)
{
    return gl_rep_new_curve (bind_endpoint, NULL);
}

gl_rep_t *
gl_rep_new_curve (const char *bind_endpoint, gl_curve_t *curve)
{
    assert (bind_endpoint);
    gl_rep_t *self = calloc (1, sizeof (gl_rep_t));
    if (!self)
        return NULL;
    self->limits = gl_mp_limits_default ();
    self->queue_max = GL_REP_QUEUE_DEFAULT;
    self->queue = zlist_new ();
    self->claim.source = s_claim_lua;
    self->finish.source = s_finish_lua;
    self->sock = zsock_new (ZMQ_ROUTER);
    if (!self->queue || !self->sock) {
        gl_rep_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->sock, 0);
    zsock_set_sndhwm (self->sock, GL_REP_HWM_DEFAULT);
    zsock_set_rcvhwm (self->sock, GL_REP_HWM_DEFAULT);
    //  A peer that sends a larger frame is disconnected by libzmq before we allocate it.
    zsock_set_maxmsgsize (self->sock, (int) self->limits.max_bytes);
    zsock_set_router_mandatory (self->sock, 0);
    zsock_set_sndtimeo (self->sock, 0);
    zsock_set_rcvtimeo (self->sock, 0);
    if (curve && gl_curve_server (curve, self->sock) != 0) {
        gl_rep_destroy (&self);
        return NULL;
    }
    if (zsock_bind (self->sock, "%s", bind_endpoint) < 0) {
        gl_error ("rep: cannot bind %s: %s", bind_endpoint, zmq_strerror (errno));
        gl_rep_destroy (&self);
        return NULL;
    }
    self->endpoint = zsock_last_endpoint (self->sock);
    if (!self->endpoint) {
        gl_rep_destroy (&self);
        return NULL;
    }
    return self;
}

void
gl_rep_destroy (gl_rep_t **self_p)
{
    assert (self_p);
    gl_rep_t *self = *self_p;
    if (!self)
        return;
    if (self->queue) {
        s_item_t *item;
        while ((item = zlist_pop (self->queue)))
            s_item_destroy (&item);
        zlist_destroy (&self->queue);
    }
    zsock_destroy (&self->sock);
    zstr_free (&self->endpoint);
    free (self->handlers);
    free (self->tokens);
    free (self->idem_prefix);
    free (self);
    *self_p = NULL;
}

const char *
gl_rep_endpoint (gl_rep_t *self)
{
    assert (self);
    return self->endpoint;
}

zsock_t *
gl_rep_sock (gl_rep_t *self)
{
    assert (self);
    return self->sock;
}

size_t
gl_rep_pending (gl_rep_t *self)
{
    assert (self);
    return zlist_size (self->queue);
}

void
gl_rep_stats (gl_rep_t *self, gl_rep_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
}

void
gl_rep_set_queue_max (gl_rep_t *self, size_t queue_max)
{
    assert (self);
    self->queue_max = queue_max > 0 ? queue_max : 1;
}

static s_handler_t *
s_handler (gl_rep_t *self, const char *op)
{
    for (size_t i = 0; i < self->nhandlers; i++)
        if (strcmp (self->handlers[i].op, op) == 0)
            return &self->handlers[i];
    return NULL;
}

int
gl_rep_on (gl_rep_t *self, const char *op, gl_rep_fn *fn, void *arg)
{
    assert (self && fn);
    if (!gl_req_op_valid (op) || s_handler (self, op))
        return -1;
    s_handler_t *grown = realloc (self->handlers, sizeof (s_handler_t) * (self->nhandlers + 1));
    if (!grown)
        return -1;
    self->handlers = grown;
    s_handler_t *h = &self->handlers[self->nhandlers++];
    snprintf (h->op, sizeof h->op, "%s", op);
    h->fn = fn;
    h->arg = arg;
    return 0;
}

void
gl_rep_set_tokens (gl_rep_t *self, const char *list)
{
    assert (self);
    int rc = sodium_init ();
    assert (rc >= 0);
    (void) rc;
    free (self->tokens);
    self->tokens = NULL;
    self->ntokens = 0;
    if (!list || !*list)
        return;
    size_t max = 1;
    for (const char *p = list; *p; p++)
        max += *p == ',';
    self->tokens = calloc (max, S_DIGEST);
    assert (self->tokens);
    const char *p = list;
    while (*p) {
        const char *end = strchr (p, ',');
        if (!end)
            end = p + strlen (p);
        const char *start = p;
        const char *stop = end;
        while (start < stop && *start == ' ')
            start++;
        while (stop > start && stop[-1] == ' ')
            stop--;
        if (stop > start)
            crypto_generichash (self->tokens + S_DIGEST * self->ntokens++, S_DIGEST,
                                (const unsigned char *) start, (size_t) (stop - start), NULL, 0);
        p = *end ? end + 1 : end;
    }
}

void
gl_rep_set_idempotency (gl_rep_t *self, gl_redis_t *redis, const char *prefix, int64_t ttl_ms)
{
    assert (self);
    free (self->idem_prefix);
    self->idem_prefix = NULL;
    self->redis = redis;
    self->idem_ttl_ms = 0;
    if (!redis)
        return;
    //  Bounded so that prefix + op + ":" + key always fits the key buffer in s_run.
    assert (prefix && strlen (prefix) <= 256 && ttl_ms > 0);
    self->idem_prefix = strdup (prefix);
    assert (self->idem_prefix);
    self->idem_ttl_ms = ttl_ms;
}

int64_t
gl_rep_idem_ttl_ms (gl_rep_t *self)
{
    assert (self);
    return self->idem_ttl_ms;
}

//  --------------------------------------------------------------------------------------------
//  Parsing

static int
s_fail (gl_rep_error_t *err, const char *code, const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_fail (gl_rep_error_t *err, const char *code, const char *field, const char *fmt, ...)
{
    snprintf (err->code, sizeof err->code, "%s", code);
    snprintf (err->field, sizeof err->field, "%s", field);
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err->message, sizeof err->message, fmt, ap);
    va_end (ap);
    return -1;
}

//  A string member no longer than max, copied into out (max + 1 bytes). -1 if absent or wrong.
static int
s_copy_str (const json_t *root, const char *name, size_t max, char *out)
{
    const json_t *v = json_object_get (root, name);
    if (!json_is_string (v) || json_string_length (v) > max)
        return -1;
    memcpy (out, json_string_value (v), json_string_length (v) + 1);
    return 0;
}

static int
s_parse (json_t *root, gl_rep_request_t *req, gl_rep_error_t *err)
{
    if (!json_is_object (root))
        return s_fail (err, "bad_request", "", "request is not a map");
    //  The id first: without it there is no one to answer.
    const json_t *id = json_object_get (root, "id");
    if (!json_is_string (id) || !gl_id_valid (json_string_value (id)))
        return s_fail (err, "bad_request", "id", "id must be 32 lowercase hex digits");
    memcpy (req->id, json_string_value (id), GL_ID_LEN + 1);

    static const char *known[] = { "v", "id", "op", "key", "ttl", "auth", "body" };
    const char *name;
    json_t *value;
    json_object_foreach (root, name, value) {
        bool found = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            found = found || strcmp (name, known[i]) == 0;
        if (!found)
            return s_fail (err, "bad_request", name, "unknown key in request");
    }
    const json_t *v = json_object_get (root, "v");
    if (!json_is_integer (v))
        return s_fail (err, "bad_request", "v", "v must be an unsigned integer");
    if (json_integer_value (v) != GL_REQ_VERSION)
        return s_fail (err, "bad_version", "v", "version %d is the only one supported",
                       GL_REQ_VERSION);
    if (s_copy_str (root, "op", GL_REQ_OP_MAX, req->op) != 0 || !gl_req_op_valid (req->op))
        return s_fail (err, "bad_request", "op",
                       "op must be a dotted name of 1..%d characters [a-z0-9_.]", GL_REQ_OP_MAX);
    if (s_copy_str (root, "key", GL_REQ_KEY_MAX, req->key) != 0 || !gl_req_key_valid (req->key))
        return s_fail (err, "bad_request", "key",
                       "key must be a string of 0..%d printable ASCII characters", GL_REQ_KEY_MAX);
    const json_t *ttl = json_object_get (root, "ttl");
    if (!json_is_integer (ttl) || json_integer_value (ttl) < 0
        || json_integer_value (ttl) > GL_REQ_TTL_MAX)
        return s_fail (err, "bad_request", "ttl", "ttl must be an integer in 0..%d (ms)",
                       GL_REQ_TTL_MAX);
    req->ttl_ms = (int64_t) json_integer_value (ttl);
    if (s_copy_str (root, "auth", GL_REQ_AUTH_MAX, req->auth) != 0)
        return s_fail (err, "bad_request", "auth", "auth must be a string of 0..%d bytes",
                       GL_REQ_AUTH_MAX);
    json_t *body = json_object_get (root, "body");
    if (!json_is_object (body))
        return s_fail (err, "bad_request", "body", "body must be a map");
    req->body = json_incref (body);
    return 0;
}

int
gl_rep_parse_request (const void *buf, size_t len, gl_rep_request_t *req, gl_rep_error_t *err)
{
    assert (req && err);
    memset (req, 0, sizeof *req);
    memset (err, 0, sizeof *err);
    if (!buf || len == 0)
        return s_fail (err, "bad_request", "", "empty frame");
    gl_mp_limits_t limits = gl_mp_limits_default ();
    char why[200];
    json_t *root = gl_mp_decode (buf, len, &limits, why, sizeof why);
    if (!root)
        return s_fail (err, "bad_request", "", "not a msgpack request: %s", why);
    int rc = s_parse (root, req, err);
    json_decref (root);
    if (rc != 0) {
        sodium_memzero (req->auth, sizeof req->auth);
        json_decref (req->body);
        req->body = NULL;
    }
    return rc;
}

void
gl_rep_request_clear (gl_rep_request_t *req)
{
    if (!req)
        return;
    json_decref (req->body);
    sodium_memzero (req, sizeof *req);
}

int
gl_rep_error (gl_rep_error_t *err, int status, const char *code, const char *field,
              const char *fmt, ...)
{
    assert (err);
    snprintf (err->code, sizeof err->code, "%s", code ? code : "");
    snprintf (err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err->message, sizeof err->message, fmt, ap);
    va_end (ap);
    return status;
}

int64_t
gl_rep_remaining_ms (const gl_rep_request_t *req)
{
    assert (req);
    int64_t left = req->deadline_ms - gl_mono_ms ();
    return left > 0 ? left : 0;
}

//  --------------------------------------------------------------------------------------------
//  Replies

static bool
s_status_valid (int status)
{
    static const int allowed[] = { 200, 202, 400, 401, 403, 404, 409, 422, 429, 500, 503, 504 };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (status == allowed[i])
            return true;
    return false;
}

static const char *
s_default_code (int status)
{
    switch (status) {
        case 400: return "bad_request";
        case 401: return "unauthorized";
        case 403: return "forbidden";
        case 404: return "not_found";
        case 409: return "conflict";
        case 422: return "invalid";
        case 429: return "rate_limited";
        case 503: return "unavailable";
        case 504: return "timeout";
        default:  return "internal";
    }
}

//  The error map for status (nil below 400). A handler that named no code gets the default one.
static json_t *
s_error_json (int status, const gl_rep_error_t *err)
{
    if (status < 400)
        return json_null ();
    const char *code = err && err->code[0] ? err->code : s_default_code (status);
    json_t *map = json_object ();
    assert (map);
    json_object_set_new (map, "code", json_string (code));
    //  json_string rejects invalid UTF-8: a handler's message may have been cut mid-character.
    json_t *message = json_string (err ? err->message : "");
    json_object_set_new (map, "message", message ? message : json_string ("(message not UTF-8)"));
    json_t *field = json_string (err ? err->field : "");
    json_object_set_new (map, "field", field ? field : json_string (""));
    return map;
}

//  Encode {v, id, status, body, error}. body and error are borrowed. *out malloc'd. 0 or -1.
static int
s_encode_reply (const char *id, int status, json_t *body, json_t *error, char **out,
                size_t *outlen)
{
    json_t *reply = json_object ();
    assert (reply);
    json_object_set_new (reply, "v", json_integer (GL_REQ_VERSION));
    json_object_set_new (reply, "id", json_string (id));
    json_object_set_new (reply, "status", json_integer (status));
    json_object_set (reply, "body", body);
    json_object_set (reply, "error", error);
    int rc = json_object_size (reply) == 5 ? gl_mp_encode (reply, out, outlen) : -1;
    json_decref (reply);
    return rc;
}

//  Send a reply to the peer that sent item. body and error are borrowed (NULL: empty, nil).
static void
s_send (gl_rep_t *self, s_item_t *item, const char *id, int status, json_t *body, json_t *error)
{
    json_t *empty = json_object ();
    json_t *nil = json_null ();
    char *frame = NULL;
    size_t len = 0;
    int rc = s_encode_reply (id, status, body ? body : empty, error ? error : nil, &frame, &len);
    if (rc != 0 || len > self->limits.max_bytes) {
        gl_error ("rep: reply to %s cannot be sent (%s); answering 500", id,
                  rc != 0 ? "body cannot be encoded" : "too large");
        free (frame);
        frame = NULL;
        gl_rep_error_t err = { .code = "internal", .message = "reply cannot be encoded" };
        json_t *e = s_error_json (500, &err);
        rc = s_encode_reply (id, 500, empty, e, &frame, &len);
        json_decref (e);
    }
    json_decref (empty);
    json_decref (nil);
    if (rc != 0) {
        self->stats.send_errors++;
        return;
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &item->identity);
    zmsg_addmem (msg, frame, len);
    free (frame);
    //  ROUTER drops a reply to a peer that is gone or whose queue is full; it never blocks.
    if (zmsg_send (&msg, self->sock) == 0)
        self->stats.answered++;
    else {
        self->stats.send_errors++;
        zmsg_destroy (&msg);
    }
}

static void
s_send_error (gl_rep_t *self, s_item_t *item, const char *id, int status, const char *code,
              const char *field, const char *message)
{
    gl_rep_error_t err;
    gl_rep_error (&err, status, code, field, "%s", message);
    json_t *e = s_error_json (status, &err);
    s_send (self, item, id, status, NULL, e);
    json_decref (e);
}

//  --------------------------------------------------------------------------------------------
//  Idempotency

static int
s_body_digest (const json_t *body, char hex[2 * S_DIGEST + 1])
{
    //  Canonical text (sorted keys, compact) so that two encodings of one body hash alike.
    char *text = json_dumps (body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return -1;
    unsigned char digest[S_DIGEST];
    crypto_generichash (digest, S_DIGEST, (const unsigned char *) text, strlen (text), NULL, 0);
    free (text);
    sodium_bin2hex (hex, 2 * S_DIGEST + 1, digest, S_DIGEST);
    return 0;
}

int
gl_rep_idem_key (gl_rep_t *self, const gl_rep_request_t *req, char *out, size_t outlen)
{
    assert (self && req && out);
    if (!self->redis || !req->key[0])
        return -1;
    int n = snprintf (out, outlen, "%s%s:%s", self->idem_prefix, req->op, req->key);
    return n < 0 || (size_t) n >= outlen ? -1 : 0;
}

int
gl_rep_idem_marker (const gl_rep_request_t *req, char *out, size_t outlen)
{
    assert (req && out);
    int n = snprintf (out, outlen, S_MARKER "%s", req->id);
    return n < 0 || (size_t) n >= outlen ? -1 : 0;
}

int
gl_rep_idem_encode (const gl_rep_request_t *req, int status, const json_t *body,
                    const gl_rep_error_t *err, char **out, size_t *outlen)
{
    assert (req && out && outlen);
    char hex[2 * S_DIGEST + 1];
    if (!json_is_object (req->body) || s_body_digest (req->body, hex) != 0)
        return -1;
    json_t *stored = json_object ();
    assert (stored);
    json_object_set_new (stored, "h", json_string (hex));
    json_object_set_new (stored, "status", json_integer (status));
    json_object_set_new (stored, "body", body ? json_deep_copy (body) : json_object ());
    json_object_set_new (stored, "error", s_error_json (status, err));
    int rc = json_object_size (stored) == 4 ? gl_mp_encode (stored, out, outlen) : -1;
    json_decref (stored);
    return rc;
}

//  What was found under a request's key.
typedef enum { S_CLAIMED, S_PENDING, S_STORED, S_FAILED } s_claim_t;

static s_claim_t
s_idem_claim (gl_rep_t *self, const gl_rep_request_t *req, const char *key, const char *marker,
              json_t **stored)
{
    char ttl[24];
    snprintf (ttl, sizeof ttl, "%lld", (long long) (req->ttl_ms > 0 ? req->ttl_ms : 1));
    const char *argv[] = { key, marker, ttl };
    redisReply *r = gl_redis_eval (self->redis, &self->claim, 1, 3, argv, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        gl_warn ("rep: idempotency claim for %s failed: %s", req->id,
                 r ? r->str : gl_redis_errstr (self->redis));
        if (r)
            freeReplyObject (r);
        return S_FAILED;
    }
    s_claim_t result = S_CLAIMED;
    if (r->type == REDIS_REPLY_STRING) {
        if (r->len >= strlen (S_MARKER) && memcmp (r->str, S_MARKER, strlen (S_MARKER)) == 0)
            result = S_PENDING;
        else {
            char why[200];
            *stored = gl_mp_decode (r->str, r->len, &self->limits, why, sizeof why);
            result = *stored ? S_STORED : S_FAILED;
            if (!*stored)
                gl_error ("rep: stored reply for %s is unreadable: %s", req->id, why);
        }
    }
    else if (r->type != REDIS_REPLY_NIL) {
        gl_warn ("rep: idempotency claim for %s: unexpected reply type %d", req->id, r->type);
        result = S_FAILED;
    }
    freeReplyObject (r);
    return result;
}

//  Store the reply under our marker (status < 500) or remove the marker (status >= 500).
static void
s_idem_finish (gl_rep_t *self, const gl_rep_request_t *req, const char *key, const char *marker,
               int status, json_t *body, const gl_rep_error_t *err)
{
    char *value = NULL;
    size_t value_len = 0;
    if (status < 500 && gl_rep_idem_encode (req, status, body, err, &value, &value_len) != 0) {
        gl_error ("rep: reply to %s cannot be stored", req->id);
        value_len = 0;
    }
    char ttl[24];
    snprintf (ttl, sizeof ttl, "%lld", (long long) self->idem_ttl_ms);
    const char *argv[] = { key, marker, value ? value : "", ttl };
    size_t argvlen[] = { strlen (key), strlen (marker), value_len, strlen (ttl) };
    redisReply *r = gl_redis_eval (self->redis, &self->finish, 1, 4, argv, argvlen);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        self->stats.idem_errors++;
        gl_warn ("rep: reply to %s not stored (%s): a retry may run it again", req->id,
                 r ? r->str : gl_redis_errstr (self->redis));
    }
    if (r)
        freeReplyObject (r);
    free (value);
}

//  Answer from a stored reply, or 422 when this request's body is not the one stored.
static void
s_replay (gl_rep_t *self, s_item_t *item, const gl_rep_request_t *req, json_t *stored)
{
    char hex[2 * S_DIGEST + 1];
    const json_t *h = json_object_get (stored, "h");
    const json_t *status = json_object_get (stored, "status");
    json_t *body = json_object_get (stored, "body");
    json_t *error = json_object_get (stored, "error");
    bool shape = json_is_string (h) && json_is_integer (status)
                 && json_integer_value (status) >= 100 && json_integer_value (status) < 500
                 && json_is_object (body) && (json_is_null (error) || json_is_object (error));
    if (!shape || s_body_digest (req->body, hex) != 0) {
        self->stats.idem_errors++;
        gl_error ("rep: stored reply for %s has the wrong shape", req->id);
        s_send_error (self, item, req->id, 503, "unavailable", "", "stored reply unreadable");
        return;
    }
    if (strcmp (json_string_value (h), hex) != 0) {
        self->stats.key_reused++;
        s_send_error (self, item, req->id, 422, "key_reused", "key",
                      "this key was used for a request with a different body");
        return;
    }
    self->stats.replayed++;
    s_send (self, item, req->id, (int) json_integer_value (status), body, error);
}

//  --------------------------------------------------------------------------------------------
//  Dispatch

static bool
s_authorised (gl_rep_t *self, const char *token)
{
    unsigned char digest[S_DIGEST];
    crypto_generichash (digest, S_DIGEST, (const unsigned char *) token, strlen (token), NULL, 0);
    //  Compare with every token, without stopping at a match.
    int match = 0;
    for (size_t i = 0; i < self->ntokens; i++)
        match |= sodium_memcmp (digest, self->tokens + S_DIGEST * i, S_DIGEST) == 0;
    sodium_memzero (digest, sizeof digest);
    return match != 0;
}

//  Run the handler and answer, with the idempotency steps around it when the request has a key.
static void
s_run (gl_rep_t *self, s_item_t *item, const gl_rep_request_t *req, s_handler_t *handler)
{
    char key[512];
    char marker[64];
    bool idem = gl_rep_idem_key (self, req, key, sizeof key) == 0;
    gl_rep_idem_marker (req, marker, sizeof marker);
    if (idem) {
        json_t *stored = NULL;
        switch (s_idem_claim (self, req, key, marker, &stored)) {
            case S_FAILED:
                self->stats.idem_errors++;
                s_send_error (self, item, req->id, 503, "unavailable", "",
                              "idempotency store unavailable; not run, retry later");
                return;
            case S_PENDING:
                self->stats.in_progress++;
                s_send_error (self, item, req->id, 409, "in_progress", "key",
                              "a request with this key is still running");
                return;
            case S_STORED:
                s_replay (self, item, req, stored);
                json_decref (stored);
                return;
            case S_CLAIMED:
                break;
        }
    }
    json_t *body = NULL;
    gl_rep_error_t err;
    memset (&err, 0, sizeof err);
    self->stats.handled++;
    int status = handler->fn (handler->arg, req, &body, &err);
    if (!s_status_valid (status) || (body && !json_is_object (body))) {
        gl_error ("rep: handler for %s returned %s; answering 500", req->op,
                  s_status_valid (status) ? "a body that is not a map" : "an unknown status");
        json_decref (body);
        body = NULL;
        status = gl_rep_error (&err, 500, "internal", "", "handler failed");
    }
    if (status >= 400 && body) {
        //  An error carries its details in error; a body beside it would be ignored by callers.
        json_decref (body);
        body = NULL;
    }
    if (idem)
        s_idem_finish (self, req, key, marker, status, body, &err);
    json_t *error = s_error_json (status, &err);
    s_send (self, item, req->id, status, body, error);
    json_decref (error);
    json_decref (body);
}

static void
s_process (gl_rep_t *self, s_item_t *item)
{
    gl_rep_request_t req;
    gl_rep_error_t err;
    if (gl_rep_parse_request (zframe_data (item->payload), zframe_size (item->payload), &req,
                              &err) != 0) {
        if (!req.id[0]) {
            self->stats.dropped++;
            gl_debug ("rep: request without a readable id dropped: %s", err.message);
            return;
        }
        self->stats.malformed++;
        //  Not err.field: for an unknown key it is a name chosen by the sender.
        gl_debug ("rep: request %s rejected: %s", req.id, err.message);
        json_t *e = s_error_json (400, &err);
        s_send (self, item, req.id, 400, NULL, e);
        json_decref (e);
        return;
    }
    req.received_ms = item->received_ms;
    req.deadline_ms = item->received_ms + req.ttl_ms;
    bool authorised = self->ntokens == 0 || s_authorised (self, req.auth);
    sodium_memzero (req.auth, sizeof req.auth);
    s_handler_t *handler = s_handler (self, req.op);
    if (!authorised) {
        self->stats.unauthorized++;
        s_send_error (self, item, req.id, 401, "unauthorized", "auth",
                      "a valid token is required");
    }
    else if (gl_mono_ms () >= req.deadline_ms) {
        self->stats.expired++;
        s_send_error (self, item, req.id, 504, "expired", "",
                      "the request's ttl ran out before it was handled; not run");
    }
    else if (!handler) {
        self->stats.unknown_op++;
        s_send_error (self, item, req.id, 404, "unknown_op", "op", "no handler for this op");
    }
    else
        s_run (self, item, &req, handler);
    gl_rep_request_clear (&req);
}

//  Move the requests waiting on the socket into the queue, stamping their arrival.
//  0, or -1 when the socket failed.
static int
s_drain (gl_rep_t *self)
{
    while (zlist_size (self->queue) < self->queue_max) {
        zmsg_t *msg = zmsg_recv (self->sock);
        if (!msg)
            return errno == ETERM ? -1 : 0;
        self->stats.received++;
        //  ROUTER adds the identity: a DEALER's request arrives as exactly two frames.
        if (zmsg_size (msg) != 2) {
            self->stats.dropped++;
            gl_debug ("rep: frame with %zu parts dropped", zmsg_size (msg));
            zmsg_destroy (&msg);
            continue;
        }
        s_item_t *item = calloc (1, sizeof (s_item_t));
        assert (item);
        item->identity = zmsg_pop (msg);
        item->payload = zmsg_pop (msg);
        item->received_ms = gl_mono_ms ();
        zmsg_destroy (&msg);
        zlist_append (self->queue, item);
    }
    return 0;
}

int
gl_rep_dispatch (gl_rep_t *self)
{
    assert (self);
    int rc = s_drain (self);
    s_item_t *item = zlist_pop (self->queue);
    if (!item)
        return rc;
    s_process (self, item);
    s_item_destroy (&item);
    return 0;
}
