"""Pluggable hooks: the task token minter and revoker (the accounts layer provides them).

* ``minter(task_id, owner) -> token | None`` is called by the worker right before it launches the
  task; ``owner`` is ``{"entity", "user", "trainer_id"}``. The token goes to the service with the
  pool's ``callback_url`` and is never stored by the engine (the accounts layer keeps a digest).
* ``revoker(task_id) -> None`` is called by whichever process stops the task (worker or API).

Set them in-process with :func:`set_token_hooks`, or for worker processes through the environment
variables ``NMTWIZARD_TOKEN_MINTER`` / ``NMTWIZARD_TOKEN_REVOKER`` (``package.module:function``).
Default: no token, nothing to revoke. Hook failures are logged and never break the engine.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable

__all__ = ["mint_token", "revoke_tokens", "set_token_hooks"]

log = logging.getLogger(__name__)

TokenMinter = Callable[[str, dict], "str | None"]
TokenRevoker = Callable[[str], None]

_hooks: dict[str, Callable | None] = {"minter": None, "revoker": None}
_ENV = {"minter": "NMTWIZARD_TOKEN_MINTER", "revoker": "NMTWIZARD_TOKEN_REVOKER"}


def set_token_hooks(minter: TokenMinter | None = None, revoker: TokenRevoker | None = None) -> None:
    """Install (or, with None, remove) the hooks for this process."""
    _hooks["minter"], _hooks["revoker"] = minter, revoker


def _resolve(kind: str) -> Callable | None:
    if _hooks[kind] is not None:
        return _hooks[kind]
    path = os.environ.get(_ENV[kind])
    if not path:
        return None
    module, _, name = path.partition(":")
    _hooks[kind] = getattr(importlib.import_module(module), name)
    return _hooks[kind]


def mint_token(task_id: str, owner: dict) -> str | None:
    """A callback token for the task, or None (no minter, or it failed: the task then runs
    without callbacks and the worker still follows it by polling)."""
    minter = _resolve("minter")
    if minter is None:
        return None
    try:
        return minter(task_id, owner)
    except Exception:
        log.exception("token minter failed for task %s", task_id)
        return None


def revoke_tokens(task_ids: list[str]) -> None:
    revoker = _resolve("revoker")
    if revoker is None:
        return
    for task_id in task_ids:
        try:
            revoker(task_id)
        except Exception:
            log.exception("token revoker failed for task %s", task_id)
