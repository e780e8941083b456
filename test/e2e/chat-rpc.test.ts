import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../gen/passerelle/inference/v1/chat_pb.js";
import { InferenceService } from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { type ChatPlatform, startChatPlatform } from "../support/chat-platform.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The chat RPCs from backend clients: connect-node (Connect protocol) and @grpc/grpc-js (gRPC over h2c). */
describe("chat over RPC", () => {
  let p: ChatPlatform;
  beforeAll(async () => {
    p = await startChatPlatform();
  });
  afterAll(async () => {
    await p?.close();
  });

  it("connect-node: unary and server streaming", async () => {
    const client = createClient(InferenceService, createConnectTransport({ baseUrl: p.t.httpUrl, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${p.t.adminKey}` };
    const params = {
      model: "chat-default",
      messages: [{ role: Role.USER, content: { case: "text" as const, value: "Bonjour" } }],
      seed: 3n,
    };
    const res = await client.createChatCompletion({ params }, { headers });
    const text = res.completion?.choices[0]?.message?.content;
    expect(text?.case).toBe("text");
    expect(res.completion?.model).toBe("chat-default");
    let streamed = "";
    let chunks = 0;
    for await (const m of client.streamChatCompletion(
      { params: { ...params, streamOptions: { includeUsage: true } } },
      { headers },
    )) {
      chunks++;
      streamed += m.chunk?.choices[0]?.delta?.content ?? "";
    }
    expect(chunks).toBeGreaterThan(2);
    expect(streamed).toBe(text?.value);
  });

  it("@grpc/grpc-js over h2c: unary and server streaming, Unauthenticated without a key", async () => {
    const def = protoLoader.loadSync("passerelle/inference/v1/inference_service.proto", {
      includeDirs: [path.join(root, "proto")],
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      passerelle: { inference: { v1: { InferenceService: grpc.ServiceClientConstructor } } };
    };
    const Ctor = pkg.passerelle.inference.v1.InferenceService;
    const client = new Ctor(p.t.grpcUrl.replace(/^http:\/\//, ""), grpc.credentials.createInsecure()) as unknown as {
      createChatCompletion: (
        req: unknown,
        md: grpc.Metadata,
        cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void,
      ) => void;
      streamChatCompletion: (req: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<Record<string, unknown>>;
      close(): void;
    };
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${p.t.adminKey}`);
    const req = { params: { model: "qwen2.5-7b", messages: [{ role: "ROLE_USER", text: "Salut" }] } };
    try {
      const res = await new Promise<Record<string, unknown>>((resolve, reject) =>
        client.createChatCompletion(req, md, (err, r) => (err ? reject(err) : resolve(r))),
      );
      const completion = res.completion as { model: string; choices: Array<{ finishReason: string }> };
      expect(completion.model).toBe("qwen2.5-7b");
      expect(completion.choices[0]?.finishReason).toBeTruthy();

      const chunks: unknown[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = client.streamChatCompletion(req, md);
        s.on("data", (d) => chunks.push(d));
        s.on("end", () => resolve());
        s.on("error", reject);
      });
      expect(chunks.length).toBeGreaterThan(2);

      const err = await new Promise<grpc.ServiceError>((resolve) =>
        client.createChatCompletion(req, new grpc.Metadata(), (e) => resolve(e as grpc.ServiceError)),
      );
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  });

  it("keeps answering when a provider dies during traffic (no client-visible error before streaming)", async () => {
    const openai = new OpenAI({ baseURL: `${p.t.httpUrl}/v1`, apiKey: p.t.adminKey, maxRetries: 0 });
    const ask = (i: number) =>
      openai.chat.completions.create({ model: "qwen2.5-7b", messages: [{ role: "user", content: `q${i}` }] });
    const victim = p.sims[0];
    if (!victim) throw new Error("no simulator");
    // Slow on the victim, so that some requests are in flight there when it dies.
    victim.setOptions({ ttftMs: 300 });
    const inFlight = Array.from({ length: 30 }, (_, i) => ask(i));
    await victim.waitUntil(() => victim.stats.inFlight > 0, 5000);
    await victim.close();
    const after = Array.from({ length: 30 }, (_, i) => ask(100 + i));
    const results = await Promise.allSettled([...inFlight, ...after]);
    const failed = results.filter((r) => r.status === "rejected");
    expect(failed, String(failed.map((f) => (f as PromiseRejectedResult).reason))).toEqual([]);
  });

  it("shows admins each provider's routing state, and only admins", async () => {
    const res = await fetch(`${p.t.httpUrl}/v1/admin/provider-states`, {
      headers: { authorization: `Bearer ${p.t.adminKey}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; data: Array<Record<string, unknown>> };
    expect(body.object).toBe("list");
    expect(body.data.length).toBeGreaterThanOrEqual(2);
    for (const s of body.data) {
      expect(s).toMatchObject({ object: "provider.state", in_flight: 0, waiting: 0 });
      expect(typeof s.healthy).toBe("boolean");
    }
  });
});
