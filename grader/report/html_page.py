"""The frame shared by the HTML reports: one self-contained page, inline CSS, escaped text."""

from __future__ import annotations

from html import escape

from grader.report.text import clean_text

CSS = """
:root { --pass: #1b7f3b; --fail: #b00020; --warn: #a15c00; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; margin: 0;
       background: #f6f7f9; }
main { max-width: 1080px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.5em; margin: 0 0 4px; } h2 { font-size: 1.15em; margin: 28px 0 8px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
          margin-top: 16px; }
section > h2:first-child { margin-top: 4px; }
.muted { color: var(--muted); } .nowrap { white-space: nowrap; } .small { font-size: 0.85em; }
.score { font-size: 2.2em; font-weight: 700; }
.banner { background: #fff8e1; border: 1px solid #f0d58c; border-radius: 6px; padding: 8px 12px; margin-top: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #fafafa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; font-size: 0.85em; padding: 1px 6px; border-radius: 4px; white-space: nowrap; }
.status-pass { color: var(--pass); background: #e6f4ea; }
.status-fail, .status-error { color: var(--fail); background: #fdecee; }
.status-skipped { color: var(--warn); background: #fff4e0; }
.bar { display: inline-block; height: 8px; background: #e9ecef; width: 120px; border-radius: 4px;
       vertical-align: middle; overflow: hidden; }
.bar > span { display: block; height: 100%; background: var(--pass); }
.finding { border-left: 4px solid var(--fail); padding: 6px 12px; margin: 10px 0; background: #fffafa; }
.finding.skipped { border-left-color: var(--warn); background: #fffcf5; }
.finding h3 { font-size: 1em; margin: 0 0 4px; }
dl.parts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0 0; }
dl.parts dt { font-weight: 600; color: var(--muted); } dl.parts dd { margin: 0; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em; }
pre { background: #f4f4f4; padding: 8px 10px; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; }
.mismatch { background: #fdecee; color: var(--fail); font-weight: 600; }
.layers { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
a { color: #1a56c4; }
"""


def esc(text: object) -> str:
    """Escape for HTML text and attribute values, after dropping colour codes and control chars."""
    return escape(clean_text(text), quote=True)


def status_badge(status: str, label: str | None = None) -> str:
    return f'<span class="status status-{esc(status)}">{esc(label or status)}</span>'


def progress_bar(fraction: float) -> str:
    width = max(0.0, min(1.0, fraction)) * 100
    return f'<span class="bar" aria-hidden="true"><span style="width:{width:.0f}%"></span></span>'


def page(title: str, body: str, script: str = "") -> str:
    """A complete HTML document; `script` is inline JavaScript (optional)."""
    script_tag = f"<script>{script}</script>" if script else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main>{script_tag}</body></html>\n")
