"""The precompiled loaders of token authentication give what ``select_related`` gives."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import tokens
from accounts.models import PersistentToken, User
from accounts.rowload import JoinedLoader

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def test_user_with_entity_equals_the_orm_instance_in_one_query(trainer):
    loader = JoinedLoader(User, "entity", by="pk")

    with CaptureQueriesContext(connection) as queries:
        loaded = loader.get(trainer.pk)
        entity = loaded.entity  # cached by the join: no second query
    expected = User.objects.select_related("entity").get(pk=trainer.pk)

    assert len(queries) == 1
    assert _fields(loaded) == _fields(expected)
    assert _fields(entity) == _fields(expected.entity)
    # Converters ran: real booleans and aware datetimes, not 1/0 or strings (SQLite).
    assert loaded.is_active is True and entity.is_active is True
    assert timezone.is_aware(loaded.date_joined) and timezone.is_aware(entity.created_at)
    assert loaded._state.adding is False and loaded._state.db == "default"


def test_token_with_owner_and_entity_follows_the_whole_path(trainer):
    row, raw = tokens.persistent_token_create(
        actor=trainer, name="ci", expires_at=timezone.now() + timedelta(days=1)
    )
    loader = JoinedLoader(PersistentToken, "owner", "entity", by="digest")

    with CaptureQueriesContext(connection) as queries:
        loaded = loader.get(tokens.token_digest(raw))
        owner, entity = loaded.owner, loaded.owner.entity

    assert len(queries) == 1
    assert _fields(loaded) == _fields(PersistentToken.objects.get(pk=row.pk))
    assert loaded.last_used_at is None and timezone.is_aware(loaded.expires_at)
    assert (owner.pk, owner.trainer_id, entity.entity_code) == (
        trainer.pk,
        trainer.trainer_id,
        trainer.entity.entity_code,
    )


def test_no_row_gives_none(trainer):
    assert JoinedLoader(User, "entity", by="pk").get(trainer.pk + 1000) is None
    assert JoinedLoader(PersistentToken, "owner", by="digest").get("0" * 64) is None


def test_loaded_instances_save_like_orm_instances(trainer):
    loaded = JoinedLoader(User, "entity", by="pk").get(trainer.pk)
    loaded.first_name = "Renamed"
    loaded.save(update_fields=["first_name"])

    assert User.objects.get(pk=trainer.pk).first_name == "Renamed"


def test_only_non_null_foreign_keys_can_be_followed():
    with pytest.raises(ValueError, match=r"User\.first_name is not a non-null foreign key"):
        JoinedLoader(User, "first_name", by="pk")
