"""``snw entity|user|group|role|share``: list, show, create, update, delete over the accounts
REST API (``/api/accounts/<resource>/``, a DRF router: objects by id or natural code).

One generic builder makes the five groups; each resource only declares its path, table
columns and help. Fields are given as ``key=value`` (values that parse as JSON are sent as
JSON: ``permissions='["train"]'``, ``is_active=false``) or as a whole ``--data JSON|@FILE``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

import click

from cli.options import JSON_OBJECT, pass_config, shared_options
from cli.output import emit, table

__all__ = ["RESOURCES", "resource_group"]

API_ROOT = "api/accounts"


@dataclass(frozen=True)
class Resource:
    name: str  # command name: entity
    path: str  # URL segment: entities
    columns: tuple[str, ...]  # fields shown in the table
    lookup: str  # the field that identifies one object in URLs and on the command line
    example: str  # a create example

    def url(self, ident: str | None = None) -> str:
        base = f"{API_ROOT}/{self.path}/"
        return base if ident is None else f"{base}{quote(ident, safe='')}/"


RESOURCES = (
    Resource(
        "entity",
        "entities",
        ("entity_code", "name", "is_active", "description"),
        "entity_code",
        "snw entity create entity_code=AB name='Entity AB'",
    ),
    Resource(
        "user",
        "users",
        ("trainer_id", "entity", "first_name", "last_name", "email", "is_active", "roles"),
        "trainer_id",
        "snw user create user_code=JOE first_name=Joe password=… roles='[12]'",
    ),
    Resource(
        "group",
        "groups",
        ("id", "entity", "name", "description", "members", "roles"),
        "id",
        "snw group create name=nlp description='NLP team'",
    ),
    Resource(
        "role",
        "roles",
        ("id", "entity", "name", "grants"),
        "id",
        """snw role create name=reader grants='[{"permission": "user"}]'""",
    ),
    Resource(
        "share",
        "shares",
        ("id", "role", "role_name", "owner_entity", "entity"),
        "id",
        "snw share create role=12 entity=BB",
    ),
)


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _fields(pairs: tuple[str, ...], data: dict | None) -> dict:
    body = dict(data or {})
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="FIELDS")
        body[key] = _value(value)
    if not body:
        raise click.UsageError("give at least one KEY=VALUE field (or --data)")
    return body


def _cell(value) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        if "permission" in value:  # a role grant
            return f"{value['permission']}@{value.get('entity', '')}"
        return str(value.get("name") or value.get("trainer_id") or json.dumps(value))
    return "" if value is None else str(value)


def _render(resource: Resource, rows: list[dict]) -> str:
    if not rows:
        return f"No {resource.path}."
    headers = [c.replace("_", " ").capitalize() for c in resource.columns]
    return table(headers, [[_cell(r.get(c)) for c in resource.columns] for r in rows])


def _results(answer):
    """A DRF list answer, paginated (``{"results": …}``) or not."""
    return answer.get("results", []) if isinstance(answer, dict) else answer


def resource_group(resource: Resource) -> click.Group:
    """The ``list/show/create/update/delete`` group of one accounts resource."""
    name = resource.name
    fields_arg = click.argument("fields", nargs=-1, metavar="KEY=VALUE…")
    data_opt = click.option("--data", type=JSON_OBJECT, help="Fields as a JSON object or @FILE.")
    ident_arg = click.argument("ident", metavar=resource.lookup.upper())

    @click.group(name=name, help=f"Administer {resource.path}: list, show, create, update, delete.")
    def group():
        pass

    @group.command("list", help=f"List the {resource.path} you may see.")
    @click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
                  help="Query filter, e.g. --filter entity=AB (repeatable).")  # fmt: skip
    @shared_options
    @pass_config
    def list_(config, filters):
        params = dict(f.partition("=")[::2] for f in filters)
        answer = _results(config.client.get(resource.url(), params=params or None))
        emit(config, answer, lambda rows: click.echo(_render(resource, rows)))

    @group.command("show", help=f"Show one {name}.")
    @ident_arg
    @shared_options
    @pass_config
    def show(config, ident):
        answer = config.client.get(resource.url(ident))
        emit(config, answer, lambda obj: click.echo(json.dumps(obj, indent=2, sort_keys=True)))

    @group.command("create", help=f"Create a {name}.\n\n\b\n  {resource.example}")
    @fields_arg
    @data_opt
    @shared_options
    @pass_config
    def create(config, fields, data):
        created = config.client.post(resource.url(), json=_fields(fields, data))
        # Its lookup field (a user's trainer id, not its numeric id): what `show` takes.
        ident = created.get(resource.lookup, "")
        emit(config, created, lambda _: click.echo(f"Created {name} {ident}."))

    @group.command("update", help=f"Change fields of a {name} (PATCH).")
    @ident_arg
    @fields_arg
    @data_opt
    @shared_options
    @pass_config
    def update(config, ident, fields, data):
        updated = config.client.patch(resource.url(ident), json=_fields(fields, data))
        emit(config, updated, lambda obj: click.echo(f"Updated {name} {ident}."))

    @group.command("delete", help=f"Delete a {name}.")
    @ident_arg
    @click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
    @shared_options
    @pass_config
    def delete(config, ident, yes):
        if not yes and not click.confirm(f"Delete {name} {ident}?", err=True):
            raise click.ClickException("aborted")
        config.client.delete(resource.url(ident))
        emit(config, {"deleted": ident}, lambda _: click.echo(f"Deleted {name} {ident}."))

    return group
