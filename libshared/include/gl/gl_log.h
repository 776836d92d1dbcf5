/*  gl_log — levelled logging to stderr, plain text or one JSON object per line.

    Never log personal data: names, phone numbers, case numbers, notes. Log Greenline's opaque
    ids (contact, referral, event ids), codes and counts. Reviewers check every gl_log call for it.
*/
#ifndef GL_LOG_H
#define GL_LOG_H
#include <stdbool.h>

typedef enum { GL_LOG_DEBUG = 0, GL_LOG_INFO, GL_LOG_WARN, GL_LOG_ERROR } gl_log_level_t;

//  Set the service name shown on every line, the lowest level written and the format.
void gl_log_init (const char *service, gl_log_level_t level, bool json);

//  Same, reading GL_LOG_LEVEL (debug|info|warn|error, default info) and GL_LOG_JSON (0|1).
void gl_log_init_from_env (const char *service);

//  Parse a level name; returns -1 when unknown.
int gl_log_level_parse (const char *name);

//  Write one line at the given level (thread-safe: one write(2) per line).
void gl_log (gl_log_level_t level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#define gl_debug(...) gl_log (GL_LOG_DEBUG, __VA_ARGS__)
#define gl_info(...)  gl_log (GL_LOG_INFO, __VA_ARGS__)
#define gl_warn(...)  gl_log (GL_LOG_WARN, __VA_ARGS__)
#define gl_error(...) gl_log (GL_LOG_ERROR, __VA_ARGS__)

#endif
