/*  gl_testhttp — a tiny blocking HTTP/1.1 client for integration tests over loopback: one
    request per connection, the whole response read until the server closes it. Used by the
    intake tests so that each does not carry its own copy. */
#ifndef GL_TESTHTTP_H
#define GL_TESTHTTP_H
#include <stddef.h>

#define GL_TEST_HTTP_MAX (1 << 20)      //  largest response read; a larger one aborts the test

typedef struct {
    int status;             //  0: no status line (connection refused or closed)
    char *raw;              //  the whole response, NUL-terminated; owned
    size_t raw_len;
    const char *body;       //  into raw
    size_t body_len;
} gl_test_resp_t;

//  A connected TCP socket to 127.0.0.1:port, or -1.
int gl_test_http_connect (int port);

//  Send request[0..len) and read the response. Never NULL raw; status 0 on failure.
gl_test_resp_t gl_test_http_raw (int port, const char *request, size_t len);

//  Free what a response owns.
void gl_test_http_free (gl_test_resp_t *resp);

//  The value of header name (case-insensitive) in resp, or NULL. Static buffer.
const char *gl_test_http_header (const gl_test_resp_t *resp, const char *name);

#endif
