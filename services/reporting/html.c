/*  The report as one self-contained HTML page (no scripts, no outside files) with SVG charts:
    calls per day, the wait before answer, service level per day, contacts by category,
    referrals by unit. In English, French or Arabic (right to left). Printable (A4).
*/
#include "metrics.h"
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
} s_out_t;

static void
s_printf (s_out_t *o, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_printf (s_out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (NULL, 0, fmt, ap);
    va_end (ap);
    if (n < 0)
        return;
    if (o->len + (size_t) n + 1 > o->cap) {
        o->cap = (o->cap + (size_t) n + 1) * 2;
        o->buf = realloc (o->buf, o->cap);
        assert (o->buf);
    }
    va_start (ap, fmt);
    vsnprintf (o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end (ap);
    o->len += (size_t) n;
}

//  Text from events or settings, escaped for HTML.
static void
s_text (s_out_t *o, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
            case '<': s_printf (o, "&lt;"); break;
            case '>': s_printf (o, "&gt;"); break;
            case '&': s_printf (o, "&amp;"); break;
            case '"': s_printf (o, "&quot;"); break;
            case '\'': s_printf (o, "&#39;"); break;
            default: s_printf (o, "%c", *s);
        }
    }
}

enum { L_TITLE, L_PERIOD, L_OFFERED, L_ANSWERED, L_ABANDONED, L_ABANDON_RATE, L_ASA, L_SL, L_AHT,
       L_LONGEST, L_PER_DAY, L_WAITS, L_SL_DAY, L_CATEGORIES, L_UNITS, L_FCR, L_PROVISIONAL,
       L_EMERGENCIES, L_COMPLAINTS, L_APPOINTMENTS, L_CONTACTS, L_REFERRALS, L_LONGER, L_NONE,
       L_TO, L_SECONDS, L_PER_HOUR, L__COUNT };

static const char *s_labels[3][L__COUNT] = {
    { "Helpline report", "Period", "Calls offered", "Answered", "Abandoned", "Abandonment rate",
      "Average speed of answer", "Service level", "Average handle time", "Longest wait",
      "Calls per day", "Wait before answer (calls)", "Service level per day", "Contacts by category",
      "Referrals by unit", "First-contact resolution", "provisional", "Emergencies", "Complaints",
      "Appointments", "Contacts", "Referrals", "longer", "Nothing in this period", "to", "s",
      "Calls per hour" },
    { "Rapport de la ligne d'assistance", "Période", "Appels présentés", "Répondus", "Abandonnés",
      "Taux d'abandon", "Délai moyen de réponse", "Niveau de service", "Durée moyenne de traitement",
      "Attente la plus longue", "Appels par jour", "Attente avant réponse (appels)",
      "Niveau de service par jour", "Contacts par catégorie", "Références par unité",
      "Résolution au premier contact", "provisoire", "Urgences", "Plaintes", "Rendez-vous",
      "Contacts", "Références", "plus", "Rien pendant cette période", "au", "s",
      "Appels par heure" },
    { "تقرير خط المساعدة", "الفترة", "المكالمات الواردة", "تم الرد", "المتروكة", "نسبة الترك",
      "متوسط سرعة الرد", "مستوى الخدمة", "متوسط مدة المعالجة", "أطول انتظار", "المكالمات يوميًا",
      "الانتظار قبل الرد (مكالمات)", "مستوى الخدمة يوميًا", "جهات الاتصال حسب الفئة",
      "الإحالات حسب الوحدة", "الحل من الاتصال الأول", "مؤقت", "حالات الطوارئ", "الشكاوى",
      "المواعيد", "جهات الاتصال", "الإحالات", "أطول", "لا شيء في هذه الفترة", "إلى", "ث",
      "المكالمات في الساعة" },
};

static const char *const *s_lang;

static const char *
s_l (int key)
{
    return s_lang[key];
}

typedef struct {
    char label[64];
    double value;
} s_bar_t;

