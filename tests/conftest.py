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


@pytest.fixture
def assert_same_run():
    """assert_same_run(a, b): two run folders hold the same run — metrics.json and every
    metrics.jsonl row equal but for wall time, model and last weights bit for bit."""
    import json

    import torch
    from safetensors.torch import load_file

    def check(a, b):
        drop = lambda m: {k: v for k, v in m.items() if k not in ("wall_seconds", "seconds")}  # noqa: E731
        ma, mb = (json.loads((run / "metrics.json").read_text()) for run in (a, b))
        assert drop(ma) == drop(mb)
        rows = [[drop(json.loads(line)) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (a, b)]
        assert rows[0] == rows[1]
        for name in ("model.safetensors", "last.safetensors"):
            wa, wb = load_file(str(a / name)), load_file(str(b / name))
            assert set(wa) == set(wb) and all(torch.equal(wa[k], wb[k]) for k in wa)

    return check


@pytest.fixture
def resumes_bit_exactly(interrupt_after_checkpoints, assert_same_run):
    """resumes_bit_exactly(cfg, folder): train ``cfg`` into folder/full; train it into
    folder/cut, killed after its 2nd checkpoint, and resume that; the two runs are the same."""
    from spikegrad import resume, train

    def check(cfg, folder):
        train(cfg, folder / "full")
        undo = interrupt_after_checkpoints(2)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, folder / "cut")
        undo()
        resume(folder / "cut")
        assert_same_run(folder / "cut", folder / "full")

    return check
