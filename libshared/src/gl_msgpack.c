/*  gl_msgpack — see gl_msgpack.h.

    The decoder is a loop over an explicit stack of open containers, not a recursion, so the
    depth limit is the only thing that bounds nesting (a caller may raise it without risking the
    C stack). Every value is attached to its parent as soon as it is made, so an error anywhere
    frees everything with one json_decref of the root.

    Bounds, in the order they are checked for each value: the bytes its header needs; a length
    or count against the bytes that remain (an array element takes at least one byte, a map
    entry two) before anything is allocated; the element count; the depth. Nothing is ever
    allocated from a count: arrays and objects grow as their members arrive.
*/
#include "gl/gl_msgpack.h"
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Containers open at once before the walker's stack moves from the C stack to the heap.
#define S_STACK_INLINE 32

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    size_t max_depth;
    size_t max_elements;
    size_t *elements;
    char *err;
    size_t errlen;
} s_reader_t;

//  An open array or map and how many members (entries, for a map) it still expects.
typedef struct {
    json_t *container;
    uint32_t left;
    bool is_map;
} s_frame_t;

typedef enum { S_SCALAR, S_ARRAY, S_MAP } s_kind_t;

gl_mp_limits_t
gl_mp_limits_default (void)
{
    return (gl_mp_limits_t) {.max_depth = 16, .max_elements = 65536, .max_bytes = 1024 * 1024};
}

static void
s_fail (s_reader_t *r, const char *fmt, ...)
{
    if (!r->err || !r->errlen)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (r->err, r->errlen, fmt, ap);
    va_end (ap);
}

static uint16_t
s_be16 (const uint8_t *p)
{
    return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}

