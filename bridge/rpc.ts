import type { CallOptions, Client, Transport } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AccountService } from "../gen/passerelle/accounts/v1/account_service_pb.js";
import { EmbeddingsService } from "../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { InferenceService } from "../gen/passerelle/inference/v1/inference_service_pb.js";
import { ModelService } from "../gen/passerelle/models/v1/model_service_pb.js";

/** The RPC clients the REST routes translate to; built once over one Transport. */
export interface Clients {
  accounts: Client<typeof AccountService>;
  embeddings: Client<typeof EmbeddingsService>;
  inference: Client<typeof InferenceService>;
  models: Client<typeof ModelService>;
}

export function createClients(transport: Transport): Clients {
  return {
    accounts: createClient(AccountService, transport),
    embeddings: createClient(EmbeddingsService, transport),
    inference: createClient(InferenceService, transport),
    models: createClient(ModelService, transport),
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
  const ac = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return { headers, signal: ac.signal };
}
