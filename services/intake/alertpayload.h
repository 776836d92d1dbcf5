/*  alertpayload — the check of a notification.console payload (docs/events.md) before intake
    keeps it as a console alert (alerts.c). The payload comes from another service over the bus:
    outside data, checked field by field, never trusted; a libFuzzer target
    (tests/fuzz/fuzz_alert_payload.c) feeds it any event.
*/
#ifndef INTAKE_ALERTPAYLOAD_H
#define INTAKE_ALERTPAYLOAD_H
#include "gl/gl_event.h"
#include <stdbool.h>
#include <stddef.h>

#define ALERTPAYLOAD_TITLE_MAX  1024    //  bytes of a rendered subject
#define ALERTPAYLOAD_BODY_MAX   8192    //  bytes of a rendered text
#define ALERTPAYLOAD_LANG_MAX   16

//  One alert as the event gives it (strings borrowed from the event).
typedef struct {
    const char *nid, *tmpl, *priority, *title, *body, *language;
    size_t title_len, body_len;
    const char *kind, *to;      //  user|unit|role and its id, code or role
    bool other;                 //  a recipient intake does not show (person, partner, endpoint)
} alertpayload_t;

//  Check ev's payload: 0 with *a filled (kind and to set unless other), or -1 with the name of
//  the field that is wrong in *field.
int alertpayload_parse (const gl_event_t *ev, alertpayload_t *a, const char **field);

#endif
