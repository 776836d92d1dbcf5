/*  gl_testenv — see gl_testenv.h. */
#include "gl_testenv.h"
#include "gl/gl_clock.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int
gl_test_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind (fd, (struct sockaddr *) &a, sizeof a) == 0
        && getsockname (fd, (struct sockaddr *) &a, &len) == 0)
        port = ntohs (a.sin_port);
    close (fd);
    return port;
}

pid_t
gl_test_spawn (const char *path, char *const argv[], char *const env_extra[], const char *log_path)
{
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid > 0)
        return pid;
    //  Child: die with the test, so a failed test never leaves servers behind.
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != parent)
        _exit (127);
    if (log_path) {
        int fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
    }
    for (int i = 0; env_extra && env_extra[i]; i++)
        putenv (env_extra[i]);
    execvp (path, argv);
    fprintf (stderr, "gl_test_spawn: cannot exec %s: %s\n", path, strerror (errno));
    _exit (127);
}

int
gl_test_wait (pid_t pid, int timeout_ms)
{
    int64_t deadline = gl_mono_ms () + timeout_ms;
    while (true) {
        int status = 0;
        pid_t r = waitpid (pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        if (gl_mono_ms () >= deadline)
            return -1;
        gl_sleep_ms (5);
    }
}

int
gl_test_stop (pid_t pid, int grace_ms)
{
    if (pid <= 0)
        return -1;
    kill (pid, SIGTERM);
    int status = gl_test_wait (pid, grace_ms);
    if (status == -1) {
        kill (pid, SIGKILL);
        status = gl_test_wait (pid, 10000);
    }
    return status;
}

static int
s_ping (int port)
{
    struct timeval tv = { 0, 200000 };
    redisContext *c = redisConnectWithTimeout ("127.0.0.1", port, tv);
    if (!c)
        return -1;
    int rc = -1;
    if (!c->err) {
        redisReply *r = redisCommand (c, "PING");
        if (r && r->type == REDIS_REPLY_STATUS)
            rc = 0;
        if (r)
            freeReplyObject (r);
    }
    redisFree (c);
    return rc;
}

static int
s_redis_launch (gl_testredis_t *self)
{
    char port[16];
    snprintf (port, sizeof port, "%d", self->port);
    char *argv[64];
    int n = 0;
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--dir";
    argv[n++] = self->dir;
    argv[n++] = "--appendonly";
    argv[n++] = "yes";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--loglevel";
    argv[n++] = "warning";
    int fixed = n;
    char extra[512];
    snprintf (extra, sizeof extra, "%s", self->extra);
    for (char *tok = strtok (extra, " "); tok && n < 62; tok = strtok (NULL, " "))
        argv[n++] = strdup (tok);
    argv[n] = NULL;
    char log[300];
    snprintf (log, sizeof log, "%s/redis.log", self->dir);
    self->pid = gl_test_spawn ("redis-server", argv, NULL, log);
    for (int i = fixed; i < n; i++)
        free (argv[i]);
    if (self->pid < 0)
        return -1;
    int64_t deadline = gl_mono_ms () + 20000;
    while (gl_mono_ms () < deadline) {
        if (s_ping (self->port) == 0)
            return 0;
        if (waitpid (self->pid, NULL, WNOHANG) == self->pid) {
            self->pid = -1;
            return -1;
        }
        gl_sleep_ms (10);
    }
    return -1;
}

gl_testredis_t *
gl_testredis_start (const char *extra)
{
    gl_testredis_t *self = calloc (1, sizeof (gl_testredis_t));
    if (!self)
        return NULL;
    snprintf (self->extra, sizeof self->extra, "%s", extra ? extra : "");
    snprintf (self->dir, sizeof self->dir, "/tmp/gl-test-redis-XXXXXX");
    if (!mkdtemp (self->dir)) {
        free (self);
        return NULL;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        self->port = gl_test_free_port ();
        if (s_redis_launch (self) == 0)
            return self;
    }
    gl_testredis_destroy (&self);
    return NULL;
}

void
gl_testredis_kill (gl_testredis_t *self)
{
    if (self->pid > 0) {
        kill (self->pid, SIGKILL);
        gl_test_wait (self->pid, 10000);
        self->pid = -1;
    }
}

void
gl_testredis_shutdown (gl_testredis_t *self)
{
    if (self->pid <= 0)
        return;
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectWithTimeout ("127.0.0.1", self->port, tv);
    if (c && !c->err) {
        redisReply *r = redisCommand (c, "SHUTDOWN");
        if (r)
            freeReplyObject (r);
    }
    if (c)
        redisFree (c);
    if (gl_test_wait (self->pid, 20000) == -1)
        kill (self->pid, SIGKILL), gl_test_wait (self->pid, 10000);
    self->pid = -1;
}

int
gl_testredis_restart (gl_testredis_t *self)
{
    if (self->pid > 0)
        gl_testredis_kill (self);
    //  The port was ours a moment ago; retry while the kernel releases it.
    for (int attempt = 0; attempt < 50; attempt++) {
        if (s_redis_launch (self) == 0)
            return 0;
        gl_sleep_ms (100);
    }
    return -1;
}

void
gl_testredis_destroy (gl_testredis_t **self_p)
{
    gl_testredis_t *self = *self_p;
    if (!self)
        return;
    gl_testredis_kill (self);
    char cmd[320];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", self->dir);
    if (strncmp (self->dir, "/tmp/gl-test-redis-", 19) == 0) {
        int rc = system (cmd);
        (void) rc;
    }
    free (self);
    *self_p = NULL;
}

void
gl_testredis_export (gl_testredis_t *self)
{
    char port[16];
    snprintf (port, sizeof port, "%d", self->port);
    setenv ("GL_REDIS_HOST", "127.0.0.1", 1);
    setenv ("GL_REDIS_PORT", port, 1);
}

const char *
gl_test_build_path (const char *rel)
{
    static char path[1024];
    const char *dir = getenv ("GL_BUILD_DIR");
    snprintf (path, sizeof path, "%s/%s", dir ? dir : ".", rel);
    return path;
}

uint64_t
gl_test_seed (const char *test_name)
{
    const char *env = getenv ("GL_TEST_SEED");
    uint64_t seed = env ? strtoull (env, NULL, 10) : (uint64_t) gl_mono_ms () ^ (uint64_t) getpid ();
    fprintf (stderr, "%s: seed %llu (replay with GL_TEST_SEED=%llu)\n", test_name,
             (unsigned long long) seed, (unsigned long long) seed);
    return seed;
}
