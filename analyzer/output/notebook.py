"""Helpers for Jupyter: the packet behind a finding (pyshark, with the generated plugins), and
the figures of notebooks/explore_capture.ipynb drawn from a Capture's tables (matplotlib, the
optional extra "notebooks": .venv/bin/pip install -e '.[notebooks]').

pyshark drives tshark with asyncio. Inside a running Jupyter kernel an event loop is already
running in the main thread, so pyshark's run_until_complete fails ("This event loop is already
running") unless the user patches asyncio with nest_asyncio. `packets_of` runs pyshark in a
worker thread with its own event loop instead: it works the same in a kernel, a script or a
test, and leaves no child watcher or loop behind in the caller's thread.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from typing import List, Optional, Sequence

from ..capture import source
from .figure_layout import (frame_ticks, horizontal, legend_below, log_axis, note_left_out, obstacle,
                            place_labels, pyplot, seconds_axis)

# -- the packet behind a frame --------------------------------------------------------------


def packets_of(path, display_filter: str, *, tshark: Optional[str] = None, keys=None, timeout: float = 300) -> list:
    """Every packet `display_filter` matches in `path`, decoded by tshark with both plugins, as
    pyshark Packets (p.msrsvd, p.clusprep, p.smb2 ...). keys: an analyzer.capture.keys.Keys, to decrypt."""

    def work():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # pyshark takes the thread's loop
        try:
            cap = source.packets(path, display_filter=display_filter, tshark_path=tshark, keys=keys)
            try:
                cap.load_packets(timeout=timeout)
                return list(cap)
            finally:
                cap.close()
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyshark") as pool:
        return pool.submit(work).result()


def open_packet(path, frame: int, **kw):
    """The packet of frame number `frame` (a finding's first_frame, a table's request_frame)."""
    found = packets_of(path, "frame.number == %d" % int(frame), **kw)
    if not found:
        raise LookupError("no frame %d in %s" % (int(frame), path))
    return found[0]


def frames_of(findings) -> List[List[int]]:
    """A findings table's `frames` column as lists of frame numbers."""
    return [[int(x) for x in str(f).split(",") if x.strip()] if isinstance(f, str) else [] for f in findings.frames]


def wireshark_filter(frames: Sequence[int]) -> str:
    """The display filter that shows these frames in Wireshark or tshark."""
    return "frame.number in {%s}" % " ".join(str(int(f)) for f in frames)


# -- figures ----------------------------------------------------------------------------------
#
# Every figure is meant to be read at a glance (tests/figure_checks.py checks it on the samples):
# labels are horizontal and placed where they overlap no other label, marker or the axes' edge
# (analyzer.output.figure_layout, with the figure's real text extents); frame ticks are thinned
# until they fit; axes of frames or time run in order (one panel per capture); units and legends
# in words.


def seconds(times, start=None):
    """UTC times as seconds since `start` (default: the earliest of them)."""
    if len(times) == 0:
        return times
    start = times.min() if start is None else start
    return (times - start).dt.total_seconds().astype(float)


def capture_start(cap):
    """The first time any table of `cap` shows."""
    import pandas as pd

    firsts = [t.time.min() for t in (cap.rsvd_operations, cap.clusprep_calls, cap.reservations, cap.findings)
              if len(t) and t.time.notna().any()]
    return min(firsts) if firsts else pd.Timestamp(0, tz="UTC")


def _captures(table) -> str:
    """The capture(s) a table comes from, for a title: one name, or how many."""
    if "capture" not in table or not len(table):
        return ""
    names = table.capture.dropna().unique().tolist()
    return names[0] if len(names) == 1 else "%d captures" % len(names) if names else ""


