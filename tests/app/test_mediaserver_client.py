"""The Media Server client against the stand-in on loopback: answers, every fault mode, retries, writes, TLS."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import Failure, HashlensError
from app.mediaserver.client import DEFAULT_PORT, MediaServerClient, MediaServerError
from tests.standin import Fault, HashEntry, SyntheticDatabase
from tests.standin.certs import make_certificates
from tests.standin.fixture import standin  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(120)


def sample() -> dict[str, list[HashEntry]]:
    return {
        "Faces & Co": [
            HashEntry("a1", "cat", True, [("importance", "high"), ("city", "Zürich")]),
            HashEntry("a2", "dog <b>", False, []),
            HashEntry("a,3", 'say "hi"', True, [("k:1", "v,2")]),
            HashEntry("a4", "owl", True, [("empty", "")]),
        ],
        "other": [HashEntry("o1", "x")],
    }


class Sleeps(list):
    """Records the backoff the client asks for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(server, **options) -> MediaServerClient:
    options.setdefault("sleep", Sleeps())
    options.setdefault("timeout", 10)
    return MediaServerClient(server.url, **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("counters", ["numtrained", "numtrainedimages"])
def test_a_page_reads_every_entry_with_its_image_status_and_metadata(standin, counters):
    server = standin(sample(), counters=counters)
    page = client_for(server).list_page("Faces & Co")
    assert [(e.identifier, e.label, e.has_image_data, e.metadata) for e in page] == [
        (h.identifier, h.label, h.has_image_data, tuple(h.metadata)) for h in sample()["Faces & Co"]]
    assert all(e.counters == {"numimages": 1, "numtrained": 1, "numfailed": 0, "numuntrained": 0} for e in page)


def test_without_imagestatus_or_metadata_the_entry_says_unknown(standin):
    server = standin(sample())
    entry = client_for(server).list_page("Faces & Co", imagestatus=False, metadata=False)[0]
    assert (entry.identifier, entry.label, entry.has_image_data, entry.metadata) == ("a1", None, None, None)


def test_windows_of_start_and_maxresults_concatenate_to_the_whole(standin):
    server = standin({"big": SyntheticDatabase(23)})
    client = client_for(server)
    whole = [e.identifier for e in client.list_page("big")]
    pages = [e.identifier for start in range(1, 24, 5) for e in client.list_page("big", start=start, maxresults=5)]
    assert pages == whole and len(whole) == 23
    assert client.list_page("big", start=24, maxresults=5) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=12),
                min_size=1, max_size=6, unique=True))
def test_any_identifiers_survive_the_identifier_filter(standin, identifiers):
    server = standin({"db": [HashEntry(i, "l") for i in identifiers] + [HashEntry("x" * 13, "l")]})
    got = client_for(server).list_page("db", identifiers=identifiers)
    assert [e.identifier for e in got] == identifiers
    server.stop()


def test_a_missing_database_is_the_servers_error_and_is_not_retried(standin):
    server = standin(sample())
    sleeps = Sleeps()
    with pytest.raises(MediaServerError) as caught:
        client_for(server, sleep=sleeps).list_page("nope")
    err = caught.value
    assert err.kind == "error" and err.failure is Failure.SERVER_ERROR
    assert "'database=nope' does not exist" in str(err) and server.url in str(err)
    assert "action=ListImageHashes&database=nope" in str(err)
    assert err.detail.errorcode == "ERRORPARAMINVALID"
    assert len(server.requests) == 1 and sleeps == []


def test_an_unknown_action_is_not_implemented(standin):
    server = standin(sample())
    with pytest.raises(MediaServerError) as caught:
        client_for(server).read("ListImageHashDatabases")
    assert caught.value.detail.errorcode == "ERRORNOTIMPLEMENTED"
    assert "The requested action was not recognised" in str(caught.value)


def test_an_error_on_the_nth_request_stops_there(standin):
    server = standin({"big": SyntheticDatabase(30)})
    server.add_fault(Fault("error", at=3, action="ListImageHashes"))
    client = client_for(server)
    assert len(client.list_page("big", start=1, maxresults=10)) == 10
    assert len(client.list_page("big", start=11, maxresults=10)) == 10
    with pytest.raises(MediaServerError) as caught:
        client.list_page("big", start=21, maxresults=10)
    assert caught.value.kind == "error" and "start=21" in str(caught.value)
    assert len(server.requests) == 3


