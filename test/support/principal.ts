import type { Principal } from "../../services/platform/context.js";

/** A caller for service unit tests that set the principal themselves (no accounts, no key): an admin, no limits. */
export const TEST_PRINCIPAL: Principal = {
  userId: "u",
  email: "a@b.c",
  name: "A",
  roleId: "r",
  roleName: "admin",
  permissions: new Set(["admin"]),
  organizationId: null,
  userExpiresAt: null,
  keyId: "k",
  keyExpiresAt: null,
};
