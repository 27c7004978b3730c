"""Scheduler: best fit with explicit GPU ids, CPUs, reservation against starvation, races."""

import json
import threading

import pytest

from nmtwizard.exceptions import CapacityError, LeaseLost
from nmtwizard.lease import PoolLease
from nmtwizard.scheduler import HostState, Request, Scheduler, best_fit
from nmtwizard.services.base import HostSpec

from .conftest import fake_pool, run_until, status, write_config


def state(name, gpus, free_gpus, ncpus=8, free_cpus=None):
    cpus = tuple(str(i) for i in range(ncpus))
    return HostState(
        name, tuple(gpus), cpus, list(free_gpus), list(cpus if free_cpus is None else free_cpus)
    )


def test_best_fit_prefers_the_host_left_with_fewest_free_gpus():
    states = {"big": state("big", "0123", "0123"), "half": state("half", "0123", "23")}
    allocation = best_fit(Request("t", 2, 1), states)
    assert allocation.host == "half" and allocation.gpus == ("2", "3")


def test_explicit_gpu_ids_are_granted_in_configuration_order():
    states = {"h": state("h", ("1", "3", "7"), ("3", "7"))}
    assert best_fit(Request("t", 1, 1), states).gpus == ("3",)


def test_cpu_only_tasks_go_where_gpus_are_busy_and_cpus_are_checked():
    states = {"gpu-free": state("gpu-free", "01", "01"), "gpu-busy": state("gpu-busy", "01", "")}
    assert best_fit(Request("t", 0, 4), states).host == "gpu-busy"
    states["gpu-busy"].free_cpus = ["0"]
    assert best_fit(Request("t", 0, 4), states).host == "gpu-free"
    assert best_fit(Request("t", 1, 9), states) is None


def test_unusable_restricted_and_reserved_hosts_are_skipped():
    states = {"a": state("a", "01", "01"), "b": state("b", "01", "01")}
    states["a"].usable = False
    assert best_fit(Request("t", 1, 1), states).host == "b"
    assert best_fit(Request("t", 1, 1, hosts=("a",)), states) is None
    states["b"].reserved_for = "other"
    assert best_fit(Request("t", 1, 1), states) is None
    assert best_fit(Request("other", 1, 1), states).host == "b"


def test_large_task_is_not_starved_by_small_ones(engine, make_worker, launch, tmp_path):
    directory = write_config(
        tmp_path / "r", fake_pool(hosts={"h1": ([0, 1], 4), "h2": ([0, 1], 4)})
    )
    worker = make_worker(directory=directory, check_delay=0.02)
    first = [launch(options={"fake": {"duration": d}})[0] for d in (0.2, 60, 60, 60)]
    run_until(worker, lambda: all(status(engine, t) == "running" for t in first))
    freed = engine.get_task(first[0])["alloc_host"]
    (big,) = launch(ngpus=2, options={"fake": {"duration": 60}})
    smalls = [launch(options={"fake": {"duration": 60}})[0] for _ in range(3)]
    # The short task ends and frees one GPU; the big task holds that host and waits. (It may
    # hold the other host first, while both are full: wait for the move.)
    run_until(worker, lambda: status(engine, first[0]) == "stopped")
    run_until(
        worker,
        lambda: any(
            h["name"] == freed and h["reserved_for"] == big
            for h in engine.describe_pool("pool")["hosts"]
        ),
    )
    for _ in range(20):
        worker.run_once()
    assert all(status(engine, t) == "queued" for t in smalls)  # nobody took the held GPU
    held = next(h for h in engine.describe_pool("pool")["hosts"] if h["reserved_for"] == big)
    engine.request_terminate(
        next(t for t in first[1:] if engine.get_task(t)["alloc_host"] == held["name"])
    )
    run_until(worker, lambda: status(engine, big) == "running")
    assert engine.get_task(big)["alloc_host"] == held["name"]
    assert all(h["reserved_for"] != big for h in engine.describe_pool("pool")["hosts"])
    assert "reserved_host" not in engine.get_task(big)


