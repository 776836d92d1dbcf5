/*  No event carries personal data, by contract: every event type documented in docs/events.md
    is read with its field table, and no field of an event (requests are
    exempt: they travel point to point, to the service that holds the record) may be named like
    personal data or free text (phone, case number, notes, description, name ...). The one
    documented exception is notification.console's rendered title and body, whose templates
    carry ids, codes and times only (docs/events.md).

    What the services really publish is checked against the same rule by their own tests'
    traffic (test_intake_retention decodes every event of intake's log and archives after
    contacts, complaints, emergencies, case imports, verification and change requests;
    test_intake_complaints, test_intake_contacts do the same for theirs).

    ctest: timeout=30 */
#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>

static const char *const s_denied[]
    = { "phone", "phones", "phone_number", "number", "caller_number", "msisdn", "case_number",
        "case_no", "individual_number", "notes", "note", "description", "comment", "comments",
        "text", "free_text", "answer", "response", "name", "full_name", "display_name",
        "username", "address", "email", "dob", "date_of_birth", "body", "message", "title",
        NULL };

//  event type, field: allowed by design (see the header).
static const char *const s_allowed[][2]
    = { { "notification.console", "title" }, { "notification.console", "body" }, { NULL, NULL } };

typedef struct {
    int events;             //  event headings seen
    int fields;             //  fields of events checked
    bool saw_retention;     //  retention.purged documented
    char bad[4096];         //  what failed
} s_scan_t;

//  True when text contains word, ignoring case.
static bool
s_has (const char *text, const char *word)
{
    size_t n = strlen (word);
    for (; *text; text++)
        if (strncasecmp (text, word, n) == 0)
            return true;
    return false;
}

static bool
s_in (const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp (list[i], s) == 0)
            return true;
    return false;
}

static bool
s_allowed_field (const char *type, const char *field)
{
    for (size_t i = 0; s_allowed[i][0]; i++)
        if (strcmp (s_allowed[i][0], type) == 0 && strcmp (s_allowed[i][1], field) == 0)
            return true;
    return false;
}

//  A heading's text names an event type ("a.b", lowercase, digits, '_' and '.').
static bool
s_type_name (const char *s, char *out, size_t len)
{
    while (*s == ' ' || *s == '`')
        s++;
    size_t n = 0;
    bool dot = false;
    while ((islower ((unsigned char) s[n]) || isdigit ((unsigned char) s[n]) || s[n] == '_'
            || s[n] == '.')
           && n + 1 < len) {
        dot = dot || s[n] == '.';
        n++;
    }
    if (!dot || n == 0 || s[n - 1] == '.')
        return false;
    memcpy (out, s, n);
    out[n] = 0;
    return true;
}

static void
s_scan_file (const char *path, s_scan_t *scan)
{
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    char line[2048], type[128] = "";
    bool requests = false;      //  under a heading about requests
    bool in_code = false;
    while (fgets (line, sizeof line, f)) {
        if (strncmp (line, "```", 3) == 0) {
            in_code = !in_code;
            continue;
        }
        if (in_code)
            continue;
        if (line[0] == '#') {
            int level = 0;
            while (line[level] == '#')
                level++;
            const char *text = line + level;
            *type = 0;
            if (level <= 4) {
                bool req = s_has (text, "request");
                bool ev = s_has (text, "event");
                requests = req && !ev;
            }
            if (s_type_name (text, type, sizeof type)) {
                //  "(request)" in the heading itself, or a request section.
                if (requests || s_has (text, "request)"))
                    *type = 0;
                else {
                    scan->events++;
                    if (strcmp (type, "retention.purged") == 0)
                        scan->saw_retention = true;
                }
            }
            continue;
        }
        if (!*type || line[0] != '|')
            continue;
        const char *p = line + 1;
        while (*p == ' ')
            p++;
        if (*p != '`')
            continue;
        p++;
        const char *end = strchr (p, '`');
        if (!end || end - p >= 128)
            continue;
        char field[128];
        memcpy (field, p, (size_t) (end - p));
        field[end - p] = 0;
        //  Nested fields ("target.phone", "items[].notes"): the last part is the name.
        char *last = strrchr (field, '.');
        char *name = last ? last + 1 : field;
        char *br = strchr (name, '[');
        if (br)
            *br = 0;
        scan->fields++;
        if (s_in (s_denied, name) && !s_allowed_field (type, name)) {
            size_t used = strlen (scan->bad);
            snprintf (scan->bad + used, sizeof scan->bad - used, "%s: event %s field %s\n", path,
                      type, field);
        }
    }
    fclose (f);
}

static void
test_documented_events (void **state)
{
    (void) state;
    const char *src = getenv ("GL_SOURCE_DIR");
    assert_non_null (src);
    s_scan_t scan = { 0, 0, false, "" };
    char path[1024];
    snprintf (path, sizeof path, "%s/docs/events.md", src);
    s_scan_file (path, &scan);
    //  Any fragments still waiting to be folded into docs/events.md are read too.
    snprintf (path, sizeof path, "%s/docs/events", src);
    DIR *d = opendir (path);
    struct dirent *de;
    while (d && (de = readdir (d))) {
        size_t n = strlen (de->d_name);
        if (n < 4 || strcmp (de->d_name + n - 3, ".md") != 0)
            continue;
        char file[1400];
        snprintf (file, sizeof file, "%s/%s", path, de->d_name);
        s_scan_file (file, &scan);
    }
    if (d)
        closedir (d);
    if (*scan.bad)
        fail_msg ("events documented with personal-data fields:\n%s", scan.bad);
    //  The scan did find the catalogue (it cannot pass by reading nothing).
    assert_true (scan.events >= 40);
    assert_true (scan.fields >= 150);
    assert_true (scan.saw_retention);
}

//  The checker itself catches a personal-data field in an event and ignores one in a request.
static void
test_checker (void **state)
{
    (void) state;
    char path[] = "/tmp/gl-nopii-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    FILE *f = fdopen (fd, "w");
    fputs ("### x\n#### Events published\n##### person.seen\n| field | type |\n|---|---|\n"
           "| `person_id` | str |\n| `target.phone` | str |\n#### Requests x answers\n"
           "##### x.lookup\n| `case_number` | str |\n",
           f);
    fclose (f);
    s_scan_t scan = { 0, 0, false, "" };
    s_scan_file (path, &scan);
    unlink (path);
    assert_int_equal (scan.events, 1);
    assert_non_null (strstr (scan.bad, "person.seen field target.phone"));
    assert_null (strstr (scan.bad, "case_number"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_checker),
        cmocka_unit_test (test_documented_events),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
