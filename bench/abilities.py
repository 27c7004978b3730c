"""Cost of ``accounts.policy.abilities(user)``, cold and cached (issue 3): target cached
<= 0.2 ms and one Redis round trip.

Run::

    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/abilities.py [-n 5000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/snw_accounts REDIS_URL=... .venv/bin/python ...

It creates a throw-away test database (Django's test database machinery, like pytest) with
three entities; the two others share roles with the user's entity; the user holds 20 roles
through 5 groups, with grants on the three entities. It times:

- cold: the generation token replaced before each call (a real invalidation), so each call
  reads Redis, resolves from SQL and stores the entry;
- cached: the steady state of a request (one MGET, JSON decode, compare);
- memoised: a second call inside one request scope (no Redis at all).

It counts the Redis commands of one cached call on the cache's own client. Only the ability
keys are written to Redis (test key prefix), and they are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "snw_site.settings.test")

import django

django.setup()

from django.core.cache import caches  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts import cache, policy, services  # noqa: E402
from accounts.constants import ABILITY_GENERATION_KEY, ABILITY_USER_KEY  # noqa: E402
from accounts.models import Role, User  # noqa: E402

PERMISSIONS = ["user", "train", "terminate", "delete_model", "release_model", "push_model"]


def _time(fn, n: int, before=None) -> list[float]:
    for _ in range(min(200, n)):
        if before:
            before()
        fn()
    samples = []
    for _ in range(n):
        if before:
            before()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _row(label: str, samples: list[float]) -> str:
    p99 = statistics.quantiles(samples, n=100)[98]
    return (
        f"  {label:<40} mean {statistics.fmean(samples):7.3f} ms   "
        f"median {statistics.median(samples):7.3f} ms   p99 {p99:7.3f} ms"
    )


def _build() -> User:
    home = services.entity_create(actor=None, entity_code="BA", name="Bench home")
    others = [
        services.entity_create(actor=None, entity_code=code, name=f"Bench {code}")
        for code in ("BB", "BC")
    ]
    for other in others:
        services.share_role_create(
            actor=None, role=Role.objects.get(entity=other, name="lingadmin"), entity=home
        )
    user = User.objects.create_user(entity=home, user_code="BEN")
    targets = [home, *others]
    for g in range(5):
        group = services.group_create(actor=None, entity=home, name=f"group-{g}")
        services.group_add_member(actor=None, group=group, user=user)
        for r in range(4):
            n = g * 4 + r
            grants = [
                (PERMISSIONS[(n * 3 + k) % len(PERMISSIONS)], targets[(n + k) % len(targets)])
                for k in range(3)
            ]
            role = services.role_create(
                actor=None, entity=home, name=f"role-{n}", permissions=grants
            )
            services.role_assign(actor=None, role=role, group=group)
    return user


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="calls per measurement")
    args = parser.parse_args()

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    client = caches["default"].client.get_client()
    user = None
    try:
        user = _build()
        found = policy.abilities(user)
        roles = Role.objects.filter(groups__members=user).count()
        entities = sorted({code for _, code in found})
        print(f"database: {connection.vendor}; redis: {os.environ.get('REDIS_URL')}; n={args.n}")
        print(f"user: {roles} roles in 5 groups; {len(found)} abilities on {entities}")

        cold = _time(lambda: policy.abilities(user), max(args.n // 10, 200), cache.invalidate)
        cached = _time(lambda: policy.abilities(user), args.n)
        with cache.request_scope():
            policy.abilities(user)
            memo = _time(lambda: policy.abilities(user), args.n)
        keys = [
            caches["default"].make_key(k)
            for k in (ABILITY_GENERATION_KEY, ABILITY_USER_KEY.format(user_id=user.pk))
        ]
        floor = _time(lambda: client.mget(keys), args.n)
        print(_row("cold (invalidated: Redis + SQL + store)", cold))
        print(_row("cached (one MGET)", cached))
        print(_row("memoised within a request", memo))
        print(_row("floor: a bare redis-py MGET of the 2 keys", floor))
        overhead = statistics.median(cached) - statistics.median(floor)
        print(
            f"cached read over the bare round trip (median): {overhead:.3f} ms; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )

        sent: list[str] = []
        original = client.execute_command

        def observe(*a, **kw):
            sent.append(str(a[0]))
            return original(*a, **kw)

        client.execute_command = observe
        with CaptureQueriesContext(connection) as queries:
            policy.abilities(user)
        del client.execute_command
        print(f"one cached call sends Redis {sent} and {len(queries)} SQL queries")

        ok = statistics.median(cached) <= 0.2 and sent == ["MGET"] and not queries
        print("target cached <= 0.2 ms (median), one Redis round trip:", "met" if ok else "NOT met")
        return 0 if ok else 1
    finally:
        if user is not None:
            caches["default"].delete_many(
                [ABILITY_GENERATION_KEY, ABILITY_USER_KEY.format(user_id=user.pk)]
            )
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
