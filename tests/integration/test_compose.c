/*  The deployment files in docker/: docker-compose.yml (and the CURVE overlay) validate with
    `docker-compose config` and wire the services together consistently (health checks on each
    service's /ready port, restart policies, one Redis user per service, every PUB and ROUTER
    endpoint where the others look for it); an env file without a required secret is refused;
    every setting the compose files give a service is documented or read by the code; and the
    Redis ACL that docker/redis/acl.sh renders lets each service run the bus (publish, subscribe,
    work queues) on its own keys while refusing other services' keys and dangerous commands, on
    a real redis-server; and nginx accepts docker/nginx.conf. Without docker-compose installed,
    the compose checks are skipped (exit 77) and the others still run.
    ctest: timeout=120 skip=77 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_config.h"
#include "gl/gl_log.h"
#include "gl/gl_pub.h"
#include "gl/gl_redis.h"
#include "gl/gl_sub.h"
#include "gl/gl_wq.h"
#include "gl_testenv.h"
#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define S_OUT_MAX (1 << 20)

static const char *s_src;           //  the source tree
static bool s_have_compose;
static const char *s_services[] = { "intake", "scheduler", "referral", "reporting", "notifier" };
#define S_NSERVICES 5

//  Run cmd with sh in the source tree; its stdout (and stderr) into *out (malloc'd, NUL-ended,
//  cut at S_OUT_MAX). Returns the exit status, or -1.
static int
s_run (const char *cmd, char **out)
{
    char full[4096];
    snprintf (full, sizeof full, "cd '%s' && %s 2>&1", s_src, cmd);
    FILE *p = popen (full, "r");
    assert_non_null (p);
    char *buf = malloc (S_OUT_MAX + 1);
    assert_non_null (buf);
    size_t len = fread (buf, 1, S_OUT_MAX, p);
    buf[len] = 0;
    int status = pclose (p);
    if (out)
        *out = buf;
    else
        free (buf);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

//  --------------------------------------------------------------------------------------------
//  docker-compose config

//  One service of `docker-compose config`'s normalised output: its lines, and its environment.
typedef struct {
    char name[32];
    char *text;                     //  the service's block, lines as printed
    char keys[96][64];
    char values[96][512];
    int nenv;
} s_svc_t;

static void
s_unquote (char *v)
{
    size_t n = strlen (v);
    if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
        memmove (v, v + 1, n - 2);
        v[n - 2] = 0;
    }
}

//  Cut the services: section into blocks (service names are indented by two spaces).
static int
s_parse (char *config, s_svc_t *svcs, int max)
{
    int n = 0;
    bool in_services = false, in_env = false;
    s_svc_t *cur = NULL;
    size_t text_len = 0;
    for (char *line = strtok (config, "\n"); line; line = strtok (NULL, "\n")) {
        size_t indent = strspn (line, " ");
        if (indent == 0) {
            in_services = strcmp (line, "services:") == 0;
            cur = NULL;
            continue;
        }
        if (!in_services)
            continue;
        if (indent == 2) {
            assert_true (n < max);
            cur = &svcs[n++];
            memset (cur, 0, sizeof *cur);
            snprintf (cur->name, sizeof cur->name, "%.*s", (int) strcspn (line + 2, ":"),
                      line + 2);
            cur->text = calloc (1, S_OUT_MAX);
            text_len = 0;
            in_env = false;
            continue;
        }
        if (!cur)
            continue;
        text_len += (size_t) snprintf (cur->text + text_len, S_OUT_MAX - text_len, "%s\n", line);
        if (indent == 4)
            in_env = strcmp (line + 4, "environment:") == 0;
        else if (in_env && indent == 6 && cur->nenv < 96) {
            char *colon = strstr (line, ": ");
            if (!colon)
                continue;
            snprintf (cur->keys[cur->nenv], 64, "%.*s", (int) (colon - line - 6), line + 6);
            snprintf (cur->values[cur->nenv], 512, "%s", colon + 2);
            s_unquote (cur->values[cur->nenv]);
            cur->nenv++;
        }
    }
    return n;
}

static s_svc_t *
s_find (s_svc_t *svcs, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp (svcs[i].name, name) == 0)
            return &svcs[i];
    return NULL;
}

static const char *
s_env (s_svc_t *svc, const char *key)
{
    for (int i = 0; i < svc->nenv; i++)
        if (strcmp (svc->keys[i], key) == 0)
            return svc->values[i];
    return NULL;
}

//  The port of "tcp://host:PORT" (the text after the last ':'), before any '#'.
static int
s_port (const char *endpoint)
{
    const char *colon = strrchr (endpoint, ':');
    return colon ? atoi (colon + 1) : -1;
}

//  With quiet, first the plain validation (`config -q`, the exit status only).
static void
s_check_wiring (const char *files, bool curve, bool quiet)
{
    char cmd[1024], *out = NULL;
    if (quiet) {
        snprintf (cmd, sizeof cmd, "docker-compose %s --env-file docker/.env.example config -q",
                  files);
        int rc = s_run (cmd, &out);
        if (rc != 0)
            fprintf (stderr, "%s\n", out);
        assert_int_equal (rc, 0);
        free (out);
    }
    snprintf (cmd, sizeof cmd, "docker-compose %s --env-file docker/.env.example config", files);
    int rc = s_run (cmd, &out);
    if (rc != 0)
        fprintf (stderr, "%s\n", out);
    assert_int_equal (rc, 0);
    s_svc_t *svcs = calloc (16, sizeof (s_svc_t));
    int n = s_parse (out, svcs, 16);

    s_svc_t *redis = s_find (svcs, n, "redis");
    assert_non_null (redis);
    assert_non_null (strstr (redis->text, "target: /data") ? redis->text
                                                            : strstr (redis->text, ":/data"));
    assert_non_null (strstr (redis->text, "restart: unless-stopped"));
    assert_non_null (strstr (redis->text, "healthcheck:"));
    assert_non_null (s_env (redis, "GL_REDIS_ADMIN_PASSWORD"));
    s_svc_t *nginx = s_find (svcs, n, "nginx");
    assert_non_null (nginx);
    assert_non_null (strstr (nginx->text, "nginx.conf:/etc/nginx/nginx.conf:ro"));
    assert_non_null (strstr (nginx->text, "target: 8443") ? nginx->text
                                                           : strstr (nginx->text, ":8443"));

    for (int i = 0; i < S_NSERVICES; i++) {
        const char *name = s_services[i];
        s_svc_t *svc = s_find (svcs, n, name);
        assert_non_null (svc);
        //  Runs its own program, restarts, is health-checked on its /ready port.
        char want[256];
        snprintf (want, sizeof want, "- gl-%s\n", name);
        assert_non_null (strstr (svc->text, want));
        assert_non_null (strstr (svc->text, "restart: unless-stopped"));
        const char *health = s_env (svc, "GL_HEALTH_PORT");
        assert_non_null (health);
        snprintf (want, sizeof want, "- http://127.0.0.1:%s/ready\n", health);
        assert_non_null (strstr (svc->text, want));
        //  Its own Redis user, with the password Redis was given for it.
        assert_string_equal (s_env (svc, "GL_REDIS_USER"), name);
        char upper[32];
        size_t k = 0;
        for (; name[k]; k++)
            upper[k] = (char) toupper ((unsigned char) name[k]);
        upper[k] = 0;
        char key[64];
        snprintf (key, sizeof key, "GL_REDIS_PASSWORD_%s", upper);
        assert_non_null (s_env (redis, key));
        assert_string_equal (s_env (svc, "GL_REDIS_PASSWORD"), s_env (redis, key));
        assert_string_equal (s_env (svc, "GL_REDIS_HOST"), "redis");
        //  Every service finds this one's PUB and ROUTER where it binds them.
        const char *pub = s_env (svc, "GL_BUS_BIND_PUB");
        const char *router = s_env (svc, "GL_BUS_BIND_ROUTER");
        assert_non_null (pub);
        assert_non_null (router);
        snprintf (key, sizeof key, "GL_ENDPOINT_%s", upper);
        for (int j = 0; j < S_NSERVICES; j++) {
            s_svc_t *other = s_find (svcs, n, s_services[j]);
            char ep[128];
            snprintf (ep, sizeof ep, "tcp://%s:%d%s%s", name, s_port (pub), curve ? "#" : "",
                      curve ? name : "");
            assert_non_null (s_env (other, "GL_BUS_PUB_ENDPOINTS"));
            assert_non_null (strstr (s_env (other, "GL_BUS_PUB_ENDPOINTS"), ep));
            snprintf (ep, sizeof ep, "tcp://%s:%d%s%s", name, s_port (router), curve ? "#" : "",
                      curve ? name : "");
            assert_non_null (s_env (other, key));
            assert_string_equal (s_env (other, key), ep);
            assert_string_equal (s_env (other, "GL_BUS_TOKENS"), s_env (svc, "GL_BUS_TOKENS"));
        }
        if (curve) {
            snprintf (want, sizeof want, "/%s.cert_secret", name);
            assert_non_null (s_env (svc, "GL_BUS_CURVE_CERT"));
            assert_non_null (strstr (s_env (svc, "GL_BUS_CURVE_CERT"), want));
            assert_non_null (s_env (svc, "GL_BUS_CURVE_ALLOW"));
        }
        else
            assert_null (s_env (svc, "GL_BUS_CURVE_CERT"));
    }
    for (int i = 0; i < n; i++)
        free (svcs[i].text);
    free (svcs);
    free (out);
}

static void
test_compose_config (void **state)
{
    (void) state;
    if (!s_have_compose)
        skip ();
    s_check_wiring ("-f docker/docker-compose.yml", false, true);
    s_check_wiring ("-f docker/docker-compose.yml -f docker/docker-compose.curve.yml", true, false);

    //  A required secret missing from the env file stops `config` with its name.
    char cmd[1024], *out = NULL;
    char env[] = "/tmp/gl-compose-env-XXXXXX";
    int fd = mkstemp (env);
    assert_true (fd >= 0);
    close (fd);
    snprintf (cmd, sizeof cmd, "grep -v '^GL_BUS_TOKENS=' docker/.env.example > %s", env);
    assert_int_equal (s_run (cmd, NULL), 0);
    snprintf (cmd, sizeof cmd, "docker-compose -f docker/docker-compose.yml --env-file %s config -q",
              env);
    assert_int_not_equal (s_run (cmd, &out), 0);
    assert_non_null (strstr (out, "GL_BUS_TOKENS"));
    free (out);
    unlink (env);
}

//  --------------------------------------------------------------------------------------------
//  nginx.conf, checked by nginx itself (when nginx and openssl are installed)

static void
test_nginx_conf (void **state)
{
    (void) state;
    if (s_run ("command -v nginx && command -v openssl", NULL) != 0)
        skip ();
    char dir[] = "/tmp/gl-nginx-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char cmd[2048], *out = NULL;
    //  The same file, with the upstream and the certificate folder of this machine.
    snprintf (cmd, sizeof cmd,
              "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test "
              "-keyout %s/privkey.pem -out %s/fullchain.pem >/dev/null 2>&1 && "
              "sed -e 's|server intake:8080|server 127.0.0.1:8080|' -e 's|/etc/nginx/tls|%s|' "
              "docker/nginx.conf > %s/nginx.conf && nginx -t -c %s/nginx.conf -e %s/error.log",
              dir, dir, dir, dir, dir, dir);
    int rc = s_run (cmd, &out);
    if (rc != 0)
        fprintf (stderr, "%s\n", out);
    assert_int_equal (rc, 0);
    assert_non_null (strstr (out, "test is successful"));
    free (out);
    //  What intake relies on: the client's address overwritten, TLS only, a redirect.
    snprintf (cmd, sizeof cmd, "cat docker/nginx.conf");
    assert_int_equal (s_run (cmd, &out), 0);
    assert_non_null (strstr (out, "proxy_set_header X-Real-IP $remote_addr;"));
    assert_non_null (strstr (out, "ssl_protocols TLSv1.2 TLSv1.3;"));
    assert_non_null (strstr (out, "return 301 https://"));
    free (out);
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal (s_run (cmd, NULL), 0);
}

//  --------------------------------------------------------------------------------------------
//  Every setting documented or read by the code

typedef struct {
    char *buf;
    size_t len, cap;
} s_text_t;

static void
s_slurp (s_text_t *t, const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return;
    char chunk[65536];
    size_t n;
    while ((n = fread (chunk, 1, sizeof chunk, f)) > 0) {
        if (t->len + n + 2 > t->cap) {
            t->cap = (t->len + n + 2) * 2;
            t->buf = realloc (t->buf, t->cap);
            assert_non_null (t->buf);
        }
        memcpy (t->buf + t->len, chunk, n);
        t->len += n;
    }
    t->buf[t->len++] = '\n';
    t->buf[t->len] = 0;
    fclose (f);
}

static bool
s_suffix (const char *name, const char *suffixes)
{
    const char *dot = strrchr (name, '.');
    if (!dot)
        return false;
    char want[16];
    snprintf (want, sizeof want, "%s,", dot);
    return strstr (suffixes, want) != NULL;
}

//  Read every file under dir (relative to the source tree) whose suffix is listed (".c,.h,").
static void
s_slurp_tree (s_text_t *t, const char *dir, const char *suffixes)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/%s", s_src, dir);
    DIR *d = opendir (path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir (d))) {
        if (e->d_name[0] == '.')
            continue;
        char rel[512];
        if (snprintf (rel, sizeof rel, "%s/%s", dir, e->d_name) >= (int) sizeof rel)
            continue;
        snprintf (path, sizeof path, "%s/%s", s_src, rel);
        struct stat st;
        if (stat (path, &st) != 0)
            continue;
        if (S_ISDIR (st.st_mode))
            s_slurp_tree (t, rel, suffixes);
        else if (s_suffix (e->d_name, suffixes))
            s_slurp (t, path);
    }
    closedir (d);
}

//  A key is known when it appears whole, or as a documented family: "GL_ENDPOINT_<NAME>".
static bool
s_known (const char *hay, const char *key)
{
    if (strstr (hay, key))
        return true;
    for (size_t i = 3; key[i]; i++)
        if (key[i] == '_') {
            char family[80];
            snprintf (family, sizeof family, "%.*s<", (int) i + 1, key);
            if (strstr (hay, family))
                return true;
        }
    return false;
}

static void
test_settings_documented (void **state)
{
    (void) state;
    s_text_t hay = { 0 };
    char path[1024];
    snprintf (path, sizeof path, "%s/docs/operations.md", s_src);
    s_slurp (&hay, path);
    s_slurp_tree (&hay, "docs/operations", ".md,");
    s_slurp_tree (&hay, "libshared", ".c,.h,");
    s_slurp_tree (&hay, "services", ".c,.h,");
    s_slurp_tree (&hay, "tools", ".c,");
    s_slurp_tree (&hay, "docker/redis", ".sh,");
    assert_non_null (hay.buf);

    //  Keys given in the compose files' environment mappings: "<spaces>GL_...: value".
    const char *files[] = { "docker/docker-compose.yml", "docker/docker-compose.curve.yml" };
    int checked = 0, unknown = 0;
    for (int f = 0; f < 2; f++) {
        s_text_t compose = { 0 };
        snprintf (path, sizeof path, "%s/%s", s_src, files[f]);
        s_slurp (&compose, path);
        assert_non_null (compose.buf);
        for (char *line = strtok (compose.buf, "\n"); line; line = strtok (NULL, "\n")) {
            char *p = line + strspn (line, " ");
            size_t n = strspn (p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
            if (p == line || n < 4 || strncmp (p, "GL_", 3) != 0 || p[n] != ':')
                continue;
            char key[80];
            snprintf (key, sizeof key, "%.*s", (int) n, p);
            checked++;
            if (!s_known (hay.buf, key)) {
                fprintf (stderr, "%s: %s is neither documented nor read by the code\n",
                         files[f], key);
                unknown++;
            }
        }
        free (compose.buf);
    }
    free (hay.buf);
    assert_true (checked > 20);
    assert_int_equal (unknown, 0);
}

//  --------------------------------------------------------------------------------------------
//  The Redis ACL, on a real redis-server

static const char *s_passwords[][2] = {
    { "GL_REDIS_ADMIN_PASSWORD", "admin-pw" },        { "GL_REDIS_PASSWORD_INTAKE", "intake-pw" },
    { "GL_REDIS_PASSWORD_SCHEDULER", "scheduler-pw" }, { "GL_REDIS_PASSWORD_REFERRAL", "referral-pw" },
    { "GL_REDIS_PASSWORD_REPORTING", "reporting-pw" }, { "GL_REDIS_PASSWORD_NOTIFIER", "notifier-pw" },
};

static gl_redis_t *
s_as (int port, const char *user, const char *password, const char *reconnect_ms)
{
    gl_config_t *config = gl_config_new ();
    char p[16];
    snprintf (p, sizeof p, "%d", port);
    gl_config_set (config, "GL_REDIS_HOST", "127.0.0.1");
    gl_config_set (config, "GL_REDIS_PORT", p);
    gl_config_set (config, "GL_REDIS_USER", user);
    gl_config_set (config, "GL_REDIS_PASSWORD", password);
    gl_config_set (config, "GL_REDIS_RECONNECT_MS", reconnect_ms);
    gl_redis_t *redis = gl_redis_new_from_config (config);
    gl_config_destroy (&config);
    assert_non_null (redis);
    return redis;
}

//  The reply to one command: "OK", "NOPERM...", the integer or the string.
static void
s_expect (gl_redis_t *redis, const char *prefix, const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (cmd, sizeof cmd, fmt, ap);
    va_end (ap);
    //  Split on spaces (no argument here holds one).
    const char *argv[16];
    char copy[512];
    snprintf (copy, sizeof copy, "%s", cmd);
    int argc = 0;
    for (char *tok = strtok (copy, " "); tok && argc < 16; tok = strtok (NULL, " "))
        argv[argc++] = tok;
    redisReply *r = gl_redis_cmdargv (redis, argc, argv, NULL);
    assert_non_null (r);
    char got[256] = "";
    if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS
        || r->type == REDIS_REPLY_STRING)
        snprintf (got, sizeof got, "%s", r->str);
    else if (r->type == REDIS_REPLY_INTEGER)
        snprintf (got, sizeof got, "%lld", r->integer);
    else if (r->type == REDIS_REPLY_ARRAY)
        snprintf (got, sizeof got, "array");
    freeReplyObject (r);
    if (strncmp (got, prefix, strlen (prefix)) != 0)
        fail_msg ("%s: expected %s..., got %s", cmd, prefix, got);
}

typedef struct {
    int count;
} s_seen_t;

static int
s_apply (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    (void) ev;
    s_seen_t *seen = arg;
    seen->count++;
    gl_tx_cmdf (tx, "INCR scheduler:{scheduler}:seen");
    return 0;
}

static pid_t s_redis_pid;          //  the ACL test's redis-server, stopped by the teardown
static char s_acl_dir[] = "/tmp/gl-acl-XXXXXX";

static void
test_redis_acl (void **state)
{
    (void) state;
    char *dir = s_acl_dir;
    assert_non_null (mkdtemp (dir));
    for (size_t i = 0; i < sizeof s_passwords / sizeof s_passwords[0]; i++)
        setenv (s_passwords[i][0], s_passwords[i][1], 1);
    char cmd[1024], *out = NULL;
    snprintf (cmd, sizeof cmd, "sh docker/redis/acl.sh > %s/users.acl", dir);
    assert_int_equal (s_run (cmd, NULL), 0);
    //  Passwords appear only as digests.
    snprintf (cmd, sizeof cmd, "cat %s/users.acl", dir);
    assert_int_equal (s_run (cmd, &out), 0);
    assert_null (strstr (out, "intake-pw"));
    assert_non_null (strstr (out, "user default off"));
    free (out);
    //  A password missing from the environment stops the rendering.
    unsetenv ("GL_REDIS_PASSWORD_NOTIFIER");
    assert_int_not_equal (s_run ("sh docker/redis/acl.sh", &out), 0);
    assert_non_null (strstr (out, "GL_REDIS_PASSWORD_NOTIFIER is not set"));
    free (out);

    int port = gl_test_free_port ();
    char portstr[16], aclfile[300];
    snprintf (portstr, sizeof portstr, "%d", port);
    snprintf (aclfile, sizeof aclfile, "%s/users.acl", dir);
    char *argv[] = { "redis-server", "--port", portstr, "--bind", "127.0.0.1", "--dir", dir,
                     "--aclfile", aclfile, "--appendonly", "yes", "--save", "", NULL };
    char logpath[300];
    snprintf (logpath, sizeof logpath, "%s/redis.log", dir);
    s_redis_pid = gl_test_spawn ("redis-server", argv, NULL, logpath);
    assert_true (s_redis_pid > 0);

    gl_redis_t *admin = s_as (port, "admin", "admin-pw", "10000");
    s_expect (admin, "PONG", "PING");
    gl_redis_t *intake = s_as (port, "intake", "intake-pw", "2000");
    gl_redis_t *sched = s_as (port, "scheduler", "scheduler-pw", "2000");
    gl_redis_t *notif = s_as (port, "notifier", "notifier-pw", "2000");

    //  The default user is off; a wrong password is refused.
    gl_redis_t *anon = gl_redis_new ("127.0.0.1", port, NULL, 2000, 0);
    s_expect (anon, "NOAUTH", "GET x");
    gl_redis_destroy (&anon);
    gl_redis_t *wrong = s_as (port, "intake", "scheduler-pw", "0");
    redisReply *r = gl_redis_cmd (wrong, "PING");
    assert_null (r);
    gl_redis_destroy (&wrong);

    //  The bus as it runs: intake publishes under its lease, scheduler applies intake's events
    //  exactly once into its own keys, with its cursor and lease.
    char err[256];
    gl_pub_t *pub = gl_pub_new (intake, "intake-1", NULL, err, sizeof err);
    if (!pub)
        fail_msg ("intake cannot publish: %s", err);
    for (int i = 0; i < 10; i++) {
        gl_event_t *ev = gl_event_new ("acl.checked");
        assert_int_equal (gl_pub_send (pub, ev, GL_PUB_CRITICAL), 0);
        gl_event_destroy (&ev);
    }
    assert_int_equal (gl_pub_tick (pub) > 0, 1);
    gl_sub_opts_t so;
    gl_sub_opts_default (&so);
    so.poll_ms = 50;
    s_seen_t seen = { 0 };
    gl_sub_t *sub = gl_sub_new (sched, "scheduler", &so, s_apply, &seen, err, sizeof err);
    if (!sub)
        fail_msg ("scheduler cannot subscribe: %s", err);
    while (seen.count < 10 || gl_sub_stats (sub).applied < 10)
        gl_sub_run_once (sub, 20);
    s_expect (admin, "10", "GET scheduler:{scheduler}:seen");
    //  ... and may trim intake's log? No: reading is all it may do there.
    s_expect (sched, "array", "XRANGE gl:log:{intake-1} - +");
    s_expect (sched, "NOPERM", "XADD gl:log:{intake-1} * e x");
    s_expect (sched, "NOPERM", "XTRIM gl:log:{intake-1} MAXLEN 0");
    s_expect (sched, "NOPERM", "HSET gl:src:{intake-1} owner me");
    //  A scheduler process cannot publish under intake's name.
    gl_pub_t *fake = gl_pub_new (sched, "intake-2", NULL, err, sizeof err);
    assert_null (fake);

    //  Notifier's work queue: add, claim, complete with an effect on its own keys.
    gl_wq_t *wq = gl_wq_new (notif, "notifier", "notifier-1", NULL);
    assert_non_null (wq);
    assert_int_equal (gl_wq_add (wq, "k1", "payload", 7, NULL), 0);
    gl_wq_item_t *items[4];
    int count = 0;
    while (count == 0)
        assert_int_equal (gl_wq_claim (wq, 4, 100, items, &count), 0);
    const char *effect[] = { "INCR", "notifier:{notifier}:sent" };
    gl_wq_cmd_t cmds[] = { { 2, effect, NULL } };
    assert_int_equal (gl_wq_complete (wq, items[0], 1, cmds), 0);
    gl_wq_item_free (&items[0]);
    s_expect (admin, "1", "GET notifier:{notifier}:sent");
    gl_wq_t *stolen = gl_wq_new (sched, "notifier", "scheduler-1", NULL);
    if (stolen)
        assert_int_equal (gl_wq_add (stolen, "k2", "x", 1, NULL), -1);
    gl_wq_destroy (&stolen);

    //  Another service's keys, and the dangerous and administrative commands, are refused.
    s_expect (sched, "OK", "SET scheduler:{scheduler}:x 1");
    s_expect (sched, "NOPERM", "SET intake:{intake}:x 1");
    s_expect (sched, "NOPERM", "GET intake:{intake}:x");
    s_expect (intake, "NOPERM", "DEL scheduler:{scheduler}:x");
    s_expect (sched, "NOPERM", "FLUSHALL");
    s_expect (sched, "NOPERM", "KEYS *");
    s_expect (sched, "NOPERM", "CONFIG GET dir");
    s_expect (sched, "NOPERM", "ACL LIST");
    s_expect (sched, "NOPERM", "SHUTDOWN");
    s_expect (sched, "NOPERM", "SCRIPT FLUSH");
    s_expect (sched, "NOPERM", "PUBLISH x y");
    s_expect (sched, "ERR The user executing the script can't access",
              "EVAL return(redis.call('SET','intake:{intake}:y','1')) 0");
    s_expect (admin, "OK", "SET intake:{intake}:x 1");

    gl_wq_destroy (&wq);
    gl_sub_destroy (&sub);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&notif);
    gl_redis_destroy (&sched);
    gl_redis_destroy (&intake);
    gl_redis_destroy (&admin);
}

static int
s_teardown (void **state)
{
    (void) state;
    if (s_redis_pid > 0)
        gl_test_stop (s_redis_pid, 2000);
    if (strstr (s_acl_dir, "XXXXXX") == NULL) {
        char cmd[300];
        snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_acl_dir);
        if (system (cmd) != 0)
            fprintf (stderr, "could not remove %s\n", s_acl_dir);
    }
    return 0;
}

int
main (void)
{
    gl_log_init ("test_compose", GL_LOG_ERROR, false);
    s_src = getenv ("GL_SOURCE_DIR");
    if (!s_src) {
        fprintf (stderr, "GL_SOURCE_DIR is not set (run under ctest)\n");
        return 1;
    }
    s_have_compose = s_run ("command -v docker-compose", NULL) == 0;
    if (!s_have_compose)
        fprintf (stderr, "docker-compose is not installed: the compose checks are skipped\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_compose_config),
        cmocka_unit_test (test_nginx_conf),
        cmocka_unit_test (test_settings_documented),
        cmocka_unit_test (test_redis_acl),
    };
    int rc = cmocka_run_group_tests (tests, NULL, s_teardown);
    return rc == 0 && !s_have_compose ? 77 : rc;
}
