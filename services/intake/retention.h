/*  retention — personal data is not kept past its retention period (ARCHITECTURE.md,
    "Protecting the people in the data"; docs/operations.md), and everything intake
    holds about one person can be exported on a formal request (docs/api/retention.md).

    The purge. Per record type, a period in days from settings (GL_INTAKE_RETAIN_<TYPE>_DAYS):
      contacts          730   created before the cutoff: the identifiers (case, individual and
                              phone numbers), notes, recording reference and the AGD fields
                              (sex, age group, nationality, specific needs, location) are
                              removed with their person indexes; ids, codes, times, categories
                              and the agent stay (the anonymous figures, QA samples).
      complaints       1095   received before the cutoff: description, response, answer, case
                              and phone numbers removed; type, category, status, dates stay.
      change_requests   365   created before the cutoff: deleted (nothing anonymous in them).
      cases             365   case-extract rows not refreshed since the cutoff: deleted with
                              their failed-verification counters.
      raised            730   emergencies and referrals raised before the cutoff: notes removed.
      archives          730   bus-log archive files (GL_ARCHIVE_DIR/<src>/) of intake's own
                              sources whose newest event is older than the cutoff: removed.
    A run handles at most GL_INTAKE_RETAIN_BATCH records per type (bounded work); a type with
    more left is taken up again at the next check. Runs are due every GL_INTAKE_RETAIN_EVERY_H
    hours on the business clock (gl_now_ms): a timer looks every GL_INTAKE_RETAIN_CHECK_MS
    whether a run is due, and one replica claims it (the due time lives in Redis). A run is
    idempotent: a record already purged is skipped. Each type's changes, its progress mark and
    the outbox entry of its retention.purged event (type, count, cutoff: never an id of a
    person) are written by one Lua script, all or nothing.

    Redis keys (in the {intake} slot):
      intake:{intake}:retention      hash  next (ms: next run due), <type>:wm (score reached in
                                           a time index), <type>:cursor (SCAN cursor), last_run
*/
#ifndef INTAKE_RETENTION_H
#define INTAKE_RETENTION_H
#include "http.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define RETENTION_KEY       "intake:{intake}:retention"
#define RETENTION_DAY_MS    INT64_C(86400000)

//  Read and check the retention settings (GL_INTAKE_RETAIN_*), recording a bad value in
//  intake->config's error (the start then stops naming the key), and arm the timer on
//  intake->base (event_base_once: libevent frees it with the base). Does nothing when intake
//  has no base or no Redis yet (route printing).
void retention_start (intake_t *intake);

//  Run one purge pass now, whatever the due time. *report (when not NULL) gets a new object
//  {"now", "types": [{"record_type", "cutoff", "purged", "more"}], "archives": {"removed",
//  "kept"}}. 0, or -1 when Redis failed (what was done stays done; the next run goes on).
int retention_purge (intake_t *intake, json_t **report);

//  Everything intake holds about one person, identified by kind ("case_number",
//  "individual_number" or "phone") and value: {"contacts", "complaints", "change_requests",
//  "case", "calls", "complaints_scanned", "complete"}. A case number finds the contacts, the
//  complaints, the change requests and the case-extract row that name it; an individual number
//  the contacts; a phone the contacts, the complaints and the calls still held. 0, 1 when
//  value is not a valid identifier of that kind, -1 when Redis failed.
int retention_export (intake_t *intake, const char *kind, const char *value, json_t **out);

#endif
