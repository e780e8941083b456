import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * The bench's processes: the simulator, Passerelle and the ceiling proxy each run in a child process of their own
 * (compiled JavaScript, see build.ts), the load generator in the parent. So each server
 * has its own event loop and its CPU time and memory can be read separately (/proc), and no server shares its
 * event loop with the load generator. Parent and child talk over the IPC channel: `{id, type, payload}` requests,
 * `{id, ok, result | error}` replies.
 */

export type ChildRole = "simulator" | "passerelle" | "ceiling" | "floor";

export interface ChildHandle<Info> {
  readonly role: ChildRole;
  readonly pid: number;
  /** What the child reported once ready (its URL, …). */
  readonly info: Info;
  call<T = unknown>(type: string, payload?: unknown): Promise<T>;
  /** Asks the child to close its server and exit; kills it after a grace period. */
  stop(): Promise<void>;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

const SOURCE_CHILD = fileURLToPath(new URL("./child.ts", import.meta.url));

/**
 * `script`: the compiled child.js (see build.ts), run like production (`node`, no source maps); without it,
 * child.ts from source through tsx. `nodeFlags`: Node options for the child (Passerelle gets `npm start`'s).
 */
export async function startChild<Info>(
  role: ChildRole,
  config: unknown,
  opts: { script?: string; env?: Record<string, string>; startTimeoutMs?: number; nodeFlags?: string[] } = {},
): Promise<ChildHandle<Info>> {
  const child: ChildProcess = fork(opts.script ?? SOURCE_CHILD, [role], {
    execArgv: [...(opts.script ? [] : ["--import", "tsx"]), ...(opts.nodeFlags ?? [])],
    env: { ...process.env, ...opts.env },
    // stdout ignored: Passerelle logs one line per request at the production default level (info); writing it to
    // /dev/null keeps the serialization cost in the measurement without a pipe to drain.
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited = false;
  const info = await new Promise<Info>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`bench: the ${role} process did not start within ${opts.startTimeoutMs ?? 60_000} ms`));
    }, opts.startTimeoutMs ?? 60_000);
    child.on("message", (msg: { type?: string; info?: Info; error?: string } & Partial<Reply>) => {
      if (msg.type === "ready") {
        clearTimeout(timer);
        resolve(msg.info as Info);
      } else if (msg.type === "failed") {
        clearTimeout(timer);
        reject(new Error(`bench: the ${role} process failed to start: ${msg.error}`));
      } else if (typeof msg.id === "number") {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.ok) p?.resolve(msg.result);
        else p?.reject(new Error(`${role}: ${msg.error}`));
      }
    });
    child.once("exit", (code, signal) => {
      exited = true;
      clearTimeout(timer);
      const err = new Error(`bench: the ${role} process exited (${signal ?? code})`);
      reject(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
    child.send({ type: "start", config });
  });
  return {
    role,
    pid: child.pid as number,
    info,
    call<T>(type: string, payload?: unknown) {
      if (exited) return Promise.reject(new Error(`bench: the ${role} process is gone`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, type, payload });
      });
    },
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      const kill = setTimeout(() => child.kill("SIGKILL"), 15_000);
      try {
        if (child.connected) child.send({ id: 0, type: "close" });
        else child.kill("SIGTERM");
      } catch {
        child.kill("SIGTERM");
      }
      await gone;
      clearTimeout(kill);
    },
  };
}
