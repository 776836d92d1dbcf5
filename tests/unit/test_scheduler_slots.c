/*  scheduler's slots (services/scheduler/slots.c) from the configuration alone: opening hours per
    weekday, the Friday/Saturday weekend, public holidays, Ramadan hours, a closed period, the
    centre's time zone, lead time and booking horizon, slot ids, and why a start is refused.
    ctest: timeout=60 */
#include "../../services/scheduler/config.c"
#include "../../services/scheduler/slots.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static const char *s_conf =
    "[service renewal]\n"
    "name = Renewal\n"
    "duration = 30m\n"
    "capacity = 3\n"
    "lead = 24h\n"
    "horizon = 30d\n"
    "[service rsd]\n"
    "name = RSD\n"
    "duration = 2h\n"
    "capacity = 1\n"
    "lead = 0h\n"
    "horizon = 90d\n"
    "[centre amman]\n"
    "name = Amman\n"
    "address = 1 Street\n"
    "timezone = +03:00\n"
    "weekend = fri, sat\n"
    "hours = 08:00-15:00\n"
    "hours.thu = 08:00-13:00\n"
    "holiday = 2027-01-04 test-holiday\n"
    "special = 2027-01-10..2027-01-12 09:00-14:00 ramadan\n"
    "special = 2027-01-13..2027-01-13 closed retreat\n"
    "services = renewal, rsd:2\n";

static sched_config_t *s_cfg;
static const sched_centre_t *s_centre;
static const sched_service_t *s_renewal, *s_rsd;

//  Unix ms of a local time at the centre (+03:00).
static int64_t
t_local (int y, int m, int d, int hh, int mm)
{
    return ((int64_t) sched_days_from_civil (y, m, d) * 1440 + hh * 60 + mm - 180) * 60000;
}

typedef struct {
    sched_slot_t slots[4000];
    size_t n;
} t_list_t;

static int
t_collect (void *arg, const sched_slot_t *slot)
{
    t_list_t *l = arg;
    if (l->n < 4000)
        l->slots[l->n++] = *slot;
    return 0;
}

static int
t_setup (void **state)
{
    (void) state;
    char err[256];
    s_cfg = sched_config_parse (s_conf, strlen (s_conf), "t.conf", err, sizeof err);
    if (!s_cfg)
        fprintf (stderr, "%s\n", err);
    assert_non_null (s_cfg);
    s_centre = sched_config_centre (s_cfg, "amman");
    s_renewal = sched_config_service (s_cfg, "renewal");
    s_rsd = sched_config_service (s_cfg, "rsd");
    return 0;
}

static int
t_teardown (void **state)
{
    (void) state;
    sched_config_destroy (&s_cfg);
    return 0;
}

//  A week: Sun 2027-01-03 .. Sat 2027-01-09. Mon 4th is a holiday, Thu 7th short, Fri/Sat shut.
static void
test_week (void **state)
{
    (void) state;
    static t_list_t l;
    l.n = 0;
    int64_t now = t_local (2027, 1, 1, 12, 0);
    size_t n = sched_slots_each (s_centre, s_renewal, t_local (2027, 1, 3, 0, 0),
                                 t_local (2027, 1, 10, 0, 0), now, t_collect, &l);
    //  Sun, Tue, Wed: 14 slots each (08:00-15:00); Thu: 10 (08:00-13:00); Mon holiday.
    assert_int_equal (n, 14 * 3 + 10);
    assert_int_equal (l.slots[0].start, t_local (2027, 1, 3, 8, 0));
    assert_string_equal (l.slots[0].slot_id, "20270103T0800");
    assert_int_equal (l.slots[0].end - l.slots[0].start, 30 * 60000);
    assert_int_equal (l.slots[0].capacity, 3);
    for (size_t i = 0; i < l.n; i++) {
        int32_t day = (int32_t) ((l.slots[i].start / 60000 + 180) / 1440);
        int wd = sched_weekday (day);
        assert_true (wd != 5 && wd != 6);                       //  never Friday or Saturday
        assert_true (day != sched_days_from_civil (2027, 1, 4));  //  never the holiday
    }
    //  the last slot of Thursday ends at 13:00
    assert_int_equal (l.slots[l.n - 1].start, t_local (2027, 1, 7, 12, 30));
    //  the centre's override of the service's capacity
    l.n = 0;
    sched_slots_each (s_centre, s_rsd, t_local (2027, 1, 3, 0, 0), t_local (2027, 1, 4, 0, 0),
                      now, t_collect, &l);
    assert_int_equal (l.n, 3);                                  //  08-10, 10-12, 12-14
    assert_int_equal (l.slots[0].capacity, 2);
}

