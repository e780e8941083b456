import { Migration } from "@mikro-orm/migrations";

/**
 * Models: the entries of the models file (`PASSERELLE_MODELS_FILE`) that a start created or found, by key
 * (`model:<name>`, `provider:<model> <url> <upstream model>`). The database wins afterwards: an entry an
 * administrator deleted or renamed is not created again at the next start.
 */
export class Migration20261124000000ModelsFileEntries extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "models_file_entry" ("key" text not null primary key, "applied_at" timestamptz not null default now());`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "models_file_entry";`);
  }
}
