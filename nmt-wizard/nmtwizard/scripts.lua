-- Shared prelude of the engine's atomic scripts (rendered by nmtwizard/store.py).
-- ARGV[1] is always the key namespace; K.* (generated from nmtwizard/keys.py) build keys;
-- TRANSITIONS (generated from nmtwizard/task.py) is the lifecycle table.

local function fail(code, detail)
  return redis.error_reply(code .. ' ' .. (detail or ''))
end

local function fenced(pool, token)
  if token == nil or token == '' then return true end
  return redis.call('GET', K.lease(pool)) == token
end

local function set_status(id, new, now)
  local key = K.task(id)
  local old = redis.call('HGET', key, 'status')
  if not TRANSITIONS[old] or not TRANSITIONS[old][new] then
    error('INVALID_TRANSITION ' .. tostring(old) .. ' -> ' .. new)
  end
  local score = redis.call('HGET', key, 'launched_time') or now
  redis.call('HSET', key, 'status', new, new .. '_time', now)
  redis.call('ZREM', K.idx_status(old), id)
  redis.call('ZADD', K.idx_status(new), score, id)
  -- Log followers wait for new bytes or the end of the task (nmtwizard.logwatch).
  if new == 'stopped' then redis.call('PUBLISH', K.log_events(), id) end
end

local function release_slots(id)
  local key = K.task(id)
  local fields = redis.call('HMGET', key, 'pool', 'alloc_host', 'alloc_gpus', 'alloc_cpus',
                            'reserved_host')
  local pool, host = fields[1], fields[2]
  if host then
    for _, pair in ipairs({{K.gpus(pool, host), fields[3]}, {K.cpus(pool, host), fields[4]}}) do
      if pair[2] then
        for _, slot in ipairs(cjson.decode(pair[2])) do
          if redis.call('HGET', pair[1], slot) == id then redis.call('HDEL', pair[1], slot) end
        end
      end
    end
  end
  if fields[5] and redis.call('HGET', K.reserved(pool), fields[5]) == id then
    redis.call('HDEL', K.reserved(pool), fields[5])
  end
  redis.call('HDEL', key, 'alloc_host', 'alloc_gpus', 'alloc_cpus', 'reserved_host')
end

local function enqueue(id, now)
  local key = K.task(id)
  local pool = redis.call('HGET', key, 'pool')
  local score = redis.call('HGET', key, 'queue_score')
  if not score then
    local priority = tonumber(redis.call('HGET', key, 'priority') or '0')
    score = -priority * 1e10 + redis.call('INCR', K.seq(pool))
    redis.call('HSET', key, 'queue_score', score)
  end
  set_status(id, 'queued', now)
  redis.call('ZADD', K.queue(pool), score, id)
end

local function ttl_for(id, pool)
  local text = redis.call('HGET', K.pool(pool), 'ttl_policy')
  if not text then return nil end
  for _, rule in ipairs(cjson.decode(text)) do
    local match = true
    for field, value in pairs(rule['pattern'] or {}) do
      if redis.call('HGET', K.task(id), field) ~= tostring(value) then match = false break end
    end
    if match then
      local ttl = tonumber(rule['ttl'] or 0)
      if ttl and ttl > 0 then return ttl end
      return nil
    end
  end
  return nil
end

-- Stop a task and settle its chain: children start when it completed, otherwise they stop
-- with dependency_error (recursively). Returns the ids of every task it stopped.
local function stop_task(id, message, now)
  local stopped = {}
  local todo = {{id, message}}
  while #todo > 0 do
    local item = table.remove(todo)
    local tid, msg = item[1], item[2]
    local key = K.task(tid)
    local pool = redis.call('HGET', key, 'pool')
    set_status(tid, 'stopped', now)
    redis.call('HSET', key, 'message', msg)
    release_slots(tid)
    redis.call('ZREM', K.queue(pool), tid)
    redis.call('ZREM', K.active(pool), tid)
    redis.call('ZREM', K.timers(pool), 'beat|' .. tid, 'check|' .. tid, 'work|' .. tid,
               'launch|' .. tid)
    local ttl = ttl_for(tid, pool)
    if ttl then redis.call('ZADD', K.timers(pool), now + ttl, 'ttl|' .. tid) end
    table.insert(stopped, tid)
    for _, child in ipairs(redis.call('SMEMBERS', K.children(tid))) do
      if redis.call('HGET', K.task(child), 'status') == 'launched' then
        if msg == 'completed' then
          enqueue(child, now)
        else
          table.insert(todo, {child, 'dependency_error'})
        end
      end
    end
  end
  return stopped
end

local function to_terminating(id, pool, message, now)
  set_status(id, 'terminating', now)
  redis.call('HSET', K.task(id), 'message', message)
  redis.call('ZREM', K.timers(pool), 'beat|' .. id, 'check|' .. id, 'launch|' .. id)
  redis.call('ZADD', K.timers(pool), now, 'work|' .. id)
end