static uint32_t
s_be32 (const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t
s_be64 (const uint8_t *p)
{
    return (uint64_t) s_be32 (p) << 32 | s_be32 (p + 4);
}

//  Make sure `need` more bytes follow the header byte at off; what names the header.
static int
s_need (s_reader_t *r, size_t need, const char *what, size_t off)
{
    if (r->len - r->pos >= need)
        return 0;
    s_fail (r, "truncated %s at offset %zu", what, off);
    return -1;
}

//  True when the 8 bytes hold neither a byte with the high bit set nor a zero byte.
static bool
s_ascii8 (const uint8_t *p)
{
    uint64_t w;
    memcpy (&w, p, 8);
    uint64_t high = w & 0x8080808080808080ULL;
    uint64_t zero = (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL;
    return (high | zero) == 0;
}

//  0 when s[0..n) is UTF-8 without NUL bytes; else -1 with *bad at the first offending byte.
//  Exactly what jansson accepts (RFC 3629: no overlong forms, no surrogates, nothing above
//  U+10FFFF), so json_stringn_nocheck can skip its own pass over the bytes.
static int
s_utf8_check (const uint8_t *s, size_t n, size_t *bad, bool *nul)
{
    size_t i = 0;
    *nul = false;
    while (i < n) {
        if (n - i >= 8 && s_ascii8 (s + i)) {
            i += 8;
            continue;
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == 0) {
                *nul = true;
                break;
            }
            i++;
            continue;
        }
        size_t more;
        uint8_t lo = 0x80, hi = 0xbf;      //  range of the second byte
        if (c >= 0xc2 && c <= 0xdf)
            more = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            if (c == 0xe0)
                lo = 0xa0;                  //  overlong
            else if (c == 0xed)
                hi = 0x9f;                  //  surrogates
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            if (c == 0xf0)
                lo = 0x90;                  //  overlong
            else if (c == 0xf4)
                hi = 0x8f;                  //  above U+10FFFF
        }
        else
            break;
        if (n - i - 1 < more || s[i + 1] < lo || s[i + 1] > hi)
            break;
        size_t k;
        for (k = 2; k <= more; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                break;
        if (k <= more)
            break;
        i += more + 1;
    }
    *bad = i;
    return i == n ? 0 : -1;
}

bool
gl_utf8_valid (const void *s, size_t n, bool allow_nul)
{
    const uint8_t *p = s;
    size_t bad;
    bool nul;
    while (s_utf8_check (p, n, &bad, &nul) != 0) {
        if (!nul || !allow_nul)
            return false;
        p += bad + 1;
        n -= bad + 1;
    }
    return true;
}

//  The body of a string of n bytes whose header began at off: bounds and UTF-8 checked.
static const char *
s_str_body (s_reader_t *r, size_t n, size_t off, const char *what)
{
    if (n > r->len - r->pos) {
        s_fail (r, "%s at offset %zu claims %zu bytes, %zu remain", what, off, n,
                r->len - r->pos);
        return NULL;
    }
    const uint8_t *body = r->buf + r->pos;
    size_t bad;
    bool nul;
    if (s_utf8_check (body, n, &bad, &nul)) {
        s_fail (r, "%s at offset %zu: %s at offset %zu", what, off,
                nul ? "NUL byte" : "invalid UTF-8", r->pos + bad);
        return NULL;
    }
    r->pos += n;
    return (const char *) body;
}

//  Read a str header at the current position (a map key, or a value whose type byte the caller
//  has not consumed). -1 if the byte there is not a str type.
static int
s_str_head (s_reader_t *r, size_t *n, const char **what)
{
    size_t off = r->pos;
    uint8_t b = r->buf[r->pos];
    if (b >= 0xa0 && b <= 0xbf) {
        r->pos++;
        *n = b & 0x1f;
        *what = "fixstr";
        return 0;
    }
    if (b < 0xd9 || b > 0xdb)
        return -1;
    r->pos++;
    *what = b == 0xd9 ? "str8" : b == 0xda ? "str16" : "str32";
    size_t width = b == 0xd9 ? 1 : b == 0xda ? 2 : 4;
    if (s_need (r, width, *what, off))
        return -2;
    const uint8_t *p = r->buf + r->pos;
    *n = width == 1 ? p[0] : width == 2 ? s_be16 (p) : s_be32 (p);
    r->pos += width;
    return 0;
}

static int
s_count (s_reader_t *r, size_t off)
{
    if (++*r->elements <= r->max_elements)
        return 0;
    s_fail (r, "more than %zu values at offset %zu", r->max_elements, off);
    return -1;
}

static json_t *
s_oom (s_reader_t *r, size_t off)
{
    s_fail (r, "out of memory at offset %zu", off);
    return NULL;
}

static json_t *
s_integer (s_reader_t *r, json_int_t v, size_t off)
{
    json_t *value = json_integer (v);
    return value ? value : s_oom (r, off);
}

static json_t *
s_real (s_reader_t *r, double d, size_t off)
{
    if (!isfinite (d)) {
        s_fail (r, "float at offset %zu is NaN or infinite", off);
        return NULL;
    }
    json_t *value = json_real (d);
    return value ? value : s_oom (r, off);
}

//  An array or map header of n members; a map's entries take two bytes at least.
static json_t *
s_container (s_reader_t *r, uint32_t n, bool is_map, const char *what, size_t off,
             s_kind_t *kind, uint32_t *count)
{
    size_t remain = r->len - r->pos;
    if ((is_map && n > remain / 2) || (!is_map && n > remain)) {
        s_fail (r, "%s at offset %zu claims %" PRIu32 " %s, %zu bytes remain", what, off, n,
                is_map ? "entries" : "elements", remain);
        return NULL;
    }
    json_t *value = is_map ? json_object () : json_array ();
    if (!value)
        return s_oom (r, off);
    *kind = is_map ? S_MAP : S_ARRAY;
    *count = n;
    return value;
}

//  Read one value at the current position. Scalars come back complete; for an array or map
//  the empty container comes back with *kind and *count set, its members still to be read.
static json_t *
s_value (s_reader_t *r, s_kind_t *kind, uint32_t *count)
{
    size_t off = r->pos;
    *kind = S_SCALAR;
    if (r->pos >= r->len) {
        s_fail (r, "truncated: value expected at offset %zu", off);
        return NULL;
    }
    uint8_t b = r->buf[r->pos];
    if (b <= 0x7f) {
        r->pos++;
        return s_integer (r, b, off);
    }
    if (b >= 0xe0) {
        r->pos++;
        return s_integer (r, (int8_t) b, off);
    }
    size_t n;
    const char *what;
    int rc = s_str_head (r, &n, &what);
    if (rc == -2)
        return NULL;
    if (rc == 0) {
        const char *body = s_str_body (r, n, off, what);
        if (!body)
            return NULL;
        json_t *value = json_stringn_nocheck (body, n);
        return value ? value : s_oom (r, off);
    }
    r->pos++;
    if (b <= 0x8f)
        return s_container (r, b & 0x0f, true, "fixmap", off, kind, count);
    if (b <= 0x9f)
        return s_container (r, b & 0x0f, false, "fixarray", off, kind, count);

    const uint8_t *p = r->buf + r->pos;
    switch (b) {
        case 0xc0:
            return json_null ();
        case 0xc2:
            return json_false ();
        case 0xc3:
            return json_true ();
        case 0xc1:
            s_fail (r, "reserved type byte 0xc1 at offset %zu", off);
            return NULL;
        case 0xc4: case 0xc5: case 0xc6:
            s_fail (r, "bin at offset %zu: binary values are not supported", off);
            return NULL;
        case 0xc7: case 0xc8: case 0xc9:
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            s_fail (r, "ext at offset %zu: extension types are not supported", off);
            return NULL;
        case 0xca: {
            if (s_need (r, 4, "float32", off))
                return NULL;
            uint32_t bits = s_be32 (p);
            float f;
            memcpy (&f, &bits, 4);
            r->pos += 4;
            return s_real (r, (double) f, off);
        }
        case 0xcb: {
            if (s_need (r, 8, "float64", off))
                return NULL;
            uint64_t bits = s_be64 (p);
            double d;
            memcpy (&d, &bits, 8);
            r->pos += 8;
            return s_real (r, d, off);
        }
        case 0xcc:
            if (s_need (r, 1, "uint8", off))
                return NULL;
            r->pos += 1;
            return s_integer (r, p[0], off);
        case 0xcd:
            if (s_need (r, 2, "uint16", off))
                return NULL;
            r->pos += 2;
            return s_integer (r, s_be16 (p), off);
        case 0xce:
            if (s_need (r, 4, "uint32", off))
                return NULL;
            r->pos += 4;
            return s_integer (r, s_be32 (p), off);
        case 0xcf: {
            if (s_need (r, 8, "uint64", off))
                return NULL;
            uint64_t u = s_be64 (p);
            if (u > INT64_MAX) {
                s_fail (r, "uint64 at offset %zu exceeds INT64_MAX", off);
                return NULL;
            }
            r->pos += 8;
            return s_integer (r, (json_int_t) u, off);
        }
        case 0xd0:
            if (s_need (r, 1, "int8", off))
                return NULL;
            r->pos += 1;
            return s_integer (r, (int8_t) p[0], off);
        case 0xd1:
            if (s_need (r, 2, "int16", off))
                return NULL;
            r->pos += 2;
            return s_integer (r, (int16_t) s_be16 (p), off);
        case 0xd2:
            if (s_need (r, 4, "int32", off))
                return NULL;
            r->pos += 4;
            return s_integer (r, (int32_t) s_be32 (p), off);
        case 0xd3:
            if (s_need (r, 8, "int64", off))
                return NULL;
            r->pos += 8;
            return s_integer (r, (int64_t) s_be64 (p), off);
        case 0xdc:
            if (s_need (r, 2, "array16", off))
                return NULL;
            r->pos += 2;
            return s_container (r, s_be16 (p), false, "array16", off, kind, count);
        case 0xdd:
            if (s_need (r, 4, "array32", off))
                return NULL;
            r->pos += 4;
            return s_container (r, s_be32 (p), false, "array32", off, kind, count);
        case 0xde:
            if (s_need (r, 2, "map16", off))
                return NULL;
            r->pos += 2;
            return s_container (r, s_be16 (p), true, "map16", off, kind, count);
        case 0xdf:
            if (s_need (r, 4, "map32", off))
                return NULL;
            r->pos += 4;
            return s_container (r, s_be32 (p), true, "map32", off, kind, count);
        default:
            //  Every byte value is one of the cases above; keep the compiler and reader sure.
            s_fail (r, "unknown type byte 0x%02x at offset %zu", b, off);
            return NULL;
    }
}

//  A map key: a str, not already in the object. Borrowed pointer into the frame.
static const char *
s_key (s_reader_t *r, json_t *object, size_t *keylen)
{
    size_t off = r->pos;
    if (off >= r->len) {
        s_fail (r, "truncated: map key expected at offset %zu", off);
        return NULL;
    }
    const char *what;
    int rc = s_str_head (r, keylen, &what);
    if (rc == -1)
        s_fail (r, "map key at offset %zu is not a string", off);
    if (rc)
        return NULL;
    const char *key = s_str_body (r, *keylen, off, "map key");
    if (!key)
        return NULL;
    if (json_object_getn (object, key, *keylen)) {
        s_fail (r, "duplicate map key at offset %zu", off);
        return NULL;
    }
    if (s_count (r, off))
        return NULL;
    return key;
}

//  Push an open container; the stack moves to the heap past S_STACK_INLINE. Bounded: depth is
//  limited, and every open container used a byte of input.
static int
s_push (s_reader_t *r, s_frame_t **stack, size_t *cap, size_t *sp, s_frame_t *inline_stack,
        s_frame_t frame)
{
    if (*sp == *cap) {
        size_t ncap = *cap * 2;
        s_frame_t *grown = malloc (ncap * sizeof *grown);
        if (!grown) {
            s_oom (r, r->pos);
            return -1;
        }
        memcpy (grown, *stack, *sp * sizeof *grown);
        if (*stack != inline_stack)
            free (*stack);
        *stack = grown;
        *cap = ncap;
    }
    (*stack) [(*sp)++] = frame;
    return 0;
}

//  Walk one value at r->pos whose enclosing containers number depth.
static json_t *
s_walk (s_reader_t *r, size_t depth)
{
    s_frame_t inline_stack [S_STACK_INLINE];
    s_frame_t *stack = inline_stack;
    size_t cap = S_STACK_INLINE, sp = 0;
    json_t *root = NULL;

    for (;;) {
        s_frame_t *top = sp ? &stack [sp - 1] : NULL;
        const char *key = NULL;
        size_t keylen = 0;
        if (top && top->is_map) {
            key = s_key (r, top->container, &keylen);
            if (!key)
                goto fail;
        }
        size_t off = r->pos;
        s_kind_t kind;
        uint32_t count = 0;
        json_t *value = s_value (r, &kind, &count);
        if (!value)
            goto fail;
        bool deep = kind != S_SCALAR && depth + sp + 1 > r->max_depth;
        if (deep)
            s_fail (r, "nesting deeper than %zu at offset %zu", r->max_depth, off);
        if (deep || s_count (r, off)) {
            json_decref (value);
            goto fail;
        }
        //  Attach at once, so that the root owns everything made so far. The *_new calls take
        //  the reference even when they fail.
        int rc = 0;
        if (!top)
            root = value;
        else
        if (top->is_map)
            rc = json_object_setn_new_nocheck (top->container, key, keylen, value);
        else
            rc = json_array_append_new (top->container, value);
        if (rc) {
            s_oom (r, off);
            goto fail;
        }
        if (top)
            top->left--;
        if (kind != S_SCALAR && count > 0
            && s_push (r, &stack, &cap, &sp, inline_stack, (s_frame_t) {value, count, kind == S_MAP}))
            goto fail;
        while (sp && stack [sp - 1].left == 0)
            sp--;
        if (!sp)
            break;
    }
    if (stack != inline_stack)
        free (stack);
    return root;

fail:
    if (stack != inline_stack)
        free (stack);
    json_decref (root);
    return NULL;
}

json_t *
gl_mp_decode_at (const void *buf, size_t len, size_t *pos, size_t depth, size_t *elements,
                 const gl_mp_limits_t *limits, char *err, size_t errlen)
{
    assert (buf || len == 0);
    assert (pos && *pos <= len);
    assert (elements);
    gl_mp_limits_t defaults = gl_mp_limits_default ();
    if (!limits)
        limits = &defaults;
    s_reader_t r = {
        .buf = buf, .len = len, .pos = *pos,
        .max_depth = limits->max_depth < GL_MP_DEPTH_CAP ? limits->max_depth : GL_MP_DEPTH_CAP,
        .max_elements = limits->max_elements, .elements = elements,
        .err = err, .errlen = errlen
    };
    if (err && errlen)
        err [0] = 0;
    if (len > limits->max_bytes) {
        s_fail (&r, "frame of %zu bytes exceeds the limit of %zu at offset 0", len,
                limits->max_bytes);
        return NULL;
    }
    json_t *value = s_walk (&r, depth);
    if (value)
        *pos = r.pos;
    return value;
}

json_t *
gl_mp_decode (const void *buf, size_t len, const gl_mp_limits_t *limits, char *err,
              size_t errlen)
{
    size_t pos = 0, elements = 0;
    json_t *value = gl_mp_decode_at (buf, len, &pos, 0, &elements, limits, err, errlen);
    if (value && pos != len) {
        if (err && errlen)
            snprintf (err, errlen, "%zu trailing bytes at offset %zu", len - pos, pos);
        json_decref (value);
        return NULL;
    }
    return value;
}

//  A str header and body; NUL bytes would be cut short or rejected on the other side.
static int
s_pack_str (msgpack_packer *pk, const char *s, size_t n)
{
    if (n > UINT32_MAX || memchr (s, 0, n))
        return -1;
    if (msgpack_pack_str (pk, n))
        return -1;
    return msgpack_pack_str_body (pk, s, n);
}

int
gl_mp_pack_json (msgpack_packer *pk, const json_t *value)
{
    assert (pk);
    assert (value);
    switch (json_typeof (value)) {
        case JSON_NULL:
            return msgpack_pack_nil (pk);
        case JSON_TRUE:
            return msgpack_pack_true (pk);
        case JSON_FALSE:
            return msgpack_pack_false (pk);
        case JSON_INTEGER:
            return msgpack_pack_int64 (pk, json_integer_value (value));
        case JSON_REAL: {
            double d = json_real_value (value);
            return isfinite (d) ? msgpack_pack_double (pk, d) : -1;
        }
        case JSON_STRING:
            return s_pack_str (pk, json_string_value (value), json_string_length (value));
        case JSON_ARRAY: {
            size_t n = json_array_size (value);
            if (n > UINT32_MAX || msgpack_pack_array (pk, n))
                return -1;
            for (size_t i = 0; i < n; i++)
                if (gl_mp_pack_json (pk, json_array_get (value, i)))
                    return -1;
            return 0;
        }
        case JSON_OBJECT: {
            size_t n = json_object_size (value);
            if (n > UINT32_MAX || msgpack_pack_map (pk, n))
                return -1;
            //  jansson's iterator takes a non-const object but does not change it.
            json_t *object = (json_t *) value;
            for (void *it = json_object_iter (object); it;
                 it = json_object_iter_next (object, it)) {
                if (s_pack_str (pk, json_object_iter_key (it), json_object_iter_key_len (it))
                    || gl_mp_pack_json (pk, json_object_iter_value (it)))
                    return -1;
            }
            return 0;
        }
    }
    return -1;
}

int
gl_mp_sbuffer_init (msgpack_sbuffer *sbuf)
{
    //  msgpack-c's first allocation is 8 KiB; most of our frames are a few hundred bytes, and
    //  a small start measured faster in a publish loop. The sbuffer doubles as needed.
    msgpack_sbuffer_init (sbuf);
    sbuf->data = malloc (GL_MP_SBUFFER_START);
    if (!sbuf->data)
        return -1;
    sbuf->alloc = GL_MP_SBUFFER_START;
    return 0;
}

int
gl_mp_encode (const json_t *value, char **out, size_t *outlen)
{
    assert (out && outlen);
    msgpack_sbuffer sbuf;
    if (gl_mp_sbuffer_init (&sbuf))
        return -1;
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    if (gl_mp_pack_json (&pk, value)) {
        msgpack_sbuffer_destroy (&sbuf);
        return -1;
    }
    *outlen = sbuf.size;
    *out = msgpack_sbuffer_release (&sbuf);
    return 0;
}
