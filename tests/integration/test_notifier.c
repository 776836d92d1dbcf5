/*  gl-notifier end to end, against real servers on loopback (test_notifier_env.h): an SMS in
    Arabic reaches Kannel's fake SMSC and Kannel's delivery report marks it delivered; an e-mail
    in Arabic, laid out right to left, reaches the SMTP server; a signed webhook verifies at the
    receiver, which refuses the same request replayed; a console alert is published as
    notification.console; a failing voice gateway is retried with backoff, then dead-lettered,
    and an admin's replay sends it once the gateway is back; a gateway that times out after
    taking the request: an emergency is retried, a routine message is not; quiet hours hold a routine message
    until morning but not an emergency; bad input (unknown template, missing variable, a phone
    number that is not E.164) is dead-lettered with its reason; a notification id requested
    twice is sent once. */
/* ctest: timeout=240 */
#include "test_notifier_env.h"
#include <sys/wait.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static int
t_setup (void **state)
{
    ne_setup ("notifier", true);
    const char *extra[] = { "GL_NOTIFIER_MAX_ATTEMPTS=3", "GL_NOTIFIER_MAX_ATTEMPTS_EMERGENCY=3",
                            "GL_NOTIFIER_BACKOFF_BASE_MS=60000",
                            "GL_NOTIFIER_BACKOFF_MAX_MS=600000",
                            "GL_NOTIFIER_BREAKER_FAILURES=3", "GL_NOTIFIER_BREAKER_OPEN_MS=60000",
                            "GL_NOTIFIER_HTTP_TIMEOUT_MS=1000", NULL };
    ne.notifier = ne_notifier_spawn (extra);
    assert_true (ne.notifier > 0);
    assert_true (ne_notifier_ready (20000));
    return 0;
}

static int
t_teardown (void **state)
{
    ne_teardown ();
    return 0;
}

static json_t *
t_load_json (const char *path)
{
    return json_load_file (path, 0, NULL);
}

//  The n-th mail the SMTP server took (1-based), waiting for it.
static json_t *
t_mail (int n)
{
    char name[32];
    snprintf (name, sizeof name, "mail-%d.json", n);
    if (!ne_wait_file (ne_path (name), 20000))
        return NULL;
    return t_load_json (ne_path (name));
}

static int t_events (const char *type, const char *needle);

static void
test_sms_kannel (void **state)
{
    char nid[GL_ID_LEN + 1], data[1024];
    ne_new_id (nid);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"appointment.booked\","
              "\"priority\":\"routine\",\"channels\":[\"sms\"],"
              "\"recipient\":{\"kind\":\"person\",\"ref\":\"CASE-AR\"},\"language\":\"en\","
              "\"params\":{\"reference\":\"AP7731\",\"at\":%lld}}",
              nid, (long long) (NE_T0 + 86400000));
    ne_request ("ap7731", data);
    //  Kannel took it and the fake SMSC got it: Arabic, so UCS-2, and at 95 characters more
    //  than one segment (70): two parts with a concatenation header. Then the delivery report.
    assert_true (ne_wait_state (nid, "sms", "sent|delivered", 20000));
    int64_t end = gl_mono_ms () + 20000;
    while (ne_sms_count ("+4915100000001") < 2 && gl_mono_ms () < end)
        gl_sleep_ms (50);
    assert_int_equal (ne_sms_count ("+4915100000001"), 2);
    assert_int_equal (ne_sms_count ("udh %05%00%03%00%02%01"), 1);
    assert_int_equal (ne_sms_count ("udh %05%00%03%00%02%02"), 1);
    assert_int_equal (ne_sms_count ("%00A%00P%007%007%003%001"), 1);    //  AP7731 in UTF-16
    assert_true (ne_wait_state (nid, "sms", "delivered", 20000));
    int attempts = 0;
    ne_state (nid, "sms", &attempts, NULL, 0);
    assert_int_equal (attempts, 1);
    gl_reply_t reply = { 0 };
    assert_int_equal (ne_call ("notifier.status", json_pack ("{s:s}", "id", nid), NULL, &reply),
                      200);
    json_t *d = json_array_get (json_object_get (reply.body, "deliveries"), 0);
    assert_int_equal (json_integer_value (json_object_get (d, "report")), 1);
    assert_string_equal (json_string_value (json_object_get (d, "language")), "ar");
    gl_reply_clear (&reply);
    int64_t until = gl_mono_ms () + 10000;
    while (t_events ("notification.delivered", nid) < 1 && gl_mono_ms () < until)
        gl_sleep_ms (50);
    assert_int_equal (t_events ("notification.sent", nid), 1);
    assert_int_equal (t_events ("notification.delivered", nid), 1);
}

