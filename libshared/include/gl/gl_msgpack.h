/*  gl_msgpack — msgpack <-> JSON values (jansson), with hard limits on everything from outside.

    Event payloads and request bodies are held in memory as jansson values (json_t): the same
    model the HTTP API uses, so a service moves fields between the two without glue.

    Decoding walks the bytes itself and never trusts a length or count: a string or binary
    length, or an array/map count, that is larger than the bytes remaining is rejected before any
    allocation (every element takes at least one byte, so count <= remaining is a hard bound);
    depth and total element counts are bounded. msgpack-c's own unpacker has no such limits (a
    5-byte frame can make it allocate gigabytes), so it is used for packing only.

    Supported mapping:
      msgpack nil/bool/int/uint/float32/float64/str  <-> null/bool/integer/real/string
      array <-> array; map with string keys <-> object
    Rejected on decode (with a reason): uint above INT64_MAX, bin, ext, non-string or duplicate
    map keys, strings with NUL bytes or invalid UTF-8, NaN/Inf, depth over the limit, trailing
    bytes after the value (gl_mp_decode), truncation.
*/
#ifndef GL_MSGPACK_H
#define GL_MSGPACK_H
#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#define GL_MP_DEPTH_CAP 1024

typedef struct {
    size_t max_depth;       //  nesting of arrays/maps (default 16; values above
                            //  GL_MP_DEPTH_CAP count as the cap: jansson frees recursively)
    size_t max_elements;    //  total values in one frame, map keys included (default 65536)
    size_t max_bytes;       //  frame size (default 1 MiB)
} gl_mp_limits_t;

//  The defaults above.
gl_mp_limits_t gl_mp_limits_default (void);

//  Decode exactly one value filling buf[0..len). Returns a new reference, or NULL with a
//  one-line reason in err (which always names what was wrong and at which byte offset).
json_t *gl_mp_decode (const void *buf, size_t len, const gl_mp_limits_t *limits, char *err,
                      size_t errlen);

//  Decode the one value that starts at buf[*pos] of a frame buf[0..len) whose outer layer the
//  caller reads itself (gl_event reads the envelope map this way, so that a repeated envelope key
//  is its own kind of error). depth is the number of containers around the value and *elements
//  the values the caller has already counted; both are held to limits exactly as gl_mp_decode
//  does for a whole frame. Advances *pos past the value and adds its values to *elements; bytes
//  after it are the caller's. NULL with a reason (offsets into buf) as gl_mp_decode.
json_t *gl_mp_decode_at (const void *buf, size_t len, size_t *pos, size_t depth,
                         size_t *elements, const gl_mp_limits_t *limits, char *err,
                         size_t errlen);

//  Pack value with pk. Returns 0, or -1 when the value cannot be represented or would not
//  decode (a real that is NaN/Inf, a string or key holding a NUL byte, a length over 2^32-1) or
//  the packer's writer fails. Strings are packed as msgpack str, integers in the smallest
//  encoding, reals as float64.
int gl_mp_pack_json (msgpack_packer *pk, const json_t *value);

//  Start an sbuffer with room for a typical event (GL_MP_SBUFFER_START bytes) rather than
//  msgpack-c's 8 KiB. 0, or -1 when out of memory. Free with msgpack_sbuffer_destroy.
#define GL_MP_SBUFFER_START 512
int gl_mp_sbuffer_init (msgpack_sbuffer *sbuf);

//  Pack value into a new buffer; *out is malloc'd (caller frees), *outlen its size. 0 or -1.
int gl_mp_encode (const json_t *value, char **out, size_t *outlen);

//  True when s[0..n) is UTF-8 as RFC 3629 defines it (no overlong forms, no surrogates, nothing
//  above U+10FFFF) and, unless allow_nul, holds no NUL byte. The same check the decoder applies
//  to every string; the HTTP API uses it for query strings and paths.
bool gl_utf8_valid (const void *s, size_t n, bool allow_nul);

#endif
