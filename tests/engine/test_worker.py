"""Worker: lifecycle and end messages, chains, priority, beats, terminate during launch,
quarantine, consecutive status failures, launch retry, enable/disable, config select while tasks
run, takeover with a new configuration, ttl_policy cleanup, commands."""

import json
import time

import pytest
import redis

from nmtwizard.defaults import MAX_STATUS_FAILURES, STOP_EXIT_CODE
from nmtwizard.exceptions import InfrastructureError

from .conftest import fake_pool, run_until, status, write_config


def stopped(engine, *task_ids):
    return lambda: all(status(engine, t) == "stopped" for t in task_ids)


def slots_empty(engine, pool="pool"):
    return (
        all(not v for v in engine.redis.hgetall(engine.keys.gpus(pool, "h1")).values())
        and not engine.redis.keys("snw:gpus:*")
        and not engine.redis.keys("snw:cpus:*")
    )


def test_full_lifecycle_records_each_status_time(engine, make_worker, launch):
    worker = make_worker()
    (task_id,) = launch(options={"fake": {"duration": 0.1}})
    assert status(engine, task_id) == "queued"
    run_until(worker, lambda: status(engine, task_id) == "running")
    task = engine.get_task(task_id)
    assert task["alloc_host"] in ("h1", "h2") and len(task["alloc_gpus"]) == 1
    assert task["job"]["gpus"] == task["alloc_gpus"]
    run_until(worker, stopped(engine, task_id))
    task = engine.get_task(task_id)
    assert task["message"] == "completed"
    for name in ("launched", "queued", "allocated", "running", "terminating", "stopped"):
        assert f"{name}_time" in task
    assert slots_empty(engine)
    assert engine.list_tasks(status="stopped")[0]["task_id"] == task_id


@pytest.mark.parametrize(
    ("fake", "message"),
    [({"duration": 0.05, "exit_code": 3}, "error"), ({"launch_error": "task"}, "launch_error")],
)
def test_end_messages(engine, make_worker, launch, fake, message):
    worker = make_worker()
    (task_id,) = launch(options={"fake": fake})
    run_until(worker, stopped(engine, task_id))
    assert engine.get_task(task_id)["message"] == message
    assert slots_empty(engine)
    if message == "launch_error":
        assert b"launch failed" in engine.read_log(task_id)[0]


def test_killed_job_ends_exited_and_user_terminate_aborts(engine, make_worker, launch):
    worker = make_worker()
    a, b, c = launch()[0], launch()[0], launch()[0]
    run_until(worker, lambda: status(engine, a) == status(engine, b) == "running")
    engine.store.redis.hset(
        engine.keys.fake_jobs("pool"),
        a,
        json.dumps(
            {**json.loads(engine.redis.hget(engine.keys.fake_jobs("pool"), a)), "killed": True}
        ),
    )
    assert engine.request_terminate(b) == "terminating"
    assert engine.request_terminate(c) in ("stopped", "terminating")
    run_until(worker, stopped(engine, a, b, c))
    assert [engine.get_task(t)["message"] for t in (a, b, c)] == ["exited", "aborted", "aborted"]
    assert engine.request_terminate(b) == "stopped"  # idempotent


def test_chain_children_wait_for_parent_completion(engine, make_worker, launch):
    worker = make_worker()
    ids = launch(iterations=3, options={"fake": {"duration": 0.05}}, name="Chain")
    assert [status(engine, t) for t in ids] == ["queued", "launched", "launched"]
    child = engine.get_task(ids[1])
    assert child["parent"] == ids[0] and child["content"]["docker"]["command"][:2] == ["-m", ids[0]]
    assert [engine.get_task(t)["iteration"] for t in ids] == [1, 2, 3]
    run_until(worker, stopped(engine, *ids), timeout=8)
    tasks = [engine.get_task(t) for t in ids]
    assert [t["message"] for t in tasks] == ["completed"] * 3
    assert tasks[0]["stopped_time"] <= tasks[1]["queued_time"]
    assert [t["task_id"] for t in engine.list_tasks(parent=ids[0])] == [ids[1]]


