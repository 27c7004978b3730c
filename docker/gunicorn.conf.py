"""gunicorn settings of the launcher image (``docker/Dockerfile``): threaded workers.

A log follower (``GET /task/log/<id>?wait=S``: ``snw log -f``, the console's log view) parks
its request up to ``MAX_LOG_WAIT`` (60 s) until a line is posted or the task stops. Under
gunicorn's default *sync* workers each one would hold a whole worker process, so a handful of
followers would starve the API. *gthread* workers run each request in a thread of a pool: an
idle follower costs a parked thread (an event wait, woken by Redis pub/sub, no polling) and no
database connection (released before it waits), so the defaults, 4 processes x 100 threads,
hold 400 concurrent requests, followers included. Raise ``GUNICORN_THREADS`` for more.

Threads rather than an ASGI route: the log route keeps one code path with every other DRF
view (token authentication, restricted tokens, scoping, one error shape), which are
synchronous; a thread per waiting follower is cheap at this scale (hundreds per process).
Ordinary requests still hold a database connection per busy thread while
``CONN_MAX_AGE`` keeps it: size PostgreSQL's ``max_connections`` (or put PgBouncer in front)
for workers x threads, or set ``CONN_MAX_AGE=0``.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "100"))
# The worker's own liveness, not a request deadline (gthread answers the arbiter while its
# threads wait); above the longest long poll anyway.
timeout = 120
# A restart lets parked followers get their answer (they wait at most 60 s).
graceful_timeout = 70
keepalive = 75
accesslog = "-"
forwarded_allow_ips = "*"
