/*  referral under fire: two replicas of gl-referral run at once (both run the escalation
    timer; one applies intake's events, the other stands by), and are SIGKILLed at random
    moments and restarted while referrals and emergencies stream in and the business clock
    jumps across their deadlines. Some events are raised while no replica runs at all.

    At the end every referral was routed exactly once and escalated exactly once at each level
    (reminder, focal point, supervisor), with exactly one notification request per step; every
    emergency was dispatched once, and no step of its chain fired twice.

    ctest: timeout=300 labels=nosan */
#include "test_referral_env.h"

#define K_REFERRALS     40
#define K_EMERGENCIES   8
#define K_KILLS         6

static pid_t s_replica[2] = { -1, -1 };
static uint64_t s_rng;

static uint64_t
t_rand (void)
{
    uint64_t x = s_rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s_rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int
t_setup (void **state)
{
    s_rng = gl_test_seed ("test_referral_kill") | 1;
    return t_env_setup ();
}

static int
t_teardown (void **state)
{
    for (int i = 0; i < 2; i++)
        if (s_replica[i] > 0)
            gl_test_stop (s_replica[i], 10000);
    t_env_teardown ();
    return 0;
}

static int s_second_port;

//  Replica i: the first answers on the test's client port, the second on a port of its own.
static pid_t
t_spawn (int i)
{
    return t_spawn_referral_at (i == 0 ? s_router_port : s_second_port, 0);
}

static void
t_kill (int i)
{
    if (s_replica[i] <= 0)
        return;
    kill (s_replica[i], SIGKILL);
    waitpid (s_replica[i], NULL, 0);
    s_replica[i] = -1;
}

//  Every referral-N source's log (the replicas' names change as they are killed).
static json_t *
t_all_events (const char *type)
{
    json_t *out = json_array ();
    redisReply *srcs = gl_redis_cmd (s_r, "SMEMBERS gl:sources");
    assert_non_null (srcs);
    for (size_t s = 0; s < srcs->elements; s++) {
        if (strncmp (srcs->element[s]->str, "referral-", 9) != 0)
            continue;
        redisReply *r = gl_redis_cmd (s_r, "XRANGE gl:log:{%s} - +", srcs->element[s]->str);
        assert_non_null (r);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *fields = r->element[i]->element[1];
            gl_event_err_t why;
            gl_event_t *ev = gl_event_decode (fields->element[1]->str, fields->element[1]->len,
                                              &why, NULL, 0);
            assert_non_null (ev);
            if (strcmp (ev->type, type) == 0)
                json_array_append_new (out, json_pack ("{s:s, s:s, s:O}", "corr", ev->corr, "id",
                                                       ev->id, "data", ev->data));
            gl_event_destroy (&ev);
        }
        freeReplyObject (r);
    }
    freeReplyObject (srcs);
    return out;
}

//  How many events in evs are about corr.
static size_t
t_count (json_t *evs, const char *corr)
{
    size_t n = 0, i;
    json_t *e;
    json_array_foreach (evs, i, e)
        n += strcmp (json_string_value (json_object_get (e, "corr")), corr) == 0;
    return n;
}

//  What a failure left behind: the referrals short of three steps, the outbox.
static void
t_explain (char refs[][GL_ID_LEN + 1])
{
    json_t *esc = t_all_events ("referral.escalated");
    for (int i = 0; i < K_REFERRALS; i++) {
        if (t_count (esc, refs[i]) == 3)
            continue;
        redisReply *r = gl_redis_cmd (s_r, "HGETALL referral:{referral}:ref:%s", refs[i]);
        fprintf (stderr, "referral %s: %zu escalations;", refs[i], t_count (esc, refs[i]));
        for (size_t k = 0; r && k + 1 < r->elements; k += 2)
            if (strstr (r->element[k]->str, "esc") || strstr (r->element[k]->str, "version")
                || strstr (r->element[k]->str, "status"))
                fprintf (stderr, " %s=%s", r->element[k]->str, r->element[k + 1]->str);
        fprintf (stderr, "\n");
        if (r)
            freeReplyObject (r);
    }
    json_decref (esc);
    redisReply *r = gl_redis_cmd (s_r, "HGETALL referral:{referral}:outbox");
    for (size_t k = 0; r && k + 1 < r->elements; k += 2)
        fprintf (stderr, "outbox: %.300s\n", r->element[k + 1]->str);
    if (r)
        freeReplyObject (r);
    r = gl_redis_cmd (s_r, "KEYS gl:src:*");
    for (size_t k = 0; r && k < r->elements; k++) {
        redisReply *h = gl_redis_cmd (s_r, "HGETALL %s", r->element[k]->str);
        fprintf (stderr, "%s:", r->element[k]->str);
        for (size_t j = 0; h && j < h->elements; j++)
            fprintf (stderr, " %s", h->element[j]->str);
        fprintf (stderr, "\n");
        if (h)
            freeReplyObject (h);
    }
    if (r)
        freeReplyObject (r);
}

