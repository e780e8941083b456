import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport, type Interceptor } from "@connectrpc/connect";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { TextInputsSchema, TokenInputsSchema } from "../../gen/passerelle/embeddings/v1/embeddings_pb.js";
import {
  type CreateEmbeddingsRequest,
  EmbeddingsService,
} from "../../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { TEST_PRINCIPAL } from "../../test/support/principal.js";
import type { BudgetStore } from "../governance/budget-store.js";
import { createGovernor, type Governor } from "../governance/governor.js";
import { createMemoryLimiter } from "../governance/limiter/memory-limiter.js";
import type { UsageBuffer } from "../governance/usage-buffer.js";
import type { ChatModel, ProviderRoute, UpstreamClient } from "../inference/index.js";
import { UpstreamError } from "../inference/index.js";
import { createProviderRouter } from "../inference/provider-router.js";
import { modelNotFound } from "../models/registry.js";
import { kPrincipal, type Principal } from "../platform/context.js";
import { createEmbeddingsService } from "./embeddings-service.js";

/**
 * EmbeddingsService through a Connect client over the router transport (real serialization, real provider router),
 * with a hand-written fake of the one external system: the upstream HTTP servers.
 */

const principal = TEST_PRINCIPAL;

const provider = (id: string): ProviderRoute => ({
  id,
  baseUrl: `http://${id}.invalid:8000`,
  upstreamModel: "up-embed",
  timeoutSeconds: 30,
  weight: 1,
  maxConcurrency: 0,
});

const MODELS: Record<string, ChatModel> = {
  embed: {
    name: "embed",
    type: "text-embeddings-inference",
    costPromptPerMillion: 0,
    costCompletionPerMillion: 0,
    providers: [provider("a"), provider("b")],
  },
  chat: {
    name: "chat",
    type: "text-generation",
    costPromptPerMillion: 0,
    costCompletionPerMillion: 0,
    providers: [provider("c")],
  },
};

/** A deterministic vector per input, so that order can be checked. */
const vectorOf = (item: unknown) => {
  const seed = JSON.stringify(item).length + (typeof item === "string" ? Number(item.replace(/\D/g, "") || 0) : 0);
  return [seed, seed / 2, -seed];
};

interface Call {
  baseUrl: string;
  body: Record<string, unknown>;
}

/** Answers like vLLM, data reversed (indexes tell the order); `fail` picks calls to fail with an UpstreamError. */
function fakeUpstream(opts: { fail?: (call: Call, n: number) => UpstreamError | undefined; delayMs?: number } = {}) {
  const calls: Call[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let aborted = 0;
  const client: UpstreamClient = {
    async postJson(target, path, body, signal) {
      expect(path).toBe("/v1/embeddings");
      const call = { baseUrl: target.baseUrl, body: body as Record<string, unknown> };
      const n = calls.push(call);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            clearTimeout(timer);
            aborted++;
            reject(new UpstreamError({ kind: "aborted", message: "aborted" }));
          };
          const timer = setTimeout(() => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          }, opts.delayMs ?? 1);
          signal?.addEventListener("abort", onAbort, { once: true });
        });
        const failure = opts.fail?.(call, n);
        if (failure) throw failure;
        const input = call.body.input as unknown[];
        const data = input.map((item, index) => ({ object: "embedding", index, embedding: vectorOf(item) })).reverse();
        return {
          status: 200,
          body: { object: "list", data, usage: { prompt_tokens: input.length * 2, total_tokens: input.length * 2 } },
        };
      } finally {
        inFlight--;
      }
    },
    getJson: () => Promise.reject(new Error("unused")),
    postForm: () => Promise.reject(new Error("unused")),
    postStream: () => {
      throw new Error("unused");
    },
    close: async () => {},
  };
  return { client, calls, stats: () => ({ maxInFlight, aborted }) };
}

