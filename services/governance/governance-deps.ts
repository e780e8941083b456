import type { BudgetStore } from "./budget-store.js";
import type { Owner } from "./entities.js";
import type { UsageStore } from "./usage-store.js";

/** What GovernanceService's handlers stand on (one file, so that the handler files and the service import it alike). */
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
