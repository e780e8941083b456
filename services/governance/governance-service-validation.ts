import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { OwnerKind as OwnerKindMsg } from "../../gen/passerelle/governance/v1/resources_pb.js";
import { type Principal, principalOf } from "../platform/context.js";
import { invalidArgument, notFound, permissionDenied } from "../platform/errors.js";
import { isUuid } from "../platform/paging.js";
import type { Owner } from "./entities.js";
import { ownerKindFromMsg } from "./governance-service-mappers.js";
import { parseUnits } from "./money.js";
import type { UsageFilter, UsageScope } from "./usage-store.js";

/** Request checks of the GovernanceService: each failure names the request field at fault. */

export { principalOf };

/** The caller, who must hold the `admin` permission. */
export function adminOf(ctx: HandlerContext): Principal {
  const p = principalOf(ctx);
  if (!p.permissions.has("admin")) throw permissionDenied("This operation needs the 'admin' permission.");
  return p;
}

// The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;
const MAX_FILTER_LENGTH = 200;

function time(ts: Timestamp | undefined, param: string): Date | undefined {
  if (!ts) return undefined;
  if (ts.seconds < MIN_SECONDS || ts.seconds > MAX_SECONDS || ts.nanos < 0 || ts.nanos > 999_999_999) {
    throw invalidArgument(`'${param}' is not a valid timestamp.`, param);
  }
  return timestampDate(ts);
}

function text(value: string, param: string): string | undefined {
  if (value.length > MAX_FILTER_LENGTH) {
    throw invalidArgument(`'${param}' is longer than ${MAX_FILTER_LENGTH} characters.`, param);
  }
  return value || undefined;
}

/** The filters every usage request carries. */
export interface FilterFields {
  startTime?: Timestamp;
  endTime?: Timestamp;
  model: string;
  endpoint: string;
}

/** A store filter over `scope`: start inclusive, end exclusive and after the start. */
export function usageFilter(scope: UsageScope, req: FilterFields): UsageFilter {
  const from = time(req.startTime, "start_time");
  const to = time(req.endTime, "end_time");
  if (from && to && to <= from) throw invalidArgument("'end_time' must be after 'start_time'.", "end_time");
  return { scope, from, to, model: text(req.model, "model"), endpoint: text(req.endpoint, "endpoint") };
}

/** The scope oneof of the admin usage requests. Explicit on purpose: an empty request does not mean everyone. */
export type ScopeField =
  | { case: "userId"; value: string }
  | { case: "organizationId"; value: string }
  | { case: "all"; value: boolean }
  | { case: undefined; value?: undefined };

export function usageScope(scope: ScopeField): UsageScope {
  switch (scope.case) {
    case "userId":
      if (!isUuid(scope.value)) throw invalidArgument("'user_id' is not a valid id.", "user_id");
      return { userId: scope.value };
    case "organizationId":
      if (!isUuid(scope.value)) throw invalidArgument("'organization_id' is not a valid id.", "organization_id");
      return { organizationId: scope.value };
    case "all":
      if (!scope.value) throw invalidArgument("'all' must be true when set.", "all");
      return { all: true };
    default:
      throw invalidArgument("Say whose usage: set 'user_id', 'organization_id' or 'all'.", "scope", "SCOPE_REQUIRED");
  }
}

/** The largest amount accepted in one request, in currency units (budgets are bigint nano-units: ≤ 9.2 × 10⁹). */
export const MAX_AMOUNT = 1_000_000_000;

/** An amount of currency units in nano-units: finite, ≥ 0, ≤ MAX_AMOUNT, and no more than 9 decimals. */
export function validAmount(value: number, param = "amount"): bigint {
  if (!Number.isFinite(value)) throw invalidArgument(`'${param}' must be a finite number.`, param);
  if (value < 0) throw invalidArgument(`'${param}' must not be negative.`, param);
  if (value > MAX_AMOUNT) throw invalidArgument(`'${param}' must be at most ${MAX_AMOUNT}.`, param);
  // The double must be the nearest one to a decimal with at most 9 decimals (0.1 is; 0.0000000001 is not).
  const fixed = value.toFixed(9);
  if (Number(fixed) !== value) throw invalidArgument(`'${param}' has more than 9 decimals.`, param);
  return parseUnits(fixed);
}

export function ownerKindOf(kind: OwnerKindMsg): Owner["kind"] {
  const k = ownerKindFromMsg(kind);
  if (!k) throw invalidArgument("'owner_kind' must be user or organization.", "owner_kind");
  return k;
}

/**
 * The owner a budget call is about. A malformed id names no budget, so reads answer NotFound; a write that would
 * create a budget (SetBudget) refuses it as bad input instead.
 */
export function ownerOf(req: { ownerKind: OwnerKindMsg; ownerId: string }, creating = false): Owner {
  const kind = ownerKindOf(req.ownerKind);
  if (!isUuid(req.ownerId)) {
    if (creating) throw invalidArgument(`'owner_id' is not a valid ${kind} id.`, "owner_id");
    throw notFound("budget", `${kind}/${req.ownerId}`);
  }
  return { kind, id: req.ownerId };
}
