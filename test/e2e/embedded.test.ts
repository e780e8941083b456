import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The embedded default as a user runs it: `services/main.ts` in a child process, with no DATABASE_URL and no
 * REDIS_URL (embedded PGlite under the data dir, in-process KV), stopped with SIGTERM and started again on the
 * same data dir.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;
const ADMIN_EMAIL = "admin@passerelle.local";
const KEY_RE = /sk-[A-Za-z0-9_-]{20,}/;

interface Started {
  child: ChildProcess;
  /** The banner block (from "Passerelle is up" to its closing blank line). */
  banner: string;
  restUrl: string;
  baseUrl: string;
  /** The admin key printed on first start, if any. */
  printedKey: string | undefined;
  /** Wall-clock time from spawn to the complete banner. */
  wallMs: number;
  /** The start-up time the process reports in its banner. */
  reportedMs: number;
  output(): { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];

function userEnv(dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("PASSERELLE_") || name.startsWith("VITEST") || name === "NODE_OPTIONS" || name === "NODE_ENV") {
      delete env[name];
    }
  }
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.ELASTICSEARCH_URL;
  delete env.LOG_LEVEL;
  return {
    ...env,
    PASSERELLE_DATA_DIR: dataDir,
    PASSERELLE_HTTP_HOST: "127.0.0.1",
    PASSERELLE_HTTP_PORT: "0",
    PASSERELLE_GRPC_PORT: "0",
  };
}

