"""How server answers become one-line errors and exit statuses (a scripted HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from energy_report.errors import EXIT_SERVER, EXIT_USAGE, ServerError, UsageError
from energy_report.server import Connection, PromServer, QueryLimitError


class Scripted:
    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        self.seen: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.seen.append(dict(self.headers))
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status: int, body: object) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.server.shutdown()
    server.server.server_close()


def error(status: int, kind: str, message: str) -> dict[str, str]:
    return {"status": "error", "errorType": kind, "error": message}


@pytest.mark.parametrize(
    ("status", "body", "cls", "words"),
    [
        (401, b"Unauthorized", ServerError, "refused the credentials (HTTP 401)"),
        (403, b"", ServerError, "refused the credentials (HTTP 403)"),
        (503, error(503, "unavailable", "TSDB not ready"), ServerError, "failed a query (HTTP 503): TSDB not ready"),
        (200, b"<html>Grafana</html>", ServerError, "without a JSON body"),
        (404, b"404 page not found", ServerError, "no /api/v1 path"),
        (400, error(400, "bad_data", "parse error at char 5"), UsageError, "check the --match selectors"),
        (
            422,
            error(422, "execution", "query processing would load too many samples into memory"),
            QueryLimitError,
            "too large",
        ),
    ],
)
def test_answers_map_to_errors(scripted: Scripted, status: int, body: object, cls: type, words: str) -> None:
    scripted.answer(status, body)
    server = PromServer(Connection(url=scripted.url))
    with pytest.raises(cls) as err:
        server.query("up", 0.0)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert err.value.exit_status == (EXIT_USAGE if cls is UsageError else EXIT_SERVER)


def test_credentials_travel_in_headers_from_files(scripted: Scripted, tmp_path) -> None:
    scripted.answer(200, {"status": "success", "data": {"resultType": "vector", "result": []}})
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    PromServer(Connection(url=scripted.url, bearer_token_file=token)).query("up", 0.0)
    password = tmp_path / "password"
    password.write_text("pw\n")
    PromServer(Connection(url=scripted.url, username="me", password_file=password)).query("up", 0.0)
    assert scripted.seen[0]["Authorization"] == "Bearer s3cr3t-token"
    assert scripted.seen[1]["Authorization"] == "Basic bWU6cHc="  # me:pw, newline stripped
    assert scripted.seen[0]["User-Agent"].startswith("energy-report/")