static void
test_email_rtl (void **state)
{
    char nid[GL_ID_LEN + 1], data[1024];
    ne_new_id (nid);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"appointment.reminder\","
              "\"priority\":\"routine\",\"channels\":[\"email\"],"
              "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_AR "\"},\"language\":null,"
              "\"params\":{\"reference\":\"AP42\",\"at\":%lld}}",
              nid, (long long) (NE_T0 + 86400000));
    ne_request ("ap42", data);
    assert_true (ne_wait_state (nid, "email", "sent", 20000));
    json_t *mail = t_mail (1);
    assert_non_null (mail);
    assert_string_equal (json_string_value (json_array_get (json_object_get (mail, "rcpt"), 0)),
                         "duty-ar@example.org");
    assert_string_equal (json_string_value (json_object_get (mail, "subject")), "تذكير بالموعد");
    assert_string_equal (json_string_value (json_object_get (mail, "content_language")), "ar");
    const char *html = json_string_value (json_object_get (mail, "html"));
    assert_non_null (strstr (html, "<html lang=\"ar\" dir=\"rtl\">"));
    assert_non_null (strstr (html, "direction:rtl"));
    assert_non_null (strstr (html, "موعدك"));
    assert_non_null (strstr (html, "2026-01-06 10:00 UTC"));
    //  Over STARTTLS (required), authenticated, the certificate checked against its CA file.
    assert_true (json_is_true (json_object_get (mail, "tls")));
    assert_true (json_is_true (json_object_get (mail, "authenticated")));
    const char *text = json_string_value (json_object_get (mail, "text"));
    assert_non_null (strstr (text, "AP42"));
    char mid[64];
    snprintf (mid, sizeof mid, "<%s.email@", nid);
    assert_non_null (strstr (json_string_value (json_object_get (mail, "message_id")), mid));
    json_decref (mail);
}

static void
test_webhook_signed (void **state)
{
    char nid[GL_ID_LEN + 1], data[1024];
    ne_new_id (nid);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"referral.assigned\","
              "\"priority\":\"routine\",\"channels\":[\"webhook\"],"
              "\"recipient\":{\"kind\":\"endpoint\",\"code\":\"ops\"},\"language\":\"fr\","
              "\"params\":{\"referral_id\":\"RF9\",\"unit\":\"gbv\"}}", nid);
    ne_request ("rf9", data);
    assert_true (ne_wait_state (nid, "webhook", "sent", 20000));
    //  The receiver verified the signature (it answers 401 otherwise and records nothing).
    assert_int_equal (ne_count_in_file (ne_path ("hooks.jsonl"), nid), 2);  //  header and body
    assert_int_equal (ne_count_in_file (ne_path ("hooks.jsonl"), "\"verified\": true"), 1);
    assert_int_equal (ne_count_in_file (ne_path ("hooks.jsonl"), "Référencement RF9"), 1);
    //  The same request sent again is refused as a replay.
    char script[400], url[128], raw[400];
    snprintf (script, sizeof script, "%s/tests/integration/notifier_peers.py",
              getenv ("GL_SOURCE_DIR"));
    snprintf (url, sizeof url, "http://127.0.0.1:%d/hook/ops", ne.http_port);
    snprintf (raw, sizeof raw, "%s", ne_path ("hook-raw.json"));
    char *argv[] = { "/usr/bin/python3", script, "replay", url, raw, NULL };
    pid_t pid = gl_test_spawn (argv[0], argv, NULL, NULL);
    int status = gl_test_wait (pid, 20000);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

