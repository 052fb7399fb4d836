"""The Lua scripts behind RedisStore: the same admission rules as MemoryStore, run atomically in Redis.

Time is always the caller's clock (`now` in ARGV), never Redis TIME, so a FakeClock drives tests and
every replica judges by the same rules. Per candidate deployment the caller passes six keys
(see `RedisStore._keys`):

    meta   hash   park_until/park_state/park_reason, backoff, probe_since, probed, l:<limit> (learned),
                  cwnd/rs/rd/rok (slow start: window, round sent / done / succeeded; see memory.py)
    win    zset   one member per reservation in the last minute, scored by its time
    tok    hash   reservation member -> tokens (settled to the real usage)
    day    hash   req, tok for one Pacific day (the day start is part of the key name)
    infl   zset   reservations in flight, scored by their start (stale ones are dropped)
    dmeta  hash   park_until/park_state/park_reason of the deployment itself

and in ARGV, after the common arguments, seven values: fingerprint, rpm, tpm, rpd, tpd, max_parallel
("" for none) and the deployment id (only echoed back in errors). KEYS[1] is the hash of disabled keys.
Numbers go back to Python as strings: Lua numbers would be truncated to integers in a reply.
"""

from __future__ import annotations

_PRELUDE = r"""
local MINUTE = 60
local PROBE = 60
local WINDOW_MAX = 4096
local INF = math.huge
local DAY_TTL = 93600
local WINDOW_TTL_MS = 180000
local SUM = '~sum'  -- field of the tok hash: the tokens of every entry in the window

local function num(s)
  if s == false or s == nil or s == '' then return nil end
  return tonumber(s)
end
local function eff(declared, learned)
  if declared == nil then return learned end
  if learned == nil then return declared end
  return math.min(declared, learned)
end
local function fmt(x)
  if x == INF then return 'inf' end
  return string.format('%.6f', x)
end
local function int(x) return string.format('%d', x) end

local function keys_at(i)
  local k = 1 + (i - 1) * 6
  return KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6]
end
local function args_at(base, i)
  local b = base + (i - 1) * 7
  return ARGV[b + 1], num(ARGV[b + 2]), num(ARGV[b + 3]), num(ARGV[b + 4]), num(ARGV[b + 5]), num(ARGV[b + 6])
end

-- Drop entries at or before now - 60 s; return how many are left and their tokens (kept in tok's SUM field).
local function prune(win, tok, now)
  local old = redis.call('ZRANGEBYSCORE', win, '-inf', now - MINUTE)
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', win, '-inf', now - MINUTE)
    local gone = 0
    for j = 1, #old, 500 do
      local last = math.min(j + 499, #old)
      for _, v in ipairs(redis.call('HMGET', tok, unpack(old, j, last))) do gone = gone + (num(v) or 0) end
      redis.call('HDEL', tok, unpack(old, j, last))
    end
    if gone ~= 0 then redis.call('HINCRBYFLOAT', tok, SUM, string.format('%.17g', -gone)) end
  end
  local count = redis.call('ZCARD', win)
  if count == 0 then
    redis.call('DEL', tok)
    return 0, 0
  end
  return count, num(redis.call('HGET', tok, SUM)) or 0
end

-- Times and token amounts of the entries left, oldest first (only read when tokens are limited or shown).
local function entries(win, tok)
  local flat = redis.call('ZRANGE', win, 0, -1, 'WITHSCORES')
  local ts, members, am = {}, {}, {}
  for j = 1, #flat, 2 do
    members[#members + 1] = flat[j]
    ts[#ts + 1] = tonumber(flat[j + 1])
  end
  for j = 1, #members, 500 do
    local part = redis.call('HMGET', tok, unpack(members, j, math.min(j + 499, #members)))
    for _, v in ipairs(part) do am[#am + 1] = num(v) or 0 end
  end
  return ts, am
end

-- `need` more tokens under `limit`: now, or when enough of the oldest entries have left the window.
local function tokens_free_at(win, tok, now, total, need, limit)
  if total + need <= limit then return now end
  if need > limit then return INF end
  local ts, am = entries(win, tok)
  local excess = total + need - limit
  for j = 1, #ts do
    excess = excess - am[j]
    if excess <= 0 then return ts[j] + MINUTE end
  end
  return now + MINUTE
end

-- One request more under `limit` requests a minute: now, or when the oldest entry in the way leaves.
local function requests_free_at(win, now, count, limit)
  if count + 1 <= limit then return now end
  if limit < 1 then return INF end
  local excess = count + 1 - limit
  local hit = redis.call('ZRANGE', win, excess - 1, excess - 1, 'WITHSCORES')
  if hit[2] then return tonumber(hit[2]) + MINUTE end
  return now + MINUTE
end

-- When this candidate could take `tokens` (now if it can) and why not; plus what was read on the way.
local function evaluate(i, base, tokens, now, midnight)
  local meta, win, tok, day, infl, dmeta = keys_at(i)
  local fp, rpm_d, tpm_d, rpd_d, tpd_d, cap = args_at(base, i)
  local m = redis.call('HMGET', meta, 'park_until', 'park_reason', 'l:rpm', 'l:tpm', 'l:rpd', 'l:tpd',
                       'probe_since', 'probed', 'park_state', 'cwnd', 'rs', 'rd', 'rok')
  local dp = redis.call('HMGET', dmeta, 'park_until', 'park_reason', 'park_state')
  local when, why = now, ''
  local pu = num(m[1])
  if pu and pu > when then when, why = pu, m[2] end
  local du = num(dp[1])
  if du and du > when then when, why = du, dp[2] end
  local info = {m = m, dp = dp, rpm_used = 0, tpm_used = 0}
  local rpm = eff(rpm_d, num(m[3]))
  local tpm = eff(tpm_d, num(m[4]))
  local count, total = prune(win, tok, now)
  info.rpm_used, info.tpm_used = count, total
  local t
  if rpm then
    t = requests_free_at(win, now, count, rpm)
    if t > when then when, why = t, 'rpm ' .. int(rpm) .. ' reached' end
  end
  if tpm and tokens ~= 0 then
    t = tokens_free_at(win, tok, now, total, tokens, tpm)
    if t > when then
      if t < INF then why = 'tpm ' .. int(tpm) .. ' reached'
      else why = 'request (~' .. int(math.floor(tokens)) .. ' tokens) exceeds tpm ' .. int(tpm) end
      when = t
    end
  end
  local dv = redis.call('HMGET', day, 'req', 'tok')
  local dreq, dtok = num(dv[1]) or 0, num(dv[2]) or 0
  info.rpd_used, info.tpd_used = dreq, dtok
  local rpd = eff(rpd_d, num(m[5]))
  if rpd and dreq >= rpd and midnight > when then
    when, why = midnight, 'rpd ' .. int(rpd) .. ' reached, back at midnight Pacific'
  end
  local tpd = eff(tpd_d, num(m[6]))
  if tpd and tokens ~= 0 and dtok + tokens > tpd and midnight > when then
    when, why = midnight, 'tpd ' .. int(tpd) .. ' reached, back at midnight Pacific'
  end
  return when, why, info
end
"""

