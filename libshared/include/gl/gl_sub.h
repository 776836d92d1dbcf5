/*  gl_sub — the subscribing side of the reliable bus.

    A consumer group (one name per consuming service, e.g. "referral") applies every event of
    every source exactly once, in per-source order:
      - it applies an event and advances its cursor for that source in one atomic step: the
        handler queues its Redis writes in a gl_tx_t, and gl_sub runs them in one Lua script that
        first checks the cursor still holds the value it read (compare-and-set), then writes them
        and the new cursor. Idempotence needs only the per-source cursor.
      - on start, and whenever it sees a gap (a live seq past cursor+1, a heartbeat past the
        cursor, or a polled log head still ahead at the next poll), it reads the missing range
        from the source's log in Redis.
      - replicas of a consuming service stand by on a lease (gl:lease:{GROUP}): only the holder
        is active; a standby takes over when the lease expires.
      - it warns loudly when it falls more than lag_warn events behind a source, and says which
        sources have gone silent (no heartbeat for silent_ms).
    ZeroMQ delivery is only the fast path: a subscriber with no endpoints at all still applies
    everything, by polling the sources' log heads every poll_ms.

    Handlers that read back in Redis what they wrote for an earlier event must use batch = 1
    (the default): with batch > 1, several events' writes are committed together at the end of
    the batch.

    Manual checkpoint mode (opts.manual_checkpoint) is for services that keep state in memory
    (reporting): cursors advance in memory only, and gl_sub_checkpoint writes the service's
    snapshot and all cursors in one atomic step.
*/
#ifndef GL_SUB_H
#define GL_SUB_H
#include "gl/gl_buslog.h"
#include "gl/gl_curve.h"
#include "gl/gl_event.h"
#include "gl/gl_redis.h"
#include <czmq.h>

typedef struct _gl_sub_t gl_sub_t;
typedef struct _gl_tx_t gl_tx_t;

//  Apply one event. Queue Redis writes in tx. Return 0 when applied; -1 when it cannot be applied
//  now (nothing of it is kept; the subscriber retries the same event later, after a backoff).
typedef int (gl_sub_apply_fn) (void *arg, const gl_event_t *ev, gl_tx_t *tx);

typedef struct {
    const char *endpoints;  //  comma-separated PUB endpoints; NULL or "": log polling only
    const char *prefixes;   //  comma-separated type prefixes to apply ("" or NULL: all)
    const char *sources;    //  comma-separated source-name prefixes to follow ("" or NULL:
                            //  every source). Other sources are not read at all, hold no
                            //  cursor of this group, and their trimming does not wait for it
                            //  (the list is kept in gl:consumer_sources for the trimmer)
    int batch;              //  events per atomic commit (default 1)
    int rcvhwm;             //  SUB receive high-water mark, frames (default 100000)
    int64_t lease_ms;       //  standby lease (default 10000)
    int64_t poll_ms;        //  safety-net poll of log heads (default 1000)
    int64_t silent_ms;      //  a source with no heartbeat for this long is reported (default 5000)
    uint64_t lag_warn;      //  events behind a source before a loud warning (default 10000)
    bool manual_checkpoint; //  cursors in memory only; see gl_sub_checkpoint
    gl_curve_t *curve;      //  borrowed: connect as a CURVE client; each endpoint then names
                            //  its server's key ("tcp://h:7101#intake", see gl_curve.h).
                            //  NULL: plain (default)
} gl_sub_opts_t;

typedef struct {
    uint64_t received;      //  frames received on the socket
    uint64_t applied;       //  events the handler applied (committed)
    uint64_t skipped;       //  events outside the prefixes (cursor advanced)
    uint64_t duplicates;    //  frames at or behind the cursor
    uint64_t gaps;          //  gaps detected
    uint64_t fetched;       //  events read from the logs
    uint64_t rejected[GL_EVENT_ERR__COUNT];  //  frames dropped, by reason
    uint64_t conflicts;     //  commits refused because another replica moved the cursor
    uint64_t lost;          //  events trimmed from a log before this group applied them
    uint64_t retries;       //  handler asked to retry
    uint64_t lag;           //  events behind, summed over sources, at the last tick
} gl_sub_stats_t;

void gl_sub_opts_default (gl_sub_opts_t *opts);

//  Create the consumer group's subscriber. It registers the group (its cursors hold back log
//  trimming) and becomes active at the first gl_sub_tick that wins the lease. NULL with a reason
//  in err when group is not a valid name or Redis is unreachable.
gl_sub_t *gl_sub_new (gl_redis_t *redis, const char *group, const gl_sub_opts_t *opts,
                      gl_sub_apply_fn *fn, void *arg, char *err, size_t errlen);

//  Stop: give the lease up so a standby takes over at once. Pending uncommitted work is dropped
//  (it is replayed from the logs by whoever runs next).
void gl_sub_destroy (gl_sub_t **self_p);

//  The SUB socket to poll (NULL while standing by or without endpoints). It changes when the
//  subscriber becomes active: ask again after each gl_sub_tick.
zsock_t *gl_sub_sock (gl_sub_t *self);

//  The socket is readable: receive what is waiting (bounded), apply, commit. 0 or -1 when Redis
//  is unreachable (the work is left for the logs).
int gl_sub_handle (gl_sub_t *self);

//  Lease, heartbeat bookkeeping, log polling and catch-up (bounded per call). Returns the ms
//  until the next tick is due (0: more catch-up work is waiting).
int64_t gl_sub_tick (gl_sub_t *self);

//  Convenience loop step: wait up to timeout_ms on the socket, handle it, tick when due.
int gl_sub_run_once (gl_sub_t *self, int timeout_ms);

//  True while this replica holds the group lease.
bool gl_sub_active (gl_sub_t *self);

//  Manual checkpoint mode: write extra (the service's snapshot; may be NULL) and every cursor in
//  one atomic step. 0, or -1 (nothing written; cursors reloaded on conflict).
int gl_sub_checkpoint (gl_sub_t *self, gl_tx_t *extra);

//  The cursor this subscriber has reached for src (in memory). {0,0} when unknown.
gl_cursor_t gl_sub_cursor (gl_sub_t *self, const char *src);

gl_sub_stats_t gl_sub_stats (gl_sub_t *self);

//  Transactions: Redis commands to run in the same atomic step as the cursor advance.
gl_tx_t *gl_tx_new (void);
void gl_tx_destroy (gl_tx_t **self_p);
void gl_tx_reset (gl_tx_t *self);
size_t gl_tx_count (gl_tx_t *self);

//  Queue one command, hiredis-style format (%s, %b, %d, %lld ...). 0, or -1 on a bad format.
int gl_tx_cmdf (gl_tx_t *self, const char *fmt, ...);

//  Queue one command as an argument vector (argvlen NULL: C strings).
int gl_tx_cmd (gl_tx_t *self, int argc, const char **argv, const size_t *argvlen);

#endif
