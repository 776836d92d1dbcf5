/*  gl_redis — see gl_redis.h. */
#include "gl/gl_redis.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _gl_redis_t {
    redisContext *ctx;
    char host[256];
    int port;
    char *user;
    char *password;
    int timeout_ms;
    int reconnect_ms;
    uint64_t connects;
    char errstr[256];
};

gl_redis_t *
gl_redis_new (const char *host, int port, const char *password, int timeout_ms, int reconnect_ms)
{
    assert (host);
    gl_redis_t *self = calloc (1, sizeof (gl_redis_t));
    if (!self)
        return NULL;
    snprintf (self->host, sizeof self->host, "%s", host);
    self->port = port;
    self->password = password && *password ? strdup (password) : NULL;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    self->reconnect_ms = reconnect_ms >= 0 ? reconnect_ms : 10000;
    return self;
}

gl_redis_t *
gl_redis_new_from_config (gl_config_t *config)
{
    gl_redis_t *self = gl_redis_new (
        gl_config_str (config, "GL_REDIS_HOST", "127.0.0.1"),
        (int) gl_config_int (config, "GL_REDIS_PORT", 6379, 1, 65535),
        gl_config_str (config, "GL_REDIS_PASSWORD", NULL),
        (int) gl_config_int (config, "GL_REDIS_TIMEOUT_MS", 2000, 1, 600000),
        (int) gl_config_int (config, "GL_REDIS_RECONNECT_MS", 10000, 0, 3600000));
    const char *user = gl_config_str (config, "GL_REDIS_USER", NULL);
    if (self && user && *user)
        self->user = strdup (user);
    return self;
}

void
gl_redis_destroy (gl_redis_t **self_p)
{
    assert (self_p);
    gl_redis_t *self = *self_p;
    if (!self)
        return;
    if (self->ctx)
        redisFree (self->ctx);
    free (self->user);
    if (self->password) {
        sodium_memzero (self->password, strlen (self->password));
        free (self->password);
    }
    free (self);
    *self_p = NULL;
}

static void
s_drop (gl_redis_t *self)
{
    if (self->ctx) {
        if (self->ctx->err)
            snprintf (self->errstr, sizeof self->errstr, "%s", self->ctx->errstr);
        redisFree (self->ctx);
        self->ctx = NULL;
    }
}

//  One connection attempt: connect, set the timeout, authenticate.
static int
s_connect_once (gl_redis_t *self)
{
    struct timeval tv = { .tv_sec = self->timeout_ms / 1000,
                          .tv_usec = (self->timeout_ms % 1000) * 1000 };
    redisContext *ctx = redisConnectWithTimeout (self->host, self->port, tv);
    if (!ctx)
        return -1;
    if (ctx->err) {
        snprintf (self->errstr, sizeof self->errstr, "%s", ctx->errstr);
        redisFree (ctx);
        return -1;
    }
    redisSetTimeout (ctx, tv);
    if (self->password) {
        redisReply *r = self->user ? redisCommand (ctx, "AUTH %s %s", self->user, self->password)
                                   : redisCommand (ctx, "AUTH %s", self->password);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (r && !ok)
            snprintf (self->errstr, sizeof self->errstr, "AUTH: %s", r->str);
        if (r)
            freeReplyObject (r);
        if (!ok) {
            redisFree (ctx);
            return -1;
        }
    }
    self->ctx = ctx;
    self->connects++;
    if (self->connects > 1)
        gl_info ("redis: reconnected to %s:%d", self->host, self->port);
    return 0;
}