//  A bar chart: vertical (a series by date) or horizontal (categories), values formatted with
//  pct as percentages.
static void
s_chart (s_out_t *o, const char *title, const s_bar_t *bars, size_t n, bool horizontal, bool pct)
{
    s_printf (o, "<section class=\"chart\"><h2>");
    s_text (o, title);
    s_printf (o, "</h2>");
    if (n == 0) {
        s_printf (o, "<p class=\"none\">%s</p></section>\n", s_l (L_NONE));
        return;
    }
    double max = pct ? 1.0 : 0;
    for (size_t i = 0; i < n; i++)
        max = bars[i].value > max ? bars[i].value : max;
    if (max <= 0)
        max = 1;
    if (horizontal) {
        int row = 22, w = 640, lw = 200;
        s_printf (o, "<svg role=\"img\" direction=\"ltr\" style=\"direction:ltr\" viewBox=\"0 0 %d %zu\" width=\"%d\" height=\"%zu\" xmlns=\"http://www.w3.org/2000/svg\">",
                  w, n * row + 4, w, n * row + 4);
        for (size_t i = 0; i < n; i++) {
            double bw = (w - lw - 60) * bars[i].value / max;
            s_printf (o, "<text x=\"%d\" y=\"%zu\" text-anchor=\"end\" font-size=\"12\">", lw - 6, i * row + 15);
            s_text (o, bars[i].label);
            s_printf (o, "</text><rect x=\"%d\" y=\"%zu\" width=\"%.1f\" height=\"16\" fill=\"#2b6cb0\"/>"
                         "<text x=\"%.1f\" y=\"%zu\" font-size=\"12\">%.0f</text>",
                      lw, i * row + 3, bw, lw + bw + 4, i * row + 15, bars[i].value);
        }
        s_printf (o, "</svg></section>\n");
        return;
    }
    int h = 180, w = 660, left = 40, bottom = 40;
    double step = (double) (w - left - 10) / (double) n;
    s_printf (o, "<svg role=\"img\" direction=\"ltr\" style=\"direction:ltr\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\">",
              w, h + bottom, w, h + bottom);
    s_printf (o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#555\"/>", left, h, w - 5, h);
    s_printf (o, "<text x=\"%d\" y=\"12\" font-size=\"11\" text-anchor=\"end\">%.0f%s</text>", left - 4,
              pct ? 100.0 : max, pct ? "%" : "");
    for (size_t i = 0; i < n; i++) {
        double bh = (h - 20) * bars[i].value / max;
        double x = left + i * step + step * 0.15;
        s_printf (o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#2f855a\"><title>",
                  x, h - bh, step * 0.7, bh);
        s_text (o, bars[i].label);
        s_printf (o, ": %.0f%s</title></rect>", pct ? bars[i].value * 100 : bars[i].value, pct ? "%" : "");
        if (n <= 16 || i % (n / 8 + 1) == 0) {
            s_printf (o, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">", x + step * 0.35, h + 14);
            s_text (o, bars[i].label);
            s_printf (o, "</text>");
        }
    }
    s_printf (o, "</svg></section>\n");
}

static double
s_num (const json_t *obj, const char *key)
{
    json_t *v = json_object_get (obj, key);
    return json_is_number (v) ? json_number_value (v) : 0;
}

static void
s_figure (s_out_t *o, const char *label, const json_t *v, const char *unit, double scale, bool pct)
{
    s_printf (o, "<div class=\"fig\"><div class=\"v\">");
    if (!json_is_number (v))
        s_printf (o, "–");
    else if (pct)
        s_printf (o, "%.1f%%", json_number_value (v) * 100);
    else
        s_printf (o, "%.0f%s%s", json_number_value (v) / scale, unit ? " " : "", unit ? unit : "");
    s_printf (o, "</div><div class=\"l\">");
    s_text (o, label);
    s_printf (o, "</div></div>");
}

//  Top n entries of an object {code: count}, largest first.
static size_t
s_top (const json_t *obj, s_bar_t *bars, size_t max)
{
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *) obj, key, v) {
        double val = json_number_value (v);
        size_t i = n < max ? n++ : max - 1;
        if (i == max - 1 && n == max && val <= bars[i].value)
            continue;
        snprintf (bars[i].label, sizeof bars[i].label, "%s", key);
        bars[i].value = val;
        while (i > 0 && bars[i].value > bars[i - 1].value) {
            s_bar_t t = bars[i];
            bars[i] = bars[i - 1];
            bars[i - 1] = t;
            i--;
        }
    }
    return n;
}

