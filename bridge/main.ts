import { randomUUID } from "node:crypto";
import { createConnectTransport } from "@connectrpc/connect-node";
import Fastify from "fastify";
import pino from "pino";
import { bridgePlugin } from "./app.js";
import { loadBridgeConfig } from "./config.js";

/**
 * The REST bridge alone, in front of a remote core (PASSERELLE_CORE_URL). It holds no state, so any number of them
 * can run behind a load balancer. The one-process default (`npm start`) mounts the same plugin in the core instead.
 */
async function main(): Promise<void> {
  const config = loadBridgeConfig();
  const logger = pino({
    level: config.logLevel,
    redact: { paths: ["req.headers.authorization", "headers.authorization"], censor: "[redacted]" },
  });
  const transport = createConnectTransport({ baseUrl: config.coreUrl, httpVersion: config.coreHttpVersion });
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.bodyLimitBytes,
    // A well-formed incoming x-request-id is kept by the bridge plugin; this only names the others.
    genReqId: () => randomUUID(),
  });
  app.get("/health", { schema: { hide: true } }, async () => ({ status: "ok" }));
  await app.register(bridgePlugin, { transport });
  await app.listen({ host: config.host, port: config.port });
  logger.info({ core: config.coreUrl }, "bridge listening");
  const stop = () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`passerelle-bridge: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
