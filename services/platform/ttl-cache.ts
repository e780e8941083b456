/**
 * Options for every LRUCache with a TTL on the request path.
 *
 * lru-cache reads the clock at most once per `ttlResolution` (default 1 ms). It keeps the reading and arms a timer to
 * forget it, which costs more than reading the clock: one timer per lookup once requests are over 1 ms apart. At
 * concurrency 1 that was up to three timers a request, one per cache the request reads: about 1 % of the request's
 * CPU in the bench's profile. `performance.now()` on every lookup costs less and is exact.
 */
export const PRECISE_TTL = { ttlResolution: 0 } as const;
