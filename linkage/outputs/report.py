"""The run report: one self-contained HTML file a data team opens offline and can mail around.

Everything is inline (CSS, charts as SVG), so the page makes no request beyond itself: the
county office's machines are often offline, and a report that fetches a CDN would leak that
a linkage run happened. Jinja2 autoescapes every value that comes from the data (names of
villages, clerks, rules); only the SVG that matplotlib wrote is inserted as markup.
"""
from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from linkage.outputs import charts
from linkage.outputs.households import report_context as household_context
from linkage.outputs.quality import ERROR_KINDS
from linkage.outputs.view import RunView

TEMPLATES = Path(__file__).parent / "templates"
TOP_ROWS = 30
REVIEW_ROWS = 25  # review pairs listed in the report; the rest are in review_pairs.csv
BAND_REASON = "score in the review band"
MIN_RECORDS = 10  # a village with 2 records and 1 error is not the worst village
KIND_LABELS = {"id_missing": "ID missing", "id_invalid": "ID invalid", "id_repaired": "ID repaired",
               "name_differs": "name differs", "birth_differs": "birth differs",
               "gender_differs": "gender differs", "not_in_registry": "not in registry"}


def environment() -> Environment:
    """Templates of this package; HTML autoescaped, the plain-text README not."""
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(enabled_extensions=("html",)),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = _num
    env.filters["pct"] = lambda v, digits=1: "" if v is None else f"{100 * float(v):.{digits}f}%"
    env.filters["fixed"] = lambda v, digits=3: "" if v is None else f"{float(v):.{digits}f}"
    env.filters["sci"] = lambda v: "" if v is None else f"{float(v):.3g}"
    return env


def _num(value) -> str:
    """1,234,567 for counts; blank for what is missing or not a number (an older summary)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if math.isnan(number):
        return ""
    return f"{int(number):,}" if number.is_integer() else f"{number:,.3f}"


def logit_weight(p: float) -> float:
    """A probability threshold on the posterior scale as a match weight: log2(p / (1 - p)).

    The weights already include the model's prior, so a pair's posterior probability is
    2^w / (1 + 2^w) and the thresholds compare directly with the weights.
    """
    return float(np.log2(p / (1 - p)))


def render_report(view: RunView, path: Path, manifest: dict[str, dict],
                  villages: pd.DataFrame, clerks: pd.DataFrame | None,
                  errors: pd.DataFrame, households: pd.DataFrame | None = None) -> Path:
    """Write report.html for the run the view describes; ``manifest`` lists the files written
    beside it ({name: {"files": [...], "rows": n}}); ``households`` (household_links) adds the
    household section."""
    s = view.summary
    thresholds = s.get("thresholds") or {"match": view.config.match_threshold,
                                         "review": view.config.review_threshold}
    match_w, review_w = logit_weight(thresholds["match"]), logit_weight(thresholds["review"])
    comparisons = _comparisons(view.model, s.get("comparison_levels", {}))
    timings = {k: float(v) for k, v in (s.get("timings") or {}).items()}
    stages = _stages(s, manifest)
    min_records = MIN_RECORDS if (villages["records"] >= MIN_RECORDS).any() else 1
    ranked = villages[villages["records"] >= min_records]
    context = {
        "title": f"Linkage run report: {s.get('job', view.config.job)}",
        "s": s,
        "view": view,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "stages": stages,
        "funnel_svg": Markup(charts.funnel(stages)),
        "per_source": s.get("records", {}).get("per_source", {}),
        "rules": s.get("blocking", {}).get("rules", []),
        "blocking_svg": Markup(charts.blocking(s["blocking"]["rules"]))
        if s.get("blocking", {}).get("rules") else None,
        "recall": s.get("blocking_recall"),
        "model": view.model,
        "prior_weight": logit_weight(min(max(view.model.get("prior", 0.5), 1e-12), 1 - 1e-12)),
        "comparisons": comparisons,
        "weights_svg": Markup(charts.model_weights(comparisons)) if comparisons else None,
        "thresholds": thresholds,
        "match_weight": match_w,
        "review_weight": review_w,
        "histogram_svg": Markup(charts.weight_histogram(view.weights, review_w, match_w))
        if view.weights is not None and len(view.weights) else None,
        "n_weights": 0 if view.weights is None else len(view.weights),
        "accuracy": s.get("accuracy"),
        "outputs": [{"name": k, **v, "description": DESCRIPTIONS.get(k, "")}
                    for k, v in manifest.items()],
        "error_kinds": [(k, KIND_LABELS.get(k, k)) for k in ERROR_KINDS],
        "overall": _overall(errors),
        "villages": ranked.head(TOP_ROWS).to_dict("records"),
        "n_villages": len(villages),
        "min_records": min_records,
        "villages_svg": _maybe(charts.village_errors(ranked)),
        "clerks": None if clerks is None else clerks.head(TOP_ROWS).to_dict("records"),
        "n_clerks": 0 if clerks is None else len(clerks),
        "households": _household_section(households),
        "review": _review_section(view),
        "changes": s.get("changes"),
        "timings": timings,
        "timings_svg": Markup(charts.timings(timings)) if timings else None,
    }
    html = environment().get_template("report.html").render(**context)
    path.write_text(html, encoding="utf-8")
    return path


def _review_section(view: RunView) -> dict | None:
    """The pairs for review by why they wait, and the first of them, each linked to the review
    app when the config names its address.

    A pair's address in the app is an HMAC of the pair under the server's secret, so links are
    made only when this run sees the same LINKAGE_SECRET_KEY as the server; otherwise the
    section links the queue. Record ids only: the report is mailed around, names and ID
    numbers stay in the app.
    """
    review = view.review
    if review is None:
        return None
    reason = review["reason"].fillna("").astype(str)
    in_band = reason.isin(["", BAND_REASON])
    refused = review[~in_band]
    url = view.config.spec.review_url
    secret = os.environ.get("LINKAGE_SECRET_KEY")
    rows = []
    for r in review.head(REVIEW_ROWS).itertuples(index=False):
        link = None
        if url and secret:
            from linkage.store.review import pair_ref
            from linkage.web.queue import url_token

            token = pair_ref((r.source_l, r.record_l), (r.source_r, r.record_r)).token
            link = f"{url.rstrip('/')}/pair/{url_token(secret.encode('utf-8'), token)}"
        rows.append({"left": f"{r.source_l}:{r.record_l}", "right": f"{r.source_r}:{r.record_r}",
                     "probability": r.probability, "reason": r.reason or BAND_REASON,
                     "refused": bool(r.reason) and r.reason != BAND_REASON, "link": link})
    kinds = refused["reason"].astype(str).str.extract(r"(kept apart by [^(]*|two registry "
                                                      r"persons)")[0].fillna("other")
    return {"total": len(review), "in_band": int(in_band.sum()), "refused": len(refused),
            "refused_kinds": {("registry records of two persons" if k == "two registry persons"
                               else k.strip()): int(v) for k, v in kinds.value_counts().items()},
            "rows": rows, "shown": len(rows), "queue": f"{url.rstrip('/')}/queue" if url else None,
            "linked": bool(url and secret)}


def _maybe(svg: str | None) -> Markup | None:
    return Markup(svg) if svg else None


def _household_section(households: pd.DataFrame | None) -> dict | None:
    section = household_context(households)
    if section:
        section["svg"] = _maybe(section["svg"])
    return section


def _stages(s: dict, manifest: dict[str, dict]) -> list[tuple[str, int, str]]:
    """The funnel: (label, count, colour key) from records read to the office's lists."""
    r, e = s.get("records", {}), s.get("entities", {})
    bands = s.get("bands", {})
    out = [("records read", r.get("read", 0), "records"),
           ("records rejected", r.get("rejected", 0), "bad"),
           ("records linked", r.get("linked", 0), "records"),
           ("candidate pairs", s.get("blocking", {}).get("candidate_pairs", 0), "light"),
           ("pairs: match band", bands.get("match", 0), "match"),
           ("pairs: review band", bands.get("review", 0), "review"),
           ("pairs: non-match band", bands.get("non_match", 0), "non_match"),
           ("pairs: match band, merge refused (to review)",
            e.get("refused_merges", 0), "review"),
           ("pairs for review", s.get("review_pairs", 0), "review"),
           ("entities", e.get("total", 0), "entities")]
    for status, count in sorted((e.get("by_status") or {}).items()):
        out.append((f"entities {status}", count, "good" if status == "VERIFIED" else "bad"))
    out.append(("duplicate enrolments (persons)", e.get("duplicate_enrolment", 0), "bad"))
    if "roster" in manifest:
        out.append(("card roster rows (cards can be issued)", manifest["roster"]["rows"], "good"))
    if "roster_deferred" in manifest:
        out.append(("card roster: deferred (暂缓制卡)", manifest["roster_deferred"]["rows"], "bad"))
    return out


