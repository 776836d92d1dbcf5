/*  gl_outbox — a record write and its event, never one without the other.
    Redis cannot put a service's record write and gl_pub's append (libshared's Lua, under the
    publisher's lease) in one script, so a service writes its record together with the complete
    event (an outbox entry, keyed by the event id, in a hash of its own) in one atomic step, and
    the event is appended to the log from there:
      1. the service's script (or MULTI, or a gl_sub handler's gl_tx) writes the record and
         HSET <outbox key> <event id> <gl_outbox_entry (ev)>, all or nothing;
      2. gl_outbox_deliver publishes the event (append, then PUB) and deletes the entry;
      3. if the process dies between 1 and 2, or Redis was unreachable at 2, gl_outbox_sweep
         (every service runs it on a timer) finds the entry, looks for the event id in the log
         (so a delivery that did happen is not doubled) and appends it if it is not there.
    The event keeps its id, time and payload through a crash, so a late delivery is the same
    event. An entry written by another live replica (another source holding its lease) is left
    to that replica; a dead replica's entries are delivered by whoever sweeps first, under the
    sweeper's own source name. A malformed entry is moved to <outbox key>:bad for an operator.
    One gl_outbox_t per thread, like the gl_redis_t and gl_pub_t it borrows.
*/
#ifndef GL_OUTBOX_H
#define GL_OUTBOX_H

#include "gl/gl_event.h"
#include "gl/gl_pub.h"
#include "gl/gl_redis.h"
#include "gl/gl_sub.h"
#include <stddef.h>

typedef struct _gl_outbox_t gl_outbox_t;

//  New outbox on key (the full key of the hash, with the service's hash tag, e.g.
//  "referral:{referral}:outbox"). redis and pub are borrowed and must outlive it. metrics_name
//  (NULL: none) registers the gauges <name>_outbox_pending and counter <name>_outbox_swept.
gl_outbox_t *gl_outbox_new (gl_redis_t *redis, gl_pub_t *pub, const char *key,
                            const char *metrics_name);
void gl_outbox_destroy (gl_outbox_t **self_p);

//  The hash key (borrowed).
const char *gl_outbox_key (gl_outbox_t *self);

//  The outbox entry of ev: compact JSON {type, id, ts, corr, flags, src, seq, data} (data last,
//  so a Lua script may append fields inside it by cutting the closing "}}"). A new string
//  (caller frees), or NULL when out of memory. ev must be complete (gl_event_new, data set).
char *gl_outbox_entry (gl_outbox_t *self, const gl_event_t *ev, int flags);

//  Queue the entry's HSET in tx (a gl_sub handler's transaction), so the event is stored in the
//  same atomic step as the handler's writes and its cursor advance; after the commit the
//  service's loop calls gl_outbox_settle (gl_service does), which delivers it. 0, or -1 (out
//  of memory).
int gl_outbox_stage (gl_outbox_t *self, gl_tx_t *tx, const gl_event_t *ev, int flags);

//  Publish ev, whose entry was just written (step 2), and delete the entry (after flushing what
//  gl_outbox_defer queued). 0 when published; -1 when left to the sweep (Redis unreachable, or
//  fenced: the caller's loop finds out).
int gl_outbox_deliver (gl_outbox_t *self, gl_event_t *ev, int flags);

//  Batched delivery (step 2 for many writes at once). gl_outbox_defer queues a copy of ev, whose
//  entry was just written, instead of publishing it now; gl_outbox_flush publishes what is
//  queued, in order, with one gl_pub_send_batch per run of events with the same flags (at most
//  GL_OUTBOX_BATCH_MAX each) and deletes their entries with one HDEL each. A service that
//  handles many requests in one pass of its loop defers each request's event and flushes once
//  at the end of the pass (the wake-up function arms a zero-delay timer, say): one append and
//  one HDEL for all of them instead of two round trips per request. Nothing can be lost: each
//  entry is durable in the outbox before it is queued, and whatever a crash or a failed flush
//  leaves there, the sweep delivers. gl_outbox_deliver and gl_outbox_sweep flush first, so
//  events keep their order; gl_outbox_destroy drops what is still queued (the sweep of the
//  next start, or of another replica, delivers it).
#define GL_OUTBOX_BATCH_MAX 256