char *
rep_report_html (const json_t *report, const char *lang)
{
    int li = lang && !strcmp (lang, "fr") ? 1 : lang && !strcmp (lang, "ar") ? 2 : 0;
    s_lang = s_labels[li];
    const char *code = li == 1 ? "fr" : li == 2 ? "ar" : "en";
    json_t *period = json_object_get (report, "period");
    json_t *calls = json_object_get (report, "calls");
    s_out_t o = { 0 };
    s_printf (&o, "<!DOCTYPE html>\n<html lang=\"%s\" dir=\"%s\"><head><meta charset=\"utf-8\">"
                  "<title>%s</title><style>"
                  "body{font-family:'Noto Sans','DejaVu Sans',Arial,sans-serif;margin:24px;color:#1a202c}"
                  "h1{font-size:22px;margin:0 0 4px}h2{font-size:15px;margin:18px 0 6px}"
                  ".figs{display:flex;flex-wrap:wrap;gap:10px}.fig{border:1px solid #cbd5e0;border-radius:6px;padding:8px 12px;min-width:120px}"
                  ".v{font-size:20px;font-weight:bold}.l{font-size:12px;color:#4a5568}.none{color:#718096}"
                  "@media print{.chart{break-inside:avoid}@page{size:A4;margin:14mm}}"
                  "</style></head><body>\n", code, li == 2 ? "rtl" : "ltr", s_l (L_TITLE));
    s_printf (&o, "<h1>%s</h1><p>%s: ", s_l (L_TITLE), s_l (L_PERIOD));
    s_text (&o, json_string_value (json_object_get (period, "from")));
    s_printf (&o, " %s ", s_l (L_TO));
    s_text (&o, json_string_value (json_object_get (period, "to")));
    s_printf (&o, " (");
    s_text (&o, json_string_value (json_object_get (period, "time_zone")));
    s_printf (&o, ")</p>\n<div class=\"figs\">");
    s_figure (&o, s_l (L_OFFERED), json_object_get (calls, "offered"), NULL, 1, false);
    s_figure (&o, s_l (L_ANSWERED), json_object_get (calls, "answered"), NULL, 1, false);
    s_figure (&o, s_l (L_ABANDONED), json_object_get (calls, "abandoned"), NULL, 1, false);
    s_figure (&o, s_l (L_ABANDON_RATE), json_object_get (calls, "abandonment_rate"), NULL, 1, true);
    s_figure (&o, s_l (L_ASA), json_object_get (calls, "asa_ms"), s_l (L_SECONDS), 1000, false);
    const char *t;
    json_t *slv;
    json_object_foreach (json_object_get (calls, "service_level"), t, slv) {
        char label[128];
        snprintf (label, sizeof label, "%s (%s %s)", s_l (L_SL), t, s_l (L_SECONDS));
        s_figure (&o, label, slv, NULL, 1, true);
    }
    s_figure (&o, s_l (L_AHT), json_object_get (calls, "aht_ms"), s_l (L_SECONDS), 1000, false);
    s_figure (&o, s_l (L_LONGEST), json_object_get (calls, "longest_wait_ms"), s_l (L_SECONDS), 1000, false);
    json_t *fcr = json_object_get (report, "fcr");
    char fl[128];
    snprintf (fl, sizeof fl, "%s%s%s%s", s_l (L_FCR), json_is_true (json_object_get (fcr, "provisional")) ? " (" : "",
              json_is_true (json_object_get (fcr, "provisional")) ? s_l (L_PROVISIONAL) : "",
              json_is_true (json_object_get (fcr, "provisional")) ? ")" : "");
    s_figure (&o, fl, json_object_get (fcr, "rate"), NULL, 1, true);
    s_figure (&o, s_l (L_CONTACTS), json_object_get (json_object_get (report, "contacts"), "total"), NULL, 1, false);
    s_figure (&o, s_l (L_REFERRALS), json_object_get (json_object_get (report, "referrals"), "requested"), NULL, 1, false);
    s_figure (&o, s_l (L_EMERGENCIES), json_object_get (json_object_get (report, "emergencies"), "raised"), NULL, 1, false);
    s_figure (&o, s_l (L_COMPLAINTS), json_object_get (json_object_get (report, "complaints"), "received"), NULL, 1, false);
    s_figure (&o, s_l (L_APPOINTMENTS), json_object_get (json_object_get (report, "appointments"), "booked"), NULL, 1, false);
    s_printf (&o, "</div>\n");
    //  Calls per day (per hour for a day) and service level per day.
    json_t *series = json_object_get (report, "hours");
    bool hourly = json_is_array (series);
    if (!hourly)
        series = json_object_get (report, "days");
    size_t n = json_array_size (series), i;
    s_bar_t *bars = calloc (n + 40, sizeof *bars);
    assert (bars);
    json_t *row;
    json_array_foreach (series, i, row) {
        if (hourly)
            snprintf (bars[i].label, sizeof bars[i].label, "%02d", (int) s_num (row, "hour"));
        else
            snprintf (bars[i].label, sizeof bars[i].label, "%.5s", json_string_value (json_object_get (row, "date")) + 5);
        bars[i].value = s_num (row, "offered");
    }
    s_chart (&o, s_l (hourly ? L_PER_HOUR : L_PER_DAY), bars, n, false, false);
    if (!hourly) {
        json_array_foreach (series, i, row)
            bars[i].value = s_num (row, "service_level");
        s_chart (&o, s_l (L_SL_DAY), bars, n, false, true);
    }
    json_t *hist = json_object_get (calls, "answer_wait_distribution");
    size_t nh = json_array_size (hist);
    s_bar_t hb[16];
    json_array_foreach (hist, i, row) {
        if (i >= 16)
            break;
        json_t *le = json_object_get (row, "le_s");
        if (json_is_integer (le))
            snprintf (hb[i].label, sizeof hb[i].label, "≤ %" JSON_INTEGER_FORMAT " %s", json_integer_value (le), s_l (L_SECONDS));
        else
            snprintf (hb[i].label, sizeof hb[i].label, "%s", s_l (L_LONGER));
        hb[i].value = s_num (row, "calls");
    }
    s_chart (&o, s_l (L_WAITS), hb, nh < 16 ? nh : 16, false, false);
    s_bar_t top[20];
    size_t nt = s_top (json_object_get (json_object_get (report, "contacts"), "by_category"), top, 20);
    s_chart (&o, s_l (L_CATEGORIES), top, nt, true, false);
    //  Referrals by unit (summed over priorities).
    json_t *units = json_object ();
    json_array_foreach (json_object_get (json_object_get (report, "referrals"), "routed_by_unit_priority"), i, row) {
        const char *u = json_string_value (json_object_get (row, "unit"));
        if (!u)
            continue;
        json_t *cur = json_object_get (units, u);
        json_object_set_new (units, u, json_integer ((cur ? json_integer_value (cur) : 0)
                                                     + json_integer_value (json_object_get (row, "count"))));
    }
    nt = s_top (units, top, 20);
    json_decref (units);
    s_chart (&o, s_l (L_UNITS), top, nt, true, false);
    free (bars);
    s_printf (&o, "</body></html>\n");
    return o.buf;
}
