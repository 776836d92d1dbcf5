/*  Requests (gl_req client, gl_rep server) over real ZeroMQ sockets on loopback, with a real
    redis-server for idempotency: round trips, error statuses, unknown ops, malformed frames,
    deadlines, stale replies, auth tokens, stored replies across two server replicas; and the
    asynchronous side: many calls outstanding matched by id, the bound, requests kept until a
    server connects, forgotten calls, malformed replies, gl_req_call meanwhile.
    ctest: timeout=180 */
#include "gl/gl_clock.h"
#include "gl/gl_id.h"
#include "gl/gl_log.h"
#include "gl/gl_msgpack.h"
#include "gl/gl_rep.h"
#include "gl/gl_req.h"
#include "gl_testenv.h"
#include <czmq.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define S_WAIT_MS 10000     //  bound on waits that only fail when the code is broken

static gl_testredis_t *s_redis;

//  The blocking handler waits for a permit from the test; entered counts its calls so the test
//  knows when the server is busy. Shared by the test thread and the server actors.
static atomic_int s_permits;
static atomic_int s_entered;

//  --------------------------------------------------------------------------------------------
//  A server in an actor (it owns its socket and its Redis connection)

typedef struct {
    const char *tokens;         //  NULL: no auth
    bool idempotency;           //  against s_redis
    const char *prefix;
    const char *bind;           //  NULL: an ephemeral port
} s_cfg_t;

typedef struct {
    gl_rep_stats_t stats;
    int echo, count, flaky, block, tx;
} s_snapshot_t;

typedef struct {
    gl_rep_t *rep;
    gl_redis_t *redis;
    s_snapshot_t n;
} s_server_t;

static int
s_on_echo (void *arg, const gl_rep_request_t *req, json_t **body, gl_rep_error_t *err)
{
    s_server_t *self = arg;
    self->n.echo++;
    *body = json_pack ("{s:O, s:s, s:I}", "echo", req->body, "key", req->key, "ttl",
                       (json_int_t) req->ttl_ms);
    return 200;
}

//  Answers whatever status the body asks for, with an error naming a field.
static int
s_on_fail (void *arg, const gl_rep_request_t *req, json_t **body, gl_rep_error_t *err)
{
    int status = (int) json_integer_value (json_object_get (req->body, "status"));
    if (json_is_true (json_object_get (req->body, "bad_body"))) {
        *body = json_array ();
        return 200;
    }
    if (json_is_true (json_object_get (req->body, "no_code")))
        return status;
    return gl_rep_error (err, status, "test_failure", "status", "asked for %d", status);
}

static int
s_on_count (void *arg, const gl_rep_request_t *req, json_t **body, gl_rep_error_t *err)
{
    s_server_t *self = arg;
    self->n.count++;
    *body = json_pack ("{s:i}", "count", self->n.count);
    return 200;
}

//  Fails with 503 the first time, then succeeds: 5xx replies must not be stored.
static int
s_on_flaky (void *arg, const gl_rep_request_t *req, json_t **body, gl_rep_error_t *err)
{
    s_server_t *self = arg;
    if (++self->n.flaky == 1)
        return gl_rep_error (err, 503, "busy", "", "try again");
    *body = json_pack ("{s:i}", "attempt", self->n.flaky);
    return 200;
}

static int
s_on_block (void *arg, const gl_rep_request_t *req, json_t **body, gl_rep_error_t *err)
{
    s_server_t *self = arg;
    self->n.block++;
    size_t pending = gl_rep_pending (self->rep);
    atomic_fetch_add (&s_entered, 1);
    int64_t until = gl_mono_ms () + 2 * S_WAIT_MS;
    while (gl_mono_ms () < until) {
        int p = atomic_load (&s_permits);
        if (p > 0 && atomic_compare_exchange_weak (&s_permits, &p, p - 1))
            break;
        gl_sleep_ms (1);
    }
    *body = json_pack ("{s:I, s:O?}", "pending", (json_int_t) pending, "n",
                       json_object_get (req->body, "n"));
    return 200;
}

//  An exactly-once handler: its effect (INCR) and its stored reply go in one Lua script, applied
//  only while the key holds this request's marker or nothing. It stores a body that differs from
//  the one it returns, so the test can tell whose write the server kept.
static int
s_on_tx (void *arg, const gl_rep_request_t *req, json_t **body, gl_rep_error_t *err)
{
    static gl_redis_script_t script = { .source =
        "local cur = redis.call('GET', KEYS[1])\n"
        "if cur and cur ~= ARGV[1] then return 0 end\n"
        "redis.call('INCR', KEYS[2])\n"
        "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
        "return 1\n" };
    s_server_t *self = arg;
    self->n.tx++;
    char key[512], marker[64], ttl[24];
    if (gl_rep_idem_key (self->rep, req, key, sizeof key) != 0)
        return gl_rep_error (err, 400, "key_required", "key", "this op needs a key");
    gl_rep_idem_marker (req, marker, sizeof marker);
    snprintf (ttl, sizeof ttl, "%lld", (long long) gl_rep_idem_ttl_ms (self->rep));
    json_t *stored = json_pack ("{s:s}", "stored_by", "handler");
    char *value;
    size_t value_len;
    int rc = gl_rep_idem_encode (req, 200, stored, NULL, &value, &value_len);
    json_decref (stored);
    if (rc != 0)
        return 500;
    const char *argv[] = { key, "test:tx:counter", marker, value, ttl };
    size_t argvlen[] = { strlen (key), 15, strlen (marker), value_len, strlen (ttl) };
    redisReply *r = gl_redis_eval (self->redis, &script, 2, 5, argv, argvlen);
    free (value);
    long long applied = 0;
    rc = gl_redis_reply_int (r, &applied);
    if (r)
        freeReplyObject (r);
    if (rc != 0)
        return gl_rep_error (err, 503, "unavailable", "", "redis");
    if (!applied)
        return gl_rep_error (err, 409, "conflict", "key", "another request holds this key");
    *body = json_pack ("{s:s}", "stored_by", "server");
    return 200;
}

