"""Helpers of the authentication tests: personas' password, task ids, header builders."""

import base64

from rest_framework.test import APIClient

PASSWORD = "secret-password"
TASK_ID = "AATRN_ende_model_01_0123456789abcdef"
OTHER_TASK_ID = "AATRN_ende_model_02_fedcba9876543210"


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def basic(username: str, password: str) -> dict:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {raw}"}


def login(client: APIClient, user, **extra) -> str:
    """A temporary token for ``user`` through ``GET /auth/token``."""
    response = client.get("/auth/token", **basic(user.trainer_id, PASSWORD), **extra)
    assert response.status_code == 200, response.content
    return response.json()["token"]
