"""What every output file holds, column by column: the outputs reference.

Kept beside the writers so a new column is documented where it is made; `python -m linkage.docs`
prints this table into the README, and tests/test_docs.py runs the demo job and fails on any
column (or summary/model key) a writer produces that is not described here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from linkage.outputs.households import COLUMN_DOCS as HOUSEHOLD_DOCS
from linkage.outputs.households import COLUMNS as HOUSEHOLD_COLUMNS


@dataclass(frozen=True)
class OutputDoc:
    """One output: its files, what it is for, and a description per column (or JSON key)."""

    files: tuple[str, ...]
    what: str
    columns: dict[str, str] = field(default_factory=dict)


# Descriptions shared by several files; a file's own entry overrides them.
_COMMON = {
    "entity_id": "The person (entity) the row belongs to; stable across re-runs where the "
                 "people are the same.",
    "source": "Source name from the job config (e.g. police, ncms, urban).",
    "record_id": "The record's id in its source (the column `sources[].record_id` names).",
    "status": "VERIFIED (a police registry record confirms the person), UNVERIFIED (no "
              "registry record) or CONFLICT (the linkage could not settle it).",
    "resident_id": "The registry's 18-character resident ID (= social-security number), as text.",
    "name": "Name from the best source (registry first), spaces and dot variants normalised.",
    "gender": "男 / 女.",
    "birth_date": "1965-03-12, or 1965-03 / 1965 where only that much is known.",
    "township": "Township (苏木/乡/镇) as entered.",
    "village": "Village (嘎查/村, with 组 where entered) as entered.",
    "household_id": "Registry household number (户号), else the roster's family code (家庭编号).",
    "scheme": "Insurance scheme of the record (`sources[].scheme`, else the source name).",
    "reason": "Why the row is on this list, in words.",
    "name_entered": "Name exactly as the clerk entered it.",
    "id_entered": "ID number exactly as entered (blank, 15-digit, damaged ... as it came).",
    "id_status": "valid, upgraded (15 to 18 digits), bad_check, bad_date, bad_region, "
                 "excel_damaged, malformed or missing.",
    "birth_date_entered": "The record's birthdate as parsed (1965-03-12 / 1965-03 / 1965).",
    "gender_entered": "The record's gender as parsed (男 / 女).",
    "clerk": "Clerk (录入员) who keyed the record, where the roster names one.",
    "receipt": "Receipt number (收据号) of the contribution.",
    "tier": "Contribution tier (一档 / 二档); 'NCMS:一档;URBAN:二档' when enrolments disagree.",
    "subsidy": "Subsidy category (低保, 五保, 优抚 ...), '+'-joined when several.",
    "amount": "Amount paid (yuan).",
    "enrolled_on": "Enrolment date, where the roster has one.",
    "n_enrolments": "Insurance records (enrolments) of the person.",
}

_ROSTER = {
    "ethnicity": "Ethnicity (民族).",
    "address": "Registered address (户籍地址) from the registry.",
    "household_id": "Registry household number (户号).",
    "schemes": "Schemes the person is enrolled in by the names the office reads "
               "(`sources[].scheme_name`: 新农合, 城镇居民), '+'-joined (blank: not insured).",
    "n_enrolments": "Insurance records (enrolments) of the person; a whole number in the XLSX.",
    "tier": "Contribution tier (一档 / 二档); '新农合:一档;城镇居民:二档' when enrolments "
            "disagree.",
    "insurance_household_ids": "Family codes (家庭编号) of the insurance rosters, ';'-joined.",
    "record_ids": "Every source record behind the person, source:record_id joined by ';'.",
    "remarks": "What the office should know before printing a card, in Chinese, '；'-joined: "
               "未参加任何险种, 重复参保, 参保记录的身份证号与户籍不符, 有一对记录待复核.",
}

_QUALITY = {
    "records": "Insurance records entered there.",
    "records_with_error": "Records with at least one kind of error.",
    "error_rate": "records_with_error / records; rows are worst first.",
    "id_missing": "Records with no ID number.",
    "id_invalid": "Records whose ID number cannot be right (check digit, date, region, Excel "
                  "damage, shape).",
    "id_repaired": "Records whose valid ID differs from the registry person's, or that had none.",
    "name_differs": "Records whose name differs from the registry's (spaces and dots aside).",
    "birth_differs": "Records whose birthdate differs from the registry's.",
    "gender_differs": "Records whose gender differs from the registry's.",
    "not_in_registry": "Records whose person has no registry record.",
}


def _doc(files: tuple[str, ...], what: str, columns: list[str], own: dict[str, str] | None = None,
         ) -> OutputDoc:
    own = own or {}
    table = {**_COMMON, **_QUALITY, **own}
    return OutputDoc(files, what, {c: table[c] for c in columns})


OUTPUTS: dict[str, OutputDoc] = {
    "clusters": _doc(
        ("clusters.csv",), "One row per linked input record: which person it belongs to.",
        ["source", "record_id", "entity_id"]),
    "entity_changes": _doc(
        ("entity_changes.csv", "entity_changes.xlsx"), "实体变更: every entity id of the "
        "previous complete run whose records no longer all sit under it, and where they "
        "went, so a card issued to an id "
        "that was merged away or split is traced to the person's id now (ids never change "
        "meaning: a merged-away id points to its successor). Written by `linkage run`, "
        "`linkage add` and `export`; empty on a job's first run; "
        "`linkage history ENTITY_ID` tells an id's whole life.",
        ["entity_id", "change", "successor_ids", "records", "records_moved", "previous_run",
         "remarks"],
        {"entity_id": "The id as the previous run had it (as on a card issued then).",
         "change": "merged_into (gone: its records sit under one other id), split_into (gone: "
                   "under two or more ids), split_off (kept: some of its records moved to "
                   "other ids), withdrawn (gone with its records).",
         "successor_ids": "Where its records are now, ';'-joined (for split_off the other ids "
                          "only).",
         "records": "Its records in the previous run.",
         "records_moved": "Of those, how many now sit under another id or are gone.",
         "previous_run": "The run compared against.",
         "remarks": "What it means for the card office, in Chinese (此编号已并入 …)."}),
    "golden": _doc(
        ("golden.csv",), "One row per entity: the golden record, by source precedence and "
        "validity.",
        ["entity_id", "status", "status_reason", "name", "id_number", "gender", "birth_date",
         "ethnicity", "township", "village", "household_id", "n_records", "n_enrolments",
         "schemes", "duplicate_enrolment", "id_repaired", "deceased", "needs_review", "lineage"],
        {"status_reason": "Why UNVERIFIED or CONFLICT (blank when VERIFIED).",
         "id_number": "Best valid resident ID (18 characters; blank when no source has one).",
         "gender": "M / F.",
         "ethnicity": "Ethnicity (民族) from the best source.",
         "n_records": "Source records in the entity.",
         "schemes": "Insurance schemes the person is enrolled in, '+'-joined.",
         "duplicate_enrolment": "True when insured two or more times (重复参保).",
         "id_repaired": "True when an insurance record carried another or no ID number and the "
                        "registry's is used.",
         "deceased": "True when the registry marks the person deceased.",
         "needs_review": "True when a merge involving the person was refused and awaits a "
                         "reviewer.",
         "lineage": "Every source record behind the entity, source:record_id joined by ';'."}),
    "review_pairs": _doc(
        ("review_pairs.csv",), "Pairs a reviewer should decide, closest to the threshold first.",
        ["source_l", "record_l", "source_r", "record_r", "weight", "probability", "band",
         "reason", "explanation", "w_<comparison>"],
        {"source_l": "Source of the left record.", "record_l": "Record id of the left record.",
         "source_r": "Source of the right record.", "record_r": "Record id of the right record.",
         "weight": "Match weight in bits (prior + fields + term frequency + household).",
         "probability": "Match probability from the weight.",
         "band": "match, review or non_match by the thresholds.",
         "reason": "Why it needs a reviewer: in the review band, or a merge clustering refused.",
         "explanation": "JSON: level and weight of every comparison, household and prior.",
         "w_<comparison>": "Weight in bits of one comparison (w_name, w_id_number ...), one "
                           "column per configured comparison."}),
    "rejects": _doc(
        ("rejects.csv",), "Input rows that could not be used, each with the reason. Besides "
        "rows that cannot be read (encoding, a ragged row, an unclosed quote, an over-long "
        "cell, a blank or repeated record id), a row with nothing to link on is rejected: "
        "neither a name (a name with a letter in it, not a placeholder such as 不详) nor an "
        "ID number the comparisons can use (18 characters, or 15 digits, even with a wrong "
        "check character; or what Excel left of one, 6 digits at least). A birthdate alone "
        "is not enough: a pair that agrees only on birthdate, gender and place never comes "
        "near the review threshold, so such a row could only become an empty entity. Every "
        "rejected row is counted (records read = linked + rejected) in every run that reads "
        "it, `linkage add` included.",
        ["source", "record_id", "file", "row", "column", "reason", "first_rejected_run"],
        {"record_id": "The row's record id, if it had one.", "file": "File (or database "
         "table) read.", "row": "Row number in the file (the header is row 1).",
         "column": "Column(s) at fault, ', '-joined.",
         "reason": "What is wrong with the row; for a row with nothing to link on, each of "
                   "its name, ID and birthdate cells and what is wrong with it.",
         "first_rejected_run": "The run that first rejected this row (the same source, "
                               "record id and cells, wherever the row stands in the file): "
                               "this run's id for a row the office has not been told about, "
                               "an earlier run's id for one reported before."}),
    "roster": _doc(
        ("roster.csv", "roster.xlsx"), "Card-issuance roster (制卡名册): one row per person a "
        "card can be issued to: VERIFIED, not deceased, a valid ID number no other listed "
        "person carries, no registry double registration waiting. roster.xlsx holds it as its "
        "first sheet and 暂缓制卡 (roster_deferred) as its second; each sheet's page header "
        "and the workbook's File > Info name the run and its date.",
        ["entity_id", "resident_id", "name", "gender", "ethnicity", "birth_date", "township",
         "village", "address", "household_id", "schemes", "n_enrolments", "tier", "subsidy",
         "insurance_household_ids", "record_ids", "remarks"], _ROSTER),
    "roster_deferred": _doc(
        ("roster_deferred.csv",), "暂缓制卡 (the second sheet of roster.xlsx): every other "
        "person the registry knows (VERIFIED or CONFLICT) whose card must wait, with the "
        "reason in Chinese.",
        ["entity_id", "reason", "status", "resident_id", "name", "gender", "ethnicity",
         "birth_date", "township", "village", "address", "household_id", "schemes",
         "n_enrolments", "tier", "subsidy", "insurance_household_ids", "record_ids", "remarks",
         "reason_codes"],
        {**_ROSTER,
         "reason": "Why the card waits, in Chinese, '；'-joined: 户籍登记为死亡; 无有效身份证号; "
                   "身份证号与他人相同; 疑似重复户籍 (naming the other registry record); "
                   "冲突未解决 (and why).",
         "status": "VERIFIED or CONFLICT.",
         "reason_codes": "The same as codes, ';'-joined: deceased, no_valid_id, shared_id, "
                         "registry_duplicate, conflict."}),
    "registry_duplicates": _doc(
        ("registry_duplicates.csv", "registry_duplicates.xlsx"), "疑似重复户籍: pairs of "
        "registry records that look like one person registered twice, waiting in review, for "
        "the registry office; neither gets a card until it is resolved (both are on 暂缓制卡).",
        ["evidence", "probability", "waiting_for", *[
            f"{c}_{side}" for side in (1, 2) for c in (
                "entity_id", "record", "name", "resident_id", "birth_date", "gender",
                "household_id", "relation", "township", "village", "address",
                "registry_status")]],
        {"evidence": "What the two records share and where they differ, in Chinese: 姓名, "
                     "身份证号 (相同 / 仅校验位不同 / 仅一位不同 / 不同), 出生日期, 性别, 户, 村, "
                     "一条登记为死亡.",
         "probability": "Match probability of the pair.",
         "waiting_for": "Why it waits: in the review band, or a merge the clustering refused "
                        "(it never merges two registry records on its own).",
         **{f"{c}_{side}": f"{what} of the {'first' if side == 1 else 'second'} record."
            for side in (1, 2) for c, what in (
                ("entity_id", "The person (entity) id"), ("record", "source:record_id"),
                ("name", "Name as the registry holds it"),
                ("resident_id", "ID number as the registry holds it (full: the registry office "
                                "resolves by it)"),
                ("birth_date", "Birthdate"), ("gender", "Gender (男 / 女)"),
                ("household_id", "Household number (户号)"),
                ("relation", "Relation to the household head (与户主关系)"),
                ("township", "Township"), ("village", "Village"),
                ("address", "Registered address (户籍地址)"),
                ("registry_status", "Registry status (人员状态: 正常, 死亡 ...)"))}}),
    "not_verified": _doc(
        ("not_verified.csv", "not_verified.xlsx"), "Insurance records of people the registry "
        "does not confirm (未核实), with the reason.",
        ["entity_id", "reason", "scheme", "source", "record_id", "name_entered", "id_entered",
         "id_status", "birth_date_entered", "gender_entered", "household_id", "township",
         "village", "clerk", "receipt", "records_in_entity"],
        {"household_id": "Family code (家庭编号) of the roster.",
         "records_in_entity": "Records linked to the same person."}),
    "conflicts": _doc(
        ("conflicts.csv", "conflicts.xlsx"), "Every record of a CONFLICT entity (冲突), registry "
        "records included, with the reason.",
        ["entity_id", "reason", "source", "record_id", "name_entered", "id_entered", "id_status",
         "birth_date_entered", "gender_entered", "household_id", "township", "village"],
        {"household_id": "Household number or family code of the record."}),
    "duplicate_enrolments": _doc(
        ("duplicate_enrolments.csv", "duplicate_enrolments.xlsx"), "重复参保名单: every "
        "enrolment of each person insured more than once.",
        ["entity_id", "resident_id", "name", "birth_date", "status", "n_enrolments",
         "enrolment_no", "scheme", "source", "record_id", "name_entered", "id_entered",
         "household_id", "township", "village", "tier", "subsidy", "amount", "receipt", "clerk",
         "enrolled_on"],
        {"enrolment_no": "1, 2, ... for the person's enrolments.",
         "household_id": "Family code (家庭编号) of the enrolment.",
         "tier": "Contribution tier of the enrolment (一档 / 二档).",
         "subsidy": "Subsidy category of the enrolment."}),
    "household_links": _doc(
        ("household_links.csv", "household_links.xlsx"), "The re-collection worklist: each NCMS "
        "household, its registry household(s), members matched, only in NCMS, only in the "
        "registry, moved to another household.", HOUSEHOLD_COLUMNS, HOUSEHOLD_DOCS),
    "household_correspondences": _doc(
        ("household_correspondences.csv",), "The household step's correspondences: each NCMS "
        "household with a registry household it shares a sure member with.",
        ["insurance_household", "registry_household", "anchors", "members_insurance",
         "members_registry", "members_agreeing", "kind"],
        {"insurance_household": "source:household id of the roster's household.",
         "registry_household": "source:户号 of the registry's household.",
         "anchors": "Members linked on their own evidence (one to one).",
         "members_insurance": "Members of the roster's household.",
         "members_registry": "Members of the registry's household.",
         "members_agreeing": "Members assigned to each other at the match threshold or above.",
         "kind": "1:1, split (one roster household in several registry households), merged "
                 "(several, two or more members each, in one), split+merged, dropped (one "
                 "anchor, whose record belongs to another household: a namesake), or "
                 "rejected (a reviewer said 不是同一户 in the review app)."}),
    "village_quality": _doc(
        ("village_quality.csv",), "Data-entry errors per source, township and village, worst "
        "first.",
        ["source", "township", "village", "township_key", "village_key", "records",
         "records_with_error", "error_rate", "id_missing", "id_invalid", "id_repaired",
         "name_differs", "birth_differs", "gender_differs", "not_in_registry"],
        {"township": "The township's most frequent spelling.",
         "village": "The village's most frequent spelling, without the 组.",
         "township_key": "Standardised township (大林镇 and 大林 are one).",
         "village_key": "Standardised village."}),
    "clerk_quality": _doc(
        ("clerk_quality.csv",), "Data-entry errors per source and clerk, worst first (only "
        "when a source maps `clerk`).",
        ["source", "clerk", "villages", "records", "records_with_error", "error_rate",
         "id_missing", "id_invalid", "id_repaired", "name_differs", "birth_differs",
         "gender_differs", "not_in_registry"],
        {"villages": "Villages the clerk keyed, 、-joined."}),
    "receipt_book_quality": _doc(
        ("receipt_book_quality.csv",), "Data-entry errors per receipt book, worst first (only "
        "when a source maps `receipt_book`).",
        ["source", "receipt_book", "villages", "records", "records_with_error", "error_rate",
         "id_missing", "id_invalid", "id_repaired", "name_differs", "birth_differs",
         "gender_differs", "not_in_registry"],
        {"receipt_book": "Receipt book the records' receipts came from.",
         "villages": "Villages the book served, 、-joined."}),
    "record_errors": _doc(
        ("record_errors.csv",), "Each insurance record with an entry error, what was entered "
        "beside what the registry holds.",
        ["source", "record_id", "entity_id", "township", "village", "clerk", "receipt", "errors",
         "name_entered", "name_registry", "id_entered", "id_registry", "birth_entered",
         "birth_registry"],
        {"errors": "Kinds of error, ';'-joined: id_missing, id_invalid, id_repaired, "
                   "name_differs, birth_differs, gender_differs, not_in_registry.",
         "name_registry": "The registry's name for the person.",
         "id_registry": "The registry's ID number for the person.",
         "birth_entered": "Birthdate as entered (parsed).",
         "birth_registry": "The registry's birthdate."}),
    "summary": _doc(
        ("summary.json",), "The run in numbers (JSON; top-level keys below).",
        ["run_id", "job", "records", "engine", "blocking", "comparison_levels", "model", "bands",
         "entities", "review_pairs", "households", "thresholds", "timings", "memory",
         "store_rows", "kept_state", "blocking_recall",
         "accuracy", "outputs"],
        {"run_id": "Run id, as in the store.", "job": "Job name.",
         "records": "read = linked + rejected, also per source with the detected encoding; "
                    "rejected_earlier: rejects an earlier run reported already.",
         "engine": "local or spark.",
         "blocking": "candidate_pairs, and per rule: pairs, new_pairs, blocks, skipped blocks "
                     "and pairs.",
         "comparison_levels": "Pairs per level of each comparison.",
         "model": "prior, em_iterations, m_source.",
         "bands": "Pairs per band (match, review, non_match).",
         "households": "Household step: correspondences by kind (1:1, split, merged, dropped), "
                       "the learned household prior, hard negatives kept apart, milk names.",
         "entities": "total, by_status, duplicate_enrolment, id_repaired, deceased, "
                     "refused_merges.",
         "review_pairs": "Pairs written to review_pairs.csv.",
         "thresholds": "match and review thresholds used.",
         "timings": "Seconds per stage.",
         "memory": "stage_peak_mb: the largest resident memory (MB) seen during each stage.",
         "store_rows": "What the run wrote to the store's versioned tables (entity_members, "
                       "golden): rows written and earlier rows closed (only what changed "
                       "since the previous run), and whether the state was written whole.",
         "kept_state": "The kept standardised state (state_dir): its folder, per input file "
                       "whether it came from the state (kept) or was read and standardised "
                       "(standardised; a database source without change_column: every run) "
                       "and its records, with a warning where a state file was damaged and "
                       "rebuilt; records_from_state, files_kept, files_standardised.",
         "blocking_recall": "With --truth, local engine: true pairs, pairs kept, recall.",
         "accuracy": "With --truth: pairwise, B-cubed, duplicate-enrolment (and strict) "
                     "precision, recall, F1; wrong-person links; registry recall; hard "
                     "negatives merged; review load per 1,000 persons.",
         "outputs": "The office files written: files and rows per list."}),
    "model": _doc(
        ("model.json",), "The trained Fellegi-Sunter model (JSON; reuse with `run --model`).",
        ["schema_version", "prior", "em_iterations", "trained_on_pairs", "m_source",
         "household_prior", "comparisons"],
        {"schema_version": "Model format version; a mismatch asks to retrain.",
         "prior": "Share of candidate pairs that are matches.",
         "em_iterations": "EM iterations run.",
         "trained_on_pairs": "Candidate pairs trained on.",
         "m_source": "em, or em+labels when reviewers' decisions sharpened m.",
         "household_prior": "Share of the pairs assigned inside corresponding households that "
                            "are one person: their prior in place of the random-pair prior.",
         "comparisons": "Per comparison: name, tf_column, tf_levels, and levels with label, m, "
                        "u and weight (log2 m/u)."}),
}

# Files with no columns to describe.
OTHER_FILES = {
    "report.html": "Self-contained run report (opens offline): funnel, blocking, m/u and "
                   "weights, weight histogram, accuracy, village error rates, timings.",
    "README_outputs.txt": "What each office file holds and how to open it in Excel without "
                          "losing IDs (Chinese and English).",
    "linkage.sqlite": "The store when `store` is the default SQLite file: runs, scored pairs, "
                      "decisions, entities, golden records, accounts, audit trail.",
    "state": "Folder of the kept standardised state when `state_dir` is not set: per job "
             "(state/<job>/), each input file's standardised records as Parquet with the "
             "SHA-256 of its bytes beside it, and in runs/ the last runs' membership and "
             "golden records; safe to delete (the next run rebuilds it).",
}


def undocumented(stem: str, columns: list[str]) -> list[str]:
    """Columns of an output ``stem`` the table does not describe (w_<name> matches the pattern)."""
    doc = OUTPUTS[stem].columns
    return [c for c in columns
            if c not in doc and not (c.startswith("w_") and "w_<comparison>" in doc)]
