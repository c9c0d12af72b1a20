"""The day's enrolment check: what the office verifies of each day's forms, per village and clerk.

For the batch an `add` just linked (the forms handed in that day):

- new enrolments: every record of the batch, the person it joined (known before, or new) and
  whether that person is now insured more than once;
- duplicates: each batch record beside every other enrolment of its person (scheme, source,
  record, village, household, receipt, date), whether that one came earlier or today;
- entry problems: the ID and date errors of quality.record_errors (the same kinds the run's
  record_errors.csv counts) beside the birthdate as the clerk wrote it;
- the receipt reconciliation: each receipt's members against the household's enrolled members,
  its headcount against the members keyed, its tier against theirs and the household's, and its
  amount against the sum of what each member owes by the year's rules
  (linkage.core.contributions). Receipts that disagree are listed with the difference;
- input problems: a cell the check cannot read (an amount, a headcount), by file, row and
  column; and the rows `add` rejected, so read = checked + rejected.

What a source does not give (no receipt amount, no headcount, no rules for the year) is said in
the notes, never guessed. IDs are written in full, as text: the enrolment office needs them, as
the card roster and the duplicate list give them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.core import contributions as rules
from linkage.core.config import SourceConfig
from linkage.jobs.bookkeeping import RunResult
from linkage.outputs import quality
from linkage.outputs.roster import ID_HINTS
from linkage.outputs.tables import LABELS, write_csv
from linkage.outputs.view import TIER_CODES, RunView, birth_text, isin
from linkage.outputs.xlsx import Sheet, write_xlsx

AGREES, DISAGREES, UNCHECKED = "相符 agrees", "不符 disagrees", "无法核对 cannot check"
HEAD_WORDS = ("户主", "本人")
BIRTH_PROBLEMS = {"unparseable": "出生日期无法识别 birthdate unreadable",
                  "missing": "出生日期缺失 birthdate missing",
                  "from_id": "出生日期缺失(取自身份证号) birthdate missing, taken from the ID",
                  "year": "出生日期只有年份 birthdate year only",
                  "year_month": "出生日期只有年月 birthdate year and month only"}
ENTRY_KINDS = {"id_missing": "身份证号缺失 ID missing", "id_invalid": "身份证号错误 ID invalid",
               "id_repaired": "身份证号与户籍不同 ID differs from the registry's",
               "name_differs": "姓名与户籍不同 name differs",
               "birth_differs": "出生日期与户籍不同 birthdate differs",
               "gender_differs": "性别与户籍不同 gender differs",
               "not_in_registry": "户籍中无此人 not in the registry"}

NEW_COLUMNS = [
    "township", "village", "clerk", "row", "record_id", "name_entered", "id_entered",
    "id_status", "birth_entered", "household_id", "relation", "receipt", "tier", "subsidy",
    "enrol_kind", "entity_id", "status", "person", "insured_elsewhere", "problems",
]
DUPLICATE_COLUMNS = [
    "township", "village", "clerk", "entity_id", "resident_id", "name", "row", "record_id",
    "name_entered", "id_entered", "household_id", "receipt", "paid_on", "other_when",
    "other_scheme", "other_source", "other_record_id", "other_name_entered", "other_id_entered",
    "other_township", "other_village", "other_household_id", "other_receipt", "other_clerk",
    "other_date", "kind",
]
ENTRY_COLUMNS = [
    "township", "village", "clerk", "row", "record_id", "entity_id", "receipt", "problems",
    "name_entered", "name_registry", "id_entered", "id_status", "id_registry", "birth_entered",
    "birth_parsed", "birth_registry",
]
RECEIPT_COLUMNS = [
    "township", "village", "clerk", "receipt", "household_id", "head", "paid_on", "verdict",
    "problems", "tier", "members_stated", "members_keyed", "persons", "household_enrolled",
    "household_earlier", "amount_stated", "amount_due", "amount_difference", "amount_if_tier",
    "headcount_differs", "amount_differs", "tier_differs", "rows",
]
MEMBER_COLUMNS = [
    "receipt", "household_id", "row", "record_id", "name_entered", "relation", "tier",
    "subsidy", "category", "enrol_kind", "age", "reduction", "due", "note",
]
INPUT_COLUMNS = ["file", "row", "column", "value", "problem"]
REVIEW_COLUMNS = ["source_l", "record_l", "source_r", "record_r", "probability", "reason"]
REJECT_COLUMNS = ["file", "row", "column", "record_id", "reason"]
SUMMARY_COLUMNS = [
    "township", "village", "clerk", "records", "new_persons", "known_persons", "duplicates",
    "entry_problems", "id_problems", "date_problems", "to_review", "receipts",
    "receipts_disagreeing", "receipts_unchecked", "amount_difference", "input_problems",
]
# Sheet names of the workbook, the office's word first.
SHEETS = {"summary": "汇总 summary", "new_enrolments": "新参合 new",
          "duplicates": "重复参保 duplicates", "entry_problems": "录入问题 entry problems",
          "receipts": "收据核对 receipts", "receipt_members": "收据成员 members",
          "to_review": "待审核 to review", "input_problems": "无法读取 unreadable",
          "rejected": "退回 rejected", "notes": "说明 notes"}
OWN_LABELS = {
    "row": "行号", "relation": "与户主关系", "enrol_kind": "参合类型", "person": "人员",
    "insured_elsewhere": "已在别处参保", "problems": "问题", "birth_entered": "录入出生日期",
    "birth_parsed": "识别出生日期", "birth_registry": "户籍出生日期", "name_registry": "户籍姓名",
    "id_registry": "户籍身份证号", "paid_on": "缴费日期", "other_when": "另一参保何时",
    "other_scheme": "另一险种", "other_source": "另一来源", "other_record_id": "另一记录编号",
    "other_name_entered": "另一录入姓名", "other_id_entered": "另一录入身份证号",
    "other_township": "另一乡镇", "other_village": "另一村", "other_household_id": "另一家庭编号",
    "other_receipt": "另一收据号", "other_clerk": "另一录入员", "other_date": "另一参保日期",
    "kind": "类型", "head": "户主", "verdict": "核对结果", "members_stated": "收据人数",
    "members_keyed": "录入人数", "persons": "实际人数", "household_enrolled": "本户参合人数",
    "household_earlier": "本户此前参合", "amount_stated": "收据金额", "amount_due": "应缴金额",
    "amount_difference": "差额(收据-应缴)", "amount_if_tier": "金额相当于档次",
    "headcount_differs": "人数不符", "amount_differs": "金额不符", "tier_differs": "档次不符",
    "rows": "行号", "category": "补助类别(规则)", "age": "年龄", "reduction": "减免", "due": "应缴",
    "note": "备注", "file": "文件", "column": "列", "value": "内容", "problem": "问题",
    "source_l": "来源(左)", "record_l": "记录(左)", "source_r": "来源(右)", "record_r": "记录(右)",
    "probability": "匹配概率", "records": "记录数", "new_persons": "新人员",
    "known_persons": "已知人员",
    "duplicates": "重复参保", "entry_problems": "录入问题", "id_problems": "身份证号问题",
    "date_problems": "出生日期问题", "to_review": "待审核", "receipts": "收据数",
    "receipts_disagreeing": "不符收据", "receipts_unchecked": "无法核对收据",
    "input_problems": "无法读取",
    "what": "项目", "detail": "说明", "resident_id": "公民身份号码",
}


@dataclass
class Batch:
    """The day's batch as the check reads it: its linked rows as the file gives them."""

    source: SourceConfig  # the configured source whose columns the file follows
    file: str  # the file as the user gave it
    frame: pd.DataFrame  # linked rows: row, record_id, the source's fields and the check's own
    positions: np.ndarray  # each frame row's position in the run's records
    columns: dict[str, str]  # field -> column of the file, for every field the check reads
    missing: dict[str, str]  # check fields the config names whose column the file lacks
    rejects: pd.DataFrame  # the rows `add` rejected (file, row, column, reason)
    read: int  # rows read from the file (= linked + rejected)
    day: str  # YYYY-MM-DD: the day the forms came in
    year: int  # the contribution year whose rules apply


