"""Issue 19, item 3 (and failure 7's holes): the room's server against a hostile network
and a hostile page, on a real loopback server (uvicorn), without machines.

The token of a printed link becomes a cookie and leaves the URL; websockets and POSTs
from another origin are refused; bodies are capped; a malformed terminal frame closes
its socket with one log line and no traceback; --tls and --cert serve HTTPS only (plain
HTTP on the port gets no answer) with Secure cookies; --public-url names the links.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from labgen.core.context import Context
from labgen.core.errors import UsageError
from labgen.core.lab import load_lab
from labgen.workshop import db, server, terminal, tls
from labgen.workshop import room as rooms
from labgen.workshop.service import RoomService
from unit_helpers import invoke_labgen


class Served:
    """A running server of a two-seat room: its address, room and service."""

    def __init__(self, base: str, room: rooms.Room, service: RoomService, port: int):
        self.base, self.room, self.service, self.port = base, room, service, port
        self.tls = base.startswith("https:")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        """One request to 127.0.0.1:PORT (never through a proxy), its response read."""
        if self.tls:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=10, context=insecure()
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.text = response.read().decode()  # type: ignore[attr-defined]
        conn.close()
        return response

    @property
    def seat_token(self) -> str:
        return self.room.seat_tokens["pf-01"]

    @property
    def teacher_token(self) -> str:
        return self.room.instructor_token


def insecure() -> ssl.SSLContext:
    """A client context that takes any certificate: the tests compare fingerprints."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


Serve = Callable[..., Served]


@pytest.fixture
def serve(labgen_home: Path) -> Iterator[Serve]:
    """A factory of servers of one room (`serve(certificate=..., public_url=...)`),
    each stopped at the end of the test."""
    lab = load_lab("port-forwarding")
    room = rooms.create("pf", lab.name, str(lab.path), 2)
    running: list[tuple[threading.Thread, threading.Event]] = []

    def start(**options: Any) -> Served:
        store = db.open_room(room.name, room.created)
        service = RoomService(room, Context(), store=store)
        service.checker.start = lambda: None  # type: ignore[method-assign]  # no machines
        ready, stop = threading.Event(), threading.Event()
        base: list[str] = []
        port = free_port()  # known here: with --public-url the printed base does not say

        def on_ready(url: str) -> None:
            base.append(url)
            ready.set()

        thread = threading.Thread(
            target=server.serve,
            args=(service, f"127.0.0.1:{port}", on_ready, 60, stop),
            kwargs=options,
            daemon=True,
        )
        thread.start()
        running.append((thread, stop))
        assert ready.wait(15), "the server did not start"
        return Served(base[0], room, service, port)

    try:
        yield start
    finally:
        for thread, stop in running:
            stop.set()
            thread.join(15)
            assert not thread.is_alive(), "the server did not stop"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(serve: Serve) -> Served:
    return serve()


def cookie_of(response: http.client.HTTPResponse) -> dict[str, str]:
    """The Set-Cookie of a response as {name: value, attribute: value or ""}."""
    header = response.headers["set-cookie"]
    assert header, "no cookie was set"
    pairs = [p.strip() for p in header.split(";")]
    name, value = pairs[0].split("=", 1)
    attributes = {k.lower(): v for k, _, v in (p.partition("=") for p in pairs[1:])}
    return {"name": name, "value": value, **attributes}


# --- the token of a printed link becomes a cookie, and leaves the URL ------------------


