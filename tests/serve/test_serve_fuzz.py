"""Fuzzing `hashlens serve` over real sockets: random and mutated requests, broken
multipart bodies and slow clients, against a server of two processes. The server never dies
(nor does its helper process); every answer is a well-formed
autnresponse (HTTP 200, or a 4xx with one), or a 4xx for a request that is not valid HTTP.
Bounded for CI; `pytest -m soak` runs many more examples."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services import actions
from app.store import Store
from tests.serve.client import multipart, start

CI_EXAMPLES = 150
SOAK_EXAMPLES = 5000

VALID = [
    "action=ListImageHashes&database=D&start=2&maxresults=2&imagestatus=true&metadata=true",
    "action=ListImageHashDatabases",
    "a=GetStatus",
    "action=QueueInfo&QueueName=TrainImageHash&QueueAction=GetStatus",
    "action=TrainImageHash&database=D&imagedata=iVBORw0KGgo%3D&identifier=x&metadata=a:1",
    "action=AddImageHashMetadata&database=D&identifier=id0&key=k&value=v",
    "action=ListImageHashes&database=D&identifier=%22a%2Cb%22,id1&responseformat=json",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    url = "sqlite:///" + str(tmp / "store.db")
    store = Store.open(url)
    actions.create_database(store, "D")
    from tests.conftest import make_image

    for i in range(3):
        actions.train_image(store, "D", data=make_image(i), identifier=f"id{i}", label=f"l{i}", metadata=[("k", "v")])
    store.close()
    # Two processes: requests land on either, and the helper hands queue requests over.
    srv = start(url, tmp, max_input_string=2000, max_upload_bytes=20_000, workers=2)
    assert srv.processes == 2
    helpers = list(srv._helpers._procs.values())
    yield srv
    assert all(proc.poll() is None for proc in helpers), "a helper process died"
    srv.stop()


def exchange(server, raw: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes, read the whole answer (the request asks to close)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    answer = b"".join(chunks)
    if not answer:
        return 0, {}, b""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return status, headers, body


def _unchunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)


def check_answer(server, raw: bytes, silence_allowed: bool = False) -> None:
    status, headers, body = exchange(server, raw)
    if status == 0:
        # waitress closes a connection whose bytes hold no request line at all.
        assert silence_allowed, raw[:200]
        assert_alive(server)
        return
    assert status < 500, (status, raw[:200], body[:300])
    if status == 200 or headers.get("content-type", "").startswith(("application/xml", "application/json")):
        if headers.get("content-type", "").startswith("application/json"):
            document = json.loads(body)
            assert document["autnresponse"]["response"]["$"] in ("SUCCESS", "ERROR")
        else:
            root = ET.fromstring(body)
            assert root.tag == "autnresponse" and root.findtext("response") in ("SUCCESS", "ERROR"), body[:300]
            assert b"Traceback" not in body
    else:
        assert 400 <= status < 500, status
    assert_alive(server)


def assert_alive(server) -> None:
    status, _, body = exchange(server, get(server, "action=GetVersion"))
    assert status == 200 and b"<response>SUCCESS</response>" in body


def get(server, target: str | bytes) -> bytes:
    target = target.encode("utf-8", "surrogatepass") if isinstance(target, str) else target
    return b"GET /" + target + f" HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode()


def post(server, body: bytes, ctype: str) -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


query_bytes = st.binary(max_size=300).map(lambda b: b.replace(b" ", b"%20").replace(b"\r", b"").replace(b"\n", b""))


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for where, cut, insert in edits:
        where %= max(1, len(data))
        data = data[:where] + insert + data[where + cut:]
    return data


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 8), st.binary(max_size=6)), max_size=6)
fuzz_settings = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _cases(examples: int):
    @settings(max_examples=examples, **fuzz_settings)
    @given(target=query_bytes)
    def random_targets(server, target):
        check_answer(server, get(server, target))

    @settings(max_examples=examples, **fuzz_settings)
    @given(base=st.sampled_from(VALID), change=edits, as_post=st.booleans())
    def mutated_requests(server, base, change, as_post):
        data = mutate(base.encode(), change).replace(b" ", b"%20").replace(b"\r", b"").replace(b"\n", b"")
        raw = post(server, data, "application/x-www-form-urlencoded") if as_post else get(server, data)
        check_answer(server, raw)

    @settings(max_examples=examples, **fuzz_settings)
    @given(change=edits, keep=st.integers(0, 2000), declared=st.sampled_from(["b", "wrong", ""]))
    def broken_multipart(server, change, keep, declared):
        body, ctype = multipart({"action": "TrainImageHash", "database": "D", "identifier": "m",
                                 "imagedata": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 50)}, boundary="b")
        body = mutate(body, change)[:keep]
        check_answer(server, post(server, body, f"multipart/form-data; boundary={declared}"))

    @settings(max_examples=examples, **fuzz_settings)
    @given(garbage=st.binary(min_size=1, max_size=200))
    def garbage_bytes(server, garbage):
        check_answer(server, garbage + b"\r\n\r\n", silence_allowed=True)

    return random_targets, mutated_requests, broken_multipart, garbage_bytes


_ci = _cases(CI_EXAMPLES)
_soak = _cases(SOAK_EXAMPLES)


@pytest.mark.parametrize("case", _ci, ids=lambda f: f.__name__)
def test_fuzz(server, case):
    case(server)


@pytest.mark.soak
@pytest.mark.parametrize("case", _soak, ids=lambda f: f.__name__)
def test_fuzz_soak(server, case):
    case(server)


def test_slow_clients_do_not_hold_the_server(server):
    """Clients that send half a request and stall are buffered by the event loop, not
    given a worker: more of them than there are workers, and others are still answered."""
    slow = []
    try:
        for i in range(server.settings.threads * 4):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
            sock.sendall(f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: 1000\r\n\r\naction=Li".encode())
            slow.append(sock)
        for _ in range(3):
            assert_alive(server)
            check_answer(server, get(server, "action=ListImageHashes&database=D"))
    finally:
        for sock in slow:
            sock.close()
    assert_alive(server)
