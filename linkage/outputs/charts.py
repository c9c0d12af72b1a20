"""The run report's charts, drawn by matplotlib as SVG text to inline in the HTML.

Figures are built with ``matplotlib.figure.Figure`` and saved through matplotlib's SVG canvas,
never pyplot, so no GUI backend is touched and the process-wide backend stays as it was (the
Agg-or-nothing setup a server needs). Text stays text in the SVG (``svg.fonttype: none``): the
browser draws Chinese village names with the reader's own fonts instead of matplotlib's
DejaVu, which has no Chinese glyphs. Element ids get a per-chart prefix so several SVGs can
live in one page.

Labels come from the data (villages, clerks, rules and levels as configured), so they are shown
as typed: a '$' is escaped rather than starting mathtext (``$x^{$`` would abort the run), and
TeX is off whatever a matplotlibrc says. Math text is not switched off as a whole
(``text.parse_math``): the log-scale tick labels are mathtext, 10² rather than $10^{2}$.
"""
from __future__ import annotations

import functools
import io
import re
import warnings

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

COLOURS = {"match": "#2e7d32", "review": "#f9a825", "non_match": "#9e9e9e",
           "records": "#1565c0", "entities": "#6a1b9a", "bad": "#c62828", "good": "#2e7d32",
           "light": "#90caf9"}
WIDTH, HALF = 8.0, 5.2  # inches: full-width charts, charts beside a table
LABEL_CHARS = 60  # a longer name is cut in the chart; the table beside it shows it whole
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _text(label, limit: int = LABEL_CHARS) -> str:
    """A label from the data as matplotlib should draw it: literally, and at most ``limit``
    characters.

    Escaping every '$' as '\\$' makes the text plain for matplotlib (no even count of unescaped
    dollars) and matplotlib draws '\\$' as '$', so every label round-trips, backslashes
    included. Control characters (a line break, a NUL) become spaces: one label, one line.
    """
    text = _CONTROL.sub(" ", str(label))
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text.replace("$", r"\$")


