/*  gl_testenv — what tests need to run against real parts: a private redis-server on a free
    loopback port in a temporary folder, child processes, free ports. Everything started here is
    stopped by the matching call; redis children also die with the test (PR_SET_PDEATHSIG).
*/
#ifndef GL_TESTENV_H
#define GL_TESTENV_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    int port;
    pid_t pid;
    char dir[256];
    char extra[512];
} gl_testredis_t;

//  A free TCP port on 127.0.0.1 (bound and released; tests then bind it soon after).
int gl_test_free_port (void);

//  Start redis-server with AOF on (appendfsync everysec unless extra says otherwise; extra is
//  appended to the command line, e.g. "--appendfsync always"). Waits until it answers PING.
//  NULL if it could not start.
gl_testredis_t *gl_testredis_start (const char *extra);

//  Stop it with SIGKILL (no clean shutdown) and wait for it.
void gl_testredis_kill (gl_testredis_t *self);

//  Stop it cleanly (SHUTDOWN, which fsyncs the AOF) and wait for it.
void gl_testredis_shutdown (gl_testredis_t *self);

//  Start it again on the same port and folder (after kill or shutdown). 0 when it answers.
int gl_testredis_restart (gl_testredis_t *self);

//  Stop (SIGKILL if still running), remove the folder, free.
void gl_testredis_destroy (gl_testredis_t **self_p);

//  Set GL_REDIS_HOST/GL_REDIS_PORT in this process's environment to point at it.
void gl_testredis_export (gl_testredis_t *self);

//  Start a program with extra environment entries ("KEY=VALUE", NULL-terminated, may be NULL).
//  stdout/stderr go to log_path when given (appended), else are inherited. Returns the pid or -1.
pid_t gl_test_spawn (const char *path, char *const argv[], char *const env_extra[],
                     const char *log_path);

//  Wait for pid to exit within timeout_ms; returns its wait status or -1 on timeout.
int gl_test_wait (pid_t pid, int timeout_ms);

//  SIGTERM, then SIGKILL after grace_ms; reaps it. Returns the wait status.
int gl_test_stop (pid_t pid, int grace_ms);

//  Path of a built file: $GL_BUILD_DIR/rel (e.g. "services/intake/gl-intake"). Static buffer.
const char *gl_test_build_path (const char *rel);

//  A seed for randomised tests: $GL_TEST_SEED when set, else from the clock. Printed to stderr
//  so a failing run can be replayed with GL_TEST_SEED=<seed>.
uint64_t gl_test_seed (const char *test_name);

#endif
