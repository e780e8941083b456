import type { ServiceImpl } from "@connectrpc/connect";
import type { AccountService } from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import { createUserHandlers } from "./admin-handlers.js";
import type { AccountDeps } from "./deps.js";
import { createKeyHandlers } from "./key-handlers.js";
import { createMeHandlers } from "./me-handlers.js";
import { createRoleOrgHandlers } from "./role-org-handlers.js";

/** AccountService: the caller's profile and keys, login, and admin CRUD of users, roles and organizations. */
export function createAccountService(deps: AccountDeps): ServiceImpl<typeof AccountService> {
  return {
    ...createMeHandlers(deps),
    ...createKeyHandlers(deps),
    ...createUserHandlers(deps),
    ...createRoleOrgHandlers(deps),
  };
}
