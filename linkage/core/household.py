"""Household linkage: households correspond across sources, then members are assigned inside them.

Why: the NCMS roster lists families by household code and the police registry is kept by 户号,
so who a record is can often be read only from its household: a child keyed under a milk name,
with no ID and a year-only birthdate, is the one child of that age left in the household whose
parents are already linked. And two members of one household are two people, however alike.

The steps (pure functions over numpy/pandas columns; both engines, ``linkage add`` and
``linkage explain`` call :func:`household_step`):

1. **Anchors**: pairs between an insurance household and a registry household whose field
   weight reaches the match threshold. Household pairs with an anchor are candidate
   correspondences; urban records have no household and stay person-level.
2. **Member pairs** (the household blocking rule): every member of one household against every
   member of the other, scored by the caller with the run's comparisons and model. They depend
   on the first pass, so they are counted after it. Two records of one insurance household
   that both reach the review threshold against one registry member are also compared with
   each other, so that step 6 can tell one member keyed twice from two people.
3. **Assignment** inside each correspondence, one to one, by
   ``scipy.optimize.linear_sum_assignment`` over the field weight without place (the households
   already say where) plus relation-to-head consistency (户主/本人, spouse, children by birth
   order). Each correspondence is assigned on its own: a married daughter listed in her parents'
   and her husband's NCMS households links from both to her one registry record.
4. **Household prior**: the share of assigned pairs that are one person, fitted on those pairs
   with the model's m and u held (EM on the prior alone). An assigned pair's weight is that prior
   plus its field evidence, in place of the random-pair prior and the place evidence; the one
   anchor of a correspondence that rests on it alone keeps its own weight (it is all the
   evidence that correspondence has, unless a reviewer confirmed the correspondence).
5. A correspondence resting on one anchor whose insurance record is already assigned strongly
   inside another correspondence is dropped: a namesake or a registry double, not a split.
6. **Reviewers' decisions** on correspondences (the review app's 同一户 / 不是同一户) overrule
   the step: a rejected household pair is no correspondence (its members are not assigned
   inside it), a confirmed one is kept where step 5 would drop it.
7. **Contradictions** take ``penalty`` bits: a member pair left unassigned while one of its
   members is assigned strongly to another member (twins, a father and a son of one name); a
   pair whose two records are each assigned to a different registry person (namesakes with the
   same birthdate in different households). The double of a member keyed twice is no
   contradiction: it is that member. Two hard classes also never merge (cannot-link):
   two records of one source household that are not one member keyed twice (the same relation,
   the same full birthdate and a close name; or, where the registry household holds one person
   for both, a name alike, an ID one keystroke off or a date one typo off beside the rest), and
   a shared ID whose birthdate is a generation away from a record's (a parent's ID on a child).
8. **A married daughter listed at home**: a daughter (女) whose household, otherwise linked,
   has no registry record for her, paired in the review band with the one wife or
   daughter-in-law of her name and birthdate assigned in another household, loses the
   place's evidence against the pair (she lives with her husband by construction).

Results depend only on pairs at or above the review threshold and on member pairs (regenerated
here), so an engine that keeps only those (the Spark engine) gets the same bits as one that
keeps every candidate. Ties are broken by record position.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from matchers.base import MISSING, as_objects

SENIOR = ("head", "spouse", "parent")
JUNIOR = ("child", "grandchild")
SINGLE_ROLES = ("head", "spouse")  # roles a household holds once
GENERATION_YEARS = 15  # a shared ID whose birth years differ this much: a parent's ID on a child
# Birthdates the record itself gives (not read from its ID number, nor missing).
RECORD_DATES = ("exact", "jan1", "year_month", "year")
PRIOR_BOUNDS = (0.05, 0.99)
# A reviewer's decision on a correspondence: one household, not one household, or no say.
SAME, DIFFERENT = "same", "different"


@dataclass(frozen=True)
class Params:
    strong: float  # match weight of the match threshold
    review: float  # match weight of the review threshold
    penalty: float = 20.0
    relation_bits: float = 1.0
    max_members: int = 30


@dataclass(frozen=True)
class Fields:
    """Where the step finds its comparisons among the model's (None where absent)."""

    name: int | None = None
    place: int | None = None
    birth: int | None = None
    birth_exact: int | None = None
    id_number: int | None = None
    id_birth_conflict: int | None = None
    id_same: tuple[int, ...] = ()  # levels of one valid ID (not the birth-conflict one)
    id_typo: tuple[int, ...] = ()  # one digit mistyped: the check character says one side is
    birth_different: int | None = None
    name_close: tuple[int, ...] = ()  # name levels that are one name spelt alike
    name_alike: tuple[int, ...] = ()  # ... or sounding alike, cut short, characters swapped
    name_different: int | None = None

    @classmethod
    def of(cls, comparisons) -> Fields:
        names = [c.name for c in comparisons]

        def index(name):
            return names.index(name) if name in names else None

        def level(k, label):
            labels = list(comparisons[k].labels) if k is not None else []
            return labels.index(label) if label in labels else None

        birth, ident = index("birth_date"), index("id_number")
        same = tuple(k for k in (level(ident, lab) for lab in (
            "exact_valid", "exact_upgraded", "check_digit_only")) if k is not None)
        name = index("name")
        close = tuple(k for k in (level(name, lab) for lab in (
            "exact", "normalised", "lookalike")) if k is not None)
        alike = close + tuple(k for k in (level(name, lab) for lab in (
            "pinyin", "phonetic", "truncated", "swapped")) if k is not None)
        typo = tuple(k for k in (level(ident, "one_digit"),) if k is not None)
        return cls(name, index("place"), birth, level(birth, "exact"), ident,
                   level(ident, "exact_birth_conflict"), same, typo, level(birth, "different"),
                   close, alike, level(name, "different"))