# -- transport and answer faults ----------------------------------------------------------------

FAULTS = [
    # kind, what the client calls it, retried?, a fragment of the message
    ("close", "closed", True, "closed the connection before the answer was complete"),
    ("close_mid", "closed", True, "closed the connection before the answer was complete"),
    ("http_status", "http_status", True, "HTTP 502"),
    ("malformed", "unreadable", False, "not well-formed"),
    ("truncated", "unreadable", False, "truncated"),
    ("not_autnresponse", "unreadable", False, "<html>"),
]


@pytest.mark.parametrize("fault, kind, transient, fragment", FAULTS)
def test_each_fault_has_its_own_plain_message_naming_server_and_request(standin, fault, kind, transient, fragment):
    server = standin(sample())
    server.add_fault(Fault(fault, times=None))
    sleeps = Sleeps()
    with pytest.raises(MediaServerError) as caught:
        client_for(server, sleep=sleeps, retries=3).list_page("Faces & Co")
    err = caught.value
    assert (err.kind, err.transient) == (kind, transient)
    assert fragment in str(err) and server.url in str(err)
    assert "action=ListImageHashes&database=Faces%20%26%20Co" in str(err)
    assert "Traceback" not in str(err)
    if transient:
        assert len(server.requests) == 4 and sleeps == [0.5, 1.0, 2.0]
    else:
        assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize("fault", [f[0] for f in FAULTS if f[2]])
def test_a_transient_fault_once_is_retried_and_the_page_is_whole(standin, fault):
    server = standin(sample())
    server.add_fault(Fault(fault))
    sleeps = Sleeps()
    page = client_for(server, sleep=sleeps).list_page("Faces & Co")
    assert [e.identifier for e in page] == ["a1", "a2", "a,3", "a4"]
    assert len(server.requests) == 2 and sleeps == [0.5]


def test_a_stall_past_the_timeout_is_a_timeout_then_a_retry_succeeds(standin):
    server = standin(sample())
    server.add_fault(Fault("stall"))
    sleeps = Sleeps()
    try:
        page = client_for(server, timeout=0.5, sleep=sleeps).list_page("Faces & Co")
    finally:
        server.release()
    assert len(page) == 4 and sleeps == [0.5] and len(server.requests) == 2


def test_a_stall_every_time_gives_up_with_a_timeout_message(standin):
    server = standin(sample())
    server.add_fault(Fault("stall", times=None))
    try:
        with pytest.raises(MediaServerError) as caught:
            client_for(server, timeout=0.3, retries=1).list_page("Faces & Co")
    finally:
        server.release()
    assert caught.value.kind == "timeout" and "no answer within 0.3 s" in str(caught.value)
    assert len(server.requests) == 2


def test_a_fault_after_entries_have_streamed_is_raised_not_hidden(standin):
    """Mid-stream, the client cannot know whether the page changed: it hands the fault
    to the caller (the pull re-reads) instead of retrying behind its back."""
    server = standin({"big": SyntheticDatabase(5000)})
    server.add_fault(Fault("close_mid", times=None))
    seen = []
    with pytest.raises(MediaServerError) as caught:
        for entry in client_for(server).list_entries("big"):
            seen.append(entry.identifier)
    assert caught.value.kind == "closed" and 0 < len(seen) < 5000 and len(server.requests) == 1


def test_connection_refused(standin):
    port = free_port()
    sleeps = Sleeps()
    with pytest.raises(MediaServerError) as caught:
        MediaServerClient(f"http://127.0.0.1:{port}", sleep=sleeps, retries=2).list_page("db")
    assert caught.value.kind == "refused" and f"port {port} was refused" in str(caught.value)
    assert sleeps == [0.5, 1.0]


