import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { allowedBy, decodeDataUrl, loadUrl } from "./document-source.js";

const reasonOf = (e: unknown) => (e as ConnectError).findDetails(ErrorInfoSchema)[0]?.reason;
const fails = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectError);
    return reasonOf(e);
  }
  throw new Error("expected a refusal");
};

describe("data: URLs", () => {
  it("decodes base64 data URLs with their declared type", () => {
    const doc = decodeDataUrl(`data:Application/PDF;base64,${Buffer.from("%PDF-1.7").toString("base64")}`, 100, "p");
    expect(Buffer.from(doc.bytes).toString()).toBe("%PDF-1.7");
    expect(doc.declaredMime).toBe("application/pdf");
  });

  it("refuses what is not base64, empty documents, and sizes over the limit before decoding", async () => {
    expect(await fails(() => decodeDataUrl("data:text/plain,hello", 100, "p"))).toBe("INVALID_DOCUMENT_URL");
    expect(await fails(() => decodeDataUrl("data:image/png;base64", 100, "p"))).toBe("INVALID_DOCUMENT_URL");
    expect(await fails(() => decodeDataUrl("data:image/png;base64,ab$d", 100, "p"))).toBe("INVALID_DOCUMENT_URL");
    expect(await fails(() => decodeDataUrl("data:image/png;base64,", 100, "p"))).toBe("EMPTY_DOCUMENT");
    const b64 = Buffer.alloc(101).toString("base64");
    expect(await fails(() => decodeDataUrl(`data:;base64,${b64}`, 100, "p"))).toBe("FILE_TOO_LARGE");
    expect(decodeDataUrl(`data:;base64,${Buffer.alloc(100).toString("base64")}`, 100, "p").bytes).toHaveLength(100);
  });
});

describe("the URL allow-list", () => {
  it("admits a URL under a prefix of the same origin only", () => {
    const list = ["https://docs.example.org/public/"];
    expect(allowedBy(new URL("https://docs.example.org/public/a.pdf"), list)).toBe(true);
    expect(allowedBy(new URL("https://docs.example.org/private/a.pdf"), list)).toBe(false);
    expect(allowedBy(new URL("http://docs.example.org/public/a.pdf"), list)).toBe(false);
    expect(allowedBy(new URL("https://docs.example.org.evil.test/public/a.pdf"), list)).toBe(false);
    expect(allowedBy(new URL("https://docs.example.org:8443/public/a.pdf"), list)).toBe(false);
    expect(allowedBy(new URL("https://docs.example.org/public/a.pdf"), [])).toBe(false);
  });
});

describe("remote documents", () => {
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === "/doc.pdf") return res.writeHead(200, { "content-type": "application/pdf" }).end("%PDF-1.7 body");
      if (req.url === "/moved") return res.writeHead(302, { location: "http://169.254.169.254/" }).end();
      if (req.url === "/big") return res.writeHead(200).end(Buffer.alloc(500));
      if (req.url === "/chunked") {
        res.writeHead(200);
        res.write(Buffer.alloc(60));
        return res.end(Buffer.alloc(60));
      }
      return res.writeHead(404).end();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const opts = () => ({ maxBytes: 100, allowlist: [`${base}/`] });
  const signal = new AbortController().signal;

  it("refuses http(s) URLs without an allow-list entry, and other schemes", async () => {
    const none = { maxBytes: 100, allowlist: [] };
    expect(await fails(loadUrl(`${base}/doc.pdf`, none, "p", signal))).toBe("DOCUMENT_URL_NOT_ALLOWED");
    expect(await fails(loadUrl("file:///etc/passwd", opts(), "p", signal))).toBe("INVALID_DOCUMENT_URL");
    expect(await fails(loadUrl("not a url", opts(), "p", signal))).toBe("INVALID_DOCUMENT_URL");
  });

  it("fetches an allowed URL with its content type", async () => {
    const doc = await loadUrl(`${base}/doc.pdf`, opts(), "p", signal);
    expect(Buffer.from(doc.bytes).toString()).toBe("%PDF-1.7 body");
    expect(doc.declaredMime).toBe("application/pdf");
  });

  it("does not follow redirects, and caps the size by header and while reading", async () => {
    expect(await fails(loadUrl(`${base}/moved`, opts(), "p", signal))).toBe("DOCUMENT_URL_UNREACHABLE");
    expect(await fails(loadUrl(`${base}/missing`, opts(), "p", signal))).toBe("DOCUMENT_URL_UNREACHABLE");
    expect(await fails(loadUrl(`${base}/big`, opts(), "p", signal))).toBe("FILE_TOO_LARGE");
    expect(await fails(loadUrl(`${base}/chunked`, opts(), "p", signal))).toBe("FILE_TOO_LARGE");
  });
});
