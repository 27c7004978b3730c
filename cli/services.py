"""``snw service list|describe|check`` (and the ``snw ls`` shortcut): the pools you may use."""

from __future__ import annotations

import click

from cli.options import JSON_OBJECT, pass_config, shared_options
from cli.output import emit, print_json, table

__all__ = ["service", "service_list"]

#: The columns of the reference README's ``snw ls`` table, in order.
LIST_HEADERS = ("Service Name", "Usage", "Queued", "Capacity", "Busy", "Description")
_LIST_ALIGN = ("left", "center", "center", "center", "center", "left")
_DESCRIPTION_WIDTH = 40


def _host_row(host: dict) -> list:
    """One ``  +-- host`` row of ``snw ls -v``: its usage lines, GPUs (CPUs) used and in all."""
    busy = "yes" if host.get("busy") else ""
    notes = [", ".join(host.get("usage") or [])]
    if host.get("reserved"):
        notes.append(f"reserved: {host['reserved']}")
    if busy:
        notes.append(f"**{host['busy']}")
    return [
        f"  +-- {host['name']}",
        f"{host.get('used_gpus', 0)} ({host.get('used_cpus', 0)})",
        "",
        f"{len(host.get('gpus') or [])} ({host.get('ncpus', 0)})",
        busy,
        "; ".join(n for n in notes if n)[:_DESCRIPTION_WIDTH],
    ]


def render_pools(pools: dict, *, verbose: bool) -> str:
    rows = []
    for name in sorted(pools):
        pool = pools[name]
        description = pool.get("description", pool.get("name", ""))
        if pool.get("disabled"):
            description = f"**DISABLED** {description}"
        rows.append(
            [
                f"{name} [{pool.get('pid', '')}]",
                pool.get("usage", ""),
                pool.get("queued", ""),
                pool.get("capacity", ""),
                pool.get("busy", ""),
                description[:_DESCRIPTION_WIDTH],
            ]
        )
        if verbose:
            rows.extend(_host_row(h) for _, h in sorted((pool.get("detail") or {}).items()))
    return table(LIST_HEADERS, rows, align=_LIST_ALIGN)


@click.group()
def service():
    """The pools (services) you may launch on: list, describe, check."""


@service.command("list")
@click.option("-v", "--verbose", is_flag=True, help="Add one row per host of each pool.")
@click.option("-a", "--all", "every", is_flag=True,
              help="Also the pools you may use that do not serve your own entity.")  # fmt: skip
@shared_options
@pass_config
def service_list(config, verbose, every):
    """List the pools serving your entity with their usage, queue and capacity (GPUs (CPUs))."""
    pools = config.client.get("service/list", params={"all": "true"} if every else None)
    emit(
        config,
        pools,
        lambda p: click.echo(render_pools(p, verbose=verbose) if p else "No pools available."),
    )


@service.command("describe")
@click.argument("pool", metavar="POOL")
@shared_options
@pass_config
def service_describe(config, pool):
    """Describe POOL: state, capacity, usage, hosts and workers."""

    def human(d: dict) -> None:
        click.echo(f"{d['name']}: {d.get('description', '')}")
        click.echo(
            f"  service:   {d.get('service')}   entities: {', '.join(d.get('entities', []))}"
        )
        click.echo(f"  state:     {d.get('state')}   configuration: {d.get('current_config')}")
        if d.get("disabled"):
            click.echo("  disabled:  yes (its configuration says so: it takes no task)")
        if d.get("unusable"):
            click.echo(f"  unusable:  {d['unusable']}")
        cap, use = d.get("capacity") or {}, d.get("usage") or {}
        click.echo(
            f"  capacity:  {cap.get('gpus', 0)} GPUs ({cap.get('cpus', 0)} CPUs), "
            f"in use {use.get('gpus', 0)} ({use.get('cpus', 0)}); "
            f"queued {d.get('queued', 0)}, active {d.get('active', 0)}"
        )
        click.echo(f"  workers:   {', '.join(d.get('workers') or []) or '**NO WORKER**'}")
        hosts = d.get("hosts") or []
        if hosts:
            rows = [
                [
                    h["name"],
                    f"{h.get('used_gpus', 0)}/{len(h.get('gpus') or [])}",
                    f"{h.get('used_cpus', 0)}/{h.get('ncpus', 0)}",
                    h.get("state", ""),
                    ", ".join(h.get("tasks") or []),
                ]
                for h in hosts
            ]
            click.echo(table(["Host", "GPUs", "CPUs", "State", "Tasks"], rows))

    emit(config, config.client.get(f"service/describe/{pool}"), human)


@service.command("check")
@click.argument("pool", metavar="POOL")
@click.option(
    "-o",
    "--options",
    type=JSON_OBJECT,
    help="Task options to check, as JSON or @file (default {}).",
)
@click.option("-r", "--resource", help="Shortcut for -o '{\"server\": RESOURCE}'.")
@shared_options
@pass_config
def service_check(config, pool, options, resource):
    """Ask POOL whether task options are acceptable; prints the service's answer."""
    if options is None:
        options = {"server": resource} if resource else {}
    print_json(config.client.post(f"service/check/{pool}", json=options))
