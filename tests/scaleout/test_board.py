"""The jobboard's address and TLS options, read without a server (tier 1): ``rediss://`` always verifies the
server's certificate, against ``--jobboard-ca-file`` or the system's CAs; a CA file that cannot serve is one
line naming the option."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lbswap.errors import ConfigError
from lbswap.scaleout.board import parse

ENV: dict[str, str] = {}


def _ca(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lbswap test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_rediss_verifies_the_certificate_against_the_ca_file_or_the_systems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = _ca(tmp_path / "ca.pem")
    monkeypatch.chdir(tmp_path)
    board = parse("rediss://10.0.0.5:6380/2", ca_file="ca.pem", env=ENV)
    conf = board.conf()
    assert (board.tls, board.db, board.shown()) == (True, 2, "rediss://10.0.0.5:6380/2")
    assert conf["ssl"] is True and conf["ssl_cert_reqs"] == "required"
    assert conf["ssl_ca_certs"] == str(ca)  # absolute: the same file wherever the process goes on to run
    system = parse("rediss://10.0.0.5:6380", env=ENV).conf()
    assert system["ssl"] is True and system["ssl_cert_reqs"] == "required" and "ssl_ca_certs" not in system
    plain = parse("redis://10.0.0.5:6379", env=ENV).conf()
    assert not [key for key in plain if key.startswith("ssl")]


@pytest.mark.parametrize(
    ("url", "ca", "message"),
    [
        ("rediss://h:1", "missing.pem", "--jobboard-ca-file missing.pem: cannot read it (No such file or directory)"),
        ("rediss://h:1", ".", "--jobboard-ca-file .: cannot read it (Is a directory)"),
        ("rediss://h:1", "junk.pem", "--jobboard-ca-file junk.pem: no PEM certificate in it"),
        (
            "redis://:pw@h:1",
            "ca.pem",
            "--jobboard-ca-file goes with rediss://HOST:PORT (TLS), not with redis://***@h:1",
        ),
    ],
)
def test_a_ca_file_that_cannot_serve_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, ca: str, message: str
) -> None:
    _ca(tmp_path / "ca.pem")
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        parse(url, ca_file=ca, env=ENV)
    assert str(caught.value) == message
