/**
 * The Lua scripts of the Redis store (redis-store.ts). Each runs atomically on the server; every key a script
 * touches is passed in KEYS and, except the named locks, lies under the namespace's {reg} hash tag.
 */

/**
 * KEYS[1] applied hash, KEYS[2] registry, KEYS[3] events stream, KEYS[4] meta hash (epoch, sequence, fence),
 * KEYS[5] writer lease; per mask write i (1-based, m of them): KEYS[4+2i] mask, KEYS[5+2i] training state; per
 * replay write k: KEYS[5+2m+k] the task's replay log (a list).
 * ARGV[1] partition key, ARGV[2] new offset, ARGV[3] registry JSON, ARGV[4] writer token ('' = no lease),
 * ARGV[5] '1' when the commit carries an expected position, ARGV[6] its epoch ('' = none yet), ARGV[7] its
 * sequence, ARGV[8] the epoch to create on an empty store, ARGV[9] n = number of events, ARGV[9+j] the JSON of
 * event j; then, read in order: m; per mask write the encoded mask, 'S' then the training state (set it) or 'D'
 * then '' (delete it); the number of replay writes; per replay write its keep, its count c and c entries to
 * append (then the log is trimmed to its last `keep` entries; 0 deletes it).
 *
 * Order of the checks, the same as checkNotRegressed then checkExpectedPosition in position.ts: a store behind the
 * expected position (REGRESSED: empty, another epoch, a lower sequence; whoever holds the lease, since a server
 * restarted empty lost the lease too), then the writer lease (a commit of a writer that lost its lease, or of
 * anyone while another writer holds one, is refused: LEASELOST / WRITERHELD), then the offset fence (a repeated
 * commit answers 0), then whether another writer moved the store on (CONFLICT).
 * Offsets can exceed 2^53 (Lua numbers are doubles), so they are compared as canonical decimal strings: a longer
 * string is a larger number; at equal length the first differing digit decides (bytes, not locale collation).
 * The only writes come after every check (the events and replay keys' types included), and SET/DEL/HSET/XADD/RPUSH/
 * LTRIM cannot fail on
 * these keys, so a script error never leaves a half-applied commit. Returns 1 when applied, 0 when fenced.
 */
export const COMMIT_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local function canonical(s)
  return s == '0' or string.find(s, '^[1-9][0-9]*$') ~= nil
end
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end
local epoch = redis.call('HGET', KEYS[4], 'epoch')
local sequence = tonumber(redis.call('HGET', KEYS[4], 'sequence') or '0')
if sequence == nil then return redis.error_reply('STORECORRUPT the stored sequence is not a number') end
local expects = ARGV[5] == '1'
local seenEpoch, seenSequence = ARGV[6], tonumber(ARGV[7])
if expects and seenEpoch ~= '' then
  if not epoch then
    if seenSequence ~= 0 then
      return redis.error_reply('REGRESSED the store is empty, but epoch ' .. seenEpoch .. ' sequence ' .. ARGV[7] .. ' was committed before')
    end
  elseif epoch ~= seenEpoch then
    return redis.error_reply('REGRESSED the store is at epoch ' .. epoch .. ' sequence ' .. sequence .. ', another history than epoch ' .. seenEpoch .. ' sequence ' .. ARGV[7])
  elseif sequence < seenSequence then
    return redis.error_reply('REGRESSED the store is at sequence ' .. sequence .. ', behind sequence ' .. ARGV[7] .. ' of epoch ' .. seenEpoch)
  end
end
local writer = redis.call('GET', KEYS[5])
if ARGV[4] ~= '' then
  if writer ~= ARGV[4] then
    return redis.error_reply('LEASELOST this writer no longer holds the writer lease')
  end
elseif writer then
  return redis.error_reply('WRITERHELD another daemon holds the writer lease of this namespace')
end
local offset = ARGV[2]
if not canonical(offset) then
  return redis.error_reply('BADOFFSET new applied offset is not a canonical decimal integer')
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  if not canonical(current) then
    return redis.error_reply('STORECORRUPT stored applied offset ' .. current .. ' is not a canonical decimal integer')
  end
  if not greater(offset, current) then return 0 end
end
if expects then
  if sequence ~= seenSequence or (seenEpoch == '' and epoch) then
    return redis.error_reply('CONFLICT another writer moved the store to sequence ' .. sequence .. ' (this writer saw ' .. ARGV[7] .. ')')
  end
  if not epoch then epoch = (seenEpoch ~= '' and seenEpoch) or ARGV[8] end
end
if not epoch then epoch = ARGV[8] end
local events = tonumber(ARGV[9])
if events > 0 then
  local kind = redis.call('TYPE', KEYS[3]).ok
  if kind ~= 'none' and kind ~= 'stream' then
    return redis.error_reply('STORECORRUPT the event log key holds a ' .. kind .. ', not a stream')
  end
end
local masks = tonumber(ARGV[10 + events])
local logs = #KEYS - 5 - 2 * masks
for k = 1, logs do
  local kind = redis.call('TYPE', KEYS[5 + 2 * masks + k]).ok
  if kind ~= 'none' and kind ~= 'list' then
    return redis.error_reply('STORECORRUPT the replay log key ' .. KEYS[5 + 2 * masks + k] .. ' holds a ' .. kind .. ', not a list')
  end
end
local at = 11 + events
for i = 1, masks do
  redis.call('SET', KEYS[4 + 2 * i], ARGV[at])
  if ARGV[at + 1] == 'S' then
    redis.call('SET', KEYS[5 + 2 * i], ARGV[at + 2])
  else
    redis.call('DEL', KEYS[5 + 2 * i])
  end
  at = at + 3
end
at = at + 1
for k = 1, logs do
  local key = KEYS[5 + 2 * masks + k]
  local keep, count = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  at = at + 2
  for e = 1, count do
    redis.call('RPUSH', key, ARGV[at])
    at = at + 1
  end
  if keep == 0 then redis.call('DEL', key) else redis.call('LTRIM', key, -keep, -1) end
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], offset)
redis.call('HSET', KEYS[4], 'epoch', epoch, 'sequence', tostring(sequence + 1))
for j = 1, events do
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[9 + j])
end
return 1
`;

/** KEYS[1] events stream; ARGV[1] min id time (ms), ARGV[2] max length. Returns the number of entries removed. */
export const TRIM_SCRIPT = `
local removed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
return removed + redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[2])
`;

/** KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms. 1 when renewed, 0 when the lock is not (or no longer) ours. */
export const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** KEYS[1] lock; ARGV[1] token. Deletes the lock only if it is still ours. */
export const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS[1] writer lease, KEYS[2] meta hash; ARGV[1] random part of the token, ARGV[2] ttl ms. Takes the lease if
 * nobody holds it, with a token `<fence>.<random>` where the fence number grows with every lease ever taken on
 * the namespace (the order of writers). Returns the token, or false while another writer holds the lease.
 */
export const ACQUIRE_WRITER_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local fence = redis.call('HINCRBY', KEYS[2], 'fence', 1)
local token = fence .. '.' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
`;

/** KEYS[1] registry, KEYS[2] applied hash, KEYS[3] meta hash: all in one consistent read. */
export const LOAD_SCRIPT = `return { redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HMGET', KEYS[3], 'epoch', 'sequence') }`;
