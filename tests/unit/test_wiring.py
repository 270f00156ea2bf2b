"""labgen.network.wiring on what GATHER_COMMAND printed on real lab machines (Docker 20.10):
netns after its last step (host-veth), port-forwarding after publish-port; and `ip -j`
output of a 28.5 machine from /work/engines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from labgen.network import drawing, wiring
from labgen.verbs import draw

DATA = Path(__file__).parent / "data" / "wiring"


def gathered(name: str) -> wiring.Wiring:
    return wiring.parse((DATA / name).read_text())


def test_netns_nstest_is_one_namespace_linked_to_docker0() -> None:
    w = gathered("netns-20.10-host-veth.txt")
    assert len(w.namespaces) == 2
    nstest = w.find("netns nstest")
    assert nstest is not None and nstest is w.find("container nstest")
    eth0 = next(i for i in nstest.interfaces if i.name == "eth0")
    assert eth0.ipv4 == ("172.17.0.2/16",) and eth0.kind == "veth"
    machine = w.find("the machine")
    assert machine is not None
    peer = w.peer(nstest.inode, eth0.index)
    assert peer is not None and peer.inode == machine.inode
    veth = machine.interface(peer.index)
    assert veth is not None and veth.master == "docker0" and veth.name.startswith("veth")
    # The two ends name each other, as `ip a` shows them: eth0@ifN, vethX@ifM.
    assert eth0.label == f"eth0@if{veth.index}" and veth.label.endswith(f"@if{eth0.index}")
    docker0 = next(i for i in machine.interfaces if i.name == "docker0")
    assert docker0.kind == "bridge" and docker0.ipv4 == ("172.17.0.1/16",)


def test_published_port_and_docker_proxy() -> None:
    w = gathered("port-forwarding-20.10-publish-port.txt")
    assert w.published == (wiring.Published("http-server", "5000/tcp", "0.0.0.0:5000"),)
    machine, server = w.find("the machine"), w.find("container http-server")
    assert machine is not None and server is not None
    assert [(li.address, li.processes) for li in machine.listeners] == [
        ("0.0.0.0:5000", ("docker-proxy",))
    ]
    assert [li.processes for li in server.listeners] == [("python3",)]


def test_28_5_host_side_from_ip_j_link() -> None:
    """28.5 numbers the container's eth0 2 and the veth 3 (20.10: 3 and 4)."""
    text = (DATA / "28.5-netns-link-netns-ip-j-d-link.txt").read_text()
    links = {i.name: i for i in wiring.parse_links(json.loads(text))}
    veth = next(i for name, i in links.items() if name.startswith("veth"))
    assert (veth.kind, veth.master, veth.index, veth.peer_index) == ("veth", "docker0", 3, 2)
    assert links["docker0"].kind == "bridge"
    # Without -d there is no kind: a master of ports is taken for a bridge.
    plain = (DATA / "28.5-netns-link-netns-ip-j-addr.txt").read_text()
    guessed = {i.name: i for i in wiring.parse_links(json.loads(plain))}
    assert guessed["docker0"].kind == "bridge" and guessed["docker0"].ipv4 == ("172.17.0.1/16",)


def test_svg_names_namespaces_ends_and_addresses() -> None:
    w = gathered("netns-20.10-host-veth.txt")
    svg = draw.render(w, "svg", "netns after host-veth").decode()
    ET.fromstring(svg)  # well-formed
    for text in ("netns nstest", "eth0@if", "172.17.0.2/16", "docker0", "veth pair"):
        assert text in svg, text


def test_dot_labels_escape_names_and_draw_the_published_port() -> None:
    w = gathered("port-forwarding-20.10-publish-port.txt")
    odd = wiring.Namespace(1, "netns", ("netns a<b&c>",), ())
    source = drawing.to_dot(wiring.Wiring((*w.namespaces, odd), w.pairs, w.published)).source
    assert "netns a&lt;b&amp;c&gt;" in source
    assert " -p 5000:5000" in source and "dir=forward" in source


def test_png_on_request() -> None:
    png = draw.render(gathered("port-forwarding-20.10-publish-port.txt"), "png")
    assert png.startswith(b"\x89PNG")


def test_cut_short_output_is_refused() -> None:
    raw = (DATA / "netns-20.10-host-veth.txt").read_text()
    with pytest.raises(wiring.WiringError, match="cut short"):
        wiring.parse(raw.replace(f"{wiring.MARK} end", ""))


