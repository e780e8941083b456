import type { Migration } from "@mikro-orm/migrations";
import { Migration20261123000000Accounts } from "./20261123000000-accounts.js";
import { Migration20261123010000Models } from "./20261123010000-models.js";
import { Migration20261123020000Governance } from "./20261123020000-governance.js";
import { Migration20261123030000GrantLimits } from "./20261123030000-grant-limits.js";
import { Migration20261123040000KeyLimits } from "./20261123040000-key-limits.js";
import { Migration20261123050000Collections } from "./20261123050000-collections.js";
import { Migration20261124000000ModelsFileEntries } from "./20261124000000-models-file-entries.js";

type MigrationClass = new (...args: ConstructorParameters<typeof Migration>) => Migration;

/** Every committed migration, in order; listed explicitly so that no file discovery happens at run time. */
export const migrations: { name: string; class: MigrationClass }[] = [
  { name: "20261123000000-accounts", class: Migration20261123000000Accounts },
  { name: "20261123010000-models", class: Migration20261123010000Models },
  { name: "20261123020000-governance", class: Migration20261123020000Governance },
  { name: "20261123030000-grant-limits", class: Migration20261123030000GrantLimits },
  { name: "20261123040000-key-limits", class: Migration20261123040000KeyLimits },
  { name: "20261123050000-collections", class: Migration20261123050000Collections },
  { name: "20261124000000-models-file-entries", class: Migration20261124000000ModelsFileEntries },
];
