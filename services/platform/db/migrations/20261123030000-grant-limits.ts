import { Migration } from "@mikro-orm/migrations";

/**
 * Governance: a role's limits on a model live on its grant (null = unlimited, 0 = forbidden). The limits are
 * bigint: the API takes uint32, beyond PostgreSQL's int.
 */
export class Migration20261123030000GrantLimits extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table "model_grant" add column "requests_per_minute" bigint null, add column "requests_per_day" bigint null, add column "tokens_per_minute" bigint null, add column "tokens_per_day" bigint null;`,
    );
    this.addSql(
      `alter table "model_grant" add constraint "model_grant_limits_non_negative" check (coalesce("requests_per_minute", 0) >= 0 and coalesce("requests_per_day", 0) >= 0 and coalesce("tokens_per_minute", 0) >= 0 and coalesce("tokens_per_day", 0) >= 0);`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(
      `alter table "model_grant" drop constraint "model_grant_limits_non_negative", drop column "requests_per_minute", drop column "requests_per_day", drop column "tokens_per_minute", drop column "tokens_per_day";`,
    );
  }
}
