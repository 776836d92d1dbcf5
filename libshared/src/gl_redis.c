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
    //  Sentinel (gl_redis_set_sentinels): the primary's address is asked for at each connect.
    char *sentinels;            //  "host:port,host:port", NULL when not used
    char *master_name;
    char *sentinel_password;
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
    const char *sentinels = gl_config_str (config, "GL_REDIS_SENTINELS", NULL);
    if (self && sentinels && *sentinels
        && gl_redis_set_sentinels (self, sentinels,
                                   gl_config_str (config, "GL_REDIS_MASTER_NAME", "greenline"),
                                   gl_config_str (config, "GL_REDIS_SENTINEL_PASSWORD", NULL))
               != 0) {
        gl_error ("redis: GL_REDIS_SENTINELS must be host:port[,host:port...] and "
                  "GL_REDIS_MASTER_NAME a name");
        gl_redis_destroy (&self);
    }
    return self;
}

int
gl_redis_set_sentinels (gl_redis_t *self, const char *sentinels, const char *master_name,
                        const char *password)
{
    assert (self && sentinels && master_name);
    //  Check the list: host:port entries, ports 1..65535.
    size_t n = strlen (sentinels);
    if (n == 0 || n > 1024 || !*master_name || strlen (master_name) > 128
        || strpbrk (master_name, " \t\r\n"))
        return -1;
    char *copy = strdup (sentinels);
    if (!copy)
        return -1;
    bool ok = true;
    char *save = NULL;
    for (char *e = strtok_r (copy, ",", &save); e && ok; e = strtok_r (NULL, ",", &save)) {
        char *colon = strrchr (e, ':');
        char *end = NULL;
        long port = colon ? strtol (colon + 1, &end, 10) : 0;
        ok = colon && colon > e && end && *end == 0 && port >= 1 && port <= 65535;
    }
    free (copy);
    if (!ok)
        return -1;
    free (self->sentinels);
    free (self->master_name);
    free (self->sentinel_password);
    self->sentinels = strdup (sentinels);
    self->master_name = strdup (master_name);
    self->sentinel_password = password && *password ? strdup (password) : NULL;
    return self->sentinels && self->master_name ? 0 : -1;
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
    free (self->sentinels);
    free (self->master_name);
    if (self->sentinel_password) {
        sodium_memzero (self->sentinel_password, strlen (self->sentinel_password));
        free (self->sentinel_password);
    }
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

//  Ask the sentinels, in order, where the primary is; the first that knows sets host and port.
//  0, or -1 when none answered with an address.
static int
s_ask_sentinels (gl_redis_t *self, struct timeval tv)
{
    char *copy = strdup (self->sentinels);
    if (!copy)
        return -1;
    int rc = -1;
    char *save = NULL;
    for (char *e = strtok_r (copy, ",", &save); e && rc != 0; e = strtok_r (NULL, ",", &save)) {
        char *colon = strrchr (e, ':');
        *colon = 0;
        int port = atoi (colon + 1);
        redisContext *ctx = redisConnectWithTimeout (e, port, tv);
        if (!ctx || ctx->err) {
            if (ctx)
                snprintf (self->errstr, sizeof self->errstr, "sentinel %.100s:%d: %.100s", e, port,
                          ctx->errstr);
            if (ctx)
                redisFree (ctx);
            continue;
        }
        redisSetTimeout (ctx, tv);
        if (self->sentinel_password) {
            redisReply *a = redisCommand (ctx, "AUTH %s", self->sentinel_password);
            if (a)
                freeReplyObject (a);
        }
        redisReply *r = redisCommand (ctx, "SENTINEL get-master-addr-by-name %s",
                                      self->master_name);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2
            && r->element[0]->type == REDIS_REPLY_STRING
            && r->element[1]->type == REDIS_REPLY_STRING) {
            char old[256];
            int old_port = self->port;
            snprintf (old, sizeof old, "%s", self->host);
            snprintf (self->host, sizeof self->host, "%s", r->element[0]->str);
            self->port = atoi (r->element[1]->str);
            if (strcmp (old, self->host) != 0 || old_port != self->port)
                gl_info ("redis: sentinel %s:%d says the primary of %s is %s:%d", e, port,
                         self->master_name, self->host, self->port);
            rc = 0;
        }
        else
            snprintf (self->errstr, sizeof self->errstr, "sentinel %.100s:%d does not know %.100s", e,
                      port, self->master_name);
        if (r)
            freeReplyObject (r);
        redisFree (ctx);
    }
    free (copy);
    return rc;
}

//  With sentinels: is the server we reached really the primary (a sentinel's view can lag a
//  failover)? true when so, or when not using sentinels.
static bool
s_is_primary (gl_redis_t *self, redisContext *ctx)
{
    if (!self->sentinels)
        return true;
    redisReply *r = redisCommand (ctx, "ROLE");
    bool primary = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0
                   && r->element[0]->type == REDIS_REPLY_STRING
                   && strcmp (r->element[0]->str, "master") == 0;
    if (!primary)
        snprintf (self->errstr, sizeof self->errstr, "%.200s:%d is not the primary (yet)", self->host,
                  self->port);
    if (r)
        freeReplyObject (r);
    return primary;
}

//  One connection attempt: (ask the sentinels,) connect, set the timeout, authenticate.
static int
s_connect_once (gl_redis_t *self)
{
    struct timeval tv = { .tv_sec = self->timeout_ms / 1000,
                          .tv_usec = (self->timeout_ms % 1000) * 1000 };
    if (self->sentinels && s_ask_sentinels (self, tv) != 0)
        return -1;
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
    if (!s_is_primary (self, ctx)) {
        redisFree (ctx);
        return -1;
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
           || gl_redis_reply_is_error (r, "MASTERDOWN") || gl_redis_reply_is_error (r, "TRYAGAIN")
           || gl_redis_reply_is_error (r, "READONLY");
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
    //  A primary demoted by a failover answers READONLY: find the new one (sentinels).
    if (gl_redis_reply_is_error (r, "READONLY"))
        s_drop (self);
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

void
gl_redis_peer (gl_redis_t *self, const char **host, int *port, const char **user,
               const char **password)
{
    assert (self && host && port && user && password);
    *host = self->host;
    *port = self->port;
    *user = self->user;
    *password = self->password;
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
