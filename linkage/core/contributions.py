"""What each enrollee owes: the personal contribution of their tier, less their subsidy
category's reduction, by the rules a job config gives for the year (`contributions`).

Pure rules, no files: the day's enrolment check (linkage/outputs/daily.py) sums these over a
receipt's members and sets the sum beside the receipt's amount. A late enrollee pays in full
(by default the government's part too) and a newborn the personal contribution in full: no
category reduces either. A member the rules cannot price (a tier or category the year does not
know) gets no amount and a problem in words, so a receipt is never passed on a guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.core.config import Contributions, YearRules

REGULAR, LATE, NEWBORN = "regular", "late", "newborn"
KIND_WORDS = {REGULAR: "正常", LATE: "逾期", NEWBORN: "新生儿"}
_SPLIT = re.compile(r"\s*[+＋、,，;；/]\s*")


@dataclass
class Priced:
    """Per member: the yuan due (NaN where it cannot be priced), why not, the kind of
    enrolment, the category as the rules name it and what the category took off."""

    due: np.ndarray
    problem: np.ndarray
    kind: np.ndarray
    category: np.ndarray
    reduction: np.ndarray


def rules_for(contributions: Contributions | None, year: int) -> tuple[int, YearRules] | None:
    """The rules in force in ``year``: those of the latest year given that is not later."""
    years = sorted(y for y in (contributions.years if contributions else {}) if y <= year)
    return (years[-1], contributions.years[years[-1]]) if years else None


def enrolment_kind(contributions: Contributions, kind_text: np.ndarray) -> np.ndarray:
    """regular, late or newborn from what the roster's enrol_kind says (blank: regular)."""
    text = pd.Series(kind_text, dtype=object).fillna("").astype(str).str.strip()
    return np.select([text.isin(contributions.late).to_numpy(),
                      text.isin(contributions.newborn).to_numpy()], [LATE, NEWBORN],
                     REGULAR).astype(object)


def price(rules: YearRules, tier: np.ndarray, subsidy: np.ndarray, kind: np.ndarray,
          age: np.ndarray) -> Priced:
    """Price each member (``age`` in the contribution year, -1 where unknown).

    ``subsidy`` is the category as entered; several categories joined by + 、 , take the
    largest reduction. A category with ``min_age`` reduces only from that age (an unknown age
    is taken as the roster claims it).
    """
    n = len(tier)
    tier = pd.Series(tier, dtype=object).fillna("").astype(str).str.strip().to_numpy(dtype=object)
    personal = pd.Series(tier).map(rules.personal).to_numpy(dtype=float)
    problem = np.full(n, "", dtype=object)
    unpriced = np.isnan(personal)
    problem[unpriced] = [f"tier {t!r} has no contribution in the rules" if t else "no tier"
                         for t in tier[unpriced]]
    spelling = {word: name for name, rule in rules.categories.items()
                for word in (name, *rule.also)}
    category = np.full(n, None, dtype=object)
    off = np.zeros(n)
    codes, texts = pd.factorize(pd.Series(subsidy, dtype=object).fillna("").astype(str))
    for code, text in enumerate(texts):
        rows = np.flatnonzero(codes == code)
        parts = [p for p in _SPLIT.split(text.strip()) if p]
        unknown = [p for p in parts if p not in spelling]
        if unknown:
            problem[rows] = np.where(problem[rows] == "", "subsidy category "
                                     + "、".join(unknown) + " is not in the rules", problem[rows])
            continue
        names = list(dict.fromkeys(spelling[p] for p in parts))
        if not names:
            continue
        category[rows] = "+".join(names)
        for row in rows:
            best = 0.0
            for name in names:
                rule = rules.categories[name]
                if rule.min_age is not None and 0 <= age[row] < rule.min_age:
                    continue
                amount = rule.reduction.get(tier[row], 0.0)
                best = max(best, personal[row] if amount == "full" else float(amount))
            off[row] = 0.0 if np.isnan(best) else best
    young = np.array([bool(c) and any(rules.categories[x].min_age is not None
                                      and 0 <= a < rules.categories[x].min_age
                                      for x in c.split("+")) for c, a in zip(category, age)],
                     dtype=bool) if n else np.zeros(0, bool)
    problem[young & (problem == "")] = "younger than the category's age: no reduction"
    full_late = personal + (rules.government if rules.late_pays == "personal_and_government"
                            else 0.0)
    full_newborn = personal + (rules.government
                               if rules.newborn_pays == "personal_and_government" else 0.0)
    off = np.where(kind == REGULAR, off, 0.0)
    due = np.select([kind == LATE, kind == NEWBORN], [full_late, full_newborn],
                    np.maximum(personal - off, 0.0))
    due[unpriced | np.isin(problem, [""], invert=True) & ~young] = np.nan
    return Priced(due, problem, kind, category, off)
