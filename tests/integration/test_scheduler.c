/*  gl-scheduler as a process against a private redis-server, its business clock driven through
    GL_CLOCK_FILE, asked over real ZeroMQ (gl_req) the way intake asks it: scheduler.book with
    intake's exact body and idempotency keys, and the forwarded envelope {caller, params, query,
    body} for the rest.

    Booking: the contract (reply, slip in the person's language, stored reply for a retry, a key
    reused with another body), every refusal (past, lead time, horizon, weekend, holiday, outside
    hours, unknown service or centre, bad fields, overlapping appointments); the last-place race
    (many parallel bookings: exactly the capacity succeed); free slots; move, cancel, attended,
    no-show with their rules on the driven clock; reminders firing on the driven clock, moved
    with the appointment, dropped with a cancellation; the events (ids and codes only: no case
    number in any event byte).

    ctest: timeout=240 */
#define _GNU_SOURCE
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl/gl_req.h"
#include "gl_testenv.h"
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_scheduler_env.h"

static const char *s_conf = T_SCHEDULER_CONF;

//  --------------------------------------------------------------------------------------------
//  Booking

static void
test_book_contract (void **state)
{
    (void) state;
    t_clock_set (T_START_MS);
    json_t *body = t_book_body (T_CASE_A, "renewal", "20270104T0800", 0);
    json_t *out = NULL, *again = NULL;
    const char *key = "h-0123456789abcdef0123456789abcdef";
    assert_int_equal (t_req ("scheduler.book", key, body, &out), 200);
    const char *id = json_string_value (json_object_get (out, "appointment_id"));
    assert_true (gl_id_valid (id));
    assert_string_equal (json_string_value (json_object_get (out, "centre")), "c1");
    assert_string_equal (json_string_value (json_object_get (out, "service")), "renewal");
    assert_int_equal (json_integer_value (json_object_get (out, "start")),
                      t_local (2027, 1, 4, 8, 0));
    assert_int_equal (json_integer_value (json_object_get (out, "end")),
                      t_local (2027, 1, 4, 8, 30));
    assert_string_equal (json_string_value (json_object_get (out, "status")), "booked");
    assert_null (json_object_get (out, "case_no"));
    //  The slip, in the person's language
    json_t *slip = json_object_get (out, "slip");
    assert_string_equal (json_string_value (json_object_get (slip, "language")), "fr");
    const char *text = json_string_value (json_object_get (slip, "text"));
    assert_non_null (strstr (text, "Renouvellement"));
    assert_non_null (strstr (text, "Centre Un"));
    assert_non_null (strstr (text, "2027-01-04"));
    assert_non_null (strstr (text, "08:00"));
    assert_null (strstr (text, T_CASE_A));
    //  Reminders: 48 h before is already past (booked 25 h ahead); 2 h before is due.
    json_t *dues = json_object_get (out, "reminders");
    assert_int_equal (json_array_size (dues), 1);
    assert_int_equal (json_integer_value (json_array_get (dues, 0)), t_local (2027, 1, 4, 6, 0));

    //  A retry with the same key: the same booking, not a second one.
    assert_int_equal (t_req ("scheduler.book", key, body, &again), 200);
    assert_string_equal (json_string_value (json_object_get (again, "appointment_id")), id);
    json_decref (again);
    //  The same key with another body
    json_object_set_new (body, "slot_id", json_string ("20270104T0830"));
    t_expect_error (t_req ("scheduler.book", key, body, &again), &again, 422, "key_reused", NULL);
    json_decref (again);
    json_decref (body);

    //  One booking, its event (corr: the call it was made in) and its notification
    assert_int_equal (t_wait_count ("appointment.booked", NULL, s_call, 1), 1);
    assert_int_equal (t_wait_count ("notification.requested", "appointment.booked", id, 1), 1);
    json_t *list = t_events (NULL);
    size_t i;
    json_t *ev;
    json_array_foreach (list, i, ev) {
        json_t *d = json_object_get (ev, "data");
        if (strcmp (json_string_value (json_object_get (ev, "type")), "notification.requested"))
            continue;
        assert_string_equal (json_string_value (json_object_get (ev, "corr")), id);
        assert_true (gl_id_valid (json_string_value (json_object_get (d, "notification_id"))));
        json_t *rcp = json_object_get (d, "recipient");
        assert_string_equal (json_string_value (json_object_get (rcp, "kind")), "person");
        assert_string_equal (json_string_value (json_object_get (rcp, "ref")), s_call);
        assert_string_equal (json_string_value (json_object_get (d, "language")), "fr");
        assert_string_equal (json_string_value (json_object_get (d, "priority")), "routine");
        assert_string_equal (json_string_value (json_array_get (json_object_get (d, "channels"), 0)),
                             "sms");
    }
    json_decref (list);

    //  The same person at an overlapping time: refused; another person: fine.
    json_t *o2 = NULL;
    t_expect_error (t_book (T_CASE_A, "single", "20270104T0800", NULL, &o2), &o2, 409,
                    "overlapping_appointment", NULL);
    json_decref (o2);
    char other[GL_ID_LEN + 1];
    assert_int_equal (t_book (T_CASE_B, "single", "20270104T0800", other, NULL), 200);
    //  Back to back is not an overlap.
    assert_int_equal (t_book (T_CASE_A, "renewal", "20270104T0830", other, NULL), 200);
    json_decref (out);
}

