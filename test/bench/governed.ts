import { fx, signed, summarize, times } from "./common.js";
import { closedLoop, type LoadRun, makeTarget, type Target } from "./load.js";

/**
 * The governed path (issue 5): the same Passerelle process, called with the key of a user whose role has limits on
 * the model (Redis when the bench has PASSERELLE_TEST_REDIS_URL, else the in-process limiter), on a priced model
 * and with a budget: every request reserves limits (one script call) and the worst-case cost (in memory on the
 * process's budget lease once it holds one, see budget-leases.ts; before that, one PostgreSQL statement), then
 * settles both and journals its usage record (which settles the lease). The ungoverned path is the admin key: no limits
 * (nothing counted), no budget (known after the first request, cached), the usage record still journaled — usage
 * is never optional.
 */

async function rest(origin: string, key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${origin}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`bench setup: ${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** A user with limits (high enough never to refuse during the bench) and a budget; returns its key. */
export async function governedTarget(origin: string, adminKey: string, model: string): Promise<Target> {
  const role = await rest(origin, adminKey, "POST", "/v1/admin/roles", { name: `bench-governed-${Date.now()}` });
  const user = await rest(origin, adminKey, "POST", "/v1/admin/users", {
    email: `governed-${Date.now()}@bench.local`,
    role: role.id,
  });
  const key = await rest(origin, adminKey, "POST", "/v1/admin/keys", { user: user.id, name: "bench" });
  const models = await rest(origin, adminKey, "GET", `/v1/admin/models?name=${encodeURIComponent(model)}`);
  const id = (models.data as { id: string; name: string }[]).find((m) => m.name === model)?.id;
  if (!id) throw new Error(`bench setup: model ${model} not found`);
  const big = 4_000_000_000;
  await rest(origin, adminKey, "POST", `/v1/admin/roles/${role.id}/models/${id}`, {
    requests_per_minute: big,
    requests_per_day: big,
    tokens_per_minute: big,
    tokens_per_day: big,
  });
  await rest(origin, adminKey, "PUT", `/v1/admin/budgets/user/${user.id}`, { amount: 1_000_000 });
  return makeTarget("passerelle", origin, key.key as string, model);
}

export interface GovernedPlan {
  c1Rounds: number;
  c1PerRound: number;
  c32Rounds: number;
  c32RoundMs: number;
}

type Path = "direct" | "ungoverned" | "governed";
const PATHS: readonly Path[] = ["direct", "ungoverned", "governed"];

/** c=1 latency and c=32 throughput of the three paths, interleaved in rounds (rotated each round). */
export async function runGoverned(targets: Record<Path, Target>, plan: GovernedPlan) {
  const order = (r: number) => [...PATHS.slice(r % 3), ...PATHS.slice(0, r % 3)];
  const c1: Record<Path, number[]> = { direct: [], ungoverned: [], governed: [] };
  const c1Errors: Record<Path, number> = { direct: 0, ungoverned: 0, governed: 0 };
  /** Passerelle's own time on each answer (Server-Timing `gateway;dur`, see LatencySplit). */
  const gateway: Record<Exclude<Path, "direct">, number[]> = { ungoverned: [], governed: [] };
  for (let r = 0; r < plan.c1Rounds; r++) {
    for (const p of order(r)) {
      const run = await closedLoop(targets[p], { connections: 1, requests: plan.c1PerRound, split: p !== "direct" });
      c1[p].push(...run.latencies);
      if (p !== "direct") gateway[p].push(...(run.split?.gateway ?? []));
      c1Errors[p] += run.errors;
    }
  }
  const c32: Record<Path, LoadRun[]> = { direct: [], ungoverned: [], governed: [] };
  for (let r = 0; r < plan.c32Rounds; r++) {
    for (const p of order(r))
      c32[p].push(await closedLoop(targets[p], { connections: 32, durationMs: plan.c32RoundMs }));
  }
  const s1 = Object.fromEntries(PATHS.map((p) => [p, summarize(c1[p])])) as Record<Path, ReturnType<typeof summarize>>;
  const g1 = { ungoverned: summarize(gateway.ungoverned), governed: summarize(gateway.governed) };
  const rps = Object.fromEntries(
    PATHS.map((p) => {
      const ok = c32[p].reduce((a, x) => a + x.latencies.length, 0);
      const ms = c32[p].reduce((a, x) => a + x.elapsedMs, 0);
      return [p, (1000 * ok) / ms];
    }),
  ) as Record<Path, number>;
  const p99c32 = Object.fromEntries(PATHS.map((p) => [p, summarize(c32[p].flatMap((x) => x.latencies)).p99])) as Record<
    Path,
    number
  >;
  const errors32 = Object.fromEntries(PATHS.map((p) => [p, c32[p].reduce((a, x) => a + x.errors, 0)])) as Record<
    Path,
    number
  >;
  const rows = PATHS.map((p) => ({
    path: p,
    "c=1 p50 ms": fx(s1[p].p50, 3),
    "c=1 p99 ms": fx(s1[p].p99, 3),
    "added p50 ms": p === "direct" ? "—" : signed(s1[p].p50 - s1.direct.p50, 3),
    "added p99 ms": p === "direct" ? "—" : signed(s1[p].p99 - s1.direct.p99, 3),
    "gateway's own p50 / p99 ms": p === "direct" ? "—" : `${fx(g1[p].p50, 3)} / ${fx(g1[p].p99, 3)}`,
    "c=32 req/s": Math.round(rps[p]),
    "vs direct": times(rps[p], rps.direct),
    "vs ungoverned": p === "direct" ? "—" : times(rps[p], rps.ungoverned),
    "c=32 p99 ms": fx(p99c32[p], 2),
    errors: c1Errors[p] + errors32[p],
  }));
  return {
    rows,
    figures: {
      c1: s1,
      /** Server-Timing `gateway;dur` at c=1: the time spent in Passerelle itself, hops and upstream wait left out. */
      gatewayC1: g1,
      rps,
      p99c32,
      errors: { c1: c1Errors, c32: errors32 },
      addedP99GovernedMs: s1.governed.p99 - s1.direct.p99,
      governedVsUngoverned: rps.governed / rps.ungoverned,
    },
  };
}
