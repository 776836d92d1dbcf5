/*  libFuzzer target: scheduler's configuration parser (services/scheduler/config.c) never
    crashes, leaks or hangs on any file. A refusal names the file and a line within the input; an
    accepted configuration keeps its invariants: at least one centre and one service, every
    service a centre lists exists, holidays sorted, reminders in descending order, opening hours
    well-formed, and slot generation over a month stays within the centre's hours. */
#include "../../services/scheduler/config.c"
#include "../../services/scheduler/slots.c"
#include <stdint.h>

static int
s_slot (void *arg, const sched_slot_t *slot)
{
    size_t *n = arg;
    if (slot->end <= slot->start || slot->capacity < 1)
        abort ();
    return ++*n > 5000;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err[512] = "";
    sched_config_t *c = sched_config_parse ((const char *) data, size, "fuzz.conf", err,
                                            sizeof err);
    if (!c) {
        if (strncmp (err, "fuzz.conf:", 10) != 0)
            abort ();
        size_t lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        if ((size_t) atol (err + 10) > lines + 1)
            abort ();
        return 0;
    }
    if (c->centre_count == 0 || c->service_count == 0)
        abort ();
    for (size_t i = 1; i < c->reminder_count; i++)
        if (c->reminders[i] >= c->reminders[i - 1])
            abort ();
    for (size_t i = 0; i < c->centre_count; i++) {
        const sched_centre_t *centre = &c->centres[i];
        for (size_t h = 1; h < centre->holiday_count; h++)
            if (centre->holidays[h] < centre->holidays[h - 1])
                abort ();
        for (size_t s = 0; s < centre->service_count; s++) {
            const sched_service_t *service = sched_config_service (c, centre->services[s]);
            if (!service)
                abort ();
            size_t n = 0;
            int64_t now = INT64_C (1798948800000);
            sched_slots_each (centre, service, now, now + 31 * SCHED_DAY_MS, now, s_slot, &n);
        }
    }
    sched_config_destroy (&c);
    return 0;
}
