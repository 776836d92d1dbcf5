/*  gl_testintake — see gl_testintake.h. */
#include "gl_testintake.h"
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_WAIT_MS 60000

static void
s_env (gl_testintake_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_env (gl_testintake_t *self, const char *fmt, ...)
{
    if (self->envc == GL_TESTINTAKE_ENV_MAX)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->env[self->envc++], sizeof self->env[0], fmt, ap);
    va_end (ap);
}

int
gl_testintake_clock (gl_testintake_t *self, int64_t ms)
{
    char tmp[300];
    snprintf (tmp, sizeof tmp, "%s.tmp", self->clock_path);
    FILE *f = fopen (tmp, "w");
    if (!f)
        return -1;
    fprintf (f, "%" PRId64 "\n", ms);
    if (fclose (f) != 0)
        return -1;
    return rename (tmp, self->clock_path) == 0 ? 0 : -1;
}

char *
gl_testintake_log (gl_testintake_t *self)
{
    FILE *f = fopen (self->log_path, "r");
    if (!f)
        return NULL;
    size_t cap = 65536, len = 0;
    char *text = malloc (cap + 1);
    while (text) {
        len += fread (text + len, 1, cap - len, f);
        if (len < cap)
            break;
        cap *= 2;
        char *more = realloc (text, cap + 1);
        if (!more)
            free (text);
        text = more;
    }
    fclose (f);
    if (text)
        text[len] = 0;
    return text;
}

