/*  The launcher (./greenline up, status, down) against a private data folder and free ports.

    Every *_PORT key of config/local.env is overridden from the environment with a free port and
    GREENLINE_VAR points at a temporary folder, so the test never touches a running local system.
    It uses the binaries of the build it belongs to (GREENLINE_BUILD=$GL_BUILD_DIR, no cmake run,
    no package installs). Services are whatever services/<name> has a built gl-<name>; with none
    built, the same checks run on redis alone.
*/
/* ctest: timeout=600 labels=nosan */
#include "gl_testenv.h"
#include "gl/gl_clock.h"
#include <dirent.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define MAX_SERVICES 16
#define MAX_PORTS 64
#define OUT_MAX 65536

typedef struct {
    char dir[128];                      //  GREENLINE_VAR
    char launcher[1024];
    char services[MAX_SERVICES][32];    //  built services
    int nservices;
    int ports[MAX_PORTS];               //  ports handed out, to keep them distinct
    int nports;
    char out[OUT_MAX];                  //  output of the last launcher command
} s_env_t;

//  Run "./greenline <args>" with output captured in env->out; returns its exit status, or -1.
static int
s_launcher (s_env_t *env, const char *args)
{
    char cmd[1200];
    snprintf (cmd, sizeof cmd, "'%s' %s 2>&1", env->launcher, args);
    FILE *f = popen (cmd, "r");
    assert_non_null (f);
    size_t n = 0, r;
    char chunk[4096];
    while ((r = fread (chunk, 1, sizeof chunk, f)) > 0) {
        size_t room = sizeof env->out - 1 - n;
        size_t take = r < room ? r : room;
        memcpy (env->out + n, chunk, take);
        n += take;
    }
    env->out[n] = 0;
    int status = pclose (f);
    fprintf (stderr, "--- greenline %s -> %d\n%s", args,
             WIFEXITED (status) ? WEXITSTATUS (status) : -1, env->out);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

//  A free port not handed out before in this test.
static int
s_port (s_env_t *env)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int port = gl_test_free_port ();
        assert_true (port > 0);
        bool seen = false;
        for (int i = 0; i < env->nports; i++)
            seen |= env->ports[i] == port;
        if (!seen) {
            assert_true (env->nports < MAX_PORTS);
            env->ports[env->nports++] = port;
            return port;
        }
    }
    fail_msg ("no distinct free port");
    return -1;
}

//  Set every KEY ending in _PORT from config/local.env to a fresh free port.
static void
s_override_ports (s_env_t *env, const char *source_dir)
{
    char path[1100], line[512];
    snprintf (path, sizeof path, "%s/config/local.env", source_dir);
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    int count = 0;
    while (fgets (line, sizeof line, f)) {
        char *eq = strchr (line, '=');
        if (line[0] == '#' || !eq)
            continue;
        *eq = 0;
        size_t len = strlen (line);
        if (len > 5 && strcmp (line + len - 5, "_PORT") == 0) {
            char value[16];
            snprintf (value, sizeof value, "%d", s_port (env));
            setenv (line, value, 1);
            count++;
        }
    }
    fclose (f);
    assert_true (count > 0);
}

//  The services with a built binary, found the way the launcher finds them.
static void
s_find_services (s_env_t *env, const char *source_dir)
{
    char path[1100];
    snprintf (path, sizeof path, "%s/services", source_dir);
    DIR *d = opendir (path);
    assert_non_null (d);
    struct dirent *e;
    while ((e = readdir (d)) && env->nservices < MAX_SERVICES) {
        if (e->d_name[0] == '.' || strlen (e->d_name) >= sizeof env->services[0])
            continue;
        char rel[128];
        snprintf (rel, sizeof rel, "services/%s/gl-%s", e->d_name, e->d_name);
        if (access (gl_test_build_path (rel), X_OK) == 0)
            snprintf (env->services[env->nservices++], sizeof env->services[0], "%s", e->d_name);
    }
    closedir (d);
    fprintf (stderr, "test_launcher: %d built service(s)\n", env->nservices);
}

