"""PoolLease: at most one worker schedules a pool; a standby takes over when it stops renewing.

The lease is the key ``lease:<pool>`` holding ``<epoch>:<worker id>`` with a TTL. ``epoch`` comes
from ``INCR epoch:<pool>`` at each acquisition, so the value is a fencing token: every scheduling
script of :mod:`nmtwizard.store` compares it with the current lease and refuses to write for a
worker that lost it (paused, partitioned, or replaced after a crash).
"""

from __future__ import annotations

import uuid

from nmtwizard import defaults
from nmtwizard.keys import Keys

__all__ = ["PoolLease"]

_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[3] then return current end
if current then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return current
end
local token = redis.call('INCR', KEYS[2]) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class PoolLease:
    """Acquire/renew/release the lease of one pool for one worker."""

    def __init__(
        self,
        client,
        keys: Keys,
        pool: str,
        worker_id: str | None = None,
        ttl: float = defaults.LEASE_TTL,
    ):
        self.redis = client
        self.pool = pool
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.ttl_ms = int(ttl * 1000)
        self.token: str | None = None
        self._keys = [keys.lease(pool), keys.epoch(pool)]
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def try_acquire(self) -> bool:
        """Take the lease if free, renew it if ours; True while this worker holds it."""
        current = self._acquire(
            keys=self._keys, args=[self.worker_id, self.ttl_ms, self.token or ""]
        )
        self.token = current if current.endswith(":" + self.worker_id) else None
        return self.token is not None

    @property
    def held(self) -> bool:
        return self.token is not None

    @property
    def epoch(self) -> int | None:
        return int(self.token.split(":", 1)[0]) if self.token else None

    def holder(self) -> str | None:
        return self.redis.get(self._keys[0])

    def release(self) -> None:
        if self.token:
            self._release(keys=self._keys[:1], args=[self.token])
        self.token = None