@dataclass
class DayCheck:
    run_id: str
    batch: Batch
    tables: dict[str, pd.DataFrame]
    counts: dict[str, int | float | str | None]
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- the check
def day_check(result: RunResult, batch: Batch) -> DayCheck:
    """Every table of the day's check for ``batch``, linked by the `add` run ``result``."""
    view, at = _focus(result, batch)
    config = result.config
    f = batch.frame
    notes: list[str] = []
    text = {c: _text(f[c]) if c in f else np.full(len(f), None, dtype=object)
            for c in ("township", "village", "clerk", "receipt", "household_id", "relation",
                      "subsidy", "enrol_kind", "name", "id_number", "birth_date", "tier",
                      "paid_on", "receipt_amount", "receipt_members", "amount")}
    tier = _tier(text["tier"])
    place = pd.DataFrame({"township": text["township"], "village": text["village"],
                          "clerk": text["clerk"]})
    entity = view.entity_id[at]
    before = set(view.entity_id[~isin(np.arange(len(view.records)), at)])
    insured = view.golden_value("n_enrolments")[at]
    input_problems: list[dict] = []

    # entry problems: the quality report's kinds, beside the birthdate as written
    entry, id_problem, date_problem, entry_text = _entry_problems(view, at, batch, text, place)
    new = place.assign(
        row=f["row"].to_numpy(), record_id=f["record_id"].to_numpy(dtype=object),
        name_entered=text["name"], id_entered=text["id_number"],
        id_status=view.text("id_status")[at], birth_entered=text["birth_date"],
        household_id=text["household_id"], relation=text["relation"], receipt=text["receipt"],
        tier=tier, subsidy=text["subsidy"], enrol_kind=text["enrol_kind"], entity_id=entity,
        status=view.golden_value("status")[at],
        person=np.where(isin(entity, list(before)), "已知 known", "新 new"),
        insured_elsewhere=np.where(pd.to_numeric(pd.Series(insured), errors="coerce").fillna(0)
                                   >= 2, "是 yes", ""),
        problems=entry_text)[NEW_COLUMNS]

    duplicates = _duplicates(view, at, batch, text, place)
    receipts, members, unchecked_why = _receipts(view, at, batch, text, tier, place,
                                                  input_problems, config)
    notes += unchecked_why
    review = _to_review(result, batch)
    rejected = batch.rejects.reindex(columns=REJECT_COLUMNS)
    inputs = pd.DataFrame(input_problems, columns=INPUT_COLUMNS)

    summary = _summary(place, new, duplicates, entry, id_problem, date_problem, review, f,
                       receipts, inputs)
    disagreeing = int((receipts["verdict"] == DISAGREES).sum()) if len(receipts) else 0
    counts = {
        "day": batch.day, "year": batch.year, "source": batch.source.name, "file": batch.file,
        "read": batch.read, "checked": len(f), "rejected": len(rejected),
        "new_persons": int((new["person"] == "新 new").sum()),
        "known_persons": int((new["person"] == "已知 known").sum()),
        "insured_elsewhere": int((new["insured_elsewhere"] != "").sum()),
        "duplicate_rows": len(duplicates), "entry_problems": len(entry),
        "receipts": len(receipts), "receipts_disagreeing": disagreeing,
        "receipts_unchecked": int((receipts["verdict"] == UNCHECKED).sum()) if len(receipts) else 0,
        "amount_difference": float(receipts["amount_difference"].fillna(0).sum())
        if len(receipts) else 0.0,
        "to_review": len(review), "input_problems": len(inputs),
    }
    notes = [f"{batch.file}: 读取 {batch.read} 行 read = 核对 {len(f)} checked + 退回 "
             f"{len(rejected)} rejected (source '{batch.source.name}', day {batch.day})", *notes]
    tables = {"summary": summary, "new_enrolments": new, "duplicates": duplicates,
              "entry_problems": entry, "receipts": receipts, "receipt_members": members,
              "to_review": review, "input_problems": inputs, "rejected": rejected,
              "notes": pd.DataFrame({"what": [n.split(": ", 1)[0] for n in notes],
                                     "detail": [n.split(": ", 1)[-1] for n in notes]})}
    return DayCheck(result.run_id, batch, tables, counts, notes)


