// Usage durability end to end: the platform reaches PostgreSQL through a TCP proxy this file cuts mid-traffic and
// restores (a real outage for the pg pool), then is closed mid-traffic and started again on the same data directory
// and database. Every request is sent with its own x-request-id; the ledger must hold each admitted one exactly once.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "../../services/accounts/secrets.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import {
  bounded,
  call,
  createMember,
  createRole,
  eventually,
  type Member,
  modelId,
  ok,
  type PlatformOn,
  scrapeMetrics,
  startPlatformOn,
  streamChat,
  writeModelsFile,
} from "../support/governance.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const PROMPT = [{ role: "user", content: "1234567890" }];
/** Shutdown grace: far longer than any request of this file (300 ms at most). */
const GRACE_MS = 3_000;

describe("usage records survive PostgreSQL outages and restarts, exactly once", () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let sim: Simulator;
  let dir: string;
  let dataDir: string;
  let modelsFile: string;
  let p: PlatformOn;
  let direct: pg.Client;
  let alice: Member;
  let bob: Member;
  /** Has a budget large enough for a lease: admitted in memory, so served through the outage. */
  let carol: Member;
  const adminKey = generateApiKey();
  const run = Date.now().toString(36);

  const start = () =>
    startPlatformOn({
      databaseUrl: proxy.url,
      dataDir,
      adminKey,
      env: { PASSERELLE_MODELS_FILE: modelsFile, PASSERELLE_SHUTDOWN_GRACE_MS: String(GRACE_MS) },
    });

  /** How many usage records each request id has (read straight from PostgreSQL, not through the proxy). */
  async function recordsOf(ids: string[]): Promise<Map<string, number>> {
    const { rows } = await direct.query<{ request_id: string; n: number }>(
      "select request_id, count(*)::int as n from usage_record where request_id = any($1::text[]) group by 1",
      [ids],
    );
    return new Map(rows.map((r) => [r.request_id, r.n]));
  }

  /**
   * One request of the mix, unary or streamed by parity: resolves with "200", "<status> <error code>", "200 cut"
   * (a stream that ended without [DONE]) or "no answer" (refused at the TCP level).
   */
  async function send(
    member: Member,
    model: string,
    requestId: string,
    i: number,
    onHeaders?: (status: number) => void,
  ): Promise<string> {
    const key = member.keys[i % member.keys.length] as string;
    const body = { model, messages: PROMPT, max_tokens: 8 };
    try {
      if (i % 2 === 0) {
        const res = await call(p.httpUrl, "POST", "/v1/chat/completions", {
          key,
          body,
          headers: { "x-request-id": requestId },
        });
        return res.status === 200 ? "200" : `${res.status} ${res.body?.error?.code}`;
      }
      const s = await streamChat(p.httpUrl, key, body, { requestId, onHeaders });
      if (s.status !== 200) return `${s.status} ${s.error?.error?.code}`;
      return s.done ? "200" : "200 cut";
    } catch {
      return "no answer";
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase("durable");
    proxy = await startTcpProxy(db.url);
    direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    sim = await startSimulator({ completionTokens: 6, ttftMs: 5, interTokenMs: 15 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-durable-"));
    dataDir = path.join(dir, "data");
    modelsFile = await writeModelsFile(dir, [
      { name: "dur-chat", type: "text-generation", urls: [sim.url], upstreamModel: "sim-chat" },
      { name: "dur-priced", type: "text-generation", urls: [sim.url], upstreamModel: "sim-chat" },
    ]);
    p = await start();
    const priced = await modelId(p.httpUrl, adminKey, "dur-priced");
    await ok(p.httpUrl, "PATCH", `/v1/admin/models/${priced}`, adminKey, {
      costs: { prompt_tokens: 1, completion_tokens: 2 },
    });
    const role = await createRole(p.httpUrl, adminKey, {
      "dur-chat": { requests_per_minute: 100_000 },
      "dur-priced": {},
    });
    alice = await createMember(p.httpUrl, adminKey, role, { keys: 4 });
    bob = await createMember(p.httpUrl, adminKey, role);
    carol = await createMember(p.httpUrl, adminKey, role);
    await ok(p.httpUrl, "PUT", `/v1/admin/budgets/user/${carol.id}`, adminKey, { amount: 100 });
    // Small enough that no budget lease is taken (budget-leases.ts: a lease is 1/32 of what remains and must cover
    // 16 worst cases, here ≈ 26 µ-units each): every one of Bob's requests reserves in PostgreSQL.
    await ok(p.httpUrl, "PUT", `/v1/admin/budgets/user/${bob.id}`, adminKey, { amount: 0.01 });
  });
  afterAll(async () => {
    await proxy?.up();
    await p?.close();
    await direct?.end();
    await proxy?.close();
    await sim?.close();
    await db?.drop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("keeps serving while PostgreSQL is unreachable, and then writes every request's record exactly once", async () => {
    // Warm what the request path reads from PostgreSQL: keys (auth cache), models (registry cache).
    for (const [i, key] of [...alice.keys, ...bob.keys].entries()) {
      expect((await call(p.httpUrl, "GET", "/v1/models", { key })).status).toBe(200);
      expect(await send({ id: "", keys: [key] }, "dur-chat", `dur-${run}-warm-${i}`, 0)).toBe("200");
    }
    const N = 400;
    const ids = Array.from({ length: N }, (_, i) => `dur-${run}-outage-${i}`);
    // Alice (no budget) on an unpriced model; every 10th request Bob's, on a priced model against his budget; as
    // many Carol's, against hers (leased after her first request).
    const isBob = (i: number) => i % 10 === 9;
    const isCarol = (i: number) => i % 10 === 4;
    let down = 0;
    const statuses = await bounded(N, 8, async (i) => {
      if (i === 100) {
        await proxy.down();
        down = Date.now();
      }
      if (i === 300) await proxy.up();
      if (isCarol(i)) return send(carol, "dur-priced", ids[i] as string, i);
      return send(isBob(i) ? bob : alice, isBob(i) ? "dur-priced" : "dur-chat", ids[i] as string, i);
    });
    const outageMs = Date.now() - down;
    const tally: Record<string, number> = {};
    for (const s of statuses) tally[s] = (tally[s] ?? 0) + 1;

    console.log(
      `durability: ${N} requests, PostgreSQL down for ${outageMs} ms in the middle: ${JSON.stringify(tally)}`,
    );
    // Alice's requests never needed PostgreSQL, nor Carol's once her process held a lease: all served.
    expect(statuses.filter((_, i) => !isBob(i)).every((s) => s === "200")).toBe(true);
    // Bob's budget needs PostgreSQL for every reservation: during the outage, 503 budgets_unavailable.
    const refused = ids.filter((_, i) => statuses[i] === "503 budgets_unavailable");
    expect(refused.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === "200" || s === "503 budgets_unavailable")).toBe(true);

    const admitted = ids.filter((_, i) => statuses[i] === "200");
    await eventually(
      "every request's record",
      async () => (await recordsOf([...admitted, ...refused])).size === admitted.length + refused.length,
      30_000,
    );
    const counts = await recordsOf(ids);
    expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect(admitted.filter((id) => counts.get(id) !== 1)).toEqual([]);
    // A request refused at admission (here: budgets unreadable) has its record too: 503, no tokens, no cost.
    expect(refused.filter((id) => counts.get(id) !== 1)).toEqual([]);
    const metrics = await scrapeMetrics(p.httpUrl, adminKey);
    const failures = metrics.get("passerelle_usage_flush_failures_total") ?? 0;
    console.log(`durability: ${counts.size} records, each once; ${failures} failed flush attempts`);
    expect(failures).toBeGreaterThan(0);
    expect(metrics.get("passerelle_usage_buffer_depth")).toBe(0);
    // Carol's budget, admitted in memory through the outage, reconciles to the nano-unit once her lease is given back.
    const carolBudget = async () => {
      const { rows } = await direct.query<{ spent: string; reserved: string; cost: string }>(
        `select b.spent_nanos::text as spent, b.reserved_nanos::text as reserved,
                (select coalesce(sum(cost_nanos), 0)::text from usage_record where user_id = $1) as cost
           from budget b where b.owner_kind = 'user' and b.owner_id = $1`,
        [carol.id],
      );
      return rows[0];
    };
    await eventually("Carol's lease given back", async () => (await carolBudget())?.reserved === "0");
    const cb = await carolBudget();
    expect(BigInt(cb?.spent ?? "0")).toBeGreaterThan(0n);
    expect(cb?.spent).toBe(cb?.cost);
  }, 60_000);

  it("loses and duplicates nothing across a graceful restart mid-traffic (records left on disk are replayed)", async () => {
    const sent: { id: string; status: string; streaming: boolean }[] = [];
    let stopped = false;
    let n = 0;
    // Slower streams (about 300 ms), so that some are mid-way when close() begins.
    sim.setOptions({ interTokenMs: 50 });
    // 12 clients sending one after the other until the platform stops answering.
    const clients = Array.from({ length: 12 }, async () => {
      while (!stopped) {
        const i = n++;
        const id = `dur-${run}-restart-${i}`;
        const entry = { id, status: "pending", streaming: false };
        sent.push(entry);
        entry.status = await send(alice, "dur-chat", id, i, (status) => {
          entry.streaming = status === 200;
        });
        if (entry.status === "no answer") return;
      }
    });
    const midStream = () => sent.filter((s) => s.streaming && s.status === "pending").map((s) => s.id);
    await eventually(
      "traffic under way, streams mid-way",
      async () => sent.filter((s) => s.status === "200").length >= 40 && midStream().length >= 3,
    );
    // PostgreSQL goes first, so that what the closing platform journals cannot be flushed: it stays on disk.
    await proxy.down();
    // Streams being served (status sent, not finished) when close() begins: they must be drained to their end.
    const inFlight = midStream();
    expect(inFlight.length).toBeGreaterThan(0);
    const closeStarted = Date.now();
    await p.close();
    const closeMs = Date.now() - closeStarted;
    stopped = true;
    await Promise.all(clients);
    const byId = new Map(sent.map((s) => [s.id, s.status]));
    expect(inFlight.map((id) => byId.get(id)).filter((s) => s !== "200")).toEqual([]);
    const left = (await fs.readdir(path.join(dataDir, "usage"))).filter((f) => f.startsWith("usage-"));
    expect(left.length).toBeGreaterThan(0);

    await proxy.up();
    const restarted = Date.now();
    p = await start();
    const startMs = Date.now() - restarted;
    const answered = sent.filter((s) => s.status === "200").map((s) => s.id);
    await eventually(
      "every answered request's record",
      async () => (await recordsOf(answered)).size === answered.length,
    );
    const counts = await recordsOf(sent.map((s) => s.id));
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    // Only answered requests are in the ledger: not those the stopping listener refused, nor those that arrived on a
    // kept-alive connection while it closed (Fastify answers them 503 before any route runs).
    expect([...counts.keys()].filter((id) => byId.get(id) !== "200")).toEqual([]);
    const tally: Record<string, number> = {};
    for (const s of sent) tally[s.status] = (tally[s.status] ?? 0) + 1;
    console.log(
      `restart: ${sent.length} requests sent (${JSON.stringify(tally)}: "no answer" = refused by the stopped ` +
        `listener, "503 undefined" = Fastify's answer while closing), ` +
        `${inFlight.length} streams in flight at close() (${closeMs} ms), ${left.length} journal segment(s) replayed ` +
        `by the next start (${startMs} ms); ${counts.size} records, each once`,
    );
    // The new platform serves and records as before.
    const after = `dur-${run}-after-restart`;
    expect(await send(alice, "dur-chat", after, 0)).toBe("200");
    await eventually("the new platform's record", async () => (await recordsOf([after])).get(after) === 1);
  }, 60_000);

  // Node's server.close() closes only the connections idle at that instant: without the sweep in server.ts, a
  // kept-alive connection whose request finished during the drain stayed open until the client dropped it (undici:
  // 4 s after an SSE stream, 72 s otherwise) or the grace period ended, so close() always took the whole grace.
  it("close() returns once in-flight requests are drained, not at the end of the grace period", async () => {
    const pending = call(p.httpUrl, "POST", "/v1/chat/completions", {
      key: alice.keys[0],
      body: { model: "dur-chat", messages: PROMPT, max_tokens: 8 },
    });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await p.close();
    const closeMs = Date.now() - started;
    expect((await pending).status).toBe(200);
    p = await start();
    expect(closeMs).toBeLessThan(GRACE_MS / 2);
  }, 30_000);
});
