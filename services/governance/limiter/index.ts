export { formatDuration, rateLimitHeaders } from "./headers.js";
export type {
  Decision,
  DecisionOutcome,
  LimiterWindows,
  LimitName,
  LimitStatus,
  Limits,
  LimitsStatus,
  RateLimiter,
  Refusal,
  Reservation,
  ReservedCounter,
  ReserveInput,
  ScopedLimitStatus,
  StatusInput,
  WindowName,
  WindowSpec,
} from "./limiter.js";
export { DEFAULT_WINDOWS, UNLIMITED } from "./limiter.js";
export { createLimitsView, type LimitView, type ModelLimitsView, type UsableModels } from "./limits-view.js";
export { createMemoryLimiter } from "./memory-limiter.js";
export {
  createLimiterRedisClient,
  createRedisLimiter,
  LIMITER_KEY_PREFIX,
  type RedisLimiterOptions,
} from "./redis-limiter.js";
export { createResilientLimiter, type OutagePolicy, type ResilientLimiterOptions } from "./resilient-limiter.js";
