"""Constants of the accounts app: permission codes, preset roles, policy actions, cache keys."""

from enum import StrEnum

__all__ = [
    "ABILITY_CACHE_TIMEOUT",
    "ABILITY_GENERATION_KEY",
    "ABILITY_USER_KEY",
    "ADMIN_PERMISSIONS",
    "PERMISSION_DESCRIPTIONS",
    "PRESET_ROLES",
    "SUPER_ENTITY_PRESET_ROLES",
    "Action",
    "Perm",
]


class Perm(StrEnum):
    """The fixed permission codes of the reference README (seeded by migration 0003)."""

    ADMIN = "admin"
    ADMIN_USER = "admin_user"
    USER = "user"
    TRAIN = "train"
    TERMINATE_SELF = "terminate_self"
    TERMINATE = "terminate"
    DELETE_MODEL = "delete_model"
    RELEASE_MODEL = "release_model"
    PUSH_MODEL = "push_model"
    EDIT_CONFIG = "edit_config"
    STOP_CONFIG = "stop_config"
    ADMIN_ENTITY = "admin_entity"


PERMISSION_DESCRIPTIONS: dict[str, str] = {
    Perm.ADMIN: "Super Admin",
    Perm.ADMIN_USER: "Admin user",
    Perm.USER: "List models",
    Perm.TRAIN: "Launch tasks",
    Perm.TERMINATE_SELF: "Terminate tasks from oneself",
    Perm.TERMINATE: "Terminate tasks from other users",
    Perm.DELETE_MODEL: "Delete models",
    Perm.RELEASE_MODEL: "Release models",
    Perm.PUSH_MODEL: "Push models",
    Perm.EDIT_CONFIG: "Manage pool configuration",
    Perm.STOP_CONFIG: "Stop a pool",
    Perm.ADMIN_ENTITY: "Admin entity (only available for the super entity)",
}

#: Permissions only a holder may hand out (never derivable from `admin_user`).
ADMIN_PERMISSIONS = frozenset({Perm.ADMIN, Perm.ADMIN_ENTITY})

#: Roles created with every entity: name -> (description, permissions on the entity itself).
#: The reference README lists `trainer` = [user, trainer]; `train` is meant (issue 3).
PRESET_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "user": ("Basic user", (Perm.USER,)),
    "trainer": ("Trainer", (Perm.USER, Perm.TRAIN)),
    "lingadmin": (
        "Ling Admin",
        (
            Perm.USER,
            Perm.TRAIN,
            Perm.DELETE_MODEL,
            Perm.TERMINATE,
            Perm.ADMIN_USER,
            Perm.RELEASE_MODEL,
            Perm.PUSH_MODEL,
        ),
    ),
}
#: Extra roles of the super entity only.
SUPER_ENTITY_PRESET_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("Super Admin", (Perm.ADMIN,)),
}


class Action(StrEnum):
    """What a user wants to do with an object, as asked of the policy."""

    VIEW = "view"
    CHANGE = "change"


#: Cache keys (django-redis adds its KEY_PREFIX). The generation is a random token replaced on
#: every change that can alter an ability; a per-user entry is valid only for the token it was
#: computed under.
ABILITY_GENERATION_KEY = "accounts:abilities:generation"
ABILITY_USER_KEY = "accounts:abilities:user:{user_id}"
#: Per-user entries expire anyway so a forgotten user does not linger in Redis.
ABILITY_CACHE_TIMEOUT = 3600
