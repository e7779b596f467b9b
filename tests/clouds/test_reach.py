"""The probe's test hook LBSWAP_TEST_PROBE_STANDIN lives in lbswap.clouds.reach, the one place every backend's
socket probe goes through: with it, nothing is sent and the probe is recorded; without it, a real connection."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbswap.clouds import reach


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.setblocking(False)
    yield sock
    sock.close()


def _accepted(sock: socket.socket) -> bool:
    try:
        conn, _addr = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_the_stand_in_records_the_probe_and_sends_nothing(
    listener: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "probes.jsonl"
    monkeypatch.setenv("LBSWAP_TEST_PROBE_STANDIN", str(log))
    port = listener.getsockname()[1]
    assert reach.probe("127.0.0.1", port, "HTTP", timeout=1) == reach.ProbeResult(ok=True, status=200)
    assert reach.probe("127.0.0.1", port, "TCP", timeout=1).ok
    assert not _accepted(listener), "the stand-in connected"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == [
        {"address": "127.0.0.1", "port": port, "protocol": "HTTP"},
        {"address": "127.0.0.1", "port": port, "protocol": "TCP"},
    ]


def test_without_the_stand_in_the_probe_connects(listener: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LBSWAP_TEST_PROBE_STANDIN", raising=False)
    reach.probe("127.0.0.1", listener.getsockname()[1], "TCP", timeout=1)
    assert _accepted(listener)
