"""Every test: data cache in a temporary folder, no mirror from the environment, and no
network connection beyond 127.0.0.1 (the test HTTP servers)."""

import http.server
import socket
import threading

import pytest

from spikegrad.data import download as dl

LOOPBACK = ("127.0.0.1", "localhost")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEGRAD_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        assert address[0] in LOOPBACK, f"test tried to contact {address[0]}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


@pytest.fixture
def serve():
    """serve(handler_class) → base URL of an http.server on 127.0.0.1:<free port>; stopped after the test."""
    running = []

    def start(handler_class) -> str:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((httpd, thread))
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd, thread in running:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def interrupt_after_checkpoints(monkeypatch):
    """interrupt_after_checkpoints(n): the next training run raises KeyboardInterrupt right
    after writing its n-th checkpoint (a kill between epochs); undo() restores the writer."""
    import spikegrad.training as training

    real = training._save_checkpoint

    def arm(n: int):
        saved = []

        def stop(path, state):
            real(path, state)
            saved.append(path)
            if len(saved) == n:
                raise KeyboardInterrupt

        monkeypatch.setattr(training, "_save_checkpoint", stop)
        return lambda: monkeypatch.setattr(training, "_save_checkpoint", real)

    return arm