//  Called when gl_outbox_defer queues into an empty queue: the service should call
//  gl_outbox_flush soon, from its loop (not from inside the wake-up function).
typedef void (gl_outbox_wake_fn) (void *arg);

//  Set the wake-up function (NULL: none; then the service must flush on its own schedule).
void gl_outbox_set_wake (gl_outbox_t *self, gl_outbox_wake_fn *wake, void *arg);

//  Queue a copy of ev (complete, its entry already written) for the next gl_outbox_flush. When
//  GL_OUTBOX_BATCH_MAX events are queued already it flushes them first. 0 queued; -1 out of
//  memory (the entry is left to the sweep).
int gl_outbox_defer (gl_outbox_t *self, const gl_event_t *ev, int flags);

//  How a flush clears the entries of the events it has just appended: by default one HDEL on
//  the outbox's own (synchronous) connection, which makes the loop wait for Redis once more
//  per flush (and under appendfsync always for one more fsync). A service with an asynchronous
//  connection may send that HDEL there instead: clear (key, ids, n, arg) must send
//  HDEL key ids... (borrowed for the call) and return 0, or -1 to have the synchronous HDEL
//  used. An HDEL that is lost on the way is harmless: the sweep finds those events in the log
//  and only deletes their entries. NULL restores the default.
typedef int (gl_outbox_clear_fn) (const char *key, const char *const *ids, size_t n, void *arg);
void gl_outbox_set_clear (gl_outbox_t *self, gl_outbox_clear_fn *clear, void *arg);

//  Writes in flight. A service that writes entries over an asynchronous Redis connection holds
//  each event id from the moment its write is sent until the reply is handled (and the event
//  deferred or delivered), so that a sweep in between, which would find the entry and not the
//  event in the log, does not deliver it as well. The sweep leaves held entries alone; a crash
//  forgets the holds, and the next sweep delivers what they covered. gl_outbox_hold: 0, or -1
//  when GL_OUTBOX_HOLD_MAX ids are held already (write synchronously then). Releasing an id
//  that is not held does nothing.
#define GL_OUTBOX_HOLD_MAX 4096
int gl_outbox_hold (gl_outbox_t *self, const char *event_id);
void gl_outbox_release (gl_outbox_t *self, const char *event_id);
size_t gl_outbox_held (gl_outbox_t *self);
//  Publish what is queued and delete its entries. Returns the number published; -1 when Redis
//  or the publisher failed (the rest is left to the sweep; the queue is empty either way).
int gl_outbox_flush (gl_outbox_t *self);

//  Events queued by gl_outbox_defer and not yet flushed.
size_t gl_outbox_deferred (gl_outbox_t *self);

//  Deliver what is in the outbox (step 3), at most 1000 entries a call, after flushing what
//  gl_outbox_defer queued. Returns the number
//  delivered, or -1 when Redis or the publisher failed.
int gl_outbox_sweep (gl_outbox_t *self);

//  Events staged with gl_outbox_stage so far (gl_service settles when it changes).
uint64_t gl_outbox_staged (gl_outbox_t *self);

//  After the transactions that staged events were committed (a subscriber's gl_sub_handle or
//  gl_sub_tick has returned): deliver the staged events whose entries are now in the outbox,
//  with one HMGET and one flush, instead of a sweep that searches the log for each entry.
//  gl_outbox_stage keeps a copy of each staged event for this (at most GL_OUTBOX_BATCH_MAX;
//  beyond, settle sweeps). An entry not there (rolled back, or not committed yet) keeps its
//  copy until the next settle; a complete sweep forgets them all. Returns the number
//  delivered, or -1 (Redis or the publisher failed: the sweep delivers later).
int gl_outbox_settle (gl_outbox_t *self);

//  Entries seen but not delivered by the last sweep.
int64_t gl_outbox_pending (gl_outbox_t *self);

#endif