@pytest.mark.parametrize(
    ("path", "target", "name", "scope"),
    [
        ("/w/pf-01/{seat}/", "/w/pf-01/", "labgen-seat", "/w/pf-01/"),
        ("/i/{teacher}/", "/i/", "labgen-instructor", "/i/"),
        ("/i/{teacher}/seats/pf-02/watch", "/i/seats/pf-02/watch", "labgen-instructor", "/i/"),
    ],
)
def test_a_printed_link_sets_an_httponly_strict_cookie_and_redirects_without_the_token(
    served: Served, path: str, target: str, name: str, scope: str
) -> None:
    url = path.format(seat=served.seat_token, teacher=served.teacher_token)
    response = served.request("GET", url)
    assert response.status == 200 and response.headers["cache-control"] == "no-store"
    body = response.text  # type: ignore[attr-defined]
    assert f'<meta http-equiv="refresh" content="0; url={target}">' in body
    token = served.seat_token if name == "labgen-seat" else served.teacher_token
    assert token not in body  # the page that redirects does not show the token either
    cookie = cookie_of(response)
    assert (cookie["name"], cookie["value"]) == (name, token)
    assert cookie["path"] == scope and cookie["samesite"].lower() == "strict"
    assert "httponly" in cookie
    assert "secure" not in cookie  # plain http: a Secure cookie would never come back
    # The page without the token opens with the cookie, and only with it.
    page = served.request("GET", target, headers={"Cookie": f"{name}={token}"})
    assert page.status == 200 and "Opening" not in page.text  # type: ignore[attr-defined]
    bare = served.request("GET", target)
    assert (bare.status, bare.text) == (404, "Not Found")  # type: ignore[attr-defined]


def test_a_wrong_link_sets_no_cookie(served: Served) -> None:
    other = served.room.seat_tokens["pf-02"]
    for path, status in [(f"/w/pf-01/{other}/", 403), (f"/w/pf-01/{'A' * 32}/", 404)]:
        response = served.request("GET", path)
        assert response.status == status and response.headers["set-cookie"] is None


def test_the_cookie_opens_its_seats_routes_only(served: Served) -> None:
    mine = {"Cookie": f"labgen-seat={served.seat_token}"}
    stream = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    stream.request("GET", "/w/pf-01/events", headers=mine)
    events = stream.getresponse()
    assert events.status == 200 and events.readline().startswith(b"data: ")
    stream.close()
    # another seat's cookie (a browser that opened two seats' links) is that seat's only
    assert served.request("GET", "/w/pf-02/", headers=mine).status == 403
    assert served.request("POST", "/w/pf-02/run/curl", headers=mine).status == 403
    # a seat's cookie is nobody's on the instructor's routes
    teacher = {"Cookie": f"labgen-instructor={served.seat_token}"}
    assert served.request("GET", "/i/", headers=teacher).status == 404


def test_the_instructors_cookie_drives_the_grid(served: Served) -> None:
    cookie = {"Cookie": f"labgen-instructor={served.teacher_token}"}
    off = json.dumps({"enabled": False}).encode()
    response = served.request("POST", "/i/run-for-me", off, cookie)
    assert response.status == 200 and not served.service.grid.run_for_me
    assert served.request("GET", "/i/grid.csv", headers=cookie).status == 200
    assert served.request("POST", "/i/run-for-me", off).status == 404  # no cookie


def test_the_printed_links_still_work_for_scripts(served: Served) -> None:
    token = served.teacher_token
    assert served.request("GET", f"/i/{token}/grid.csv").status == 200
    off = json.dumps({"enabled": False}).encode()
    assert served.request("POST", f"/i/{token}/run-for-me", off).status == 200


# --- Origin: websockets and POSTs from another site are refused -------------------------


