/*  intake's contacts, emergencies and referrals over real HTTP: gl-intake as a process against a
    private redis-server, its business clock driven through GL_CLOCK_FILE, users created through
    the accounts API and signed in with bearer tokens.

    Contacts created, read, updated and searched (case number, phone in every written form,
    category, dates, pages); validation errors naming the field; repeat marking within the
    window and not after; sensitive contacts hidden from other agents; the audit entries; the
    taxonomy (default file = built-in; a bad file stops the start naming the line); emergencies
    and referrals answered 202 with their events in gl:log:{intake-1}; Idempotency-Key retries;
    SIGKILL right after a 201/202; the outbox: an append that fails after the record was
    written (Redis ACL forbids writing the log) is delivered by the sweep, with and without a
    restart, and an entry whose event is already in the log is not delivered twice. No case
    number, phone number or note in any event, nor in intake's log.

    Set GL_TEST_KEEP_LOG=1 to keep intake's log (its path is /tmp/gl-test-intake-contacts-<pid>.log).

    ctest: timeout=180 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T_WAIT_MS       60000
#define T_START_MS      INT64_C(1767225600000)      //  2026-01-01T00:00:00Z
#define T_ADMIN_PASS    "adminpass"
#define T_PASS          "a-long-enough-password"
#define T_DAY_MS        INT64_C(86400000)
#define T_INDEX_KEY     "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

#include "gl_testhttp.h"
#include "gl_testintake.h"
typedef gl_test_resp_t t_resp_t;
#define t_connect gl_test_http_connect
#define t_raw gl_test_http_raw
#define t_free gl_test_http_free
#define t_header gl_test_http_header

//  --------------------------------------------------------------------------------------------
//  A tiny HTTP/1.1 client: one request per connection, read until the server closes.





static json_t *
t_json (const t_resp_t *resp)
{
    json_error_t err;
    json_t *json = json_loadb (resp->body, resp->body_len, 0, &err);
    if (!json)
        fprintf (stderr, "not JSON (%s): %.*s\n", err.text, (int) resp->body_len, resp->body);
    assert_non_null (json);
    return json;
}

//  --------------------------------------------------------------------------------------------
//  The service and its users

static gl_testredis_t *s_redis;
static gl_redis_t *s_rc;                //  the test's own connection
static pid_t s_intake = -1;
static int s_http_port;
static char s_log_path[200], s_clock_path[200];
static char s_env[32][256];
static int s_envc;
static int64_t s_now;

enum { U_ADMIN, U_AGENT1, U_AGENT2, U_SUPER, U_PROT, U_COUNT };
static struct {
    const char *name;
    const char *roles;
    char id[GL_ID_LEN + 1];
    char token[128];
} s_users[U_COUNT] = {
    { "admin", NULL, "", "" },
    { "agent1", "[\"agent\"]", "", "" },
    { "agent2", "[\"agent\"]", "", "" },
    { "super1", "[\"supervisor\"]", "", "" },
    { "prot1", "[\"protection\"]", "", "" },
};

//  Personal data the tests send: none may appear in an event or in intake's log.
static char s_secrets[128][128];
static int s_secretc;

static void
t_secret (const char *s)
{
    assert_true (s_secretc < 128);
    snprintf (s_secrets[s_secretc++], sizeof s_secrets[0], "%s", s);
}

static void
t_clock_write (int64_t ms)
{
    char tmp[300];
    snprintf (tmp, sizeof tmp, "%s.tmp", s_clock_path);
    FILE *f = fopen (tmp, "w");
    assert_non_null (f);
    fprintf (f, "%" PRId64 "\n", ms);
    fclose (f);
    assert_int_equal (rename (tmp, s_clock_path), 0);
    s_now = ms;
}

static t_resp_t
t_call (int user, const char *method, const char *path, const char *extra, const char *body)
{
    return gl_testintake_request (s_http_port, method, path,
                                  user >= 0 ? s_users[user].token : NULL, extra, body);
}

//  The end of intake's log, to explain a failure.
static void
t_log_tail (void)
{
    FILE *f = fopen (s_log_path, "r");
    if (!f)
        return;
    char text[4096];
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fseek (f, size > (long) sizeof text - 1 ? size - (long) sizeof text + 1 : 0, SEEK_SET);
    size_t len = fread (text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose (f);
    fprintf (stderr, "--- the end of intake's log:\n%s---\n", text);
}

static void
t_expect (const t_resp_t *resp, int status)
{
    if (resp->status != status) {
        fprintf (stderr, "expected %d, got: %s\n", status, resp->raw);
        t_log_tail ();
    }
    assert_int_equal (resp->status, status);
}

//  The one error shape, with code and field.
static void
t_expect_error (const t_resp_t *resp, int status, const char *code, const char *field)
{
    t_expect (resp, status);
    json_t *json = t_json (resp);
    json_t *error = json_object_get (json, "error");
    const char *got = json_string_value (json_object_get (error, "code"));
    const char *got_field = json_string_value (json_object_get (error, "field"));
    if (!got || strcmp (got, code) != 0 || (field && (!got_field || strcmp (got_field, field))))
        fprintf (stderr, "expected %s/%s, got: %s\n", code, field ? field : "null", resp->raw);
    assert_string_equal (got, code);
    if (field)
        assert_string_equal (got_field, field);
    else
        assert_true (json_is_null (json_object_get (error, "field")));
    json_decref (json);
}

static void
t_call_error (int user, const char *method, const char *path, const char *extra,
              const char *body, int status, const char *code, const char *field)
{
    t_resp_t resp = t_call (user, method, path, extra, body);
    t_expect_error (&resp, status, code, field);
    t_free (&resp);
}

static int
t_call_status (int user, const char *method, const char *path, const char *body)
{
    t_resp_t resp = t_call (user, method, path, NULL, body);
    int status = resp.status;
    t_free (&resp);
    return status;
}

//  A 2xx answer's body as JSON (caller frees).
static json_t *
t_call_json (int user, const char *method, const char *path, const char *extra,
             const char *body, int status)
{
    t_resp_t resp = t_call (user, method, path, extra, body);
    t_expect (&resp, status);
    json_t *json = t_json (&resp);
    t_free (&resp);
    return json;
}

static int
t_login (int user)
{
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", s_users[user].name,
              user == U_ADMIN ? T_ADMIN_PASS : T_PASS);
    t_resp_t resp = t_call (-1, "POST", "/api/v1/auth/login", NULL, body);
    int status = resp.status;
    if (status == 200) {
        json_t *json = t_json (&resp);
        snprintf (s_users[user].token, sizeof s_users[user].token, "%s",
                  json_string_value (json_object_get (json, "token")));
        snprintf (s_users[user].id, sizeof s_users[user].id, "%s",
                  json_string_value (json_object_get (json_object_get (json, "user"), "id")));
        json_decref (json);
    }
    else
        fprintf (stderr, "login of %s: %s\n", s_users[user].name, resp.raw);
    t_free (&resp);
    return status;
}

static void
t_login_all (void)
{
    for (int u = 0; u < U_COUNT; u++)
        assert_int_equal (t_login (u), 200);
}

//  Move the business clock forward; sessions do not survive long jumps, so everyone signs in
//  again.
static void
t_clock_advance (int64_t ms)
{
    t_clock_write (s_now + ms);
    t_login_all ();
}

static int
t_wait_ready (int port)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    char request[256];
    int n = snprintf (request, sizeof request,
                      "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    while (gl_mono_ms () < deadline) {
        t_resp_t resp = t_raw (port, request, (size_t) n);
        int status = resp.status;
        t_free (&resp);
        if (status == 200)
            return 0;
        gl_sleep_ms (100);
    }
    return -1;
}

//  Start gl-intake with the common environment plus extra (NULL-terminated, may be NULL).
static pid_t
t_spawn (char *const *extra, const char *log_path)
{
    char *env[48];
    char health[64];
    snprintf (health, sizeof health, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    int n = 0;
    env[n++] = health;
    for (int i = 0; i < s_envc; i++)
        env[n++] = s_env[i];
    for (int i = 0; extra && extra[i]; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    char *argv[] = { "gl-intake", NULL };
    return gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, env, log_path);
}

static void
t_start_intake (void)
{
    char port[64];
    snprintf (port, sizeof port, "GL_HTTP_PORT=%d", s_http_port);
    char *extra[] = { port, NULL };
    s_intake = t_spawn (extra, s_log_path);
    assert_true (s_intake > 0);
    if (t_wait_ready (s_http_port) != 0)
        fprintf (stderr, "gl-intake did not become ready; its log is %s\n", s_log_path);
    assert_int_equal (t_wait_ready (s_http_port), 0);
}

//  SIGKILL intake, then start it again as intake-1: the dead process's lease must expire first,
//  on the business clock, which the test moves past it.
static void
t_kill_and_restart (void)
{
    kill (s_intake, SIGKILL);
    int status = gl_test_wait (s_intake, 10000);
    assert_true (WIFSIGNALED (status));
    t_clock_write (s_now + 11000);
    t_start_intake ();
}

static void
t_create_user (int user)
{
    char body[512];
    snprintf (body, sizeof body,
              "{\"username\":\"%s\",\"password\":\"%s\",\"roles\":%s,\"units\":[\"unit-a\"],"
              "\"languages\":[\"ar\",\"en\"],\"display_name\":\"Test %s\"}",
              s_users[user].name, T_PASS, s_users[user].roles, s_users[user].name);
    json_t *json = t_call_json (U_ADMIN, "POST", "/api/v1/users", NULL, body, 201);
    json_decref (json);
}

static int
t_setup (void **state)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_rc = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 5000, 5000);
    s_http_port = gl_test_free_port ();
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-intake-contacts-%d.log",
              (int) getpid ());
    snprintf (s_clock_path, sizeof s_clock_path, "/tmp/gl-test-intake-contacts-%d.clock",
              (int) getpid ());
    unlink (s_log_path);
    t_clock_write (T_START_MS);
    int n = 0;
    snprintf (s_env[n++], 256, "GL_REDIS_HOST=127.0.0.1");
    snprintf (s_env[n++], 256, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (s_env[n++], 256, "GL_BUS_BIND_PUB=tcp://127.0.0.1:*");
    snprintf (s_env[n++], 256, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:*");
    snprintf (s_env[n++], 256, "GL_SOURCE=intake-1");
    snprintf (s_env[n++], 256, "GL_BUS_TOKENS=tok-contacts-test");
    snprintf (s_env[n++], 256, "GL_LOG_LEVEL=debug");
    snprintf (s_env[n++], 256, "GL_CLOCK_FILE=%s", s_clock_path);
    snprintf (s_env[n++], 256, "GL_INTAKE_BOOTSTRAP_ADMIN=admin:" T_ADMIN_PASS);
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_OPSLIMIT=1");
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    snprintf (s_env[n++], 256, "GL_INTAKE_SESSION_IDLE_S=86400");
    snprintf (s_env[n++], 256, "GL_INTAKE_SESSION_MAX_S=2592000");
    snprintf (s_env[n++], 256, "GL_INTAKE_PHONE_COUNTRY_CODE=962");
    snprintf (s_env[n++], 256, "GL_INTAKE_INDEX_KEY=" T_INDEX_KEY);
    s_envc = n;
    s_intake = -1;
    char port[64];
    snprintf (port, sizeof port, "GL_HTTP_PORT=%d", s_http_port);
    char *extra[] = { port, NULL };
    s_intake = t_spawn (extra, s_log_path);
    if (s_intake < 0 || t_wait_ready (s_http_port) != 0) {
        fprintf (stderr, "gl-intake did not become ready; its log is %s\n", s_log_path);
        return -1;
    }
    if (t_login (U_ADMIN) != 200)
        return -1;
    for (int u = U_AGENT1; u < U_COUNT; u++)
        t_create_user (u);
    t_login_all ();
    return 0;
}

static int
t_teardown (void **state)
{
    if (s_intake > 0)
        gl_test_stop (s_intake, 10000);
    gl_redis_destroy (&s_rc);
    gl_testredis_destroy (&s_redis);
    if (!getenv ("GL_TEST_KEEP_LOG"))
        unlink (s_log_path);
    unlink (s_clock_path);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  The log: events of intake-1

typedef struct {
    const char *type;
    json_t *events;                     //  [{id, corr, seq, data}]
} t_collect_t;

//  Every entry: no secret in its bytes; entries of the wanted type are collected.
static bool
t_contains (const char *hay, size_t len, const char *needle)
{
    size_t n = strlen (needle);
    for (size_t i = 0; n && i + n <= len; i++)
        if (memcmp (hay + i, needle, n) == 0)
            return true;
    return false;
}

static int
t_collect (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    t_collect_t *c = arg;
    for (int i = 0; i < s_secretc; i++)
        if (t_contains (bytes, len, s_secrets[i])) {
            fprintf (stderr, "personal data in event seq %" PRIu64 "\n", seq);
            fail ();
        }
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    assert_non_null (ev);
    if (!c->type || strcmp (ev->type, c->type) == 0)
        json_array_append_new (c->events,
                               json_pack ("{s:s, s:s, s:s, s:I, s:I, s:O}", "type", ev->type, "id",
                                          ev->id, "corr", ev->corr, "seq", (json_int_t) ev->seq,
                                          "ts", (json_int_t) ev->ts, "data", ev->data));
    gl_event_destroy (&ev);
    return 0;
}

//  Events of type (NULL: all) in intake-1's log, oldest first. Checks every entry for secrets.
static json_t *
t_events (const char *type)
{
    t_collect_t c = { type, json_array () };
    int64_t n = gl_log_read (s_rc, "intake-1", 1, 0, 1000000, t_collect, &c, NULL);
    assert_true (n >= 0);
    return c.events;
}

//  Events of type whose corr is corr.
static json_t *
t_events_for (const char *type, const char *corr)
{
    json_t *all = t_events (type);
    json_t *out = json_array ();
    size_t i;
    json_t *ev;
    json_array_foreach (all, i, ev)
        if (strcmp (json_string_value (json_object_get (ev, "corr")), corr) == 0)
            json_array_append (out, ev);
    json_decref (all);
    return out;
}

static size_t
t_count_events (const char *type, const char *corr)
{
    json_t *evs = t_events_for (type, corr);
    size_t n = json_array_size (evs);
    json_decref (evs);
    return n;
}

//  Wait until the log holds n events of type for corr.
static void
t_wait_events (const char *type, const char *corr, size_t n)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (t_count_events (type, corr) < n && gl_mono_ms () < deadline)
        gl_sleep_ms (100);
    assert_int_equal (t_count_events (type, corr), n);
}

static long long
t_outbox_len (void)
{
    redisReply *r = gl_redis_cmd (s_rc, "HLEN intake:{intake}:outbox");
    assert_non_null (r);
    long long n = r->integer;
    freeReplyObject (r);
    return n;
}

//  --------------------------------------------------------------------------------------------
//  Helpers for contacts

//  POST a contact as user; returns the record (caller frees).
static json_t *
t_contact_new (int user, const char *body)
{
    return t_call_json (user, "POST", "/api/v1/contacts", NULL, body, 201);
}

//  POST a contact and copy its id.
static void
t_contact_id (int user, const char *body, char *id)
{
    json_t *rec = t_contact_new (user, body);
    snprintf (id, GL_ID_LEN + 1, "%s", json_string_value (json_object_get (rec, "id")));
    assert_true (gl_id_valid (id));
    json_decref (rec);
}

static json_t *
t_search (int user, const char *query)
{
    char path[1100];
    snprintf (path, sizeof path, "/api/v1/contacts?%s", query);
    return t_call_json (user, "GET", path, NULL, NULL, 200);
}

//  Ids of a search's items, every page followed (limit per page), joined by spaces.
static char *
t_search_all (int user, const char *query, int limit)
{
    char *ids = calloc (1, 65536);
    assert_non_null (ids);
    char cursor[300] = "";
    for (int pages = 0; pages < 100; pages++) {
        char q[900];
        snprintf (q, sizeof q, "%s&limit=%d%s%s", query, limit, *cursor ? "&cursor=" : "",
                  cursor);
        json_t *page = t_search (user, q);
        json_t *items = json_object_get (page, "items");
        assert_true ((int) json_array_size (items) <= limit);
        size_t i;
        json_t *item;
        json_array_foreach (items, i, item) {
            strcat (ids, json_string_value (json_object_get (item, "id")));
            strcat (ids, " ");
            //  Summaries carry no identifiers and no notes.
            assert_null (json_object_get (item, "phone"));
            assert_null (json_object_get (item, "case_number"));
            assert_null (json_object_get (item, "notes"));
        }
        json_t *next = json_object_get (page, "next_cursor");
        if (json_is_null (next)) {
            json_decref (page);
            return ids;
        }
        snprintf (cursor, sizeof cursor, "%s", json_string_value (next));
        json_decref (page);
    }
    fail_msg ("search did not end");
    return ids;
}

static size_t
t_words (const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == ' ';
    return n;
}

//  --------------------------------------------------------------------------------------------
//  Tests

static void
test_taxonomy (void **state)
{
    json_t *tax = t_call_json (U_AGENT1, "GET", "/api/v1/taxonomy", NULL, NULL, 200);
    json_t *cats = json_object_get (tax, "categories");
    assert_true (json_array_size (cats) >= 17);
    bool gbv = false, health = false;
    size_t i;
    json_t *c;
    json_array_foreach (cats, i, c) {
        const char *code = json_string_value (json_object_get (c, "code"));
        json_t *subs = json_object_get (c, "subcategories");
        if (strcmp (code, "gbv") == 0) {
            gbv = json_is_true (json_object_get (c, "sensitive"));
            //  A sensitive category's subcategories are sensitive too.
            assert_true (json_is_true (json_object_get (json_array_get (subs, 0), "sensitive")));
        }
        if (strcmp (code, "health") == 0) {
            health = !json_is_true (json_object_get (c, "sensitive"));
            assert_string_equal (json_string_value (json_object_get (json_array_get (subs, 0), "code")),
                                 "health.access");
        }
    }
    assert_true (gbv && health);
    //  Everyone on the staff reads it; nobody else.
    assert_int_equal (t_call_status (U_ADMIN, "GET", "/api/v1/taxonomy", NULL), 200);
    assert_int_equal (t_call_status (-1, "GET", "/api/v1/taxonomy", NULL), 401);

    //  A second intake on config/taxonomy.txt serves the same taxonomy as the built-in one.
    int port = gl_test_free_port ();
    char port_env[64], tax_env[512], log2[300];
    snprintf (port_env, sizeof port_env, "GL_HTTP_PORT=%d", port);
    snprintf (tax_env, sizeof tax_env, "GL_INTAKE_TAXONOMY=%s/config/taxonomy.txt",
              getenv ("GL_SOURCE_DIR"));
    snprintf (log2, sizeof log2, "%s.2", s_log_path);
    char src2[] = "GL_SOURCE=intake-2";
    char *extra[] = { port_env, tax_env, src2, NULL };
    pid_t pid = t_spawn (extra, log2);
    assert_true (pid > 0);
    assert_int_equal (t_wait_ready (port), 0);
    char request[512];
    int n = snprintf (request, sizeof request,
                      "GET /api/v1/taxonomy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      "Authorization: Bearer %s\r\n\r\n",
                      s_users[U_AGENT1].token);
    t_resp_t resp = t_raw (port, request, (size_t) n);
    t_expect (&resp, 200);
    json_t *from_file = t_json (&resp);
    t_free (&resp);
    assert_true (json_equal (tax, from_file));
    json_decref (from_file);
    json_decref (tax);
    gl_test_stop (pid, 10000);
    unlink (log2);

    //  A bad file stops the start, naming the file and the line.
    static const struct {
        const char *text;
        const char *error;
    } bad[] = {
        { "# a comment\nhealth - Health\n  health.x  maybe  Bad mark\n",
          ":3: the mark must be '-' or 'sensitive'" },
        { "health - Health\nhealth - Again\n", ":2: duplicate code" },
        { "\n\nhealth.access - Access\nhealth - Health\n",
          ":3: subcategory before (or without) its category's line" },
        { "Health - Health\n", ":1: a code is [a-z][a-z0-9_]*" },
        { "health.a.b - Too deep\n", ":1: a code is [a-z][a-z0-9_]*" },
        { "health -\n", ":1: expected CODE MARK LABEL" },
        { "health - Health\nlegal - \x01" "bad\n",
          ":2: the label is not valid UTF-8 or holds a control character" },
        { "health - Health\nlegal - \xc3\n", ":2: the label is not valid UTF-8" },
        { "health - 123456789012345678901234567890123456789012345678901234567890123456789012345"
          "678901\n",
          ":1: the label is longer than 80 characters" },
        { "# only comments\n\n", ": no categories" },
    };
    char bad_path[300];
    snprintf (bad_path, sizeof bad_path, "%s.taxonomy", s_log_path);
    snprintf (tax_env, sizeof tax_env, "GL_INTAKE_TAXONOMY=%s", bad_path);
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        FILE *f = fopen (bad_path, "w");
        assert_non_null (f);
        fputs (bad[b].text, f);
        fclose (f);
        unlink (log2);
        snprintf (port_env, sizeof port_env, "GL_HTTP_PORT=%d", gl_test_free_port ());
        pid = t_spawn (extra, log2);
        assert_true (pid > 0);
        int status = gl_test_wait (pid, 30000);
        assert_true (WIFEXITED (status) && WEXITSTATUS (status) != 0);
        FILE *lf = fopen (log2, "r");
        assert_non_null (lf);
        char text[65536];
        size_t len = fread (text, 1, sizeof text - 1, lf);
        text[len] = 0;
        fclose (lf);
        char want[400];
        snprintf (want, sizeof want, "%s%s", bad_path, bad[b].error);
        if (!strstr (text, want))
            fprintf (stderr, "expected \"%s\" in:\n%s\n", want, text);
        assert_non_null (strstr (text, want));
    }
    unlink (bad_path);
    unlink (log2);
}

static void
test_create_read (void **state)
{
    t_secret ("SECRET-NOTE-create");
    t_secret ("ABC-23C00123");
    t_secret ("ABC23C00123");
    t_secret ("79 123 4567");
    t_secret ("962791234567");
    t_secret ("rec-2026-01-01-0001.wav");
    const char *body
        = "{\"channel\":\"call\",\"direction\":\"inbound\",\"case_number\":\"ABC-23C00123\","
          "\"phone\":\"+962 79 123 4567\",\"language\":\"ar\",\"categories\":"
          "[\"registration.documents\",\"health\"],\"outcome\":\"information_given\","
          "\"notes\":\"SECRET-NOTE-create\",\"frustration\":true,"
          "\"recording_ref\":\"rec-2026-01-01-0001.wav\",\"sex\":\"female\",\"age_group\":"
          "\"18-59\",\"nationality\":\"SYR\",\"specific_needs\":[\"SM-CI\",\"WR\"],"
          "\"location\":\"AMM-01\"}";
    json_t *rec = t_contact_new (U_AGENT1, body);
    const char *id = json_string_value (json_object_get (rec, "id"));
    assert_true (gl_id_valid (id));
    char cid[GL_ID_LEN + 1];
    snprintf (cid, sizeof cid, "%s", id);
    assert_int_equal (json_integer_value (json_object_get (rec, "version")), 1);
    assert_int_equal (json_integer_value (json_object_get (rec, "created_at")), s_now);
    assert_string_equal (json_string_value (json_object_get (rec, "agent_id")),
                         s_users[U_AGENT1].id);
    assert_true (json_is_false (json_object_get (rec, "repeat")));
    assert_true (json_is_null (json_object_get (rec, "repeat_of")));
    assert_true (json_is_false (json_object_get (rec, "sensitive")));
    assert_true (json_is_false (json_object_get (rec, "anonymous")));
    assert_string_equal (json_string_value (json_object_get (rec, "phone")), "+962 79 123 4567");
    assert_string_equal (json_string_value (json_object_get (rec, "notes")), "SECRET-NOTE-create");
    assert_null (json_object_get (rec, "_case_h"));         //  internals never shown
    assert_null (json_object_get (rec, "topcats"));
    json_decref (rec);

    //  Read back by its author, another agent, a supervisor and protection; not by an admin.
    char path[128];
    snprintf (path, sizeof path, "/api/v1/contacts/%s", cid);
    for (int u = U_AGENT1; u < U_COUNT; u++) {
        json_t *got = t_call_json (u, "GET", path, NULL, NULL, 200);
        assert_string_equal (json_string_value (json_object_get (got, "case_number")),
                             "ABC-23C00123");
        assert_string_equal (json_string_value (json_object_get (got, "location")), "AMM-01");
        assert_int_equal (json_array_size (json_object_get (got, "specific_needs")), 2);
        assert_true (json_is_true (json_object_get (got, "frustration")));
        json_decref (got);
    }
    t_call_error (U_ADMIN, "GET", path, NULL, NULL, 403, "forbidden", NULL);
    t_call_error (U_AGENT1, "GET", "/api/v1/contacts/0123456789abcdef0123456789abcdef", NULL,
                  NULL, 404, "not_found", NULL);
    t_call_error (U_AGENT1, "GET", "/api/v1/contacts/nope", NULL, NULL, 404, "not_found", NULL);

    //  The event: codes and ids only.
    t_wait_events ("contact.created", cid, 1);  //  published once the loop pass ends
    json_t *evs = t_events_for ("contact.created", cid);
    assert_int_equal (json_array_size (evs), 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (json_string_value (json_object_get (data, "contact_id")), cid);
    assert_string_equal (json_string_value (json_object_get (data, "channel")), "call");
    assert_string_equal (json_string_value (json_object_get (data, "outcome")),
                         "information_given");
    assert_string_equal (json_string_value (json_object_get (data, "agent_id")),
                         s_users[U_AGENT1].id);
    assert_true (json_is_true (json_object_get (data, "frustration")));
    assert_true (json_is_false (json_object_get (data, "repeat")));
    assert_int_equal (json_array_size (json_object_get (data, "categories")), 2);
    json_t *agd = json_object_get (data, "agd");
    assert_string_equal (json_string_value (json_object_get (agd, "nationality")), "SYR");
    assert_string_equal (json_string_value (json_object_get (agd, "age_group")), "18-59");
    assert_null (json_object_get (data, "phone"));
    assert_null (json_object_get (data, "notes"));
    assert_null (json_object_get (data, "case_number"));
    assert_null (json_object_get (data, "recording_ref"));
    json_decref (evs);
    assert_int_equal (t_outbox_len (), 0);
}

static void
test_validation (void **state)
{
    //  The count of all contacts before: no refused request may add one.
    char *before = t_search_all (U_SUPER, "from=0", 200);
    const char *ok_tail = "\"language\":\"ar\",\"outcome\":\"information_given\","
                          "\"anonymous\":true";
    struct {
        const char *body;
        const char *code;
        const char *field;
    } cases[] = {
        { "{\"channel\":\"call\",\"categories\":[\"health.nope\"],%s}", "invalid_field",
          "categories" },
        { "{\"channel\":\"call\",\"categories\":[\"health\",\"health\"],%s}", "invalid_field",
          "categories" },
        { "{\"channel\":\"call\",\"categories\":\"health\",%s}", "invalid_field", "categories" },
        { "{\"channel\":\"fax\",\"categories\":[\"health\"],%s}", "invalid_field", "channel" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],%s,\"sex\":\"x\"}", "invalid_field",
          "sex" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],%s,\"colour\":\"red\"}",
          "unknown_field", "colour" },
        { "{\"categories\":[\"health\"],%s}", "missing_field", "channel" },
        { "{\"channel\":\"call\",%s}", "missing_field", "categories" },
        { "{\"channel\":\"walk_in\",\"direction\":\"outbound\",\"categories\":[\"health\"],%s}",
          "invalid_field", "direction" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],%s,\"phone\":\"079 123\"}",
          "invalid_field", "anonymous" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],%s,\"specific_needs\":[\"XX\"]}",
          "invalid_field", "specific_needs" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],%s,\"nationality\":\"sy\"}",
          "invalid_field", "nationality" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],%s,\"frustration\":\"yes\"}",
          "invalid_field", "frustration" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],%s,\"call_id\":\"42\"}",
          "invalid_field", "call_id" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],%s,\"recording_ref\":\"a b\"}",
          "invalid_field", "recording_ref" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[1024];
        snprintf (body, sizeof body, cases[i].body, ok_tail);
        t_call_error (U_AGENT1, "POST", "/api/v1/contacts", NULL, body, 400, cases[i].code,
                      cases[i].field);
    }
    //  Without a tail: identification and the fields' own rules.
    const char *more[][3] = {
        { "{\"channel\":\"call\",\"categories\":[\"health\"],\"language\":\"ar\","
          "\"outcome\":\"information_given\"}",
          "missing_field", "anonymous" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],\"language\":\"Arabic\","
          "\"outcome\":\"information_given\",\"anonymous\":true}",
          "invalid_field", "language" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],\"language\":\"ar\","
          "\"outcome\":\"done\",\"anonymous\":true}",
          "invalid_field", "outcome" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],\"language\":\"ar\","
          "\"outcome\":\"information_given\",\"phone\":\"12ab34\"}",
          "invalid_field", "phone" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],\"language\":\"ar\","
          "\"outcome\":\"information_given\",\"phone\":\"+12\"}",
          "invalid_field", "phone" },
        { "{\"channel\":\"call\",\"categories\":[\"health\"],\"language\":\"ar\","
          "\"outcome\":\"information_given\",\"case_number\":\"AB#1\"}",
          "invalid_field", "case_number" },
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        t_call_error (U_AGENT1, "POST", "/api/v1/contacts", NULL, more[i][0], 400, more[i][1],
                      more[i][2]);

    //  Notes: 4000 characters pass the check, 4001 do not (here with a bad outcome after them,
    //  so nothing is created either way).
    char *big = malloc (8192);
    assert_non_null (big);
    char notes[4002];
    memset (notes, 'n', 4001);
    notes[4001] = 0;
    snprintf (big, 8192,
              "{\"channel\":\"call\",\"categories\":[\"health\"],%s,\"notes\":\"%s\"}", ok_tail,
              notes);
    t_call_error (U_AGENT1, "POST", "/api/v1/contacts", NULL, big, 400, "invalid_field", "notes");
    free (big);

    //  A silent call needs no category and no identification.
    json_t *rec = t_contact_new (U_AGENT1, "{\"channel\":\"call\",\"language\":\"ar\","
                                           "\"outcome\":\"silent\"}");
    assert_int_equal (json_array_size (json_object_get (rec, "categories")), 0);
    json_decref (rec);

    //  Roles: protection and admins do not log contacts.
    t_call_error (U_PROT, "POST", "/api/v1/contacts", NULL, "{}", 403, "forbidden", NULL);
    t_call_error (U_ADMIN, "POST", "/api/v1/contacts", NULL, "{}", 403, "forbidden", NULL);
    //  A malformed Idempotency-Key.
    t_call_error (U_AGENT1, "POST", "/api/v1/contacts", "Idempotency-Key: has a space\r\n",
                  "{\"channel\":\"call\",\"language\":\"ar\",\"outcome\":\"silent\"}", 400,
                  "invalid_header", "Idempotency-Key");
    //  Search parameters.
    t_call_error (U_AGENT1, "GET", "/api/v1/contacts?sort=x", NULL, NULL, 400,
                  "unknown_parameter", "sort");
    t_call_error (U_AGENT1, "GET", "/api/v1/contacts?phone=abc", NULL, NULL, 400,
                  "invalid_parameter", "phone");
    t_call_error (U_AGENT1, "GET", "/api/v1/contacts?category=nope", NULL, NULL, 400,
                  "invalid_parameter", "category");
    t_call_error (U_AGENT1, "GET", "/api/v1/contacts?from=abc", NULL, NULL, 400,
                  "invalid_parameter", "from");
    t_call_error (U_AGENT1, "GET", "/api/v1/contacts?from=10&to=5", NULL, NULL, 400,
                  "invalid_parameter", "from");
    t_call_error (U_AGENT1, "GET", "/api/v1/contacts?cursor=bm9wZQ", NULL, NULL, 400,
                  "invalid_parameter", "cursor");

    char *after = t_search_all (U_SUPER, "from=0", 200);
    assert_int_equal (t_words (after), t_words (before) + 1);       //  the silent call only
    free (before);
    free (after);
}

static void
test_update (void **state)
{
    t_secret ("SECRET-NOTE-update");
    t_secret ("UPD-7001");
    t_secret ("0791112233");
    t_secret ("962791112233");
    char id[GL_ID_LEN + 1];
    t_contact_id (U_AGENT1,
                  "{\"channel\":\"call\",\"case_number\":\"UPD-7001\",\"phone\":\"0791112233\","
                  "\"language\":\"ar\",\"categories\":[\"cash_assistance\"],"
                  "\"outcome\":\"callback_scheduled\"}",
                  id);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/contacts/%s", id);
    json_t *rec = t_call_json (U_AGENT1, "PATCH", path, NULL,
                               "{\"outcome\":\"information_given\",\"notes\":\"SECRET-NOTE-update\"}",
                               200);
    assert_int_equal (json_integer_value (json_object_get (rec, "version")), 2);
    assert_string_equal (json_string_value (json_object_get (rec, "notes")), "SECRET-NOTE-update");
    json_decref (rec);
    t_wait_events ("contact.updated", id, 1);
    json_t *evs = t_events_for ("contact.updated", id);
    assert_int_equal (json_array_size (evs), 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_int_equal (json_integer_value (json_object_get (data, "version")), 2);
    json_t *changed = json_object_get (data, "changed");
    assert_int_equal (json_array_size (changed), 2);
    assert_string_equal (json_string_value (json_array_get (changed, 0)), "outcome");
    assert_string_equal (json_string_value (json_array_get (changed, 1)), "notes");
    assert_string_equal (json_string_value (json_object_get (data, "outcome")),
                         "information_given");
    json_decref (evs);

    //  Another agent may not change it; a supervisor may; protection may not.
    t_call_error (U_AGENT2, "PATCH", path, NULL, "{\"frustration\":true}", 403, "forbidden", NULL);
    t_call_error (U_PROT, "PATCH", path, NULL, "{\"frustration\":true}", 403, "forbidden", NULL);
    rec = t_call_json (U_SUPER, "PATCH", path, NULL, "{\"phone\":null,\"categories\":"
                                                    "[\"cash_assistance.payment\"]}",
                       200);
    assert_int_equal (json_integer_value (json_object_get (rec, "version")), 3);
    assert_true (json_is_null (json_object_get (rec, "phone")));
    assert_string_equal (json_string_value (json_object_get (rec, "updated_by")),
                         s_users[U_SUPER].id);
    json_decref (rec);
    //  The indexes followed: the phone no longer finds it, the new subcategory and the case do.
    char *ids = t_search_all (U_SUPER, "phone=0791112233", 50);
    assert_null (strstr (ids, id));
    free (ids);
    ids = t_search_all (U_SUPER, "category=cash_assistance.payment", 50);
    assert_non_null (strstr (ids, id));
    free (ids);
    ids = t_search_all (U_SUPER, "case_number=upd7001", 50);
    assert_non_null (strstr (ids, id));
    free (ids);

    //  Nothing changed: no new version, no event. Immutable fields and bad values are refused.
    rec = t_call_json (U_AGENT1, "PATCH", path, NULL, "{\"outcome\":\"information_given\"}", 200);
    assert_int_equal (json_integer_value (json_object_get (rec, "version")), 3);
    json_decref (rec);
    t_wait_events ("contact.updated", id, 2);
    t_call_error (U_AGENT1, "PATCH", path, NULL, "{\"channel\":\"sms\"}", 400, "invalid_field",
                  "channel");
    t_call_error (U_AGENT1, "PATCH", path, NULL, "{\"language\":null}", 400, "invalid_field",
                  "language");
    t_call_error (U_AGENT1, "PATCH", path, NULL, "{\"anonymous\":true}", 400, "invalid_field",
                  "anonymous");
    t_call_error (U_AGENT1, "PATCH", path, NULL, "{}", 400, "missing_field", NULL);
    t_call_error (U_AGENT1, "PATCH", "/api/v1/contacts/0123456789abcdef0123456789abcdef", NULL,
                  "{\"frustration\":true}", 404, "not_found", NULL);
}

static void
test_search (void **state)
{
    t_secret ("SRCH-5500");
    t_secret ("962795550000");
    t_secret ("0795550000");
    char ids[6][GL_ID_LEN + 1];
    //  Five contacts of one person written every way, one of someone else; a minute apart.
    const char *bodies[] = {
        "{\"channel\":\"call\",\"case_number\":\"SRCH-5500\",\"language\":\"ar\","
        "\"categories\":[\"education.enrolment\"],\"outcome\":\"information_given\"}",
        "{\"channel\":\"sms\",\"phone\":\"+962 79 555 0000\",\"case_number\":\"srch 5500\","
        "\"language\":\"ar\",\"categories\":[\"legal\"],\"outcome\":\"information_given\"}",
        "{\"channel\":\"walk_in\",\"case_number\":\"SRCH/5500\",\"language\":\"en\","
        "\"categories\":[\"education\"],\"outcome\":\"appointment_booked\"}",
        "{\"channel\":\"call\",\"direction\":\"outbound\",\"phone\":\"00962795550000\","
        "\"language\":\"ar\",\"categories\":[\"fraud\"],\"outcome\":\"complaint_logged\"}",
        "{\"channel\":\"call\",\"phone\":\"0795550000\",\"language\":\"ar\","
        "\"categories\":[\"feedback\"],\"outcome\":\"information_given\"}",
        "{\"channel\":\"call\",\"case_number\":\"OTHER-1\",\"language\":\"ar\","
        "\"categories\":[\"education\"],\"outcome\":\"information_given\"}",
    };
    int64_t first = s_now + 60000;
    for (int i = 0; i < 6; i++) {
        t_clock_write (s_now + 60000);
        t_contact_id (U_AGENT1, bodies[i], ids[i]);
    }
    int64_t last = s_now;

    //  By case number, however it is written: contacts 0, 1, 2, newest first.
    const char *cases[] = { "case_number=SRCH-5500", "case_number=srch5500",
                            "case_number=SRCH%205500", "case_number=s.r.c.h-55-00" };
    for (size_t c = 0; c < 4; c++) {
        char *got = t_search_all (U_AGENT2, cases[c], 50);
        char want[200];
        snprintf (want, sizeof want, "%s %s %s ", ids[2], ids[1], ids[0]);
        assert_string_equal (got, want);
        free (got);
    }
    //  By phone in international, 00 and national forms: contacts 1, 3, 4.
    const char *phones[] = { "phone=%2B962795550000", "phone=00962795550000", "phone=0795550000",
                             "phone=%2B962%20(79)%20555-0000" };
    for (size_t p = 0; p < 4; p++) {
        char *got = t_search_all (U_SUPER, phones[p], 50);
        char want[200];
        snprintf (want, sizeof want, "%s %s %s ", ids[4], ids[3], ids[1]);
        assert_string_equal (got, want);
        free (got);
    }
    //  Category (a category finds its subcategories), with a time range, pages of one.
    char q[200];
    snprintf (q, sizeof q, "category=education&from=%" PRId64 "&to=%" PRId64, first, last + 1);
    char *got = t_search_all (U_PROT, q, 1);
    char want[200];
    snprintf (want, sizeof want, "%s %s %s ", ids[5], ids[2], ids[0]);
    assert_string_equal (got, want);
    free (got);
    //  Two filters: the person and a category.
    got = t_search_all (U_AGENT1, "case_number=SRCH-5500&category=legal", 50);
    snprintf (want, sizeof want, "%s ", ids[1]);
    assert_string_equal (got, want);
    free (got);
    //  A time range alone, in pages of two: exactly the six, each once, newest first.
    snprintf (q, sizeof q, "from=%" PRId64 "&to=%" PRId64, first, last + 1);
    got = t_search_all (U_AGENT1, q, 2);
    snprintf (want, sizeof want, "%s %s %s %s %s %s ", ids[5], ids[4], ids[3], ids[2], ids[1],
              ids[0]);
    assert_string_equal (got, want);
    free (got);
    //  to is exclusive.
    snprintf (q, sizeof q, "from=%" PRId64 "&to=%" PRId64, first, last);
    got = t_search_all (U_AGENT1, q, 50);
    assert_int_equal (t_words (got), 5);
    free (got);

    //  Every search and read is in the audit trail, with the primary filter as the detail.
    char path[128];
    snprintf (path, sizeof path, "/api/v1/contacts/%s", ids[0]);
    json_decref (t_call_json (U_AGENT2, "GET", path, NULL, NULL, 200));
    snprintf (path, sizeof path, "/api/v1/audit?record_type=contact&action=search&actor=%s",
              s_users[U_SUPER].id);
    json_t *page = t_call_json (U_SUPER, "GET", path, NULL, NULL, 200);
    bool phone = false;
    size_t i;
    json_t *entry;
    json_array_foreach (json_object_get (page, "items"), i, entry)
        phone = phone || strcmp (json_string_value (json_object_get (entry, "detail")), "phone") == 0;
    assert_true (phone);
    json_decref (page);
    snprintf (path, sizeof path, "/api/v1/audit?record_type=contact&action=read&record_id=%s",
              ids[0]);
    page = t_call_json (U_SUPER, "GET", path, NULL, NULL, 200);
    entry = json_array_get (json_object_get (page, "items"), 0);
    assert_non_null (entry);
    assert_string_equal (json_string_value (json_object_get (entry, "actor")),
                         s_users[U_AGENT2].id);
    json_decref (page);
    snprintf (path, sizeof path, "/api/v1/audit?record_type=contact&action=create&record_id=%s",
              ids[0]);
    page = t_call_json (U_SUPER, "GET", path, NULL, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (page, "items")), 1);
    json_decref (page);
}

static void
test_repeats (void **state)
{
    t_secret ("RPT-100");
    t_secret ("962790001111");
    t_secret ("0790001111");
    char a[GL_ID_LEN + 1], b[GL_ID_LEN + 1], c[GL_ID_LEN + 1], d[GL_ID_LEN + 1];
    char e[GL_ID_LEN + 1], f[GL_ID_LEN + 1], g[GL_ID_LEN + 1];
    t_contact_id (U_AGENT1,
                  "{\"channel\":\"call\",\"case_number\":\"RPT-100\",\"language\":\"ar\","
                  "\"categories\":[\"registration.documents\"],\"outcome\":\"information_given\"}",
                  a);
    //  An hour later, same case (written differently) and category (another subcategory), and
    //  a phone: a repeat of a.
    t_clock_advance (3600 * 1000);
    json_t *rec = t_contact_new (
        U_AGENT2, "{\"channel\":\"call\",\"case_number\":\"rpt 100\",\"phone\":\"0790001111\","
                  "\"language\":\"ar\",\"categories\":[\"registration.status\"],"
                  "\"outcome\":\"information_given\"}");
    snprintf (b, sizeof b, "%s", json_string_value (json_object_get (rec, "id")));
    assert_true (json_is_true (json_object_get (rec, "repeat")));
    assert_string_equal (json_string_value (json_object_get (rec, "repeat_of")), a);
    json_decref (rec);
    t_wait_events ("contact.created", b, 1);
    json_t *evs = t_events_for ("contact.created", b);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_true (json_is_true (json_object_get (data, "repeat")));
    assert_string_equal (json_string_value (json_object_get (data, "repeat_of")), a);
    json_decref (evs);
    //  Same person, another category: not a repeat.
    rec = t_contact_new (U_AGENT1, "{\"channel\":\"call\",\"case_number\":\"RPT-100\","
                                   "\"language\":\"ar\",\"categories\":[\"health\"],"
                                   "\"outcome\":\"information_given\"}");
    snprintf (c, sizeof c, "%s", json_string_value (json_object_get (rec, "id")));
    assert_true (json_is_false (json_object_get (rec, "repeat")));
    json_decref (rec);
    //  Six days and 23 hours after b, by phone only: a repeat of b, the latest match.
    t_clock_advance (6 * T_DAY_MS + 23 * 3600 * 1000);
    rec = t_contact_new (U_AGENT1, "{\"channel\":\"sms\",\"phone\":\"+962790001111\","
                                   "\"language\":\"ar\",\"categories\":[\"registration\"],"
                                   "\"outcome\":\"information_given\"}");
    snprintf (d, sizeof d, "%s", json_string_value (json_object_get (rec, "id")));
    assert_true (json_is_true (json_object_get (rec, "repeat")));
    assert_string_equal (json_string_value (json_object_get (rec, "repeat_of")), b);
    json_decref (rec);
    //  Exactly 7 days after d is still within the window; a minute more is not.
    t_clock_advance (7 * T_DAY_MS);
    rec = t_contact_new (U_AGENT1, "{\"channel\":\"call\",\"phone\":\"0790001111\","
                                   "\"language\":\"ar\",\"categories\":[\"registration\"],"
                                   "\"outcome\":\"information_given\"}");
    snprintf (e, sizeof e, "%s", json_string_value (json_object_get (rec, "id")));
    assert_string_equal (json_string_value (json_object_get (rec, "repeat_of")), d);
    json_decref (rec);
    t_clock_advance (7 * T_DAY_MS + 60000);
    rec = t_contact_new (U_AGENT1, "{\"channel\":\"call\",\"case_number\":\"RPT-100\","
                                   "\"phone\":\"0790001111\",\"language\":\"ar\","
                                   "\"categories\":[\"registration\"],"
                                   "\"outcome\":\"information_given\"}");
    snprintf (f, sizeof f, "%s", json_string_value (json_object_get (rec, "id")));
    assert_true (json_is_false (json_object_get (rec, "repeat")));
    assert_true (json_is_null (json_object_get (rec, "repeat_of")));
    json_decref (rec);
    //  Anonymous contacts are never repeats.
    rec = t_contact_new (U_AGENT1, "{\"channel\":\"call\",\"anonymous\":true,\"language\":\"ar\","
                                   "\"categories\":[\"registration\"],"
                                   "\"outcome\":\"information_given\"}");
    snprintf (g, sizeof g, "%s", json_string_value (json_object_get (rec, "id")));
    assert_true (json_is_false (json_object_get (rec, "repeat")));
    json_decref (rec);
    (void) c;
    (void) e;
    (void) g;
}

static void
test_sensitive (void **state)
{
    t_secret ("SENS-900");
    t_secret ("SECRET-NOTE-gbv");
    char id[GL_ID_LEN + 1];
    t_contact_id (U_AGENT1,
                  "{\"channel\":\"call\",\"case_number\":\"SENS-900\",\"language\":\"ar\","
                  "\"categories\":[\"gbv.disclosure\"],\"outcome\":\"referral_made\","
                  "\"notes\":\"SECRET-NOTE-gbv\"}",
                  id);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/contacts/%s", id);
    //  The author, supervisors and protection see it.
    int readers[] = { U_AGENT1, U_SUPER, U_PROT };
    for (size_t i = 0; i < 3; i++) {
        json_t *rec = t_call_json (readers[i], "GET", path, NULL, NULL, 200);
        assert_true (json_is_true (json_object_get (rec, "sensitive")));
        json_decref (rec);
        char *ids = t_search_all (readers[i], "case_number=SENS-900", 50);
        assert_non_null (strstr (ids, id));
        free (ids);
    }
    //  Another agent: as if it did not exist, by id, by search, by update.
    t_call_error (U_AGENT2, "GET", path, NULL, NULL, 404, "not_found", NULL);
    t_call_error (U_AGENT2, "PATCH", path, NULL, "{\"frustration\":true}", 404, "not_found", NULL);
    char *ids = t_search_all (U_AGENT2, "case_number=SENS-900", 50);
    assert_string_equal (ids, "");
    free (ids);
    ids = t_search_all (U_AGENT2, "category=gbv", 50);
    assert_null (strstr (ids, id));
    free (ids);
    //  Nor can it raise anything on it.
    char body[256];
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"violence_or_abuse\",\"callback_possible\":false}",
              id);
    t_call_error (U_AGENT2, "POST", "/api/v1/emergencies", NULL, body, 404, "not_found",
                  "contact_id");
    //  The refused read is audited.
    snprintf (path, sizeof path,
              "/api/v1/audit?record_type=contact&action=read_denied&record_id=%s", id);
    json_t *page = t_call_json (U_SUPER, "GET", path, NULL, NULL, 200);
    json_t *entry = json_array_get (json_object_get (page, "items"), 0);
    assert_non_null (entry);
    assert_string_equal (json_string_value (json_object_get (entry, "actor")),
                         s_users[U_AGENT2].id);
    json_decref (page);
    //  The event says it is sensitive, so consumers can restrict it too.
    t_wait_events ("contact.created", id, 1);
    json_t *evs = t_events_for ("contact.created", id);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_true (json_is_true (json_object_get (data, "sensitive")));
    json_decref (evs);
}

static void
test_emergency_and_referral (void **state)
{
    t_secret ("SECRET-NOTE-emergency");
    t_secret ("SECRET-NOTE-referral");
    t_secret ("EMG-42");
    char contact[GL_ID_LEN + 1];
    t_contact_id (U_AGENT1,
                  "{\"channel\":\"call\",\"case_number\":\"EMG-42\",\"language\":\"prs\","
                  "\"categories\":[\"protection_concern.threat\"],"
                  "\"outcome\":\"emergency_raised\"}",
                  contact);
    char body[1024];
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"threat_to_life\",\"location\":\"AMM-02\","
              "\"callback_possible\":true,\"notes\":\"SECRET-NOTE-emergency\"}",
              contact);
    json_t *answer = t_call_json (U_AGENT1, "POST", "/api/v1/emergencies", NULL, body, 202);
    assert_int_equal (json_object_size (answer), 1);
    char eid[GL_ID_LEN + 1];
    snprintf (eid, sizeof eid, "%s", json_string_value (json_object_get (answer, "emergency_id")));
    assert_true (gl_id_valid (eid));
    json_decref (answer);
    t_wait_events ("emergency.raised", eid, 1);
    json_t *evs = t_events_for ("emergency.raised", eid);
    assert_int_equal (json_array_size (evs), 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (json_string_value (json_object_get (data, "emergency_id")), eid);
    assert_string_equal (json_string_value (json_object_get (data, "type")), "threat_to_life");
    assert_string_equal (json_string_value (json_object_get (data, "contact_id")), contact);
    assert_string_equal (json_string_value (json_object_get (data, "language")), "prs");
    assert_string_equal (json_string_value (json_object_get (data, "location")), "AMM-02");
    assert_true (json_is_true (json_object_get (data, "callback_possible")));
    assert_null (json_object_get (data, "notes"));
    json_decref (evs);
    //  intake's record keeps the notes, for its author, supervisors and protection only.
    char path[128];
    snprintf (path, sizeof path, "/api/v1/emergencies/%s", eid);
    json_t *rec = t_call_json (U_PROT, "GET", path, NULL, NULL, 200);
    assert_string_equal (json_string_value (json_object_get (rec, "notes")),
                         "SECRET-NOTE-emergency");
    assert_string_equal (json_string_value (json_object_get (rec, "emergency_id")), eid);
    json_decref (rec);
    assert_int_equal (t_call_status (U_AGENT1, "GET", path, NULL), 200);
    t_call_error (U_AGENT2, "GET", path, NULL, NULL, 404, "not_found", NULL);

    //  From a live call only, before any contact exists.
    char call_id[GL_ID_LEN + 1];
    gl_id_new (call_id);
    snprintf (body, sizeof body,
              "{\"call_id\":\"%s\",\"type\":\"suicide_risk\",\"callback_possible\":false}",
              call_id);
    json_decref (t_call_json (U_AGENT2, "POST", "/api/v1/emergencies", NULL, body, 202));

    //  Validation.
    t_call_error (U_AGENT1, "POST", "/api/v1/emergencies", NULL,
                  "{\"type\":\"medical\",\"callback_possible\":true}", 400, "missing_field",
                  "contact_id");
    snprintf (body, sizeof body, "{\"contact_id\":\"%s\",\"callback_possible\":true}", contact);
    t_call_error (U_AGENT1, "POST", "/api/v1/emergencies", NULL, body, 400, "missing_field",
                  "type");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"flood\",\"callback_possible\":true}", contact);
    t_call_error (U_AGENT1, "POST", "/api/v1/emergencies", NULL, body, 400, "invalid_field",
                  "type");
    snprintf (body, sizeof body, "{\"contact_id\":\"%s\",\"type\":\"medical\"}", contact);
    t_call_error (U_AGENT1, "POST", "/api/v1/emergencies", NULL, body, 400, "missing_field",
                  "callback_possible");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"medical\",\"callback_possible\":true,"
              "\"location\":\"a b\"}",
              contact);
    t_call_error (U_AGENT1, "POST", "/api/v1/emergencies", NULL, body, 400, "invalid_field",
                  "location");
    t_call_error (U_AGENT1, "POST", "/api/v1/emergencies", NULL,
                  "{\"contact_id\":\"0123456789abcdef0123456789abcdef\",\"type\":\"medical\","
                  "\"callback_possible\":true}",
                  404, "not_found", "contact_id");
    t_call_error (U_PROT, "POST", "/api/v1/emergencies", NULL, "{}", 403, "forbidden", NULL);

    //  Referrals.
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"category\":\"protection_concern\",\"priority\":\"high\","
              "\"consent\":true,\"notes\":\"SECRET-NOTE-referral\"}",
              contact);
    answer = t_call_json (U_AGENT1, "POST", "/api/v1/referrals", NULL, body, 202);
    char rid[GL_ID_LEN + 1];
    snprintf (rid, sizeof rid, "%s", json_string_value (json_object_get (answer, "referral_id")));
    assert_true (gl_id_valid (rid));
    json_decref (answer);
    t_wait_events ("referral.requested", rid, 1);
    evs = t_events_for ("referral.requested", rid);
    assert_int_equal (json_array_size (evs), 1);
    data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (json_string_value (json_object_get (data, "category")),
                         "protection_concern");
    assert_string_equal (json_string_value (json_object_get (data, "priority")), "high");
    assert_true (json_is_true (json_object_get (data, "consent")));
    assert_string_equal (json_string_value (json_object_get (data, "contact_id")), contact);
    json_decref (evs);
    snprintf (path, sizeof path, "/api/v1/referrals/%s", rid);
    rec = t_call_json (U_SUPER, "GET", path, NULL, NULL, 200);
    assert_string_equal (json_string_value (json_object_get (rec, "notes")),
                         "SECRET-NOTE-referral");
    json_decref (rec);
    //  Consent is required unless it is an emergency.
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"category\":\"gbv\",\"priority\":\"normal\","
              "\"consent\":false}",
              contact);
    t_call_error (U_AGENT1, "POST", "/api/v1/referrals", NULL, body, 400, "invalid_field",
                  "consent");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"category\":\"gbv\",\"priority\":\"emergency\","
              "\"consent\":false}",
              contact);
    json_decref (t_call_json (U_AGENT1, "POST", "/api/v1/referrals", NULL, body, 202));
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"category\":\"weather\",\"priority\":\"normal\","
              "\"consent\":true}",
              contact);
    t_call_error (U_AGENT1, "POST", "/api/v1/referrals", NULL, body, 400, "invalid_field",
                  "category");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"category\":\"gbv\",\"priority\":\"normal\"}", contact);
    t_call_error (U_AGENT1, "POST", "/api/v1/referrals", NULL, body, 400, "missing_field",
                  "consent");
    char *big = malloc (8192);
    char notes[4002];
    memset (notes, 'x', 4001);
    notes[4001] = 0;
    snprintf (big, 8192,
              "{\"contact_id\":\"%s\",\"category\":\"gbv\",\"priority\":\"normal\","
              "\"consent\":true,\"notes\":\"%s\"}",
              contact, notes);
    t_call_error (U_AGENT1, "POST", "/api/v1/referrals", NULL, big, 400, "invalid_field",
                  "notes");
    free (big);
    t_call_error (U_AGENT1, "POST", "/api/v1/referrals", NULL,
                  "{\"contact_id\":\"x\",\"urgency\":1}", 400, "unknown_field", "urgency");
    //  Audited.
    snprintf (path, sizeof path, "/api/v1/audit?record_type=emergency&record_id=%s&action=create",
              eid);
    json_t *page = t_call_json (U_SUPER, "GET", path, NULL, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (page, "items")), 1);
    json_decref (page);
}

static void
test_idempotency (void **state)
{
    char contact[GL_ID_LEN + 1];
    t_contact_id (U_AGENT1, "{\"channel\":\"call\",\"anonymous\":true,\"language\":\"ar\","
                            "\"categories\":[\"child_protection\"],\"outcome\":\"emergency_raised\"}",
                  contact);
    char body[512];
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"child_at_risk\",\"callback_possible\":false}",
              contact);
    const char *key = "Idempotency-Key: 5f0c3a9e-retry-test\r\n";
    t_resp_t first = t_call (U_AGENT1, "POST", "/api/v1/emergencies", key, body);
    t_expect (&first, 202);
    json_t *a = t_json (&first);
    assert_null (t_header (&first, "Idempotent-Replayed"));
    t_free (&first);
    const char *eid = json_string_value (json_object_get (a, "emergency_id"));
    //  The agent's retry after a timeout: same id, nothing raised twice.
    for (int i = 0; i < 3; i++) {
        t_resp_t again = t_call (U_AGENT1, "POST", "/api/v1/emergencies", key, body);
        t_expect (&again, 202);
        assert_string_equal (t_header (&again, "Idempotent-Replayed"), "true");
        json_t *b = t_json (&again);
        assert_string_equal (json_string_value (json_object_get (b, "emergency_id")), eid);
        json_decref (b);
        t_free (&again);
    }
    t_wait_events ("emergency.raised", eid, 1);
    //  The same key with another body is refused; another agent's same key is its own.
    char other[512];
    snprintf (other, sizeof other,
              "{\"contact_id\":\"%s\",\"type\":\"medical\",\"callback_possible\":false}",
              contact);
    t_call_error (U_AGENT1, "POST", "/api/v1/emergencies", key, other, 409,
                  "idempotency_conflict", NULL);
    json_t *c = t_call_json (U_SUPER, "POST", "/api/v1/emergencies", key, body, 202);
    assert_string_not_equal (json_string_value (json_object_get (c, "emergency_id")), eid);
    json_decref (c);
    json_decref (a);

    //  Contacts and referrals take a key too.
    const char *ckey = "Idempotency-Key: contact-key-1\r\n";
    const char *cbody = "{\"channel\":\"call\",\"anonymous\":true,\"language\":\"ar\","
                        "\"categories\":[\"feedback\"],\"outcome\":\"information_given\"}";
    json_t *c1 = t_call_json (U_AGENT2, "POST", "/api/v1/contacts", ckey, cbody, 201);
    json_t *c2 = t_call_json (U_AGENT2, "POST", "/api/v1/contacts", ckey, cbody, 201);
    const char *cid = json_string_value (json_object_get (c1, "id"));
    assert_string_equal (cid, json_string_value (json_object_get (c2, "id")));
    t_wait_events ("contact.created", cid, 1);
    json_decref (c1);
    json_decref (c2);
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"category\":\"child_protection.separated\","
              "\"priority\":\"emergency\",\"consent\":false}",
              contact);
    const char *rkey = "Idempotency-Key: referral-key-1\r\n";
    json_t *r1 = t_call_json (U_AGENT1, "POST", "/api/v1/referrals", rkey, body, 202);
    json_t *r2 = t_call_json (U_AGENT1, "POST", "/api/v1/referrals", rkey, body, 202);
    const char *rid = json_string_value (json_object_get (r1, "referral_id"));
    assert_string_equal (rid, json_string_value (json_object_get (r2, "referral_id")));
    t_wait_events ("referral.requested", rid, 1);
    json_decref (r1);
    json_decref (r2);
}

//  Killed right after answering: the record and its event are both there after a restart.
static void
test_kill9_after_answer (void **state)
{
    char id[GL_ID_LEN + 1];
    t_contact_id (U_AGENT1, "{\"channel\":\"call\",\"anonymous\":true,\"language\":\"ar\","
                            "\"categories\":[\"appointment.book\"],"
                            "\"outcome\":\"appointment_booked\"}",
                  id);
    t_kill_and_restart ();
    char path[128];
    snprintf (path, sizeof path, "/api/v1/contacts/%s", id);
    assert_int_equal (t_call_status (U_AGENT1, "GET", path, NULL), 200);
    t_wait_events ("contact.created", id, 1);

    char body[256];
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"medical\",\"callback_possible\":true}", id);
    json_t *answer = t_call_json (U_AGENT1, "POST", "/api/v1/emergencies", NULL, body, 202);
    char eid[GL_ID_LEN + 1];
    snprintf (eid, sizeof eid, "%s", json_string_value (json_object_get (answer, "emergency_id")));
    json_decref (answer);
    t_kill_and_restart ();
    snprintf (path, sizeof path, "/api/v1/emergencies/%s", eid);
    assert_int_equal (t_call_status (U_AGENT1, "GET", path, NULL), 200);
    t_wait_events ("emergency.raised", eid, 1);
}

//  Forbid (or allow again) intake's writes to the bus log, and only those: Redis's ACL lets the
//  default user write everything but gl:log:*, which it may still read.
static void
t_log_writable (bool writable)
{
    redisReply *r = writable ? gl_redis_cmd (s_rc, "ACL SETUSER default resetkeys ~*")
                             : gl_redis_cmd (s_rc, "ACL SETUSER default resetkeys ~intake:* "
                                                   "~gl:src:* ~gl:sources ~gl:cur:* "
                                                   "~gl:lease:* %%R~gl:log:*");
    assert_non_null (r);
    if (r->type == REDIS_REPLY_ERROR)
        fprintf (stderr, "ACL SETUSER: %s\n", r->str);
    assert_int_equal (r->type, REDIS_REPLY_STATUS);
    freeReplyObject (r);
}

//  The outbox: an event whose append failed after its record was written is delivered by the
//  sweep — while intake runs, and after a SIGKILL at start — exactly once; an entry whose event
//  is already in the log is only cleared.
static void
test_outbox (void **state)
{
    //  1. The append fails, intake keeps running: the 201 stands, the sweep delivers.
    t_log_writable (false);
    char id[GL_ID_LEN + 1];
    t_contact_id (U_AGENT1, "{\"channel\":\"call\",\"anonymous\":true,\"language\":\"ar\","
                            "\"categories\":[\"education\"],\"outcome\":\"information_given\"}",
                  id);
    assert_int_equal (t_count_events ("contact.created", id), 0);
    assert_int_equal (t_outbox_len (), 1);
    t_log_writable (true);
    t_wait_events ("contact.created", id, 1);
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (t_outbox_len () > 0 && gl_mono_ms () < deadline)
        gl_sleep_ms (50);
    assert_int_equal (t_outbox_len (), 0);
    //  The delivered event is the one the record was written with.
    json_t *evs = t_events_for ("contact.created", id);
    json_t *ev = json_array_get (evs, 0);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/contacts/%s", id);
    json_t *rec = t_call_json (U_AGENT1, "GET", path, NULL, NULL, 200);
    assert_int_equal (json_integer_value (json_object_get (ev, "ts")),
                      json_integer_value (json_object_get (rec, "created_at")));
    json_decref (rec);
    json_decref (evs);

    //  2. The append fails and intake is killed before the sweep: the restart delivers it. An
    //  emergency this time (the critical path).
    t_log_writable (false);
    char body[256];
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"medical\",\"callback_possible\":true}", id);
    json_t *answer = t_call_json (U_AGENT1, "POST", "/api/v1/emergencies", NULL, body, 202);
    char eid[GL_ID_LEN + 1];
    snprintf (eid, sizeof eid, "%s", json_string_value (json_object_get (answer, "emergency_id")));
    json_decref (answer);
    kill (s_intake, SIGKILL);
    assert_true (WIFSIGNALED (gl_test_wait (s_intake, 10000)));
    assert_int_equal (t_count_events ("emergency.raised", eid), 0);
    assert_int_equal (t_outbox_len (), 1);
    t_log_writable (true);
    t_clock_write (s_now + 11000);
    t_start_intake ();
    t_wait_events ("emergency.raised", eid, 1);

    //  3. An entry whose event is already in the log (intake died after the append, before
    //  clearing it): the sweep finds it by id and appends nothing.
    json_t *logged = t_events_for ("emergency.raised", eid);
    json_t *le = json_array_get (logged, 0);
    json_t *entry = json_pack ("{s:s, s:O, s:O, s:O, s:i, s:s, s:I, s:O}", "type",
                               "emergency.raised", "id", json_object_get (le, "id"), "ts",
                               json_object_get (le, "ts"), "corr", json_object_get (le, "corr"),
                               "flags", 1, "src", "intake-1", "seq",
                               json_integer_value (json_object_get (le, "seq")) - 1, "data",
                               json_object_get (le, "data"));
    char *text = json_dumps (entry, JSON_COMPACT);
    redisReply *r = gl_redis_cmd (s_rc, "HSET intake:{intake}:outbox %s %s",
                                  json_string_value (json_object_get (le, "id")), text);
    assert_non_null (r);
    freeReplyObject (r);
    free (text);
    json_decref (entry);
    json_decref (logged);
    deadline = gl_mono_ms () + T_WAIT_MS;
    while (t_outbox_len () > 0 && gl_mono_ms () < deadline)
        gl_sleep_ms (50);
    assert_int_equal (t_outbox_len (), 0);
    assert_int_equal (t_count_events ("emergency.raised", eid), 1);
}

//  No personal data the tests sent is in any event (checked by every t_events) or in intake's
//  log.
static void
test_no_personal_data (void **state)
{
    json_t *all = t_events (NULL);
    assert_true (json_array_size (all) > 20);
    json_decref (all);
    FILE *f = fopen (s_log_path, "r");
    assert_non_null (f);
    size_t cap = 16 << 20;
    char *text = malloc (cap + 1);
    assert_non_null (text);
    size_t len = fread (text, 1, cap, f);
    text[len] = 0;
    fclose (f);
    assert_true (len > 0);
    for (int i = 0; i < s_secretc; i++) {
        if (strstr (text, s_secrets[i]))
            fprintf (stderr, "personal data in intake's log: %s\n", s_secrets[i]);
        assert_null (strstr (text, s_secrets[i]));
    }
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_taxonomy),
        cmocka_unit_test (test_create_read),
        cmocka_unit_test (test_validation),
        cmocka_unit_test (test_update),
        cmocka_unit_test (test_search),
        cmocka_unit_test (test_repeats),
        cmocka_unit_test (test_sensitive),
        cmocka_unit_test (test_emergency_and_referral),
        cmocka_unit_test (test_idempotency),
        cmocka_unit_test (test_kill9_after_answer),
        cmocka_unit_test (test_outbox),
        cmocka_unit_test (test_no_personal_data),
    };
    return cmocka_run_group_tests_name ("intake contacts", tests, t_setup, t_teardown);
}
