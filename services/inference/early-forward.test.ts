// Early forwarding (early-forward.ts): a chat call sent upstream while its admission is decided, when the governor
// vouches for it. InferenceService through a Connect client over the router transport, against the vLLM simulator;
// the governor is a gate each test opens or closes, so that the order of admission and upstream work is the test's.
import { getEventListeners } from "node:events";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Role } from "../../gen/passerelle/inference/v1/chat_pb.js";
import { InferenceService } from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { readChatStream } from "../../test/support/chat-stream.js";
import { clientAs } from "../../test/support/principal.js";
import { type Simulator, startSimulator } from "../../test/upstream/simulator.js";
import type { Admission, Governor, Outcome } from "../governance/index.js";
import { rpcError } from "../platform/errors.js";
import { forwardWhileAdmitting } from "./early-forward.js";
import { type ChatModel, createInferenceService } from "./inference-service.js";
import { createProviderRouter, type ProviderRoute } from "./provider-router.js";
import { createUpstreamClient } from "./upstream-client.js";

const CHAT = "/v1/chat/completions";
const HEADERS = { "x-ratelimit-remaining-requests": "41" };

/** An admission decided when the test says so. */
function gate() {
  let open!: (a: Admission) => void;
  let refuse!: (err: unknown) => void;
  const promise = new Promise<Admission>((resolve, reject) => {
    open = resolve;
    refuse = reject;
  });
  return { promise, open, refuse };
}

const refusal = () => rpcError(Code.ResourceExhausted, "Rate limit reached.", "RATE_LIMIT_EXCEEDED");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("early forwarding of chat calls", () => {
  let sim: Simulator;
  let early = true;
  let admission = gate();
  const outcomes: Outcome[] = [];
  const admitted: Admission = {
    usageId: "u",
    headers: HEADERS,
    finish: (o) => {
      outcomes.push(o);
      return { cost: 0, carbon: { kWh: { min: 0, max: 0 }, kgCO2eq: { min: 0, max: 0 } } };
    },
  };
  const governor: Governor = {
    refusedBeforeAdmission: () => {},
    needsPromptTokens: () => false,
    mayForwardEarly: () => early,
    admit: () => admission.promise,
  };
  const router = createProviderRouter({
    queueTimeoutMs: 30_000,
    ejectAfterFailures: 100,
    cooldownMs: 60_000,
    probe: async () => true,
  });
  const upstream = createUpstreamClient();
  let provider: ProviderRoute;
  let client: Client<typeof InferenceService>;
  const params = {
    model: "chat",
    messages: [{ role: Role.USER, content: { case: "text" as const, value: "hi" } }],
  };
  const inFlight = () => router.snapshotOf([provider])[0]?.inFlight;

  beforeAll(async () => {
    sim = await startSimulator({ completionTokens: 4 });
    provider = {
      id: "p1",
      baseUrl: sim.url,
      upstreamModel: "sim-chat",
      timeoutSeconds: 10,
      weight: 1,
      maxConcurrency: 0,
    };
    const model: ChatModel = {
      name: "chat",
      type: "text-generation",
      costPromptPerMillion: 0,
      costCompletionPerMillion: 0,
      providers: [provider],
    };
    const service = createInferenceService({
      models: { resolve: async () => ({ model, limits: null }) },
      upstream,
      router,
      governor,
      defaultMaxTokens: 16,
      maxAttempts: 1,
      firstTokenTimeoutMs: 5_000,
      idleTimeoutMs: 5_000,
      connectTimeoutMs: 1_000,
    });
    client = clientAs(InferenceService, service);
  });
  afterAll(async () => {
    await upstream.close();
    await sim?.close();
  });
  beforeEach(() => {
    sim.reset();
    sim.setOptions({ ttftMs: 0, interTokenMs: 0 });
    early = true;
    admission = gate();
    outcomes.length = 0;
  });

  /** Streams a request to its end: the text received, and the error that ended it (if one did). */
  const stream = (signal?: AbortSignal) => readChatStream(client.streamChatCompletion({ params }, { signal }));

  it("sends a vouched-for call upstream before its admission, and answers only once admitted", async () => {
    sim.setOptions({ ttftMs: 0 });
    let headers: Headers | undefined;
    let answered = false;
    const call = client.createChatCompletion({ params }, { onHeader: (h) => (headers = h) }).finally(() => {
      answered = true;
    });
    await sim.waitUntil(() => sim.stats.completed === 1);
    // The upstream has answered; the admission has not: the client has nothing yet.
    await sleep(20);
    expect(answered).toBe(false);
    admission.open(admitted);
    const res = await call;
    expect(res.completion?.choices[0]?.message?.content).toBeTruthy();
    expect(headers?.get("x-ratelimit-remaining-requests")).toBe("41");
    expect(outcomes).toMatchObject([{ status: 200 }]);
  });

  it("waits for the admission before anything goes upstream when the governor does not vouch", async () => {
    early = false;
    const call = client.createChatCompletion({ params });
    await sleep(50);
    expect(sim.stats.requests[CHAT] ?? 0).toBe(0);
    admission.open(admitted);
    expect((await call).completion?.choices[0]?.message?.content).toBeTruthy();
    expect(sim.stats.requests[CHAT]).toBe(1);
  });

  it("a refusal aborts the upstream call: the client gets the refusal, the model server sees it cancelled", async () => {
    sim.setOptions({ ttftMs: 5_000 });
    const call = client.createChatCompletion({ params }).then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    await sim.waitUntil(() => sim.stats.inFlight === 1);
    admission.refuse(refusal());
    expect((await call)?.code).toBe(Code.ResourceExhausted);
    await sim.waitUntil(() => sim.stats.cancelled === 1, 2_000);
    await expect.poll(inFlight).toBe(0);
    // The refusal is the governor's to record: nothing is finished for an admission never given.
    expect(outcomes).toEqual([]);
  });

  it("a refusal after the stream opened: no chunk reaches the client, the stream is cut upstream, its slot freed", async () => {
    sim.setOptions({ ttftMs: 0, interTokenMs: 100 });
    const result = stream();
    await sim.waitUntil(() => sim.stats.inFlight === 1);
    // The first chunk is read (under failover) within a few ms; the rest come every 100 ms.
    await sleep(30);
    admission.refuse(refusal());
    const { text, error } = await result;
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(text).toBe("");
    await sim.waitUntil(() => sim.stats.cancelled === 1, 2_000);
    await expect.poll(inFlight).toBe(0);
    expect(outcomes).toEqual([]);
  });

  it("a stream admitted while it opened runs to its end", async () => {
    sim.setOptions({ ttftMs: 0, interTokenMs: 5 });
    const result = stream();
    await sim.waitUntil(() => sim.stats.inFlight === 1);
    await sleep(300);
    admission.open(admitted);
    const { text, error } = await result;
    expect(error).toBeUndefined();
    expect(text.length).toBeGreaterThan(0);
    expect(outcomes).toMatchObject([{ status: 200 }]);
    // The time to first token is the upstream's (its first event came at once), not the admission's 300 ms.
    expect(outcomes[0]?.ttftMs).toBeLessThan(300);
    expect(inFlight()).toBe(0);
  });

  it("a client that leaves while its early call is admitted: the upstream call is cancelled, recorded as 499", async () => {
    sim.setOptions({ ttftMs: 5_000 });
    const ac = new AbortController();
    const call = client.createChatCompletion({ params }, { signal: ac.signal }).catch((err: unknown) => err);
    await sim.waitUntil(() => sim.stats.inFlight === 1);
    ac.abort();
    await sim.waitUntil(() => sim.stats.cancelled === 1, 2_000);
    admission.open(admitted);
    expect(ConnectError.from(await call).code).toBe(Code.Canceled);
    await expect.poll(() => outcomes.length).toBe(1);
    expect(outcomes[0]?.status).toBe(499);
  });
});

