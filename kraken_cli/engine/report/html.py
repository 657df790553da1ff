"""A self-contained HTML page from sections of facts, tables and PNG figures.

Everything is inline: the style sheet, and the figures as base64 ``data:`` URIs. The page loads
nothing from the network and runs no script, so it opens the same way offline, in any browser,
years later. Text is escaped; the only markup is what this module writes.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from string import Template

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1150px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
div.wide { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.flagged td { background: #fde8e8; }
td.flag { color: #b00020; font-weight: 600; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1.2em; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; word-break: break-all; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
p.note { font-size: 0.9em; color: #555; word-break: break-all; }
footer { margin-top: 3em; font-size: 0.8em; color: #777; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="note">$subtitle</p>
$body
<footer>$footer</footer>
</body>
</html>
""")


@dataclass(frozen=True)
class Table:
    """A table; rows listed in ``flagged`` are highlighted, cells starting with "FLAG" are marked."""

    caption: str
    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    flagged: frozenset[int] = frozenset()
    element_id: str = ""


@dataclass(frozen=True)
class Image:
    """A PNG figure and its caption."""

    caption: str
    png: bytes


@dataclass
class Section:
    """One titled part of the page."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _table(t: Table) -> str:
    ident = f' id="{_e(t.element_id)}"' if t.element_id else ""
    head = "".join(f"<th>{_e(c)}</th>" for c in t.columns)
    body = []
    for i, row in enumerate(t.rows):
        cls = ' class="flagged"' if i in t.flagged else ""
        cells = "".join(f'<td class="flag">{_e(c)}</td>' if str(c).startswith("FLAG") else f"<td>{_e(c)}</td>"
                        for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return (f'<div class="wide"><table{ident}><caption>{_e(t.caption)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _image(im: Image) -> str:
    data = base64.b64encode(im.png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(im.caption)}">'
            f"<figcaption>{_e(im.caption)}</figcaption></figure>")


def _section(s: Section) -> str:
    parts = [f"<section><h2>{_e(s.title)}</h2>"]
    parts += [f"<p>{_e(p)}</p>" for p in s.paragraphs]
    if s.facts:
        parts.append('<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in s.facts)
                     + "</dl>")
    parts += [_table(t) for t in s.tables]
    parts += [_image(im) for im in s.images]
    parts.append("</section>")
    return "\n".join(parts)


def render_page(title: str, sections: Sequence[Section], *, subtitle: str = "", footer: str = "") -> str:
    """The whole page as one string (UTF-8 text, no external resource)."""
    return _PAGE.substitute(title=_e(title), subtitle=_e(subtitle), footer=_e(footer),
                            body="\n".join(_section(s) for s in sections))
