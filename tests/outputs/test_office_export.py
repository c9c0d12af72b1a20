"""`linkage run` prints where the office files are; `linkage export` writes them again."""
import contextlib
import io
import json

import pandas as pd
import pytest

from linkage.cli import main

FILES = ["roster.csv", "roster.xlsx", "not_verified.csv", "not_verified.xlsx", "conflicts.csv",
         "conflicts.xlsx", "duplicate_enrolments.csv", "duplicate_enrolments.xlsx",
         "village_quality.csv", "clerk_quality.csv", "record_errors.csv", "report.html",
         "README_outputs.txt"]


@pytest.fixture(scope="module")
def cli_run(make_demo_job, tmp_path_factory, module_backend_url):
    """`linkage run` once over the small world (store on SQLite, then on PostgreSQL): its config
    and what it printed."""
    config = make_demo_job(tmp_path_factory.mktemp("cli"), module_backend_url)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["run", str(config), "--quiet"]) == 0
    return config, printed.getvalue()


def out_dir_of(config_path):
    from linkage.core.config import load_config

    return load_config(config_path).output


def test_run_writes_and_prints_every_office_file(cli_run):
    config, printed = cli_run
    out = out_dir_of(config)
    for name in FILES:
        assert (out / name).is_file(), name
        assert str(out / name) in printed, name
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["outputs"]["roster"]["files"] == ["roster.csv", "roster.xlsx"]
    assert summary["timings"]["outputs"] > 0
    readme = (out / "README_outputs.txt").read_text(encoding="utf-8-sig")
    assert "dtype=str" in readme and "roster.xlsx" in readme


def test_export_rewrites_the_same_files_from_the_store(cli_run, tmp_path, capsys):
    config, _ = cli_run
    out = out_dir_of(config)
    export_dir = tmp_path / "export"
    assert main(["export", str(config), "--out", str(export_dir)]) == 0
    printed = capsys.readouterr().out
    assert "exported run" in printed and str(export_dir / "roster.xlsx") in printed
    for name in FILES:
        assert (export_dir / name).is_file(), name
    for stem in ("roster", "not_verified", "conflicts", "duplicate_enrolments",
                 "village_quality", "clerk_quality", "record_errors"):
        ran = pd.read_csv(out / f"{stem}.csv", dtype=str, keep_default_na=False)
        exported = pd.read_csv(export_dir / f"{stem}.csv", dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(ran, exported, obj=stem)
    html = (export_dir / "report.html").read_text(encoding="utf-8")
    assert "only the pairs the store keeps" in html


def test_export_without_a_complete_run_says_so(make_demo_job, tmp_path, backend_url, capsys):
    assert main(["export", str(make_demo_job(tmp_path, backend_url))]) == 2
    assert "no complete run" in capsys.readouterr().err
