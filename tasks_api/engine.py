"""One :class:`nmtwizard.api.Engine` per process, built from ``settings.REDIS_URL``.

On first use the pool files of ``settings.SNW_ENGINE["CONFIG_DIR"]`` (when set) are published,
so tasks can be queued before any worker of the pool has started. That happens in every
process (each gunicorn worker, recycle, replica): a base configuration posted through
``/service/configs/_base`` is kept until ``default.json`` itself changes
(:meth:`nmtwizard.pool_config.ConfigLibrary.publish_default`).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

from nmtwizard.api import Engine

# Register the service plugins the API must know (pool validation, ``service/check``); the
# engine's registry loads only ``fake`` by itself.
from nmtwizard.services import local as _local  # noqa: F401
from nmtwizard.services import ssh as _ssh  # noqa: F401

__all__ = ["get_engine", "reset_engine"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
_engine_url: str | None = None


def get_engine() -> Engine:
    """The process-wide engine (rebuilt when ``REDIS_URL`` changes, e.g. under test settings)."""
    global _engine, _engine_url
    url = settings.REDIS_URL
    if _engine is not None and _engine_url == url:
        return _engine
    with _lock:
        if _engine is None or _engine_url != url:
            engine = Engine.from_url(url)
            config_dir = (getattr(settings, "SNW_ENGINE", None) or {}).get("CONFIG_DIR")
            if config_dir:
                pools = engine.sync_pool_configs(config_dir)
                log.info("published pool configurations from %s: %s", config_dir, pools)
            _engine, _engine_url = engine, url
    return _engine


def reset_engine() -> None:
    """Forget the engine (tests that change settings, forked servers)."""
    global _engine, _engine_url
    with _lock:
        _engine, _engine_url = None, None
