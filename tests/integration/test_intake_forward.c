/*  intake's forwarded routes (forward.c) against a stand-in service: a real gl_rep server on a
    loopback ROUTER in this test, registered as notifier. The request carries who is calling
    (id, roles, units), the path and query parameters and the body; answers and errors pass
    through; a service that is not configured or does not answer in time is a 503 naming it;
    changing requests carry a bus key derived from the user and the Idempotency-Key header; an
    audited route writes the audit trail. And the other direction: a service asking intake for
    the number of an abandoned call it must call back (intake.delivery_details by call id).

    Forwarding never holds up intake's loop: a second stand-in (registered as referral and as
    scheduler) holds requests until the test lets them go. While it holds one, intake answers
    /health and a request to the first stand-in; the held request gets its answer when it is
    let go (referral: a long timeout), or its 503 at the deadline while still held (scheduler:
    a short one). Many requests outstanding at once each get their own answer; a client that
    goes away while its request waits, and intake stopping with one waiting (answered 503),
    leave intake clean (it exits 0 under ASan).
    ctest: timeout=120 */
#include "gl/gl_clock.h"
#include "gl/gl_rep.h"
#include "gl/gl_req.h"
#include "gl_testintake.h"
#include <poll.h>
#include "gl_testrep.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define S_WAIT_MS   30000       //  bound on waits that only fail when the code is broken

static gl_testredis_t *s_redis;
static gl_testintake_t *s_intake;
static gl_rep_t *s_rep;
static atomic_bool s_stop;
static atomic_int s_slow_done;          //  slow answers finished (the server is free again)
static gl_testrep_t *s_thread;        //  serves s_rep
//  The holding stand-in: held counts the requests that reached a holding handler, released the
//  ones the test has let go.
static gl_rep_t *s_hold;
static gl_testrep_t *s_hold_thread;   //  serves s_hold
static atomic_int s_held, s_released;
static char s_sup[128];                 //  a supervisor's token for the tests below

//  notifier.status: "missing" -> 404, "slow" -> answers after the client gave up, else 200 with
//  the request body and the bus key echoed.
static int
s_status (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    (void) arg;
    const char *id = json_string_value (json_object_get (json_object_get (req->body, "params"),
                                                         "id"));
    if (id && strcmp (id, "missing") == 0)
        return gl_rep_error (err, 404, "not_found", "id", "no such notification");
    if (id && strcmp (id, "slow") == 0) {
        gl_sleep_ms (800);
        atomic_fetch_add (&s_slow_done, 1);
    }
    *reply = json_pack ("{s:O, s:s}", "got", req->body, "key", req->key);
    return 200;
}

static int
s_replay (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    (void) arg;
    (void) err;
    *reply = json_pack ("{s:O, s:s}", "got", req->body, "key", req->key);
    return 200;
}

//  referral.units and scheduler.centres: wait until the test lets this one go (or the test
//  ends), then answer 200 with its number.
static int
s_held_op (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    (void) arg;
    (void) req;
    (void) err;
    int n = atomic_fetch_add (&s_held, 1) + 1;
    int64_t until = gl_mono_ms () + 2 * S_WAIT_MS;
    while (atomic_load (&s_released) < n && !atomic_load (&s_stop) && gl_mono_ms () < until)
        gl_sleep_ms (2);
    *reply = json_pack ("{s:i}", "held", n);
    return 200;
}

//  referral.lifecycle: at once, the path's id echoed.
static int
s_prompt_op (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    (void) arg;
    (void) err;
    *reply = json_pack ("{s:O}", "got", req->body);
    return 200;
}


//  Send a request on a connection of its own and leave the answer unread. The socket.
static int
s_open (const char *path, const char *token)
{
    int fd = gl_test_http_connect (s_intake->http_port);
    assert_true (fd >= 0);
    char request[1024];
    int n = snprintf (request, sizeof request,
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      "Authorization: Bearer %s\r\n\r\n",
                      path, token);
    assert_int_equal (write (fd, request, (size_t) n), n);
    return fd;
}

//  True when an answer (or the end) is waiting on fd.
static bool
s_answered (int fd)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    return poll (&pfd, 1, 0) == 1;
}