@dataclass
class HouseholdResult:
    """The household step's outcome over the given pairs followed by the member pairs it added."""

    left: np.ndarray  # all pairs: the given ones, then the added member pairs
    right: np.ndarray
    gamma: np.ndarray
    parts: np.ndarray
    field_weight: np.ndarray  # before the household term
    bits: np.ndarray  # household term per pair
    cannot: np.ndarray  # pairs that must never share an entity
    note: np.ndarray  # per pair, why its household term is what it is ("" where 0)
    correspondences: pd.DataFrame
    member_pairs: int  # pairs inside the correspondences (the household rule's pairs)
    added: int  # member pairs no blocking rule had found
    prior: float  # the household prior the assigned pairs were weighed with

    @property
    def weight(self) -> np.ndarray:
        return self.field_weight + self.bits


def keep_floor(model, review_weight: float) -> float:
    """The model weight below which no pair can reach the review band: a neutral milk name
    lifts a pair by at most its name's most negative level weight (the household step only
    lifts member pairs, which it regenerates itself, and otherwise only lowers)."""
    names = [c for c in model.comparisons if c.name == "name"]
    lift = max(0.0, -float(min(names[0].weights()[:-1]))) if names else 0.0
    return review_weight - lift


def worth_keeping(weight: np.ndarray, gamma: np.ndarray, same_household: np.ndarray,
                  fields: Fields, floor: float) -> np.ndarray:
    """Which scored candidate pairs a later step can still need, so every engine streams the
    rest away: a weight of at least ``floor`` (the field weight against the review weight
    where the engine knows the name evidence, as the local one does; the model weight against
    :func:`keep_floor` where it does not), two records of one source household (a hard
    negative to keep apart), or an ID whose birthdate is a generation away from the record's
    (a child carrying a parent's ID). Member pairs below it need not be kept: the household
    step regenerates them. Reviewed pairs are kept besides, by the caller."""
    keep = (weight >= floor) | same_household
    if fields.id_number is not None and fields.id_birth_conflict is not None:
        keep |= gamma[:, fields.id_number] == fields.id_birth_conflict
    return keep


def household_codes(records: pd.DataFrame) -> np.ndarray:
    """Household code per record, keyed by (source, household_id); -1 where none is known."""
    if "household_id" not in records:
        return np.full(len(records), -1, dtype=np.int64)
    hid = records["household_id"]
    blank = hid.isna() | (hid.astype(str).str.strip() == "")
    key = records["source"].astype(str) + "\x1f" + hid.astype(str)
    codes, _ = pd.factorize(key.where(~blank, None))
    return codes.astype(np.int64)


