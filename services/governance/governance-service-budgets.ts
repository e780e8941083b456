import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  DeleteBudgetResponseSchema,
  GetBudgetResponseSchema,
  GetMyBudgetResponseSchema,
  type GovernanceService,
  ListBudgetsResponseSchema,
  SetBudgetResponseSchema,
  TopUpBudgetResponseSchema,
} from "../../gen/passerelle/governance/v1/governance_service_pb.js";
import { OwnerKind as OwnerKindMsg } from "../../gen/passerelle/governance/v1/resources_pb.js";
import { failedPrecondition, invalidArgument, notFound } from "../platform/errors.js";
import { isUuid, pageSize } from "../platform/paging.js";
import type { BudgetState } from "./budget-store.js";
import type { Owner, OwnerKind } from "./entities.js";
import type { GovernanceDeps } from "./governance-deps.js";
import { toBudgetMsg } from "./governance-service-mappers.js";
import { adminOf, ownerKindOf, ownerOf, principalOf, validAmount } from "./governance-service-validation.js";

type BudgetHandlers = Pick<
  ServiceImpl<typeof GovernanceService>,
  "getMyBudget" | "getBudget" | "listBudgets" | "setBudget" | "topUpBudget" | "deleteBudget"
>;

const KINDS: readonly OwnerKind[] = ["user", "organization"];
const ownerName = (o: Owner) => `${o.kind}/${o.id}`;

/** ListBudgets pages through users' budgets, then organizations': the token is the last `<kind>:<owner id>`. */
function decodeBudgetToken(token: string): { kind: OwnerKind; after: string } | undefined {
  if (!token) return undefined;
  const [kind, id, ...rest] = token.split(":");
  if (rest.length === 0 && KINDS.includes(kind as OwnerKind) && id && isUuid(id)) {
    return { kind: kind as OwnerKind, after: id };
  }
  throw invalidArgument("page_token is not a token this server issued.", "page_token");
}

/** PostgreSQL's "bigint out of range": a top-up beyond what a budget can hold. */
const isOutOfRange = (err: unknown) => (err as { code?: string }).code === "22003";

/** Budgets: the caller's own (and their organization's) for everyone; reading and writing any budget for admins. */
export function createBudgetHandlers(deps: GovernanceDeps): BudgetHandlers {
  const { budgetStore } = deps;

  async function existing(owner: Owner): Promise<BudgetState> {
    const budget = await budgetStore.getBudget(owner);
    if (!budget) throw notFound("budget", ownerName(owner));
    return budget;
  }

  return {
    async getMyBudget(_req, ctx) {
      const p = principalOf(ctx);
      const [mine, org] = await Promise.all([
        budgetStore.getBudget({ kind: "user", id: p.userId }),
        p.organizationId ? budgetStore.getBudget({ kind: "organization", id: p.organizationId }) : null,
      ]);
      return create(GetMyBudgetResponseSchema, {
        userBudget: mine ? toBudgetMsg(mine) : undefined,
        organizationBudget: org ? toBudgetMsg(org) : undefined,
      });
    },

    async getBudget(req, ctx) {
      adminOf(ctx);
      return create(GetBudgetResponseSchema, { budget: toBudgetMsg(await existing(ownerOf(req))) });
    },

    async listBudgets(req, ctx) {
      adminOf(ctx);
      const size = pageSize(req.pageSize);
      const only = req.ownerKind === OwnerKindMsg.UNSPECIFIED ? undefined : ownerKindOf(req.ownerKind);
      const kinds = only ? [only] : KINDS;
      const token = decodeBudgetToken(req.pageToken);
      if (token && !kinds.includes(token.kind)) {
        throw invalidArgument("page_token is not a token of this listing.", "page_token");
      }
      const rows: BudgetState[] = [];
      for (const kind of kinds.slice(token ? kinds.indexOf(token.kind) : 0)) {
        const after = token?.kind === kind ? token.after : undefined;
        rows.push(...(await budgetStore.listBudgets(kind, { after, limit: size + 1 - rows.length })));
        if (rows.length > size) break;
      }
      const items = rows.slice(0, size);
      const last = items[items.length - 1];
      return create(ListBudgetsResponseSchema, {
        budgets: items.map(toBudgetMsg),
        nextPageToken: rows.length > size && last ? `${last.owner.kind}:${last.owner.id}` : "",
      });
    },

    async setBudget(req, ctx) {
      adminOf(ctx);
      const owner = ownerOf(req, true);
      const amount = validAmount(req.amount);
      if (deps.ownerExists && !(await deps.ownerExists(owner))) throw notFound(owner.kind, owner.id);
      return create(SetBudgetResponseSchema, { budget: toBudgetMsg(await budgetStore.setBudget(owner, amount)) });
    },

    async topUpBudget(req, ctx) {
      adminOf(ctx);
      const owner = ownerOf(req);
      const amount = validAmount(req.amount);
      try {
        return create(TopUpBudgetResponseSchema, { budget: toBudgetMsg(await budgetStore.topUp(owner, amount)) });
      } catch (err) {
        if (isOutOfRange(err)) throw failedPrecondition("The budget would exceed its maximum.", "BUDGET_TOO_LARGE");
        throw err;
      }
    },

    async deleteBudget(req, ctx) {
      adminOf(ctx);
      const owner = ownerOf(req);
      if (!(await budgetStore.deleteBudget(owner))) throw notFound("budget", ownerName(owner));
      return create(DeleteBudgetResponseSchema, {});
    },
  };
}
