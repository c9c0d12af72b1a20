"""疑似重复户籍: persons the registry itself seems to hold twice, for the registry office.

A pair of two registry records that look like one person is never merged without a person:
it waits in review (the review band, or a merge clustering refused because it would put two
registry persons in one entity). Until the registry office settles it, the card office must
issue a card to neither record, or one person may get two cards. The list shows both records
side by side with what agrees and what differs, and the full ID numbers: the registry office
resolves a double registration by them, as every other office list shows them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.outputs.enrolments import GENDER_WORDS
from linkage.outputs.tables import LABELS, header
from linkage.outputs.view import RunView, birth_text, isin, sort_order

SIDE_COLUMNS = ["entity_id", "record", "name", "resident_id", "birth_date", "gender",
                "household_id", "relation", "township", "village", "address", "registry_status"]
REGISTRY_DUPLICATE_COLUMNS = [
    "evidence", "probability", "waiting_for",
    *[f"{c}_{side}" for side in (1, 2) for c in SIDE_COLUMNS],
]
WAITING = {
    "review_band": "匹配评分在复核区间，待复核员判定",
    "refused": "系统不自动合并两条户籍记录，待户籍部门核实",
}


def headers(columns: list[str]) -> list[str]:
    """'记录一 姓名 name_1': which of the two records, the office's word, the CSV's name."""
    out = []
    for column in columns:
        base, _, side = column.rpartition("_")
        if side in ("1", "2") and base in SIDE_COLUMNS:
            out.append(f"记录{'一二'[int(side) - 1]} {LABELS.get(base, base)} {column}")
        else:
            out.append(header(column))
    return out


def registry_pairs(view: RunView) -> pd.DataFrame:
    """The review pairs whose two records are both registry records (what evaluate.py counts
    as the registry's own double registrations): positions ``a``, ``b`` in ``view.records``,
    their probability and why each waits (``review_band`` or ``refused``)."""
    empty = pd.DataFrame({"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64),
                          "probability": np.zeros(0), "waiting": np.zeros(0, dtype=object)})
    review = view.review
    registry = set(view.config.authority_sources)
    if review is None or not len(review) or not registry:
        return empty
    both = (review["source_l"].astype(str).isin(registry)
            & review["source_r"].astype(str).isin(registry)).to_numpy()
    pairs = review[both]
    if not len(pairs):
        return empty
    # keys only for the registry records the pairs name (a few of millions), found by id
    record_id = view.text("record_id", view.authority)
    wanted = pd.concat([pairs["record_l"], pairs["record_r"]]).astype(str).to_numpy()
    named = isin(record_id, wanted)
    position = np.flatnonzero(view.authority)[named]
    keys = pd.Index(_keys(view.text_at("source", position), record_id[named]))
    a = keys.get_indexer(_keys(pairs["source_l"], pairs["record_l"]))
    b = keys.get_indexer(_keys(pairs["source_r"], pairs["record_r"]))
    known = (a >= 0) & (b >= 0)  # an export whose input files lost a record: left out
    refused = pairs["band"].astype(str).eq("match").to_numpy()  # a refused merge: match band
    return pd.DataFrame({
        "a": position[a[known]], "b": position[b[known]],
        "probability": pairs["probability"].astype(float).to_numpy()[known],
        "waiting": np.where(refused, "refused", "review_band")[known].astype(object),
    })


def _keys(source, record_id) -> np.ndarray:
    return (pd.Series(np.asarray(source, dtype=object), dtype=object).astype(str) + ":"
            + pd.Series(np.asarray(record_id, dtype=object), dtype=object).astype(str)
            ).to_numpy(dtype=object)


def partners(view: RunView, pairs: pd.DataFrame) -> pd.Series:
    """Per golden row (its position) of an entity in such a pair, the other registry
    record(s) it may be the same person as, '、'-joined ('police:GA100001807')."""
    if not len(pairs):
        return pd.Series([], dtype=object)
    at = np.concatenate([pairs["a"].to_numpy(), pairs["b"].to_numpy()])
    key = _keys(view.text_at("source", at), view.text_at("record_id", at))
    half = len(pairs)
    rows = view.golden_row
    frame = pd.DataFrame({"row": rows[at],
                          "other": np.concatenate([key[half:], key[:half]])})
    frame = frame[frame["row"] >= 0].drop_duplicates()
    return frame.groupby("row", sort=True)["other"].agg("、".join)


def registry_duplicates(view: RunView, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per pair (REGISTRY_DUPLICATE_COLUMNS): both registry records as the registry
    holds them, the evidence in words, and why the pair waits; ordered by place."""
    sides = {side: _side(view, pairs[col].to_numpy(dtype=np.int64))
             for side, col in ((1, "a"), (2, "b"))}
    out: dict[str, np.ndarray] = {
        "evidence": evidence(sides[1], sides[2]),
        "probability": pairs["probability"].round(4).to_numpy(),
        "waiting_for": pairs["waiting"].map(WAITING).to_numpy(dtype=object),
    }
    for side, columns in sides.items():
        out.update({f"{c}_{side}": columns[c] for c in SIDE_COLUMNS})
    frame = pd.DataFrame({c: out[c] for c in REGISTRY_DUPLICATE_COLUMNS}, copy=False)
    keys = ["township_1", "village_1", "household_id_1", "record_1"]
    return frame.iloc[sort_order(frame, keys)].reset_index(drop=True)


def _side(view: RunView, at: np.ndarray) -> dict[str, np.ndarray]:
    records = view.records
    birth = (records["birth_date"].fillna(0).to_numpy(dtype=np.int64)[at]
             if "birth_date" in records else np.zeros(len(at), dtype=np.int64))
    text = {c: view.text_at(c, at) for c in ("name", "id_number", "household_id", "relation",
                                               "township", "village", "address", "status")}
    return {
        "entity_id": view.entity_id[at],
        "record": _keys(view.text_at("source", at), view.text_at("record_id", at)),
        "name": text["name"],
        "resident_id": text["id_number"],
        "birth_date": birth_text(birth),
        "gender": pd.Series(view.text_at("gender", at), dtype=object).map(GENDER_WORDS).to_numpy(
            dtype=object),
        "household_id": text["household_id"],
        "relation": text["relation"],
        "township": text["township"],
        "village": text["village"],
        "address": text["address"],
        "registry_status": text["status"],
    }


def evidence(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> np.ndarray:
    """What the two records share and where they differ, in the registry office's words:
    '姓名相同；身份证号仅校验位不同；出生日期相同；性别相同；不同户；同村'."""
    notes = [
        _compare(x["name"], y["name"], "姓名相同", "姓名不同", "一条无姓名"),
        _id_note(x["resident_id"], y["resident_id"]),
        _compare(x["birth_date"], y["birth_date"], "出生日期相同", "出生日期不同",
                 "一条无出生日期"),
        _compare(x["gender"], y["gender"], "性别相同", "性别不同", "一条无性别"),
        _compare(x["household_id"], y["household_id"], "同一户", "不同户", "一条无户号"),
        _compare(x["village"], y["village"], "同村", "不同村", "一条无村名"),
    ]
    dead = pd.Series(x["registry_status"], dtype=object).fillna("").str.contains("死亡") | \
        pd.Series(y["registry_status"], dtype=object).fillna("").str.contains("死亡")
    notes.append(np.where(dead.to_numpy(), "一条登记为死亡", "").astype(object))
    joined = np.full(len(x["name"]), "", dtype=object)
    for note in notes:
        joined = np.where(note == "", joined,
                          np.where(joined == "", note, joined + "；" + note)).astype(object)
    return joined


def _compare(x: np.ndarray, y: np.ndarray, same: str, differs: str, missing: str) -> np.ndarray:
    known_x, known_y = pd.notna(x), pd.notna(y)
    equal = known_x & known_y & (pd.Series(x, dtype=object) == pd.Series(y, dtype=object)
                                 ).to_numpy()
    return np.select([equal, known_x & known_y, known_x | known_y], [same, differs, missing],
                     "").astype(object)


def _id_note(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ID numbers compared as a registry clerk would: equal, only the check character
    differs, one digit differs (a keying slip), or different."""
    out = _compare(x, y, "身份证号相同", "身份证号不同", "一条无身份证号")
    for i in np.flatnonzero(out == "身份证号不同"):
        a, b = str(x[i]).upper(), str(y[i]).upper()
        if len(a) == len(b) == 18 and a[:17] == b[:17]:
            out[i] = "身份证号仅校验位不同"
        elif len(a) == len(b) and sum(p != q for p, q in zip(a, b)) == 1:
            out[i] = "身份证号仅一位不同"
    return out
