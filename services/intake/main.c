/*  gl-intake — Greenline's front door: the JSON API under /api/v1 and the web console.

    Configuration comes from the environment and GL_CONFIG (docs/api.md, "Configuration").
    `gl-intake --routes` prints the route table and exits (the docs test compares it with the
    OpenAPI document).
*/
#include "intake.h"
#include "gl/gl_log.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>

int
main (int argc, char *argv[])
{
    if (argc == 2 && strcmp (argv[1], "--routes") == 0)
        return intake_print_routes (stdout) == 0 ? 0 : 1;
    if (argc > 1) {
        fprintf (stderr, "usage: gl-intake [--routes]\n");
        return 2;
    }
    //  SIGINT and SIGTERM are blocked in every thread (threads inherit the mask) and taken from
    //  a signalfd by intake_wait; CZMQ's own handler stays off.
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    signal (SIGPIPE, SIG_IGN);
    zsys_handler_set (NULL);

    gl_log_init_from_env (INTAKE_SERVICE);
    char err[256];
    gl_config_t *config = gl_config_new_from_env (err, sizeof err);
    if (!config) {
        gl_error ("intake: %s", err);
        return 1;
    }
    zactor_t *server = zactor_new (intake_actor, config);
    int sig = server ? intake_wait (server, &stop) : -1;
    if (sig > 0)
        gl_info ("intake: %s received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    zactor_destroy (&server);
    gl_config_destroy (&config);
    return sig > 0 ? 0 : 1;
}
