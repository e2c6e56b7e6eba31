"""`sijill serve --workers N`: every worker gets connections, a port in use is one clear line,
and stopping the server stops its workers."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

APP = textwrap.dedent(
    """
    import os

    def make():
        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
        return app
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(tmp_path, port: int, workers: int) -> subprocess.Popen:
    (tmp_path / "pid_app.py").write_text(APP)
    code = (
        "import sys; from sijill.serving import run_workers; "
        "run_workers('pid_app:make', '127.0.0.1', int(sys.argv[1]), int(sys.argv[2]), "
        "log_level='warning')"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-c", code, str(port), str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def answering_pid(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        return int(connection.getresponse().read())
    finally:
        connection.close()


def wait_until_serving(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()
        try:
            answering_pid(port)
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail("the server did not start")


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="Linux and BSD only")
def test_workers_share_connections_and_stop_together(tmp_path):
    port = free_port()
    server = serve(tmp_path, port, workers=2)
    try:
        wait_until_serving(port, server)
        time.sleep(1)  # both workers listening, not only the first
        # A burst of connections, as a load test or a proxy's pool opens them: each has a
        # 1 in 2 chance of either worker, so all 24 on one worker happens once in 8 million.
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(24)]
        for connection in connections:
            connection.connect()
        pids = set()
        for connection in connections:
            connection.request("GET", "/")
            pids.add(int(connection.getresponse().read()))
            connection.close()
        assert len(pids) == 2

        second = serve(tmp_path, port, workers=2)
        _, error = second.communicate(timeout=60)
        assert second.returncode != 0
        assert f"Cannot listen on 127.0.0.1:{port}" in error
        assert answering_pid(port) in pids  # the first server is untouched
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_settings_reach_the_workers_as_they_were(monkeypatch, tmp_path):
    """Workers rebuild their settings from the environment the server hands them: every
    value, lists and mappings included, must read back the same."""
    from sijill.core.settings import Settings

    chosen = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path}/x.db",
        work_dir=tmp_path,
        cors_origins=["https://a.example", "https://b.example"],
        payment_providers={"bank": "iso20022", "wallet": "cash_agent"},
        payment_weekend=[4, 5],
        payment_holidays=["2026-12-18"],
        instrument_change_review="always",
    )
    for name in [name for name in os.environ if name.startswith("SIJILL_")]:
        monkeypatch.delenv(name)
    for name, value in chosen.as_environment().items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None) == chosen