static void
test_special_periods (void **state)
{
    (void) state;
    static t_list_t l;
    int64_t now = t_local (2027, 1, 1, 12, 0);
    l.n = 0;
    //  Sun 10th, Ramadan hours 09:00-14:00: 10 slots, from 09:00
    sched_slots_each (s_centre, s_renewal, t_local (2027, 1, 10, 0, 0),
                      t_local (2027, 1, 11, 0, 0), now, t_collect, &l);
    assert_int_equal (l.n, 10);
    assert_string_equal (l.slots[0].slot_id, "20270110T0900");
    //  Wed 13th closed
    l.n = 0;
    sched_slots_each (s_centre, s_renewal, t_local (2027, 1, 13, 0, 0),
                      t_local (2027, 1, 14, 0, 0), now, t_collect, &l);
    assert_int_equal (l.n, 0);
    sched_slot_t slot;
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, "20270113T0900", 0, now, &slot),
                      SCHED_SLOT_CLOSED);
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, "20270110T0800", 0, now, &slot),
                      SCHED_SLOT_OUTSIDE_HOURS);
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, "20270110T0900", 0, now, &slot),
                      SCHED_SLOT_OK);
}

static void
test_lead_and_horizon (void **state)
{
    (void) state;
    static t_list_t l;
    //  Now: Sunday 3rd 10:10 local. Lead 24 h: the first slot is Tuesday 08:00 (Monday is a
    //  holiday), the first after Sunday 10:10 + 24h.
    int64_t now = t_local (2027, 1, 3, 10, 10);
    l.n = 0;
    sched_slots_each (s_centre, s_renewal, now - SCHED_DAY_MS, now + 3 * SCHED_DAY_MS, now,
                      t_collect, &l);
    assert_true (l.n > 0);
    assert_int_equal (l.slots[0].start, t_local (2027, 1, 5, 8, 0));
    sched_slot_t slot;
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, NULL, t_local (2027, 1, 3, 8, 0),
                                          now, &slot),
                      SCHED_SLOT_PAST);
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, NULL, t_local (2027, 1, 3, 14, 0),
                                          now, &slot),
                      SCHED_SLOT_LEAD);
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, NULL,
                                          t_local (2027, 2, 14, 8, 0), now, &slot),
                      SCHED_SLOT_HORIZON);
    //  horizon: nothing offered past now + 30 d
    l.n = 0;
    sched_slots_each (s_centre, s_renewal, now, now + 90 * SCHED_DAY_MS, now, t_collect, &l);
    assert_true (l.slots[l.n - 1].start <= now + 30 * SCHED_DAY_MS);
    //  by start: on a boundary, inside hours; slot id and start agree
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, NULL, t_local (2027, 1, 5, 9, 30),
                                          now, &slot),
                      SCHED_SLOT_OK);
    assert_string_equal (slot.slot_id, "20270105T0930");
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, NULL,
                                          t_local (2027, 1, 5, 9, 40), now, &slot),
                      SCHED_SLOT_OUTSIDE_HOURS);
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, NULL,
                                          t_local (2027, 1, 5, 14, 45), now, &slot),
                      SCHED_SLOT_OUTSIDE_HOURS);        //  would end after closing
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, NULL,
                                          t_local (2027, 1, 5, 9, 30) + 1, now, &slot),
                      SCHED_SLOT_OUTSIDE_HOURS);        //  not a whole minute
    assert_int_equal (sched_slot_resolve (s_centre, s_renewal, NULL, t_local (2027, 1, 8, 9, 0),
                                          now, &slot),
                      SCHED_SLOT_CLOSED);               //  Friday
    //  malformed slot ids
    const char *bad[] = { "", "2027010T0800", "20270105X0800", "20271305T0800", "20270105T2500",
                          "20270105T08a0", "20270230T0800" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal (sched_slot_resolve (s_centre, s_renewal, bad[i], 0, now, &slot),
                              SCHED_SLOT_OK);
    char date[11], time[6];
    sched_local_date (s_centre, t_local (2027, 1, 5, 0, 30), date);
    sched_local_time (s_centre, t_local (2027, 1, 5, 0, 30), time);
    assert_string_equal (date, "2027-01-05");
    assert_string_equal (time, "00:30");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_week),
        cmocka_unit_test (test_special_periods),
        cmocka_unit_test (test_lead_and_horizon),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