def ws_outcome(url: str, origin: str | None) -> int | None:
    """The HTTP status a websocket handshake is refused with (None: accepted)."""
    from websockets.sync.client import connect

    try:
        kwargs: dict[str, Any] = {"origin": origin} if origin is not None else {}
        with connect(url, open_timeout=10, **kwargs):
            return None
    except Exception as exc:  # websockets' InvalidStatus carries the response
        response = getattr(exc, "response", None)
        if response is None:
            raise
        return int(response.status_code)


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
def test_a_terminal_from_another_origin_is_refused(
    served: Served, origin: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The seat does not exist: past the Origin check, the handler answers 404. So a 403
    # is the Origin check's, before any handler ran.
    caplog.set_level(logging.WARNING)
    url = f"ws://127.0.0.1:{served.port}/i/{served.teacher_token}/seats/pf-09/terminal"
    assert ws_outcome(url, origin) == 403
    attendee = f"ws://127.0.0.1:{served.port}/w/pf-09/{served.seat_token}/terminal"
    assert ws_outcome(attendee, origin) == 403
    lines = [r.getMessage() for r in caplog.records if r.name == "labgen.workshop.guard"]
    assert lines == [
        f"refused a websocket to i/... from origin {origin!r}",
        f"refused a websocket to w/... from origin {origin!r}",
    ]  # one line each, and never the path's token


@pytest.mark.parametrize("origin", ["own", None])
def test_a_terminal_from_the_servers_own_page_or_a_program_passes_the_check(
    served: Served, origin: str | None
) -> None:
    url = f"ws://127.0.0.1:{served.port}/i/{served.teacher_token}/seats/pf-09/terminal"
    assert ws_outcome(url, served.base if origin == "own" else None) == 404


def test_a_post_from_another_origin_changes_nothing(served: Served) -> None:
    off = json.dumps({"enabled": False}).encode()
    path = f"/i/{served.teacher_token}/run-for-me"
    response = served.request("POST", path, off, {"Origin": "http://evil.example"})
    assert response.status == 403 and served.service.grid.run_for_me
    assert served.request("POST", path, off, {"Origin": served.base}).status == 200


def test_a_rebound_name_is_not_the_servers_own(serve: Serve) -> None:
    """With --public-url, that origin is the server's own, and so is its address; a
    name that only resolves here (DNS rebinding: Host and Origin both the attacker's)
    is not."""
    served = serve(public_url="http://room.example:8080")
    assert served.base == "http://room.example:8080"
    path = f"/i/{served.teacher_token}/run-for-me"
    on = json.dumps({"enabled": True}).encode()
    for origin, host, status in [
        ("http://room.example:8080", f"127.0.0.1:{served.port}", 200),  # a proxy's Host
        (f"http://127.0.0.1:{served.port}", f"127.0.0.1:{served.port}", 200),
        ("http://evil.example:8080", "evil.example:8080", 403),
        (f"http://evil.example:{served.port}", f"evil.example:{served.port}", 403),
    ]:
        response = served.request("POST", path, on, {"Origin": origin, "Host": host})
        assert response.status == status, (origin, host)


# --- bodies are capped ---------------------------------------------------------------------


def test_a_body_over_64_kib_is_a_413_and_changes_nothing(served: Served) -> None:
    path = f"/i/{served.teacher_token}/run-for-me"
    big = b'{"enabled": false, "pad": "' + b"x" * (65 * 1024) + b'"}'
    response = served.request("POST", path, big, {"Content-Type": "application/json"})
    assert response.status == 413 and "64 KiB" in response.text  # type: ignore[attr-defined]
    assert served.service.grid.run_for_me


def test_a_chunked_body_over_the_cap_is_a_413_too(served: Served) -> None:
    """No Content-Length to refuse by: the cap is counted as the body arrives."""
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    chunks = [b'{"enabled": false, "pad": "'] + [b"x" * 8192] * 10 + [b'"}']
    conn.request(
        "POST", f"/i/{served.teacher_token}/run-for-me", body=iter(chunks), encode_chunked=True
    )
    assert conn.getresponse().status == 413
    conn.close()
    assert served.service.grid.run_for_me


def test_a_small_body_still_reaches_the_handler(served: Served) -> None:
    path = f"/i/{served.teacher_token}/run-for-me"
    response = served.request("POST", path, b'{"enabled": false}')
    assert response.status == 200 and not served.service.grid.run_for_me


# --- malformed terminal frames: a closed socket and one log line, never a traceback ------


class FakeTerminal:
    """A seat's shell without a machine: records what the page sent."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.sizes: list[tuple[int, int]] = []
        self.closed = False

    def join(self) -> tuple[Any, bytes]:
        import asyncio

        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        return queue, b"$ "

    def leave(self, queue: object) -> None:
        pass

    def write(self, data: str) -> None:
        self.written.append(data)

    def resize(self, cols: int, rows: int) -> None:
        self.sizes.append((cols, rows))


@pytest.fixture
def shell(served: Served) -> FakeTerminal:
    fake = FakeTerminal()
    served.service.terminals.get = lambda seat: fake  # type: ignore[assignment,method-assign,return-value]
    return fake


BAD_FRAMES: list[tuple[str | bytes, int]] = [
    ("1e999", 1007),
    ("null", 1007),
    (b"\x00\x01binary", 1003),
    ('"a JSON string with input in it"', 1007),
    ("[1, 2]", 1007),
    ("not json {", 1007),
    ('{"cols": 1e999, "rows": 30}', 1007),
    ('{"cols": true, "rows": 30}', 1007),
    ('{"input": 5}', 1007),
    ("[" * 100000 + "]" * 100000, 1007),  # nested deeper than json's recursion
    ('{"input": "' + "x" * (300 * 1024) + '"}', 1009),  # over terminal.MAX_FRAME
]


def wait_for(condition: Callable[[], object], seconds: float = 10) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES, ids=lambda v: repr(v)[:24])
def test_a_malformed_terminal_frame_closes_the_socket_with_one_log_line(
    served: Served,
    shell: FakeTerminal,
    frame: str | bytes,
    code: int,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{served.port}/w/pf-01/{served.seat_token}/terminal"
    caplog.set_level(logging.WARNING)
    with connect(url, open_timeout=10, max_size=None) as socket_:
        assert socket_.recv(timeout=10) == b"$ "
        socket_.send('{"input": "ls\\r"}')
        socket_.send('{"cols": 120, "rows": 40}')
        wait_for(lambda: shell.written and shell.sizes)  # the good frames are handled
        socket_.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            socket_.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    assert shell.written == ["ls\r"] and shell.sizes == [(120, 40)]
    ours = [r for r in caplog.records if r.name.startswith("labgen.workshop")]
    if code != 1009:  # uvicorn closes an oversized frame itself, before the handler
        assert len(ours) == 1, [r.getMessage() for r in ours]
        assert ours[0].getMessage().startswith("pf-01: closed a terminal socket that sent")
        assert served.seat_token not in ours[0].getMessage()
    logged = capfd.readouterr()
    assert "Traceback" not in logged.err + logged.out, logged.err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_parse_frame_takes_the_two_kinds_the_page_sends() -> None:
    assert terminal.parse_frame({"text": '{"input": "ls"}'}) == ("input", "ls")
    assert terminal.parse_frame({"text": '{"cols": 80, "rows": 24}'}) == (80, 24)
    with pytest.raises(terminal.BadFrame, match="binary"):
        terminal.parse_frame({"bytes": b"x"})


# --- TLS -------------------------------------------------------------------------------------


def test_the_self_signed_certificate_is_kept_reused_and_its_key_private(tmp_path: Path) -> None:
    first = tls.self_signed(tmp_path, "pf", ["127.0.0.1"])
    assert first.key.stat().st_mode & 0o777 == 0o600
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", first.fingerprint)
    again = tls.self_signed(tmp_path, "pf", ["127.0.0.1"])
    assert again.fingerprint == first.fingerprint  # a restart shows the same fingerprint
    named = tls.self_signed(tmp_path, "pf", ["room.example"])  # a new name: a new certificate
    assert named.fingerprint != first.fingerprint
    assert named.key.stat().st_mode & 0o777 == 0o600
    first.cert.write_text("garbage")  # a broken one is made again, not served
    assert tls.self_signed(tmp_path, "pf", []).fingerprint != named.fingerprint


def test_a_tls_server_speaks_https_only_with_secure_cookies(
    serve: Serve, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    certificate = tls.self_signed(tmp_path, "pf", ["127.0.0.1"])
    served = serve(certificate=certificate)
    assert served.base == f"https://127.0.0.1:{served.port}"
    # the certificate the server presents is the one whose fingerprint was printed
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", served.port)))
    assert hashlib.sha256(der).digest().hex(":").upper() == certificate.fingerprint
    response = served.request("GET", f"/w/pf-01/{served.seat_token}/")
    cookie = cookie_of(response)
    assert "secure" in cookie and "httponly" in cookie and cookie["samesite"].lower() == "strict"
    # plain HTTP on the port: no page, no redirect that would carry the token in clear
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as plain:
        plain.sendall(f"GET /w/pf-01/{served.seat_token}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        try:
            answer = plain.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/"), answer
    logged = capfd.readouterr()
    assert "Traceback" not in logged.err + logged.out, logged.err


def other_key(tmp_path: Path) -> Path:
    return tls.self_signed(tmp_path / "other", "x", []).key


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("missing.pem", "key.pem", r"--cert .*missing\.pem: No such file"),
        ("garbage.pem", "key.pem", r"--cert .*garbage\.pem: not a PEM certificate"),
        ("cert.pem", "missing.pem", r"--key .*missing\.pem: No such file"),
        ("cert.pem", "cert.pem", r"--key .*cert\.pem: not an unencrypted PEM private key"),
        ("cert.pem", "encrypted.pem", r"--key .*encrypted\.pem: not an unencrypted"),
        ("cert.pem", "other/key.pem", r"--key .*other/key\.pem does not match --cert"),
    ],
)
def test_a_bad_certificate_or_key_names_the_file(
    tmp_path: Path, cert: str, key: str, message: str
) -> None:
    from cryptography.hazmat.primitives import serialization

    made = tls.self_signed(tmp_path, "pf", [])
    other_key(tmp_path)
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    loaded = serialization.load_pem_private_key(made.key.read_bytes(), None)
    (tmp_path / "encrypted.pem").write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(UsageError, match=message):
        tls.given(str(tmp_path / cert), str(tmp_path / key))


def test_a_good_certificate_is_taken(tmp_path: Path) -> None:
    made = tls.self_signed(tmp_path, "pf", [])
    assert tls.given(str(made.cert), str(made.key)).fingerprint == made.fingerprint


# --- the command line: bad input is exit 2 naming it, before anything starts -----------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem"], "/nonexistent/c.pem"),
        (["--cert", "c.pem"], "--cert and --key go together"),
        (["--tls", "--cert", "c.pem", "--key", "k.pem"], "pick one"),
        (["--public-url", "room.example"], "expected http"),
        (["--public-url", "ftp://room.example"], "expected http"),
        (["--public-url", "https://room.example:99999"], "valid port"),
        (["--public-url", "https://room.example/labs/"], "no path"),
        (["--public-url", "https://u:p@room.example"], "password"),
        (["--public-url", "http://room.example", "--tls"], "https://"),
    ],
)
def test_serve_refuses_bad_tls_and_url_options(
    labgen_home: Path, args: list[str], message: str
) -> None:
    result = invoke_labgen("workshop", "serve", "pf", *args)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert message in result.stderr, result.stderr


def test_the_public_url_is_what_the_links_say() -> None:
    assert server.parse_public_url("https://room.example:8443/", tls=True) == (
        "https://room.example:8443"
    )
    # a TLS proxy in front of a plain server
    assert server.parse_public_url("https://room.example", tls=False) == "https://room.example"
    with pytest.raises(UsageError):
        server.parse_public_url("http://room.example?x=1", tls=False)


def test_the_printed_urls_carry_the_fingerprint(
    labgen_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from labgen.ui import live

    lab = load_lab("port-forwarding")
    room = rooms.create("pf", lab.name, str(lab.path), 1)
    live.print_urls(room, "https://room.example", "AB:" * 31 + "CD")
    printed = capsys.readouterr().out
    assert "certificate SHA-256: " + "AB:" * 31 + "CD" in printed
    assert f"pf-01: https://room.example/w/pf-01/{room.seat_tokens['pf-01']}/" in printed