def _comparisons(model: dict, level_counts: dict) -> list[dict]:
    out = []
    for comp in model.get("comparisons", []):
        counts = level_counts.get(comp["name"], {})
        levels = [{**lv, "pairs": counts.get(lv["label"])} for lv in comp["levels"]]
        out.append({"name": comp["name"], "tf_column": comp.get("tf_column"),
                    "levels": levels, "missing": counts.get("missing")})
    return out


def _overall(errors: pd.DataFrame) -> dict:
    n = len(errors)
    any_error = errors[ERROR_KINDS].any(axis=1).sum() if n else 0
    return {"records": n, "with_error": int(any_error), "rate": any_error / n if n else None,
            "kinds": {k: int(errors[k].sum()) for k in ERROR_KINDS}}


DESCRIPTIONS = {
    "roster": "card roster (制卡名册): one row per person a card can be issued to",
    "roster_deferred": "暂缓制卡: persons whose card must wait, with the reason",
    "registry_duplicates": "疑似重复户籍: registry records that look like one person registered "
                           "twice, for the registry office",
    "entity_changes": "实体变更: ids of the previous run merged away or split, and where their "
                      "records are now (a card issued to an old id is traced)",
    "not_verified": "insurance records no registry person confirms",
    "conflicts": "records of CONFLICT entities",
    "duplicate_enrolments": "each enrolment of persons insured more than once",
    "village_quality": "errors per source, township and village",
    "clerk_quality": "errors per clerk",
    "receipt_book_quality": "errors per receipt book",
    "record_errors": "every insurance record with an error: entered vs registry",
    "household_links": "each NCMS household beside its registry household(s): the "
                       "re-collection worklist",
}

