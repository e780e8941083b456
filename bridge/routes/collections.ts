import type { FastifyInstance } from "fastify";
import type { Collection } from "../../gen/passerelle/collections/v1/resources_pb.js";
import { listJson } from "../mappers/accounts.js";
import { collectionJson, type VisibilityName, visibilityToProto } from "../mappers/collections.js";
import { type Clients, callOptions } from "../rpc.js";
import {
  collectionListQuery,
  collectionParams,
  createCollectionBody,
  updateCollectionBody,
} from "../schemas/collections.js";
import { deletedSchema, errorResponses, listSchema } from "../schemas/common.js";

type CreateBody = { name: string; description?: string; visibility?: VisibilityName; language?: string };
type UpdateBody = { name?: string; description?: string; visibility?: VisibilityName };
type ListQuery = { limit: number; after?: string; name?: string; visibility?: VisibilityName };
type Params = { id: string };

const tags = ["collections"];
const security = [{ bearer: [] }];
const one = { 200: { $ref: "Collection#" }, ...errorResponses } as const;

function collectionOf(res: { collection?: Collection }) {
  if (!res.collection) throw new Error("CollectionService answered without a collection");
  return collectionJson(res.collection);
}

/**
 * Collections (CollectionService): the caller's own and the public ones are readable; only the owner writes, and
 * anything else answers 404, as if it did not exist.
 */
export function collectionRoutes(app: FastifyInstance, clients: Clients): void {
  app.post<{ Body: CreateBody }>(
    "/v1/collections",
    {
      schema: {
        tags,
        security,
        summary: "Creates a collection owned by the caller (private unless `visibility` is public).",
        body: createCollectionBody,
        response: { 201: { $ref: "Collection#" }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const res = await clients.collections.createCollection(
        {
          name: b.name,
          description: b.description ?? "",
          visibility: visibilityToProto(b.visibility),
          language: b.language ?? "",
        },
        callOptions(req, reply),
      );
      reply.code(201);
      return collectionOf(res);
    },
  );

  app.get<{ Querystring: ListQuery }>(
    "/v1/collections",
    {
      schema: {
        tags,
        security,
        summary: "Lists the caller's collections and the public ones, newest first.",
        querystring: collectionListQuery,
        response: { 200: listSchema("Collection"), ...errorResponses },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const res = await clients.collections.listCollections(
        {
          pageSize: q.limit,
          pageToken: q.after ?? "",
          name: q.name ?? "",
          visibility: visibilityToProto(q.visibility),
        },
        callOptions(req, reply),
      );
      return listJson(res.collections.map(collectionJson), res.nextPageToken);
    },
  );

  app.get<{ Params: Params }>(
    "/v1/collections/:id",
    { schema: { tags, security, summary: "Reads a collection.", params: collectionParams, response: one } },
    async (req, reply) =>
      collectionOf(await clients.collections.getCollection({ id: req.params.id }, callOptions(req, reply))),
  );

  app.patch<{ Params: Params; Body: UpdateBody }>(
    "/v1/collections/:id",
    {
      schema: {
        tags,
        security,
        summary: "Changes a collection's name, description or visibility (owner only); returns it.",
        params: collectionParams,
        body: updateCollectionBody,
        response: one,
      },
    },
    async (req, reply) => {
      const b = req.body ?? {};
      // The fields present, and only those, change (an empty description clears it).
      const paths = (["name", "description", "visibility"] as const).filter((f) => b[f] !== undefined);
      const res = await clients.collections.updateCollection(
        {
          id: req.params.id,
          name: b.name ?? "",
          description: b.description ?? "",
          visibility: visibilityToProto(b.visibility),
          updateMask: { paths },
        },
        callOptions(req, reply),
      );
      return collectionOf(res);
    },
  );

  app.delete<{ Params: Params }>(
    "/v1/collections/:id",
    {
      schema: {
        tags,
        security,
        summary: "Deletes a collection with its documents and chunks (owner only).",
        params: collectionParams,
        response: { 200: deletedSchema("collection"), ...errorResponses },
      },
    },
    async (req, reply) => {
      await clients.collections.deleteCollection({ id: req.params.id }, callOptions(req, reply));
      return { id: req.params.id, object: "collection.deleted" as const, deleted: true };
    },
  );
}
