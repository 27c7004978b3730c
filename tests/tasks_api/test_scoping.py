"""Scoping decisions asked directly (the routes calling them are tested in test_pools.py)."""

from __future__ import annotations

from tasks_api import scoping


def test_service_list_shows_the_pools_of_ones_own_entity_unless_all_is_asked(world):
    trainer_b = world["trainer_b"]
    assert scoping.pool_listed(trainer_b, frozenset({"BB"}), every_pool=False)
    assert scoping.pool_listed(trainer_b, frozenset({"AA", "BB"}), every_pool=False)
    assert not scoping.pool_listed(trainer_b, frozenset({"AA"}), every_pool=False)
    assert scoping.pool_listed(trainer_b, frozenset({"AA"}), every_pool=True)
    # the super administrator's own entity serves no pool: ``all`` is how they see them
    assert not scoping.pool_listed(world["superadmin"], frozenset({"AA"}), every_pool=False)
