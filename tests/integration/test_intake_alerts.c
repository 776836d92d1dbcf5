/*  intake's console alerts over real HTTP: gl-intake as a process against a private
    redis-server, following the bus; notification.console events published the way notifier
    publishes them (gl_pub under notifier's source name "notifier-1", the payload of
    services/notifier/console.c), its business clock driven through GL_CLOCK_FILE.

    Who sees what (their own, their units', their roles', nobody else's), newest first, pages;
    events intake does not keep (a person recipient, a malformed payload) skipped with the cursor
    moving on; acknowledging (per user, idempotent, audited once, 404 for an alert the caller
    cannot see, 400 for a malformed id); 401 and 403; intake killed with SIGKILL while events
    arrive and restarted, every event applied exactly once; the bound per recipient; seven days
    on the business clock.

    ctest: timeout=240 */
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_pub.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include "gl_testintake.h"
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T_DAY_MS    INT64_C(86400000)
#define T_WAIT_MS   60000

enum { U_ADMIN, U_AGENT1, U_AGENT3, U_AGENT2, U_PROT, U_SUPER, U_COUNT };
static gl_testintake_account_t s_users[U_COUNT] = {
    { "admin", NULL, NULL, "", "" },
    { "agent1", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "agent3", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "agent2", "[\"agent\"]", "[\"unit-c\"]", "", "" },
    { "prot1", "[\"protection\"]", "[\"unit-b\"]", "", "" },
    { "super1", "[\"supervisor\"]", NULL, "", "" },
};

#define GL_TESTINTAKE_HARNESS
#include "gl_testintake.h"

static gl_pub_t *s_pub;             //  "notifier-1", as notifier publishes
static int s_pub_port;
static char s_client[128];          //  an API client's token
static int64_t s_ts;                //  the next event's time (increasing)

static int
t_setup (void **state)
{
    s_pub_port = gl_test_free_port ();
    char endpoints[96];
    snprintf (endpoints, sizeof endpoints, "GL_BUS_PUB_ENDPOINTS=tcp://127.0.0.1:%d", s_pub_port);
    const char *extra[] = { endpoints, NULL };
    if (t_setup_common (extra) != 0)
        return -1;
    gl_pub_opts_t opts;
    gl_pub_opts_default (&opts);
    char bind[64];
    snprintf (bind, sizeof bind, "tcp://127.0.0.1:%d", s_pub_port);
    opts.bind = bind;
    char err[256];
    s_pub = gl_pub_new (s_rc, "notifier-1", &opts, err, sizeof err);
    if (!s_pub) {
        fprintf (stderr, "cannot publish as notifier-1: %s\n", err);
        return -1;
    }
    s_ts = s_now - 1000000;
    return gl_testintake_client (s_in, "alerts-client", s_client);
}

static int
t_teardown_alerts (void **state)
{
    gl_pub_destroy (&s_pub);
    return t_teardown (state);
}

//  Publish one notification.console as services/notifier/console.c builds it; its event id
//  (the alert's id) in id. ts < 0: the next increasing time.
static void
t_publish_at (char *id, const char *kind, const char *key, const char *value,
              const char *priority, int64_t ts)
{
    gl_pub_tick (s_pub);
    gl_event_t *ev = gl_event_new ("notification.console");
    assert_non_null (ev);
    char nid[GL_ID_LEN + 1], corr[GL_ID_LEN + 1];
    gl_id_new (nid);
    gl_id_new (corr);
    gl_event_set_corr (ev, corr);
    json_object_set_new (ev->data, "notification_id", json_string (nid));
    json_object_set_new (ev->data, "recipient", json_pack ("{s:s, s:s}", "kind", kind, key, value));
    json_object_set_new (ev->data, "template", json_string ("emergency.alarm"));
    json_object_set_new (ev->data, "priority", json_string (priority));
    json_object_set_new (ev->data, "title", json_string ("Emergency alarm"));
    json_object_set_new (ev->data, "body", json_string ("Emergency 42 raised: acknowledge it."));
    json_object_set_new (ev->data, "language", json_string ("en"));
    ev->ts = ts >= 0 ? ts : (s_ts += 1000);
    assert_int_equal (gl_pub_send (s_pub, ev, 0), 0);
    if (id)
        snprintf (id, GL_ID_LEN + 1, "%s", ev->id);
    gl_event_destroy (&ev);
}

