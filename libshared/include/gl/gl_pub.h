/*  gl_pub — the publishing side of the reliable bus.

    gl_pub_send appends the event to its source's log in Redis (sequence number assigned in the
    same atomic step, under the source's lease), then publishes it on a ZeroMQ PUB socket. When
    gl_pub_send returns 0 the event is durable (as durable as Redis's appendfsync makes it) and
    will reach every subscriber, through PUB or through the log. PUB is only the fast path: a
    frame dropped by a high-water mark is recovered from the log.

    The source name (e.g. "intake-1") is held by a lease in Redis; a second process asking for
    the same name waits or fails, and a process whose lease was taken over is fenced: its appends
    fail with GL_PUB_FENCED and it must exit. gl_pub_tick renews the lease and sends heartbeats
    (topic "_gl.hb", body {src, seq, epoch, ts}) so subscribers can tell silence from death and
    notice an event that was logged but never published.

    One gl_pub per thread; it borrows a gl_redis_t that no other thread uses at the same time.
*/
#ifndef GL_PUB_H
#define GL_PUB_H
#include "gl/gl_curve.h"
#include "gl/gl_event.h"
#include "gl/gl_redis.h"
#include <czmq.h>

#define GL_HEARTBEAT_TOPIC "_gl.hb"

typedef struct _gl_pub_t gl_pub_t;

typedef struct {
    const char *bind;       //  PUB endpoint(s) to bind, e.g. "tcp://127.0.0.1:7101"; NULL: none
    int64_t lease_ms;       //  lease on the source name (default 10000)
    int64_t heartbeat_ms;   //  heartbeat and lease renewal period (default 1000)
    int64_t wait_ms;        //  how long gl_pub_new waits for a name held by another (default 0)
    int sndhwm;             //  PUB send high-water mark, frames (default 100000)
    int wait_replicas;      //  for GL_PUB_CRITICAL sends: replicas to WAIT for (default 1)
    int64_t wait_replicas_ms;   //  WAIT timeout (default 500)
    gl_curve_t *curve;      //  borrowed: PUB is a CURVE server with it (NULL: plain, default)
} gl_pub_opts_t;

//  Send flags.
#define GL_PUB_CRITICAL 1   //  also wait for a replica's acknowledgement when replicas exist

//  Return codes of gl_pub_send besides 0.
#define GL_PUB_ERROR (-1)   //  Redis unreachable within its reconnect budget: outcome unknown
                            //  (see gl_pub_send)
#define GL_PUB_FENCED (-2)  //  another process holds our source name now; exit

//  Fill opts with the defaults.
void gl_pub_opts_default (gl_pub_opts_t *opts);

//  Take the lease on src and bind. NULL with a reason in err when the name is held by another
//  live process (after waiting opts->wait_ms), src is invalid, Redis is unreachable or bind fails.
gl_pub_t *gl_pub_new (gl_redis_t *redis, const char *src, const gl_pub_opts_t *opts, char *err,
                      size_t errlen);

//  Take the first free name among "<service>-1" .. "<service>-<max>".
gl_pub_t *gl_pub_new_auto (gl_redis_t *redis, const char *service, int max,
                           const gl_pub_opts_t *opts, char *err, size_t errlen);

//  Release the lease (so a successor may start at once) and close the socket.
void gl_pub_destroy (gl_pub_t **self_p);

//  Append then publish one event. Sets ev->src and ev->seq. 0 when durable; GL_PUB_FENCED when
//  another process holds our name; GL_PUB_ERROR when Redis stayed unreachable (or not ready)
//  for the whole reconnect budget: the outcome is then unknown — the append may have landed
//  just before the connection broke. Sending the same event (same gl_event_t, unchanged) again
//  is always safe: if the first append landed, the repeat is recognised and nothing is doubled.
//  If the caller sends something else instead, the publisher first checks whether the unknown
//  append landed (and then delivers it) before appending the new event.
//  The caller keeps ownership of ev.
int gl_pub_send (gl_pub_t *self, gl_event_t *ev, int flags);

//  Same for n events in one atomic append (one Redis round trip): all or none are appended.
int gl_pub_send_batch (gl_pub_t *self, gl_event_t **evs, size_t n, int flags);

//  Renew the lease and send a heartbeat when due. Returns the ms until the next call is due, or
//  GL_PUB_FENCED when the lease was lost.
int64_t gl_pub_tick (gl_pub_t *self);

//  The source name, the last sequence number appended, the epoch.
const char *gl_pub_src (gl_pub_t *self);
uint64_t gl_pub_seq (gl_pub_t *self);
uint64_t gl_pub_epoch (gl_pub_t *self);

//  The PUB socket's bound endpoint (resolves "tcp://127.0.0.1:*" to the real port). Borrowed.
const char *gl_pub_endpoint (gl_pub_t *self);

//  Counters: events appended, frames dropped at the PUB high-water mark, append retries.
typedef struct {
    uint64_t appended;
    uint64_t pub_dropped;
    uint64_t retries;
    uint64_t epochs;
} gl_pub_stats_t;
gl_pub_stats_t gl_pub_stats (gl_pub_t *self);

#endif