def _focus(result: RunResult, batch: Batch) -> tuple[RunView, np.ndarray]:
    """A view of the records the check reads (every record of the batch's persons, and of its
    households and receipts in its source), and the batch rows' positions in it."""
    records = result.records
    entity = result.clusters["entity_id"].to_numpy(dtype=object)
    wanted = isin(entity, entity[batch.positions])
    source = (records["source"] == batch.source.name).to_numpy()
    for column in ("household_id", "receipt"):
        if column in records and column in batch.frame:
            values = _text(batch.frame[column])
            wanted |= source & isin(_text(records[column]), [v for v in values if v])
    wanted[batch.positions] = True
    keep = np.flatnonzero(wanted)
    golden = result.golden[isin(result.golden["entity_id"].to_numpy(dtype=object),
                                entity[keep])].reset_index(drop=True)
    view = RunView(run_id=result.run_id, summary=result.summary,
                   records=records.iloc[keep].reset_index(drop=True), entity_id=entity[keep],
                   golden=golden, config=result.config, model={}, weights=None)
    return view, np.searchsorted(keep, batch.positions)


def _entry_problems(view: RunView, at: np.ndarray, batch: Batch, text: dict,
                    place: pd.DataFrame):
    """ID and date problems of each batch record: quality.record_errors' kinds, and the
    birthdates the standardiser could not read whole."""
    n = len(at)
    kinds = pd.DataFrame(False, index=range(n), columns=quality.ERROR_KINDS)
    registry = {"name_registry": np.full(n, None, dtype=object),
                "id_registry": np.full(n, None, dtype=object),
                "birth_registry": np.full(n, None, dtype=object)}
    if view.insurance[at].any():
        errors = quality.record_errors(view)
        key = pd.MultiIndex.from_arrays([errors["source"], errors["record_id"]])
        where = key.get_indexer(pd.MultiIndex.from_arrays(
            [view.text("source")[at], view.text("record_id")[at]]))
        hit = where >= 0
        for kind in quality.ERROR_KINDS:
            kinds.loc[hit, kind] = errors[kind].to_numpy()[where[hit]]
        registry["name_registry"][hit] = errors["name_registry"].to_numpy()[where[hit]]
        registry["id_registry"][hit] = errors["id_registry"].to_numpy()[where[hit]]
        registry["birth_registry"][hit] = birth_text(errors["birth_registry"].to_numpy()[
            where[hit]])
    status = view.text("id_status")[at]
    birth_quality = view.text("birth_quality")[at]
    labels = [[ENTRY_KINDS[k] for k in quality.ERROR_KINDS if row[k]]
              for row in kinds.to_dict("records")]
    for i, (s, q) in enumerate(zip(status, birth_quality)):
        if kinds.at[i, "id_invalid"] and s in ID_HINTS:
            labels[i] = [x if x != ENTRY_KINDS["id_invalid"] else f"{x}: {ID_HINTS[s]}"
                         for x in labels[i]]
        if q in BIRTH_PROBLEMS:
            labels[i].append(BIRTH_PROBLEMS[q])
    problems = np.array(["; ".join(x) for x in labels], dtype=object)
    id_problem = (kinds["id_missing"] | kinds["id_invalid"] | kinds["id_repaired"]).to_numpy()
    date_problem = kinds["birth_differs"].to_numpy() | isin(birth_quality, list(BIRTH_PROBLEMS))
    births = view.records["birth_date"].fillna(0).to_numpy(dtype=np.int64)[at] \
        if "birth_date" in view.records else np.zeros(n, dtype=np.int64)
    table = place.assign(
        row=batch.frame["row"].to_numpy(), record_id=batch.frame["record_id"].to_numpy(),
        entity_id=view.entity_id[at], receipt=text["receipt"], problems=problems,
        name_entered=text["name"], name_registry=registry["name_registry"],
        id_entered=text["id_number"], id_status=status, id_registry=registry["id_registry"],
        birth_entered=text["birth_date"], birth_parsed=birth_text(births),
        birth_registry=registry["birth_registry"])
    shown = problems != ""
    return (table[shown][ENTRY_COLUMNS].reset_index(drop=True), id_problem, date_problem,
            problems)


