"""Geometry of the data-flow diagram of ROUTES.md, drawn from the catalogue (the template draws the SVG).

Why a fixed layout: the seed's figure is not in the seed, and an automatic layout moves boxes whenever the
catalogue changes, so reviewers lose their bearings between runs. Actors sit on a 5x5 grid by zone — the
resident side on the left, the SUT (既存住基システム) in the middle, Juki-Net to the right, convenience-store
issuance at the bottom. An actor the layout does not know (a later catalogue) gets the next free cell, so the
diagram never fails. Arrows between the same two actors are drawn side by side with their numbers staggered;
counter ↔ CS (13/14) bends over the SUT box, which would otherwise hide it.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.catalogue import Catalogue

BOX_W, BOX_H = 164, 56
COLS = (100, 380, 660, 940, 1220)
ROWS = (60, 230, 420, 610, 800)
WIDTH, HEIGHT = 1320, 870
SPACING = 12  # px between parallel arrows
BENT_SPREAD = 2.5  # bent siblings (13/14) run farther apart: a badge on one stays off the other

# (column, row) of each known actor
GRID: dict[str, tuple[int, int]] = {
    "booking": (0, 0), "portal": (1, 0), "immlink": (2, 0), "immigration": (3, 0), "national": (4, 0),
    "card": (4, 1),
    "resident": (0, 2), "counter": (1, 2), "juki": (2, 2), "cs": (3, 2), "pref": (4, 2),
    "others": (1, 3), "addressee": (3, 3), "peer": (4, 3),
    "kiosk": (0, 4), "centre": (1, 4), "certserver": (2, 4), "intermediate": (4, 4),
}
# extra bend (px, perpendicular at the middle) for arrows whose straight line would cross a box
BEND: dict[frozenset[str], float] = {frozenset({"counter", "cs"}): 190.0}


@dataclass(frozen=True, slots=True)
class Box:
    id: str
    x: float  # centre
    y: float
    ja: str
    en: str
    role: str

    @property
    def left(self) -> float:
        return self.x - BOX_W / 2

    @property
    def top(self) -> float:
        return self.y - BOX_H / 2


@dataclass(frozen=True, slots=True)
class ArrowShape:
    n: int
    src: str
    dst: str
    path: str  # SVG path data
    label_x: float
    label_y: float
    line: str  # manual | system
    data_class: str  # green | yellow | blue | none
    bidirectional: bool
    status: str  # pass | fail | notrun


@dataclass(frozen=True, slots=True)
class Diagram:
    width: int
    height: int
    boxes: list[Box]
    arrows: list[ArrowShape]


def text_width(text: str, size: float = 13.0) -> float:
    """Estimated width of ``text`` in px: wide (CJK) characters one em, the others about 0.58 em."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else size * 0.58 for c in text)


def fit(text: str, size: float = 13.0, room: float = BOX_W - 12) -> float | None:
    """The SVG textLength to squeeze ``text`` into a box, or None when it fits as it is."""
    return room if text_width(text, size) > room else None


def _layout(cat: Catalogue) -> dict[str, tuple[float, float]]:
    pos: dict[str, tuple[float, float]] = {}
    taken = {GRID[a] for a in cat.actors if a in GRID}
    free = [(c, r) for r in range(len(ROWS)) for c in range(len(COLS)) if (c, r) not in taken]
    for a in cat.actors:
        cell = GRID.get(a) or (free.pop(0) if free else (len(pos) % len(COLS), len(ROWS) - 1))
        pos[a] = (COLS[cell[0]], ROWS[cell[1]])
    return pos


def _exit(cx: float, cy: float, px: float, py: float, dx: float, dy: float) -> tuple[float, float]:
    """Where a ray from (px, py) (inside the box centred at cx, cy) along (dx, dy) leaves the box."""
    ts: list[float] = []
    for d, p, c, half in ((dx, px, cx, BOX_W / 2 + 3), (dy, py, cy, BOX_H / 2 + 3)):
        if abs(d) > 1e-9:
            ts.extend(t for t in ((c - half - p) / d, (c + half - p) / d) if t > 0)
    t = min(ts) if ts else 0.0
    return px + dx * t, py + dy * t


def _fmt(v: float) -> str:
    return f"{v:.1f}"


LABEL_R = 11.0  # radius of an arrow's number badge
LABEL_GAP = 2.0  # px kept free between two badges


Sampled = tuple[list[tuple[float, float]], float]  # points along another arrow, clearance needed (px)


def _score(x: float, y: float, placed: list[tuple[float, float]], boxes: list[Box], others: list[Sampled]
           ) -> float:
    """How far (px) a badge at (x, y) stays clear of placed badges, boxes and other arrows' lines (>= 0: ok)."""
    worst = math.inf
    for px, py in placed:
        worst = min(worst, math.hypot(x - px, y - py) - (2 * LABEL_R + LABEL_GAP))
    for bx in boxes:
        dx, dy = abs(x - bx.x) - (BOX_W / 2 + LABEL_R), abs(y - bx.y) - (BOX_H / 2 + LABEL_R)
        worst = min(worst, max(dx, dy))
    for pts, clearance in others:
        worst = min(worst, min(math.hypot(x - qx, y - qy) for qx, qy in pts) - clearance)
    return worst


