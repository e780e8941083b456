import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { AccountStore } from "./account-store.js";
import { PERMISSION_NAMES } from "./mappers.js";
import { generateApiKey, hashApiKey, hashPassword, MIN_PASSWORD_LENGTH, maskApiKey } from "./secrets.js";

export interface BootstrapSettings {
  email: string;
  password: string | undefined;
  /** A fixed admin key (automation); otherwise one is generated and returned once. */
  key: string | undefined;
}

export interface BootstrapResult {
  /** True when this start created the first admin. */
  created: boolean;
  email: string;
  /** The generated admin key, to print once; undefined when none was generated. */
  generatedKey: string | undefined;
}

/**
 * On an empty database: creates the `admin` role (every permission), the admin user and one admin key. On later
 * starts: makes sure a configured PASSERELLE_BOOTSTRAP_ADMIN_KEY still authenticates the bootstrap admin.
 */
export async function bootstrapAccounts(
  store: AccountStore,
  settings: BootstrapSettings,
  logger: Logger,
): Promise<BootstrapResult> {
  if ((await store.countUsers()) > 0) {
    if (settings.key && !(await store.findByKeyHash(hashApiKey(settings.key)))) {
      const admin = await store.getUserByEmail(settings.email);
      if (admin) {
        try {
          await addKey(store, admin.id, settings.key);
          logger.info({ email: settings.email }, "attached PASSERELLE_BOOTSTRAP_ADMIN_KEY to the bootstrap admin");
        } catch (err) {
          // Another process starting at the same moment stored the same key first.
          if (!(err instanceof ConnectError && err.code === Code.AlreadyExists)) throw err;
        }
      } else {
        logger.warn(
          { email: settings.email },
          "PASSERELLE_BOOTSTRAP_ADMIN_KEY ignored: no user with the bootstrap e-mail",
        );
      }
    }
    return { created: false, email: settings.email, generatedKey: undefined };
  }
  try {
    const role =
      (await store.getRoleByName("admin")) ?? (await store.createRole("admin", [...PERMISSION_NAMES.values()].sort()));
    if (settings.password && settings.password.length < MIN_PASSWORD_LENGTH) {
      logger.warn(`PASSERELLE_BOOTSTRAP_ADMIN_PASSWORD is shorter than ${MIN_PASSWORD_LENGTH} characters`);
    }
    const user = await store.createUser({
      email: settings.email,
      name: "Administrator",
      passwordHash: settings.password ? await hashPassword(settings.password) : null,
      roleId: role.id,
      organizationId: null,
      expiresAt: null,
    });
    const secret = settings.key ?? generateApiKey();
    await addKey(store, user.id, secret);
    return { created: true, email: user.email, generatedKey: settings.key ? undefined : secret };
  } catch (err) {
    // Another process bootstrapped at the same moment: its admin stands.
    if (err instanceof ConnectError && err.code === Code.AlreadyExists) {
      return { created: false, email: settings.email, generatedKey: undefined };
    }
    throw err;
  }
}

async function addKey(store: AccountStore, userId: string, secret: string): Promise<void> {
  await store.createKey({
    userId,
    name: "bootstrap",
    keyHash: hashApiKey(secret),
    masked: maskApiKey(secret),
    kind: "standard",
    expiresAt: null,
  });
}
