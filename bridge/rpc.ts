import type { Socket } from "node:net";
import type { DescMessage, DescMethodServerStreaming, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { CallOptions, Client, Transport } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AccountService } from "../gen/passerelle/accounts/v1/account_service_pb.js";
import { AudioService } from "../gen/passerelle/audio/v1/audio_service_pb.js";
import { CollectionService } from "../gen/passerelle/collections/v1/collection_service_pb.js";
import { EmbeddingsService } from "../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { GovernanceService } from "../gen/passerelle/governance/v1/governance_service_pb.js";
import { InferenceService } from "../gen/passerelle/inference/v1/inference_service_pb.js";
import { ModelService } from "../gen/passerelle/models/v1/model_service_pb.js";
import { OcrService } from "../gen/passerelle/ocr/v1/ocr_service_pb.js";
import { RerankService } from "../gen/passerelle/rerank/v1/rerank_service_pb.js";
import { SearchService } from "../gen/passerelle/search/v1/search_service_pb.js";
import { rateLimitHeadersOf } from "./openai/errors.js";

/** The RPC clients the REST routes translate to; built once over one Transport. */
export interface Clients {
  accounts: Client<typeof AccountService>;
  audio: Client<typeof AudioService>;
  collections: Client<typeof CollectionService>;
  embeddings: Client<typeof EmbeddingsService>;
  governance: Client<typeof GovernanceService>;
  inference: Client<typeof InferenceService>;
  models: Client<typeof ModelService>;
  ocr: Client<typeof OcrService>;
  rerank: Client<typeof RerankService>;
  search: Client<typeof SearchService>;
  /** Server streams read straight from the transport (see `serverStream`). */
  streams: {
    chat: ServerStream<typeof InferenceService.method.streamChatCompletion>;
  };
}

type ServerStream<M> =
  M extends DescMethodServerStreaming<infer I, infer O>
    ? (input: MessageInitShape<I>, opts: CallOptions) => Promise<OpenStream<MessageShape<O>>>
    : never;

/** An open server stream: its response headers (complete once the first message arrived) and its messages. */
export interface OpenStream<T> {
  header: Headers;
  messages: AsyncIterator<T>;
}

/**
 * A server-streaming call without Connect's promise client, which wraps every message in three nested async
 * generators (measured: a third of the bridge's cost per SSE frame). Resolves when the stream is open; the
 * iterator then yields each message. Cancel with `opts.signal`.
 */
function serverStream<I extends DescMessage, O extends DescMessage>(
  transport: Transport,
  method: DescMethodServerStreaming<I, O>,
) {
  return async (input: MessageInitShape<I>, opts: CallOptions): Promise<OpenStream<MessageShape<O>>> => {
    const res = await transport.stream(
      method,
      opts.signal,
      opts.timeoutMs,
      opts.headers,
      once(input),
      opts.contextValues,
    );
    return { header: res.header, messages: res.message[Symbol.asyncIterator]() };
  };
}

/** The one request message of a server stream, as the transport wants it. */
function once<T>(value: T): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      let sent = false;
      return {
        next: () => {
          if (sent) return Promise.resolve({ done: true, value: undefined });
          sent = true;
          return Promise.resolve({ done: false, value });
        },
      };
    },
  };
}

export function createClients(transport: Transport): Clients {
  return {
    accounts: createClient(AccountService, transport),
    audio: createClient(AudioService, transport),
    collections: createClient(CollectionService, transport),
    embeddings: createClient(EmbeddingsService, transport),
    governance: createClient(GovernanceService, transport),
    inference: createClient(InferenceService, transport),
    models: createClient(ModelService, transport),
    ocr: createClient(OcrService, transport),
    rerank: createClient(RerankService, transport),
    search: createClient(SearchService, transport),
    streams: { chat: serverStream(transport, InferenceService.method.streamChatCompletion) },
  };
}

/**
 * Per-call options: the caller's credentials and request id travel as headers, and a client that goes away
 * aborts the RPC (and, through it, any upstream work).
 */
export function callOptions(req: FastifyRequest, reply: FastifyReply): CallOptions {
  const headers = new Headers({ "x-request-id": req.requestId || req.id });
  const auth = req.headers.authorization;
  if (auth) headers.set("authorization", auth);
  // The answer's rate-limit and timing headers are passed on (a stream's are read when its first message arrived).
  return { headers, signal: clientGone(req, reply), onHeader: (h) => passAnswerHeaders(reply, h) };
}

const kClientGone = Symbol("passerelle.clientGone");

/**
 * A signal that aborts when the client goes away before its answer is finished.
 *
 * Over HTTP/1.1 that means its connection closed, so one signal serves every request of a kept-alive connection.
 * Node's AbortSignal is costly to create (about 4 µs per signal in a tight loop on Node 20, more on a real request
 * path), and at concurrency 1 that cost was on every request's path. The services remove their abort listeners when
 * a call ends, so listeners do not pile up on a long-lived connection. Over HTTP/2, a stream can be reset while its
 * session lives on, so each request gets its own signal, aborted when its response closes unfinished.
 */
function clientGone(req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const raw = req.raw;
  if (raw.httpVersionMajor === 1) {
    const socket = raw.socket as Socket & { [kClientGone]?: AbortSignal };
    let signal = socket[kClientGone];
    if (!signal) {
      const ac = new AbortController();
      signal = ac.signal;
      socket[kClientGone] = signal;
      socket.once("close", () => ac.abort());
    }
    return signal;
  }
  const ac = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}

/**
 * The headers of an RPC's answer that the REST answer carries: OpenAI's `x-ratelimit-*`, and `server-timing` with the
 * gateway's own time beside the upstream's (see `serverTiming`).
 */
export function passAnswerHeaders(reply: FastifyReply, h: Headers): void {
  reply.headers(rateLimitHeadersOf(h));
  const timing = serverTiming(h.get("server-timing"), reply.elapsedTime);
  if (timing) reply.header("server-timing", timing);
}

const UPSTREAM_TIMING = /^upstream;dur=(\d+(?:\.\d+)?)$/;

/**
 * W3C Server-Timing for a model call: the service's `upstream;dur=` (time spent waiting on model servers) and
 * `gateway;dur=`, the rest of the time since the request arrived (`elapsedMs`): what Passerelle itself added, auth,
 * limits and queueing for a provider's slot included; for a stream, up to its first event. Nothing when the service
 * sent no upstream time (a call that reached no model).
 */
export function serverTiming(fromService: string | null, elapsedMs: number): string | undefined {
  const m = fromService ? UPSTREAM_TIMING.exec(fromService) : null;
  if (!m) return undefined;
  const upstream = Number(m[1]);
  return `upstream;dur=${upstream.toFixed(2)}, gateway;dur=${Math.max(0, elapsedMs - upstream).toFixed(2)}`;
}
