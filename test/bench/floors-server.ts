import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import Fastify, { type FastifyInstance } from "fastify";
import { Pool } from "undici";
import { chatParamsFromJson } from "../../bridge/openai/chat.js";
import { chatCompletionJson, createChunkSerializer } from "../../bridge/openai/chat-response.js";
import { createSseWriter } from "../../bridge/openai/sse.js";
import { createClients } from "../../bridge/rpc.js";
import {
  CreateChatCompletionResponseSchema,
  InferenceService,
} from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { chunkFromJson, completionFromJson, upstreamChatBody } from "../../services/inference/openai-json.js";
import { createUpstreamClient } from "../../services/inference/upstream-client.js";
import { bindService, createInProcessTransport } from "../../services/platform/in-process-transport.js";

/**
 * The bench's architecture floors (floors.ts): what the shape the project requires costs by itself, between the
 * bare proxy (proxy-ceiling.ts) and Passerelle. Both answer `POST /v1/chat/completions` for any key, with the public
 * model name asked for; the Connect floor also streams (`stream: true`).
 *  - `fastify`: a Fastify app that parses the JSON body, forwards it over a keep-alive undici Pool with the upstream's
 *    model name, parses the answer and sends it back. No protobuf, no Connect.
 *  - `connect`: the same Fastify route, then Passerelle's own path without its features: the bridge's mapping from
 *    OpenAI JSON to the protobuf request, an in-process Connect call (our transport, no interceptors), the service
 *    side's mapping to the upstream body, our upstream client, and the answer mapped back to protobuf and to OpenAI
 *    JSON. No auth, limits, budgets, usage records, metrics, logging, CORS, request ids or body schema. Its streams take
 *    the bridge's and the service's stream path: the upstream's events mapped to protobuf chunks, the server stream
 *    read straight from the transport (bridge/rpc.ts), the first chunk awaited before the headers, and each chunk
 *    written as one SSE event (bridge/openai/sse.ts). The upstream's usage chunk is passed on only when asked for.
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
  // The methods the floor serves; Connect answers the others Unimplemented.
  const impl: Pick<Impl, "createChatCompletion" | "streamChatCompletion"> = {
    async createChatCompletion(req, ctx) {
      const params = req.params;
      if (!params) throw new Error("no params");
      const body = upstreamChatBody(params, c.upstreamModel, false);
      const res = await upstream.postJson(target, "/v1/chat/completions", body, ctx.signal);
      return create(CreateChatCompletionResponseSchema, { completion: completionFromJson(res.body, params.model) });
    },
    async *streamChatCompletion(req, ctx) {
      const params = req.params;
      if (!params) throw new Error("no params");
      const wantsUsage = params.streamOptions?.includeUsage === true;
      const body = upstreamChatBody(params, c.upstreamModel, true);
      for await (const event of upstream.postStream(target, "/v1/chat/completions", body, ctx.signal)) {
        const chunk = chunkFromJson(JSON.parse(event), params.model);
        if (chunk.choices.length === 0 && chunk.usage !== undefined && !wantsUsage) continue;
        if (!wantsUsage) chunk.usage = undefined;
        yield { $typeName: "passerelle.inference.v1.StreamChatCompletionResponse", chunk };
      }
    },
  };
  const binding = bindService(InferenceService, impl as Impl);
  const clients = createClients(createInProcessTransport([binding]));
  app.post("/v1/chat/completions", async (req, reply) => {
    const { params, stream } = chatParamsFromJson(req.body);
    // As the bridge: the client leaving aborts the call; the key travels as a header.
    const ac = new AbortController();
    reply.raw.once("close", () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    const headers = new Headers({ "x-request-id": req.id });
    if (req.headers.authorization) headers.set("authorization", req.headers.authorization);
    if (!stream) {
      const res = await clients.inference.createChatCompletion({ params }, { signal: ac.signal, headers });
      return reply.send(res.completion ? chatCompletionJson(res.completion) : {});
    }
    const open = await clients.streams.chat({ params }, { signal: ac.signal, headers });
    const it = open.messages;
    let next = await it.next();
    reply.hijack();
    const sse = createSseWriter(reply.raw, { "x-request-id": req.id });
    const serialize = createChunkSerializer(params.streamOptions?.includeUsage === true);
    try {
      while (!next.done) {
        if (next.value.chunk) {
          const full = sse.data(serialize(next.value.chunk));
          if (full) await full;
        }
        next = await it.next();
      }
      await sse.done();
    } catch {
      sse.end();
    } finally {
      await it.return?.();
    }
  });
  return () => upstream.close();
}
