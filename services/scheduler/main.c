/*  gl-scheduler — reception centres, slots, appointments, reminders and outbound call lists.
    A thin main (STYLE.md): the process skeleton is gl_service; scheduler_new registers the
    handlers, timers and the subscriber. Settings: docs/operations.md.
*/
#include "scheduler.h"
#include "gl/gl_log.h"

int
main (void)
{
    char err[512] = "";
    gl_service_t *svc = gl_service_new ("scheduler", err, sizeof err);
    if (!svc) {
        gl_error ("scheduler: %s", err);
        return 1;
    }
    scheduler_t *scheduler = scheduler_new (svc, err, sizeof err);
    if (!scheduler)
        gl_error ("scheduler: %s", err);
    int rc = scheduler ? gl_service_run (svc) : 1;
    scheduler_destroy (&scheduler);
    gl_service_destroy (&svc);
    return rc;
}
