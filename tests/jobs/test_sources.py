"""The same job with the registry as XLSX, the urban roster in a SQL table, NCMS as GBK CSV."""
import pandas as pd
import sqlalchemy as sa
import yaml

from linkage.core.config import load_config
from linkage.jobs.run import run


def test_xlsx_sql_and_gbk_sources_link_like_csv(small_world, tmp_path):
    data = small_world / "data" / "demo"
    police = pd.read_csv(data / "police.csv", dtype=str, keep_default_na=False)
    police.to_excel(tmp_path / "police.xlsx", index=False)
    urban = pd.read_csv(data / "urban.csv", dtype=str, encoding="utf-8-sig", keep_default_na=False)
    url = f"sqlite:///{tmp_path / 'urban_src.sqlite'}"
    urban.to_sql("urban_roster", sa.create_engine(url), index=False)

    raw = yaml.safe_load((small_world / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    raw["sources"][0]["path"] = str(tmp_path / "police.xlsx")
    raw["sources"][1]["path"] = str(data / "ncms.csv")
    raw["sources"][2].pop("path")
    raw["sources"][2].update(url=url, table="urban_roster")
    raw["output"] = str(tmp_path / "out")
    raw["store"] = f"sqlite:///{tmp_path / 'store.sqlite'}"
    config_path = tmp_path / "job.yaml"
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    result = run(load_config(config_path), truth_path=data / "truth.csv")
    per_source = result.summary["records"]["per_source"]
    assert per_source["police"]["encoding"] == "xlsx"
    assert per_source["urban"]["encoding"] == "sql"
    assert per_source["ncms"]["encoding"] == "gb18030"
    assert per_source["police"]["linked"] == len(police)
    assert result.summary["accuracy"]["pairwise"]["f1"] > 0.97