void
gl_testintake_log_tail (gl_testintake_t *self)
{
    FILE *f = fopen (self->log_path, "r");
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

int
gl_testintake_expect (gl_testintake_t *self, const gl_test_resp_t *resp, int status)
{
    if (resp->status == status)
        return 0;
    fprintf (stderr, "expected %d, got: %s\n", status, resp->raw ? resp->raw : "(nothing)");
    gl_testintake_log_tail (self);
    return -1;
}

int
gl_testintake_expect_error (gl_testintake_t *self, const gl_test_resp_t *resp, int status,
                            const char *code, const char *field)
{
    if (gl_testintake_expect (self, resp, status) != 0)
        return -1;
    json_t *json = gl_test_json (resp);
    json_t *error = json_object_get (json, "error");
    const char *got = json_string_value (json_object_get (error, "code"));
    json_t *got_field = json_object_get (error, "field");
    bool ok = json && got && strcmp (got, code) == 0
              && (field ? json_is_string (got_field)
                              && strcmp (json_string_value (got_field), field) == 0
                        : json_is_null (got_field));
    if (!ok)
        fprintf (stderr, "expected %s/%s, got: %s\n", code, field ? field : "null",
                 resp->raw ? resp->raw : "(nothing)");
    json_decref (json);
    return ok ? 0 : -1;
}

int
gl_testintake_secret (gl_testintake_t *self, const char *text)
{
    if (self->secretc == GL_TESTINTAKE_SECRETS)
        return -1;
    snprintf (self->secrets[self->secretc++], sizeof self->secrets[0], "%s", text);
    return 0;
}

typedef struct {
    gl_testintake_t *self;
    const char *type;
    json_t *events;
    bool bad;
} s_collect_t;

static bool
s_contains (const char *hay, size_t len, const char *needle)
{
    size_t n = strlen (needle);
    for (size_t i = 0; n && i + n <= len; i++)
        if (memcmp (hay + i, needle, n) == 0)
            return true;
    return false;
}

static int
s_collect (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    s_collect_t *c = arg;
    for (int i = 0; i < c->self->secretc; i++)
        if (s_contains (bytes, len, c->self->secrets[i])) {
            fprintf (stderr, "free text or personal data in event seq %" PRIu64 ": %s\n", seq,
                     c->self->secrets[i]);
            c->bad = true;
        }
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    if (!ev) {
        fprintf (stderr, "event seq %" PRIu64 " does not decode\n", seq);
        c->bad = true;
        return 0;
    }
    if (!c->type || strcmp (ev->type, c->type) == 0)
        json_array_append_new (c->events,
                               json_pack ("{s:s, s:s, s:s, s:I, s:I, s:O}", "type", ev->type, "id",
                                          ev->id, "corr", ev->corr, "seq", (json_int_t) ev->seq,
                                          "ts", (json_int_t) ev->ts, "data", ev->data));
    gl_event_destroy (&ev);
    return 0;
}

json_t *
gl_testintake_events (gl_testintake_t *self, gl_redis_t *redis, const char *type,
                      const char *corr)
{
    s_collect_t c = { self, type, json_array (), false };
    int64_t n = gl_log_read (redis, "intake-1", 1, 0, 1000000, s_collect, &c, NULL);
    if (n < 0 || c.bad) {
        if (n < 0)
            fprintf (stderr, "intake-1's log could not be read\n");
        json_decref (c.events);
        return NULL;
    }
    if (!corr)
        return c.events;
    json_t *out = json_array ();
    size_t i;
    json_t *ev;
    json_array_foreach (c.events, i, ev) {
        const char *ev_corr = json_string_value (json_object_get (ev, "corr"));
        if (ev_corr && strcmp (ev_corr, corr) == 0)
            json_array_append (out, ev);
    }
    json_decref (c.events);
    return out;
}

json_t *
gl_testintake_wait_events (gl_testintake_t *self, gl_redis_t *redis, const char *type,
                           const char *corr, size_t n)
{
    int64_t deadline = gl_mono_ms () + S_WAIT_MS;
    json_t *evs = gl_testintake_events (self, redis, type, corr);
    while (evs && json_array_size (evs) < n && gl_mono_ms () < deadline) {
        json_decref (evs);
        gl_sleep_ms (100);
        evs = gl_testintake_events (self, redis, type, corr);
    }
    return evs;
}

gl_test_resp_t
gl_testintake_call (gl_testintake_t *self, const char *method, const char *path,
                    const char *token, const char *extra, const char *body)
{
    return gl_testintake_request (self->http_port, method, path, token, extra, body);
}

gl_test_resp_t
gl_testintake_request (int http_port, const char *method, const char *path, const char *token,
                       const char *extra, const char *body)
{
    size_t cap = 8192 + strlen (path) + (extra ? strlen (extra) : 0) + (body ? strlen (body) : 0);
    char *request = malloc (cap);
    if (!request)
        return (gl_test_resp_t) { 0 };
    int n = snprintf (request, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                      method, path);
    if (token)
        n += snprintf (request + n, cap - (size_t) n, "Authorization: Bearer %s\r\n", token);
    if (extra)
        n += snprintf (request + n, cap - (size_t) n, "%s", extra);
    if (body)
        n += snprintf (request + n, cap - (size_t) n,
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen (body), body);
    else
        n += snprintf (request + n, cap - (size_t) n, "\r\n");
    gl_test_resp_t resp = gl_test_http_raw (http_port, request, (size_t) n);
    free (request);
    return resp;
}

json_t *
gl_test_json (const gl_test_resp_t *resp)
{
    if (!resp->body)
        return NULL;
    return json_loadb (resp->body, resp->body_len, 0, NULL);
}

const char *
gl_test_str (const json_t *obj, const char *name)
{
    return json_string_value (json_object_get (obj, name));
}

int64_t
gl_test_int (const json_t *obj, const char *name)
{
    return (int64_t) json_integer_value (json_object_get (obj, name));
}

bool
gl_test_has_id (const json_t *page, const char *id)
{
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get (page, "items"), i, item) {
        const char *item_id = gl_test_str (item, "id");
        if (item_id && strcmp (item_id, id) == 0)
            return true;
    }
    return false;
}

static const char *
s_error_part (const gl_test_resp_t *resp, const char *part)
{
    static char buf[256];
    buf[0] = 0;
    json_t *json = gl_test_json (resp);
    const char *v = json_string_value (json_object_get (json_object_get (json, "error"), part));
    snprintf (buf, sizeof buf, "%s", v ? v : "");
    json_decref (json);
    return buf;
}

