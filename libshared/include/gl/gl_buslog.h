/*  gl_buslog — the durable side of the bus: per-source event logs in Redis, leases, cursors.

    Keys (docs/events.md, "Keys in Redis"); {SRC} and {GROUP} are Redis Cluster hash tags:
      gl:log:{SRC}      stream; entry id "<seq>-0", one field "e" = the msgpack envelope
      gl:src:{SRC}      hash; seq (last appended), owner + until (the lease on the name), epoch,
                        epoch_base (last seq of the previous epoch), hb (last heartbeat, ms)
      gl:sources        set of every source name that ever appended
      gl:cur:{GROUP}    hash; one field per source: "<epoch>:<seq>" = last applied
      gl:lease:{GROUP}  hash; owner + until: which replica of a consuming service is active
      gl:consumers      set of consumer group names (their cursors hold back trimming)

    A lease is held by a random token; it is taken when free or when its `until` (ms, on the
    clock the caller passes in) is past, and renewed by its holder. Appends check the token in
    the same script that assigns the sequence number, so a zombie cannot write under a live
    replica's name. Redis key expiry is never used for leases (time is data).
*/
#ifndef GL_BUSLOG_H
#define GL_BUSLOG_H
#include "gl/gl_event.h"
#include "gl/gl_redis.h"
#include <stdbool.h>
#include <stdint.h>

#define GL_LEASE_TOKEN_LEN 32

//  A cursor: the epoch of the source's log and the last sequence number applied in it.
typedef struct {
    uint64_t epoch;
    uint64_t seq;
} gl_cursor_t;

//  What a source's hash says: last seq, epoch, epoch_base.
typedef struct {
    uint64_t seq;
    uint64_t epoch;
    uint64_t epoch_base;
    int64_t heartbeat_ms;
} gl_srcinfo_t;

//  Try to take or renew the lease `key` for token until now + ttl. Returns 1 when held by token,
//  0 when another live holder has it (*holder_until set to its expiry when not NULL), -1 on a
//  Redis failure.
int gl_lease_acquire (gl_redis_t *redis, const char *key, const char *token, int64_t now_ms,
                      int64_t ttl_ms, int64_t *holder_until);

//  Give the lease back if token still holds it (clean shutdown lets a successor start at once).
int gl_lease_release (gl_redis_t *redis, const char *key, const char *token);

//  Read a source's hash. 0, or -1 on a Redis failure. A source never seen reads as all zeros.
int gl_srcinfo_read (gl_redis_t *redis, const char *src, gl_srcinfo_t *info);

//  Append n encoded envelopes whose seqs are first..first+n-1 to src's log, atomically with the
//  lease check and the seq update. Returns the new last seq (> 0), or:
//    -1  Redis unreachable (the append may or may not have happened: call again with the same
//        first and payloads; a repeat of an append that did happen is recognised and succeeds)
//    -2  fenced: token no longer holds the lease
//    -3  sequence mismatch: *last_out holds the log's last seq (see gl_pub: epoch handling)
int64_t gl_log_append (gl_redis_t *redis, const char *src, const char *token, int64_t now_ms,
                       int64_t lease_until, uint64_t first, const char **payloads,
                       const size_t *lens, size_t n, uint64_t *last_out);

//  Callback for gl_log_read: one envelope (raw bytes) with its seq. Return 0 to continue, -1 stop.
typedef int (gl_log_entry_fn) (void *arg, uint64_t seq, const char *bytes, size_t len);

//  Read src's log from seq `from` to `to` inclusive (to = 0: up to the end), at most `max`
//  entries. Calls fn for each. Returns the number of entries delivered, or -1 on failure.
//  *first_avail (when not NULL) receives the lowest seq still in the log (0 when empty), so a
//  caller can tell a trimmed range from an empty one.
int64_t gl_log_read (gl_redis_t *redis, const char *src, uint64_t from, uint64_t to, size_t max,
                     gl_log_entry_fn *fn, void *arg, uint64_t *first_avail);

//  All source names (gl:sources). Returns a NULL-terminated array of strings; the caller frees
//  each string and the array. NULL on failure.
char **gl_sources_list (gl_redis_t *redis);

//  Cursor text "<epoch>:<seq>" to and from.
void gl_cursor_format (gl_cursor_t c, char *out, size_t len);
int gl_cursor_parse (const char *s, size_t len, gl_cursor_t *c);

//  Load every cursor of a group: calls fn(arg, src, cursor) per field. 0 or -1.
typedef void (gl_cursor_fn) (void *arg, const char *src, gl_cursor_t cursor);
int gl_cursors_load (gl_redis_t *redis, const char *group, gl_cursor_fn *fn, void *arg);

//  Trim src's log behind the slowest cursor of every registered consumer group, after writing
//  the trimmed entries to archive_dir/<src>/<first>-<last>.glog (when archive_dir is not NULL;
//  records are a 4-byte big-endian length then the envelope). keep is a number of entries kept
//  in the log even when every consumer is past them. Returns the number of entries trimmed, or
//  -1 on failure (nothing trimmed).
int64_t gl_log_trim (gl_redis_t *redis, const char *src, const char *archive_dir, uint64_t keep);

//  Retention of archives: remove every archive file of src under archive_dir
//  (archive_dir/<src>/<first>-<last>.glog, written by gl_log_trim) whose newest event (the ts of
//  its last record, on the business clock) is before cutoff_ms, so no archived event outlives
//  its retention period. A file whose last record cannot be read is left alone and logged
//  (an operator looks at it). A missing folder purges nothing. Returns the number of files
//  removed, or -1 when the folder cannot be read. *kept (when not NULL) gets the number of
//  archive files left.
int64_t gl_log_archive_purge (const char *archive_dir, const char *src, int64_t cutoff_ms,
                              int64_t *kept);

#endif
