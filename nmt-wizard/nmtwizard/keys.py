"""Every Redis key name of the engine, built in one place.

Each key is a template below; :class:`Keys` renders it with the namespace prefix for Python
code, and :func:`lua_helpers` renders the same templates as Lua functions for the atomic
scripts of :mod:`nmtwizard.store`, so no other module spells a key.

| template | type | content |
|---|---|---|
| ``task:{id}`` | hash | task fields (see :mod:`nmtwizard.task`) |
| ``log:{id}`` | string | task log (capped) |
| ``log-events`` | pub/sub channel | a task id, published when its log grows or it stops |
| ``files:{id}`` | hash | file name -> bytes |
| ``children:{id}`` | set | ids of the tasks whose parent is ``id`` |
| ``ids`` | zset (score 0) | every task id, for prefix listing with ZRANGEBYLEX |
| ``idx:all``, ``idx:entity:{e}``, ``idx:user:{u}``, | zset | ids scored by launch time |
| ``idx:pool:{p}``, ``idx:status:{s}`` | | |
| ``active:{pool}`` | zset | tasks of the pool that are not stopped |
| ``queue:{pool}`` | zset | queued tasks; score = -priority * 1e10 + sequence |
| ``seq:{pool}`` | string | counter giving the FIFO sequence |
| ``timers:{pool}`` | zset | ``kind|id`` scored by due time (beat, launch, check, work, ttl) |
| ``gpus:{pool}:{host}`` / ``cpus:{pool}:{host}`` | hash | slot id -> task id |
| ``reserved:{pool}`` | hash | host -> id of the task the host is held for |
| ``disabled:{pool}`` | hash | host -> reason given by an administrator |
| ``quarantine:{pool}`` | hash | host -> JSON ``{until, message}`` after an infrastructure error |
| ``pools`` | set | registered pool names |
| ``pool:{pool}`` | hash | published state: description, config, current config, command... |
| ``configs:{pool}`` | hash | named configurations: name -> JSON text |
| ``base_config`` | string | JSON of the shared base in force (nmt-wizard HEAD's ``_base``) |
| ``base_file`` | string | canonical JSON of ``default.json`` as last read at a process start |
| ``base_posted`` | hash | a posted base: ``config`` (JSON), ``file`` (``base_file`` when posted) |
| ``lease:{pool}`` / ``epoch:{pool}`` | string | lease holder token / fencing counter |
| ``workers:{pool}`` | zset | worker id scored by last heartbeat |
| ``fake:{pool}:jobs`` / ``fake:{pool}:starts`` | hash | state of the simulated service |
"""

from __future__ import annotations

import string

from nmtwizard import defaults

__all__ = ["TEMPLATES", "Keys", "lua_helpers"]

TEMPLATES: dict[str, str] = {
    "task": "task:{}",
    "log": "log:{}",
    "log_events": "log-events",
    "files": "files:{}",
    "children": "children:{}",
    "ids": "ids",
    "idx_all": "idx:all",
    "idx_entity": "idx:entity:{}",
    "idx_user": "idx:user:{}",
    "idx_pool": "idx:pool:{}",
    "idx_status": "idx:status:{}",
    "active": "active:{}",
    "queue": "queue:{}",
    "seq": "seq:{}",
    "timers": "timers:{}",
    "gpus": "gpus:{}:{}",
    "cpus": "cpus:{}:{}",
    "reserved": "reserved:{}",
    "disabled": "disabled:{}",
    "quarantine": "quarantine:{}",
    "pools": "pools",
    "pool": "pool:{}",
    "configs": "configs:{}",
    "base_config": "base_config",
    "base_file": "base_file",
    "base_posted": "base_posted",
    "lease": "lease:{}",
    "epoch": "epoch:{}",
    "workers": "workers:{}",
    "fake_jobs": "fake:{}:jobs",
    "fake_starts": "fake:{}:starts",
}


class Keys:
    """Key builders for one namespace: ``Keys().task("X")`` -> ``"snw:task:X"``."""

    def __init__(self, namespace: str = defaults.NAMESPACE):
        self.namespace = namespace
        for name, template in TEMPLATES.items():
            setattr(self, name, self._builder(template))

    def _builder(self, template: str):
        prefix = self.namespace

        def build(*parts: str) -> str:
            return prefix + template.format(*parts)

        build.__name__ = template
        return build

    def __getattr__(self, name: str):
        raise AttributeError(f"no Redis key template named {name!r}")


def lua_helpers() -> str:
    """Lua functions ``K.<name>(...)`` rendering the templates with the prefix in ``NS``."""
    lines = ["local K = {}"]
    for name, template in TEMPLATES.items():
        pieces = []
        argn = 0
        for literal, field, _spec, _conv in string.Formatter().parse(template):
            if literal:
                pieces.append(repr(literal).replace('"', '\\"'))
            if field is not None:
                argn += 1
                pieces.append(f"a{argn}")
        args = ", ".join(f"a{i}" for i in range(1, argn + 1))
        body = " .. ".join(["NS", *pieces])
        lines.append(f"K.{name} = function({args}) return {body} end")
    return "\n".join(lines) + "\n"
