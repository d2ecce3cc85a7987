"""A STAND-IN for the Hugging Face Hub, on 127.0.0.1 (the Hub cannot be reached from here).

It answers only the calls ``huggingface_hub`` makes for ``models pull --from-hub``:
``GET /api/models/{repo}/revision/{revision}`` (model_info) and ``HEAD``/``GET
/{repo}/resolve/{revision}/{path}`` (hf_hub_download), with the Hub's headers
(``X-Repo-Commit``, ``X-Linked-Etag`` = the file's sha256, ``X-Linked-Size``) and error
codes (``X-Error-Code: RepoNotFound | RevisionNotFound | EntryNotFound``). Files come
from one directory served as one repository at one commit. Every request is logged
(``requests``) so tests can see what was asked for; a GET of a path in ``hold`` stalls
(up to 30 s, until ``release`` is set), as a download cut off half-way.
Test code only: nothing in prontuario imports it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class HubStandIn:
    def __init__(self, repo: str, commit: str, files_dir: Path):
        self.repo, self.commit, self.files_dir = repo, commit, files_dir
        self.requests: list[tuple[str, str]] = []
        self.hold: set[str] = set()
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="hub-standin", daemon=True)

    def __enter__(self) -> HubStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, code: int, headers: dict[str, str], body: bytes = b"") -> None:
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)) if "Content-Length" not in headers else headers["Content-Length"])
                self.end_headers()
                if self.command != "HEAD" and body:
                    self.wfile.write(body)

            def _error(self, code: int, error_code: str) -> None:
                self._send(code, {"X-Error-Code": error_code, "Content-Type": "application/json"}, json.dumps({"error": error_code}).encode())

            def _route(self) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((self.command, path))
                api = f"/api/models/{hub.repo}/revision/"
                resolve = f"/{hub.repo}/resolve/"
                if path.startswith("/api/models/") and not path.startswith(api):
                    return self._error(404, "RepoNotFound")
                if path.startswith(api):
                    revision = path[len(api):]
                    if revision not in (hub.commit, hub.commit[:7]):
                        return self._error(404, "RevisionNotFound")
                    siblings = [{"rfilename": str(p.relative_to(hub.files_dir))} for p in sorted(hub.files_dir.rglob("*")) if p.is_file()]
                    body = json.dumps({"id": hub.repo, "modelId": hub.repo, "sha": hub.commit, "siblings": siblings, "private": False}).encode()
                    return self._send(200, {"Content-Type": "application/json"}, body)
                if not path.startswith(resolve):
                    return self._error(404, "RepoNotFound")
                revision, _, rel = path[len(resolve):].partition("/")
                if revision not in (hub.commit, hub.commit[:7]):
                    return self._error(404, "RevisionNotFound")
                if rel in hub.hold and self.command == "GET":
                    hub.release.wait(30)
                target = hub.files_dir / rel
                if not target.is_file():
                    return self._error(404, "EntryNotFound")
                data = target.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                headers = {"X-Repo-Commit": hub.commit, "ETag": f'"{digest}"', "X-Linked-Etag": f'"{digest}"',
                           "X-Linked-Size": str(len(data)), "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
                start = 0
                ranged = self.headers.get("Range", "")
                if ranged.startswith("bytes=") and ranged[6:].split("-")[0].isdigit():
                    start = int(ranged[6:].split("-")[0])
                if start:
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                    return self._send(206, headers, data[start:])
                return self._send(200, headers, data)

            do_GET = _route
            do_HEAD = _route

        return Handler
