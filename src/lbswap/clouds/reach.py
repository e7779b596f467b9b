"""One probe of one listener with plain sockets (TCP, HTTP, TLS with SNI, UDP), for the backends that send
real packets: openstack calls :func:`probe` from this host; local runs ``python -m lbswap.clouds.reach`` inside
its client namespace. What the listener did (refused, reset, stalled) is the result, never an exception.

Test hook, for every backend in one place: with LBSWAP_TEST_PROBE_STANDIN=FILE no packet is sent (tier 2's
floating IPs lead nowhere): each probe is appended to FILE as a JSON line and answered as a healthy listener
would (HTTP: 200)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Sequence

from lbswap.clouds.base import ProbeResult

# a TCP listener that resets or closes right after the accept does so within this window
TCP_SETTLE = 0.3
HTTP_PROTOCOLS = ("HTTP", "TERMINATED_HTTPS")


def probe(
    address: str,
    port: int,
    protocol: str,
    *,
    path: str = "/",
    host: str | None = None,
    sni: str | None = None,
    payload: bytes | None = None,
    timeout: float = 3.0,
) -> ProbeResult:
    standin = os.environ.get("LBSWAP_TEST_PROBE_STANDIN")
    if standin:  # the test hook of the module doc
        with open(standin, "a", encoding="utf-8") as log:
            log.write(json.dumps({"address": address, "port": port, "protocol": protocol}) + "\n")
        return ProbeResult(ok=True, status=200 if protocol in HTTP_PROTOCOLS else None)
    t0 = time.monotonic()
    try:
        if protocol == "UDP":
            result = _udp(address, port, payload or b"lbswap-verify\n", timeout)
        else:
            result = _stream(address, port, protocol, path=path, host=host or address, sni=sni, timeout=timeout)
    except ConnectionRefusedError:
        result = ProbeResult(ok=False, error="refused")
    except ConnectionResetError:
        result = ProbeResult(ok=False, error="reset")
    except TimeoutError:
        result = ProbeResult(ok=False, error="timeout")
    except ssl.SSLError as exc:
        result = ProbeResult(ok=False, error=f"tls: {exc.reason or exc}")
    except OSError as exc:
        result = ProbeResult(ok=False, error=exc.strerror or type(exc).__name__)
    return dataclasses.replace(result, seconds=round(time.monotonic() - t0, 4))


def _stream(
    address: str, port: int, protocol: str, *, path: str, host: str, sni: str | None, timeout: float
) -> ProbeResult:
    deadline = time.monotonic() + timeout
    raw = socket.create_connection((address, port), timeout=timeout)
    with raw:
        sock: socket.socket = raw
        fingerprint = None
        if protocol == "TERMINATED_HTTPS":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the certificate is compared with the source's, not trusted
            sock = context.wrap_socket(raw, server_hostname=sni or None)
            der = sock.getpeercert(binary_form=True) or b""
            fingerprint = hashlib.sha256(der).hexdigest()
        if protocol not in HTTP_PROTOCOLS:
            sock.settimeout(TCP_SETTLE)
            try:
                data = sock.recv(1)
            except TimeoutError:
                return ProbeResult(ok=True)  # open and quiet: a server waiting for its client to speak
            return ProbeResult(ok=True) if data else ProbeResult(ok=False, error="closed")
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lbswap-verify\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        head = b""
        while b"\r\n" not in head:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(4096)
            if not chunk:
                return ProbeResult(ok=False, error="closed", cert_fingerprint=fingerprint)
            head += chunk
        status = _status(head.split(b"\r\n", 1)[0])
        if status is None:
            return ProbeResult(ok=False, error="not HTTP", cert_fingerprint=fingerprint)
        return ProbeResult(ok=True, status=status, cert_fingerprint=fingerprint)


def _status(line: bytes) -> int | None:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


def _udp(address: str, port: int, payload: bytes, timeout: float) -> ProbeResult:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.send(payload)
        data = sock.recv(65536)
    return ProbeResult(ok=bool(data), error=None if data else "empty reply")


def probe_from_argv(
    argv: Sequence[str] | None, description: str | None = None
) -> tuple[argparse.Namespace, ProbeResult]:
    """One probe as ``ADDRESS PORT PROTOCOL [--path P] [--host H] [--sni S] [--payload-hex X] [--timeout T]``
    asks (the command line of this module and of the local backend's client probe): its arguments and result."""
    parser = argparse.ArgumentParser(description=description or __doc__)
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("protocol")
    parser.add_argument("--path", default="/")
    parser.add_argument("--host")
    parser.add_argument("--sni")
    parser.add_argument("--payload-hex")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    payload = bytes.fromhex(args.payload_hex) if args.payload_hex else None
    result = probe(
        args.address,
        args.port,
        args.protocol,
        path=args.path,
        host=args.host,
        sni=args.sni,
        payload=payload,
        timeout=args.timeout,
    )
    return args, result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lbswap.clouds.reach ADDRESS PORT PROTOCOL [...]``: one probe, its result as JSON."""
    _args, result = probe_from_argv(argv)
    sys.stdout.write(json.dumps(dataclasses.asdict(result)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
