"""A fault-injecting HTTP proxy on loopback, in front of a real server (the S3 server in the
tests): passes requests through, or answers 500, or hangs, as the test switches it."""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from urllib.parse import urlsplit

PASS, ERROR, HANG = "pass", "500", "hang"


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.mode = PASS
        self.faults = 0  # requests answered with a fault
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.mode == HANG:
                    proxy.faults += 1
                    deadline = time.time() + 30
                    while proxy.mode == HANG and time.time() < deadline:
                        time.sleep(0.05)
                    self.close_connection = True
                    return  # no answer at all: the client times out
                if proxy.mode == ERROR:
                    proxy.faults += 1
                    payload = b"<Error><Code>InternalError</Code></Error>"
                    self.send_response(500)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream_conn = http.client.HTTPConnection(target.hostname, target.port,
                                                           timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["host"] = target.netloc  # S3 signatures cover the host header
                upstream_conn.request(self.command, self.path, body=body, headers=headers)
                answer = upstream_conn.getresponse()
                payload = answer.read()
                head = self.command == "HEAD"  # its content-length is the object's
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection") and (
                            head or key.lower() != "content-length"):
                        self.send_header(key, value)
                if not head:
                    self.send_header("content-length", str(len(payload)))
                self.end_headers()
                if not head:
                    self.wfile.write(payload)
                upstream_conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815

            def log_message(self, *_args) -> None:  # noqa: ANN002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.mode = PASS
        self.server.shutdown()
