import type { FastifyInstance } from "fastify";
import { chatParamsFromJson } from "../openai/chat.js";
import { chatCompletionJson, createChunkSerializer } from "../openai/chat-response.js";
import { fromConnectError } from "../openai/errors.js";
import { createSseWriter } from "../openai/sse.js";
import { type Clients, callOptions, passAnswerHeaders } from "../rpc.js";
import { errorResponses } from "../schemas/common.js";

/** `POST /v1/chat/completions`: JSON, or Server-Sent Events with `stream: true`. */
export function chatRoutes(app: FastifyInstance, clients: Clients): void {
  app.post(
    "/v1/chat/completions",
    {
      schema: {
        tags: ["inference"],
        summary: "Creates a chat completion (OpenAI-compatible). Unknown fields are forwarded to the model server.",
        security: [{ bearer: [] }],
        body: {
          type: "object",
          required: ["model", "messages"],
          properties: {
            model: { type: "string" },
            messages: { type: "array", minItems: 1 },
            stream: { type: "boolean" },
          },
          additionalProperties: true,
        },
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const { params, stream } = chatParamsFromJson(req.body);
      const opts = callOptions(req, reply);
      if (!stream) {
        const res = await clients.inference.createChatCompletion({ params }, opts);
        return reply.send(res.completion ? chatCompletionJson(res.completion) : {});
      }
      // Wait for the first chunk before sending headers, so that early failures keep a real HTTP status.
      const open = await clients.streams.chat({ params }, opts);
      const it = open.messages;
      let next = await it.next();
      passAnswerHeaders(reply, open.header);
      reply.hijack();
      // Hijacked replies skip Fastify's header handling: carry over what hooks set (CORS for browsers, request id).
      const set: Record<string, string> = {};
      for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) set[k] = String(v);
      const sse = createSseWriter(reply.raw, { ...set, "x-request-id": req.requestId });
      const serialize = createChunkSerializer(params.streamOptions?.includeUsage === true);
      try {
        while (!next.done) {
          if (next.value.chunk) {
            const full = sse.data(serialize(next.value.chunk));
            if (full) await full; // back-pressure only: no extra hop per event otherwise
          }
          next = await it.next();
        }
        await sse.done();
      } catch (err) {
        if (!reply.raw.destroyed) {
          const e = fromConnectError(err);
          if (e.status >= 500) req.log.warn({ status: e.status }, "stream failed after the first byte");
          await sse.error(e);
          sse.end();
        }
      } finally {
        await it.return?.();
      }
    },
  );
}