static void
s_server_actor (zsock_t *pipe, void *args)
{
    s_cfg_t *cfg = args;
    s_server_t self;
    memset (&self, 0, sizeof self);
    self.rep = gl_rep_new (cfg && cfg->bind ? cfg->bind : "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    if (!self.rep) {
        zstr_send (pipe, "");
        return;
    }
    gl_rep_on (self.rep, "test.echo", s_on_echo, &self);
    gl_rep_on (self.rep, "test.fail", s_on_fail, &self);
    gl_rep_on (self.rep, "test.count", s_on_count, &self);
    gl_rep_on (self.rep, "test.flaky", s_on_flaky, &self);
    gl_rep_on (self.rep, "test.block", s_on_block, &self);
    gl_rep_on (self.rep, "test.tx", s_on_tx, &self);
    if (cfg && cfg->tokens)
        gl_rep_set_tokens (self.rep, cfg->tokens);
    if (cfg && cfg->idempotency) {
        self.redis = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 1000, 300);
        gl_rep_set_idempotency (self.rep, self.redis, cfg->prefix, 60000);
    }
    zstr_send (pipe, gl_rep_endpoint (self.rep));
    zpoller_t *poller = zpoller_new (pipe, gl_rep_sock (self.rep), NULL);
    while (true) {
        void *which = zpoller_wait (poller, gl_rep_pending (self.rep) ? 0 : 100);
        if (which == pipe) {
            char *cmd = zstr_recv (pipe);
            bool stop = !cmd || streq (cmd, "$TERM");
            if (cmd && streq (cmd, "STATS")) {
                gl_rep_stats (self.rep, &self.n.stats);
                zsock_send (pipe, "b", &self.n, sizeof self.n);
            }
            zstr_free (&cmd);
            if (stop)
                break;
        }
        else if (which == gl_rep_sock (self.rep) || gl_rep_pending (self.rep)) {
            if (gl_rep_dispatch (self.rep) != 0)
                break;
        }
        else if (zpoller_terminated (poller))
            break;
    }
    zpoller_destroy (&poller);
    gl_rep_destroy (&self.rep);
    gl_redis_destroy (&self.redis);
}

typedef struct {
    zactor_t *actor;
    char *endpoint;
} s_server_handle_t;

static s_server_handle_t
s_server_start (s_cfg_t *cfg)
{
    s_server_handle_t h;
    h.actor = zactor_new (s_server_actor, cfg);
    assert_non_null (h.actor);
    h.endpoint = zstr_recv (h.actor);
    assert_non_null (h.endpoint);
    assert_true (strncmp (h.endpoint, "tcp://127.0.0.1:", 16) == 0);
    assert_null (strchr (h.endpoint, '*'));
    return h;
}

static void
s_server_stop (s_server_handle_t *h)
{
    zactor_destroy (&h->actor);
    zstr_free (&h->endpoint);
}

static s_snapshot_t
s_snapshot (s_server_handle_t *h)
{
    zstr_send (h->actor, "STATS");
    byte *data = NULL;
    size_t size = 0;
    s_snapshot_t snap;
    memset (&snap, 0, sizeof snap);
    assert_int_equal (zsock_recv (h->actor, "b", &data, &size), 0);
    assert_int_equal (size, sizeof snap);
    memcpy (&snap, data, size);
    free (data);
    return snap;
}

static void
s_reset_gate (void)
{
    atomic_store (&s_permits, 0);
    atomic_store (&s_entered, 0);
}

static void
s_wait_entered (int count)
{
    int64_t until = gl_mono_ms () + S_WAIT_MS;
    while (atomic_load (&s_entered) < count && gl_mono_ms () < until)
        gl_sleep_ms (1);
    assert_true (atomic_load (&s_entered) >= count);
}

//  --------------------------------------------------------------------------------------------
//  A raw DEALER, to send frames gl_req never would

static zsock_t *
s_dealer (const char *endpoint)
{
    zsock_t *d = zsock_new (ZMQ_DEALER);
    assert_non_null (d);
    zsock_set_linger (d, 0);
    assert_int_equal (zsock_connect (d, "%s", endpoint), 0);
    return d;
}

static void
s_send_bytes (zsock_t *d, const void *buf, size_t len)
{
    zframe_t *f = zframe_new (buf, len);
    assert_int_equal (zframe_send (&f, d, 0), 0);
}

//  Send map (consumed) as one msgpack frame.
static void
s_send_map (zsock_t *d, json_t *map)
{
    char *buf;
    size_t len;
    assert_int_equal (gl_mp_encode (map, &buf, &len), 0);
    s_send_bytes (d, buf, len);
    free (buf);
    json_decref (map);
}

//  A well-formed request map; tests then break one field.
static json_t *
s_request (const char *id, const char *op, int ttl, const char *key, json_t *body)
{
    return json_pack ("{s:i, s:s, s:s, s:s, s:i, s:s, s:o}", "v", 1, "id", id, "op", op, "key",
                      key, "ttl", ttl, "auth", "", "body", body ? body : json_object ());
}

//  The next reply on d, decoded; fails the test if none comes.
static json_t *
s_recv_reply (zsock_t *d)
{
    zpoller_t *poller = zpoller_new (d, NULL);
    void *which = zpoller_wait (poller, S_WAIT_MS);
    zpoller_destroy (&poller);
    assert_true (which == d);
    zframe_t *f = zframe_recv (d);
    assert_non_null (f);
    assert_false (zframe_more (f));
    char err[256];
    gl_mp_limits_t limits = gl_mp_limits_default ();
    json_t *reply = gl_mp_decode (zframe_data (f), zframe_size (f), &limits, err, sizeof err);
    zframe_destroy (&f);
    assert_non_null (reply);
    return reply;
}

static int
s_status (const json_t *reply)
{
    return (int) json_integer_value (json_object_get (reply, "status"));
}

static const char *
s_error_str (const json_t *reply, const char *name)
{
    return json_string_value (json_object_get (json_object_get (reply, "error"), name));
}

//  --------------------------------------------------------------------------------------------
//  Tests

static void
test_round_trip (void **state)
{
    s_server_handle_t srv = s_server_start (NULL);
    gl_req_t *client = gl_req_new (srv.endpoint);
    assert_non_null (client);
    assert_string_equal (gl_req_endpoint (client), srv.endpoint);
    for (int i = 0; i < 20; i++) {
        json_t *body = json_pack ("{s:i, s:s, s:[i, f, b, n]}", "n", i, "lang", "fr", "list", 1,
                                  2.5, 1);
        gl_reply_t reply = { 0 };
        assert_int_equal (gl_req_call (client, "test.echo", NULL, body, 5000, &reply), 0);
        assert_int_equal (reply.status, 200);
        assert_true (gl_id_valid (reply.id));
        assert_null (reply.error_code);
        assert_true (json_equal (json_object_get (reply.body, "echo"), body));
        assert_string_equal (json_string_value (json_object_get (reply.body, "key")), "");
        assert_int_equal (json_integer_value (json_object_get (reply.body, "ttl")), 5000);
        gl_reply_clear (&reply);
        json_decref (body);
    }
    //  A NULL body arrives as an empty map.
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "test.echo", "k-1", NULL, 5000, &reply), 0);
    assert_int_equal (json_object_size (json_object_get (reply.body, "echo")), 0);
    assert_string_equal (json_string_value (json_object_get (reply.body, "key")), "k-1");
    gl_reply_clear (&reply);
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_discarded (client), 0);
    s_snapshot_t snap = s_snapshot (&srv);
    assert_int_equal (snap.echo, 21);
    assert_int_equal (snap.stats.answered, 21);
    gl_req_destroy (&client);
    assert_null (client);
    s_server_stop (&srv);
}

