#!/usr/bin/python3
"""Follow Greenline's event stream without loss, from outside Greenline (docs/events.md, 5).

Debian's python3-zmq and python3-msgpack. Environment:
  GL_BUS_PUB_ENDPOINTS  comma-separated PUB endpoints of every service replica
  GL_ENDPOINT_INTAKE    a ROUTER endpoint that answers log.range (any service does)
  GL_BUS_TOKEN          the request token, when the services require one
  GL_FOLLOW_UNTIL       optional "src:seq": exit once that event was processed (used by the test)
Prints one line per event processed: "<src> <seq> <type>".
A real consumer keeps `last` durably, together with its own results.
"""
import os
import sys

import msgpack
import zmq

ctx = zmq.Context()
sub = ctx.socket(zmq.SUB)
for ep in os.environ["GL_BUS_PUB_ENDPOINTS"].split(","):
    sub.connect(ep)
sub.setsockopt(zmq.SUBSCRIBE, b"")             # or b"referral." plus b"_gl.hb"
req = ctx.socket(zmq.DEALER)
req.setsockopt(zmq.LINGER, 0)
req.connect(os.environ["GL_ENDPOINT_INTAKE"])   # any service answers log.range
until = os.environ.get("GL_FOLLOW_UNTIL")
until_src, until_seq = (until.split(":")[0], int(until.split(":")[1])) if until else (None, 0)
last = {}                                       # src -> last seq processed


def fetch(src, frm, to=0):
    """Events src[frm..to] (to 0: up to the end) from the log, by request."""
    rid = os.urandom(16).hex()
    req.send(msgpack.packb({"v": 1, "id": rid, "op": "log.range", "key": "", "ttl": 5000,
                            "auth": os.environ.get("GL_BUS_TOKEN", ""),
                            "body": {"src": src, "from": frm, "to": to, "max": 1000}}))
    while True:
        if not req.poll(5000):
            raise TimeoutError("log.range")
        rep = msgpack.unpackb(req.recv())
        if rep["id"] == rid:
            break                               # a late reply to an earlier request: ignore
    if rep["status"] != 200:
        raise RuntimeError(rep["error"])
    return rep["body"]["events"]


def process(ev):
    print(ev["src"], ev["seq"], ev["type"], flush=True)
    last[ev["src"]] = ev["seq"]
    if ev["src"] == until_src and ev["seq"] >= until_seq:
        sys.exit(0)


def catch_up(src, to):
    while to == 0 or to > last.get(src, 0):
        evs = fetch(src, last.get(src, 0) + 1, to)
        if not evs:
            break
        for ev in evs:
            process(ev)


while True:
    topic, body = sub.recv_multipart()
    m = msgpack.unpackb(body)
    src, seq = m["src"], m["seq"]
    if topic == b"_gl.hb":
        if seq > last.get(src, 0):
            catch_up(src, seq)
        continue
    if seq <= last.get(src, 0):
        continue                                # duplicate
    if seq > last.get(src, 0) + 1:
        catch_up(src, seq - 1)                  # gap
    process(m)
