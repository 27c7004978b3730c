#!/usr/bin/env python3
# Runs on any host Python 3 (no f-strings needed, callback URLs come from the pool config, the
# log file outlives its scope on purpose):
# ruff: noqa: UP031, S310, S607, SIM115
"""Host-side task runner of the ``local`` and ``ssh`` services (self-contained, stdlib only).

This file is executed as a script on the machine that runs the task (shipped over SFTP by the
``ssh`` service, run in place by ``local``). It never imports ``nmtwizard``. Each call is
``python3 runner.py <action>`` with one JSON request on **stdin** and one JSON answer on stdout,
so the request's secrets (storages, registry passwords, the pool's private values, the task
token) are on no command line of ours. The task's own command line is the exception the image
contract imposes: its ``-b`` callback URL (and ``--statistics_url``) carries the task token, so
``/proc/<pid>/cmdline`` shows it; the log masks it. Other secrets reach the task through its
environment (exec mode, private ``docker.envvar``) or its stdin (``-s -``).

The process runtime isolates nothing: every task runs as this host's one Unix user, so any task
can read another's ``/proc/<pid>/environ`` and command line (its token included). Pools shared
by several entities should use the Docker runtime (the worker warns at start).

Actions:

* ``start``: check the pool's ``requirements`` on this host (free memory of each allocated GPU
  through one ``nvidia-smi`` call, killed after the request's deadline; free space of each
  listed path) unless the task was already started here, answering ``state: error`` when they
  are not met (the engine quarantines the host and re-queues the task); create the task's
  working directory, write its files, detach a monitor (own session) that starts the command in
  its own process group with the given environment over this host user's base one (``HOME``,
  ``PATH``, ``LANG``..., never the caller's other variables) and ``stdin`` (the storages an
  image reads with ``-s -``) on its input, writes ``task.log`` (a first line ``COMMAND: <argv>``
  with every ``[[private:…]]`` value masked as ``[[private]]``, then stdout+stderr, where those
  values, the request's ``secrets`` and the task token are masked too), ``pid.json`` then
  ``exit.json``, and, when a callback URL is given, streams new log bytes (``PATCH
  <cb>/task/log/<id>?duration=&offset=``), beats (``PUT <cb>/task/beat/<id>?duration=``) and the
  end phase (``GET <cb>/task/terminate/<id>?phase=completed|error``) with ``Authorization:
  Bearer <token>``. Idempotent: a second start of the same working directory returns the first
  one's state.
* ``status``: state of the task (running, exited, lost, unknown) and the log bytes from an offset.
* ``kill``: SIGTERM the process group (and ``docker rm -f`` its container), SIGKILL after a grace.

Working directory layout: ``task.log``, ``runner.log`` (the runner's own diagnostics, never a
secret), ``pid.json``, ``exit.json``, ``files/`` (the task's uploaded files).
"""

import base64
import json
import os
import pwd
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

LOG = "task.log"
RUNNER_LOG = "runner.log"
PID = "pid.json"
EXIT = "exit.json"
LOCK = "start.lock"
FILES = "files"
START_WAIT = 15.0
MAX_CHUNK = 1024 * 1024
NVIDIA_SMI_DEADLINE = 20  # seconds, when the request gives no deadline
GIB = 1024**3
PRIVATE = re.compile(r"\[\[private:(.*?)\]\]", re.S)
MASK = b"[[private]]"
MIN_SECRET = 6  # shorter private values are too common in output to mask
OUTPUT_DRAIN = 5.0  # seconds to copy what is left once the command has exited
BASE_ENVIRONMENT = ("HOME", "PATH", "LANG", "LC_ALL", "USER", "LOGNAME", "SHELL")


# ----------------------------------------------------------------------------- small helpers


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def _note(workdir, message):
    """Append a diagnostic line to runner.log (callers never pass secrets)."""
    try:
        with open(os.path.join(workdir, RUNNER_LOG), "a") as handle:
            handle.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), message))
    except OSError:
        pass