def test_stale_fencing_token_cannot_allocate(engine, make_worker, launch):
    make_worker()
    (task_id,) = launch()
    lease = PoolLease(engine.redis, engine.keys, "pool", "w1", ttl=5)
    assert lease.try_acquire()
    stale = "0:someone-else"
    with pytest.raises(LeaseLost):
        engine.store.allocate(task_id, "pool", "h1", ["0"], ["0"], stale)
    assert engine.store.allocate(task_id, "pool", "h1", ["0"], ["0"], lease.token) == 1


def test_no_double_allocation_when_two_schedulers_race(engine, make_worker, launch):
    """Even two schedulers that both believe they hold the lease never share a slot."""
    make_worker()
    hosts = [
        HostSpec("h1", ("0", "1"), ("0", "1", "2", "3")),
        HostSpec("h2", ("0", "1"), ("0", "1", "2", "3")),
    ]
    lease = PoolLease(engine.redis, engine.keys, "pool", "w1", ttl=30)
    assert lease.try_acquire()
    for _round in range(30):
        ids = [launch(ngpus=1 + i % 2)[0] for i in range(6)]
        results: list = []
        barrier = threading.Barrier(2)

        def run(results=results, barrier=barrier):
            scheduler = Scheduler(engine.store, "pool")
            barrier.wait()
            results.extend(scheduler.run_pass(hosts, lease.token))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        slots = [(a.host, g) for a in results for g in a.gpus]
        assert len(slots) == len(set(slots))
        assert len({a.task_id for a in results}) == len(results)
        for host in ("h1", "h2"):
            owners = engine.redis.hgetall(engine.keys.gpus("pool", host))
            for task_id in set(owners.values()):
                task = engine.get_task(task_id)
                assert task["alloc_host"] == host
                assert {g for g, t in owners.items() if t == task_id} == set(task["alloc_gpus"])
        for task_id in ids:
            engine.request_terminate(task_id)
            if status(engine, task_id) == "terminating":
                engine.store.finish(task_id, lease.token)
        assert not engine.redis.keys("snw:gpus:*")


def test_two_workers_share_a_pool_without_double_launch(engine, make_worker, launch):
    a = make_worker(lease_ttl=0.1, check_delay=0.02)
    b = make_worker(lease_ttl=0.1, check_delay=0.02)
    ids = [launch(ngpus=1 + i % 2, options={"fake": {"duration": 0.02}})[0] for i in range(24)]
    flip = {"n": 0}

    def done():
        flip["n"] += 1
        if flip["n"] % 7 == 0:  # force hand-overs: the leader silently loses its lease
            engine.redis.delete(engine.keys.lease("pool"))
        return all(status(engine, t) == "stopped" for t in ids)

    run_until([a, b], done, timeout=20)
    starts = engine.redis.hgetall(engine.keys.fake_starts("pool"))
    assert set(starts) == set(ids) and set(starts.values()) == {"1"}
    assert all(engine.get_task(t)["message"] == "completed" for t in ids)
    jobs = [json.loads(v) for v in engine.redis.hgetall(engine.keys.fake_jobs("pool")).values()]
    for i, x in enumerate(jobs):
        for y in jobs[i + 1 :]:
            if x["host"] == y["host"] and set(x["gpus"]) & set(y["gpus"]):
                assert (
                    x["start"] + x["duration"] <= y["start"]
                    or y["start"] + y["duration"] <= x["start"]
                )
    assert not engine.redis.keys("snw:gpus:*") and not engine.redis.keys("snw:cpus:*")


def test_a_pass_skips_no_queued_task_while_allocations_shrink_the_queue(
    engine, make_worker, launch, tmp_path
):
    """The queue is read in chunks while the pass removes what it allocates: the second chunk
    must start after the first, not at a position the removals shifted past waiting tasks."""
    make_worker(directory=write_config(tmp_path / "q", fake_pool(hosts={"h1": ([], 300)})))
    first = [launch(ngpus=0, ncpus=1, priority=10)[0] for _ in range(256)]
    second = [launch(ngpus=0, ncpus=1, priority=5)[0] for _ in range(256)]
    (low,) = launch(ngpus=0, ncpus=40, priority=0)
    lease = PoolLease(engine.redis, engine.keys, "pool", "w1", ttl=30)
    assert lease.try_acquire()
    hosts = [HostSpec("h1", (), tuple(str(i) for i in range(300)))]
    allocated = {a.task_id for a in Scheduler(engine.store, "pool").run_pass(hosts, lease.token)}
    assert allocated == set(first) | set(second[:44])
    assert status(engine, low) == "queued"


