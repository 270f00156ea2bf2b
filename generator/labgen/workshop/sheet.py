"""The printable sheet: a card per seat (its name, its attendee, its link and the link's
QR code), and the join page's card for the projector.

The QR codes are segno's (pure Python, no dependencies), written as inline SVG into the
page: the sheet prints from a laptop with no network, and nothing is fetched. A card
carries its seat's token, so the sheet is the instructor's page only (under /i/), and
is never cached; after a re-issue the sheet shows the new link.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import segno
from markupsafe import Markup

from labgen.workshop.join import SeatState


def seat_url(base: str, seat: str, token: str) -> str:
    """A seat's link, as `serve` prints it.

    >>> seat_url("http://10.0.0.5:8080", "pf-03", "abc")
    'http://10.0.0.5:8080/w/pf-03/abc/'
    """
    return f"{base}/w/{seat}/{token}/"


def join_url(base: str, code: str) -> str:
    """The join page's short URL, the one the instructor shows the room.

    >>> join_url("https://room.example", "k7m2qa")
    'https://room.example/j/k7m2qa'
    """
    return f"{base}/j/{code}"


def qr_svg(text: str) -> Markup:
    """`text` as a QR code, an inline SVG element that scales to its box (a viewBox,
    no fixed size); error correction M, so a crease or a smudge on paper still reads.

    >>> str(qr_svg("http://x/")).startswith("<svg")
    True
    """
    code = segno.make(text, error="m", boost_error=False)
    # Our own URL, escaped by segno where it appears (a title): safe to inline.
    return Markup(code.svg_inline(scale=1, border=4, omitsize=True, dark="#000", light="#fff"))


@dataclass(frozen=True)
class Card:
    """What a card shows: whose seat, its link, and the link as a QR code."""

    seat: str
    attendee: str
    how: str
    link: str
    qr: Markup


def cards(base: str, seats: Iterable[SeatState]) -> list[Card]:
    """A card per seat, in seat order."""
    made = []
    for state in seats:
        link = seat_url(base, state.seat, state.token)
        made.append(Card(state.seat, state.attendee, state.how, link, qr_svg(link)))
    return made


def join_card(base: str, code: str) -> Card:
    """The join page's card: the room's short URL and its QR code."""
    link = join_url(base, code)
    return Card("", "", "", link, qr_svg(link))