//  Events notifier published, of type, mentioning needle: read from its log (gl:log:{src}).
static int
t_events (const char *type, const char *needle)
{
    int n = 0;
    for (int src = 1; src <= 4; src++) {
        redisReply *r = gl_redis_cmd (ne.r, "XRANGE gl:log:{notifier-%d} - +", src);
        if (!r)
            continue;
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *fields = r->element[i]->element[1];
            for (size_t k = 0; k + 1 < fields->elements; k += 2) {
                if (strcmp (fields->element[k]->str, "e") != 0)
                    continue;
                gl_event_err_t why;
                gl_event_t *ev = gl_event_decode (fields->element[k + 1]->str,
                                                  fields->element[k + 1]->len, &why, NULL, 0);
                if (ev && strcmp (ev->type, type) == 0) {
                    char *s = json_dumps (ev->data, 0);
                    if (!needle || strstr (s, needle))
                        n++;
                    free (s);
                }
                gl_event_destroy (&ev);
            }
        }
        freeReplyObject (r);
    }
    return n;
}

static void
test_console (void **state)
{
    char nid[GL_ID_LEN + 1], data[1024];
    ne_new_id (nid);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"emergency.alarm\","
              "\"priority\":\"emergency\",\"channels\":[\"console\"],"
              "\"recipient\":{\"kind\":\"role\",\"role\":\"supervisor\"},\"language\":\"en\","
              "\"params\":{\"emergency_id\":\"EM5\"}}", nid);
    ne_request ("em5", data);
    assert_true (ne_wait_state (nid, "console", "sent", 20000));
    int64_t end = gl_mono_ms () + 10000;
    while (t_events ("notification.console", nid) < 1 && gl_mono_ms () < end)
        gl_sleep_ms (50);
    assert_int_equal (t_events ("notification.console", nid), 1);
    assert_int_equal (t_events ("notification.console", "EMERGENCY EM5"), 1);
    assert_int_equal (t_events ("notification.sent", nid), 1);
}