static void
test_handler_statuses (void **state)
{
    s_server_handle_t srv = s_server_start (NULL);
    gl_req_t *client = gl_req_new (srv.endpoint);
    int statuses[] = { 400, 401, 403, 404, 409, 422, 429, 500, 503, 504 };
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        gl_reply_t reply = { 0 };
        json_t *body = json_pack ("{s:i}", "status", statuses[i]);
        assert_int_equal (gl_req_call (client, "test.fail", NULL, body, 5000, &reply), 0);
        assert_int_equal (reply.status, statuses[i]);
        assert_string_equal (reply.error_code, "test_failure");
        assert_string_equal (reply.error_field, "status");
        assert_non_null (strstr (reply.error_message, "asked for"));
        assert_int_equal (json_object_size (reply.body), 0);
        gl_reply_clear (&reply);
        json_decref (body);
    }
    //  No code from the handler: the status's default code.
    gl_reply_t reply = { 0 };
    json_t *body = json_pack ("{s:i, s:b}", "status", 409, "no_code", 1);
    assert_int_equal (gl_req_call (client, "test.fail", NULL, body, 5000, &reply), 0);
    assert_int_equal (reply.status, 409);
    assert_string_equal (reply.error_code, "conflict");
    assert_string_equal (reply.error_field, "");
    gl_reply_clear (&reply);
    json_decref (body);
    //  A 2xx status carries no error, whatever the handler left in err.
    body = json_pack ("{s:i}", "status", 202);
    assert_int_equal (gl_req_call (client, "test.fail", NULL, body, 5000, &reply), 0);
    assert_int_equal (reply.status, 202);
    assert_null (reply.error_code);
    gl_reply_clear (&reply);
    json_decref (body);
    //  A status outside the list, or a body that is not a map, is answered 500.
    body = json_pack ("{s:i}", "status", 299);
    assert_int_equal (gl_req_call (client, "test.fail", NULL, body, 5000, &reply), 0);
    assert_int_equal (reply.status, 500);
    assert_string_equal (reply.error_code, "internal");
    gl_reply_clear (&reply);
    json_decref (body);
    body = json_pack ("{s:i, s:b}", "status", 200, "bad_body", 1);
    assert_int_equal (gl_req_call (client, "test.fail", NULL, body, 5000, &reply), 0);
    assert_int_equal (reply.status, 500);
    gl_reply_clear (&reply);
    json_decref (body);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

static void
test_unknown_op (void **state)
{
    s_server_handle_t srv = s_server_start (NULL);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "test.nobody_home", NULL, NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 404);
    assert_string_equal (reply.error_code, "unknown_op");
    assert_string_equal (reply.error_field, "op");
    gl_reply_clear (&reply);
    assert_int_equal (s_snapshot (&srv).stats.unknown_op, 1);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

//  Invalid op, key or body never leave the client.
static void
test_client_rejects_locally (void **state)
{
    s_server_handle_t srv = s_server_start (NULL);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "Test Echo", NULL, NULL, 5000, &reply), -1);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "op");
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_call (client, "test..echo", NULL, NULL, 5000, &reply), -1);
    assert_string_equal (reply.error_field, "op");
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_call (client, "test.echo", "has space", NULL, 5000, &reply), -1);
    assert_string_equal (reply.error_field, "key");
    gl_reply_clear (&reply);
    json_t *array = json_array ();
    assert_int_equal (gl_req_call (client, "test.echo", NULL, array, 5000, &reply), -1);
    assert_string_equal (reply.error_field, "body");
    gl_reply_clear (&reply);
    json_decref (array);
    assert_int_equal (gl_req_set_auth (client, "has,comma"), -1);
    assert_int_equal (gl_req_set_auth (client, "has space"), -1);
    assert_int_equal (gl_req_set_auth (client, ""), 0);
    assert_int_equal (s_snapshot (&srv).stats.received, 0);
    gl_req_destroy (&client);
    assert_null (gl_req_new ("not-an-endpoint"));
    assert_null (gl_rep_new ("tcp://256.1.1.1:1"));
    s_server_stop (&srv);
}

static void
test_register_rules (void **state)
{
    gl_rep_t *rep = gl_rep_new ("tcp://127.0.0.1:*");
    assert_non_null (rep);
    assert_int_equal (gl_rep_on (rep, "a.b", s_on_count, NULL), 0);
    assert_int_equal (gl_rep_on (rep, "a.b", s_on_count, NULL), -1);
    assert_int_equal (gl_rep_on (rep, "A.b", s_on_count, NULL), -1);
    assert_int_equal (gl_rep_on (rep, ".ab", s_on_count, NULL), -1);
    assert_int_equal (gl_rep_pending (rep), 0);
    //  Nothing waiting: dispatch returns at once.
    assert_int_equal (gl_rep_dispatch (rep), 0);
    gl_rep_request_t req;
    memset (&req, 0, sizeof req);
    char key[128];
    assert_int_equal (gl_rep_idem_key (rep, &req, key, sizeof key), -1);
    assert_int_equal (gl_rep_idem_ttl_ms (rep), 0);
    gl_rep_destroy (&rep);
    assert_null (rep);
}

