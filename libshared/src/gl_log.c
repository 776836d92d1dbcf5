/*  gl_log — see gl_log.h. */
#include "gl/gl_log.h"
#include "gl/gl_clock.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char s_service[64] = "greenline";
static gl_log_level_t s_level = GL_LOG_INFO;
static bool s_json = false;
static const char *s_names[] = { "debug", "info", "warn", "error" };

void
gl_log_init (const char *service, gl_log_level_t level, bool json)
{
    snprintf (s_service, sizeof s_service, "%s", service ? service : "greenline");
    s_level = level;
    s_json = json;
}

int
gl_log_level_parse (const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (strcasecmp (name, s_names[i]) == 0)
            return i;
    return -1;
}

void
gl_log_init_from_env (const char *service)
{
    int level = gl_log_level_parse (getenv ("GL_LOG_LEVEL"));
    const char *json = getenv ("GL_LOG_JSON");
    gl_log_init (service, level < 0 ? GL_LOG_INFO : (gl_log_level_t) level,
                 json && strcmp (json, "1") == 0);
}

//  Escape a message for a JSON string; messages are ours, but a reason may quote outside bytes.
static size_t
s_json_escape (char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (; *in && n + 7 < cap; in++) {
        unsigned char c = (unsigned char) *in;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char) c;
        }
        else if (c < 0x20)
            n += (size_t) snprintf (out + n, cap - n, "\\u%04x", c);
        else
            out[n++] = (char) c;
    }
    out[n] = 0;
    return n;
}

void
gl_log (gl_log_level_t level, const char *fmt, ...)
{
    if (level < s_level)
        return;
    char msg[1024];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);

    //  Log lines carry the wall clock, not the (possibly test-driven) business clock.
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    char when[96];
    snprintf (when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ts.tv_nsec / 1000000));
    char line[2600];
    int n;
    if (s_json) {
        char esc[2200];
        s_json_escape (esc, sizeof esc, msg);
        n = snprintf (line, sizeof line,
                      "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":\"%s\",\"pid\":%d,\"msg\":\"%s\"}\n",
                      when, s_names[level], s_service, (int) getpid (), esc);
    }
    else
        n = snprintf (line, sizeof line, "%s %-5s %s[%d] %s\n", when, s_names[level], s_service,
                      (int) getpid (), msg);
    if (n > (int) sizeof line - 1)
        n = (int) sizeof line - 1;
    ssize_t rc = write (STDERR_FILENO, line, (size_t) n);
    (void) rc;
}
