"""How much a name says: milk names say nothing, and a name common in one birth year says less.

Why: village clerks key infants under their milk name (乳名: 狗剩, 丫头, 胖墩, with or without the
surname) while the registry holds the formal name. Thousands of unrelated infants share a milk
name, so two records agreeing on 狗剩 are no evidence of one person, and 狗剩 against 王浩然 is no
evidence of two. Both directions are made neutral; only household, birthdate and ID can link
them. The class is learned from the data (a given name carried by infants of many unrelated
households far more often than by adults), and a config may list more.

Name fashions are cohort-specific: 子涵 is rare among all records and common among one year's
births, so the term-frequency weight of an agreeing name uses the larger of its overall and its
birth-cohort frequency (shrunk towards the overall one, so that a small cohort says little).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from matchers.base import as_objects, is_compacted

INFANT_YEARS = 6  # born at most this many years before the latest birth year: an infant
CHILD_YEARS = 16  # a milk name on a record this young (or of unknown age) is a milk name
ADULT_YEARS = 18
COHORT_MIN_RECORDS = 10  # a name must be this common in one birth year to weaken its evidence
COHORT_SHRINK = 1000.0  # pseudo-records of the overall frequency added to each cohort


@dataclass(frozen=True)
class NameEvidence:
    """Per record: whether its name is a milk name, and the bits its cohort takes off an
    agreeing name (0 or negative)."""

    milk: np.ndarray  # bool per record
    cohort_bits: np.ndarray  # float per record

    def pairs(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pair: either record a milk name; the cohort bits of the commoner side."""
        return (self.milk[left] | self.milk[right],
                np.minimum(self.cohort_bits[left], self.cohort_bits[right]))


@dataclass(frozen=True)
class NameModel:
    """What a run learned about names from its records, to read any record's name evidence
    with (the run's own, an ``add`` batch's, a check's query)."""

    milk_names: frozenset
    latest_year: int  # the latest birth year seen: what "young" means
    cohort: pd.Series  # bits (< 0) by (name value, birth year), only where a cohort weakens

    @classmethod
    def learn(cls, records: pd.DataFrame, min_households: int = 5, ratio: float = 10.0,
              listed: tuple[str, ...] = (), authority: np.ndarray | None = None,
              tf_column: str | None = "name_key") -> NameModel:
        return cls.of_counts(NameCounts.of(records, authority, tf_column), min_households,
                             ratio, listed)

    @classmethod
    def of_counts(cls, counts: NameCounts, min_households: int = 5, ratio: float = 10.0,
                  listed: tuple[str, ...] = ()) -> NameModel:
        """The model :meth:`learn` gives over the records ``counts`` counts."""
        milk = frozenset(counts.milk_names(min_households, ratio, listed))
        return cls(milk, counts.latest_year, counts.cohort())

    def evidence(self, columns, n: int, tf_column: str | None = "name_key") -> NameEvidence:
        """Milk flags and cohort bits of ``n`` records given as a DataFrame or a mapping of
        column arrays (name_key, name_given, name_surname, birth_year)."""
        year = _years(columns, n)
        milk = np.zeros(n, dtype=bool)
        if self.milk_names:
            young = (year == 0) | (year >= self.latest_year - CHILD_YEARS)
            # A hash lookup (pandas), not numpy's sort-based isin over object arrays.
            milk = pd.Series(milk_key(columns, n)).isin(self.milk_names).to_numpy() & young
        cohort = np.zeros(n)
        if len(self.cohort) and tf_column and tf_column in columns:
            values = _text(columns[tf_column], n)
            # Few names weaken in a cohort: look up (value, year) only for those.
            maybe = np.flatnonzero(pd.Series(values).isin(
                self.cohort.index.get_level_values(0).unique()).to_numpy())
            at = self.cohort.index.get_indexer(
                pd.MultiIndex.from_arrays([values[maybe], year[maybe]]))
            cohort[maybe] = np.where(at >= 0, self.cohort.to_numpy()[np.maximum(at, 0)], 0.0)
        return NameEvidence(milk, cohort)


def _years(columns, n: int) -> np.ndarray:
    if "birth_year" not in columns:
        return np.zeros(n, dtype=np.int64)
    return np.asarray(columns["birth_year"], dtype=np.int64)


def _text(values, n: int) -> np.ndarray:
    values = as_objects(values) if is_compacted(values) else np.asarray(values, dtype=object)
    out = pd.Series(values).fillna("").astype(str).to_numpy(dtype=object)
    return out if len(out) == n else np.full(n, "", dtype=object)