def _place(t0: float, at: Callable[[float], tuple[float, float]], placed: list[tuple[float, float]],
           boxes: list[Box], others: list[Sampled]) -> tuple[float, float]:
    """The badge position nearest to ``t0`` along the arrow that is clear; else the clearest one."""
    best, best_score = at(t0), -math.inf
    for step in range(25):
        t = t0 + (step + 1) // 2 * 0.03 * (1 if step % 2 else -1)
        if 0.08 <= t <= 0.92:
            x, y = at(t)
            sc = _score(x, y, placed, boxes, others)
            if sc >= 0:
                return x, y
            if sc > best_score:
                best, best_score = (x, y), sc
    return best


def build(cat: Catalogue, status: Mapping[int, str]) -> Diagram:
    """Boxes and arrow shapes for every arrow of the catalogue that has end points (the used ones).

    Number badges are placed in arrow order at their staggered position, moved along their own arrow when
    that spot would cover a badge already placed or an actor box (13 under 14, 23/24/30/31 before)."""
    pos = _layout(cat)
    boxes = [Box(a.id, *pos[a.id], a.ja, a.en, a.role) for a in cat.actors.values()]
    drawn = [a for a in cat.arrows.values() if a.src and a.dst]
    groups: dict[frozenset[str], list[int]] = {}
    for a in drawn:
        assert a.src is not None and a.dst is not None
        groups.setdefault(frozenset({a.src, a.dst}), []).append(a.n)
    shapes: list[ArrowShape] = []
    placed: list[tuple[float, float]] = []
    todo: list[tuple[Any, frozenset[str], str, float, Callable[[float], tuple[float, float]]]] = []
    for a in drawn:
        assert a.src is not None and a.dst is not None
        key = frozenset({a.src, a.dst})
        members = groups[key]
        i, k = members.index(a.n), len(members)
        (x0, y0), (x1, y1) = pos[a.src], pos[a.dst]
        # a perpendicular that does not depend on direction, so 8 and 9 do not overlap
        (ax, ay), (bx, by) = sorted([(x0, y0), (x1, y1)])
        length = math.hypot(bx - ax, by - ay) or 1.0
        nx, ny = -(by - ay) / length, (bx - ax) / length
        off = (i - (k - 1) / 2) * SPACING * (BENT_SPREAD if key in BEND else 1.0)
        sx, sy, ex, ey = x0 + nx * off, y0 + ny * off, x1 + nx * off, y1 + ny * off
        bend = BEND.get(key, 0.0)
        t = (i + 1) / (k + 1)
        at: Callable[[float], tuple[float, float]]
        if bend:
            # control point twice the bend away, so the curve's middle is `bend` away; always upward
            sign = -2.0 if ny >= 0 else 2.0
            mx, my = (sx + ex) / 2 + sign * nx * bend, (sy + ey) / 2 + sign * ny * bend
            p0 = _exit(x0, y0, sx, sy, mx - sx, my - sy)
            p2 = _exit(x1, y1, ex, ey, mx - ex, my - ey)

            def at(u: float, p0: tuple[float, float] = p0, p2: tuple[float, float] = p2, mx: float = mx,
                   my: float = my) -> tuple[float, float]:
                return ((1 - u) ** 2 * p0[0] + 2 * (1 - u) * u * mx + u ** 2 * p2[0],
                        (1 - u) ** 2 * p0[1] + 2 * (1 - u) * u * my + u ** 2 * p2[1])
            path = f"M{_fmt(p0[0])},{_fmt(p0[1])} Q{_fmt(mx)},{_fmt(my)} {_fmt(p2[0])},{_fmt(p2[1])}"
        else:
            p0 = _exit(x0, y0, sx, sy, ex - sx, ey - sy)
            p2 = _exit(x1, y1, ex, ey, sx - ex, sy - ey)
            # labels of parallel arrows are staggered along the visible segment, in a fixed order
            (ux, uy), (vx, vy) = (p0, p2) if (x0, y0) <= (x1, y1) else (p2, p0)

            def at(u: float, ux: float = ux, uy: float = uy, vx: float = vx, vy: float = vy
                   ) -> tuple[float, float]:
                return ux + (vx - ux) * u, uy + (vy - uy) * u
            path = f"M{_fmt(p0[0])},{_fmt(p0[1])} L{_fmt(p2[0])},{_fmt(p2[1])}"
        todo.append((a, key, path, t, at))
    lines = {a.n: [at(u / 80) for u in range(81)] for a, _, _, _, at in todo}
    for a, key, path, t, at in todo:
        # parallel straight siblings are 12 px apart (a badge always touches them): ignored; bent siblings
        # converge towards their ends: the badge stays where the other curve passes outside it (13/14)
        others = [(lines[m.n], LABEL_R + 2 if k2 != key else LABEL_R + 0.5)
                  for m, k2, _, _, _ in todo if m.n != a.n and (k2 != key or key in BEND)]
        lx, ly = _place(t, at, placed, boxes, others)
        placed.append((lx, ly))
        shapes.append(ArrowShape(
            n=a.n, src=a.src or "", dst=a.dst or "", path=path, label_x=round(lx, 1), label_y=round(ly, 1),
            line=a.line or "system", data_class=a.data_class or "none", bidirectional=a.bidirectional,
            status=status.get(a.n, "notrun"),
        ))
    return Diagram(WIDTH, HEIGHT, boxes, shapes)
