"""Every test: data cache in a temporary folder, no mirror from the environment, and no
network connection beyond 127.0.0.1 (the test HTTP servers)."""

import socket

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
