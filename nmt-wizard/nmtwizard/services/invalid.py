"""The ``invalid`` service: a pool SNW lists but cannot run tasks on.

nmt-wizard replaced a pool it could not build by its ``invalid`` service; SNW does the same for
pool files naming a plugin it has no service for (``services.ec2``, ``services.nova``,
``services.torque``): the pool is listed with a description saying why, has no host and no
capacity, and every launch on it is refused with that reason (``Engine.launch_chain``). Its
worker starts, publishes the pool and schedules nothing, so a pool file kept from nmt-wizard
neither stops start-up nor sends its worker into a restart loop.
"""

from __future__ import annotations

from typing import Any

from nmtwizard.exceptions import TaskError
from nmtwizard.services import register
from nmtwizard.services.base import HostSpec, JobState, JobStatus, LaunchRequest, Service

__all__ = ["InvalidService"]


@register("invalid")
class InvalidService(Service):
    calls_back = False

    @classmethod
    def parse_hosts(cls, config) -> list[HostSpec]:
        return []

    @property
    def reason(self) -> str:
        return self.config.unusable or "the pool's configuration names no usable service"

    def check(self, options: dict[str, Any]) -> dict[str, Any]:
        raise ValueError(f"pool {self.config.name!r} cannot run tasks: {self.reason}")

    def launch(self, request: LaunchRequest) -> dict[str, Any]:
        raise TaskError(f"pool {self.config.name!r} cannot run tasks: {self.reason}")

    def status(self, task_id: str, host: str, job: dict | None) -> JobStatus:
        return JobStatus(JobState.DEAD, self.reason)

    def terminate(self, task_id: str, host: str, job: dict | None) -> None:
        """Nothing ever runs on it."""
