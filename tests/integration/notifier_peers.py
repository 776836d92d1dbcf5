#!/usr/bin/python3
"""The outside systems notifier talks to, for tests/integration/test_notifier*.c.

  notifier_peers.py smtp PORT OUTDIR [CERT KEY USER PASSWORD]
      A real SMTP server (aiosmtpd) on 127.0.0.1:PORT. Each message taken is decoded and written
      to OUTDIR/mail-<n>.json: rcpt, subject, text, html, message_id, content_language, and
      whether the session was under TLS and authenticated. With CERT and KEY it requires
      STARTTLS, and AUTH (PLAIN or LOGIN) as USER with PASSWORD.
  notifier_peers.py http PORT OUTDIR SECRET DOWNFLAG
      A webhook receiver and a generic gateway on 127.0.0.1:PORT.
        POST /hook  checks X-Greenline-Signature (HMAC-SHA256 over "<timestamp>.<body>" with
                    SECRET), refuses a timestamp more than 300 s from this host's clock (401) and
                    a signature it has seen before (409: a replay); appends each accepted one to
                    OUTDIR/hooks.jsonl and keeps the last raw request in OUTDIR/hook-raw.json.
        any /gw...  answers 500 while the file DOWNFLAG exists, else 200, after 3 s while
                    DOWNFLAG.slow exists; appends every request to OUTDIR/gw.jsonl with the
                    status it got.
  notifier_peers.py replay URL RAWFILE
      Send a captured webhook request again; exit 0 when the receiver refused it as a replay.
Each server writes OUTDIR/<kind>.ready once it listens.
"""
import base64
import email
import email.header
import email.policy
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def ready(outdir, kind):
    with open(os.path.join(outdir, kind + ".ready"), "w") as f:
        f.write(str(os.getpid()))


def smtp(port, outdir, cert=None, key=None, user=None, password=None):
    import ssl
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    count = [0]
    lock = threading.Lock()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            out = {"rcpt": envelope.rcpt_tos, "subject": str(msg["subject"]),
                   "message_id": str(msg["message-id"]),
                   "content_language": str(msg["content-language"]), "text": "", "html": "",
                   "tls": bool(session.ssl), "authenticated": bool(session.authenticated)}
            for part in msg.walk():
                ctype = part.get_content_type()
                if ctype == "text/plain":
                    out["text"] = part.get_content()
                elif ctype == "text/html":
                    out["html"] = part.get_content()
            with lock:
                count[0] += 1
                n = count[0]
            path = os.path.join(outdir, "mail-%d.json" % n)
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                json.dump(out, f, ensure_ascii=False)
            os.rename(path + ".tmp", path)
            return "250 Message accepted"

    kwargs = {}
    if cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
                  and auth_data.password == password.encode())
            return AuthResult(success=ok)

        kwargs = {"tls_context": ctx, "require_starttls": True, "auth_required": True,
                  "auth_require_tls": True, "authenticator": authenticator}
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    ready(outdir, "smtp")
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def http(port, outdir, secret, downflag):
    seen = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def answer(self, code):
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def append(self, name, record):
            with lock, open(os.path.join(outdir, name), "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")

        def do_GET(self):
            self.do_POST()

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if self.path.startswith("/hook"):
                return self.hook(body)
            if os.path.exists(downflag + ".slow"):
                time.sleep(3)           # longer than the sender's timeout
            code = 500 if os.path.exists(downflag) else 200
            self.append("gw.jsonl", {"status": code, "path": self.path,
                                     "body": body.decode("utf-8", "replace")})
            self.answer(code)

        def hook(self, body):
            ts = self.headers.get("X-Greenline-Timestamp", "")
            sig = self.headers.get("X-Greenline-Signature", "")
            want = "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
            if not ts.isdigit() or not hmac.compare_digest(sig, want):
                return self.answer(401)
            if abs(time.time() - int(ts)) > 300:
                return self.answer(401)
            with lock:
                if sig in seen:
                    replay = True
                else:
                    replay = False
                    seen.add(sig)
            if replay:
                return self.answer(409)
            raw = {"headers": {k: v for k, v in self.headers.items()},
                   "body": base64.b64encode(body).decode()}
            with open(os.path.join(outdir, "hook-raw.json"), "w") as f:
                json.dump(raw, f)
            self.append("hooks.jsonl", {"verified": True, "id": self.headers.get("X-Greenline-Id"),
                                        "body": json.loads(body)})
            self.answer(200)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ready(outdir, "http")
    server.serve_forever()


def replay(url, rawfile):
    raw = json.load(open(rawfile))
    headers = {k: v for k, v in raw["headers"].items()
               if k.lower() not in ("content-length", "host", "connection")}
    req = urllib.request.Request(url, data=base64.b64decode(raw["body"]), headers=headers,
                                 method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        return 1
    except urllib.error.HTTPError as e:
        return 0 if e.code == 409 else 1


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "smtp":
        smtp(int(sys.argv[2]), sys.argv[3], *sys.argv[4:8])
    elif kind == "http":
        http(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    elif kind == "replay":
        sys.exit(replay(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(2)
