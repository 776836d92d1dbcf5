/*  gl-reporting: the reporting service (docs/operations.md).
        gl-reporting              run the service
        gl-reporting --rebuild    recompute the aggregates from the event logs and archives
*/
#include "reporting.h"
#include "gl/gl_log.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int
s_rebuild (void)
{
    gl_log_init_from_env ("reporting");
    char err[256];
    gl_config_t *config = gl_config_new_from_env (err, sizeof err);
    if (!config) {
        gl_error ("reporting: %s", err);
        return 1;
    }
    uint64_t events = 0;
    int rc = reporting_rebuild (config, err, sizeof err, &events);
    gl_config_destroy (&config);
    if (rc) {
        gl_error ("reporting: rebuild failed: %s", err);
        return 1;
    }
    gl_info ("reporting: rebuild done, %" PRIu64 " events applied", events);
    return 0;
}

int
main (int argc, char *argv[])
{
    if (argc == 2 && !strcmp (argv[1], "--rebuild"))
        return s_rebuild ();
    if (argc > 1) {
        fprintf (stderr, "usage: gl-reporting [--rebuild]\n");
        return 2;
    }
    char err[256];
    gl_service_t *svc = gl_service_new ("reporting", err, sizeof err);
    if (!svc) {
        gl_error ("reporting: %s", err);
        return 1;
    }
    reporting_t *reporting = reporting_new (svc, err, sizeof err);
    if (!reporting)
        gl_error ("reporting: %s", err);
    int rc = reporting ? gl_service_run (svc) : 1;
    reporting_destroy (&reporting);
    gl_service_destroy (&svc);
    return rc;
}
