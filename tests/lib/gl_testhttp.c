/*  gl_testhttp — see gl_testhttp.h. */
#include "gl_testhttp.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int
gl_test_http_connect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

gl_test_resp_t
gl_test_http_raw (int port, const char *request, size_t len)
{
    gl_test_resp_t resp = { 0 };
    resp.raw = calloc (1, GL_TEST_HTTP_MAX + 1);
    if (!resp.raw)
        abort ();
    resp.body = resp.raw;
    int fd = gl_test_http_connect (port);
    if (fd < 0)
        return resp;
    while (len > 0) {
        ssize_t n = send (fd, request, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        request += n;
        len -= (size_t) n;
    }
    while (resp.raw_len < GL_TEST_HTTP_MAX) {
        ssize_t n = recv (fd, resp.raw + resp.raw_len, GL_TEST_HTTP_MAX - resp.raw_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        resp.raw_len += (size_t) n;
    }
    close (fd);
    if (resp.raw_len >= GL_TEST_HTTP_MAX) {
        fprintf (stderr, "gl_test_http_raw: response larger than %d bytes\n", GL_TEST_HTTP_MAX);
        abort ();
    }
    resp.raw[resp.raw_len] = 0;
    int status = 0;
    if (sscanf (resp.raw, "HTTP/1.%*d %d", &status) == 1)
        resp.status = status;
    char *end = strstr (resp.raw, "\r\n\r\n");
    resp.body = end ? end + 4 : resp.raw + resp.raw_len;
    resp.body_len = resp.raw_len - (size_t) (resp.body - resp.raw);
    return resp;
}

void
gl_test_http_free (gl_test_resp_t *resp)
{
    free (resp->raw);
    resp->raw = NULL;
}

const char *
gl_test_http_header (const gl_test_resp_t *resp, const char *name)
{
    static char value[512];
    const char *line = strstr (resp->raw, "\r\n");
    size_t nlen = strlen (name);
    while (line && line + 2 < resp->body) {
        line += 2;
        if (strncasecmp (line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr (v, "\r\n");
            size_t len = end ? (size_t) (end - v) : strlen (v);
            if (len >= sizeof value)
                len = sizeof value - 1;
            memcpy (value, v, len);
            value[len] = 0;
            return value;
        }
        line = strstr (line, "\r\n");
    }
    return NULL;
}
