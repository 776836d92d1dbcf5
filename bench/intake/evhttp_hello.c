/*  evhttp_hello — the libevent candidate of intake's library benchmark: an HTTP/1.1 server on
    libevent's evhttp (what services/intake/http.c is built on) that answers every request with
    the same small JSON body, as nginx does in the same run.

        evhttp_hello PORT

    One event loop on one thread, keep-alive, bound to 127.0.0.1:PORT, until SIGINT or SIGTERM.
    bench/intake/run-intake.sh starts it; see bench/intake/README.md.
*/
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static const char s_body[] = "{\"status\":\"ok\",\"service\":\"hello\"}";

static void
s_on_request (struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evhttp_request_get_output_buffer (req);
    evbuffer_add_reference (out, s_body, sizeof s_body - 1, NULL, NULL);
    evhttp_add_header (evhttp_request_get_output_headers (req), "Content-Type",
                       "application/json");
    evhttp_send_reply (req, HTTP_OK, "OK", NULL);
}

static void
s_on_signal (evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak ((struct event_base *) arg);
}

int
main (int argc, char *argv[])
{
    int port = argc == 2 ? atoi (argv[1]) : 0;
    if (port <= 0 || port > 65535) {
        fprintf (stderr, "usage: evhttp_hello PORT\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new ();
    struct evhttp *http = base ? evhttp_new (base) : NULL;
    if (!http || evhttp_bind_socket (http, "127.0.0.1", (ev_uint16_t) port) != 0) {
        fprintf (stderr, "evhttp_hello: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    evhttp_set_gencb (http, s_on_request, NULL);
    struct event *on_term = evsignal_new (base, SIGTERM, s_on_signal, base);
    struct event *on_int = evsignal_new (base, SIGINT, s_on_signal, base);
    if (!on_term || !on_int || event_add (on_term, NULL) || event_add (on_int, NULL)) {
        fprintf (stderr, "evhttp_hello: cannot set up the signals\n");
        return 1;
    }
    event_base_dispatch (base);
    event_free (on_term);
    event_free (on_int);
    evhttp_free (http);
    event_base_free (base);
    return 0;
}