//  The parser names the field at fault, and the id whenever it could read it.
static void
test_parse_request (void **state)
{
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    struct {
        const char *field;      //  key to replace (NULL: remove "remove")
        json_t *value;          //  NULL: remove the key
        const char *want_field;
        const char *want_code;
        bool id_readable;
    } cases[] = {
        { "v", json_integer (2), "v", "bad_version", true },
        { "v", json_string ("1"), "v", "bad_request", true },
        { "v", NULL, "v", "bad_request", true },
        { "op", json_integer (5), "op", "bad_request", true },
        { "op", json_string ("Bad"), "op", "bad_request", true },
        { "op", NULL, "op", "bad_request", true },
        { "key", json_string ("a b"), "key", "bad_request", true },
        { "key", NULL, "key", "bad_request", true },
        { "ttl", json_string ("10"), "ttl", "bad_request", true },
        { "ttl", json_integer (-1), "ttl", "bad_request", true },
        { "ttl", json_integer (GL_REQ_TTL_MAX + 1), "ttl", "bad_request", true },
        { "auth", json_integer (1), "auth", "bad_request", true },
        { "body", json_array (), "body", "bad_request", true },
        { "body", json_null (), "body", "bad_request", true },
        { "body", NULL, "body", "bad_request", true },
        { "extra", json_true (), "extra", "bad_request", true },
        { "id", json_string ("not-an-id"), "id", "bad_request", false },
        { "id", json_integer (7), "id", "bad_request", false },
        { "id", NULL, "id", "bad_request", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *map = s_request (id, "test.echo", 1000, "", NULL);
        if (cases[i].value)
            json_object_set_new (map, cases[i].field, cases[i].value);
        else
            json_object_del (map, cases[i].field);
        char *buf;
        size_t len;
        assert_int_equal (gl_mp_encode (map, &buf, &len), 0);
        gl_rep_request_t req;
        gl_rep_error_t err;
        assert_int_equal (gl_rep_parse_request (buf, len, &req, &err), -1);
        assert_string_equal (err.field, cases[i].want_field);
        assert_string_equal (err.code, cases[i].want_code);
        assert_string_equal (req.id, cases[i].id_readable ? id : "");
        assert_null (req.body);
        free (buf);
        json_decref (map);
    }
    //  A valid one.
    json_t *map = s_request (id, "scheduler.book", 1500, "idem-1", json_pack ("{s:i}", "n", 3));
    json_object_set_new (map, "auth", json_string ("secret"));
    char *buf;
    size_t len;
    assert_int_equal (gl_mp_encode (map, &buf, &len), 0);
    gl_rep_request_t req;
    gl_rep_error_t err;
    assert_int_equal (gl_rep_parse_request (buf, len, &req, &err), 0);
    assert_string_equal (req.id, id);
    assert_string_equal (req.op, "scheduler.book");
    assert_string_equal (req.key, "idem-1");
    assert_string_equal (req.auth, "secret");
    assert_int_equal (req.ttl_ms, 1500);
    assert_int_equal (json_integer_value (json_object_get (req.body, "n")), 3);
    gl_rep_request_clear (&req);
    assert_null (req.body);
    assert_string_equal (req.auth, "");
    //  Truncated, empty, not a map.
    assert_int_equal (gl_rep_parse_request (buf, len - 1, &req, &err), -1);
    assert_string_equal (req.id, "");
    assert_int_equal (gl_rep_parse_request (buf, 0, &req, &err), -1);
    assert_int_equal (gl_rep_parse_request ("\x93\x01\x02\x03", 4, &req, &err), -1);
    assert_non_null (strstr (err.message, "not a map"));
    free (buf);
    json_decref (map);
}

//  Malformed frames get 400 (id readable) or are dropped; the server keeps serving.
static void
test_malformed_frames (void **state)
{
    s_server_handle_t srv = s_server_start (NULL);
    zsock_t *d = s_dealer (srv.endpoint);
    uint64_t seed = gl_test_seed ("test_malformed_frames");
    srand ((unsigned) seed);
    int dropped = 0, rejected = 0;

    //  Random bytes: never a readable id, so dropped. Each is followed by a valid request whose
    //  reply must be the next thing on the socket.
    for (int i = 0; i < 50; i++) {
        unsigned char junk[64];
        size_t len = 1 + (size_t) (rand () % (int) sizeof junk);
        for (size_t j = 0; j < len; j++)
            junk[j] = (unsigned char) rand ();
        //  (A readable id takes 36 particular bytes: random junk never has one.)
        s_send_bytes (d, junk, len);
        dropped++;
        char id[GL_ID_LEN + 1];
        gl_id_new (id);
        s_send_map (d, s_request (id, "test.echo", 5000, "", NULL));
        json_t *reply = s_recv_reply (d);
        assert_string_equal (json_string_value (json_object_get (reply, "id")), id);
        assert_int_equal (s_status (reply), 200);
        json_decref (reply);
    }
    //  Wrong types and missing fields with a readable id: 400 naming the field.
    const char *fields[] = { "op", "ttl", "body", "key", "v" };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char id[GL_ID_LEN + 1];
        gl_id_new (id);
        json_t *map = s_request (id, "test.echo", 5000, "", NULL);
        if (i % 2)
            json_object_del (map, fields[i]);
        else
            json_object_set_new (map, fields[i], json_pack ("[i]", 1));
        s_send_map (d, map);
        json_t *reply = s_recv_reply (d);
        assert_string_equal (json_string_value (json_object_get (reply, "id")), id);
        assert_int_equal (s_status (reply), 400);
        assert_string_equal (s_error_str (reply, "field"), fields[i]);
        assert_true (json_is_object (json_object_get (reply, "body")));
        json_decref (reply);
        rejected++;
    }
    //  Not a map, a bad id, two frames in one message: dropped.
    s_send_map (d, json_pack ("[s, i]", "test.echo", 1));
    json_t *map = s_request ("0123", "test.echo", 5000, "", NULL);
    s_send_map (d, map);
    zmsg_t *two = zmsg_new ();
    zmsg_addstr (two, "");
    zmsg_addstr (two, "payload");
    zmsg_send (&two, d);
    dropped += 3;
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    s_send_map (d, s_request (id, "test.echo", 5000, "", NULL));
    json_t *reply = s_recv_reply (d);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), id);
    assert_int_equal (s_status (reply), 200);
    json_decref (reply);

    s_snapshot_t snap = s_snapshot (&srv);
    assert_int_equal (snap.stats.dropped, dropped);
    assert_int_equal (snap.stats.malformed, rejected);
    assert_int_equal (snap.echo, 51);
    zsock_destroy (&d);
    s_server_stop (&srv);
}

static void
test_nothing_listens (void **state)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", gl_test_free_port ());
    gl_req_t *client = gl_req_new (endpoint);
    assert_non_null (client);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 200, &reply), -1);
    assert_int_equal (reply.status, 504);
    assert_string_equal (reply.error_code, "timeout");
    assert_non_null (reply.body);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
}

