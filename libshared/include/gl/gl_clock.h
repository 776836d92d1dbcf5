/*  gl_clock — the business clock (unix milliseconds) and a monotonic clock for timeouts.

    Time is data (ARCHITECTURE.md): deadlines, leases and reminders are stored as due times and
    compared with gl_now_ms(), which tests can drive:
      - in-process: gl_clock_set_manual() / gl_clock_advance() / gl_clock_use_system();
      - across processes: set GL_CLOCK_FILE to a file holding a unix-ms number; every call reads it
        (tests rewrite the file to move time). The file wins over the system clock when set.
    gl_mono_ms() is for socket deadlines and backoff only; it never goes into a record.
*/
#ifndef GL_CLOCK_H
#define GL_CLOCK_H
#include <stdint.h>

//  Current business time in unix ms.
int64_t gl_now_ms (void);

//  Monotonic ms, for timeouts and measuring durations inside one process.
int64_t gl_mono_ms (void);

//  Monotonic µs, for latency figures (metrics histograms, benchmarks).
int64_t gl_mono_us (void);

//  Freeze the business clock at ms (this process only).
void gl_clock_set_manual (int64_t ms);

//  Move a manual clock forward by ms (no-op on the system clock).
void gl_clock_advance (int64_t ms);

//  Return to the system clock (or GL_CLOCK_FILE when set).
void gl_clock_use_system (void);

//  Sleep for ms of real time.
void gl_sleep_ms (int64_t ms);

#endif
