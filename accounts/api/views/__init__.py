"""Views of the accounts API, re-exported from one module per resource."""

from accounts.api.views.auth import (
    LogoutView,
    PersistentTokenViewSet,
    TokenRefreshView,
    TokenView,
)
from accounts.api.views.entities import EntityViewSet
from accounts.api.views.groups import GroupViewSet
from accounts.api.views.me import MeView, PasswordView
from accounts.api.views.roles import RoleViewSet
from accounts.api.views.shares import ShareViewSet
from accounts.api.views.users import UserViewSet

__all__ = [
    "EntityViewSet",
    "GroupViewSet",
    "LogoutView",
    "MeView",
    "PasswordView",
    "PersistentTokenViewSet",
    "RoleViewSet",
    "ShareViewSet",
    "TokenRefreshView",
    "TokenView",
    "UserViewSet",
]