//  A slow handler: the client times out, then its next call gets its own reply.
static void
test_stale_reply_discarded (void **state)
{
    s_reset_gate ();
    s_server_handle_t srv = s_server_start (NULL);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_reply_t reply = { 0 };
    //  Connected first, so that the short call below is sent rather than refused for want of a
    //  connection.
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 5000, &reply), 0);
    gl_reply_clear (&reply);
    json_t *one = json_pack ("{s:i}", "n", 1);
    assert_int_equal (gl_req_call (client, "test.block", NULL, one, 200, &reply), -1);
    assert_int_equal (reply.status, 504);
    assert_string_equal (reply.error_code, "timeout");
    gl_reply_clear (&reply);
    json_decref (one);
    //  The handler is (or will be) blocked on the gate; let it answer, late.
    s_wait_entered (1);
    atomic_fetch_add (&s_permits, 1);
    json_t *two = json_pack ("{s:i}", "n", 2);
    assert_int_equal (gl_req_call (client, "test.echo", NULL, two, 5000, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_int_equal (
        json_integer_value (json_object_get (json_object_get (reply.body, "echo"), "n")), 2);
    assert_int_equal (gl_req_discarded (client), 1);
    gl_reply_clear (&reply);
    json_decref (two);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

//  A request whose ttl runs out while it waits in the server's queue is answered 504 unrun.
static void
test_expired_before_dispatch (void **state)
{
    s_reset_gate ();
    s_server_handle_t srv = s_server_start (NULL);
    zsock_t *d = s_dealer (srv.endpoint);

    //  ttl 0 has always run out.
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    s_send_map (d, s_request (id, "test.echo", 0, "", NULL));
    json_t *reply = s_recv_reply (d);
    assert_int_equal (s_status (reply), 504);
    assert_string_equal (s_error_str (reply, "code"), "expired");
    json_decref (reply);
    assert_int_equal (s_snapshot (&srv).echo, 0);

    //  Keep the server busy (first), queue a blocking request (a) and a short one (b) behind it,
    //  then let first go: the server reads a and b together and runs a for longer than b's ttl.
    //  Whether b was read with a depends on delivery; a reports it (pending), and both outcomes
    //  are checked. Repeat until the queued case has been seen.
    bool seen_queued = false;
    for (int attempt = 0; attempt < 10 && !seen_queued; attempt++) {
        int entered = atomic_load (&s_entered);
        char first[GL_ID_LEN + 1], a[GL_ID_LEN + 1], b[GL_ID_LEN + 1];
        gl_id_new (first);
        gl_id_new (a);
        gl_id_new (b);
        s_send_map (d, s_request (first, "test.block", 60000, "", NULL));
        s_wait_entered (entered + 1);
        s_send_map (d, s_request (a, "test.block", 60000, "", NULL));
        s_send_map (d, s_request (b, "test.echo", 300, "", NULL));
        gl_sleep_ms (200);
        atomic_fetch_add (&s_permits, 1);
        s_wait_entered (entered + 2);
        gl_sleep_ms (600);
        atomic_fetch_add (&s_permits, 1);
        json_t *replies[3];
        for (int i = 0; i < 3; i++)
            replies[i] = s_recv_reply (d);
        json_int_t pending = -1;
        int b_status = 0;
        const char *b_code = NULL;
        for (int i = 0; i < 3; i++) {
            const char *rid = json_string_value (json_object_get (replies[i], "id"));
            if (streq (rid, a))
                pending = json_integer_value (
                    json_object_get (json_object_get (replies[i], "body"), "pending"));
            if (streq (rid, b)) {
                b_status = s_status (replies[i]);
                b_code = s_error_str (replies[i], "code");
            }
        }
        assert_true (pending == 0 || pending == 1);
        if (pending == 1) {
            //  b was stamped before a ran for 600 ms: its 300 ms had run out.
            assert_int_equal (b_status, 504);
            assert_string_equal (b_code, "expired");
            seen_queued = true;
        }
        else
            assert_int_equal (b_status, 200);
        for (int i = 0; i < 3; i++)
            json_decref (replies[i]);
    }
    assert_true (seen_queued);
    assert_true (s_snapshot (&srv).stats.expired >= 2);
    zsock_destroy (&d);
    s_server_stop (&srv);
}

static void
test_auth_tokens (void **state)
{
    s_cfg_t cfg = { .tokens = " alpha-1 ,beta-2,," };
    s_server_handle_t srv = s_server_start (&cfg);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 401);
    assert_string_equal (reply.error_code, "unauthorized");
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_set_auth (client, "gamma-3"), 0);
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 401);
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_set_auth (client, "alpha-"), 0);
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 401);
    gl_reply_clear (&reply);
    //  Unknown ops are not revealed to callers without a token either.
    assert_int_equal (gl_req_call (client, "test.nobody_home", NULL, NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 401);
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_set_auth (client, "beta-2"), 0);
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 200);
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_set_auth (client, "alpha-1"), 0);
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 200);
    //  The token never reaches the handler's view of the request.
    gl_reply_clear (&reply);
    s_snapshot_t snap = s_snapshot (&srv);
    assert_int_equal (snap.stats.unauthorized, 4);
    assert_int_equal (snap.echo, 2);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

