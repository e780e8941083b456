import { create } from "@bufbuild/protobuf";
import { createClient, type ServiceImpl } from "@connectrpc/connect";
import Fastify, { type FastifyInstance } from "fastify";
import { Pool } from "undici";
import { chatParamsFromJson } from "../../bridge/openai/chat.js";
import { chatCompletionJson } from "../../bridge/openai/chat-response.js";
import {
  CreateChatCompletionResponseSchema,
  InferenceService,
} from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { completionFromJson, upstreamChatBody } from "../../services/inference/openai-json.js";
import { createUpstreamClient } from "../../services/inference/upstream-client.js";
import { bindService, createInProcessTransport } from "../../services/platform/in-process-transport.js";

/**
 * The bench's architecture floors (floors.ts): what the shape the project requires costs by itself, between the
 * bare proxy (proxy-ceiling.ts) and Passerelle. Both answer `POST /v1/chat/completions` (JSON only) for any key,
 * with the public model name asked for.
 *  - `fastify`: a Fastify app that parses the JSON body, forwards it over a keep-alive undici Pool with the upstream's
 *    model name, parses the answer and sends it back. No protobuf, no Connect.
 *  - `connect`: the same Fastify route, then Passerelle's own path without its features: the bridge's mapping from
 *    OpenAI JSON to the protobuf request, an in-process Connect call (our transport, no interceptors), the service
 *    side's mapping to the upstream body, our upstream client, and the answer mapped back to protobuf and to OpenAI
 *    JSON. No auth, limits, budgets, usage records, metrics, logging, CORS, request ids or body schema.
 */
export type FloorMode = "fastify" | "connect";

export interface FloorConfig {
  mode: FloorMode;
  upstreamUrl: string;
  upstreamKey: string;
  upstreamModel: string;
}

export interface FloorServer {
  url: string;
  close(): Promise<void>;
}

export async function startFloor(c: FloorConfig): Promise<FloorServer> {
  const app = Fastify({ logger: false, keepAliveTimeout: 75_000 });
  const close = c.mode === "fastify" ? fastifyFloor(app, c) : connectFloor(app, c);
  await app.listen({ port: 0, host: "127.0.0.1" });
  app.server.on("connection", (s) => s.setNoDelay(true));
  const { port } = app.server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await app.close();
      await close();
    },
  };
}

function fastifyFloor(app: FastifyInstance, c: FloorConfig): () => Promise<void> {
  const pool = new Pool(c.upstreamUrl, {
    connections: 256,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connect: { noDelay: true },
  });
  const headers = {
    "content-type": "application/json",
    accept: "application/json",
    authorization: `Bearer ${c.upstreamKey}`,
  };
  const post = (body: unknown) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const chunks: Buffer[] = [];
      pool.dispatch(
        { method: "POST", path: "/v1/chat/completions", headers, body: JSON.stringify(body) },
        {
          onRequestStart() {},
          onResponseStart() {},
          onResponseData(_c, chunk) {
            chunks.push(chunk);
          },
          onResponseEnd() {
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
          },
          onResponseError(_c, err) {
            reject(err);
          },
        },
      );
    });
  app.post("/v1/chat/completions", async (req, reply) => {
    const asked = req.body as { model: string };
    const answer = await post({ ...asked, model: c.upstreamModel });
    answer.model = asked.model;
    return reply.send(answer);
  });
  return () => pool.close();
}

function connectFloor(app: FastifyInstance, c: FloorConfig): () => Promise<void> {
  const upstream = createUpstreamClient();
  const target = {
    baseUrl: c.upstreamUrl,
    apiKey: c.upstreamKey,
    timeouts: { connectMs: 5_000, headersMs: 120_000, firstTokenMs: 120_000, idleMs: 120_000, totalMs: 120_000 },
  };
  type Impl = ServiceImpl<typeof InferenceService>;
  // The one method the floor serves; Connect answers the others Unimplemented.
  const impl: Pick<Impl, "createChatCompletion"> = {
    async createChatCompletion(req, ctx) {
      const params = req.params;
      if (!params) throw new Error("no params");
      const body = upstreamChatBody(params, c.upstreamModel, false);
      const res = await upstream.postJson(target, "/v1/chat/completions", body, ctx.signal);
      return create(CreateChatCompletionResponseSchema, { completion: completionFromJson(res.body, params.model) });
    },
  };
  const binding = bindService(InferenceService, impl as Impl);
  const client = createClient(InferenceService, createInProcessTransport([binding]));
  app.post("/v1/chat/completions", async (req, reply) => {
    const { params } = chatParamsFromJson(req.body);
    // As the bridge: the client leaving aborts the call; the key travels as a header.
    const ac = new AbortController();
    reply.raw.once("close", () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    const headers = new Headers({ "x-request-id": req.id });
    if (req.headers.authorization) headers.set("authorization", req.headers.authorization);
    const res = await client.createChatCompletion({ params }, { signal: ac.signal, headers });
    return reply.send(res.completion ? chatCompletionJson(res.completion) : {});
  });
  return () => upstream.close();
}
