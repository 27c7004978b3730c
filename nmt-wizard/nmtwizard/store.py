"""TaskStore: the Redis task store. Every multi-key change is one Lua script or MULTI/EXEC.

Scripts share the prelude ``scripts.lua`` (status changes checked against
:data:`nmtwizard.task.TRANSITIONS`, slot release, chain settlement, ttl_policy); key names come
from :mod:`nmtwizard.keys`. Scheduling scripts take a fencing token: they refuse to write unless
the caller still holds the pool lease (:mod:`nmtwizard.lease`).

Indexes are sorted sets scored by launch time (all, entity, user, pool, status) plus one
lexicographic set of every id for prefix listing; :meth:`TaskStore.list_tasks` walks the
smallest candidate index, so a listing costs O(results), never a scan of the keyspace.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from importlib import resources
from typing import Any

import redis

from nmtwizard import defaults
from nmtwizard.exceptions import (
    CapacityError,
    FileNotFoundInTask,
    InvalidFileName,
    InvalidRequest,
    InvalidTransition,
    LeaseLost,
    TaskNotFound,
    TaskNotStopped,
)
from nmtwizard.keys import Keys, lua_helpers
from nmtwizard.task import TRANSITIONS, TaskStatus, decode_task

__all__ = ["LOG_TRUNCATED_MARKER", "TaskStore", "check_file_name"]

LOG_TRUNCATED_MARKER = b"\n\n[LOG TRUNCATED]\n"
_FILE_SEGMENT = re.compile(r"^[A-Za-z0-9._+=@,-]+$")


def check_file_name(name: str) -> str:
    """Refuse absolute paths, ``..``, empty segments and odd characters; return the name."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidFileName("a file name must be 1 to 255 characters")
    if name.startswith("/") or "\\" in name:
        raise InvalidFileName(f"{name!r}: absolute paths and backslashes are not allowed")
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidFileName(f"{name!r}: empty, '.' and '..' path segments are not allowed")
        if not _FILE_SEGMENT.match(segment):
            raise InvalidFileName(f"{name!r}: unexpected character in {segment!r}")
    return name


def _lua_transitions() -> str:
    rows = []
    for source, targets in TRANSITIONS.items():
        inner = ", ".join(f"{t.value} = true" for t in sorted(targets, key=lambda s: s.value))
        rows.append(f"  {source.value} = {{{inner}}},")
    return "local TRANSITIONS = {\n" + "\n".join(rows) + "\n}\n"


_PRELUDE = (
    "local NS = ARGV[1]\n"
    + lua_helpers()
    + _lua_transitions()
    + resources.files("nmtwizard").joinpath("scripts.lua").read_text(encoding="utf-8")
)

