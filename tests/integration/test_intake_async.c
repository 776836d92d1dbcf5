/*  intake's asynchronous contact writes (services/intake/aredis.c): many POST /api/v1/contacts in
    flight at once on one intake, over real HTTP against a real redis-server.

    - Concurrency: 48 requests sent before any answer is read; each gets its own 201 (distinct
      ids, each id's record readable), and each contact has exactly one contact.created event.
    - A stalled Redis (SIGSTOP): the requests in flight are answered 503 once the connection's
      timeout passes (GL_REDIS_TIMEOUT_MS), intake keeps answering /health meanwhile, and after
      SIGCONT every request retried with its Idempotency-Key ends with exactly one contact and
      exactly one event — whether or not the stalled script ran when Redis woke up.
    - Redis killed (SIGKILL) and restarted with its AOF: the asynchronous connection comes back
      and writes go on; nothing acknowledged before the kill is lost (appendfsync always).
    - SIGTERM with a write in flight: intake drains, the write gets its 201, intake exits 0.

    ctest: timeout=240 */
#include "gl/gl_clock.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include "gl_testintake.h"
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

enum { U_ADMIN, U_AGENT, U_COUNT };
static gl_testintake_account_t s_users[U_COUNT] = {
    { "admin", NULL, NULL, "", "" },
    { "agent1", "[\"agent\"]", "[\"unit-a\"]", "", "" },
};

#define GL_TESTINTAKE_HARNESS
#include "gl_testintake.h"

#define T_INFLIGHT 48
#define T_STALLED  8

static const char *s_body = "{\"channel\":\"call\",\"anonymous\":true,\"language\":\"ar\","
                            "\"categories\":[\"information_request\"],"
                            "\"outcome\":\"information_given\"}";

//  Send POST /api/v1/contacts on a new connection without reading the answer; the socket.
static int
t_send_contact (const char *idem_key)
{
    int fd = gl_test_http_connect (s_in->http_port);
    assert_true (fd >= 0);
    char idem[160] = "";
    if (idem_key)
        snprintf (idem, sizeof idem, "Idempotency-Key: %s\r\n", idem_key);
    char request[2048];
    int n = snprintf (request, sizeof request,
                      "POST /api/v1/contacts HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      "Authorization: Bearer %s\r\n%sContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n%s",
                      s_users[U_AGENT].token, idem, strlen (s_body), s_body);
    assert_true (n > 0 && (size_t) n < sizeof request);
    assert_int_equal (send (fd, request, (size_t) n, MSG_NOSIGNAL), n);
    return fd;
}

//  Read the answer on fd (until the server closes) and close it: the status, and the contact id
//  of a 201 in id.
static int
t_read_answer (int fd, char id[GL_ID_LEN + 1])
{
    size_t cap = 65536, len = 0;
    char *buf = malloc (cap);
    assert_non_null (buf);
    ssize_t got;
    while ((got = recv (fd, buf + len, cap - len - 1, 0)) > 0) {
        len += (size_t) got;
        assert_true (len < cap - 1);
    }
    close (fd);
    buf[len] = 0;
    int status = 0;
    sscanf (buf, "HTTP/1.1 %d", &status);
    id[0] = 0;
    const char *body = strstr (buf, "\r\n\r\n");
    if (status == 201 && body) {
        json_t *json = json_loads (body + 4, 0, NULL);
        const char *value = json_string_value (json_object_get (json, "id"));
        if (value && gl_id_valid (value))
            snprintf (id, GL_ID_LEN + 1, "%s", value);
        json_decref (json);
    }
    free (buf);
    return status;
}

