"""Several uvicorn worker processes, each with a listening socket of its own on the same port
(SO_REUSEPORT), so the kernel spreads new connections evenly over the workers.

uvicorn's own `--workers` shares one socket between its workers, and a worker that wakes up
accepts every connection waiting: a burst of connections (a load test, a reverse proxy
opening its pool) lands on one worker, which serves them all on one core while the other
workers idle. Measured here: 32 keep-alive connections gave ~1,200 reads/s when they landed
on one of two workers and ~2,200 when spread.

This module imports nothing from Sijill, so the benchmarks can serve older Sijill code
through it too (bench/bench_security.py).
"""

import logging
import multiprocessing
import signal
import socket
import sys
import time
from typing import Any

logger = logging.getLogger("sijill.serving")

# uvicorn's exit code when the app cannot start: restarting such a worker would only loop.
_STARTUP_FAILURE = 3


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


def _worker(factory: str, host: str, port: int, options: dict[str, Any]) -> None:
    import uvicorn

    sock = _listening_socket(host, port)
    config = uvicorn.Config(factory, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(factory: str, host: str, port: int, workers: int, **options: Any) -> None:
    """Serve `factory` ("module:function") with `workers` processes until SIGINT or SIGTERM.

    A worker that dies is replaced; one that fails at start-up stops them all (exit 3).
    Workers are started by spawning, so they inherit the environment, not this process's
    state: hand settings over through environment variables.
    """
    if not hasattr(socket, "SO_REUSEPORT"):  # not Linux or BSD: uvicorn's shared socket
        import uvicorn

        uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, **options)
        return
    # A port in use fails at once with one clear line, even if it is in use by another
    # server sharing it the same way, which SO_REUSEPORT alone would silently join.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            sys.exit(f"Cannot listen on {host}:{port}: {error.strerror}")
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=_worker, args=(factory, host, port, options), name="sijill-api-worker"
        )
        process.start()
        return process

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start() for _ in range(workers)]
    failed = False
    try:
        while not stopping:
            time.sleep(0.2)
            for index, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.exitcode == _STARTUP_FAILURE:
                    logger.error("An API worker could not start; stopping")
                    stopping = failed = True
                    break
                logger.warning("An API worker exited (code %s); starting another", process.exitcode)
                processes[index] = start()
    finally:
        # Ctrl-C reaches the workers too; a SIGTERM to this process alone is passed on.
        deadline = time.monotonic() + 1
        while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
            time.sleep(0.05)
        for process in processes:
            if process.is_alive():
                process.terminate()  # uvicorn finishes the requests in flight, then exits
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        sys.exit(_STARTUP_FAILURE)
