"""Settings for the test suite: fast hashing, quiet logs, a dedicated Redis key prefix."""

import os

os.environ.setdefault("DEBUG", "1")

from snw_site.settings.base import *  # noqa: F403
from snw_site.settings.base import CACHES

# Argon2 costs ~50 ms per hash by design; tests hash thousands of passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES["default"]["KEY_PREFIX"] = "snw-test"
LOGGING = {"version": 1, "disable_existing_loggers": False}
