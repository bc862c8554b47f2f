#!/usr/bin/env python3
"""Many-accounts emulator: several server.py processes behind one loopback router.

One moto process serves about 90 calls/s (its lock is held for every call), so a fleet of
many accounts measures the emulator, not the tool. This router starts N server.py
processes ("backends"), gives each a group of accounts (account id mod N) and forwards
every request to the backend that owns the request's account:

* `x-moto-account-id` header (seed.py's set-up calls): that account;
* STS AssumeRole: the account of the RoleArn in the body; the session's access key in the
  answer is remembered (key -> backend);
* otherwise the access key of the SigV4 `Authorization` header (or of a presigned URL's
  `X-Amz-Credential`): a remembered session key, else the account moto encoded in the key
  (moto makes every key id from its account, as AWS does);
* anything else: the backend of moto's default account.

Each backend keeps its own token buckets and latency per account x region (server.py), and
an account's calls all reach one backend, so bucket and latency semantics are those of the
single-process emulator. The admin user that assumes the tenant roles must be known to every
backend: seed.py creates it in each and gives it the same key (`POST /_harness/access-key`).

Control requests (`/_harness/...`) go to every backend and the answers are merged (lists
joined, counters summed, the rest from the first backend); `GET /_harness/timing` also gives
each backend's moto time and CPU seconds (from /proc) since the last reset, and the router's
own; `GET /_harness/backends` lists the backends. Same command line and READY protocol as
server.py:

    python3 router.py --backends 4 --port 0 --ready-file /tmp/emu.port
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ACCOUNT = "123456789012"  # moto's DEFAULT_ACCOUNT_ID
CRED_RE = re.compile(r"Credential=([^/,\s]+)/")
QUERY_CRED_RE = re.compile(r"(?:^|&)X-Amz-Credential=([^&%/]+)")
ROLE_ACCOUNT_RE = re.compile(r":iam::(\d{12}):")
# moto's generate_access_key_id_from_account_id (moto/iam/utils.py): after the 4-letter
# prefix, 8 base32 characters of (account // 2 + ACCOUNT_OFFSET) as 5 bytes, then a letter
# from the first half of the alphabet for an even account, the second half for an odd one.
ACCOUNT_OFFSET = 549755813888
ROLE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# counters that are summed over backends in merged control answers
SUMMED = {"total", "cleared", "reset", "requests", "moto_seconds", "lock_wait_seconds", "snapshots",
          "snapshots_completed", "images", "db_snapshots_manual", "db_cluster_snapshots_manual", "count"}
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


def account_of_key(key: str) -> str | None:
    """The account moto encoded in an access key id, or None."""
    if len(key) < 13:
        return None
    try:
        n = int.from_bytes(base64.b32decode(key[4:12]), "big") - ACCOUNT_OFFSET
    except (ValueError, base64.binascii.Error):
        return None
    if n < 0:
        return None
    odd = ROLE_ALPHABET.find(key[12]) >= 16
    return f"{n * 2 + (1 if odd else 0):012d}"


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of one process (from /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        fields = st[st.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def die_with_parent() -> None:
    """A backend gets SIGTERM when the router dies, even by SIGKILL (Linux prctl)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Backend:
    def __init__(self, index: int, workdir: str, verbose: bool) -> None:
        self.index = index
        self.log = open(os.path.join(workdir, f"backend-{index}.log"), "w")
        args = [sys.executable, os.path.join(HERE, "server.py"), "--port", "0"]
        if verbose:
            args.append("--verbose")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     preexec_fn=die_with_parent)
        self.port = 0
        self.local = threading.local()
        self.cpu_mark = 0.0

    def wait_ready(self) -> None:
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not line.startswith("READY "):
            raise SystemExit(f"backend {self.index} did not start: {line!r} (see {self.log.name})")
        self.port = int(line.split()[1])

    def conn(self) -> http.client.HTTPConnection:
        c = getattr(self.local, "conn", None)
        if c is None:
            c = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)
        return c

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in (0, 1):
            c = self.conn()
            try:
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                if r.will_close:
                    c.close()
                return r.status, r.reason, r.getheaders(), data
            except (ConnectionError, http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Router:
    def __init__(self, backends: list[Backend]) -> None:
        self.backends = backends
        self.keys: dict[str, int] = {}  # session access key -> backend index (from AssumeRole answers)
        self.keys_lock = threading.Lock()
        self.forwarded = [0] * len(backends)
        self.pool = ThreadPoolExecutor(max_workers=max(4, len(backends)))
        self.cpu_mark = cpu_seconds(os.getpid())
        self.since = time.time()
        self.mark_cpu()

    def owner(self, account: str) -> int:
        try:
            return int(account) % len(self.backends)
        except ValueError:
            return 0

    def mark_cpu(self) -> None:
        for b in self.backends:
            b.cpu_mark = cpu_seconds(b.proc.pid)
        self.cpu_mark = cpu_seconds(os.getpid())
        self.since = time.time()

    def pick(self, headers: Any, query: str, body: bytes) -> tuple[int, bool]:
        """(backend index, is AssumeRole)."""
        acct = headers.get("x-moto-account-id")
        if acct:
            return self.owner(acct), False
        assume = False
        if b"AssumeRole" in body[:4096] or "AssumeRole" in query:
            params = parse_qs(body.decode("utf-8", "replace")) if body else {}
            if not params.get("Action"):
                params = parse_qs(query)
            if params.get("Action", [""])[0] == "AssumeRole":
                m = ROLE_ACCOUNT_RE.search(params.get("RoleArn", [""])[0])
                if m:
                    return self.owner(m.group(1)), True
                assume = True
        key = None
        m = CRED_RE.search(headers.get("Authorization", "") or "")
        if m:
            key = m.group(1)
        else:
            m = QUERY_CRED_RE.search(query)
            if m:
                key = unquote(m.group(1)).split("/")[0]
        if key:
            with self.keys_lock:
                idx = self.keys.get(key)
            if idx is not None:
                return idx, assume
            acct = account_of_key(key)
            if acct:
                return self.owner(acct), assume
        return self.owner(DEFAULT_ACCOUNT), assume

    # -- control ---------------------------------------------------------------

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        route = path.split("?", 1)[0].rstrip("/")
        if route == "/_harness/backends" and method == "GET":
            return 200, {"backends": [
                {"index": b.index, "pid": b.proc.pid, "endpoint": f"http://127.0.0.1:{b.port}",
                 "forwarded": self.forwarded[b.index]} for b in self.backends],
                "accounts": "account id mod %d" % len(self.backends)}
        if route == "/_harness/route" and method == "GET":
            # which backend owns an account (?account=) or an access key (?key=)
            q = parse_qs(path.split("?", 1)[1] if "?" in path else "")
            if q.get("account"):
                return 200, {"backend": self.owner(q["account"][0])}
            if q.get("key"):
                k = q["key"][0]
                with self.keys_lock:
                    idx = self.keys.get(k)
                acct = account_of_key(k)
                return 200, {"backend": idx if idx is not None else (self.owner(acct) if acct else None),
                             "remembered": idx is not None, "account": acct}
            return 400, {"error": "route needs ?account= or ?key="}
        if route in ("/_harness/calls", "/_harness/timing") and method == "DELETE":
            self.mark_cpu()
        answers = list(self.pool.map(
            lambda b: b.request(method, path, body if body else None,
                                {"Content-Type": "application/json"} if body else {}), self.backends))
        parsed = []
        for status, _reason, _h, data in answers:
            try:
                parsed.append((status, json.loads(data or b"{}")))
            except json.JSONDecodeError:
                parsed.append((status, {"error": data.decode("utf-8", "replace")}))
        ok = [p for s, p in parsed if s < 400]
        if not ok:
            return parsed[0]
        if route in ("/_harness/config", "/_harness/health"):
            merged = ok[0]
        else:
            merged = merge(ok)
        if route == "/_harness/timing" and method == "GET":
            self.timing(merged, [p for _s, p in parsed])
        return 200, merged

    def timing(self, merged: dict[str, Any], per: list[dict[str, Any]]) -> None:
        wall = max(time.time() - self.since, 1e-9)
        rows = []
        for b, t in zip(self.backends, per):
            cpu = cpu_seconds(b.proc.pid) - b.cpu_mark
            rows.append({"index": b.index, "pid": b.proc.pid, "requests": t.get("requests"),
                         "moto_seconds": t.get("moto_seconds"), "moto_busy_fraction": t.get("moto_busy_fraction"),
                         "cpu_seconds": round(cpu, 2), "cpu_fraction": round(cpu / wall, 3)})
        merged["backends"] = rows
        merged["wall_seconds"] = round(wall, 3)
        # the busiest backend is the one that could hold a run back
        merged["moto_busy_fraction"] = max((r["moto_busy_fraction"] or 0.0 for r in rows), default=0.0)
        merged["moto_busy_fraction_mean"] = round(sum(r["moto_busy_fraction"] or 0.0 for r in rows) / len(rows), 3)
        merged["backend_cpu_seconds"] = round(sum(r["cpu_seconds"] for r in rows), 2)
        rcpu = cpu_seconds(os.getpid()) - self.cpu_mark
        merged["router"] = {"cpu_seconds": round(rcpu, 2), "cpu_fraction": round(rcpu / wall, 3)}

    def remember(self, idx: int, data: bytes) -> None:
        m = re.search(rb"<AccessKeyId>([^<]*)</AccessKeyId>", data)
        if m:
            with self.keys_lock:
                self.keys[m.group(1).decode()] = idx

    def stop(self) -> None:
        for b in self.backends:  # all at once, then wait: at most one time-out in all
            b.proc.send_signal(signal.SIGTERM)
        for b in self.backends:
            b.stop()


def merge(docs: list[Any]) -> Any:
    first = docs[0]
    if isinstance(first, dict):
        out: dict[str, Any] = {}
        for k in first:
            vals = [d.get(k) for d in docs if isinstance(d, dict) and k in d]
            v0 = vals[0]
            if isinstance(v0, list):
                out[k] = [x for v in vals if isinstance(v, list) for x in v]
            elif isinstance(v0, dict):
                out[k] = merge(vals)
            elif k in SUMMED and isinstance(v0, (int, float)) and not isinstance(v0, bool):
                out[k] = round(sum(v for v in vals if isinstance(v, (int, float))), 6)
            else:
                out[k] = v0
        # keys that only later backends have (e.g. by_action rows)
        for d in docs[1:]:
            if isinstance(d, dict):
                for k, v in d.items():
                    if k not in out:
                        out[k] = merge([x.get(k) for x in docs if isinstance(x, dict) and k in x])
        return out
    return first


ROUTER: Router | None = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _reply(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response_only(status, reason)
        for k, v in headers:
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self) -> None:
        assert ROUTER is not None
        body = self._body()
        path = self.path
        if path.startswith("/_harness"):
            status, payload = ROUTER.control(self.command, path, body)
            data = json.dumps(payload, indent=1, sort_keys=True).encode()
            self._reply(status, "OK" if status < 400 else "Error", [("Content-Type", "application/json")], data)
            return
        query = path.split("?", 1)[1] if "?" in path else ""
        idx, assume = ROUTER.pick(self.headers, query, body)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        try:
            status, reason, rh, data = ROUTER.backends[idx].request(self.command, path, body, headers)
        except Exception as exc:  # a backend died: say so, as a 502
            msg = f"router: backend {idx} failed: {exc!r}".encode()
            self._reply(502, "Bad Gateway", [("Content-Type", "text/plain")], msg)
            return
        ROUTER.forwarded[idx] += 1
        if assume and status == 200:
            ROUTER.remember(idx, data)
        self._reply(status, reason, rh, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main(argv: list[str] | None = None) -> int:
    global ROUTER
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--backends", type=int, default=4, help="server.py processes (accounts: id mod N)")
    ap.add_argument("--ready-file", help="write the chosen port here (atomically) once serving")
    ap.add_argument("--workdir", help="backend logs (default: a temporary folder)")
    ap.add_argument("--verbose", action="store_true", help="backends log every request to stderr")
    args = ap.parse_args(argv)
    if args.backends < 1:
        ap.error("--backends must be at least 1")

    import tempfile
    workdir = args.workdir or tempfile.mkdtemp(prefix="rolesnap-router.")
    os.makedirs(workdir, exist_ok=True)
    t0 = time.time()
    backends = [Backend(i, workdir, args.verbose) for i in range(args.backends)]
    try:
        for b in backends:
            b.wait_ready()
    except SystemExit:
        for b in backends:
            b.stop()
        raise
    ROUTER = Router(backends)
    server = Server((args.host, args.port), Handler)
    port = server.server_address[1]

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    serve = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
    serve.start()
    if args.ready_file:
        tmp = f"{args.ready_file}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.ready_file)
    print(f"READY {port}", flush=True)
    print(f"router: {args.backends} backends {[b.port for b in backends]} on http://{args.host}:{port} "
          f"(startup {time.time() - t0:.2f}s, logs in {workdir})", file=sys.stderr, flush=True)
    try:
        while serve.is_alive():
            serve.join(0.5)
    finally:
        server.server_close()
        ROUTER.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
