"""E-mail to the owner through real local SMTP servers (aiosmtpd): content, login, TLS, refusals, retries."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from notify_helpers import SMTP_PASSWORD, Mailbox
from structlog.testing import capture_logs

from crmbridge.notify import HandoffNotice, Notifier, NotifyPermanent, NotifyRetryable, RetryPolicy, SmtpMailer

SENDER = "crmbridge <revops@seller.example>"
StartSmtp = Callable[..., tuple[Any, Mailbox]]
# A local relay with AUTH and no TLS is what security="none" is for; aiosmtpd rightly warns about it.
_PLAIN_AUTH = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _mailer(port: int, **kwargs: Any) -> SmtpMailer:
    kwargs.setdefault("security", "none")
    kwargs.setdefault("timeout", 2.0)
    return SmtpMailer("127.0.0.1", port, sender=SENDER, **kwargs)


def _received(box: Mailbox) -> EmailMessage:
    [envelope] = box.envelopes
    return message_from_bytes(envelope.original_content, policy=policy.default)  # type: ignore[return-value]


def test_the_owner_gets_an_email_naming_the_lead_with_a_link_to_the_deal(
        smtp_server: StartSmtp, notice: HandoffNotice, fast_policy: RetryPolicy) -> None:
    controller, box = smtp_server()
    [delivery] = Notifier(mailer=_mailer(controller.port), policy=fast_policy).deliver(notice)
    assert delivery.ok
    assert (delivery.channel, delivery.target, delivery.attempts) == ("email", "sam.okafor@seller.example", 1)
    [envelope] = box.envelopes
    assert envelope.mail_from == "revops@seller.example"
    assert envelope.rcpt_tos == ["sam.okafor@seller.example"]
    msg = _received(box)
    assert msg["Subject"] == "Sales-ready lead for Sam Okafor: Dana Whitfield (Northwind Analytics) · score 72 (SQL)"
    assert msg["To"] == "sam.okafor@seller.example"
    assert msg["Date"] is not None
    text = msg.get_body(("plain",)).get_content()
    assert "Northwind Analytics (northwind.example)" in text
    assert "Contact request form (+50)" in text
    assert notice.deal_url in text
    assert notice.deal_url in msg.get_body(("html",)).get_content()


@_PLAIN_AUTH
def test_login_with_the_right_password_delivers(smtp_server: StartSmtp, notice: HandoffNotice) -> None:
    controller, box = smtp_server(auth=("notify", SMTP_PASSWORD))
    _mailer(controller.port, username="notify", password=SMTP_PASSWORD).send(notice, "sam.okafor@seller.example")
    assert len(box.envelopes) == 1


@_PLAIN_AUTH
def test_a_wrong_password_fails_permanently_without_echoing_it(smtp_server: StartSmtp, notice: HandoffNotice,
                                                                fast_policy: RetryPolicy) -> None:
    controller, box = smtp_server(auth=("notify", "the-real-one"))
    notifier = Notifier(mailer=_mailer(controller.port, username="notify", password=SMTP_PASSWORD),
                        policy=fast_policy)
    with capture_logs() as logs:
        [delivery] = notifier.deliver(notice)
    assert (delivery.ok, delivery.retryable, delivery.attempts) == (False, False, 1)
    assert delivery.error == (f"email: smtp://127.0.0.1:{controller.port} refused the login (535): "
                              "check the SMTP username and password")
    assert box.envelopes == []
    assert SMTP_PASSWORD not in repr(logs) + repr(delivery)


def test_a_refused_recipient_is_permanent_and_not_retried(smtp_server: StartSmtp, notice: HandoffNotice,
                                                          fast_policy: RetryPolicy) -> None:
    controller, _ = smtp_server(Mailbox(refuse_rcpt="550 5.1.1 No such user here"))
    [delivery] = Notifier(mailer=_mailer(controller.port), policy=fast_policy).deliver(notice)
    assert (delivery.ok, delivery.retryable, delivery.attempts) == (False, False, 1)
    assert "answered 550: 5.1.1 No such user here" in (delivery.error or "")


def test_a_temporary_smtp_refusal_is_retried_and_then_delivered(smtp_server: StartSmtp, notice: HandoffNotice,
                                                                 fast_policy: RetryPolicy) -> None:
    controller, box = smtp_server(Mailbox(data_replies=["451 4.3.0 Mail server temporarily busy"]))
    [delivery] = Notifier(mailer=_mailer(controller.port), policy=fast_policy).deliver(notice)
    assert delivery.ok and delivery.attempts == 2
    assert len(box.envelopes) == 1


def test_a_temporary_refusal_that_persists_stays_retryable(smtp_server: StartSmtp, notice: HandoffNotice,
                                                           fast_policy: RetryPolicy) -> None:
    controller, box = smtp_server(Mailbox(data_replies=["452 4.3.1 Insufficient system storage"] * 5))
    [delivery] = Notifier(mailer=_mailer(controller.port), policy=fast_policy).deliver(notice)
    assert (delivery.ok, delivery.retryable, delivery.attempts) == (False, True, 3)
    assert box.envelopes == []


def test_a_malformed_address_is_refused_before_connecting(closed_port: int, notice: HandoffNotice) -> None:
    with pytest.raises(NotifyPermanent, match="not a usable recipient address"):
        _mailer(closed_port).send(notice, "sam.okafor@seller.example\r\nBcc: everyone@seller.example")


def test_an_unreachable_smtp_server_is_retryable(closed_port: int, notice: HandoffNotice) -> None:
    with pytest.raises(NotifyRetryable, match=f"cannot reach smtp://127.0.0.1:{closed_port}"):
        _mailer(closed_port).send(notice, "sam.okafor@seller.example")


def test_an_smtp_server_that_never_greets_times_out_retryable(notice: HandoffNotice) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes the handshake; nobody ever says 220
        mailer = _mailer(silent.getsockname()[1], timeout=0.3)
        with pytest.raises(NotifyRetryable, match=r"did not answer within 0\.3 s"):
            mailer.send(notice, "sam.okafor@seller.example")


def test_starttls_against_a_server_without_it_is_a_clear_settings_error(smtp_server: StartSmtp,
                                                                         notice: HandoffNotice) -> None:
    controller, box = smtp_server()
    with pytest.raises(NotifyPermanent, match="does not support that: STARTTLS extension not supported"):
        _mailer(controller.port, security="starttls").send(notice, "sam.okafor@seller.example")
    assert box.envelopes == []


# -- TLS, with a throwaway certificate for 127.0.0.1 -----------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    yield cert, key


def _contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


def test_starttls_then_login_delivers(smtp_server: StartSmtp, certificate: tuple[Path, Path],
                                      notice: HandoffNotice) -> None:
    server_tls, client_tls = _contexts(certificate)
    controller, box = smtp_server(auth=("notify", SMTP_PASSWORD), tls_context=server_tls, require_starttls=True,
                                  auth_require_tls=True)
    mailer = _mailer(controller.port, security="starttls", username="notify", password=SMTP_PASSWORD,
                     ssl_context=client_tls)
    mailer.send(notice, "sam.okafor@seller.example")
    assert len(box.envelopes) == 1


def test_implicit_tls_delivers(smtp_server: StartSmtp, certificate: tuple[Path, Path], notice: HandoffNotice) -> None:
    server_tls, client_tls = _contexts(certificate)
    controller, box = smtp_server(ssl_context=server_tls)
    _mailer(controller.port, security="ssl", ssl_context=client_tls).send(notice, "sam.okafor@seller.example")
    assert len(box.envelopes) == 1


def test_an_untrusted_certificate_is_a_permanent_tls_error(smtp_server: StartSmtp, certificate: tuple[Path, Path],
                                                           notice: HandoffNotice) -> None:
    server_tls, _ = _contexts(certificate)
    controller, box = smtp_server(tls_context=server_tls, require_starttls=True)
    with pytest.raises(NotifyPermanent, match=r"TLS with smtp://127\.0\.0\.1:\d+ failed .*certificate"):
        _mailer(controller.port, security="starttls").send(notice, "sam.okafor@seller.example")
    assert box.envelopes == []