static void
test_retry_dead_replay (void **state)
{
    FILE *f = fopen (ne_path ("gw.down"), "w");
    assert_non_null (f);
    fclose (f);
    char nid[GL_ID_LEN + 1], data[1024], reason[64];
    ne_new_id (nid);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"emergency.alarm\","
              "\"priority\":\"emergency\",\"channels\":[\"voice\"],"
              "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_AR "\"},\"language\":\"en\","
              "\"params\":{\"emergency_id\":\"EM77\"}}", nid);
    ne_request ("em77", data);
    //  Attempt 1 fails (500); the next is due after 30..60 s (base 60 s, jitter).
    assert_true (ne_wait_state (nid, "voice", "failed", 20000));
    int attempts = 0;
    ne_state (nid, "voice", &attempts, reason, sizeof reason);
    assert_int_equal (attempts, 1);
    assert_string_equal (reason, "gateway_500");
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), "\"status\": 500"), 1);
    gl_sleep_ms (300);      //  nothing happens while the business clock stands still
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), "\"status\": 500"), 1);
    ne_clock_set (ne.now + 60000);
    int64_t end = gl_mono_ms () + 20000;
    while (ne_count_in_file (ne_path ("gw.jsonl"), "\"status\": 500") < 2
           && gl_mono_ms () < end)
        gl_sleep_ms (50);
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), "\"status\": 500"), 2);
    //  Attempt 3, 60..120 s later, is the last: dead-lettered with the reason.
    ne_clock_set (ne.now + 120000);
    assert_true (ne_wait_state (nid, "voice", "dead", 20000));
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), "\"status\": 500"), 3);
    ne_state (nid, "voice", &attempts, reason, sizeof reason);
    assert_string_equal (reason, "gateway_500");
    assert_int_equal (t_events ("notification.failed", nid), 2);
    assert_int_equal (t_events ("notification.dead", nid), 1);

    //  Three failures in a row opened the voice gateway's circuit: the next voice alarm is
    //  deferred (no attempt counted) instead of hitting the failing gateway.
    char second[GL_ID_LEN + 1];
    ne_new_id (second);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"emergency.alarm\","
              "\"priority\":\"emergency\",\"channels\":[\"voice\"],"
              "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_AR "\"},"
              "\"params\":{\"emergency_id\":\"EM78\"}}", second);
    ne_request ("em78", data);
    assert_true (ne_wait_state (second, "voice", "deferred", 20000));
    ne_state (second, "voice", &attempts, reason, sizeof reason);
    assert_int_equal (attempts, 0);
    assert_string_equal (reason, "circuit_open");
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), second), 0);
    //  The gateway is back; once the open time (60 s of business time) has passed, the
    //  deferral is due and the trial goes through and closes the circuit.
    unlink (ne_path ("gw.down"));
    ne_clock_set (ne.now + 61000);
    assert_true (ne_wait_state (second, "voice", "sent", 20000));
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), "\"status\": 200"), 1);

    //  The admin finds the first among the dead letters and replays it.
    gl_reply_t reply = { 0 };
    assert_int_equal (ne_call ("notifier.dead_list", NULL, NULL, &reply), 200);
    const char *dead_id = NULL;
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get (reply.body, "items"), i, item)
        if (strcmp (json_string_value (json_object_get (item, "notification_id")), nid) == 0) {
            dead_id = json_string_value (json_object_get (item, "id"));
            assert_string_equal (json_string_value (json_object_get (item, "reason")),
                                 "gateway_500");
            assert_string_equal (json_string_value (json_object_get (item, "channel")), "voice");
        }
    assert_non_null (dead_id);
    char dead[64];
    snprintf (dead, sizeof dead, "%s", dead_id);
    gl_reply_t r2 = { 0 };
    assert_int_equal (ne_call ("notifier.dead_replay", json_pack ("{s:s}", "id", dead), NULL,
                               &r2), 200);
    gl_reply_clear (&r2);
    assert_true (ne_wait_state (nid, "voice", "sent", 20000));
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), "\"status\": 200"), 2);
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), nid), 4);    //  ?id=<nid>:voice
    //  Replaying it again: it is no longer a dead letter.
    assert_int_equal (ne_call ("notifier.dead_replay", json_pack ("{s:s}", "id", dead), NULL,
                               &r2), 404);
    gl_reply_clear (&r2);
    //  Not for agents.
    json_t *body = json_pack ("{s:{s:s, s:[s], s:[]}, s:{}, s:{}, s:{}}", "caller", "user_id",
                              "f0000000000000000000000000000002", "roles", "agent", "units",
                              "params", "query", "body");
    assert_int_equal (gl_req_call (ne.req, "notifier.dead_list", NULL, body, 3000, &r2), 0);
    assert_int_equal (r2.status, 403);
    json_decref (body);
    gl_reply_clear (&r2);
    gl_reply_clear (&reply);
}

//  A gateway that takes the request and does not answer in time: the message may have gone.
//  An emergency is tried again (at least once); a routine message is not (at most once).
static void
test_gateway_timeout (void **state)
{
    unlink (ne_path ("gw.down"));
    char slow[400];
    snprintf (slow, sizeof slow, "%s.slow", ne_path ("gw.down"));
    FILE *f = fopen (slow, "w");
    assert_non_null (f);
    fclose (f);
    char urgent[GL_ID_LEN + 1], routine[GL_ID_LEN + 1], data[1024], reason[64];
    ne_new_id (urgent);
    ne_new_id (routine);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"emergency.alarm\","
              "\"priority\":\"emergency\",\"channels\":[\"voice\"],"
              "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_AR "\"},"
              "\"params\":{\"emergency_id\":\"EM90\"}}", urgent);
    ne_request ("em90", data);
    assert_true (ne_wait_state (urgent, "voice", "failed", 20000));
    ne_state (urgent, "voice", NULL, reason, sizeof reason);
    assert_string_equal (reason, "timeout");
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"callback.scheduled\","
              "\"priority\":\"routine\",\"channels\":[\"voice\"],"
              "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_AR "\"},"
              "\"params\":{\"at\":%lld}}", routine, (long long) (ne.now + 3600000));
    ne_request ("", data);
    assert_true (ne_wait_state (routine, "voice", "dead", 20000));
    ne_state (routine, "voice", NULL, reason, sizeof reason);
    assert_string_equal (reason, "in_doubt");
    //  The gateway answers again: the emergency's next attempt goes, the routine one stays dead.
    unlink (slow);
    ne_clock_set (ne.now + 60000);
    assert_true (ne_wait_state (urgent, "voice", "sent", 20000));
    int attempts = 0;
    ne_state (urgent, "voice", &attempts, NULL, 0);
    assert_int_equal (attempts, 2);
    //  The gateway logs a slow request when it finally answers (to nobody).
    int64_t end = gl_mono_ms () + 10000;
    while ((ne_count_in_file (ne_path ("gw.jsonl"), urgent) < 2
            || ne_count_in_file (ne_path ("gw.jsonl"), routine) < 1) && gl_mono_ms () < end)
        gl_sleep_ms (50);
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), urgent), 2);
    assert_int_equal (ne_count_in_file (ne_path ("gw.jsonl"), routine), 1);
    assert_string_equal (ne_state (routine, "voice", NULL, NULL, 0), "dead");
}

