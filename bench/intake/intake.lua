-- intake.lua — wrk script of intake's benchmark (bench/intake/run-intake.sh): builds the requests
-- and counts every answer's status, so that a run of 401s or 409s cannot pass for a fast run.
--
--   wrk -t2 -c50 -d10s --latency -s intake.lua URL -- get PATH [TOKEN]
--   wrk ... -s intake.lua URL -- contact AGENTS [CASES]  POST /api/v1/contacts
--   wrk ... -s intake.lua URL -- offer TOKEN             POST /api/v1/calls (an API client's token)
--
-- contact: each request signed by a random agent of the file AGENTS (lines "user_id token"),
-- each body a new contact, the same shape as fixedrate.c's: a case number drawn from CASES
-- (default 100000) numbers, a random phone, one of 12 subcategories, so the person, category and
-- time indexes grow as they would in a day. offer: a call in Arabic on line "main" from a random
-- number.
--
-- At the end it prints one line (latencies in µs, as wrk measures them: from the send, closed
-- loop):
--   RESULT tool=wrk mode=contact requests=... rps=... ok=... non2xx=... errors=... unfinished=...
--          p50_us=... p90_us=... p99_us=... p999_us=... max_us=... codes=201:123456,...
-- unfinished: requests sent but not answered when wrk stopped (at most one per connection, or
-- lost with a connection error); the server may still have carried them out.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

local categories = {
   "information_request.services", "information_request.procedures", "assistance_status.food",
   "assistance_status.shelter", "registration.renewal", "registration.status",
   "appointment.book", "resettlement.status", "cash_assistance.payment",
   "health.access", "education.enrolment", "legal.residency",
}

local path, token, cases
local tokens = {}
local seq = 0
local static_request

function init(args)
   mode = args[1] or "get"              -- global: done() reads it back from a thread
   codes = {}
   sent = 0
   ok = 0
   non2xx = 0
   math.randomseed(tid * 7919 + os.time())
   if mode == "get" then
      path = args[2] or "/health"
      token = args[3]
      local headers = {}
      if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
      static_request = wrk.format("GET", path, headers)
   elseif mode == "contact" then
      cases = tonumber(args[3] or "100000")
      local f = args[2] and io.open(args[2], "r")
      if not f then error("intake.lua: contact needs the agents file") end
      for line in f:lines() do
         local t = line:match("^%S+%s+(%S+)$")
         if t then table.insert(tokens, t) end
      end
      f:close()
      if #tokens == 0 then error("intake.lua: no agent in " .. args[2]) end
   elseif mode == "offer" then
      token = args[2]
      if not token then error("intake.lua: offer needs a token") end
   else
      error("intake.lua: unknown mode " .. tostring(mode))
   end
end

function request()
   sent = sent + 1
   if static_request then return static_request end
   seq = seq + 1
   local headers = {
      ["Authorization"] = "Bearer " .. (token or tokens[math.random(1, #tokens)]),
      ["Content-Type"] = "application/json",
   }
   local body
   if mode == "contact" then
      body = string.format(
         '{"channel":"call","direction":"inbound","case_number":"JOR-%06d",' ..
         '"phone":"+9627%08d","language":"ar","categories":["%s"],' ..
         '"outcome":"information_given","notes":"bench contact %d-%d: asked about the status ' ..
         'of the case","sex":"female","age_group":"18-59","nationality":"SYR",' ..
         '"location":"amman"}',
         math.random(0, cases - 1), math.random(0, 99999999),
         categories[math.random(1, #categories)], tid, seq)
      return wrk.format("POST", "/api/v1/contacts", headers, body)
   end
   body = string.format('{"line":"main","caller_number":"+9627%08d","language":"ar"}',
                        math.random(0, 99999999))
   return wrk.format("POST", "/api/v1/calls", headers, body)
end

function response(status, headers, body)
   codes[status] = (codes[status] or 0) + 1
   if status >= 200 and status < 300 then ok = ok + 1 else non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
   local all_codes, total_ok, total_bad, total_sent = {}, 0, 0, 0
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      total_ok = total_ok + thread:get("ok")
      total_bad = total_bad + thread:get("non2xx")
      for code, n in pairs(thread:get("codes")) do
         all_codes[code] = (all_codes[code] or 0) + n
      end
   end
   local list = {}
   for code, n in pairs(all_codes) do table.insert(list, code .. ":" .. n) end
   table.sort(list)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.timeout
   io.write(string.format(
      "RESULT tool=wrk mode=%s requests=%d rps=%.1f ok=%d non2xx=%d errors=%d unfinished=%d " ..
      "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d codes=%s\n",
      threads[1]:get("mode"), summary.requests, summary.requests / (summary.duration / 1e6), total_ok, total_bad,
      errors, total_sent - total_ok - total_bad, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, #list > 0 and table.concat(list, ",") or "none"))
end
