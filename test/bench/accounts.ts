/**
 * The foundation's hot paths, each against a bare baseline measured in the same run on the same machine, so that
 * the figures are ratios rather than absolute numbers:
 *   - REST `GET /v1/me` (bridge → in-process transport → auth interceptor with the key cache → service → PostgreSQL)
 *   - Connect `GetMe` over HTTP/1.1 (auth interceptor → service), no bridge
 *   - baseline: `GET /health` on the same Fastify listener (no auth, no RPC, no database)
 * The platform runs in this process, with autocannon. BENCH_DURATION_S and BENCH_CONNECTIONS tune it.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import pino from "pino";
import { bridgePlugin } from "../../bridge/app.js";
import { generateApiKey } from "../../services/accounts/secrets.js";
import { loadConfig } from "../../services/config.js";
import { startPlatform } from "../../services/server.js";
import { createTestDatabase } from "../support/db.js";
import { QUICK } from "./common.js";
import type { Section } from "./inference.js";

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? (QUICK ? 1 : 5));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

interface Figures {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(name: string, opts: autocannon.Options): Promise<Figures> {
  const r = await autocannon({ duration: DURATION_S, connections: CONNECTIONS, pipelining: 1, ...opts });
  return {
    name,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
  };
}

export async function runAccountsBench(): Promise<{ section: Section; figures: Figures[] }> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-bench-"));
  const db = await createTestDatabase("bench");
  const key = generateApiKey();
  const config = loadConfig({
    PASSERELLE_HTTP_HOST: "127.0.0.1",
    PASSERELLE_HTTP_PORT: "0",
    PASSERELLE_GRPC_PORT: "0",
    PASSERELLE_DATA_DIR: dataDir,
    PASSERELLE_BOOTSTRAP_ADMIN_KEY: key,
    PASSERELLE_LOG_LEVEL: "warn",
    DATABASE_URL: db.url,
  });
  const platform = await startPlatform(config, pino({ level: "warn" }), { restApi: bridgePlugin });
  const auth = { authorization: `Bearer ${key}` };
  try {
    // Warm up the key cache and the JIT.
    await load("warm-up", { url: `${platform.httpUrl}/v1/me`, headers: auth, duration: QUICK ? 1 : 2 });
    const results = [
      await load("baseline GET /health", { url: `${platform.httpUrl}/health` }),
      await load("Connect GetMe (HTTP/1.1)", {
        url: `${platform.httpUrl}/passerelle.accounts.v1.AccountService/GetMe`,
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: "{}",
      }),
      await load("REST GET /v1/me", { url: `${platform.httpUrl}/v1/me`, headers: auth }),
      await load("REST 401 (unknown key)", {
        url: `${platform.httpUrl}/v1/me`,
        headers: { authorization: "Bearer sk-unknown-unknown-unknown-unknown" },
      }),
    ];
    const base = results[0] as Figures;
    const rows = results.map((r) => ({
      path: r.name,
      "req/s": Math.round(r.rps),
      "vs baseline": `${(r.rps / base.rps).toFixed(2)}×`,
      "p50 ms": r.p50,
      "p99 ms": r.p99,
      "errors/non-2xx": r.errors,
    }));
    const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
    return {
      section: {
        title:
          `Accounts: ${CONNECTIONS} connections, ${DURATION_S}s each, database ${platform.core.db.kind}, ` +
          `kv ${platform.core.kv.kind} (platform in the load generator's process)`,
        note: `rss ${rss} MiB (platform and load generator share the process)`,
        rows,
      },
      figures: results,
    };
  } finally {
    await platform.close();
    await db.drop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}