//  Read the answer on fd until intake closes it; close fd. Its status; the body in *json.
static int
s_finish (int fd, json_t **json)
{
    struct timeval tv = { S_WAIT_MS / 1000, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16384];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read (fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t) n;
    buf[len] = 0;
    close (fd);
    int status = 0;
    sscanf (buf, "HTTP/1.1 %d", &status);
    const char *body = strstr (buf, "\r\n\r\n");
    *json = body ? json_loads (body + 4, 0, NULL) : NULL;
    return status;
}

static const char *
s_error_code (const json_t *json)
{
    return json_string_value (json_object_get (json_object_get (json, "error"), "code"));
}

//  Lines of intake's log saying that a scheduler.centres request timed out.
static int
s_timeouts_logged (void)
{
    char *log = gl_testintake_log (s_intake);
    int n = 0;
    for (const char *p = log; p && (p = strstr (p, "forward: scheduler.centres ")); p++) {
        const char *timeout = strstr (p, " 504 timeout"), *eol = strchr (p, '\n');
        n += timeout && (!eol || timeout < eol);
    }
    free (log);
    return n;
}

//  Wait until count requests have reached the holding stand-in.
static void
s_wait_held (int count)
{
    int64_t until = gl_mono_ms () + S_WAIT_MS;
    while (atomic_load (&s_held) < count && gl_mono_ms () < until)
        gl_sleep_ms (2);
    assert_true (atomic_load (&s_held) >= count);
}

static json_t *
s_call_json (const char *method, const char *path, const char *token, const char *extra,
             const char *body, int status)
{
    gl_test_resp_t resp = gl_testintake_call (s_intake, method, path, token, extra, body);
    if (resp.status != status)
        fprintf (stderr, "expected %d, got: %s\n", status, resp.raw);
    assert_int_equal (resp.status, status);
    json_t *json = gl_test_json (&resp);
    gl_test_http_free (&resp);
    assert_non_null (json);
    return json;
}

static void
test_request_and_answers (void **state)
{
    (void) state;
    char sup[128], sup_id[GL_ID_LEN + 1], agent[128], agent_id[GL_ID_LEN + 1];
    assert_int_equal (gl_testintake_user (s_intake, "sup", "[\"supervisor\"]", "[\"unit-a\"]",
                                          sup, sup_id),
                      0);
    assert_int_equal (gl_testintake_user (s_intake, "agent", "[\"agent\"]", NULL, agent,
                                          agent_id),
                      0);
    //  Who is calling, the path and the query reach the service.
    json_t *json = s_call_json ("GET", "/api/v1/notifications/abc?x=1&y=two%20words", sup, NULL,
                                NULL, 200);
    json_t *got = json_object_get (json, "got");
    json_t *caller = json_object_get (got, "caller");
    assert_string_equal (json_string_value (json_object_get (caller, "user_id")), sup_id);
    assert_int_equal (json_array_size (json_object_get (caller, "roles")), 1);
    assert_string_equal (json_string_value (json_array_get (json_object_get (caller, "roles"), 0)),
                         "supervisor");
    assert_string_equal (json_string_value (json_array_get (json_object_get (caller, "units"), 0)),
                         "unit-a");
    assert_string_equal (json_string_value (json_object_get (json_object_get (got, "params"),
                                                             "id")),
                         "abc");
    assert_string_equal (json_string_value (json_object_get (json_object_get (got, "query"), "y")),
                         "two words");
    assert_int_equal (json_object_size (json_object_get (got, "body")), 0);
    assert_string_equal (json_string_value (json_object_get (json, "key")), "");
    json_decref (json);

    //  The route's roles are intake's to check: an agent never reaches the service.
    json = s_call_json ("GET", "/api/v1/notifications/abc", agent, NULL, NULL, 403);
    json_decref (json);
    //  The service's refusal passes through with its code and field.
    json = s_call_json ("GET", "/api/v1/notifications/missing", sup, NULL, NULL, 404);
    json_t *error = json_object_get (json, "error");
    assert_string_equal (json_string_value (json_object_get (error, "code")), "not_found");
    assert_string_equal (json_string_value (json_object_get (error, "field")), "id");
    json_decref (json);
    //  No answer within the timeout: 503 naming the service.
    json = s_call_json ("GET", "/api/v1/notifications/slow", sup, NULL, NULL, 503);
    assert_string_equal (json_string_value (json_object_get (json_object_get (json, "error"),
                                                             "code")),
                         "notifier_unavailable");
    json_decref (json);
    while (atomic_load (&s_slow_done) < 1)     //  the stand-in serves one request at a time
        gl_sleep_ms (20);
    //  A service with no endpoint configured: 503 at once.
    json = s_call_json ("GET", "/api/v1/wallboard", sup, NULL, NULL, 503);
    assert_string_equal (json_string_value (json_object_get (json_object_get (json, "error"),
                                                             "code")),
                         "reporting_unavailable");
    json_decref (json);
}

