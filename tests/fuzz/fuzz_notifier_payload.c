/*  libFuzzer target: the notification.requested payload check (payload.c). Other services'
    events are outside data for notifier: any JSON value is either refused naming a field or
    accepted only when it has a valid id, template, priority, channels and recipient, and
    params within their bounds. payload.c is compiled in (fuzz targets link glshared only). */
#include "../../services/notifier/payload.c"
#include <stdint.h>
#include <stdlib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    json_t *v = json_loadb ((const char *) data, size, JSON_DECODE_ANY, NULL);
    if (!v)
        return 0;
    char field[64] = "";
    if (delivery_validate (v, field, sizeof field) == 0) {
        const char *nid = json_string_value (json_object_get (v, "notification_id"));
        if (!nid || !gl_id_valid (nid) || !json_is_array (json_object_get (v, "channels")))
            abort ();
    }
    else if (!field[0])
        abort ();
    json_decref (v);
    return 0;
}
