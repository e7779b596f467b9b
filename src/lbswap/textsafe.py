"""Tenant text (load balancer names, descriptions, tags, and error lines that quote them) made safe to show.

Any project chooses these strings, so they are data, never markup or terminal control. Every human-facing
output (rich tables, progress lines, error lines, the Markdown report) goes through this module; JSON and
YAML keep the exact strings, since their encoders already escape them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

# Unicode categories that are never shown as themselves: controls (C0, DEL, C1 including CSI), format
# characters (bidi overrides, zero-width), line/paragraph separators, surrogates, private use, unassigned.
_HIDDEN = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _needs_escape(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN


def shown(value: Any) -> str:
    """``value`` as one printable line: every control or invisible character written as its escape.

    ESC becomes the four characters ``\\x1b``, a newline ``\\n``, a bidi override ``\\u202e``. Ordinary
    text, including non-ASCII letters and a backslash, is unchanged. ``None`` is shown as the empty string.
    """
    text = "" if value is None else str(value)
    if text.isprintable():  # fast path: isprintable() is False for every character _HIDDEN covers
        return text
    return "".join(_visible(c) if _needs_escape(c) else c for c in text)


def rich_text(value: Any, style: str = "") -> Text:
    """``value`` as a rich ``Text``: rich never interprets markup or emoji codes in a ``Text``."""
    from rich.text import Text

    return Text(shown(value), style=style)


# Backslash-escaping these ASCII punctuation characters is enough for CommonMark and GitHub Flavored
# Markdown: emphasis, code, links, images, raw HTML and autolinks, entities, headings' closing hashes,
# strikethrough and table cells. Shown text is one line, so line-start markers (``-``, ``1.``) never apply.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|~&])")


def markdown(value: Any) -> str:
    """``value`` as literal Markdown text, safe inside a table cell or a heading."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", shown(value))


def markdown_code(value: Any) -> str:
    """``value`` as an inline code span, safe inside a table cell (ids, addresses, annotations)."""
    text = shown(value).replace("|", "\\|")  # GFM splits cells at `|` even inside code spans
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
