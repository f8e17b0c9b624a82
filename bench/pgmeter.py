"""A counting proxy between a server under test and PostgreSQL: bench/run's measure of statements
and round trips per request, taken on the wire so that it holds for any client library.

Every byte is forwarded unchanged; the client-to-server stream is parsed into protocol messages
(after the untyped startup packet) and counted:
  statements  = Execute ('E') messages + simple Query ('Q') messages
  round trips = Sync ('S') messages + simple Query ('Q') messages — each one is answered by a
                ReadyForQuery the client waits for.
Clients must connect without TLS (sslmode=disable), or there is nothing to read.
"""

import asyncio
import struct
import threading

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


class Meter:
    def __init__(self, upstream_host="127.0.0.1", upstream_port=5432):
        self.upstream = (upstream_host, upstream_port)
        self.statements = 0
        self.round_trips = 0
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.port = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def counts(self):
        with self.lock:
            return self.statements, self.round_trips

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def start():
            server = await asyncio.start_server(self._client, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await server.serve_forever()

        self.loop.run_until_complete(start())

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        back = asyncio.ensure_future(self._pump(up_reader, writer))
        try:
            await self._forward_counted(reader, up_writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            up_writer.close()
            await asyncio.gather(back, return_exceptions=True)
            writer.close()

    async def _pump(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _forward_counted(self, reader, writer):
        # Startup phase: untyped packets (length, code) until the StartupMessage itself.
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            rest = await reader.readexactly(length - 8)
            writer.write(head + rest)
            await writer.drain()
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                break
        while True:
            head = await reader.readexactly(5)
            kind, length = head[:1], struct.unpack("!i", head[1:])[0]
            body = await reader.readexactly(length - 4)
            if kind in (b"E", b"Q", b"S"):
                with self.lock:
                    if kind in (b"E", b"Q"):
                        self.statements += 1
                    if kind in (b"S", b"Q"):
                        self.round_trips += 1
            writer.write(head + body)
            await writer.drain()
