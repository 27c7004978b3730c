"""Routes of the accounts API (included at the root by ``snw_site.urls``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api.views import LogoutView, PersistentTokenViewSet, TokenView

__all__ = ["urlpatterns"]

# =============================================================================
# Authentication
# =============================================================================
router = SimpleRouter(trailing_slash=False)
router.register("auth/tokens", PersistentTokenViewSet, basename="auth-tokens")

urlpatterns = [
    path("auth/token", TokenView.as_view(), name="auth-token"),
    path("auth/logout", LogoutView.as_view(), name="auth-logout"),
    *router.urls,
]
