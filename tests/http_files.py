"""A real HTTP file server on 127.0.0.1 for the download tests (Range requests, faults on demand)."""
from __future__ import annotations

import http.server
import re
import threading
from pathlib import Path


class Server:
    """Serves files from ``root`` with Range support, and logs every request.

    - a name listed in ``drop_once`` gets its headers and half its bytes, then the connection is
      cut, the first time it is asked for;
    - ``ignore_range`` makes the server answer 200 with the whole file even to Range requests.
    """

    def __init__(self, root: Path):
        self.root, self.log, self.drop_once, self.ignore_range = root, [], set(), False
        self.chunked = False                      # send bodies chunked, with no Content-Length
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/").split("/", 1)[1] if self.path.startswith("/imgs/") else None
                rng = self.headers.get("Range")
                server.log.append((self.path, rng))
                path = server.root / name if name else None
                if path is None or not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = path.read_bytes()
                start = 0
                if rng and not server.ignore_range:
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if server.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = body[: len(body) // 2]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
                    if name in server.drop_once:          # cut inside the chunked stream
                        server.drop_once.discard(name)
                        self.wfile.write(b"%x\r\n" % (len(body) - len(half)))
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    rest = body[len(half):]
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in server.drop_once:
                    server.drop_once.discard(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/imgs/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def requests_for(self, name: str) -> list:
        return [r for r in self.log if r[0].endswith("/" + name)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