def _start_ticks(pid):
    """Start time of ``pid`` in clock ticks since boot (guards against pid reuse), or None."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has finished
        return None
    return int(fields[19])


def _alive(pid, ticks):
    return bool(pid) and ticks is not None and _start_ticks(pid) == ticks


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) succeeds while a zombie of the group is unreaped; look for a live member.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    stat = handle.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _command_line(argv):
    """The ``COMMAND:`` log line: ``argv`` shell-quoted, private values masked."""
    shown = [PRIVATE.sub("[[private]]", arg) for arg in argv]
    return "COMMAND: %s\n" % " ".join(shlex.quote(arg) for arg in shown)


def _secrets(spec):
    """What the task's output must not reveal, longest first: the ``secrets`` the caller lists
    (the pool's private values, which reach the task unmarked in its environment, and the
    task token), the ``[[private:…]]`` values of argv and stdin, and the callback token; each
    as given, URL-decoded and JSON-escaped (a task printing ``$STORAGES`` shows the JSON).
    nmt-wizard-docker images print their beat URL, which carries the token."""
    values = {(spec.get("callback") or {}).get("token") or ""}
    values.update(spec.get("secrets") or [])
    for arg in [*(spec.get("argv") or []), spec.get("stdin") or ""]:
        values.update(PRIVATE.findall(arg))
    values.update([urllib.parse.unquote(value) for value in values])
    values.update([json.dumps(value)[1:-1] for value in values])
    secrets = {value.encode() for value in values if len(value) >= MIN_SECRET}
    return sorted(secrets, key=len, reverse=True)


def _mask(data, secrets):
    for secret in secrets:
        data = data.replace(secret, MASK)
    return data


def _secret_start(data, secrets):
    """Length of the longest end of ``data`` that begins a secret (the next read may end it)."""
    longest = 0
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(data)), longest, -1):
            if data.endswith(secret[:size]):
                longest = size
                break
    return longest


def _feed(pipe, data):
    """Write the command's standard input (the storages of ``-s -``), then close it."""
    try:
        pipe.write(data)
        pipe.close()
    except OSError:  # the command exited without reading it all
        pass


def _copy_masked(source, log, secrets):
    """Copy the command's output to the log with the secrets masked, even across reads."""
    pending = b""
    while True:
        chunk = source.read1(65536)
        if not chunk:
            break
        pending = _mask(pending + chunk, secrets)
        cut = len(pending) - _secret_start(pending, secrets)
        log.write(pending[:cut])
        pending = pending[cut:]
    log.write(pending)


def _runnable(spec):
    """``argv`` without the private markers, the entrypoint program's relative paths resolved
    against this process's directory (the caller's: before the monitor moves to the task's):
    those with a ``/``, and, after the first (the interpreter, else looked up on ``PATH``),
    bare names of files there (``["python3", "entrypoint.py"]``)."""
    argv = [PRIVATE.sub(r"\1", arg) for arg in spec["argv"]]
    for i in range(int(spec.get("program") or 0)):
        relative = not os.path.isabs(argv[i])
        if relative and ("/" in argv[i] or (i > 0 and os.path.isfile(argv[i]))):
            argv[i] = os.path.abspath(argv[i])
    return argv


def _safe_name(name):
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError("unsafe file name %r" % name)
    return os.path.join(*parts)


# ----------------------------------------------------------------------------- callbacks