def test_an_unknown_host_is_a_dns_failure_and_not_retried():
    sleeps = Sleeps()
    with pytest.raises(MediaServerError) as caught:
        MediaServerClient("http://no-such-host.invalid", sleep=sleeps).list_page("db")
    assert caught.value.kind == "dns" and "'no-such-host.invalid' could not be found" in str(caught.value)
    assert sleeps == []


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.slow
def test_a_50_mb_page_streams_without_holding_it(standin):
    server = standin({"huge": SyntheticDatabase(80_000, metadata_items=2, value_bytes=40)})
    client = client_for(server, timeout=60)
    before = peak = _rss()
    count = 0
    for count, _ in enumerate(client.list_entries("huge"), 1):
        if count % 2000 == 0:
            peak = max(peak, _rss())
    assert count == 80_000 and server.bytes_sent > 50_000_000
    # Holding the page (its text alone is 50 MB, a tree several times that) would show here.
    assert peak - before < 40_000_000, f"resident memory grew {peak - before:,} bytes over a 50 MB page"


# -- writes -------------------------------------------------------------------------------------


def test_each_write_action_is_applied_once_and_logged(standin):
    server = standin(sample())
    client = client_for(server)
    db = "Faces & Co"
    client.write("AddImageHashMetadata", {"database": db, "identifier": "a2", "key": "k", "value": "v"})
    client.write("UpdateImageHashMetadata", {"database": db, "identifier": "a1", "key": "city", "newvalue": "Genève"})
    client.write("RemoveImageHashMetadata", {"database": db, "identifier": "a1", "key": "importance"})
    client.write("RelabelImageHashImage", {"database": db, "identifier": "a1", "imagelabel": "cat",
                                           "newimagelabel": "kitten"})
    client.write("NullImageHashImageData", {"database": db, "identifier": "a4"})
    client.write("RenameImageHash", {"database": db, "identifier": "a,3", "newidentifier": "a3"})
    client.write("MoveImageHash", {"database": db, "identifier": "a3", "newdatabase": "other"})
    client.write("RemoveImageHash", {"database": db, "identifier": "a4"})
    listed = {e.identifier: (e.label, e.has_image_data, e.metadata) for e in client.list_page(db)}
    assert listed == {"a1": ("kitten", True, (("city", "Genève"),)), "a2": ("dog <b>", False, (("k", "v"),))}
    assert [e.identifier for e in client.list_page("other")] == ["o1", "a3"]
    assert [name for name, _ in server.applied] == [
        "AddImageHashMetadata", "UpdateImageHashMetadata", "RemoveImageHashMetadata", "RelabelImageHashImage",
        "NullImageHashImageData", "RenameImageHash", "MoveImageHash", "RemoveImageHash"]
    assert all(r.method == "POST" for r in server.requests if r.action != "ListImageHashes")


def test_a_refused_write_names_what_is_missing(standin):
    server = standin(sample())
    with pytest.raises(MediaServerError) as caught:
        client_for(server).write("RemoveImageHash", {"database": "Faces & Co", "identifier": "zz"})
    assert caught.value.kind == "error" and "'zz' does not exist" in str(caught.value)
    assert server.applied == []


@pytest.mark.parametrize("fault", ["drop_after_write", "close", "http_status", "truncated"])
def test_an_unanswered_write_is_never_resent_and_says_its_effect_is_unknown(standin, fault):
    server = standin(sample())
    server.add_fault(Fault(fault, times=None))
    sleeps = Sleeps()
    with pytest.raises(MediaServerError) as caught:
        client_for(server, sleep=sleeps).write("RemoveImageHash", {"database": "Faces & Co", "identifier": "a1"})
    err = caught.value
    assert err.kind == "uncertain" and err.failure is Failure.WRITE_UNCERTAIN
    assert "may or may not have taken effect" in str(err) and "identifier=a1" in str(err)
    assert len(server.requests) == 1 and sleeps == []
    applied = [name for name, _ in server.applied]
    # A lost request or a proxy's refusal never reached the server; a cut answer did.
    assert applied == (["RemoveImageHash"] if fault in ("drop_after_write", "truncated") else [])


def test_a_write_that_cannot_connect_is_not_uncertain():
    with pytest.raises(MediaServerError) as caught:
        MediaServerClient(f"http://127.0.0.1:{free_port()}", sleep=Sleeps()).write(
            "RemoveImageHash", {"database": "d", "identifier": "i"})
    assert caught.value.kind == "refused"


