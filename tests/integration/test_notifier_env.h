/*  What the notifier integration tests share: a private redis-server; Kannel (bearerbox, smsbox
    and the fake SMSC from kannel-extras) on free ports; a real SMTP server, a webhook receiver
    that checks signatures and a generic HTTP gateway (tests/integration/notifier_peers.py);
    a stand-in for intake's and referral's ROUTER answering intake.delivery_details,
    intake.user_contact and referral.partner_contact over the real bus (gl_rep); the business
    clock in a file; and gl-notifier itself, started as a process.
    Included by test_notifier.c and test_notifier_kill.c (one environment per process). */
#ifndef TEST_NOTIFIER_ENV_H
#define TEST_NOTIFIER_ENV_H

#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_log.h"
#include "gl/gl_pub.h"
#include "gl/gl_redis.h"
#include "gl/gl_rep.h"
#include "gl/gl_req.h"
#include "gl_testenv.h"
#include <czmq.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#define NE_TOKEN        "tok-notifier-test"
#define NE_DLR_SECRET   "dlr-secret-test"
#define NE_HOOK_SECRET  "hook-secret-test"
#define NE_KANNEL_PASS  "kpass"
#define NE_SMTP_PASS    "smtp-pass-test"
#define NE_T0           1767607200000LL     //  2026-01-05 10:00 UTC, a Monday morning

typedef struct {
    gl_testredis_t *redis;
    gl_redis_t *r;
    char dir[256];
    char clock[300];
    int64_t now;
    int smsbox_port, smtp_port, http_port;
    pid_t bearerbox, smsbox, fakesmsc, smtpd, httpd;
    pid_t notifier;
    char notifier_router[64];
    char standin_endpoint[64];
    pthread_t standin;
    atomic_bool standin_stop;
    atomic_int details_calls;
    gl_req_t *req;
} ne_t;

static ne_t ne;

//  ---------------------------------------------------------------------------------------------
//  Small things

static inline void
ne_clock_set (int64_t ms)
{
    char tmp[320];
    snprintf (tmp, sizeof tmp, "%s.tmp", ne.clock);
    FILE *f = fopen (tmp, "w");
    if (!f)
        abort ();
    fprintf (f, "%" PRId64 "\n", ms);
    fclose (f);
    if (rename (tmp, ne.clock) != 0)
        abort ();
    ne.now = ms;
}

static inline bool
ne_port_open (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                             .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    bool ok = connect (fd, (struct sockaddr *) &a, sizeof a) == 0;
    close (fd);
    return ok;
}

static inline bool
ne_wait_port (int port, int timeout_ms)
{
    int64_t end = gl_mono_ms () + timeout_ms;
    while (gl_mono_ms () < end) {
        if (ne_port_open (port))
            return true;
        gl_sleep_ms (50);
    }
    return false;
}

static inline bool
ne_wait_file (const char *path, int timeout_ms)
{
    int64_t end = gl_mono_ms () + timeout_ms;
    struct stat st;
    while (gl_mono_ms () < end) {
        if (stat (path, &st) == 0)
            return true;
        gl_sleep_ms (20);
    }
    return false;
}

//  Occurrences of needle in the file at path.
static inline int
ne_count_in_file (const char *path, const char *needle)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return 0;
    static char buf[1 << 20];
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = 0;
    int count = 0;
    for (const char *p = buf; (p = strstr (p, needle)); p += strlen (needle))
        count++;
    return count;
}

static inline const char *
ne_path (const char *name)
{
    static char path[4][400];
    static int i;
    i = (i + 1) % 4;
    snprintf (path[i], sizeof path[i], "%s/%s", ne.dir, name);
    return path[i];
}