static void
test_idempotency_and_audit (void **state)
{
    (void) state;
    char sup[128], sup_id[GL_ID_LEN + 1];
    assert_int_equal (gl_testintake_user (s_intake, "sup2", "[\"supervisor\"]", NULL, sup, sup_id),
                      0);
    char path[128], id[GL_ID_LEN + 1];
    gl_id_new (id);
    snprintf (path, sizeof path, "/api/v1/notifications/dead/%s/replay", id);
    const char *header = "Idempotency-Key: replay-1\r\n";
    json_t *a = s_call_json ("POST", path, sup, header, "{\"note\":\"again\"}", 200);
    json_t *b = s_call_json ("POST", path, sup, header, "{\"note\":\"again\"}", 200);
    json_t *c = s_call_json ("POST", path, s_intake->admin_token, header, "{}", 200);
    json_t *d = s_call_json ("POST", path, sup, NULL, "{}", 200);
    json_t *e = s_call_json ("POST", path, sup, NULL, "{}", 200);
    const char *ka = json_string_value (json_object_get (a, "key"));
    const char *kd = json_string_value (json_object_get (d, "key"));
    assert_int_equal (strlen (ka), 34);
    assert_true (strncmp (ka, "h-", 2) == 0);
    //  The same user and header: the same key (a retry); another user: another key; no header:
    //  a fresh key each time; nothing the client wrote is in the key.
    assert_string_equal (ka, json_string_value (json_object_get (b, "key")));
    assert_string_not_equal (ka, json_string_value (json_object_get (c, "key")));
    assert_true (strncmp (kd, "n-", 2) == 0);
    assert_string_not_equal (kd, json_string_value (json_object_get (e, "key")));
    assert_null (strstr (ka, "replay"));
    assert_string_equal (json_string_value (json_object_get (
                             json_object_get (json_object_get (a, "got"), "body"), "note")),
                         "again");
    json_decref (a);
    json_decref (b);
    json_decref (c);
    json_decref (d);
    json_decref (e);
    //  A malformed header is refused before anything is sent.
    json_t *bad = s_call_json ("POST", path, sup, "Idempotency-Key: two words\r\n", "{}", 400);
    assert_string_equal (json_string_value (json_object_get (json_object_get (bad, "error"),
                                                             "field")),
                         "Idempotency-Key");
    json_decref (bad);
    //  The audited route left one entry per request (6: the refused one never got that far).
    char query[256];
    snprintf (query, sizeof query, "/api/v1/audit?record_type=notifier.dead_replay&record_id=%s",
              id);
    json_t *audit = s_call_json ("GET", query, s_intake->admin_token, NULL, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (audit, "items")), 5);
    json_decref (audit);
}

//  An abandoned call has no case: delivery_details by its id answers the number it came from and
//  its IVR language, and the read is audited as a read of the call.
static void
test_delivery_for_a_call (void **state)
{
    (void) state;
    char sup[128], sup_id[GL_ID_LEN + 1];
    assert_int_equal (gl_testintake_user (s_intake, "sup3", "[\"supervisor\"]", NULL, sup, sup_id),
                      0);
    json_t *call = s_call_json ("POST", "/api/v1/calls", sup, NULL,
                                "{\"line\":\"green-1\",\"caller_number\":\"+256700000123\","
                                "\"language\":\"so\"}",
                                201);
    char id[GL_ID_LEN + 1], path[128];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (call, "id")));
    json_decref (call);
    snprintf (path, sizeof path, "/api/v1/calls/%s/abandon", id);
    json_decref (s_call_json ("POST", path, sup, NULL, "{}", 200));

    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_intake->router_port);
    gl_req_t *client = gl_req_new (endpoint);
    gl_req_set_auth (client, "tok-fwd");
    gl_reply_t reply = { 0 };
    json_t *body = json_pack ("{s:s, s:s, s:s}", "person_ref", id, "purpose", "callback",
                              "requester", "scheduler");
    assert_int_equal (gl_req_call (client, "intake.delivery_details", NULL, body, 10000, &reply),
                      0);
    assert_int_equal (reply.status, 200);
    assert_string_equal (json_string_value (json_object_get (reply.body, "phone")),
                         "+256700000123");
    assert_string_equal (json_string_value (json_object_get (reply.body, "language")), "so");
    json_decref (body);
    //  A call id intake never saw: 404.
    char other[GL_ID_LEN + 1];
    gl_id_new (other);
    body = json_pack ("{s:s, s:s, s:s}", "person_ref", other, "purpose", "callback", "requester",
                      "scheduler");
    assert_int_equal (gl_req_call (client, "intake.delivery_details", NULL, body, 10000, &reply),
                      0);
    assert_int_equal (reply.status, 404);
    json_decref (body);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
    char query[256];
    snprintf (query, sizeof query, "/api/v1/audit?record_type=call&record_id=%s&actor=scheduler",
              id);
    json_t *audit = s_call_json ("GET", query, s_intake->admin_token, NULL, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (audit, "items")), 1);
    json_decref (audit);
}