//  Make sure a connection exists, retrying with backoff within the reconnect budget.
static int
s_ensure (gl_redis_t *self)
{
    if (self->ctx)
        return 0;
    int64_t deadline = gl_mono_ms () + self->reconnect_ms;
    int64_t backoff = 50;
    bool warned = false;
    while (true) {
        if (s_connect_once (self) == 0)
            return 0;
        if (!warned && self->connects > 0) {
            gl_warn ("redis: connection to %s:%d lost (%s), retrying", self->host, self->port,
                     self->errstr);
            warned = true;
        }
        int64_t now = gl_mono_ms ();
        if (now >= deadline)
            return -1;
        int64_t wait = backoff < deadline - now ? backoff : deadline - now;
        gl_sleep_ms (wait);
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
}

static redisReply *
s_check (gl_redis_t *self, void *reply)
{
    if (!reply)
        s_drop (self);
    return reply;
}

//  Redis answers LOADING while it replays its AOF after a restart, BUSY while a script runs too
//  long, and MASTERDOWN on a replica that lost its primary: the command did not run, so it is
//  always safe to send it again. We wait (backoff) within the reconnect budget.
static bool
s_transient (const redisReply *r)
{
    return gl_redis_reply_is_error (r, "LOADING") || gl_redis_reply_is_error (r, "BUSY ")
           || gl_redis_reply_is_error (r, "MASTERDOWN") || gl_redis_reply_is_error (r, "TRYAGAIN");
}

typedef struct {
    int64_t deadline;
    int64_t backoff;
    bool warned;
} s_wait_t;

//  After a transient reply: sleep and say whether to try again (frees the reply when so).
static bool
s_wait_again (gl_redis_t *self, s_wait_t *w, redisReply *r)
{
    if (!r || !s_transient (r))
        return false;
    if (w->deadline == 0)
        w->deadline = gl_mono_ms () + self->reconnect_ms;
    int64_t now = gl_mono_ms ();
    if (now >= w->deadline)
        return false;
    if (!w->warned) {
        gl_warn ("redis: %s:%d is not ready (%.40s); waiting", self->host, self->port, r->str);
        w->warned = true;
    }
    freeReplyObject (r);
    int64_t wait = w->backoff < w->deadline - now ? w->backoff : w->deadline - now;
    gl_sleep_ms (wait);
    w->backoff = w->backoff * 2 > 500 ? 500 : w->backoff * 2;
    return true;
}

redisReply *
gl_redis_cmd (gl_redis_t *self, const char *fmt, ...)
{
    assert (self && fmt);
    s_wait_t w = { 0, 20, false };
    redisReply *reply;
    do {
        if (s_ensure (self) != 0)
            return NULL;
        va_list ap;
        va_start (ap, fmt);
        reply = s_check (self, redisvCommand (self->ctx, fmt, ap));
        va_end (ap);
    } while (s_wait_again (self, &w, reply));
    return reply;
}

redisReply *
gl_redis_cmdargv (gl_redis_t *self, int argc, const char **argv, const size_t *argvlen)
{
    assert (self && argv);
    s_wait_t w = { 0, 20, false };
    redisReply *reply;
    do {
        if (s_ensure (self) != 0)
            return NULL;
        reply = s_check (self, redisCommandArgv (self->ctx, argc, argv, argvlen));
    } while (s_wait_again (self, &w, reply));
    return reply;
}

int
gl_redis_append (gl_redis_t *self, const char *fmt, ...)
{
    assert (self && fmt);
    if (s_ensure (self) != 0)
        return -1;
    va_list ap;
    va_start (ap, fmt);
    int rc = redisvAppendCommand (self->ctx, fmt, ap);
    va_end (ap);
    if (rc != REDIS_OK) {
        s_drop (self);
        return -1;
    }
    return 0;
}

int
gl_redis_appendargv (gl_redis_t *self, int argc, const char **argv, const size_t *argvlen)
{
    assert (self && argv);
    if (s_ensure (self) != 0)
        return -1;
    if (redisAppendCommandArgv (self->ctx, argc, argv, argvlen) != REDIS_OK) {
        s_drop (self);
        return -1;
    }
    return 0;
}

redisReply *
gl_redis_reply (gl_redis_t *self)
{
    assert (self);
    if (!self->ctx)
        return NULL;
    void *reply = NULL;
    if (redisGetReply (self->ctx, &reply) != REDIS_OK) {
        s_drop (self);
        return NULL;
    }
    return reply;
}

static int
s_script_load (gl_redis_t *self, gl_redis_script_t *script)
{
    redisReply *r = gl_redis_cmd (self, "SCRIPT LOAD %s", script->source);
    if (!r)
        return -1;
    int rc = -1;
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        memcpy (script->sha, r->str, 41);
        rc = 0;
    }
    else
        gl_error ("redis: SCRIPT LOAD failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject (r);
    return rc;
}

redisReply *
gl_redis_eval (gl_redis_t *self, gl_redis_script_t *script, int nkeys, int argc,
               const char **argv, const size_t *argvlen)
{
    assert (self && script && script->source && argc >= nkeys);
    //  The SHA1 comes from SCRIPT LOAD the first time (libsodium has no SHA1).
    if (script->sha[0] == 0 && s_script_load (self, script) != 0)
        return NULL;
    const char **av = malloc (sizeof (char *) * (size_t) (argc + 3));
    size_t *al = malloc (sizeof (size_t) * (size_t) (argc + 3));
    assert (av && al);
    char nk[16];
    snprintf (nk, sizeof nk, "%d", nkeys);
    av[0] = "EVALSHA";
    al[0] = 7;
    av[2] = nk;
    al[2] = strlen (nk);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = argvlen ? argvlen[i] : strlen (argv[i]);
    }
    redisReply *r = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        av[1] = script->sha;
        al[1] = 40;
        r = gl_redis_cmdargv (self, argc + 3, av, al);
        if (!r || !gl_redis_reply_is_error (r, "NOSCRIPT"))
            break;
        freeReplyObject (r);
        r = NULL;
        if (s_script_load (self, script) != 0)
            break;
    }
    free (av);
    free (al);
    return r;
}

bool
gl_redis_connected (gl_redis_t *self)
{
    return self->ctx != NULL;
}

int
gl_redis_ping (gl_redis_t *self)
{
    redisReply *r = gl_redis_cmd (self, "PING");
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (r)
        freeReplyObject (r);
    return rc;
}

const char *
gl_redis_errstr (gl_redis_t *self)
{
    return self->errstr;
}

uint64_t
gl_redis_connects (gl_redis_t *self)
{
    return self->connects;
}

int
gl_redis_reply_int (const redisReply *reply, long long *out)
{
    if (!reply)
        return -1;
    if (reply->type == REDIS_REPLY_INTEGER) {
        *out = reply->integer;
        return 0;
    }
    if (reply->type == REDIS_REPLY_STRING && reply->len > 0 && reply->len < 24) {
        char buf[24];
        memcpy (buf, reply->str, reply->len);
        buf[reply->len] = 0;
        char *end;
        long long v = strtoll (buf, &end, 10);
        if (*end == 0) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

bool
gl_redis_reply_is_error (const redisReply *reply, const char *prefix)
{
    return reply && reply->type == REDIS_REPLY_ERROR && reply->str
           && strncmp (reply->str, prefix, strlen (prefix)) == 0;
}