static void
test_quiet_hours (void **state)
{
    //  23:00 UTC, inside 21:00-08:00.
    int64_t night = NE_T0 + 13 * 3600000LL;
    ne_clock_set (night);
    char routine[GL_ID_LEN + 1], urgent[GL_ID_LEN + 1], data[1024];
    ne_new_id (routine);
    ne_new_id (urgent);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"report.daily\","
              "\"priority\":\"routine\",\"channels\":[\"email\"],"
              "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_EN "\"},\"language\":\"en\","
              "\"params\":{\"report_id\":\"day-2026-01-05\",\"period\":\"day\","
              "\"from\":\"2026-01-05\",\"to\":\"2026-01-05\",\"calls_offered\":120,"
              "\"calls_answered\":111,\"calls_abandoned\":9,\"service_level_pct\":82,"
              "\"asa_s\":14,\"contacts\":130,\"referrals\":6}}", routine);
    ne_request ("", data);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"emergency.escalated\","
              "\"priority\":\"emergency\",\"channels\":[\"email\"],"
              "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_EN "\"},\"language\":\"en\","
              "\"params\":{\"emergency_id\":\"EM8\",\"level\":2}}", urgent);
    ne_request ("em8", data);
    assert_true (ne_wait_state (urgent, "email", "sent", 20000));
    assert_true (ne_wait_state (routine, "email", "deferred", 20000));
    json_t *mail = t_mail (2);
    assert_non_null (mail);
    assert_non_null (strstr (json_string_value (json_object_get (mail, "subject")), "EM8"));
    json_decref (mail);
    gl_reply_t reply = { 0 };
    assert_int_equal (ne_call ("notifier.status", json_pack ("{s:s}", "id", routine), NULL,
                               &reply), 200);
    json_t *d = json_array_get (json_object_get (reply.body, "deliveries"), 0);
    assert_int_equal (json_integer_value (json_object_get (d, "next_at")),
                      NE_T0 + 22 * 3600000LL);    //  08:00 the next morning
    assert_string_equal (json_string_value (json_object_get (d, "reason")), "quiet_hours");
    gl_reply_clear (&reply);
    gl_sleep_ms (300);
    assert_false (ne_wait_file (ne_path ("mail-3.json"), 100));
    //  Morning.
    ne_clock_set (NE_T0 + 22 * 3600000LL + 30000);
    assert_true (ne_wait_state (routine, "email", "sent", 20000));
    mail = t_mail (3);
    assert_non_null (mail);
    assert_non_null (strstr (json_string_value (json_object_get (mail, "subject")),
                             "Daily report 2026-01-05"));
    json_decref (mail);
}