static void
t_publish (char *id, const char *kind, const char *key, const char *value, const char *priority)
{
    t_publish_at (id, kind, key, value, priority, -1);
}

//  GET path as user: the page (caller frees).
static json_t *
t_page (int user, const char *path)
{
    return t_call_json (user, "GET", path, NULL, 200);
}

//  Wait until user's alerts hold id (the events of one source apply in order: everything
//  published before it is applied too). The page (caller frees).
static json_t *
t_wait_for (int user, const char *id)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (true) {
        gl_pub_tick (s_pub);
        json_t *page = t_page (user, "/api/v1/alerts?limit=200");
        if (t_has_id (page, id))
            return page;
        json_decref (page);
        if (gl_mono_ms () > deadline) {
            gl_testintake_log_tail (s_in);
            fail_msg ("alert %s never reached %s", id, s_users[user].name);
        }
        usleep (50 * 1000);
    }
}

//  The ids of a page's items, in order, joined by spaces (static buffer).
static const char *
t_ids (const json_t *page)
{
    static char out[8192];
    size_t n = 0, i;
    json_t *item;
    out[0] = 0;
    json_array_foreach (json_object_get (page, "items"), i, item)
        n += (size_t) snprintf (out + n, sizeof out - n, "%s%s", i ? " " : "",
                                t_str (item, "id"));
    return out;
}

static void
t_expect_ids (int user, const char *path, const char *expected)
{
    json_t *page = t_page (user, path);
    if (strcmp (t_ids (page), expected) != 0)
        fail_msg ("%s %s: got [%s], expected [%s]", s_users[user].name, path, t_ids (page),
                  expected);
    json_decref (page);
}

static char a_user1[GL_ID_LEN + 1], a_unit_a[GL_ID_LEN + 1], a_super[GL_ID_LEN + 1],
    a_user2[GL_ID_LEN + 1], a_unit_b[GL_ID_LEN + 1], a_prot[GL_ID_LEN + 1],
    a_last[GL_ID_LEN + 1];

