import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EmbeddingsService } from "../../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { expectOpenAIError, validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { embeddingVector } from "../upstream/embeddings.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";
import { countTextTokens } from "../upstream/text.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** What the simulator computes for `item`, at the float32 precision the gateway carries. */
const expected = (item: string | number[], dims = 384) =>
  Array.from(Float32Array.from(embeddingVector("sim-embed", item, 384, dims)));

/** openai-node's own decoding of a base64 embedding. */
const decode = (b64: string) => {
  const buf = Buffer.from(b64, "base64");
  return Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
};

type EmbeddingsBody = {
  object: string;
  model: string;
  data: { object: string; index: number; embedding: number[] | string }[];
  usage: { prompt_tokens: number; total_tokens: number };
};

/**
 * Embeddings end to end: the official openai SDK and raw HTTP → REST bridge → EmbeddingsService → two vLLM
 * simulators (batched upstream calls, failover), plus the RPC over connect-node and @grpc/grpc-js.
 */
describe("embeddings", () => {
  let sims: Simulator[];
  let t: TestPlatform;
  let openai: OpenAI;
  let dir: string;

  beforeAll(async () => {
    sims = await Promise.all([0, 1].map(() => startSimulator()));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-embeddings-"));
    const file = path.join(dir, "models.yaml");
    const providers = sims
      .map((s) => `      - { type: vllm, url: "${s.url}", model_name: sim-embed, timeout_s: 30 }`)
      .join("\n");
    await fs.writeFile(
      file,
      [
        "models:",
        "  - name: BAAI/bge-m3",
        "    aliases: [embeddings-default]",
        "    type: text-embeddings-inference",
        "    providers:",
        providers,
        "  - name: qwen-chat",
        "    type: text-generation",
        "    providers:",
        `      - { type: vllm, url: "${sims[0]?.url}", model_name: sim-chat }`,
        "",
      ].join("\n"),
    );
    t = await startTestPlatform({
      env: {
        PASSERELLE_MODELS_FILE: file,
        PASSERELLE_EMBEDDINGS_MAX_BATCH: "64",
        PASSERELLE_UPSTREAM_COOLDOWN_MS: "60000",
      },
    });
    openai = new OpenAI({ baseURL: `${t.httpUrl}/v1`, apiKey: t.adminKey, maxRetries: 0 });
  });
  beforeEach(() => {
    for (const s of sims) s.reset();
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all((sims ?? []).map((s) => s.close()));
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const upstreamCalls = () => sims.reduce((a, s) => a + (s.stats.requests["/v1/embeddings"] ?? 0), 0);
  const upstreamBodies = () =>
    sims.map((s) => s.stats.lastRequest["/v1/embeddings"]).filter(Boolean) as Record<string, unknown>[];

  const post = (body: unknown) =>
    fetch(`${t.httpUrl}/v1/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("embeds a single string with the SDK's defaults (it asks base64 and decodes), always asking upstream for float", async () => {
    const res = await openai.embeddings.create({ model: "embeddings-default", input: "Bonjour le monde" });
    expect(res.object).toBe("list");
    expect(res.model).toBe("embeddings-default");
    expect(res.data).toHaveLength(1);
    expect(res.data[0]?.index).toBe(0);
    expect(res.data[0]?.embedding).toEqual(expected("Bonjour le monde"));
    expect(res.usage).toMatchObject({
      prompt_tokens: countTextTokens("Bonjour le monde"),
      total_tokens: countTextTokens("Bonjour le monde"),
    });
    expect(upstreamBodies()).toEqual([{ model: "sim-embed", input: ["Bonjour le monde"], encoding_format: "float" }]);
  });

  it("embeds a list as floats, and as base64 strings when the client asks for base64 itself", async () => {
    const input = ["un", "deux", "trois"];
    const floats = await openai.embeddings.create({ model: "BAAI/bge-m3", input, encoding_format: "float" });
    validateOpenAI("CreateEmbeddingResponse", floats);
    expect(floats.model).toBe("BAAI/bge-m3");
    expect(floats.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(floats.data.map((d) => d.embedding)).toEqual(input.map((s) => expected(s)));

    const b64 = await openai.embeddings.create({ model: "BAAI/bge-m3", input, encoding_format: "base64" });
    const strings = b64.data.map((d) => d.embedding as unknown);
    expect(strings.every((e) => typeof e === "string")).toBe(true);
    expect(strings.map((e) => decode(e as string))).toEqual(floats.data.map((d) => d.embedding));
    expect(upstreamBodies().every((b) => b.encoding_format === "float")).toBe(true);
  });

  it("answers raw HTTP with exactly OpenAI's CreateEmbeddingResponse, float or base64", async () => {
    const res = await post({ model: "embeddings-default", input: ["a", "b"] });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const body = (await res.json()) as EmbeddingsBody;
    validateOpenAI("CreateEmbeddingResponse", body);
    expect(Object.keys(body).sort()).toEqual(["data", "model", "object", "usage"]);
    expect(body.data[0]).toEqual({ object: "embedding", index: 0, embedding: expected("a") });
    // OpenAI's usage, plus the gateway's cost and carbon estimate (0 here: the model has no prices, no carbon data).
    expect(Object.keys(body.usage).sort()).toEqual(["carbon", "cost", "prompt_tokens", "total_tokens"]);
    expect(body.usage).toMatchObject({ cost: 0, carbon: { kWh: { min: 0, max: 0 }, kgCO2eq: { min: 0, max: 0 } } });

    const raw = await post({ model: "embeddings-default", input: ["a", "b"], encoding_format: "base64" });
    const b64 = (await raw.json()) as EmbeddingsBody;
    expect(b64.data.map((d) => typeof d.embedding)).toEqual(["string", "string"]);
    // OpenAI's schema types `embedding` as numbers only; the envelope is checked with the vectors decoded.
    const decoded = { ...b64, data: b64.data.map((d) => ({ ...d, embedding: decode(d.embedding as string) })) };
    validateOpenAI("CreateEmbeddingResponse", decoded);
    expect(decoded).toEqual(body);
  });

  it("embeds token ids, as one list or as a list of lists", async () => {
    const one = await openai.embeddings.create({
      model: "embeddings-default",
      input: [1, 2, 3],
      encoding_format: "float",
    });
    expect(one.data.map((d) => d.embedding)).toEqual([expected([1, 2, 3])]);
    expect(one.usage.prompt_tokens).toBe(3);
    expect(upstreamBodies()[0]?.input).toEqual([[1, 2, 3]]);

    const many = await openai.embeddings.create({ model: "embeddings-default", input: [[1, 2], [3], [4, 5, 6]] });
    expect(many.data.map((d) => d.embedding)).toEqual([[1, 2], [3], [4, 5, 6]].map((ids) => expected(ids)));
    expect(many.usage).toMatchObject({ prompt_tokens: 6, total_tokens: 6 });
  });

  it("forwards `dimensions` and returns vectors of that size", async () => {
    const res = await openai.embeddings.create({ model: "embeddings-default", input: "court", dimensions: 64 });
    expect(res.data[0]?.embedding).toHaveLength(64);
    expect(res.data[0]?.embedding).toEqual(expected("court", 64));
    expect(upstreamBodies()[0]).toMatchObject({ dimensions: 64, encoding_format: "float" });
    // Too many dimensions: the upstream's 400 comes back with its message.
    const err = await openai.embeddings
      .create({ model: "embeddings-default", input: "x", dimensions: 5000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toMatch(/dimensions/);
  });

  it("splits a large input into batches of at most the max batch size, reassembled in order", async () => {
    const input = Array.from({ length: 150 }, (_, i) => `phrase numéro ${i}`);
    const res = await openai.embeddings.create({ model: "embeddings-default", input, encoding_format: "float" });
    expect(upstreamCalls()).toBe(3);
    const sizes = upstreamBodies().map((b) => (b.input as string[]).length);
    expect(sizes.every((n) => n <= 64)).toBe(true);
    expect(res.data.map((d) => d.index)).toEqual(input.map((_, i) => i));
    expect(res.data.map((d) => d.embedding)).toEqual(input.map((s) => expected(s)));
    const tokens = input.reduce((a, s) => a + countTextTokens(s), 0);
    expect(res.usage).toMatchObject({ prompt_tokens: tokens, total_tokens: tokens });
  });

  it("fails over to the other provider when one fails", async () => {
    sims[0]?.setOptions({ failureRate: 1, failureStatus: 503 });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        openai.embeddings.create({ model: "embeddings-default", input: [`q${i}`, `r${i}`] }),
      ),
    );
    expect(results.map((r) => r.data[1]?.embedding)).toEqual(results.map((_, i) => expected(`r${i}`)));
    expect(sims[1]?.stats.requests["/v1/embeddings"]).toBe(10);
  });

  it("maps errors: wrong model type 400, unknown model 404, empty or malformed input 400, no key 401", async () => {
    const wrong = await openai.embeddings.create({ model: "qwen-chat", input: "x" }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(OpenAI.BadRequestError);
    expect((wrong as InstanceType<typeof OpenAI.APIError>).code).toBe("wrong_model_type");
    expect((wrong as InstanceType<typeof OpenAI.APIError>).param).toBe("model");
    await expect(openai.embeddings.create({ model: "nope", input: "x" })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const empty = await openai.embeddings.create({ model: "embeddings-default", input: [] }).catch((e: unknown) => e);
    expect(empty).toBeInstanceOf(OpenAI.BadRequestError);
    expect((empty as InstanceType<typeof OpenAI.APIError>).param).toBe("input");

    for (const [body, param] of [
      [{ model: "embeddings-default", input: [] }, "input"],
      [{ model: "embeddings-default", input: ["a", 1] }, "input"],
      [{ model: "embeddings-default", input: [[1], []] }, "input[1]"],
      [{ model: "embeddings-default", input: "" }, "input"],
      [{ model: "embeddings-default", input: ["a", ""] }, "input"],
      [{ model: "embeddings-default" }, "input"],
      [{ model: "embeddings-default", input: "x", encoding_format: "int8" }, "encoding_format"],
      [{ model: "embeddings-default", input: "x", dimensions: 0 }, "dimensions"],
    ] as const) {
      const e = await expectOpenAIError(await post(body), 400, "invalid_request_error");
      expect(e.error.param, JSON.stringify(body)).toBe(param);
    }
    const anonymous = new OpenAI({ baseURL: `${t.httpUrl}/v1`, apiKey: "sk-nope-nope-nope-nope", maxRetries: 0 });
    await expect(anonymous.embeddings.create({ model: "embeddings-default", input: "x" })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    expect(upstreamCalls()).toBe(0);
  });

  it("serves the RPC to connect-node: floats are the payload", async () => {
    const client = createClient(EmbeddingsService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${t.adminKey}` };
    const res = await client.createEmbeddings(
      { model: "embeddings-default", input: { case: "texts", value: { texts: ["rpc", "deux"] } }, dimensions: 32 },
      { headers },
    );
    expect(res.model).toBe("embeddings-default");
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    expect(res.data.map((d) => d.embedding)).toEqual([expected("rpc", 32), expected("deux", 32)]);
    expect(res.usage?.promptTokens).toBeGreaterThan(0);
    const err = await client
      .createEmbeddings({ model: "qwen-chat", input: { case: "texts", value: { texts: ["x"] } } }, { headers })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
  });

  it("serves the RPC to @grpc/grpc-js over h2c, from the .proto files", async () => {
    const def = protoLoader.loadSync("passerelle/embeddings/v1/embeddings_service.proto", {
      includeDirs: [path.join(root, "proto")],
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      passerelle: { embeddings: { v1: { EmbeddingsService: grpc.ServiceClientConstructor } } };
    };
    const Ctor = pkg.passerelle.embeddings.v1.EmbeddingsService;
    const client = new Ctor(t.grpcUrl.replace(/^http:\/\//, ""), grpc.credentials.createInsecure()) as unknown as {
      createEmbeddings: (
        req: unknown,
        md: grpc.Metadata,
        cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void,
      ) => void;
      close(): void;
    };
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${t.adminKey}`);
    try {
      const res = await new Promise<Record<string, unknown>>((resolve, reject) =>
        client.createEmbeddings({ model: "BAAI/bge-m3", tokens: { inputs: [{ ids: [7, 8, 9] }] } }, md, (err, r) =>
          err ? reject(err) : resolve(r),
        ),
      );
      const data = res.data as { index: number; embedding: number[] }[];
      expect(data).toHaveLength(1);
      expect(data[0]?.embedding).toEqual(expected([7, 8, 9]));
      expect(res.usage).toMatchObject({ promptTokens: 3, totalTokens: 3 });
    } finally {
      client.close();
    }
  });
});