static void
test_bad_input (void **state)
{
    ne_clock_set (NE_T0 + 2 * 86400000LL);
    struct {
        const char *tmpl, *ref, *params, *reason;
    } cases[] = {
        { "no.such", "CASE-EN", "{}", "unknown_template" },
        { "appointment.moved", "CASE-EN", "{\"reference\":\"X\"}", "missing_variable" },
        { "appointment.cancelled", "CASE-BAD", "{\"reference\":\"X\"}", "phone_not_e164" },
        { "appointment.cancelled", "CASE-NONE", "{\"reference\":\"X\"}",
          "recipient_unknown" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char nid[GL_ID_LEN + 1], data[1024], reason[64];
        ne_new_id (nid);
        snprintf (data, sizeof data,
                  "{\"notification_id\":\"%s\",\"template\":\"%s\",\"priority\":\"routine\","
                  "\"channels\":[\"sms\"],\"recipient\":{\"kind\":\"person\",\"ref\":\"%s\"},"
                  "\"params\":%s}", nid, cases[i].tmpl, cases[i].ref, cases[i].params);
        ne_request ("", data);
        assert_true (ne_wait_state (nid, "sms", "dead", 20000));
        ne_state (nid, "sms", NULL, reason, sizeof reason);
        assert_string_equal (reason, cases[i].reason);
    }
    //  A disabled account is not notified; a unit is reached on the console only (its e-mail
    //  delivery is dead-lettered, the console alert goes).
    char off[GL_ID_LEN + 1], unit[GL_ID_LEN + 1], why[64];
    ne_new_id (off);
    ne_new_id (unit);
    char body[1024];
    snprintf (body, sizeof body,
              "{\"notification_id\":\"%s\",\"template\":\"referral.reminder\","
              "\"priority\":\"routine\",\"channels\":[\"email\"],"
              "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_OFF "\"},"
              "\"params\":{\"referral_id\":\"RF1\"}}", off);
    ne_request ("rf1", body);
    snprintf (body, sizeof body,
              "{\"notification_id\":\"%s\",\"template\":\"referral.escalated\","
              "\"priority\":\"routine\",\"channels\":[\"console\",\"email\"],"
              "\"recipient\":{\"kind\":\"unit\",\"code\":\"gbv\"},"
              "\"params\":{\"referral_id\":\"RF2\",\"step\":\"ack_overdue\","
              "\"location\":null}}", unit);
    ne_request ("rf2", body);
    assert_true (ne_wait_state (off, "email", "dead", 20000));
    ne_state (off, "email", NULL, why, sizeof why);
    assert_string_equal (why, "recipient_disabled");
    assert_true (ne_wait_state (unit, "console", "sent", 20000));
    assert_true (ne_wait_state (unit, "email", "dead", 20000));
    ne_state (unit, "email", NULL, why, sizeof why);
    assert_string_equal (why, "channel_not_for_recipient");

    //  intake cannot answer (503): retried with backoff like a gateway failure, then dead.
    char nid[GL_ID_LEN + 1], data[1024], reason[64];
    int attempts = 0;
    ne_new_id (nid);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"appointment.cancelled\","
              "\"priority\":\"routine\",\"channels\":[\"sms\"],"
              "\"recipient\":{\"kind\":\"person\",\"ref\":\"CASE-DOWN\"},"
              "\"params\":{\"reference\":\"X\"}}", nid);
    ne_request ("", data);
    assert_true (ne_wait_state (nid, "sms", "failed", 20000));
    ne_state (nid, "sms", &attempts, reason, sizeof reason);
    assert_int_equal (attempts, 1);
    assert_string_equal (reason, "recipient_unavailable");
    ne_clock_set (ne.now + 60000);
    int64_t end = gl_mono_ms () + 20000;
    while (attempts < 2 && gl_mono_ms () < end) {
        ne_state (nid, "sms", &attempts, NULL, 0);
        gl_sleep_ms (50);
    }
    assert_int_equal (attempts, 2);
    ne_clock_set (ne.now + 120000);
    assert_true (ne_wait_state (nid, "sms", "dead", 20000));
    ne_state (nid, "sms", &attempts, reason, sizeof reason);
    assert_int_equal (attempts, 3);
    assert_string_equal (reason, "recipient_unavailable");

    //  A malformed request is not queued at all; notifier carries on.
    ne_request ("", "{\"notification_id\":\"nope\",\"template\":\"x\"}");
    gl_reply_t reply = { 0 };
    assert_int_equal (ne_call ("notifier.status", json_pack ("{s:s}", "id", "nope"), NULL,
                               &reply), 400);
    assert_string_equal (reply.error_field, "id");
    gl_reply_clear (&reply);
}