static void
t_refused (json_t *body, int status, const char *code, const char *field)
{
    json_t *out = NULL;
    char key[40], k[GL_ID_LEN + 1];
    gl_id_new (k);
    snprintf (key, sizeof key, "n-%s", k);
    int got = t_req ("scheduler.book", key, body, &out);
    t_expect_error (got, &out, status, code, field);
    json_decref (out);
    json_decref (body);
}

static void
test_book_refusals (void **state)
{
    (void) state;
    t_clock_set (T_START_MS);
    t_refused (t_book_body ("QZC-1", "renewal", NULL, t_local (2026, 12, 31, 9, 0)), 422,
               "in_the_past", "start");
    t_refused (t_book_body ("QZC-1", "renewal", NULL, t_local (2027, 1, 3, 13, 0)), 422,
               "too_soon", "start");
    t_refused (t_book_body ("QZC-1", "renewal", NULL, t_local (2027, 2, 15, 9, 0)), 422,
               "too_far_ahead", "start");
    t_refused (t_book_body ("QZC-1", "renewal", "20270108T0900", 0), 422, "centre_closed",
               "slot_id");          //  Friday
    t_refused (t_book_body ("QZC-1", "renewal", "20270105T0900", 0), 422, "centre_closed",
               "slot_id");          //  the holiday
    t_refused (t_book_body ("QZC-1", "renewal", "20270104T1500", 0), 422, "not_a_slot",
               "slot_id");          //  closing time
    t_refused (t_book_body ("QZC-1", "renewal", NULL, t_local (2027, 1, 4, 8, 10)), 422,
               "not_a_slot", "start");
    t_refused (t_book_body ("QZC-1", "renewal", "yesterday", 0), 422, "not_a_slot", "slot_id");
    t_refused (t_book_body ("QZC-1", "ghost", "20270104T0900", 0), 404, "unknown_service",
               "service");
    json_t *b = t_book_body ("QZC-1", "renewal", "20270104T0900", 0);
    json_object_set_new (b, "centre", json_string ("c9"));
    t_refused (b, 404, "unknown_centre", "centre");
    b = t_book_body ("QZC-1", "renewal", "20270104T0900", 0);
    json_object_del (b, "case_no");
    t_refused (b, 400, "missing_field", "case_no");
    t_refused (t_book_body ("QZ C 1", "renewal", "20270104T0900", 0), 400, "invalid_field",
               "case_no");
    b = t_book_body ("QZC-1", "renewal", "20270104T0900", 0);
    json_object_set_new (b, "start", json_integer (t_local (2027, 1, 4, 9, 0)));
    t_refused (b, 400, "invalid_field", "slot_id");
    b = t_book_body ("QZC-1", "renewal", "20270104T0900", 0);
    json_object_del (b, "call_id");
    t_refused (b, 400, "missing_field", "call_id");
    b = t_book_body ("QZC-1", "renewal", "20270104T0900", 0);
    json_object_set_new (b, "contact_id", json_string (s_call));
    t_refused (b, 400, "invalid_field", "call_id");
    b = t_book_body ("QZC-1", "renewal", "20270104T0900", 0);
    json_object_set_new (b, "colour", json_string ("red"));
    t_refused (b, 400, "unknown_field", "colour");
    b = t_book_body ("QZC-1", "renewal", "20270104T0900", 0);
    json_object_set_new (b, "language", json_integer (7));
    t_refused (b, 400, "invalid_field", "language");
    b = t_book_body ("QZC-1", "renewal", "20270104T0900", 0);
    json_object_set_new (b, "agent_id", json_string ("not-an-id"));
    t_refused (b, 400, "invalid_field", "agent_id");
    //  A person with no known language still books; the slip is in English.
    b = t_book_body ("QZC-1", "renewal", "20270104T1000", 0);
    json_object_set_new (b, "language", json_null ());
    json_t *out = NULL;
    assert_int_equal (t_req ("scheduler.book", "n-aaaabbbbccccddddeeeeffff00001111", b, &out),
                      200);
    assert_string_equal (json_string_value (json_object_get (json_object_get (out, "slip"),
                                                             "language")),
                         "en");
    json_decref (out);
    json_decref (b);
}

