import type { FastifyInstance } from "fastify";
import { apiKeyJson, meJson, userJson } from "../mappers/accounts.js";
import { type Clients, callOptions } from "../rpc.js";
import { loginBody, updateMeBody } from "../schemas/accounts.js";
import { errorResponses } from "../schemas/common.js";

/** `/v1/me` (the caller's profile) and `/v1/auth/login`. */
export function meRoutes(app: FastifyInstance, clients: Clients): void {
  const getMe = {
    schema: {
      tags: ["me"],
      summary: "The caller's profile (still readable by an expired user).",
      security: [{ bearer: [] }],
      response: { 200: { $ref: "Me#" }, ...errorResponses },
    },
  };
  app.get("/v1/me", getMe, async (req, reply) => meJson(await clients.accounts.getMe({}, callOptions(req, reply))));
  // The reference system's path.
  app.get("/v1/me/info", { ...getMe, schema: { ...getMe.schema, hide: true } }, async (req, reply) =>
    meJson(await clients.accounts.getMe({}, callOptions(req, reply))),
  );

  app.patch<{ Body: { name?: string; password?: string; current_password?: string } }>(
    "/v1/me",
    {
      schema: {
        tags: ["me"],
        summary: "Changes the caller's name or password (the password needs current_password).",
        security: [{ bearer: [] }],
        body: updateMeBody,
        response: { 200: { $ref: "User#" }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const res = await clients.accounts.updateMe(
        { name: req.body.name, password: req.body.password, currentPassword: req.body.current_password ?? "" },
        callOptions(req, reply),
      );
      return res.user ? userJson(res.user) : {};
    },
  );

  app.post<{ Body: { email: string; password: string } }>(
    "/v1/auth/login",
    {
      config: { public: true },
      schema: {
        tags: ["auth"],
        summary: "Exchanges an e-mail and password for a short-lived session key.",
        body: loginBody,
        response: { 200: { $ref: "ApiKey#" }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const res = await clients.accounts.login(req.body, callOptions(req, reply));
      if (!res.apiKey) throw new Error("login returned no key");
      return apiKeyJson(res.apiKey, res.secret);
    },
  );
}
