import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Budget as BudgetMsg,
  BudgetSchema,
  type CarbonFootprint,
  CarbonFootprintSchema,
  type DailyUsage as DailyUsageMsg,
  DailyUsageSchema,
  OwnerKind as OwnerKindMsg,
  type UsageRecord as UsageRecordMsg,
  UsageRecordSchema,
} from "../../gen/passerelle/governance/v1/resources_pb.js";
import type { BudgetState } from "./budget-store.js";
import type { OwnerKind, UsageRecord } from "./entities.js";
import { formatUnits, nanosToUnits } from "./money.js";
import type { DailyUsage } from "./usage-store.js";

/** Stored owner kinds ⇄ proto enum values. */
export function ownerKindFromMsg(kind: OwnerKindMsg): OwnerKind | undefined {
  if (kind === OwnerKindMsg.USER) return "user";
  if (kind === OwnerKindMsg.ORGANIZATION) return "organization";
  return undefined;
}

export function ownerKindToMsg(kind: OwnerKind): OwnerKindMsg {
  return kind === "user" ? OwnerKindMsg.USER : OwnerKindMsg.ORGANIZATION;
}

function carbon(c: { kwhMin: number; kwhMax: number; kgco2Min: number; kgco2Max: number }): CarbonFootprint {
  return create(CarbonFootprintSchema, {
    kwh: { min: c.kwhMin, max: c.kwhMax },
    kgco2eq: { min: c.kgco2Min, max: c.kgco2Max },
  });
}

export function toUsageRecordMsg(r: UsageRecord): UsageRecordMsg {
  return create(UsageRecordSchema, {
    id: r.id,
    requestId: r.requestId,
    createTime: timestampFromDate(r.createdAt),
    userId: r.userId,
    keyId: r.keyId ?? "",
    organizationId: r.organizationId ?? "",
    model: r.model,
    providerId: r.providerId ?? "",
    endpoint: r.endpoint,
    status: r.status,
    errorCode: r.errorCode ?? "",
    promptTokens: r.promptTokens,
    completionTokens: r.completionTokens,
    cost: nanosToUnits(r.costNanos),
    costExact: formatUnits(r.costNanos),
    carbon: carbon(r),
    latencyMs: r.latencyMs,
    ttftMs: r.ttftMs ?? undefined,
    audioSeconds: r.audioSeconds ?? undefined,
  });
}

export function toDailyUsageMsg(d: DailyUsage): DailyUsageMsg {
  return create(DailyUsageSchema, {
    day: d.day,
    model: d.model,
    requests: BigInt(d.requests),
    failedRequests: BigInt(d.failedRequests),
    promptTokens: BigInt(d.promptTokens),
    completionTokens: BigInt(d.completionTokens),
    cost: nanosToUnits(d.costNanos),
    costExact: formatUnits(d.costNanos),
    carbon: carbon(d),
  });
}

export function toBudgetMsg(b: BudgetState): BudgetMsg {
  return create(BudgetSchema, {
    ownerKind: ownerKindToMsg(b.owner.kind),
    ownerId: b.owner.id,
    amount: nanosToUnits(b.amountNanos),
    spent: nanosToUnits(b.spentNanos),
    reserved: nanosToUnits(b.reservedNanos),
    remaining: nanosToUnits(b.remainingNanos),
    updateTime: timestampFromDate(b.updatedAt),
  });
}
