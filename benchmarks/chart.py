"""Draw ``docs/benchmarks.svg`` from ``benchmarks/results/latest.json``: one bar per comparison.

Each bar is tactor's cost relative to a baseline or peer (1.0 = the same; left
of the line: tactor is cheaper). Plain SVG, no plotting library needed.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

from .harness import RESULTS

DOCS = Path(__file__).parent.parent / "docs"
WIDTH, LABEL, BAR_H, GAP = 900, 430, 18, 6


def bars(results: dict[str, object]) -> list[tuple[str, float]]:
    found: list[tuple[str, float]] = []
    for row in results["rows"]:  # type: ignore[attr-defined]
        for name, ratio in row["ratios"].items():
            found.append((f"{row['name']}: vs {name}", float(ratio)))
    return found


def svg(items: list[tuple[str, float]], title: str) -> str:
    """Log-scale horizontal bars of ratios, 1× marked."""
    lo, hi = 0.1, max(10.0, *(r for _, r in items)) if items else 10.0
    span = math.log10(hi) - math.log10(lo)
    plot = WIDTH - LABEL - 60

    def x(ratio: float) -> float:
        clamped = min(max(ratio, lo), hi)
        return LABEL + plot * (math.log10(clamped) - math.log10(lo)) / span

    height = 50 + len(items) * (BAR_H + GAP) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, ratio) in enumerate(items):
        y = 40 + i * (BAR_H + GAP)
        color = "#2a9d8f" if ratio <= 1 else ("#e9c46a" if ratio <= 2 else "#e76f51")
        one = x(1.0)
        left, right = sorted((one, x(ratio)))
        out.append(f'<text x="{LABEL - 8}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        out.append(
            f'<rect x="{left:.1f}" y="{y}" width="{max(right - left, 1):.1f}" '
            f'height="{BAR_H}" fill="{color}"/>'
        )
        out.append(f'<text x="{right + 4:.1f}" y="{y + 13}">{ratio:.2f}×</text>')
    axis_y = 40 + len(items) * (BAR_H + GAP)
    for tick in (0.1, 0.5, 1, 2, 5, 10, 50, 100):
        if lo <= tick <= hi:
            out.append(
                f'<line x1="{x(tick):.1f}" y1="35" x2="{x(tick):.1f}" y2="{axis_y}" '
                f'stroke="#999" stroke-dasharray="{"" if tick == 1 else "2,3"}"/>'
            )
            out.append(
                f'<text x="{x(tick):.1f}" y="{axis_y + 15}" text-anchor="middle">{tick}×</text>'
            )
    out.append(
        f'<text x="{LABEL}" y="{axis_y + 30}">'
        "tactor cost ÷ other (log scale; below 1× tactor is cheaper)</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


README = Path(__file__).parent.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(table: str, readme: Path = README) -> None:
    """Put the current results table between the README's bench markers."""
    text = readme.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    if not rest:
        raise ValueError(f"{readme} has no {START} marker")
    readme.write_text(f"{head}{START}\n{table}{END}{tail}")


def main() -> Path:
    results = json.loads((RESULTS / "latest.json").read_text())
    meta = results["meta"]
    title = f"tactor vs baselines and peers — {meta['when']}, {meta['machine']}"
    target = DOCS / "benchmarks.svg"
    target.write_text(svg(bars(results), title))
    update_readme((RESULTS / "latest.md").read_text())
    return target


if __name__ == "__main__":
    print(main())
