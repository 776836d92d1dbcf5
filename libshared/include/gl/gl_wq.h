/*  gl_wq — a work queue: work that exactly one replica must do, on a Redis stream consumer group.

    Producers add items (each with an idempotency key); workers claim them, do the work and
    complete them; an item claimed by a worker that died is reclaimed by another after it has been
    idle for reclaim_idle_ms; an item delivered more than max_deliveries times, or one that is
    malformed, is moved to a dead-letter stream, from where an operator can inspect and replay it.

    Keys (all carry the hash tag {NAME}, so they stay in one slot under Redis Cluster):
      gl:wq:{NAME}           the stream of items; consumer group "gl-wq"; entry fields
                             k (item key), p (payload), t (added at, business unix ms)
      gl:wq:{NAME}:dead      dead letters: reason, deliveries, when, id (original entry id),
                             error (last gl_wq_fail reason, if any), then the item's fields
      gl:wq:{NAME}:errors    hash: entry id -> last failure reason, while the entry is pending
      gl:wq:{NAME}:k:KEY     marker per item key: the entry id while queued, "done ID" once done
                             (kept for done_ttl_ms so that a late duplicate add is recognised)

    Guarantees: delivery is at least once (a worker that is slow beyond reclaim_idle_ms, or dies,
    has its items delivered again). The *effect* is exactly once when it is made inside
    gl_wq_complete's atomic step (the extra commands): the step checks the done marker, applies
    the commands, marks the item done and acknowledges it, all in one Lua script.

    Idle times are Redis's own (XAUTOCLAIM min-idle-time), measured on the one clock of the Redis
    server; the business clock (gl_now_ms) only stamps records ("t", "when").

    One gl_wq_t per thread, like the gl_redis_t it borrows. Item keys and payloads are never
    logged; item keys should be Greenline's opaque ids, not personal data.
*/
#ifndef GL_WQ_H
#define GL_WQ_H
#include "gl/gl_redis.h"
#include <stddef.h>
#include <stdint.h>

#define GL_WQ_NAME_MAX 64       //  queue and consumer names: [A-Za-z0-9._-]
#define GL_WQ_KEY_MAX  200      //  item keys: printable ASCII without spaces
#define GL_WQ_ID_MAX   48       //  room for a stream id "ms-seq" and its NUL

//  Return codes besides 0 (done as asked) and -1 (error, see gl_wq_errstr).
#define GL_WQ_DUPLICATE    1    //  add, replay: the item key is already queued or done
#define GL_WQ_ALREADY_DONE 1    //  complete: someone else completed it; nothing applied
#define GL_WQ_GONE         2    //  complete, fail, dead: the item is no longer pending
                                //  (dead-lettered, replayed, or removed); nothing applied

typedef struct _gl_wq_t gl_wq_t;
typedef struct _gl_wq_item_t gl_wq_item_t;
typedef struct _gl_wq_dead_t gl_wq_dead_t;

//  Options; a field left 0 takes its default.
typedef struct {
    int max_deliveries;         //  deliveries before an item is dead-lettered (5)
    int reclaim_idle_ms;        //  idle time after which a pending item is reclaimed (30000)
    int64_t max_len;            //  most items in the queue (queued + pending); add fails beyond (100000)
    int batch;                  //  most items one claim returns (16)
    size_t max_payload;         //  largest payload in bytes (262144)
    int64_t done_ttl_ms;        //  how long a done marker is kept (604800000 = 7 days)
    int64_t dead_max_len;       //  dead letters kept; the oldest are dropped beyond, with a warning (100000)
} gl_wq_opts_t;

//  One extra Redis command run inside gl_wq_complete's atomic step. argvlen may be NULL for C
//  strings. The command must only touch keys that carry the queue's hash tag {NAME} if the
//  deployment may ever move to Redis Cluster.
typedef struct {
    int argc;
    const char **argv;
    const size_t *argvlen;
} gl_wq_cmd_t;

//  Counts for metrics.
typedef struct {
    int64_t depth;              //  items not yet done (waiting + pending)
    int64_t pending;            //  delivered to a worker, not yet completed
    int64_t dead;               //  dead letters
} gl_wq_stats_t;

//  Create a handle on queue NAME for consumer CONSUMER (NULL for a producer that only adds).
//  redis is borrowed and must outlive the queue. opts may be NULL (all defaults). Creates the
//  consumer group (XGROUP CREATE ... MKSTREAM, BUSYGROUP ignored); when Redis is unreachable the
//  group is created by the first command that gets through. NULL on an invalid name, consumer
//  or option (logged).
gl_wq_t *gl_wq_new (gl_redis_t *redis, const char *name, const char *consumer,
                    const gl_wq_opts_t *opts);

//  Destroy the handle (the queue in Redis stays) and NULL the pointer.
void gl_wq_destroy (gl_wq_t **self_p);

//  Add an item. item_key is the idempotency key, unique per item; while an item with that key is
//  queued, or done within done_ttl_ms, adding it again creates nothing and returns
//  GL_WQ_DUPLICATE. id_out (may be NULL, else GL_WQ_ID_MAX bytes) receives the entry id (the
//  existing one for a duplicate). Returns 0 added, GL_WQ_DUPLICATE, or -1: invalid key or
//  payload, queue full (max_len), Redis unavailable. After -1 on a connection failure the add
//  may have happened; adding again is safe.
int gl_wq_add (gl_wq_t *self, const char *item_key, const void *payload, size_t len,
               char *id_out);

