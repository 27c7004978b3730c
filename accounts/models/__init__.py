"""Models of the accounts app, one module per concept."""

from accounts.models.identity import Entity, User
from accounts.models.tokens import PersistentToken

__all__ = ["Entity", "PersistentToken", "User"]
