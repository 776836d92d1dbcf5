/*  gl_redis — one Redis connection (hiredis, synchronous) that reconnects with backoff.

    One per actor or thread (hiredis contexts are not thread-safe). Commands return the hiredis
    reply, which the caller frees with freeReplyObject(). An error *reply* from Redis (WRONGTYPE,
    a script's error_reply) is returned as a REDIS_REPLY_ERROR reply, not NULL: NULL means the
    connection failed (I/O, timeout), in which case the command may or may not have run, and the
    caller decides whether retrying is safe. The next command reconnects, waiting with exponential
    backoff (50 ms doubling to 1 s) for at most the configured reconnect budget.

    Scripts are sent with EVALSHA and loaded again transparently after NOSCRIPT (a restarted Redis
    forgets its script cache).
*/
#ifndef GL_REDIS_H
#define GL_REDIS_H
#include "gl/gl_config.h"
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _gl_redis_t gl_redis_t;

//  A Lua script with its SHA1, computed once.
typedef struct {
    const char *source;
    char sha[41];
} gl_redis_script_t;

//  Connect to host:port (password may be NULL). Returns the object even if Redis is not up yet;
//  commands then try to connect. timeout_ms bounds each command; reconnect_ms bounds how long a
//  command waits for the connection to come back before failing.
gl_redis_t *gl_redis_new (const char *host, int port, const char *password, int timeout_ms,
                          int reconnect_ms);

//  Same from configuration: GL_REDIS_HOST (127.0.0.1), GL_REDIS_PORT (6379), GL_REDIS_PASSWORD,
//  GL_REDIS_USER (ACL user, optional), GL_REDIS_TIMEOUT_MS (2000), GL_REDIS_RECONNECT_MS (10000);
//  with GL_REDIS_SENTINELS (host:port,...), GL_REDIS_MASTER_NAME (greenline) and
//  GL_REDIS_SENTINEL_PASSWORD, the primary is found through Sentinel (gl_redis_set_sentinels)
//  and GL_REDIS_HOST/PORT are only the first guess. NULL when a value is malformed (logged).
gl_redis_t *gl_redis_new_from_config (gl_config_t *config);

//  Find the primary through Redis Sentinel: at every (re)connect the sentinels are asked in order
//  (SENTINEL get-master-addr-by-name master_name) and the server reached must say ROLE master;
//  a READONLY answer (a primary demoted by a failover) drops the connection and asks again, all
//  within the reconnect budget. sentinels is "host:port[,host:port...]"; password (may be NULL)
//  authenticates to the sentinels. 0, or -1 when sentinels or master_name is malformed.
int gl_redis_set_sentinels (gl_redis_t *self, const char *sentinels, const char *master_name,
                            const char *password);

void gl_redis_destroy (gl_redis_t **self_p);

//  Run one command (printf-like, hiredis's %s %b %d conventions). NULL on connection failure.
redisReply *gl_redis_cmd (gl_redis_t *self, const char *fmt, ...);

//  Run one command given as an argument vector. argvlen may be NULL for C strings.
redisReply *gl_redis_cmdargv (gl_redis_t *self, int argc, const char **argv, const size_t *argvlen);

//  Pipelining: queue commands with gl_redis_append*, then read each reply with gl_redis_reply.
//  A failed append or reply drops the connection; the remaining replies of that pipeline are lost.
int gl_redis_append (gl_redis_t *self, const char *fmt, ...);
int gl_redis_appendargv (gl_redis_t *self, int argc, const char **argv, const size_t *argvlen);
redisReply *gl_redis_reply (gl_redis_t *self);

//  Run a script: EVALSHA, loading it on NOSCRIPT. argv holds the keys first (nkeys of them),
//  then the arguments. NULL on connection failure.
redisReply *gl_redis_eval (gl_redis_t *self, gl_redis_script_t *script, int nkeys, int argc,
                           const char **argv, const size_t *argvlen);

//  1 when connected now (does not try to connect).
bool gl_redis_connected (gl_redis_t *self);

//  Where this connection goes now (after Sentinel picked the primary) and how it
//  authenticates, for a second connection to the same server (intake's asynchronous one).
//  Strings are borrowed (valid until the next command reconnects, or destroy); user and
//  password are NULL when not set.
void gl_redis_peer (gl_redis_t *self, const char **host, int *port, const char **user,
                    const char **password);

//  PING, connecting if needed. 0 when Redis answered.
int gl_redis_ping (gl_redis_t *self);

//  Last connection error, for logs.
const char *gl_redis_errstr (gl_redis_t *self);

//  Number of (re)connections made so far (1 after the first success). For metrics and tests.
uint64_t gl_redis_connects (gl_redis_t *self);

//  Reply helpers: the integer in an integer or numeric string reply; -1 with errno-free fallback.
int gl_redis_reply_int (const redisReply *reply, long long *out);

//  True when reply is an error reply whose message starts with prefix.
bool gl_redis_reply_is_error (const redisReply *reply, const char *prefix);

#endif
