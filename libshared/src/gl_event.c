/*  gl_event — see gl_event.h and docs/events.md.

    The decoder reads the envelope map itself and hands each value to gl_mp_decode_at, so the
    whole frame is held to the default limits (the envelope is nesting level 1, its map and keys
    count as values) and a repeated envelope key is a shape error, not a msgpack one.

    Which reason a frame gets when it has several problems is fixed, so counters mean the same on
    every service:
      msgpack   the frame is not exactly one well-formed value within the limits (checked to the
                end before anything else is reported);
      version   the frame is well formed and v is an integer other than GL_EVENT_VERSION,
                whatever else is wrong (a newer producer may have changed anything);
      shape     not a map, or an unknown, repeated or missing key (the first one met);
      type      a field of the wrong type or out of range (the first in envelope order).
*/
#include "gl/gl_event.h"
#include "gl/gl_clock.h"
#include <assert.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Envelope keys in the order they are written.
typedef enum { F_V, F_ID, F_TYPE, F_SRC, F_SEQ, F_TS, F_CORR, F_DATA, F_COUNT } s_field_t;
static const char *s_names [F_COUNT] = {"v", "id", "type", "src", "seq", "ts", "corr", "data"};

static void
s_say (char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
}

static int
s_field_index (const char *key, size_t len)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strlen (s_names [i]) == len && memcmp (s_names [i], key, len) == 0)
            return i;
    return -1;
}

