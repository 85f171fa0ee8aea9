"""What makes a matplotlib figure unreadable, as far as matplotlib can tell: after drawing it,
the window extents of its tick labels, axis labels, titles, annotations and texts, and legends
(each legend one box) must not overlap one another nor leave the figure; tick labels and text
labels that are numbers (frame numbers, seconds) must grow left to right (an axis of frames that
runs 20...113 then 38...94 holds two captures or panels in one); no tick needs an offset ("1e-5")
added to be read; a log axis says so in its label;
legend entries are words, not identifiers or abbreviations ("unit attention", not "ua")."""
from __future__ import annotations

import re
from typing import List

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")  # 113, 1,024, -3, 0.5 (not 10.0.0.11)


def number(text: str):
    """The number a label shows, or None."""
    plain = text.replace("\u2212", "-").replace(",", "")
    return float(plain) if NUMBER.match(plain) else None
ABBREVIATIONS = re.compile(r"\bua\b")  # "unit attention": say what it is


def _visible(artist) -> bool:
    return artist.get_visible() and (not hasattr(artist, "get_text") or artist.get_text().strip() != "")


def drawn_ticks(axis, which, minor=True):
    """The tick labels matplotlib draws: the locator's ticks within the view limits."""
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) * 1e-9
    ticks = axis.get_majorticklabels() + (axis.get_minorticklabels() if minor else [])
    return [t for t in ticks if _visible(t) and lo - span <= t.get_position()[0 if which == "x" else 1] <= hi + span]


def labels(fig):
    """(name, artist, axes) of every label of `fig` a reader reads."""
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        name = ax.get_title() or ax.get_label() or "axes %d" % fig.axes.index(ax)
        for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            out += [("%s: %s tick %r" % (name, which, t.get_text()), t, ax) for t in drawn_ticks(axis, which)]
            if _visible(axis.get_offset_text()):  # "1e-5" or "+1.7e9" to add to the ticks
                out.append(("%s: %s axis offset %r" % (name, which, axis.get_offset_text().get_text()),
                            axis.get_offset_text(), ax))
            if _visible(axis.label):
                out.append(("%s: %s label" % (name, which), axis.label, ax))
        for t in (ax.title, ax._left_title, ax._right_title):
            if _visible(t):
                out.append(("%s: title" % name, t, ax))
        out += [("%s: text %r" % (name, t.get_text()), t, ax) for t in ax.texts if _visible(t)]
        if ax.get_legend() is not None and ax.get_legend().get_visible():
            out.append(("%s: legend" % name, ax.get_legend(), ax))
    out += [("figure text %r" % t.get_text(), t, None) for t in fig.texts if _visible(t)]
    out += [("figure legend", lg, None) for lg in fig.legends if lg.get_visible()]
    return out


def extent(artist, renderer):
    """Where an artist's text is drawn (an annotation's text only, not its leader line)."""
    from matplotlib.text import Annotation, Text

    if isinstance(artist, Annotation):
        artist.update_positions(renderer)
        return Text.get_window_extent(artist, renderer)
    return artist.get_window_extent(renderer)


def problems(fig, tolerance: float = 0.5) -> List[str]:
    """What is unreadable in `fig`; empty when nothing is."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    boxes = [(name, extent(a, renderer), a, ax) for name, a, ax in labels(fig)]
    page = fig.bbox
    for name, box, _, _ in boxes:
        if (box.x0 < page.x0 - tolerance or box.y0 < page.y0 - tolerance or box.x1 > page.x1 + tolerance
                or box.y1 > page.y1 + tolerance):
            found.append("outside the figure: %s" % name)
    for i, (n1, b1, _, _) in enumerate(boxes):
        shrunk = b1.padded(-tolerance)
        for n2, b2, _, _ in boxes[i + 1:]:
            if shrunk.overlaps(b2.padded(-tolerance)):
                found.append("overlap: %s / %s" % (n1, n2))
    for ax in fig.axes:
        name = ax.get_title() or "axes %d" % fig.axes.index(ax)
        for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            ticks = [(t.get_position()[0 if which == "x" else 1], t.get_text()) for t in drawn_ticks(axis, which, minor=False)
                     if number(t.get_text()) is not None]
            values = [number(s) for _, s in sorted(ticks)]
            if any(b < a for a, b in zip(values, values[1:])):
                found.append("%s: %s axis not monotonic: %s" % (name, which, " ".join(s for _, s in sorted(ticks))))
            if _visible(axis.get_offset_text()):
                found.append("%s: %s ticks read only with the offset %r added" % (
                    name, which, axis.get_offset_text().get_text()))
            if axis.get_scale() == "log" and "log" not in axis.label.get_text():
                found.append("%s: %s axis is log scale, its label does not say so" % (name, which))
        numbers = sorted((t.xy[0] if hasattr(t, "xy") else t.get_position()[0], t.get_text()) for t in ax.texts
                         if _visible(t) and number(t.get_text()) is not None)
        values = [number(s) for _, s in numbers]
        if any(b < a for a, b in zip(values, values[1:])):
            found.append("%s: numbered labels not monotonic left to right: %s" % (name, " ".join(s for _, s in numbers)))
        if ax.has_data() and not ax.get_xlabel():
            found.append("%s: no x axis label" % name)
        if ax.has_data() and not ax.get_title():
            found.append("axes %d: no title" % fig.axes.index(ax))
    legends = [lg for lg in fig.legends] + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for lg in legends:
        for t in lg.get_texts():
            if "_" in t.get_text() or ABBREVIATIONS.search(t.get_text().lower()):
                found.append("legend entry not spelled out: %r" % t.get_text())
    for name, a, _ in labels(fig):
        if hasattr(a, "get_text") and re.search(r"\bua\b", a.get_text(), re.I):
            found.append("abbreviation 'ua' (unit attention) in %s" % name)
    return found
