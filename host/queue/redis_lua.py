"""The Lua scripts of the Redis queue (queue/redis.py explains the layout): each one state change, atomic
across every host sharing the Redis."""

from ..redis_conn import many

# Shared Lua helpers. A step's keys all start with its `base` (`<prefix>q:<step>:`).
LIB = """
local function ensure(base)
  if redis.call('EXISTS', base .. 's') == 0 then
    redis.call('XGROUP', 'CREATE', base .. 's', 'steppe', '0', 'MKSTREAM')
  end
end
local function ready(base, rec, due, now)
  if tonumber(due) > tonumber(now) then
    redis.call('ZADD', base .. 'z', due, rec)
  else
    ensure(base)
    redis.call('XADD', base .. 's', '*', 'r', rec)
  end
end
local function enqueue(base, rec, group, due, now)
  if group ~= '' and redis.call('HSETNX', base .. 'o', group, '1') == 0 then
    redis.call('RPUSH', base .. 'w:' .. string.len(group) .. ':' .. group, due .. ' ' .. rec)
    redis.call('INCR', base .. 'n')
    return
  end
  ready(base, rec, due, now)
end
local function release(base, group, now)
  if group == '' then return end
  local item = redis.call('LPOP', base .. 'w:' .. string.len(group) .. ':' .. group)
  if not item then
    redis.call('HDEL', base .. 'o', group)
    return
  end
  redis.call('DECR', base .. 'n')
  local sp = string.find(item, ' ', 1, true)
  ready(base, string.sub(item, sp + 1), string.sub(item, 1, sp - 1), now)
end
local function settle(base, entry)
  if redis.call('XACK', base .. 's', 'steppe', entry) == 0 then return false end
  redis.call('XDEL', base .. 's', entry)
  return true
end
"""
# Tell the other hosts that deliveries are due, at most once per 50 ms across the app (their workers also
# poll, so a put in between is found by the take this wakes, or by the next poll).
WAKE = """
local function wake(flag, channel)
  if redis.call('SET', flag, '1', 'NX', 'PX', 50) then redis.call('PUBLISH', channel, '') end
end
"""


