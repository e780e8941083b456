import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { testRedisUrl } from "../support/env.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const MAIN = path.join(ROOT, "services/main.ts");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `npm start`'s entry point run from source, as an operator would run it (env only), with its output captured. */
function start(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    cwd: ROOT,
    env: { ...process.env, PASSERELLE_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  return { child, output: () => out };
}

/**
 * The Passerelle processes `pid` forked (matched on their command line): run from source, a process may also have
 * tsx's esbuild service as a child while it transpiles files its cache lacks.
 */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid), "-f", MAIN], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const redisUrl = testRedisUrl();

describe.skipIf(!redisUrl)("PASSERELLE_WORKERS: a primary and worker processes sharing the ports", () => {
  let db: TestDatabase;
  let sim: Simulator;
  let dir: string;
  let proc: ChildProcess | undefined;

  beforeAll(async () => {
    db = await createTestDatabase("workers");
    sim = await startSimulator({ completionTokens: 8 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-workers-"));
    await fs.writeFile(
      path.join(dir, "models.yaml"),
      `models:\n  - name: chat\n    type: text-generation\n    providers:\n      - { type: vllm, url: "${sim.url}", model_name: sim-chat }\n`,
    );
  });
  afterAll(async () => {
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
    await sim?.close();
    await db?.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("refuses to start several workers on the embedded defaults", async () => {
    const { child, output } = start({ PASSERELLE_WORKERS: "2", PASSERELLE_DATA_DIR: dir });
    const [code] = (await once(child, "exit")) as [number];
    expect(code).toBe(2);
    expect(output()).toMatch(/PASSERELLE_WORKERS above 1 needs DATABASE_URL and REDIS_URL/);
  });

  it("serves from every worker, replaces a worker that dies, drains on SIGTERM and loses no usage record", async () => {
    const key = "sk-workers-test-0123456789abcdefghijklmnop";
    const { child, output } = start({
      PASSERELLE_WORKERS: "2",
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl as string,
      PASSERELLE_HTTP_HOST: "127.0.0.1",
      PASSERELLE_HTTP_PORT: "0",
      PASSERELLE_GRPC_PORT: "0",
      PASSERELLE_DATA_DIR: dir,
      PASSERELLE_BOOTSTRAP_ADMIN_KEY: key,
      PASSERELLE_MODELS_FILE: path.join(dir, "models.yaml"),
      PASSERELLE_SHUTDOWN_GRACE_MS: "5000",
    });
    proc = child;
    const base = await waitFor("the banner", () => /REST \(OpenAI-compatible\)\s+(\S+)\/v1/.exec(output())?.[1]);
    expect(output()).toMatch(/2 workers \(PASSERELLE_WORKERS\) and this primary/);
    const workers = childrenOf(child.pid as number);
    expect(workers).toHaveLength(2);

    const chat = async (id: string) => {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-request-id": id },
        body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "bonjour" }] }),
      });
      return res.status;
    };
    const ids: string[] = [];
    // Fresh connections each time: the primary hands them to the workers in turn.
    for (let i = 0; i < 20; i++) {
      ids.push(`w-${i}`);
      expect(await chat(`w-${i}`)).toBe(200);
    }

    // A worker killed hard is replaced (same index, so it replays its own journal) and service goes on.
    process.kill(workers[0] as number, "SIGKILL");
    const replaced = await waitFor("a new worker", () => {
      const now = childrenOf(child.pid as number);
      return now.length === 2 && !now.includes(workers[0] as number) ? now : undefined;
    });
    expect(replaced).toContain(workers[1]);
    await waitFor("the new worker to serve", async () => {
      const id = `after-${ids.length}`;
      ids.push(id);
      return (await chat(id)) === 200 ? true : undefined;
    });

    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number];
    expect(code).toBe(0);
    expect(childrenOf(child.pid as number)).toEqual([]);

    // Every answered request has exactly one usage record: the workers flushed their journals on SIGTERM; what the
    // killed worker had journaled was replayed by its replacement.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ request_id: string; n: string }>(
        "select request_id, count(*) as n from usage_record group by request_id",
      );
      const counts = new Map(rows.map((r) => [r.request_id, Number(r.n)]));
      const answered = ids.filter((id) => counts.has(id));
      expect(answered.length).toBeGreaterThanOrEqual(21);
      for (const id of ids.slice(0, 20)) expect(counts.get(id), id).toBe(1);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await client.end();
    }
  }, 120_000);
});
