#!/usr/bin/env node
// First: MikroORM must see the synchronous context store when it is evaluated (see the module).
import "./platform/db/orm-context.js";
import { parseArgs } from "node:util";
import pino from "pino";
import { createAccountStore } from "./accounts/account-store.js";
import { accountEntities } from "./accounts/entities.js";
import { generateApiKey, hashApiKey, hashPassword, MIN_PASSWORD_LENGTH, maskApiKey } from "./accounts/secrets.js";
import { loadConfig } from "./config.js";
import { openDatabase } from "./platform/db/database.js";
import { embeddedServerRunning, embeddedSocketDir } from "./platform/db/embedded.js";

const USAGE = `Passerelle operator CLI: npm run admin -- <command> [options]   (or: npx passerelle <command>)

Commands:
  create-user --email E --role ROLE [--name N] [--password P] [--organization ORG]
                      ROLE and ORG are names; the organization is created if missing.
  create-key  --email E [--name N] [--expires-days D]
                      prints a new API key for the user, once.
  set-password --email E --password P
  list-users

It reads the same settings as the platform (DATABASE_URL, PASSERELLE_DATA_DIR). With the embedded database it
connects to the running platform's database, or opens it directly when the platform is stopped.`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      email: { type: "string" },
      name: { type: "string" },
      password: { type: "string" },
      role: { type: "string" },
      organization: { type: "string" },
      "expires-days": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const command = positionals[0];
  if (!command || values.help) {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  const config = loadConfig();
  const logger = pino({ level: "warn" });
  const endpoint =
    !config.databaseUrl && (await embeddedServerRunning(config.dataDir))
      ? { host: embeddedSocketDir(config.dataDir), port: 5432 }
      : undefined;
  const db = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    entities: [...accountEntities],
    logger,
    poolMax: 1,
    endpoint,
  });
  const store = createAccountStore(db);
  const need = (v: string | undefined, flag: string): string => {
    if (!v) throw new UsageError(`--${flag} is required`);
    return v;
  };
  try {
    switch (command) {
      case "create-user": {
        const email = need(values.email, "email").toLowerCase();
        const roleName = need(values.role, "role");
        const role = await store.getRoleByName(roleName);
        if (!role) throw new UsageError(`no role named '${roleName}'`);
        let orgId: string | null = null;
        if (values.organization) {
          const orgs = await store.listOrganizations({ limit: 100 }, { name: values.organization });
          const org =
            orgs.find((o) => o.name === values.organization) ?? (await store.createOrganization(values.organization));
          orgId = org.id;
        }
        if (values.password && values.password.length < MIN_PASSWORD_LENGTH) {
          throw new UsageError(`the password needs at least ${MIN_PASSWORD_LENGTH} characters`);
        }
        const user = await store.createUser({
          email,
          name: values.name ?? email.split("@")[0] ?? email,
          passwordHash: values.password ? await hashPassword(values.password) : null,
          roleId: role.id,
          organizationId: orgId,
          expiresAt: null,
        });
        process.stdout.write(`created user ${user.email} (${user.id}) with role ${role.name}\n`);
        return 0;
      }
      case "create-key": {
        const email = need(values.email, "email").toLowerCase();
        const user = await store.getUserByEmail(email);
        if (!user) throw new UsageError(`no user with e-mail ${email}`);
        const days = values["expires-days"] ? Number(values["expires-days"]) : undefined;
        if (days !== undefined && !(Number.isInteger(days) && days > 0)) {
          throw new UsageError("--expires-days must be a positive integer");
        }
        const max = config.auth.keyMaxLifetimeDays;
        if (days !== undefined && max !== undefined && days > max) {
          throw new UsageError(`--expires-days is above the maximum key lifetime (${max} days)`);
        }
        const lifetime = days ?? max;
        const secret = generateApiKey();
        await store.createKey({
          userId: user.id,
          name: values.name ?? "cli",
          keyHash: hashApiKey(secret),
          masked: maskApiKey(secret),
          kind: "standard",
          expiresAt: lifetime ? new Date(Date.now() + lifetime * 86_400_000) : null,
        });
        process.stdout.write(`${secret}\n`);
        return 0;
      }
      case "set-password": {
        const email = need(values.email, "email").toLowerCase();
        const password = need(values.password, "password");
        if (password.length < MIN_PASSWORD_LENGTH) {
          throw new UsageError(`the password needs at least ${MIN_PASSWORD_LENGTH} characters`);
        }
        const user = await store.getUserByEmail(email);
        if (!user) throw new UsageError(`no user with e-mail ${email}`);
        await store.updateUser(user.id, { passwordHash: await hashPassword(password) });
        process.stdout.write(`password of ${email} changed\n`);
        return 0;
      }
      case "list-users": {
        let after: string | undefined;
        for (;;) {
          const users = await store.listUsers({ after, limit: 100 }, {});
          for (const u of users) {
            const expires = u.expiresAt ? ` expires ${u.expiresAt.toISOString()}` : "";
            process.stdout.write(`${u.id}  ${u.email}  ${u.name}${expires}\n`);
          }
          if (users.length < 100) break;
          after = users[users.length - 1]?.id;
        }
        return 0;
      }
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } finally {
    await db.close();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`passerelle: ${msg}\n${err instanceof UsageError ? `\n${USAGE}\n` : ""}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
