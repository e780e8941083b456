import type { ServiceImpl } from "@connectrpc/connect";
import type { GovernanceService } from "../../gen/passerelle/governance/v1/governance_service_pb.js";
import type { GovernanceDeps } from "./governance-deps.js";
import { createBudgetHandlers } from "./governance-service-budgets.js";
import { createUsageHandlers } from "./governance-service-usage.js";

export type { GovernanceDeps } from "./governance-deps.js";

/**
 * GovernanceService: usage records, daily aggregates and CSV exports (the caller's own; anyone's for admins) and
 * budgets, over the usage and budget stores.
 */
export function createGovernanceService(deps: GovernanceDeps): ServiceImpl<typeof GovernanceService> {
  return { ...createUsageHandlers(deps), ...createBudgetHandlers(deps) };
}
