import type { ServiceImpl } from "@connectrpc/connect";
import type { GovernanceService } from "../../gen/passerelle/governance/v1/governance_service_pb.js";
import type { BudgetStore } from "./budget-store.js";
import type { Owner } from "./entities.js";
import { createBudgetHandlers } from "./governance-service-budgets.js";
import { createUsageHandlers } from "./governance-service-usage.js";
import type { UsageStore } from "./usage-store.js";

export interface GovernanceDeps {
  usageStore: UsageStore;
  budgetStore: BudgetStore;
  /**
   * Whether a budget's owner (a user or an organization) exists, so that SetBudget refuses unknown ones with
   * NotFound; unset = not checked (governance holds no foreign keys to accounts, see entities.ts).
   */
  ownerExists?: (owner: Owner) => Promise<boolean>;
  /** Size at which export chunks are cut, at a line end (default 16 Ki characters). */
  exportChunkChars?: number;
}

/**
 * GovernanceService: usage records, daily aggregates and CSV exports (the caller's own; anyone's for admins) and
 * budgets, over the usage and budget stores.
 */
export function createGovernanceService(deps: GovernanceDeps): ServiceImpl<typeof GovernanceService> {
  return { ...createUsageHandlers(deps), ...createBudgetHandlers(deps) };
}