def _no_tex(draw):
    """Draw the chart with TeX off: a Text takes usetex from rcParams when it is made."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        with mpl.rc_context({"text.usetex": False}):
            return draw(*args, **kwargs)
    return drawn


def to_svg(fig: Figure, name: str) -> str:
    """The figure as an inline <svg> element (no XML prolog, ids prefixed with ``name``)."""
    buf = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*Glyph .* missing from font.*")
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\bid="', f'id="{name}-', svg)
    svg = re.sub(r"url\(#", f"url(#{name}-", svg)
    svg = re.sub(r'href="#', f'href="#{name}-', svg)
    return svg


def _figure(height: float, width: float = WIDTH) -> Figure:
    """A figure without a layout engine: the tight bounding box at save time fits the labels,
    and one layout pass fewer halves the drawing time."""
    return Figure(figsize=(width, max(height, 1.6)))


def _label_bars(ax, bars, values, fmt="{:,.0f}") -> None:
    for bar, value in zip(bars, values):
        ax.annotate(fmt.format(value), (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)


def _clean(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


@_no_tex
def funnel(stages: list[tuple[str, int, str]]) -> str:
    """Counts per stage (label, count, colour key) as horizontal bars on a log scale, since
    candidate pairs outnumber conflicts a thousandfold."""
    fig = _figure(0.3 * len(stages) + 0.6, HALF)
    ax = fig.add_subplot()
    labels = [_text(s[0]) for s in stages][::-1]
    values = np.array([max(s[1], 0) for s in stages][::-1], dtype=float)
    bars = ax.barh(labels, np.maximum(values, 0.8), color=[COLOURS[s[2]] for s in stages][::-1])
    _label_bars(ax, bars, values)
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(0.8, max(values.max(), 1) * 8)
    ax.set_xlabel("count (log scale)", fontsize=8)
    _clean(ax)
    return to_svg(fig, "funnel")


@_no_tex
def blocking(rules: list[dict]) -> str:
    """Pairs each blocking rule generated and the pairs no earlier rule had found."""
    fig = _figure(0.32 * len(rules) + 0.8, 6.5)
    ax = fig.add_subplot()
    y = np.arange(len(rules))[::-1]
    pairs = np.array([r.get("pairs", 0) for r in rules], dtype=float)
    new = np.array([r.get("new_pairs", 0) for r in rules], dtype=float)
    ax.barh(y + 0.2, pairs, height=0.4, color=COLOURS["light"], label="pairs")
    bars = ax.barh(y - 0.2, new, height=0.4, color=COLOURS["records"], label="new pairs")
    _label_bars(ax, bars, new)
    ax.set_yticks(y, [_text(r["name"]) for r in rules])
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlabel("candidate pairs", fontsize=8)
    _clean(ax)
    return to_svg(fig, "blocking")


@_no_tex
def model_weights(comparisons: list[dict]) -> str:
    """log2(m/u) per level of every comparison, grouped by comparison on one axis (one axis
    draws several times faster than a panel per comparison)."""
    labels, weights, edges = [], [], []
    for comp in comparisons:
        for lv in comp["levels"]:
            labels.append(_text(f"{comp['name']}: {lv['label']}"))
            weights.append(float(lv["weight"]))
        edges.append(len(labels))
    fig = _figure(0.17 * len(labels) + 0.7, HALF)
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]
    w = np.array(weights)
    bars = ax.barh(y, w, color=np.where(w >= 0, COLOURS["good"], COLOURS["bad"]), height=0.7)
    for bar, value in zip(bars, w):
        ax.annotate(f"{value:+.1f}", (value, bar.get_y() + bar.get_height() / 2),
                    xytext=(3 if value >= 0 else -3, 0), textcoords="offset points",
                    va="center", ha="left" if value >= 0 else "right", fontsize=6.5)
    for edge in edges[:-1]:
        ax.axhline(len(labels) - edge - 0.5, color="#bbb", linewidth=0.6)
    ax.axvline(0, color="#555", linewidth=0.8)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_xlim(min(w.min(), 0) - 3, max(w.max(), 0) + 3)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("match weight log2(m/u), bits", fontsize=8)
    _clean(ax)
    return to_svg(fig, "weights")


@_no_tex
def weight_histogram(weights: np.ndarray, review_weight: float, match_weight: float) -> str:
    """Candidate pairs by match weight, with the review and match thresholds and their bands."""
    fig = _figure(3.2)
    ax = fig.add_subplot()
    w = np.asarray(weights, dtype=float)
    least, most = (w.min(), w.max()) if len(w) else (0.0, 0.0)
    if not (np.isfinite(least) and np.isfinite(most)):  # only then copy millions of weights
        w = w[np.isfinite(w)]
        least, most = (w.min(), w.max()) if len(w) else (0.0, 0.0)
    lo, hi = min(least, review_weight) - 1, max(most, match_weight) + 1
    counts, edges = np.histogram(w, bins=np.linspace(lo, hi, 90))
    centres = (edges[:-1] + edges[1:]) / 2
    band = np.where(centres >= match_weight, "match",
                    np.where(centres >= review_weight, "review", "non_match"))
    for name in ("non_match", "review", "match"):  # one filled outline per band: 3 paths, not 90
        ax.stairs(np.where(band == name, counts, 0), edges, fill=True, color=COLOURS[name],
                  label=name.replace("_", "-"))
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(0, 0.92))
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(bottom=0)
    for value, name, side in ((review_weight, "review", -1), (match_weight, "match", 1)):
        ax.axvline(value, color="#333", linestyle="--", linewidth=1)
        ax.annotate(f"{name} ≥ {value:+.2f}", (value, 1), xycoords=("data", "axes fraction"),
                    xytext=(4 * side, -10), textcoords="offset points", fontsize=8,
                    ha="left" if side > 0 else "right")
    ax.set_xlabel("match weight (bits, prior included)", fontsize=8)
    ax.set_ylabel("candidate pairs", fontsize=8)
    _clean(ax)
    return to_svg(fig, "histogram")


@_no_tex
def village_errors(villages: pd.DataFrame, top: int = 25) -> str | None:
    """The villages with the highest error rates (``villages`` sorted worst first)."""
    worst = villages.head(top)
    if worst.empty:
        return None
    fig = _figure(0.26 * len(worst) + 0.8)
    ax = fig.add_subplot()
    labels = [f"{_text(r.township or '?', 30)} {_text(r.village or '?', 30)} "
              f"({_text(r.source, 20)}, {r.records:,})" for r in worst.itertuples()][::-1]
    rates = worst["error_rate"].to_numpy(dtype=float)[::-1] * 100
    bars = ax.barh(labels, rates, color=COLOURS["bad"])
    _label_bars(ax, bars, rates, "{:.0f}%")
    ax.set_xlim(0, 105)
    ax.set_xlabel("records with at least one error (%)", fontsize=8)
    _clean(ax)
    return to_svg(fig, "villages")


@_no_tex
def timings(stages: dict[str, float]) -> str:
    """Seconds per pipeline stage."""
    fig = _figure(0.3 * len(stages) + 0.6, HALF)
    ax = fig.add_subplot()
    names = list(stages)[::-1]
    values = np.array([stages[n] for n in names], dtype=float)
    bars = ax.barh([_text(n) for n in names], values, color=COLOURS["records"])
    _label_bars(ax, bars, values, "{:.2f} s")
    ax.set_xlim(0, max(values.max(), 0.01) * 1.2)
    ax.set_xlabel("seconds", fontsize=8)
    _clean(ax)
    return to_svg(fig, "timings")