const char *
gl_test_error_code (const gl_test_resp_t *resp)
{
    return s_error_part (resp, "code");
}

const char *
gl_test_error_field (const gl_test_resp_t *resp)
{
    return s_error_part (resp, "field");
}

static int
s_login (gl_testintake_t *self, const char *username, const char *password, char *token,
         char *id)
{
    char body[512];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", username, password);
    gl_test_resp_t resp = gl_testintake_call (self, "POST", "/api/v1/auth/login", NULL, NULL, body);
    int rc = -1;
    json_t *json = resp.status == 200 ? gl_test_json (&resp) : NULL;
    const char *t = json_string_value (json_object_get (json, "token"));
    const char *u = json_string_value (json_object_get (json_object_get (json, "user"), "id"));
    if (t && u) {
        snprintf (token, 128, "%s", t);
        snprintf (id, GL_ID_LEN + 1, "%s", u);
        rc = 0;
    }
    else
        fprintf (stderr, "login of %s: %s\n", username, resp.raw ? resp.raw : "(nothing)");
    json_decref (json);
    gl_test_http_free (&resp);
    return rc;
}

static int
s_user (gl_testintake_t *self, const char *username, const char *roles, const char *units,
        const char *more, char *token, char *id)
{
    char body[1024];
    snprintf (body, sizeof body,
              "{\"username\":\"%s\",\"password\":\"pw-%s-123456\",\"roles\":%s,\"units\":%s%s}",
              username, username, roles, units ? units : "[]", more);
    gl_test_resp_t resp
        = gl_testintake_call (self, "POST", "/api/v1/users", self->admin_token, NULL, body);
    int status = resp.status;
    if (status != 201)
        fprintf (stderr, "gl_testintake_user %s: %s\n", username, resp.raw);
    gl_test_http_free (&resp);
    if (status != 201)
        return -1;
    char password[256];
    snprintf (password, sizeof password, "pw-%s-123456", username);
    return s_login (self, username, password, token, id);
}

int
gl_testintake_user (gl_testintake_t *self, const char *username, const char *roles,
                    const char *units, char *token, char *id)
{
    return s_user (self, username, roles, units, "", token, id);
}

int
gl_testintake_staff (gl_testintake_t *self, const char *username, const char *roles,
                     const char *units, char *token, char *id)
{
    char more[300];
    snprintf (more, sizeof more, ",\"languages\":[\"ar\",\"en\"],\"display_name\":\"Test %s\"",
              username);
    return s_user (self, username, roles, units, more, token, id);
}

int
gl_testintake_login (gl_testintake_t *self, const char *username, char *token, char *id)
{
    char password[256];
    if (strcmp (username, "admin") == 0)
        snprintf (password, sizeof password, "%s", GL_TESTINTAKE_ADMIN_PASS);
    else
        snprintf (password, sizeof password, "pw-%s-123456", username);
    return s_login (self, username, password, token, id);
}

int
gl_testintake_client (gl_testintake_t *self, const char *name, char *token)
{
    char body[256];
    snprintf (body, sizeof body, "{\"name\":\"%s\"}", name);
    gl_test_resp_t resp
        = gl_testintake_call (self, "POST", "/api/v1/clients", self->admin_token, NULL, body);
    json_t *json = resp.status == 201 ? gl_test_json (&resp) : NULL;
    const char *t = json_string_value (json_object_get (json, "token"));
    int rc = t ? 0 : -1;
    if (t)
        snprintf (token, 128, "%s", t);
    json_decref (json);
    gl_test_http_free (&resp);
    return rc;
}

