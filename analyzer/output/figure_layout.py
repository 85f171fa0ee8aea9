"""How the figures of analyzer.output.notebook are laid out so that each reads at a glance: pyplot
(Agg outside a Jupyter kernel), labels placed where they overlap no other label, marker or the axes'
edge, measured with the figure's real text extents (place_labels), frame ticks thinned until they
fit, axes of seconds and of log-scale milliseconds in plain numbers, legends below the axes.
tests/figure_checks.py checks the result on the samples.
"""


def pyplot():
    """matplotlib.pyplot, drawing on Agg outside a Jupyter kernel."""
    import matplotlib

    if not _interactive():
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _interactive() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None
    except ImportError:
        return False


def _renderer(fig):
    get = getattr(fig.canvas, "get_renderer", None)
    return get() if get is not None else fig._get_renderer()


def legend_below(fig, handles, ncol, title=None, top=1.0):
    """A legend under the axes, the axes laid out above it (tight_layout), none over the other."""
    legend = fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
                        title=title, title_fontsize=8, bbox_to_anchor=(0.5, 0.0))
    fig.canvas.draw()
    height = legend.get_window_extent(_renderer(fig)).height / fig.bbox.height
    fig.tight_layout(rect=(0, min(0.6, height + 0.01), 1, top))
    return legend


def obstacle(ax, x, y, radius_pt):
    """The display box around a marker at data (x, y)."""
    from matplotlib.transforms import Bbox

    px, py = ax.transData.transform((x, y))
    r = radius_pt * ax.figure.dpi / 72
    return Bbox([[px - r, py - r], [px + r, py + r]])


LEVELS = (1, 2, 3, 4)  # label rows above and below a point


def place_labels(ax, items, obstacles=(), fontsize=7, levels=LEVELS, leader_from=2, **style):
    """Annotate each (x, y, text, colour) of `items` near its point, horizontally, at the first place
    (rows above and below the point, starting at it or ending at it) where the text overlaps no
    label placed before, no `obstacles` box (markers, in display units) and stays inside the axes.
    Rows from `leader_from` on get a thin leader line to their point, which crosses no label either.
    Call it once the figure's layout is final. Returns the items that found no place (left out)."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = _renderer(fig)
    inside = ax.get_window_extent(renderer).padded(-2)
    marks = list(obstacles)
    labels = []  # placed texts and leader lines
    row = fontsize * 1.5  # points from one row to the next
    places = []
    for level in levels:
        for sign in (1, -1):
            for ha, dx in (("left", -3), ("right", 3)):
                places.append((level, dx, sign * (8 + (level - 1) * row), ha, "bottom" if sign > 0 else "top"))
    left_out = []
    for x, y, text, colour in items:
        px, py = ax.transData.transform((x, y))
        for level, dx, dy, ha, va in places:
            leader = level >= leader_from
            t = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                            fontsize=fontsize, color=colour, annotation_clip=False, **style,
                            arrowprops=dict(arrowstyle="-", color="0.6", linewidth=0.5, shrinkA=0, shrinkB=4)
                            if leader else None)
            t.set_in_layout(False)
            t.update_positions(renderer)
            box = Text.get_window_extent(t, renderer)  # the text, without its leader line
            ok = (box.x0 >= inside.x0 and box.x1 <= inside.x1 and box.y0 >= inside.y0 and box.y1 <= inside.y1
                  and not any(box.overlaps(b) for b in marks + labels))
            line = None
            if ok and leader:  # from the point to the text's near corner
                cx = box.x0 + 1 if ha == "left" else box.x1 - 1
                cy = box.y0 if dy > 0 else box.y1
                near = 6 * fig.dpi / 72
                line = Bbox([[min(px, cx) - 0.5, min(py + near, cy) if dy > 0 else cy],
                             [max(px, cx) + 0.5, cy if dy > 0 else max(py - near, cy)]])
                ok = not any(line.overlaps(b) for b in labels)
            if ok:  # two labels on a row stay a word apart, not read as one
                gap = 8 * fig.dpi / 72
                labels.append(Bbox([[box.x0 - gap, box.y0 - 1], [box.x1 + gap, box.y1 + 1]]))
                if line is not None:
                    labels.append(line)
                break
            t.remove()
        else:
            left_out.append((x, y, text, colour))
    return left_out


def note_left_out(ax, left_out, hint):
    """A note in the axes' corner: how many labels found no place, and where to read them (`hint`)."""
    if left_out:
        ax.text(0.995, 0.02, "%d label%s left out (too close to others): %s" % (
            len(left_out), "" if len(left_out) == 1 else "s", hint), transform=ax.transAxes, ha="right",
            va="bottom", fontsize=7, color="0.35")


def frame_ticks(ax, positions, frames, fontsize=7):
    """Frame numbers as x ticks at `positions`, every k-th one so that no two labels touch."""
    positions, frames = list(positions), ["%d" % f for f in frames]
    ax.set_xticks(positions, frames, fontsize=fontsize)
    if len(positions) < 2:
        return
    renderer = _renderer(ax.figure)
    boxes = [t.get_window_extent(renderer) for t in ax.xaxis.get_majorticklabels()]
    widest = max(b.width for b in boxes) + 6
    step_px = abs(ax.transData.transform((positions[1], 0))[0] - ax.transData.transform((positions[0], 0))[0])
    k = max(1, -(-int(widest) // max(1, int(step_px))))
    if k > 1:
        keep = list(range(0, len(positions), k))
        ax.set_xticks([positions[i] for i in keep], [frames[i] for i in keep], fontsize=fontsize)
        ax.set_xticks(positions, minor=True)


def seconds_axis(ax, t):
    """An x axis of seconds around the times `t`, in plain numbers (no "1e-5" offset to add)."""
    if len(t):
        lo, hi = float(t.min()), float(t.max())
        pad = max((hi - lo) * 0.03, 5e-4)
        ax.set_xlim(lo - pad, hi + pad)
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)


def log_axis(ax, values):
    """A log x axis over `values` (ms) that spans whole decades, labelled 0.01, 0.1, 1, 10 ..."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo = min(values) if len(values) else 0.1
    hi = max(values) if len(values) else 1.0
    lo_d, hi_d = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if hi_d - lo_d < 2:  # at least two decades: ticks at 10^n are there, never 2% apart
        lo_d, hi_d = lo_d - (1 if hi_d - lo_d < 1 else 0), hi_d + 1
    ax.set_xscale("log")
    ax.set_xlim(10.0 ** lo_d, 10.0 ** hi_d)
    step = max(1, -(-(hi_d - lo_d) // 8))  # at most about 8 labelled decades
    ax.xaxis.set_major_locator(LogLocator(base=10.0 ** step))
    ax.xaxis.set_minor_locator(LogLocator(base=10.0, subs=(2, 3, 4, 5, 6, 7, 8, 9), numticks=100))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "{:,.10g}".format(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def horizontal() -> dict:
    """boxplot's argument for horizontal boxes: orientation= from matplotlib 3.10, vert= before."""
    import matplotlib

    major_minor = tuple(int(p) for p in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if major_minor >= (3, 10) else {"vert": False}
