"""The card roster: one row per person a card can be issued to, IDs that survive Excel and
pandas (the deferred sheet and the registry's double registrations: test_roster_sheets.py)."""
import pandas as pd
import pytest
from openpyxl import load_workbook

from linkage.outputs.roster import ROSTER_COLUMNS

ID_COLUMNS = {
    "roster": ["entity_id", "resident_id", "household_id", "insurance_household_ids", "record_ids"],
    "not_verified": ["entity_id", "record_id", "id_entered", "household_id", "receipt"],
    "duplicate_enrolments": ["entity_id", "resident_id", "record_id", "id_entered",
                             "household_id", "receipt"],
    "conflicts": ["entity_id", "record_id", "id_entered", "household_id"],
    "registry_duplicates": ["entity_id_1", "record_1", "resident_id_1", "household_id_1",
                            "entity_id_2", "record_2", "resident_id_2", "household_id_2"],
}


def sheet_columns(path) -> tuple[list[str], list[tuple]]:
    """CSV column names (the part of each XLSX header after the Chinese label) and the cells."""
    ws = load_workbook(path).worksheets[0]
    rows = list(ws.iter_rows())
    names = [str(c.value).rsplit(" ", 1)[-1] for c in rows[0]]
    return names, rows[1:]


@pytest.mark.parametrize("stem", sorted(ID_COLUMNS))
def test_xlsx_id_cells_are_text(office_run, stem):
    names, rows = sheet_columns(office_run.out_dir / f"{stem}.xlsx")
    csv = pd.read_csv(office_run.out_dir / f"{stem}.csv", dtype=str, keep_default_na=False)
    assert names == list(csv.columns)
    assert len(rows) == len(csv)
    checked = 0
    for column in ID_COLUMNS[stem]:
        j = names.index(column)
        for row in rows:
            cell = row[j]
            if cell.value is None:
                continue
            assert cell.data_type == "s", (stem, column, cell.value)
            assert cell.number_format == "@", (stem, column, cell.value)
            checked += 1
    if len(csv):
        assert checked > 0


def test_each_registry_person_appears_exactly_once_on_one_of_the_two_sheets(office_run):
    golden = office_run.golden
    verified = set(golden.loc[golden["status"] == "VERIFIED", "entity_id"])
    listed = set(golden.loc[golden["status"].isin(["VERIFIED", "CONFLICT"]), "entity_id"])
    names, rows = sheet_columns(office_run.out_dir / "roster.xlsx")
    assert names == ROSTER_COLUMNS
    issuable = [row[names.index("entity_id")].value for row in rows]
    deferred = pd.read_csv(office_run.out_dir / "roster_deferred.csv", dtype=str)["entity_id"]
    assert len(issuable) == len(set(issuable)) and set(issuable) <= verified
    assert deferred.is_unique and not set(deferred) & set(issuable)
    assert set(issuable) | set(deferred) == listed
    assert 0 < len(deferred) < len(issuable)


def test_roster_xlsx_resident_ids_equal_the_golden_ones(office_run):
    names, rows = sheet_columns(office_run.out_dir / "roster.xlsx")
    got = {row[0].value: row[names.index("resident_id")].value for row in rows}
    golden = office_run.golden.set_index("entity_id")["id_number"]
    for entity, resident_id in got.items():
        expected = golden[entity]
        assert resident_id == (expected if isinstance(expected, str) else None)


def test_roster_csv_round_trips_through_pandas_with_ids_intact(office_run):
    path = office_run.out_dir / "roster.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    roster = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    golden = office_run.golden.set_index("entity_id")
    expected = golden.loc[roster["entity_id"], "id_number"].fillna("").to_numpy()
    assert (roster["resident_id"].to_numpy() == expected).all()
    ids = roster.loc[roster["resident_id"] != "", "resident_id"]
    assert (ids.str.len() == 18).all()
    assert ids.str.fullmatch(r"\d{17}[\dX]").all()
    assert ids.str.endswith("X").sum() > 0  # the check character X survives
    assert ids.str.startswith("15").mean() > 0.9  # leading digits kept, no float rounding
    households = roster.loc[roster["household_id"] != "", "household_id"]
    assert households.isin(golden["household_id"].dropna()).all()
    lineage = golden.loc[roster["entity_id"], "lineage"].to_numpy()
    assert (roster["record_ids"].to_numpy() == lineage).all()


def test_roster_carries_the_card_fields(office_run):
    roster = pd.read_csv(office_run.out_dir / "roster.csv", dtype=str, keep_default_na=False)
    assert set(roster["gender"]) <= {"男", "女", ""}
    assert roster["name"].ne("").all()
    assert roster["birth_date"].str.fullmatch(r"\d{4}(-\d{2}){0,2}").mean() > 0.99
    assert roster["ethnicity"].ne("").mean() > 0.95
    assert roster["address"].str.contains("通辽市").mean() > 0.95
    insured = roster[roster["n_enrolments"].astype(int) > 0]
    assert insured["schemes"].ne("").all()
    assert insured["tier"].str.contains("档").mean() > 0.95
    subsidies = set(roster["subsidy"].str.split("+").explode()) - {""}
    assert subsidies <= {"低保", "五保", "优抚", "重度残疾", "三无"}
    not_insured = roster[roster["n_enrolments"] == "0"]
    assert len(not_insured) and not_insured["remarks"].str.contains("未参加任何险种").all()
    assert not roster.loc[roster["n_enrolments"] != "0", "remarks"].str.contains("未参加").any()


def test_no_deceased_person_is_on_the_card_roster_and_duplicates_are_remarked(office_run):
    roster = pd.read_csv(office_run.out_dir / "roster.csv", dtype=str, keep_default_na=False)
    golden = office_run.golden.set_index("entity_id")
    assert not golden.loc[roster["entity_id"], "deceased"].any()
    assert golden["deceased"].sum() > 0  # the small world has deceased persons to keep off
    dup = golden.loc[roster["entity_id"], "duplicate_enrolment"].to_numpy()
    assert dup.any() and roster.loc[dup, "remarks"].str.contains("重复参保，见重复参保名单").all()
    assert not roster.loc[~dup, "remarks"].str.contains("重复参保").any()
    assert not roster["remarks"].str.contains("[A-Za-z]").any()  # remarks in Chinese
