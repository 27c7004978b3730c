"""Serializers of the accounts API, re-exported from one module per resource."""

from accounts.api.serializers.auth import (
    MessageSerializer,
    PersistentTokenCreatedSerializer,
    PersistentTokenCreateSerializer,
    PersistentTokenSerializer,
    TokenRefreshResponseSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
)
from accounts.api.serializers.entities import (
    EntityCreateSerializer,
    EntitySerializer,
    EntityUpdateSerializer,
)
from accounts.api.serializers.groups import (
    GroupCreateSerializer,
    GroupSerializer,
    GroupUpdateSerializer,
)
from accounts.api.serializers.me import (
    MeSerializer,
    MeUpdateSerializer,
    PasswordChangeSerializer,
)
from accounts.api.serializers.roles import (
    GrantSerializer,
    RoleCreateSerializer,
    RoleSerializer,
    RoleUpdateSerializer,
)
from accounts.api.serializers.shares import ShareCreateSerializer, ShareSerializer
from accounts.api.serializers.users import (
    UserCreateSerializer,
    UserSerializer,
    UserUpdateSerializer,
)

__all__ = [
    "EntityCreateSerializer",
    "EntitySerializer",
    "EntityUpdateSerializer",
    "GrantSerializer",
    "GroupCreateSerializer",
    "GroupSerializer",
    "GroupUpdateSerializer",
    "MeSerializer",
    "MeUpdateSerializer",
    "MessageSerializer",
    "PasswordChangeSerializer",
    "PersistentTokenCreateSerializer",
    "PersistentTokenCreatedSerializer",
    "PersistentTokenSerializer",
    "RoleCreateSerializer",
    "RoleSerializer",
    "RoleUpdateSerializer",
    "ShareCreateSerializer",
    "ShareSerializer",
    "TokenRefreshResponseSerializer",
    "TokenRequestSerializer",
    "TokenResponseSerializer",
    "UserCreateSerializer",
    "UserSerializer",
    "UserUpdateSerializer",
]