def test_failed_parent_stops_children_with_dependency_error(engine, make_worker, launch):
    worker = make_worker()
    ids = launch(iterations=3, options={"fake": {"duration": 0.05, "exit_code": 1}})
    run_until(worker, stopped(engine, *ids))
    assert [engine.get_task(t)["message"] for t in ids] == [
        "error",
        "dependency_error",
        "dependency_error",
    ]
    assert "running_time" not in engine.get_task(ids[1])


def test_explicit_parent_and_aborted_parent(engine, make_worker, launch):
    make_worker()
    (parent,) = launch()
    (child,) = launch(parent=parent)
    assert status(engine, child) == "launched"
    engine.request_terminate(parent)
    assert engine.get_task(child)["message"] == "dependency_error"


def test_priority_first_then_fifo(engine, make_worker, launch, tmp_path):
    directory = write_config(tmp_path / "one", fake_pool(hosts={"h1": ([0], 4)}))
    worker = make_worker(directory=directory)
    order = [launch(priority=p, options={"fake": {"duration": 0.03}})[0] for p in (0, 5, 0, 5)]
    run_until(worker, stopped(engine, *order), timeout=8)
    started = sorted(order, key=lambda t: engine.get_task(t)["running_time"])
    assert started == [order[1], order[3], order[0], order[2]]


def test_beat_expiry_terminates_with_expired(engine, make_worker, launch):
    worker = make_worker(check_delay=30)
    (task_id,) = launch()
    run_until(worker, lambda: status(engine, task_id) == "running")
    assert engine.beat(task_id, duration=0.2, container_id="c1") == "running"
    assert engine.get_task(task_id)["container_id"] == "c1"
    run_until(worker, stopped(engine, task_id))
    task = engine.get_task(task_id)
    assert task["message"] == "expired"
    assert task["stopped_time"] - task["updated_time"] >= 0.2
    assert engine.beat(task_id, 10) == "stopped"  # beats on stopped tasks are no-ops


def test_terminate_during_launch_is_not_lost(engine, make_worker, launch):
    worker = make_worker()
    (task_id,) = launch(options={"fake": {"launch_delay": 0.3, "duration": 60}})
    deadline = time.monotonic() + 3
    while not worker._busy(task_id) and time.monotonic() < deadline:
        worker.run_once()
    assert status(engine, task_id) == "allocated"  # the launch call is in flight
    assert engine.request_terminate(task_id) == "terminating"
    run_until(worker, stopped(engine, task_id))
    task = engine.get_task(task_id)
    assert task["message"] == "aborted" and task["job"]["host"]
    job = json.loads(engine.redis.hget(engine.keys.fake_jobs("pool"), task_id))
    assert job["killed"] is True  # the container that did start was terminated
    assert slots_empty(engine)


def test_slow_host_does_not_stall_other_hosts(engine, make_worker, launch):
    worker = make_worker()
    launch(options={"server": "h1", "fake": {"launch_delay": 1.0}})
    (fast,) = launch(options={"server": "h2", "fake": {"duration": 60}})
    start, reached = time.monotonic(), []

    def fast_runs():
        if status(engine, fast) == "running":
            reached.append(time.monotonic() - start)
        return bool(reached)

    run_until(worker, fast_runs, timeout=0.8)
    assert reached[0] < 0.8  # while the launch on h1 still sleeps


def test_infrastructure_error_quarantines_host_and_requeues(engine, make_worker, launch, tmp_path):
    pool = fake_pool(hosts={"h1": ([0], 4), "h2": ([0, 1], 4)})  # best fit picks h1 first
    pool["variables"]["fake"]["hosts"] = {"h1": {"launch_error": "infrastructure"}}
    worker = make_worker(directory=write_config(tmp_path / "q", pool), quarantine_time=60)
    (task_id,) = launch(options={"fake": {"duration": 60}})
    run_until(worker, lambda: status(engine, task_id) == "running")
    task = engine.get_task(task_id)
    described = engine.describe_pool("pool")
    states = {h["name"]: h["state"] for h in described["hosts"]}
    assert task["alloc_host"] == "h2" and states == {"h1": "quarantined", "h2": "ok"}
    assert described["busy"] == 1
    assert b"re-queued" in engine.read_log(task_id)[0]
    engine.enable_host("pool", "h1")
    assert {h["name"]: h["state"] for h in engine.describe_pool("pool")["hosts"]}["h1"] == "ok"


