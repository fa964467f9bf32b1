"""The page's building blocks: escaped text, tables, badges, sections, and the one self-contained page around them.

Everything a caller passes as text is escaped here (html.escape); only fragments these helpers made are passed
through as markup (the Markup type says which is which), so a bundle name or a runtime's error message can never
become markup. No external URL is referenced: styles are inline, images are data: URIs.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

# Colours: pass green, fail red, neutral grey, finding amber; chosen to read on white and to print.
CSS = """
:root { --ok:#1a7f37; --ok-bg:#dafbe1; --bad:#cf222e; --bad-bg:#ffebe9; --warn:#9a6700; --warn-bg:#fff8c5;
        --muted:#57606a; --line:#d0d7de; --head:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color:#1f2328; margin:0;
       background:#fff; }
main { max-width: 1180px; margin: 0 auto; padding: 0 28px 48px; }
header { background:#24292f; color:#fff; padding: 22px 28px 18px; }
header .inner { max-width: 1180px; margin: 0 auto; padding: 0 28px; }
header h1 { margin:0 0 4px; font-size: 26px; font-weight: 600; }
header .sub { color:#c9d1d9; font-size: 14px; }
.summary { display:flex; flex-wrap:wrap; gap:10px; margin: 18px 0 6px; }
.pill { border:1px solid var(--line); border-radius: 8px; padding: 8px 14px; background: var(--head); }
.pill b { display:block; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.pill.ok { border-color: var(--ok); background: var(--ok-bg); }
.pill.bad { border-color: var(--bad); background: var(--bad-bg); }
.pill.warn { border-color: #d4a72c; background: var(--warn-bg); }
nav { margin: 10px 0 0; font-size: 14px; }
nav a { color:#0969da; margin-right: 14px; text-decoration: none; }
section { border-top: 1px solid var(--line); margin-top: 28px; padding-top: 6px; }
h2 { font-size: 21px; margin: 14px 0 8px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
p { margin: 6px 0; }
.note { color: var(--muted); font-size: 13.5px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.pass, .badge.pass { background: var(--ok-bg); color: var(--ok); font-weight: 600; }
td.fail, .badge.fail { background: var(--bad-bg); color: var(--bad); font-weight: 600; }
td.warn, .badge.warn { background: var(--warn-bg); color: var(--warn); font-weight: 600; }
td.skip, .badge.skip { color: var(--muted); }
.badge { display:inline-block; border-radius: 12px; padding: 1px 10px; font-size: 13px; border:1px solid var(--line); }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { background: var(--head); padding: 1px 5px; border-radius: 4px; }
pre { background: var(--head); padding: 10px 12px; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; }
.missing { border-left: 4px solid #d4a72c; background: var(--warn-bg); padding: 10px 14px; border-radius: 4px; }
figure { margin: 10px 0 16px; }
figure img { max-width: 100%; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 4px; }
dl.card { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 8px 0; }
dl.card dt { color: var(--muted); }
dl.card dd { margin: 0; }
details summary { cursor: pointer; color: #0969da; }
footer { color: var(--muted); font-size: 13px; margin-top: 36px; border-top: 1px solid var(--line); padding-top: 10px; }
"""

# A status word → its cell class: the colour a reader scans the matrix by.
STATUS_CLASS = {
    "pass": "pass",
    "deployable": "pass",
    "fail": "fail",
    "not-deployable": "warn",
    "unverified": "warn",
    "unsupported": "skip",
}


class Markup(str):
    """Text that is already HTML (made by these helpers); anything else is escaped on the way in."""


def esc(value: object) -> Markup:
    """`value` as HTML: a Markup passes through, anything else is str()-ed and escaped (quotes too)."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


def tag(name: str, body: object = "", cls: str = "", **attrs: str) -> Markup:
    """<name class=cls attrs…>body</name>, every attribute value escaped."""
    if cls:
        attrs = {"class": cls, **attrs}
    extra = "".join(f' {k.rstrip("_")}="{html.escape(v, quote=True)}"' for k, v in attrs.items())
    return Markup(f"<{name}{extra}>{esc(body)}</{name}>")


def join(parts: Iterable[object], sep: str = "") -> Markup:
    """Escaped parts joined into one fragment."""
    return Markup(sep.join(esc(p) for p in parts))


def para(*parts: object, cls: str = "") -> Markup:
    """A paragraph of escaped parts (Markup parts pass through)."""
    return tag("p", join(parts), cls)


def code(text: object) -> Markup:
    """Inline code: a command, a file name."""
    return tag("code", text)


def badge(status: str, text: str | None = None) -> Markup:
    """A coloured word for a status or verdict (pass, fail, deployable, not-deployable, unverified, unsupported)."""
    return tag("span", text or status, f"badge {STATUS_CLASS.get(status, 'skip')}")


class Cell:
    """A table cell with a class: "num" right-aligns figures, a status class colours it (STATUS_CLASS)."""

    def __init__(self, body: object, cls: str = "") -> None:
        self.body, self.cls = body, cls


def table(header: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "") -> Markup:
    """A table: `header` cells, then one row per sequence (a Cell for a class, anything else escaped)."""
    head = tag("tr", join(tag("th", h) for h in header))
    body = []
    for row in rows:
        cells = (tag("td", c.body, c.cls) if isinstance(c, Cell) else tag("td", c) for c in row)
        body.append(tag("tr", join(cells)))
    return tag("table", Markup(tag("thead", head) + tag("tbody", join(body))), cls)


def definitions(items: Iterable[tuple[str, object]]) -> Markup:
    """A two-column list of (term, value)."""
    return tag("dl", join(Markup(tag("dt", k) + tag("dd", v)) for k, v in items), "card")


def figure(png_data_uri: str, alt: str, caption: object) -> Markup:
    """An inline image (a data: URI from plots.data_uri) with its caption."""
    img = Markup(f'<img src="{html.escape(png_data_uri, quote=True)}" alt="{html.escape(alt, quote=True)}">')
    return tag("figure", Markup(img + tag("figcaption", caption)))


def missing(what: str, command: str, why: str = "") -> Markup:
    """The block a section shows when its tool has not been run: what is missing and the exact command."""
    return tag("div", join([para(what, " ", why) if why else para(what), tag("pre", command)]), "missing")


def section(anchor: str, title: str, *body: object) -> Markup:
    """One numbered-by-order section with an anchor the page's navigation links to."""
    return tag("section", join([tag("h2", title), *body]), id=anchor)


def page(title: str, subtitle: object, summary: Markup, nav: Sequence[tuple[str, str]], body: Iterable[object]) -> str:
    """The whole document: header (title, subtitle, summary pills, section links), the sections, a footer."""
    links = join(tag("a", label, href=f"#{anchor}") for anchor, label in nav)
    head = tag("header", tag("div", join([tag("h1", title), tag("div", subtitle, "sub")]), "inner"))
    main = tag("main", join([summary, tag("nav", links), *body]))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{head}{main}</body></html>\n"
    )


def sci(x: float | None, digits: int = 2) -> str:
    """A figure in scientific notation ("4.35e-02"); "—" for None."""
    return "—" if x is None else f"{x:.{digits}e}"


def bound(x: float) -> str:
    """A bound as a bound: "bound 1e-05", "bound 1.72e-01" — printed beside a value, never as a claim "≤"."""
    return "bound " + f"{x:.2e}".replace(".00e", "e")


def size(n: int | None) -> str:
    """Bytes for a person: "205.4 kB (205,435 bytes)"."""
    if n is None:
        return "not recorded"
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"