static int
t_setup (void **state)
{
    (void) state;
    //  The session cache keeps the agent's token checked while Redis is stopped, so what the
    //  stall shows is the write path's behaviour.
    const char *extra[] = { "GL_REDIS_TIMEOUT_MS=1000", "GL_INTAKE_SESSION_CACHE_MS=10000", NULL };
    if (t_setup_common (extra) != 0)
        return -1;
    //  Every acknowledged write on disk before its answer (as deployed), for the kill test.
    redisReply *r = gl_redis_cmd (s_rc, "CONFIG SET appendfsync always");
    if (!r || r->type == REDIS_REPLY_ERROR)
        return -1;
    freeReplyObject (r);
    return 0;
}

static void
test_many_in_flight (void **state)
{
    (void) state;
    int fds[T_INFLIGHT];
    for (int i = 0; i < T_INFLIGHT; i++)
        fds[i] = t_send_contact (NULL);
    char ids[T_INFLIGHT][GL_ID_LEN + 1];
    for (int i = 0; i < T_INFLIGHT; i++) {
        assert_int_equal (t_read_answer (fds[i], ids[i]), 201);
        assert_true (gl_id_valid (ids[i]));
        for (int j = 0; j < i; j++)
            assert_string_not_equal (ids[i], ids[j]);
    }
    //  They went over the asynchronous connection, all but the very first write of this intake,
    //  which goes synchronously to load the script.
    t_resp_t metrics
        = gl_testintake_request (s_in->health_port, "GET", "/metrics", NULL, NULL, NULL);
    assert_int_equal (metrics.status, 200);
    const char *line = strstr (metrics.raw, "\ngreenline_intake_redis_async_commands_total ");
    assert_non_null (line);
    assert_true (atol (line + strlen ("\ngreenline_intake_redis_async_commands_total "))
                 >= T_INFLIGHT - 1);
    gl_test_http_free (&metrics);
    for (int i = 0; i < T_INFLIGHT; i++) {
        char path[96];
        snprintf (path, sizeof path, "/api/v1/contacts/%.32s", ids[i]);
        assert_int_equal (t_call_status (U_AGENT, "GET", path, NULL), 200);
        json_decref (t_wait_events ("contact.created", ids[i], 1));
    }
}

//  Contacts in Redis (the records' keys).
static long long
t_contacts_in_redis (void)
{
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = gl_redis_cmd (s_rc, "SCAN %s MATCH intake:{intake}:contact:* COUNT 1000",
                                      cursor);
        assert_non_null (r);
        assert_int_equal (r->type, REDIS_REPLY_ARRAY);
        snprintf (cursor, sizeof cursor, "%s", r->element[0]->str);
        n += (long long) r->element[1]->elements;
        freeReplyObject (r);
    } while (strcmp (cursor, "0") != 0);
    return n;
}

static void
test_stalled_redis (void **state)
{
    (void) state;
    long long before = t_contacts_in_redis ();
    char keys[T_STALLED][48];
    int fds[T_STALLED];
    //  The agent's session is in intake's cache (checked just now).
    assert_int_equal (t_call_status (U_AGENT, "GET", "/api/v1/auth/me", NULL), 200);
    assert_int_equal (kill (s_redis->pid, SIGSTOP), 0);
    for (int i = 0; i < T_STALLED; i++) {
        snprintf (keys[i], sizeof keys[i], "stall-%d-%08x", i, (unsigned) getpid ());
        fds[i] = t_send_contact (keys[i]);
    }
    //  intake itself still answers while Redis says nothing.
    t_resp_t health
        = gl_testintake_request (s_in->http_port, "GET", "/health", NULL, NULL, NULL);
    assert_int_equal (health.status, 200);
    gl_test_http_free (&health);
    //  The writes in flight: 503 after the timeout (their outcome is unknown to intake).
    for (int i = 0; i < T_STALLED; i++) {
        char id[GL_ID_LEN + 1];
        assert_int_equal (t_read_answer (fds[i], id), 503);
    }
    assert_int_equal (kill (s_redis->pid, SIGCONT), 0);
    //  The client retries each with its key: 201 (a first write, or the stalled one replayed).
    char ids[T_STALLED][GL_ID_LEN + 1];
    for (int i = 0; i < T_STALLED; i++) {
        int status = 0;
        int64_t deadline = gl_mono_ms () + 30000;
        while (gl_mono_ms () < deadline) {
            status = t_read_answer (t_send_contact (keys[i]), ids[i]);
            if (status != 503)
                break;
            gl_sleep_ms (100);
        }
        assert_int_equal (status, 201);
    }
    for (int i = 0; i < T_STALLED; i++)
        json_decref (t_wait_events ("contact.created", ids[i], 1));
    //  Exactly one contact per key, and the outbox emptied (no event left behind or doubled).
    assert_int_equal (t_contacts_in_redis () - before, T_STALLED);
    int64_t deadline = gl_mono_ms () + 30000;
    long long left = -1;
    while (gl_mono_ms () < deadline) {
        redisReply *r = gl_redis_cmd (s_rc, "HLEN intake:{intake}:outbox");
        assert_non_null (r);
        left = r->integer;
        freeReplyObject (r);
        if (left == 0)
            break;
        gl_sleep_ms (100);
    }
    assert_int_equal (left, 0);
    for (int i = 0; i < T_STALLED; i++)
        json_decref (t_wait_events ("contact.created", ids[i], 1));
}