def milk_key(columns, n: int | None = None) -> np.ndarray:
    """The part of a name a milk name lives in: the given name after a known surname, or the
    whole name (狗剩 has no surname; 王狗剩 has 王)."""
    n = len(columns) if n is None else n
    whole = (_text(columns["name_key"], n) if "name_key" in columns
             else np.full(n, "", dtype=object))
    if "name_given" not in columns or "name_surname" not in columns:
        return whole
    given = _text(columns["name_given"], n)
    surname = _text(columns["name_surname"], n)
    return np.where(surname != "", given, whole)


def learn_milk_names(records: pd.DataFrame, min_households: int = 5, ratio: float = 10.0,
                     listed: tuple[str, ...] = (), authority: np.ndarray | None = None
                     ) -> set[str]:
    """Given names that infants of at least ``min_households`` different households carry at a
    rate ``ratio`` times (or more) their rate among adults and, where the ``authority`` records
    are marked, among the registry's infants (who are registered under their formal names: a
    fashionable name such as 子涵 is common among infants in every source, a milk name only in
    the rosters); plus the ``listed`` ones.

    Households are counted per source, so one infant enrolled in three rosters counts once per
    roster, never as three households of one roster. Records without a household count as
    their own household.
    """
    return NameCounts.of(records, authority, None).milk_names(min_households, ratio, listed)


def _none(index: pd.Index) -> pd.Series:
    return pd.Series(np.zeros(0, dtype=np.int64), index=index)


def _counted(values) -> pd.Series:
    """Records per value (int64)."""
    out = pd.Series(values, dtype=object).value_counts()
    return out.astype(np.int64)


def _added(a: pd.Series, b: pd.Series) -> pd.Series:
    return a.add(b, fill_value=0).astype(np.int64)


@dataclass(frozen=True)
class NameCounts:
    """What a :class:`NameModel` is learned from, as counts that add up over records: the
    counts of a run's records plus those of a batch are the counts of both together, so
    ``linkage add`` updates a run's counts with its batch instead of counting every record
    again. Infants and adults are measured from the latest birth year: a batch bringing a
    later one cannot be added (:meth:`plus` says so by returning None)."""

    latest_year: int  # the latest birth year (0: none known)
    infant_households: pd.DataFrame  # distinct (key, household) of infants outside the registry
    infants: pd.Series  # per milk key: infants outside the registry
    adults: pd.Series  # per milk key: adults
    registered: pd.Series  # per milk key: infants in the registry
    named: pd.Series  # per value of the name's term-frequency column: records
    dated: pd.Series  # per (value, birth year > 0): records

    @classmethod
    def of(cls, records: pd.DataFrame, authority: np.ndarray | None = None,
           tf_column: str | None = "name_key", latest_year: int | None = None) -> NameCounts:
        """The counts of ``records``; with ``latest_year``, infants and adults measured from
        it (a batch's records counted as among the run's)."""
        n = len(records)
        year = _years(records, n)
        latest = int(year[year > 0].max()) if (year > 0).any() else 0
        if latest_year is not None:  # a later year of their own: plus() refuses them
            latest = max(latest, int(latest_year))
        empty = _none(pd.Index([], dtype=object))
        infants = adults = registered = empty
        pairs = pd.DataFrame({"key": pd.Series([], dtype=object),
                              "household": pd.Series([], dtype=object)})
        if "name_key" in records and "birth_year" in records and n and latest > 0:
            known = year > 0
            key = milk_key(records)
            has_name = key != ""
            infant = known & (year >= latest - INFANT_YEARS) & has_name
            adult = known & (year <= latest - ADULT_YEARS) & has_name
            registered_infant = np.zeros(n, dtype=bool)
            if authority is not None:
                registered_infant = infant & np.asarray(authority, dtype=bool)
                infant = infant & ~np.asarray(authority, dtype=bool)
            at = np.flatnonzero(infant)
            pairs = pd.DataFrame({"key": key[at], "household": _household_labels(records, at)}
                                 ).drop_duplicates().reset_index(drop=True)
            infants, adults = _counted(key[infant]), _counted(key[adult])
            registered = _counted(key[registered_infant])
        named = empty
        dated = _none(pd.MultiIndex.from_arrays([[], []], names=["value", "year"]))
        if tf_column and tf_column in records:
            text = _text(records[tf_column], n)
            ok = text != ""
            named = _counted(text[ok])
            frame = pd.DataFrame({"value": text[ok], "year": year[ok]})
            dated = frame[frame["year"] > 0].groupby(["value", "year"]).size().astype(np.int64)
        return cls(latest, pairs, infants, adults, registered, named, dated)

    def plus(self, other: NameCounts) -> NameCounts | None:
        """The counts of both sets of records, if ``other`` was counted from this one's latest
        birth year and brings none later; else None (count the records together)."""
        if other.latest_year != self.latest_year:
            return None
        pairs = pd.concat([self.infant_households, other.infant_households],
                          ignore_index=True).drop_duplicates().reset_index(drop=True)
        dated = _added(self.dated, other.dated).sort_index()
        return NameCounts(self.latest_year, pairs, _added(self.infants, other.infants),
                          _added(self.adults, other.adults),
                          _added(self.registered, other.registered),
                          _added(self.named, other.named), dated)

    def milk_names(self, min_households: int = 5, ratio: float = 10.0,
                   listed: tuple[str, ...] = ()) -> set[str]:
        """:func:`learn_milk_names` over the records counted."""
        out = {str(n) for n in listed}
        total = int(self.infants.sum())
        if not total:
            return out
        households = self.infant_households.groupby("key").size()
        # in the households' (sorted) order: their mask picks from their index
        infant_rate = self.infants.sort_index() / total
        adults = int(self.adults.sum())
        adult_rate = self.adults.reindex(infant_rate.index).fillna(0) / max(adults, 1)
        # A reference rate of zero still needs the infants' households: ratio against half a
        # person.
        reference = np.maximum(adult_rate, 0.5 / max(adults, 1))
        registered = int(self.registered.sum())
        if registered:
            registered_rate = self.registered.reindex(infant_rate.index).fillna(0) / registered
            reference = np.maximum(reference, np.maximum(registered_rate, 0.5 / registered))
        learned = households.index[(households >= min_households)
                                   & (infant_rate >= ratio * reference)]
        return out | {str(k) for k in learned}

    def cohort(self) -> pd.Series:
        """-log2(max(overall, shrunk cohort frequency) / overall) by (value, year), where a
        name is commoner in a birth year than overall (by COHORT_MIN_RECORDS records or more)."""
        if not len(self.named):
            return _empty_cohort()
        overall = self.named / int(self.named.sum())
        pairs = self.dated.rename("count").reset_index()
        size = self.dated.groupby(level="year").sum()
        pairs["overall"] = overall.reindex(pairs["value"]).to_numpy()
        pairs["cohort"] = ((pairs["count"] + COHORT_SHRINK * pairs["overall"])
                           / (size.reindex(pairs["year"]).to_numpy() + COHORT_SHRINK))
        weak = pairs[(pairs["count"] >= COHORT_MIN_RECORDS) & (pairs["cohort"] > pairs["overall"])]
        bits = -np.log2(weak["cohort"] / weak["overall"]).to_numpy()
        return pd.Series(bits, index=pd.MultiIndex.from_arrays(
            [weak["value"].to_numpy(dtype=object), weak["year"].to_numpy(dtype=np.int64)],
            names=["value", "year"]))