static void
test_kill_while_timers_run (void **state)
{
    char refs[K_REFERRALS][GL_ID_LEN + 1], emgs[K_EMERGENCIES][GL_ID_LEN + 1];
    //  Monday 15:30: a high legal referral is due Tuesday 08:30 (see test_referral.c).
    t_clock_set (T_MON9 + 6 * T_H + 30 * T_M);
    int64_t tue = T_MON9 + 24 * T_H - T_H;
    s_second_port = gl_test_free_port ();
    for (int i = 0; i < 2; i++)
        s_replica[i] = t_spawn (i);
    t_wait_up ();
    int kills = 0, r = 0, e = 0;
    //  Stream the work in while killing replicas; the clock moves past each step meanwhile.
    static const int64_t steps[] = { 0, 17 * T_H, 17 * T_H + 60 * T_M, 17 * T_H + 90 * T_M,
                                     17 * T_H + 150 * T_M, 17 * T_H + 200 * T_M };
    int64_t base = s_now;
    for (int round = 0; r < K_REFERRALS || e < K_EMERGENCIES || kills < K_KILLS; round++) {
        for (int k = 0; k < 8 && r < K_REFERRALS; k++) {
            gl_id_new (refs[r]);
            t_request_referral (refs[r++], "legal.civil_documentation", "high", true);
        }
        if (e < K_EMERGENCIES) {
            gl_id_new (emgs[e]);
            t_raise_emergency (emgs[e++]);
        }
        gl_sleep_ms ((int64_t) (t_rand () % 400) + 100);
        int victim = (int) (t_rand () % 2);
        if (kills < K_KILLS) {
            t_kill (victim);
            kills++;
            //  Once, both are down while work arrives.
            if (kills == 3) {
                t_kill (1 - victim);
                if (e < K_EMERGENCIES) {
                    gl_id_new (emgs[e]);
                    t_raise_emergency (emgs[e++]);
                }
                if (r < K_REFERRALS) {
                    gl_id_new (refs[r]);
                    t_request_referral (refs[r++], "legal.civil_documentation", "high", true);
                }
                s_replica[1 - victim] = t_spawn (1 - victim);
            }
            s_replica[victim] = t_spawn (victim);
        }
        size_t step = (size_t) round < sizeof steps / sizeof steps[0] ? (size_t) round
                                                                      : sizeof steps / sizeof steps[0] - 1;
        t_clock_set (base + steps[step]);
    }
    //  Once every referral is routed (some only after a replica's lease lapsed), the clock
    //  moves past every step of every referral; then the survivors finish.
    int64_t deadline = gl_mono_ms () + 120000;
    for (;;) {
        json_t *routed = t_all_events ("referral.routed");
        bool done = json_array_size (routed) >= K_REFERRALS;
        json_decref (routed);
        if (done)
            break;
        if (gl_mono_ms () > deadline)
            fail_msg ("not every referral was routed (log: %s)", s_log_path);
        gl_sleep_ms (200);
    }
    t_clock_set (tue + 2 * 24 * T_H + 7 * T_H);
    //  And once more while the timers fire the remaining steps.
    gl_sleep_ms ((int64_t) (t_rand () % 100));
    int victim = (int) (t_rand () % 2);
    t_kill (victim);
    s_replica[victim] = t_spawn (victim);
    kills++;
    for (;;) {
        json_t *esc = t_all_events ("referral.escalated");
        bool done = json_array_size (esc) >= 3 * K_REFERRALS;
        json_decref (esc);
        json_t *dis = t_all_events ("emergency.dispatched");
        done = done && json_array_size (dis) >= K_EMERGENCIES;
        json_decref (dis);
        if (done)
            break;
        //  Business time goes on (leases, and so the sweep of a dead replica's outbox
        //  entries, are on that clock too).
        t_advance (1000);
        if (gl_mono_ms () > deadline) {
            t_explain (refs);
            fail_msg ("not every escalation fired (log: %s)", s_log_path);
        }
        gl_sleep_ms (200);
    }
    //  Everything once, nothing twice.
    json_t *routed = t_all_events ("referral.routed");
    json_t *esc = t_all_events ("referral.escalated");
    json_t *notices = t_all_events ("notification.requested");
    for (int i = 0; i < K_REFERRALS; i++) {
        assert_int_equal (t_count (routed, refs[i]), 1);
        assert_int_equal (t_count (esc, refs[i]), 3);
        int levels = 0;
        size_t k;
        json_t *ev;
        json_array_foreach (esc, k, ev)
            if (strcmp (json_string_value (json_object_get (ev, "corr")), refs[i]) == 0)
                levels |= 1 << t_i (ev, "data", "level");
        assert_int_equal (levels, 2 | 4 | 8);
        //  assigned + reminder + focal + supervisor
        assert_int_equal (t_count (notices, refs[i]), 4);
    }
    json_t *dis = t_all_events ("emergency.dispatched");
    json_t *eesc = t_all_events ("emergency.escalated");
    for (int i = 0; i < K_EMERGENCIES; i++) {
        assert_int_equal (t_count (dis, emgs[i]), 1);
        //  No step of one chain twice: each scheduled time once.
        json_t *seen = json_object ();
        size_t k;
        json_t *ev;
        json_array_foreach (eesc, k, ev) {
            if (strcmp (json_string_value (json_object_get (ev, "corr")), emgs[i]) != 0)
                continue;
            char due[32];
            snprintf (due, sizeof due, "%" PRId64, t_i (ev, "data", "due"));
            assert_null (json_object_get (seen, due));
            json_object_set_new (seen, due, json_true ());
        }
        json_decref (seen);
    }
    //  Every event id once.
    json_t *ids = json_object ();
    json_t *lists[] = { routed, esc, notices, dis, eesc };
    for (size_t l = 0; l < 5; l++) {
        size_t k;
        json_t *ev;
        json_array_foreach (lists[l], k, ev) {
            const char *id = json_string_value (json_object_get (ev, "id"));
            assert_null (json_object_get (ids, id));
            json_object_set_new (ids, id, json_true ());
        }
    }
    json_decref (ids);
    fprintf (stderr, "kills: %d; events: %zu routed, %zu escalations, %zu notifications\n", kills,
             json_array_size (routed), json_array_size (esc), json_array_size (notices));
    json_decref (routed);
    json_decref (esc);
    json_decref (notices);
    json_decref (dis);
    json_decref (eesc);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_kill_while_timers_run),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