static void
test_redis_killed (void **state)
{
    (void) state;
    char id[GL_ID_LEN + 1];
    assert_int_equal (t_read_answer (t_send_contact (NULL), id), 201);
    gl_testredis_kill (s_redis);
    assert_int_equal (gl_testredis_restart (s_redis), 0);
    //  The test's own connection died with the server: the first command finds out.
    int64_t reconnect_by = gl_mono_ms () + 10000;
    while (gl_redis_ping (s_rc) != 0 && gl_mono_ms () < reconnect_by)
        gl_sleep_ms (50);
    //  Acknowledged before the kill: still there (the test redis runs appendfsync always).
    char path[96];
    snprintf (path, sizeof path, "/api/v1/contacts/%.32s", id);
    int64_t deadline = gl_mono_ms () + 30000;
    int status = 0;
    while (gl_mono_ms () < deadline && (status = t_call_status (U_AGENT, "GET", path, NULL)) != 200)
        gl_sleep_ms (100);
    assert_int_equal (status, 200);
    //  And writes go on (synchronously at first, then over the reconnected async connection).
    for (int i = 0; i < 20; i++) {
        char next[GL_ID_LEN + 1];
        int fd = t_send_contact (NULL);
        assert_int_equal (t_read_answer (fd, next), 201);
        json_decref (t_wait_events ("contact.created", next, 1));
        gl_sleep_ms (100);
    }
}

//  SIGTERM while a write is in flight (Redis stopped, so its script waits): intake drains, and
//  the write gets its real 201 once Redis answers, before intake exits 0. Last: intake is gone.
static void
test_stop_drains (void **state)
{
    (void) state;
    assert_int_equal (t_call_status (U_AGENT, "GET", "/api/v1/auth/me", NULL), 200);
    assert_int_equal (kill (s_redis->pid, SIGSTOP), 0);
    int fd = t_send_contact ("drain-key");
    gl_sleep_ms (100);                  //  read and sent on by now (nothing answers it)
    assert_int_equal (kill (s_in->pid, SIGTERM), 0);
    gl_sleep_ms (300);
    assert_int_equal (kill (s_redis->pid, SIGCONT), 0);
    char id[GL_ID_LEN + 1];
    assert_int_equal (t_read_answer (fd, id), 201);
    int status = gl_test_wait (s_in->pid, 20000);
    s_in->pid = -1;
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    json_decref (t_wait_events ("contact.created", id, 1));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_many_in_flight),
        cmocka_unit_test (test_stalled_redis),
        cmocka_unit_test (test_redis_killed),
        cmocka_unit_test (test_stop_drains),
    };
    return cmocka_run_group_tests_name ("intake async writes", tests, t_setup, t_teardown);
}
