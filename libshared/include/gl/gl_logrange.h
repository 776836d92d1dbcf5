/*  gl_logrange — "log.range": a request any service answers so that a subscriber that is not
    Greenline's own (a protection database, a pyzmq script) can fetch events it missed from the
    PUB stream. Outside systems never read Redis (ARCHITECTURE.md, "The bus").

    Request body {src: str, from: uint >= 1, to: uint (0 or absent: up to the end),
                  max: uint 1..1000 (default 500)}
    Reply 200   {src, events: [{v, id, type, src, seq, ts, corr, data}, ...], first_avail, head,
                 epoch}; events are in seq order, at most max of them; an empty list with
                 first_avail > from means the range was trimmed (ask the archive, docs/operations.md).
    Errors      400 (field named), 404 unknown_source, 503 when Redis is unreachable.
*/
#ifndef GL_LOGRANGE_H
#define GL_LOGRANGE_H
#include "gl/gl_redis.h"
#include "gl/gl_rep.h"
#include "gl/gl_req.h"

#define GL_LOGRANGE_MAX 1000

//  Register the "log.range" handler on rep, reading logs through redis (borrowed). 0 or -1.
int gl_logrange_register (gl_rep_t *rep, gl_redis_t *redis);

//  Client side: ask endpoint's service for src's events from..to (to 0: the end), at most max.
//  On success returns 0 and *reply holds the body (events array etc.; caller clears the reply).
//  -1 on timeout or error (reply->status and error fields say which).
int gl_logrange_fetch (gl_req_t *client, const char *src, uint64_t from, uint64_t to, size_t max,
                       int timeout_ms, gl_reply_t *reply);

#endif