//  --------------------------------------------------------------------------------------------
//  The last places

typedef struct {
    const char *service;
    const char *slot;
    int index;
    int status;
    bool code_ok;
} t_racer_t;

static void *
t_racer (void *arg)
{
    t_racer_t *r = arg;
    char case_no[32];
    snprintf (case_no, sizeof case_no, "QZR-%s-%d", r->service, r->index);
    json_t *b = t_book_body (case_no, r->service, r->slot, 0);
    char key[40], k[GL_ID_LEN + 1];
    gl_id_new (k);
    snprintf (key, sizeof key, "n-%s", k);
    json_t *out = NULL;
    r->status = t_req ("scheduler.book", key, b, &out);
    //  No cmocka assertion off the main thread: record and check after the join.
    r->code_ok = r->status == 200
                 || strcmp (json_string_value (json_object_get (out, "code")), "slot_taken") == 0;
    json_decref (out);
    json_decref (b);
    return NULL;
}

static int
t_race (const char *service, const char *slot, int n)
{
    pthread_t th[32];
    t_racer_t r[32];
    for (int i = 0; i < n; i++) {
        r[i] = (t_racer_t) { .service = service, .slot = slot, .index = i };
        assert_int_equal (pthread_create (&th[i], NULL, t_racer, &r[i]), 0);
    }
    int won = 0;
    for (int i = 0; i < n; i++) {
        pthread_join (th[i], NULL);
        won += r[i].status == 200;
        assert_true (r[i].status == 200 || r[i].status == 409);
        assert_true (r[i].code_ok);
    }
    return won;
}

