/*  libFuzzer target: intake's check of a notification.console payload (alertpayload.c). The
    payload comes from notifier over the bus: any JSON object is either refused naming a field or
    accepted only with a valid notification id, a priority of emergency or routine, a title and
    body within their bounds, and a console recipient (user id, unit code, role) or one marked
    other. alertpayload.c and units.c are compiled in (fuzz targets link glshared only). */
#include "../../services/intake/alertpayload.c"
#include "../../services/intake/units.c"
#include "gl/gl_id.h"
#include <stdint.h>
#include <stdlib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    json_t *v = json_loadb ((const char *) data, size, JSON_DECODE_ANY, NULL);
    if (!json_is_object (v)) {
        json_decref (v);
        return 0;
    }
    gl_event_t *ev = gl_event_new ("notification.console");
    if (!ev)
        abort ();
    json_decref (ev->data);
    ev->data = v;
    alertpayload_t a;
    const char *field = NULL;
    if (alertpayload_parse (ev, &a, &field) == 0) {
        if (!a.nid || !gl_id_valid (a.nid) || !a.priority || !a.title || !a.body || !a.kind)
            abort ();
        if (strcmp (a.priority, "emergency") != 0 && strcmp (a.priority, "routine") != 0)
            abort ();
        if (a.title_len > ALERTPAYLOAD_TITLE_MAX || a.body_len > ALERTPAYLOAD_BODY_MAX)
            abort ();
        if (!a.other && (!a.to || !*a.to))
            abort ();
    }
    else if (!field || !*field)
        abort ();
    gl_event_destroy (&ev);
    return 0;
}
