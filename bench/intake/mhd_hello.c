/*  mhd_hello — the libmicrohttpd candidate of intake's library benchmark: an HTTP/1.1 server that
    answers every request with the same small JSON body, as nginx does in the same run.

        mhd_hello PORT [epoll|select]

    One internal polling thread (MHD_USE_INTERNAL_POLLING_THREAD, with epoll by default or
    select), keep-alive, bound to 127.0.0.1:PORT, until SIGINT or SIGTERM. No thread per
    connection and no thread pool, so it is compared on one core with nginx's single worker and
    evhttp_hello's single loop. bench/intake/run-intake.sh starts it; see bench/intake/README.md.
*/
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char s_body[] = "{\"status\":\"ok\",\"service\":\"hello\"}";

static enum MHD_Result
s_on_request (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
              const char *version, const char *upload_data, size_t *upload_data_size,
              void **con_cls)
{
    //  The first call comes with the headers. A response queued then, before MHD has read the
    //  whole request, makes it close the connection after it (no keep-alive), so answer from
    //  the second call on, as libmicrohttpd's own examples do.
    static int first_seen;
    if (*con_cls != &first_seen) {
        *con_cls = &first_seen;
        return MHD_YES;
    }
    //  A request body (none is sent here) arrives in later calls: drain it, then answer.
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response (connection, MHD_HTTP_OK, (struct MHD_Response *) cls);
}

int
main (int argc, char *argv[])
{
    if (argc < 2 || argc > 3 || atoi (argv[1]) <= 0 || atoi (argv[1]) > 65535
        || (argc == 3 && strcmp (argv[2], "epoll") != 0 && strcmp (argv[2], "select") != 0)) {
        fprintf (stderr, "usage: mhd_hello PORT [epoll|select]\n");
        return 2;
    }
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (argc < 3 || strcmp (argv[2], "epoll") == 0)
        flags |= MHD_USE_EPOLL;

    //  The signals are taken by sigwait below; MHD's thread inherits the mask.
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    signal (SIGPIPE, SIG_IGN);

    //  One response, shared by every request (MHD counts its references).
    struct MHD_Response *response = MHD_create_response_from_buffer (
        sizeof s_body - 1, (void *) s_body, MHD_RESPMEM_PERSISTENT);
    if (!response || MHD_add_response_header (response, "Content-Type", "application/json")
                         != MHD_YES) {
        fprintf (stderr, "mhd_hello: cannot build the response\n");
        return 1;
    }
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) atoi (argv[1])) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    struct MHD_Daemon *daemon = MHD_start_daemon (
        flags, (uint16_t) atoi (argv[1]), NULL, NULL, s_on_request, response,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int) 30, MHD_OPTION_END);
    if (!daemon) {
        fprintf (stderr, "mhd_hello: cannot listen on 127.0.0.1:%s\n", argv[1]);
        MHD_destroy_response (response);
        return 1;
    }
    int sig = 0;
    sigwait (&stop, &sig);
    MHD_stop_daemon (daemon);
    MHD_destroy_response (response);
    return 0;
}
