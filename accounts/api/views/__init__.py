"""Views of the accounts API, re-exported from one module per resource."""

from accounts.api.views.auth import LogoutView, PersistentTokenViewSet, TokenView

__all__ = ["LogoutView", "PersistentTokenViewSet", "TokenView"]
