/*  gl_testintake — a real gl-intake for integration tests: started on free loopback ports against
    a test redis, with cheap Argon2, a bootstrap admin signed in, and a business clock file the
    test drives; plus the calls tests make over HTTP. One per test process (the tests that start
    intake differently keep their own helpers). */
#ifndef GL_TESTINTAKE_H
#define GL_TESTINTAKE_H
#include "gl/gl_id.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#define GL_TESTINTAKE_ADMIN_PASS "adminpass-123"
#define GL_TESTINTAKE_START_MS   INT64_C(1767225600000)     //  2026-01-01T00:00:00Z
#define GL_TESTINTAKE_ENV_MAX    48

typedef struct {
    int http_port;
    int router_port;
    int pub_port;
    int health_port;
    pid_t pid;
    char log_path[256];
    char clock_path[256];
    char env[GL_TESTINTAKE_ENV_MAX][256];
    int envc;
    char admin_token[128];
    char admin_id[GL_ID_LEN + 1];
} gl_testintake_t;

//  Start gl-intake against redis with the defaults above plus extra ("KEY=VALUE" strings,
//  NULL-terminated; may be NULL; a later entry wins), wait until /ready, sign the admin in.
//  NULL (with the reason and the log's path on stderr) when it did not come up.
gl_testintake_t *gl_testintake_start (gl_testredis_t *redis, const char *const *extra);

//  SIGTERM (SIGKILL after 10 s), remove the log and clock files, free.
void gl_testintake_destroy (gl_testintake_t **self_p);

//  Set the business clock (unix ms).
void gl_testintake_clock (gl_testintake_t *self, int64_t ms);

//  A request: token as bearer (NULL: none), extra header lines each ending in "\r\n" (NULL:
//  none), body as JSON text (NULL: none).
gl_test_resp_t gl_testintake_call (gl_testintake_t *self, const char *method, const char *path,
                                   const char *token, const char *extra, const char *body);

//  The same request to the HTTP port of any intake (for tests that start it their own way,
//  e.g. to kill and restart it). A status of 0 when the request could not be made.
gl_test_resp_t gl_testintake_request (int http_port, const char *method, const char *path,
                                      const char *token, const char *extra, const char *body);

//  The body of resp parsed as JSON (new reference), or NULL.
json_t *gl_test_json (const gl_test_resp_t *resp);

//  The error code of a {"error":{...}} body ("" when none). Static buffer.
const char *gl_test_error_code (const gl_test_resp_t *resp);
const char *gl_test_error_field (const gl_test_resp_t *resp);

//  Create a user as the admin (roles and units as JSON arrays, e.g. "[\"agent\"]", units NULL
//  for none) and sign them in: token (128 bytes) and id (GL_ID_LEN + 1) filled. 0, or -1.
int gl_testintake_user (gl_testintake_t *self, const char *username, const char *roles,
                        const char *units, char *token, char *id);

//  An API client (role api_client) made by the admin: its token (128 bytes). 0, or -1.
int gl_testintake_client (gl_testintake_t *self, const char *name, char *token);

#endif