_SCRIPTS = {
    "allocate": """
local id, pool, host, now, token = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[7]), ARGV[8]
local launch_due = ARGV[9]
if not fenced(pool, token) then return fail('LEASE_LOST', pool) end
if redis.call('HGET', K.task(id), 'status') ~= 'queued' then return 0 end
local gpus, cpus = cjson.decode(ARGV[5]), cjson.decode(ARGV[6])
local gk, ck = K.gpus(pool, host), K.cpus(pool, host)
for _, g in ipairs(gpus) do if redis.call('HEXISTS', gk, g) == 1 then return -1 end end
for _, c in ipairs(cpus) do if redis.call('HEXISTS', ck, c) == 1 then return -1 end end
local held = redis.call('HGET', K.reserved(pool), host)
if held and held ~= id then return -2 end
for _, g in ipairs(gpus) do redis.call('HSET', gk, g, id) end
for _, c in ipairs(cpus) do redis.call('HSET', ck, c, id) end
local mine = redis.call('HGET', K.task(id), 'reserved_host')
if mine and redis.call('HGET', K.reserved(pool), mine) == id then
  redis.call('HDEL', K.reserved(pool), mine)
end
set_status(id, 'allocated', now)
redis.call('HSET', K.task(id), 'alloc_host', host, 'alloc_gpus', ARGV[5], 'alloc_cpus', ARGV[6])
redis.call('HDEL', K.task(id), 'reserved_host')
redis.call('ZREM', K.queue(pool), id)
redis.call('ZADD', K.timers(pool), launch_due, 'launch|' .. id)
return 1
""",
    "reserve": """
local id, pool, host, token = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not fenced(pool, token) then return fail('LEASE_LOST', pool) end
if redis.call('HGET', K.task(id), 'status') ~= 'queued' then return 0 end
local held = redis.call('HGET', K.reserved(pool), host)
if held and held ~= id then return 0 end
local mine = redis.call('HGET', K.task(id), 'reserved_host')
if mine and mine ~= host and redis.call('HGET', K.reserved(pool), mine) == id then
  redis.call('HDEL', K.reserved(pool), mine)
end
redis.call('HSET', K.reserved(pool), host, id)
redis.call('HSET', K.task(id), 'reserved_host', host)
return 1
""",
    "unreserve": """
local id, pool, host, token = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not fenced(pool, token) then return fail('LEASE_LOST', pool) end
if redis.call('HGET', K.reserved(pool), host) ~= id then return 0 end
redis.call('HDEL', K.reserved(pool), host)
if redis.call('HGET', K.task(id), 'reserved_host') == host then
  redis.call('HDEL', K.task(id), 'reserved_host')
end
return 1
""",
    "set_running": """
local id, pool, now, token, check_due = ARGV[2], ARGV[3], tonumber(ARGV[5]), ARGV[6], ARGV[7]
if not fenced(pool, token) then return fail('LEASE_LOST', pool) end
local status = redis.call('HGET', K.task(id), 'status')
if status == 'allocated' then
  set_status(id, 'running', now)
  redis.call('HSET', K.task(id), 'job', ARGV[4])
  redis.call('HDEL', K.task(id), 'status_fail', 'launch_unknown_since')
  redis.call('ZADD', K.timers(pool), check_due, 'check|' .. id)
  redis.call('ZREM', K.timers(pool), 'launch|' .. id)
elseif status == 'terminating' then
  redis.call('HSET', K.task(id), 'job', ARGV[4])
  redis.call('ZADD', K.timers(pool), now, 'work|' .. id)
end
return status or ''
""",
    "requeue": """
local id, pool, now, token = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
if not fenced(pool, token) then return fail('LEASE_LOST', pool) end
local status = redis.call('HGET', K.task(id), 'status')
if status == 'allocated' then
  release_slots(id)
  enqueue(id, now)
  redis.call('ZREM', K.timers(pool), 'launch|' .. id)
  redis.call('HDEL', K.task(id), 'launch_unknown_since')
  return 'queued'
end
return status or ''
""",
    "terminate": """
local id, message, now, token, only_if = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local status = redis.call('HGET', K.task(id), 'status')
if not status then return fail('TASK_NOT_FOUND', id) end
local pool = redis.call('HGET', K.task(id), 'pool')
if not fenced(pool, token) then return fail('LEASE_LOST', pool) end
if only_if ~= '' and status ~= only_if then return {status} end
if status == 'launched' or status == 'queued' then
  local stopped = stop_task(id, message, now)
  table.insert(stopped, 1, 'stopped')
  return stopped
elseif status == 'allocated' or status == 'running' then
  to_terminating(id, pool, message, now)
  return {'terminating'}
end
return {status}
""",
    "finish": """
local id, now, token = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local status = redis.call('HGET', K.task(id), 'status')
if not status then return {} end
local pool = redis.call('HGET', K.task(id), 'pool')
if not fenced(pool, token) then return fail('LEASE_LOST', pool) end
if status ~= 'terminating' then return {} end
return stop_task(id, redis.call('HGET', K.task(id), 'message') or 'aborted', now)
""",
    "beat": """
local id, duration, container, now = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local status = redis.call('HGET', K.task(id), 'status')
if not status then return fail('TASK_NOT_FOUND', id) end
if status ~= 'running' and status ~= 'allocated' then return status end
local pool = redis.call('HGET', K.task(id), 'pool')
redis.call('HSET', K.task(id), 'updated_time', now)
if container ~= '' then redis.call('HSET', K.task(id), 'container_id', container) end
if duration > 0 then
  redis.call('ZADD', K.timers(pool), now + duration, 'beat|' .. id)
  redis.call('HSET', K.task(id), 'beat_duration', duration)
else
  redis.call('ZREM', K.timers(pool), 'beat|' .. id)
end
return status
""",
    "cleanup": """
local id = ARGV[2]
local f = redis.call('HMGET', K.task(id), 'status', 'pool', 'entity', 'user', 'parent')
if not f[1] then return 0 end
if f[1] ~= 'stopped' then return fail('TASK_NOT_STOPPED', f[1]) end
redis.call('DEL', K.task(id), K.log(id), K.files(id), K.children(id))
redis.call('ZREM', K.idx_all(), id)
redis.call('ZREM', K.idx_entity(f[3]), id)
redis.call('ZREM', K.idx_user(f[4]), id)
redis.call('ZREM', K.idx_pool(f[2]), id)
redis.call('ZREM', K.idx_status('stopped'), id)
redis.call('ZREM', K.ids(), id)
redis.call('ZREM', K.timers(f[2]), 'ttl|' .. id, 'beat|' .. id, 'check|' .. id, 'work|' .. id,
           'launch|' .. id)
if f[5] and f[5] ~= '' then redis.call('SREM', K.children(f[5]), id) end
redis.call('PUBLISH', K.log_events(), id)
return 1
""",
    "log_append": """
local id, data, cap, marker, replace = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
if redis.call('EXISTS', K.task(id)) == 0 then return fail('TASK_NOT_FOUND', id) end
if replace == '1' then redis.call('DEL', K.log(id)) end
local size = redis.call('STRLEN', K.log(id))
if size >= cap then return size end
local room = cap - size
if #data > room then data = string.sub(data, 1, room) .. marker end
size = redis.call('APPEND', K.log(id), data)
redis.call('PUBLISH', K.log_events(), id)
return size
""",
    "put_file": """
local id, name, data = ARGV[2], ARGV[3], ARGV[4]
local max_files, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('EXISTS', K.task(id)) == 0 then return fail('TASK_NOT_FOUND', id) end
if redis.call('HEXISTS', K.files(id), name) == 0 and redis.call('HLEN', K.files(id)) >= max_files
then return fail('TOO_MANY_FILES', id) end
local total = #data - redis.call('HSTRLEN', K.files(id), name)
for _, other in ipairs(redis.call('HKEYS', K.files(id))) do
  total = total + redis.call('HSTRLEN', K.files(id), other)
end
if total > max_bytes then return fail('FILES_TOO_LARGE', id) end
redis.call('HSET', K.files(id), name, data)
return 1
""",
    "fetch": """
local fields = cjson.decode(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local item = {}
  if #fields == 0 then
    local flat = redis.call('HGETALL', K.task(ARGV[i]))
    for j = 1, #flat, 2 do item[flat[j]] = flat[j + 1] end
  else
    local values = redis.call('HMGET', K.task(ARGV[i]), unpack(fields))
    for j = 1, #fields do if values[j] then item[fields[j]] = values[j] end end
  end
  item['task_id'] = ARGV[i]
  out[#out + 1] = item
end
return cjson.encode(out)
""",
    "set_fields": """
local id = ARGV[2]
if redis.call('EXISTS', K.task(id)) == 0 then return fail('TASK_NOT_FOUND', id) end
for i = 3, #ARGV, 2 do redis.call('HSET', K.task(id), ARGV[i], ARGV[i + 1]) end
return 1
""",
    "status_fail": """
local id, pool, token = ARGV[2], ARGV[3], ARGV[4]
if not fenced(pool, token) then return fail('LEASE_LOST', pool) end
if redis.call('HGET', K.task(id), 'status') ~= 'running' then return 0 end
return redis.call('HINCRBY', K.task(id), 'status_fail', 1)
""",
    "annotate": """
local id, only_new = ARGV[2], ARGV[3] == '1'
if redis.call('EXISTS', K.task(id)) == 0 then return 0 end
local written = 0
for i = 4, #ARGV, 2 do
  if only_new then
    written = written + redis.call('HSETNX', K.task(id), ARGV[i], ARGV[i + 1])
  else
    redis.call('HSET', K.task(id), ARGV[i], ARGV[i + 1])
    written = written + 1
  end
end
return written
""",
    "status_ok": """
local id, pool, token, check_due = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not fenced(pool, token) then return fail('LEASE_LOST', pool) end
if redis.call('HGET', K.task(id), 'status') ~= 'running' then return 0 end
redis.call('HDEL', K.task(id), 'status_fail')
redis.call('ZADD', K.timers(pool), check_due, 'check|' .. id)
return 1
""",
}

