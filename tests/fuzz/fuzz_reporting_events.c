/*  fuzz_reporting_events — reporting's handling of outside data: event payloads (any JSON under
    any type name, a line "type json" each) applied to the aggregates, then every report, the
    wallboard, trends, exports and a checkpoint computed from them; the checkpoint texts read
    back from Redis (a period's counters, a record); and report query parameters. The first
    byte selects which. Nothing may crash, leak or read out of bounds.
*/
#include "../../services/reporting/store.c"
#include "../../services/reporting/aggregates.c"
#include "../../services/reporting/metrics.c"
#include "../../services/reporting/trends.c"
#include "../../services/reporting/export.c"
#include "../../services/reporting/html.c"
#include <stdint.h>

static int
s_discard (void *arg, int argc, const char **argv, const size_t *lens)
{
    (void) arg, (void) argc, (void) argv, (void) lens;
    return 0;
}

static void
s_events (const char *text, size_t len)
{
    rep_conf_t conf;
    rep_conf_default (&conf);
    conf.max_names = 200;
    rep_agg_t *agg = rep_agg_new (&conf);
    const char *p = text, *end = text + len;
    int64_t ts = INT64_C (1773100800000);
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t) (end - p));
        size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
        const char *sp = memchr (p, ' ', n);
        if (sp) {
            char type[64];
            size_t tl = (size_t) (sp - p);
            if (tl < sizeof type) {
                memcpy (type, p, tl);
                type[tl] = 0;
                json_t *data = json_loadb (sp + 1, n - tl - 1, JSON_DECODE_ANY, NULL);
                gl_event_t *ev = gl_event_type_valid (type) ? gl_event_new (type) : NULL;
                if (ev && json_is_object (data)) {
                    json_decref (ev->data);
                    ev->data = json_incref (data);
                    json_t *t = json_object_get (data, "_ts");
                    ev->ts = json_is_integer (t) ? json_integer_value (t) : (ts += 60000);
                    rep_agg_apply (agg, ev);
                }
                gl_event_destroy (&ev);
                json_decref (data);
            }
        }
        p += n + 1;
    }
    //  A day: report (whole and one agent's), CSV, HTML, statistical export; the week's trends.
    const char *kinds[] = { "day", "week" };
    for (int k = 0; k < 2; k++) {
        rep_span_t span;
        char field[32], msg[128];
        json_t *q = json_pack ("{s:s}", "date", "2026-03-10");
        if (rep_span_parse (agg, kinds[k], q, ts, &span, field, sizeof field, msg, sizeof msg) == 0) {
            if (k == 0) {
                json_t *r = rep_report (agg, &span, ts, NULL);
                char *out = rep_report_csv (r);
                free (out);
                out = rep_report_html (r, "ar");
                free (out);
                json_decref (r);
                r = rep_report (agg, &span, ts, "agent-a");
                json_decref (r);
                out = NULL;
                r = rep_stats_export (agg, &span, 'd', &out);
                free (out);
                json_decref (r);
            }
            else {
                json_t *r = rep_trends (agg, &span, ts);
                json_decref (r);
            }
        }
        json_decref (q);
    }
    json_t *wb = rep_wallboard (agg, ts);
    json_decref (wb);
    rep_agg_checkpoint (agg, s_discard, NULL);
    char *dump = rep_agg_dump (agg);
    free (dump);
    rep_agg_destroy (&agg);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    char *text = malloc (size);
    memcpy (text, data + 1, size - 1);
    text[size - 1] = 0;
    switch (data[0] % 4) {
        case 0:
            s_events (text, size - 1);
            break;
        case 1: {
            rep_store_t *store = rep_store_new (100);
            rep_store_decode (store, "d2026-03-10", text, size - 1);
            char *enc = rep_store_encode (store, "d2026-03-10");
            free (enc);
            rep_store_destroy (&store);
            break;
        }
        case 2: {
            s_rec_t rec = { 0 };
            if (s_rec_decode (text, &rec) == 0) {
                char *enc = s_rec_encode (&rec);
                free (enc);
                free (rec.s);
            }
            break;
        }
        default: {
            rep_conf_t conf;
            rep_conf_default (&conf);
            rep_agg_t *agg = rep_agg_new (&conf);
            json_t *q = json_loads (text, JSON_DECODE_ANY, NULL);
            rep_span_t span;
            char field[32], msg[128];
            const char *kinds[] = { "day", "week", "month", "range", "year" };
            for (int k = 0; k < 5 && json_is_object (q); k++)
                rep_span_parse (agg, kinds[k], q, INT64_C (1773100800000), &span, field,
                                sizeof field, msg, sizeof msg);
            json_decref (q);
            rep_agg_destroy (&agg);
        }
    }
    free (text);
    return 0;
}
