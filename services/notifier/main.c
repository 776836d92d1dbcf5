/*  gl-notifier — SMS, e-mail, signed webhooks, console alerts and voice calls from
    notification.requested events (notifier.h says where is what).
*/
#include "notifier.h"
#include "gl/gl_log.h"

int
main (void)
{
    char err[512];
    gl_service_t *svc = gl_service_new ("notifier", err, sizeof err);
    if (!svc) {
        gl_error ("notifier: %s", err);
        return 1;
    }
    notifier_t *notifier = notifier_new (svc, err, sizeof err);
    if (!notifier)
        gl_error ("notifier: %s", err);
    int rc = notifier ? gl_service_run (svc) : 1;
    notifier_destroy (&notifier);
    gl_service_destroy (&svc);
    return rc;
}