function setup(
  upstream: UpstreamClient,
  settings: { maxBatch?: number; concurrency?: number; governor?: Governor; principal?: Principal } = {},
) {
  const router = createProviderRouter({
    queueTimeoutMs: 1000,
    ejectAfterFailures: 100,
    cooldownMs: 60_000,
    probe: async () => true,
  });
  const service = createEmbeddingsService({
    models: {
      resolve: async (name) => {
        const m = MODELS[name];
        if (!m) throw modelNotFound(name);
        return { model: m, limits: null };
      },
    },
    upstream,
    router,
    // Admits everything unless told otherwise: limits, budgets and the ledger have their own tests
    // (services/governance, test/e2e).
    governor: settings.governor ?? {
      refusedBeforeAdmission: () => {},
      mayForwardEarly: () => false,
      needsPromptTokens: () => true,
      admit: async () => ({
        usageId: "u",
        headers: {},
        finish: () => ({ cost: 0, carbon: { kWh: { min: 0, max: 0 }, kgCO2eq: { min: 0, max: 0 } } }),
      }),
    },
    maxAttempts: 3,
    connectTimeoutMs: 1000,
    idleTimeoutMs: 1000,
    maxBatch: settings.maxBatch ?? 64,
    concurrency: settings.concurrency ?? 4,
  });
  const authenticate: Interceptor = (next) => (req) => {
    req.contextValues.set(kPrincipal, settings.principal ?? principal);
    return next(req);
  };
  const transport = createRouterTransport((r) => r.service(EmbeddingsService, service), {
    router: { interceptors: [authenticate] },
  });
  return { client: createClient(EmbeddingsService, transport), router };
}

const texts = (list: string[]): CreateEmbeddingsRequest["input"] => ({
  case: "texts",
  value: create(TextInputsSchema, { texts: list }),
});

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}
const reasonOf = (e: ConnectError) => e.findDetails(ErrorInfoSchema)[0]?.reason;

