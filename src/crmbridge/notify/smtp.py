"""E-mail channel: one message per notice through an SMTP server (submission with STARTTLS, implicit TLS,
or a plain local relay), with a timeout on every step and SMTP reply codes sorted into retryable (4xx)
and permanent (5xx). The password never leaves ``login``: not in errors, not in logs."""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal

from crmbridge.notify.errors import NotifyError, NotifyPermanent, NotifyRetryable
from crmbridge.notify.notice import HandoffNotice
from crmbridge.notify.redact import Scrubber
from crmbridge.notify.render import email_message

Security = Literal["starttls", "ssl", "none"]
_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]]+@[^@\s<>,;:\"()\[\]]+$")


def valid_address(address: str | None) -> bool:
    """A bare ``local@domain`` with nothing that could smuggle in another header or recipient."""
    return bool(address) and _ADDRESS.match(address or "") is not None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SmtpMailer:
    """Sends notices by e-mail. ``security``: ``starttls`` (port 587), ``ssl`` (implicit TLS, port 465),
    or ``none`` (a trusted relay on the local network; the password, if any, then travels in clear)."""

    name = "email"

    def __init__(self, host: str, port: int = 587, username: str | None = None, password: str | None = None,
                 security: Security = "starttls", sender: str = "", *, timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None, clock: Callable[[], datetime] = _utcnow) -> None:
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(f"email: security must be starttls, ssl or none, not {security!r}")
        if not sender:
            raise ValueError("email: a sender address (CRMBRIDGE_NOTIFY_FROM) is required")
        self.host, self.port, self.security, self.sender = host, port, security, sender
        self.username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._clock = clock
        self._scrub = Scrubber([password])
        self.target = f"smtp://{host}:{port}"

    def __repr__(self) -> str:
        return f"SmtpMailer(host={self.host!r}, port={self.port}, security={self.security!r})"

    def send(self, notice: HandoffNotice, recipient: str | None = None) -> None:
        """Mail ``notice`` to ``recipient``; raises ``NotifyRetryable`` or ``NotifyPermanent`` when it cannot."""
        if not valid_address(recipient):
            raise NotifyPermanent(f"email: not a usable recipient address: {recipient!r}", channel=self.name)
        assert recipient is not None
        message = email_message(notice, sender=self.sender, recipient=recipient, date=self._clock())
        try:
            self._submit(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise self._refused(exc) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise NotifyPermanent(f"email: {self.target} does not support that: {self._clean(exc)}",
                                  channel=self.name) from None
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib reports a read timeout as a disconnect
                raise self._unreachable(exc.__context__) from None
            raise NotifyRetryable(f"email: {self.target} closed the connection: {self._clean(exc)}",
                                  channel=self.name) from None
        except smtplib.SMTPResponseException as exc:
            raise self._reply(exc.smtp_code, exc.smtp_error, what=type(exc).__name__) from None
        except ssl.SSLError as exc:
            # Certificate or protocol mismatch (e.g. "ssl" against a STARTTLS port): a settings problem.
            raise NotifyPermanent(f"email: TLS with {self.target} failed ({type(exc).__name__}: "
                                  f"{self._clean(exc)})", channel=self.name) from None
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            raise self._unreachable(exc) from None

    def _submit(self, message: EmailMessage) -> None:
        smtp = self._connect()
        try:
            if self.security == "starttls":
                smtp.starttls(context=self._context())
            if self.username:
                smtp.login(self.username, self._password or "")
            smtp.send_message(message)
        except BaseException:
            smtp.close()  # no polite QUIT: after a timeout it would wait as long again
            raise
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # the message was accepted; a rude goodbye changes nothing

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _clean(self, exc: BaseException | bytes | str) -> str:
        text = exc.decode("utf-8", "replace") if isinstance(exc, bytes) else str(exc)
        return self._scrub(" ".join(text.split()))[:200] or type(exc).__name__

    def _reply(self, code: int, text: bytes | str, *, what: str) -> NotifyError:
        message = f"email: {self.target} answered {code}: {self._clean(text)}"
        if what == "SMTPAuthenticationError" and code >= 500:
            message = f"email: {self.target} refused the login ({code}): check the SMTP username and password"
        if 400 <= code < 500:
            return NotifyRetryable(message, channel=self.name, status=code)
        return NotifyPermanent(message, channel=self.name, status=code)

    def _refused(self, exc: smtplib.SMTPRecipientsRefused) -> NotifyError:
        code, text = next(iter(exc.recipients.values()), (550, b"refused"))
        return self._reply(code, text, what="SMTPRecipientsRefused")

    def _unreachable(self, exc: BaseException) -> NotifyRetryable:
        if isinstance(exc, TimeoutError):
            return NotifyRetryable(f"email: {self.target} did not answer within {self.timeout:g} s", channel=self.name)
        return NotifyRetryable(f"email: cannot reach {self.target} ({type(exc).__name__}: {self._clean(exc)})",
                               channel=self.name)