def household_step(
    records: pd.DataFrame,
    authority: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    gamma: np.ndarray,
    parts: np.ndarray,
    field_weight: np.ndarray,
    model,
    params: Params,
    score_pairs: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    prior: float | None = None,
    decided: pd.DataFrame | None = None,
) -> HouseholdResult:
    """Household terms for the given scored pairs, plus the member pairs it had to add.

    ``score_pairs(left, right)`` returns (gamma, parts, field weight) of new pairs, exactly as
    the given ones were scored. ``model`` is the run's FSModel (m and u for the prior).
    ``prior``: the household prior a full run fitted (``linkage add`` sees only some
    households, so it reuses the run's); fitted here when None. ``decided``: reviewers'
    standing decisions on correspondences (insurance_household, registry_household as
    'source:household_id', decision :data:`SAME` or :data:`DIFFERENT`), which overrule the
    step (see step 6 above).
    """
    n = len(records)
    fields = Fields.of(model.comparisons)
    authority = np.asarray(authority, dtype=bool)
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    hh = household_codes(records)
    role = _roles(records)
    year = (records["birth_year"].to_numpy(dtype=np.int64) if "birth_year" in records
            else np.zeros(n, dtype=np.int64))
    labels = _household_labels(records, hh)

    corr = _correspondences(hh, authority, left, right, field_weight, params)
    corr["decision"] = _decisions_of(corr, labels, decided)
    # A rejected correspondence is none: no member of it is paired or assigned inside it.
    members = _member_pairs(hh, corr[corr["decision"] != DIFFERENT])

    # 2. member pairs: every member against every member of each candidate correspondence
    given = pd.Series(np.arange(len(left)), index=np.minimum(left, right) * n
                      + np.maximum(left, right))
    given = given[~given.index.duplicated()]
    mi, mr = members["i"].to_numpy(dtype=np.int64), members["r"].to_numpy(dtype=np.int64)
    at = given.reindex(np.minimum(mi, mr) * n + np.maximum(mi, mr)).to_numpy()
    missing = np.isnan(at)
    new_l, new_r = np.minimum(mi, mr)[missing], np.maximum(mi, mr)[missing]
    g_new, p_new, w_new = _scored(score_pairs, new_l, new_r, gamma, parts)
    pair = np.empty(len(members), dtype=np.int64)
    pair[~missing] = at[~missing].astype(np.int64)
    pair[missing] = len(left) + np.arange(int(missing.sum()))
    members["pair"] = pair
    all_left, all_right = np.concatenate([left, new_l]), np.concatenate([right, new_r])
    all_gamma = np.concatenate([gamma, g_new])
    all_parts = np.concatenate([parts, p_new])
    all_w = np.concatenate([np.asarray(field_weight, dtype=np.float64), w_new])

    # Two records of one insurance household that both reach the review threshold against one
    # registry member are compared with each other, whatever the blocking rules found: the
    # hard-negative rule then tells one member keyed twice from two people.
    tw_l, tw_r, tw_sole = _double_candidates(members, all_w[pair], params.review, n)
    sole_keys = tw_l[tw_sole] * n + tw_r[tw_sole]
    unseen = np.isnan(given.reindex(tw_l * n + tw_r).to_numpy())
    tw_l, tw_r = tw_l[unseen], tw_r[unseen]
    g_tw, p_tw, w_tw = _scored(score_pairs, tw_l, tw_r, gamma, parts)
    all_left, all_right = np.concatenate([all_left, tw_l]), np.concatenate([all_right, tw_r])
    all_gamma = np.concatenate([all_gamma, g_tw])
    all_parts = np.concatenate([all_parts, p_tw])
    all_w = np.concatenate([all_w, w_tw])
    added = int(missing.sum()) + int(tw_l.size)

    # Two records of one source household, and a parent's ID on a child: never one person.
    dated = (records["birth_quality"].isin(RECORD_DATES).to_numpy()
             if "birth_quality" in records else year > 0)
    jan1 = (records["birth_quality"].eq("jan1").to_numpy() if "birth_quality" in records
            else np.zeros(n, dtype=bool))
    sole = np.isin(np.minimum(all_left, all_right) * n + np.maximum(all_left, all_right),
                   sole_keys)
    cannot, note, twice = _hard_negatives(hh, role, np.where(dated, year, 0), jan1, all_left,
                                          all_right, all_gamma, all_parts, all_w, fields, params,
                                          sole)
    # Below the review threshold whatever the fields say: they never merge, nor wait in review.
    bits = np.where(cannot, np.minimum(-params.penalty, params.review - 1.0 - all_w), 0.0)

    def result(corr_table, prior=float("nan")):
        return HouseholdResult(all_left.astype(np.int32), all_right.astype(np.int32), all_gamma,
                               all_parts, all_w, bits, cannot, note, corr_table,
                               int(len(members)) + int(tw_l.size), added, prior)

    if members.empty:  # no correspondence, or every one rejected
        corr["kept"] = corr["decision"] != DIFFERENT
        corr["strong_members"] = 0
        return result(_describe(corr, labels, _assignments(records, members, corr)))

    # 3. assignment inside each correspondence
    evidence = all_parts[pair].sum(axis=1, dtype=np.float64)
    if fields.place is not None:
        evidence -= all_parts[pair, fields.place]
    evidence += params.relation_bits * _relation_agreement(records, role, hh, members)
    members["s"] = evidence
    members["assigned"] = _assign(members)

    # 4. the household prior, from the assigned pairs, with m and u held
    if prior is None:
        prior = _household_prior(all_gamma[pair[members["assigned"].to_numpy()]], model, fields)
    members["wh"] = float(np.log2(prior / (1 - prior))) + members["s"]
    members["w"] = all_w[pair]
    members["strong"] = members["assigned"] & (members["wh"] >= params.strong)

    # 5. a lone anchor whose insurance record is assigned strongly elsewhere is no correspondence,
    # unless a reviewer confirmed it; one a reviewer rejected never is
    corr = _keep_correspondences(corr, members, _valid_id17(records))
    corr.loc[corr["decision"] == SAME, "kept"] = True
    corr.loc[corr["decision"] == DIFFERENT, "kept"] = False
    assignments = _assignments(records, members, corr)
    members = members[members["c"].isin(corr.index[corr["kept"]])].copy()
    corr["strong_members"] = (members.groupby("c")["strong"].sum().reindex(corr.index)
                              .fillna(0).astype(int))

    # 7. terms: assigned pairs gain, contradicted member pairs and cross-household pairs lose
    pair = members["pair"].to_numpy()
    free = ~cannot[pair]
    assigned = members["assigned"].to_numpy()
    wh = members["wh"].to_numpy()
    where = pd.Series(labels[corr["hi"].to_numpy()] + "↔" + labels[corr["hr"].to_numpy()],
                      index=corr.index)
    size = np.maximum(corr["size_i"], corr["size_r"]).astype(str)
    agree = corr["strong_members"].astype(str) + " of " + size + " members agree"
    c_of = members["c"].to_numpy()
    within = where.reindex(c_of).to_numpy().astype(object)
    # A correspondence resting on one anchor says nothing of that anchor beyond its own fields:
    # lifting it by the household it alone makes would count its evidence twice (a namesake
    # with the same birthdate in another township would outrank the member's own record).
    # A reviewer's 同一户 is evidence of its own.
    lone = ((corr["anchors"] <= 1) & (corr["decision"] != SAME)).reindex(c_of).to_numpy(
        dtype=bool)
    own_anchor = lone & (members["w"].to_numpy() >= params.strong)
    lifted = assigned & (wh >= params.review) & free & ~own_anchor
    gain = np.maximum(wh - all_w[pair], 0.0)
    bits[pair[lifted]] += gain[lifted]
    note[pair[lifted]] = ("assigned within " + within[lifted] + ", "
                          + agree.reindex(c_of[lifted]).to_numpy().astype(object) + ", +"
                          + np.char.mod("%.2f", gain[lifted]).astype(object) + " bits")

    strong = members[members["strong"]]
    other_strong = (np.isin(members["i"].to_numpy(), strong["i"].to_numpy())
                    | np.isin(members["r"].to_numpy(), strong["r"].to_numpy()))
    contradicted = ~assigned & other_strong & free
    # The double of a member keyed twice is that member: assigned to the same registry record
    # through its double, it is no contradiction.
    double = contradicted & _double_of_assigned(members, strong, all_left[twice],
                                                all_right[twice], n)
    contradicted &= ~double
    bits[pair[contradicted]] -= params.penalty
    note[pair[contradicted]] = "a member is assigned to another within " + within[contradicted]
    note[pair[double]] = "one member keyed twice within " + within[double]
    # A double the assignment leaves over (one to one, its member went to the record it was
    # keyed from) is read from the household as that member is: the same prior and evidence
    # as an assigned pair. A child keyed again under its milk name, without the ID and with the
    # year alone, links through its household as a lone such child does.
    spare = double & ~np.isin(members["i"].to_numpy(), members["i"].to_numpy()[assigned])
    spare_lift = spare & (wh >= params.review) & ~own_anchor
    spare_gain = np.maximum(wh - all_w[pair], 0.0)
    bits[pair[spare_lift]] += spare_gain[spare_lift]
    note[pair[spare_lift]] = ("one member keyed twice within " + within[spare_lift]
                              + ", read as its double is, +"
                              + np.char.mod("%.2f", spare_gain[spare_lift]).astype(object)
                              + " bits")

    # Each insurance record's registry person: its best strong assigned registry record.
    partner = np.full(n, -1, dtype=np.int64)
    partner[authority] = np.flatnonzero(authority)
    best = strong.sort_values(["i", "wh", "r"], ascending=[True, False, True],
                              kind="stable").drop_duplicates("i")
    partner[best["i"].to_numpy()] = best["r"].to_numpy()
    member_pair = np.zeros(len(all_left), dtype=bool)
    member_pair[pair] = True
    pa, pb = partner[all_left], partner[all_right]
    clash = ((pa >= 0) & (pb >= 0) & (pa != pb) & ~(authority[all_left] & authority[all_right])
             & ~member_pair & ~cannot & (all_w >= params.review))
    bits[clash] -= params.penalty
    note[clash] = "the two records are assigned to different registry persons in their households"

    # 8. a married daughter still listed in her parents' household
    married = _married_daughters(records, role, hh, authority, all_left, all_right, all_gamma,
                                 all_parts, all_w, cannot | clash | member_pair, strong, corr,
                                 partner, fields, params)
    if married.any():
        gain = np.maximum(-all_parts[married, fields.place], 0.0)
        bits[married] += gain
        note[married] = ("a daughter her household leaves over, and a wife or daughter-in-law "
                         "assigned in another: the place says nothing, +"
                         + np.char.mod("%.2f", gain).astype(object) + " bits")
    return result(_describe(corr, labels, assignments), prior)


