import { create } from "@bufbuild/protobuf";
import type { FastifyInstance } from "fastify";
import { BudgetSchema } from "../../gen/passerelle/governance/v1/resources_pb.js";
import { budgetJson, type OwnerKindName, ownerKindToProto, pagedListJson } from "../mappers/governance.js";
import { type Clients, callOptions } from "../rpc.js";
import { errorResponses } from "../schemas/common.js";
import {
  amountBody,
  budgetListQuery,
  budgetParams,
  deletedBudgetSchema,
  myBudgetSchema,
  pagedListSchema,
  usagePagingQuery,
} from "../schemas/governance.js";

type Params = { owner_kind: OwnerKindName; owner_id: string };
type ListQuery = { limit: number; after?: string; owner_kind?: OwnerKindName };

const security = [{ bearer: [] }];
const tags = ["admin"];

/**
 * Budgets in currency units: `GET /v1/me/budget` (the caller's and their organization's), and the admin API under
 * `/v1/admin/budgets/{owner_kind}/{owner_id}` (`owner_kind` is `user` or `organization`).
 */
export function budgetRoutes(app: FastifyInstance, clients: Clients): void {
  const budgetOf = (res: { budget?: Parameters<typeof budgetJson>[0] }) =>
    budgetJson(res.budget ?? create(BudgetSchema));
  const owner = (p: Params) => ({ ownerKind: ownerKindToProto(p.owner_kind), ownerId: p.owner_id });

  app.get(
    "/v1/me/budget",
    {
      schema: {
        tags: ["me"],
        security,
        summary: "The caller's budget and their organization's (null where there is none: unlimited).",
        response: { 200: myBudgetSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const res = await clients.governance.getMyBudget({}, callOptions(req, reply));
      return {
        object: "my_budget" as const,
        user: res.userBudget ? budgetJson(res.userBudget) : null,
        organization: res.organizationBudget ? budgetJson(res.organizationBudget) : null,
      };
    },
  );

  app.get<{ Querystring: ListQuery }>(
    "/v1/admin/budgets",
    {
      schema: {
        tags,
        security,
        summary: "Lists budgets: users' by id, then organizations' (or one kind with owner_kind).",
        querystring: { type: "object", properties: { ...usagePagingQuery, ...budgetListQuery } },
        response: { 200: pagedListSchema("Budget", false), ...errorResponses },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const res = await clients.governance.listBudgets(
        { ownerKind: ownerKindToProto(q.owner_kind), pageSize: q.limit, pageToken: q.after ?? "" },
        callOptions(req, reply),
      );
      return pagedListJson(res.budgets.map(budgetJson), res.nextPageToken);
    },
  );

  const path = "/v1/admin/budgets/:owner_kind/:owner_id";
  const one = { tags, security, params: budgetParams, response: { 200: { $ref: "Budget#" }, ...errorResponses } };

  app.get<{ Params: Params }>(
    path,
    { schema: { ...one, summary: "Reads a budget (404 when the owner has none)." } },
    async (req, reply) => budgetOf(await clients.governance.getBudget(owner(req.params), callOptions(req, reply))),
  );

  app.put<{ Params: Params; Body: { amount: number } }>(
    path,
    {
      schema: {
        ...one,
        summary: "Creates the budget or sets the amount granted in total (409 below what was already spent).",
        body: amountBody,
      },
    },
    async (req, reply) =>
      budgetOf(
        await clients.governance.setBudget({ ...owner(req.params), amount: req.body.amount }, callOptions(req, reply)),
      ),
  );

  app.post<{ Params: Params; Body: { amount: number } }>(
    `${path}/top-up`,
    { schema: { ...one, summary: "Adds to an existing budget's granted amount.", body: amountBody } },
    async (req, reply) =>
      budgetOf(
        await clients.governance.topUpBudget(
          { ...owner(req.params), amount: req.body.amount },
          callOptions(req, reply),
        ),
      ),
  );

  app.delete<{ Params: Params }>(
    path,
    {
      schema: {
        tags,
        security,
        params: budgetParams,
        summary: "Removes a budget: the owner is unlimited again.",
        response: { 200: deletedBudgetSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      await clients.governance.deleteBudget(owner(req.params), callOptions(req, reply));
      return { object: "budget.deleted" as const, ...req.params, deleted: true };
    },
  );
}
