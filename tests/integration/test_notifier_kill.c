/*  gl-notifier killed with SIGKILL right after a gateway took a message and before the outcome
    was recorded (GL_NOTIFIER_TEST_HOLD_AFTER_SEND stops it there; the test kills it), then
    started again. Counted at the receiving servers:
      - a routine SMS: Kannel's delivery report (taken by the listener thread before the kill)
        settles the attempt in doubt as sent: it reached the fake SMSC once;
      - a routine e-mail: SMTP has no status to ask, so the attempt in doubt is not sent again
        (at most once): dead-lettered "in_doubt", one mail at the SMTP server;
      - an emergency SMS: sent again (at least once): two at the fake SMSC, attempt 2 recorded;
    and then two replicas running at once share a batch of e-mails, each taken once.
    Each replica after the first takes the work items over (reclaimed after
    GL_NOTIFIER_RECLAIM_MS; an attempt is judged in doubt only once it is older than the longest
    send, 4 s here) and, once the killed one's leases lapse on the business clock, the
    subscription. */
/* ctest: timeout=240 labels=nosan */
#include "test_notifier_env.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <cmocka.h>

static pid_t
t_start (const char *hold)
{
    char h[400];
    snprintf (h, sizeof h, "GL_NOTIFIER_TEST_HOLD_AFTER_SEND=%s", ne_path (hold));
    const char *extra[] = { h, "GL_NOTIFIER_DOUBT_WAIT_MS=60000", "GL_NOTIFIER_HTTP_TIMEOUT_MS=2000",
                            "GL_NOTIFIER_SMTP_TIMEOUT_MS=2000", NULL };
    pid_t pid = ne_notifier_spawn (extra);
    assert_true (pid > 0);
    ne.notifier = pid;      //  stopped by the teardown if the test fails before its kill
    assert_true (ne_notifier_ready (30000));
    return pid;
}

//  Wait for the replica to stop at the hold, then SIGKILL it and let its leases lapse.
static void
t_kill_at_hold (pid_t pid, const char *hold)
{
    assert_true (ne_wait_file (ne_path (hold), 30000));
    assert_int_equal (kill (pid, SIGKILL), 0);
    int status = gl_test_wait (pid, 10000);
    assert_true (WIFSIGNALED (status));
    ne.notifier = 0;
    ne_clock_set (ne.now + 15000);
}

