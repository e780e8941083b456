import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { RerankService } from "../../gen/passerelle/rerank/v1/rerank_service_pb.js";
import { clientAs, TEST_PRINCIPAL } from "../../test/support/principal.js";
import type { AdmitInput, Outcome } from "../governance/governor.js";
import type { ChatModel, ProviderRoute, UpstreamClient } from "../inference/index.js";
import { UpstreamError } from "../inference/index.js";
import { createProviderRouter } from "../inference/provider-router.js";
import { modelNotFound } from "../models/registry.js";
import { createRerankService } from "./rerank-service.js";
import { countRerankTokens } from "./upstream-json.js";

/**
 * RerankService through a Connect client over the router transport (real serialization, real provider router), with
 * hand-written fakes of the external systems: the upstream HTTP servers, and a governor that records what it is told
 * (limits and the ledger have their own tests).
 */

const principal = TEST_PRINCIPAL;

const provider = (id: string, type: string): ProviderRoute => ({
  id,
  type,
  baseUrl: `http://${id}.invalid:8000`,
  upstreamModel: `up-${id}`,
  timeoutSeconds: 30,
  weight: 1,
  maxConcurrency: 0,
});

const model = (name: string, type: string, providers: ProviderRoute[], price = 0): ChatModel => ({
  name,
  type,
  costPromptPerMillion: price,
  costCompletionPerMillion: 0,
  providers,
});

const MODELS: Record<string, ChatModel> = {
  tei: model("tei", "text-classification", [provider("t", "tei")]),
  vllm: model("vllm", "text-classification", [provider("v", "vllm")]),
  // A TEI that fails, picked first (its weight makes it the least loaded), then a vLLM: failover crosses dialects.
  mixed: model("mixed", "text-classification", [{ ...provider("bad", "tei"), weight: 100 }, provider("good", "vllm")]),
  priced: model("priced", "text-classification", [provider("p", "tei")], 1),
  chat: model("chat", "text-generation", [provider("c", "vllm")]),
};

/** The score a fake upstream gives: the document's length, so that order can be predicted. */
const scoreOf = (d: string) => d.length / 100;

interface Call {
  baseUrl: string;
  path: string;
  body: Record<string, unknown>;
}

function fakeUpstream(opts: { answer?: (call: Call) => unknown } = {}) {
  const calls: Call[] = [];
  const client: UpstreamClient = {
    async postJson(target, path, body) {
      const call = { baseUrl: target.baseUrl, path, body: body as Record<string, unknown> };
      calls.push(call);
      if (call.baseUrl.includes("bad.")) {
        throw new UpstreamError({ kind: "http", status: 503, message: "overloaded", body: null });
      }
      const custom = opts.answer?.(call);
      if (custom !== undefined) return { status: 200, body: custom };
      if (path === "/rerank") {
        const texts = call.body.texts as string[];
        return { status: 200, body: texts.map((t, index) => ({ index, score: scoreOf(t) })) };
      }
      const docs = call.body.documents as string[];
      const results = docs.map((d, index) => ({ index, relevance_score: scoreOf(d) })).reverse();
      return { status: 200, body: { results, usage: { total_tokens: 7 } } };
    },
    postForm: () => Promise.reject(new Error("unused")),
    getJson: () => Promise.reject(new Error("unused")),
    postStream: () => {
      throw new Error("unused");
    },
    close: async () => {},
  };
  return { client, calls };
}

