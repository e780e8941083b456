import type { DescService } from "@bufbuild/protobuf";
import {
  type Client,
  createClient,
  createRouterTransport,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import { kPrincipal, type Principal } from "../../services/platform/context.js";

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

/**
 * A Connect client of one service implementation, in process (the router transport), whose every call arrives as
 * `principal`'s: the auth interceptor's work, without accounts or keys.
 */
export function clientAs<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  principal: Principal = TEST_PRINCIPAL,
): Client<S> {
  const authenticate: Interceptor = (next) => (req) => {
    req.contextValues.set(kPrincipal, principal);
    return next(req);
  };
  return createClient(
    service,
    createRouterTransport((r) => r.service(service, impl), { router: { interceptors: [authenticate] } }),
  );
}
