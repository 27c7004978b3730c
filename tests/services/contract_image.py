#!/usr/bin/env python3
"""The contract-test image: a stand-in nmt-wizard-docker utility (stdlib only).

It parses exactly the entrypoint flags of ``reference/nmt-wizard-docker-contract.md`` §1 (names,
long forms, defaults; ``-ms`` defaults to ``$MODELS_DIR`` and parsing fails when neither is
given), then one sub-command, ``train``, and behaves as the images do:

* beats ``PUT <b>/task/beat/<t>?container_id=<hostname>&duration=<2 x bi>`` once in the main
  thread (a wrong URL fails at once), then every ``bi`` seconds from a thread, and prints its
  beat URL, token included, as the images' beat service logs it;
* fetches launch files and uploads a file through the ``launcher`` storage of ``-s`` (its
  ``get_pattern``/``post_pattern``), authenticating with HTTP Basic from the URL's user part;
* writes a model directory ``<model id = task id>`` under its write model storage (a ``local``
  storage of ``-s``: ``<basedir>/<path>/<model id>``);
* posts empty, then non-empty statistics to ``--statistics_url`` (replies ignored, as the
  images do);
* checks that its ``-g`` matches the GPUs it was given (``CUDA_VISIBLE_DEVICES``), in the
  numbering of ``$CONTRACT_GPU_NUMBERING`` (``0-indexed``, the default, or ``1-indexed``).

``train`` options (test-only): ``--fetch NAME`` (repeatable) with ``--compare PATH`` (the same
file as the launcher put it in ``${TMP_DIR}``), ``--upload NAME``, ``--other_task ID`` (a task
whose routes this task's token must not open: 401/403 expected), ``--seconds S`` (keep beating).

It writes what it received to ``contract-seen.json`` in its working directory (argv, the
storages text of ``-s`` and a few environment variables; the test reads it there) and prints
one ``contract:`` line per check. Exit status 0, or 1 on any mismatch (printing why).
"""

import argparse
import base64
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SEEN = "contract-seen.json"
ENV_SEEN = ("CUDA_VISIBLE_DEVICES", "NB_CPU", "TMP_DIR", "MODELS_DIR", "CONTRACT_GPU_NUMBERING")


