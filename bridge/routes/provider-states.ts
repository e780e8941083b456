import type { FastifyInstance } from "fastify";
import { unix } from "../mappers/accounts.js";
import { type Clients, callOptions } from "../rpc.js";
import { errorResponses } from "../schemas/common.js";

/**
 * `GET /v1/admin/provider-states`: the live routing state of every provider in the registry, as the process that
 * answers sees it (admin).
 */
export function providerStateRoutes(app: FastifyInstance, clients: Clients): void {
  app.get(
    "/v1/admin/provider-states",
    {
      schema: {
        tags: ["admin"],
        security: [{ bearer: [] }],
        summary: "Load and passive health of every provider, as seen by this process.",
        description:
          "One entry per provider of every model, routed to yet or not (healthy and idle until then). `waiting` " +
          "counts each request queued for a free slot once, against the least loaded provider it may take.",
        response: {
          200: {
            type: "object",
            properties: {
              object: { type: "string", enum: ["list"] },
              data: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    object: { type: "string", enum: ["provider.state"] },
                    provider: { type: "string" },
                    in_flight: { type: "integer" },
                    waiting: { type: "integer" },
                    healthy: { type: "boolean" },
                    consecutive_failures: { type: "integer" },
                    ejected_until: { type: ["integer", "null"] },
                  },
                  required: [
                    "object",
                    "provider",
                    "in_flight",
                    "waiting",
                    "healthy",
                    "consecutive_failures",
                    "ejected_until",
                  ],
                },
              },
            },
            required: ["object", "data"],
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const res = await clients.inference.listProviderStates({}, callOptions(req, reply));
      return {
        object: "list",
        data: res.states.map((s) => ({
          object: "provider.state",
          provider: s.providerId,
          in_flight: s.inFlight,
          waiting: s.waiting,
          healthy: s.healthy,
          consecutive_failures: s.consecutiveFailures,
          ejected_until: unix(s.ejectedUntil),
        })),
      };
    },
  );
}