static int
s_setup (void **state)
{
    s_env_t *env = calloc (1, sizeof (s_env_t));
    assert_non_null (env);
    const char *source_dir = getenv ("GL_SOURCE_DIR");
    const char *build_dir = getenv ("GL_BUILD_DIR");
    assert_non_null (source_dir);
    assert_non_null (build_dir);
    snprintf (env->launcher, sizeof env->launcher, "%s/greenline", source_dir);
    snprintf (env->dir, sizeof env->dir, "/tmp/gl-test-launcher-XXXXXX");
    assert_non_null (mkdtemp (env->dir));
    setenv ("GREENLINE_VAR", env->dir, 1);
    setenv ("GREENLINE_BUILD", build_dir, 1);
    setenv ("GREENLINE_SKIP_BUILD", "1", 1);
    setenv ("GREENLINE_NO_INSTALL", "1", 1);
    setenv ("GREENLINE_READY_TIMEOUT", "60", 1);
    setenv ("GREENLINE_STOP_GRACE", "10", 1);
    s_override_ports (env, source_dir);
    s_find_services (env, source_dir);
    *state = env;
    return 0;
}

static int
s_teardown (void **state)
{
    s_env_t *env = *state;
    s_launcher (env, "down");
    char cmd[200];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", env->dir);
    if (strncmp (env->dir, "/tmp/gl-test-launcher-", 22) == 0)
        assert_int_equal (system (cmd), 0);
    free (env);
    return 0;
}

//  dst = src in upper case.
static void
s_upper (char *dst, size_t size, const char *src)
{
    size_t i;
    for (i = 0; src[i] && i < size - 1; i++)
        dst[i] = (char) (src[i] >= 'a' && src[i] <= 'z' ? src[i] - 'a' + 'A' : src[i]);
    dst[i] = 0;
}

//  The integer in the environment variable named by fmt with name upper-cased in it.
static int
s_env_int (const char *fmt, const char *name)
{
    char key[96], upper[32];
    s_upper (upper, sizeof upper, name);
    snprintf (key, sizeof key, fmt, upper);
    const char *v = getenv (key);
    if (!v)
        fail_msg ("%s is not set", key);
    return atoi (v);
}

//  The pid in GREENLINE_VAR/run/<name>.pid, or -1 when there is no such file.
static pid_t
s_pidfile (s_env_t *env, const char *name)
{
    char path[256];
    snprintf (path, sizeof path, "%s/run/%s.pid", env->dir, name);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    long pid = -1;
    if (fscanf (f, "%ld", &pid) != 1)
        pid = -1;
    fclose (f);
    return (pid_t) pid;
}