def test_training_is_queued_followed_and_confirmed(standin):
    server = standin(sample())
    client = client_for(server)
    pairs = [("k:1", 'v,"2"'), ("plain", "x")]
    server.hold_queue()
    token = client.train("other", b"\x89PNG fake bytes", identifier="new", label="lbl", metadata=pairs)
    assert [(q.token, q.status) for q in client.queue_status(token)] == [(token, "Queued")]
    server.run_queue()
    status = _wait_for(lambda: client.queue_status(token)[0], lambda s: s.status != "Queued")
    assert status.status == "Finished" and status.error is None
    entry = client.list_page("other", identifiers=["new"])[0]
    assert (entry.label, entry.metadata) == ("lbl", tuple(pairs))
    assert server.entries("other")[-1].image == b"\x89PNG fake bytes"
    assert "imagedata" not in server.requests[0].params


def test_training_that_fails_reports_the_error_and_adds_nothing(standin):
    server = standin(sample())
    client = client_for(server)
    token = client.train("other", b"bytes", identifier="o1")
    status = _wait_for(lambda: client.queue_status(token)[0], lambda s: s.status != "Queued")
    assert status.status == "Error" and "'o1' already exists" in status.error
    assert [e.identifier for e in server.entries("other")] == ["o1"]


def test_a_queued_training_can_be_cancelled_and_nothing_is_added(standin):
    server = standin(sample())
    client = client_for(server)
    server.hold_queue()
    first, second = client.train("other", b"1", identifier="n1"), client.train("other", b"2", identifier="n2")
    client.cancel(first)
    client.stop(second)
    server.run_queue()
    assert {q.token: q.status for q in client.queue_status()} == {first: "Cancelled", second: "Stopped"}
    assert [e.identifier for e in server.entries("other")] == ["o1"]
    with pytest.raises(MediaServerError) as caught:
        client.cancel(first)
    assert caught.value.kind == "error" and "Cancelled" in str(caught.value)


def _wait_for(read, done, attempts: int = 2000):
    """Poll a condition (the queue runs in the stand-in's own thread)."""
    for _ in range(attempts):
        value = read()
        if done(value):
            return value
    raise AssertionError(f"condition never held; last {value}")


# -- addresses and TLS --------------------------------------------------------------------------


def test_addresses():
    assert MediaServerClient("ms.example").url == f"http://ms.example:{DEFAULT_PORT}"
    assert MediaServerClient("https://[::1]:9000/aci/").url == "https://[::1]:9000/aci"
    for bad, fragment in [("ftp://x", "not http or https"), ("http://", "no host"),
                          ("http://h:99999", "port"), ("http://h/?a=1", "query")]:
        with pytest.raises(HashlensError) as caught:
            MediaServerClient(bad)
        assert fragment in str(caught.value) and bad in str(caught.value)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_https_with_the_servers_own_ca(standin, certificates):
    server = standin(sample(), tls=certificates.server_context())
    assert server.url.startswith("https://")
    with pytest.raises(MediaServerError) as caught:
        client_for(server).list_page("other")  # the system bundle does not know the test CA
    assert caught.value.kind == "tls" and "certificate was not accepted" in str(caught.value)
    assert not caught.value.transient
    page = client_for(server, ca_file=str(certificates.ca)).list_page("other")
    assert [e.identifier for e in page] == ["o1"]


def test_https_with_a_client_certificate(standin, certificates):
    server = standin(sample(), tls=certificates.server_context(require_client=True))
    with pytest.raises(MediaServerError) as caught:
        client_for(server, ca_file=str(certificates.ca), retries=0).list_page("other")
    assert caught.value.kind in ("tls", "closed")
    page = client_for(server, ca_file=str(certificates.ca), cert_file=str(certificates.client_cert),
                      key_file=str(certificates.client_key)).list_page("other")
    assert [e.identifier for e in page] == ["o1"]


def test_plain_http_to_a_tls_server_and_a_missing_ca_file(standin, certificates, tmp_path):
    server = standin(sample(), tls=certificates.server_context())
    with pytest.raises(MediaServerError) as caught:
        MediaServerClient(server.url.replace("https", "http"), sleep=Sleeps(), retries=0,
                          timeout=5).list_page("other")
    assert caught.value.kind in ("closed", "unreadable", "http_status")
    with pytest.raises(HashlensError) as missing:
        MediaServerClient(server.url, ca_file=str(tmp_path / "nope.pem"))
    assert "nope.pem" in str(missing.value) or "No such file" in str(missing.value)