def _duplicates(view: RunView, at: np.ndarray, batch: Batch, text: dict,
                place: pd.DataFrame) -> pd.DataFrame:
    """Each batch record whose person holds another enrolment, beside that enrolment."""
    entity = view.entity_id
    mine = pd.DataFrame({"entity_id": entity[at], "pos": at}).assign(
        **{c: place[c].to_numpy() for c in place}, row=batch.frame["row"].to_numpy(),
        record_id=batch.frame["record_id"].to_numpy(), name_entered=text["name"],
        id_entered=text["id_number"], household_id=text["household_id"],
        receipt=text["receipt"], paid_on=text["paid_on"])
    insurance = np.flatnonzero(view.insurance)
    others = pd.DataFrame({"entity_id": entity[insurance], "other_pos": insurance})
    pairs = mine.merge(others, on="entity_id")
    pairs = pairs[pairs["pos"] != pairs["other_pos"]]
    if pairs.empty:
        return pd.DataFrame(columns=DUPLICATE_COLUMNS)
    o = pairs["other_pos"].to_numpy()
    in_batch = isin(o, at)
    date = view.text("enrolled_on")[o]
    for column in ("paid_on", f"x_{batch.columns.get('paid_on', '')}"):
        date = np.where(pd.isna(date), view.text(column)[o], date)
    same_scheme = view.scheme[o] == view.scheme[pairs["pos"].to_numpy()]
    same_household = same_scheme & pd.notna(view.text("household_id")[o]) & (
        view.text("household_id")[o] == pairs["household_id"].to_numpy())
    out = pairs.assign(
        resident_id=view.golden_value("id_number")[pairs["pos"].to_numpy()],
        name=view.golden_value("name")[pairs["pos"].to_numpy()],
        other_when=np.where(in_batch, "今天 today", "此前 earlier"),
        other_scheme=view.scheme[o], other_source=view.text("source")[o],
        other_record_id=view.text("record_id")[o], other_name_entered=view.text("name")[o],
        other_id_entered=view.text("id_number")[o], other_township=view.text("township")[o],
        other_village=view.text("village")[o], other_household_id=view.text("household_id")[o],
        other_receipt=view.text("receipt")[o], other_clerk=view.text("clerk")[o],
        other_date=date,
        kind=np.select([same_household, same_scheme & pd.notna(view.text("household_id")[o]),
                        same_scheme],
                       ["同户重复录入 twice in one household", "同险种另一户 another household",
                        "同险种两次 twice in one scheme"], "两个险种 both schemes"))
    out = out.sort_values(["township", "village", "row", "other_record_id"], kind="stable",
                          na_position="last")
    return out[DUPLICATE_COLUMNS].reset_index(drop=True)