def _married_daughters(records, role, hh, authority, left, right, gamma, parts, weight, excluded,
                       strong, corr, partner, fields, params) -> np.ndarray:
    """Per pair: an insurance record of a daughter (女) that her household leaves over, paired
    with the one wife or daughter-in-law of her name and birthdate assigned in another
    household (the registry record, and the insurance record assigned to it).

    Why: a married daughter moves to her husband's 户 as 妻 or 儿媳, and the village clerk
    often leaves her on her parents' NCMS roster too: there she is the one member whose
    household, otherwise linked, has no registry record for her. Her two listings are in two
    places by construction, so the place comparison says nothing of them, as inside a
    household; the rest of the evidence (name, full birthdate, ID) must still carry the pair.
    Only pairs in the review band are weighed (every engine keeps those), and only where the
    daughter has exactly one such registry candidate: two namesakes of one birthdate are left
    to a reviewer."""
    out = np.zeros(len(left), dtype=bool)
    if (fields.place is None or fields.birth is None or fields.birth_exact is None
            or strong.empty or "gender" not in records):
        return out
    n = len(records)
    gender = as_objects(records["gender"])
    kept = corr[corr["kept"] & (corr["strong_members"] >= 2)]
    corresponded = np.zeros(int(hh.max()) + 1 if (hh >= 0).any() else 0, dtype=bool)
    corresponded[kept["hi"].to_numpy(dtype=np.int64)] = True
    assigned = np.zeros(n, dtype=bool)
    assigned[strong["i"].to_numpy(dtype=np.int64)] = True
    assigned[strong["r"].to_numpy(dtype=np.int64)] = True
    known = hh >= 0
    left_over = (~authority & known & ~assigned & (role == "child")
                 & np.where(known, corresponded[np.maximum(hh, 0)], False))
    married = assigned & pd.Series(role).isin(("spouse", "other")).to_numpy()
    a, b = left, right
    daughter_left = left_over[a] & married[b]
    daughter_right = left_over[b] & married[a]
    x = np.where(daughter_left, a, b)
    y = np.where(daughter_left, b, a)
    female = ((gender[x] != "M") & (gender[y] != "M")
              & ((gender[x] == "F") | (gender[y] == "F")))
    eligible = ((daughter_left | daughter_right) & (hh[a] != hh[b]) & female & ~excluded
                & (gamma[:, fields.birth] == fields.birth_exact)
                & (parts[:, fields.place] < 0) & (np.asarray(weight) >= params.review))
    if not eligible.any():
        return out
    # The daughter's registry candidates: exactly one, and her other pairs only with it.
    registry = eligible & authority[y]
    candidates = pd.Series(y[registry]).groupby(x[registry]).agg(["nunique", "first"])
    sole = candidates.loc[candidates["nunique"] == 1, "first"]
    her = pd.Series(sole.to_numpy(), index=sole.index.to_numpy()).reindex(x).to_numpy()
    found = ~np.isnan(her)
    target = np.where(found, her, -1).astype(np.int64)
    partner_y = np.where(authority[y], y, partner[y])
    out[eligible & found & (partner_y == target)] = True
    return out


def hard_negatives(records: pd.DataFrame, left: np.ndarray, right: np.ndarray,
                   gamma: np.ndarray, parts: np.ndarray, field_weight: np.ndarray, model,
                   params: Params) -> tuple[np.ndarray, np.ndarray]:
    """(cannot, note) of scored pairs by the step's hard-negative rule alone, read from the
    records as :func:`household_step` reads them, without correspondences or assignment: a
    caller placing a new record in a household asks first whether it is one of the
    household's listings keyed again (not ``cannot``) or another member (the online check,
    linkage/online/check.py). Not called by the batch run, whose step applies the same rule
    and one clause more: a registry household holding one person for both records."""
    n = len(records)
    fields = Fields.of(model.comparisons)
    hh = household_codes(records)
    year = (records["birth_year"].to_numpy(dtype=np.int64) if "birth_year" in records
            else np.zeros(n, dtype=np.int64))
    dated = (records["birth_quality"].isin(RECORD_DATES).to_numpy()
             if "birth_quality" in records else year > 0)
    jan1 = (records["birth_quality"].eq("jan1").to_numpy() if "birth_quality" in records
            else np.zeros(n, dtype=bool))
    cannot, note, _ = _hard_negatives(
        hh, _roles(records), np.where(dated, year, 0), jan1, np.asarray(left, dtype=np.int64),
        np.asarray(right, dtype=np.int64), gamma, parts,
        np.asarray(field_weight, dtype=np.float64), fields, params)
    return cannot, note