# Error code of a script -> (exception, sentence; {} is the detail the script gives).
_ERRORS = {
    "LEASE_LOST": (LeaseLost, "the lease of pool {} was lost"),
    "TASK_NOT_FOUND": (TaskNotFound, "task {} does not exist"),
    "TASK_NOT_STOPPED": (TaskNotStopped, "the task is {}: terminate it first"),
    "INVALID_TRANSITION": (InvalidTransition, "invalid status change: {}"),
    "TOO_MANY_FILES": (CapacityError, "task {} holds as many files as allowed"),
    "FILES_TOO_LARGE": (CapacityError, "the files of task {} would exceed their total size"),
}


class TaskStore:
    """Typed access to tasks, indexes, timers, slots, logs and files in one Redis database."""

    def __init__(self, client: redis.Redis, namespace: str = defaults.NAMESPACE):
        self.redis = client
        self.keys = Keys(namespace)
        self.namespace = namespace
        pool = client.connection_pool
        kwargs = {**pool.connection_kwargs, "decode_responses": False}
        self.raw = redis.Redis(
            connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        )
        self._scripts = {
            name: client.register_script(_PRELUDE + body) for name, body in _SCRIPTS.items()
        }

    @classmethod
    def from_url(cls, url: str, namespace: str = defaults.NAMESPACE) -> TaskStore:
        return cls(redis.Redis.from_url(url, decode_responses=True), namespace)

    # ------------------------------------------------------------------------ scripts

    def _run(self, name: str, *args: Any, client=None) -> Any:
        try:
            return self._scripts[name](args=[self.namespace, *args], client=client)
        except redis.ResponseError as exc:
            text = str(exc)
            for code, (error, sentence) in _ERRORS.items():
                if code in text:
                    detail = text[text.index(code) + len(code) :].strip()
                    raise error(sentence.format(detail)) from None
            raise

    # ------------------------------------------------------------------------ creation

    def new_queue_scores(self, pool: str, count: int) -> int:
        """Reserve ``count`` FIFO sequence numbers for ``pool``; return the first."""
        return self.redis.incrby(self.keys.seq(pool), count) - count + 1

    def create_tasks(
        self,
        tasks: list[dict[str, Any]],
        files: dict[str, bytes] | None = None,
        parent: str | None = None,
        files_for: Iterable[str] | None = None,
    ) -> None:
        """Create tasks all-or-nothing (MULTI/EXEC); ``parent`` is WATCHed so a chain link can
        never miss its parent's completion. Each task dict holds the stored fields; ``status``
        is ``queued`` (ready) or ``launched`` (waits for its parent). ``files`` go to the tasks
        ``files_for`` names (default: every task)."""
        receivers = None if files_for is None else set(files_for)
        keys = self.keys
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    watched = [keys.task(t["id"]) for t in tasks]
                    if parent:
                        watched.append(keys.task(parent))
                    pipe.watch(*watched)
                    for task in tasks:
                        if pipe.exists(keys.task(task["id"])):
                            raise InvalidRequest(f"task {task['id']} already exists")
                    parent_state = self._parent_state(pipe, parent) if parent else None
                    pipe.multi()
                    for task in tasks:
                        self._add_task(
                            pipe,
                            task,
                            parent_state if task.get("parent") == parent else "pending",
                            files if receivers is None or task["id"] in receivers else None,
                        )
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _parent_state(self, pipe, parent: str) -> str:
        status, message = pipe.hmget(self.keys.task(parent), "status", "message")
        if status is None:
            return "ready"  # deleted or expired parent: the dependency counts as satisfied
        if status != TaskStatus.STOPPED:
            return "pending"
        if message != "completed":
            raise InvalidRequest(f"parent task {parent} ended with {message}")
        return "ready"

    def _add_task(
        self, pipe, task: dict[str, Any], parent_state: str | None, files: dict[str, bytes] | None
    ) -> None:
        keys, task_id, now = self.keys, task["id"], task["launched_time"]
        ready = not task.get("parent") or parent_state == "ready"
        status = TaskStatus.QUEUED if ready else TaskStatus.LAUNCHED
        fields = {k: _encode(v) for k, v in task.items() if v is not None}
        fields["status"] = status.value
        if not ready:
            fields.pop("queue_score", None)  # given when the parent completes (FIFO from then)
        else:
            fields["queued_time"] = now
        pool = task["pool"]
        pipe.hset(keys.task(task_id), mapping=fields)
        for index in (
            keys.idx_all(),
            keys.idx_entity(task["entity"]),
            keys.idx_user(task["user"]),
            keys.idx_pool(pool),
            keys.idx_status(status.value),
        ):
            pipe.zadd(index, {task_id: now})
        pipe.zadd(keys.ids(), {task_id: 0})
        pipe.zadd(keys.active(pool), {task_id: now})
        if task.get("parent"):
            pipe.sadd(keys.children(task["parent"]), task_id)
        if ready:
            pipe.zadd(keys.queue(pool), {task_id: float(task["queue_score"])})
        if files:
            pipe.hset(keys.files(task_id), mapping=files)

    # ------------------------------------------------------------------------ reading

    def get(self, task_id: str, *, with_hidden: bool = False) -> dict[str, Any]:
        raw = self.redis.hgetall(self.keys.task(task_id))
        if not raw:
            raise TaskNotFound(f"task {task_id} does not exist")
        task = decode_task(raw, with_hidden=with_hidden)
        task["task_id"] = task_id
        return task

    def get_many(self, task_ids: list[str], fields: list[str] | None = None) -> list[dict]:
        """Tasks in the given order (one round trip, one reply); vanished ids are skipped."""
        if not task_ids:
            return []
        items = json.loads(self._run("fetch", json.dumps(fields or []), *task_ids))
        tasks = []
        for item in items:
            task_id = item.pop("task_id")
            if item:
                task = decode_task(item)
                task["task_id"] = task_id
                tasks.append(task)
        return tasks

    def status_of(self, task_id: str) -> str | None:
        return self.redis.hget(self.keys.task(task_id), "status")

    def list_tasks(
        self,
        *,
        prefix: str | None = None,
        entities: Iterable[str] | None = None,
        users: Iterable[str] | None = None,
        status: str | None = None,
        pool: str | None = None,
        parent: str | None = None,
        offset: int = 0,
        limit: int = 100,
        fields: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Tasks matching every given filter, newest first.

        The smallest candidate index drives the walk; the other filters are checked on the
        fetched hashes. ``entities=set()`` (an empty scope) matches nothing.
        """
        if offset < 0 or limit < 0:
            raise InvalidRequest("offset and limit must be non-negative")
        entities = None if entities is None else sorted(set(entities))
        users = None if users is None else sorted(set(users))
        if entities == [] or users == [] or limit == 0:
            return []
        keys = self.keys
        candidates: list[tuple[str, list[str]]] = []  # (kind, index keys)
        if prefix:
            candidates.append(("lex", [keys.ids()]))
        if parent:
            candidates.append(("set", [keys.children(parent)]))
        if entities is not None:
            candidates.append(("zset", [keys.idx_entity(v) for v in entities]))
        if users is not None:
            candidates.append(("zset", [keys.idx_user(v) for v in users]))
        if status:
            candidates.append(("zset", [keys.idx_status(status)]))
        if pool:
            candidates.append(("zset", [keys.idx_pool(pool)]))
        if not candidates:
            candidates.append(("zset", [keys.idx_all()]))
        kind, idx = candidates[0]
        if len(candidates) > 1:  # drive the walk with the smallest index (one round trip)
            pipe = self.redis.pipeline(transaction=False)
            for cand_kind, cand_keys in candidates:
                for key in cand_keys:
                    if cand_kind == "lex":
                        pipe.zlexcount(key, f"[{prefix}", f"[{prefix}\xff")
                    elif cand_kind == "set":
                        pipe.scard(key)
                    else:
                        pipe.zcard(key)
            sizes = iter(pipe.execute())
            totals = [sum(next(sizes) for _ in cand_keys) for _kind, cand_keys in candidates]
            # On a tie a time-ordered index wins: its walk stops once enough tasks matched,
            # where a prefix or children walk must read and sort every candidate first.
            best = min(
                range(len(candidates)), key=lambda i: (totals[i], candidates[i][0] != "zset")
            )
            kind, idx = candidates[best]
        want = list(fields) if fields else None
        check_fields = ["entity", "user", "status", "pool", "parent"]
        fetch = None if want is None else sorted(set(want) | set(check_fields))

        def matches(task: dict) -> bool:
            task_id = task["task_id"]
            return (
                (not prefix or task_id.startswith(prefix))
                and (entities is None or task.get("entity") in entities)
                and (users is None or task.get("user") in users)
                and (not status or task.get("status") == status)
                and (not pool or task.get("pool") == pool)
                and (not parent or task.get("parent") == parent)
            )

        results: list[dict] = []
        needed = offset + limit
        for chunk in self._walk(kind, idx, prefix, parent, needed):
            for task in self.get_many(chunk, fetch):
                if matches(task):
                    results.append(task)
            if len(results) >= needed:
                break
        page = results[offset:needed]
        if want is not None:
            page = [{k: t[k] for k in ["task_id", *want] if k in t} for t in page]
        return page

    def _walk(self, kind: str, idx: list[str], prefix: str | None, parent: str | None, needed: int):
        """Yield chunks of candidate ids, newest first; chunks grow while more are needed."""
        window = max(needed, 20)
        if kind in ("lex", "set"):
            if kind == "lex":
                ids = self.redis.zrangebylex(self.keys.ids(), f"[{prefix}", f"[{prefix}\xff")
            else:
                ids = list(self.redis.smembers(self.keys.children(parent)))
            if ids:
                scores = self.redis.zmscore(self.keys.idx_all(), ids)
                pairs = sorted(zip(scores, ids, strict=True), key=lambda p: (-(p[0] or 0), p[1]))
                ids = [task_id for _score, task_id in pairs]
            for start in range(0, len(ids), window):
                yield ids[start : start + window]
            return
        seen = 0
        while True:
            if len(idx) == 1:
                ids = self.redis.zrevrange(idx[0], seen, seen + window - 1)
            else:
                # The newest n overall are among the newest n of each index.
                pipe = self.redis.pipeline(transaction=False)
                for key in idx:
                    pipe.zrevrange(key, 0, seen + window - 1, withscores=True)
                merged = sorted(
                    (pair for part in pipe.execute() for pair in part), key=lambda p: -p[1]
                )
                ids = [task_id for task_id, _score in merged[seen : seen + window]]
            if not ids:
                return
            yield ids
            seen += len(ids)
            window = min(window * 2, 2000)

    # ------------------------------------------------------------------------ transitions

    def allocate(
        self,
        task_id: str,
        pool: str,
        host: str,
        gpus: list[str],
        cpus: list[str],
        fence: str,
        launch_retry: float = defaults.LAUNCH_RETRY,
    ) -> int:
        """1 allocated; 0 no longer queued; -1 a slot is taken; -2 host held for another task.

        The ``launch`` timer is armed with the allocation (due after ``launch_retry``), so a
        launch that never reaches ``set_running`` is retried instead of leaving the task
        ``allocated`` for good."""
        now = time.time()
        return self._run(
            "allocate",
            task_id,
            pool,
            host,
            json.dumps(gpus),
            json.dumps(cpus),
            now,
            fence,
            now + launch_retry,
        )

    def reserve(self, task_id: str, pool: str, host: str, fence: str) -> bool:
        return bool(self._run("reserve", task_id, pool, host, fence))

    def unreserve(self, task_id: str, pool: str, host: str, fence: str) -> bool:
        return bool(self._run("unreserve", task_id, pool, host, fence))

    def reservations(self, pool: str) -> dict[str, str]:
        return self.redis.hgetall(self.keys.reserved(pool))

    def set_running(
        self, task_id: str, pool: str, job: dict, check_delay: float, fence: str
    ) -> str:
        now = time.time()
        return self._run(
            "set_running", task_id, pool, json.dumps(job), now, fence, now + check_delay
        )

    def requeue(self, task_id: str, pool: str, fence: str) -> str:
        return self._run("requeue", task_id, pool, time.time(), fence)

    def terminate(
        self, task_id: str, message: str, *, fence: str = "", only_if: str = ""
    ) -> tuple[str, list[str]]:
        """Request termination: returns (status after, ids of tasks it stopped right away)."""
        result = self._run("terminate", task_id, message, time.time(), fence, only_if)
        return result[0], list(result[1:])

    def finish(self, task_id: str, fence: str) -> list[str]:
        """terminating -> stopped (slots released, chain settled); ids of stopped tasks."""
        return list(self._run("finish", task_id, time.time(), fence))

    def count_status_failure(self, task_id: str, pool: str, fence: str) -> int:
        return int(self._run("status_fail", task_id, pool, fence))

    def annotate(self, task_id: str, *, only_new: bool = False, **fields: str) -> int:
        """Write informational fields (``end_detail``, ``status_error``) of a task that still
        exists, in one step: a poll finishing after a deletion must not recreate a partial
        hash. With ``only_new``, fields already set are kept. Returns how many were written."""
        flat = [item for pair in fields.items() for item in pair]
        return int(self._run("annotate", task_id, "1" if only_new else "0", *flat))

    def status_ok(self, task_id: str, pool: str, check_delay: float, fence: str) -> bool:
        """A successful poll: the failures counted are consecutive ones, so reset them, and
        schedule the next poll. False when the task is no longer running."""
        return bool(self._run("status_ok", task_id, pool, fence, time.time() + check_delay))

    def beat(self, task_id: str, duration: float = 0, container_id: str | None = None) -> str:
        return self._run("beat", task_id, float(duration), container_id or "", time.time())

    def set_fields(self, task_id: str, **fields: Any) -> None:
        flat: list[Any] = []
        for key, value in fields.items():
            flat.extend([key, _encode(value)])
        self._run("set_fields", task_id, *flat)

    def cleanup(self, task_id: str) -> bool:
        """Remove a stopped task with its log, files, timers and index entries."""
        return bool(self._run("cleanup", task_id))

    # ------------------------------------------------------------------------ timers

    def set_timer(self, pool: str, kind: str, task_id: str, due: float) -> None:
        self.redis.zadd(self.keys.timers(pool), {f"{kind}|{task_id}": due})

    def clear_timer(self, pool: str, kind: str, task_id: str) -> None:
        self.redis.zrem(self.keys.timers(pool), f"{kind}|{task_id}")

    def due_timers(self, pool: str, now: float, limit: int = 500) -> list[tuple[str, str]]:
        members = self.redis.zrangebyscore(self.keys.timers(pool), "-inf", now, 0, limit)
        return [tuple(m.split("|", 1)) for m in members]

    # ------------------------------------------------------------------------ pool state

    def active_tasks(self, pool: str) -> list[str]:
        return self.redis.zrange(self.keys.active(pool), 0, -1)

    def queue_length(self, pool: str) -> int:
        return self.redis.zcard(self.keys.queue(pool))

    def queue_head(self, pool: str, limit: int) -> list[str]:
        return self.redis.zrange(self.keys.queue(pool), 0, limit - 1)

    def slots(self, pool: str, hosts: list[str]) -> dict[str, tuple[dict, dict]]:
        """``{host: (gpu slot -> task, cpu slot -> task)}`` in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for host in hosts:
            pipe.hgetall(self.keys.gpus(pool, host))
            pipe.hgetall(self.keys.cpus(pool, host))
        values = pipe.execute()
        return {h: (values[2 * i], values[2 * i + 1]) for i, h in enumerate(hosts)}

    # ------------------------------------------------------------------------ logs, files, stats

    def append_log(
        self,
        task_id: str,
        data: bytes | str,
        *,
        replace: bool = False,
        max_size: int = defaults.MAX_LOG_SIZE,
    ) -> int:
        """Append (or replace) the log within ``max_size``; returns the new size."""
        if isinstance(data, str):
            data = data.encode()
        return self._run(
            "log_append", task_id, data, max_size, LOG_TRUNCATED_MARKER, "1" if replace else "0"
        )

    def read_log(self, task_id: str, offset: int = 0) -> tuple[bytes, int]:
        """Bytes of the log from ``offset`` and the offset to read from next time."""
        data, offset, _status, _message = self.read_log_state(task_id, offset)
        return data, offset

    def read_log_state(self, task_id: str, offset: int = 0) -> tuple[bytes, int, str, str]:
        """:meth:`read_log` plus the task's status and message, in one round trip. The status
        is read before the log: when it says ``stopped``, the bytes returned are final but for
        late callbacks."""
        if offset < 0:
            raise InvalidRequest("offset must be non-negative")
        pipe = self.raw.pipeline(transaction=True)
        pipe.hmget(self.keys.task(task_id), "status", "message")
        pipe.getrange(self.keys.log(task_id), offset, -1)
        pipe.strlen(self.keys.log(task_id))
        (status, message), data, size = pipe.execute()
        if status is None:
            raise TaskNotFound(f"task {task_id} does not exist")
        status, message = status.decode(), (message or b"").decode()
        if offset >= size:
            return b"", max(offset, size), status, message
        return data, offset + len(data), status, message

    def put_file(
        self,
        task_id: str,
        name: str,
        data: bytes,
        *,
        max_size: int = defaults.MAX_FILE_SIZE,
        max_files: int = defaults.MAX_FILES_PER_TASK,
        max_total: int = defaults.MAX_TASK_FILES_BYTES,
    ) -> None:
        check_file_name(name)
        if len(data) > max_size:
            raise CapacityError(f"file {name} is {len(data)} bytes; the limit is {max_size}")
        self._run("put_file", task_id, name, data, max_files, max_total)

    def get_file(self, task_id: str, name: str) -> bytes:
        check_file_name(name)
        data = self.raw.hget(self.keys.files(task_id), name)
        if data is None:
            if not self.redis.exists(self.keys.task(task_id)):
                raise TaskNotFound(f"task {task_id} does not exist")
            raise FileNotFoundInTask(f"cannot find file {name} for task {task_id}")
        return data

    def list_files(self, task_id: str) -> dict[str, int]:
        names = self.redis.hkeys(self.keys.files(task_id))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hstrlen(self.keys.files(task_id), name)
        return dict(zip(names, pipe.execute(), strict=True))


def _encode(value: Any) -> str | int | float:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, TaskStatus):
        return value.value
    return value