def _receipts(view: RunView, at: np.ndarray, batch: Batch, text: dict, tier: np.ndarray,
              place: pd.DataFrame, problems: list[dict], config):
    """The reconciliation: one row per receipt of the batch, and one per member on a receipt."""
    f = batch.frame
    why: list[str] = []
    empty = (pd.DataFrame(columns=RECEIPT_COLUMNS), pd.DataFrame(columns=MEMBER_COLUMNS))
    if "receipt" not in batch.columns:
        why.append(f"收据 receipts: source '{batch.source.name}' maps no receipt column: no "
                   "receipt reconciled")
        return *empty, why
    for name, column in batch.missing.items():
        why.append(f"{name}: column {column!r} (contributions.columns) is not in {batch.file}")
    settings = config.contributions
    found = rules.rules_for(settings, batch.year)
    if found is None:
        why.append(f"规则 rules: the config's contributions give no rules for {batch.year} or "
                   "earlier: amounts not checked")
    else:
        why.append(f"规则 rules: the {found[0]} contribution rules (personal "
                   + ", ".join(f"{t} {v:g}" for t, v in found[1].personal.items())
                   + f" yuan; government {found[1].government:g}) for {batch.year}")
    stated_amount = _numbers(text["receipt_amount"], f, batch, "receipt_amount", problems)
    stated_members = _numbers(text["receipt_members"], f, batch, "receipt_members", problems,
                              whole=True)
    per_member = _numbers(text["amount"], f, batch, "amount", problems)
    amount_from = ("receipt_amount" if "receipt_amount" in batch.columns else
                   "amount" if "amount" in batch.columns else None)
    if amount_from is None:
        why.append("金额 amount: no receipt_amount or amount column: amounts not checked")
    elif amount_from == "amount":
        why.append("金额 amount: no receipt_amount column: a receipt's amount is the sum of its "
                   "members' amounts")
    if "receipt_members" not in batch.columns:
        why.append("人数 headcount: no receipt_members column: members keyed are compared with "
                   "the persons the linkage found, not with the receipt")
    if "enrol_kind" not in batch.columns:
        why.append("参合类型 enrol_kind: not mapped: every member is priced as a regular enrollee "
                   "(late enrollees and newborns cannot be told)")

    receipt = text["receipt"]
    for i in np.flatnonzero(pd.isna(receipt)):
        problems.append(_problem(batch, f, i, "receipt", None, "收据号缺失 no receipt number"))
    # pricing each member
    births = view.records["birth_date"].fillna(0).to_numpy(dtype=np.int64)[at] \
        if "birth_date" in view.records else np.zeros(len(at), dtype=np.int64)
    age = np.where(births > 0, batch.year - births // 10000, -1)
    kind = (rules.enrolment_kind(settings, text["enrol_kind"]) if settings is not None
            else np.full(len(f), rules.REGULAR, dtype=object))
    if found is not None:
        priced = rules.price(found[1], tier, text["subsidy"], kind, age)
        tiers = list(found[1].personal)
        by_tier = {t: rules.price(found[1], np.full(len(f), t, dtype=object), text["subsidy"],
                                  kind, age).due for t in tiers}
    else:
        priced = rules.Priced(np.full(len(f), np.nan), np.full(len(f), "", dtype=object), kind,
                              np.full(len(f), None, dtype=object), np.zeros(len(f)))
        tiers, by_tier = [], {}
    members = pd.DataFrame({
        "receipt": receipt, "household_id": text["household_id"], "row": f["row"].to_numpy(),
        "record_id": f["record_id"].to_numpy(), "name_entered": text["name"],
        "relation": text["relation"], "tier": tier, "subsidy": text["subsidy"],
        "category": priced.category, "enrol_kind": text["enrol_kind"],
        "age": np.where(age >= 0, age, np.nan), "reduction": priced.reduction,
        "due": priced.due, "note": priced.problem})
    on = pd.notna(receipt)
    if not on.any():
        return *empty, why

    # what else the state holds of these households and receipts, enrolled earlier
    source = (view.records["source"] == batch.source.name).to_numpy()
    earlier = source & ~isin(np.arange(len(view.records)), at)
    state_hh, state_receipt = view.text("household_id"), view.text("receipt")
    state_tier = _tier(view.text("tier"))
    entity = view.entity_id[at]
    # the earlier records of each household and receipt: (receipt, tier) and households
    household_before: dict[str, list[tuple]] = {}
    keyed_before: dict[str, list] = {}
    for h, r, t in zip(state_hh[earlier], state_receipt[earlier], state_tier[earlier]):
        if h is not None:
            household_before.setdefault(h, []).append((r, t))
        if r is not None:
            keyed_before.setdefault(r, []).append(h)

    col = {name: members[name].to_numpy(dtype=object) for name in members}
    col.update(entity=entity, stated_amount=stated_amount, stated_members=stated_members,
               per_member=per_member, paid_on=text["paid_on"],
               **{c: place[c].to_numpy(dtype=object) for c in place})
    due_all = priced.due
    codes, numbers = pd.factorize(pd.Series(receipt, dtype=object))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(numbers) + 1))
    rows = []
    for k, number in enumerate(numbers):
        idx = order[bounds[k]:bounds[k + 1]]
        households = [h for h in dict.fromkeys(col["household_id"][idx]) if pd.notna(h)]
        before = [(r, t) for h in households for r, t in household_before.get(h, ())
                  if r != number]  # the household's members enrolled on earlier receipts
        reused = keyed_before.get(number, [])
        issues: list[str] = []
        keyed, persons = len(idx), len(set(col["entity"][idx]))
        stated_m = _one(stated_members[idx], "receipt_members", issues)
        if amount_from == "receipt_amount":
            stated_a = _one(stated_amount[idx], "receipt_amount", issues)
        elif amount_from == "amount":
            stated_a = (float(per_member[idx].sum()) if not np.isnan(per_member[idx]).any()
                        else np.nan)
        else:
            stated_a = np.nan
        due = float(due_all[idx].sum()) if not np.isnan(due_all[idx]).any() else np.nan
        headcount = False
        if pd.notna(stated_m):
            headcount = int(stated_m) != keyed
            if headcount:
                issues.append(f"人数不符 headcount: receipt {int(stated_m)}, keyed {keyed}")
        if persons < keyed:
            headcount = True
            issues.append(f"同一人录入两次 a person keyed twice: {keyed} rows, {persons} persons")
        if len(households) > 1:
            issues.append("一张收据多户 one receipt, several households: " + "、".join(households))
        if reused:  # a receipt is keyed once: its number on an earlier day's record
            used_by = sorted({h for h in reused if pd.notna(h)})
            issues.append(f"收据号此前已录入 receipt number keyed before, on {len(reused)} "
                          "record(s)" + (f" of household {'、'.join(used_by)}" if used_by else ""))
        group_tiers = [x for x in dict.fromkeys(col["tier"][idx]) if pd.notna(x)]
        earlier_tiers = sorted({x for _, x in before if pd.notna(x)} - set(group_tiers))
        tier_differs = len(group_tiers) > 1 or bool(earlier_tiers)
        if len(group_tiers) > 1:
            issues.append("档次不一 members in several tiers: " + "、".join(group_tiers))
        if earlier_tiers:
            issues.append("本户此前为" + "、".join(earlier_tiers) + " the household enrolled in "
                          + "、".join(earlier_tiers) + " before")
        fits = None
        amount_differs = pd.notna(stated_a) and pd.notna(due) and abs(stated_a - due) > 0.005
        if amount_differs:
            issues.append(f"金额不符 amount: receipt {stated_a:.2f}, due {due:.2f}, difference "
                          f"{stated_a - due:+.2f}")
            for x in tiers:
                if x not in group_tiers and abs(float(by_tier[x][idx].sum()) - stated_a) < 0.005:
                    fits = x
                    tier_differs = True
                    issues.append(f"金额相当于{x} the amount is the {x} amount")
        unpriced = [f"row {r}: {n}" for r, n in zip(col["row"][idx], col["note"][idx])
                    if n and not n.startswith("younger")]
        cannot = amount_from is not None and found is not None and (pd.isna(stated_a)
                                                                    or pd.isna(due))
        if cannot:
            issues.append("无法核对金额 amount not checked: "
                          + ("; ".join(unpriced) if unpriced else "the receipt's amount is "
                             "missing or unreadable"))
        disagrees = headcount or amount_differs or tier_differs or bool(reused) \
            or len(households) > 1
        heads = [n for n, r in zip(col["name_entered"][idx], col["relation"][idx])
                 if r in HEAD_WORDS]
        first = idx[0]
        rows.append({
            "township": col["township"][first], "village": col["village"][first],
            "clerk": col["clerk"][first], "receipt": number, "household_id": "、".join(households),
            "head": heads[0] if heads else None,
            "paid_on": next((d for d in col["paid_on"][idx] if pd.notna(d)), None),
            "verdict": DISAGREES if disagrees else UNCHECKED if cannot or amount_from is None
            or found is None else AGREES,
            "problems": "; ".join(issues), "tier": "、".join(group_tiers),
            "members_stated": stated_m, "members_keyed": keyed, "persons": persons,
            "household_enrolled": keyed + len(before), "household_earlier": len(before),
            "amount_stated": stated_a, "amount_due": due,
            "amount_difference": round(stated_a - due, 2) if amount_differs else
            (0.0 if pd.notna(stated_a) and pd.notna(due) else np.nan),
            "amount_if_tier": fits, "headcount_differs": "是" if headcount else "",
            "amount_differs": "是" if amount_differs else "", "tier_differs":
            "是" if tier_differs else "", "rows": _spans(col["row"][idx]),
        })
    receipts = pd.DataFrame(rows, columns=RECEIPT_COLUMNS)
    receipts["members_stated"] = pd.to_numeric(receipts["members_stated"]).astype("Int64")
    order = receipts["verdict"].map({DISAGREES: 0, UNCHECKED: 1, AGREES: 2})
    receipts = receipts.assign(_o=order).sort_values(
        ["_o", "township", "village", "receipt"], kind="stable", na_position="last").drop(
        columns="_o").reset_index(drop=True)
    members = members[on].sort_values(["receipt", "row"], kind="stable")
    return receipts, members[MEMBER_COLUMNS].reset_index(drop=True), why