static void
test_last_place_race (void **state)
{
    (void) state;
    t_clock_set (T_START_MS);
    assert_int_equal (t_race ("single", "20270106T1000", 16), 1);
    assert_int_equal (t_race ("renewal", "20270106T1100", 16), 3);
    //  Full slots are not offered.
    json_t *out = NULL;
    json_t *q = json_pack ("{s:s, s:s, s:s, s:s}", "service", "renewal", "centre", "c1", "from",
                           "1799218800000", "to", "1799240400000");    //  Wed 08:00-14:00
    char from[24], to[24];
    snprintf (from, sizeof from, "%" PRId64, t_local (2027, 1, 6, 8, 0));
    snprintf (to, sizeof to, "%" PRId64, t_local (2027, 1, 6, 14, 0));
    json_object_set_new (q, "from", json_string (from));
    json_object_set_new (q, "to", json_string (to));
    assert_int_equal (t_fwd ("scheduler.slots", "agent", NULL, q, NULL, &out), 200);
    size_t i;
    json_t *slot;
    int seen = 0;
    json_array_foreach (json_object_get (out, "slots"), i, slot) {
        assert_string_not_equal (json_string_value (json_object_get (slot, "slot_id")),
                                 "20270106T1100");
        seen++;
    }
    assert_int_equal (seen, 11);        //  12 half hours, one full
    json_decref (out);
}

static void
test_slots (void **state)
{
    (void) state;
    t_clock_set (T_START_MS);
    json_t *out = NULL;
    char from[24], to[24];
    snprintf (from, sizeof from, "%" PRId64, t_local (2027, 1, 3, 0, 0));
    snprintf (to, sizeof to, "%" PRId64, t_local (2027, 1, 10, 0, 0));
    json_t *q = json_pack ("{s:s, s:s, s:s, s:s}", "service", "renewal", "from", from, "to", to,
                           "limit", "500");
    assert_int_equal (t_fwd ("scheduler.slots", "agent", NULL, q, NULL, &out), 200);
    json_t *slots = json_object_get (out, "slots");
    assert_false (json_is_true (json_object_get (out, "truncated")));
    //  Mon, Wed, Thu open (Tue holiday, Fri/Sat weekend, Sunday inside the lead time)
    size_t i;
    json_t *slot;
    int64_t first = -1;
    int monday_0800_free = -1;
    json_array_foreach (slots, i, slot) {
        int64_t start = json_integer_value (json_object_get (slot, "start"));
        if (first < 0)
            first = start;
        assert_true (start < t_local (2027, 1, 5, 0, 0) || start >= t_local (2027, 1, 6, 0, 0));
        assert_true (start < t_local (2027, 1, 8, 0, 0));
        if (strcmp (json_string_value (json_object_get (slot, "slot_id")), "20270104T0800") == 0)
            monday_0800_free = (int) json_integer_value (json_object_get (slot, "free"));
        assert_int_equal (json_integer_value (json_object_get (slot, "capacity")), 3);
    }
    assert_int_equal (first, t_local (2027, 1, 4, 8, 0));
    assert_int_equal (monday_0800_free, 2);             //  one booked by test_book_contract
    json_decref (out);
    //  A language nobody speaks there
    q = json_pack ("{s:s, s:s}", "service", "renewal", "language", "so");
    assert_int_equal (t_fwd ("scheduler.slots", "agent", NULL, q, NULL, &out), 200);
    assert_int_equal (json_array_size (json_object_get (out, "slots")), 0);
    assert_string_equal (json_string_value (json_array_get (
                             json_object_get (out, "centres_without_language"), 0)),
                         "c1");
    json_decref (out);
    //  Refusals
    q = json_pack ("{s:s, s:s, s:s}", "service", "renewal", "from", "0", "to", "9999999999999");
    t_expect_error (t_fwd ("scheduler.slots", "agent", NULL, q, NULL, &out), &out, 400,
                    "invalid_parameter", "to");
    json_decref (out);
    q = json_pack ("{s:s}", "service", "ghost");
    t_expect_error (t_fwd ("scheduler.slots", "agent", NULL, q, NULL, &out), &out, 404,
                    "unknown_service", "service");
    json_decref (out);
    t_expect_error (t_fwd ("scheduler.slots", "agent", NULL, NULL, NULL, &out), &out, 400,
                    "missing_field", "service");
    json_decref (out);
    q = json_pack ("{s:s, s:s}", "service", "renewal", "from", "tomorrow");
    t_expect_error (t_fwd ("scheduler.slots", "agent", NULL, q, NULL, &out), &out, 400,
                    "invalid_parameter", "from");
    json_decref (out);
    q = json_pack ("{s:s, s:s}", "service", "renewal", "colour", "red");
    t_expect_error (t_fwd ("scheduler.slots", "agent", NULL, q, NULL, &out), &out, 400,
                    "unknown_parameter", "colour");
    json_decref (out);
    q = json_pack ("{s:s}", "service", "renewal");
    t_expect_error (t_fwd ("scheduler.slots", "protection", NULL, q, NULL, &out), &out, 403,
                    "forbidden", NULL);
    json_decref (out);
    //  The envelope itself
    json_t *bad = json_pack ("{s:{}}", "caller");
    t_expect_error (t_req ("scheduler.slots", "", bad, &out), &out, 400, "bad_request", "caller");
    json_decref (bad);
    json_decref (out);
    //  Centres
    assert_int_equal (t_fwd ("scheduler.centres", "agent", NULL, NULL, NULL, &out), 200);
    json_t *c = json_array_get (json_object_get (out, "items"), 0);
    assert_string_equal (json_string_value (json_object_get (c, "code")), "c1");
    assert_string_equal (json_string_value (json_object_get (c, "timezone")), "+03:00");
    assert_int_equal (json_array_size (json_object_get (c, "weekend")), 2);
    assert_string_equal (json_string_value (json_array_get (json_object_get (c, "holidays"), 0)),
                         "2027-01-05");
    json_decref (out);
}