static void
test_idempotency_same_key_runs_once (void **state)
{
    s_cfg_t cfg = { .idempotency = true, .prefix = "test:{idem1}:" };
    s_server_handle_t srv = s_server_start (&cfg);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_reply_t first = { 0 }, again = { 0 };
    json_t *body = json_pack ("{s:s, s:i}", "slot", "s-17", "n", 1);
    assert_int_equal (gl_req_call (client, "test.count", "key-a", body, 5000, &first), 0);
    assert_int_equal (first.status, 200);
    assert_int_equal (gl_req_call (client, "test.count", "key-a", body, 5000, &again), 0);
    assert_int_equal (again.status, 200);
    assert_string_not_equal (first.id, again.id);
    assert_true (json_equal (first.body, again.body));
    assert_int_equal (json_integer_value (json_object_get (again.body, "count")), 1);
    gl_reply_clear (&first);
    gl_reply_clear (&again);
    //  The same body with its keys in another order is the same request.
    json_t *reordered = json_pack ("{s:i, s:s}", "n", 1, "slot", "s-17");
    assert_int_equal (gl_req_call (client, "test.count", "key-a", reordered, 5000, &again), 0);
    assert_int_equal (again.status, 200);
    assert_int_equal (json_integer_value (json_object_get (again.body, "count")), 1);
    gl_reply_clear (&again);
    json_decref (reordered);
    //  Another key, or no key, runs the handler.
    assert_int_equal (gl_req_call (client, "test.count", "key-b", body, 5000, &again), 0);
    assert_int_equal (json_integer_value (json_object_get (again.body, "count")), 2);
    gl_reply_clear (&again);
    assert_int_equal (gl_req_call (client, "test.count", NULL, body, 5000, &again), 0);
    gl_reply_clear (&again);
    assert_int_equal (gl_req_call (client, "test.count", NULL, body, 5000, &again), 0);
    assert_int_equal (json_integer_value (json_object_get (again.body, "count")), 4);
    gl_reply_clear (&again);
    //  The same key with another body: 422, handler not run.
    json_t *other = json_pack ("{s:s, s:i}", "slot", "s-18", "n", 1);
    assert_int_equal (gl_req_call (client, "test.count", "key-a", other, 5000, &again), 0);
    assert_int_equal (again.status, 422);
    assert_string_equal (again.error_code, "key_reused");
    assert_string_equal (again.error_field, "key");
    gl_reply_clear (&again);
    json_decref (other);
    //  Errors below 500 are stored too.
    json_t *fail = json_pack ("{s:i}", "status", 409);
    assert_int_equal (gl_req_call (client, "test.fail", "key-c", fail, 5000, &again), 0);
    gl_reply_clear (&again);
    assert_int_equal (gl_req_call (client, "test.fail", "key-c", fail, 5000, &again), 0);
    assert_int_equal (again.status, 409);
    assert_string_equal (again.error_code, "test_failure");
    gl_reply_clear (&again);
    json_decref (fail);
    s_snapshot_t snap = s_snapshot (&srv);
    assert_int_equal (snap.count, 4);
    assert_int_equal (snap.stats.replayed, 3);
    assert_int_equal (snap.stats.key_reused, 1);
    //  The stored reply lives under prefix + op + ":" + key, with the configured expiry.
    redisContext *rc = redisConnect ("127.0.0.1", s_redis->port);
    redisReply *r = redisCommand (rc, "PTTL test:{idem1}:test.count:key-a");
    assert_int_equal (r->type, REDIS_REPLY_INTEGER);
    assert_true (r->integer > 0 && r->integer <= 60000);
    freeReplyObject (r);
    redisFree (rc);
    json_decref (body);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

static void
test_idempotency_5xx_not_stored (void **state)
{
    s_cfg_t cfg = { .idempotency = true, .prefix = "test:{idem2}:" };
    s_server_handle_t srv = s_server_start (&cfg);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "test.flaky", "key-f", NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 503);
    assert_string_equal (reply.error_code, "busy");
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_call (client, "test.flaky", "key-f", NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 200);
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_call (client, "test.flaky", "key-f", NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_int_equal (json_integer_value (json_object_get (reply.body, "attempt")), 2);
    gl_reply_clear (&reply);
    assert_int_equal (s_snapshot (&srv).flaky, 2);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

//  Two replicas share the store: while one runs a keyed request the other answers 409; once it
//  is done the other answers from the stored reply without running its handler.
static void
test_idempotency_across_replicas (void **state)
{
    s_reset_gate ();
    s_cfg_t cfg = { .idempotency = true, .prefix = "test:{idem3}:" };
    s_server_handle_t one = s_server_start (&cfg);
    s_server_handle_t two = s_server_start (&cfg);
    zsock_t *d = s_dealer (one.endpoint);
    gl_req_t *client = gl_req_new (two.endpoint);
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    s_send_map (d, s_request (id, "test.block", 60000, "key-r", json_pack ("{s:i}", "n", 9)));
    s_wait_entered (1);
    json_t *body = json_pack ("{s:i}", "n", 9);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "test.block", "key-r", body, 5000, &reply), 0);
    assert_int_equal (reply.status, 409);
    assert_string_equal (reply.error_code, "in_progress");
    gl_reply_clear (&reply);
    atomic_fetch_add (&s_permits, 1);
    json_t *first = s_recv_reply (d);
    assert_int_equal (s_status (first), 200);
    assert_int_equal (gl_req_call (client, "test.block", "key-r", body, 5000, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_true (json_equal (reply.body, json_object_get (first, "body")));
    gl_reply_clear (&reply);
    json_decref (first);
    assert_int_equal (s_snapshot (&one).block, 1);
    s_snapshot_t snap = s_snapshot (&two);
    assert_int_equal (snap.block, 0);
    assert_int_equal (snap.stats.in_progress, 1);
    assert_int_equal (snap.stats.replayed, 1);
    json_decref (body);
    gl_req_destroy (&client);
    zsock_destroy (&d);
    s_server_stop (&one);
    s_server_stop (&two);
}

//  A handler that stores its own reply with its effect: the server keeps the handler's write.
static void
test_idempotency_handler_transaction (void **state)
{
    s_cfg_t cfg = { .idempotency = true, .prefix = "test:{idem4}:" };
    s_server_handle_t srv = s_server_start (&cfg);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "test.tx", "key-t", NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_string_equal (json_string_value (json_object_get (reply.body, "stored_by")), "server");
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_call (client, "test.tx", "key-t", NULL, 5000, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_string_equal (json_string_value (json_object_get (reply.body, "stored_by")), "handler");
    gl_reply_clear (&reply);
    redisContext *rc = redisConnect ("127.0.0.1", s_redis->port);
    redisReply *r = redisCommand (rc, "GET test:tx:counter");
    assert_int_equal (r->type, REDIS_REPLY_STRING);
    assert_string_equal (r->str, "1");
    freeReplyObject (r);
    redisFree (rc);
    assert_int_equal (s_snapshot (&srv).tx, 1);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

//  Without its store the server cannot promise idempotency: keyed requests get 503 and are not
//  run; requests without a key are still served.
static void
test_idempotency_store_down (void **state)
{
    s_cfg_t cfg = { .idempotency = true, .prefix = "test:{idem5}:" };
    s_server_handle_t srv = s_server_start (&cfg);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_testredis_kill (s_redis);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "test.count", "key-d", NULL, 10000, &reply), 0);
    assert_int_equal (reply.status, 503);
    assert_string_equal (reply.error_code, "unavailable");
    gl_reply_clear (&reply);
    assert_int_equal (gl_req_call (client, "test.count", NULL, NULL, 10000, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_int_equal (json_integer_value (json_object_get (reply.body, "count")), 1);
    gl_reply_clear (&reply);
    s_snapshot_t snap = s_snapshot (&srv);
    assert_int_equal (snap.count, 1);
    assert_int_equal (snap.stats.idem_errors, 1);
    assert_int_equal (gl_testredis_restart (s_redis), 0);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

//  A server that answers badly: garbage and other ids are discarded, a reply with the call's id
//  that breaks the format is 502.
static void
s_bad_server_actor (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "tcp://127.0.0.1:%d", port);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != router)
            break;
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *identity = zmsg_pop (msg);
        zframe_t *payload = zmsg_pop (msg);
        gl_mp_limits_t limits = gl_mp_limits_default ();
        json_t *req = gl_mp_decode (zframe_data (payload), zframe_size (payload), &limits, NULL, 0);
        const char *id = json_string_value (json_object_get (req, "id"));
        char other[GL_ID_LEN + 1];
        gl_id_new (other);
        json_t *replies[] = {
            json_pack ("{s:i, s:s, s:i, s:{}, s:n}", "v", 1, "id", other, "status", 200, "body",
                       "error"),
            json_pack ("{s:i, s:s, s:s, s:{}, s:n}", "v", 1, "id", id, "status", "200", "body",
                       "error"),
        };
        zmsg_t *junk = zmsg_new ();
        zmsg_append (junk, &(zframe_t *) { zframe_dup (identity) });
        zmsg_addstr (junk, "\xc1 not msgpack");
        zmsg_send (&junk, router);
        for (int i = 0; i < 2; i++) {
            char *buf;
            size_t len;
            gl_mp_encode (replies[i], &buf, &len);
            zmsg_t *out = zmsg_new ();
            zmsg_append (out, &(zframe_t *) { zframe_dup (identity) });
            zmsg_addmem (out, buf, len);
            zmsg_send (&out, router);
            free (buf);
            json_decref (replies[i]);
        }
        json_decref (req);
        zframe_destroy (&identity);
        zframe_destroy (&payload);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
test_bad_reply (void **state)
{
    zactor_t *bad = zactor_new (s_bad_server_actor, NULL);
    char *endpoint = zstr_recv (bad);
    gl_req_t *client = gl_req_new (endpoint);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 5000, &reply), -1);
    assert_int_equal (reply.status, 502);
    assert_string_equal (reply.error_code, "bad_reply");
    assert_int_equal (gl_req_discarded (client), 2);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
    zstr_free (&endpoint);
    zactor_destroy (&bad);
}

//  --------------------------------------------------------------------------------------------
//  The asynchronous side

//  Wait for gl_req_fd as an event loop would, then read one answer: the fd is only polled after
//  gl_req_recv said 0, so a missed edge (the contract broken) fails the test instead of being
//  papered over by a periodic look.
static void
s_async_next (gl_req_t *client, gl_reply_t *reply)
{
    int64_t until = gl_mono_ms () + S_WAIT_MS;
    while (gl_req_recv (client, reply) != 1) {
        int64_t left = until - gl_mono_ms ();
        if (left <= 0)
            fail_msg ("no asynchronous answer: an edge of gl_req_fd was missed");
        struct pollfd pfd = { gl_req_fd (client), POLLIN, 0 };
        poll (&pfd, 1, (int) left);
    }
}

//  Many calls outstanding at once on one socket: each answer names its call, none is crossed,
//  lost or doubled, and the socket's edge is never missed.
static void
test_async_many_outstanding (void **state)
{
    s_server_handle_t srv = s_server_start (NULL);
    gl_req_t *client = gl_req_new (srv.endpoint);
    enum { N = 300 };
    char ids[N][GL_ID_LEN + 1];
    bool seen[N] = { false };
    gl_reply_t reply = { 0 };
    for (int i = 0; i < N; i++) {
        json_t *body = json_pack ("{s:i}", "n", i);
        assert_int_equal (gl_req_send (client, "test.echo", NULL, body, 10000, &reply), 0);
        assert_true (gl_id_valid (reply.id));
        assert_null (reply.body);
        memcpy (ids[i], reply.id, sizeof ids[i]);
        json_decref (body);
    }
    assert_int_equal (gl_req_outstanding (client), N);
    for (int got = 0; got < N; got++) {
        s_async_next (client, &reply);
        assert_int_equal (reply.status, 200);
        assert_false (reply.local);
        int n = (int) json_integer_value (
            json_object_get (json_object_get (reply.body, "echo"), "n"));
        assert_true (n >= 0 && n < N);
        assert_string_equal (reply.id, ids[n]);
        assert_false (seen[n]);
        seen[n] = true;
    }
    assert_int_equal (gl_req_outstanding (client), 0);
    assert_int_equal (gl_req_recv (client, &reply), 0);
    assert_int_equal (gl_req_discarded (client), 0);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

//  Requests made before any server is there are kept, in order, and go out when one connects.
static void
test_async_kept_until_connected (void **state)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", gl_test_free_port ());
    gl_req_t *client = gl_req_new (endpoint);
    gl_reply_t reply = { 0 };
    char first[GL_ID_LEN + 1];
    json_t *body = json_pack ("{s:i}", "n", 1);
    assert_int_equal (gl_req_send (client, "test.count", NULL, body, 10000, &reply), 0);
    memcpy (first, reply.id, sizeof first);
    assert_int_equal (gl_req_send (client, "test.count", NULL, body, 10000, &reply), 0);
    json_decref (body);
    assert_int_equal (gl_req_recv (client, &reply), 0);     //  nobody to send to yet
    s_cfg_t cfg = { .bind = endpoint };
    s_server_handle_t srv = s_server_start (&cfg);
    s_async_next (client, &reply);
    assert_int_equal (reply.status, 200);
    //  The first request made was the first served.
    assert_string_equal (reply.id, first);
    assert_int_equal (json_integer_value (json_object_get (reply.body, "count")), 1);
    s_async_next (client, &reply);
    assert_int_equal (json_integer_value (json_object_get (reply.body, "count")), 2);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

//  At most GL_REQ_OUTSTANDING_MAX: the next is refused until one is forgotten or its timeout
//  has passed. Whatever is outstanding at destroy is freed (ASan).
static void
test_async_bound (void **state)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", gl_test_free_port ());
    gl_req_t *client = gl_req_new (endpoint);
    gl_reply_t reply = { 0 };
    char some[GL_ID_LEN + 1];
    for (int i = 0; i < GL_REQ_OUTSTANDING_MAX; i++) {
        assert_int_equal (gl_req_send (client, "test.echo", "k", NULL, 60000, &reply), 0);
        if (i == 7)
            memcpy (some, reply.id, sizeof some);
    }
    assert_int_equal (gl_req_send (client, "test.echo", NULL, NULL, 60000, &reply), -1);
    assert_int_equal (reply.status, 503);
    assert_string_equal (reply.error_code, "busy");
    assert_true (reply.local);
    assert_int_equal (gl_req_outstanding (client), GL_REQ_OUTSTANDING_MAX);
    gl_req_forget (client, some);
    gl_req_forget (client, some);           //  twice: ignored
    gl_req_forget (client, "not-an-id");
    assert_int_equal (gl_req_outstanding (client), GL_REQ_OUTSTANDING_MAX - 1);
    //  Room for one with a 1 ms timeout; once it has passed, that call makes room itself.
    assert_int_equal (gl_req_send (client, "test.echo", NULL, NULL, 1, &reply), 0);
    gl_sleep_ms (5);
    assert_int_equal (gl_req_send (client, "test.echo", NULL, NULL, 60000, &reply), 0);
    assert_int_equal (gl_req_outstanding (client), GL_REQ_OUTSTANDING_MAX);
    //  Bad arguments are refused before the bound is even looked at, nothing outstanding added.
    assert_int_equal (gl_req_send (client, "Bad Op", NULL, NULL, 1000, &reply), -1);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "op");
    json_t *array = json_array ();
    assert_int_equal (gl_req_send (client, "test.echo", "two words", NULL, 1000, &reply), -1);
    assert_string_equal (reply.error_field, "key");
    assert_int_equal (gl_req_send (client, "test.echo", NULL, array, 1000, &reply), -1);
    assert_string_equal (reply.error_field, "body");
    json_decref (array);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
}

//  A call given up on: its late answer is discarded and counted, and the next call's answer is
//  its own.
static void
test_async_forget (void **state)
{
    s_reset_gate ();
    s_server_handle_t srv = s_server_start (NULL);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_reply_t reply = { 0 };
    //  Connected first, so that the request below is sent at once rather than kept until this
    //  test, which runs no loop, calls gl_req_recv.
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 10000, &reply), 0);
    json_t *one = json_pack ("{s:i}", "n", 1);
    assert_int_equal (gl_req_send (client, "test.block", NULL, one, 10000, &reply), 0);
    json_decref (one);
    char held[GL_ID_LEN + 1];
    memcpy (held, reply.id, sizeof held);
    s_wait_entered (1);
    gl_req_forget (client, held);
    assert_int_equal (gl_req_outstanding (client), 0);
    atomic_fetch_add (&s_permits, 1);
    json_t *two = json_pack ("{s:i}", "n", 2);
    assert_int_equal (gl_req_send (client, "test.echo", NULL, two, 10000, &reply), 0);
    json_decref (two);
    char next[GL_ID_LEN + 1];
    memcpy (next, reply.id, sizeof next);
    //  The server answers in order: the held call's answer comes first and is dropped.
    s_async_next (client, &reply);
    assert_string_equal (reply.id, next);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (reply.body, "echo"),
                                                           "n")),
                      2);
    assert_int_equal (gl_req_discarded (client), 1);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