# KEYS: ids, steps, wake flag, wake channel. ARGV: dedupe key or '', window ms, now ms, record tail, n,
# then per route: step, base, due ms, group or '', group as JSON
_PUT = """
if ARGV[1] ~= '' and not redis.call('SET', ARGV[1], '1', 'NX', 'PX', ARGV[2]) then return 0 end
local i = 6
for _ = 1, tonumber(ARGV[5]) do
  local id = redis.call('INCR', KEYS[1])
  redis.call('SADD', KEYS[2], ARGV[i])
  enqueue(ARGV[i + 1], '{"id":' .. id .. ',"g":' .. ARGV[i + 4] .. ARGV[4], ARGV[i + 3], ARGV[i + 2], ARGV[3])
  i = i + 5
end
wake(KEYS[3], KEYS[4])
return 1
"""
PUT, PUT_MANY = LIB + WAKE + _PUT, many(LIB + WAKE, _PUT)
# ARGV: base, consumer, limit, cap (-1: none), now ms
TAKE = LIB + """
local base = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', base .. 'z', '-inf', ARGV[5], 'LIMIT', 0, 500)
if #due > 0 then
  ensure(base)
  for _, rec in ipairs(due) do redis.call('XADD', base .. 's', '*', 'r', rec) end
  redis.call('ZREM', base .. 'z', unpack(due))
end
if redis.call('EXISTS', base .. 's') == 0 then return {} end
local limit = tonumber(ARGV[3])
if tonumber(ARGV[4]) >= 0 then
  limit = math.min(limit, tonumber(ARGV[4]) - redis.call('XPENDING', base .. 's', 'steppe')[1])
end
if limit <= 0 then return {} end
local got = redis.call('XREADGROUP', 'GROUP', 'steppe', ARGV[2], 'COUNT', limit, 'STREAMS', base .. 's', '>')
if not got then return {} end
return got[1][2]
"""
# ARGV: base, entry, group, now ms
_ACK = """
if not settle(ARGV[1], ARGV[2]) then return 0 end
release(ARGV[1], ARGV[3], ARGV[4])
return 1
"""
ACK, ACK_MANY = LIB + _ACK, many(LIB, _ACK)
# ARGV: base, entry, new record, due ms, now ms
RETRY = LIB + """
if not settle(ARGV[1], ARGV[2]) then return 0 end
ready(ARGV[1], ARGV[3], ARGV[4], ARGV[5])
return 1
"""
# KEYS: dead. ARGV: base, entry, group, now ms, id, dead letter
BURY = LIB + """
if not settle(ARGV[1], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[5], ARGV[6])
release(ARGV[1], ARGV[3], ARGV[4])
return 1
"""
# KEYS: dead, ids, wake flag, wake channel. ARGV: id, base, record tail, group, group as JSON, now ms
REPLAY = LIB + WAKE + """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local id = redis.call('INCR', KEYS[2])
enqueue(ARGV[2], '{"id":' .. id .. ',"g":' .. ARGV[5] .. ARGV[3], ARGV[4], ARGV[6], ARGV[6])
wake(KEYS[3], KEYS[4])
return 1
"""
# ARGV: base, consumer, min idle ms, forget-after ms. Puts back deliveries leased longer than min idle
# without a refresh.
REAP = LIB + """
local s = ARGV[1] .. 's'
if redis.call('EXISTS', s) == 0 then return 0 end
local n, cursor = 0, '0-0'
repeat
  local res = redis.call('XAUTOCLAIM', s, 'steppe', ARGV[2], ARGV[3], cursor, 'COUNT', 100)
  cursor = res[1]
  for _, e in ipairs(res[2]) do
    local f = e[2]
    local lost = 1
    for j = 1, #f, 2 do if f[j] == 'l' then lost = tonumber(f[j + 1]) + 1 end end
    redis.call('XACK', s, 'steppe', e[1])
    redis.call('XDEL', s, e[1])
    redis.call('XADD', s, '*', 'r', f[2], 'l', lost)
    n = n + 1
  end
until cursor == '0-0'
-- forget the consumer names of hosts long gone (each start of a host reads under a new name)
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', s, 'steppe')) do
  local info = {}
  for j = 1, #c, 2 do info[c[j]] = c[j + 1] end
  if info['pending'] == 0 and info['idle'] > tonumber(ARGV[4]) and info['name'] ~= ARGV[2] then
    redis.call('XGROUP', 'DELCONSUMER', s, 'steppe', info['name'])
  end
end
return n
"""
# KEYS: steps, dead. ARGV: prefix. {ready, leased, dead}
# waiting_elsewhere(): {step, count, step, count, ...} of every step that has deliveries (stream, delayed or held back)
WAITING = """
local out = {}
for _, step in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local base = ARGV[1] .. 'q:' .. string.len(step) .. ':' .. step .. ':'
  local n = redis.call('XLEN', base .. 's') + redis.call('ZCARD', base .. 'z')
  n = n + tonumber(redis.call('GET', base .. 'n') or '0')
  if n > 0 then
    table.insert(out, step)
    table.insert(out, n)
  end
end
return out
"""
COUNTS = """
local ready, leased = 0, 0
for _, step in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local base = ARGV[1] .. 'q:' .. string.len(step) .. ':' .. step .. ':'
  local pending = 0
  if redis.call('EXISTS', base .. 's') == 1 then
    pending = redis.call('XPENDING', base .. 's', 'steppe')[1]
    ready = ready + redis.call('XLEN', base .. 's') - pending
  end
  leased = leased + pending
  ready = ready + redis.call('ZCARD', base .. 'z') + tonumber(redis.call('GET', base .. 'n') or '0')
end
return {ready, leased, redis.call('HLEN', KEYS[2])}
"""