//  Claim up to max items (capped at opts.batch) for this consumer: first items idle longer than
//  reclaim_idle_ms (from any consumer, typically a dead one), then new items; when there are none
//  and block_ms > 0, wait up to block_ms for new ones. block_ms must stay below the gl_redis
//  command timeout. Items delivered more than max_deliveries times and malformed entries are
//  dead-lettered instead of returned. items must hold max pointers; on return items[0..*count)
//  are the caller's, each freed with gl_wq_item_free. Returns 0 (with *count possibly 0) or -1.
int gl_wq_claim (gl_wq_t *self, int max, int block_ms, gl_wq_item_t **items, int *count);

//  Complete an item in one atomic step: unless it is already done, run the ncmds extra commands
//  (the work's effect, may be 0), mark the item done and acknowledge it. Returns 0 applied,
//  GL_WQ_ALREADY_DONE or GL_WQ_GONE (nothing applied; drop the item), or -1 (error: nothing
//  marked; if an extra command failed at runtime, the ones before it were applied, since Redis
//  does not roll back: use commands that cannot fail on keys you own). The item stays the
//  caller's. After -1 on a connection failure, completing again is safe.
int gl_wq_complete (gl_wq_t *self, gl_wq_item_t *item, int ncmds, const gl_wq_cmd_t *cmds);

//  Record a temporary failure: the item stays pending and is delivered again (to any consumer)
//  once idle for reclaim_idle_ms; reason (no personal data, at most 200 bytes kept) is kept and
//  shown in the dead letter if it comes to that. Returns 0, GL_WQ_GONE, or -1.
int gl_wq_fail (gl_wq_t *self, gl_wq_item_t *item, const char *reason);

//  Dead-letter the item now (a permanent failure), with reason. Returns 0, GL_WQ_GONE, or -1.
int gl_wq_dead (gl_wq_t *self, gl_wq_item_t *item, const char *reason);

//  List up to max (1..1000) dead letters after the dead-letter id after (exclusive; NULL or ""
//  from the oldest). entries must hold max pointers; on return entries[0..*count) are the
//  caller's, each freed with gl_wq_dead_free. Returns 0 or -1.
int gl_wq_dead_list (gl_wq_t *self, const char *after, int max, gl_wq_dead_t **entries,
                     int *count);

//  Put a dead letter back on the queue as a new item (deliveries start again) and remove it
//  from the dead letters. id_out (may be NULL) receives the new entry id. Returns 0,
//  GL_WQ_DUPLICATE (its key is queued or done again meanwhile; the dead letter stays), or -1
//  (no such dead letter, malformed item, queue full, Redis unavailable).
int gl_wq_dead_replay (gl_wq_t *self, const char *dead_id, char *id_out);

//  Remove a dead letter for good. Returns 0, or -1 (no such dead letter, Redis unavailable).
int gl_wq_dead_delete (gl_wq_t *self, const char *dead_id);

//  Depth, pending and dead-letter counts. Returns 0 or -1.
int gl_wq_stats (gl_wq_t *self, gl_wq_stats_t *stats);

//  Items not yet done (waiting + pending), or -1.
int64_t gl_wq_depth (gl_wq_t *self);

//  Remove consumers of the group (other than this one) that hold no pending item and have been
//  idle longer than idle_ms, so restarted workers with new names do not pile up. Returns the
//  number removed or -1.
int gl_wq_prune_consumers (gl_wq_t *self, int64_t idle_ms);

//  The reason for the last -1, for logs (no personal data).
const char *gl_wq_errstr (gl_wq_t *self);

//  Item accessors. Strings are borrowed from the item; the payload is followed by a NUL byte.
const char *gl_wq_item_id (const gl_wq_item_t *item);
const char *gl_wq_item_key (const gl_wq_item_t *item);
const void *gl_wq_item_payload (const gl_wq_item_t *item, size_t *len);
int64_t gl_wq_item_deliveries (const gl_wq_item_t *item);
void gl_wq_item_free (gl_wq_item_t **item_p);

//  Dead-letter accessors. Strings are borrowed from the entry. item_key and payload are NULL
//  when the dead item was malformed and lacked them; error is NULL when no failure was recorded.
const char *gl_wq_dead_id (const gl_wq_dead_t *entry);
const char *gl_wq_dead_item_id (const gl_wq_dead_t *entry);
const char *gl_wq_dead_item_key (const gl_wq_dead_t *entry);
const void *gl_wq_dead_payload (const gl_wq_dead_t *entry, size_t *len);
const char *gl_wq_dead_reason (const gl_wq_dead_t *entry);
const char *gl_wq_dead_error (const gl_wq_dead_t *entry);
int64_t gl_wq_dead_deliveries (const gl_wq_dead_t *entry);
int64_t gl_wq_dead_when (const gl_wq_dead_t *entry);
void gl_wq_dead_free (gl_wq_dead_t **entry_p);

#endif