def _to_review(result: RunResult, batch: Batch) -> pd.DataFrame:
    review = result.review
    if review is None or review.empty:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    ids = set(batch.frame["record_id"].astype(str))
    mine = (((review["source_l"] == batch.source.name) & review["record_l"].astype(str).isin(ids))
            | ((review["source_r"] == batch.source.name)
               & review["record_r"].astype(str).isin(ids)))
    return review.loc[mine, REVIEW_COLUMNS].reset_index(drop=True)


def _summary(place, new, duplicates, entry, id_problem, date_problem, review, f, receipts,
             inputs) -> pd.DataFrame:
    """Per township, village (without the 组) and clerk, worst first."""
    keys = ["township", "village", "clerk"]
    base = place.assign(village=place["village"].str.replace(quality.GROUP_SUFFIX, "",
                                                             regex=True)).fillna("")
    rid = f["record_id"].astype(str).to_numpy()
    reviewed = set(review["record_l"].astype(str)) | set(review["record_r"].astype(str))
    dup_ids = set(duplicates["record_id"].astype(str))
    bad_rows = set(inputs["row"])
    frame = base.assign(
        records=1, new_persons=(new["person"] == "新 new").to_numpy().astype(int),
        known_persons=(new["person"] == "已知 known").to_numpy().astype(int),
        duplicates=isin(rid, list(dup_ids)).astype(int),
        entry_problems=(new["problems"] != "").to_numpy().astype(int),
        id_problems=id_problem.astype(int), date_problems=date_problem.astype(int),
        to_review=isin(rid, list(reviewed)).astype(int),
        input_problems=f["row"].isin(bad_rows).to_numpy().astype(int))
    out = frame.groupby(keys, sort=False).sum(numeric_only=True)
    if len(receipts):
        r = receipts.assign(village=receipts["village"].fillna("").str.replace(
            quality.GROUP_SUFFIX, "", regex=True)).fillna({"township": "", "clerk": ""})
        r[keys] = r[keys].fillna("")
        per = r.groupby(keys, sort=False).agg(
            receipts=("receipt", "size"),
            receipts_disagreeing=("verdict", lambda v: int((v == DISAGREES).sum())),
            receipts_unchecked=("verdict", lambda v: int((v == UNCHECKED).sum())),
            amount_difference=("amount_difference", lambda v: float(v.fillna(0).sum())))
        out = out.join(per, how="left")
    for column in ("receipts", "receipts_disagreeing", "receipts_unchecked"):
        out[column] = out.get(column, pd.Series(dtype=float)).reindex(out.index).fillna(
            0).astype(int)
    out["amount_difference"] = out.get("amount_difference", pd.Series(dtype=float)).reindex(
        out.index).fillna(0.0).round(2)
    out = out.reset_index()
    for column in keys:
        out[column] = out[column].mask(out[column] == "", None)
    out = out.sort_values(["receipts_disagreeing", "duplicates", "entry_problems", "village"],
                          ascending=[False, False, False, True], kind="stable")
    return out[SUMMARY_COLUMNS].reset_index(drop=True)


