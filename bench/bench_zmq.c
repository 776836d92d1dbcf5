/*  bench_zmq — the ZeroMQ reference for the bus benchmark: raw PUB -> SUB over loopback TCP, one
    sender thread and one receiver thread, fixed-size single-frame messages, no Redis, no msgpack.

        bench_zmq [--nodrop] [--seconds S] [--size BYTES] [--hwm FRAMES]

    The sender sends as fast as it can for S seconds. A plain PUB never blocks: frames over the
    high-water mark are dropped, so "sent" and "received" differ. With --nodrop the sender is an
    XPUB with ZMQ_XPUB_NODROP, whose send blocks at the high-water mark instead, so every frame
    arrives and the rate is the receiver's. Prints one line of key=value pairs:
        RESULT kind=zmq mode=pub|nodrop size=200 sent=... sent_per_s=... received=... recv_per_s=...
    recv_per_s is received frames over the time from the first to the last frame received.
*/
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    void *ctx;
    char endpoint[256];
    size_t size;
    int hwm;
    volatile bool sender_done;
    uint64_t received;
    int64_t first_us, last_us;
} s_shared_t;

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *
s_receiver (void *arg)
{
    s_shared_t *sh = arg;
    void *sub = zmq_socket (sh->ctx, ZMQ_SUB);
    zmq_setsockopt (sub, ZMQ_RCVHWM, &sh->hwm, sizeof sh->hwm);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "", 0);
    int timeout = 500;
    zmq_setsockopt (sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_connect (sub, sh->endpoint);
    char *buf = malloc (sh->size + 1);
    //  Stop after the sender is done and half a second went by without a frame.
    while (true) {
        int n = zmq_recv (sub, buf, sh->size + 1, 0);
        if (n < 0) {
            if (errno == EAGAIN && sh->sender_done)
                break;
            continue;
        }
        int64_t now = s_now_us ();
        if (sh->received++ == 0)
            sh->first_us = now;
        sh->last_us = now;
    }
    free (buf);
    zmq_close (sub);
    return NULL;
}

int
main (int argc, char **argv)
{
    bool nodrop = false;
    double seconds = 3;
    s_shared_t sh = { .size = 200, .hwm = 1000 };
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--nodrop") == 0)
            nodrop = true;
        else if (strcmp (argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof (argv[++i]);
        else if (strcmp (argv[i], "--size") == 0 && i + 1 < argc)
            sh.size = (size_t) atol (argv[++i]);
        else if (strcmp (argv[i], "--hwm") == 0 && i + 1 < argc)
            sh.hwm = atoi (argv[++i]);
        else {
            fprintf (stderr, "usage: bench_zmq [--nodrop] [--seconds S] [--size BYTES] "
                             "[--hwm FRAMES]\n");
            return 2;
        }
    }
    if (seconds <= 0 || seconds > 600 || sh.size == 0 || sh.size > 1 << 20 || sh.hwm < 0) {
        fprintf (stderr, "bench_zmq: seconds in (0, 600], size in [1, 1 MiB], hwm >= 0\n");
        return 2;
    }
    sh.ctx = zmq_ctx_new ();
    void *pub = zmq_socket (sh.ctx, nodrop ? ZMQ_XPUB : ZMQ_PUB);
    int one = 1;
    if (nodrop)
        zmq_setsockopt (pub, ZMQ_XPUB_NODROP, &one, sizeof one);
    zmq_setsockopt (pub, ZMQ_SNDHWM, &sh.hwm, sizeof sh.hwm);
    if (zmq_bind (pub, "tcp://127.0.0.1:*") != 0) {
        fprintf (stderr, "bench_zmq: bind: %s\n", zmq_strerror (errno));
        return 1;
    }
    size_t eplen = sizeof sh.endpoint;
    zmq_getsockopt (pub, ZMQ_LAST_ENDPOINT, sh.endpoint, &eplen);

    pthread_t rx;
    pthread_create (&rx, NULL, s_receiver, &sh);
    usleep (300 * 1000);        //  slow joiner: let the subscription reach the publisher

    char *msg = malloc (sh.size);
    memset (msg, 'x', sh.size);
    uint64_t sent = 0;
    int64_t start = s_now_us ();
    int64_t end = start + (int64_t) (seconds * 1e6);
    int64_t now = start;
    while (now < end) {
        for (int i = 0; i < 1000; i++)
            if (zmq_send (pub, msg, sh.size, 0) == (int) sh.size)
                sent++;
        now = s_now_us ();
    }
    double sent_s = (double) (now - start) / 1e6;
    sh.sender_done = true;
    pthread_join (rx, NULL);
    double recv_s = (double) (sh.last_us - sh.first_us) / 1e6;
    printf ("RESULT kind=zmq mode=%s size=%zu hwm=%d sent=%" PRIu64 " sent_per_s=%.0f received=%"
            PRIu64 " recv_per_s=%.0f\n",
            nodrop ? "nodrop" : "pub", sh.size, sh.hwm, sent, (double) sent / sent_s,
            sh.received, recv_s > 0 ? (double) sh.received / recv_s : 0.0);
    free (msg);
    zmq_close (pub);
    zmq_ctx_term (sh.ctx);
    return 0;
}
