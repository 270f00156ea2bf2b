"""checklib's pure parts: the DNS question and answer `resolve` builds and reads, the
chains of a table listing, the neighbours' MACs, the namespace a command runs in.

What needs a machine (the commands, their errors) is tests/e2e/test_checklib.py's.
"""

from __future__ import annotations

import struct

import pytest
from labgen.inmachine import checklib

QUERY_ALPHA = bytes.fromhex("12340100000100000000000005616c7068610000010001")


def answer(
    question: bytes, records: list[tuple[int, bytes]], rcode: int = 0, ident: int = 0x1234
) -> bytes:
    """A reply to `question` (its own id replaced by `ident`) carrying `records`
    (type, data), each named by a pointer to the question's name."""
    header = struct.pack("!6H", ident, 0x8180 | rcode, 1, len(records), 0, 0)
    body = b"".join(
        b"\xc0\x0c" + struct.pack("!2HIH", kind, 1, 600, len(data)) + data for kind, data in records
    )
    return header + question[12:] + body


def test_the_question_asks_one_record_with_recursion() -> None:
    query = checklib.dns_query("alpha.labnet.", "AAAA", ident=7)
    ident, flags, questions, answers, _, _ = struct.unpack("!6H", query[:12])
    assert (ident, flags, questions, answers) == (7, 0x0100, 1, 0)
    assert query[12:] == b"\x05alpha\x06labnet\x00" + struct.pack("!2H", 28, 1)


@pytest.mark.parametrize("name", ["", "a..b", "x" * 64, "é" * 32])
def test_a_name_dns_cannot_carry_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is not a DNS name"):
        checklib.dns_query(name)


def test_an_answer_gives_its_addresses_and_skips_a_cname() -> None:
    cname = b"\x03web\xc0\x0c"
    reply = answer(
        QUERY_ALPHA,
        [(5, cname), (1, bytes([10, 30, 0, 2])), (1, bytes([10, 30, 0, 3]))],
    )
    assert checklib.dns_answers(reply, "A", ident=0x1234) == ("NOERROR", ["10.30.0.2", "10.30.0.3"])


def test_an_aaaa_answer_and_a_name_the_server_does_not_know() -> None:
    six = bytes.fromhex("fd000000000000000000000000000002")
    assert checklib.dns_answers(answer(QUERY_ALPHA, [(28, six)]), "AAAA") == (
        "NOERROR",
        ["fd00::2"],
    )
    # An A record in an AAAA answer is not an IPv6 address.
    assert checklib.dns_answers(answer(QUERY_ALPHA, [(1, b"\n\x1e\x00\x02")]), "AAAA")[1] == []
    assert checklib.dns_answers(answer(QUERY_ALPHA, [], rcode=3)) == ("NXDOMAIN", [])
    assert checklib.dns_answers(answer(QUERY_ALPHA, [], rcode=9)) == ("RCODE 9", [])


def test_what_is_no_answer_is_a_value_error() -> None:
    reply = answer(QUERY_ALPHA, [(1, bytes([10, 30, 0, 2]))])
    with pytest.raises(ValueError, match="truncated or malformed"):
        checklib.dns_answers(reply[:-6])
    with pytest.raises(ValueError, match="not an answer to the question asked"):
        checklib.dns_answers(reply, ident=0x4321)
    with pytest.raises(ValueError, match="not an answer to the question asked"):
        checklib.dns_answers(QUERY_ALPHA)  # a question: QR is not set


def test_the_chains_of_a_table_listing() -> None:
    listing = (
        "-P INPUT ACCEPT\n-P FORWARD DROP\n-N DOCKER\n-N DOCKER-USER\n-A FORWARD -j DOCKER-USER"
    )
    assert checklib._table_chains(listing) == ["INPUT", "FORWARD", "DOCKER", "DOCKER-USER"]


def test_neighbour_macs_keeps_the_resolved_entries() -> None:
    entries = [
        {"dst": "10.30.0.1", "dev": "eth0", "lladdr": "02:42:0a:1e:00:01", "state": ["STALE"]},
        {"dst": "10.30.0.7", "dev": "eth0", "state": ["INCOMPLETE"]},
        {"dst": "fe80::1", "dev": "eth0", "lladdr": "02:42:0a:1e:00:01", "router": None},
    ]
    assert checklib.neighbour_macs(entries) == {
        "10.30.0.1": "02:42:0a:1e:00:01",
        "fe80::1": "02:42:0a:1e:00:01",
    }


def test_a_command_runs_in_the_namespace_asked_for_and_says_where() -> None:
    assert checklib._in_netns("ip -j neigh show", pid=4242) == "nsenter -t 4242 -n ip -j neigh show"
    assert checklib._in_netns("ip -j link", netns="red ns") == "ip netns exec 'red ns' ip -j link"
    assert checklib._where(4242, None) == "in the network namespace of pid 4242"
    assert checklib._where(None, None) == "in the machine's network namespace"
    with pytest.raises(ValueError, match="give pid or netns, not both"):
        checklib._in_netns("true", pid=1, netns="x")


def test_resolve_refuses_a_record_type_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="rtype must be one of A, AAAA, not 'MX'"):
        checklib.resolve(None, "alpha", "MX")
