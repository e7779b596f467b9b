"""A PNG timeline of a probed upgrade: each new connection as a dot (latency over time; failures in red at
the top), long-lived streams as bars, and the swap's steps (flip, the clone serving after it, drain, retire,
failover) as lines.

matplotlib is the ``lab`` extra: imported only when a timeline is drawn, so the core installs without it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lbswap.lab.probe import Attempt, LongLived

#: what to do when matplotlib is missing (one line an operator can act on)
INSTALL = "pip install 'lbswap[lab]'"

MARK_STYLE = {
    "flip": ("tab:blue", "-"),
    "drain": ("tab:orange", "--"),
    "retire": ("black", "-."),
    "failover": ("tab:purple", "-"),
    "recreate": ("tab:brown", "-"),
    "clone served": ("tab:cyan", ":"),  # the post-flip check: new connections reached the clone
}


def available() -> bool:
    """Whether matplotlib can be imported: without it there is no PNG timeline."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_timeline(
    path: Path,
    panels: Sequence[Mapping[str, Any]],
    attempts: Sequence[Attempt],
    long_lived: Sequence[LongLived],
    *,
    title: str,
) -> Path:
    """``panels``: [{"target", "title", "t0", "marks": [(step, status, at)]}], one row each (a mark is labelled
    ``step status``; "clone served" carries the delay after the API answered as its status)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 2.2 * len(panels)), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        t0 = float(panel["t0"])
        mine = [a for a in attempts if a.target == panel["target"]]
        ok = [a for a in mine if a.ok]
        bad = [a for a in mine if not a.ok]
        top = max([a.latency_ms for a in ok] + [10.0]) * 1.3
        ax.scatter([a.t - t0 for a in ok], [a.latency_ms for a in ok], s=2, c="tab:green", label="new connection ok")
        ax.scatter([a.t - t0 for a in bad], [top] * len(bad), s=8, c="tab:red", marker="x", label="failed")
        for i, stream in enumerate(s for s in long_lived if s.target == panel["target"]):
            y = top * (0.5 + 0.05 * i)
            color = "tab:red" if stream.cut else "tab:gray"
            ax.plot([stream.opened - t0, stream.ended - t0], [y, y], color=color, linewidth=1)
        for n, (step, status, at) in enumerate(panel.get("marks", [])):
            color, style = MARK_STYLE.get(step, ("gray", ":"))
            ax.axvline(at - t0, color=color, linestyle=style, linewidth=1)
            label = step if step == "flip" else f"{step} {status}".strip()
            ax.text(at - t0, top * (1.02 + 0.08 * (n % 2)), label, fontsize=6, va="bottom", color=color)
        ax.set_title(panel["title"], fontsize=9, loc="left")
        ax.set_ylabel("latency ms")
        ax.set_ylim(0, top * 1.3)
    axes[-1, 0].set_xlabel("seconds since the probe started (bars: long-lived streams, red = cut)")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
