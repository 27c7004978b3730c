"""SNW settings, read from the environment and the shared launcher configuration.

Every value the launcher needs comes from environment variables (through one ``env`` object)
or, when ``LAUNCHER_CONFIG`` names an ini file, from that file; the environment wins. The README
documents each variable. Anything wrong stops start-up with a message naming the key.
"""

import contextlib
import logging
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from nmtwizard.exceptions import ConfigError
from nmtwizard.launcher_config import load_launcher_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# Local state of the embedded run (SQLite file, embedded Redis data, uploads in dev).
VAR_DIR = Path(env.str("SNW_VAR_DIR", default=str(BASE_DIR / "var")))

try:
    LAUNCHER = load_launcher_config()
except ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# Once per process, before logging is configured (Python's last-resort handler prints them).
for _warning in LAUNCHER.warnings:
    logging.getLogger("snw.settings").warning(_warning)

# =============================================================================
# Core
# =============================================================================
DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-never-use-in-production"  # noqa: S105
SECRET_KEY = LAUNCHER.secret_key or ""  # SECRET_KEY, else [flask] SECRET_KEY of the ini file
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY: required when DEBUG is off")
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SNW_VERSION = "0.1.0"

# =============================================================================
# Applications
# =============================================================================
DJANGO_APPS = [
    "snw_site.admin_apps.SNWAdminConfig",  # django.contrib.admin, as the SNW console
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
LOCAL_APPS = [
    "accounts",
    "tasks_api",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # the console's and the API docs' static files under gunicorn (collected to STATIC_ROOT)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # one ability-cache read per user per request (accounts.cache)
    "accounts.cache.AbilityCacheMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # a full Redis (maxmemory) answers 507 on plain Django views too (console, admin)
    "snw_site.middleware.StoreFullMiddleware",
]

ROOT_URLCONF = "snw_site.urls"
WSGI_APPLICATION = "snw_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "snw_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# =============================================================================
# Database: DATABASE_URL (env, or [database] url, or nmt-wizard's [flask]
# SQLALCHEMY_DATABASE_URI in LAUNCHER_CONFIG), SQLite by default
# =============================================================================
_database_url = LAUNCHER.database_url or f"sqlite:///{VAR_DIR / 'snw.sqlite3'}"
_DATABASE_SCHEMES = ("postgres", "postgresql", "pgsql", "sqlite")
_database_scheme = _database_url.partition("://")[0]
if _database_scheme not in _DATABASE_SCHEMES:  # the URL itself may hold a password: not echoed
    raise ImproperlyConfigured(
        f"DATABASE_URL: unsupported scheme {_database_scheme!r}; use postgres://… or sqlite:///…"
    )
DATABASES = {"default": env.db_url_config(_database_url)}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# =============================================================================
# Redis: the engine's task store, temporary tokens and the ability cache
# =============================================================================
REDIS_URL = LAUNCHER.redis_url or "redis://127.0.0.1:6379/0"
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "snw",
        "OPTIONS": {
            # JSON, not django-redis's default pickle: whoever can write to Redis must not be
            # able to run code in the launcher.
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
        },
    }
}

# =============================================================================
# Authentication and accounts
# =============================================================================
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("trainer_id", "first_name", "last_name", "email")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a rule: its password_changed hook revokes the user's persistent tokens (issue 4).
    {"NAME": "accounts.tokens.RevokeTokensOnPasswordChange"},
]
# The entity whose `admin_entity` permission means "manage entities".
SNW_SUPER_ENTITY = env.str("SUPER_ENTITY", default="SA")

# Tokens (accounts.tokens, issue 4), in seconds. `GET /auth/token?duration=` may ask for up to
# the maximum; task tokens live until the task stops (revoked) or this long at most.
SNW_TOKEN_DURATION = env.int("TOKEN_DURATION", default=600)
SNW_TOKEN_MAX_DURATION = env.int("TOKEN_MAX_DURATION", default=86400)
SNW_TASK_TOKEN_DURATION = env.int("TASK_TOKEN_DURATION", default=30 * 86400)
# `POST /auth/token/refresh` trades a valid `_T_` token for a new one, never past this many
# seconds after the password login that started the session (0: no refresh).
SNW_TOKEN_MAX_SESSION_AGE = env.int("TOKEN_MAX_SESSION_AGE", default=7 * 86400)
# A persistent token's last_used_at is written at most once per this many seconds.
SNW_PERSISTENT_TOKEN_TOUCH_INTERVAL = env.int("PERSISTENT_TOKEN_TOUCH_INTERVAL", default=60)
if not 0 < SNW_TOKEN_DURATION <= SNW_TOKEN_MAX_DURATION:
    raise ImproperlyConfigured("TOKEN_DURATION: must be > 0 and <= TOKEN_MAX_DURATION")
if SNW_TASK_TOKEN_DURATION <= 0:
    raise ImproperlyConfigured("TASK_TOKEN_DURATION: must be > 0")
if SNW_TOKEN_MAX_SESSION_AGE < 0:
    raise ImproperlyConfigured("TOKEN_MAX_SESSION_AGE: must be >= 0 (0 disables refresh)")
# Failed logins (accounts.ratelimit): per user name + client address, in a fixed window.
SNW_LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=5)
SNW_LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)
if SNW_LOGIN_MAX_FAILURES <= 0 or SNW_LOGIN_FAILURE_WINDOW <= 0:
    raise ImproperlyConfigured("LOGIN_MAX_FAILURES, LOGIN_FAILURE_WINDOW: must be > 0")

# =============================================================================
# REST API
# =============================================================================
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Tokens only (issue 4); passwords are accepted on /auth/token alone. Fail closed.
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Errors as {"message": ...} (+ "errors" per field); the lead may replace it project-wide.
    "EXCEPTION_HANDLER": "accounts.api.exceptions.message_exception_handler",
    # Proxies in front of the launcher whose X-Forwarded-For is trusted (login rate limit). 0:
    # REMOTE_ADDR only; DRF's None would trust any client-sent X-Forwarded-For (spoofable).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SNW launcher API",
    "DESCRIPTION": "Launch and follow GPU training tasks on shared pools; manage entities.",
    "VERSION": SNW_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# =============================================================================
# Engine (nmtwizard): pool configurations and timers, shared with the workers
# =============================================================================
SNW_ENGINE = {
    "CONFIG_DIR": LAUNCHER.config_dir,
    "REFRESH_COUNTER": LAUNCHER.refresh_counter,
    "QUARANTINE_TIME": LAUNCHER.quarantine_time,
}

# =============================================================================
# Internationalisation and static files
# =============================================================================
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
if STATIC_ROOT.is_relative_to(VAR_DIR):  # ours: WhiteNoise expects it, even before collectstatic
    with contextlib.suppress(OSError):  # a read-only var/ only costs WhiteNoise a warning
        STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# =============================================================================
# Security (production values come from the environment; see README)
# =============================================================================
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# =============================================================================
# Logging: one console handler; level from LOG_LEVEL / [default] log_level
# =============================================================================
LOG_LEVEL = LAUNCHER.log_level
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