//  An unknown key fit for a log line: at most 24 bytes, anything odd shown as '?'.
static void
s_key_for_log (const json_t *key, char *out, size_t size)
{
    const char *s = json_string_value (key);
    size_t n = json_string_length (key), i;
    for (i = 0; i < n && i < 24 && i + 1 < size; i++) {
        char c = s [i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '_' || c == '-' || c == '.';
        out [i] = plain ? c : '?';
    }
    out [i] = 0;
}

bool
gl_event_type_valid (const char *s)
{
    if (!s || !*s || *s == '.')
        return false;
    size_t n;
    for (n = 0; s [n]; n++) {
        char c = s [n];
        if (n == GL_EVENT_NAME_MAX)
            return false;
        if (c == '.') {
            if (s [n + 1] == '.' || s [n + 1] == 0)
                return false;
        }
        else
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

bool
gl_event_src_valid (const char *s)
{
    if (!s || !*s)
        return false;
    for (size_t n = 0; s [n]; n++) {
        char c = s [n];
        if (n == GL_EVENT_NAME_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool
gl_event_location_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n < 1 || n > GL_EVENT_LOCATION_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

gl_event_t *
gl_event_new (const char *type)
{
    if (!gl_event_type_valid (type))
        return NULL;
    gl_event_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->data = json_object ();
    if (!self->data) {
        free (self);
        return NULL;
    }
    self->v = GL_EVENT_VERSION;
    gl_id_new (self->id);
    strcpy (self->type, type);
    self->ts = gl_now_ms ();
    return self;
}

void
gl_event_destroy (gl_event_t **self_p)
{
    assert (self_p);
    gl_event_t *self = *self_p;
    if (!self)
        return;
    json_decref (self->data);
    free (self);
    *self_p = NULL;
}

void
gl_event_set_corr (gl_event_t *self, const char *corr)
{
    assert (self);
    assert (corr);
    size_t n = strlen (corr);
    assert (n <= GL_EVENT_NAME_MAX);
    memcpy (self->corr, corr, n + 1);
}

//  What the decoder would refuse, refused here too: a frame we write is a frame we read.
static bool
s_encodable (const gl_event_t *self)
{
    return gl_id_valid (self->id) && gl_event_type_valid (self->type)
        && gl_event_src_valid (self->src)
        && memchr (self->corr, 0, sizeof self->corr) != NULL
        && self->seq <= INT64_MAX && self->ts >= 0 && json_is_object (self->data);
}

static int
s_pack_key (msgpack_packer *pk, s_field_t field)
{
    return msgpack_pack_str_with_body (pk, s_names [field], strlen (s_names [field]));
}

static int
s_pack_text (msgpack_packer *pk, s_field_t field, const char *text)
{
    return s_pack_key (pk, field) || msgpack_pack_str_with_body (pk, text, strlen (text));
}

int
gl_event_encode (const gl_event_t *self, char **out, size_t *outlen)
{
    assert (self);
    assert (out && outlen);
    if (!s_encodable (self))
        return -1;
    msgpack_sbuffer sbuf;
    if (gl_mp_sbuffer_init (&sbuf))
        return -1;
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    int rc = msgpack_pack_map (&pk, F_COUNT)
          || s_pack_key (&pk, F_V) || msgpack_pack_uint32 (&pk, self->v)
          || s_pack_text (&pk, F_ID, self->id)
          || s_pack_text (&pk, F_TYPE, self->type)
          || s_pack_text (&pk, F_SRC, self->src)
          || s_pack_key (&pk, F_SEQ) || msgpack_pack_uint64 (&pk, self->seq)
          || s_pack_key (&pk, F_TS) || msgpack_pack_int64 (&pk, self->ts)
          || s_pack_text (&pk, F_CORR, self->corr)
          || s_pack_key (&pk, F_DATA) || gl_mp_pack_json (&pk, self->data);
    if (rc) {
        msgpack_sbuffer_destroy (&sbuf);
        return -1;
    }
    *outlen = sbuf.size;
    *out = msgpack_sbuffer_release (&sbuf);
    return 0;
}

//  The envelope key at *pos. The usual spelling (a fixstr naming a field) is matched in place;
//  anything else is decoded like any map key, for an exact reason. Returns the field, -1 for an
//  unknown key (its text in unknown, for the reason), or -2 when the frame is malformed.
static int
s_read_key (const uint8_t *p, size_t len, size_t *pos, size_t *elements,
            const gl_mp_limits_t *limits, char *unknown, size_t unknown_size, char *err,
            size_t errlen)
{
    size_t off = *pos;
    if (off < len && p [off] >= 0xa0 && p [off] <= 0xa4 && (size_t) (p [off] & 0x1f) < len - off) {
        int field = s_field_index ((const char *) p + off + 1, p [off] & 0x1f);
        if (field >= 0) {
            if (++*elements > limits->max_elements) {
                s_say (err, errlen, "more than %zu values at offset %zu", limits->max_elements,
                       off);
                return -2;
            }
            *pos = off + 1 + (p [off] & 0x1f);
            return field;
        }
    }
    json_t *key = gl_mp_decode_at (p, len, pos, 1, elements, limits, err, errlen);
    if (!key)
        return -2;
    int field = -1;
    if (!json_is_string (key))
        s_say (err, errlen, "map key at offset %zu is not a string", off);
    else {
        field = s_field_index (json_string_value (key), json_string_length (key));
        if (field < 0)
            s_key_for_log (key, unknown, unknown_size);
    }
    bool is_string = json_is_string (key);
    json_decref (key);
    return is_string ? field : -2;
}

//  Why a string field of at most max bytes that must pass valid (when given) is refused, or NULL.
static const char *
s_text_problem (const json_t *value, size_t max, bool (*valid) (const char *), const char *what)
{
    if (!json_is_string (value))
        return "not a string";
    if (json_string_length (value) > max)
        return "too long";
    if (valid && !valid (json_string_value (value)))
        return what;
    return NULL;
}

static const char *
s_count_problem (const json_t *value)
{
    if (!json_is_integer (value))
        return "not an integer";
    return json_integer_value (value) < 0 ? "negative" : NULL;
}

//  The first field (in envelope order) of the wrong type or out of range, or -1.
static int
s_first_bad_field (json_t **field, const char **problem)
{
    const char *why [F_COUNT] = {
        [F_V] = json_is_integer (field [F_V]) ? NULL : "not an integer",
        [F_ID] = s_text_problem (field [F_ID], GL_ID_LEN, gl_id_valid,
                                 "not 32 lowercase hex digits"),
        [F_TYPE] = s_text_problem (field [F_TYPE], GL_EVENT_NAME_MAX, gl_event_type_valid,
                                   "not a valid type name"),
        [F_SRC] = s_text_problem (field [F_SRC], GL_EVENT_NAME_MAX, gl_event_src_valid,
                                  "not a valid source name"),
        [F_SEQ] = s_count_problem (field [F_SEQ]),
        [F_TS] = s_count_problem (field [F_TS]),
        [F_CORR] = s_text_problem (field [F_CORR], GL_EVENT_NAME_MAX, NULL, NULL),
        [F_DATA] = json_is_object (field [F_DATA]) ? NULL : "not a map",
    };
    for (int f = 0; f < F_COUNT; f++)
        if (why [f]) {
            *problem = why [f];
            return f;
        }
    return -1;
}

//  Reads the fields into field[] (offsets of their values into at[]); returns the reason the
//  frame is refused, or GL_EVENT_OK. Shape problems are noted in err and the walk goes on, so a
//  later msgpack problem or a version mismatch still wins.
static gl_event_err_t
s_read_envelope (const uint8_t *p, size_t len, json_t **field, size_t *at, char *err,
                 size_t errlen)
{
    gl_mp_limits_t limits = gl_mp_limits_default ();
    if (len > limits.max_bytes) {
        s_say (err, errlen, "frame of %zu bytes exceeds the limit of %zu at offset 0", len,
               limits.max_bytes);
        return GL_EVENT_ERR_MSGPACK;
    }
    if (len == 0) {
        s_say (err, errlen, "truncated: value expected at offset 0");
        return GL_EVENT_ERR_MSGPACK;
    }
    uint32_t n;
    size_t pos;
    if (p [0] >= 0x80 && p [0] <= 0x8f) {
        n = p [0] & 0x0f;
        pos = 1;
    }
    else
    if (p [0] == 0xde && len >= 3) {
        n = (uint32_t) p [1] << 8 | p [2];
        pos = 3;
    }
    else
    if (p [0] == 0xdf && len >= 5) {
        n = (uint32_t) p [1] << 24 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 8 | p [4];
        pos = 5;
    }
    else {
        //  Not a map, or a truncated map header: let the msgpack layer say which.
        json_t *value = gl_mp_decode (p, len, &limits, err, errlen);
        if (!value)
            return GL_EVENT_ERR_MSGPACK;
        json_decref (value);
        s_say (err, errlen, "envelope at offset 0 is not a map");
        return GL_EVENT_ERR_SHAPE;
    }
    if (n > (len - pos) / 2) {
        s_say (err, errlen, "map at offset 0 claims %" PRIu32 " entries, %zu bytes remain", n,
               len - pos);
        return GL_EVENT_ERR_MSGPACK;
    }
    size_t elements = 1;
    char shape [128] = "";
    for (uint32_t i = 0; i < n; i++) {
        size_t keyoff = pos;
        char unknown [32] = "";
        int f = s_read_key (p, len, &pos, &elements, &limits, unknown, sizeof unknown, err,
                            errlen);
        if (f == -2)
            return GL_EVENT_ERR_MSGPACK;
        size_t valoff = pos;
        json_t *value = gl_mp_decode_at (p, len, &pos, 1, &elements, &limits, err, errlen);
        if (!value)
            return GL_EVENT_ERR_MSGPACK;
        if (f >= 0 && !field [f]) {
            field [f] = value;
            at [f] = valoff;
            continue;
        }
        json_decref (value);
        if (*shape)
            continue;
        if (f < 0)
            snprintf (shape, sizeof shape, "unknown envelope key '%s' at offset %zu", unknown,
                      keyoff);
        else
            snprintf (shape, sizeof shape, "duplicate envelope key '%s' at offset %zu",
                      s_names [f], keyoff);
    }
    if (pos != len) {
        s_say (err, errlen, "%zu trailing bytes at offset %zu", len - pos, pos);
        return GL_EVENT_ERR_MSGPACK;
    }
    if (json_is_integer (field [F_V]) && json_integer_value (field [F_V]) != GL_EVENT_VERSION) {
        s_say (err, errlen, "unsupported version %" JSON_INTEGER_FORMAT " at offset %zu",
               json_integer_value (field [F_V]), at [F_V]);
        return GL_EVENT_ERR_VERSION;
    }
    for (int f = 0; f < F_COUNT && !*shape; f++)
        if (!field [f])
            snprintf (shape, sizeof shape, "missing envelope key '%s'", s_names [f]);
    if (*shape) {
        s_say (err, errlen, "%s", shape);
        return GL_EVENT_ERR_SHAPE;
    }
    const char *problem;
    int bad = s_first_bad_field (field, &problem);
    if (bad >= 0) {
        s_say (err, errlen, "envelope field '%s' at offset %zu: %s", s_names [bad], at [bad],
               problem);
        return GL_EVENT_ERR_TYPE;
    }
    return GL_EVENT_OK;
}

gl_event_t *
gl_event_decode (const void *buf, size_t len, gl_event_err_t *why, char *err, size_t errlen)
{
    assert (why);
    assert (buf || len == 0);
    if (err && errlen)
        err [0] = 0;
    json_t *field [F_COUNT] = {NULL};
    size_t at [F_COUNT] = {0};
    gl_event_t *self = NULL;
    *why = s_read_envelope (buf, len, field, at, err, errlen);
    if (*why == GL_EVENT_OK) {
        self = calloc (1, sizeof *self);
        if (!self) {
            s_say (err, errlen, "out of memory");
            *why = GL_EVENT_ERR_MSGPACK;
        }
    }
    if (self) {
        //  Lengths were checked against the buffers above; strings hold no NUL bytes.
        self->v = GL_EVENT_VERSION;
        memcpy (self->id, json_string_value (field [F_ID]), json_string_length (field [F_ID]) + 1);
        memcpy (self->type, json_string_value (field [F_TYPE]),
                json_string_length (field [F_TYPE]) + 1);
        memcpy (self->src, json_string_value (field [F_SRC]),
                json_string_length (field [F_SRC]) + 1);
        memcpy (self->corr, json_string_value (field [F_CORR]),
                json_string_length (field [F_CORR]) + 1);
        self->seq = (uint64_t) json_integer_value (field [F_SEQ]);
        self->ts = json_integer_value (field [F_TS]);
        self->data = field [F_DATA];
        field [F_DATA] = NULL;
    }
    for (int f = 0; f < F_COUNT; f++)
        json_decref (field [f]);
    return self;
}

const char *
gl_event_err_name (gl_event_err_t why)
{
    switch (why) {
        case GL_EVENT_OK:
            return "ok";
        case GL_EVENT_ERR_MSGPACK:
            return "msgpack";
        case GL_EVENT_ERR_SHAPE:
            return "shape";
        case GL_EVENT_ERR_TYPE:
            return "type";
        case GL_EVENT_ERR_VERSION:
            return "version";
        case GL_EVENT_ERR__COUNT:
            break;
    }
    return "unknown";
}

const char *
gl_event_str (const gl_event_t *self, const char *key, const char *def)
{
    assert (self);
    assert (key);
    const json_t *value = json_object_get (self->data, key);
    return json_is_string (value) ? json_string_value (value) : def;
}

int64_t
gl_event_int (const gl_event_t *self, const char *key, int64_t def)
{
    assert (self);
    assert (key);
    const json_t *value = json_object_get (self->data, key);
    return json_is_integer (value) ? json_integer_value (value) : def;
}