# KEYS: disabled, then 6 per candidate. ARGV: now, tokens, metered (1/0), reservation member, stale
# in-flight horizon (s), next Pacific midnight, channel, n, then 7 per candidate.
# Returns {1, index} (reserved) or {0, earliest, waiting_on_parallel, why_1, when_1, ..., why_n, when_n}.
RESERVE = _PRELUDE + r"""
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local metered = ARGV[3] == '1'
local rid = ARGV[4]
local stale = tonumber(ARGV[5])
local midnight = tonumber(ARGV[6])
local n = tonumber(ARGV[8])
local BASE = 8
local earliest, parallel = INF, 0
local out = {}
for i = 1, n do
  local meta, win, tok, day, infl, dmeta = keys_at(i)
  local fp, rpm_d, tpm_d, rpd_d, tpd_d, cap = args_at(BASE, i)
  local disabled = redis.call('HGET', KEYS[1], fp)
  local why, when = '', ''
  if disabled then
    why, when = 'disabled (' .. disabled .. ')', 'inf'
  elseif not metered then
    return {1, i}
  else
    local w, reason, info = evaluate(i, BASE, tokens, now, midnight)
    if w <= now then
      redis.call('ZREMRANGEBYSCORE', infl, '-inf', now - stale)
      local flying = redis.call('ZCARD', infl)
      local m = info.m
      local full = cap and flying >= cap
      local probing, window = false, 1
      if not full and m[8] ~= '1' and rpm_d == nil and not m[3] then
        local since = num(m[7])
        local slow = true
        if since == nil then
          redis.call('HSET', meta, 'probe_since', fmt(now))
        elseif now - since >= PROBE then
          redis.call('HSET', meta, 'probed', '1')
          slow = false
        end
        if slow then  -- slow start: rounds of `window` requests, see MemoryStore._slow_start_admits
          window = num(m[10]) or 1
          local rs, rd, rok = num(m[11]) or 0, num(m[12]) or 0, num(m[13]) or 0
          if rs >= window then
            if rd < rs then
              probing = true
            else
              if rok >= window then window = math.min(window * 2, WINDOW_MAX) end
              rs, rd, rok = 0, 0, 0
            end
          end
          if not probing then
            redis.call('HSET', meta, 'cwnd', int(window), 'rs', int(rs + 1), 'rd', int(rd), 'rok', int(rok))
          end
        end
      end
      if full then
        parallel = 1
        why = int(cap) .. ' requests in flight'
      elseif probing then
        parallel = 1
        why = 'limit unknown yet: slow start, ' .. int(window) .. ' at a time'
      else
        redis.call('ZADD', infl, now, rid)
        redis.call('PEXPIRE', infl, math.floor(stale * 1000))
        redis.call('HINCRBY', day, 'req', 1)
        if tokens ~= 0 then redis.call('HINCRBYFLOAT', day, 'tok', ARGV[2]) end
        redis.call('EXPIRE', day, DAY_TTL)
        redis.call('ZADD', win, now, rid)
        redis.call('HSET', tok, rid, ARGV[2])
        if tokens ~= 0 then redis.call('HINCRBYFLOAT', tok, SUM, ARGV[2]) end
        redis.call('PEXPIRE', win, WINDOW_TTL_MS)
        redis.call('PEXPIRE', tok, WINDOW_TTL_MS)
        return {1, i}
      end
    else
      why, when = reason, fmt(w)
      if w < earliest then earliest = w end
    end
  end
  out[#out + 1] = why
  out[#out + 1] = when
end
local reply = {0, fmt(earliest), parallel}
for _, v in ipairs(out) do reply[#reply + 1] = v end
return reply
"""

