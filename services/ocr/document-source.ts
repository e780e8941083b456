import { ocrError } from "./errors.js";

/** The document's bytes and what the client said they are. */
export interface LoadedDocument {
  bytes: Uint8Array;
  /** The declared media type (data URL, Content-Type, or the request's field); "" when none. */
  declaredMime: string;
}

export interface SourceOptions {
  /** Largest decoded document, in bytes (413 above). */
  maxBytes: number;
  /** URL prefixes the gateway may fetch; empty = none. */
  allowlist: readonly string[];
  /** Longest wait for a remote document. Default 30 s. */
  fetchTimeoutMs?: number;
  /** Injected in tests; the global fetch (undici) otherwise. */
  fetch?: typeof fetch;
}

const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

function tooLarge(size: number, max: number, param: string) {
  return ocrError("FILE_TOO_LARGE", `The document is ${size} bytes; the largest accepted is ${max} bytes.`, param);
}

/**
 * A `data:` URL's bytes. Only base64 data URLs are read (a percent-encoded binary file is not something clients
 * send); the size is checked on the encoded length first, so that an oversized document is refused before it is
 * decoded.
 */
export function decodeDataUrl(url: string, maxBytes: number, param: string): LoadedDocument {
  const comma = url.indexOf(",");
  if (comma < 0) throw ocrError("INVALID_DOCUMENT_URL", "The data URL has no ',' before its data.", param);
  const header = url.slice(5, comma).split(";");
  if (!header.slice(1).some((p) => p.trim().toLowerCase() === "base64")) {
    throw ocrError("INVALID_DOCUMENT_URL", "Only base64 data URLs are read ('data:<type>;base64,<data>').", param);
  }
  const data = url.slice(comma + 1).replace(/\s+/g, "");
  const estimate = Math.floor((data.length * 3) / 4) - (data.endsWith("==") ? 2 : data.endsWith("=") ? 1 : 0);
  if (estimate > maxBytes) throw tooLarge(estimate, maxBytes, param);
  if (!BASE64.test(data)) throw ocrError("INVALID_DOCUMENT_URL", "The data URL's data is not valid base64.", param);
  const bytes = new Uint8Array(Buffer.from(data, "base64"));
  if (bytes.length === 0) throw ocrError("EMPTY_DOCUMENT", "The document is empty.", param);
  return { bytes, declaredMime: (header[0] ?? "").trim().toLowerCase() };
}

/** Whether `url` falls under one of the prefixes: same origin, and a path starting with the prefix's. */
export function allowedBy(url: URL, allowlist: readonly string[]): boolean {
  return allowlist.some((entry) => {
    const prefix = new URL(entry);
    return url.origin === prefix.origin && url.pathname.startsWith(prefix.pathname);
  });
}

/**
 * Fetches an allowed remote document. Redirects are refused (they could lead outside the allow-list), the body is
 * read up to the size limit and no further.
 */
async function fetchDocument(url: URL, opts: SourceOptions, param: string, signal: AbortSignal) {
  const timeout = AbortSignal.timeout(opts.fetchTimeoutMs ?? 30_000);
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(url, { redirect: "manual", signal: AbortSignal.any([signal, timeout]) });
  } catch (e) {
    if (signal.aborted) throw e;
    const why = timeout.aborted ? "did not answer in time" : "could not be reached";
    throw ocrError("DOCUMENT_URL_UNREACHABLE", `The document URL ${why}.`, param);
  }
  if (res.status < 200 || res.status >= 300) {
    await res.body?.cancel().catch(() => {});
    throw ocrError("DOCUMENT_URL_UNREACHABLE", `Fetching the document URL answered HTTP ${res.status}.`, param);
  }
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > opts.maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge(declared, opts.maxBytes, param);
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      size += chunk.byteLength;
      if (size > opts.maxBytes) {
        await res.body.cancel().catch(() => {});
        throw tooLarge(size, opts.maxBytes, param);
      }
      parts.push(chunk);
    }
  }
  if (size === 0) throw ocrError("EMPTY_DOCUMENT", "The document at the URL is empty.", param);
  return { bytes: new Uint8Array(Buffer.concat(parts)), declaredMime: res.headers.get("content-type") ?? "" };
}

/**
 * The bytes of a document given as a URL: `data:` URLs always; http(s) URLs only under the allow-list, because a
 * gateway that fetches any URL it is given can be made to reach internal services (SSRF).
 */
export async function loadUrl(
  raw: string,
  opts: SourceOptions,
  param: string,
  signal: AbortSignal,
): Promise<LoadedDocument> {
  if (/^data:/i.test(raw)) return decodeDataUrl(raw, opts.maxBytes, param);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw ocrError("INVALID_DOCUMENT_URL", "The document URL must be a data: URL or an http(s) URL.", param);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw ocrError("INVALID_DOCUMENT_URL", "The document URL must be a data: URL or an http(s) URL.", param);
  }
  if (!allowedBy(url, opts.allowlist)) {
    throw ocrError(
      "DOCUMENT_URL_NOT_ALLOWED",
      "This gateway does not fetch documents from this URL; send the document as a base64 data: URL " +
        "('data:application/pdf;base64,…').",
      param,
    );
  }
  return fetchDocument(url, opts, param, signal);
}
