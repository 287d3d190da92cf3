"""The sandbox host: serves every installed connector's fake CRM API on one loopback port.

Vendor behaviour (routes, shapes, limits) lives in each connector's own sandbox; this package holds
what they share: the host and its control routes, fault injection, rolling-window limiters, and stats.
"""

from crmbridge.sandbox.faults import Fault, FaultInjector, parse_faults
from crmbridge.sandbox.ratelimit import RollingWindow
from crmbridge.sandbox.server import SandboxServer, VendorSandbox, build_app, serve
from crmbridge.sandbox.stats import SandboxStats
from crmbridge.sandbox.webhooks import DeliveryPolicy, Target, WebhookDispatcher
from crmbridge.sandbox.world import World, generate_world

__all__ = [
    "DeliveryPolicy",
    "Fault",
    "FaultInjector",
    "RollingWindow",
    "SandboxServer",
    "SandboxStats",
    "Target",
    "VendorSandbox",
    "WebhookDispatcher",
    "World",
    "build_app",
    "generate_world",
    "parse_faults",
    "serve",
]
