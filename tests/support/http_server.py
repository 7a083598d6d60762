#!/usr/bin/env python3
"""A small HTTP server for getimage's tests (and benchmarks), on loopback only.

It serves the files of one directory with the behaviour a real image repository has (HEAD,
Range, If-Range, ETag, Last-Modified, conditional requests answered 304) and, on request, the
misbehaviour tests need:

  --drop-after N      close the connection after N body bytes (the first --drop-times GETs
                      whose body is longer than N; small files such as SHA256SUMS pass)
  --ignore-range      answer every GET with the whole file (200), as some servers do
  --rate BYTES        send at most BYTES per second (a slow server)
  --fail-first N      answer the first N requests with --fail-status (default 503)
  --no-validators     send neither ETag nor Last-Modified
  --tls CERT KEY      speak HTTPS with this certificate and key (PEM files)

Paths under /redirect/ answer 302 to the same path without that prefix. --log FILE gets, per
request, a line {"event": "start", "id": N} when it arrives and one JSON line when it is done
(id, method, path, request headers that matter, status, body bytes sent, a note: "dropped",
"client gone"), so tests can check what the client asked for and wait for answers in flight. The port (0: any free one) is written to
--port-file once the socket listens.

  http_server.py --root DIR --port-file FILE [--port 0] [--log FILE] [options]
"""

import argparse
import email.utils
import http.server
import json
import os
import socket
import sys
import threading
import time
import urllib.parse


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = 0
        self.drops = 0
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def count_request(self):
        with self.lock:
            self.requests += 1
            return self.requests

    def take_drop(self, count):
        with self.lock:
            if self.args.drop_after is None or count <= self.args.drop_after:
                return False
            if self.drops >= self.args.drop_times:
                return False
            self.drops += 1
            return True

    def record(self, entry):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aplspawn-test-http/1"
    state: State = None

    def log_message(self, format, *args):  # quiet: the JSON log is what tests read
        pass

    # --- helpers -------------------------------------------------------------------------
    def entry(self, status, sent=0, note=""):
        h = self.headers
        self.logged = True
        self.state.record({
            "id": self.req_id, "method": self.command, "path": self.path, "status": status, "sent": sent,
            "range": h.get("Range"), "if_range": h.get("If-Range"),
            "if_none_match": h.get("If-None-Match"),
            "if_modified_since": h.get("If-Modified-Since"), "note": note,
        })

    def simple(self, status, body=b"", extra=()):
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.entry(status, len(body) if self.command != "HEAD" else 0)

    def resolve(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        root = os.path.realpath(self.state.args.root)
        full = os.path.realpath(os.path.join(root, path.lstrip("/")))
        if full != root and not full.startswith(root + os.sep):
            return None
        return full

    def send_body(self, f, offset, count):
        """Sends count bytes of f from offset; honours --rate and --drop-after. Returns bytes sent."""
        args = self.state.args
        drop = self.command == "GET" and self.state.take_drop(count)
        limit = min(count, args.drop_after) if drop else count
        sent = 0
        start = time.monotonic()
        chunk = 1 << 20
        if args.rate:
            chunk = max(1, min(chunk, args.rate // 10))
        try:
            while sent < limit:
                n = min(chunk, limit - sent)
                n = self.connection.sendfile(f, offset + sent, n)
                if n == 0:
                    break
                sent += n
                if args.rate:
                    ahead = sent / args.rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return sent, "client gone"
        if drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return sent, "dropped" if drop else ""

    # --- methods -------------------------------------------------------------------------
    def do_HEAD(self):
        self.serve()

    def do_GET(self):
        self.serve()

    def serve(self):
        self.req_id = self.state.count_request()
        self.logged = False
        self.state.record({"event": "start", "id": self.req_id})
        try:
            self.answer(self.req_id)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            if not self.logged:
                self.entry(0, 0, "client gone")

    def answer(self, n):
        args = self.state.args
        if n <= args.fail_first:
            self.simple(args.fail_status, b"try again later\n")
            return
        raw_path = urllib.parse.urlsplit(self.path).path
        if raw_path.startswith("/redirect/"):
            self.simple(302, b"", [("Location", raw_path[len("/redirect"):])])
            return
        full = self.resolve()
        if full is None or not os.path.isfile(full):
            self.simple(404, b"not found\n")
            return
        try:
            f = open(full, "rb")
        except OSError:
            self.simple(403, b"forbidden\n")
            return
        with f:
            st = os.fstat(f.fileno())
            size = st.st_size
            etag = '"%x-%x"' % (size, st.st_mtime_ns)
            last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
            validators = [] if args.no_validators else [("ETag", etag), ("Last-Modified", last_modified)]

            # Conditional requests: If-None-Match wins over If-Modified-Since.
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            if not args.no_validators:
                if inm is not None:
                    if etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*":
                        self.simple(304, b"", validators)
                        return
                elif ims is not None:
                    try:
                        since = email.utils.parsedate_to_datetime(ims).timestamp()
                        if int(st.st_mtime) <= since:
                            self.simple(304, b"", validators)
                            return
                    except (TypeError, ValueError):
                        pass

            start, end = 0, size - 1
            partial = False
            rng = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if rng and not args.ignore_range:
                honour = if_range is None or if_range.strip() in (etag, last_modified)
                if honour and rng.startswith("bytes=") and "," not in rng:
                    first, _, last = rng[len("bytes="):].partition("-")
                    try:
                        if first == "":
                            start, end = max(0, size - int(last)), size - 1
                        else:
                            start = int(first)
                            end = min(int(last), size - 1) if last else size - 1
                    except ValueError:
                        start, end = 0, size - 1
                    else:
                        if start >= size or start > end:
                            self.simple(416, b"", [("Content-Range", "bytes */%d" % size)])
                            return
                        partial = True

            count = end - start + 1 if size else 0
            self.send_response(206 if partial else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(count))
            if not args.ignore_range:
                self.send_header("Accept-Ranges", "bytes")
            if partial:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            for k, v in validators:
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                self.entry(206 if partial else 200)
                return
            sent, note = self.send_body(f, start, count)
            self.entry(206 if partial else 200, sent, note)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log")
    p.add_argument("--drop-after", type=int)
    p.add_argument("--drop-times", type=int, default=1)
    p.add_argument("--ignore-range", action="store_true")
    p.add_argument("--rate", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=503)
    p.add_argument("--no-validators", action="store_true")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = p.parse_args()
    if args.bind not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("http_server.py: loopback only")

    Handler.state = State(args)
    server = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    if args.tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
