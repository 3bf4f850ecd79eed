"""A TCP relay that delays what it forwards: ``relay.py LISTEN_IP:PORT TARGET_IP:PORT CONTROL_FILE``.

The test bed's stand-in for ``tc netem delay`` (this kernel has no netem): every byte takes
the number of milliseconds written in CONTROL_FILE (re-read every 0.1 s) longer each way,
in order. Runs inside the database host's namespace; nodes reach the config DB through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

DELAY_MS = 0.0


async def watch(control: Path) -> None:
    global DELAY_MS
    while True:
        with contextlib.suppress(OSError, ValueError):
            DELAY_MS = float(control.read_text().strip() or 0)
        await asyncio.sleep(0.1)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic() + DELAY_MS / 1000, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def main(listen: str, target: str, control: str) -> None:
    listen_host, listen_port = listen.rsplit(":", 1)
    target_host, target_port = target.rsplit(":", 1)

    async def handle(client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer), pump(server_reader, client_writer))

    watcher = asyncio.create_task(watch(Path(control)))
    server = await asyncio.start_server(handle, listen_host, int(listen_port))
    async with server:
        await server.serve_forever()
    watcher.cancel()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
