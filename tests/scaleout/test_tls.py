"""The jobboard over TLS (``rediss://``), as an operator runs it: a TLS-only redis-server with a throwaway CA
(scripts/with-tls-redis.sh), `lbswap run --jobboard rediss://... --jobboard-ca-file CA` posts a campaign and a
real `lbswap conductor` drives it to the end.

The server's certificate is always verified: a CA that did not sign it, no CA file (the system's CAs) or a
host name the certificate is not for each end in one line and exit 2 with nothing recorded; so does a CA
file that is missing (the other ways a CA file fails: test_board.py, tier 1).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.operator import Finished, Operator
from tests.scaleout.conftest import TlsBoard
from tests.scaleout.test_conductors import TIMING, _operator, _states, _stop_all, _wait

pytestmark = pytest.mark.scaleout


def _post(op: Operator, board: TlsBoard, url: str, *ca: str) -> Finished:
    """`lbswap run --jobboard URL [--jobboard-ca-file CA]` with the password in the env, not waited for."""
    op.env["LBSWAP_JOBBOARD_PASSWORD"] = board.password
    try:
        return op.run("run", "--all", "--yes", "--allow-downtime", "--jobboard", url, *ca, "-f", "json")
    finally:
        del op.env["LBSWAP_JOBBOARD_PASSWORD"]


def test_a_campaign_on_a_tls_jobboard_ends_done(tmp_path: Path, tls_board: TlsBoard) -> None:
    op = _operator(tmp_path, sample=4)
    ca = ("--jobboard-ca-file", str(tls_board.ca_file))
    with op:
        before = op.state()
        posted = _post(op, tls_board, tls_board.url, *ca)
        assert posted.returncode == 0, posted
        assert "swap job(s) posted on jobboard rediss://:***@127.0.0.1" in posted.stderr, posted
        campaign_id = posted.json()["campaign_id"]
        total = len(posted.json()["swaps"])
        conductor = op.start(
            "conductor",
            "--jobboard",
            tls_board.url,
            "--jobboard-password-file",
            str(tls_board.password_file),
            *ca,
            "-f",
            "json",
            *TIMING,
        )
        ps = subprocess.run(["ps", "-ewwo", "args"], capture_output=True, text=True, check=True).stdout
        assert "conductor" in ps and tls_board.url in ps
        assert tls_board.password not in ps, "the jobboard's password is in the process list"
        _wait("every swap done", lambda: _states(op, campaign_id)["done"] == total, timeout=90)
        (stopped,) = _stop_all([conductor])
        assert stopped.json()["driven"] == total and stopped.json()["jobboard"].startswith("rediss://:***@"), stopped
        op.check_finished(before, all_done=True)

        status = op.run("status", campaign_id, "-f", "json")
        assert status.returncode == 0 and status.json()[0]["campaign_id"] == campaign_id, status
        texts = [status.stdout, status.stderr, posted.stdout, posted.stderr, stopped.stdout, stopped.stderr]
        texts += [p.read_text(errors="replace") for p in op.root.glob("*.err")]
        texts += [p.read_text(errors="replace") for p in (op.root / "state").rglob("*") if p.is_file()]
        assert not [t for t in texts if tls_board.password in t], "the jobboard's password was written out"


def test_a_tls_jobboard_whose_certificate_is_not_trusted_is_refused(tmp_path: Path, tls_board: TlsBoard) -> None:
    op = _operator(tmp_path, sample=2)
    right, wrong = str(tls_board.ca_file), str(tls_board.other_ca_file)
    by_name = tls_board.url.replace("127.0.0.1", "localhost")  # the certificate is for 127.0.0.1 only
    run = ("run", "--all", "--yes", "--allow-downtime", "--jobboard")
    with op:
        before = op.state()
        op.env["LBSWAP_JOBBOARD_PASSWORD"] = tls_board.password
        started = {  # all at once (each starts a python)
            "wrong CA": op.start(*run, tls_board.url, "--jobboard-ca-file", wrong),
            "no CA file": op.start(*run, tls_board.url),
            "another name": op.start(*run, by_name, "--jobboard-ca-file", right),
            "conductor": op.start("conductor", "--jobboard", tls_board.url, "--jobboard-ca-file", wrong, *TIMING),
            # refused before the cloud or the board is reached (the other ways a CA file fails: test_board.py)
            "missing CA file": op.start(*run, tls_board.url, "--jobboard-ca-file", str(tmp_path / "missing.pem")),
        }
        refused = {what: process.wait(60) for what, process in started.items()}
        del op.env["LBSWAP_JOBBOARD_PASSWORD"]
        for what, finished in refused.items():
            assert finished.returncode == 2 and len(finished.lines()) == 1, (what, finished)
            assert tls_board.password not in finished.stderr + finished.stdout, (what, finished)
            if what != "missing CA file":
                assert "its TLS certificate is not trusted" in finished.stderr, (what, finished)
        assert "self-signed certificate" in refused["wrong CA"].stderr, refused["wrong CA"]
        assert f"checked against --jobboard-ca-file {wrong}" in refused["wrong CA"].stderr, refused["wrong CA"]
        assert "checked against the system's CAs" in refused["no CA file"].stderr, refused["no CA file"]
        assert "not valid for 'localhost'" in refused["another name"].stderr, refused["another name"]
        assert f"--jobboard-ca-file {wrong}" in refused["conductor"].stderr, refused["conductor"]
        assert "missing.pem: cannot read it" in refused["missing CA file"].stderr, refused["missing CA file"]
        assert op.run("status", "-f", "json").json() == [], "a refused run recorded a campaign"
        assert op.state()["audit"] == before["audit"], "a refused run changed the cloud"