def _roles(records: pd.DataFrame) -> np.ndarray:
    if "relation_std" not in records:
        return np.full(len(records), None, dtype=object)
    return records["relation_std"].to_numpy(dtype=object)


def _hard_negatives(hh, role, year, jan1, left, right, gamma, parts, weight, fields, params,
                    sole=None):
    """Pairs that are two people by construction, with the reason, and the pairs of one
    household that are one member keyed twice. Only pairs of one source household and pairs
    whose shared ID contradicts a birthdate can be: the rest are skipped (at a million persons
    most pairs are neither). ``sole``: per pair, whether both records reach the review
    threshold against one registry member and no other of its household."""
    note = np.full(len(left), "", dtype=object)
    out = np.zeros(len(left), dtype=bool)
    twice = np.zeros(len(left), dtype=bool)
    if not len(left):
        return out, note, twice
    id_conflict = (gamma[:, fields.id_number] == fields.id_birth_conflict
                   if fields.id_number is not None and fields.id_birth_conflict is not None
                   else np.zeros(len(left), dtype=bool))
    idx = np.flatnonzero(((hh[left] >= 0) & (hh[left] == hh[right])) | id_conflict)
    if not idx.size:
        return out, note, twice
    a, b, g = left[idx], right[idx], gamma[idx]
    same_household = (hh[a] >= 0) & (hh[a] == hh[b])
    code = pd.Categorical(role).codes  # -1 where the relation is unknown
    senior = pd.Series(role).isin(SENIOR).to_numpy()  # hash lookups, per record
    junior = pd.Series(role).isin(JUNIOR).to_numpy()
    ya, yb = year[a], year[b]
    known_years = (ya > 0) & (yb > 0)
    far_years = known_years & (np.abs(ya - yb) >= GENERATION_YEARS)
    same_year = (ya == yb) | (ya == 0) | (yb == 0)
    near_year = known_years & (np.abs(ya - yb) <= 1)
    # A parent and a child by their relations, unless the records' own birth years say one
    # generation (a relation mis-keyed: 配偶 and 女 with one ID, name and birthdate).
    generations = ((senior[a] & junior[b]) | (junior[a] & senior[b])) & ~near_year
    if fields.birth is not None:
        # The same birthdate as far as both records know it (a placeholder or a missing day
        # beside the full date), not a different one.
        birth = g[:, fields.birth]
        # A 1 January placeholder says only the year.
        dates_agree = (birth >= 0) & (birth != fields.birth_different)
        same_birth = same_year & (dates_agree | (known_years & (jan1[a] | jan1[b])))
    else:
        dates_agree = same_birth = np.zeros(idx.size, dtype=bool)
    close_name = (np.isin(g[:, fields.name], fields.name_close)
                  if fields.name is not None and fields.name_close
                  else np.zeros(idx.size, dtype=bool))
    alike_name = (np.isin(g[:, fields.name], fields.name_alike)
                  if fields.name is not None and fields.name_alike
                  else np.zeros(idx.size, dtype=bool))
    some_name = ((g[:, fields.name] >= 0) & (g[:, fields.name] != fields.name_different)
                 if fields.name is not None else np.zeros(idx.size, dtype=bool))
    if fields.id_number is not None and fields.id_same:
        # One ID, also where a record's birthdate is a year off the ID's (a mistyped year).
        same_id = (np.isin(g[:, fields.id_number], fields.id_same)
                   | (id_conflict[idx] & ~far_years))
    else:
        same_id = np.zeros(idx.size, dtype=bool)
    id_typo = (np.isin(g[:, fields.id_number], fields.id_typo)
               if fields.id_number is not None and fields.id_typo
               else np.zeros(idx.size, dtype=bool))
    same_role = (code[a] == code[b]) | (code[a] < 0) | (code[b] < 0)
    # A household has one head and one head's spouse: two records in that role are one person
    # when they share a birthdate or an ID and the names are not different.
    one_holder = pd.Series(role).isin(SINGLE_ROLES).to_numpy()
    sole_role = (code[a] == code[b]) & one_holder[a] & one_holder[b]
    # Twins are two registry records (unless one was never registered, so the names must
    # still be one name): two records of one relation and birthdate, names spelt or sounding
    # alike, that match one registry member and no other of its household are that member
    # keyed twice.
    sole_match = (np.asarray(sole, dtype=bool)[idx] if sole is not None
                  else np.zeros(idx.size, dtype=bool))
    # One member keyed twice: the same ID and a name spelt or sounding alike (twins carry two
    # IDs), or the same ID and relation within a year of birth (a clerk's 1 January
    # placeholder beside the real date; relation words vary, 媳妇 and 儿媳妇); the same
    # relation, birthdate and a name spelt alike (twins may share a sound, not a spelling);
    # the head or the spouse twice, as above; where the registry household holds one person for
    # both records, the same relation and birthdate beside a name alike or an ID one keystroke
    # off (its check character fails: a typo, not a twin's number), or the same relation and
    # name beside dates one typo apart (2016 and 2019: brothers never share a name); or
    # evidence that outweighs being two members of one household (the match threshold plus the
    # penalty) beside a close name or the same relation. Never a parent and a child. Birth
    # years read from an ID number are no evidence here: a parent's ID gives the child the
    # parent's year.
    keyed_twice = ~generations & (
        (same_id & (alike_name | (same_role & near_year)))
        | (same_role & same_birth & close_name)
        | (sole_role & (same_birth | same_id) & some_name)
        | (sole_match & same_role & ((same_birth & (alike_name | id_typo))
                                     | (dates_agree & close_name)))
        | ((np.asarray(weight)[idx] >= params.strong + params.penalty)
           & (close_name | same_role)))
    within = same_household & ~keyed_twice
    twice[idx[same_household & keyed_twice]] = True
    # Across sources a head may be listed as a parent: only the years tell a generation.
    parent_id = id_conflict[idx] & far_years & ~within
    out[idx[within]] = True
    note[idx[within]] = "two members of one household"
    out[idx[parent_id]] = True
    note[idx[parent_id]] = "a parent's ID on a child's record: its birthdate is a generation away"
    twice &= ~out
    return out, note, twice


