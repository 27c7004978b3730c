"""``snw task …`` and its shortcuts: launch, exec, lt, status, terminate, dt, log, file."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from urllib.parse import quote

import click

from cli.options import JSON_OBJECT, pass_config, shared_options
from cli.output import emit, format_time, print_json, spinner, table

__all__ = [
    "task",
    "task_delete",
    "task_exec",
    "task_file",
    "task_launch",
    "task_list",
    "task_log",
    "task_status",
    "task_terminate",
]

MAX_LIST_LIMIT = 1000  # the server's largest page of task/list
LIST_HEADERS = (
    "Task ID",
    "Service",
    "Resource",
    "Priority",
    "Launch Date",
    "Image",
    "Status",
    "Message",
)


@click.group()
def task():
    """Tasks: launch, list, status, terminate, delete, log, file."""


def _id(task_id: str) -> str:
    return quote(task_id, safe="")


# =============================================================================
# Launch and exec
# =============================================================================
def _split_image(image: str, tag: str | None, registry: str) -> tuple[str, str, str]:
    """``[registry:]org/image[:tag]`` -> (registry, image, tag); ``-t`` must agree with it."""
    parts = image.split(":")
    if len(parts) == 3:
        registry, image, image_tag = parts
    elif len(parts) == 2 and "/" in parts[1]:
        (registry, image), image_tag = parts, None
    elif len(parts) == 2:
        image, image_tag = parts
    else:
        image_tag = None
    if "/" not in image:
        raise click.BadParameter("expected [REGISTRY:]ORG/IMAGE[:TAG]", param_hint="-i")
    if image_tag and tag and image_tag != tag:
        raise click.BadParameter(f"tag {tag} differs from the image's {image_tag}", param_hint="-t")
    tag = tag or image_tag
    if not tag:
        raise click.BadParameter("give the image tag (-t TAG or -i IMAGE:TAG)", param_hint="-t")
    return registry, image, tag


def _launch_lines(answer) -> list[dict]:
    lines = [answer] if isinstance(answer, str) else list(answer or [])
    tasks = []
    for line in lines:
        kind, task_id, *rest = [*line.split("\t"), ""]
        tasks.append({"type": kind, "task_id": task_id, "resources": rest[0], "line": line})
    return tasks


def _post_launch(config, pool: str, content: dict, uploads) -> list[dict]:
    fields = [("content", (None, json.dumps(content)))]
    with contextlib.ExitStack() as stack:
        for name, path in uploads.files.items():
            try:
                handle = stack.enter_context(path.open("rb"))
            except OSError as exc:
                raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
            fields.append((name, (name, handle, "application/octet-stream")))
        count = len(uploads.files)
        message = (
            f"Uploading {count} file{'s' if count > 1 else ''} ({uploads.size} bytes) and launching"
            if count
            else "Launching"
        )
        with spinner(f"{message} on {pool}…"):
            answer = config.client.post(f"task/launch/{quote(pool, safe='')}", files=fields)
    return _launch_lines(answer)


def launch_options(func):
    """The options ``launch`` and ``exec`` share (nmt-wizard's names)."""
    options = [
        click.option("-s", "--service", "pool", required=True, envvar="SNW_SERVICE",
                     help="Pool to launch on [env SNW_SERVICE]."),
        click.option("-i", "--image", required=True, envvar="SNW_IMAGE",
                     help="Docker image [REGISTRY:]ORG/IMAGE[:TAG] [env SNW_IMAGE]."),
        click.option("-t", "--tag", help="Image tag (unless in -i)."),
        click.option("--docker-registry", "registry", default="auto", show_default=True,
                     help="Registry key of the pool."),
        click.option("-g", "--gpus", type=click.IntRange(min=0), default=1, show_default=True,
                     help="GPUs per task."),
        click.option("-c", "--cpus", type=click.IntRange(min=0),
                     help="CPUs per task (default: the pool's cpu_allocation)."),
        click.option("-n", "--name", help="Model name."),
        click.option("-P", "--priority", type=int, default=0, show_default=True,
                     help="Higher is scheduled first."),
        click.option("-o", "--options", type=JSON_OBJECT,
                     help="Service options as JSON or @file, e.g. '{\"server\": \"h1\"}'."),
        click.option("-r", "--resource", help="Shortcut for -o '{\"server\": RESOURCE}'."),
        click.option("-w", "--wait-after-launch", type=click.FloatRange(min=0), default=2,
                     show_default=True, help="Seconds before checking the task started."),
        click.option("--parent", metavar="TASK_ID", help="Start after this task succeeds."),
        click.option("--novalidschema", is_flag=True,
                     help="Accepted for nmt-wizard scripts: SNW never checks -c against the "
                          "image's schema."),
        click.option("--upgrade", metavar="MODE",
                     help="Config upgrade mode: only `none` (SNW does not rewrite configs)."),
        click.option("-q", "--quiet", is_flag=True, help="Print only the task ids."),
        click.argument("docker_command", nargs=-1, required=True, type=click.UNPROCESSED),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def _launch(config, *, exec_mode: bool, docker_command, **opts) -> None:
    from cli.uploads import rewrite_command

    registry, image, tag = _split_image(opts["image"], opts["tag"], opts["registry"])
    command, uploads = rewrite_command(docker_command)
    options = opts["options"]
    if options is None:
        options = {"server": opts["resource"]} if opts["resource"] else {}
    content = {
        "docker": {"registry": registry, "image": image, "tag": tag, "command": command},
        "options": options,
        "wait_after_launch": opts["wait_after_launch"],
        "ngpus": opts["gpus"],
        "priority": opts["priority"],
    }
    optional = {
        "ncpus": opts["cpus"],
        "name": opts["name"],
        "parent": opts["parent"],
        "iterations": opts.get("iterations"),
        "entity_owner": opts.get("entity_owner"),
        "upgrade": opts["upgrade"],
    }
    content.update({k: v for k, v in optional.items() if v is not None})
    flags = {
        "exec_mode": exec_mode,
        "novalidschema": opts["novalidschema"],
        "nochainprepr": opts.get("nochainprepr"),
        "notransasrelease": opts.get("notransasrelease"),
    }
    content.update({k: True for k, v in flags.items() if v})
    chained = {
        "totranslate": [[uploads.local(i), o] for i, o in opts.get("totranslate") or ()],
        "toscore": [
            [o, ",".join(uploads.local(r) for r in refs.split(","))]
            for o, refs in opts.get("toscore") or ()
        ],
        "totuminer": [[uploads.local(i), o] for i, o in opts.get("totuminer") or ()],
    }
    content.update({k: v for k, v in chained.items() if v})
    tasks = _post_launch(config, opts["pool"], content, uploads)
    if config.json:
        print_json(tasks)
    else:
        for t in tasks:
            click.echo(t["task_id"] if opts["quiet"] else t["line"])


@task.command("launch", context_settings={"ignore_unknown_options": True})
@launch_options
@click.option("-I", "--iterations", type=click.IntRange(min=1), help="Chained trainings (1).")
@click.option("-e", "--entity-owner", metavar="CODE", help="Entity owning the task.")
@click.option("--nochainprepr", is_flag=True, help="Do not split training into prepr+train.")
@click.option("--notransasrelease", is_flag=True, help="Do not translate as a release.")
@click.option(
    "--totranslate",
    nargs=2,
    multiple=True,
    metavar="INPUT OUTPUT",
    help="After each model, translate INPUT to OUTPUT (<MODEL> in OUTPUT: the "
    "model's id). Repeatable.",
)
@click.option(
    "--toscore",
    nargs=2,
    multiple=True,
    metavar="OUTPUT REFERENCES",
    help="Score a --totranslate OUTPUT against REFERENCES (comma-separated). Repeatable.",
)
@click.option(
    "--totuminer",
    nargs=2,
    multiple=True,
    metavar="INPUT OUTPUT",
    help="Run TU-miner on a --totranslate INPUT and its OUTPUT. Repeatable.",
)
@shared_options
@pass_config
def task_launch(config, docker_command, **opts):
    """Launch a task on a pool; prints one line per created task: TYPE, TASK_ID, resources.

    Everything after `--` is the image's command. `@FILE` is replaced by the file's content;
    local paths (absolute, or relative with a `/`) and absolute paths inside JSON arguments are
    uploaded with the launch and rewritten to ${TMP_DIR}/NAME (so are local --totranslate
    inputs and --toscore references). From image tag 1.4.0 a training is preceded by a
    preprocessing task (--nochainprepr: not); translations run as releases from 1.8.0.

    \b
      snw launch -s aa_pool -i nmtwizard/pn9_tf:v1.20.0 -- -c @./config.json train
      snw launch -s aa_pool -i nmtwizard/pn9_tf:v1.20.0 \\
        --totranslate ./test.en 'launcher:test_<MODEL>.de' \\
        --toscore 'launcher:test_<MODEL>.de' ./test.de -- -c @./config.json train
    """
    _launch(config, exec_mode=False, docker_command=docker_command, **opts)


@click.command("exec", context_settings={"ignore_unknown_options": True})
@launch_options
@shared_options
@pass_config
def task_exec(config, docker_command, **opts):
    """Launch a generic (exec) task: any image and command, e.g. a scorer.

    \b
      snw exec -s aa_pool -i nmtwizard/score -t latest -g 0 -- score -o /data/out.txt
    """
    _launch(config, exec_mode=True, docker_command=docker_command, **opts)


# =============================================================================
# Listing and deleting
# =============================================================================
def _fetch_tasks(config, prefix: str, **filters) -> list[dict]:
    pattern = quote(f"{prefix}*", safe="*") if prefix else "-*"
    params = {k: v for k, v in filters.items() if v is not None}
    tasks = config.client.get(f"task/list/{pattern}", params=params)
    return sorted(tasks, key=lambda t: t.get("launched_time") or 0)


def _resource(t: dict) -> str:
    host = (t.get("alloc_resource") or t.get("resource") or "")[:25]
    return f"{host}:({t.get('ngpus', '')},{t.get('ncpus', '')})"


def render_tasks(tasks: list[dict]) -> str:
    rows = [
        [
            t["task_id"],
            t.get("service"),
            _resource(t),
            t.get("priority"),
            format_time(t.get("launched_time")),
            (t.get("image") or "").split("/")[-1],
            t.get("status"),
            t.get("message"),
        ]
        for t in tasks
    ]
    return table(LIST_HEADERS, rows, align=["left"] * len(LIST_HEADERS))


@task.command("list")
@click.option("-p", "--prefix", default="", envvar="SNW_TID",
              help="Task id prefix, e.g. your trainer id [env SNW_TID].")  # fmt: skip
@click.option(
    "-S",
    "--status",
    type=click.Choice(["launched", "queued", "allocated", "running", "terminating", "stopped"]),
)
@click.option("-s", "--service", "pool", help="Only tasks of this pool.")
@click.option("--parent", metavar="TASK_ID", help="Only children of this task.")
@click.option("--limit", type=click.IntRange(1, MAX_LIST_LIMIT), default=100, show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="Print only the task ids.")
@shared_options
@pass_config
def task_list(config, prefix, status, pool, parent, limit, quiet):
    """List the tasks you may see, oldest launch first."""
    tasks = _fetch_tasks(config, prefix, status=status, service=pool, parent=parent, limit=limit)
    if config.json:
        print_json(tasks)
    elif quiet:
        for t in tasks:
            click.echo(t["task_id"])
    else:
        click.echo(render_tasks(tasks) if tasks else "No tasks.")


@task.command("delete")
@click.option("-p", "--prefix", required=True, help="Delete the tasks whose id starts so.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@shared_options
@pass_config
def task_delete(config, prefix, yes):
    """Delete the stopped tasks whose id starts with PREFIX (with their logs and files).

    Matching tasks that have not stopped are left alone: terminate them first.
    """
    from cli.client import ServerError

    if not prefix.strip("*"):
        raise click.BadParameter("give a non-empty prefix", param_hint="-p")
    tasks = _fetch_tasks(config, prefix, status="stopped", limit=MAX_LIST_LIMIT)
    live = [
        t["task_id"]
        for t in _fetch_tasks(config, prefix, limit=MAX_LIST_LIMIT)
        if t.get("status") != "stopped"
    ]
    result = {"deleted": [], "failed": {}, "not_stopped": live}
    left_alone = f"{len(live)} matching task(s) not stopped, left alone." if live else ""
    if not tasks:
        emit(config, result, lambda _: click.echo(f"No stopped tasks. {left_alone}".rstrip()))
        return
    if not config.json:
        click.echo(render_tasks(tasks))
        if left_alone:
            click.echo(left_alone)
    if not yes and not click.confirm(f"Delete these {len(tasks)} stopped tasks?", err=True):
        raise click.ClickException("aborted, nothing deleted")
    for t in tasks:
        try:
            config.client.delete(f"task/{_id(t['task_id'])}")
            result["deleted"].append(t["task_id"])
        except ServerError as exc:
            result["failed"][t["task_id"]] = exc.message

    def human(result: dict) -> None:
        for task_id in result["deleted"]:
            click.echo(f"deleted {task_id}")
        for task_id, message in result["failed"].items():
            click.echo(f"not deleted {task_id}: {message}", err=True)

    emit(config, result, human)
    if result["failed"]:
        raise click.ClickException(f"{len(result['failed'])} of {len(tasks)} tasks not deleted")


# =============================================================================
# One task
# =============================================================================
def render_status(t: dict) -> str:
    now = t.get("current_time") or time.time()
    updated = t.get("updated_time")
    ago = f" - updated {int(now - updated)} seconds ago" if updated else ""
    message = f" ({t['message']})" if t.get("message") else ""
    lines = [
        f"TASK {t['task_id']} - TYPE {t.get('type')} - status {t.get('status')}{message}{ago}",
        f"PARENT {t.get('parent') or '-'}",
        f"SERVICE {t.get('service') or t.get('pool')} - RESOURCE {t.get('alloc_host') or '-'}"
        f" - CONTAINER {t.get('container_id') or '-'}",
        f"USING GPUs: {', '.join(map(str, t.get('alloc_gpus') or [])) or '-'}",
        f"USING CPUs: {', '.join(map(str, t.get('alloc_cpus') or [])) or '-'}",
    ]
    sizes = t.get("file_sizes") or {}
    listed = ", ".join(f"{name} ({sizes.get(name, '?')} bytes)" for name in t.get("files") or [])
    lines.append(f"ATTACHED FILES: {listed or '-'}")
    lines.append("TIMELINE")
    times = sorted(
        (float(v), k[: -len("_time")])
        for k, v in t.items()
        if k.endswith("_time") and k not in ("updated_time", "current_time") and v
    )
    previous = None
    for value, name in times:
        delta = f"(+{value - previous:.1f}s)" if previous is not None else ""
        lines.append(f"  {format_time(value)}  {name:<12} {delta}".rstrip())
        previous = value
    lines.append("CONTENT")
    content = json.dumps(t.get("content") or {}, indent=2, sort_keys=True)
    lines.extend(f"  {line}" for line in content.splitlines())
    return "\n".join(lines)


def _decoded_content(status: dict) -> dict:
    """The status with its ``content`` (JSON text on the wire, as nmt-wizard sends it) as an
    object, so ``--json`` output and the text view show the launch request itself."""
    if isinstance(status.get("content"), str):
        try:
            return {**status, "content": json.loads(status["content"])}
        except ValueError:
            pass
    return status


@task.command("status")
@click.argument("task_id")
@shared_options
@pass_config
def task_status(config, task_id):
    """Show a task: status, resources, files, the timeline of its status times, its content."""
    emit(
        config,
        _decoded_content(config.client.get(f"task/status/{_id(task_id)}")),
        lambda t: click.echo(render_status(t)),
    )


@task.command("terminate")
@click.argument("task_id")
@click.option("--phase", help="End message to record (default: aborted).")
@shared_options
@pass_config
def task_terminate(config, task_id, phase):
    """Stop a task (a queued one at once, a running one is killed)."""
    answer = config.client.get(
        f"task/terminate/{_id(task_id)}", params={"phase": phase} if phase else None
    )
    emit(config, answer, lambda a: click.echo(a.get("message", a)))


#: Seconds one long poll of ``snw log -f`` waits for new lines (the server allows up to 60).
FOLLOW_WAIT = 30.0
#: Exit status of ``snw log -f`` when the task stopped with another outcome than ``completed``.
EXIT_TASK_NOT_COMPLETED = 1


def _read_log(config, task_id: str, offset: int, wait: float | None = None):
    """``(bytes, next offset, status, message)``; status ``None`` from a launcher that does not
    say it (before the long poll existed)."""
    params = {"offset": offset} if offset else {}
    kwargs = {}
    if wait:
        params["wait"] = wait
        kwargs["timeout"] = (config.client.timeout[0], config.client.timeout[1] + wait)
    response = config.client.request(
        "GET", f"task/log/{_id(task_id)}", params=params or None, **kwargs
    )
    data = response.content
    headers = response.headers
    end = int(headers.get("X-Log-Offset", offset + len(data)))
    return data, end, headers.get("X-Task-Status"), headers.get("X-Task-Message", "")


@task.command("log")
@click.argument("task_id")
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Print new lines as they arrive until the task stops; exit 0 if it completed, "
    f"{EXIT_TASK_NOT_COMPLETED} otherwise.",
)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Start at this byte.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between polls with -f, only against a launcher without long polls.",
)
@shared_options
@pass_config
def task_log(config, task_id, follow, offset, interval):
    """Print a task's log; with -f, follow it until the task has stopped.

    -f waits on the launcher for new lines (long polls of 30 s: lines show as they are posted)
    and keeps a temporary token alive by refreshing it (saved as `snw login` saves it), up to
    the session age the server allows. Exit status with -f: 0 when the task completed,
    1 when it stopped otherwise (error, aborted, expired, dependency_error…) or when snw
    itself failed (launcher unreachable, token refused); 2 for a usage error.
    """
    if config.json:
        if follow:
            raise click.UsageError("--json cannot be combined with --follow")
        data, end, _status, _message = _read_log(config, task_id, offset)
        print_json({"task_id": task_id, "offset": end, "log": data.decode(errors="replace")})
        return
    data, offset, status, message = _read_log(config, task_id, offset)
    if data:
        click.echo(data, nl=False)
    if not follow:
        return
    from cli.auth import TokenRefresher

    refresher = TokenRefresher(config)
    long_poll = status is not None  # else a launcher from before long polls
    while not (status == "stopped" and not data):
        refresher.refresh_if_due()
        if long_poll:
            data, offset, status, message = _read_log(config, task_id, offset, wait=FOLLOW_WAIT)
        else:
            state = config.client.get(
                f"task/status/{_id(task_id)}", params={"fields": "status,message"}
            )
            data, offset, _, _ = _read_log(config, task_id, offset)
            status, message = state["status"], state.get("message") or ""
            if not data and status != "stopped":
                time.sleep(interval)
        if data:
            click.echo(data, nl=False)
    click.echo(f"[snw] task {task_id} stopped ({message or '-'})", err=True)
    if message != "completed":
        raise SystemExit(EXIT_TASK_NOT_COMPLETED)


@task.command("file")
@click.argument("task_id")
@click.argument("name")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
@shared_options
@pass_config
def task_file(config, task_id, name, output):
    """Download file NAME of a task (to standard output, or -o FILE)."""
    response = config.client.request("GET", f"task/file/{_id(task_id)}/{quote(name)}")
    if output is None:
        click.echo(response.content, nl=False)
        return
    output.write_bytes(response.content)
    click.echo(f"Wrote {len(response.content)} bytes to {output}", err=True)