//  Malformed replies on the asynchronous side: unreadable frames and answers to other ids are
//  discarded; an answer with our id that breaks the format ends that call with 502 bad_reply.
static void
test_async_bad_reply (void **state)
{
    zactor_t *bad = zactor_new (s_bad_server_actor, NULL);
    char *endpoint = zstr_recv (bad);
    gl_req_t *client = gl_req_new (endpoint);
    gl_reply_t reply = { 0 };
    assert_int_equal (gl_req_send (client, "test.echo", NULL, NULL, 10000, &reply), 0);
    char id[GL_ID_LEN + 1];
    memcpy (id, reply.id, sizeof id);
    s_async_next (client, &reply);
    assert_string_equal (reply.id, id);
    assert_int_equal (reply.status, 502);
    assert_string_equal (reply.error_code, "bad_reply");
    assert_true (reply.local);
    assert_non_null (reply.body);
    assert_int_equal (gl_req_discarded (client), 2);
    assert_int_equal (gl_req_outstanding (client), 0);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
    zstr_free (&endpoint);
    zactor_destroy (&bad);
}

//  gl_req_call on a client with asynchronous calls outstanding: an answer it reads for one of
//  them is kept for gl_req_recv (and gl_req_ready says so), not discarded.
static void
test_async_and_call (void **state)
{
    s_reset_gate ();
    s_server_handle_t srv = s_server_start (NULL);
    gl_req_t *client = gl_req_new (srv.endpoint);
    gl_reply_t reply = { 0 }, sync = { 0 };
    json_t *one = json_pack ("{s:i}", "n", 1);
    assert_int_equal (gl_req_send (client, "test.block", NULL, one, 10000, &reply), 0);
    json_decref (one);
    char async[GL_ID_LEN + 1];
    memcpy (async, reply.id, sizeof async);
    atomic_fetch_add (&s_permits, 1);
    //  Not connected yet when the call above was made, so it was kept; gl_req_call sends it
    //  before its own, and the server answers in that order.
    assert_int_equal (gl_req_call (client, "test.echo", NULL, NULL, 10000, &sync), 0);
    assert_int_equal (sync.status, 200);
    assert_true (gl_req_ready (client));
    assert_int_equal (gl_req_recv (client, &reply), 1);
    assert_string_equal (reply.id, async);
    assert_int_equal (reply.status, 200);
    assert_int_equal (gl_req_discarded (client), 0);
    assert_int_equal (gl_req_recv (client, &reply), 0);
    gl_reply_clear (&reply);
    gl_reply_clear (&sync);
    gl_req_destroy (&client);
    s_server_stop (&srv);
}

