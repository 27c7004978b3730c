"""REST API of the accounts app: one module per resource under ``serializers/`` and ``views/``."""
