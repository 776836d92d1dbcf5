/*  bench_calls — what single libshared calls on the bus's hot path cost, one thread, no I/O:
    queuing a command in a transaction (gl_tx_cmdf, gl_tx_cmd), making an id, building an event
    like bench_bus's, encoding and decoding it.

        bench_calls [--calls N]

    Prints one line per call, "<name> <µs per call>", and a RESULT line with the same figures.
*/
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_sub.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_PAD 80

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static gl_event_t *
s_event (int64_t t)
{
    static const char pad[BENCH_PAD + 1] =
        "................................................................................";
    gl_event_t *ev = gl_event_new ("bench.tick");
    json_object_set_new (ev->data, "t", json_integer (t));
    json_object_set_new (ev->data, "pad", json_string (pad));
    return ev;
}

int
main (int argc, char **argv)
{
    long n = 1000000;
    if (argc == 3 && strcmp (argv[1], "--calls") == 0)
        n = atol (argv[2]);
    else if (argc != 1) {
        fprintf (stderr, "usage: bench_calls [--calls N]\n");
        return 2;
    }
    if (n < 1 || n > 100000000) {
        fprintf (stderr, "bench_calls: N in [1, 10^8]\n");
        return 2;
    }
    double us[6];
    const char *names[6] = { "gl_tx_cmdf", "gl_tx_cmd", "gl_id_new", "event_build",
                             "gl_event_encode", "gl_event_decode" };

    //  The subscriber's handler in bench_bus: one HINCRBY per event, 64 events per commit.
    gl_tx_t *tx = gl_tx_new ();
    double t = s_now ();
    for (long i = 0; i < n; i++) {
        if (i % 64 == 0)
            gl_tx_reset (tx);
        gl_tx_cmdf (tx, "HINCRBY bench:applied %s 1", "bench-1");
    }
    us[0] = (s_now () - t) * 1e6 / (double) n;
    t = s_now ();
    for (long i = 0; i < n; i++) {
        if (i % 64 == 0)
            gl_tx_reset (tx);
        const char *args[] = { "HINCRBY", "bench:applied", "bench-1", "1" };
        gl_tx_cmd (tx, 4, args, NULL);
    }
    us[1] = (s_now () - t) * 1e6 / (double) n;
    gl_tx_destroy (&tx);

    char id[GL_ID_LEN + 1];
    t = s_now ();
    for (long i = 0; i < n; i++)
        gl_id_new (id);
    us[2] = (s_now () - t) * 1e6 / (double) n;

    t = s_now ();
    for (long i = 0; i < n; i++) {
        gl_event_t *ev = s_event (i);
        gl_event_destroy (&ev);
    }
    us[3] = (s_now () - t) * 1e6 / (double) n;

    gl_event_t *ev = s_event (123456789);
    snprintf (ev->src, sizeof ev->src, "bench-1");
    ev->seq = 123456;
    char *buf = NULL;
    size_t len = 0;
    t = s_now ();
    for (long i = 0; i < n; i++) {
        gl_event_encode (ev, &buf, &len);
        free (buf);
    }
    us[4] = (s_now () - t) * 1e6 / (double) n;
    gl_event_encode (ev, &buf, &len);
    gl_event_destroy (&ev);

    gl_event_err_t why;
    t = s_now ();
    for (long i = 0; i < n; i++) {
        gl_event_t *got = gl_event_decode (buf, len, &why, NULL, 0);
        gl_event_destroy (&got);
    }
    us[5] = (s_now () - t) * 1e6 / (double) n;
    free (buf);

    for (int i = 0; i < 6; i++)
        printf ("%-16s %.3f us\n", names[i], us[i]);
    printf ("RESULT kind=calls calls=%ld size=%zu", n, len);
    for (int i = 0; i < 6; i++)
        printf (" %s_us=%.3f", names[i], us[i]);
    printf ("\n");
    return 0;
}