//  --------------------------------------------------------------------------------------------
//  Changes

static int
t_change (const char *op, const char *roles, const char *id, json_t *body, json_t **out)
{
    return t_fwd (op, roles, json_pack ("{s:s}", "id", id), NULL, body, out);
}

static int
t_free_at (const char *slot_id, int64_t start)
{
    char from[24], to[24];
    snprintf (from, sizeof from, "%" PRId64, start);
    snprintf (to, sizeof to, "%" PRId64, start + 1);
    json_t *q = json_pack ("{s:s, s:s, s:s, s:s}", "service", "renewal", "centre", "c1", "from",
                           from, "to", to);
    json_t *out = NULL;
    assert_int_equal (t_fwd ("scheduler.slots", "agent", NULL, q, NULL, &out), 200);
    json_t *slot = json_array_get (json_object_get (out, "slots"), 0);
    int free_ = slot ? (int) json_integer_value (json_object_get (slot, "free")) : 0;
    if (slot)
        assert_string_equal (json_string_value (json_object_get (slot, "slot_id")), slot_id);
    json_decref (out);
    return free_;
}

static void
test_move_cancel_attend (void **state)
{
    (void) state;
    t_clock_set (T_START_MS);
    char a[GL_ID_LEN + 1], x[GL_ID_LEN + 1];
    json_t *out = NULL;
    assert_int_equal (t_book ("QZM-1", "renewal", "20270104T1100", a, NULL), 200);
    assert_int_equal (t_free_at ("20270104T1100", t_local (2027, 1, 4, 11, 0)), 2);
    //  Move to Wednesday 09:00: the old place comes back.
    assert_int_equal (t_change ("scheduler.move", "agent", a,
                                json_pack ("{s:s}", "slot_id", "20270106T0900"), &out),
                      200);
    assert_int_equal (json_integer_value (json_object_get (out, "version")), 2);
    assert_string_equal (json_string_value (json_object_get (out, "slot_id")), "20270106T0900");
    assert_non_null (json_object_get (out, "slip"));
    json_decref (out);
    assert_int_equal (t_free_at ("20270104T1100", t_local (2027, 1, 4, 11, 0)), 3);
    assert_int_equal (t_free_at ("20270106T0900", t_local (2027, 1, 6, 9, 0)), 2);
    assert_int_equal (t_wait_count ("appointment.moved", NULL, a, 1), 1);
    assert_int_equal (t_wait_count ("notification.requested", "appointment.moved", a, 1), 1);
    //  Into a full slot: refused, nothing changed
    for (int i = 0; i < 3; i++) {
        char c[16];
        snprintf (c, sizeof c, "QZF-%d", i);
        assert_int_equal (t_book (c, "renewal", "20270106T1300", x, NULL), 200);
    }
    t_expect_error (t_change ("scheduler.move", "agent", a,
                              json_pack ("{s:s}", "slot_id", "20270106T1300"), &out),
                    &out, 409, "slot_taken", NULL);
    json_decref (out);
    t_expect_error (t_change ("scheduler.move", "agent", a,
                              json_pack ("{s:s}", "slot_id", "20270106T0900"), &out),
                    &out, 422, "same_slot", NULL);
    json_decref (out);
    t_expect_error (t_change ("scheduler.move", "agent", a,
                              json_pack ("{s:s}", "slot_id", "20270109T0900"), &out),
                    &out, 422, "centre_closed", "slot_id");
    json_decref (out);
    t_expect_error (t_change ("scheduler.move", "agent", a,
                              json_pack ("{s:s, s:s}", "slot_id", "20270107T0900", "centre", "zz"),
                              &out),
                    &out, 404, "unknown_centre", "centre");
    json_decref (out);
    t_expect_error (t_change ("scheduler.move", "protection", a,
                              json_pack ("{s:s}", "slot_id", "20270107T0900"), &out),
                    &out, 403, "forbidden", NULL);
    json_decref (out);
    t_expect_error (t_change ("scheduler.move", "agent", "0123", json_object (), &out), &out, 400,
                    "invalid_parameter", "id");
    json_decref (out);
    char ghost[GL_ID_LEN + 1];
    gl_id_new (ghost);
    t_expect_error (t_change ("scheduler.cancel", "agent", ghost, json_object (), &out), &out, 404,
                    "not_found", "id");
    json_decref (out);
    //  Cancel
    t_expect_error (t_change ("scheduler.cancel", "agent", a,
                              json_pack ("{s:s}", "reason", "bored"), &out),
                    &out, 400, "invalid_field", "reason");
    json_decref (out);
    assert_int_equal (t_change ("scheduler.cancel", "agent", a,
                                json_pack ("{s:s}", "reason", "requested_by_person"), &out),
                      200);
    assert_string_equal (json_string_value (json_object_get (out, "status")), "cancelled");
    json_decref (out);
    assert_int_equal (t_free_at ("20270106T0900", t_local (2027, 1, 6, 9, 0)), 3);
    t_expect_error (t_change ("scheduler.cancel", "agent", a, json_object (), &out), &out, 409,
                    "not_booked", NULL);
    json_decref (out);
    assert_int_equal (t_wait_count ("appointment.cancelled", NULL, a, 1), 1);
    assert_int_equal (t_wait_count ("notification.requested", "appointment.cancelled", a, 1), 1);

    //  Attended and no-show, on the driven clock
    char d[GL_ID_LEN + 1], e[GL_ID_LEN + 1];
    assert_int_equal (t_book ("QZD-1", "renewal", "20270104T1200", d, NULL), 200);
    assert_int_equal (t_book ("QZE-1", "renewal", "20270104T1300", e, NULL), 200);
    t_expect_error (t_change ("scheduler.attended", "agent", d, NULL, &out), &out, 409,
                    "too_early", NULL);
    json_decref (out);
    t_clock_set (t_local (2027, 1, 4, 11, 0));
    assert_int_equal (t_change ("scheduler.attended", "api_client", d, NULL, &out), 200);
    assert_string_equal (json_string_value (json_object_get (out, "status")), "attended");
    json_decref (out);
    t_expect_error (t_change ("scheduler.no_show", "agent", e, NULL, &out), &out, 409, "too_early",
                    NULL);
    json_decref (out);
    t_expect_error (t_change ("scheduler.cancel", "agent", d, NULL, &out), &out, 409, "not_booked",
                    NULL);
    json_decref (out);
    t_clock_set (t_local (2027, 1, 4, 14, 0));
    assert_int_equal (t_change ("scheduler.no_show", "agent", e, NULL, &out), 200);
    assert_string_equal (json_string_value (json_object_get (out, "status")), "no_show");
    json_decref (out);
    assert_int_equal (t_wait_count ("appointment.attended", NULL, d, 1), 1);
    assert_int_equal (t_wait_count ("appointment.no_show", NULL, e, 1), 1);
    //  A started appointment is not moved or cancelled
    char f[GL_ID_LEN + 1];
    t_clock_set (T_START_MS);
    assert_int_equal (t_book ("QZG-1", "renewal", "20270104T1430", f, NULL), 200);
    t_clock_set (t_local (2027, 1, 4, 14, 35));
    t_expect_error (t_change ("scheduler.cancel", "agent", f, NULL, &out), &out, 409,
                    "already_started", NULL);
    json_decref (out);

    //  Search by case number (in the body), and one appointment with its slip
    assert_int_equal (t_fwd ("scheduler.search", "agent", NULL, NULL,
                             json_pack ("{s:s}", "case_no", "qzm-1"), &out),
                      200);
    json_t *items = json_object_get (out, "items");
    assert_int_equal (json_array_size (items), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (items, 0),
                                                             "appointment_id")),
                         a);
    assert_null (json_object_get (json_array_get (items, 0), "case_no"));
    json_decref (out);
    t_expect_error (t_fwd ("scheduler.search", "agent", NULL, NULL, json_object (), &out), &out,
                    400, "missing_field", "case_no");
    json_decref (out);
    assert_int_equal (t_change ("scheduler.appointment", "supervisor", d, NULL, &out), 200);
    assert_string_equal (json_string_value (json_object_get (out, "status")), "attended");
    json_decref (out);
    //  The centre's day
    char from[24];
    snprintf (from, sizeof from, "%" PRId64, t_local (2027, 1, 4, 0, 0));
    assert_int_equal (t_fwd ("scheduler.appointments", "supervisor", NULL,
                             json_pack ("{s:s, s:s}", "centre", "c1", "from", from), NULL, &out),
                      200);
    assert_true (json_array_size (json_object_get (out, "items")) >= 5);
    json_decref (out);
    bool has_case = true;
    json_decref (t_events (&has_case));
    assert_false (has_case);
}