def _scored(score_pairs, left: np.ndarray, right: np.ndarray, gamma: np.ndarray,
            parts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``score_pairs(left, right)``, or empty arrays of the right shapes for no pairs."""
    if left.size:
        return score_pairs(left, right)
    return (np.empty((0, gamma.shape[1]), dtype=gamma.dtype),
            np.empty((0, parts.shape[1]), dtype=parts.dtype), np.empty(0))


def _double_candidates(members: pd.DataFrame, weight: np.ndarray, review: float,
                       n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, sole), i < j: two insurance members of one correspondence that both reach
    ``review`` against one registry member, each pair once; ``sole`` where, in some such
    correspondence, neither reaches it against another member of that registry household."""
    near = members.loc[weight >= review, ["c", "i", "r"]]
    counterparts = near.groupby(["c", "i"])["r"].transform("size").to_numpy()
    near = near.assign(one=counterparts == 1)
    both = near.merge(near, on=["c", "r"])
    both = both[both["i_x"] < both["i_y"]]
    keys = (both["i_x"].to_numpy(dtype=np.int64) * n + both["i_y"].to_numpy(dtype=np.int64))
    sole = pd.Series(both["one_x"].to_numpy() & both["one_y"].to_numpy()).groupby(keys).any()
    keys = sole.index.to_numpy(dtype=np.int64)
    return keys // n, keys % n, sole.to_numpy(dtype=bool)


def _double_of_assigned(members: pd.DataFrame, strong: pd.DataFrame, twice_l: np.ndarray,
                        twice_r: np.ndarray, n: int) -> np.ndarray:
    """Per member pair (i, r): is i one member keyed twice with a record assigned strongly
    to r?"""
    if not twice_l.size or strong.empty:
        return np.zeros(len(members), dtype=bool)
    doubles = pd.DataFrame({"i": np.r_[twice_l, twice_r], "j": np.r_[twice_r, twice_l]})
    held = doubles.merge(strong[["i", "r"]].rename(columns={"i": "j"}), on="j")
    keys = held["i"].to_numpy(dtype=np.int64) * n + held["r"].to_numpy(dtype=np.int64)
    return np.isin(members["i"].to_numpy(dtype=np.int64) * n
                   + members["r"].to_numpy(dtype=np.int64), keys)


def _decisions_of(corr: pd.DataFrame, labels: np.ndarray,
                  decided: pd.DataFrame | None) -> np.ndarray:
    """Per candidate correspondence, the reviewers' standing decision on it ('' where none)."""
    out = np.full(len(corr), "", dtype=object)
    if decided is None or decided.empty or corr.empty:
        return out
    said = pd.Series(decided["decision"].to_numpy(dtype=object), index=pd.MultiIndex.from_arrays(
        [decided["insurance_household"].astype(str), decided["registry_household"].astype(str)]))
    said = said[~said.index.duplicated(keep="last")]
    keys = pd.MultiIndex.from_arrays([labels[corr["hi"].to_numpy()],
                                      labels[corr["hr"].to_numpy()]])
    found = said.reindex(keys).to_numpy(dtype=object)
    known = pd.notna(found)
    out[known] = found[known]
    return out


def _correspondences(hh, authority, left, right, weight, params) -> pd.DataFrame:
    """Candidate correspondences (insurance household hi, registry household hr) with anchors."""
    cross = (hh[left] >= 0) & (hh[right] >= 0) & (authority[left] != authority[right])
    anchor = cross & (weight >= params.strong)
    ins = np.where(authority[left], right, left)[anchor]
    reg = np.where(authority[left], left, right)[anchor]
    sizes = np.bincount(hh[hh >= 0], minlength=int(hh.max()) + 1 if (hh >= 0).any() else 0)
    frame = pd.DataFrame({"hi": hh[ins], "hr": hh[reg], "i": ins, "r": reg})
    if frame.empty:
        return pd.DataFrame(columns=["hi", "hr", "anchors", "anchor_i", "anchor_r", "size_i",
                                     "size_r"])
    grouped = frame.groupby(["hi", "hr"], sort=True)
    corr = pd.DataFrame({
        "anchors": np.minimum(grouped["i"].nunique(), grouped["r"].nunique()),
        "anchor_i": grouped["i"].min(), "anchor_r": grouped["r"].min(),
    }).reset_index()
    corr["size_i"] = sizes[corr["hi"].to_numpy()]
    corr["size_r"] = sizes[corr["hr"].to_numpy()]
    small = (corr["size_i"] <= params.max_members) & (corr["size_r"] <= params.max_members)
    return corr[small].reset_index(drop=True)


def _member_pairs(hh, corr) -> pd.DataFrame:
    """(correspondence, insurance member, registry member) for every member pair."""
    pos = np.flatnonzero(hh >= 0)
    members = pd.DataFrame({"h": hh[pos], "p": pos})
    left = corr[["hi"]].assign(c=corr.index).merge(members, left_on="hi", right_on="h")
    both = left[["c", "p"]].rename(columns={"p": "i"}).merge(
        corr[["hr"]].assign(c=corr.index), on="c").merge(members, left_on="hr", right_on="h")
    out = both[["c", "i", "p"]].rename(columns={"p": "r"})
    return out.sort_values(["c", "i", "r"], kind="stable").reset_index(drop=True)


def _relation_agreement(records, role, hh, members) -> np.ndarray:
    """+1 where both roles are known and equal (and two children have the same birth order),
    -1 where one is a generation above the other, 0 otherwise."""
    i, r = members["i"].to_numpy(), members["r"].to_numpy()
    code = pd.Categorical(role).codes  # -1 where the relation is unknown
    senior = pd.Series(role).isin(SENIOR).to_numpy()
    junior = pd.Series(role).isin(JUNIOR).to_numpy()
    known = (code[i] >= 0) & (code[r] >= 0)
    same = known & (code[i] == code[r])
    clash = known & ((senior[i] & junior[r]) | (junior[i] & senior[r]))
    rank = _child_rank(records, role, hh)
    same_rank = same & (rank[i] >= 0) & (rank[i] == rank[r])
    return same.astype(float) + 0.5 * same_rank - clash.astype(float)


def _child_rank(records, role, hh) -> np.ndarray:
    """Birth order of each child in its household (0 the eldest), -1 for others."""
    rank = np.full(len(records), -1, dtype=np.int64)
    child = np.flatnonzero((role == "child") & (hh >= 0))
    if not child.size:
        return rank
    birth = (records["birth_date"].to_numpy(dtype=np.int64)[child] if "birth_date" in records
             else np.zeros(child.size, dtype=np.int64))
    frame = pd.DataFrame({"h": hh[child], "b": birth, "p": child}).sort_values(
        ["h", "b", "p"], kind="stable")
    rank[frame["p"].to_numpy()] = frame.groupby("h").cumcount().to_numpy()
    return rank


def _assign(members: pd.DataFrame) -> np.ndarray:
    """One-to-one assignment per correspondence maximising ``s`` (rows and columns in record
    order, so ties go the same way on every engine)."""
    out = np.zeros(len(members), dtype=bool)
    if members.empty:
        return out
    c = members["c"].to_numpy()
    row = members.groupby("c")["i"].rank(method="dense").to_numpy(dtype=np.int64) - 1
    col = members.groupby("c")["r"].rank(method="dense").to_numpy(dtype=np.int64) - 1
    s = members["s"].to_numpy()
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    stops = np.r_[starts[1:], len(c)]
    nrows = np.maximum.reduceat(row, starts) + 1
    ncols = np.maximum.reduceat(col, starts) + 1
    # A 1-by-k or k-by-1 correspondence needs no solver: its best pair (first on ties).
    line = (nrows == 1) | (ncols == 1)
    if line.any():
        group = np.repeat(np.arange(len(starts)), stops - starts)
        frame = pd.DataFrame({"g": group, "s": s, "k": np.arange(len(s))})
        frame = frame[line[group]]
        best = frame.sort_values(["g", "s", "k"], ascending=[True, False, True],
                                 kind="stable").drop_duplicates("g")
        out[best["k"].to_numpy()] = True
    for g in np.flatnonzero(~line):
        a, b = starts[g], stops[g]
        matrix = np.full((nrows[g], ncols[g]), -1e6)
        matrix[row[a:b], col[a:b]] = s[a:b]
        rows, cols = linear_sum_assignment(matrix, maximize=True)
        chosen = np.zeros((nrows[g], ncols[g]), dtype=bool)
        chosen[rows, cols] = True
        out[a:b] = chosen[row[a:b], col[a:b]]
    return out


def _household_prior(gamma: np.ndarray, model, fields: Fields) -> float:
    """Share of assigned pairs that are one person (m and u held; place says nothing here)."""
    from linkage.core.model import fit_prior

    if not len(gamma):
        return PRIOR_BOUNDS[0]
    masked = gamma.copy()
    if fields.place is not None:
        masked[:, fields.place] = MISSING
    m = [np.asarray(c.m, dtype=float) for c in model.comparisons]
    u = [np.asarray(c.u, dtype=float) for c in model.comparisons]
    return float(np.clip(fit_prior(masked, m, u), *PRIOR_BOUNDS))


def _strong_members(members: pd.DataFrame, side: str) -> np.ndarray:
    return np.unique(members.loc[members["strong"], side].to_numpy())


def _keep_correspondences(corr: pd.DataFrame, members: pd.DataFrame,
                          id17: np.ndarray) -> pd.DataFrame:
    """Drop a lone-anchor correspondence whose anchor's insurance record is assigned strongly
    to another registry record elsewhere: within a correspondence of two or more strong
    members, or on stronger evidence of its own (``w``, the field weight with place: a
    namesake of the same birthdate in another village loses to the one of the record's own).
    Drop it too when its registry record is assigned, on stronger evidence, to an insurance
    record whose valid ID differs from the anchor's (two people claiming one registry person;
    a married daughter listed twice carries one ID and keeps both)."""
    strong = members[members["strong"]]
    count = strong.groupby("c").size()
    corr = corr.copy()
    corr["kept"] = True
    lone = corr.index[corr["anchors"] <= 1]
    if not len(lone):
        return corr
    elsewhere = strong[["i", "r", "c", "w"]].assign(n=strong["c"].map(count).to_numpy())
    own = strong[["c", "i", "r", "w"]].rename(columns={"c": "c_own", "i": "anchor_i",
                                                      "r": "anchor_r", "w": "w_own"})
    anchor = corr.loc[lone, ["anchor_i", "anchor_r"]].assign(c_own=lone).merge(
        own, on=["c_own", "anchor_i", "anchor_r"], how="left")
    hit = anchor.merge(elsewhere, left_on="anchor_i", right_on="i")
    hit = hit[(hit["c"] != hit["c_own"]) & (hit["r"] != hit["anchor_r"])
              & ((hit["n"] >= 2) | (hit["w"] > hit["w_own"].fillna(-np.inf)))]
    claimed = anchor.merge(elsewhere, left_on="anchor_r", right_on="r")
    a, b = claimed["i"].to_numpy(dtype=np.int64), claimed["anchor_i"].to_numpy(dtype=np.int64)
    two_ids = np.array([_two_ids(x, y) for x, y in zip(id17[a], id17[b])], dtype=bool)
    claimed = claimed[(claimed["c"] != claimed["c_own"]) & (a != b) & two_ids
                      & (claimed["w"] > claimed["w_own"].fillna(-np.inf))]
    corr.loc[np.union1d(hit["c_own"].unique(), claimed["c_own"].unique()), "kept"] = False
    return corr


def _valid_id17(records: pd.DataFrame) -> np.ndarray:
    """The first 17 characters of each record's ID where it has 17 or more, else ""."""
    if "id_norm" not in records:
        return np.full(len(records), "", dtype=object)
    text = records["id_norm"].fillna("").astype(str)
    return np.where(text.str.len() >= 17, text.str[:17], "").astype(object)


def _two_ids(a: str, b: str) -> bool:
    """Two ID numbers of two people: both given and three or more of their first 17
    characters differ (a mistyped ID of one person differs in one or two)."""
    return bool(a) and bool(b) and sum(x != y for x, y in zip(a, b)) >= 3


def _household_labels(records: pd.DataFrame, hh: np.ndarray) -> np.ndarray:
    """'source:household_id' per household code."""
    out = np.full(int(hh.max()) + 1 if (hh >= 0).any() else 0, "", dtype=object)
    known = hh >= 0
    if known.any():
        text = (records["source"].astype(str) + ":" + records["household_id"].astype(str)
                ).to_numpy(dtype=object)
        out[hh[known]] = text[known]
    return out


def _assignments(records: pd.DataFrame, members: pd.DataFrame, corr: pd.DataFrame) -> pd.Series:
    """Per correspondence, its assigned member pairs as JSON text: [[insurance record id,
    registry record id, household weight (bits), strong], ...] in record order, so a reviewer
    sees who was taken for whom and how surely ("[]" where none, as for a rejected one, and
    for every one of records without ids: the online check's, which stores nothing)."""
    out = pd.Series("[]", index=corr.index, dtype=object)
    if members.empty or "assigned" not in members or "record_id" not in records:
        return out
    chosen = members[members["assigned"]]
    if chosen.empty:
        return out
    ids = records["record_id"].astype(str).to_numpy(dtype=object)

    def quote(positions: np.ndarray) -> np.ndarray:
        return np.array([json.dumps(t, ensure_ascii=False) for t in ids[positions]], dtype=object)

    text = ("[" + quote(chosen["i"].to_numpy()) + ", " + quote(chosen["r"].to_numpy())
            + ", " + np.char.mod("%.2f", chosen["wh"].to_numpy()).astype(object) + ", "
            + np.where(chosen["strong"].to_numpy(), "true", "false").astype(object) + "]")
    joined = pd.Series(text, index=chosen.index).groupby(chosen["c"].to_numpy()).agg(", ".join)
    out.loc[joined.index] = "[" + joined + "]"
    return out


CORRESPONDENCE_COLUMNS = ["insurance_household", "registry_household", "anchors",
                          "members_insurance", "members_registry", "members_agreeing", "kind"]


def _describe(corr: pd.DataFrame, labels: np.ndarray,
              assignments: pd.Series | None = None) -> pd.DataFrame:
    """The correspondences as the outputs show them, with their kind: 1:1, split (one insurance
    household in several registry households), merged (several, two or more members each, in
    one) or both; dropped: a lone anchor that is a namesake or a registry double; rejected:
    a reviewer said 不是同一户. Besides the output's columns (:data:`CORRESPONDENCE_COLUMNS`):
    ``kept``, the reviewers' ``decision`` applied and the ``assignment`` (JSON) the review app
    shows."""
    columns = [*CORRESPONDENCE_COLUMNS, "kept", "decision", "assignment"]
    if corr.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    kept = corr[corr["kept"]]
    per_i = kept.groupby("hi").size()
    # Merged: two insurance households each bring two or more of their members (one member
    # alone is a person listed in a second household, as a married daughter is).
    per_r = kept[kept["strong_members"] >= 2].groupby("hr").size()
    split = corr["hi"].map(per_i).fillna(0).to_numpy() > 1
    merged = corr["hr"].map(per_r).fillna(0).to_numpy() > 1
    kind = np.where(split & merged, "split+merged",
                    np.where(split, "split", np.where(merged, "merged", "1:1")))
    kind = np.where(corr["kept"], kind, "dropped")
    kind = np.where(corr["decision"] == DIFFERENT, "rejected", kind)
    if assignments is None:
        assignments = pd.Series("[]", index=corr.index, dtype=object)
    return pd.DataFrame({
        "insurance_household": labels[corr["hi"].to_numpy()],
        "registry_household": labels[corr["hr"].to_numpy()],
        "anchors": corr["anchors"].to_numpy(), "members_insurance": corr["size_i"].to_numpy(),
        "members_registry": corr["size_r"].to_numpy(),
        "members_agreeing": corr["strong_members"].to_numpy(), "kind": kind,
        "kept": corr["kept"].to_numpy(dtype=bool), "decision": corr["decision"].to_numpy(),
        "assignment": assignments.reindex(corr.index).fillna("[]").to_numpy(dtype=object),
    })
