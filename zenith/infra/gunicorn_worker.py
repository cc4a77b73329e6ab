"""gunicorn's threaded worker, reading each request in full before a thread sees it.

gunicorn's gthread worker hands a connection to one of its few threads as soon as the first
bytes arrive; the thread then blocks reading the rest of the headers and the body. A few
dozen clients that send slowly or stop halfway (unfinished headers, a stalled upload) hold
every thread, and even /healthz stops answering. This worker reads the request line, the
headers and the body in its event loop, without blocking (the body in memory up to
BODY_MEMORY_BYTES, then in a temporary file), and gives the request to a thread only once it
is complete, as a buffering proxy in front would. A slow client so holds a connection (at
most gunicorn's worker_connections per process) and never a thread; docs/operations.md
("Slow clients") says why this rather than a proxy.

Bounds, each answered before a thread is involved:
- the request line and headers must arrive within ZENITH_CLIENT_HEADER_TIMEOUT (else 408)
  and fit in MAX_HEAD_BYTES (else 431);
- while the body arrives, a silence of ZENITH_CLIENT_IDLE_TIMEOUT ends the connection (408);
- a body declared larger than the largest accepted one is not waited for: the request goes
  to the application at once, which answers 413 naming ZENITH_MAX_UPLOAD_BYTES from the
  headers alone (zenith/infra/request_limits.py), and the connection closes;
- a body without Content-Length (chunked) is refused (411);
- a response the client does not read for ZENITH_CLIENT_IDLE_TIMEOUT frees its thread;
- the lingering close after a last response waits in the event loop, where gthread would
  block the loop itself, connection after connection.

HTTP/1 over plain TCP only: TLS ends in front of gunicorn (ingress, load balancer).
"""

from __future__ import annotations

import errno
import selectors
import socket
import tempfile
import time
from functools import partial

from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

RECV_BYTES = 256 * 1024
# Per connection still sending; a connection costs at most this much memory while it waits.
MAX_HEAD_BYTES = 64 * 1024
BODY_MEMORY_BYTES = 64 * 1024
# The lingering close (RFC 9112 section 9.6): how long and how much to read and discard
# after the last response, so that the client gets it before the connection closes.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 64 * 1024


class BufferedUnreader(SocketUnreader):
    """What gunicorn's parser reads: the buffered request, then end of input. The socket is
    never read from a thread."""

    def __init__(self, sock, head: bytes, body):
        super().__init__(sock)
        self._head = head
        self._body = body

    def chunk(self, size_hint=None):
        if self._head:
            data, self._head = self._head, b""
            return data
        if self._body is not None:
            data = self._body.read(min(max(size_hint or 0, 64 * 1024), self.max_body_chunk))
            if data:
                return data
            self.close()
        return b""

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


class _Incoming:
    """A request still arriving."""

    __slots__ = ("body", "conn", "deadline", "head", "remaining", "scanned")

    def __init__(self, conn: TConn, deadline: float):
        self.conn = conn
        self.deadline = deadline
        self.head = bytearray()
        self.scanned = 0
        self.body = None  # a file once the headers are in and a body is due
        self.remaining = 0


class BufferedThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.incoming: dict[TConn, _Incoming] = {}
        self.lingering: dict[socket.socket, list] = {}

    def init_process(self):
        if self.cfg.is_ssl or list(self.cfg.http_protocols) != ["h1"] or self.cfg.protocol != "http":
            raise RuntimeError(f"{type(self).__name__} serves HTTP/1 over plain TCP only: end TLS in front of it")
        from django.conf import settings

        from zenith.infra.request_limits import max_request_bytes

        self.header_timeout = float(settings.ZENITH_CLIENT_HEADER_TIMEOUT)
        self.idle_timeout = float(settings.ZENITH_CLIENT_IDLE_TIMEOUT)
        self.max_body = max_request_bytes()
        self.spool_dir = settings.FILE_UPLOAD_TEMP_DIR
        super().init_process()

    # --- connections arriving --------------------------------------------------------------

    def accept(self, listener):
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._receive(TConn(self.cfg, sock, client, listener.getsockname()), b"")

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection's next request begins: read it like a new one."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._receive(conn, b"")

    def _receive(self, conn: TConn, data: bytes) -> None:
        conn.sock.setblocking(False)
        state = _Incoming(conn, time.monotonic() + self.header_timeout)
        self.incoming[conn] = state
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, state))
        if data:
            self._feed(state, data)

    def _on_readable(self, state: _Incoming, sock) -> None:
        want = RECV_BYTES if state.body is None else min(RECV_BYTES, state.remaining)
        try:
            data = sock.recv(want)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._forget(state)
            self.nr_conns -= 1
            state.conn.close()
            return
        self._feed(state, data)

    def _feed(self, state: _Incoming, data: bytes) -> None:
        if state.body is not None:
            state.body.write(data)
            state.remaining -= len(data)
            state.deadline = time.monotonic() + self.idle_timeout
            if state.remaining <= 0:
                self._dispatch(state, bytes(state.head), state.body, b"")
            return
        state.head += data
        end = state.head.find(b"\r\n\r\n", max(state.scanned - 3, 0))
        if end < 0:
            state.scanned = len(state.head)
            if len(state.head) > MAX_HEAD_BYTES:
                self._refuse(state, 431, "Request Header Fields Too Large",
                             f"The request line and headers are larger than {MAX_HEAD_BYTES // 1024} KB.")
            return
        head, rest = bytes(state.head[:end + 4]), bytes(state.head[end + 4:])
        self._headers_in(state, head, rest)

    def _headers_in(self, state: _Incoming, head: bytes, rest: bytes) -> None:
        fields = _fields(head)
        if any(name == b"transfer-encoding" for name, _ in fields):
            self._refuse(state, 411, "Length Required",
                         "Send the request body with a Content-Length (chunked bodies are not accepted).")
            return
        lengths = {value for name, value in fields if name == b"content-length"}
        if len(lengths) > 1 or not all(value.isdigit() for value in lengths):
            # gunicorn's parser answers 400 from the headers alone.
            self._dispatch(state, head, None, b"")
            return
        length = int(lengths.pop()) if lengths else 0
        if length > self.max_body:
            # The application refuses it on the declared length; its body is never read.
            self._dispatch(state, _rewrite(head, drop=(b"expect", b"connection"), add=b"Connection: close\r\n"),
                           None, b"")
            return
        if any(name == b"expect" and value.lower() == b"100-continue" for name, value in fields):
            # Answered here, as the body is read here; gunicorn must not answer it again.
            head = _rewrite(head, drop=(b"expect",))
            if len(rest) < length and head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.1"):
                _send_now(state.conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
        body = tempfile.SpooledTemporaryFile(max_size=BODY_MEMORY_BYTES, dir=self.spool_dir) if length else None
        if body is not None:
            body.write(rest[:length])
        leftover = rest[length:]  # a pipelined next request, read when this one is answered
        if length <= len(rest):
            self._dispatch(state, head, body, leftover)
            return
        state.head = bytearray(head)
        state.body = body
        state.remaining = length - len(rest)
        state.deadline = time.monotonic() + self.idle_timeout

    def _dispatch(self, state: _Incoming, head: bytes, body, leftover: bytes) -> None:
        self._forget(state, keep_body=True)
        conn = state.conn
        if body is not None:
            body.seek(0)
        conn.parser = RequestParser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader = BufferedUnreader(conn.sock, head, body)
        conn.initialized = conn.data_ready = True
        conn.leftover = leftover
        self.enqueue_req(conn)

    def _forget(self, state: _Incoming, keep_body: bool = False) -> None:
        self.incoming.pop(state.conn, None)
        try:
            self.poller.unregister(state.conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        if state.body is not None and not keep_body:
            state.body.close()

    def _refuse(self, state: _Incoming, status: int, reason: str, text: str) -> None:
        self._forget(state)
        body = (text + "\n").encode()
        _send_now(state.conn.sock, (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
        self.nr_conns -= 1
        self._linger(state.conn.sock)

    def murder_pending(self):
        """Runs every turn of the event loop (at most a second apart), stopping too."""
        super().murder_pending()
        now = time.monotonic()
        for state in list(self.incoming.values()):
            if not self.alive and state.body is None:
                # Stopping: a request not begun in earnest is not waited for.
                self._forget(state)
                self.nr_conns -= 1
                state.conn.close()
            elif state.deadline <= now:
                if state.body is None and not state.head:
                    self._forget(state)  # connected and sent nothing: no one to answer
                    self.nr_conns -= 1
                    state.conn.close()
                elif state.body is None:
                    self._refuse(state, 408, "Request Timeout",
                                 f"The request headers did not arrive within {self.header_timeout:g} s "
                                 "(ZENITH_CLIENT_HEADER_TIMEOUT).")
                else:
                    self._refuse(state, 408, "Request Timeout",
                                 f"The request body stalled for {self.idle_timeout:g} s (ZENITH_CLIENT_IDLE_TIMEOUT).")
        for sock, (deadline, _) in list(self.lingering.items()):
            if deadline <= now:
                self._end_linger(sock)

    # --- requests answered -----------------------------------------------------------------

    def handle_request(self, req, conn):
        """In a thread: a client that stops reading the response frees the thread."""
        conn.sock.settimeout(self.idle_timeout)
        try:
            return super().handle_request(req, conn)
        except TimeoutError:
            self.log.debug("client read nothing for %s s: connection dropped", self.idle_timeout)
            return False

    def finish_request(self, conn, fs):
        """Back in the event loop once a thread answered."""
        unreader = getattr(conn.parser, "unreader", None)
        if isinstance(unreader, BufferedUnreader):
            unreader.close()
        leftover, conn.leftover = getattr(conn, "leftover", b""), b""
        try:
            keepalive = bool(fs.result()) if not fs.cancelled() else False
        except Exception:
            keepalive = False
        if not keepalive:
            self.nr_conns -= 1
            self._linger(conn.sock)
        elif leftover and self.alive:
            self._receive(conn, leftover)
        else:
            super().finish_request(conn, fs)

    def _linger(self, sock) -> None:
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self.lingering[sock] = [time.monotonic() + LINGER_SECONDS, 0]
        self.poller.register(sock, selectors.EVENT_READ, self._on_linger_readable)

    def _on_linger_readable(self, sock) -> None:
        try:
            data = sock.recv(16 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        entry = self.lingering.get(sock)
        if entry is None:
            return
        entry[1] += len(data)
        if not data or entry[1] >= LINGER_MAX_BYTES:
            self._end_linger(sock)

    def _end_linger(self, sock) -> None:
        self.lingering.pop(sock, None)
        try:
            self.poller.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass
        sock.close()


def _fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-cased name, value) of each header line; the parser proper is gunicorn's."""
    fields = []
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            fields.append((name.strip().lower(), value.strip()))
    return fields


def _rewrite(head: bytes, drop: tuple[bytes, ...], add: bytes = b"") -> bytes:
    lines = head[:-4].split(b"\r\n")
    kept = [lines[0]] + [line for line in lines[1:] if line.partition(b":")[0].strip().lower() not in drop]
    return b"\r\n".join(kept) + b"\r\n" + add + b"\r\n"


def _send_now(sock, data: bytes) -> None:
    """Best effort on a non-blocking socket: a few hundred bytes fit in any send buffer."""
    try:
        sock.send(data)
    except OSError:
        pass
