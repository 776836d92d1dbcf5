/*  rep_store — period buckets of named counters (see store.h).
    Each bucket is an open-addressing hash table (FNV-1a, linear probing, load <= 1/2): ingest
    touches a dozen counters per event, so the lookup must be cheap.
*/
#include "store.h"
#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    int64_t value;
} s_slot_t;

typedef struct {
    s_slot_t *slots;
    size_t cap;
    size_t n;
    bool dirty;
} s_bucket_t;

struct _rep_store_t {
    zhashx_t *buckets;      //  period -> s_bucket_t
    size_t max_names;
};

static uint64_t
s_hash (const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t) *s) * 1099511628211ULL;
    return h;
}

static bool
s_is_max (const char *name)
{
    size_t len = strlen (name);
    return len >= 4 && memcmp (name + len - 4, "_max", 4) == 0;
}

static void
s_bucket_free (void **item)
{
    s_bucket_t *b = (s_bucket_t *) *item;
    if (!b)
        return;
    for (size_t i = 0; i < b->cap; i++)
        free (b->slots[i].name);
    free (b->slots);
    free (b);
    *item = NULL;
}

static s_bucket_t *
s_bucket_new (void)
{
    s_bucket_t *b = calloc (1, sizeof *b);
    assert (b);
    b->cap = 64;
    b->slots = calloc (b->cap, sizeof (s_slot_t));
    assert (b->slots);
    return b;
}

//  The slot holding name, or the empty slot where it would go.
static s_slot_t *
s_find (s_bucket_t *b, const char *name)
{
    size_t mask = b->cap - 1;
    size_t i = (size_t) s_hash (name) & mask;
    while (b->slots[i].name && strcmp (b->slots[i].name, name) != 0)
        i = (i + 1) & mask;
    return &b->slots[i];
}

static void
s_grow (s_bucket_t *b)
{
    s_slot_t *old = b->slots;
    size_t oldcap = b->cap;
    b->cap *= 2;
    b->slots = calloc (b->cap, sizeof (s_slot_t));
    assert (b->slots);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].name)
            *s_find (b, old[i].name) = old[i];
    free (old);
}

rep_store_t *
rep_store_new (size_t max_names)
{
    rep_store_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->max_names = max_names ? max_names : 50000;
    self->buckets = zhashx_new ();
    assert (self->buckets);
    zhashx_set_destructor (self->buckets, s_bucket_free);
    return self;
}

void
rep_store_destroy (rep_store_t **self_p)
{
    assert (self_p);
    rep_store_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->buckets);
    free (self);
    *self_p = NULL;
}

static s_bucket_t *
s_bucket (rep_store_t *self, const char *period, bool create)
{
    s_bucket_t *b = (s_bucket_t *) zhashx_lookup (self->buckets, period);
    if (!b && create) {
        b = s_bucket_new ();
        zhashx_insert (self->buckets, period, b);
    }
    return b;
}

//  Set or merge one counter in b; returns false when the bucket is full.
static bool
s_put (rep_store_t *self, s_bucket_t *b, const char *name, int64_t delta, bool merge)
{
    s_slot_t *slot = s_find (b, name);
    if (slot->name) {
        if (!merge)
            slot->value = delta;
        else if (s_is_max (name))
            slot->value = delta > slot->value ? delta : slot->value;
        else
            slot->value += delta;
        return true;
    }
    if (b->n >= self->max_names)
        return false;
    slot->name = strdup (name);
    assert (slot->name);
    slot->value = delta;
    b->n++;
    if (b->n * 2 > b->cap)
        s_grow (b);
    return true;
}

rep_bucket_t *
rep_store_bucket (rep_store_t *self, const char *period)
{
    return (rep_bucket_t *) s_bucket (self, period, true);
}

void
rep_store_add (rep_store_t *self, const char *period, const char *name, int64_t delta)
{
    assert (self && period && name);
    rep_store_bucket_add (self, (rep_bucket_t *) s_bucket (self, period, true), name, delta);
}

void
rep_store_bucket_add (rep_store_t *self, rep_bucket_t *bucket, const char *name, int64_t delta)
{
    s_bucket_t *b = (s_bucket_t *) bucket;
    b->dirty = true;
    if (!s_put (self, b, name, delta, true)) {
        //  The overflow counter itself may not fit: then it is the slot we lose.
        s_slot_t *slot = s_find (b, "_overflow");
        if (slot->name)
            slot->value++;
    }
}

int64_t
rep_store_get (rep_store_t *self, const char *period, const char *name)
{
    s_bucket_t *b = s_bucket (self, period, false);
    if (!b)
        return 0;
    s_slot_t *slot = s_find (b, name);
    return slot->name ? slot->value : 0;
}

bool
rep_store_has (rep_store_t *self, const char *period)
{
    return s_bucket (self, period, false) != NULL;
}