/** `needs`: what the governor answers to needsPromptTokens (whether a token limit or a budget needs the count). */
function setup(upstream: UpstreamClient, opts: { limited?: boolean; needs?: boolean | Promise<boolean> } = {}) {
  const { limited = false, needs = false } = opts;
  const asked: unknown[][] = [];
  const admitted: AdmitInput[] = [];
  const finished: Outcome[] = [];
  const service = createRerankService({
    models: {
      resolve: async (name) => {
        const m = MODELS[name];
        if (!m) throw modelNotFound(name);
        return {
          model: m,
          limits: limited
            ? { requestsPerMinute: 10, requestsPerDay: null, tokensPerMinute: null, tokensPerDay: null }
            : null,
        };
      },
    },
    upstream,
    router: createProviderRouter({
      queueTimeoutMs: 1000,
      ejectAfterFailures: 100,
      cooldownMs: 60_000,
      probe: async () => true,
    }),
    governor: {
      refusedBeforeAdmission: () => {},
      mayForwardEarly: () => false,
      needsPromptTokens: (...args) => {
        asked.push(args);
        return needs;
      },
      admit: async (input) => {
        admitted.push(input);
        return {
          usageId: "usage-1",
          headers: { "x-ratelimit-limit-requests": "10" },
          finish: (o) => {
            finished.push(o);
            return { cost: 0.5, carbon: { kWh: { min: 1, max: 2 }, kgCO2eq: { min: 3, max: 4 } } };
          },
        };
      },
    },
    maxAttempts: 3,
    connectTimeoutMs: 1000,
    idleTimeoutMs: 1000,
  });
  return { client: clientAs(RerankService, service, principal), admitted, finished, asked };
}

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}
const reasonOf = (e: ConnectError) => e.findDetails(ErrorInfoSchema)[0]?.reason;

const DOCS = ["a", "ccc", "bb", "dddd"];