//  Each user sees what is addressed to them, their units and their roles; nothing else.
static void
test_who_sees_what (void **state)
{
    char skipped[GL_ID_LEN + 1];
    t_publish (a_user1, "user", "id", s_users[U_AGENT1].id, "emergency");
    t_publish (a_unit_a, "unit", "code", "unit-a", "routine");
    t_publish (a_super, "role", "role", "supervisor", "emergency");
    t_publish (a_user2, "user", "id", s_users[U_AGENT2].id, "routine");
    t_publish (a_unit_b, "unit", "code", "unit-b", "routine");
    t_publish (a_prot, "role", "role", "protection", "emergency");
    //  Not for the console (a person), and malformed (an unknown priority): skipped.
    t_publish (skipped, "person", "ref", "C-1234", "routine");
    t_publish (skipped, "user", "id", s_users[U_AGENT1].id, "urgent");
    t_publish (a_last, "user", "id", s_users[U_AGENT1].id, "routine");
    json_decref (t_wait_for (U_AGENT1, a_last));

    char want[256];
    snprintf (want, sizeof want, "%s %s %s", a_last, a_unit_a, a_user1);
    t_expect_ids (U_AGENT1, "/api/v1/alerts", want);
    snprintf (want, sizeof want, "%s", a_unit_a);
    t_expect_ids (U_AGENT3, "/api/v1/alerts", want);
    t_expect_ids (U_AGENT2, "/api/v1/alerts", a_user2);
    snprintf (want, sizeof want, "%s %s", a_prot, a_unit_b);
    t_expect_ids (U_PROT, "/api/v1/alerts", want);
    t_expect_ids (U_SUPER, "/api/v1/alerts", a_super);
    t_expect_ids (U_ADMIN, "/api/v1/alerts", "");

    //  One item in full.
    json_t *page = t_page (U_AGENT1, "/api/v1/alerts?limit=200");
    json_t *item = json_array_get (json_object_get (page, "items"), 2);
    assert_string_equal (t_str (item, "id"), a_user1);
    assert_string_equal (t_str (item, "priority"), "emergency");
    assert_string_equal (t_str (item, "template"), "emergency.alarm");
    assert_string_equal (t_str (item, "title"), "Emergency alarm");
    assert_string_equal (t_str (item, "body"), "Emergency 42 raised: acknowledge it.");
    assert_string_equal (t_str (item, "language"), "en");
    assert_true (gl_id_valid (t_str (item, "notification_id")));
    assert_true (t_int (item, "created_at") > 0);
    json_t *to = json_object_get (item, "recipient");
    assert_string_equal (t_str (to, "kind"), "user");
    assert_string_equal (t_str (to, "id"), s_users[U_AGENT1].id);
    assert_true (json_is_false (json_object_get (item, "acknowledged")));
    assert_true (json_is_null (json_object_get (item, "acknowledged_at")));
    assert_true (json_is_null (json_object_get (page, "next_cursor")));
    json_decref (page);

    //  Pages of one, newest first, to the end.
    const char *expected[] = { a_last, a_unit_a, a_user1 };
    char path[512] = "/api/v1/alerts?limit=1";
    for (int i = 0; i < 3; i++) {
        page = t_page (U_AGENT1, path);
        assert_string_equal (t_ids (page), expected[i]);
        const char *next = t_str (page, "next_cursor");
        if (i < 2) {
            assert_non_null (next);
            snprintf (path, sizeof path, "/api/v1/alerts?limit=1&cursor=%s", next);
        }
        else
            assert_null (next);
        json_decref (page);
    }

    //  The skipped events moved the group's cursor on: nothing is retried forever.
    redisReply *r = gl_redis_cmd (s_rc, "HGET gl:cur:{intake} notifier-1");
    assert_non_null (r);
    assert_int_equal (r->type, REDIS_REPLY_STRING);
    char cur[48];
    snprintf (cur, sizeof cur, "%s", r->str);
    freeReplyObject (r);
    char seq[24];
    snprintf (seq, sizeof seq, "%" PRIu64, gl_pub_seq (s_pub));
    assert_non_null (strstr (cur, seq));
    r = gl_redis_cmd (s_rc, "EXISTS intake:{intake}:alert:%s", skipped);
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);

    //  Bad requests name the field; no credentials 401; an API client 403.
    t_call_error (U_AGENT1, "GET", "/api/v1/alerts?cursor=bm90LWEtY3Vyc29y", NULL, 400,
                  "invalid_parameter", "cursor");
    t_call_error (U_AGENT1, "GET", "/api/v1/alerts?limit=0", NULL, 400, "invalid_parameter", "limit");
    t_call_error (U_AGENT1, "GET", "/api/v1/alerts?unacknowledged=yes", NULL, 400,
                  "invalid_parameter", "unacknowledged");
    assert_int_equal (t_call_status (U_AGENT1, "GET", "/api/v1/alerts?colour=red", NULL), 400);
    assert_int_equal (t_call_status (-1, "GET", "/api/v1/alerts", NULL), 401);
    t_resp_t resp = gl_testintake_call (s_in, "GET", "/api/v1/alerts", s_client, NULL, NULL);
    t_expect (&resp, 403);
    gl_test_http_free (&resp);
}

