"""The village and clerk quality reports agree with the golden records."""
import numpy as np
import pandas as pd

from linkage.outputs.quality import ERROR_KINDS, record_errors
from linkage.outputs.view import RunView


def read(out_dir, stem) -> pd.DataFrame:
    return pd.read_csv(out_dir / f"{stem}.csv", dtype=str, keep_default_na=False)


def errors_with_golden(result) -> pd.DataFrame:
    """Each insurance record's flags beside its record and golden row (joined independently)."""
    errors = record_errors(RunView.from_result(result))
    records = result.records.assign(entity_id=result.clusters["entity_id"].to_numpy())
    joined = errors.merge(records, on=["source", "record_id"], suffixes=("", "_rec"))
    joined = joined.merge(result.golden.add_prefix("g_"), left_on="entity_id",
                          right_on="g_entity_id")
    assert len(joined) == len(errors)
    return joined


def test_every_insurance_record_is_counted_once_per_village(office_run):
    villages = read(office_run.out_dir, "village_quality")
    roles = {s.name: s.role for s in office_run.config.sources}
    insurance = office_run.records["source"].map(roles).eq("insurance")
    assert villages["records"].astype(int).sum() == insurance.sum()
    per_source = villages.groupby("source")["records"].apply(lambda s: s.astype(int).sum())
    counts = office_run.records.loc[insurance, "source"].value_counts()
    assert per_source.to_dict() == counts.to_dict()
    errors = record_errors(RunView.from_result(office_run))
    for kind in ERROR_KINDS:
        assert villages[kind].astype(int).sum() == errors[kind].sum(), kind
    rates = villages["error_rate"].astype(float).to_numpy()
    assert (np.diff(rates) <= 0).all()  # worst first
    with_error = villages["records_with_error"].astype(int)
    assert np.allclose(rates, (with_error / villages["records"].astype(int)).round(4))


def test_id_repaired_agrees_with_the_golden_flag(office_run):
    joined = errors_with_golden(office_run)
    per_entity = joined.groupby("entity_id")["id_repaired"].any()
    golden = office_run.golden.set_index("entity_id")["id_repaired"]
    insured = golden[golden.index.isin(per_entity.index)]
    assert (per_entity.reindex(insured.index) == insured).all()
    assert per_entity.sum() > 0


def test_differences_are_differences_from_the_golden_record(office_run):
    joined = errors_with_golden(office_run)
    registry = ~joined["not_in_registry"]
    name_differs = registry & (joined["name_norm"] != joined["g_name"])
    assert (joined["name_differs"] == name_differs).all()
    golden_birth = joined["g_birth_date"].fillna("").str.replace("-", "").str.ljust(8, "0")
    golden_birth = pd.to_numeric(golden_birth.replace("00000000", "0"))
    birth_differs = registry & (golden_birth > 0) & (joined["birth_date"] != golden_birth)
    assert (joined["birth_differs"] == birth_differs).all()
    assert joined["name_differs"].sum() > 0 and joined["birth_differs"].sum() > 0
    missing = joined["id_status"].eq("missing")
    assert (joined["id_missing"] == missing).all()
    invalid = ~missing & ~joined["id_status"].isin(["valid", "upgraded"])
    assert (joined["id_invalid"] == invalid).all()


def test_records_not_in_the_registry_are_those_of_entities_without_one(office_run):
    joined = errors_with_golden(office_run)
    clusters = office_run.clusters
    with_police = set(clusters.loc[clusters["source"] == "police", "entity_id"])
    assert (joined["not_in_registry"] == ~joined["entity_id"].isin(with_police)).all()
    unverified = joined["g_status"] == "UNVERIFIED"
    assert joined.loc[unverified, "not_in_registry"].all()
    not_verified = read(office_run.out_dir, "not_verified")
    assert joined["not_in_registry"].sum() >= len(not_verified) > 0


def test_record_errors_lists_each_record_with_an_error(office_run):
    joined = errors_with_golden(office_run)
    listed = read(office_run.out_dir, "record_errors")
    assert len(listed) == joined[ERROR_KINDS].any(axis=1).sum()
    row = listed[listed["errors"].str.contains("name_differs")].iloc[0]
    assert row["name_entered"] != row["name_registry"]
    kinds = set(listed["errors"].str.split(";").explode())
    assert kinds <= set(ERROR_KINDS)


def test_clerks_are_accountable_for_their_entries(office_run):
    clerks = read(office_run.out_dir, "clerk_quality")
    ncms = office_run.records["source"].eq("ncms")
    assert clerks["records"].astype(int).sum() == ncms.sum()
    assert clerks["clerk"].str.fullmatch(r"[A-Z]{2}\d{3}").all()
    assert clerks["villages"].ne("").all()
    assert not (office_run.out_dir / "receipt_book_quality.csv").exists()  # no source maps one
