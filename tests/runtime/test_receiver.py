"""The receiver, with a vendor's verifier stood in by a small HMAC one: what is accepted is stored before
the 200, every bad delivery gets its 4xx and leaves nothing in the inbox or in the logs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from crmbridge.connectors import WebhookEvent, WebhookRejected, WebhookRequest
from crmbridge.logs import configure
from crmbridge.runtime.app import build_app
from crmbridge.runtime.metrics import DaemonMetrics, parse_samples
from crmbridge.runtime.receiver import InboxWriter, Receiver
from crmbridge.runtime.scheduler import Scheduler
from crmbridge.store import Store
from crmbridge.store.inbox import Inbox
from crmbridge.sync import RunReport

SECRET = b"s3cret-of-the-app"
PUBLIC = "https://crm-hooks.example.com"


class SignedJson:
    """Signature over the public URI and the raw body; a JSON list of {id, object}."""

    source = "crm"
    max_events = 3

    def __init__(self) -> None:
        self.uris: list[str] = []

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        self.uris.append(request.uri)
        expected = hmac.new(SECRET, request.uri.encode() + request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Signature", "")):
            raise WebhookRejected(401, "bad signature")
        try:
            items = json.loads(request.body)
        except ValueError:
            raise WebhookRejected(400, "malformed JSON") from None
        if not isinstance(items, list):
            raise WebhookRejected(400, "expected a list")
        if items and items[0] == "crash":
            raise RuntimeError("a parser bug")
        return [WebhookEvent(str(i["id"]), "contacts", str(i["object"]), "changed", 0) for i in items]


def sign(path: str, body: bytes) -> str:
    return hmac.new(SECRET, (PUBLIC + path).encode() + body, hashlib.sha256).hexdigest()


def run(store: Store, scenario: Callable[[TestClient, SignedJson], Awaitable[Any]], max_body: int = 4096) -> Any:
    verifier = SignedJson()
    inbox = Inbox(store)
    metrics = DaemonMetrics()
    receiver = Receiver({"crm": verifier}, InboxWriter(inbox), public_url=PUBLIC, max_body=max_body, metrics=metrics)
    scheduler = Scheduler(["crm"], 60, lambda s, f: RunReport(s, "sync"))
    app = build_app(store, scheduler, receiver=receiver, inbox=inbox, metrics=metrics, max_body=max_body)

    async def go() -> Any:
        async with TestClient(TestServer(app)) as client:
            result = await scenario(client, verifier)
            metrics_text = await (await client.get("/metrics")).text()
            return result, parse_samples(metrics_text)

    return asyncio.run(go())


def test_an_accepted_delivery_is_in_the_inbox_when_it_is_acknowledged(sqlite_url: str) -> None:
    body = json.dumps([{"id": 1, "object": 10}, {"id": 2, "object": 11}]).encode()

    async def scenario(client: TestClient, verifier: SignedJson) -> Any:
        response = await client.post("/webhooks/crm?app=1", data=body, headers={
            "Content-Type": "application/json", "X-Signature": sign("/webhooks/crm?app=1", body)})
        return response.status, await response.json(), verifier.uris

    with Store(sqlite_url) as store:
        (status, answer, uris), metrics = run(store, scenario)
        assert status == 200 and answer["accepted"] == 2
        assert uris == [PUBLIC + "/webhooks/crm?app=1"]  # verified against the public address
        assert Inbox(store).counts()["pending"] == 2
    assert metrics[("crmbridge_webhook_requests_total", frozenset({("source", "crm"), ("status", "200")}))] == 1


def test_a_redelivery_is_acknowledged_and_changes_nothing(sqlite_url: str) -> None:
    body = json.dumps([{"id": 1, "object": 10}]).encode()

    async def scenario(client: TestClient, _: SignedJson) -> list[int]:
        headers = {"Content-Type": "application/json", "X-Signature": sign("/webhooks/crm", body)}
        return [(await client.post("/webhooks/crm", data=body, headers=headers)).status for _ in range(3)]

    with Store(sqlite_url) as store:
        statuses, _metrics = run(store, scenario)
        assert statuses == [200, 200, 200]
        assert Inbox(store).counts()["pending"] == 1


BAD = {
    "unsigned": ("/webhooks/crm", b"[]", {"Content-Type": "application/json"}, 401),
    "tampered": ("/webhooks/crm", b'[{"id": 1, "object": 2}]',
                 {"Content-Type": "application/json", "X-Signature": sign("/webhooks/crm", b"[]")}, 401),
    "malformed": ("/webhooks/crm", b"[{", {"Content-Type": "application/json",
                                           "X-Signature": sign("/webhooks/crm", b"[{")}, 400),
    "too many events": ("/webhooks/crm", json.dumps([{"id": i, "object": i} for i in range(4)]).encode(), None, 400),
    "parser crash": ("/webhooks/crm", b'["crash"]', {"Content-Type": "application/json",
                                                     "X-Signature": sign("/webhooks/crm", b'["crash"]')}, 400),
    "wrong type": ("/webhooks/crm", b"[]", {"Content-Type": "text/plain", "X-Signature": sign("/webhooks/crm", b"[]")},
                   415),
    "too large": ("/webhooks/crm", b"[" + b" " * 5000 + b"]", None, 413),
    "unknown source": ("/webhooks/elsewhere", b"[]", {"Content-Type": "application/json"}, 404),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_delivery_gets_its_4xx_is_not_stored_and_is_not_logged(case: str, sqlite_url: str,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path, body, headers, expected = BAD[case]
    if headers is None:
        headers = {"Content-Type": "application/json", "X-Signature": sign(path, body)}
    configure("DEBUG", "json")

    async def scenario(client: TestClient, _: SignedJson) -> int:
        return (await client.post(path, data=body, headers=headers)).status

    try:
        with Store(sqlite_url) as store:
            status, _metrics = run(store, scenario)
            assert status == expected
            assert Inbox(store).counts()["pending"] == 0
    finally:
        configure("WARNING", "console")
    logged = capsys.readouterr().err
    assert SECRET.decode() not in logged and headers.get("X-Signature", "unsigned-) ") not in logged
    assert '"object"' not in logged and "crash" not in logged


def test_while_stopping_deliveries_are_refused_with_503_so_the_crm_retries(sqlite_url: str) -> None:
    body = b"[]"
    verifier = SignedJson()
    with Store(sqlite_url) as store:
        receiver = Receiver({"crm": verifier}, InboxWriter(Inbox(store)), public_url=PUBLIC)
        receiver.accepting.clear()
        app = build_app(store, Scheduler(["crm"], 60, lambda s, f: RunReport(s, "sync")), receiver=receiver)

        async def go() -> int:
            async with TestClient(TestServer(app)) as client:
                return (await client.post("/webhooks/crm", data=body, headers={
                    "Content-Type": "application/json", "X-Signature": sign("/webhooks/crm", body)})).status

        assert asyncio.run(go()) == 503
