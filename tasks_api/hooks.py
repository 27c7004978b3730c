"""Token hooks for Django-free engine workers.

A worker process sets ``NMTWIZARD_TOKEN_MINTER=tasks_api.hooks:mint_task_token`` and
``NMTWIZARD_TOKEN_REVOKER=tasks_api.hooks:revoke_task_token``; the first call configures
Django (``DJANGO_SETTINGS_MODULE``, default ``snw_site.settings.base``) so the worker mints and
revokes the same task-restricted tokens as the launcher. Inside the launcher the hooks are
installed directly by :class:`tasks_api.apps.TasksApiConfig`.
"""

from __future__ import annotations

import os
import threading

__all__ = ["mint_task_token", "revoke_task_token"]

_setup_lock = threading.Lock()


def _django_ready() -> None:
    from django.apps import apps

    if apps.ready:
        return
    with _setup_lock:
        if not apps.ready:
            import django

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "snw_site.settings.base")
            django.setup()


def mint_task_token(task_id: str, owner) -> str:
    _django_ready()
    from accounts.tokens import mint_task_token as mint

    return mint(task_id, owner)


def revoke_task_token(task_id: str) -> int:
    _django_ready()
    from accounts.tokens import revoke_task_token as revoke

    return revoke(task_id)