def test_tasks_no_host_can_hold_after_a_reload_do_not_block_the_queue(
    engine, make_worker, launch, tmp_path
):
    """300 four-GPU tasks queued before the pool shrank to two-GPU hosts wait for a larger
    configuration; they do not use up the backfill window of a one-GPU task behind them."""
    make_worker(directory=write_config(tmp_path / "s", fake_pool(hosts={"h1": ([0, 1, 2, 3], 8)})))
    big = [launch(ngpus=4, ncpus=1, priority=10)[0] for _ in range(300)]
    (small,) = launch(ngpus=1, ncpus=1, priority=0)
    lease = PoolLease(engine.redis, engine.keys, "pool", "w1", ttl=30)
    assert lease.try_acquire()
    shrunk = [HostSpec("h1", ("0", "1"), tuple(str(i) for i in range(8)))]

    allocated = Scheduler(engine.store, "pool").run_pass(shrunk, lease.token)

    assert [a.task_id for a in allocated] == [small]
    assert {status(engine, t) for t in big} == {"queued"}  # kept for a configuration that fits
    assert not engine.store.reservations("pool")


# ---------------------------------------------------------------- per-server steering keys


def steered(name, gpus="01", priority=None, **server):
    """A host state carrying nmt-wizard's per-server keys (``entities``, ``only_gpu_task``)."""
    host = state(name, gpus, gpus)
    host.server = server
    if priority is not None:
        host.priority = priority
    return host


def test_entities_let_in_only_the_listed_entities():
    states = {
        "ab-only": steered("ab-only", entities={"AB": True, "CD": False}),
        "cd-list": steered("cd-list", gpus="0123", entities=["CD"]),
    }
    assert best_fit(Request("t", 1, 1, entity="AB"), states).host == "ab-only"
    assert best_fit(Request("t", 1, 1, entity="CD"), states).host == "cd-list"
    assert best_fit(Request("t", 1, 1, entity="EF"), states) is None
    states["open"] = steered("open", gpus="0123", entities={})  # empty: any entity
    assert best_fit(Request("t", 1, 1, entity="EF"), states).host == "open"


def test_only_gpu_task_servers_take_no_cpu_only_task():
    states = {
        "gpu-only": steered("gpu-only", gpus="", only_gpu_task=True),
        "mixed": steered("mixed", gpus="0123"),
    }
    states["gpu-only"].gpus = ("0",)  # one GPU, busy: best fit for a CPU task
    assert best_fit(Request("t", 0, 2), states).host == "mixed"
    del states["mixed"]
    assert best_fit(Request("t", 0, 2), states) is None
    states["gpu-only"].free_gpus = ["0"]
    assert best_fit(Request("t", 1, 2), states).host == "gpu-only"
    states["gpu-only"].server = {"only_gpu_task": 1}  # any true value, as upstream
    assert best_fit(Request("t", 0, 2), states) is None


def test_higher_priority_servers_are_chosen_first_then_best_fit():
    states = {
        "tight": steered("tight", gpus="0"),  # best fit, default priority 1
        "wide-high": steered("wide-high", gpus="0123", priority=5),
        "wide-higher-but-full": steered("wide-higher-but-full", gpus="0123", priority=9),
        "tight-high": steered("tight-high", gpus="01", priority=5),
    }
    states["wide-higher-but-full"].free_gpus = []
    assert best_fit(Request("t", 1, 1), states).host == "tight-high"
    del states["tight-high"]
    assert best_fit(Request("t", 1, 1), states).host == "wide-high"
    states["wide-high"].priority = 0  # below the default
    assert best_fit(Request("t", 1, 1), states).host == "tight"


def test_steering_keys_combine():
    states = {
        "cd-high": steered("cd-high", gpus="0123", priority=10, entities={"CD": True}),
        "gpu-high": steered("gpu-high", gpus="0123", priority=8, only_gpu_task=True),
        "low": steered("low", gpus="01"),
    }
    assert best_fit(Request("t", 1, 1, entity="CD"), states).host == "cd-high"
    assert best_fit(Request("t", 1, 1, entity="AB"), states).host == "gpu-high"
    assert best_fit(Request("t", 0, 1, entity="AB"), states).host == "low"
    assert best_fit(Request("t", 0, 1, entity="AB", hosts=("gpu-high",)), states) is None


