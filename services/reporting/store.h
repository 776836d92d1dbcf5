/*  rep_store — reporting's counters: one bucket per period ("h2026-11-29T14", "d2026-11-29",
    "w2026-11-23", "m2026-11", "t" for lifetime totals), each a map of counter name to int64.

    A counter name is "<metric>" or "<metric>|<dim>=<value>[|<dim>=<value>]". Names ending in
    "_max" hold a maximum (merged with max), every other name a sum. A bucket holds at most
    max_names names; a new name beyond that is dropped and counted in the bucket's "_overflow".
    Buckets remember whether they changed since the last checkpoint (dirty), so a checkpoint
    writes only what changed. Encoded form of a bucket: lines "name\tvalue\n", sorted.
*/
#ifndef REP_STORE_H
#define REP_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _rep_store_t rep_store_t;

//  Visit one counter (name borrowed for the call).
typedef void (rep_store_fn) (void *arg, const char *name, int64_t value);
//  Visit one bucket's period key (borrowed for the call).
typedef void (rep_period_fn) (void *arg, const char *period);

//  New empty store; max_names bounds each bucket (0: 50000). NULL when out of memory.
rep_store_t *rep_store_new (size_t max_names);
void rep_store_destroy (rep_store_t **self_p);

//  Add delta to name in period's bucket (made on first use); a "_max" name takes the maximum.
void rep_store_add (rep_store_t *self, const char *period, const char *name, int64_t delta);

//  A bucket handle for repeated adds (made on first use). Valid until the bucket is replaced
//  (rep_store_decode) or dropped (rep_store_clear).
typedef struct _rep_bucket_t rep_bucket_t;
rep_bucket_t *rep_store_bucket (rep_store_t *self, const char *period);

//  rep_store_add on a handle.
void rep_store_bucket_add (rep_store_t *self, rep_bucket_t *bucket, const char *name, int64_t delta);

//  The counter's value, 0 when absent.
int64_t rep_store_get (rep_store_t *self, const char *period, const char *name);

//  True when period has a bucket.
bool rep_store_has (rep_store_t *self, const char *period);

//  Visit every counter of period (unsorted).
void rep_store_each (rep_store_t *self, const char *period, rep_store_fn *fn, void *arg);

//  Visit every period key (unsorted); with dirty_only, only buckets changed since they were last
//  marked clean.
void rep_store_periods (rep_store_t *self, bool dirty_only, rep_period_fn *fn, void *arg);

//  Mark period clean or dirty (a failed checkpoint marks its buckets dirty again).
void rep_store_set_dirty (rep_store_t *self, const char *period, bool dirty);

//  The bucket's encoded form (caller frees); NULL when there is no such bucket.
char *rep_store_encode (rep_store_t *self, const char *period);

//  Replace period's bucket with the encoded text (from a checkpoint). 0, or -1 when a line is
//  malformed (the bucket keeps what was read before it). The bucket is clean afterwards.
int rep_store_decode (rep_store_t *self, const char *period, const char *text, size_t len);

//  Drop every bucket.
void rep_store_clear (rep_store_t *self);

//  Every bucket, sorted by period then name, as "period name value\n" lines (caller frees):
//  two stores with the same content give the same text (rebuild equals incremental).
char *rep_store_dump (rep_store_t *self);

//  Number of buckets and of counters over all buckets.
size_t rep_store_size (rep_store_t *self, size_t *counters);

#endif