def test_lost_host_ends_task_with_lost_connection(engine, make_worker, launch, tmp_path):
    pool = fake_pool(hosts={"h1": ([0], 2)})
    pool["variables"]["fake"]["hosts"] = {"h1": {"lost": True}}
    worker = make_worker(directory=write_config(tmp_path / "l", pool), check_delay=0.02)
    (task_id,) = launch()
    run_until(worker, stopped(engine, task_id))
    task = engine.get_task(task_id)
    assert task["message"] == "lost_connection" and task["status_fail"] == 5


def test_a_task_that_cannot_be_stopped_keeps_new_tasks_off_its_host(
    engine, make_worker, launch, tmp_path
):
    """Terminating a task on a host that no longer answers frees its slots, but the job may
    still hold the GPUs: the host is quarantined so no new task lands there meanwhile."""
    pool = fake_pool(hosts={"h1": ([0], 2), "h2": ([0], 2)})
    pool["variables"]["fake"]["hosts"] = {"h1": {"lost": True}}
    worker = make_worker(directory=write_config(tmp_path / "q", pool), check_delay=30)
    (first,) = launch(options={"server": "h1"})
    run_until(worker, lambda: status(engine, first) == "running")

    engine.request_terminate(first)
    run_until(worker, stopped(engine, first))
    (second,) = launch()
    run_until(worker, lambda: status(engine, second) == "running")

    assert "h1" in engine.redis.hgetall(engine.keys.quarantine("pool"))
    assert engine.get_task(second)["alloc_host"] == "h2"
    assert "could not stop it on h1" in engine.read_log(first)[0].decode()


def test_a_launch_whose_answer_was_lost_is_retried_on_the_same_host_only(
    engine, make_worker, launch, tmp_path
):
    """The host ran the start but the answer never came back: starting the task on another
    host could run it twice, so the launch is retried where it may already run."""
    pool = fake_pool(hosts={"h1": ([0], 2), "h2": ([0], 2)})
    pool["variables"]["fake"]["hosts"] = {"h1": {"answers_lost": 2}}
    worker = make_worker(directory=write_config(tmp_path / "u", pool), lease_ttl=0.05)
    (task_id,) = launch(options={"server": ["h1", "h2"]})
    engine.redis.hset(engine.keys.disabled("pool"), "h2", "maintenance")  # h1 first
    run_until(worker, lambda: engine.get_task(task_id).get("alloc_host") == "h1")
    engine.redis.hdel(engine.keys.disabled("pool"), "h2")

    run_until(worker, lambda: status(engine, task_id) == "running")

    task = engine.get_task(task_id)
    assert task["alloc_host"] == "h1" and "launch_unknown_since" not in task
    assert engine.redis.hget(engine.keys.fake_starts("pool"), task_id) == "1"
    assert engine.read_log(task_id)[0].decode().count("trying it there again") == 2
    assert "h1" not in engine.redis.hgetall(engine.keys.quarantine("pool"))  # it answered


def test_after_a_lost_answer_a_host_that_cannot_be_reached_keeps_the_task(
    engine, make_worker, launch, tmp_path
):
    """The usual sequel of a dropped connection is a refused one: the task must still wait
    for that host, where its job may run, not start a second copy elsewhere."""
    pool = fake_pool(hosts={"h1": ([0], 2), "h2": ([0], 2)})
    pool["variables"]["fake"]["hosts"] = {"h1": {"answers_lost": 1}}
    worker = make_worker(directory=write_config(tmp_path / "r", pool), lease_ttl=0.05)
    real_launch, hosts_tried = worker.service.launch, []

    def then_unreachable_twice(request):
        hosts_tried.append(request.host)
        if len(hosts_tried) in (2, 3):
            raise InfrastructureError(f"{request.host}: cannot connect")
        return real_launch(request)

    worker.service.launch = then_unreachable_twice
    engine.redis.hset(engine.keys.disabled("pool"), "h2", "maintenance")
    (task_id,) = launch()
    run_until(worker, lambda: engine.get_task(task_id).get("alloc_host") == "h1")
    engine.redis.hdel(engine.keys.disabled("pool"), "h2")

    run_until(worker, lambda: status(engine, task_id) == "running")

    assert set(hosts_tried) == {"h1"} and len(hosts_tried) == 4
    assert engine.get_task(task_id)["alloc_host"] == "h1"
    assert engine.redis.hget(engine.keys.fake_starts("pool"), task_id) == "1"
    assert "h1" not in engine.redis.hgetall(engine.keys.quarantine("pool"))  # it answered


