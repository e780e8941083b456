import { Migration } from "@mikro-orm/migrations";

/**
 * Accounts: an API key's own rate limits (null = none, 0 = every model call with the key refused), checked beside
 * its role's. All bigint: the API takes uint32, beyond PostgreSQL's int.
 */
export class Migration20261123040000KeyLimits extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table "api_key" add column "requests_per_minute" bigint null, add column "requests_per_day" bigint null, add column "tokens_per_minute" bigint null, add column "tokens_per_day" bigint null;`,
    );
    this.addSql(
      `alter table "api_key" add constraint "api_key_limits_in_range" check (coalesce("requests_per_minute", 0) between 0 and 4294967295 and coalesce("requests_per_day", 0) between 0 and 4294967295 and coalesce("tokens_per_minute", 0) between 0 and 4294967295 and coalesce("tokens_per_day", 0) between 0 and 4294967295);`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(
      `alter table "api_key" drop constraint "api_key_limits_in_range", drop column "requests_per_minute", drop column "requests_per_day", drop column "tokens_per_minute", drop column "tokens_per_day";`,
    );
  }
}
