/*  board — the supervisor's live board as server-sent events: GET /api/v1/board/stream
    (docs/api/calls.md, "The board stream"; the console's board.js listens to it).

    Each stream gets at once one `event: board` whose data is one line of compact JSON
    {queue, agents, wallboard}: the queue as GET /api/v1/queue answers it (calls_queue_view),
    the agents as GET /api/v1/agents lists them (agents_list), and reporting's wallboard as
    GET /api/v1/wallboard answers it, or {"error": {code, message}} when reporting cannot
    answer. While any stream is open, a timer rebuilds the queue and the agents every second
    and sends the event to each stream whose last event differs (the clock-only figures left
    out of the comparison, see board.c); reporting's wallboard is asked again at most every
    5 s; a comment line ": ping" every 15 s finds clients that have gone. No timer runs while
    no stream is open.

    Bounds: at most GL_INTAKE_STREAMS_MAX streams (default 64; beyond, 503 too_many_streams),
    and a client that lets more than BOARD_PENDING_MAX bytes of output wait is dropped.
*/
#ifndef INTAKE_BOARD_H
#define INTAKE_BOARD_H
#include "intake.h"
#include <stddef.h>

typedef struct _board_t board_t;

#define BOARD_PENDING_MAX   (1u << 20)      //  unsent bytes a slow client may hold up
#define BOARD_TICK_MS       1000            //  queue and agents rebuilt
#define BOARD_WALL_MS       5000            //  reporting's wallboard asked again at most this often
#define BOARD_PING_MS       15000           //  heartbeat comment

//  Read GL_INTAKE_STREAMS_MAX. Nothing runs until the first stream opens. NULL with the reason
//  in err (a malformed setting names its key).
board_t *board_new (intake_t *intake, char *err, size_t errlen);

//  End every open stream (their clients see the end of the reply), stop the timer, free.
//  Call before http_destroy. NULLs *self_p; safe on NULL.
void board_destroy (board_t **self_p);

//  Streams open now.
size_t board_streams (board_t *self);

#endif
