"""The HTTP client of ``snw``: one session, a timeout on every call, retries only when safe.

Idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS) are retried on connection failures and
on 502/503/504, after a short backoff; POST (launch, login, logout, creations) never is, so a
launch is never sent twice. A server's ``Retry-After`` is never slept on (a locked-out login
asks for 900 s): a 429 is reported at once. Every failure becomes a one-line
:class:`click.ClickException` carrying the server's ``{"message": …}``; a refused token says
how to get a working one.
"""

from __future__ import annotations

from typing import Any

import click
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from cli import VERSION

__all__ = ["RETRY_METHODS", "Client", "ServerError"]

#: Methods retried on transient failures (never POST or PATCH).
RETRY_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_CONNECT_TIMEOUT = 5.0
LOGIN_HINT = "run `snw login` to get a new token"
GIVEN_TOKEN_REFUSED = "the token given by --token/SNW_TOKEN was refused"  # noqa: S105 (a message, not a secret)


class ServerError(click.ClickException):
    """The launcher answered with an error: its message, and the HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if body.get(key):
                return str(body[key])
    text = response.text.strip().splitlines()
    return text[0][:200] if text else f"HTTP {response.status_code} {response.reason}"


class Client:
    """Requests to one launcher with one token (``None``: anonymous).

    ``token_given``: the token came from --token/SNW_TOKEN, not from the file ``snw login``
    saved, so logging in again would not replace it when it is refused.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_given: bool = False,
        timeout: float = 30.0,
    ):
        self.url = url.rstrip("/")
        self.token = token
        self.token_given = token_given
        self.timeout = (min(_CONNECT_TIMEOUT, timeout), timeout)
        self.session = requests.Session()
        retry = Retry(
            total=3,
            connect=2,
            read=1,
            status=2,
            backoff_factor=0.3,
            status_forcelist=(502, 503, 504),
            allowed_methods=RETRY_METHODS,
            raise_on_status=False,
            respect_retry_after_header=False,  # else 429s are retried, sleeping Retry-After
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"snw/{VERSION}"

    # -------------------------------------------------------------------- raw requests
    def request(
        self, method: str, path: str, *, auth: Any = None, anonymous: bool = False, **kwargs
    ) -> requests.Response:
        """Send one request; raise :class:`click.ClickException` on any failure."""
        headers = kwargs.pop("headers", {})
        if auth is None and not anonymous:
            if not self.token:
                raise click.ClickException(f"not logged in: {LOGIN_HINT} (or set SNW_TOKEN)")
            headers["Authorization"] = f"Bearer {self.token}"
        kwargs.setdefault("timeout", self.timeout)
        url = f"{self.url}/{path.lstrip('/')}"
        try:
            response = self.session.request(method, url, auth=auth, headers=headers, **kwargs)
        except requests.Timeout:
            raise click.ClickException(
                f"the launcher at {self.url} did not answer within {self.timeout[1]:g}s"
            ) from None
        except requests.ConnectionError:
            raise click.ClickException(
                f"cannot reach the launcher at {self.url} (is it running? check --url/SNW_URL)"
            ) from None
        except requests.RequestException as exc:
            raise click.ClickException(f"request to {url} failed: {exc}") from None
        if response.status_code >= 400:
            message = _message(response)
            if response.status_code == 401 and auth is None:
                if self.token_given:
                    message = f"{GIVEN_TOKEN_REFUSED}: {message}"
                else:
                    message = f"{message.rstrip('.')}; {LOGIN_HINT}"
            raise ServerError(message, response.status_code)
        return response

    def json(self, method: str, path: str, **kwargs) -> Any:
        """The decoded JSON body of a successful request (``None`` for an empty one)."""
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise click.ClickException(
                f"unexpected non-JSON answer from {response.url} "
                f"(HTTP {response.status_code}); is --url the launcher?"
            ) from None

    # -------------------------------------------------------------------- shortcuts
    def get(self, path: str, **kwargs) -> Any:
        return self.json("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Any:
        return self.json("POST", path, **kwargs)

    def patch(self, path: str, **kwargs) -> Any:
        return self.json("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs) -> Any:
        return self.json("DELETE", path, **kwargs)
