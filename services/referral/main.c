/*  gl-referral: units, routing, referrals, emergencies and their escalation (referral.h). */
#include "referral.h"
#include "gl/gl_log.h"

int
main (void)
{
    char err[512] = "";
    gl_service_t *svc = gl_service_new ("referral", err, sizeof err);
    if (!svc) {
        gl_error ("referral: %s", err);
        return 1;
    }
    referral_t *referral = referral_new (svc, err, sizeof err);
    if (!referral)
        gl_error ("referral: %s", err);
    int rc = referral ? gl_service_run (svc) : 1;
    referral_destroy (&referral);
    gl_service_destroy (&svc);
    return rc;
}
