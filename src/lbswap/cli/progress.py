"""Progress display: one line per load balancer and step, fed by the core's event callback.

On a terminal it is a live rich table on stderr; elsewhere (logs, CI) one plain line per event, so stdout
stays clean for `-f json|yaml`. Names and messages are tenant text: shown through lbswap.textsafe in both.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from lbswap.textsafe import rich_text, shown

STATUS_STYLE = {
    "start": "cyan",
    "done": "green",
    "failed": "bold red",
    "reverting": "yellow",
    "reverted": "yellow",
    "info": "white",
    "skipped": "yellow",
    "rolled_back": "yellow",
}


class ProgressView:
    def __init__(self, plans: Sequence[Any], *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.rows: dict[str, dict[str, str]] = {}
        for plan in plans:
            self.rows[plan.lb_id] = {"name": plan.lb_name, "step": "waiting", "status": "", "message": ""}
        self.live: Live | None = None
        self.started = time.monotonic()

    def __enter__(self) -> ProgressView:
        if self.enabled and self.stream.isatty():
            self.live = Live(self._render(), console=Console(file=self.stream), refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(exc_type, exc, tb)

    def __call__(self, event: Any) -> None:
        row = self.rows.setdefault(event.lb_id, {"name": event.lb_name, "step": "", "status": "", "message": ""})
        row.update(step=event.step, status=event.status, message=event.message or "")
        if self.live is not None:
            self.live.update(self._render())
        elif self.enabled:
            clock = time.strftime("%H:%M:%S")
            text = f"{clock} {shown(event.lb_name or event.lb_id)} {shown(event.step)} {shown(event.status)}"
            if event.message:
                text += f": {shown(event.message)}"
            print(text, file=self.stream, flush=True)

    def _render(self) -> Table:
        table = Table(title=f"lbswap ({time.monotonic() - self.started:.0f} s)", expand=False)
        for column in ("load balancer", "step", "status", "detail"):
            table.add_column(column, overflow="fold")
        for lb_id, row in self.rows.items():
            table.add_row(
                rich_text(row["name"] or lb_id),
                rich_text(row["step"]),
                rich_text(row["status"], STATUS_STYLE.get(row["status"], "")),
                rich_text(row["message"]),
            )
        return table
