/** Settings of the REST bridge when it runs apart from the core (`npm run start:bridge`). */
export interface BridgeConfig {
  readonly host: string;
  readonly port: number;
  /** Base URL of the core's Connect endpoint, e.g. http://core:8081 (h2c) or http://core:8080 (HTTP/1.1). */
  readonly coreUrl: string;
  /** "2" for the core's h2c port, "1.1" for its HTTP/1.1 port. */
  readonly coreHttpVersion: "1.1" | "2";
  readonly bodyLimitBytes: number;
  readonly logLevel: string;
}

export function loadBridgeConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<BridgeConfig> = {},
): BridgeConfig {
  const coreUrl = env.PASSERELLE_CORE_URL?.trim();
  if (!coreUrl) throw new Error("PASSERELLE_CORE_URL is required to run the bridge alone (e.g. http://127.0.0.1:8081)");
  try {
    new URL(coreUrl);
  } catch {
    throw new Error(`PASSERELLE_CORE_URL is not a URL: ${coreUrl}`);
  }
  const version = env.PASSERELLE_CORE_HTTP_VERSION?.trim() || "2";
  if (version !== "1.1" && version !== "2") throw new Error("PASSERELLE_CORE_HTTP_VERSION must be 1.1 or 2");
  const port = Number(env.PASSERELLE_HTTP_PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error("PASSERELLE_HTTP_PORT must be a port number");
  const limit = Number(env.PASSERELLE_BODY_LIMIT_BYTES ?? 8 * 1024 * 1024);
  if (!Number.isInteger(limit) || limit < 1024)
    throw new Error("PASSERELLE_BODY_LIMIT_BYTES must be an integer ≥ 1024");
  return Object.freeze({
    host: env.PASSERELLE_HTTP_HOST?.trim() || "0.0.0.0",
    port,
    coreUrl,
    coreHttpVersion: version,
    bodyLimitBytes: limit,
    logLevel: env.PASSERELLE_LOG_LEVEL?.trim() || "info",
    ...overrides,
  });
}

/** The default largest upload, 20 MiB: the core's default for PASSERELLE_RAG_MAX_FILE_BYTES. */
export const DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024;

/**
 * The largest file `POST /v1/documents` reads (PASSERELLE_RAG_MAX_FILE_BYTES, the variable the core reads for the
 * same limit, default 20 MiB); a larger one is answered 413 before it reaches the core.
 */
export function maxFileBytesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.PASSERELLE_RAG_MAX_FILE_BYTES?.trim();
  if (!raw) return DEFAULT_MAX_FILE_BYTES;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024 * 1024 * 1024)
    throw new Error("PASSERELLE_RAG_MAX_FILE_BYTES must be an integer between 1 and 1073741824");
  return n;
}
