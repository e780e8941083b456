import net from "node:net";

/** A TCP proxy in front of a server (PostgreSQL, Redis): cut it to make the server unreachable, then restore it. */
export interface TcpProxy {
  /** `targetUrl` with its host and port replaced by the proxy's (127.0.0.1, a port fixed for the proxy's life). */
  readonly url: string;
  readonly port: number;
  /** Whether it accepts connections now. */
  readonly isUp: boolean;
  /** Connections accepted since the start. */
  readonly accepted: number;
  /** Listens again on the same port (no-op when up). */
  up(): Promise<void>;
  /** Destroys every proxied connection (both ends) and refuses new ones until `up()`: a real outage for a pool. */
  down(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy to the host and port of `targetUrl` (any URL with a host and a port, e.g. `postgresql://…`). */
export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port);
  if (!targetPort) throw new Error(`tcp proxy: ${targetUrl} names no port`);
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  let accepted = 0;

  const up = async () => {
    if (server) return;
    const s = net.createServer((client) => {
      accepted++;
      const upstream = net.connect(targetPort, target.hostname);
      for (const sock of [client, upstream]) {
        sockets.add(sock);
        sock.setNoDelay(true);
        sock.on("error", () => undefined);
        sock.on("close", () => {
          sockets.delete(sock);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => resolve());
    });
    port = (s.address() as net.AddressInfo).port;
    server = s;
  };
  const down = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    await new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()));
  };

  await up();
  const url = new URL(targetUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  return {
    url: url.toString(),
    port,
    get isUp() {
      return server !== undefined;
    },
    get accepted() {
      return accepted;
    },
    up,
    down,
    close: down,
  };
}
