"""Small generated attachments: CSV sheets, a plain-text note and a hand-encoded PNG chart."""

import random
import struct
import zlib
from collections.abc import Callable
from typing import NamedTuple


class Attachment(NamedTuple):
    filename: str
    maintype: str
    subtype: str
    data: bytes


def _csv(header: str, rows: list[str]) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


def _numbers(rng: random.Random) -> Attachment:
    rows = [
        f"{m},{rng.randint(380, 520) * 1000},{rng.randint(290, 410) * 1000}" for m in ("January", "February", "March")
    ]
    return Attachment("quarter-numbers.csv", "text", "csv", _csv("month,revenue_eur,costs_eur", rows))


def _export(rng: random.Random) -> Attachment:
    rows = [
        f"{1000 + n},customer-{rng.randint(100, 999)},2025-0{rng.randint(1, 9)}-1{n},{rng.choice(('active', 'closed'))}"
        for n in range(8)
    ]
    return Attachment("export-sample.csv", "text", "csv", _csv("id,account,created,status", rows))


def _trip(rng: random.Random) -> Attachment:
    items = ("Flights", "Apartment", "Dinner Friday", "Museum tickets", "Taxi to airport")
    rows = [f"{item},{rng.choice(('Alex', 'Sam', 'Demo'))},{rng.randint(12, 420)}.00" for item in items]
    return Attachment("trip-costs.csv", "text", "csv", _csv("item,paid_by,amount_eur", rows))


def _invoice(rng: random.Random) -> Attachment:
    rows = [
        f"{item},{rng.randint(1, 40)},{rng.randint(2, 90)}.{rng.randint(0, 99):02d}"
        for item in ("Compute", "Storage", "Egress", "Support")
    ]
    return Attachment("invoice-items.csv", "text", "csv", _csv("item,quantity,amount_eur", rows))


def _notes(rng: random.Random) -> Attachment:
    actions = rng.sample(
        ("Write up ordering guarantees", "Benchmark the consumer", "Update the ADR", "Ask security"), 3
    )
    text = "Design review notes\n\nDecisions\n- Go with events for the sync path\n\nActions\n" + "".join(
        f"- {a}\n" for a in actions
    )
    return Attachment("design-review-notes.txt", "text", "plain", text.replace("\n", "\r\n").encode())


def _chart(rng: random.Random) -> Attachment:
    return Attachment("completion-chart.png", "image", "png", _bar_chart_png([rng.randint(12, 56) for _ in range(6)]))


def _bar_chart_png(bars: list[int], *, width: int = 96, height: int = 64) -> bytes:
    """A tiny RGB bar chart, encoded by hand: PNG is zlib-compressed rows behind three chunks."""
    slot = width // len(bars)
    rows = b"".join(
        b"\x00"  # filter type "none" for the row
        + b"".join(
            b"\x2f\x6f\xeb"
            if x // slot < len(bars) and x % slot > 2 and height - y <= bars[x // slot]
            else b"\xff\xff\xff"
            for x in range(width)
        )
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# Keyed by Topic.attachment; each draws its contents from the thread's random state.
ATTACHMENTS: dict[str, Callable[[random.Random], Attachment]] = {
    "numbers": _numbers,
    "export": _export,
    "trip": _trip,
    "invoice": _invoice,
    "notes": _notes,
    "chart": _chart,
}
