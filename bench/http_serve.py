#!/usr/bin/env python3
"""A fast static file server for the getimage benchmark, on 127.0.0.1 only.

Serves one directory with GET, HEAD, single byte ranges, ETag and Last-Modified; bodies go
out with sendfile(2), so the server is not what limits a client on loopback. Writes its port
to --port-file once it listens; runs until killed.

  http_serve.py --root DIR --port-file FILE
"""

import argparse
import email.utils
import http.server
import os
import socketserver
import sys
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."

    def log_message(self, fmt, *args):  # quiet
        pass

    def _resolve(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        parts = [p for p in path.split("/") if p and p not in (".", "..")]
        full = os.path.join(self.root, *parts)
        return full if os.path.isfile(full) else None

    def _serve(self, body):
        full = self._resolve()
        if full is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        st = os.stat(full)
        size = st.st_size
        etag = '"%x-%x"' % (st.st_mtime_ns, size)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and rng.startswith("bytes=") and "," not in rng and (if_range in (None, etag)):
            a, _, b = rng[6:].partition("-")
            try:
                if a:
                    start = int(a)
                    end = min(int(b), size - 1) if b else size - 1
                else:
                    start = max(0, size - int(b))
                status = 206
            except ValueError:
                start, end, status = 0, size - 1, 200
            if status == 206 and start >= size:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        length = end - start + 1 if size else 0
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        if not body or length == 0:
            return
        self.wfile.flush()
        with open(full, "rb") as f:
            sent = 0
            while sent < length:
                n = self.connection.sendfile(f, start + sent, length - sent)
                if n == 0:
                    break
                sent += n

    def do_GET(self):
        self._serve(True)

    def do_HEAD(self):
        self._serve(False)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    Handler.root = os.path.abspath(args.root)
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