//  While a service holds a request, intake answers everyone else: the answers to /health and to
//  a request for another service come while the held one is still unanswered; the held one is
//  answered once the service lets it go.
static void
test_held_request_blocks_nobody (void **state)
{
    (void) state;
    char sup_id[GL_ID_LEN + 1];
    assert_int_equal (gl_testintake_user (s_intake, "sup4", "[\"supervisor\"]", NULL, s_sup,
                                          sup_id),
                      0);
    int base = atomic_load (&s_held);
    int held = s_open ("/api/v1/units", s_sup);
    s_wait_held (base + 1);
    json_decref (s_call_json ("GET", "/health", NULL, NULL, NULL, 200));
    json_t *json = s_call_json ("GET", "/api/v1/notifications/other", s_sup, NULL, NULL, 200);
    assert_string_equal (json_string_value (json_object_get (
                             json_object_get (json_object_get (json, "got"), "params"), "id")),
                         "other");
    json_decref (json);
    //  The service still holds it (only the test lets it go) and its timeout is a minute away.
    assert_false (s_answered (held));
    atomic_fetch_add (&s_released, 1);
    assert_int_equal (s_finish (held, &json), 200);
    assert_int_equal (json_integer_value (json_object_get (json, "held")), base + 1);
    json_decref (json);
}

//  A request the service holds past the deadline gets 503 naming the service, while the service
//  still holds it; its late answer is dropped.
static void
test_held_past_deadline (void **state)
{
    (void) state;
    int base = atomic_load (&s_held);
    int held = s_open ("/api/v1/centres", s_sup);
    s_wait_held (base + 1);
    json_t *json = NULL;
    assert_int_equal (s_finish (held, &json), 503);
    assert_string_equal (s_error_code (json), "scheduler_unavailable");
    json_decref (json);
    assert_int_equal (atomic_load (&s_held), base + 1);        //  never let go meanwhile
    atomic_fetch_add (&s_released, 1);
    json_decref (s_call_json ("GET", "/health", NULL, NULL, NULL, 200));
}

//  Many requests outstanding at once, on connections of their own: each answer is its own.
static void
test_many_outstanding (void **state)
{
    (void) state;
    enum { N = 60 };
    int fds[N];
    char path[128];
    for (int i = 0; i < N; i++) {
        snprintf (path, sizeof path, "/api/v1/referrals/r-%d/lifecycle", i);
        fds[i] = s_open (path, s_sup);
    }
    for (int i = N - 1; i >= 0; i--) {
        json_t *json = NULL;
        assert_int_equal (s_finish (fds[i], &json), 200);
        char want[32];
        snprintf (want, sizeof want, "r-%d", i);
        assert_string_equal (json_string_value (json_object_get (
                                 json_object_get (json_object_get (json, "got"), "params"),
                                 "id")),
                             want);
        json_decref (json);
    }
}

