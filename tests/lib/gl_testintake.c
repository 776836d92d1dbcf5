/*  gl_testintake — see gl_testintake.h. */
#include "gl_testintake.h"
#include "gl/gl_clock.h"
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

void
gl_testintake_clock (gl_testintake_t *self, int64_t ms)
{
    char tmp[300];
    snprintf (tmp, sizeof tmp, "%s.tmp", self->clock_path);
    FILE *f = fopen (tmp, "w");
    if (!f)
        return;
    fprintf (f, "%" PRId64 "\n", ms);
    fclose (f);
    rename (tmp, self->clock_path);
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
    json_decref (json);
    gl_test_http_free (&resp);
    return rc;
}

int
gl_testintake_user (gl_testintake_t *self, const char *username, const char *roles,
                    const char *units, char *token, char *id)
{
    char body[1024];
    snprintf (body, sizeof body,
              "{\"username\":\"%s\",\"password\":\"pw-%s-123456\",\"roles\":%s,\"units\":%s}",
              username, username, roles, units ? units : "[]");
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
    char *env[GL_TESTINTAKE_ENV_MAX + 1];
    for (int i = 0; i < self->envc; i++)
        env[i] = self->env[i];
    env[self->envc] = NULL;
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
    if (!ready || s_login (self, "admin", GL_TESTINTAKE_ADMIN_PASS, self->admin_token,
                           self->admin_id)
                      != 0) {
        fprintf (stderr, "gl-intake did not come up; its log is %s\n", self->log_path);
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
    unlink (self->log_path);
    unlink (self->clock_path);
    char tmp[300];
    snprintf (tmp, sizeof tmp, "%s.tmp", self->clock_path);
    unlink (tmp);
    free (self);
    *self_p = NULL;
}
