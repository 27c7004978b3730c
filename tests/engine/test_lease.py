"""Pool lease: one holder, renewal, fencing tokens that grow, takeover after expiry."""

import time

from nmtwizard.lease import PoolLease


def test_one_holder_at_a_time_and_takeover_after_expiry(engine):
    a = PoolLease(engine.redis, engine.keys, "pool", "a", ttl=0.2)
    b = PoolLease(engine.redis, engine.keys, "pool", "b", ttl=0.2)
    assert a.try_acquire() and not b.try_acquire()
    assert a.try_acquire()  # renewal keeps the same token
    first = a.token
    time.sleep(0.25)
    assert b.try_acquire() and b.epoch > int(first.split(":")[0])
    assert not a.try_acquire() and a.token is None
    b.release()
    assert a.try_acquire() and a.epoch > b.epoch if b.epoch else True
    assert engine.redis.get(engine.keys.lease("pool")) == a.token