def _household_labels(records: pd.DataFrame, at: np.ndarray) -> np.ndarray:
    """Household of the records at ``at``, as text that names it across runs: its source and
    household id (as :func:`linkage.core.household.household_codes` keys it); a record with
    none is a household of its own, named by its source and record id."""
    part = records.iloc[at]
    source = part["source"].astype(str)
    if "household_id" in part:
        hid = part["household_id"]
        blank = (hid.isna() | (hid.astype(str).str.strip() == "")).to_numpy()
        known = (source + "\x1f" + hid.astype(str)).to_numpy(dtype=object)
    else:
        blank = np.ones(len(at), dtype=bool)
        known = np.full(len(at), "", dtype=object)
    own = ("\x00" + source + "\x1f" + part["record_id"].astype(str)).to_numpy(dtype=object)
    return np.where(blank, own, known)


def _empty_cohort() -> pd.Series:
    return pd.Series([], dtype=np.float64,
                     index=pd.MultiIndex.from_arrays([[], []], names=["value", "year"]))


def name_levels(fs) -> tuple[int | None, list[int]]:
    """The model's name comparison (its index) and its term-frequency levels."""
    names = [c.name for c in fs.comparisons]
    if "name" not in names:
        return None, []
    k = names.index("name")
    c = fs.comparisons[k]
    return k, [c.labels.index(lab) for lab in c.tf_levels if lab in c.labels]


def adjust_name_parts(parts: np.ndarray, gamma: np.ndarray, milk: np.ndarray,
                      cohort: np.ndarray, name_index: int | None, tf_levels: list[int]
                      ) -> np.ndarray:
    """The per-comparison weights with the name's made neutral where a pair's ``milk`` is set,
    and its ``cohort`` bits added where the name agrees at a term-frequency level (per pair:
    :meth:`NameEvidence.pairs`).

    Returns the change in total weight per pair (``parts`` is changed in place)."""
    if name_index is None or not len(parts):
        return np.zeros(len(parts))
    col = parts[:, name_index].astype(np.float64)
    tf_hit = np.isin(gamma[:, name_index], tf_levels) if tf_levels else np.zeros(len(col), bool)
    new = np.where(milk, 0.0, col + np.where(tf_hit, cohort, 0.0)).astype(parts.dtype)
    parts[:, name_index] = new
    return new.astype(np.float64) - col
