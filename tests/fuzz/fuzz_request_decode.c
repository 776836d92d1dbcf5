/*  libFuzzer target: gl_rep_parse_request (the server's request parser) never crashes, leaks or
    hangs on any input; it refuses with a code, a reason, and an id only when the id is valid; a
    request it accepts re-encodes and parses to the same request. */
#include "gl/gl_msgpack.h"
#include "gl/gl_rep.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool
s_same (const gl_rep_request_t *a, const gl_rep_request_t *b)
{
    return strcmp (a->id, b->id) == 0 && strcmp (a->op, b->op) == 0
        && strcmp (a->key, b->key) == 0 && strcmp (a->auth, b->auth) == 0
        && a->ttl_ms == b->ttl_ms && json_equal (a->body, b->body);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    gl_rep_request_t req;
    gl_rep_error_t err;
    if (gl_rep_parse_request (data, size, &req, &err) != 0) {
        if (!err.code[0] || !err.message[0] || req.body)
            abort ();
        if (req.id[0] && !gl_id_valid (req.id))
            abort ();
        return 0;
    }
    if (!gl_id_valid (req.id) || !gl_req_op_valid (req.op) || !gl_req_key_valid (req.key)
        || req.ttl_ms < 0 || req.ttl_ms > GL_REQ_TTL_MAX || !json_is_object (req.body))
        abort ();
    json_t *map = json_pack ("{s:i, s:s, s:s, s:s, s:I, s:s, s:O}", "v", GL_REQ_VERSION, "id",
                             req.id, "op", req.op, "key", req.key, "ttl", (json_int_t) req.ttl_ms,
                             "auth", req.auth, "body", req.body);
    if (!map)
        abort ();
    char *buf;
    size_t len;
    if (gl_mp_encode (map, &buf, &len) != 0)
        abort ();
    //  Re-encoding may grow a frame (float32 becomes float64) past the size limit; only then may
    //  the second parse refuse it.
    gl_rep_request_t again;
    int rc = gl_rep_parse_request (buf, len, &again, &err);
    bool grown = len > gl_mp_limits_default ().max_bytes;
    if ((rc != 0 && !grown) || (rc == 0 && !s_same (&req, &again)))
        abort ();
    gl_rep_request_clear (&again);
    gl_rep_request_clear (&req);
    json_decref (map);
    free (buf);
    return 0;
}
