/**
 * `npm run bench` (BENCH_QUICK=1: a ~1 minute smoke version). Needs PASSERELLE_TEST_DATABASE_URL (a PostgreSQL
 * superuser URL; test/ci.sh starts one): every figure is taken on real PostgreSQL, never the embedded database.
 *   1. Inference (inference.ts): chat completions direct from the vLLM simulator, through Passerelle, and through
 *      a minimal undici pass-through proxy (the ceiling), interleaved in one run: latency at concurrency 1,
 *      throughput at 32 (with CPU per request and a profile), streams at 1 and 64, concurrent streams held, memory;
 *      then the governed path, and the worker pool (PASSERELLE_WORKERS, BENCH_WORKERS) at c=32 and under 64 streams.
 *   2. Architecture floors (floors.ts): direct, the ceiling, a Fastify floor, a Fastify + Connect floor and
 *      Passerelle, interleaved: what the required shape costs, and what Passerelle's features add (BENCH_FLOORS=0
 *      skips it).
 *      Then the targets against this machine (attainable.ts): which of them the required shape's floor allows here.
 *   3. Accounts (accounts.ts): the foundation's `GET /v1/me` and `GetMe` against `GET /health`.
 *   4. Search (search.ts, in a process of its own): the PostgreSQL search backend at 100 000 chunks × 384 dimensions
 *      (10 000 when quick): ingestion throughput and latency per method; BENCH_SEARCH=0 skips it.
 * Prints a table per section and writes every figure to test/bench/results/latest.json. It asserts nothing.
 * Set BENCH_PROFILE=0 to skip the CPU profile, BENCH_LOG_LEVEL to change Passerelle's log level (default info).
 */
import { spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { attainability, targetFigures } from "./attainable.js";
import { loadAverage, QUICK } from "./common.js";
import { runFloorsBench } from "./floors.js";
import { headline, runInferenceBench } from "./inference.js";

const RESULTS_DIR = path.resolve(import.meta.dirname, "results");

async function main(): Promise<void> {
  if (!process.env.PASSERELLE_TEST_DATABASE_URL) {
    console.error(
      "npm run bench needs PASSERELLE_TEST_DATABASE_URL: a PostgreSQL superuser URL (the bench creates and drops " +
        "its own databases), e.g.\n  PASSERELLE_TEST_DATABASE_URL=postgresql://postgres:dev@127.0.0.1:5432/postgres " +
        "npm run bench\nThe embedded database is not measured: it alone weighs ~580 MB and is not what production runs.",
    );
    process.exit(1);
  }
  const started = performance.now();
  const cpus = os.cpus();
  process.stdout.write(
    `Passerelle bench${QUICK ? " (quick)" : ""} — ${cpus.length} × ${cpus[0]?.model ?? "cpu"}, ` +
      `node ${process.version}, load average ${loadAverage().join(" ")}\n`,
  );
  const inference = await runInferenceBench(RESULTS_DIR);
  const head = headline(inference);
  process.stdout.write(`\n${head.title}\n`);
  console.table(head.rows);
  let floors: Awaited<ReturnType<typeof runFloorsBench>> | null = null;
  if (process.env.BENCH_FLOORS !== "0") {
    process.stderr.write("[bench] architecture floors…\n");
    // The servers the inference section ran: compiled into results/build, or already compiled (BENCH_PREBUILT=1).
    const script =
      process.env.BENCH_PREBUILT === "1"
        ? path.resolve(import.meta.dirname, "child.js")
        : process.env.BENCH_FROM_SOURCE === "1"
          ? undefined
          : path.join(RESULTS_DIR, "build/test/bench/child.js");
    floors = await runFloorsBench(script);
    for (const s of [floors.section, floors.streamSection]) {
      process.stdout.write(`\n${s.title}\n${s.note ?? ""}\n`);
      console.table(s.rows);
    }
  }
  const reach = floors ? attainability(targetFigures(floors.figures, inference.figures.governed)) : null;
  if (reach) {
    process.stdout.write(`\n${reach.title}\n${reach.note ?? ""}\n`);
    console.table(reach.rows);
  }
  process.stderr.write("[bench] accounts…\n");
  // Imported only now: it loads the whole platform into this process.
  const { runAccountsBench } = await import("./accounts.js");
  const accounts = await runAccountsBench();
  process.stdout.write(`\n${accounts.section.title}\n${accounts.section.note ?? ""}\n`);
  console.table(accounts.section.rows);
  let search: unknown = null;
  if (process.env.BENCH_SEARCH !== "0") {
    process.stderr.write("[bench] search…\n");
    // Its own process: it loads 100 000 chunks and must not share an event loop or a heap with the figures above.
    const run = spawnSync(
      process.execPath,
      ["--import", "tsx", path.join(import.meta.dirname, "search.ts"), "--chunks", QUICK ? "10000" : "100000"],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    if (run.status === 0) search = JSON.parse(await readFile(path.join(RESULTS_DIR, "search.json"), "utf8"));
    else process.stderr.write(`[bench] search bench failed (exit ${run.status})\n`);
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`\nbench done in ${seconds.toFixed(0)} s, load average now ${loadAverage().join(" ")}\n`);

  await mkdir(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, "latest.json");
  await writeFile(
    file,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        quick: QUICK,
        machine: { cpus: cpus.length, model: cpus[0]?.model, node: process.version, platform: process.platform },
        durationS: seconds,
        inference: { ...inference, headline: head },
        floors,
        attainability: reach,
        accounts: { section: accounts.section, figures: accounts.figures },
        search,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`figures written to ${path.relative(process.cwd(), file)}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
