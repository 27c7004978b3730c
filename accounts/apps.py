from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # Ability-cache invalidation and cross-entity checks on m2m changes.
        from accounts import signals  # noqa: F401