void
rep_store_each (rep_store_t *self, const char *period, rep_store_fn *fn, void *arg)
{
    s_bucket_t *b = s_bucket (self, period, false);
    if (!b)
        return;
    for (size_t i = 0; i < b->cap; i++)
        if (b->slots[i].name)
            fn (arg, b->slots[i].name, b->slots[i].value);
}

void
rep_store_periods (rep_store_t *self, bool dirty_only, rep_period_fn *fn, void *arg)
{
    zlistx_t *keys = zhashx_keys (self->buckets);
    for (const char *k = zlistx_first (keys); k; k = zlistx_next (keys)) {
        s_bucket_t *b = s_bucket (self, k, false);
        if (!dirty_only || b->dirty)
            fn (arg, k);
    }
    zlistx_destroy (&keys);
}

void
rep_store_set_dirty (rep_store_t *self, const char *period, bool dirty)
{
    s_bucket_t *b = s_bucket (self, period, false);
    if (b)
        b->dirty = dirty;
}

static int
s_cmp_slot (const void *a, const void *b)
{
    const s_slot_t *x = a, *y = b;
    return strcmp (x->name, y->name);
}

//  The bucket's slots, sorted by name (caller frees the array, not the names).
static s_slot_t *
s_sorted (s_bucket_t *b)
{
    s_slot_t *v = malloc ((b->n + 1) * sizeof *v);
    assert (v);
    size_t k = 0;
    for (size_t i = 0; i < b->cap; i++)
        if (b->slots[i].name)
            v[k++] = b->slots[i];
    qsort (v, k, sizeof *v, s_cmp_slot);
    return v;
}

char *
rep_store_encode (rep_store_t *self, const char *period)
{
    s_bucket_t *b = s_bucket (self, period, false);
    if (!b)
        return NULL;
    s_slot_t *v = s_sorted (b);
    size_t cap = 64;
    for (size_t i = 0; i < b->n; i++)
        cap += strlen (v[i].name) + 24;
    char *out = malloc (cap);
    assert (out);
    size_t len = 0;
    for (size_t i = 0; i < b->n; i++)
        len += (size_t) snprintf (out + len, cap - len, "%s\t%" PRId64 "\n", v[i].name,
                                  v[i].value);
    out[len] = 0;
    free (v);
    return out;
}

int
rep_store_decode (rep_store_t *self, const char *period, const char *text, size_t len)
{
    zhashx_delete (self->buckets, period);
    s_bucket_t *b = s_bucket (self, period, true);
    const char *p = text, *end = text + len;
    int rc = 0;
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t) (end - p));
        const char *tab = memchr (p, '\t', (size_t) ((nl ? nl : end) - p));
        if (!nl || !tab || tab == p || tab - p > 1000) {
            rc = -1;
            break;
        }
        char name[1024], num[32];
        size_t nlen = (size_t) (tab - p), vlen = (size_t) (nl - tab - 1);
        if (vlen == 0 || vlen >= sizeof num) {
            rc = -1;
            break;
        }
        memcpy (name, p, nlen);
        name[nlen] = 0;
        memcpy (num, tab + 1, vlen);
        num[vlen] = 0;
        char *stop = NULL;
        long long value = strtoll (num, &stop, 10);
        if (*stop) {
            rc = -1;
            break;
        }
        s_put (self, b, name, value, false);
        p = nl + 1;
    }
    b->dirty = false;
    return rc;
}

void
rep_store_clear (rep_store_t *self)
{
    zhashx_purge (self->buckets);
}

static int
s_cmp_str (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

char *
rep_store_dump (rep_store_t *self)
{
    size_t nb = zhashx_size (self->buckets);
    char **periods = calloc (nb + 1, sizeof (char *));
    assert (periods);
    size_t k = 0;
    zlistx_t *keys = zhashx_keys (self->buckets);
    for (const char *p = zlistx_first (keys); p; p = zlistx_next (keys))
        periods[k++] = strdup (p);
    zlistx_destroy (&keys);
    qsort (periods, k, sizeof (char *), s_cmp_str);
    size_t cap = 1024, len = 0;
    char *out = malloc (cap);
    assert (out);
    out[0] = 0;
    for (size_t i = 0; i < k; i++) {
        s_bucket_t *b = s_bucket (self, periods[i], false);
        s_slot_t *v = s_sorted (b);
        for (size_t j = 0; j < b->n; j++) {
            size_t need = strlen (periods[i]) + strlen (v[j].name) + 32;
            if (len + need >= cap) {
                cap = (cap + need) * 2;
                out = realloc (out, cap);
                assert (out);
            }
            len += (size_t) snprintf (out + len, cap - len, "%s %s %" PRId64 "\n", periods[i],
                                      v[j].name, v[j].value);
        }
        free (v);
        free (periods[i]);
    }
    free (periods);
    return out;
}

size_t
rep_store_size (rep_store_t *self, size_t *counters)
{
    if (counters) {
        *counters = 0;
        for (s_bucket_t *b = zhashx_first (self->buckets); b; b = zhashx_next (self->buckets))
            *counters += b->n;
    }
    return zhashx_size (self->buckets);
}