class Callbacks:
    """Log streaming, beats and the end phase, sent to the launcher with the task token."""

    def __init__(self, workdir, task_id, callback):
        self.workdir = workdir
        self.task_id = task_id
        self.url = (callback or {}).get("url") or ""
        self.token = (callback or {}).get("token") or ""
        self.interval = max(1, int((callback or {}).get("interval") or 60))
        self.offset = 0
        self.failures = 0

    def _request(self, method, route, query, body=None):
        url = "%s/task/%s/%s?%s" % (
            self.url.rstrip("/"),
            route,
            urllib.parse.quote(self.task_id),
            urllib.parse.urlencode(query),
        )
        request = urllib.request.Request(url, data=body, method=method)
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        if body is not None:
            request.add_header("Content-Type", "application/octet-stream")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
            self.failures = 0
            return True
        except Exception as exc:  # the launcher may be down: the worker polls anyway
            self.failures += 1
            if self.failures in (1, 10) or self.failures % 100 == 0:
                _note(
                    self.workdir, "callback %s %s failed: %s" % (method, route, type(exc).__name__)
                )
            return False

    def push(self, final=False):
        """Send the log bytes not delivered yet (the offset makes retries idempotent), then beat."""
        duration = self.interval * 3
        while True:
            try:
                with open(os.path.join(self.workdir, LOG), "rb") as handle:
                    handle.seek(self.offset)
                    chunk = handle.read(MAX_CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                break
            query = {"duration": duration, "offset": self.offset}
            if not self._request("PATCH", "log", query, chunk):
                return
            self.offset += len(chunk)
            if len(chunk) < MAX_CHUNK:
                break
        if not final:
            self._request("PUT", "beat", {"duration": duration})

    def finish(self, phase):
        self.push(final=True)
        self._request("GET", "terminate", {"phase": phase})

    def loop(self, stop):
        while not stop.wait(self.interval):
            self.push()


# ----------------------------------------------------------------------------- requirements


def _gpu_memory_problem(gpus, required_mib, deadline):
    """Why one of ``gpus`` (host device ids) lacks ``required_mib`` free MiB, or None.

    One ``nvidia-smi`` call for all of them, in its own process group, killed after
    ``deadline`` seconds: a hung driver must not outlast the caller's command timeout (the
    worker would take the start as of unknown outcome instead of an unmet requirement)."""
    ids = ",".join(gpus)
    query = ["--query-gpu=index,memory.free", "--format=csv,noheader,nounits", "-i", ids]
    try:
        child = subprocess.Popen(
            ["nvidia-smi", *query],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return "cannot run nvidia-smi to check the free memory of GPU %s: %s" % (ids, exc.strerror)
    try:
        stdout, stderr = child.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(1)  # a process stuck in the driver may not die at once: do not wait
        except (OSError, subprocess.TimeoutExpired):
            pass
        return "nvidia-smi did not answer in %gs for GPU %s" % (deadline, ids)
    answer = stdout.decode(errors="replace").strip()
    if child.returncode:
        error = stderr.decode(errors="replace").strip() or answer
        return "nvidia-smi failed for GPU %s (exit code %d): %s" % (
            ids,
            child.returncode,
            error[-200:],
        )
    free = {}
    for line in answer.splitlines():
        index, _comma, mib = line.partition(",")
        try:
            free[index.strip()] = int(float(mib))
        except ValueError:
            break
    for gpu in gpus:
        if gpu not in free:
            return "unreadable nvidia-smi answer for GPU %s: %r" % (gpu, answer[:100])
        if free[gpu] < required_mib:
            return "not enough free memory on GPU %s: %d MiB free, %d MiB required" % (
                gpu,
                free[gpu],
                required_mib,
            )
    return None


def _disk_space_problem(path, required_gb):
    """Why ``path`` lacks ``required_gb`` free GB (GiB, as ``df -BG``), or None."""
    try:
        stat = os.statvfs(path)
    except OSError as exc:
        return "cannot check the free disk space of %s: %s" % (path, exc.strerror)
    free = stat.f_bavail * stat.f_frsize
    if free < required_gb * GIB:
        return "not enough free disk space on %s: %.1f GB free, %s GB required" % (
            path,
            free / GIB,
            required_gb,
        )
    return None


def _requirement_problems(requirements):
    gpus = [str(gpu) for gpu in requirements.get("gpus") or []]
    if requirements.get("free_gpu_memory") is not None and gpus:
        deadline = float(requirements.get("deadline") or NVIDIA_SMI_DEADLINE)
        problem = _gpu_memory_problem(gpus, requirements["free_gpu_memory"], deadline)
        if problem:
            yield problem + " (requirements.free_gpu_memory)"
    for path, required_gb in sorted((requirements.get("free_disk_space") or {}).items()):
        problem = _disk_space_problem(path, required_gb)
        if problem:
            yield problem + " (requirements.free_disk_space)"


def unmet_requirement(requirements):
    """The first unmet pool requirement, named with its key, or None when all are met.

    ``requirements``: ``{"gpus": [ids], "free_gpu_memory": MiB, "deadline": seconds,
    "free_disk_space": {path: GB}}`` (the engine leaves ``free_gpu_memory`` out for a task
    without GPUs; ``deadline`` bounds the ``nvidia-smi`` call)."""
    return next(_requirement_problems(requirements or {}), None)


# ----------------------------------------------------------------------------- start


def _docker_login(login, env, log):
    """``docker login --password-stdin``: the password goes through a pipe, never argv."""
    docker = login.get("docker") or "docker"
    password = login.get("password")
    if login.get("aws_region"):
        aws_env = dict(env)
        aws_env["AWS_ACCESS_KEY_ID"] = login.get("aws_access_key_id", "")
        aws_env["AWS_SECRET_ACCESS_KEY"] = login.get("aws_secret_access_key", "")
        result = subprocess.run(
            ["aws", "ecr", "get-login-password", "--region", login["aws_region"]],
            env=aws_env,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        if result.returncode:
            return False
        password = result.stdout.decode().strip()
    argv = [docker, "login", "--username", login.get("username") or "AWS", "--password-stdin"]
    if login.get("registry"):
        argv.append(login["registry"])
    result = subprocess.run(argv, input=(password or "").encode(), stdout=log, stderr=log, env=env)
    return result.returncode == 0


def _base_environment():
    """What every command inherits from this host's user: ``HOME`` (else the password
    database's), ``PATH``, ``LANG`` (else ``C.UTF-8``), ``LC_ALL``, ``USER``, ``LOGNAME``,
    ``SHELL``. Only these names: the ``local`` runner runs in the worker's environment, whose
    secrets (database, Redis, Django) no task may see."""
    env = {name: os.environ[name] for name in BASE_ENVIRONMENT if os.environ.get(name)}
    env.setdefault("HOME", pwd.getpwuid(os.getuid()).pw_dir)
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    return env


def _monitor(spec, workdir):
    """Body of the detached monitor: start the command, wait, record the exit, call back."""
    env = _base_environment()
    env.update(spec.get("env") or {})
    callbacks = Callbacks(workdir, spec["task_id"], spec.get("callback"))
    log = open(os.path.join(workdir, LOG), "ab", buffering=0)
    exit_path = os.path.join(workdir, EXIT)
    record = {"monitor_pid": os.getpid(), "monitor_ticks": _start_ticks(os.getpid())}
    record.update(monitor_pgid=os.getpgid(0), container=spec.get("container"))
    _write_json(os.path.join(workdir, PID), record)  # visible before a slow login or pull

    log.write(_command_line(spec["argv"]).encode())

    def fail(message, code=127):
        log.write(("[runner] %s\n" % message).encode())
        _write_json(exit_path, {"exit_code": code, "signal": None, "error": message})
        if callbacks.url:
            callbacks.finish("error")

    for login in spec.get("logins") or []:
        if not _docker_login(login, env, log):
            return fail("registry login failed (%s)" % (login.get("registry") or "default"))
    for argv in spec.get("prelude") or []:
        if subprocess.run(argv, stdout=log, stderr=log, env=env).returncode:
            return fail("preparation step failed: %s" % " ".join(argv[:3]))
    secrets = _secrets(spec)
    try:
        child = subprocess.Popen(
            spec["run"],
            stdin=subprocess.DEVNULL if spec.get("stdin") is None else subprocess.PIPE,
            stdout=subprocess.PIPE if secrets else log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=spec.get("cwd") or workdir,
            start_new_session=True,  # own session and process group: kill -PGID gets the tree
        )
    except OSError as exc:
        return fail("cannot start %s: %s" % (spec["run"][0], exc.strerror))
    record.update(pid=child.pid, pgid=child.pid, ticks=_start_ticks(child.pid), started=time.time())
    _write_json(os.path.join(workdir, PID), record)
    stop = threading.Event()
    if callbacks.url:
        threading.Thread(target=callbacks.loop, args=(stop,), daemon=True).start()
    if spec.get("stdin") is not None:
        data = PRIVATE.sub(r"\1", spec["stdin"]).encode()
        threading.Thread(target=_feed, args=(child.stdin, data), daemon=True).start()
    copier = None
    if secrets:
        copier = threading.Thread(target=_copy_masked, args=(child.stdout, log, secrets))
        copier.daemon = True  # a background process may keep the pipe open
        copier.start()
    code = child.wait()
    if copier is not None:
        copier.join(OUTPUT_DRAIN)
    stop.set()
    result = {"exit_code": code, "signal": None, "ended": time.time()}
    if code < 0:
        result.update(exit_code=128 - code, signal=-code)
    _write_json(exit_path, result)
    if callbacks.url:
        callbacks.finish("completed" if code == 0 else "error")


def _state(workdir):
    """Answer shared by start and status (without log bytes)."""
    record = _read_json(os.path.join(workdir, PID))
    ended = _read_json(os.path.join(workdir, EXIT))
    if ended is not None:
        answer = {"state": "exited"}
        answer.update(ended)
    elif record is None:
        answer = {"state": "unknown"}
    elif _alive(record.get("monitor_pid"), record.get("monitor_ticks")) or (
        record.get("pgid") and _group_alive(record["pgid"])
    ):
        answer = {"state": "running"}
    else:
        answer = {"state": "lost", "error": "the task's processes vanished without an exit status"}
    if record:
        answer.update(pid=record.get("pid"), pgid=record.get("pgid"))
    return answer


def action_start(spec):
    workdir = spec["workdir"]
    if not os.path.exists(os.path.join(workdir, LOCK)):  # a retried start checks nothing
        problem = unmet_requirement(spec.get("requirements"))
        if problem:
            return {"state": "error", "error": problem}
    os.makedirs(os.path.join(workdir, FILES), exist_ok=True)
    try:
        fd = os.open(os.path.join(workdir, LOCK), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:  # already started (a retried launch): report what is there
        deadline = time.time() + START_WAIT
        while _state(workdir)["state"] == "unknown" and time.time() < deadline:
            time.sleep(0.02)
        answer = _state(workdir)
        answer["existing"] = True
        return answer
    os.close(fd)
    for name, data in (spec.get("files") or {}).items():
        path = os.path.join(workdir, FILES, _safe_name(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data))
    open(os.path.join(workdir, LOG), "ab").close()
    spec["run"] = _runnable(spec)
    pid = os.fork()
    if pid == 0:  # detach: new session, no inherited pipes (the ssh channel must close)
        try:
            os.setsid()
            os.chdir(workdir)
            if os.fork():
                os._exit(0)
            null = os.open(os.devnull, os.O_RDWR)
            diag = os.open(
                os.path.join(workdir, RUNNER_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND
            )
            os.dup2(null, 0)
            os.dup2(diag, 1)
            os.dup2(diag, 2)
            os.closerange(3, 1024)
            _monitor(spec, workdir)
        except BaseException as exc:
            _note(workdir, "monitor failed: %s" % type(exc).__name__)
            if not os.path.exists(os.path.join(workdir, EXIT)):
                _write_json(
                    os.path.join(workdir, EXIT), {"exit_code": 127, "error": "runner failed"}
                )
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    deadline = time.time() + START_WAIT
    started = time.time() + 2.0  # beyond that, a slow login or pull: answer "running"
    while time.time() < deadline:
        answer = _state(workdir)
        if answer["state"] == "exited" or (answer.get("pid") and answer["state"] == "running"):
            return answer
        if answer["state"] != "unknown" and time.time() > started:
            return answer
        time.sleep(0.005)
    return {"state": "unknown", "error": "the monitor did not start in %ss" % START_WAIT}


# ----------------------------------------------------------------------------- status, kill


def action_status(spec):
    workdir = spec["workdir"]
    answer = _state(workdir)
    offset = int(spec.get("offset") or 0)
    limit = int(spec.get("max_bytes") or MAX_CHUNK)
    try:
        with open(os.path.join(workdir, LOG), "rb") as handle:
            handle.seek(offset)
            chunk = handle.read(limit)
            answer["size"] = os.fstat(handle.fileno()).st_size
    except OSError:
        chunk = b""
    if answer["state"] == "exited" and offset + len(chunk) < answer.get("size", 0):
        answer["more"] = True  # the caller must read the rest before ending the task
    answer["log"] = base64.b64encode(chunk).decode()
    answer["offset"] = offset + len(chunk)
    return answer


def action_kill(spec):
    workdir = spec["workdir"]
    grace = float(spec.get("grace", 5))
    record = _read_json(os.path.join(workdir, PID)) or {}
    if record.get("container"):
        subprocess.run(
            [spec.get("docker") or "docker", "rm", "-f", record["container"]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    pgid = record.get("pgid")
    if not pgid and _alive(record.get("monitor_pid"), record.get("monitor_ticks")):
        pgid = record.get("monitor_pgid")  # still logging in or pulling: stop the monitor
    if not pgid or not _group_alive(pgid):
        return {"killed": False, "state": _state(workdir)["state"]}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.time() + wait
        while time.time() < deadline and _group_alive(pgid):
            time.sleep(0.02)
        if not _group_alive(pgid):
            break
    return {"killed": True, "state": _state(workdir)["state"]}


ACTIONS = {"start": action_start, "status": action_status, "kill": action_kill}


def main(argv):
    if len(argv) != 2 or argv[1] not in ACTIONS:
        sys.stderr.write("usage: runner.py start|status|kill < request.json\n")
        return 2
    spec = json.loads(sys.stdin.read())
    try:
        answer = ACTIONS[argv[1]](spec)
    except (OSError, ValueError, KeyError) as exc:
        answer = {"state": "error", "error": "%s: %s" % (type(exc).__name__, exc)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
