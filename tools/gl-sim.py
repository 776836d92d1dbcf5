#!/usr/bin/python3
"""gl-sim — a simulated helpline day driven through intake's real HTTP API.

Greenline's demo and its ground truth. It plays the PBX (an API client offering, answering,
ending and abandoning calls, with the PBX's own timestamps) and the agents (signed-in users who
set their state, log a contact for each call they take, and sometimes request a referral, raise
an emergency or log a complaint), over a day whose calls arrive as a Poisson process following a
daily curve, with callers who abandon when their patience runs out.

    tools/gl-sim.py --url http://127.0.0.1:8080 --admin admin:PASSWORD [options]

  --admin USER:PASSWORD     an admin of intake (or GL_SIM_ADMIN in the environment, which keeps
                            the password off the process list; ./greenline up --demo uses it)

  --replay-day YYYY-MM-DD   simulate that whole day (UTC) as fast as intake takes it, every
                            telephony event carrying its simulated time as pbx_ts (a past day:
                            intake refuses times ahead of its clock)
  --live                    run in real time from now (the demo): events are sent when due
  --hours H                 with --live, stop after H hours (default: run until interrupted)
  --calls N                 expected calls offered over a whole day (default 600)
  --agents K                simulated agents (default 6)
  --seed S                  random seed (default 1): the same seed, the same day
  --truth FILE              write the simulation's own counts (the ground truth) as JSON
  --setup-only              create the demo users and the PBX client, print them, and stop

The demo accounts it creates (sim-agent-1 …, sim-supervisor, sim-protection) have passwords of
the form demo-<username>-pass: DEMO ONLY, documented in the README; never use them in production.

Nothing here is personal data of a real person: caller numbers are drawn from a reserved-looking
range (+999…), case numbers are not used.

Definitions of the ground truth (docs/metrics.md has reporting's): offered = calls that entered
the queue; answered, abandoned; not_reached by reason (out_of_hours, all_lines_busy, ivr_only);
asa_ms = total wait of answered calls / answered; service_level_20 = answered within 20 s /
(answered + abandoned after 20 s or more); longest_wait_ms among answered and abandoned calls.
"""

import argparse
import datetime
import heapq
import json
import math
import os
import random
import sys
import time
import urllib.error
import urllib.request

LANGS = [("ar", 0.5), ("fr", 0.2), ("en", 0.2), ("so", 0.1)]
#  Relative arrival intensity per hour of the day (UTC): quiet at night, peaks mid-morning and
#  early afternoon, as DOMAIN.md's helplines see.
CURVE = [0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.6, 2.2, 2.4, 2.0,
         1.4, 1.6, 2.0, 1.8, 1.2, 0.7, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1]
OPEN_FROM, OPEN_TO = 8, 17          #  the line's opening hours (UTC)
PATIENCE_MEAN_S = 150
TALK_MEAN_S = 240
WRAP_S = 30
CATEGORIES = ["information_request.services", "assistance_status", "registration", "resettlement",
              "cash_assistance", "health", "education", "legal", "appointment"]