static void
test_idempotent (void **state)
{
    char nid[GL_ID_LEN + 1], data[1024];
    ne_new_id (nid);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"referral.partner\","
              "\"priority\":\"routine\",\"channels\":[\"webhook\"],"
              "\"recipient\":{\"kind\":\"partner\",\"code\":\"care-int\"},"
              "\"params\":{\"referral_id\":\"RF10\"}}", nid);
    ne_request ("rf10", data);
    ne_request ("rf10", data);      //  the producer sent it again
    assert_true (ne_wait_state (nid, "webhook", "sent", 20000));
    //  A later one passes the duplicate in the log, so both were applied by then.
    char later[GL_ID_LEN + 1];
    ne_new_id (later);
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"referral.partner\","
              "\"priority\":\"routine\",\"channels\":[\"webhook\"],"
              "\"recipient\":{\"kind\":\"partner\",\"code\":\"care-int\"},"
              "\"params\":{\"referral_id\":\"RF11\"}}", later);
    ne_request ("rf11", data);
    assert_true (ne_wait_state (later, "webhook", "sent", 20000));
    char needle[64];
    snprintf (needle, sizeof needle, "\"id\": \"%s\"", nid);
    assert_int_equal (ne_count_in_file (ne_path ("hooks.jsonl"), needle), 1);
    //  In the partner's language (fr, from referral.partner_contact).
    assert_int_equal (ne_count_in_file (ne_path ("hooks.jsonl"), "Référencement RF10"), 1);
}

//  A bad setting, configuration file or template stops the start, naming key or file:line.
static void
test_bad_config (void **state)
{
    char conf[400], tdir[400], tfile[460];
    snprintf (conf, sizeof conf, "%s", ne_path ("bad.conf"));
    FILE *f = fopen (conf, "w");
    assert_non_null (f);
    fprintf (f, "# fine\nGL_NOTIFIER_MAX_ATTEMPTS=3\nthis is not a setting\n");
    fclose (f);
    snprintf (tdir, sizeof tdir, "%s", ne_path ("badtemplates"));
    mkdir (tdir, 0700);
    snprintf (tfile, sizeof tfile, "%s/appointment.booked.en.txt", tdir);
    f = fopen (tfile, "w");
    assert_non_null (f);
    fprintf (f, "subject: ok\n---- text\nfine\nbroken {{at|upper}}\n");
    fclose (f);
    char c1[450], c2[450];
    snprintf (c1, sizeof c1, "GL_NOTIFIER_CONFIG=%s", conf);
    snprintf (c2, sizeof c2, "GL_NOTIFIER_TEMPLATES=%s", tdir);
    struct {
        const char *env;
        const char *expect;
    } cases[] = {
        { c1, "bad.conf:3" },
        { c2, "appointment.booked.en.txt:4: unknown filter" },
        { "GL_NOTIFIER_QUIET_HOURS=late", "GL_NOTIFIER_QUIET_HOURS must be HH:MM-HH:MM" },
        { "GL_NOTIFIER_MAX_ATTEMPTS=0", "GL_NOTIFIER_MAX_ATTEMPTS" },
        { "GL_NOTIFIER_VOICE_HTTP_URL=http://x/{{to", "GL_NOTIFIER_VOICE_HTTP_URL: line 1" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *extra[] = { "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:*", cases[i].env, NULL };
        pid_t pid = ne_notifier_spawn (extra);
        assert_true (pid > 0);
        int status = gl_test_wait (pid, 20000);
        assert_true (WIFEXITED (status));
        assert_int_equal (WEXITSTATUS (status), 1);
        if (ne_count_in_file (ne_path ("notifier.log"), cases[i].expect) < 1)
            fail_msg ("case %zu: '%s' not in the log", i, cases[i].expect);
    }
    //  The running one carries on.
    assert_true (ne_notifier_ready (5000));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_sms_kannel),     cmocka_unit_test (test_email_rtl),
        cmocka_unit_test (test_webhook_signed), cmocka_unit_test (test_console),
        cmocka_unit_test (test_retry_dead_replay), cmocka_unit_test (test_gateway_timeout),
        cmocka_unit_test (test_quiet_hours),
        cmocka_unit_test (test_bad_input),      cmocka_unit_test (test_idempotent),
        cmocka_unit_test (test_bad_config),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