describe("forwardWhileAdmitting", () => {
  it("leaves no listener on a client signal that outlives the call (one per kept-alive connection)", async () => {
    const connection = new AbortController();
    const admission = { usageId: "u", headers: {}, finish: () => ({}) } as unknown as Admission;
    for (let i = 0; i < 20; i++) {
      const f = await forwardWhileAdmitting(
        Promise.resolve(admission),
        true,
        connection.signal,
        async () => i,
        () => {},
      );
      expect(await f.result).toBe(i);
      f.done();
    }
    for (let i = 0; i < 5; i++) {
      const discarded: number[] = [];
      const refused = forwardWhileAdmitting(
        Promise.reject(new Error("refused")),
        true,
        connection.signal,
        async (signal) => {
          await new Promise((r) => setTimeout(r, 5));
          return signal.aborted ? -1 : i;
        },
        (out) => discarded.push(out),
      );
      await expect(refused).rejects.toThrow("refused");
      await expect.poll(() => discarded).toEqual([-1]);
    }
    expect(getEventListeners(connection.signal, "abort")).toHaveLength(0);
  });

  it("passes the client's abort to the upstream work", async () => {
    const client = new AbortController();
    let seen: AbortSignal | undefined;
    const pending = forwardWhileAdmitting(
      new Promise<Admission>(() => {}),
      true,
      client.signal,
      async (signal) => {
        seen = signal;
      },
      () => {},
    );
    void pending;
    client.abort(new Error("gone"));
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toEqual(new Error("gone"));
  });
});
