"""The ``fake`` service: a deterministic simulated pool for tests, demos and benchmarks.

Hosts come from ``variables.server_pool`` like the ssh service. Behaviour comes from
``variables.fake`` (pool defaults), from ``variables.fake.hosts.<host>`` and from the task option
``fake`` (per task), in increasing precedence:

* ``duration`` (s, default 2): time from launch to exit; ``exit_code`` (default 0);
* ``launch_delay`` (s, default 0): how long ``launch`` blocks (a slow host);
* ``launch_error``: ``"task"`` (TaskError) or ``"infrastructure"`` (InfrastructureError);
* ``answers_lost`` (default 0): the first N launch calls of a task start it (once) but raise
  OutcomeUnknown, as when a host runs the command and the connection drops before it answers;
* ``lost`` (host only): status polls and terminations raise InfrastructureError (a host that
  vanished).

The simulated jobs live in Redis (``fake:<pool>:jobs``) so that several worker processes, and a
worker restarted after SIGKILL, see the same pool. ``fake:<pool>:starts`` counts real starts per
task: tests use it to prove no task is ever launched twice.
"""

from __future__ import annotations

import json
import time
from typing import Any

from nmtwizard.exceptions import ConfigError, InfrastructureError, OutcomeUnknown, TaskError
from nmtwizard.services import register
from nmtwizard.services.base import JobState, JobStatus, LaunchRequest, Service

__all__ = ["FakeService"]

_KNOWN = {
    "answers_lost",
    "duration",
    "exit_code",
    "launch_delay",
    "launch_error",
    "lost",
    "hosts",
}


@register("fake")
class FakeService(Service):
    calls_back = False  # nothing runs: only a poll sees a fake task end

    def check_config(self) -> None:
        settings = self.config.variables.get("fake", {})
        where = f"{self.config.source}: key variables.fake"
        if not isinstance(settings, dict):
            raise ConfigError(f"{where}: expected an object")
        unknown = set(settings) - _KNOWN
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        for host in settings.get("hosts", {}):
            if host not in self.hosts:
                raise ConfigError(f"{where}.hosts.{host}: not a host of the pool")

    def validate(self) -> None:
        if self.context.redis is None:
            raise ConfigError(f"{self.config.source}: the fake service needs a Redis client")

    def _settings(self, host: str, options: dict | None = None) -> dict[str, Any]:
        pool = dict(self.config.variables.get("fake", {}))
        per_host = pool.pop("hosts", {}).get(host, {})
        return {**pool, **per_host, **((options or {}).get("fake") or {})}

    def _jobs_key(self) -> str:
        return self.context.keys.fake_jobs(self.config.name)

    def launch(self, request: LaunchRequest) -> dict[str, Any]:
        settings = self._settings(request.host, request.options)
        if request.host not in self.hosts:
            raise InfrastructureError(f"unknown host {request.host}")
        delay = float(settings.get("launch_delay", 0))
        if delay:
            time.sleep(delay)
        error = settings.get("launch_error")
        if error == "infrastructure":
            raise InfrastructureError(f"{request.host}: simulated infrastructure failure")
        if error == "task":
            raise TaskError(f"simulated launch failure of {request.task_id}")
        job = {
            "host": request.host,
            "gpus": list(request.gpus),
            "cpus": list(request.cpus),
            "start": time.time(),
            "duration": float(settings.get("duration", 2.0)),
            "exit_code": int(settings.get("exit_code", 0)),
        }
        redis = self.context.redis
        if redis.hsetnx(self._jobs_key(), request.task_id, json.dumps(job)):
            redis.hincrby(self.context.keys.fake_starts(self.config.name), request.task_id, 1)
        stored = json.loads(redis.hget(self._jobs_key(), request.task_id))  # maybe started before
        if stored.get("answers_lost", 0) < int(settings.get("answers_lost", 0)):
            stored["answers_lost"] = stored.get("answers_lost", 0) + 1
            redis.hset(self._jobs_key(), request.task_id, json.dumps(stored))
            raise OutcomeUnknown(f"{request.host}: the launch's answer was lost (simulated)")
        return stored

    def status(self, task_id: str, host: str, job: dict | None) -> JobStatus:
        if self._settings(host).get("lost"):
            raise InfrastructureError(f"{host}: host unreachable (simulated)")
        text = self.context.redis.hget(self._jobs_key(), task_id)
        if text is None:
            return JobStatus(JobState.DEAD, "no such job")
        stored = json.loads(text)
        if stored.get("killed"):
            return JobStatus(JobState.DEAD, "killed")
        if time.time() < stored["start"] + stored["duration"]:
            return JobStatus(JobState.RUNNING)
        if stored["exit_code"] == 0:
            return JobStatus(JobState.COMPLETED)
        return JobStatus(JobState.FAILED, f"exit code {stored['exit_code']}")

    def terminate(self, task_id: str, host: str, job: dict | None) -> None:
        if self._settings(host).get("lost"):
            raise InfrastructureError(f"{host}: host unreachable (simulated)")
        redis = self.context.redis
        text = redis.hget(self._jobs_key(), task_id)
        if text is not None:
            stored = json.loads(text)
            stored["killed"] = True
            redis.hset(self._jobs_key(), task_id, json.dumps(stored))

    def forget(self, task_id: str) -> None:
        """Drop the simulated job (called when the task record is cleaned up)."""
        self.context.redis.hdel(self._jobs_key(), task_id)
