/*  gl-notifier under load, on the real clock, events over PUB/SUB: a burst of routine e-mails
    into the local SMTP server (STARTTLS and AUTH on every message), a burst of routine SMS into
    Kannel, and emergency SMS one at a time for the latency from notification.requested to
    Kannel's acceptance (the notification.sent event; both stamps from this host's clock).
    Asserts that every message arrived exactly once at the receiving server; prints the figures
    (docs/operations.md, "Figures"), with no threshold on them. */
/*  Run: bench/notifier/run.sh (not part of ctest: benchmarks live in bench/). */
#include "../../tests/integration/test_notifier_env.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define T_BURST   200
#define T_SAMPLES 50

static gl_pub_t *s_pub;

static void
t_publish (const char *data_json)
{
    gl_event_t *ev = gl_event_new ("notification.requested");
    json_decref (ev->data);
    ev->data = json_loads (data_json, 0, NULL);
    assert_non_null (ev->data);
    assert_int_equal (gl_pub_send (s_pub, ev, 0), 0);
    gl_event_destroy (&ev);
}

static int
t_mails (void)
{
    int n = 0;
    char name[32];
    for (;;) {
        snprintf (name, sizeof name, "mail-%d.json", n + 1);
        if (access (ne_path (name), F_OK) != 0)
            return n;
        n++;
    }
}

//  ts of the first event of type about notification nid in notifier's log, or 0.
static int64_t
t_event_ts (const char *type, const char *nid)
{
    redisReply *r = gl_redis_cmd (ne.r, "XRANGE gl:log:{notifier-1} - +");
    int64_t ts = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !ts; i++) {
        redisReply *f = r->element[i]->element[1];
        gl_event_err_t why;
        gl_event_t *ev = gl_event_decode (f->element[1]->str, f->element[1]->len, &why, NULL, 0);
        if (ev && strcmp (ev->type, type) == 0
            && strcmp (gl_event_str (ev, "notification_id", ""), nid) == 0)
            ts = ev->ts;
        gl_event_destroy (&ev);
    }
    if (r)
        freeReplyObject (r);
    return ts;
}

static int
t_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static void
test_bench (void **state)
{
    ne_setup ("notifier-bench", true);
    unsetenv ("GL_CLOCK_FILE");
    char err[256];
    gl_pub_opts_t po;
    gl_pub_opts_default (&po);
    char bind[64];
    snprintf (bind, sizeof bind, "tcp://127.0.0.1:%d", gl_test_free_port ());
    po.bind = bind;
    s_pub = gl_pub_new (ne.r, "scheduler-1", &po, err, sizeof err);
    assert_non_null (s_pub);
    char endpoints[96];
    snprintf (endpoints, sizeof endpoints, "GL_BUS_PUB_ENDPOINTS=%s", gl_pub_endpoint (s_pub));
    const char *extra[] = { "GL_CLOCK_FILE=", endpoints, "GL_NOTIFIER_RATE_SMS=0",
                            "GL_NOTIFIER_RATE_EMAIL=0", "GL_NOTIFIER_QUIET_HOURS=",
                            "GL_LOG_LEVEL=warn", "GL_NOTIFIER_POLL_MS=10", NULL };
    ne.notifier = ne_notifier_spawn (extra);
    assert_true (ne_notifier_ready (20000));
    gl_sleep_ms (1500);     //  the subscriber connects and becomes active
    gl_pub_tick (s_pub);

    //  E-mail burst.
    char data[1024], nid[GL_ID_LEN + 1];
    int64_t t0 = gl_mono_us ();
    for (int i = 0; i < T_BURST; i++) {
        ne_new_id (nid);
        snprintf (data, sizeof data,
                  "{\"notification_id\":\"%s\",\"template\":\"appointment.cancelled\","
                  "\"priority\":\"routine\",\"channels\":[\"email\"],"
                  "\"recipient\":{\"kind\":\"user\",\"id\":\"" NE_USER_EN "\"},"
                  "\"params\":{\"reference\":\"B%d\"}}", nid, i);
        t_publish (data);
    }
    int64_t end = gl_mono_ms () + 120000;
    while (t_mails () < T_BURST && gl_mono_ms () < end) {
        gl_pub_tick (s_pub);
        gl_sleep_ms (20);
    }
    double mail_s = (double) (gl_mono_us () - t0) / 1e6;
    assert_int_equal (t_mails (), T_BURST);

    //  SMS burst.
    t0 = gl_mono_us ();
    for (int i = 0; i < T_BURST; i++) {
        ne_new_id (nid);
        snprintf (data, sizeof data,
                  "{\"notification_id\":\"%s\",\"template\":\"appointment.cancelled\","
                  "\"priority\":\"routine\",\"channels\":[\"sms\"],"
                  "\"recipient\":{\"kind\":\"person\",\"ref\":\"CASE-EN\"},"
                  "\"params\":{\"reference\":\"S%dX\"}}", nid, i);
        t_publish (data);
    }
    end = gl_mono_ms () + 120000;
    while (ne_sms_count ("+4915100000002") < T_BURST && gl_mono_ms () < end) {
        gl_pub_tick (s_pub);
        gl_sleep_ms (20);
    }
    double sms_s = (double) (gl_mono_us () - t0) / 1e6;
    assert_int_equal (ne_sms_count ("+4915100000002"), T_BURST);
    for (int i = 0; i < T_BURST; i += 37) {
        char needle[16];
        snprintf (needle, sizeof needle, " S%dX", i);
        assert_int_equal (ne_sms_count (needle), 1);
    }

    //  Emergencies one at a time: requested -> accepted by Kannel.
    int64_t lat[T_SAMPLES];
    for (int i = 0; i < T_SAMPLES; i++) {
        ne_new_id (nid);
        snprintf (data, sizeof data,
                  "{\"notification_id\":\"%s\",\"template\":\"emergency.alarm\","
                  "\"priority\":\"emergency\",\"channels\":[\"sms\"],"
                  "\"recipient\":{\"kind\":\"person\",\"ref\":\"CASE-FR\"},"
                  "\"params\":{\"emergency_id\":\"L%d\"}}", nid, i);
        gl_event_t *ev = gl_event_new ("notification.requested");
        json_decref (ev->data);
        ev->data = json_loads (data, 0, NULL);
        assert_int_equal (gl_pub_send (s_pub, ev, 0), 0);
        int64_t requested = ev->ts;
        gl_event_destroy (&ev);
        int64_t sent = 0;
        end = gl_mono_ms () + 20000;
        while (!(sent = t_event_ts ("notification.sent", nid)) && gl_mono_ms () < end)
            gl_sleep_ms (2);
        assert_true (sent > 0);
        lat[i] = sent - requested;
        gl_pub_tick (s_pub);
    }
    qsort (lat, T_SAMPLES, sizeof lat[0], t_cmp);
    fprintf (stderr,
             "notifier figures: %d e-mails in %.2f s = %.0f/s (SMTP, STARTTLS + AUTH each); "
             "%d SMS in %.2f s = %.0f/s (Kannel sendsms); emergency requested -> accepted by "
             "Kannel over %d: p50 %" PRId64 " ms, p99 %" PRId64 " ms, max %" PRId64 " ms\n",
             T_BURST, mail_s, T_BURST / mail_s, T_BURST, sms_s, T_BURST / sms_s, T_SAMPLES,
             lat[T_SAMPLES / 2], lat[(T_SAMPLES * 99) / 100], lat[T_SAMPLES - 1]);
    gl_pub_destroy (&s_pub);
    ne_teardown ();
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_bench),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
