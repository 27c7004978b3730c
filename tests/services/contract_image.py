#!/usr/bin/env python3
"""The contract-test image: a stand-in nmt-wizard-docker utility (stdlib only).

It parses exactly the entrypoint flags of ``reference/nmt-wizard-docker-contract.md`` §1 (names,
long forms, defaults; ``-ms`` defaults to ``$MODELS_DIR`` and parsing fails when neither is
given), then one sub-command (``preprocess``, ``train``, ``trans``, ``score``, ``tuminer``),
and behaves as the images do:

* beats ``PUT <b>/task/beat/<t>?container_id=<hostname>&duration=<2 x bi>`` once in the main
  thread (a wrong URL fails at once), then every ``bi`` seconds from a thread, and prints its
  beat URL, token included, as the images' beat service logs it;
* fetches launch files and uploads a file through the ``launcher`` storage of ``-s`` (its
  ``get_pattern``/``post_pattern``), authenticating with HTTP Basic from the URL's user part;
* ``train`` (and ``preprocess`` without ``--no_push``) writes a model directory ``<model id =
  task id>`` under its write model storage (a ``local`` storage of ``-s``: ``<basedir>/<path>/
  <model id>``); ``trans`` reads its ``-m`` model from the read model storage (failing without
  it), translates each ``-i`` (``<storage>:<path>`` of a ``local`` storage, or a path of this
  host, e.g. in ``${TMP_DIR}``), upper-casing its lines after one naming the model,
  and writes each ``-o launcher:<name>`` through the ``launcher`` storage (``post_pattern``);
  ``score`` reads each ``-o launcher:<name>`` through the ``get_pattern`` of its own task,
  compares it with its ``-r`` reference and posts the scores to its ``-f launcher:<name>``;
  ``tuminer`` pairs each ``--srcfile`` line with its ``--tgtfile`` translation (read so too)
  and posts them to its ``--output``;
* posts empty, then non-empty statistics to ``--statistics_url`` (replies ignored, as the
  images do);
* checks that its ``-g`` matches the GPUs it was given (``CUDA_VISIBLE_DEVICES``), in the
  numbering of ``$CONTRACT_GPU_NUMBERING`` (``0-indexed``, the default, or ``1-indexed``).

``train`` options (test-only): ``--fetch NAME`` (repeatable) with ``--compare PATH`` (the same
file as the launcher put it in ``${TMP_DIR}``), ``--upload NAME``, ``--other_task ID`` (a task
whose routes this task's token must not open: 401/403 expected), ``--seconds S`` (keep beating),
``--fail`` (exit 1 after the uploads, writing no model). ``$CONTRACT_PROBES`` names a JSON file
of ``[task id, file name, expected HTTP status]`` the image requests through its ``launcher``
storage (its own task id in ``get_pattern`` replaced by the one given; null: its own).

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
    train.add_argument("--fail", action="store_true")
    preprocess = commands.add_parser("preprocess")
    preprocess.add_argument("--build_model", nargs="?", const=True, default=False)
    trans = commands.add_parser("trans")
    trans.add_argument("-i", "--input", nargs="+", required=True)
    trans.add_argument("-o", "--output", nargs="+", required=True)
    trans.add_argument("--as_release", action="store_true")
    score = commands.add_parser("score")
    score.add_argument("-o", "--output", nargs="+", required=True)
    score.add_argument("-r", "--ref", nargs="+", required=True)
    score.add_argument("-l", "--lang", default="en")
    score.add_argument("-f", "--file", default=None)
    tuminer = commands.add_parser("tuminer")
    tuminer.add_argument("--tumode", default="score")
    tuminer.add_argument("--srcfile", nargs="+", required=True)
    tuminer.add_argument("--tgtfile", nargs="+", required=True)
    tuminer.add_argument("--output", nargs="+", required=True)
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


def local_path(checks, storages, spec, *names):
    """The file of ``<storage_id>:<path>`` (then ``names``) in a ``local`` storage, or None."""
    definition, path = storage(storages, spec)
    if not definition or definition.get("type") != "local":
        checks.expect(False, f"{spec} is on a local storage")
        return None
    return os.path.join(definition["basedir"], path, *names)


def write_model(checks, storages, args):
    model_dir = local_path(checks, storages, args.model_storage_write, args.task_id)
    if model_dir is None:
        return
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "checkpoint.txt"), "w") as handle:
        handle.write(f"model of {args.task_id} built by {args.image}\n")
    checks.expect(True, f"model written under {args.model_storage_write}")


def read_model(checks, storages, args):
    """The checkpoint of the ``-m`` model in the read model storage (None when missing)."""
    path = local_path(checks, storages, args.model_storage_read, args.model, "checkpoint.txt")
    found = path is not None and os.path.isfile(path)
    checks.expect(found, f"model {args.model} found in {args.model_storage_read}")
    if not found:
        return None
    with open(path) as handle:
        return handle.read()


def launcher_name(checks, spec):
    """``<name>`` of ``launcher:<name>`` (None, and a mismatch, for another storage)."""
    name = spec[len("launcher:") :] if spec.startswith("launcher:") else ""
    checks.expect(bool(name), f"{spec} is a launcher file")
    return name or None


def translate(checks, storages, args):
    """Each input, upper-cased after a first line naming the model, to its ``-o`` file."""
    model = read_model(checks, storages, args)
    checks.expect(len(args.input) == len(args.output), "as many -i as -o")
    if model is None:
        return
    launcher = storages.get("launcher") or {}
    for source, output in zip(args.input, args.output, strict=False):
        name = launcher_name(checks, output)
        path = source if os.path.isabs(source) else local_path(checks, storages, source)
        if path is None or name is None:
            continue
        if not os.path.isfile(path):
            checks.expect(False, f"input {source} found")
            continue
        with open(path) as handle:
            data = (model + handle.read().upper()).encode()
        status, _ = request("POST", launcher["post_pattern"] % name, data)
        checks.expect(status == 200, f"translation {name} posted ({status})")


def score(checks, storages, args):
    """Per ``-o`` output (read through this task's own launcher storage), the share of its
    lines equal to the reference's, posted as JSON to ``-f``."""
    launcher = storages.get("launcher") or {}
    scores = {}
    for output, reference in zip(args.output, args.ref, strict=False):
        name = launcher_name(checks, output)
        if name is None:
            continue
        status, body = request("GET", launcher["get_pattern"] % name)
        checks.expect(status == 200, f"read {name} through its own task ({status})")
        with open(reference) as handle:
            expected = handle.read().splitlines()
        lines = body.decode().splitlines()[1:]  # after the model line
        scores[name] = sum(a == b for a, b in zip(lines, expected, strict=False)) / len(expected)
    name = launcher_name(checks, args.file) if args.file else None
    if name:
        data = json.dumps(scores).encode()
        status, _ = request("POST", launcher["post_pattern"] % name, data)
        checks.expect(status == 200, f"scores posted to {name} ({status})")


def tu_mine(checks, storages, args):
    """Per ``--srcfile`` (a path of this host) and ``--tgtfile`` (read through this task's own
    launcher storage), its line pairs ``source ||| target`` posted to ``--output``."""
    launcher = storages.get("launcher") or {}
    for source, target, output in zip(args.srcfile, args.tgtfile, args.output, strict=False):
        names = launcher_name(checks, target), launcher_name(checks, output)
        found = os.path.isfile(source)
        checks.expect(found, f"source {source} found")
        if None in names or not found:
            continue
        status, body = request("GET", launcher["get_pattern"] % names[0])
        checks.expect(status == 200, f"read {names[0]} through its own task ({status})")
        with open(source) as handle:
            pairs = zip(handle.read().splitlines(), body.decode().splitlines()[1:], strict=False)
        data = "".join(f"{a} ||| {b}\n" for a, b in pairs).encode()
        status, _ = request("POST", launcher["post_pattern"] % names[1], data)
        checks.expect(status == 200, f"pairs posted to {names[1]} ({status})")


def probes(checks, storages, args):
    """The requests ``$CONTRACT_PROBES`` lists, each expecting its HTTP status."""
    listed = os.environ.get("CONTRACT_PROBES")
    if not listed:
        return
    with open(listed) as handle:
        wanted = json.load(handle)
    pattern = (storages.get("launcher") or {})["get_pattern"]
    for task_id, name, expected in wanted:
        task_id = task_id or args.task_id
        status, _ = request("GET", pattern.replace(args.task_id, task_id) % name)
        checks.expect(status == expected, f"probe {task_id}/{name}: {status}")


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
    fetched = len(getattr(args, "fetch", ()))
    for statistics in (
        {},
        {"contract": {"command": args.command, "fetched": fetched, "gpus": args.gpuid}},
    ):
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
    probes(checks, storages, args)
    if args.command == "train":
        launcher_files(checks, storages, args)
        if args.fail:
            print("contract: train failing as asked (--fail)", flush=True)
            return 1
        write_model(checks, storages, args)
        time.sleep(args.seconds)
    elif args.command == "preprocess" and not args.no_push:
        write_model(checks, storages, args)
    elif args.command == "trans":
        translate(checks, storages, args)
    elif args.command == "score":
        score(checks, storages, args)
    elif args.command == "tuminer":
        tu_mine(checks, storages, args)
    post_statistics(checks, args, start_time)
    stop.set()
    if checks.failures:
        print("contract: FAILED: {}".format("; ".join(checks.failures)), flush=True)
        return 1
    print("contract: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
