"""The records the hosts verbs return (ui/hosts.py prints them; ui imports no verb)."""

from __future__ import annotations

from dataclasses import dataclass

from labgen.hosts.probe import HostReport
from labgen.hosts.registry import Host


@dataclass(frozen=True)
class HostAdded:
    """A host just registered: what its first contact found and the host key recorded."""

    host: Host
    report: HostReport
    host_key: str
