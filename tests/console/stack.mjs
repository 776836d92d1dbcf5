// The real stack the console's browser tests run against: a private redis-server on a free
// port, gl-intake (and gl-referral, for the emergency board and the alarm) from the build
// directory, each a process of its own with its log in the work directory. Nothing is mocked:
// the browser talks to gl-intake over HTTP, gl-intake to Redis and to gl-referral over the bus.
import { spawn } from "node:child_process";
import net from "node:net";
import fs from "node:fs";
import path from "node:path";

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll fn until it returns a truthy value; throw what with the last error after ms.
export async function until(what, fn, ms) {
  const deadline = Date.now() + (ms || 15000);
  let last = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error("timed out waiting for " + what + (last ? ": " + last.message : ""));
}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.setTimeout(500);
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => { resolve(d.toString().startsWith("+PONG")); s.destroy(); });
    s.on("error", () => resolve(false));
    s.on("timeout", () => { resolve(false); s.destroy(); });
  });
}

export class Stack {
  constructor(buildDir, workDir) {
    this.buildDir = buildDir;
    this.workDir = workDir;
    this.procs = [];
    this.token = "console-test-bus-token";
  }

  spawn(name, bin, args, env) {
    const log = fs.openSync(path.join(this.workDir, name + ".log"), "w");
    const child = spawn(bin, args, { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", log, log] });
    child.on("exit", (code, sig) => { child.exited = { code, sig }; });
    this.procs.push({ name, child });
    return child;
  }

  async start(opts) {
    const o = opts || {};
    this.redisPort = await freePort();
    this.spawn("redis", o.redis || "redis-server",
      ["--port", String(this.redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {});
    await until("redis-server", () => redisPing(this.redisPort), 10000);

    const intakeBin = path.join(this.buildDir, "services/intake/gl-intake");
    const referralBin = path.join(this.buildDir, "services/referral/gl-referral");
    this.referralBin = referralBin;
    for (const bin of [intakeBin, referralBin])
      if (!fs.existsSync(bin)) throw new Error(bin + " is not built (build gl-intake and gl-referral first)");
    this.httpPort = await freePort();
    this.intakePub = await freePort();
    this.referralRouter = await freePort();
    this.schedulerRouter = await freePort();
    this.reportingRouter = await freePort();
    this.base = "http://127.0.0.1:" + this.httpPort;
    const common = {
      GL_REDIS_HOST: "127.0.0.1",
      GL_REDIS_PORT: String(this.redisPort),
      GL_BUS_TOKENS: this.token,
      GL_LOG_LEVEL: "info",
    };
    this.intake = this.spawn("intake", intakeBin, [], {
      ...common,
      GL_HTTP_PORT: String(this.httpPort),
      GL_HEALTH_PORT: String(await freePort()),
      GL_BUS_BIND_PUB: "tcp://127.0.0.1:" + this.intakePub,
      GL_BUS_BIND_ROUTER: "tcp://127.0.0.1:" + (await freePort()),
      GL_SOURCE: "intake-1",
      GL_ENDPOINT_REFERRAL: "tcp://127.0.0.1:" + this.referralRouter,
      GL_ENDPOINT_SCHEDULER: "tcp://127.0.0.1:" + this.schedulerRouter,
      GL_ENDPOINT_REPORTING: "tcp://127.0.0.1:" + this.reportingRouter,
      GL_INTAKE_BOOTSTRAP_ADMIN: "admin:" + o.adminPassword,
      GL_INTAKE_ARGON2_OPSLIMIT: "1",
      GL_INTAKE_ARGON2_MEMLIMIT: "8192",
      GL_INTAKE_CONSOLE_DIR: o.consoleDir,
    });
    await until("gl-intake /ready", async () => {
      if (this.intake.exited) throw new Error("gl-intake exited: see " + path.join(this.workDir, "intake.log"));
      const r = await fetch(this.base + "/ready");
      return r.status === 200;
    }, 20000);
    return this;
  }

  // gl-referral, once the users its configuration names exist.
  async startReferral(config) {
    const conf = path.join(this.workDir, "referral.conf");
    fs.writeFileSync(conf, config);
    this.referral = this.spawn("referral", this.referralBin, [], {
      GL_REDIS_HOST: "127.0.0.1",
      GL_REDIS_PORT: String(this.redisPort),
      GL_BUS_TOKENS: this.token,
      GL_LOG_LEVEL: "info",
      GL_REFERRAL_CONFIG: conf,
      GL_BUS_BIND_ROUTER: "tcp://127.0.0.1:" + this.referralRouter,
      GL_BUS_BIND_PUB: "tcp://127.0.0.1:" + (await freePort()),
      GL_BUS_PUB_ENDPOINTS: "tcp://127.0.0.1:" + this.intakePub,
      GL_HEALTH_PORT: String(await freePort()),
      GL_SOURCE: "referral-1",
      GL_REFERRAL_TICK_MS: "200",
    });
    await until("gl-referral answering through intake", async () => {
      if (this.referral.exited) throw new Error("gl-referral exited: see " + path.join(this.workDir, "referral.log"));
      const r = await this.api("GET", "/api/v1/units", { token: this.adminToken });
      return r.status === 200;
    }, 20000);
  }

  // Another gl_service process (gl-scheduler, gl-reporting) reading intake's events, its
  // requests on router; waits for its /ready.
  async startService(name, router, env) {
    const bin = path.join(this.buildDir, "services", name, "gl-" + name);
    if (!fs.existsSync(bin)) throw new Error(bin + " is not built");
    const health = await freePort();
    const child = this.spawn(name, bin, [], {
      GL_REDIS_HOST: "127.0.0.1",
      GL_REDIS_PORT: String(this.redisPort),
      GL_BUS_TOKENS: this.token,
      GL_LOG_LEVEL: "info",
      GL_BUS_BIND_ROUTER: "tcp://127.0.0.1:" + router,
      GL_BUS_BIND_PUB: "tcp://127.0.0.1:" + (await freePort()),
      GL_BUS_PUB_ENDPOINTS: "tcp://127.0.0.1:" + this.intakePub,
      GL_HEALTH_PORT: String(health),
      GL_SOURCE: name + "-1",
      ...env,
    });
    await until("gl-" + name + " /ready", async () => {
      if (child.exited) throw new Error("gl-" + name + " exited: see " + path.join(this.workDir, name + ".log"));
      const r = await fetch("http://127.0.0.1:" + health + "/ready");
      return r.status === 200;
    }, 20000);
    return child;
  }

  // One command on the stack's redis-server (a fixture: what a service not started here would
  // have written). The reply as text; throws on an error reply.
  redis(...args) {
    return new Promise((resolve, reject) => {
      const s = net.connect(this.redisPort, "127.0.0.1");
      let reply = "";
      s.setTimeout(2000);
      s.on("connect", () => s.write("*" + args.length + "\r\n" +
        args.map((a) => "$" + Buffer.byteLength(String(a)) + "\r\n" + String(a) + "\r\n").join("")));
      s.on("data", (d) => {
        reply += d;
        if (!reply.endsWith("\r\n")) return;
        s.destroy();
        if (reply.startsWith("-")) reject(new Error("redis: " + reply.trim()));
        else resolve(reply.trim());
      });
      s.on("error", reject);
      s.on("timeout", () => { s.destroy(); reject(new Error("redis: no answer")); });
    });
  }

  // One API call with a bearer token: {status, body}.
  async api(method, p, opts) {
    const o = opts || {};
    const headers = { Accept: "application/json" };
    if (o.token) headers.Authorization = "Bearer " + o.token;
    if (o.body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(this.base + p, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch (e) { body = text; }
    return { status: r.status, body };
  }

  // The same, insisting on a status.
  async must(status, method, p, opts) {
    const r = await this.api(method, p, opts);
    if (r.status !== status)
      throw new Error(method + " " + p + ": expected " + status + ", got " + r.status + " " + JSON.stringify(r.body));
    return r.body;
  }

  // Stop one process by the name it was started under (its log keeps the name).
  async stopOne(name) {
    const p = this.procs.find((x) => x.name === name && !x.child.exited);
    if (!p) return;
    p.child.kill("SIGTERM");
    await until(name + " to stop", () => p.child.exited, 10000);
  }

  async stop() {
    for (const { name, child } of this.procs.reverse()) {
      if (child.exited) continue;
      child.kill("SIGTERM");
      const deadline = Date.now() + 8000;
      while (!child.exited && Date.now() < deadline) await sleep(50);
      if (!child.exited) {
        child.kill("SIGKILL");
        console.error("console test: " + name + " did not stop on SIGTERM; killed");
      }
    }
  }

  log(name) {
    try {
      return fs.readFileSync(path.join(this.workDir, name + ".log"), "utf8");
    } catch (e) {
      return "";
    }
  }
}
