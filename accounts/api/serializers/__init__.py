"""Serializers of the accounts API, re-exported from one module per resource."""

from accounts.api.serializers.auth import (
    MessageSerializer,
    PersistentTokenCreatedSerializer,
    PersistentTokenCreateSerializer,
    PersistentTokenSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
)

__all__ = [
    "MessageSerializer",
    "PersistentTokenCreateSerializer",
    "PersistentTokenCreatedSerializer",
    "PersistentTokenSerializer",
    "TokenRequestSerializer",
    "TokenResponseSerializer",
]