//  Acknowledged per user, once (audited once), idempotent; 404 for an alert the caller cannot
//  see; 400 for a malformed id or body.
static void
test_ack (void **state)
{
    char path[128];
    snprintf (path, sizeof path, "/api/v1/alerts/%s/ack", a_unit_a);
    json_t *first = t_call_json (U_AGENT1, "POST", path, "{}", 200);
    assert_string_equal (t_str (first, "id"), a_unit_a);
    assert_true (json_is_true (json_object_get (first, "acknowledged")));
    assert_true (json_is_false (json_object_get (first, "already")));
    int64_t at = t_int (first, "acknowledged_at");
    assert_int_equal (at, s_now);
    json_decref (first);
    t_clock_write (s_now + 5000);
    json_t *again = t_call_json (U_AGENT1, "POST", path, NULL, 200);
    assert_true (json_is_true (json_object_get (again, "already")));
    assert_int_equal (t_int (again, "acknowledged_at"), at);
    json_decref (again);

    //  Acknowledged for agent1 only: agent3 (same unit) still has it to acknowledge.
    json_t *page = t_page (U_AGENT1, "/api/v1/alerts");
    json_t *item = json_array_get (json_object_get (page, "items"), 1);
    assert_string_equal (t_str (item, "id"), a_unit_a);
    assert_true (json_is_true (json_object_get (item, "acknowledged")));
    assert_int_equal (t_int (item, "acknowledged_at"), at);
    json_decref (page);
    char want[128];
    snprintf (want, sizeof want, "%s %s", a_last, a_user1);
    t_expect_ids (U_AGENT1, "/api/v1/alerts?unacknowledged=true", want);
    t_expect_ids (U_AGENT3, "/api/v1/alerts?unacknowledged=true", a_unit_a);

    //  Audited once.
    char audit[256];
    snprintf (audit, sizeof audit, "/api/v1/audit?record_type=alert&record_id=%s", a_unit_a);
    json_t *trail = t_page (U_ADMIN, audit);
    assert_int_equal (json_array_size (json_object_get (trail, "items")), 1);
    item = json_array_get (json_object_get (trail, "items"), 0);
    assert_string_equal (t_str (item, "action"), "ack");
    assert_string_equal (t_str (item, "actor"), s_users[U_AGENT1].id);
    json_decref (trail);

    //  Someone else's alert, one that never was: 404. Malformed: 400.
    snprintf (path, sizeof path, "/api/v1/alerts/%s/ack", a_user2);
    t_call_error (U_AGENT1, "POST", path, "{}", 404, "not_found", NULL);
    snprintf (path, sizeof path, "/api/v1/alerts/%s/ack", a_super);
    t_call_error (U_PROT, "POST", path, "{}", 404, "not_found", NULL);
    char none[GL_ID_LEN + 1];
    gl_id_new (none);
    snprintf (path, sizeof path, "/api/v1/alerts/%s/ack", none);
    t_call_error (U_AGENT1, "POST", path, "{}", 404, "not_found", NULL);
    t_call_error (U_AGENT1, "POST", "/api/v1/alerts/not-an-id/ack", "{}", 400,
                  "invalid_parameter", "id");
    t_call_error (U_AGENT1, "POST", "/api/v1/alerts/0123456789ABCDEF0123456789abcdef/ack", "{}",
                  400, "invalid_parameter", "id");
    snprintf (path, sizeof path, "/api/v1/alerts/%s/ack", a_user1);
    assert_int_equal (t_call_status (U_AGENT1, "POST", path, "{\"note\":\"x\"}"), 400);
    assert_int_equal (t_call_status (-1, "POST", path, "{}"), 401);
    t_resp_t resp = gl_testintake_call (s_in, "POST", path, s_client, NULL, "{}");
    t_expect (&resp, 403);
    gl_test_http_free (&resp);
    //  The role's alert, acknowledged by its holder.
    snprintf (path, sizeof path, "/api/v1/alerts/%s/ack", a_prot);
    json_decref (t_call_json (U_PROT, "POST", path, "{}", 200));
}