//  --------------------------------------------------------------------------------------------
//  Reminders on the driven clock

static void
test_reminders (void **state)
{
    (void) state;
    t_clock_set (T_START_MS);
    char f[GL_ID_LEN + 1], g[GL_ID_LEN + 1], h[GL_ID_LEN + 1];
    assert_int_equal (t_book ("QZH-1", "renewal", "20270106T1030", f, NULL), 200);
    assert_int_equal (t_book ("QZH-2", "renewal", "20270106T1130", g, NULL), 200);
    assert_int_equal (t_book ("QZH-3", "renewal", "20270106T1200", h, NULL), 200);
    json_t *out = NULL;
    assert_int_equal (t_change ("scheduler.cancel", "agent", h, NULL, &out), 200);
    json_decref (out);
    //  g moves to Thursday 09:00: its reminders follow it.
    assert_int_equal (t_change ("scheduler.move", "agent", g,
                                json_pack ("{s:s}", "slot_id", "20270107T0900"), &out),
                      200);
    json_decref (out);
    //  One minute before f's 48 h reminder: nothing.
    t_clock_set (t_local (2027, 1, 4, 10, 29));
    gl_sleep_ms (400);
    assert_int_equal (t_count ("notification.requested", "appointment.reminder", f), 0);
    //  Past it: exactly one.
    t_clock_set (t_local (2027, 1, 4, 10, 31));
    assert_int_equal (t_wait_count ("notification.requested", "appointment.reminder", f, 1), 1);
    //  g's old 48 h due time (Monday 11:30) passes without a reminder.
    t_clock_set (t_local (2027, 1, 4, 11, 45));
    gl_sleep_ms (400);
    assert_int_equal (t_count ("notification.requested", "appointment.reminder", g), 0);
    //  f's 2 h reminder, g's new 48 h one (Tuesday 09:00)
    t_clock_set (t_local (2027, 1, 6, 8, 31));
    assert_int_equal (t_wait_count ("notification.requested", "appointment.reminder", f, 2), 2);
    assert_int_equal (t_wait_count ("notification.requested", "appointment.reminder", g, 1), 1);
    gl_sleep_ms (300);
    assert_int_equal (t_count ("notification.requested", "appointment.reminder", f), 2);
    assert_int_equal (t_count ("notification.requested", "appointment.reminder", g), 1);
    assert_int_equal (t_count ("notification.requested", "appointment.reminder", h), 0);
    //  The reminder about g names its new start.
    json_t *list = t_events (NULL);
    size_t i;
    json_t *ev;
    json_array_foreach (list, i, ev) {
        json_t *d = json_object_get (ev, "data");
        if (strcmp (json_string_value (json_object_get (ev, "corr")), g) == 0
            && json_string_value (json_object_get (d, "template"))
            && strcmp (json_string_value (json_object_get (d, "template")),
                       "appointment.reminder") == 0) {
            json_t *p = json_object_get (d, "params");
            assert_int_equal (json_integer_value (json_object_get (p, "start")),
                              t_local (2027, 1, 7, 9, 0));
            assert_int_equal (json_integer_value (json_object_get (p, "before_ms")),
                              48 * 3600000LL);
        }
    }
    json_decref (list);
}

