"""Hand-off notifications: tell the owner and the team that a lead is sales-ready, by Slack, Teams or e-mail.

``Notifier.from_settings(load_notify_settings()).deliver(notice)`` returns one ``Delivery`` per channel
and never raises; failed deliveries marked ``retryable`` are for the caller's outbox to retry later
with ``Notifier.deliver_to``.
"""

from crmbridge.notify.errors import NotifyError, NotifyPermanent, NotifyRetryable
from crmbridge.notify.notice import Delivery, HandoffNotice
from crmbridge.notify.notifier import Channel, Notifier, RetryPolicy
from crmbridge.notify.render import email_message, headline, plain_text, slack_message, teams_message
from crmbridge.notify.settings import NotifySettings, load_notify_settings
from crmbridge.notify.smtp import SmtpMailer
from crmbridge.notify.webhooks import SlackWebhook, TeamsWebhook

__all__ = [
    "Channel",
    "Delivery",
    "HandoffNotice",
    "Notifier",
    "NotifyError",
    "NotifyPermanent",
    "NotifyRetryable",
    "NotifySettings",
    "RetryPolicy",
    "SlackWebhook",
    "SmtpMailer",
    "TeamsWebhook",
    "email_message",
    "headline",
    "load_notify_settings",
    "plain_text",
    "slack_message",
    "teams_message",
]
