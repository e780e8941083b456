import { v7 as uuidv7 } from "uuid";
import type { UsageRecord } from "../../services/governance/entities.js";

/** A valid usage record for tests: a new id and user, 10 + 5 tokens, no cost or carbon, unless `over` says otherwise. */
export function usageRecord(over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    id: uuidv7(),
    requestId: "req",
    createdAt: new Date(),
    userId: uuidv7(),
    keyId: null,
    organizationId: null,
    model: "m",
    providerId: null,
    endpoint: "chat.completions",
    status: 200,
    errorCode: null,
    promptTokens: 10,
    completionTokens: 5,
    costNanos: 0n,
    kwhMin: 0,
    kwhMax: 0,
    kgco2Min: 0,
    kgco2Max: 0,
    latencyMs: 10,
    ttftMs: null,
    audioSeconds: null,
    ...over,
  };
}
