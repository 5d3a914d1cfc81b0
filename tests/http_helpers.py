"""A local HTTP server with scripted answers, for tests of what the platform fetches."""

from __future__ import annotations

import http.server
import socket
import threading


class Site:
    """A local server with scripted answers: path -> list of (status, headers, body), one
    per request (the last repeats)."""

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, dict, bytes]]] = {}
        self.hits: dict[str, int] = {}
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                answers = site.script[self.path]
                n = site.hits.get(self.path, 0)
                site.hits[self.path] = n + 1
                status, headers, body = answers[min(n, len(answers) - 1)]
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()  # HTTP/1.0: without Content-Length the body ends at close
                self.wfile.write(body)

            def log_message(self, *_args) -> None:  # noqa: ANN002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
