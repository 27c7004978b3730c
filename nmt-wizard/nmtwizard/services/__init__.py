"""Registry of the named service plugins (``"service": "fake"`` in a pool configuration).

Plugins register with :func:`register`; the worker resolves its pool's service with
:func:`build_service` and calls ``validate()`` before scheduling anything. Only registered names
are accepted: a pool configuration never names an arbitrary Python module.
"""

from __future__ import annotations

from nmtwizard.services.base import (
    HostSpec,
    JobState,
    JobStatus,
    LaunchRequest,
    Service,
    ServiceContext,
)

__all__ = [
    "HostSpec",
    "JobState",
    "JobStatus",
    "LaunchRequest",
    "Service",
    "ServiceContext",
    "build_service",
    "get_service_class",
    "register",
    "registered_services",
]

_REGISTRY: dict[str, type[Service]] = {}


def register(name: str):
    """Class decorator: make a Service subclass available under ``name``."""

    def decorate(cls: type[Service]) -> type[Service]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"service {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_builtin() -> None:
    # Imported here so that the registry exists before the plugins register into it.
    from nmtwizard.services import fake, invalid, local, ssh  # noqa: F401


def get_service_class(name: str) -> type[Service]:
    _load_builtin()
    return _REGISTRY[name]


def registered_services() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def build_service(config, context: ServiceContext | None = None) -> Service:
    """Instantiate and validate the service of a pool configuration."""
    service = get_service_class(config.service)(config, context)
    service.validate()
    return service
