/*  intake's retention purge and person export over real HTTP: gl-intake as a process against a
    private redis-server, its business clock driven through GL_CLOCK_FILE.

    Records of two people made two years apart (contacts, a complaint, an emergency, a case
    extract row and a change request for the first; a contact, a complaint and a case row for
    the second), then the clock moved past the periods: the purge removes exactly the expired
    personal data (contacts' identifiers and notes with their person indexes, the emergency's
    notes, the change request, the stale case row, the old bus-log archive file) and nothing
    else (the records inside their period, the anonymous fields and the time and category
    indexes stay); a second run purges nothing; the complaint goes when its own longer period
    is over. The export returns exactly one person's records, to protection and admin only,
    with referral's part (a real gl-referral, asked with the person's contact ids) and scheduler
    (no endpoint here) listed as not asked.
    Both are audited, never with the identifier. retention.purged carries type, count and
    cutoff; and no event in intake's log (every event the traffic of this test made) holds a
    case number, a phone number or any free text the test sent.

    ctest: timeout=180 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include "gl_testintake.h"
#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define T_DAY_MS    INT64_C(86400000)
#define T0          GL_TESTINTAKE_START_MS

static gl_testredis_t *s_redis;
static gl_testintake_t *s_in;
static gl_redis_t *s_rc;
static char s_archive[256];
static char s_agent[128], s_super[128], s_prot[128], s_client[128];
static char s_agent_id[GL_ID_LEN + 1], s_tmp_id[GL_ID_LEN + 1];
static pid_t s_referral = -1;           //  gl-referral, asked for its part of the export
static char s_ref_log[300];

//  Everything personal the test sends: no event may hold any of it.
static const char *const s_secrets[]
    = { "RET-1001", "RET1001", "RET-2002", "RET2002", "962791112233", "962792223344",
        "SECRET-NOTE-A", "SECRET-NOTE-B", "SECRET-DESC-A", "SECRET-DESC-B", "SECRET-EMG-A",
        "1980-05-06", "962793334455", "IND-77", "IND77", NULL };

//  --------------------------------------------------------------------------------------------
//  Helpers

static json_t *t_json (const char *token, const char *method, const char *path, const char *body,
                       int status);

static json_t *
t_json (const char *token, const char *method, const char *path, const char *body, int status)
{
    gl_test_resp_t resp = gl_testintake_call (s_in, method, path, token, NULL, body);
    if (resp.status != status)
        fprintf (stderr, "%s %s: %d %s\n", method, path, resp.status, resp.raw ? resp.raw : "");
    assert_int_equal (resp.status, status);
    json_t *json = gl_test_json (&resp);
    gl_test_http_free (&resp);
    return json;
}

static void
t_error (const char *token, const char *method, const char *path, const char *body, int status,
         const char *code)
{
    gl_test_resp_t resp = gl_testintake_call (s_in, method, path, token, NULL, body);
    assert_int_equal (resp.status, status);
    assert_string_equal (gl_test_error_code (&resp), code);
    gl_test_http_free (&resp);
}

//  Sign in again (sessions end on the business clock).
static void
t_login (const char *username, const char *password, char *token)
{
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", username,
              password);
    json_t *j = t_json (NULL, "POST", "/api/v1/auth/login", body, 200);
    snprintf (token, 128, "%s", json_string_value (json_object_get (j, "token")));
    json_decref (j);
}

//  Move the business clock to day days, and sign everybody in again.
static void
t_clock (int64_t days)
{
    gl_testintake_clock (s_in, T0 + days * T_DAY_MS);
    t_login ("admin", GL_TESTINTAKE_ADMIN_PASS, s_in->admin_token);
    t_login ("agent1", "pw-agent1-123456", s_agent);
    t_login ("super1", "pw-super1-123456", s_super);
    t_login ("prot1", "pw-prot1-123456", s_prot);
}

static void
t_id (json_t *json, const char *field, char *out)
{
    const char *s = json_string_value (json_object_get (json, field));
    assert_non_null (s);
    snprintf (out, GL_ID_LEN + 1, "%s", s);
}

//  HGET as a new string, or NULL.
static char *
t_hget (const char *key, const char *field)
{
    redisReply *r = gl_redis_cmd (s_rc, "HGET %s %s", key, field);
    assert_non_null (r);
    char *s = r->type == REDIS_REPLY_STRING ? strdup (r->str) : NULL;
    freeReplyObject (r);
    return s;
}

static bool
t_hexists (const char *key, const char *field)
{
    char *s = t_hget (key, field);
    free (s);
    return s != NULL;
}

//  An integer command on one key (EXISTS, ZCARD).
static long long
t_int (const char *cmd, const char *key)
{
    redisReply *r = gl_redis_cmd (s_rc, "%s %s", cmd, key);
    assert_non_null (r);
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject (r);
    return n;
}

//  The purge report's line for type.
static int64_t
t_purged (json_t *report, const char *type)
{
    size_t i;
    json_t *line;
    json_array_foreach (json_object_get (report, "types"), i, line)
        if (strcmp (json_string_value (json_object_get (line, "record_type")), type) == 0)
            return json_integer_value (json_object_get (line, "purged"));
    fail_msg ("no line for %s", type);
    return -1;
}

static json_t *
t_purge (void)
{
    return t_json (s_in->admin_token, "POST", "/api/v1/retention/purge", NULL, 200);
}

static json_t *
t_export (const char *token, const char *body)
{
    return t_json (token, "POST", "/api/v1/persons/export", body, 200);
}

static size_t
t_len (json_t *o, const char *field)
{
    return json_array_size (json_object_get (o, field));
}

//  Archive everything in intake-1's log so far (a consumer group whose cursor is at the end).
static void
t_archive_now (void)
{
    gl_srcinfo_t info;
    assert_int_equal (gl_srcinfo_read (s_rc, "intake-1", &info), 0);
    char cur[64];
    gl_cursor_format ((gl_cursor_t) { info.epoch, info.seq }, cur, sizeof cur);
    //  gl-referral consumes intake-1 too: the log is trimmed behind it, so wait until it has
    //  taken everything so far.
    bool behind = true;
    for (int i = 0; i < 600 && behind; i++) {
        redisReply *c = gl_redis_cmd (s_rc, "HGET gl:cur:{referral} intake-1");
        gl_cursor_t at;
        behind = !c || c->type != REDIS_REPLY_STRING
                 || gl_cursor_parse (c->str, c->len, &at) != 0 || at.epoch != info.epoch
                 || at.seq < info.seq;
        if (c)
            freeReplyObject (c);
        if (behind)
            gl_sleep_ms (50);
    }
    assert_false (behind);
    redisReply *r = gl_redis_cmd (s_rc, "SADD gl:consumers rettest");
    freeReplyObject (r);
    r = gl_redis_cmd (s_rc, "HSET gl:cur:{rettest} intake-1 %s", cur);
    freeReplyObject (r);
    assert_true (gl_log_trim (s_rc, "intake-1", s_archive, 0) > 0);
}

static int
t_archive_files (void)
{
    char dir[300];
    snprintf (dir, sizeof dir, "%s/intake-1", s_archive);
    DIR *d = opendir (dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir (d)))
        n += strstr (de->d_name, ".glog") != NULL;
    closedir (d);
    return n;
}

//  --------------------------------------------------------------------------------------------
//  Setup

static int
t_setup (void **state)
{
    (void) state;
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    snprintf (s_archive, sizeof s_archive, "/tmp/gl-retention-XXXXXX");
    if (!mkdtemp (s_archive))
        return -1;
    char archive_env[300];
    snprintf (archive_env, sizeof archive_env, "GL_ARCHIVE_DIR=%s", s_archive);
    //  A real gl-referral takes intake's events and answers referral.person_export; scheduler
    //  has no endpoint here, so the export lists it as not asked.
    int ref_router = gl_test_free_port ();
    char ref_env[100];
    snprintf (ref_env, sizeof ref_env, "GL_ENDPOINT_REFERRAL=tcp://127.0.0.1:%d", ref_router);
    const char *extra[] = { archive_env, "GL_INTAKE_VERIFY_QUESTIONS=dob",
                            "GL_INTAKE_RETAIN_CHECK_MS=200", ref_env,
                            "GL_BUS_TOKENS=tok-retention", "GL_INTAKE_REFERRAL_TIMEOUT_MS=10000",
                            NULL };
    s_in = gl_testintake_start (s_redis, extra);
    if (!s_in)
        return -1;
    char conf[300];
    snprintf (conf, sizeof conf, "%s/referral.conf", s_redis->dir);
    snprintf (s_ref_log, sizeof s_ref_log, "/tmp/gl-retention-referral-%d.log", (int) getpid ());
    FILE *f = fopen (conf, "w");
    if (!f)
        return -1;
    fputs ("unit protection 24x7\n"
           "roster protection daily 00:00-24:00 d0000000000000000000000000000001\n"
           "default protection\nsla * * ack=4h resolve=3d\n"
           "escalation focal=1h supervisor=2h\nemergency protection ack=5m repeat=2m\n",
           f);
    fclose (f);
    char env[10][320];
    int n = 0;
    snprintf (env[n++], 320, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 320, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (env[n++], 320, "GL_BUS_TOKENS=tok-retention");
    snprintf (env[n++], 320, "GL_CLOCK_FILE=%s", s_in->clock_path);
    snprintf (env[n++], 320, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (env[n++], 320, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", ref_router);
    snprintf (env[n++], 320, "GL_BUS_PUB_ENDPOINTS=tcp://127.0.0.1:%d", s_in->pub_port);
    snprintf (env[n++], 320, "GL_REFERRAL_CONFIG=%s", conf);
    snprintf (env[n++], 320, "GL_HEALTH_PORT=0");
    char *envp[11];
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    char *argv[] = { "gl-referral", NULL };
    s_referral = gl_test_spawn (gl_test_build_path ("services/referral/gl-referral"), argv, envp,
                                s_ref_log);
    if (s_referral <= 0)
        return -1;
    s_rc = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 5000, 5000);
    //  The timer looks every 200 ms; no run is due until test_timer says so (the on-demand
    //  runs of test_retention are then the only ones, and their reports exact).
    redisReply *r = s_rc ? gl_redis_cmd (s_rc, "HSET intake:{intake}:retention next %lld",
                                         (long long) INT64_C(9000000000000000))
                         : NULL;
    if (r)
        freeReplyObject (r);
    if (!s_rc
        || gl_testintake_user (s_in, "agent1", "[\"agent\"]", "[\"unit-a\"]", s_agent,
                               s_agent_id) != 0
        || gl_testintake_user (s_in, "super1", "[\"supervisor\"]", "[\"unit-a\"]", s_super,
                               s_tmp_id) != 0
        || gl_testintake_user (s_in, "prot1", "[\"protection\"]", "[\"unit-a\"]", s_prot,
                               s_tmp_id) != 0
        || gl_testintake_client (s_in, "registration", s_client) != 0)
        return -1;
    return 0;
}

static int
t_teardown (void **state)
{
    (void) state;
    if (s_referral > 0)
        gl_test_stop (s_referral, 10000);
    //  Referral logged the exports by kind of identifier, never its value.
    FILE *f = fopen (s_ref_log, "r");
    char line[4096];
    int exports = 0;
    while (f && fgets (line, sizeof line, f)) {
        for (size_t i = 0; s_secrets[i]; i++)
            if (strstr (line, s_secrets[i]))
                fail_msg ("personal data in referral's log: %s", line);
        exports += strstr (line, "person export by") != NULL;
    }
    if (f)
        fclose (f);
    unlink (s_ref_log);
    if (exports < 4)
        fail_msg ("referral logged %d exports", exports);
    gl_testintake_destroy (&s_in);
    gl_redis_destroy (&s_rc);
    gl_testredis_destroy (&s_redis);
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_archive);
    if (system (cmd) != 0)
        fprintf (stderr, "cannot remove %s\n", s_archive);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  The test

typedef struct {
    uint64_t last;
    int64_t events;
    int64_t purged;         //  sum of retention.purged counts
} t_check_t;

static int
t_decode_check (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    t_check_t *c = arg;
    c->last = seq;
    c->events++;
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    assert_non_null (ev);
    char *text = json_dumps (ev->data, JSON_COMPACT);
    assert_non_null (text);
    for (size_t i = 0; s_secrets[i]; i++)
        if (strstr (text, s_secrets[i]) || strstr (ev->corr, s_secrets[i]))
            fail_msg ("event %s holds personal data: %s", ev->type, text);
    if (strcmp (ev->type, "retention.purged") == 0) {
        //  Exactly type, count, cutoff and more: no ids.
        assert_int_equal (json_object_size (ev->data), 4);
        assert_non_null (json_object_get (ev->data, "cutoff"));
        c->purged += json_integer_value (json_object_get (ev->data, "count"));
    }
    free (text);
    gl_event_destroy (&ev);
    return 0;
}

//  Check every event of intake-1's log; the sum of retention.purged counts in it.
static int64_t
t_check_log (int64_t *events)
{
    t_check_t c = { 0, 0, 0 };
    uint64_t first = 0;
    int64_t n = gl_log_read (s_rc, "intake-1", 1, 0, 1000, t_decode_check, &c, &first);
    while (n > 0) {
        n = gl_log_read (s_rc, "intake-1", c.last + 1, 0, 1000, t_decode_check, &c, NULL);
    }
    assert_true (n == 0);
    if (events)
        *events = c.events;
    return c.purged;
}

//  Check every event of every archive file of intake-1. Returns the number of events.
static int64_t
t_check_archives (void)
{
    char dir[300];
    snprintf (dir, sizeof dir, "%s/intake-1", s_archive);
    DIR *d = opendir (dir);
    assert_non_null (d);
    t_check_t c = { 0, 0, 0 };
    struct dirent *de;
    while ((de = readdir (d))) {
        if (!strstr (de->d_name, ".glog"))
            continue;
        char path[700];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen (path, "rb");
        assert_non_null (f);
        unsigned char hdr[4];
        while (fread (hdr, 1, 4, f) == 4) {
            size_t len = (size_t) hdr[0] << 24 | (size_t) hdr[1] << 16 | (size_t) hdr[2] << 8
                       | hdr[3];
            char *buf = malloc (len);
            assert_non_null (buf);
            assert_int_equal (fread (buf, 1, len, f), len);
            t_decode_check (&c, 0, buf, len);
            free (buf);
        }
        fclose (f);
    }
    closedir (d);
    return c.events;
}

static void
test_retention (void **state)
{
    (void) state;
    char c_a[GL_ID_LEN + 1], c_b[GL_ID_LEN + 1], k_a[GL_ID_LEN + 1], k_b[GL_ID_LEN + 1];
    char e_a[GL_ID_LEN + 1], chg[GL_ID_LEN + 1], call[GL_ID_LEN + 1], body[1024], key[200];

    //  Day 0: person A calls; a complaint, an emergency, the case extract and a change request.
    t_clock (0);
    json_t *j = t_json (s_agent, "POST", "/api/v1/contacts",
                        "{\"channel\":\"call\",\"case_number\":\"RET-1001\",\"phone\":\"+962 79 111 "
                        "2233\",\"language\":\"ar\",\"categories\":[\"protection_concern.threat\"],"
                        "\"outcome\":\"emergency_raised\",\"notes\":\"SECRET-NOTE-A\","
                        "\"sex\":\"female\"}",
                        201);
    t_id (j, "id", c_a);
    json_decref (j);
    j = t_json (s_agent, "POST", "/api/v1/complaints",
                "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                "\"case_number\":\"RET-1001\",\"phone\":\"+962791112233\","
                "\"description\":\"SECRET-DESC-A\"}",
                201);
    t_id (j, "id", k_a);
    json_decref (j);
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"threat_to_life\",\"callback_possible\":true,"
              "\"notes\":\"SECRET-EMG-A\"}",
              c_a);
    j = t_json (s_agent, "POST", "/api/v1/emergencies", body, 202);
    t_id (j, "emergency_id", e_a);
    json_decref (j);
    json_decref (t_json (s_client, "POST", "/api/v1/cases/import",
                         "{\"csv\":\"case_no,as_of,dob,family_size,phones\\nRET-1001,2025-12-31,"
                         "1980-05-06,3,+962791112233\\n\"}",
                         200));
    gl_id_new (call);
    snprintf (body, sizeof body, "{\"call_id\":\"%s\",\"answers\":{\"dob\":\"1980-05-06\"}}",
              call);
    json_decref (t_json (s_agent, "POST", "/api/v1/cases/RET-1001/verify", body, 200));
    snprintf (body, sizeof body, "{\"call_id\":\"%s\",\"phones\":[\"+962 79 333 4455\"]}", call);
    j = t_json (s_agent, "POST", "/api/v1/cases/RET-1001/change-requests", body, 201);
    t_id (j, "id", chg);
    json_decref (j);
    t_archive_now ();               //  the first archive file: events of day 0

    //  Day 400: person B.
    t_clock (400);
    j = t_json (s_agent, "POST", "/api/v1/contacts",
                "{\"channel\":\"call\",\"case_number\":\"RET-2002\",\"individual_number\":"
                "\"IND-77\",\"phone\":\"+962 79 222 "
                "3344\",\"language\":\"ar\",\"categories\":[\"protection_concern.threat\"],"
                "\"outcome\":\"emergency_raised\",\"notes\":\"SECRET-NOTE-B\"}",
                201);
    t_id (j, "id", c_b);
    json_decref (j);
    j = t_json (s_agent, "POST", "/api/v1/complaints",
                "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                "\"case_number\":\"RET-2002\",\"description\":\"SECRET-DESC-B\"}",
                201);
    t_id (j, "id", k_b);
    json_decref (j);
    json_decref (t_json (s_client, "POST", "/api/v1/cases/import",
                         "{\"csv\":\"case_no,as_of,dob\\nRET-2002,2027-02-04,1970-01-02\\n\"}",
                         200));

    //  Day 740: the export first. Protection and admin only; exactly A's records. Referral has
    //  taken A's emergency from intake's log by now (waited for, not assumed).
    t_clock (740);
    snprintf (key, sizeof key, "referral:{referral}:emg:%s", e_a);
    for (int i = 0; i < 600 && t_int ("EXISTS", key) == 0; i++)
        gl_sleep_ms (50);
    assert_int_equal (t_int ("EXISTS", key), 1);
    t_error (s_agent, "POST", "/api/v1/persons/export", "{\"case_number\":\"RET-1001\"}", 403,
             "forbidden");
    t_error (s_super, "POST", "/api/v1/persons/export", "{\"case_number\":\"RET-1001\"}", 403,
             "forbidden");
    t_error (s_prot, "POST", "/api/v1/persons/export", "{}", 400, "missing_field");
    t_error (s_prot, "POST", "/api/v1/persons/export",
             "{\"case_number\":\"RET-1001\",\"phone\":\"+962791112233\"}", 400, "invalid_field");
    t_error (s_prot, "POST", "/api/v1/persons/export", "{\"phone\":\"not a phone\"}", 400,
             "invalid_field");
    t_error (s_prot, "POST", "/api/v1/persons/export", "{\"case_number\":\"RET-1001\",\"x\":1}",
             400, "unknown_field");
    j = t_export (s_prot, "{\"case_number\":\"RET-1001\"}");
    assert_int_equal (t_len (j, "contacts"), 1);
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (json_object_get (j, "contacts"), 0), "id")),
                         c_a);
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (json_object_get (j, "contacts"), 0), "notes")),
                         "SECRET-NOTE-A");
    assert_int_equal (t_len (j, "complaints"), 1);
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (json_object_get (j, "complaints"), 0), "id")),
                         k_a);
    assert_int_equal (t_len (j, "change_requests"), 1);
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (json_object_get (j, "change_requests"), 0), "id")),
                         chg);
    assert_true (json_is_object (json_object_get (j, "case")));
    assert_true (json_is_true (json_object_get (j, "complete")));
    //  Referral was asked with A's contact ids: the emergency raised from A's contact.
    assert_int_equal (t_len (j, "not_asked"), 1);
    assert_string_equal (json_string_value (json_array_get (json_object_get (j, "not_asked"), 0)),
                         "scheduler");
    json_t *ref = json_object_get (json_object_get (j, "referral"), "records");
    assert_true (json_is_true (json_object_get (json_object_get (j, "referral"), "complete")));
    assert_int_equal (json_array_size (json_object_get (ref, "referrals")), 0);
    assert_int_equal (json_array_size (json_object_get (ref, "emergencies")), 1);
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (json_object_get (ref, "emergencies"), 0),
                             "emergency_id")),
                         e_a);
    json_decref (j);
    j = t_export (s_in->admin_token, "{\"phone\":\"00962 79 111 2233\"}");
    ref = json_object_get (json_object_get (j, "referral"), "records");
    assert_int_equal (json_array_size (json_object_get (ref, "emergencies")), 1);
    assert_int_equal (t_len (j, "contacts"), 1);
    assert_int_equal (t_len (j, "complaints"), 1);
    assert_int_equal (t_len (j, "change_requests"), 0);
    assert_true (json_is_null (json_object_get (j, "case")));
    json_decref (j);
    j = t_export (s_prot, "{\"case_number\":\"RET-2002\"}");
    assert_int_equal (t_len (j, "contacts"), 1);
    assert_int_equal (t_len (j, "complaints"), 1);
    ref = json_object_get (json_object_get (j, "referral"), "records");
    assert_int_equal (json_array_size (json_object_get (ref, "emergencies")), 0);
    assert_int_equal (json_array_size (json_object_get (ref, "referrals")), 0);
    json_decref (j);
    j = t_export (s_prot, "{\"individual_number\":\"ind 77\"}");
    assert_int_equal (t_len (j, "contacts"), 1);
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (json_object_get (j, "contacts"), 0), "id")),
                         c_b);
    assert_int_equal (t_len (j, "complaints"), 0);
    json_decref (j);

    //  The purge: admin only.
    t_error (s_agent, "POST", "/api/v1/retention/purge", NULL, 403, "forbidden");
    t_error (s_prot, "POST", "/api/v1/retention/purge", NULL, 403, "forbidden");
    t_error (s_in->admin_token, "POST", "/api/v1/retention/purge", "{\"x\":1}", 400,
             "unknown_field");
    t_archive_now ();               //  the second archive file: days 0 (start) to 740
    assert_int_equal (t_archive_files (), 2);
    //  Every event the traffic so far made is in the two archive files: none holds personal
    //  data (t_decode_check fails the test otherwise).
    assert_true (t_check_archives () > 10);
    long long in_time = t_int ("ZCARD", "intake:{intake}:contacts:time");
    long long in_cat = t_int ("ZCARD", "intake:{intake}:contacts:cat:protection_concern.threat");
    assert_true (in_cat >= 2);
    j = t_purge ();
    assert_int_equal (t_purged (j, "contacts"), 1);
    assert_int_equal (t_purged (j, "complaints"), 0);
    assert_int_equal (t_purged (j, "change_requests"), 1);
    assert_int_equal (t_purged (j, "cases"), 1);
    assert_int_equal (t_purged (j, "raised"), 1);
    json_t *arch = json_object_get (j, "archives");
    assert_int_equal (json_integer_value (json_object_get (arch, "removed")), 1);
    assert_int_equal (json_integer_value (json_object_get (arch, "kept")), 1);
    json_decref (j);
    assert_int_equal (t_archive_files (), 1);

    //  A's contact: no identifiers, notes or AGD left, nor its person indexes; the anonymous
    //  part and the time and category indexes stay.
    snprintf (key, sizeof key, "intake:{intake}:contact:%s", c_a);
    assert_false (t_hexists (key, "case_number"));
    assert_false (t_hexists (key, "phone"));
    assert_false (t_hexists (key, "notes"));
    assert_false (t_hexists (key, "sex"));
    assert_false (t_hexists (key, "case_h"));
    assert_true (t_hexists (key, "channel"));
    assert_true (t_hexists (key, "categories"));
    assert_true (t_hexists (key, "agent_id"));
    assert_int_equal (t_int ("ZCARD", "intake:{intake}:contacts:time"), in_time);
    assert_int_equal (t_int ("ZCARD", "intake:{intake}:contacts:cat:protection_concern.threat"),
                      in_cat);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/contacts/%s", c_a);
    j = t_json (s_agent, "GET", path, NULL, 200);
    assert_true (json_is_null (json_object_get (j, "case_number")));
    assert_true (json_is_null (json_object_get (j, "notes")));
    assert_string_equal (json_string_value (json_object_get (j, "channel")), "call");
    assert_string_equal (json_string_value (json_object_get (j, "outcome")), "emergency_raised");
    json_decref (j);
    j = t_json (s_agent, "GET", "/api/v1/contacts?case_number=RET-1001", NULL, 200);
    assert_int_equal (t_len (j, "items"), 0);
    json_decref (j);
    //  B's contact is inside its period: untouched.
    snprintf (key, sizeof key, "intake:{intake}:contact:%s", c_b);
    assert_true (t_hexists (key, "notes"));
    assert_true (t_hexists (key, "case_number"));
    //  The emergency's notes are gone, the rest stays.
    snprintf (key, sizeof key, "intake:{intake}:emergency:%s", e_a);
    assert_false (t_hexists (key, "notes"));
    assert_true (t_hexists (key, "type"));
    //  The change request and A's case row are gone; B's row (refreshed on day 400) stays.
    snprintf (key, sizeof key, "intake:{intake}:chg:%s", chg);
    assert_int_equal (t_int ("EXISTS", key), 0);
    assert_int_equal (t_int ("ZCARD", "intake:{intake}:chg_pending"), 0);
    j = t_export (s_prot, "{\"case_number\":\"RET-1001\"}");
    assert_int_equal (t_len (j, "contacts"), 0);
    assert_int_equal (t_len (j, "change_requests"), 0);
    assert_true (json_is_null (json_object_get (j, "case")));
    assert_int_equal (t_len (j, "complaints"), 1);          //  1095 days: not yet
    json_decref (j);
    j = t_export (s_prot, "{\"case_number\":\"RET-2002\"}");
    assert_int_equal (t_len (j, "contacts"), 1);
    assert_true (json_is_object (json_object_get (j, "case")));
    json_decref (j);

    //  Again: nothing more to purge.
    j = t_purge ();
    for (size_t i = 0; i < 5; i++)
        assert_int_equal (json_integer_value (json_object_get (
                              json_array_get (json_object_get (j, "types"), i), "purged")),
                          0);
    json_decref (j);

    //  Day 1100: A's complaint is past 1095 days; B's contact and complaint are not (700
    //  days), B's case row (not refreshed for 700 days) is.
    t_clock (1100);
    j = t_purge ();
    assert_int_equal (t_purged (j, "complaints"), 1);
    assert_int_equal (t_purged (j, "contacts"), 0);
    assert_int_equal (t_purged (j, "cases"), 1);
    json_decref (j);
    snprintf (key, sizeof key, "intake:{intake}:complaint:%s", k_a);
    char *doc = t_hget (key, "doc");
    assert_non_null (doc);
    assert_null (strstr (doc, "SECRET-DESC-A"));
    assert_null (strstr (doc, "962791112233"));
    assert_non_null (strstr (doc, "\"type\":\"complaint\""));
    free (doc);
    snprintf (key, sizeof key, "intake:{intake}:complaint:%s", k_b);
    doc = t_hget (key, "doc");
    assert_non_null (strstr (doc, "SECRET-DESC-B"));
    free (doc);

    //  Both audited, never with the identifier.
    redisReply *r = gl_redis_cmd (s_rc, "XRANGE intake:{intake}:audit - +");
    assert_non_null (r);
    int exports = 0, purges = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        const char *action = "", *detail = "";
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            for (size_t s = 0; s_secrets[s]; s++)
                assert_null (strstr (f->element[k + 1]->str, s_secrets[s]));
            if (strcmp (f->element[k]->str, "action") == 0)
                action = f->element[k + 1]->str;
            if (strcmp (f->element[k]->str, "detail") == 0)
                detail = f->element[k + 1]->str;
        }
        exports += strcmp (action, "export") == 0;
        purges += strcmp (action, "purge") == 0 && strcmp (detail, "on_demand") == 0;
    }
    freeReplyObject (r);
    assert_int_equal (exports, 6);
    assert_int_equal (purges, 3);

    //  What the log holds since the last trim: the retention.purged events of days 740 (contacts,
    //  change requests, cases, raised, archives) and 1100 (complaints, cases), with no personal data
    //  in any event. (The log may get them a moment after the answer: the outbox flushes at the
    //  end of the loop's pass.)
    int64_t total = 0;
    for (int tries = 0; tries < 100 && total != 7; tries++) {
        if (tries)
            gl_sleep_ms (100);
        total = t_check_log (NULL);
    }
    assert_int_equal (total, 7);
}

//  The timer: a run falls due on the business clock, one replica claims it, the records past
//  their period are purged without anyone asking, and the run is audited ("timer").
static void
test_timer (void **state)
{
    (void) state;
    t_clock (1100);
    char c[GL_ID_LEN + 1], key[200];
    json_t *j = t_json (s_agent, "POST", "/api/v1/contacts",
                        "{\"channel\":\"call\",\"phone\":\"+962 79 333 4455\",\"language\":"
                        "\"ar\",\"categories\":[\"protection_concern.threat\"],"
                        "\"outcome\":\"emergency_raised\",\"notes\":\"SECRET-NOTE-A\"}",
                        201);
    t_id (j, "id", c);
    json_decref (j);
    snprintf (key, sizeof key, "intake:{intake}:contact:%s", c);
    t_clock (1100 + 731);
    redisReply *r = gl_redis_cmd (s_rc, "HSET intake:{intake}:retention next 0");
    freeReplyObject (r);
    for (int tries = 0; tries < 300 && t_hexists (key, "notes"); tries++)
        gl_sleep_ms (100);
    assert_false (t_hexists (key, "notes"));
    assert_false (t_hexists (key, "phone"));
    assert_true (t_hexists (key, "channel"));
    //  The next run is due a day later on the business clock.
    char *next = t_hget ("intake:{intake}:retention", "next");
    assert_non_null (next);
    assert_true (strtoll (next, NULL, 10) >= T0 + (1100 + 731 + 1) * T_DAY_MS);
    free (next);
    //  Audited as the timer's run (the entry follows the purge in the same callback).
    bool found = false;
    for (int tries = 0; tries < 50 && !found; tries++) {
        r = gl_redis_cmd (s_rc, "XREVRANGE intake:{intake}:audit + - COUNT 20");
        for (size_t i = 0; i < r->elements && !found; i++) {
            redisReply *f = r->element[i]->element[1];
            for (size_t k = 0; k + 1 < f->elements; k += 2)
                found = found
                        || (strcmp (f->element[k]->str, "detail") == 0
                            && strcmp (f->element[k + 1]->str, "timer") == 0);
        }
        freeReplyObject (r);
        if (!found)
            gl_sleep_ms (100);
    }
    assert_true (found);
}

//  gl_log_archive_purge on what an operator may leave in the folder: a file that is not an
//  archive is left (and counted as kept), other names are ignored, a missing folder purges
//  nothing, a bad source name is refused.
static void
test_archive_purge_edges (void **state)
{
    (void) state;
    char dir[300], path[400];
    snprintf (dir, sizeof dir, "%s/intake-9", s_archive);
    assert_int_equal (gl_log_archive_purge (s_archive, "intake-9", INT64_MAX, NULL), 0);
    assert_int_equal (mkdir (dir, 0750), 0);
    snprintf (path, sizeof path, "%s/1-5.glog", dir);
    FILE *f = fopen (path, "wb");
    assert_non_null (f);
    fputs ("\xff\xff\xff\xffnot an archive", f);
    fclose (f);
    snprintf (path, sizeof path, "%s/notes.txt", dir);
    f = fopen (path, "wb");
    assert_non_null (f);
    fclose (f);
    int64_t kept = -1;
    assert_int_equal (gl_log_archive_purge (s_archive, "intake-9", INT64_MAX, &kept), 0);
    assert_int_equal (kept, 1);
    assert_int_equal (gl_log_archive_purge (s_archive, "../etc", INT64_MAX, NULL), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_retention),
        cmocka_unit_test (test_timer),
        cmocka_unit_test (test_archive_purge_edges),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