//  Killed with SIGKILL while events arrive, and while it is down: restarted, it applies each
//  event exactly once.
#define T_KILL_N 40
static void
test_kill_restart (void **state)
{
    static char ids[2 * T_KILL_N][GL_ID_LEN + 1];
    for (int i = 0; i < T_KILL_N; i++)
        t_publish (ids[i], "unit", "code", "unit-c", i % 2 ? "routine" : "emergency");
    assert_int_equal (kill (s_in->pid, SIGKILL), 0);
    assert_int_equal (waitpid (s_in->pid, NULL, 0), s_in->pid);
    s_in->pid = -1;
    //  The dead process's leases (its source name, the group's) run out in business time.
    t_clock_write (s_now + 15000);
    for (int i = T_KILL_N; i < 2 * T_KILL_N; i++)
        t_publish (ids[i], "unit", "code", "unit-c", "routine");
    assert_int_equal (gl_testintake_restart (s_in, NULL), 0);
    json_t *page = t_wait_for (U_AGENT2, ids[2 * T_KILL_N - 1]);
    //  Every event once, newest first, and agent2's earlier alert.
    json_t *items = json_object_get (page, "items");
    assert_int_equal (json_array_size (items), 2 * T_KILL_N + 1);
    for (int i = 0; i < 2 * T_KILL_N; i++)
        assert_string_equal (t_str (json_array_get (items, (size_t) i), "id"),
                             ids[2 * T_KILL_N - 1 - i]);
    assert_string_equal (t_str (json_array_get (items, 2 * T_KILL_N), "id"), a_user2);
    json_decref (page);
    redisReply *r = gl_redis_cmd (s_rc, "ZCARD intake:{intake}:alerts:unit:unit-c");
    assert_int_equal (r->integer, 2 * T_KILL_N);
    freeReplyObject (r);
}

//  A recipient keeps its newest GL_INTAKE_ALERTS_MAX; those pushed out are deleted.
static void
test_bound (void **state)
{
    const char *extra[] = { "GL_INTAKE_ALERTS_MAX=5", NULL };
    assert_int_equal (gl_testintake_restart (s_in, extra), 0);
    char ids[8][GL_ID_LEN + 1];
    for (int i = 0; i < 8; i++)
        t_publish (ids[i], "user", "id", s_users[U_SUPER].id, "routine");
    json_decref (t_wait_for (U_SUPER, ids[7]));
    char want[512];
    snprintf (want, sizeof want, "%s %s %s %s %s %s", ids[7], ids[6], ids[5], ids[4], ids[3],
              a_super);
    t_expect_ids (U_SUPER, "/api/v1/alerts", want);
    for (int i = 0; i < 3; i++) {
        redisReply *r = gl_redis_cmd (s_rc, "EXISTS intake:{intake}:alert:%s", ids[i]);
        assert_int_equal (r->integer, 0);
        freeReplyObject (r);
    }
    redisReply *r = gl_redis_cmd (s_rc, "ZCARD intake:{intake}:alerts:user:%s",
                                  s_users[U_SUPER].id);
    assert_int_equal (r->integer, 5);
    freeReplyObject (r);
}

//  Seven days on the business clock: older alerts are not shown, not stored, and dropped from
//  their recipient's set at its next alert.
static void
test_seven_days (void **state)
{
    char old[GL_ID_LEN + 1], fresh[GL_ID_LEN + 1];
    t_publish_at (old, "role", "role", "protection", "emergency", s_now - 8 * T_DAY_MS);
    t_publish (fresh, "role", "role", "protection", "routine");
    json_t *page = t_wait_for (U_PROT, fresh);
    assert_false (t_has_id (page, old));
    json_decref (page);
    redisReply *r = gl_redis_cmd (s_rc, "EXISTS intake:{intake}:alert:%s", old);
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);

    t_clock_advance (7 * T_DAY_MS + 1000);
    s_ts = s_now;
    t_expect_ids (U_PROT, "/api/v1/alerts", "");
    char snow[256];
    snprintf (snow, sizeof snow, "/api/v1/alerts/%s/ack", fresh);
    t_call_error (U_PROT, "POST", snow, "{}", 404, "not_found", NULL);
    char next[GL_ID_LEN + 1];
    t_publish (next, "role", "role", "protection", "routine");
    json_decref (t_wait_for (U_PROT, next));
    t_expect_ids (U_PROT, "/api/v1/alerts", next);
    r = gl_redis_cmd (s_rc, "ZCARD intake:{intake}:alerts:role:protection");
    assert_int_equal (r->integer, 1);
    freeReplyObject (r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_who_sees_what),
        cmocka_unit_test (test_ack),
        cmocka_unit_test (test_kill_restart),
        cmocka_unit_test (test_bound),
        cmocka_unit_test (test_seven_days),
    };
    return cmocka_run_group_tests_name ("intake console alerts", tests, t_setup,
                                        t_teardown_alerts);
}
