/*  libFuzzer target: gl_event_decode never crashes, leaks or hangs on any input, refuses with a
    reason, and an event it accepts re-encodes and decodes to the same event. */
#include "gl/gl_event.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


static bool
s_same (const gl_event_t *a, const gl_event_t *b)
{
    return a->v == b->v && strcmp (a->id, b->id) == 0 && strcmp (a->type, b->type) == 0
        && strcmp (a->src, b->src) == 0 && a->seq == b->seq && a->ts == b->ts
        && strcmp (a->corr, b->corr) == 0 && json_equal (a->data, b->data);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    gl_event_err_t why = GL_EVENT_OK;
    char err[256] = "";
    gl_event_t *event = gl_event_decode (data, size, &why, err, sizeof err);
    if (!event) {
        if (why <= GL_EVENT_OK || why >= GL_EVENT_ERR__COUNT || !err[0])
            abort ();
        return 0;
    }
    if (why != GL_EVENT_OK || !json_is_object (event->data))
        abort ();
    char *buf;
    size_t len;
    if (gl_event_encode (event, &buf, &len))
        abort ();
    //  Re-encoding may grow a frame (float32 becomes float64) past the size limit; only then
    //  may the second decode refuse it.
    gl_event_t *again = gl_event_decode (buf, len, &why, err, sizeof err);
    bool grown = len > gl_mp_limits_default ().max_bytes;
    if ((!again && !grown) || (again && !s_same (event, again)))
        abort ();
    gl_event_destroy (&again);
    gl_event_destroy (&event);
    free (buf);
    return 0;
}
