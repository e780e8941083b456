import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A Passerelle process started as `npm start` would run it (services/main.ts, from source through tsx). */
export interface ChildPlatform {
  readonly pid: number;
  /** http://127.0.0.1:port of its HTTP/1.1 listener. */
  readonly httpUrl: string;
  /** What it wrote so far (stdout and stderr, the last 64 KiB), for failure messages. */
  output(): string;
  /** SIGTERM (graceful shutdown), then SIGKILL after `graceMs`; resolves with how it exited. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts services/main.ts in a child process with `env` on top of this process's environment (ports 0 on
 * 127.0.0.1 unless `env` says otherwise) and resolves once its start banner names the HTTP URL. Several children
 * may share one DATABASE_URL and REDIS_URL; each needs its own PASSERELLE_DATA_DIR (the usage journal is per
 * process). Start them one after the other: the first one migrates the database and creates the admin.
 */
export async function startChildPlatform(
  env: Record<string, string>,
  startTimeoutMs = 60_000,
  /** Node options before the entry point (after tsx's loader). */
  nodeArgs: readonly string[] = [],
): Promise<ChildPlatform> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", ...nodeArgs, path.join(root, "services/main.ts")],
    {
      cwd: root,
      env: {
        ...process.env,
        PASSERELLE_HTTP_HOST: "127.0.0.1",
        PASSERELLE_HTTP_PORT: "0",
        PASSERELLE_GRPC_PORT: "0",
        PASSERELLE_LOG_LEVEL: "warn",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  const append = (d: Buffer) => {
    out = (out + d.toString("utf8")).slice(-65_536);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const httpUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`Passerelle did not start within ${startTimeoutMs} ms:\n${out}`));
    }, startTimeoutMs);
    const look = () => {
      const m = /REST \(OpenAI-compatible\)\s+(http:\/\/\S+)\/v1/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        child.stdout?.off("data", look);
        resolve(m[1]);
      }
    };
    child.stdout?.on("data", look);
    void exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`Passerelle exited (${signal ?? code}) before it was up:\n${out}`));
    });
  });
  return {
    pid: child.pid as number,
    httpUrl,
    output: () => out,
    async stop(graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        const result = await exit;
        clearTimeout(timer);
        return result;
      }
      return exit;
    },
  };
}
