"""Helpers for lab checks: the seed's recurring questions, asked through testinfra's host.

Each takes testinfra's `host` fixture and quotes what it puts in a command.
"""

from __future__ import annotations

import json
import shlex
from typing import Any


def rules(host: Any, table: str, chain: str | None = None) -> list[str]:
    """`iptables -t TABLE -S [CHAIN]` as a list of rules, without iptables' warnings.

    >>> "-P PREROUTING ACCEPT" in rules(host, "nat", "PREROUTING")  # doctest: +SKIP
    True
    """
    return [r for r in host.iptables.rules(table, chain) if not r.startswith("#")]


def links(host: Any) -> list[dict[str, Any]]:
    """`ip -j link`: every interface with its index, master, link index (veth peer)."""
    return list(json.loads(host.check_output("ip -j link show")))


def ipv4_addresses(host: Any, dev: str) -> list[str]:
    """The IPv4 addresses of `dev` as 'a.b.c.d/len'; empty when it does not exist.

    >>> ipv4_addresses(host, "docker0")  # doctest: +SKIP
    ['172.17.0.1/16']
    """
    cmd = host.run(f"ip -j -4 addr show dev {shlex.quote(dev)}")
    if cmd.rc != 0:
        return []
    return [
        f"{a['local']}/{a['prefixlen']}"
        for iface in json.loads(cmd.stdout)
        for a in iface.get("addr_info", [])
    ]


def container_ip(host: Any, name: str, network: str = "bridge") -> str | None:
    """The container's address on a Docker network, or None when it is not running."""
    fmt = "{{(index .NetworkSettings.Networks " + json.dumps(network) + ").IPAddress}}"
    cmd = host.run(f"docker inspect -f {shlex.quote(fmt)} {shlex.quote(name)}")
    if cmd.rc != 0:
        return None
    return str(cmd.stdout).strip() or None
