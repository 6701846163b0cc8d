"""An etcd v3 cluster store over etcd's JSON gateway (``/v3/...``), on ``http.client``.

Why in-tree and not a library: the maintained Python clients are either asyncio gRPC
(aetcd: grpcio + protobuf wheels, while cove's daemon is threaded) or the JSON-gateway
etcd3gw (requests + futurist + pbr; its watch parser assumes one JSON object per HTTP
chunk, does not surface compaction and cannot send ``Grpc-Metadata-hasleader``).  The
gateway is plain JSON over HTTP/1.1; a 120-line probe did CAS, leases and a streaming
watch against etcd 3.4.23 (see shared/design/overlay-on-etcd.md §4), so this module adds
no dependency and keeps failover, timeouts and the hasleader header under our control.

What it offers:

- :class:`EtcdStore` implements :class:`~cove.store.base.Store` (``open_store("etcd://h:p,h:p")``):
  ``get``/``list``/``put``/``delete`` with ``expect`` as etcd compares (``expect=0`` is
  ``create_revision == 0``, ``expect=n`` is ``mod_revision == n``), ``txn()`` that buffers
  the block's writes and sends them as one etcd Txn (a Conflict can surface at commit; all
  changes of one txn share one revision, as in etcd), and ``watch()`` as a blocking poll.
- the explicit API the global paths use: :meth:`EtcdStore.commit` (one-shot compares +
  ops), :meth:`EtcdStore.lease` (grant + keepalive thread every TTL/3), ``put(lease=)``,
  and :class:`Watcher` (list, then stream from ``revision+1``; re-list on compaction,
  reconnect to the next member from the last revision seen on any stream error).
- every request tries the members in turn (3 s timeout each by default) on a kept-alive
  connection (a few idle ones per member, shared by the threads); only when all
  fail does it raise :class:`~cove.errors.Unavailable` ("cluster store unavailable").
- TLS (:func:`tls_context`): dockerd's ``kv.cacertfile`` / ``kv.certfile`` / ``kv.keyfile``
  make every request (watches included) HTTPS, verifying etcd's certificate against that CA
  (and its address against the certificate's SANs) and presenting the client certificate to
  an etcd started with ``--client-cert-auth``.  Without them: plain HTTP, as before.  TLS
  failures say which option to check rather than OpenSSL's bare reason.
"""

from __future__ import annotations

import base64
import builtins
import http.client
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import Conflict, InvalidArgument, Unavailable, field_error
from .base import Compacted, Entry, Event, check_expect, check_key, decode_value, encode_value

#: longest pause between reconnect attempts of a watcher (jittered)
MAX_BACKOFF = 5.0
#: idle keep-alive connections kept per member (more are closed after their request)
IDLE_PER_MEMBER = 4


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _range_end(prefix: str) -> str:
    """The key just past every key that starts with ``prefix`` (etcd's prefix range)."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return base64.b64encode(bytes(raw)).decode()
        raw.pop()
    return base64.b64encode(b"\0").decode()


#: the cluster-store options dockerd knew (``--cluster-store-opt kv.X=PATH``), all PEM files
KV_OPTS = ("kv.cacertfile", "kv.certfile", "kv.keyfile")


def parse_endpoints(url: str, name: str = "cluster-store") -> builtins.list[tuple[str, int]]:
    """``etcd://h1:2379,h2:2379`` (or ``http://``, ``https://``) → [(h1, 2379), (h2, 2379)]."""
    for scheme in ("etcd://", "http://", "https://"):
        if url.startswith(scheme):
            rest = url[len(scheme):].rstrip("/")
            break
    else:
        raise field_error(name, url, "use etcd://HOST:PORT[,HOST:PORT...]")
    out = []
    for part in rest.split(","):
        try:
            u = urlsplit("//" + part.strip())
            host, port = u.hostname, u.port or 2379
        except ValueError as e:
            raise field_error(name, url, f"bad member {part!r}: {e}") from None
        if not host or u.path:
            raise field_error(name, url, f"bad member {part!r}; use HOST:PORT")
        out.append((host, port))
    return out