def steered_pool(**servers):
    """A fake pool whose hosts (2 GPUs, 4 CPUs each) carry the given per-server keys."""
    pool = fake_pool(hosts={name: ([0, 1], 4) for name in servers})
    for server in pool["variables"]["server_pool"]:
        server.update(servers[server["name"]])
    return pool


def test_worker_places_tasks_by_entity_priority_and_gpu_rule(engine, make_worker, launch, tmp_path):
    pool = steered_pool(
        ab=dict(entities={"AB": True}, priority=3),
        gpu=dict(only_gpu_task=True, priority=2),
        any=dict(),
    )
    worker = make_worker(directory=write_config(tmp_path / "steer", pool))
    (ab_gpu,) = launch(entity="AB", trainer_id="ABusr")
    (cd_gpu,) = launch(entity="CD", trainer_id="CDusr", user="CDusr")
    (cd_cpu,) = launch(entity="CD", trainer_id="CDusr", user="CDusr", ngpus=0, ncpus=1)
    run_until(worker, lambda: all(status(engine, t) == "running" for t in (ab_gpu, cd_gpu, cd_cpu)))
    assert engine.get_task(ab_gpu)["alloc_host"] == "ab"
    assert engine.get_task(cd_gpu)["alloc_host"] == "gpu"
    assert engine.get_task(cd_cpu)["alloc_host"] == "any"


def test_a_launch_no_server_would_take_is_refused(engine, make_worker, launch, tmp_path):
    pool = steered_pool(ab=dict(entities={"AB": True, "CD": False}, only_gpu_task=True))
    make_worker(directory=write_config(tmp_path / "refuse", pool))
    with pytest.raises(CapacityError) as refused:
        launch(entity="CD", trainer_id="CDusr", user="CDusr")
    assert str(refused.value) == (
        "no server of pool that could hold the task takes tasks of entity CD "
        "(server keys entities, only_gpu_task)"
    )
    with pytest.raises(CapacityError) as refused:
        launch(ngpus=0, ncpus=1)
    assert str(refused.value) == (
        "no server of pool that could hold the task takes CPU-only tasks of entity AB "
        "(server keys entities, only_gpu_task)"
    )
    assert launch(ngpus=1)  # entity AB, a GPU task: accepted


def test_tasks_no_server_accepts_neither_block_the_queue_nor_reserve_a_host(
    engine, make_worker, launch, tmp_path
):
    """Tasks queued before a reload restricted the servers wait for a configuration that takes
    them: they do not use up the backfill window, and a blocked task reserves only a host it
    may use."""
    make_worker(directory=write_config(tmp_path / "open", fake_pool(hosts={"h1": ([0, 1], 8)})))
    outsiders = [launch(entity="XY", trainer_id="XYusr", user="XYusr", priority=10)[0]]
    outsiders += [launch(ngpus=0, ncpus=1, priority=10)[0] for _ in range(300)]  # CPU-only
    (filler,) = launch(ngpus=1, ncpus=1, priority=5)
    (blocked,) = launch(ngpus=2, ncpus=1, priority=5)
    (cd_task,) = launch(entity="CD", trainer_id="CDusr", user="CDusr", ngpus=2, ncpus=1)
    lease = PoolLease(engine.redis, engine.keys, "pool", "w1", ttl=30)
    assert lease.try_acquire()
    cpus = tuple(str(i) for i in range(8))
    restricted = [
        HostSpec("ab", ("0", "1"), cpus, {"entities": {"AB": True}, "only_gpu_task": True}),
        HostSpec("cd", ("0", "1"), cpus, {"entities": ["CD"], "only_gpu_task": True}),
    ]

    allocated = Scheduler(engine.store, "pool").run_pass(restricted, lease.token)

    assert {(a.task_id, a.host) for a in allocated} == {(filler, "ab"), (cd_task, "cd")}
    assert {status(engine, t) for t in outsiders} == {"queued"}
    assert status(engine, blocked) == "queued"
    assert engine.store.reservations("pool") == {"ab": blocked}