//  Spawn gl-intake with self->env plus extra (NULL-terminated, may be NULL) and wait for /ready.
static int
s_spawn (gl_testintake_t *self, const char *const *extra)
{
    char *env[2 * GL_TESTINTAKE_ENV_MAX + 1];
    int n = 0;
    for (int i = 0; i < self->envc; i++)
        env[n++] = self->env[i];
    for (int i = 0; extra && extra[i] && n < 2 * GL_TESTINTAKE_ENV_MAX; i++)
        env[n++] = (char *) extra[i];
    env[n] = NULL;
    char *argv[] = { "gl-intake", NULL };
    self->pid = gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, env,
                               self->log_path);
    int64_t deadline = gl_mono_ms () + S_WAIT_MS;
    bool ready = false;
    while (self->pid > 0 && !ready && gl_mono_ms () < deadline) {
        gl_test_resp_t resp = gl_testintake_call (self, "GET", "/ready", NULL, NULL, NULL);
        ready = resp.status == 200;
        gl_test_http_free (&resp);
        if (!ready)
            gl_sleep_ms (100);
    }
    return ready ? 0 : -1;
}

int
gl_testintake_restart (gl_testintake_t *self, const char *const *extra)
{
    if (self->pid > 0)
        gl_test_stop (self->pid, 10000);
    self->pid = -1;
    self->health_port = gl_test_free_port ();
    for (int i = 0; i < self->envc; i++)
        if (strncmp (self->env[i], "GL_HEALTH_PORT=", 15) == 0)
            snprintf (self->env[i], sizeof self->env[0], "GL_HEALTH_PORT=%d", self->health_port);
    if (s_spawn (self, extra) != 0) {
        fprintf (stderr, "gl-intake did not come up again; its log is %s\n", self->log_path);
        gl_testintake_log_tail (self);
        return -1;
    }
    return 0;
}

gl_testintake_t *
gl_testintake_start (gl_testredis_t *redis, const char *const *extra)
{
    gl_testintake_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->http_port = gl_test_free_port ();
    self->router_port = gl_test_free_port ();
    self->pub_port = gl_test_free_port ();
    self->health_port = gl_test_free_port ();
    snprintf (self->log_path, sizeof self->log_path, "/tmp/gl-testintake-%d.log", (int) getpid ());
    snprintf (self->clock_path, sizeof self->clock_path, "/tmp/gl-testintake-%d.clock",
              (int) getpid ());
    unlink (self->log_path);
    gl_testintake_clock (self, GL_TESTINTAKE_START_MS);
    s_env (self, "GL_REDIS_HOST=127.0.0.1");
    s_env (self, "GL_REDIS_PORT=%d", redis->port);
    s_env (self, "GL_HTTP_PORT=%d", self->http_port);
    s_env (self, "GL_HEALTH_PORT=%d", self->health_port);
    s_env (self, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", self->pub_port);
    s_env (self, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", self->router_port);
    s_env (self, "GL_SOURCE=intake-1");
    s_env (self, "GL_LOG_LEVEL=debug");
    s_env (self, "GL_CLOCK_FILE=%s", self->clock_path);
    s_env (self, "GL_INTAKE_BOOTSTRAP_ADMIN=admin:" GL_TESTINTAKE_ADMIN_PASS);
    s_env (self, "GL_INTAKE_ARGON2_OPSLIMIT=1");
    s_env (self, "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    for (int i = 0; extra && extra[i]; i++)
        s_env (self, "%s", extra[i]);
    bool ready = s_spawn (self, NULL) == 0;
    if (!ready || s_login (self, "admin", GL_TESTINTAKE_ADMIN_PASS, self->admin_token,
                           self->admin_id)
                      != 0) {
        fprintf (stderr, "gl-intake did not come up; its log is %s\n", self->log_path);
        gl_testintake_log_tail (self);
        if (self->pid > 0)
            gl_test_stop (self->pid, 5000);
        free (self);
        return NULL;
    }
    return self;
}

void
gl_testintake_destroy (gl_testintake_t **self_p)
{
    gl_testintake_t *self = *self_p;
    if (!self)
        return;
    if (self->pid > 0)
        gl_test_stop (self->pid, 10000);
    if (!getenv ("GL_TEST_KEEP_LOG"))
        unlink (self->log_path);
    unlink (self->clock_path);
    char tmp[300];
    snprintf (tmp, sizeof tmp, "%s.tmp", self->clock_path);
    unlink (tmp);
    free (self);
    *self_p = NULL;
}
