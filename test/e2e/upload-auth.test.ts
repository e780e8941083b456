// The multipart routes read their body outside bodyLimit, part by part: the key must be verified before any part is
// read (a made-up key gets a 401 and costs no buffering), and the text fields are capped to what the forms need.
import { once } from "node:events";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOpenAIError } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

const BOUNDARY = "upload-auth-boundary";
const ROUTES = ["/v1/documents", "/v1/audio/transcriptions"] as const;
const MiB = 1024 * 1024;

/** One text part of a multipart/form-data body. */
const textPart = (name: string, value: string) =>
  `--${BOUNDARY}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;

interface Upload {
  /** The answer, as soon as the server gives it, whether or not the body was sent in full. */
  response: Promise<{ status: number; body: string }>;
  /** Sends body bytes, honouring backpressure. */
  write(chunk: string | Buffer): Promise<void>;
  close(): void;
}

/**
 * Opens a multipart POST announcing `bodyBytes` and leaves the body to the caller. A raw socket, not fetch or
 * node:http, whose clients stop sending (or stop reporting drain) once an answer came: a hostile client does not.
 */
async function openUpload(t: TestPlatform, route: string, key: string, bodyBytes: number): Promise<Upload> {
  const url = new URL(t.httpUrl);
  const socket = net.connect(Number(url.port), url.hostname);
  await once(socket, "connect");
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    let received = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      received = Buffer.concat([received, d]);
      const text = received.toString("utf8");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      const body = received.subarray(Buffer.byteLength(text.slice(0, end + 4)));
      if (body.length >= length) resolve({ status: Number(text.split(" ")[1]), body: body.toString("utf8") });
    });
    socket.on("error", reject);
  });
  socket.write(
    `POST ${route} HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: Bearer ${key}\r\n` +
      `content-type: multipart/form-data; boundary=${BOUNDARY}\r\ncontent-length: ${bodyBytes}\r\n\r\n`,
  );
  return {
    response,
    async write(chunk) {
      if (!socket.write(chunk)) await once(socket, "drain");
    },
    close: () => socket.destroy(),
  };
}

/** `p`, or "no answer" after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | "no answer"> {
  return Promise.race([p, new Promise<"no answer">((r) => setTimeout(() => r("no answer"), ms).unref())]);
}

function expect401(answer: { status: number; body: string } | "no answer") {
  expect(answer).not.toBe("no answer");
  if (answer === "no answer") return;
  expect(answer.status, answer.body).toBe(401);
  const body = JSON.parse(answer.body) as { error: { type: string; code: string | null; message: string } };
  expect(body.error).toMatchObject({ type: "invalid_request_error", param: null });
  expect(body.error.message).toMatch(/API key/);
}

/** A multipart POST of text fields with the admin's key (fetch; the whole body is sent). */
function postFields(t: TestPlatform, route: string, fields: [string, string][]) {
  const form = new FormData();
  for (const [k, v] of fields) form.append(k, v);
  return fetch(`${t.httpUrl}${route}`, {
    method: "POST",
    headers: { authorization: `Bearer ${t.adminKey}` },
    body: form,
  });
}

describe("multipart uploads: key first, bounded fields", () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform({ env: { PASSERELLE_BODY_LIMIT_BYTES: String(MiB) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  for (const route of ROUTES) {
    it(`${route}: a made-up key gets 401 before any part is read`, async () => {
      // The form's first part is sent, then the body stays open: only a check made before reading parts can answer.
      const u = await openUpload(t, route, "sk-not-a-real-key", MiB);
      await u.write(
        `${textPart("model", "whisper-1")}--${BOUNDARY}\r\ncontent-disposition: form-data; name="f"\r\n\r\n`,
      );
      expect401(await within(u.response, 5_000));
      u.close();
    });

    it(`${route}: a made-up key sending 60 MiB of fields gets 401 without the heap growing`, async () => {
      const field = Buffer.from(textPart("f", "x".repeat(MiB - 64)));
      const end = `--${BOUNDARY}--\r\n`;
      const u = await openUpload(t, route, "sk-not-a-real-key", 60 * field.length + end.length);
      global.gc?.();
      const before = process.memoryUsage().heapUsed;
      let peak = before;
      const timer = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }, 5);
      // Sent in full whatever the answer, as a hostile client would.
      for (let i = 0; i < 60; i++) await u.write(field);
      await u.write(end);
      const answer = await within(u.response, 10_000);
      clearInterval(timer);
      expect401(answer);
      // Everything sent was discarded as it came: the old code buffered it all (> 60 MiB).
      expect(peak - before).toBeLessThan(24 * MiB);
      u.close();
    });
  }

  it("refuses an oversized text field with a 400 naming it, on both routes", async () => {
    const big = "x".repeat(40 * 1024);
    const doc = await expectOpenAIError(await postFields(t, "/v1/documents", [["metadata", big]]), 400);
    expect(doc.error).toMatchObject({ type: "invalid_request_error", param: "metadata" });
    expect(doc.error.message).toContain("longer than");
    const audio = await postFields(t, "/v1/audio/transcriptions", [
      ["model", "whisper-1"],
      ["prompt", "x".repeat(20 * 1024)],
    ]);
    const err = await expectOpenAIError(audio, 400);
    expect(err.error).toMatchObject({ type: "invalid_request_error", param: "prompt" });
    expect(err.error.message).toContain("longer than");
  });

  it("refuses more text fields than a form needs with a 400", async () => {
    const many = (n: number) => Array.from({ length: n }, (_, i): [string, string] => [`f${i}`, "x"]);
    for (const [route, n] of [
      ["/v1/documents", 49],
      ["/v1/audio/transcriptions", 25],
    ] as const) {
      const err = await expectOpenAIError(await postFields(t, route, many(n)), 400, "invalid_request_error");
      expect(err.error.message).toContain("too many fields");
    }
  });

  it("still reads the largest metadata allowed, escaped as Python's json.dumps sends it", async () => {
    // 16 keys of 255 non-ASCII characters, each escaped as \uXXXX: about 25 KiB, under the 32 KiB field cap.
    const metadata = `{${Array.from({ length: 16 }, (_, i) => `"key_${i}": "${"\\u00e9".repeat(255)}"`).join(", ")}}`;
    expect(metadata.length).toBeGreaterThan(24 * 1024);
    const r = await postFields(t, "/v1/documents", [
      ["collection", "0190a0a0-0000-7000-8000-000000000000"],
      ["name", "n"],
      ["metadata", metadata],
    ]);
    // Past the form reader: the service answers (collections are not configured on this platform).
    const err = await expectOpenAIError(r, 409);
    expect(err.error.code).toBe("rag_not_configured");
  });
});
