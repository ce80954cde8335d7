"""Test helpers: a running `hashlens serve` in this process and ACI clients over HTTP
(GET, POST form, JSON), each presenting an answer as the XML `hashlens aci` would print."""

from __future__ import annotations

import http.client as httpclient
import json
import time
import urllib.request
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from app.mediaserver_codec.request import parse_query_string
from app.serve.server import Server
from app.store import Store
from app.serve.settings import ServeSettings

QUEUED = {"trainimagehash", "exportimagehashdatabase", "importimagehashdatabase"}


def start(store_url: str, tmp_path, gate=None, **settings) -> Server:
    """A server on a free port; the store is created first (a server opens only an existing one)."""
    Store.open(store_url).close()
    settings.setdefault("threads", 2)
    settings.setdefault("port", 0)
    return Server(ServeSettings(store_url, log_path=str(tmp_path / "serve.log"), **settings),
                  gate=gate).start()


def http(server_url: str, method: str, target: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One raw HTTP exchange (no urllib redirects or error raising)."""
    parts = urlsplit(server_url)
    conn = httpclient.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def json_to_element(name: str, obj: dict) -> ET.Element:
    """The inverse of IDOL's JSON form, to compare it with the XML it came from."""
    element = ET.Element(name)
    for key, value in obj.items():
        if key == "$":
            element.text = value
        elif key.startswith("@"):
            if key != "@xmlns":
                element.set(key[1:], value)
        else:
            for item in value if isinstance(value, list) else [value]:
                element.append(json_to_element(key, item))
    return element


def canonical(element: ET.Element) -> tuple:
    """An element as comparable data, ignoring the pretty-printing between elements."""
    children = list(element)
    text = None if children else (element.text or "")
    return element.tag, sorted(element.attrib.items()), text, [canonical(c) for c in children]


class HttpAci:
    """Sends ACI requests to a server the way `kind` says: get, post or json."""

    def __init__(self, server: Server, kind: str):
        self.server, self.kind = server, kind

    def send(self, request: str) -> str:
        text = request.lstrip("/").lstrip("?")
        if self.kind == "post":
            # A form body reads '+' as a space, so a literal plus is sent as %2B (HTML forms).
            status, headers, body = http(self.server.url, "POST", "/", text.replace("+", "%2B").encode(),
                                         {"Content-Type": "application/x-www-form-urlencoded"})
        else:
            target = "/" + text + ("&responseformat=json" if self.kind == "json" else "")
            status, headers, body = http(self.server.url, "GET", target)
        assert status == 200, (status, body[:500])
        if self.kind == "json":
            assert headers["Content-Type"].startswith("application/json")
            document = json.loads(body.decode("utf-8"))
            (name, obj), = document.items()
            # ElementTree writes CR raw and its parser then folds it into LF: escape it.
            return ET.tostring(json_to_element(name, obj), encoding="unicode").replace("\r", "&#13;")
        assert headers["Content-Type"].startswith("application/xml")
        return body.decode("utf-8")

    def __call__(self, request: str) -> tuple[bool, str]:
        """The answer as `hashlens aci` gives it: a queued action is waited for and its
        outcome shown as the synchronous answer would be."""
        text = self.send(request)
        root = ET.fromstring(text)
        ok = root.findtext("response") == "SUCCESS"
        try:
            action, _ = parse_query_string(request)
        except Exception:
            action = None
        if not ok or (action or "").lower() not in QUEUED:
            return ok, text
        token = root.findtext("responsedata/token")
        assert token, text
        item = wait_for_action(self, action, token)
        answer = ET.Element("autnresponse")
        ET.SubElement(answer, "action").text = action.upper()
        ET.SubElement(answer, "response").text = "SUCCESS" if item.findtext("status") == "Finished" else "ERROR"
        data = ET.SubElement(answer, "responsedata")
        outcome = [c for c in item if c.tag not in ACTION_STATUS_TAGS]
        data.extend(outcome)
        return item.findtext("status") == "Finished", ET.tostring(answer, encoding="unicode")


ACTION_STATUS_TAGS = {"token", "status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
                      "process_end_time"}


def queue_status(client: HttpAci, action: str, token: str | None = None) -> ET.Element:
    request = f"action=QueueInfo&QueueName={action}&QueueAction=GetStatus" + (f"&Token={token}" if token else "")
    return ET.fromstring(client.send(request))


def wait_for_action(client: HttpAci, action: str, token: str, statuses=("Finished", "Error"),
                    limit: float = 120.0) -> ET.Element:
    """Poll QueueInfo until the action reaches one of `statuses` (bounded, not a sleep-and-hope)."""
    give_up = time.monotonic() + limit
    while True:
        root = queue_status(client, action, token)
        item = root.find("responsedata/actions/action")
        assert item is not None, ET.tostring(root, encoding="unicode")
        if item.findtext("status") in statuses:
            return item
        assert time.monotonic() < give_up, f"{action} {token} stayed {item.findtext('status')}"
        time.sleep(0.01)


def multipart(fields: dict[str, str | tuple[str, bytes]], boundary: str = "hashlens-test-boundary") -> tuple[bytes, str]:
    """A multipart/form-data body: text fields, and (filename, bytes) file parts."""
    out = []
    for name, value in fields.items():
        if isinstance(value, tuple):
            filename, data = value
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n")
            out += [head.encode(), data, b"\r\n"]
        else:
            out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def post_multipart(server: Server, fields: dict, target: str = "/") -> ET.Element:
    body, ctype = multipart(fields)
    status, _, data = http(server.url, "POST", target, body, {"Content-Type": ctype})
    assert status == 200, (status, data[:300])
    return ET.fromstring(data)
