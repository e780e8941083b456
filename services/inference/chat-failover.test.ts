// What a chat request leaves in the usage ledger, and in its providers' health, when it ends before a chunk reached
// the client: a client leaving while queued for capacity, an error event as a 200 stream's first event.
// InferenceService through a Connect client over the router transport, against small HTTP stubs as upstreams.
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { Role } from "../../gen/passerelle/inference/v1/chat_pb.js";
import { InferenceService } from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { readChatStream } from "../../test/support/chat-stream.js";
import { clientAs } from "../../test/support/principal.js";
import type { Governor, Outcome } from "../governance/index.js";
import { type ChatModel, createInferenceService } from "./inference-service.js";
import { createProviderRouter, type ProviderRoute } from "./provider-router.js";
import { createUpstreamClient } from "./upstream-client.js";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** One upstream: an HTTP server whose answer each test sets. */
async function stub() {
  let handler: Handler = (_q, r) => r.end();
  let requests = 0;
  const server = http.createServer((q, r) => {
    requests++;
    handler(q, r);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    set(h: Handler) {
      handler = h;
      requests = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const CHUNK = (content: string) =>
  `data: ${JSON.stringify({
    id: "c1",
    object: "chat.completion.chunk",
    created: 1,
    model: "up",
    choices: [{ index: 0, delta: { role: "assistant", content }, finish_reason: null }],
  })}\n\n`;

/** A 200 stream: `events` (SSE data lines, already framed), then [DONE]. */
const sse =
  (...events: string[]): Handler =>
  (_q, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    for (const e of events) res.write(e);
    res.end("data: [DONE]\n\n");
  };
const errorEvent = (body: unknown) => `data: ${JSON.stringify(body)}\n\n`;

const route = (id: string, baseUrl: string, maxConcurrency = 0): ProviderRoute => ({
  id,
  baseUrl,
  upstreamModel: "up",
  timeoutSeconds: 10,
  weight: 1,
  maxConcurrency,
});

function setup(providers: ProviderRoute[]) {
  // random 0: the first provider is always tried first.
  const router = createProviderRouter({
    queueTimeoutMs: 30_000,
    ejectAfterFailures: 100,
    cooldownMs: 60_000,
    probe: async () => true,
    random: () => 0,
  });
  const model: ChatModel = {
    name: "chat",
    type: "text-generation",
    costPromptPerMillion: 0,
    costCompletionPerMillion: 0,
    providers,
  };
  const outcomes: Outcome[] = [];
  const governor: Governor = {
    refusedBeforeAdmission: () => {},
    mayForwardEarly: () => false,
    needsPromptTokens: () => false,
    admit: async () => ({
      usageId: "u",
      headers: {},
      finish: (o) => {
        outcomes.push(o);
        return { cost: 0, carbon: { kWh: { min: 0, max: 0 }, kgCO2eq: { min: 0, max: 0 } } };
      },
    }),
  };
  const upstream = createUpstreamClient();
  const service = createInferenceService({
    models: { resolve: async () => ({ model, limits: null }) },
    upstream,
    router,
    governor,
    defaultMaxTokens: 16,
    maxAttempts: 3,
    firstTokenTimeoutMs: 5_000,
    idleTimeoutMs: 5_000,
    connectTimeoutMs: 1_000,
  });
  const client = clientAs(InferenceService, service);
  const params = { model: "chat", messages: [{ role: Role.USER, content: { case: "text" as const, value: "hi" } }] };
  /** Streams a request to its end: the text received, and the error that ended it (if one did). */
  const stream = (signal?: AbortSignal) => readChatStream(client.streamChatCompletion({ params }, { signal }));
  const health = (p: ProviderRoute) => router.snapshotOf([p])[0];
  return { router, client, params, outcomes, stream, health, close: () => upstream.close() };
}

const reasonOf = (e: ConnectError | undefined) => e?.findDetails(ErrorInfoSchema)[0]?.reason;

describe("a client that leaves while queued for a provider's free slot", () => {
  it("is recorded as cancelled (499), not as the model at capacity, and the provider's record is untouched", async () => {
    // Never reached: the request never leaves the queue.
    const p = route("a", "http://127.0.0.1:9", 1);
    const t = setup([p]);
    try {
      // The provider's only slot is taken: the request waits.
      const held = await t.router.acquire([p], new Set());
      const ac = new AbortController();
      const pending = t.client.createChatCompletion({ params: t.params }, { signal: ac.signal }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      for (let i = 0; i < 2000 && t.health(p)?.waiting !== 1; i++) await new Promise((r) => setTimeout(r, 5));
      expect(t.health(p)?.waiting).toBe(1);
      ac.abort();
      expect((await pending)?.code).toBe(Code.Canceled);
      for (let i = 0; i < 2000 && t.outcomes.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(t.outcomes).toMatchObject([{ status: 499, errorCode: "Canceled" }]);
      held.release("ok");
      expect(t.health(p)).toMatchObject({ healthy: true, consecutiveFailures: 0, inFlight: 0, waiting: 0 });
    } finally {
      await t.close();
    }
  });
});

describe("an error event as the first event of a 200 stream (nothing reached the client yet)", () => {
  type Stub = Awaited<ReturnType<typeof stub>>;
  const up: { a?: Stub; b?: Stub } = {};
  let t: ReturnType<typeof setup>;
  let a: ProviderRoute;
  let b: ProviderRoute;
  beforeAll(async () => {
    up.a = await stub();
    up.b = await stub();
    a = route("a", up.a.url);
    b = route("b", up.b.url);
  });
  afterEach(async () => {
    await t?.close();
  });
  afterAll(async () => {
    await up.a?.close();
    await up.b?.close();
  });

  it("is the upstream's 4xx, with its message, not retried and not held against the provider", async () => {
    t = setup([a, b]);
    up.a?.set(
      sse(
        errorEvent({
          error: { message: "max_tokens is too large", type: "BadRequestError", param: "max_tokens", code: 400 },
        }),
      ),
    );
    up.b?.set(sse(CHUNK("from b")));
    const { text, error } = await t.stream();
    expect(text).toBe("");
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toBe("max_tokens is too large");
    expect(error?.findDetails(ErrorInfoSchema)[0]?.param).toBe("max_tokens");
    expect(up.b?.requests()).toBe(0);
    expect(t.outcomes).toMatchObject([{ status: 400 }]);
    expect(t.health(a)).toMatchObject({ consecutiveFailures: 0, inFlight: 0 });
  });

  it("is the upstream's 429 (flat, legacy shape) when no other provider can take it", async () => {
    t = setup([a]);
    up.a?.set(sse(errorEvent({ object: "error", message: "too many requests", type: "RateLimitError", code: 429 })));
    const { error } = await t.stream();
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(t.outcomes).toMatchObject([{ status: 429 }]);
  });

  it("is a server failure on a 5xx: tried on another provider, and counted against the first one's health", async () => {
    t = setup([a, b]);
    up.a?.set(sse(errorEvent({ error: { message: "CUDA out of memory", type: "InternalServerError", code: 500 } })));
    up.b?.set(sse(CHUNK("from b")));
    const { text, error } = await t.stream();
    expect(error).toBeUndefined();
    expect(text).toBe("from b");
    expect(up.a?.requests()).toBe(1);
    expect(t.outcomes).toMatchObject([{ status: 200 }]);
    expect(t.health(a)).toMatchObject({ consecutiveFailures: 1, inFlight: 0 });
    expect(t.health(b)).toMatchObject({ consecutiveFailures: 0, inFlight: 0 });
  });

  it("is a 503 UPSTREAM_ERROR on a 5xx when no other provider can take it", async () => {
    t = setup([a]);
    up.a?.set(sse(errorEvent({ error: { message: "boom", type: "InternalServerError", code: 500 } })));
    const { error } = await t.stream();
    expect(error?.code).toBe(Code.Unavailable);
    expect(reasonOf(error)).toBe("UPSTREAM_ERROR");
    expect(t.outcomes).toMatchObject([{ status: 503 }]);
    expect(t.health(a)).toMatchObject({ consecutiveFailures: 1 });
  });

  it("after the first chunk, still ends the stream with the error (what was sent stays sent)", async () => {
    t = setup([a, b]);
    up.a?.set(sse(CHUNK("partial"), errorEvent({ error: { message: "boom", type: "BadRequestError", code: 400 } })));
    up.b?.set(sse(CHUNK("from b")));
    const { text, error } = await t.stream();
    expect(text).toBe("partial");
    expect(error?.code).toBe(Code.Unavailable);
    expect(reasonOf(error)).toBe("UPSTREAM_STREAM_ERROR");
    expect(up.b?.requests()).toBe(0);
    expect(t.outcomes).toMatchObject([{ status: 503 }]);
  });
});