# Same KEYS/ARGV layout as RESERVE (tokens, metered, member, channel unused). Per candidate returns
# {state, until, reason, rpm_used, tpm_used, rpd_used, tpd_used, in_flight, learned "rpm=5,tpm=..."}.
VIEW = _PRELUDE + r"""
local now = tonumber(ARGV[1])
local midnight = tonumber(ARGV[6])
local n = tonumber(ARGV[8])
local BASE = 8
local reply = {}
for i = 1, n do
  local meta, win, tok, day, infl, dmeta = keys_at(i)
  local fp = args_at(BASE, i)
  local w, why, info = evaluate(i, BASE, 0, now, midnight)
  local state, untl, reason = 'ready', '', ''
  local disabled = redis.call('HGET', KEYS[1], fp)
  if disabled then
    state, reason = 'disabled', disabled
  else
    local best = nil
    for _, p in ipairs({info.m, info.dp}) do
      local pu, ps, pr
      if p == info.m then pu, pr, ps = num(p[1]), p[2], p[9] else pu, pr, ps = num(p[1]), p[2], p[3] end
      if pu and pu > now and (best == nil or pu > best) then
        best, state, reason = pu, ps or 'cooling', pr or ''
      end
    end
    if best then
      untl = fmt(best)
    elseif w > now then
      if string.find(why, 'midnight', 1, true) then state = 'exhausted' else state = 'cooling' end
      untl, reason = fmt(w), why
    end
  end
  local learned = {}
  local names = {'rpm', 'tpm', 'rpd', 'tpd'}
  for j = 1, 4 do
    local v = info.m[2 + j]
    if v then learned[#learned + 1] = names[j] .. '=' .. v end
  end
  local flying = redis.call('ZCOUNT', infl, '-inf', '+inf')
  reply[#reply + 1] = {state, untl, reason, tostring(info.rpm_used), fmt(info.tpm_used), tostring(info.rpd_used),
                       fmt(info.tpd_used), tostring(flying), table.concat(learned, ',')}
end
return reply
"""

# KEYS: infl, tok, day, meta, fail. ARGV: member, tokens (real), tokens (reserved), channel, succeeded (1|0),
# limited (1|0: a 429, which halves the slow-start window).
SETTLE = r"""
redis.call('ZREM', KEYS[1], ARGV[1])
local before = redis.call('HGET', KEYS[2], ARGV[1])
if before then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  local change = tonumber(ARGV[2]) - tonumber(before)
  if change ~= 0 then redis.call('HINCRBYFLOAT', KEYS[2], '~sum', string.format('%.17g', change)) end
end
local delta = tonumber(ARGV[2]) - tonumber(ARGV[3])
if delta ~= 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBYFLOAT', KEYS[3], 'tok', string.format('%.17g', delta))
end
if ARGV[5] == '1' then  -- the attempt succeeded: what record_success does, without another round trip
  redis.call('HSET', KEYS[4], 'backoff', 0)
  redis.call('DEL', KEYS[5])
end
local round = redis.call('HMGET', KEYS[4], 'cwnd', 'rs', 'rd')
if ARGV[6] == '1' then
  local window = math.max(1, math.floor((tonumber(round[1]) or 1) / 2))
  redis.call('HSET', KEYS[4], 'cwnd', string.format('%d', window), 'rs', 0, 'rd', 0, 'rok', 0)
elseif round[2] and (tonumber(round[3]) or 0) < tonumber(round[2]) then
  redis.call('HINCRBY', KEYS[4], 'rd', 1)
  if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[4], 'rok', 1) end
end
redis.call('PUBLISH', ARGV[4], 'settle')
return 1
"""

# KEYS: meta. ARGV: until, state, reason, channel. Never shortens a park already in force; a 429 means
# caution again (the probe rule) from the end of the park.
PARK_SCOPE = r"""
local cur = tonumber(redis.call('HGET', KEYS[1], 'park_until') or '')
local untl = tonumber(ARGV[1])
if cur == nil or untl > cur then
  redis.call('HSET', KEYS[1], 'park_until', ARGV[1], 'park_state', ARGV[2], 'park_reason', ARGV[3])
end
redis.call('HSET', KEYS[1], 'probe_since', ARGV[1])
redis.call('HDEL', KEYS[1], 'probed')
redis.call('PUBLISH', ARGV[4], 'park')
return 1
"""

# KEYS: failures zset. ARGV: now, member, window (s).
RECORD_FAILURE = r"""
local now = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], 3600)
return redis.call('ZCARD', KEYS[1])
"""
