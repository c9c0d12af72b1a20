"""Household links: each NCMS household beside its registry household(s), for re-collection.

The integration plan re-collects the NCMS enrollees person by person against the police
registry. Both rosters are kept by household, so the office works household by household: for
each NCMS household (家庭编号) the registry household (户号) its members belong to, who is
matched, who is only in NCMS, who is only in the registry, and who moved to another registry
household. Everything follows from the run's final entities (``clusters``), so the list agrees
with the roster and the other lists of the same run, whatever linked the records.

Definitions, for an NCMS household H (a household of an insurance source that carries
household ids; urban rosters have none and stay out):

- its registry households: the households of the registry (authority) records that share an
  entity with a member of H. A member is H's *own* person unless the same person is listed in
  another NCMS household too (a married daughter left in her parents' household and added to
  her husband's). The *main* registry household holds the most of H's own persons, then the
  most members (ties: the one holding H's head, then the lowest household number).
- a registry household that holds none of H's own persons, only persons listed in another NCMS
  household that has it as main with persons of its own, is that household's, not H's: H then
  has no main registry household, and those members count as moved.
- ``link_type``: ``unmatched`` when H has no main registry household (no member linked, or
  only members registered with another NCMS household's 户); ``merged`` when its main registry
  household is also the main registry household of another NCMS household, each with persons of
  its own (two NCMS families registered as one 户); ``split`` when its members are in two or
  more registry households (a married daughter registered with her husband, a son with his own
  户); ``1:1`` otherwise. A household both merged and split is ``merged``; its other registry
  households are listed beside the main one either way.
- members, each NCMS record of H once, as listed: *matched* (its entity holds a registry record
  in the main registry household), *only in NCMS* (its entity holds no registry record), *moved*
  (its entity's registry records are in other registry households, or in none). So
  members = matched + only_ncms + moved.
- *only in the registry*: registry records of the main registry household whose entity holds no
  record of H.

Names are shown as the records carry them, members in the roster's order. Everything is
computed with joins and group counts over integer codes (no Python loop over households): a
million persons take a few seconds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from linkage.outputs import charts
from linkage.outputs.tables import csv_beside
from linkage.outputs.xlsx import Sheet, write_xlsx

STEM = "household_links"
SHEET = "家庭对应 households"
LINK_TYPES = ["1:1", "split", "merged", "unmatched"]
COLUMNS = [
    "source", "township", "village", "group", "household_id", "head", "link_type",
    "registry_household_id", "other_registry_household_ids", "members", "registry_members",
    "matched", "only_ncms", "only_registry", "moved", "matched_names", "only_ncms_names",
    "only_registry_names", "moved_names",
]
LABELS = {
    "source": "来源", "township": "乡镇", "village": "村", "group": "组",
    "household_id": "新农合家庭编号", "head": "户主", "link_type": "对应类型",
    "registry_household_id": "户籍户号", "other_registry_household_ids": "其他户籍户号",
    "members": "新农合人数", "registry_members": "户籍人数", "matched": "已匹配人数",
    "only_ncms": "仅新农合人数", "only_registry": "仅户籍人数", "moved": "迁至他户人数",
    "matched_names": "已匹配成员", "only_ncms_names": "仅新农合成员",
    "only_registry_names": "仅户籍成员", "moved_names": "迁至他户成员(户号)",
}
# What each column holds, for the outputs reference (linkage/outputs/columns.py).
COLUMN_DOCS = {
    "source": "Insurance source of the household (e.g. ncms).",
    "township": "Township (苏木/乡/镇): the usual spelling of the household's township.",
    "village": "Village (嘎查/村): the usual spelling of the household's village, without 组.",
    "group": "Village group (组) most members were entered under, where entered.",
    "household_id": "The NCMS family code (家庭编号), as text.",
    "head": "Name of the NCMS household's head (户主/本人) as entered.",
    "link_type": "1:1; split (members in two or more registry households); merged (its main "
                 "registry household is also another NCMS household's); unmatched (no registry "
                 "household of its own: no member linked, or only members registered with "
                 "another NCMS household's 户).",
    "registry_household_id": "The main registry household (户号): the one holding most of the "
                             "household's members (persons also listed in another NCMS "
                             "household count last).",
    "other_registry_household_ids": "Other registry households holding members, ';'-joined.",
    "members": "NCMS records of the household (= matched + only_ncms + moved).",
    "registry_members": "Registry records of the main registry household.",
    "matched": "Members whose person has a registry record in the main registry household.",
    "only_ncms": "Members whose person has no registry record.",
    "only_registry": "Registry records of the main registry household whose person is not "
                     "listed in this NCMS household.",
    "moved": "Members whose person's registry record is in another registry household (or in "
             "no household).",
    "matched_names": "Names of the matched members as entered, 、-joined.",
    "only_ncms_names": "Names of the members only in NCMS, 、-joined.",
    "only_registry_names": "Names of the persons only in the registry, as the registry has them.",
    "moved_names": "Names of the moved members with the registry household they are in, "
                   "e.g. 王小红(100000010).",
}
HEAD_RELATIONS = ("户主", "本人")
NO_HOUSEHOLD = "无户号"
GROUP_SUFFIX = r"\s*第?[0-9０-９一二三四五六七八九十]+(?:组|社|队)$"
TOP_VILLAGES = 30
_NAME_SEP = "、"


def household_links(records: pd.DataFrame, clusters: pd.DataFrame,
                    roles: dict[str, str]) -> pd.DataFrame:
    """One row per NCMS household (COLUMNS), sorted by township, village and household id.

    ``records`` are a run's standardised records (source, record_id, household_id, name, and
    where present relation_std, township, village and their standardised keys); ``clusters``
    gives each record's entity (source, record_id, entity_id); ``roles`` maps each source to
    'authority' or 'insurance'.
    """
    n = len(records)
    source_code, sources = _coded(records, "source")
    household_code, households = _coded(records, "household_id")
    role = np.append(pd.Series(sources, dtype=object).map(roles).to_numpy(dtype=object),
                     None)[source_code]  # code -1 (no source) has no role
    positions = np.arange(n)
    ins = positions[(role == "insurance") & (household_code >= 0)]
    if not len(ins):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    entity, _ = pd.factorize(_entities(records, clusters))  # -1: record in no entity
    n_entities = int(entity.max()) + 1

    # NCMS households: insurance records with a household id, keyed by (source, household id).
    hcode, hkey = _pair_codes(source_code[ins], household_code[ins], len(households))
    h_source, h_id = sources[hkey[:, 0]], households[hkey[:, 1]]
    n_h = len(h_id)
    head = _is_head(records, ins)
    row_of = np.full(n, -1, dtype=np.int64)  # record position -> its row among the members
    row_of[ins] = np.arange(len(ins))
    members = pd.DataFrame({"h": hcode, "m": ins, "e": entity[ins]})

    # Registry households: authority records with a household id (-1: a registry record with none).
    auth = positions[role == "authority"]
    rcode = np.full(len(auth), -1, dtype=np.int64)
    placed = household_code[auth] >= 0
    codes, rkey = _pair_codes(source_code[auth][placed], household_code[auth][placed],
                              len(households))
    rcode[placed] = codes
    n_r = len(rkey)
    r_label = households[rkey[:, 1]]
    if len(np.unique(rkey[:, 0])) > 1:  # several registries: say whose household number it is
        r_label = (sources[rkey[:, 0]].astype(str) + ":" + r_label.astype(str)).astype(object)
    registry = pd.DataFrame({"r": rcode, "j": auth, "e": entity[auth]})
    registry = registry[registry["e"] >= 0]

    # Member x registry record sharing an entity (a person is rarely more than one of each).
    links = members[members["e"] >= 0].merge(registry, on="e", how="inner")
    in_household = links[links["r"] >= 0].drop_duplicates(["h", "m", "r"])

    # A person listed in two or more NCMS households (a married daughter left with her parents)
    # is not the household's own: a registry household holding only such persons is another's.
    listed = members[members["e"] >= 0].drop_duplicates(["e", "h"])["e"].to_numpy()
    elsewhere = np.bincount(listed, minlength=n_entities) >= 2
    per_pair = pd.DataFrame({"h": in_household["h"].to_numpy(), "r": in_household["r"].to_numpy(),
                             "own": ~elsewhere[in_household["e"].to_numpy()],
                             "head": head[row_of[in_household["m"].to_numpy()]]})
    per_pair = per_pair.groupby(["h", "r"], sort=False).agg(
        n=("head", "size"), own=("own", "sum"), head=("head", "any")).reset_index()
    # The main registry household: most own persons, most members, the head's, the first in
    # the registry's order.
    per_pair = per_pair.sort_values(["h", "own", "n", "head", "r"],
                                    ascending=[True, False, False, False, True], kind="stable")
    first = ~per_pair["h"].duplicated().to_numpy()
    best = per_pair[first]
    main = np.full(n_h, -1, dtype=np.int64)
    main[best["h"].to_numpy()] = best["r"].to_numpy()
    own = np.zeros(n_h, dtype=np.int64)
    own[best["h"].to_numpy()] = best["own"].to_numpy()
    # Per registry household: NCMS households that have it as main with persons of their own.
    owners = np.bincount(main[(main >= 0) & (own > 0)], minlength=n_r)
    claimed = (main >= 0) & (own == 0)
    claimed[claimed] = owners[main[claimed]] >= 1
    main[claimed] = -1  # its persons are registered in another NCMS household's 户: moved
    merged = (main >= 0) & (own > 0)
    merged[merged] = owners[main[merged]] >= 2
    n_registry = np.bincount(per_pair["h"].to_numpy(), minlength=n_h)
    others = per_pair[per_pair["r"].to_numpy() != main[per_pair["h"].to_numpy()]]
    other_ids = _join(others["h"].to_numpy(), r_label[others["r"].to_numpy()], n_h, ";")
    mains = main[main >= 0]

    # Each member: matched, only in NCMS, or moved (with where to).
    is_main = (links["r"].to_numpy() == main[links["h"].to_numpy()]) & (links["r"].to_numpy() >= 0)
    linked = np.zeros(len(ins), dtype=bool)
    linked[row_of[links["m"].to_numpy()]] = True
    matched = np.zeros(len(ins), dtype=bool)
    matched[row_of[links["m"].to_numpy()[is_main]]] = True
    moved = linked & ~matched
    away = links[~is_main & moved[row_of[links["m"].to_numpy()]]].drop_duplicates(["m", "r"])
    away_r = away["r"].to_numpy()
    target = np.full(len(away), NO_HOUSEHOLD, dtype=object)
    target[away_r >= 0] = r_label[away_r[away_r >= 0]]
    where_to = _join(row_of[away["m"].to_numpy()], target, len(ins), "/")

    # Registry records of each main household whose person is not in the NCMS household.
    wanted = pd.DataFrame({"h": np.flatnonzero(main >= 0), "r": mains})
    in_main = wanted.merge(registry[registry["r"] >= 0], on="r", how="inner")
    pairs = members["h"].to_numpy(np.int64) * (n_entities + 1) + members["e"].to_numpy()
    key = in_main["h"].to_numpy(np.int64) * (n_entities + 1) + in_main["e"].to_numpy()
    only_registry = in_main[~pd.Index(key).isin(pairs)]
    only_registry = only_registry.sort_values(["h", "j"], kind="stable")
    registry_size = np.bincount(registry.loc[registry["r"] >= 0, "r"].to_numpy(), minlength=n_r)

    h = members["h"].to_numpy()
    member_names = _subset_text(records, "name", ins)
    out = {"source": h_source, "household_id": h_id}  # columns: one frame made at the end
    out["head"] = _first(h[head], member_names[head], n_h)
    township, village, group = _places(records, ins, h, n_h)
    out["township"], out["village"], out["group"] = township, village, group
    out["link_type"] = np.select([main < 0, merged, n_registry >= 2],
                                 ["unmatched", "merged", "split"], "1:1").astype(object)
    main_label = np.full(n_h, None, dtype=object)
    main_label[main >= 0] = r_label[mains]
    out["registry_household_id"] = main_label
    out["other_registry_household_ids"] = other_ids
    out["members"] = np.bincount(h, minlength=n_h)
    size = np.zeros(n_h, dtype=np.int64)
    size[main >= 0] = registry_size[mains]
    out["registry_members"] = size
    out["matched"] = np.bincount(h[matched], minlength=n_h)
    out["only_ncms"] = np.bincount(h[~linked], minlength=n_h)
    out["only_registry"] = np.bincount(only_registry["h"].to_numpy(), minlength=n_h)
    out["moved"] = np.bincount(h[moved], minlength=n_h)
    out["matched_names"] = _join(h[matched], member_names[matched], n_h)
    out["only_ncms_names"] = _join(h[~linked], member_names[~linked], n_h)
    registry_names = _subset_text(records, "name", only_registry["j"].to_numpy())
    out["only_registry_names"] = _join(only_registry["h"].to_numpy(), registry_names, n_h)
    moved_text = pd.Series(member_names[moved], dtype=object).fillna("?").to_numpy(dtype=object)
    out["moved_names"] = _join(h[moved], moved_text + "(" + where_to[moved] + ")", n_h)
    for column in ("members", "registry_members", "matched", "only_ncms", "only_registry",
                   "moved"):
        out[column] = out[column].astype(np.int64)
    order = np.lexsort([_rank(h_source), _rank(h_id), _rank(village), _rank(township)])
    return pd.DataFrame({c: np.asarray(out[c])[order] for c in COLUMNS}, copy=False)


def write_household_links(links: pd.DataFrame, out_dir: Path) -> list[Path]:
    """household_links.csv (UTF-8 with BOM, formulas neutralised) and household_links.xlsx
    (every text cell text, Chinese headers with the CSV's column names)."""
    out_dir = Path(out_dir)
    csv_path, xlsx_path = out_dir / f"{STEM}.csv", out_dir / f"{STEM}.xlsx"
    headers = [f"{LABELS[c]} {c}" if c in LABELS else c for c in links.columns]
    with csv_beside(links, csv_path) as also:  # one conversion of each chunk for both files
        write_xlsx(xlsx_path, [Sheet(SHEET, links, headers, also=also)])
    return [csv_path, xlsx_path]


def village_summary(links: pd.DataFrame) -> pd.DataFrame:
    """Per township and village: households by link type and members by kind, villages with
    the most households needing a look (not 1:1) first."""
    frame = links.assign(township=links["township"].fillna(""), village=links["village"].fillna(""))
    types = pd.crosstab([frame["township"], frame["village"]], frame["link_type"])
    types = types.reindex(columns=LINK_TYPES, fill_value=0)
    people = frame.groupby(["township", "village"])[
        ["members", "matched", "only_ncms", "only_registry", "moved"]].sum()
    out = types.join(people).reset_index()
    out.insert(2, "households", out[LINK_TYPES].sum(axis=1))
    out["not_1to1"] = out["households"] - out["1:1"]
    out = out.sort_values(["not_1to1", "households", "township", "village"],
                          ascending=[False, False, True, True], kind="stable")
    return out.reset_index(drop=True)


def report_context(links: pd.DataFrame | None) -> dict | None:
    """What the report's household section shows; None when the run has no NCMS households."""
    if links is None or links.empty:
        return None
    villages = village_summary(links)
    types = links["link_type"].value_counts().reindex(LINK_TYPES, fill_value=0)
    return {
        "households": len(links),
        "types": {k: int(v) for k, v in types.items()},
        "persons": {k: int(links[k].sum()) for k in
                    ("members", "matched", "only_ncms", "only_registry", "moved")},
        "villages": villages.head(TOP_VILLAGES).to_dict("records"),
        "n_villages": len(villages),
        "svg": village_chart(villages[villages["not_1to1"] > 0]),
    }


TYPE_COLOURS = {"split": charts.COLOURS["review"], "merged": charts.COLOURS["entities"],
                "unmatched": charts.COLOURS["bad"]}


@charts._no_tex
def village_chart(villages: pd.DataFrame, top: int = 25) -> str | None:
    """NCMS households split, merged and unmatched in the villages with the most of them
    (``villages`` as village_summary sorts them); the label gives the village's households."""
    worst = villages.head(top)
    if worst.empty:
        return None
    fig = charts._figure(0.26 * len(worst) + 0.9)
    ax = fig.add_subplot()
    labels = [f"{charts._text(r.township or '?', 30)} {charts._text(r.village or '?', 30)} "
              f"({r.households:,})" for r in worst.itertuples()][::-1]
    y = np.arange(len(worst))
    left = np.zeros(len(worst))
    for kind, colour in TYPE_COLOURS.items():
        values = worst[kind].to_numpy(dtype=float)[::-1]
        ax.barh(y, values, left=left, color=colour, label=kind, height=0.7)
        left += values
    ax.set_yticks(y, labels)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlabel("NCMS households not matched 1:1", fontsize=8)
    charts._clean(ax)
    return charts.to_svg(fig, "households")


def _coded(records: pd.DataFrame, column: str, rows: np.ndarray | None = None,
           ) -> tuple[np.ndarray, np.ndarray]:
    """A column (or its ``rows``) as codes into its distinct stripped texts; -1 where blank or
    absent. Stripped once per distinct value: a million records share far fewer."""
    size = len(records) if rows is None else len(rows)
    if column not in records:
        return np.full(size, -1, dtype=np.int64), np.array([], dtype=object)
    values = records[column].to_numpy(dtype=object)
    codes, uniques = pd.factorize(values if rows is None else values[rows])
    text = pd.Series(uniques, dtype=object).astype(str).tolist()
    text = pd.Series(list(map(str.strip, text)), dtype=object)
    recode, texts = pd.factorize(text.where(text != "", None))
    recode = np.append(recode, -1)  # code -1 (missing) stays -1
    return recode[codes].astype(np.int64), np.asarray(texts, dtype=object)


def _subset_text(records: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """The stripped text of a column at ``rows``, None where blank or absent."""
    codes, texts = _coded(records, column, rows)
    return np.append(texts, None)[codes]


def _rank(values: np.ndarray) -> np.ndarray:
    """Sort order of text values as ints (blank last), sorting only the distinct values."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object))
    order = np.argsort(np.asarray(uniques, dtype=object).astype(str), kind="stable")
    rank = np.empty(len(uniques) + 1, dtype=np.int64)
    rank[order] = np.arange(len(uniques))
    rank[-1] = len(uniques)  # code -1 (missing) sorts last
    return rank[codes]


def _entities(records: pd.DataFrame, clusters: pd.DataFrame) -> np.ndarray:
    """Each record's entity id: taken as is when ``clusters`` is aligned with ``records`` (as
    in a RunResult), else looked up by (source, record_id); None for a record in no entity."""
    rs, ri = records["source"].to_numpy(dtype=object), records["record_id"].to_numpy(dtype=object)
    cs, ci = clusters["source"].to_numpy(dtype=object), clusters["record_id"].to_numpy(dtype=object)
    if len(rs) == len(cs) and (ri == ci).all() and (rs == cs).all():
        return clusters["entity_id"].to_numpy(dtype=object)
    # One factorisation of both sides' ids as text, then an integer lookup.
    ids, _ = pd.factorize(pd.Series(np.concatenate([ri, ci]), dtype=object).astype(str))
    src, _ = pd.factorize(pd.Series(np.concatenate([rs, cs]), dtype=object).astype(str))
    key = src.astype(np.int64) * (int(ids.max()) + 1) + ids
    index = pd.Index(key[len(ri):])
    keep = ~index.duplicated()
    position = index[keep].get_indexer(key[:len(ri)])
    values = np.append(clusters["entity_id"].to_numpy(dtype=object)[keep], None)
    return values[position]


def _pair_codes(first: np.ndarray, second: np.ndarray, n_second: int,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct (first, second) code pairs in first-seen order, and the pairs as
    an (n, 2) array of the two codes."""
    width = max(n_second, 1)
    codes, uniques = pd.factorize(first.astype(np.int64) * width + second)
    uniques = np.asarray(uniques, dtype=np.int64)
    return codes.astype(np.int64), np.column_stack([uniques // width, uniques % width])


def _is_head(records: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """The records at ``rows`` that are their household's head (户主, 本人)."""
    if "relation_std" in records:
        return records["relation_std"].to_numpy(dtype=object)[rows] == "head"
    relation = _subset_text(records, "relation", rows)
    return pd.Series(relation, dtype=object).isin(HEAD_RELATIONS).to_numpy()


def _join(keys: np.ndarray, values: np.ndarray, n: int, sep: str = _NAME_SEP) -> np.ndarray:
    """Per key 0..n-1 its non-blank values joined by ``sep`` in the given order, None if none.

    One reduceat over the values sorted by key (stable): string concatenation in numpy's loop,
    no Python call per key.
    """
    out = np.full(n, None, dtype=object)
    values = np.asarray(values, dtype=object)
    keep = pd.notna(values)
    keys, values = np.asarray(keys)[keep], values[keep]
    if not len(keys):
        return out
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], _as_text(values[order])
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    joined = np.add.reduceat(values + sep, starts)
    out[keys[starts]] = [text[:-len(sep)] for text in joined.tolist()]
    return out


def _as_text(values: np.ndarray) -> np.ndarray:
    """``values.astype(str).astype(object)`` without the round trip through a fixed-width
    array when the values are text already (numpy's str type drops trailing NULs: then the
    round trip is made, so the result is the same)."""
    if (pd.api.types.infer_dtype(values, skipna=False) == "string"
            and "\x00" not in "".join(values.tolist())):
        return values
    return values.astype(str).astype(object)


def _first(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per key 0..n-1 its first value (in the given order), None if it has none."""
    out = np.full(n, None, dtype=object)
    keys = np.asarray(keys)
    first = ~pd.Series(keys).duplicated().to_numpy()
    out[keys[first]] = np.asarray(values, dtype=object)[first]
    return out


def _mode(groups: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    """Per group 0..n-1 its most frequent code (ties: the code seen first), -1 if it has none."""
    frame = pd.DataFrame({"g": groups, "c": codes})
    frame = frame[frame["c"] >= 0]
    counts = frame.groupby(["g", "c"], sort=False).size().reset_index(name="k")
    counts = counts.sort_values(["g", "k", "c"], ascending=[True, False, True], kind="stable")
    best = counts.drop_duplicates("g")
    out = np.full(n, -1, dtype=np.int64)
    out[best["g"].to_numpy()] = best["c"].to_numpy()
    return out


def _places(records: pd.DataFrame, ins: np.ndarray, h: np.ndarray, n_h: int):
    """Township, village (the village's usual spelling, without 组) and group per household.

    A household's place is the standardised (township, village) most of its members were
    entered under; it is spelled as most NCMS records of that place spell it, so the rows of one
    village sort together however each clerk wrote it.
    """
    town_code, towns = _coded(records, "township", ins)
    village_code, villages = _coded(records, "village", ins)
    # the 组 off each distinct spelling (孙家窝堡村3组 -> 孙家窝堡村), then recoded
    bare = pd.Series(villages, dtype=object).str.replace(GROUP_SUFFIX, "", regex=True)
    recode, villages = pd.factorize(bare)
    village_code = np.append(recode, -1)[village_code]
    villages = np.asarray(villages, dtype=object)
    town_key = _coded(records, "township_norm", ins)[0] if "township_norm" in records \
        else town_code
    village_key = _coded(records, "village_norm", ins)[0] if "village_norm" in records \
        else village_code
    place, _ = _pair_codes(town_key + 1, village_key + 1, int(village_key.max()) + 2)
    n_places = int(place.max()) + 1
    town_of_place = _mode(place, town_code, n_places)
    village_of_place = _mode(place, village_code, n_places)
    household_place = _mode(h, place, n_h)
    has_place = household_place >= 0
    township = np.full(n_h, None, dtype=object)
    village = np.full(n_h, None, dtype=object)
    township[has_place] = np.append(towns, None)[town_of_place[household_place[has_place]]]
    village[has_place] = np.append(villages, None)[village_of_place[household_place[has_place]]]
    group_code, groups = _coded(records, "village_group", ins)
    group = np.append(groups, None)[_mode(h, group_code, n_h)]
    return township, village, group
