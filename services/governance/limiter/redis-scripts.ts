/**
 * The three Lua scripts of the Redis limiter: the memory limiter (memory-limiter.ts) is the same algorithm in
 * TypeScript, step for step; change both together. Every key of one call shares one hash tag (Cluster-safe).
 *
 * A counter is a hash: o = oldest bucket index that may hold counts, l = newest bucket written, R and T = running
 * totals over buckets o..l, r<j> and t<j> = requests and tokens counted in bucket j (j = floor(ms / bucketMs)).
 * A decision counts the buckets j >= idx - buckets; older ones are subtracted from R/T and deleted (load). The
 * hash expires when its newest bucket leaves the window. Time is the server's TIME (one clock for all processes).
 */

/** Shared by both scripts: the clock and load(). */
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Reads a counter and the fields r<j>, t<j> of bucket j (j >= cutoff), dropping the buckets older than cutoff.
-- Returns nil when the counter is empty (deleted), else {l, R, T, r = r<j>, t = t<j>}.
local function load(key, cutoff, j)
  local h = redis.call('HMGET', key, 'o', 'l', 'R', 'T', 'r' .. j, 't' .. j)
  local o = tonumber(h[1])
  if o == nil then return nil end
  local l = tonumber(h[2])
  if l < cutoff then
    redis.call('DEL', key)
    return nil
  end
  local R, T = tonumber(h[3]), tonumber(h[4])
  if o < cutoff then
    local fields = {}
    for i = o, cutoff - 1 do
      fields[#fields + 1] = 'r' .. i
      fields[#fields + 1] = 't' .. i
    end
    local v = redis.call('HMGET', key, unpack(fields))
    for x = 1, #v, 2 do
      R = R - (tonumber(v[x]) or 0)
      T = T - (tonumber(v[x + 1]) or 0)
    end
    redis.call('HDEL', key, unpack(fields))
    redis.call('HSET', key, 'o', cutoff, 'R', R, 'T', T)
  end
  return {l = l, R = R, T = T, r = tonumber(h[5]) or 0, t = tonumber(h[6]) or 0}
end
`;

/**
 * KEYS[1] = reservation marker, KEYS[2..] = counters.
 * ARGV[1] = estimated tokens, ARGV[2] = marker TTL (ms), then per counter: bucket ms, bucket count, requests
 * limit, tokens limit (-1 = not checked).
 * Returns {allowed 0|1, retry-after ms (-1 never, -2 when allowed), binding counter index (0-based), binding kind
 * (0 requests, 1 tokens), server time (ms), then per counter: requests, tokens, ms until its usage has aged out}.
 */
export const RESERVE_LUA = `${PRELUDE}
-- Ms until enough old buckets have left for need to fit under limit; -1 when it never will.
local function fit(key, kind, used, need, limit, cutoff, l, b, w)
  if need > limit then return -1 end
  local fields = {}
  for j = cutoff, l do fields[#fields + 1] = kind .. j end
  if #fields > 0 then
    local v = redis.call('HMGET', key, unpack(fields))
    for x = 1, #v do
      used = used - (tonumber(v[x]) or 0)
      if used + need <= limit then return (cutoff + x) * b + w - now end
    end
  end
  return w + b
end

local cost = tonumber(ARGV[1])
local nc = #KEYS - 1
local worst, failed, failedKind = -2, 0, 0
local st = {}
for i = 1, nc do
  local a = 3 + (i - 1) * 4
  local b, n, rl, tl = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local w = b * n
  local idx = math.floor(now / b)
  local cutoff = idx - n
  local key = KEYS[i + 1]
  local s = load(key, cutoff, idx)
  local l, R, T, rj, tj = -1, 0, 0, 0, 0
  if s then l, R, T, rj, tj = s.l, s.R, s.T, s.r, s.t end
  if rl >= 0 and R + 1 > rl then
    local r = fit(key, 'r', R, 1, rl, cutoff, l, b, w)
    if worst ~= -1 and (r == -1 or r > worst) then worst, failed, failedKind = r, i - 1, 0 end
  end
  if tl >= 0 and T + cost > tl then
    local r = fit(key, 't', T, cost, tl, cutoff, l, b, w)
    if worst ~= -1 and (r == -1 or r > worst) then worst, failed, failedKind = r, i - 1, 1 end
  end
  st[i] = {key = key, b = b, w = w, idx = idx, cutoff = cutoff, exists = s ~= nil, l = l, R = R, T = T, rj = rj, tj = tj}
end

local allowed = 0
if worst == -2 then
  allowed = 1
  for i = 1, nc do
    local s = st[i]
    -- The expiry is where the newest bucket leaves the window: set again only when the newest bucket changes.
    local moved = s.l ~= s.idx
    s.R, s.T, s.l = s.R + 1, s.T + cost, s.idx
    local r, tk = 'r' .. s.idx, 't' .. s.idx
    if s.exists then
      redis.call('HSET', s.key, r, s.rj + 1, tk, s.tj + cost, 'l', s.l, 'R', s.R, 'T', s.T)
    else
      redis.call('HSET', s.key, r, 1, tk, cost, 'l', s.l, 'R', s.R, 'T', s.T, 'o', s.cutoff)
      s.exists = true
    end
    if moved then redis.call('PEXPIRE', s.key, (s.l + 1) * s.b + s.w - now) end
  end
  redis.call('SET', KEYS[1], cost, 'PX', ARGV[2])
end

local out = {allowed, worst, failed, failedKind, now}
for i = 1, nc do
  local s = st[i]
  local reset = 0
  if s.exists then reset = (s.l + 1) * s.b + s.w - now end
  out[#out + 1] = s.R
  out[#out + 1] = s.T
  out[#out + 1] = reset
end
return out
`;

/**
 * KEYS[1] = reservation marker, KEYS[2..] = the counters it was counted in.
 * ARGV[1] = actual − estimated tokens, then per counter: bucket ms, bucket count, the reservation's bucket.
 * Returns 1 when applied, 0 when the marker was gone (settled already, or older than its window).
 */
export const SETTLE_LUA = `
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
local delta = tonumber(ARGV[1])
if delta == 0 then return 1 end
${PRELUDE}
for i = 1, #KEYS - 1 do
  local a = 2 + (i - 1) * 3
  local b, n, rj = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local w = b * n
  local idx = math.floor(now / b)
  local cutoff = idx - n
  local key = KEYS[i + 1]
  -- Back into the bucket it was taken from while that bucket counts; an excess after it aged out is charged now.
  local j = nil
  if rj >= cutoff then j = rj elseif delta > 0 then j = idx end
  if j then
    local s = load(key, cutoff, j)
    local tk = 't' .. j
    if s then
      redis.call('HSET', key, tk, s.t + delta, 'T', s.T + delta)
      if j > s.l then
        redis.call('HSET', key, 'l', j)
        redis.call('PEXPIRE', key, (j + 1) * b + w - now)
      end
    else
      redis.call('HSET', key, tk, delta, 'l', j, 'R', 0, 'T', delta, 'o', cutoff)
      redis.call('PEXPIRE', key, (j + 1) * b + w - now)
    end
  end
end
return 1
`;

/**
 * Read-only: writes nothing, not even the pruning load() does, so it is safe to call as often as a page is shown.
 * KEYS[1..] = counters. ARGV, per counter: bucket ms, bucket count.
 * Returns {server time (ms), then per counter: requests, tokens, ms until its usage has aged out (0 when empty)}:
 * the totals over the buckets that still count, as RESERVE_LUA would see them before counting anything.
 */
export const STATUS_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {now}
for i = 1, #KEYS do
  local a = 1 + (i - 1) * 2
  local b, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local w = b * n
  local cutoff = math.floor(now / b) - n
  local key = KEYS[i]
  local h = redis.call('HMGET', key, 'o', 'l', 'R', 'T')
  local o, l = tonumber(h[1]), tonumber(h[2])
  local R, T, reset = 0, 0, 0
  if o ~= nil and l >= cutoff then
    R, T = tonumber(h[3]), tonumber(h[4])
    if o < cutoff then
      local fields = {}
      for j = o, cutoff - 1 do
        fields[#fields + 1] = 'r' .. j
        fields[#fields + 1] = 't' .. j
      end
      local v = redis.call('HMGET', key, unpack(fields))
      for x = 1, #v, 2 do
        R = R - (tonumber(v[x]) or 0)
        T = T - (tonumber(v[x + 1]) or 0)
      end
    end
    reset = (l + 1) * b + w - now
  end
  out[#out + 1] = R
  out[#out + 1] = T
  out[#out + 1] = reset
end
return out
`;
