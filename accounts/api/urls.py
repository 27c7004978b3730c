"""Routes of the accounts API (included at the root by ``snw_site.urls``)."""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from accounts.api.exceptions import no_route
from accounts.api.views import (
    EntityViewSet,
    GroupViewSet,
    LogoutView,
    MeView,
    PasswordView,
    PersistentTokenViewSet,
    RoleViewSet,
    ShareViewSet,
    TokenRefreshView,
    TokenView,
    UserViewSet,
)

__all__ = ["urlpatterns"]

# =============================================================================
# Authentication
# =============================================================================
router = SimpleRouter(trailing_slash=False)
router.register("auth/tokens", PersistentTokenViewSet, basename="auth-tokens")

# =============================================================================
# Accounts resources: /api/accounts/<resource>/
# =============================================================================
accounts_router = SimpleRouter()
accounts_router.register("entities", EntityViewSet, basename="accounts-entities")
accounts_router.register("users", UserViewSet, basename="accounts-users")
accounts_router.register("groups", GroupViewSet, basename="accounts-groups")
accounts_router.register("roles", RoleViewSet, basename="accounts-roles")
accounts_router.register("shares", ShareViewSet, basename="accounts-shares")

urlpatterns = [
    path("auth/token", TokenView.as_view(), name="auth-token"),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout", LogoutView.as_view(), name="auth-logout"),
    path("auth/me", MeView.as_view(), name="auth-me"),
    path("auth/password", PasswordView.as_view(), name="auth-password"),
    *router.urls,
    path("api/accounts/", include(accounts_router.urls)),
    re_path(r"^(api/accounts|auth)(/[\s\S]*)?$", no_route, name="accounts-api-no-route"),
]