describe("EmbeddingsService", () => {
  it("sends the list form upstream, always as float, with only what the client set plus its extras", async () => {
    const up = fakeUpstream();
    const { client } = setup(up.client);
    const res = await client.createEmbeddings({
      model: "embed",
      input: texts(["x1"]),
      dimensions: 3,
      encodingFormat: 2,
      extra: { truncate_prompt_tokens: 8 },
    });
    expect(up.calls[0]?.body).toEqual({
      model: "up-embed",
      input: ["x1"],
      encoding_format: "float",
      dimensions: 3,
      truncate_prompt_tokens: 8,
    });
    expect(res.model).toBe("embed");
    expect(res.data.map((d) => [d.index, d.embedding])).toEqual([[0, vectorOf("x1")]]);
    expect(res.usage).toMatchObject({ promptTokens: 2, totalTokens: 2 });

    await client.createEmbeddings({
      model: "embed",
      input: { case: "tokens", value: create(TokenInputsSchema, { inputs: [{ ids: [1, 2] }, { ids: [3] }] }) },
    });
    expect(up.calls[1]?.body).toEqual({ model: "up-embed", input: [[1, 2], [3]], encoding_format: "float" });
  });

  it("splits large inputs into batches run a few at a time, reassembled in order with summed usage", async () => {
    const up = fakeUpstream({ delayMs: 5 });
    const { client } = setup(up.client, { maxBatch: 10, concurrency: 3 });
    const items = Array.from({ length: 95 }, (_, i) => `item ${i}`);
    const res = await client.createEmbeddings({ model: "embed", input: texts(items) });
    expect(up.calls.map((c) => (c.body.input as string[]).length)).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 5]);
    expect(up.calls.flatMap((c) => c.body.input as string[])).toEqual(items);
    expect(up.stats().maxInFlight).toBe(3);
    expect(res.data.map((d) => d.index)).toEqual(items.map((_, i) => i));
    // float32 on the wire: compare with what the fake sent, rounded the same way.
    expect(res.data.map((d) => d.embedding)).toEqual(items.map((it) => vectorOf(it).map(Math.fround)));
    expect(res.usage).toMatchObject({ promptTokens: 190, totalTokens: 190 });
  });

  it("retries a failed batch on another provider and fails only when every provider failed", async () => {
    const down = new UpstreamError({ kind: "http", status: 503, message: "busy", body: null });
    const up = fakeUpstream({ fail: (c) => (c.baseUrl.includes("//a.") ? down : undefined) });
    const { client } = setup(up.client, { maxBatch: 2 });
    const res = await client.createEmbeddings({ model: "embed", input: texts(["1", "2", "3", "4", "5"]) });
    expect(res.data).toHaveLength(5);
    expect(up.calls.filter((c) => c.baseUrl.includes("//b.")).length).toBe(3);

    const all = fakeUpstream({ fail: () => down });
    const err = await rejection(setup(all.client).client.createEmbeddings({ model: "embed", input: texts(["1"]) }));
    expect(err.code).toBe(Code.Unavailable);
    expect(all.calls).toHaveLength(2);
  });

  it("does not retry an upstream 4xx, keeps its status, and cancels the other batches", async () => {
    const bad = new UpstreamError({ kind: "http", status: 400, message: "dimensions too large", body: null });
    const up = fakeUpstream({ fail: (_c, n) => (n === 1 ? bad : undefined), delayMs: 50 });
    const { client } = setup(up.client, { maxBatch: 1, concurrency: 4 });
    const err = await rejection(client.createEmbeddings({ model: "embed", input: texts(["1", "2", "3", "4", "5"]) }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe("dimensions too large");
    expect(err.findDetails(ErrorInfoSchema)[0]?.upstreamStatus).toBe(400);
    // The failing call plus the three running beside it (cancelled); the fifth never started.
    expect(up.calls).toHaveLength(4);
    expect(up.stats().aborted).toBe(3);
  });

  it("counts tokens itself for batches whose upstream answer has no usage", async () => {
    const noUsage: UpstreamClient = {
      ...fakeUpstream().client,
      postJson: async (_t, _p, body) => {
        const input = (body as { input: number[][] }).input;
        return { status: 200, body: { data: input.map((_, index) => ({ index, embedding: [index] })) } };
      },
    };
    const { client } = setup(noUsage, { maxBatch: 2 });
    const res = await client.createEmbeddings({
      model: "embed",
      input: {
        case: "tokens",
        value: create(TokenInputsSchema, { inputs: [{ ids: [1, 2] }, { ids: [3] }, { ids: [4] }] }),
      },
    });
    expect(res.usage).toMatchObject({ promptTokens: 4, totalTokens: 4 });
  });

  it("treats an answer that does not fit the request as the upstream's fault", async () => {
    const up = fakeUpstream();
    const short: UpstreamClient = {
      ...up.client,
      postJson: async () => ({ status: 200, body: { data: [{ index: 0, embedding: [1] }] } }),
    };
    const err = await rejection(setup(short).client.createEmbeddings({ model: "embed", input: texts(["1", "2"]) }));
    expect(err.code).toBe(Code.Unavailable);
    expect(reasonOf(err)).toBe("UPSTREAM_PROTOCOL_ERROR");
  });

  it("enforces a key's token limit before forwarding, on a free model the role does not limit", async () => {
    const up = fakeUpstream();
    const governor = createGovernor({
      limiter: createMemoryLimiter(),
      budgets: { mayHaveBudget: () => false } as unknown as BudgetStore,
      buffer: { record: () => undefined } as unknown as UsageBuffer,
      logger: pino({ level: "silent" }),
    });
    const keyLimits = { requestsPerMinute: null, requestsPerDay: null, tokensPerMinute: 50, tokensPerDay: null };
    const { client } = setup(up.client, { governor, principal: { ...principal, keyLimits } });
    const big = Array.from({ length: 10 }, () => Array.from({ length: 100 }, () => "word").join(" "));
    const err = await rejection(client.createEmbeddings({ model: "embed", input: texts(big) }));
    expect([err.code, reasonOf(err)]).toEqual([Code.ResourceExhausted, "RATE_LIMIT_EXCEEDED"]);
    expect(up.calls).toHaveLength(0);
  });

  it("refuses bad requests before calling any upstream", async () => {
    const up = fakeUpstream();
    const { client } = setup(up.client);
    const wrong = await rejection(client.createEmbeddings({ model: "chat", input: texts(["x"]) }));
    expect([wrong.code, reasonOf(wrong)]).toEqual([Code.InvalidArgument, "WRONG_MODEL_TYPE"]);
    const empty = await rejection(client.createEmbeddings({ model: "embed", input: texts([]) }));
    expect([empty.code, empty.findDetails(ErrorInfoSchema)[0]?.param]).toEqual([Code.InvalidArgument, "input"]);
    const none = await rejection(client.createEmbeddings({ model: "embed" }));
    expect(none.code).toBe(Code.InvalidArgument);
    const emptyIds = await rejection(
      client.createEmbeddings({
        model: "embed",
        input: { case: "tokens", value: create(TokenInputsSchema, { inputs: [{ ids: [1] }, { ids: [] }] }) },
      }),
    );
    expect(emptyIds.rawMessage).toMatch(/input\[1\]/);
    const zero = await rejection(client.createEmbeddings({ model: "embed", input: texts(["x"]), dimensions: 0 }));
    expect(zero.findDetails(ErrorInfoSchema)[0]?.param).toBe("dimensions");
    const unknown = await rejection(client.createEmbeddings({ model: "nope", input: texts(["x"]) }));
    expect(unknown.code).toBe(Code.NotFound);
    expect(up.calls).toHaveLength(0);
  });
});