describe("RerankService", () => {
  it("asks TEI in its dialect, counts the tokens itself, and answers sorted with usage, cost and carbon", async () => {
    const up = fakeUpstream();
    const { client, admitted, finished } = setup(up.client);
    const res = await client.rerank({ model: "tei", query: "q", documents: DOCS, extra: { truncate: true } });
    expect(up.calls).toEqual([
      {
        baseUrl: "http://t.invalid:8000",
        path: "/rerank",
        body: { truncate: true, query: "q", texts: DOCS, raw_scores: false },
      },
    ]);
    expect(res.id).toBe("usage-1");
    expect(res.model).toBe("tei");
    expect(res.results.map((r) => [r.index, r.relevanceScore])).toEqual([
      [3, 0.04],
      [1, 0.03],
      [2, 0.02],
      [0, 0.01],
    ]);
    expect(res.results.every((r) => r.document === undefined)).toBe(true);
    const tokens = countRerankTokens("q", DOCS);
    expect(res.usage).toMatchObject({ promptTokens: tokens, totalTokens: tokens, cost: 0.5 });
    expect(res.usage?.carbon?.kwh).toMatchObject({ min: 1, max: 2 });
    // No limits and no price: nothing to reserve, so nothing counted before forwarding.
    expect(admitted).toMatchObject([{ endpoint: "rerank", promptTokens: 0, maxCompletionTokens: 0 }]);
    expect(finished).toMatchObject([{ status: 200, promptTokens: tokens, completionTokens: 0 }]);
    expect(finished[0]?.servedBy?.id).toBe("t");
  });

  it("asks TEI in slices of at most 32 texts, and places each slice's scores at its documents", async () => {
    const up = fakeUpstream();
    const { client } = setup(up.client);
    const docs = Array.from({ length: 70 }, (_, i) => "x".repeat(i % 7 === 0 ? 90 - i : 1));
    const res = await client.rerank({ model: "tei", query: "q", documents: docs, topN: 3 });
    expect(up.calls.map((c) => (c.body.texts as string[]).length)).toEqual([32, 32, 6]);
    expect(up.calls[1]?.body.texts).toEqual(docs.slice(32, 64));
    // The longest documents score highest: 0 (90), 7 (83), 14 (76).
    expect(res.results.map((r) => r.index)).toEqual([0, 7, 14]);
  });

  it("asks vLLM with its upstream model and top_n, bills its usage, and cuts and sorts whatever it answered", async () => {
    // An upstream that ignores top_n and answers in document order.
    const up = fakeUpstream();
    const { client, finished } = setup(up.client);
    const res = await client.rerank({ model: "vllm", query: "q", documents: DOCS, topN: 2, user: "end-user" });
    expect(up.calls[0]).toMatchObject({
      path: "/v2/rerank",
      body: { model: "up-v", query: "q", documents: DOCS, top_n: 2, user: "end-user" },
    });
    expect(res.results.map((r) => r.index)).toEqual([3, 1]);
    expect(res.usage).toMatchObject({ promptTokens: 7, totalTokens: 7 });
    expect(finished).toMatchObject([{ status: 200, promptTokens: 7 }]);
  });

  it("answers all results for a top_n larger than the list, and echoes documents when asked", async () => {
    const { client } = setup(fakeUpstream().client);
    const res = await client.rerank({ model: "vllm", query: "q", documents: DOCS, topN: 50, returnDocuments: true });
    expect(res.results.map((r) => [r.index, r.document])).toEqual([
      [3, "dddd"],
      [1, "ccc"],
      [2, "bb"],
      [0, "a"],
    ]);
  });

  it("counts before forwarding when the governor needs it, and passes the rate-limit headers on", async () => {
    const limited = setup(fakeUpstream().client, { limited: true, needs: true });
    const headers = new Headers();
    await limited.client.rerank(
      { model: "vllm", query: "hello", documents: DOCS },
      {
        onHeader: (h) => {
          for (const [k, v] of h) headers.set(k, v);
        },
      },
    );
    expect(limited.admitted[0]?.promptTokens).toBe(countRerankTokens("hello", DOCS));
    expect(limited.asked).toEqual([[principal, MODELS.vllm, expect.objectContaining({ requestsPerMinute: 10 })]]);
    expect(headers.get("x-ratelimit-limit-requests")).toBe("10");
    // A free model the role does not limit, for a caller whose key has a token limit or who has a budget: the
    // governor's answer decides (a promise when it had to look the budget up).
    const keyLimited = setup(fakeUpstream().client, { needs: Promise.resolve(true) });
    await keyLimited.client.rerank({ model: "tei", query: "hello", documents: DOCS });
    expect(keyLimited.admitted[0]?.promptTokens).toBe(countRerankTokens("hello", DOCS));
    expect(keyLimited.asked).toEqual([[principal, MODELS.tei, null]]);
  });

  it("fails over to another provider, switching dialect", async () => {
    const up = fakeUpstream();
    const { client, finished } = setup(up.client);
    const res = await client.rerank({ model: "mixed", query: "q", documents: DOCS });
    expect(up.calls.map((c) => c.path)).toEqual(["/rerank", "/v2/rerank"]);
    expect(res.results).toHaveLength(4);
    expect(finished).toHaveLength(1);
    expect(finished[0]?.servedBy?.id).toBe("good");
  });

  it("refuses bad requests before any upstream call or admission", async () => {
    const up = fakeUpstream();
    const { client, admitted } = setup(up.client);
    const cases: [Parameters<typeof client.rerank>[0], string][] = [
      [{ query: "q", documents: DOCS }, "model"],
      [{ model: "tei", query: " ", documents: DOCS }, "query"],
      [{ model: "tei", query: "q", documents: [] }, "documents"],
      [{ model: "tei", query: "q", documents: DOCS, topN: 0 }, "top_n"],
    ];
    for (const [req, field] of cases) {
      const err = await rejection(client.rerank(req));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toContain(`'${field}'`);
    }
    const wrong = await rejection(client.rerank({ model: "chat", query: "q", documents: DOCS }));
    expect(wrong.code).toBe(Code.InvalidArgument);
    expect(reasonOf(wrong)).toBe("WRONG_MODEL_TYPE");
    expect((await rejection(client.rerank({ model: "nope", query: "q", documents: DOCS }))).code).toBe(Code.NotFound);
    expect(up.calls).toHaveLength(0);
    expect(admitted).toHaveLength(0);
  });

  it("turns an untrustworthy upstream answer into Unavailable, and records the failure once", async () => {
    const up = fakeUpstream({ answer: () => [{ index: 7, score: 1 }] });
    const { client, finished } = setup(up.client);
    const err = await rejection(client.rerank({ model: "tei", query: "q", documents: DOCS }));
    expect(err.code).toBe(Code.Unavailable);
    expect(reasonOf(err)).toBe("UPSTREAM_PROTOCOL_ERROR");
    expect(finished).toHaveLength(1);
    expect(finished[0]).toMatchObject({ status: 503, errorCode: "Unavailable", promptTokens: 0 });
    expect(finished[0]?.servedBy?.id).toBe("t");
  });

  it("passes an upstream's 4xx through as InvalidArgument, recorded with the upstream's status", async () => {
    const up = fakeUpstream();
    up.client.postJson = async () => {
      throw new UpstreamError({ kind: "http", status: 422, message: "texts too long", body: null });
    };
    const { client, finished } = setup(up.client);
    const err = await rejection(client.rerank({ model: "tei", query: "q", documents: DOCS }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(finished).toMatchObject([{ status: 422 }]);
  });
});