class Api:
    """A JSON client for intake: one request per call, errors returned, never raised."""

    def __init__(self, url):
        self.url = url.rstrip("/")

    def call(self, method, path, token=None, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw else {}
            except ValueError:
                return e.code, {}
        except (urllib.error.URLError, OSError) as e:
            return 0, {"error": {"code": "unreachable", "message": str(e)}}

    def login(self, username, password):
        status, body = self.call("POST", "/api/v1/auth/login",
                                 body={"username": username, "password": password})
        if status != 200:
            return None, None
        return body["token"], body["user"]["id"]


def demo_password(username):
    return "demo-%s-pass" % username


def ensure_user(api, admin, username, roles, units=(), languages=()):
    """Create the demo user if missing; sign in; returns (token, id)."""
    body = {"username": username, "password": demo_password(username), "roles": list(roles),
            "units": list(units), "languages": list(languages),
            "display_name": "Demo " + username}
    status, answer = api.call("POST", "/api/v1/users", admin, body)
    if status not in (201, 409):
        sys.exit("gl-sim: cannot create %s: %s %s" % (username, status, answer))
    token, uid = api.login(username, demo_password(username))
    if not token:
        sys.exit("gl-sim: cannot sign in as %s (a user of that name with another password?)"
                 % username)
    return token, uid


def setup(api, admin, agents, rng):
    users = {"agents": []}
    for i in range(1, agents + 1):
        langs = ["ar"] if i % 2 else ["fr", "en"]
        if i % 3 == 0:
            langs.append("so")
        if i == 1:
            langs = ["ar", "en", "fr", "so"]
        token, uid = ensure_user(api, admin, "sim-agent-%d" % i, ["agent"], languages=langs)
        users["agents"].append({"name": "sim-agent-%d" % i, "token": token, "id": uid,
                                "languages": langs})
    users["supervisor"] = ensure_user(api, admin, "sim-supervisor", ["supervisor"],
                                      languages=["en"])
    users["protection"] = ensure_user(api, admin, "sim-protection", ["protection"],
                                      units=["protection"], languages=["en"])
    status, client = api.call("POST", "/api/v1/clients", admin, {"name": "sim-pbx"})
    if status != 201:
        sys.exit("gl-sim: cannot create the PBX client: %s %s" % (status, client))
    users["pbx"] = client["token"]
    return users


class Sim:
    """The day as a discrete-event simulation; each event is also sent to intake."""

    def __init__(self, api, users, rng, day_start_ms, calls_per_day, live, line="green-1"):
        self.api, self.users, self.rng = api, users, rng
        self.day_start = day_start_ms
        self.calls_per_day = calls_per_day
        self.live = live
        self.line = line
        self.events = []            #  (time_ms, seq, kind, payload)
        self.seq = 0
        self.waiting = []           #  calls in the queue, in offer order
        self.free = []              #  agents free now
        self.truth = {"offered": 0, "answered": 0, "abandoned": 0,
                      "not_reached": {"out_of_hours": 0, "all_lines_busy": 0, "ivr_only": 0},
                      "wait_answered_ms": 0, "answered_within_20s": 0,
                      "abandoned_after_20s": 0, "longest_wait_ms": 0, "contacts": 0,
                      "referrals": 0, "emergencies": 0, "complaints": 0, "api_errors": 0,
                      "by_language": {}}
        self.errors = {}

    def push(self, at, kind, payload):
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, payload))

    def send(self, method, path, token, body, expect=(200, 201, 202)):
        status, answer = self.api.call(method, path, token, body)
        if status not in expect:
            self.truth["api_errors"] += 1
            key = "%s %s %s" % (method, path.split("/")[3] if path.count("/") > 2 else path,
                                status)
            self.errors[key] = self.errors.get(key, 0) + 1
            if self.errors[key] <= 3:
                code = (answer.get("error") or {}).get("code") if isinstance(answer, dict) else ""
                print("gl-sim: %s %s -> %s %s" % (method, path, status, code), file=sys.stderr)
            return None
        return answer

    def arrivals(self, from_ms, until_ms):
        """Non-homogeneous Poisson arrivals by thinning over [from, until); the curve's hours
        count from day_start (midnight UTC)."""
        total = sum(CURVE)
        peak = max(CURVE) / total * self.calls_per_day / 3600000.0     #  per ms
        t = from_ms
        while True:
            t += self.rng.expovariate(peak)
            if t >= until_ms:
                return
            hour = int((t - self.day_start) // 3600000) % 24
            rate = CURVE[hour] / total * self.calls_per_day / 3600000.0
            if self.rng.random() < rate / peak:
                self.push(int(t), "arrive", None)

    #  -- handlers ---------------------------------------------------------------------------

    def on_arrive(self, t, _):
        hour = int((t - self.day_start) // 3600000) % 24
        lang = self.rng.choices([l for l, _ in LANGS], [w for _, w in LANGS])[0]
        number = "+999%09d" % self.rng.randrange(10 ** 9)
        pbx_id = "%d.%d" % (t // 1000, self.seq)
        reason = None
        if not OPEN_FROM <= hour < OPEN_TO:
            reason = "out_of_hours"
        else:
            r = self.rng.random()
            if r < 0.03:
                reason = "all_lines_busy"
            elif r < 0.08:
                reason = "ivr_only"
        if reason:
            self.truth["not_reached"][reason] += 1
            self.send("POST", "/api/v1/calls/not-reached", self.users["pbx"],
                      {"line": self.line, "reason": reason, "caller_number": number,
                       "language": lang, "pbx_ts": t, "pbx_call_id": pbx_id})
            return
        option = "emergency" if self.rng.random() < 0.01 else "general"
        answer = self.send("POST", "/api/v1/calls", self.users["pbx"],
                           {"line": self.line, "caller_number": number, "language": lang,
                            "ivr_option": option, "pbx_ts": t, "pbx_call_id": pbx_id})
        self.truth["offered"] += 1
        bl = self.truth["by_language"].setdefault(lang, {"offered": 0, "answered": 0})
        bl["offered"] += 1
        call = {"id": answer["id"] if answer else None, "lang": lang, "offered": t,
                "priority": 0 if option == "emergency" else 1, "done": False}
        self.waiting.append(call)
        patience = int(self.rng.expovariate(1.0 / (PATIENCE_MEAN_S * 1000)))
        self.push(t + patience, "abandon", call)
        self.dispatch(t)

    def on_abandon(self, t, call):
        if call["done"]:
            return
        call["done"] = True
        self.waiting.remove(call)
        wait = t - call["offered"]
        self.truth["abandoned"] += 1
        self.truth["longest_wait_ms"] = max(self.truth["longest_wait_ms"], wait)
        if wait >= 20000:
            self.truth["abandoned_after_20s"] += 1
        if call["id"]:
            self.send("POST", "/api/v1/calls/%s/abandon" % call["id"], self.users["pbx"],
                      {"pbx_ts": t})

    def dispatch(self, t):
        """Free agents take the most urgent, oldest waiting call in a language they speak."""
        for agent in list(self.free):
            best = None
            for call in self.waiting:
                if call["lang"] in agent["languages"] and (
                        best is None or call["priority"] < best["priority"]):
                    best = call
            if best is None:
                continue
            self.free.remove(agent)
            self.waiting.remove(best)
            best["done"] = True
            wait = t - best["offered"]
            self.truth["answered"] += 1
            self.truth["by_language"][best["lang"]]["answered"] += 1
            self.truth["wait_answered_ms"] += wait
            self.truth["longest_wait_ms"] = max(self.truth["longest_wait_ms"], wait)
            if wait < 20000:
                self.truth["answered_within_20s"] += 1
            if best["id"]:
                self.send("POST", "/api/v1/calls/%s/answer" % best["id"], self.users["pbx"],
                          {"agent_id": agent["id"], "pbx_ts": t})
            talk = max(20000, int(self.rng.lognormvariate(math.log(TALK_MEAN_S * 1000), 0.5)))
            self.push(t + talk, "end", (agent, best))

    def on_end(self, t, payload):
        agent, call = payload
        if call["id"]:
            self.send("POST", "/api/v1/calls/%s/end" % call["id"], self.users["pbx"],
                      {"ended_by": self.rng.choice(["caller", "agent"]), "pbx_ts": t})
            self.contact(agent, call)
        self.push(t + WRAP_S * 1000, "ready", agent)

    def contact(self, agent, call):
        r = self.rng.random()
        outcome, category = "information_given", self.rng.choice(CATEGORIES)
        if r < 0.05:
            outcome, category = "referral_made", "protection_concern"
        elif r < 0.06:
            outcome, category = "emergency_raised", "protection_concern"
        elif r < 0.09:
            outcome, category = "complaint_logged", "complaint"
        body = {"channel": "call", "call_id": call["id"], "language": call["lang"],
                "categories": [category], "outcome": outcome,
                "frustration": self.rng.random() < 0.1,
                "sex": self.rng.choice(["female", "male"]),
                "age_group": self.rng.choice(["18-59", "18-59", "60+", "12-17"]),
                "phone": "+999%09d" % self.rng.randrange(10 ** 9)}
        created = self.send("POST", "/api/v1/contacts", agent["token"], body)
        if not created:
            return
        self.truth["contacts"] += 1
        if outcome == "referral_made":
            if self.send("POST", "/api/v1/referrals", agent["token"],
                         {"contact_id": created["id"], "category": category,
                          "priority": "normal", "consent": True}):
                self.truth["referrals"] += 1
        elif outcome == "emergency_raised":
            if self.send("POST", "/api/v1/emergencies", agent["token"],
                         {"contact_id": created["id"], "type": "threat_to_life",
                          "callback_possible": True}):
                self.truth["emergencies"] += 1
        elif outcome == "complaint_logged":
            status, _ = self.api.call("POST", "/api/v1/complaints", agent["token"],
                                      {"kind": "complaint", "channel": "call",
                                       "contact_id": created["id"], "anonymous": True,
                                       "summary": "Simulated complaint about waiting times"})
            if status in (200, 201, 202):
                self.truth["complaints"] += 1

    def on_ready(self, t, agent):
        self.send("PUT", "/api/v1/agents/me/state", agent["token"], {"state": "available"})
        self.free.append(agent)
        self.dispatch(t)

    def run(self, from_ms, until_ms):
        for agent in self.users["agents"]:
            self.send("PUT", "/api/v1/agents/me/state", agent["token"], {"state": "available"})
            self.free.append(agent)
        self.arrivals(from_ms, until_ms)
        handlers = {"arrive": self.on_arrive, "abandon": self.on_abandon, "end": self.on_end,
                    "ready": self.on_ready}
        done = 0
        while self.events:
            t, _, kind, payload = heapq.heappop(self.events)
            if self.live:
                delay = t / 1000.0 - time.time()
                if delay > 0:
                    time.sleep(delay)
            handlers[kind](t, payload)
            done += 1
            if done % 500 == 0:
                print("gl-sim: %d events, %d calls offered" % (done, self.truth["offered"]),
                      file=sys.stderr)
        for agent in self.users["agents"]:
            self.send("PUT", "/api/v1/agents/me/state", agent["token"], {"state": "offline"},
                      expect=(200, 201, 202, 409))
        t = self.truth
        t["asa_ms"] = t["wait_answered_ms"] // t["answered"] if t["answered"] else 0
        denominator = t["answered"] + t["abandoned_after_20s"]
        t["service_level_20"] = (round(t["answered_within_20s"] / denominator, 4)
                                 if denominator else None)
        t["api_error_kinds"] = self.errors
        return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--admin", default=os.environ.get("GL_SIM_ADMIN"),
                    help="username:password of an admin (default: $GL_SIM_ADMIN)")
    ap.add_argument("--replay-day")
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--hours", type=float)
    ap.add_argument("--calls", type=int, default=600)
    ap.add_argument("--agents", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--truth")
    ap.add_argument("--setup-only", action="store_true")
    args = ap.parse_args()
    if not args.admin:
        ap.error("give --admin USER:PASSWORD or set GL_SIM_ADMIN")
    try:
        #  The launcher finds and stops the demo by this name (/proc/<pid>/comm).
        with open("/proc/self/comm", "w") as f:
            f.write("gl-sim")
    except OSError:
        pass
    if not (args.setup_only or args.live or args.replay_day):
        ap.error("say --replay-day DAY, --live or --setup-only")
    rng = random.Random(args.seed)
    api = Api(args.url)
    user, _, password = args.admin.partition(":")
    admin, _ = api.login(user, password)
    if not admin:
        sys.exit("gl-sim: cannot sign in as %s at %s" % (user, args.url))
    users = setup(api, admin, args.agents, rng)
    print("gl-sim: demo users sim-agent-1..%d, sim-supervisor, sim-protection (password "
          "demo-<username>-pass: demo only)" % args.agents, file=sys.stderr)
    if args.setup_only:
        return 0
    if args.live:
        start = int(time.time() * 1000)
        until = start + int((args.hours or 24 * 7) * 3600000)
        sim = Sim(api, users, rng, start - start % 86400000, args.calls, live=True)
        try:
            truth = sim.run(start, until)
        except KeyboardInterrupt:
            return 0
    else:
        day = datetime.datetime.strptime(args.replay_day, "%Y-%m-%d").replace(
            tzinfo=datetime.timezone.utc)
        day_start = int(day.timestamp() * 1000)
        if day_start + 86400000 + 3600000 > time.time() * 1000:
            sys.exit("gl-sim: --replay-day must be a day that is over (intake refuses pbx_ts "
                     "ahead of its clock)")
        sim = Sim(api, users, rng, day_start, args.calls, live=False)
        truth = sim.run(day_start, day_start + 86400000)
    truth["day_start_ms"] = sim.day_start
    text = json.dumps(truth, indent=2, sort_keys=True)
    if args.truth:
        with open(args.truth, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
