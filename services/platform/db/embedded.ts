import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { unaccent } from "@electric-sql/pglite/contrib/unaccent";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

/** Where a client reaches a PostgreSQL server: a TCP host/port or a unix-socket directory. */
export interface PgEndpoint {
  host: string;
  port: number;
}

export interface EmbeddedPostgres {
  endpoint: PgEndpoint;
  close(): Promise<void>;
}

const SOCKET_PORT = 5432;
// sun_path is 108 bytes on Linux; keep a margin for ".s.PGSQL.5432".
const MAX_SOCKET_DIR = 90;

/** The unix-socket directory an embedded database of `dataDir` listens on (also used by the CLI to find it). */
export function embeddedSocketDir(dataDir: string): string {
  return path.join(dataDir, "run");
}

/**
 * Embedded PostgreSQL (PGlite 0.5 with pgvector and unaccent) persisted under `<dataDir>/pg`, served over the
 * PostgreSQL wire protocol so that the app keeps one driver (pg through MikroORM) in both modes. It listens on a
 * unix socket in `<dataDir>/run` (reachable only by this OS user); on a path too long for a socket it falls back to
 * 127.0.0.1 on a random port. PGlite runs one query at a time and deadlocks when a query on another connection is
 * awaited inside an open transaction: stores must keep transactions on a single connection.
 */
export async function startEmbeddedPostgres(dataDir: string, maxConnections: number): Promise<EmbeddedPostgres> {
  const pgDir = path.join(dataDir, "pg");
  await fs.mkdir(pgDir, { recursive: true, mode: 0o700 });
  const db = await PGlite.create({ dataDir: pgDir, extensions: { vector, unaccent } });
  const socketDir = embeddedSocketDir(dataDir);
  let server: PGLiteSocketServer;
  let endpoint: PgEndpoint;
  if (socketDir.length <= MAX_SOCKET_DIR) {
    await fs.mkdir(socketDir, { recursive: true, mode: 0o700 });
    const socketPath = path.join(socketDir, `.s.PGSQL.${SOCKET_PORT}`);
    await removeStaleSocket(socketPath);
    server = new PGLiteSocketServer({ db, path: socketPath, maxConnections });
    await server.start();
    endpoint = { host: socketDir, port: SOCKET_PORT };
  } else {
    server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections });
    await server.start();
    const [host, port] = server.getServerConn().split(":");
    endpoint = { host: host ?? "127.0.0.1", port: Number(port) };
  }
  return {
    endpoint,
    async close() {
      await server.stop();
      await db.close();
    },
  };
}

/** True when something answers on the embedded socket of `dataDir` (a running platform). */
export async function embeddedServerRunning(dataDir: string): Promise<boolean> {
  const socketPath = path.join(embeddedSocketDir(dataDir), `.s.PGSQL.${SOCKET_PORT}`);
  return new Promise((resolve) => {
    const sock = net.connect(socketPath);
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  const dir = path.dirname(path.dirname(socketPath));
  if (await embeddedServerRunning(dir)) {
    throw new Error(`Another Passerelle process is using the embedded database in ${dir}; stop it first.`);
  }
  await fs.rm(socketPath, { force: true });
}
