"""Helpers for Jupyter: the packet behind a finding (pyshark, with the generated plugins), and
the figures of notebooks/explore_capture.ipynb drawn from a Capture's tables (matplotlib, the
optional extra "notebooks": pip install msrsvd-clusprep[notebooks]).

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

from . import source

# -- the packet behind a frame --------------------------------------------------------------


def packets_of(path, display_filter: str, *, tshark: Optional[str] = None, keys=None, timeout: float = 300) -> list:
    """Every packet `display_filter` matches in `path`, decoded by tshark with both plugins, as
    pyshark Packets (p.msrsvd, p.clusprep, p.smb2 ...). keys: an analyzer.keys.Keys, to decrypt."""

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

def _plt():
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


def latency_figure(scsi_commands, clusprep_calls):
    """Response times (ms, log scale) per SCSI opcode and per ClusPrep method: one dot per
    command or call, a box per group (the tables of one capture, or several concatenated)."""
    plt = _plt()
    groups = [("SCSI opcode", scsi_commands, "opcode"), ("ClusPrep method", clusprep_calls, "method")]
    groups = [(t, d.dropna(subset=["latency_ms"]), c) for t, d, c in groups]
    groups = [(t, d, c) for t, d, c in groups if len(d)]
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(6.5 * max(1, len(groups)), 0.5 + 0.32 * max(
        [d[c].nunique() for _, d, c in groups] + [4])), squeeze=False)
    for ax, (title, d, col) in zip(axes[0], groups):
        order = d.groupby(col)["latency_ms"].median().sort_values().index.tolist()
        data = [d.loc[d[col] == g, "latency_ms"].astype(float).clip(lower=1e-3).to_numpy() for g in order]
        ax.boxplot(data, vert=False, widths=0.6, showfliers=False)
        for i, v in enumerate(data, start=1):
            ax.scatter(v, [i] * len(v), s=10, alpha=0.6, color="tab:blue", zorder=3)
        ax.set_yticks(range(1, len(order) + 1), [str(g) for g in order], fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("response time (ms, log scale)")
        ax.set_title("Response time per %s" % title)
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


def operations_figure(cap, start=None):
    """RSVD operations over time, one lane per initiator host; failed ones (a failure status, or a
    SCSI status other than GOOD) marked with a red cross and named."""
    plt = _plt()
    ops = _operation_hosts(cap)
    start = capture_start(cap) if start is None else start
    hosts = sorted(ops.host.unique().tolist())
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.7 * max(1, len(hosts))))
    lane = {h: i for i, h in enumerate(hosts)}
    t = seconds(ops.time, start)
    y = ops.host.map(lane).astype(float)
    ok = ~ops.error.astype(bool)
    ax.scatter(t[ok], y[ok], marker="|", s=200, color="tab:blue", label="answered")
    ax.scatter(t[~ok], y[~ok], marker="x", s=80, color="red", label="failed", zorder=3)
    for (ti, yi, label, status, scsi) in zip(t[~ok], y[~ok], ops.label[~ok], ops.status[~ok], ops.scsi_status[~ok]):
        why = scsi if isinstance(scsi, str) and scsi != "GOOD" else status
        ax.annotate("%s: %s" % (label, why), (ti, yi), xytext=(4, 6), textcoords="offset points", fontsize=7,
                    color="darkred", rotation=20)
    ax.set_yticks(range(len(hosts)), hosts)
    ax.set_ylim(-0.6, len(hosts) + 0.4)
    ax.set_xlabel("seconds since the capture's first event")
    ax.set_title("RSVD operations per initiator host")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


EVENT_STYLE = {  # event -> (marker, colour)
    "register": ("o", "tab:green"), "unregister": ("o", "tab:gray"), "reserve": ("s", "tab:blue"),
    "release": ("s", "tab:cyan"), "clear": ("D", "tab:gray"), "preempt": ("^", "tab:orange"),
    "move": (">", "tab:purple"), "arbitrate": ("P", "tab:purple"), "conflict": ("X", "red"),
    "unit_attention": ("*", "red"),
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


def reservation_figure(res, start=None, title="Persistent reservations", by_time=False):
    """One panel per disk, one lane per host: who registered, reserved, preempted, released (with
    the key, last digits), conflicts and PR unit attentions in red, reads as grey dots, and the
    reservation holder as a bar. The events are spaced evenly in their order (ticks: their frames);
    by_time=True places them by time instead."""
    plt = _plt()
    import matplotlib.lines as mlines

    disks = res.disk.fillna("(unknown disk)").unique().tolist() or ["(no reservation events)"]
    hosts_per = {d: sorted(res[res.disk.fillna("(unknown disk)") == d].host.fillna("?").unique().tolist())
                 for d in disks}
    fig, axes = plt.subplots(len(disks), 1, squeeze=False,
                             figsize=(11, sum(1.3 + 0.75 * max(1, len(h)) for h in hosts_per.values())))
    start = res.time.min() if start is None and len(res) else start
    for ax, disk in zip(axes[:, 0], disks):
        d = res[res.disk.fillna("(unknown disk)") == disk]
        hosts = hosts_per[disk]
        lane = {h: i for i, h in enumerate(hosts)}
        if by_time:
            t = seconds(d.time, start)
            at = dict(zip(d.time, t))
        else:
            t = pd_series(range(len(d))).astype(float)
            at = {}
            for time, x in zip(d.time, t):
                at.setdefault(time, x)
        for (_, host, key, t0, t1) in holders(d):
            x0, x1 = at[t0], at[t1]
            ax.plot([x0, x1], [lane[host]] * 2, color="tab:blue", alpha=0.25, linewidth=10, solid_capstyle="butt")
            ax.annotate("holds %s" % _short(key), (x0, lane[host]), xytext=(0, -14), textcoords="offset points",
                        fontsize=7, color="tab:blue")
        for (x, r) in zip(t, d.itertuples()):
            y = lane[r.host if isinstance(r.host, str) else "?"]
            if r.event in READS:
                ax.scatter([x], [y], marker=".", color="gray", s=30, zorder=3)
                continue
            marker, colour = EVENT_STYLE.get(r.event, ("o", "black"))
            failed = r.result not in ("GOOD", "S_OK") and r.event not in ("conflict", "unit_attention")
            ax.scatter([x], [y], marker=marker, s=90, color="white" if failed else colour, edgecolors=colour, zorder=3)
            if r.event == "conflict":
                text = "conflict (%s)" % r.command
            elif r.event == "unit_attention":
                text = str(r.sense).replace("UNIT_ATTENTION: ", "UA ").lower()
            else:
                keys = " ".join(k for k in (_short(r.key), _short(r.sa_key) and "→ " + _short(r.sa_key)) if k)
                text = "%s %s%s" % (r.event, keys, "" if not failed else " (%s)" % r.result)
            ax.annotate(text, (x, y), xytext=(3, 8), textcoords="offset points", fontsize=7, rotation=25,
                        color="darkred" if r.event in ("conflict", "unit_attention") or failed else "black")
        ax.set_yticks(range(len(hosts)), hosts)
        ax.set_ylim(-0.7, len(hosts) - 0.1 + 0.5)
        ax.set_title("%s: %s" % (title, disk), fontsize=10)
        if by_time:
            ax.set_xlabel("seconds since the first reservation event")
        else:
            ax.set_xticks(list(t), ["%d" % f for f in d.frame], fontsize=7)
            ax.set_xlabel("frame (events in capture order)")
            ax.set_xlim(-0.5, len(d) + 1)
    handles = [mlines.Line2D([], [], marker=m, color=c, linestyle="", label=e) for e, (m, c) in EVENT_STYLE.items()]
    handles.append(mlines.Line2D([], [], marker=".", color="gray", linestyle="", label="read (PR IN)"))
    handles.append(mlines.Line2D([], [], color="tab:blue", alpha=0.25, linewidth=8, label="reservation holder"))
    fig.legend(handles=handles, loc="lower center", ncol=7, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def pd_series(values):
    import pandas as pd

    return pd.Series(values)


def swimlane_figure(cap, by_time=False):
    """ClusPrep calls, one lane per node (the server called) and interface, spaced evenly in capture
    order (by_time=True: by time); failed calls (a fault or a failure HRESULT) in red, calls a
    finding names (out of order, refused, not enforced...) ringed in orange with their frame, to
    look up in the findings table."""
    plt = _plt()
    calls = cap.clusprep_calls.sort_values("request_frame").reset_index(drop=True)
    calls["node"] = calls.conversation.str.extract(r"-> ([^ ]+?):\d+ ")[0].fillna("?")
    calls["lane"] = calls.node + "  " + calls.interface.fillna("?")
    lanes = sorted(calls.lane.unique().tolist())
    fig, ax = plt.subplots(figsize=(11, 1.6 + 0.8 * max(1, len(lanes))))
    index = {l: i for i, l in enumerate(lanes)}
    t = seconds(calls.time, capture_start(cap)) if by_time else pd_series(range(len(calls))).astype(float)
    y = calls.lane.map(index).astype(float)
    failed = (calls.fault_status.notna() | (calls.hresult.fillna(0) >= 0x80000000)).astype(bool)
    ax.scatter(t[~failed], y[~failed], marker="|", s=250, color="tab:green", label="succeeded (or not readable)")
    ax.scatter(t[failed], y[failed], marker="x", s=80, color="red", label="failed", zorder=3)
    named = set()
    for frames in frames_of(cap.findings):
        named.update(frames)
    hit = calls.request_frame.isin(list(named)).astype(bool)
    ax.scatter(t[hit], y[hit], marker="o", s=160, facecolors="none", edgecolors="tab:orange", linewidths=1.5,
               label="named by a finding", zorder=4)
    for i, (x, yy, frame) in enumerate(zip(t[hit], y[hit], calls.request_frame[hit])):
        ax.annotate(str(int(frame)), (x, yy), xytext=(0, 10 if i % 2 else -16), textcoords="offset points",
                    fontsize=6, ha="center", color="darkorange")
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    if by_time:
        ax.set_xlabel("seconds since the capture's first event")
    else:
        ax.set_xlabel("calls in capture order (orange: request frame of a call a finding names)")
        ax.set_xticks([])
    ax.set_title("ClusPrep calls per node and interface")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
