/*  aredis — intake's second, asynchronous Redis connection, on the actor's libevent loop.

    The synchronous connection (intake->redis) makes a handler wait for its reply, so intake's
    loop and redis-server take turns: while Redis runs one request's script, intake is idle, and
    under appendfsync always each request waits for its own fsync. The hot writes (a new
    contact) go through this connection instead: the handler sends its script, defers its HTTP
    reply (http_defer) and returns; the loop reads the next requests meanwhile, Redis runs the
    scripts back to back and one fsync covers all that arrived together; the reply callback
    answers the client.

    It follows the synchronous connection: the same server (after Sentinel's choice) and the
    same credentials, read again at every reconnect. While it is not connected, or for a script
    Redis does not have cached yet, aredis_eval says so and the caller uses the synchronous
    connection, which connects, fails over and loads scripts. Redis answers in order, so a
    command older than the timeout (GL_REDIS_TIMEOUT_MS) means the server stalls: the connection
    is dropped and every command in flight is answered NULL.

    One per actor, used from the loop's thread only (hiredis contexts are not thread-safe).
*/
#ifndef INTAKE_AREDIS_H
#define INTAKE_AREDIS_H
#include "gl/gl_redis.h"
#include <event2/event.h>
#include <stddef.h>

typedef struct _aredis_t aredis_t;

//  Called exactly once per command sent. reply is borrowed (freed after the call); NULL when
//  the connection was lost first (or aredis_destroy ran): the command may or may not have run.
//  An error reply comes as it is: READONLY (a failover demoted the server; aredis then drops
//  the connection) means the script did not run, and the caller retries on the synchronous
//  connection. (aredis_eval loads each script on a new connection ahead of its first EVALSHA,
//  so NOSCRIPT should not happen; callers treat it like READONLY all the same.)
typedef void (aredis_fn) (redisReply *reply, void *arg);

#define AREDIS_INFLIGHT_MAX 4096

//  New connection following sync (borrowed, must outlive it) on base. It connects at once and
//  reconnects after a second when dropped. timeout_ms: see above.
aredis_t *aredis_new (gl_redis_t *sync, struct event_base *base, int timeout_ms);

//  Drop the connection: every callback in flight is called with NULL, now. NULLs *self_p.
void aredis_destroy (aredis_t **self_p);

//  Send EVALSHA for script (keys first, as gl_redis_eval). argv and lens are copied. 0 sent (fn
//  will be called); -1 not connected, or the script's SHA1 is not known yet (use the
//  synchronous connection); -2 AREDIS_INFLIGHT_MAX commands in flight already (busy).
int aredis_eval (aredis_t *self, gl_redis_script_t *script, int nkeys, int argc,
                 const char **argv, const size_t *lens, aredis_fn *fn, void *arg);

//  Send any command (argv as for gl_redis_cmdargv; lens NULL for C strings), the same way.
int aredis_cmdargv (aredis_t *self, int argc, const char **argv, const size_t *lens,
                    aredis_fn *fn, void *arg);

//  For a script's callback: when reply says the script did not run here (READONLY after a
//  failover, NOSCRIPT), run it again on the synchronous connection, which finds the primary and
//  loads the script. Returns the reply to use (NULL: no answer); *owned gets what the caller
//  must free afterwards (NULL when the returned reply is the borrowed one).
redisReply *aredis_settle (aredis_t *self, redisReply *reply, gl_redis_script_t *script,
                           int nkeys, int argc, const char **argv, const size_t *lens,
                           redisReply **owned);

//  Commands sent and not answered yet.
size_t aredis_inflight (aredis_t *self);

//  True when connected and authenticated.
bool aredis_ready (aredis_t *self);

#endif
