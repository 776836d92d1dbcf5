/*  gl_event — the event envelope {v, id, type, src, seq, ts, corr, data} and its msgpack form.

    On the wire (docs/events.md): a msgpack map with exactly these keys, in this order when we
    write it, in any order when we read it:
      v     uint   schema version, GL_EVENT_VERSION (1); any other value is rejected
      id    str    32 lowercase hex characters, unique per event (gl_id)
      type  str    dotted lowercase name, 1..63 bytes [a-z0-9_.], e.g. "call.offered"
      src   str    the source's stable name, 1..63 bytes [a-z0-9_-], e.g. "intake-1"
      seq   uint   per-source sequence number, 1, 2, 3 ... (0 = not yet assigned)
      ts    int    unix ms on the source's clock
      corr  str    correlation id (Greenline contact/referral/appointment id), 0..63 bytes; "" if none
      data  map    payload: string keys; values nil/bool/int/float/str/array/map
    Unknown keys in the envelope are rejected (a newer producer must bump v).
*/
#ifndef GL_EVENT_H
#define GL_EVENT_H
#include "gl/gl_id.h"
#include "gl/gl_msgpack.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GL_EVENT_VERSION 1
#define GL_EVENT_NAME_MAX 63

typedef struct {
    uint32_t v;
    char id[GL_ID_LEN + 1];
    char type[GL_EVENT_NAME_MAX + 1];
    char src[GL_EVENT_NAME_MAX + 1];
    uint64_t seq;
    int64_t ts;
    char corr[GL_EVENT_NAME_MAX + 1];
    json_t *data;       //  owned: an object, never NULL on a valid event
} gl_event_t;

//  Why a frame was rejected; counters per reason are kept by gl_event_decode's caller.
typedef enum {
    GL_EVENT_OK = 0,
    GL_EVENT_ERR_MSGPACK,       //  not well-formed msgpack, truncated, over a limit
    GL_EVENT_ERR_SHAPE,         //  not a map, missing/unknown/duplicate key
    GL_EVENT_ERR_TYPE,          //  a field has the wrong type or is out of range
    GL_EVENT_ERR_VERSION,       //  v is not GL_EVENT_VERSION
    GL_EVENT_ERR__COUNT
} gl_event_err_t;

//  New event of the given type with a fresh id, ts = gl_now_ms(), seq 0, empty corr and an empty
//  data object. NULL if type is not a valid name.
gl_event_t *gl_event_new (const char *type);

void gl_event_destroy (gl_event_t **self_p);

//  Set the correlation id (truncated names are an assertion: callers pass ids).
void gl_event_set_corr (gl_event_t *self, const char *corr);

//  Encode to msgpack. *out is malloc'd (caller frees). 0, or -1 if data cannot be encoded.
int gl_event_encode (const gl_event_t *self, char **out, size_t *outlen);

//  Decode and validate a frame from outside. Returns a new event, or NULL with *why set and a
//  reason in err (err may be NULL). Never asserts on input.
gl_event_t *gl_event_decode (const void *buf, size_t len, gl_event_err_t *why, char *err,
                             size_t errlen);

//  Short name of a reject reason, for metrics labels ("msgpack", "shape", ...).
const char *gl_event_err_name (gl_event_err_t why);

//  True when s is a valid type name ([a-z0-9_.], 1..63, no leading/trailing/double dot).
bool gl_event_type_valid (const char *s);

//  True when s is a valid source name ([a-z0-9_-], 1..63).
bool gl_event_src_valid (const char *s);

//  True when s is a location code as payloads carry one (emergency.raised, referral.requested,
//  contact.* agd.location): 1..GL_EVENT_LOCATION_MAX of [A-Za-z0-9_.-].
#define GL_EVENT_LOCATION_MAX 32
bool gl_event_location_valid (const char *s);

//  Payload helpers: a string field or def; an integer field or def (borrowed).
const char *gl_event_str (const gl_event_t *self, const char *key, const char *def);
int64_t gl_event_int (const gl_event_t *self, const char *key, int64_t def);

#endif
