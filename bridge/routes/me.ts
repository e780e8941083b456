import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { MeView } from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import { apiKeyJson, meJson, userJson } from "../mappers/accounts.js";
import { type Clients, callOptions } from "../rpc.js";
import { loginBody, meQuery, updateMeBody } from "../schemas/accounts.js";
import { errorResponses } from "../schemas/common.js";

/** `/v1/me` (the caller's profile) and `/v1/auth/login`. */
export function meRoutes(app: FastifyInstance, clients: Clients): void {
  type MeRequest = { Querystring: { view?: "basic" | "full" } };
  const getMe = {
    schema: {
      tags: ["me"],
      summary:
        "The caller's profile (still readable by an expired user) and their rate limits on every model they may use, " +
        "with what remains of each.",
      security: [{ bearer: [] }],
      querystring: meQuery,
      response: { 200: { $ref: "Me#" }, ...errorResponses },
    },
  };
  const me = async (req: FastifyRequest<MeRequest>, reply: FastifyReply) =>
    meJson(
      await clients.accounts.getMe(
        { view: req.query.view === "basic" ? MeView.BASIC : MeView.FULL },
        callOptions(req, reply),
      ),
    );
  app.get<MeRequest>("/v1/me", getMe, me);
  // The reference system's path.
  app.get<MeRequest>("/v1/me/info", { ...getMe, schema: { ...getMe.schema, hide: true } }, me);

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