# ----------------------------------------------------------------------------- small helpers
def _text(values) -> np.ndarray:
    """Stripped text, None where blank or missing."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object))
    text = pd.Series(uniques, dtype=object).astype(str).str.strip()
    return np.append(text.where(text != "", None).to_numpy(dtype=object), None)[codes]


def _tier(values: np.ndarray) -> np.ndarray:
    tier = pd.Series(values, dtype=object)
    coded = tier.map(TIER_CODES)
    return coded.where(coded.notna(), tier).to_numpy(dtype=object)


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_WIDE = str.maketrans("０１２３４５６７８９．", "0123456789.")


def _numbers(values: np.ndarray, f: pd.DataFrame, batch: Batch, field_name: str,
             problems: list[dict], whole: bool = False) -> np.ndarray:
    """Numbers from text (full-width digits, 元 and thousands commas allowed); a cell that is
    not a number is an input problem naming its row and column, and stays unknown."""
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if value is None:
            continue
        clean = str(value).translate(_WIDE).replace(",", "").replace("，", "").strip()
        clean = clean.removesuffix("元").removesuffix("人").strip()
        if _NUMBER.match(clean) and (not whole or float(clean).is_integer()) \
                and float(clean) >= 0:
            out[i] = float(clean)
        else:
            wanted = "a whole number of persons" if whole else "an amount in yuan"
            problems.append(_problem(batch, f, i, field_name, value, f"不是数字 not {wanted}"))
    return out


def _problem(batch: Batch, f: pd.DataFrame, i: int, field_name: str, value, text: str) -> dict:
    return {"file": batch.file, "row": int(f["row"].iloc[i]),
            "column": batch.columns.get(field_name, field_name), "value": value,
            "problem": text}


def _one(values: np.ndarray, field_name: str, issues: list[str]) -> float:
    """The value a receipt's rows carry; rows that disagree are a problem (the commonest
    wins)."""
    known = values[~np.isnan(values)]
    if not len(known):
        return np.nan
    if (known == known[0]).all():
        return float(known[0])
    counts = pd.Series(known).value_counts()
    issues.append(f"{field_name} written differently on the receipt's rows: "
                  + "、".join(f"{v:g}" for v in counts.index))
    return float(counts.index[0])


def _spans(rows: np.ndarray) -> str:
    """'12-15, 19': the file rows, as runs."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    parts, start = [], None
    for k, r in enumerate(rows):
        if start is None:
            start = r
        if k + 1 == len(rows) or rows[k + 1] != r + 1:
            parts.append(str(start) if start == r else f"{start}-{r}")
            start = None
    return ", ".join(parts)