static void
test_kill_mid_send (void **state)
{
    char routine[GL_ID_LEN + 1], mail[GL_ID_LEN + 1], urgent[GL_ID_LEN + 1], data[1024];
    ne_new_id (routine);
    ne_new_id (mail);
    ne_new_id (urgent);
    int attempts = 0;
    char reason[64];

    //  1. A routine SMS; the replica dies right after Kannel took it.
    pid_t a = t_start ("hold-a");
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"appointment.reminder\","
              "\"priority\":\"routine\",\"channels\":[\"sms\"],"
              "\"recipient\":{\"kind\":\"person\",\"ref\":\"CASE-EN\"},"
              "\"params\":{\"reference\":\"R7731\",\"at\":%lld}}",
              routine, (long long) (NE_T0 + 86400000));
    ne_request ("r7731", data);
    //  Killed once Kannel's delivery report is in (the listener thread still runs at the hold).
    assert_true (ne_wait_file (ne_path ("hold-a"), 30000));
    char dkey[128];
    snprintf (dkey, sizeof dkey, "notifier:{notifier}:d:%s:sms", routine);
    int64_t until = gl_mono_ms () + 20000;
    bool reported = false;
    while (!reported && gl_mono_ms () < until) {
        redisReply *r = gl_redis_cmd (ne.r, "HGET %s dlr", dkey);
        reported = r && r->type == REDIS_REPLY_STRING;
        if (r)
            freeReplyObject (r);
        gl_sleep_ms (20);
    }
    assert_true (reported);
    t_kill_at_hold (a, "hold-a");

    //  2. The next replica settles it from the delivery report: sent, not again.
    pid_t b = t_start ("hold-b");
    assert_true (ne_wait_state (routine, "sms", "sent|delivered", 30000));
    ne_state (routine, "sms", &attempts, reason, sizeof reason);
    assert_int_equal (attempts, 1);
    assert_string_equal (reason, "in_doubt_confirmed");

    //  3. A routine e-mail; this replica dies right after the SMTP server took it.
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"appointment.moved\","
              "\"priority\":\"routine\",\"channels\":[\"email\"],"
              "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_EN "\"},"
              "\"params\":{\"reference\":\"M5512\",\"at\":%lld}}",
              mail, (long long) (NE_T0 + 86400000));
    ne_request ("m5512", data);
    t_kill_at_hold (b, "hold-b");

    //  4. No status to ask: at most once, so it is not sent again but dead-lettered in doubt.
    pid_t c = t_start ("hold-c");
    assert_true (ne_wait_state (mail, "email", "dead", 30000));
    ne_state (mail, "email", &attempts, reason, sizeof reason);
    assert_int_equal (attempts, 1);
    assert_string_equal (reason, "in_doubt");

    //  5. An emergency SMS; this replica dies right after Kannel took it.
    snprintf (data, sizeof data,
              "{\"notification_id\":\"%s\",\"template\":\"emergency.alarm\","
              "\"priority\":\"emergency\",\"channels\":[\"sms\"],"
              "\"recipient\":{\"kind\":\"person\",\"ref\":\"CASE-EN\"},"
              "\"params\":{\"emergency_id\":\"E9912\"}}", urgent);
    ne_request ("e9912", data);
    t_kill_at_hold (c, "hold-c");

    //  6. At least once: sent again.
    ne.notifier = t_start ("hold-a");   //  exists already: this one does not stop
    assert_true (ne_wait_state (urgent, "sms", "sent|delivered", 30000));
    ne_state (urgent, "sms", &attempts, NULL, 0);
    assert_int_equal (attempts, 2);

    //  Counted at the receiving servers.
    int64_t end = gl_mono_ms () + 20000;
    while (ne_sms_count ("E9912") < 2 && gl_mono_ms () < end)
        gl_sleep_ms (50);
    assert_int_equal (ne_sms_count ("R7731"), 1);
    assert_int_equal (ne_sms_count ("E9912"), 2);
    assert_true (ne_wait_file (ne_path ("mail-1.json"), 5000));
    gl_sleep_ms (500);
    struct stat st;
    assert_int_not_equal (stat (ne_path ("mail-2.json"), &st), 0);

    //  7. Two replicas at once share the work: 40 e-mails, each taken by the SMTP server once.
    char h[400];
    snprintf (h, sizeof h, "GL_NOTIFIER_TEST_HOLD_AFTER_SEND=%s", ne_path ("hold-a"));
    const char *extra[] = { h, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:*",
                            "GL_NOTIFIER_HTTP_TIMEOUT_MS=2000", "GL_NOTIFIER_SMTP_TIMEOUT_MS=2000",
                            NULL };
    pid_t second = ne_notifier_spawn (extra);
    assert_true (second > 0);
    char ids[40][GL_ID_LEN + 1];
    for (int i = 0; i < 40; i++) {
        ne_new_id (ids[i]);
        snprintf (data, sizeof data,
                  "{\"notification_id\":\"%.32s\",\"template\":\"appointment.cancelled\","
                  "\"priority\":\"routine\",\"channels\":[\"email\"],"
                  "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_EN "\"},"
                  "\"params\":{\"reference\":\"P%d\"}}", ids[i], i);
        ne_request ("", data);
    }
    for (int i = 0; i < 40; i++)
        assert_true (ne_wait_state (ids[i], "email", "sent", 30000));
    assert_true (ne_wait_file (ne_path ("mail-41.json"), 10000));
    gl_sleep_ms (300);
    assert_int_not_equal (stat (ne_path ("mail-42.json"), &st), 0);
    int by[2] = { 0, 0 };
    for (int i = 0; i < 40; i++) {
        redisReply *r = gl_redis_cmd (ne.r, "HGET notifier:{notifier}:d:%s:email consumer",
                                      ids[i]);
        assert_non_null (r);
        by[r->str && strcmp (r->str, "notifier-1") == 0 ? 0 : 1]++;
        freeReplyObject (r);
    }
    fprintf (stderr, "two replicas: %d and %d of 40 e-mails\n", by[0], by[1]);
    gl_test_stop (second, 5000);
}

static int
t_setup (void **state)
{
    ne_setup ("notifier-kill", true);
    return 0;
}

static int
t_teardown (void **state)
{
    ne_teardown ();
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_kill_mid_send),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