def test_a_host_silent_for_a_quarantine_period_is_given_up(
    engine, make_worker, launch, tmp_path, token_hooks
):
    pool = fake_pool(hosts={"h1": ([0], 2), "h2": ([0], 2)})
    pool["variables"]["fake"]["hosts"] = {"h1": {"answers_lost": 1000}}
    directory = write_config(tmp_path / "g", pool)
    worker = make_worker(directory=directory, lease_ttl=0.05, quarantine_time=0.5)
    engine.redis.hset(engine.keys.disabled("pool"), "h2", "maintenance")
    (task_id,) = launch()
    run_until(worker, lambda: engine.get_task(task_id).get("alloc_host") == "h1")
    engine.redis.hdel(engine.keys.disabled("pool"), "h2")

    run_until(worker, lambda: engine.get_task(task_id).get("alloc_host") == "h2", timeout=10)

    log = engine.read_log(task_id)[0].decode()
    assert "task re-queued; a copy may still run on h1" in log
    _minted, revoked = token_hooks
    assert revoked[:1] == [task_id]  # the copy on h1 cannot act on the one that follows


def test_status_failures_must_be_consecutive_to_lose_a_task(engine, make_worker, launch):
    """A healthy task whose host misses every other poll runs to completion."""
    worker = make_worker(check_delay=0.01)
    (task_id,) = launch(options={"fake": {"duration": 0.6}})
    run_until(worker, lambda: status(engine, task_id) == "running")
    polls = {"n": 0, "failed": 0}
    real_status = worker.service.status

    def every_other_poll_fails(task_id, host, job):
        polls["n"] += 1
        if polls["n"] % 2:
            polls["failed"] += 1
            raise InfrastructureError("transient hiccup")
        return real_status(task_id, host, job)

    worker.service.status = every_other_poll_fails
    run_until(worker, stopped(engine, task_id))
    assert polls["failed"] > MAX_STATUS_FAILURES
    assert engine.get_task(task_id)["message"] == "completed"


def test_a_timer_left_for_a_deleted_task_is_dropped_not_fired_forever(engine, make_worker, launch):
    worker = make_worker(lease_ttl=0.1)
    (task_id,) = launch()
    engine.request_terminate(task_id)  # queued: stopped at once
    engine.delete_task(task_id)
    # A call in flight during the deletion re-armed its timer (the sweep pushes it back).
    engine.store.set_timer("pool", "check", task_id, time.time())
    timers = engine.keys.timers("pool")

    run_until(worker, lambda: engine.redis.zscore(timers, f"check|{task_id}") is None)

    assert not engine.redis.exists(engine.keys.task(task_id))  # nothing recreated


