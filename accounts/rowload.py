"""Rows read on every authenticated request, by one SELECT compiled once per database.

Token authentication loads the same shape on every request: a user with its entity (temporary
tokens), or a persistent token with its owner and the owner's entity. Through the ORM, building
and compiling that query each time costs more CPU than running it (about 0.25 ms of the 1 ms
budget of ``bench/auth.py``). A :class:`JoinedLoader` writes the SQL once from the models'
metadata; each call only executes it and builds the instances with ``Model.from_db``. Values
pass through the same database converters the ORM applies, so the instances are the ones
``select_related`` would give (``tests/accounts/test_rowload.py`` compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections, router

__all__ = ["JoinedLoader"]


@dataclass(frozen=True, slots=True)
class _Step:
    """One model of the chain: its columns' attribute names and converters, and the foreign key
    of the previous model that points at it (``None`` for the root)."""

    model: type
    attnames: tuple[str, ...]
    converters: tuple[tuple, ...]  # per column: (Col expression, [converter, ...])
    link: str | None


class JoinedLoader:
    """``JoinedLoader(PersistentToken, "owner", "entity", by="digest").get(digest)`` returns the
    token with ``token.owner`` and ``token.owner.entity`` loaded, in one query, or ``None``.

    ``path`` follows non-null foreign keys, each from the model the previous one reached.
    """

    def __init__(self, model, *path: str, by: str):
        self._model = model
        self._by = model._meta.pk if by == "pk" else model._meta.get_field(by)
        # [(model, foreign key of the previous model that reaches it)], the root first
        self._chain = [(model, None)]
        for name in path:
            foreign_key = model._meta.get_field(name)
            if not foreign_key.many_to_one or foreign_key.null:
                raise ValueError(f"{model.__name__}.{name} is not a non-null foreign key")
            model = foreign_key.related_model
            self._chain.append((model, foreign_key))
        self._compiled: dict[str, tuple[str, tuple[_Step, ...]]] = {}

    def get(self, value):
        """The root instance whose ``by`` field equals ``value``, its path loaded; else ``None``."""
        alias = router.db_for_read(self._model)
        connection = connections[alias]
        if alias not in self._compiled:
            self._compiled[alias] = self._compile(connection)
        sql, steps = self._compiled[alias]
        param = self._by.get_db_prep_value(value, connection, prepared=False)
        with connection.cursor() as cursor:
            cursor.execute(sql, [param])
            row = cursor.fetchone()
        if row is None:
            return None

        root = previous = None
        start = 0
        for step in steps:
            values = []
            for raw, (column, converters) in zip(row[start:], step.converters, strict=False):
                for convert in converters:
                    raw = convert(raw, column, connection)
                values.append(raw)
            start += len(step.attnames)
            instance = step.model.from_db(alias, step.attnames, values)
            if previous is None:
                root = instance
            else:
                setattr(previous, step.link, instance)  # the FK descriptor caches it
            previous = instance
        return root

    def _compile(self, connection) -> tuple[str, tuple[_Step, ...]]:
        quote = connection.ops.quote_name
        columns: list[str] = []
        joins: list[str] = []
        steps: list[_Step] = []
        for depth, (model, foreign_key) in enumerate(self._chain):
            alias = f"t{depth}"
            if foreign_key is not None:
                joins.append(
                    f"INNER JOIN {quote(model._meta.db_table)} {alias} ON "
                    f"{alias}.{quote(foreign_key.target_field.column)} = "
                    f"t{depth - 1}.{quote(foreign_key.column)}"
                )
            fields = model._meta.concrete_fields
            columns += [f"{alias}.{quote(field.column)}" for field in fields]
            steps.append(
                _Step(
                    model=model,
                    attnames=tuple(field.attname for field in fields),
                    converters=tuple(_converters(field, alias, connection) for field in fields),
                    link=foreign_key.name if foreign_key is not None else None,
                )
            )
        # Identifiers come from the models' metadata, quoted; the one value is a parameter.
        sql = (
            f"SELECT {', '.join(columns)} FROM {quote(self._model._meta.db_table)} t0 "  # noqa: S608
            f"{' '.join(joins)} WHERE t0.{quote(self._by.column)} = %s"
        )
        return sql, tuple(steps)


def _converters(field, alias: str, connection) -> tuple:
    """What the ORM's compiler applies to a column's raw value: backend, then field converters."""
    column = field.get_col(alias)
    return column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)