# --- a user-defined bridge: its network's name, and veth lines that do not cross ---------
# Recorded on a user-bridge machine (Docker 20.10) after start-alpha, with beta and delta
# started on labnet and gamma on docker0 by hand: two bridges, four containers.
FOUR = "user-bridge-20.10-four-containers.txt"


def test_docker_networks_name_their_bridges() -> None:
    w = gathered(FOUR)
    labnet = next(n for n in w.networks if n.name == "labnet")
    assert labnet.bridge == "br-" + labnet.id[:12]
    assert w.network_of("docker0") == next(n for n in w.networks if n.name == "bridge")
    machine = w.find("the machine")
    assert machine is not None and labnet.bridge in {i.name for i in machine.interfaces}


def svg_texts(svg: bytes) -> list[str]:
    """The text of every <text> of an SVG (entities such as &#45; read back)."""
    return [t.text or "" for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]


def test_a_bridge_is_labelled_with_its_docker_network() -> None:
    w = gathered(FOUR)
    labnet = next(n for n in w.networks if n.name == "labnet")
    texts = svg_texts(draw.render(w, "svg"))
    assert f"{labnet.bridge} (labnet)" in texts and "docker0 (bridge)" in texts, texts
    # Gathered before networks were: the bridge keeps its bare name.
    assert "docker0" in svg_texts(draw.render(gathered("netns-20.10-host-veth.txt")))


def layout(w: wiring.Wiring) -> dict[str, tuple[float, float]]:
    """Where dot puts each node (its centre), from its JSON output."""
    data = json.loads(drawing.to_dot(w).pipe(format="json", engine="dot"))
    found = {}
    for obj in data["objects"]:
        if "pos" in obj:
            x, y = obj["pos"].split(",")
            found[obj["name"]] = (float(x), float(y))
    return found


def node(end: wiring.End) -> str:
    return f"n{end.inode}_{end.index}"


Line = tuple[float, float]  # a veth line as the x of its upper end and of its lower end


def crossed(lines: list[Line]) -> list[tuple[int, int]]:
    """The pairs of lines (between two rows) whose ends are in opposite orders.

    >>> crossed([(0, 0), (1, 1)]), crossed([(0, 1), (1, 0)])
    ([], [(0, 1)])
    """
    return [
        (i, j)
        for i, (top1, bottom1) in enumerate(lines)
        for j, (top2, bottom2) in enumerate(lines)
        if i < j and (top1 - top2) * (bottom1 - bottom2) <= 0
    ]


def veth_lines(w: wiring.Wiring) -> tuple[list[tuple[wiring.End, wiring.End]], list[Line]]:
    """Each veth pair from the machine's end to the other, and its line as dot lays it."""
    machine = w.find("the machine")
    assert machine is not None
    at = layout(w)
    pairs = [(a, b) if a.inode == machine.inode else (b, a) for a, b in w.pairs]
    # dot's y grows upwards: the machine's end is above the other.
    for top, bottom in pairs:
        assert at[node(top)][1] > at[node(bottom)][1], (top, bottom)
    return pairs, [(at[node(top)][0], at[node(bottom)][0]) for top, bottom in pairs]


@pytest.mark.parametrize(
    "name", [FOUR, "netns-20.10-host-veth.txt", "port-forwarding-20.10-publish-port.txt"]
)
def test_each_container_sits_under_its_veth_and_no_lines_cross(name: str) -> None:
    w = gathered(name)
    pairs, lines = veth_lines(w)
    assert pairs, "the recording has veth pairs"
    assert crossed(lines) == [], [(pairs[i], pairs[j]) for i, j in crossed(lines)]
    # Bridges above their ports, and the lines to their ports do not cross either.
    machine = w.find("the machine")
    assert machine is not None
    at = layout(w)
    names = {i.name: i for i in machine.interfaces}
    ports = []
    for port in (i for i in machine.interfaces if i.master in names):
        bridge, end = (
            at[f"n{machine.inode}_{names[str(port.master)].index}"],
            at[f"n{machine.inode}_{port.index}"],
        )
        assert bridge[1] > end[1], port
        ports.append((bridge[0], end[0]))
    # Lines from one bridge share their upper end: only lines from two bridges can cross.
    assert [(i, j) for i, j in crossed(ports) if ports[i][0] != ports[j][0]] == [], ports


def test_the_crossing_check_sees_crossed_lines() -> None:
    """Control: the four lines as drawn, with the containers' row reversed, all cross."""
    _, lines = veth_lines(gathered(FOUR))
    tops = sorted(top for top, _ in lines)
    bottoms = sorted((bottom for _, bottom in lines), reverse=True)
    assert len(crossed(list(zip(tops, bottoms, strict=True)))) == 6