//  True while pid is a live process (a zombie waiting for init to reap it counts as gone).
static bool
s_alive (pid_t pid)
{
    if (kill (pid, 0) != 0)
        return errno != ESRCH;
    char path[64], buf[512];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = 0;
    char *close_paren = strrchr (buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z';
}

//  True when the file holds the NUL-separated entry (as /proc/<pid>/environ does), or starts
//  with prefix (as /proc/<pid>/cmdline of redis-server, which rewrites its title over argv and
//  environ: "redis-server 127.0.0.1:<port>").
static bool
s_proc_file_has (const char *path, const char *entry, const char *prefix)
{
    static char buf[OUT_MAX];
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = 0;
    if (prefix)
        return strncmp (buf, prefix, strlen (prefix)) == 0;
    for (size_t i = 0; i < n; i += strlen (buf + i) + 1)
        if (strcmp (buf + i, entry) == 0)
            return true;
    return false;
}

//  Processes other than this test that the launcher started: they carry GREENLINE_VAR=<our
//  folder> in their environment (services and anything they fork inherit it), or are the
//  redis-server on our port.
static int
s_leftovers (s_env_t *env)
{
    char entry[160], redis[64];
    snprintf (entry, sizeof entry, "GREENLINE_VAR=%s", env->dir);
    snprintf (redis, sizeof redis, "redis-server 127.0.0.1:%s", getenv ("GL_REDIS_PORT"));
    int count = 0;
    DIR *d = opendir ("/proc");
    assert_non_null (d);
    struct dirent *e;
    while ((e = readdir (d))) {
        pid_t pid = (pid_t) atoi (e->d_name);
        if (pid <= 0 || pid == getpid () || !s_alive (pid))
            continue;
        char environ_path[64], cmdline_path[64];
        snprintf (environ_path, sizeof environ_path, "/proc/%d/environ", (int) pid);
        snprintf (cmdline_path, sizeof cmdline_path, "/proc/%d/cmdline", (int) pid);
        if (s_proc_file_has (environ_path, entry, NULL)
            || s_proc_file_has (cmdline_path, NULL, redis)) {
            fprintf (stderr, "test_launcher: pid %d is running\n", (int) pid);
            count++;
        }
    }
    closedir (d);
    return count;
}

//  The output line that starts with word, or NULL.
static const char *
s_line (s_env_t *env, const char *word)
{
    size_t len = strlen (word);
    for (const char *p = env->out; p && *p; p = strchr (p, '\n') ? strchr (p, '\n') + 1 : NULL)
        if (strncmp (p, word, len) == 0 && p[len] == ' ')
            return p;
    return NULL;
}

//  Assert that the line for word says state ("up", "down", ...) as its second column.
static void
s_assert_state (s_env_t *env, const char *word, const char *state)
{
    const char *line = s_line (env, word);
    if (!line)
        fail_msg ("status has no line for %s", word);
    const char *p = line + strlen (word);
    while (*p == ' ')
        p++;
    if (strncmp (p, state, strlen (state)) != 0 || p[strlen (state)] != ' ')
        fail_msg ("%s: expected state %s in: %.120s", word, state, line);
}

static redisContext *
s_redis (void)
{
    struct timeval tv = { 5, 0 };
    redisContext *c = redisConnectWithTimeout ("127.0.0.1", atoi (getenv ("GL_REDIS_PORT")), tv);
    assert_non_null (c);
    assert_int_equal (c->err, 0);
    return c;
}

static void
s_assert_reply_str (redisReply *r, const char *expected)
{
    assert_non_null (r);
    assert_true (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
    assert_string_equal (r->str, expected);
    freeReplyObject (r);
}

//  The value of key in the environment the launcher gave pid (read back from /proc), or NULL.
//  The string is in a static buffer.
static const char *
s_proc_env (pid_t pid, const char *key)
{
    char path[64];
    static char buf[OUT_MAX];
    snprintf (path, sizeof path, "/proc/%d/environ", (int) pid);
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = 0;
    size_t len = strlen (key);
    for (size_t i = 0; i < n; i += strlen (buf + i) + 1)
        if (strncmp (buf + i, key, len) == 0 && buf[i + len] == '=')
            return buf + i + len + 1;
    return NULL;
}

static void
s_assert_proc_env (pid_t pid, const char *key, const char *expected)
{
    const char *value = s_proc_env (pid, key);
    if (!value || strcmp (value, expected) != 0)
        fail_msg ("pid %d: %s=%s, expected %s", (int) pid, key, value ? value : "(unset)",
                  expected);
}

//  The per-service variables of the launcher's contract (config/local.env, README).
static void
s_assert_service_env (s_env_t *env, const char *name, pid_t pid)
{
    char expected[256], key[64], upper[32];
    s_upper (upper, sizeof upper, name);
    s_assert_proc_env (pid, "GL_SERVICE", name);
    snprintf (expected, sizeof expected, "%s-1", name);
    s_assert_proc_env (pid, "GL_SOURCE", expected);
    snprintf (expected, sizeof expected, "%d", s_env_int ("GL_%s_HEALTH_PORT", name));
    s_assert_proc_env (pid, "GL_HEALTH_PORT", expected);
    snprintf (expected, sizeof expected, "tcp://127.0.0.1:%d",
              s_env_int ("GL_%s_BUS_PUB_PORT", name));
    s_assert_proc_env (pid, "GL_BUS_BIND_PUB", expected);
    snprintf (expected, sizeof expected, "tcp://127.0.0.1:%d",
              s_env_int ("GL_%s_BUS_ROUTER_PORT", name));
    s_assert_proc_env (pid, "GL_BUS_BIND_ROUTER", expected);
    s_assert_proc_env (pid, "GL_REDIS_PORT", getenv ("GL_REDIS_PORT"));
    snprintf (key, sizeof key, "GL_%s_HTTP_PORT", upper);
    if (getenv (key))
        s_assert_proc_env (pid, "GL_HTTP_PORT", getenv (key));
    for (int i = 0; i < env->nservices; i++) {
        s_upper (upper, sizeof upper, env->services[i]);
        snprintf (key, sizeof key, "GL_ENDPOINT_%s", upper);
        snprintf (expected, sizeof expected, "tcp://127.0.0.1:%d",
                  s_env_int ("GL_%s_BUS_ROUTER_PORT", env->services[i]));
        s_assert_proc_env (pid, key, expected);
    }
    //  Every built service's PUB endpoint, comma-separated, each once.
    const char *list = s_proc_env (pid, "GL_BUS_PUB_ENDPOINTS");
    assert_non_null (list);
    char copy[1024];
    snprintf (copy, sizeof copy, ",%s,", list);
    int items = 1;
    for (const char *p = list; *p; p++)
        items += *p == ',';
    assert_int_equal (items, env->nservices);
    for (int i = 0; i < env->nservices; i++) {
        snprintf (expected, sizeof expected, ",tcp://127.0.0.1:%d,",
                  s_env_int ("GL_%s_BUS_PUB_PORT", env->services[i]));
        assert_non_null (strstr (copy, expected));
    }
}

//  up starts redis and every built service, status sees them all ready, a second up changes
//  nothing, down stops everything (no process left, no pid file), and data written before down
//  is there after the next up (SHUTDOWN synced the AOF).
static void
test_up_status_down (void **state)
{
    s_env_t *env = *state;
    assert_int_equal (s_launcher (env, "status"), 1);
    s_assert_state (env, "redis", "down");

    assert_int_equal (s_launcher (env, "up"), 0);
    if (env->nservices == 0)
        assert_non_null (strstr (env->out, "no service is built yet"));
    for (int i = 0; i < env->nservices; i++)
        if (strcmp (env->services[i], "intake") == 0) {
            char console[64];
            snprintf (console, sizeof console, "console: http://127.0.0.1:%s/",
                      getenv ("GL_INTAKE_HTTP_PORT"));
            assert_non_null (strstr (env->out, console));
        }

    assert_int_equal (s_launcher (env, "status"), 0);
    s_assert_state (env, "redis", "up");
    pid_t pids[MAX_SERVICES + 1];
    pids[0] = s_pidfile (env, "redis");
    assert_true (pids[0] > 0 && s_alive (pids[0]));
    for (int i = 0; i < env->nservices; i++) {
        s_assert_state (env, env->services[i], "up");
        assert_non_null (strstr (s_line (env, env->services[i]), "/ready 200"));
        pids[i + 1] = s_pidfile (env, env->services[i]);
        assert_true (pids[i + 1] > 0 && s_alive (pids[i + 1]));
        s_assert_service_env (env, env->services[i], pids[i + 1]);
    }

    //  The private redis: AOF on, appendfsync always (config/local.env), its own data folder.
    redisContext *c = s_redis ();
    redisReply *r = redisCommand (c, "CONFIG GET appendonly");
    assert_true (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    assert_string_equal (r->element[1]->str, "yes");
    freeReplyObject (r);
    r = redisCommand (c, "CONFIG GET appendfsync");
    assert_true (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    assert_string_equal (r->element[1]->str, "always");
    freeReplyObject (r);
    r = redisCommand (c, "CONFIG GET dir");
    assert_true (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    assert_non_null (strstr (r->element[1]->str, env->dir));
    freeReplyObject (r);
    s_assert_reply_str (redisCommand (c, "SET gl:test:launcher kept"), "OK");
    redisFree (c);

    //  Idempotent: everything already running is left alone.
    assert_int_equal (s_launcher (env, "up"), 0);
    assert_int_equal (s_pidfile (env, "redis"), pids[0]);
    for (int i = 0; i < env->nservices; i++)
        assert_int_equal (s_pidfile (env, env->services[i]), pids[i + 1]);

    assert_int_equal (s_leftovers (env), env->nservices + 1);
    assert_int_equal (s_launcher (env, "down"), 0);
    for (int i = 0; i <= env->nservices; i++)
        assert_false (s_alive (pids[i]));
    assert_int_equal (s_leftovers (env), 0);
    assert_int_equal (s_pidfile (env, "redis"), -1);
    for (int i = 0; i < env->nservices; i++)
        assert_int_equal (s_pidfile (env, env->services[i]), -1);
    assert_int_equal (s_launcher (env, "status"), 1);
    s_assert_state (env, "redis", "down");
    for (int i = 0; i < env->nservices; i++)
        s_assert_state (env, env->services[i], "down");
    //  down with nothing running is not an error.
    assert_int_equal (s_launcher (env, "down"), 0);

    assert_int_equal (s_launcher (env, "up"), 0);
    c = s_redis ();
    s_assert_reply_str (redisCommand (c, "GET gl:test:launcher"), "kept");
    redisFree (c);
    pid_t redis_pid = s_pidfile (env, "redis");
    assert_int_equal (s_launcher (env, "down"), 0);
    assert_false (s_alive (redis_pid));
}

//  Pid files that name a dead process, or a live process that is not ours, do not fool up into
//  thinking things run, and down never signals such a process.
static void
test_stale_pid_files (void **state)
{
    s_env_t *env = *state;
    char path[256];
    mkdir (env->dir, 0755);
    snprintf (path, sizeof path, "%s/run", env->dir);
    mkdir (path, 0755);
    //  Our own pid: alive, but not a redis-server.
    snprintf (path, sizeof path, "%s/run/redis.pid", env->dir);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fprintf (f, "%d\n", (int) getpid ());
    fclose (f);
    //  A finished child's pid for every service.
    pid_t dead = fork ();
    if (dead == 0)
        _exit (0);
    assert_true (dead > 0);
    assert_true (gl_test_wait (dead, 10000) != -1);
    for (int i = 0; i < env->nservices; i++) {
        snprintf (path, sizeof path, "%s/run/%s.pid", env->dir, env->services[i]);
        f = fopen (path, "w");
        assert_non_null (f);
        fprintf (f, "%d\n", (int) dead);
        fclose (f);
    }
    assert_int_equal (s_launcher (env, "status"), 1);
    s_assert_state (env, "redis", "down");

    assert_int_equal (s_launcher (env, "up"), 0);
    pid_t redis_pid = s_pidfile (env, "redis");
    assert_true (redis_pid > 0 && redis_pid != getpid ());
    assert_int_equal (s_launcher (env, "status"), 0);
    for (int i = 0; i < env->nservices; i++)
        assert_true (s_pidfile (env, env->services[i]) != dead);
    assert_int_equal (s_launcher (env, "down"), 0);
    assert_false (s_alive (redis_pid));
}

//  A redis that is not the launcher's already on the port: up refuses, names the problem and
//  leaves that redis alone.
static void
test_foreign_redis_untouched (void **state)
{
    s_env_t *env = *state;
    gl_testredis_t *other = gl_testredis_start (NULL);
    assert_non_null (other);
    gl_testredis_export (other);
    assert_int_equal (s_launcher (env, "up"), 1);
    assert_non_null (strstr (env->out, "not this launcher's redis"));
    assert_int_equal (s_launcher (env, "status"), 1);
    s_assert_state (env, "redis", "alien");
    assert_int_equal (s_launcher (env, "down"), 0);
    assert_true (s_alive (other->pid));
    redisContext *c = s_redis ();
    s_assert_reply_str (redisCommand (c, "PING"), "PONG");
    redisFree (c);
    gl_testredis_destroy (&other);
}

//  A malformed setting stops up before anything starts, naming the key.
static void
test_bad_setting_named (void **state)
{
    s_env_t *env = *state;
    setenv ("GL_REDIS_PORT", "70000", 1);
    assert_int_equal (s_launcher (env, "up"), 1);
    assert_non_null (strstr (env->out, "GL_REDIS_PORT"));
    assert_int_equal (s_pidfile (env, "redis"), -1);
    setenv ("GL_REDIS_APPENDFSYNC", "sometimes", 1);
    char port[16];
    snprintf (port, sizeof port, "%d", s_port (env));
    setenv ("GL_REDIS_PORT", port, 1);
    assert_int_equal (s_launcher (env, "up"), 1);
    assert_non_null (strstr (env->out, "GL_REDIS_APPENDFSYNC"));
    assert_int_equal (s_pidfile (env, "redis"), -1);
    unsetenv ("GL_REDIS_APPENDFSYNC");
    assert_int_equal (s_launcher (env, "frobnicate"), 2);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_up_status_down, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stale_pid_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_foreign_redis_untouched, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_setting_named, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
