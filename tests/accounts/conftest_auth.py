"""Fixtures of the authentication tests (loaded with ``pytest_plugins``).

The personas (``trainer``, ``tenant_admin``, ``other_admin``, …) come from ``conftest.py``;
their password is ``secret-password``. Helpers live in ``auth_helpers``.
"""

import pytest
from rest_framework.test import APIClient

from accounts import tokens
from tests.accounts.auth_helpers import TASK_ID


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def persistent_token(trainer) -> str:
    """A raw ``_P_`` token of ``trainer``."""
    _, raw = tokens.persistent_token_create(actor=trainer, name="ci")
    return raw


@pytest.fixture
def task_token(trainer) -> str:
    """A restricted token of ``trainer`` for ``TASK_ID``."""
    return tokens.mint_task_token(TASK_ID, trainer)