class OptionError(InvalidArgument):
    """A bad cluster-store setting; ``field``, ``value`` and ``reason`` for the daemon's settings error."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        super().__init__(str(field_error(field, value, reason)))
        self.field, self.value, self.reason = field, value, reason


def tls_context(opts: Mapping[str, str], url: str = "", name: str = "cluster-store-opts") -> ssl.SSLContext | None:
    """The client TLS context the ``kv.*`` options ask for; None for plain HTTP.

    ``kv.cacertfile`` is the CA etcd's certificate must chain to (without it: the system's CAs);
    ``kv.certfile`` and ``kv.keyfile`` (both or neither) are this client's certificate for an
    etcd with ``--client-cert-auth``.  An ``https://`` store URL without options is TLS with the
    system's CAs; ``http://`` with options is refused (it says plain HTTP).  Every file is read
    here, so a missing, unreadable or mismatched one is an InvalidArgument naming its option.
    """
    unknown = sorted(set(opts) - set(KV_OPTS))
    if unknown:
        raise OptionError(name, unknown[0], f"unknown cluster store option; cove knows {', '.join(KV_OPTS)}")
    for k, path in opts.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise OptionError(name, f"{k}={path}", "must be an absolute path")
    if not opts:
        return ssl.create_default_context() if url.startswith("https://") else None
    if url.startswith("http://"):
        raise OptionError("cluster-store", url, "http:// is plain HTTP but TLS options (kv.*) are given; "
                          "use etcd:// or https://")
    cert, key = opts.get("kv.certfile"), opts.get("kv.keyfile")
    if (cert is None) != (key is None):
        have, need = ("kv.certfile", "kv.keyfile") if cert else ("kv.keyfile", "kv.certfile")
        raise OptionError(name, f"{have}={opts[have]}", f"{need} is needed too (the client certificate "
                          "and its key go together)")
    for k, path in opts.items():
        try:
            with open(path, "rb") as f:
                data = f.read(1 << 20)
        except OSError as e:
            raise OptionError(name, f"{k}={path}", f"cannot read it: {e.strerror or e}") from None
        if b"-----BEGIN " not in data:
            raise OptionError(name, f"{k}={path}", "not a PEM file")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca = opts.get("kv.cacertfile")
    if ca is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)   # verifies the peer and its name; only this CA
        try:
            ctx.load_verify_locations(cafile=ca)
        except ssl.SSLError as e:
            raise OptionError(name, f"kv.cacertfile={ca}", f"not a CA certificate: {e.reason or e}") from None
    if cert is not None and key is not None:
        try:
            ctx.load_cert_chain(cert, key)
        except ssl.SSLError as e:
            raise OptionError(name, f"kv.certfile={cert}", f"does not load with kv.keyfile={key}: "
                              f"{e.reason or e}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


#: said when a member hangs up on (or answers "HTTPS") a plain-HTTP request: etcd with --cert-file does
_PLAIN_HINT = " (if etcd serves TLS, give the kv.cacertfile/kv.certfile/kv.keyfile options)"


def _member(ep: tuple[str, int]) -> str:
    return f"{ep[0]}:{ep[1]}"


def _joined(errors: builtins.list[tuple[str, str]]) -> str:
    """``a:2379, b:2379: reason; c:2379: other``: members that failed alike share one reason."""
    by_reason: dict[str, builtins.list[str]] = {}
    for member, reason in errors:
        by_reason.setdefault(reason, []).append(member)
    return "; ".join(f"{', '.join(members)}: {reason}" for reason, members in by_reason.items())


def _tls_reason(e: ssl.SSLError) -> str:
    """OpenSSL's failure as a one-line reason that names the option to check."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return (f"TLS: etcd's certificate was not accepted ({e.verify_message or e.reason}); "
                "check kv.cacertfile and that the certificate names this address")
    reason = (e.reason or str(e)).lower()
    if "wrong_version" in reason or "wrong version" in reason or "record layer" in reason:
        return "TLS: the member does not answer TLS (is etcd started with --cert-file?)"
    if "certificate" in reason or "alert" in reason or "handshake" in reason:
        return f"TLS: etcd refused this client ({e.reason or e}); check kv.certfile and kv.keyfile"
    if isinstance(e, ssl.SSLEOFError) or "eof" in reason:
        return "TLS: etcd closed the connection in the handshake (did it refuse this client? check kv.certfile)"
    return f"TLS: {e.reason or e}"


@dataclass
class _Buffer:
    """The writes of one thread's open txn(): etcd request ops plus their compares."""

    compares: builtins.list[dict[str, Any]] = field(default_factory=list)
    ops: builtins.list[dict[str, Any]] = field(default_factory=list)
    # overlay for reads inside the block: key -> (value or None for deleted)
    seen: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    depth: int = 0