//  SMS that reached the fake SMSC with needle in their line.
static inline int
ne_sms_count (const char *needle)
{
    FILE *f = fopen (ne_path ("fakesmsc.log"), "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets (line, sizeof line, f))
        if (strstr (line, "Got message") && strstr (line, needle))
            n++;
    fclose (f);
    return n;
}

//  ---------------------------------------------------------------------------------------------
//  Kannel

static inline void
ne_kannel_start (void)
{
    int admin = gl_test_free_port (), boxp = gl_test_free_port (), smscp = gl_test_free_port ();
    ne.smsbox_port = gl_test_free_port ();
    FILE *f = fopen (ne_path ("kannel.conf"), "w");
    if (!f)
        abort ();
    fprintf (f,
             "group = core\nadmin-port = %d\nadmin-password = adm\nsmsbox-port = %d\n"
             "box-allow-ip = 127.0.0.1\nadmin-allow-ip = 127.0.0.1\nlog-level = 1\n"
             "dlr-storage = internal\n\n"
             "group = smsc\nsmsc = fake\nsmsc-id = fake\nport = %d\n"
             "connect-allow-ip = 127.0.0.1\n\n"
             "group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = %d\n"
             "sendsms-port = %d\nlog-level = 1\n\n"
             "group = sendsms-user\nusername = greenline\npassword = " NE_KANNEL_PASS "\n"
             "max-messages = 10\nconcatenation = true\n",
             admin, boxp, smscp, boxp, ne.smsbox_port);
    fclose (f);
    char conf[400];
    snprintf (conf, sizeof conf, "%s", ne_path ("kannel.conf"));
    char *bb[] = { "/usr/sbin/bearerbox", conf, NULL };
    ne.bearerbox = gl_test_spawn (bb[0], bb, NULL, ne_path ("bearerbox.log"));
    if (ne.bearerbox < 0 || !ne_wait_port (smscp, 20000) || !ne_wait_port (boxp, 20000))
        abort ();
    char *sb[] = { "/usr/sbin/smsbox", conf, NULL };
    ne.smsbox = gl_test_spawn (sb[0], sb, NULL, ne_path ("smsbox.log"));
    char port[16];
    snprintf (port, sizeof port, "%d", smscp);
    char *fk[] = { "/usr/lib/kannel/test/fakesmsc", "-H", "127.0.0.1", "-r", port, "-i", "1",
                   "-m", "0", "000 000 text nothing", NULL };
    ne.fakesmsc = gl_test_spawn (fk[0], fk, NULL, ne_path ("fakesmsc.log"));
    if (ne.smsbox < 0 || ne.fakesmsc < 0 || !ne_wait_port (ne.smsbox_port, 20000))
        abort ();
}

//  ---------------------------------------------------------------------------------------------
//  SMTP server, webhook receiver, HTTP gateway

static inline void
ne_peers_start (void)
{
    char script[400], port[16], dir[300];
    snprintf (script, sizeof script, "%s/tests/integration/notifier_peers.py",
              getenv ("GL_SOURCE_DIR"));
    snprintf (dir, sizeof dir, "%s", ne.dir);
    ne.smtp_port = gl_test_free_port ();
    snprintf (port, sizeof port, "%d", ne.smtp_port);
    //  SMTP with STARTTLS required and AUTH: a self-signed certificate for 127.0.0.1, which
    //  notifier is given as its CA file.
    char cert[400], key[400];
    snprintf (cert, sizeof cert, "%s", ne_path ("smtp-cert.pem"));
    snprintf (key, sizeof key, "%s", ne_path ("smtp-key.pem"));
    char *ossl[] = { "/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                     "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                     "-addext", "subjectAltName=IP:127.0.0.1", NULL };
    pid_t gen = gl_test_spawn (ossl[0], ossl, NULL, ne_path ("openssl.log"));
    if (gen < 0 || gl_test_wait (gen, 30000) != 0)
        abort ();
    char *smtp[] = { "/usr/bin/python3", script, "smtp", port, dir, cert, key,
                     "greenline", NE_SMTP_PASS, NULL };
    ne.smtpd = gl_test_spawn (smtp[0], smtp, NULL, ne_path ("smtpd.log"));
    ne.http_port = gl_test_free_port ();
    char hport[16], down[400];
    snprintf (hport, sizeof hport, "%d", ne.http_port);
    snprintf (down, sizeof down, "%s", ne_path ("gw.down"));
    char *http[] = { "/usr/bin/python3", script, "http", hport, dir, NE_HOOK_SECRET, down, NULL };
    ne.httpd = gl_test_spawn (http[0], http, NULL, ne_path ("httpd.log"));
    if (!ne_wait_file (ne_path ("smtp.ready"), 20000) || !ne_wait_file (ne_path ("http.ready"),
                                                                         20000))
        abort ();
}

//  ---------------------------------------------------------------------------------------------
//  The stand-in for intake's and referral's ROUTER (real gl_rep, real bus)

typedef struct {
    const char *ref;
    const char *phone;
    const char *language;
} ne_person_t;

static const ne_person_t ne_people[] = {
    { "CASE-AR", "+4915100000001", "ar" },
    { "CASE-EN", "+4915100000002", "en" },
    { "CASE-FR", "+4915100000003", "fr" },
    { "CASE-BAD", "0151-000", "en" },
};

#define NE_USER_AR "a0000000000000000000000000000001"
#define NE_USER_EN "a0000000000000000000000000000002"
#define NE_USER_OFF "a0000000000000000000000000000003"     //  a disabled account

static inline int
ne_on_details (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    atomic_fetch_add (&ne.details_calls, 1);
    const char *ref = json_string_value (json_object_get (req->body, "person_ref"));
    const char *requester = json_string_value (json_object_get (req->body, "requester"));
    if (!ref || !requester || strcmp (requester, "notifier") != 0)
        return gl_rep_error (err, 400, "bad_request", "person_ref", "bad request");
    if (strcmp (ref, "CASE-DOWN") == 0)
        return gl_rep_error (err, 503, "unavailable", "", "the audit trail cannot be reached");
    for (size_t i = 0; i < sizeof ne_people / sizeof ne_people[0]; i++)
        if (strcmp (ref, ne_people[i].ref) == 0) {
            *reply = json_pack ("{s:s, s:[s], s:s}", "phone", ne_people[i].phone, "phones",
                                ne_people[i].phone, "language", ne_people[i].language);
            return 200;
        }
    return gl_rep_error (err, 404, "not_found", "person_ref", "no such case");
}

static inline int
ne_on_user (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    //  As intake answers it (services/intake/usercontact.c): purpose and requester required.
    const char *id = json_string_value (json_object_get (req->body, "user_id"));
    const char *purpose = json_string_value (json_object_get (req->body, "purpose"));
    const char *requester = json_string_value (json_object_get (req->body, "requester"));
    if (!purpose || !requester || strcmp (requester, "notifier") != 0
        || json_object_size (req->body) != 3)
        return gl_rep_error (err, 400, "bad_request", "purpose", "bad request");
    if (id && strcmp (id, NE_USER_AR) == 0)
        *reply = json_pack ("{s:s, s:s, s:s, s:b}", "email", "duty-ar@example.org", "phone",
                            "+4915100000009", "language", "ar", "disabled", 0);
    else if (id && strcmp (id, NE_USER_EN) == 0)
        *reply = json_pack ("{s:s, s:n, s:s, s:b}", "email", "duty-en@example.org", "phone",
                            "language", "en", "disabled", 0);
    else if (id && strcmp (id, NE_USER_OFF) == 0)
        *reply = json_pack ("{s:s, s:n, s:s, s:b}", "email", "gone@example.org", "phone",
                            "language", "en", "disabled", 1);
    else
        return gl_rep_error (err, 404, "not_found", "user_id", "no such user");
    return 200;
}

static inline int
ne_on_partner (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    char url[128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/hook/partner", ne.http_port);
    *reply = json_pack ("{s:s, s:s, s:s}", "email", "partner@example.org", "webhook_url", url,
                        "language", "fr");
    return 200;
}

static inline void *
ne_standin_run (void *arg)
{
    gl_rep_t *rep = arg;
    zpoller_t *poller = zpoller_new (gl_rep_sock (rep), NULL);
    while (!atomic_load (&ne.standin_stop)) {
        void *which = zpoller_wait (poller, gl_rep_pending (rep) ? 0 : 100);
        if (which || gl_rep_pending (rep))
            gl_rep_dispatch (rep);
    }
    zpoller_destroy (&poller);
    gl_rep_destroy (&rep);
    return NULL;
}

static inline void
ne_standin_start (void)
{
    gl_rep_t *rep = gl_rep_new ("tcp://127.0.0.1:*");
    if (!rep)
        abort ();
    gl_rep_set_tokens (rep, NE_TOKEN);
    gl_rep_on (rep, "intake.delivery_details", ne_on_details, NULL);
    gl_rep_on (rep, "intake.user_contact", ne_on_user, NULL);
    gl_rep_on (rep, "referral.partner_contact", ne_on_partner, NULL);
    snprintf (ne.standin_endpoint, sizeof ne.standin_endpoint, "%s", gl_rep_endpoint (rep));
    atomic_store (&ne.standin_stop, false);
    pthread_create (&ne.standin, NULL, ne_standin_run, rep);
}

//  ---------------------------------------------------------------------------------------------
//  gl-notifier

//  Start gl-notifier with the environment below plus extra ("KEY=VALUE", NULL-terminated).
static inline pid_t
ne_notifier_spawn (const char *const *extra)
{
    static char env[48][400];
    char *envp[49];
    int n = 0;
    snprintf (env[n++], 400, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 400, "GL_REDIS_PORT=%d", ne.redis->port);
    snprintf (env[n++], 400, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (env[n++], 400, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (env[n++], 400, "GL_BUS_BIND_ROUTER=%s", ne.notifier_router);
    snprintf (env[n++], 400, "GL_BUS_PUB_ENDPOINTS=");
    snprintf (env[n++], 400, "GL_BUS_TOKENS=" NE_TOKEN);
    snprintf (env[n++], 400, "GL_ENDPOINT_INTAKE=%s", ne.standin_endpoint);
    snprintf (env[n++], 400, "GL_ENDPOINT_REFERRAL=%s", ne.standin_endpoint);
    snprintf (env[n++], 400, "GL_CLOCK_FILE=%s", ne.clock);
    snprintf (env[n++], 400, "GL_LOG_LEVEL=debug");
    snprintf (env[n++], 400, "GL_NOTIFIER_CONFIG=");
    snprintf (env[n++], 400, "GL_NOTIFIER_TEMPLATES=%s/config/templates",
              getenv ("GL_SOURCE_DIR"));
    snprintf (env[n++], 400, "GL_NOTIFIER_SMS_GATEWAY=kannel");
    snprintf (env[n++], 400, "GL_NOTIFIER_KANNEL_URL=http://127.0.0.1:%d/cgi-bin/sendsms",
              ne.smsbox_port);
    snprintf (env[n++], 400, "GL_NOTIFIER_KANNEL_USER=greenline");
    snprintf (env[n++], 400, "GL_NOTIFIER_KANNEL_PASSWORD=" NE_KANNEL_PASS);
    snprintf (env[n++], 400, "GL_NOTIFIER_DLR_SECRET=" NE_DLR_SECRET);
    snprintf (env[n++], 400, "GL_NOTIFIER_SMTP_URL=smtp://127.0.0.1:%d", ne.smtp_port);
    snprintf (env[n++], 400, "GL_NOTIFIER_SMTP_FROM=greenline@helpline.example");
    snprintf (env[n++], 400, "GL_NOTIFIER_SMTP_TLS=required");
    snprintf (env[n++], 400, "GL_NOTIFIER_SMTP_USER=greenline");
    snprintf (env[n++], 400, "GL_NOTIFIER_SMTP_PASSWORD=" NE_SMTP_PASS);
    snprintf (env[n++], 400, "GL_NOTIFIER_SMTP_CA_FILE=%s", ne_path ("smtp-cert.pem"));
    snprintf (env[n++], 400, "GL_NOTIFIER_VOICE_HTTP_URL=http://127.0.0.1:%d/gw/voice?to="
              "{{to|url}}&id={{id|url}}", ne.http_port);
    snprintf (env[n++], 400, "GL_NOTIFIER_VOICE_HTTP_BODY={\"say\":\"{{text|json}}\","
              "\"lang\":\"{{lang|json}}\"}");
    snprintf (env[n++], 400, "GL_NOTIFIER_WEBHOOK_OPS_URL=http://127.0.0.1:%d/hook/ops",
              ne.http_port);
    snprintf (env[n++], 400, "GL_NOTIFIER_WEBHOOK_OPS_SECRET=" NE_HOOK_SECRET);
    snprintf (env[n++], 400, "GL_NOTIFIER_PARTNER_SECRET=" NE_HOOK_SECRET);
    snprintf (env[n++], 400, "GL_NOTIFIER_QUIET_HOURS=21:00-08:00");
    snprintf (env[n++], 400, "GL_NOTIFIER_RECLAIM_MS=1000");
    snprintf (env[n++], 400, "GL_NOTIFIER_POLL_MS=50");
    //  An extra entry replaces a default of the same key.
    for (int i = 0; extra && extra[i] && n < 48; i++) {
        const char *eq = strchr (extra[i], '=');
        size_t klen = eq ? (size_t) (eq - extra[i]) + 1 : strlen (extra[i]);
        int k = 0;
        while (k < n && strncmp (env[k], extra[i], klen) != 0)
            k++;
        snprintf (env[k], 400, "%s", extra[i]);
        if (k == n)
            n++;
    }
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    char *argv[] = { "gl-notifier", NULL };
    pid_t pid = gl_test_spawn (gl_test_build_path ("services/notifier/gl-notifier"), argv, envp,
                               ne_path ("notifier.log"));
    return pid;
}

//  Call one of notifier's requests as intake's forwarding would (caller: an admin).
static inline int
ne_call (const char *op, json_t *params, json_t *query, gl_reply_t *reply)
{
    json_t *body = json_pack ("{s:{s:s, s:[s], s:[]}, s:o, s:o, s:{}}", "caller", "user_id",
                              "f0000000000000000000000000000001", "roles", "admin", "units",
                              "params", params ? params : json_object (), "query",
                              query ? query : json_object (), "body");
    int rc = gl_req_call (ne.req, op, NULL, body, 3000, reply);
    json_decref (body);
    return rc == 0 ? reply->status : -1;
}

//  The state of one delivery ("" when unknown), with its attempts and reason.
static inline const char *
ne_state (const char *nid, const char *channel, int *attempts, char *reason, size_t reasonlen)
{
    static char state[32];
    state[0] = 0;
    gl_reply_t reply = { 0 };
    if (ne_call ("notifier.status", json_pack ("{s:s}", "id", nid), NULL, &reply) == 200) {
        size_t i;
        json_t *d;
        json_array_foreach (json_object_get (reply.body, "deliveries"), i, d) {
            if (strcmp (json_string_value (json_object_get (d, "channel")), channel) != 0)
                continue;
            snprintf (state, sizeof state, "%s", json_string_value (json_object_get (d, "state")));
            if (attempts)
                *attempts = (int) json_integer_value (json_object_get (d, "attempts"));
            if (reason)
                snprintf (reason, reasonlen, "%s",
                          json_string_value (json_object_get (d, "reason")));
        }
    }
    gl_reply_clear (&reply);
    return state;
}

//  Wait until the delivery is in state (one of "a|b"). Returns true when it got there.
static inline bool
ne_wait_state (const char *nid, const char *channel, const char *states, int timeout_ms)
{
    int64_t end = gl_mono_ms () + timeout_ms;
    while (gl_mono_ms () < end) {
        const char *s = ne_state (nid, channel, NULL, NULL, 0);
        char want[128];
        snprintf (want, sizeof want, "|%s|", states);
        char have[40];
        snprintf (have, sizeof have, "|%s|", s);
        if (*s && strstr (want, have))
            return true;
        gl_sleep_ms (50);
    }
    fprintf (stderr, "delivery %s:%s is '%s', not %s\n", nid, channel,
             ne_state (nid, channel, NULL, NULL, 0), states);
    return false;
}

//  Publish notification.requested from a stand-in producer ("scheduler-1"), data as JSON.
static inline void
ne_request (const char *corr, const char *data_json)
{
    char err[256];
    json_t *data = json_loads (data_json, 0, NULL);
    if (!data)
        abort ();
    gl_pub_opts_t po;
    gl_pub_opts_default (&po);
    po.bind = NULL;
    po.wait_ms = 15000;
    gl_pub_t *pub = gl_pub_new (ne.r, "scheduler-1", &po, err, sizeof err);
    if (!pub) {
        fprintf (stderr, "publisher: %s\n", err);
        abort ();
    }
    gl_event_t *ev = gl_event_new ("notification.requested");
    json_decref (ev->data);
    ev->data = data;
    gl_event_set_corr (ev, corr);
    if (gl_pub_send (pub, ev, 0) != 0)
        abort ();
    gl_event_destroy (&ev);
    gl_pub_destroy (&pub);
}

static inline void
ne_new_id (char id[GL_ID_LEN + 1])
{
    gl_id_new (id);
}

//  ---------------------------------------------------------------------------------------------
//  Whole environment

static inline void
ne_setup (const char *name, bool kannel)
{
    memset (&ne, 0, sizeof ne);
    snprintf (ne.dir, sizeof ne.dir, "/tmp/gl-test-%s-%d", name, (int) getpid ());
    mkdir (ne.dir, 0700);
    snprintf (ne.clock, sizeof ne.clock, "%s/clock", ne.dir);
    ne_clock_set (NE_T0);
    setenv ("GL_CLOCK_FILE", ne.clock, 1);
    gl_log_init (name, GL_LOG_WARN, false);
    ne.redis = gl_testredis_start (NULL);
    if (!ne.redis)
        abort ();
    ne.r = gl_redis_new ("127.0.0.1", ne.redis->port, NULL, 2000, 2000);
    if (kannel)
        ne_kannel_start ();
    ne_peers_start ();
    ne_standin_start ();
    snprintf (ne.notifier_router, sizeof ne.notifier_router, "tcp://127.0.0.1:%d",
              gl_test_free_port ());
    ne.req = gl_req_new (ne.notifier_router);
    gl_req_set_auth (ne.req, NE_TOKEN);
}

//  Wait for the notifier to answer requests.
static inline bool
ne_notifier_ready (int timeout_ms)
{
    int64_t end = gl_mono_ms () + timeout_ms;
    while (gl_mono_ms () < end) {
        gl_reply_t reply = { 0 };
        int status = ne_call ("notifier.dead_list", NULL, NULL, &reply);
        gl_reply_clear (&reply);
        if (status == 200)
            return true;
        gl_sleep_ms (100);
    }
    return false;
}

static inline void
ne_teardown (void)
{
    if (ne.notifier > 0)
        gl_test_stop (ne.notifier, 5000);
    atomic_store (&ne.standin_stop, true);
    pthread_join (ne.standin, NULL);
    gl_req_destroy (&ne.req);
    pid_t *pids[] = { &ne.fakesmsc, &ne.smsbox, &ne.bearerbox, &ne.smtpd, &ne.httpd };
    for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++)
        if (*pids[i] > 0)
            gl_test_stop (*pids[i], 3000);
    gl_redis_destroy (&ne.r);
    gl_testredis_destroy (&ne.redis);
    if (!getenv ("GL_TEST_KEEP_LOGS")) {
        char cmd[400];
        snprintf (cmd, sizeof cmd, "rm -rf '%s'", ne.dir);
        if (system (cmd) != 0)
            fprintf (stderr, "could not remove %s\n", ne.dir);
    }
    else
        fprintf (stderr, "logs kept in %s\n", ne.dir);
}

#endif