static int
s_setup (void **state)
{
    gl_log_init ("test_reqrep", GL_LOG_WARN, false);
    s_redis = gl_testredis_start (NULL);
    return s_redis ? 0 : -1;
}

static int
s_teardown (void **state)
{
    gl_testredis_destroy (&s_redis);
    return 0;
}

//  The token a client sends: the first of a comma-separated list, spaces trimmed.
static void
test_first_token (void **state)
{
    (void) state;
    char out[GL_REQ_AUTH_MAX + 1];
    gl_req_first_token (" tok-a , tok-b", out);
    assert_string_equal (out, "tok-a");
    gl_req_first_token ("only", out);
    assert_string_equal (out, "only");
    gl_req_first_token ("", out);
    assert_string_equal (out, "");
    gl_req_first_token (NULL, out);
    assert_string_equal (out, "");
    gl_req_first_token (",second", out);
    assert_string_equal (out, "");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_first_token),
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_handler_statuses),
        cmocka_unit_test (test_unknown_op),
        cmocka_unit_test (test_client_rejects_locally),
        cmocka_unit_test (test_register_rules),
        cmocka_unit_test (test_parse_request),
        cmocka_unit_test (test_malformed_frames),
        cmocka_unit_test (test_nothing_listens),
        cmocka_unit_test (test_stale_reply_discarded),
        cmocka_unit_test (test_expired_before_dispatch),
        cmocka_unit_test (test_auth_tokens),
        cmocka_unit_test (test_idempotency_same_key_runs_once),
        cmocka_unit_test (test_idempotency_5xx_not_stored),
        cmocka_unit_test (test_idempotency_across_replicas),
        cmocka_unit_test (test_idempotency_handler_transaction),
        cmocka_unit_test (test_idempotency_store_down),
        cmocka_unit_test (test_bad_reply),
        cmocka_unit_test (test_async_many_outstanding),
        cmocka_unit_test (test_async_kept_until_connected),
        cmocka_unit_test (test_async_bound),
        cmocka_unit_test (test_async_forget),
        cmocka_unit_test (test_async_bad_reply),
        cmocka_unit_test (test_async_and_call),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