def entrypoint_parser():
    """The flags every nmt-wizard-docker image parses before its sub-command."""
    parser = argparse.ArgumentParser(prog="contract-image")
    parser.add_argument("-s", "--storage_config", default=None)
    parser.add_argument("-t", "--task_id", default=None)
    parser.add_argument("-i", "--image", default="?")
    parser.add_argument("-b", "--beat_url", default=None)
    parser.add_argument("-bi", "--beat_interval", default=30, type=int)
    parser.add_argument("--beat_inactivity_timeout", default=7200, type=int)
    parser.add_argument("--statistics_url", default=None)
    parser.add_argument("-ms", "--model_storage", default=os.environ.get("MODELS_DIR"))
    parser.add_argument("-msr", "--model_storage_read", default=None)
    parser.add_argument("-msw", "--model_storage_write", default=None)
    parser.add_argument("-c", "--config", default=None)
    parser.add_argument(
        "--config_update_mode", choices=["default", "merge", "replace"], default="default"
    )
    parser.add_argument("-m", "--model", default=None)
    parser.add_argument("-g", "--gpuid", default="0")
    parser.add_argument("--no_push", default=False, action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train")
    train.add_argument("--fetch", action="append", default=[])
    train.add_argument("--compare", action="append", default=[])
    train.add_argument("--upload", default=None)
    train.add_argument("--other_task", default=None)
    train.add_argument("--seconds", default=0.0, type=float)
    return parser


def parse(argv):
    parser = entrypoint_parser()
    args = parser.parse_args(argv)
    if args.model_storage is None:  # the images read os.environ["MODELS_DIR"]: no default
        parser.error("-ms/--model_storage not given and MODELS_DIR is not set")
    args.model_storage_read = args.model_storage_read or args.model_storage
    args.model_storage_write = args.model_storage_write or args.model_storage
    return args


def json_argument_text(value):
    """A JSON string, a file holding one, or ``-`` for stdin (as the images accept)."""
    if value == "-":
        return sys.stdin.read()
    if os.path.isfile(value):
        with open(value) as handle:
            return handle.read()
    return value


# ----------------------------------------------------------------------------- HTTP


def request(method, url, body=None, content_type="application/octet-stream"):
    """``(status, body)``; the URL's user part becomes an HTTP Basic header, as requests does."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    plain = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    req = urllib.request.Request(plain, data=body, method=method)  # noqa: S310 (http only)
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        credentials = base64.b64encode((f"{user}:{password}").encode()).decode()
        req.add_header("Authorization", "Basic " + credentials)
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=15) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def beat_url(args, task_id):
    query = urllib.parse.urlencode(
        {"container_id": socket.gethostname(), "duration": str(args.beat_interval * 2)}
    )
    return f"{args.beat_url}/task/beat/{task_id}?{query}"


def start_beats(args, stop):
    """First beat in the main thread (its failure ends the run), then one per interval."""
    status, _ = request("PUT", beat_url(args, args.task_id))
    if status != 200:
        raise SystemExit(f"contract: MISMATCH: first beat answered {status}")
    print(f"contract: beat {status}", flush=True)
    print(f"contract: beating to {args.beat_url} every {args.beat_interval}s", flush=True)

    def loop():
        while not stop.wait(args.beat_interval):
            request("PUT", beat_url(args, args.task_id))

    threading.Thread(target=loop, daemon=True).start()


# ----------------------------------------------------------------------------- checks


class Checks:
    def __init__(self):
        self.failures = []

    def expect(self, condition, what):
        print("contract: {} {}".format("ok" if condition else "MISMATCH:", what), flush=True)
        if not condition:
            self.failures.append(what)


def gpu_check(checks, argv, gpuid):
    visible = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
    given = any(a in ("-g", "--gpuid") or a.startswith("--gpuid=") for a in argv)
    numbering = os.environ.get("CONTRACT_GPU_NUMBERING") or "0-indexed"
    count = len(visible)
    if numbering == "1-indexed":
        expected = ",".join(str(i) for i in range(1, count + 1)) or "0"
        checks.expect(given and gpuid == expected, f"-g {gpuid} for {count} GPU(s), 1-indexed")
    elif count:
        expected = ",".join(str(i) for i in range(count))
        checks.expect(given and gpuid == expected, f"-g {gpuid} for {count} GPU(s), 0-indexed")
    else:
        checks.expect(not given, "no -g for a CPU task")


def storage(storages, spec):
    """``(storage definition, path)`` of ``<storage_id>:[<path>]``."""
    name, _, path = spec.partition(":")
    return storages.get(name), path


def write_model(checks, storages, args):
    definition, path = storage(storages, args.model_storage_write)
    if not definition or definition.get("type") != "local":
        checks.expect(False, f"model storage {args.model_storage_write} is a local storage")
        return
    model_dir = os.path.join(definition["basedir"], path, args.task_id)
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "checkpoint.txt"), "w") as handle:
        handle.write(f"model of {args.task_id} built by {args.image}\n")
    checks.expect(True, f"model written under {args.model_storage_write}")


def launcher_files(checks, storages, args):
    launcher = storages.get("launcher") or {}
    for name, local in zip(args.fetch, args.compare, strict=False):
        status, body = request("GET", launcher["get_pattern"] % name)
        with open(local, "rb") as handle:
            same = handle.read() == body
        checks.expect(status == 200 and same, f"fetched {name} ({status}) as in TMP_DIR")
    if args.upload:
        data = (f"uploaded by {args.task_id}\n").encode()
        status, _ = request("POST", launcher["post_pattern"] % args.upload, data)
        checks.expect(status == 200, f"uploaded {args.upload} ({status})")
    if args.other_task:
        other = launcher["get_pattern"].replace(args.task_id, args.other_task)
        for method, url in (("GET", other % "x"), ("PUT", beat_url(args, args.other_task))):
            status, _ = request(method, url)
            checks.expect(status in (401, 403), f"another task refuses this token ({status})")


def post_statistics(checks, args, start_time):
    if not args.statistics_url:
        return
    for statistics in ({}, {"contract": {"fetched": len(args.fetch), "gpus": args.gpuid}}):
        body = {
            "task_id": args.task_id,
            "start_time": start_time,
            "end_time": time.time(),
            "statistics": statistics,
        }
        status, _ = request(
            "POST", args.statistics_url, json.dumps(body).encode(), "application/json"
        )
        print(f"contract: statistics {json.dumps(statistics)} posted ({status})", flush=True)


def record(seen):
    with open(SEEN, "w") as handle:
        json.dump(seen, handle)


def main(argv):
    seen = {"argv": argv, "env": {k: os.environ[k] for k in ENV_SEEN if k in os.environ}}
    record(seen)
    args = parse(argv)
    storages_text = json_argument_text(args.storage_config) if args.storage_config else None
    record({**seen, "storages": storages_text})
    start_time = time.time()
    checks = Checks()
    stop = threading.Event()
    if args.beat_url and args.task_id:
        start_beats(args, stop)
    storages = json.loads(storages_text) if storages_text else {}
    gpu_check(checks, argv, args.gpuid)
    launcher_files(checks, storages, args)
    write_model(checks, storages, args)
    time.sleep(args.seconds)
    post_statistics(checks, args, start_time)
    stop.set()
    if checks.failures:
        print("contract: FAILED: {}".format("; ".join(checks.failures)), flush=True)
        return 1
    print("contract: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
