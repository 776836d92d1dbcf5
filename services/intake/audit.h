/*  audit — intake's audit trail: who read or changed what, and when (docs/api/audit.md).

    Append-only: one Redis stream, intake:{intake}:audit, entries added with XADD and never
    edited; its length is bounded by GL_INTAKE_AUDIT_MAXLEN (approximate trimming of the oldest
    entries; default 10,000,000 entries). Supervisors and admins query it with GET /api/v1/audit.

    Each entry: actor (user or API client id, "" for none), role (the caller's roles as codes,
    comma-separated), action, record type, record id, detail code, time (gl_now_ms), request id.
    Actions, record types and detail codes are short codes ([a-z0-9_.-], at most 64 characters),
    never personal data: "read", "create", "update", "delete", "verify_failed", "login_failed" ...

    In a handler:

        if (audit_record (intake, http_caller (req), "read", "case", id, "status") != 0)
            return http_reply_error (req, 503, "unavailable", "cannot audit the read now", NULL);

    A read of a sensitive record whose audit entry cannot be written should not be answered.
*/
#ifndef INTAKE_AUDIT_H
#define INTAKE_AUDIT_H
#include "http.h"

#define AUDIT_CODE_MAX 64

//  Append one entry. who may be NULL (the service itself, e.g. at start). The request id is the
//  one of the HTTP request being handled when who is that request's caller (http_caller (req)),
//  else empty; use audit_record_req to name the request explicitly. 0, or -1 when an argument is
//  not a well-formed code (logged as a bug) or Redis cannot be reached.
int audit_record (intake_t *intake, const http_caller_t *who, const char *action,
                  const char *record_type, const char *record_id, const char *detail_code);

//  Same, with the caller and request id taken from req.
int audit_record_req (intake_t *intake, http_req_t *req, const char *action,
                      const char *record_type, const char *record_id, const char *detail_code);

//  Same as audit_record_req, for a change that is already made: the entry is sent over the
//  asynchronous connection when it is up (aredis.h) and the caller does not wait for it (a
//  failure is logged, as a failed synchronous append is); otherwise it is written at once.
//  Never for reads that must not be answered unless audited.
int audit_record_req_later (intake_t *intake, http_req_t *req, const char *action,
                            const char *record_type, const char *record_id,
                            const char *detail_code);

//  An entry written by another script in the same round trip as the change it records (a
//  contact's creation: contacts_write_new). AUDIT_LUA defines the Lua function
//  audit_append (key, args, from), which appends args[from .. from + AUDIT_ARGC - 1] to the
//  stream exactly as audit_record does (the same script text runs there); the key must be
//  AUDIT_KEY, declared in the calling script's KEYS. audit_entry_req fills args.
#define AUDIT_KEY  "intake:{intake}:audit"
#define AUDIT_ARGC 18       //  time, MAXLEN, then 8 field/value pairs
//  The entry's id is its time with the next sequence number ("<ms>-*", one XADD); only when
//  the clock is behind the stream's last entry (a clock set back) does it follow that entry.
#define AUDIT_LUA \
    "local function audit_append(key, a, from)\n" \
    "  local ok, added = pcall(redis.call, 'XADD', key, 'MAXLEN', '~', a[from + 1],\n" \
    "    a[from] .. '-*', unpack(a, from + 2, from + 17))\n" \
    "  if ok then return added end\n" \
    "  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)\n" \
    "  local id = a[from] .. '-0'\n" \
    "  if #last > 0 then\n" \
    "    local ms, seq = string.match(last[1][1], '^(%d+)-(%d+)$')\n" \
    "    if tonumber(ms) >= tonumber(a[from]) then\n" \
    "      id = ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)\n" \
    "    end\n" \
    "  end\n" \
    "  return redis.call('XADD', key, 'MAXLEN', '~', a[from + 1], id,\n" \
    "    unpack(a, from + 2, from + 17))\n" \
    "end\n"

typedef struct {
    char now[24];
    char maxlen[24];
    char roles[96];
    const char *argv[AUDIT_ARGC];       //  borrow from this struct and from the arguments
} audit_entry_t;

//  Prepare the entry audit_record_req would append, for a script to append it (AUDIT_LUA).
//  The strings passed must outlive out. 0, or -1 when a code is malformed (logged as a bug).
int audit_entry_req (intake_t *intake, http_req_t *req, const char *action,
                     const char *record_type, const char *record_id, const char *detail_code,
                     audit_entry_t *out);

//  Remember the request being handled (called by the authentication hook; audit_record uses it).
void audit_set_current (intake_t *intake, http_req_t *req, const http_caller_t *caller);

//  Route (api_audit.c): GET /api/v1/audit.
void api_audit_routes (intake_t *intake);

#endif
