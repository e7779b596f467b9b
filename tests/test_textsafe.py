"""Tenant text made safe: control characters shown, rich markup and Markdown never interpreted."""

from __future__ import annotations

import io
import unicodedata

import pytest
from markdown_it import MarkdownIt
from rich.console import Console
from rich.table import Table

from lbswap import textsafe

HOSTILE = [
    "oops[/red]",
    "[link=http://example.invalid]x[/link]",
    "\x1b[31mred\x1b[0m",
    "bell\x07",
    "two\nlines",
    "| pipe *md*",
    "[bold]loud[/bold] :smile:",
    "trailing backslash \\",
    "\u202eevil\u202c",
    "\x9b31mcsi",
    "<script>alert(1)</script> &amp; ![img](http://example.invalid/x.png) `code` ~~del~~ # h _u_",
]
HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("bell\x07", "bell\\x07"),
        ("two\nlines\r\tend", "two\\nlines\\r\\tend"),
        ("del\x7f c1\x9b", "del\\x7f c1\\x9b"),
        ("bidi\u202eoverride zero\u200bwidth line\u2028sep", "bidi\\u202eoverride zero\\u200bwidth line\\u2028sep"),
        ("private \U000f0000", "private \\U000f0000"),
        ("größe ñ 日本 \\ é", "größe ñ 日本 \\ é"),
        ("oops[/red]", "oops[/red]"),
        (None, ""),
        (42, "42"),
    ],
)
def test_shown_writes_control_characters_as_escapes(raw: object, expected: str) -> None:
    assert textsafe.shown(raw) == expected


def test_shown_leaves_no_hidden_character_anywhere_in_unicode() -> None:
    points = [*range(0x3000), *range(0xD700, 0xFB00), *range(0x3000, 0x110000, 13)]
    text = "".join(chr(c) for c in points)
    out = textsafe.shown(text)
    assert not [c for c in out if unicodedata.category(c) in HIDDEN]
    assert len(out.splitlines()) == 1


def _render(renderable: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, color_system="truecolor", width=200).print(renderable)
    return buffer.getvalue()


@pytest.mark.parametrize("name", HOSTILE)
def test_rich_text_is_never_markup_nor_a_terminal_sequence(name: str) -> None:
    table = Table()
    table.add_column("name")
    table.add_row(textsafe.rich_text(name))
    out = _render(table)  # would raise MarkupError for oops[/red] if the cell were a str
    assert textsafe.shown(name) in out
    assert "\x1b]8;" not in out, "no OSC 8 hyperlink"
    for raw in ("\x1b[31mred", "\x07", "\x9b", "\u202e"):
        assert raw not in out


def test_a_str_cell_would_have_been_interpreted() -> None:
    # the hazard the module exists for: proves the checks above can fail
    table = Table()
    table.add_column("name")
    table.add_row("[link=http://example.invalid]x[/link]")
    assert "\x1b]8;" in _render(table)


@pytest.mark.parametrize("name", HOSTILE)
def test_markdown_is_literal_text(name: str) -> None:
    row = f"| a | {textsafe.markdown(name)} | {textsafe.markdown_code(name)} |"
    markdown = "| x | y | z |\n|---|---|---|\n" + row + "\n"
    tokens = MarkdownIt("commonmark").enable("table").enable("strikethrough").parse(markdown)
    cells = [t for t in tokens if t.type == "inline"][3:]
    assert len(cells) == 3, "a name never adds or removes a column"
    children = cells[1].children or []
    assert "".join(child.content for child in children).strip() == textsafe.shown(name).strip()
    kinds = {child.type for child in children}
    assert kinds <= {"text", "text_special"}, kinds  # no link, image, html, emphasis, code or strikethrough
    code = [child for child in cells[2].children or [] if child.type == "code_inline"]
    assert len(code) == 1 and code[0].content.strip() == textsafe.shown(name).strip()


def test_markdown_code_survives_backticks() -> None:
    assert textsafe.markdown_code("a`b") == "``a`b``"
    assert textsafe.markdown_code("`x`") == "`` `x` ``"
    assert textsafe.markdown_code("plain") == "`plain`"
