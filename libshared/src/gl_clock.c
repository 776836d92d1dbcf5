/*  gl_clock — see gl_clock.h. */
#include "gl/gl_clock.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Atomic int64_t s_manual = -1;

int64_t
gl_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
gl_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
s_system_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A test-driven clock shared by processes: the file holds one integer. A missing or unreadable
//  file falls back to the system clock rather than to 0, so a race with the writer is harmless.
static int64_t
s_file_ms (const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return s_system_ms ();
    long long v = 0;
    int ok = fscanf (f, "%lld", &v);
    fclose (f);
    return ok == 1 && v > 0 ? (int64_t) v : s_system_ms ();
}

int64_t
gl_now_ms (void)
{
    int64_t manual = atomic_load (&s_manual);
    if (manual >= 0)
        return manual;
    const char *file = getenv ("GL_CLOCK_FILE");
    if (file && *file)
        return s_file_ms (file);
    return s_system_ms ();
}

void
gl_clock_set_manual (int64_t ms)
{
    atomic_store (&s_manual, ms);
}

void
gl_clock_advance (int64_t ms)
{
    int64_t cur = atomic_load (&s_manual);
    if (cur >= 0)
        atomic_store (&s_manual, cur + ms);
}

void
gl_clock_use_system (void)
{
    atomic_store (&s_manual, -1);
}

void
gl_sleep_ms (int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
    while (nanosleep (&ts, &ts) != 0)
        ;
}