//  A client that goes away while its request waits: when the answer comes, and when the deadline
//  passes first. intake goes on (and, at the end, exits clean: test_stop_answers_waiting).
static void
test_client_gone (void **state)
{
    (void) state;
    int base = atomic_load (&s_held);
    int fd = s_open ("/api/v1/units", s_sup);
    s_wait_held (base + 1);
    close (fd);
    atomic_fetch_add (&s_released, 1);
    //  The deadline (scheduler: 300 ms) with the client gone: the log says when it has passed.
    fd = s_open ("/api/v1/centres", s_sup);
    s_wait_held (base + 2);
    close (fd);
    int64_t until = gl_mono_ms () + S_WAIT_MS;
    while (s_timeouts_logged () < 2 && gl_mono_ms () < until)
        gl_sleep_ms (20);
    assert_int_equal (s_timeouts_logged (), 2);     //  test_held_past_deadline's, and this one
    atomic_fetch_add (&s_released, 1);
    json_decref (s_call_json ("GET", "/health", NULL, NULL, NULL, 200));
    json_t *json = s_call_json ("GET", "/api/v1/referrals/after/lifecycle", s_sup, NULL, NULL,
                                200);
    json_decref (json);
}

//  intake stopping with a request waiting (the service never answers) drains: the request gets
//  its 503 within the drain (its deadline, or forward_stop at the drain's end), written out
//  before the connection closes, and intake exits 0 (ASan finds no leak of everything above).
//  Last: intake is gone afterwards.
static void
test_stop_answers_waiting (void **state)
{
    (void) state;
    int base = atomic_load (&s_held);
    int fd = s_open ("/api/v1/units", s_sup);
    s_wait_held (base + 1);
    int status = gl_test_stop (s_intake->pid, 10000);
    s_intake->pid = -1;
    json_t *json = NULL;
    int answer = s_finish (fd, &json);
    assert_int_equal (answer, 503);
    assert_string_equal (s_error_code (json), "referral_unavailable");
    json_decref (json);
    atomic_fetch_add (&s_released, 1);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        gl_testintake_log_tail (s_intake);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
}

static int
s_setup (void **state)
{
    (void) state;
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_rep = gl_rep_new ("tcp://127.0.0.1:*");
    if (!s_rep)
        return -1;
    gl_rep_set_tokens (s_rep, "tok-fwd");
    gl_rep_on (s_rep, "notifier.status", s_status, NULL);
    gl_rep_on (s_rep, "notifier.dead_replay", s_replay, NULL);
    s_thread = gl_testrep_start (s_rep);
    if (!s_thread)
        return -1;
    s_hold = gl_rep_new ("tcp://127.0.0.1:*");
    if (!s_hold)
        return -1;
    gl_rep_set_tokens (s_hold, "tok-fwd");
    gl_rep_on (s_hold, "referral.units", s_held_op, NULL);
    gl_rep_on (s_hold, "scheduler.centres", s_held_op, NULL);
    gl_rep_on (s_hold, "referral.lifecycle", s_prompt_op, NULL);
    s_hold_thread = gl_testrep_start (s_hold);
    if (!s_hold_thread)
        return -1;
    char endpoint[300], referral[300], scheduler[300];
    snprintf (endpoint, sizeof endpoint, "GL_ENDPOINT_NOTIFIER=%s", gl_rep_endpoint (s_rep));
    snprintf (referral, sizeof referral, "GL_ENDPOINT_REFERRAL=%s", gl_rep_endpoint (s_hold));
    snprintf (scheduler, sizeof scheduler, "GL_ENDPOINT_SCHEDULER=%s", gl_rep_endpoint (s_hold));
    const char *extra[] = { endpoint,
                            referral,
                            scheduler,
                            "GL_BUS_TOKENS=tok-fwd",
                            "GL_INTAKE_NOTIFIER_TIMEOUT_MS=300",
                            "GL_INTAKE_REFERRAL_TIMEOUT_MS=60000",
                            "GL_INTAKE_SCHEDULER_TIMEOUT_MS=300",
                            NULL };
    s_intake = gl_testintake_start (s_redis, extra);
    return s_intake ? 0 : -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    gl_testintake_destroy (&s_intake);
    atomic_store (&s_stop, true);         //  a held request lets go
    gl_testrep_stop (&s_thread);
    gl_testrep_stop (&s_hold_thread);
    gl_rep_destroy (&s_rep);
    gl_rep_destroy (&s_hold);
    gl_testredis_destroy (&s_redis);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_request_and_answers),
        cmocka_unit_test (test_idempotency_and_audit),
        cmocka_unit_test (test_delivery_for_a_call),
        cmocka_unit_test (test_held_request_blocks_nobody),
        cmocka_unit_test (test_held_past_deadline),
        cmocka_unit_test (test_many_outstanding),
        cmocka_unit_test (test_client_gone),
        cmocka_unit_test (test_stop_answers_waiting),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