class Lease:
    """An etcd lease kept alive by a thread every TTL/3 until :meth:`close` or :meth:`revoke`."""

    def __init__(self, store: EtcdStore, lease_id: int, ttl: int) -> None:
        self.store = store
        self.id = lease_id
        self.ttl = ttl
        self.alive = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"etcd-lease-{lease_id:x}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(max(0.2, self.ttl / 3)):
            try:
                r = self.store.call("/v3/lease/keepalive", {"ID": str(self.id)})
                result = r.get("result", r)
                self.alive = int(result.get("TTL", 0)) > 0
            except Unavailable:
                continue  # next round; etcd extends leases after an election

    def keepalive_once(self) -> bool:
        r = self.store.call("/v3/lease/keepalive", {"ID": str(self.id)})
        result = r.get("result", r)
        self.alive = int(result.get("TTL", 0)) > 0
        return self.alive

    def close(self) -> None:
        """Stop renewing (the lease then expires after its TTL); never revokes."""
        self._stop.set()
        self._thread.join(timeout=5)

    def revoke(self) -> None:
        self.close()
        self.store.call("/v3/lease/revoke", {"ID": str(self.id)})


class EtcdStore:
    """A :class:`~cove.store.base.Store` on an etcd v3 cluster; keys live under ``prefix``."""

    def __init__(self, endpoints: builtins.list[tuple[str, int]], *, prefix: str = "/cove/v1/",
                 timeout: float = 3.0, tls: ssl.SSLContext | None = None) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = list(endpoints)
        self.tls = tls          # None: plain HTTP
        self.prefix = prefix
        self.timeout = timeout
        self._current = 0
        self._local = threading.local()
        self._lock = threading.RLock()  # this daemon's threads: one txn() at a time
        self._closed = False
        # idle keep-alive connections per member, shared by all threads (a TLS handshake is ~2 ms)
        self._idle: dict[int, builtins.list[http.client.HTTPConnection]] = {}
        self._idle_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, name: str = "cluster-store", opts: Mapping[str, str] | None = None,
                 **kw: Any) -> EtcdStore:
        """A store on ``url``'s members; ``opts`` (the ``kv.*`` options) make it TLS (:func:`tls_context`)."""
        endpoints = parse_endpoints(url, name)
        if "tls" not in kw:
            kw["tls"] = tls_context(opts or {}, url)
        return cls(endpoints, **kw)

    # transport ----------------------------------------------------------------------
    def _connect(self, i: int, timeout: float | None) -> http.client.HTTPConnection:
        host, port = self.endpoints[i]
        conn = (http.client.HTTPConnection(host, port, timeout=timeout) if self.tls is None else
                http.client.HTTPSConnection(host, port, timeout=timeout, context=self.tls))
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return conn

    def _take(self, i: int) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection to member ``i`` (reused: True) or a new one."""
        with self._idle_lock:
            pool = self._idle.get(i)
            if pool:
                return pool.pop(), True
        return self._connect(i, self.timeout), False

    def _give_back(self, i: int, conn: http.client.HTTPConnection) -> None:
        with self._idle_lock:
            pool = self._idle.setdefault(i, [])
            if not self._closed and len(pool) < IDLE_PER_MEMBER:
                pool.append(conn)
                return
        conn.close()

    def _post(self, i: int, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        """One request to member ``i`` on a kept-alive connection; a connection the member had closed
        while idle (it hangs up or resets on the next request) is replaced once by a new one."""
        while True:
            conn, reused = self._take(i)
            try:
                conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
                conn.close()
                if reused:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                self._give_back(i, conn)
            return resp.status, data

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to each member in turn until one answers; Unavailable if none does."""
        if self._closed:
            raise Unavailable("cluster store is closed")
        errors: builtins.list[tuple[str, str]] = []
        n = len(self.endpoints)
        start = self._current
        for k in range(n):
            i = (start + k) % n
            host, port = self.endpoints[i]
            try:
                status, data = self._post(i, path, body)
            except ssl.SSLError as e:    # at connect, or (TLS 1.3) at the first read: a client cert refused
                errors.append((f"{host}:{port}", _tls_reason(e)))
                continue
            except (OSError, http.client.HTTPException) as e:
                hint = _PLAIN_HINT if self.tls is None and isinstance(e, http.client.RemoteDisconnected) else ""
                errors.append((f"{host}:{port}", f"{e or type(e).__name__}{hint}"))
                continue
            if status == 200:
                self._current = i
                out = json.loads(data or b"{}")
                assert isinstance(out, dict)
                return out
            msg = data.decode(errors="replace").strip()
            try:
                msg = json.loads(msg).get("error") or json.loads(msg).get("message") or msg
            except ValueError:
                pass
            if status >= 500 or "no leader" in msg or "timed out" in msg:
                errors.append((f"{host}:{port}", msg))
                continue
            if self.tls is None and "HTTPS" in msg:
                msg += _PLAIN_HINT
            raise Unavailable(f"cluster store refused {path}: {msg}")
        raise Unavailable("cluster store unavailable: " + _joined(errors))

    # helpers -------------------------------------------------------------------------
    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _entry(self, kv: dict[str, Any]) -> Entry:
        return Entry(_unb64(kv["key"])[len(self.prefix):], decode_value(_unb64(kv.get("value", ""))),
                     int(kv.get("mod_revision", 0)))

    def _compare(self, key: str, expect: int) -> dict[str, Any]:
        if expect == 0:
            return {"key": _b64(self._k(key)), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        return {"key": _b64(self._k(key)), "target": "MOD", "result": "EQUAL", "mod_revision": str(expect)}

    def _put_op(self, key: str, value: dict[str, Any], lease: Lease | int | None) -> dict[str, Any]:
        req: dict[str, Any] = {"key": _b64(self._k(key)), "value": _b64(encode_value(key, value))}
        if lease is not None:
            req["lease"] = str(lease.id if isinstance(lease, Lease) else lease)
        return {"request_put": req}

    def _delete_op(self, key: str) -> dict[str, Any]:
        return {"request_delete_range": {"key": _b64(self._k(key))}}

    # Store ---------------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        buf = self._buffer()
        if buf is not None and key in buf.seen:
            v = buf.seen[key]
            return None if v is None else Entry(key, json.loads(json.dumps(v)), 0)
        r = self.call("/v3/kv/range", {"key": _b64(self._k(key))})
        kvs = r.get("kvs", [])
        return self._entry(kvs[0]) if kvs else None

    def list(self, prefix: str) -> builtins.list[Entry]:
        return self.list_at(prefix)[0]

    def list_at(self, prefix: str) -> tuple[builtins.list[Entry], int]:
        """The entries under ``prefix`` (sorted by key) and the revision they were read at."""
        full = self.prefix + prefix
        r = self.call("/v3/kv/range", {"key": _b64(full), "range_end": _range_end(full)})
        entries = sorted((self._entry(kv) for kv in r.get("kvs", [])), key=lambda e: e.key)
        return entries, int(r["header"]["revision"])

    def revision(self) -> int:
        r = self.call("/v3/kv/range", {"key": _b64(self.prefix), "limit": "1", "count_only": True})
        return int(r["header"]["revision"])

    def commit(self, compares: builtins.list[dict[str, Any]], ops: builtins.list[dict[str, Any]],
               failure: builtins.list[dict[str, Any]] | None = None) -> tuple[bool, int, dict[str, Any]]:
        """One etcd Txn: (succeeded, revision, raw response)."""
        r = self.call("/v3/kv/txn", {"compare": compares, "success": ops, "failure": failure or []})
        return bool(r.get("succeeded", False)), int(r["header"]["revision"]), r

    def put(self, key: str, value: dict[str, Any], *, expect: int | None = None,
            lease: Lease | int | None = None) -> int:
        if expect is not None and expect < 0:
            raise ValueError(f"expect must be None or >= 0, got {expect}")
        op = self._put_op(key, value, lease)
        compares = [] if expect is None else [self._compare(key, expect)]
        buf = self._buffer()
        if buf is not None:
            if expect is not None and key not in buf.seen:
                cur = self.get(key)
                check_expect(key, None if cur is None else cur.revision, expect)
                buf.compares.extend(compares)
            buf.ops.append(op)
            buf.seen[key] = json.loads(encode_value(key, value))
            return 0
        ok, rev, _ = self.commit(compares, [op], [{"request_range": {"key": _b64(self._k(key))}}] if compares else [])
        if not ok:
            self._conflict(key, expect)
        return rev

    def delete(self, key: str, *, expect: int | None = None) -> bool:
        if expect is not None and expect < 0:
            raise ValueError(f"expect must be None or >= 0, got {expect}")
        buf = self._buffer()
        if buf is not None:
            cur = self.get(key)
            check_expect(key, None if cur is None else cur.revision, expect)
            if expect is not None and key not in buf.seen:
                buf.compares.append(self._compare(key, expect))
            buf.ops.append(self._delete_op(key))
            buf.seen[key] = None
            return cur is not None
        compares = [] if expect is None else [self._compare(key, expect)]
        if expect == 0:
            compares = []  # deleting an absent key: nothing to do if absent, Conflict if present
            cur = self.get(key)
            check_expect(key, None if cur is None else cur.revision, 0)
            return False
        ok, _, r = self.commit(compares, [{"request_delete_range": {"key": _b64(self._k(key))}}])
        if not ok:
            self._conflict(key, expect)
        resp = r.get("responses", [{}])[0].get("response_delete_range", {})
        return int(resp.get("deleted", 0)) > 0

    def _conflict(self, key: str, expect: int | None) -> None:
        cur = self.get(key)
        check_expect(key, None if cur is None else cur.revision, expect)
        raise Conflict(f'key "{key}" was changed concurrently')

    def _buffer(self) -> _Buffer | None:
        buf: _Buffer | None = getattr(self._local, "buf", None)
        return buf

    @contextmanager
    def txn(self) -> Iterator[None]:
        """Buffer this thread's writes; send them as one etcd Txn when the outermost block ends."""
        with self._lock:
            buf = self._buffer()
            outer = buf is None
            if buf is None:
                buf = _Buffer()
                self._local.buf = buf
            mark = (len(buf.compares), len(buf.ops), dict(buf.seen))
            buf.depth += 1
            try:
                try:
                    yield
                except BaseException:
                    del buf.compares[mark[0]:], buf.ops[mark[1]:]
                    buf.seen = mark[2]
                    raise
                finally:
                    buf.depth -= 1
                if outer and buf.ops:
                    ok, _, _ = self.commit(buf.compares, buf.ops)
                    if not ok:
                        raise Conflict("a key this transaction depends on was changed concurrently")
            finally:
                if outer:
                    self._local.buf = None

    def watch(self, prefix: str, since: int, timeout: float | None = None) -> builtins.list[Event]:
        """The events under ``prefix`` after revision ``since``, waiting up to ``timeout`` for one."""
        if self._buffer() is not None:
            raise RuntimeError("watch() inside txn() would wait for its own transaction")
        stream = _WatchStream(self, prefix, max(0, since) + 1, timeout)
        try:
            while True:
                batch = stream.next_batch()
                if batch is None:
                    return []
                if batch:
                    return batch
        finally:
            stream.close()

    def lease(self, ttl: int, reuse: int | None = None) -> Lease:
        """A lease with ``ttl`` seconds kept alive by a thread; ``reuse`` an old id if etcd still has it."""
        if reuse:
            r = self.call("/v3/kv/lease/timetolive", {"ID": str(reuse)})
            if int(r.get("TTL", -1)) > 0:
                return Lease(self, reuse, int(r.get("grantedTTL", ttl)))
        r = self.call("/v3/lease/grant", {"TTL": str(ttl)})
        if r.get("error"):
            raise Unavailable(f"cluster store: lease grant failed: {r['error']}")
        return Lease(self, int(r["ID"]), int(r["TTL"]))

    def close(self) -> None:
        self._closed = True
        with self._idle_lock:
            conns = [c for pool in self._idle.values() for c in pool]
            self._idle.clear()
        for c in conns:
            c.close()


class _WatchStream:
    """One ``/v3/watch`` HTTP stream on one member, from ``start`` revision; read by batches."""

    def __init__(self, store: EtcdStore, prefix: str, start: int, timeout: float | None) -> None:
        self.store = store
        self.prefix = prefix
        self.conn: http.client.HTTPConnection | None = None
        self.resp: http.client.HTTPResponse | None = None
        full = store.prefix + prefix
        body = json.dumps({"create_request": {"key": _b64(full), "range_end": _range_end(full),
                                              "start_revision": str(start)}})
        errors: builtins.list[tuple[str, str]] = []
        n = len(store.endpoints)
        for k in range(n):
            i = (store._current + k) % n
            try:
                conn = store._connect(i, store.timeout)
                conn.request("POST", "/v3/watch", body, {"Content-Type": "application/json",
                                                         "Grpc-Metadata-hasleader": "true"})
                resp = conn.getresponse()
                if resp.status != 200:
                    errors.append((_member(store.endpoints[i]), f"HTTP {resp.status}"))
                    conn.close()
                    continue
            except ssl.SSLError as e:
                errors.append((_member(store.endpoints[i]), _tls_reason(e)))
                continue
            except (OSError, http.client.HTTPException) as e:
                errors.append((_member(store.endpoints[i]), str(e)))
                continue
            assert conn.sock is not None
            conn.sock.settimeout(timeout)
            self.conn, self.resp = conn, resp
            return
        raise Unavailable("cluster store unavailable (watch): " + _joined(errors))

    def next_batch(self) -> builtins.list[Event] | None:
        """The next events ([] for a non-event message), None on timeout; raises on stream end."""
        assert self.resp is not None
        try:
            line = self.resp.readline()
        except TimeoutError:
            return None
        except (OSError, http.client.HTTPException, AttributeError, ValueError) as e:
            # AttributeError/ValueError: the stream was closed under the reader by stop()
            raise Unavailable(f"cluster store watch ended: {e}") from None
        if not line:
            raise Unavailable("cluster store watch ended")
        if not line.strip():
            return []
        msg = json.loads(line)
        if "error" in msg:
            err = msg["error"]
            raise Unavailable(f"cluster store watch: {err.get('message', err) if isinstance(err, dict) else err}")
        result = msg.get("result", {})
        compact = int(result.get("compact_revision", 0))
        if compact:
            raise Compacted(0, compact)
        if result.get("canceled"):
            raise Unavailable(f"cluster store watch canceled: {result.get('cancel_reason', '')}")
        out = []
        cut = len(self.store.prefix)
        for ev in result.get("events", []):
            kv = ev["kv"]
            key = _unb64(kv["key"])[cut:]
            rev = int(kv.get("mod_revision", 0))
            if ev.get("type") == "DELETE":
                out.append(Event("delete", key, None, rev))
            else:
                out.append(Event("put", key, decode_value(_unb64(kv.get("value", ""))), rev))
        return out

    def close(self) -> None:
        if self.conn is not None:
            try:
                if self.conn.sock is not None:
                    self.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()


class Watcher:
    """Keep a local view of ``prefix`` in step with etcd, in a thread.

    ``on_reset(entries)`` gets the whole set after each (re-)list: at start and after a
    compaction; ``on_event(event)`` each change after.  Stream errors reconnect (to the
    next member, with jittered backoff ≤ 5 s) from the last revision seen.
    """

    def __init__(self, store: EtcdStore, prefix: str, on_reset: Callable[[builtins.list[Entry]], None],
                 on_event: Callable[[Event], None]) -> None:
        self.store = store
        self.prefix = prefix
        self.on_reset = on_reset
        self.on_event = on_event
        self.revision = 0
        self.resets = 0
        self._stop = threading.Event()
        self._stream: _WatchStream | None = None
        self._thread = threading.Thread(target=self._run, name=f"etcd-watch-{prefix}", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def _relist(self) -> None:
        entries, rev = self.store.list_at(self.prefix)
        self.on_reset(entries)
        self.revision = rev
        self.resets += 1

    def _run(self) -> None:
        backoff = 0.1
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._stream = _WatchStream(self.store, self.prefix, self.revision + 1, None)
                if self._stop.is_set():
                    break
                while True:
                    batch = self._stream.next_batch()
                    backoff = 0.1
                    for ev in batch or []:
                        self.on_event(ev)
                        self.revision = max(self.revision, ev.revision)
            except Compacted:
                need_list = True
            except Exception:  # noqa: BLE001  (a watcher thread must never die; it reconnects)
                if self._stop.is_set():
                    break
                n = len(self.store.endpoints)
                self.store._current = (self.store._current + 1) % n
                self._stop.wait(backoff * (0.5 + random.random()))
                backoff = min(MAX_BACKOFF, backoff * 2)
            finally:
                if self._stream is not None:
                    self._stream.close()
                    self._stream = None

    def stop(self) -> None:
        self._stop.set()
        s = self._stream
        if s is not None:
            s.close()
        self._thread.join(timeout=5)


def wait_ready(store: EtcdStore, deadline: float) -> None:
    """Wait until the cluster answers a linearizable read (tests and daemon start-up)."""
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            store.revision()
            return
        except Unavailable as e:
            last = e
            time.sleep(0.1)
    raise Unavailable(f"cluster store not ready: {last}")