/** Starts the platform and resolves once its banner is complete; rejects if it exits or stalls first. */
function startPlatform(dataDir: string): Promise<Started> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ["--import", "tsx", "services/main.ts"], {
    cwd: ROOT,
    env: userEnv(dataDir),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const tail = () => `\n--- stdout ---\n${stdout.slice(-4000)}\n--- stderr ---\n${stderr.slice(-4000)}`;

  return new Promise<Started>((resolve, reject) => {
    // The banner is one write; it ends with the hint line of the first start or of a later one, then a blank line.
    const bannerRe = /Passerelle is up in (\d+) ms\n[\s\S]*?(?:Try: [^\n]*|create-key [^\n]*)\n\n/;
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no banner within ${START_TIMEOUT_MS} ms${tail()}`));
    }, START_TIMEOUT_MS);
    const onData = () => {
      const m = bannerRe.exec(stdout);
      if (!m) return;
      const wallMs = Math.round(performance.now() - t0);
      cleanup();
      const banner = m[0];
      const rest = /REST \(OpenAI-compatible\)\s+(http:\/\/[^\s]+)\/v1\s/.exec(banner);
      if (!rest?.[1]) {
        reject(new Error(`no REST URL in the banner:\n${banner}`));
        return;
      }
      const printed = /^\s+(sk-[A-Za-z0-9_-]+)\s*$/m.exec(banner)?.[1];
      resolve({
        child,
        banner,
        baseUrl: rest[1],
        restUrl: `${rest[1]}/v1`,
        printedKey: printed,
        wallMs,
        reportedMs: Number(m[1]),
        output: () => ({ stdout, stderr }),
        exited,
      });
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      cleanup();
      reject(new Error(`the platform exited before its banner (code ${code}, signal ${signal})${tail()}`));
    };
    function cleanup() {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
    }
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
    child.once("error", (err) => {
      cleanup();
      reject(err);
    });
  });
}

/** Sends SIGTERM; resolves with the exit and how long it took, or rejects after STOP_TIMEOUT_MS. */
async function stop(p: Started): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const t0 = performance.now();
  p.child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const { stdout, stderr } = p.output();
      reject(
        new Error(`still running ${STOP_TIMEOUT_MS} ms after SIGTERM\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`),
      );
    }, STOP_TIMEOUT_MS);
  });
  try {
    const res = await Promise.race([p.exited, timeout]);
    return { ...res, ms: Math.round(performance.now() - t0) };
  } finally {
    clearTimeout(timer);
  }
}

async function get(url: string, key?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("embedded default: no DATABASE_URL, no REDIS_URL", () => {
  let dataDir: string;
  let first: Started;
  let second: Started;
  let adminKey: string;
  let userKey: string;
  let userKeyId: string;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-e2e-"));
  });

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    if (Object.keys(timings).length > 0) {
      console.log(
        `embedded start-up (${os.cpus().length} CPUs, Node ${process.version}): ` +
          `first start ${timings.firstStartWallMs} ms wall / ${timings.firstStartReportedMs} ms reported, ` +
          `restart ${timings.restartWallMs} ms wall / ${timings.restartReportedMs} ms reported, ` +
          `SIGTERM→exit ${timings.firstStopMs} ms / ${timings.secondStopMs} ms`,
      );
    }
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  it(
    "first start: prints where it listens and a generated admin key, once",
    async () => {
      first = await startPlatform(dataDir);
      timings.firstStartWallMs = first.wallMs;
      timings.firstStartReportedMs = first.reportedMs;
      expect(first.restUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
      expect(first.banner).toContain(`embedded PostgreSQL in ${dataDir}/pg`);
      expect(first.banner).toContain("in-process");
      expect(first.banner).toContain(ADMIN_EMAIL);
      expect(first.printedKey).toMatch(/^sk-[A-Za-z0-9_-]{43}$/);
      adminKey = first.printedKey ?? "";
      // The key appears in the banner only: never in a log line, never on stderr.
      const { stdout, stderr } = first.output();
      expect(stdout.split(adminKey).length - 1).toBe(1);
      expect(stderr).not.toContain(adminKey);
      expect((await fs.stat(path.join(dataDir, "pg"))).isDirectory()).toBe(true);
    },
    START_TIMEOUT_MS + 10_000,
  );

  it("reports an embedded database and an in-process KV as ready", async () => {
    const live = await get(`${first.baseUrl}/health`);
    expect(live).toEqual({ status: 200, body: { status: "ok" } });
    const ready = await get(`${first.baseUrl}/health/ready`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ database: { kind: "embedded", ok: true }, kv: { kind: "memory", ok: true } });
  });

  it("the printed admin key works, and creates a user key through REST", async () => {
    const me = await get(`${first.restUrl}/me`, adminKey);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ email: ADMIN_EMAIL, permissions: expect.arrayContaining(["admin"]) });

    const res = await fetch(`${first.restUrl}/me/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "e2e key" }),
    });
    const body = (await res.json()) as { id: string; key: string; name: string };
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(body.key).toMatch(/^sk-[A-Za-z0-9_-]{43}$/);
    expect(body.name).toBe("e2e key");
    userKey = body.key;
    userKeyId = body.id;
    expect((await get(`${first.restUrl}/me`, userKey)).status).toBe(200);
    expect((await get(`${first.restUrl}/me`, "sk-not-a-real-key-0000000000000000")).status).toBe(401);
  });

  it(
    "SIGTERM stops it with exit code 0 within 15 s",
    async () => {
      const res = await stop(first);
      timings.firstStopMs = res.ms;
      expect({ code: res.code, signal: res.signal }).toEqual({ code: 0, signal: null });
    },
    STOP_TIMEOUT_MS + 5_000,
  );

  it(
    "restart on the same data dir: no new admin key, and the keys still work",
    async () => {
      second = await startPlatform(dataDir);
      timings.restartWallMs = second.wallMs;
      timings.restartReportedMs = second.reportedMs;
      expect(second.printedKey).toBeUndefined();
      expect(second.banner).not.toMatch(KEY_RE);
      expect(second.banner).toContain(`Admin: ${ADMIN_EMAIL}`);
      const { stdout, stderr } = second.output();
      expect(stdout).not.toMatch(KEY_RE);
      expect(stderr).not.toMatch(KEY_RE);

      const asUser = await get(`${second.restUrl}/me`, userKey);
      expect(asUser.status).toBe(200);
      expect(asUser.body).toMatchObject({ email: ADMIN_EMAIL });
      const asAdmin = await get(`${second.restUrl}/me`, adminKey);
      expect(asAdmin.status).toBe(200);
      expect(asAdmin.body).toMatchObject({ email: ADMIN_EMAIL });
      const keys = await get(`${second.restUrl}/me/keys`, adminKey);
      expect(keys.status).toBe(200);
      const listed = (keys.body.data as { id: string; name: string }[]).map((k) => [k.id, k.name]);
      expect(listed).toContainEqual([userKeyId, "e2e key"]);
      expect(JSON.stringify(keys.body)).not.toContain(userKey);

      const ready = await get(`${second.baseUrl}/health/ready`);
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ database: { kind: "embedded", ok: true }, kv: { kind: "memory", ok: true } });
    },
    START_TIMEOUT_MS + 10_000,
  );

  it(
    "stops again cleanly",
    async () => {
      const res = await stop(second);
      timings.secondStopMs = res.ms;
      expect({ code: res.code, signal: res.signal }).toEqual({ code: 0, signal: null });
    },
    STOP_TIMEOUT_MS + 5_000,
  );
});
