import { Migration } from "@mikro-orm/migrations";

/** Accounts: organizations, roles, users, API keys. PostgreSQL 15-compatible (CI runs 15, PGlite is 18). */
export class Migration20261123000000Accounts extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "organization" ("id" uuid not null, "name" varchar(200) not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "organization" add constraint "organization_name_unique" unique ("name");`);

    this.addSql(
      `create table "role" ("id" uuid not null, "name" varchar(100) not null, "permissions" text[] not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "role" add constraint "role_name_unique" unique ("name");`);

    this.addSql(
      `create table "app_user" ("id" uuid not null, "email" varchar(320) not null, "name" varchar(200) not null, "password_hash" text null, "role_id" uuid not null, "organization_id" uuid null, "expires_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "app_user" add constraint "app_user_email_unique" unique ("email");`);
    this.addSql(`create index "app_user_role_id_index" on "app_user" ("role_id");`);
    this.addSql(`create index "app_user_organization_id_index" on "app_user" ("organization_id");`);

    this.addSql(
      `create table "api_key" ("id" uuid not null, "user_id" uuid not null, "name" varchar(100) not null, "key_hash" varchar(64) not null, "masked" varchar(32) not null, "kind" varchar(16) not null, "expires_at" timestamptz null, "revoked_at" timestamptz null, "last_used_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "api_key_user_id_index" on "api_key" ("user_id");`);
    this.addSql(`alter table "api_key" add constraint "api_key_key_hash_unique" unique ("key_hash");`);

    this.addSql(
      `alter table "app_user" add constraint "app_user_role_id_foreign" foreign key ("role_id") references "role" ("id") on delete restrict;`,
    );
    this.addSql(
      `alter table "app_user" add constraint "app_user_organization_id_foreign" foreign key ("organization_id") references "organization" ("id") on delete restrict;`,
    );
    this.addSql(
      `alter table "api_key" add constraint "api_key_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "api_key" cascade;`);
    this.addSql(`drop table if exists "app_user" cascade;`);
    this.addSql(`drop table if exists "role" cascade;`);
    this.addSql(`drop table if exists "organization" cascade;`);
  }
}
