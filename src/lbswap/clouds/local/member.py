"""A member server for the local data plane, run inside a member namespace: HTTP on one port.

``/`` answers with the member's name and the peer address it saw (the amphora's own address, which tells
a TCP client which amphora it came through); ``/stream?seconds=N`` sends a line every 0.2 s for N seconds
(a long-lived flow); ``/healthz`` answers 200. asyncio with a listen backlog of 4096 (the stdlib server's 5
drops SYNs at 100+ connections/s)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

STREAM_STEP = 0.2


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
    peer = writer.get_extra_info("peername")[0]
    try:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        target = request.split(b" ", 2)[1].decode() if request.count(b" ") >= 2 else "/"
        url = urlsplit(target)
        if url.path == "/stream":
            seconds = float(parse_qs(url.query).get("seconds", ["10"])[0])
            steps = max(1, int(seconds / STREAM_STEP))
            line = f"tick member {name} peer {peer}\n".encode()
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(line) * steps))
            for _ in range(steps):
                writer.write(line)
                await writer.drain()
                await asyncio.sleep(STREAM_STEP)
        else:
            body = f"member {name} peer {peer}\n".encode()
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body))
            writer.write(body)
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def serve(name: str, port: int, pidfile: Path | None) -> None:
    server = await asyncio.start_server(lambda r, w: _handle(r, w, name), port=port, backlog=4096, reuse_address=True)
    if pidfile:
        pidfile.write_text(f"{os.getpid()}\n")
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--pidfile", type=Path)
    args = parser.parse_args()
    asyncio.run(serve(args.name, args.port, args.pidfile))


if __name__ == "__main__":
    main()