def latency_figure(scsi_commands, clusprep_calls):
    """Response times (ms, log scale) per SCSI opcode and per ClusPrep method: one dot per
    command or call, a box per group (the tables of one capture, or several concatenated)."""
    plt = pyplot()
    groups = [("SCSI commands: response time per opcode", scsi_commands, "opcode"),
              ("ClusPrep calls: response time per method", clusprep_calls, "method")]
    groups = [(t, d.dropna(subset=["latency_ms"]), c) for t, d, c in groups]
    groups = [(t, d, c) for t, d, c in groups if len(d)]
    rows = max([d[c].nunique() for _, d, c in groups] + [4])
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(6.5 * max(1, len(groups)), 1.2 + 0.3 * rows),
                             squeeze=False)
    for ax, (title, d, col) in zip(axes[0], groups):
        order = d.groupby(col)["latency_ms"].median().sort_values().index.tolist()
        data = [d.loc[d[col] == g, "latency_ms"].astype(float).clip(lower=1e-3).to_numpy() for g in order]
        ax.boxplot(data, widths=0.6, showfliers=False, **horizontal())
        for i, v in enumerate(data, start=1):
            ax.scatter(v, [i] * len(v), s=10, alpha=0.6, color="tab:blue", zorder=3)
        ax.set_yticks(range(1, len(order) + 1), ["%s (%d)" % (g, len(v)) for g, v in zip(order, data)], fontsize=8)
        ax.set_ylim(0.4, len(order) + 0.6)
        log_axis(ax, [x for v in data for x in v])
        ax.grid(axis="x", which="major", color="0.9")
        ax.set_xlabel("response time (ms, log scale)")
        ax.set_ylabel("%s (how many answered)" % col.replace("opcode", "SCSI opcode"), fontsize=9)
        where = _captures(d)
        ax.set_title(title + ("\nin %s" % where if where else ""), fontsize=10)
    if not groups:
        axes[0][0].text(0.5, 0.5, "no answered SCSI commands or ClusPrep calls", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    return fig


def _operation_hosts(cap):
    """rsvd_operations with the initiator host of their open (else the client address)."""
    s = cap.sessions[["open_id", "initiator_host", "client"]].copy()
    s["host"] = s.initiator_host.fillna("").where(s.initiator_host.fillna("") != "",
                                                  s.client.fillna("").str.rsplit(":", n=1).str[0])
    ops = cap.rsvd_operations.merge(s[["open_id", "host"]], on="open_id", how="left")
    ops["host"] = ops.host.fillna("(no open)").replace("", "(no open)")
    scsi = cap.scsi_commands[["request_frame", "stream", "scsi_status", "opcode"]]
    ops = ops.merge(scsi, on=["request_frame", "stream"], how="left")
    bad_scsi = ops.scsi_status.notna() & ~ops.scsi_status.isin(["GOOD"])
    ops["error"] = (ops.status_code.fillna(0) != 0) | bad_scsi.fillna(False)
    ops["label"] = ops.opcode.where(ops.opcode.notna(), ops.operation.str.replace("RSVD_TUNNEL_", "")
                                    .str.replace("_OPERATION", ""))
    return ops


LANE_INCHES = 1.15  # one lane of hosts: its point, and label rows above and below it


def _lanes_inches(n: int) -> float:
    """The height of an axes of n lanes: four rows of labels above and below even a single lane."""
    return max(1.6, LANE_INCHES * max(1, n))


def operations_figure(cap, start=None):
    """RSVD operations over time, one lane per initiator host; failed ones (a failure status, or a
    SCSI status other than GOOD) marked with a red cross and named."""
    plt = pyplot()
    import matplotlib.lines as mlines

    ops = _operation_hosts(cap).sort_values(["time", "request_frame"])
    start = capture_start(cap) if start is None else start
    hosts = sorted(ops.host.unique().tolist())
    fig, ax = plt.subplots(figsize=(11, 1.6 + _lanes_inches(len(hosts))))
    lane = {h: i for i, h in enumerate(hosts)}
    t = seconds(ops.time, start)
    y = ops.host.map(lane).astype(float)
    ok = ~ops.error.astype(bool)
    ax.scatter(t[ok], y[ok], marker="|", s=200, color="tab:blue")
    ax.scatter(t[~ok], y[~ok], marker="x", s=80, color="red", zorder=3)
    ax.set_yticks(range(len(hosts)), hosts)
    ax.set_ylim(-0.5, len(hosts) - 0.5)
    seconds_axis(ax, t)
    ax.set_xlabel("seconds since the capture's first event")
    where = _captures(cap.rsvd_operations)
    ax.set_title("RSVD operations per initiator host" + (" in %s" % where if where else ""), fontsize=10)
    handles = [mlines.Line2D([], [], marker="|", markersize=12, color="tab:blue", linestyle="", label="answered"),
               mlines.Line2D([], [], marker="x", color="red", linestyle="",
                             label="failed: an error status, or a SCSI status other than GOOD")]
    legend_below(fig, handles, ncol=2)
    items = []
    for (ti, yi, label, status, scsi) in zip(t[~ok], y[~ok], ops.label[~ok], ops.status[~ok], ops.scsi_status[~ok]):
        why = scsi if isinstance(scsi, str) and scsi != "GOOD" else status
        items.append((ti, yi, "%s: %s" % (label, why), "darkred"))
    marks = [obstacle(ax, ti, yi, 5) for ti, yi in zip(t, y)]
    note_left_out(ax, place_labels(ax, items, marks), "see cap.rsvd_operations")
    return fig


EVENT_STYLE = {  # event -> (marker, colour)
    "register": ("o", "tab:green"), "unregister": ("o", "tab:gray"), "reserve": ("s", "tab:blue"),
    "release": ("s", "tab:cyan"), "clear": ("D", "tab:gray"), "preempt": ("^", "tab:orange"),
    "move": (">", "tab:purple"), "arbitrate": ("P", "tab:purple"), "conflict": ("X", "red"),
    "unit_attention": ("*", "red"),
}
EVENT_NAMES = {  # event -> what the legend calls it
    "move": "register and move", "arbitrate": "arbitrate (ClusPrep)", "conflict": "reservation conflict",
    "unit_attention": "unit attention: reservation or registration lost",
}
READS = ("read_keys", "read_reservation", "read_full_status", "report_capabilities", "is_pr_present", "find_key")
HOLD_FROM = ("reserve", "preempt", "arbitrate")
HOLD_UNTIL = ("release", "clear", "unregister", "move")  # REGISTER AND MOVE hands it to another I_T nexus


def _short(key) -> str:
    return "" if not isinstance(key, str) else ("0" if int(key, 16) == 0 else "…" + key[-6:])


def holders(res):
    """Who held each disk's reservation when: (disk, host, key, from seconds-row index, to index),
    from the successful reserve / preempt / move / arbitrate and release / clear / unregister of `res`
    (rows in order). A reservation still held at the end runs to the last row."""
    spans = []
    for disk, d in res.groupby("disk", sort=False):
        held = None  # (host, key, start time)
        for r in d.itertuples():
            if r.result not in ("GOOD", "S_OK"):
                continue
            if r.event in HOLD_FROM:
                if held is not None:
                    spans.append((disk, held[0], held[1], held[2], r.time))
                held = (r.host, r.key, r.time)
            elif r.event in HOLD_UNTIL and held is not None and (r.event != "unregister" or r.host == held[0]):
                spans.append((disk, held[0], held[1], held[2], r.time))
                held = None
        if held is not None:
            spans.append((disk, held[0], held[1], held[2], d.time.max()))
    return spans


def _event_text(r, failed) -> str:
    """What one reservation event did, in words, keys by their last 6 hex digits."""
    key, sa = _short(r.key), _short(r.sa_key)
    if r.event == "conflict":
        return "reservation conflict (%s)" % str(r.command).replace("RSVD_TUNNEL_", "").replace("_OPERATION", "")
    if r.event == "unit_attention":
        return "unit attention: " + str(r.sense).replace("UNIT_ATTENTION: ", "").lower()
    if r.event == "register":
        text = "register %s" % sa if sa and sa != "0" else "register"
        text += " (was %s)" % key if key and key != "0" else ""
    elif r.event == "preempt":
        text = "preempt %s" % sa if sa else "preempt"
    elif r.event == "move":
        text = "move to %s" % sa if sa else "register and move"
    elif r.event == "clear":
        text = "clear"
    else:
        text = "%s %s" % (r.event, key) if key and key != "0" else str(r.event)
    return text + ("" if not failed else " (%s)" % r.result)


def reservation_figure(res, start=None, title="Persistent reservations", by_time=False):
    """One panel per capture and disk, one lane per host: who registered, reserved, preempted, released (with
    the key, last digits), conflicts and PR unit attentions in red, reads as grey dots, and the
    reservation holder as a bar. The events are spaced evenly in their order (ticks: their frames);
    by_time=True places them by time instead."""
    plt = pyplot()
    import matplotlib.lines as mlines

    res = res.assign(disk=res.disk.fillna("(unknown disk)"), host=res.host.fillna("?"),
                     capture=res.capture.fillna("") if "capture" in res else "")
    res = res.sort_values(["capture", "time", "frame"] if by_time else ["capture", "frame"], kind="stable")
    panels = list(dict.fromkeys(zip(res.capture, res.disk))) or [("", "(no reservation events)")]
    several = res.capture.nunique() > 1
    hosts_per = {p: sorted(res[(res.capture == p[0]) & (res.disk == p[1])].host.unique().tolist()) for p in panels}
    heights = [0.9 + _lanes_inches(len(h)) for h in hosts_per.values()]
    fig, axes = plt.subplots(len(panels), 1, squeeze=False, figsize=(11, sum(heights) + 0.9),
                             gridspec_kw={"height_ratios": heights})
    start = res.time.min() if start is None and len(res) else start
    seen = set()
    drawn = []
    for ax, (capture, disk) in zip(axes[:, 0], panels):
        d = res[(res.capture == capture) & (res.disk == disk)]
        hosts = hosts_per[(capture, disk)]
        lane = {h: i for i, h in enumerate(hosts)}
        if by_time:
            t = seconds(d.time, start)
            at = dict(zip(d.time, t))
        else:
            t = pd_series(range(len(d))).astype(float)
            at = {}
            for time, x in zip(d.time, t):
                at.setdefault(time, x)
        bars = []
        for (_, host, key, t0, t1) in holders(d):
            x0, x1 = at[t0], at[t1]
            ax.plot([x0, x1], [lane[host]] * 2, color="tab:blue", alpha=0.25, linewidth=10, solid_capstyle="butt")
            bars.append((x0, x1, lane[host]))
            seen.add("holder")
        items, points = [], []
        for (x, r) in zip(t, d.itertuples()):
            y = lane[r.host]
            points.append((x, y))
            if r.event in READS:
                ax.scatter([x], [y], marker=".", color="gray", s=30, zorder=3)
                seen.add("read")
                continue
            marker, colour = EVENT_STYLE.get(r.event, ("o", "black"))
            seen.add(r.event if r.event in EVENT_STYLE else "other")
            failed = r.result not in ("GOOD", "S_OK") and r.event not in ("conflict", "unit_attention")
            ax.scatter([x], [y], marker=marker, s=90, color="white" if failed else colour, edgecolors=colour, zorder=3)
            if failed:
                seen.add("refused")
            items.append((x, y, _event_text(r, failed),
                          "darkred" if r.event in ("conflict", "unit_attention") or failed else "black"))
        ax.set_yticks(range(len(hosts)), hosts)
        ax.set_ylim(-0.5, max(1, len(hosts)) - 0.5)
        name = "%s: %s" % (title, disk) + (" in %s" % capture if several and capture else "")
        ax.set_title(name, fontsize=10)
        if by_time:
            ax.set_xlabel("seconds since the first reservation event")
            seconds_axis(ax, t)
        else:
            ax.set_xlabel("frame number (events evenly spaced in capture order)")
            ax.set_xlim(-0.6, max(1, len(d)) - 0.4)
        drawn.append((ax, d, t, items, points, bars))
    if by_time and len(drawn) > 1:  # one time axis for every panel, to compare them
        lo = min(ax.get_xlim()[0] for ax, *_ in drawn)
        hi = max(ax.get_xlim()[1] for ax, *_ in drawn)
        for ax, *_ in drawn:
            ax.set_xlim(lo, hi)
    handles = [mlines.Line2D([], [], marker=m, color=c, linestyle="", label=EVENT_NAMES.get(e, e))
               for e, (m, c) in EVENT_STYLE.items() if e in seen]
    if "read" in seen:
        handles.append(mlines.Line2D([], [], marker=".", color="gray", linestyle="", label="PR IN read, or ClusPrep query"))
    if "holder" in seen:
        handles.append(mlines.Line2D([], [], color="tab:blue", alpha=0.25, linewidth=8, label="reservation held"))
    if "refused" in seen:
        handles.append(mlines.Line2D([], [], marker="o", color="tab:green", markerfacecolor="white", linestyle="",
                                     label="refused (hollow; its result in brackets)"))
    legend_below(fig, handles, ncol=min(5, len(handles)),
                 title="keys by their last 6 hex digits (…000001 is 0x…000001); 0: no key")
    for ax, d, t, items, points, bars in drawn:
        if not by_time:
            frame_ticks(ax, t, d.frame)
        marks = [obstacle(ax, x, y, 6) for x, y in points]
        for x0, x1, y in bars:
            a, b = obstacle(ax, x0, y, 5), obstacle(ax, x1, y, 5)
            marks.append(a.union([a, b]))
        note_left_out(ax, place_labels(ax, items, marks), "see the reservations table, or by_time=False")
    return fig


def pd_series(values):
    import pandas as pd

    return pd.Series(values)


def swimlane_figure(cap, by_time=False):
    """ClusPrep calls, one lane per node (the server called) and interface, spaced evenly in capture
    order (by_time=True: by time); failed calls (a fault or a failure HRESULT) in red, calls a
    finding names (out of order, refused, not enforced...) ringed in orange with their frame, to
    look up in the findings table."""
    plt = pyplot()
    import matplotlib.lines as mlines

    calls = cap.clusprep_calls.sort_values("request_frame").reset_index(drop=True)
    calls["node"] = calls.conversation.str.extract(r"-> ([^ ]+?):\d+ ")[0].fillna("?")
    calls["lane"] = calls.node + ": " + calls.interface.fillna("?")
    lanes = sorted(calls.lane.unique().tolist())
    fig, ax = plt.subplots(figsize=(11, 1.9 + 0.95 * max(1, len(lanes))))
    index = {l: i for i, l in enumerate(lanes)}
    t = seconds(calls.time, capture_start(cap)) if by_time else pd_series(range(len(calls))).astype(float)
    y = calls.lane.map(index).astype(float)
    failed = (calls.fault_status.notna() | (calls.hresult.fillna(0) >= 0x80000000)).astype(bool)
    ax.scatter(t[~failed], y[~failed], marker="|", s=250, color="tab:green")
    ax.scatter(t[failed], y[failed], marker="x", s=80, color="red", zorder=3)
    named = set()
    for frames in frames_of(cap.findings):
        named.update(frames)
    hit = calls.request_frame.isin(list(named)).astype(bool)
    ax.scatter(t[hit], y[hit], marker="o", s=160, facecolors="none", edgecolors="tab:orange", linewidths=1.5, zorder=4)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_ylim(-0.5, max(1, len(lanes)) - 0.5)
    if by_time:
        seconds_axis(ax, t)
        ax.set_xlabel("seconds since the capture's first event")
    else:
        ax.set_xlim(-0.6, max(1, len(t)) - 0.4)
        ax.set_xlabel("ClusPrep calls, evenly spaced in capture order")
        ax.set_xticks([])
    where = _captures(calls)
    ax.set_title("ClusPrep calls per node (the server called) and interface" + (" in %s" % where if where else ""),
                 fontsize=10)
    handles = [mlines.Line2D([], [], marker="|", markersize=12, color="tab:green", linestyle="",
                             label="succeeded (or its result is not readable)"),
               mlines.Line2D([], [], marker="x", color="red", linestyle="", label="failed: fault or failure HRESULT"),
               mlines.Line2D([], [], marker="o", markersize=9, markerfacecolor="none", markeredgecolor="tab:orange",
                             linestyle="", label="named by a finding, with its request frame")]
    handles = [h for h, shown in zip(handles, (True, failed.any(), hit.any())) if shown]
    legend_below(fig, handles, ncol=len(handles))
    items = [(x, yy, str(int(frame)), "darkorange") for x, yy, frame in zip(t[hit], y[hit], calls.request_frame[hit])]
    marks = [obstacle(ax, x, yy, 6.5 if h else 5) for x, yy, h in zip(t, y, hit)]
    note_left_out(ax, place_labels(ax, items, marks, fontsize=7, leader_from=3),
                  "see the findings table, or by_time=False")
    return fig
