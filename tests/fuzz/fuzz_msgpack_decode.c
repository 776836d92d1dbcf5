/*  libFuzzer target: gl_mp_decode never crashes, leaks or hangs on any input, always gives a
    reason when it refuses, and what it accepts survives encode + decode unchanged. */
#include "gl/gl_msgpack.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err[256] = "";
    json_t *value = gl_mp_decode (data, size, NULL, err, sizeof err);
    if (!value) {
        if (!strstr (err, "offset"))
            abort ();
        return 0;
    }
    char *buf;
    size_t len;
    if (gl_mp_encode (value, &buf, &len))
        abort ();
    //  Re-encoding may grow a frame (float32 becomes float64), so allow it the room.
    gl_mp_limits_t roomy = gl_mp_limits_default ();
    roomy.max_bytes *= 2;
    json_t *again = gl_mp_decode (buf, len, &roomy, err, sizeof err);
    if (!again || !json_equal (value, again))
        abort ();
    //  Our own encoding is canonical: encoding again gives the same bytes.
    char *buf2;
    size_t len2;
    if (gl_mp_encode (again, &buf2, &len2) || len2 != len || memcmp (buf, buf2, len))
        abort ();
    free (buf2);
    free (buf);
    json_decref (again);
    json_decref (value);
    return 0;
}