def test_launch_interrupted_before_set_running_is_retried_once(engine, make_worker, launch):
    """A Redis error after the service started the job leaves the task allocated only until
    the launch timer fires; the retry finds the started job instead of starting another."""
    worker = make_worker(lease_ttl=0.1)
    real_set_running = engine.store.set_running
    calls = {"n": 0}

    def first_call_fails(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise redis.ConnectionError("connection reset")
        return real_set_running(*args, **kwargs)

    engine.store.set_running = first_call_fails
    (task_id,) = launch(options={"fake": {"duration": 60}})
    run_until(worker, lambda: calls["n"] == 1)
    assert status(engine, task_id) == "allocated"
    run_until(worker, lambda: status(engine, task_id) == "running", timeout=3)
    assert engine.redis.hget(engine.keys.fake_starts("pool"), task_id) == "1"
    assert engine.get_task(task_id)["job"]["host"] == engine.get_task(task_id)["alloc_host"]
    timers = engine.redis.zrange(engine.keys.timers("pool"), 0, -1)
    assert f"launch|{task_id}" not in timers and f"check|{task_id}" in timers


def test_disable_and_enable_host(engine, make_worker, launch):
    worker = make_worker()
    engine.disable_host("pool", "h1", "maintenance")
    ids = [launch(options={"fake": {"duration": 60}})[0] for _ in range(3)]
    run_until(worker, lambda: [status(engine, t) for t in ids].count("running") == 2)
    assert {engine.get_task(t).get("alloc_host") for t in ids} == {"h2", None}
    host = {h["name"]: h for h in engine.describe_pool("pool")["hosts"]}["h1"]
    assert host["state"] == "disabled" and host["reason"] == "disabled: maintenance"
    engine.enable_host("pool", "h1")
    run_until(worker, lambda: all(status(engine, t) == "running" for t in ids))
    assert engine.get_task(ids[2])["alloc_host"] == "h1"


def test_config_select_while_tasks_run(engine, make_worker, launch):
    worker = make_worker()
    running = [launch(options={"fake": {"duration": 0.4}})[0] for _ in range(4)]
    queued = [launch(options={"fake": {"duration": 0.05}})[0] for _ in range(2)]
    run_until(worker, lambda: all(status(engine, t) == "running" for t in running))
    engine.add_pool_config(
        "pool",
        "bigger",
        fake_pool(hosts={"h1": ([0, 1], 4), "h2": ([0, 1], 4), "h3": ([0, 1, 2, 3], 8)}),
    )
    assert engine.select_pool_config("pool", "bigger")["state"] == "pending"
    run_until(
        worker,
        lambda: (
            all(status(engine, t) == "running" for t in queued)
            or all(status(engine, t) == "stopped" for t in queued)
        ),
    )
    assert engine.describe_pool("pool")["config_state"] == "active"
    assert {engine.get_task(t)["alloc_host"] for t in queued} == {"h3"}
    run_until(worker, stopped(engine, *running, *queued), timeout=8)
    assert all(engine.get_task(t)["message"] == "completed" for t in running + queued)
    assert engine.describe_pool("pool")["capacity"] == {"gpus": 8, "cpus": 16}


def test_takeover_launches_with_the_selected_configuration(engine, make_worker, launch):
    """A standby that takes the lease loads the configuration selected meanwhile before it
    launches the tasks the previous leader allocated (here on a host only that one has)."""
    leader = make_worker(lease_ttl=0.2)
    standby = make_worker(lease_ttl=0.2)  # started with the base configuration (h1, h2)
    run_until(leader, lambda: leader.lease.held)
    engine.add_pool_config(
        "pool", "bigger", fake_pool(hosts={"h1": ([0, 1], 4), "h2": ([0, 1], 4), "h3": ([0], 4)})
    )
    engine.select_pool_config("pool", "bigger")
    leader.run_once()
    ids = [launch(options={"server": host})[0] for host in ("h1", "h2", "h3")]
    # The leader allocates, then dies before launching anything.
    allocated = leader.scheduler.run_pass(leader.config.hosts, leader.lease.token)
    assert {a.host for a in allocated} == {"h1", "h2", "h3"}
    leader.lease.token = None
    time.sleep(0.25)
    run_until(standby, lambda: all(status(engine, t) == "running" for t in ids))
    assert not engine.redis.hgetall(engine.keys.quarantine("pool"))
    assert engine.get_task(ids[2])["alloc_host"] == "h3"


def test_ttl_policy_removes_task_log_files_and_index_entries(engine, make_worker, launch, tmp_path):
    pool = fake_pool()
    pool["ttl_policy"] = [{"pattern": {"message": "aborted"}, "ttl": 1}]
    worker = make_worker(directory=write_config(tmp_path / "t", pool))
    keep = launch()[0]
    (gone,) = launch(files={"a.txt": b"x"})
    engine.append_log(gone, "some log")
    engine.request_terminate(gone)
    engine.request_terminate(keep, "cancelled")
    run_until(worker, lambda: not engine.redis.exists(engine.keys.task(gone)), timeout=4)
    assert [t["task_id"] for t in engine.list_tasks()] == [keep]
    assert not engine.redis.exists(engine.keys.log(gone), engine.keys.files(gone))
    for index in engine.redis.keys("snw:idx:*"):
        assert engine.redis.zscore(index, gone) is None
    assert engine.redis.zscore(engine.keys.ids(), gone) is None


def test_restart_and_stop_commands(engine, make_worker, launch):
    worker = make_worker()
    assert engine.restart_pool("pool") == {"pool": "pool", "command": "restart", "state": "pending"}
    run_until(worker, lambda: engine.describe_pool("pool")["command_state"] == "done")
    (task_id,) = launch()
    assert engine.stop_pool("pool")["state"] == "pending"
    run_until(worker, lambda: worker.exit_code is not None)
    assert worker.exit_code == STOP_EXIT_CODE
    assert engine.describe_pool("pool")["state"] == "stopped"
    assert status(engine, task_id) in ("queued", "allocated", "running")  # nothing lost


def test_stop_also_stops_the_standby_workers(engine, make_worker, launch):
    leader = make_worker(lease_ttl=0.2)
    standby = make_worker(lease_ttl=0.2)
    run_until(leader, lambda: leader.lease.held)
    engine.stop_pool("pool")
    run_until(leader, lambda: leader.exit_code is not None)
    leader.lease.release()
    (task_id,) = launch()

    run_until(standby, lambda: standby.exit_code is not None)

    assert standby.exit_code == STOP_EXIT_CODE
    assert status(engine, task_id) == "queued"  # nothing scheduled on a stopped pool
    # A worker started after the stop runs the pool again.
    fresh = make_worker(lease_ttl=0.2)
    run_until(fresh, lambda: status(engine, task_id) == "running")
    assert fresh.exit_code is None and engine.describe_pool("pool")["state"] == "running"


def test_token_hooks_mint_on_launch_and_revoke_on_stop(engine, make_worker, launch, token_hooks):
    minted, revoked = token_hooks
    worker = make_worker()
    (task_id,) = launch(options={"fake": {"duration": 0.05}})
    run_until(worker, stopped(engine, task_id))
    # Minted by the worker at launch, never stored by the engine.
    assert minted == [(task_id, {"entity": "AB", "user": "ABusr", "trainer_id": "ABusr"})]
    assert "tok-" not in json.dumps(engine.get_task(task_id))
    redis = engine.store.redis
    assert not [key for key in redis.scan_iter() if b"tok-" in (redis.dump(key) or b"")]
    assert revoked == [task_id]


def test_pool_description(engine, make_worker, launch):
    worker = make_worker()
    engine.disable_host("pool", "h2")
    launch(ngpus=2)
    launch(ngpus=2)
    worker.run_once()
    pools = engine.list_pools()
    assert [p["name"] for p in pools] == ["pool"]
    pool = pools[0]
    assert pool["capacity"] == {"gpus": 4, "cpus": 8} and pool["usage"]["gpus"] == 2
    assert pool["queued"] == 1 and pool["active"] == 2 and pool["busy"] == 1
    assert pool["service"] == "fake" and len(pool["workers"]) == 1 and pool["leader"]
    hosts = {h["name"]: h for h in pool["hosts"]}
    assert hosts["h1"]["used_gpus"] == 2 and hosts["h2"]["state"] == "disabled"


def test_the_worker_command_refuses_an_unknown_pool_in_one_line(
    engine, redis_url, config_dir, monkeypatch, caplog
):
    from nmtwizard.worker import main

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CONFIG_DIR", str(config_dir))
    monkeypatch.delenv("LAUNCHER_CONFIG", raising=False)

    assert main(["nosuch"]) == 2
    assert "pool nosuch: cannot start" in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize(("callback_url", "expected"), [(None, 30), ("http://launcher:8000", 30)])
def test_tasks_that_never_call_back_are_polled_at_the_short_delay(
    engine, make_worker, launch, callback_url, expected
):
    """A fake task never reports its end itself: a callback URL must not slow its polls
    down to the 120 s meant for tasks that post their own end."""
    worker = make_worker(check_delay=None, callback_url=callback_url)
    (task_id,) = launch()
    run_until(worker, lambda: status(engine, task_id) == "running")

    due = engine.redis.zscore(engine.keys.timers("pool"), f"check|{task_id}")

    assert expected - 5 < due - time.time() <= expected