//  --------------------------------------------------------------------------------------------
//  A bad configuration file stops the start, naming file and line

static void
test_bad_config_stops_start (void **state)
{
    (void) state;
    char bad[280], log[280];
    snprintf (bad, sizeof bad, "%s/bad.conf", s_dir);
    snprintf (log, sizeof log, "%s/bad.log", s_dir);
    FILE *f = fopen (bad, "w");
    assert_non_null (f);
    fputs ("[service renewal]\nname = Renewal\nduration = 7 minutes\n", f);
    fclose (f);
    char env[8][400];
    int n = 0;
    snprintf (env[n++], 400, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 400, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (env[n++], 400, "GL_SCHEDULER_CONFIG=%s", bad);
    snprintf (env[n++], 400, "GL_SOURCE=scheduler-9");
    snprintf (env[n++], 400, "GL_CLOCK_FILE=%s", s_clock_path);
    char *envp[9];
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    const char *bin = gl_test_build_path ("services/scheduler/gl-scheduler");
    char *argv[] = { (char *) bin, NULL };
    pid_t pid = gl_test_spawn (bin, argv, envp, log);
    assert_true (pid > 0);
    int status = gl_test_wait (pid, 30000);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 1);
    f = fopen (log, "r");
    assert_non_null (f);
    char line[1024];
    bool named = false;
    char want[400];
    snprintf (want, sizeof want, "%s:3: duration", bad);
    while (fgets (line, sizeof line, f))
        named = named || strstr (line, want) != NULL;
    fclose (f);
    assert_true (named);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_book_contract),
        cmocka_unit_test (test_book_refusals),
        cmocka_unit_test (test_last_place_race),
        cmocka_unit_test (test_slots),
        cmocka_unit_test (test_move_cancel_attend),
        cmocka_unit_test (test_reminders),
        cmocka_unit_test (test_bad_config_stops_start),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