# ----------------------------------------------------------------------------- writing
def header(column: str) -> str:
    label = OWN_LABELS.get(column) or LABELS.get(column)
    return f"{label} {column}" if label else column


def write_day_check(check: DayCheck, folder: Path) -> dict[str, dict]:
    """enrolment_check.xlsx (one sheet per table), a CSV per table, enrolment_check.html and
    check.json into ``folder``; the files written, as {name: {"files": [...], "rows": n}}."""
    from linkage.outputs.report import environment

    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict] = {}
    sheets = []
    for name, frame in check.tables.items():
        sheets.append(Sheet(SHEETS[name], frame, [header(c) for c in frame.columns]))
        if name != "notes":
            write_csv(frame, folder / f"{name}.csv", float_format="%.2f")
            manifest[name] = {"files": [f"{name}.csv"], "rows": len(frame)}
    write_xlsx(folder / "enrolment_check.xlsx", sheets)
    html = environment().get_template("daily.html").render(
        check=check, counts=check.counts, notes=check.notes, sheets=SHEETS,
        headers={name: [header(c) for c in frame.columns] for name, frame in check.tables.items()},
        rows={name: _html_rows(frame) for name, frame in check.tables.items()})
    (folder / "enrolment_check.html").write_text(html, encoding="utf-8")
    (folder / "check.json").write_text(json.dumps(
        {"run_id": check.run_id, **check.counts, "notes": check.notes}, ensure_ascii=False,
        indent=2), encoding="utf-8")
    manifest["workbook"] = {"files": ["enrolment_check.xlsx"], "rows": None}
    manifest["page"] = {"files": ["enrolment_check.html"], "rows": None}
    return manifest


def _html_rows(frame: pd.DataFrame, limit: int = 500) -> list[list[str]]:
    """Up to ``limit`` rows as text for the page (the workbook holds them all)."""
    head = frame.head(limit)
    out = []
    for row in head.itertuples(index=False):
        out.append(["" if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
                    else f"{v:.2f}" if isinstance(v, float) else str(v) for v in row])
    return out
