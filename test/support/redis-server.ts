import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * A throwaway redis-server of the test's own (never the shared one of test/ci.sh), so that a test can kill it.
 * No persistence: a restart comes back empty, as a Redis that lost its data would.
 */
export interface TestRedisServer {
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  /** SIGKILL: a crash, connections cut at once. */
  kill(): Promise<void>;
  /** Starts it again on the same port (no-op while running). */
  start(): Promise<void>;
  /** Stops it for good. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (released at once: a small race with other processes, acceptable in tests). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once something answers `PING` with `+PONG` on the port; rejects after `timeoutMs`. */
async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, "127.0.0.1");
      let data = "";
      sock.setTimeout(500, () => sock.destroy());
      sock.on("connect", () => sock.write("PING\r\n"));
      sock.on("data", (d) => {
        data += d.toString();
        if (data.includes("\r\n")) {
          sock.destroy();
          resolve(data.startsWith("+PONG"));
        }
      });
      sock.on("error", () => resolve(false));
      sock.on("close", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Starts `redis-server` (from PATH, or PASSERELLE_TEST_REDIS_SERVER) on a free port. */
export async function startRedisServer(): Promise<TestRedisServer> {
  const port = await freePort();
  const bin = process.env.PASSERELLE_TEST_REDIS_SERVER ?? "redis-server";
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    if (child) return;
    const c = spawn(
      bin,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
      { stdio: "ignore" },
    );
    child = c;
    exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    c.once("exit", () => {
      if (child === c) child = undefined;
    });
    const failed = new Promise<never>((_, reject) => c.once("error", reject));
    await Promise.race([waitForPong(port, 10_000), failed]);
  };
  const kill = async () => {
    const c = child;
    if (!c) return;
    c.kill("SIGKILL");
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined;
    },
    kill,
    start,
    stop: kill,
  };
}
