"""The kept standardised state (linkage.jobs.state): a file read and standardised once gives
the same records, rejects and counts as reading it again, and any change that could alter them
(the file, how its source is read, the fields, the code) reads it again.

The equality that matters is the strict one: the frames the state gives equal what
standardising every record at once gives, column order, dtypes and None cells included,
because the outputs are pinned byte for byte (tests/jobs/test_outputs_pinned.py).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from demo_config import write_demo_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.cli import main
from linkage.core import standardise
from linkage.core.config import ConfigError, load_config
from linkage.jobs import state as kept
from linkage.jobs.bookkeeping import check_accounting
from linkage.jobs.inputs import ingest_job
from linkage.jobs.run import run
from linkage.outputs.fingerprint import fingerprint

POLICE = [
    ["人员编号", "姓名", "公民身份号码", "出生日期", "性别", "户号", "嘎查村"],
    ["GA001", "包·巴特尔", "150521196503120016", "1965-03-12", "男", "H001", "呼和嘎查"],
    ["GA002", "其木格", "150521196808150027", "19680815", "女", "H001", "呼和嘎查"],
    ["GA003", "張偉", "15052119900101003X", "1990/1/1", "", "H002", "新艾里嘎查"],
]
NCMS = [
    ["参合编号", "家庭编号", "成员姓名", "身份证号", "出生日期", "村", "参合档次"],
    ["NH001", "J01", "包巴特尔", "150521196503120016", "1965.3.12", "呼和嘎查", "一档"],
    ["NH002", "J01", "其米格", "", "1968年8月15日", "呼和嘎查", "二档"],
    ["NH003", "J02", "", "abc", "19990230", "", "一档"],  # nothing to link on: rejected
    ["NH004", "J02", "张伟", "1.50521E+17", "", "新艾里嘎查", ""],
]
JOB = {
    "job": "kept",
    "sources": [
        {"name": "police", "role": "authority", "path": "police.csv", "record_id": "人员编号",
         "fields": {"name": "姓名", "id_number": "公民身份号码", "birth_date": "出生日期",
                    "gender": "性别", "household_id": "户号", "village": "嘎查村"}},
        {"name": "ncms", "path": "ncms.csv", "record_id": "参合编号", "encoding": "gbk",
         "fields": {"household_id": "家庭编号", "name": "成员姓名", "id_number": "身份证号",
                    "birth_date": "出生日期", "village": "村", "tier": "参合档次"}},
    ],
    "blocking": [{"keys": ["id_prefix17"]}],
    "comparisons": [{"matcher": "chinese_name"}],
    "output": "out",
}


class _NoStore:
    """A store with no runs: no kept `add` batches to read."""

    def complete_run_summaries(self, job):
        return []


def _write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows[1:], columns=rows[0]).to_csv(path, index=False, encoding=encoding)
    return path


def _job(folder: Path, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "police.csv").exists():
        _write_csv(folder / "police.csv", POLICE)
        _write_csv(folder / "ncms.csv", NCMS, encoding="gbk")
    spec = yaml.safe_load(yaml.safe_dump(JOB, allow_unicode=True))
    for name, values in changes.items():
        spec["sources"][[s["name"] for s in spec["sources"]].index(name)].update(values)
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


def _read(config_path: Path):
    config = load_config(config_path)
    return kept.standardised_job(config, _NoStore())


def _whole(config_path: Path):
    """What a run standardised before there was a state: every record at once."""
    config = load_config(config_path)
    data = ingest_job(config, _NoStore())
    fields = {f for s in config.sources for f in s.fields}
    data.records = standardise.standardise_records(data.records, fields).reset_index(drop=True)
    return data


def _kinds(frame: pd.DataFrame) -> dict:
    """Per object column, the Python types of its cells: None must stay None, never NaN."""
    return {c: frame[c].map(lambda v: type(v).__name__).tolist()
            for c in frame.columns if frame[c].dtype == object}


def _assert_same(got, want) -> None:
    pd.testing.assert_frame_equal(got.records, want.records, check_exact=True)
    assert list(got.records.dtypes) == list(want.records.dtypes)
    assert _kinds(got.records) == _kinds(want.records)
    pd.testing.assert_frame_equal(got.rejects, want.rejects, check_exact=True)
    assert _kinds(got.rejects) == _kinds(want.rejects)
    assert got.counts == want.counts and got.encodings == want.encodings


def _states(state: kept.KeptState) -> dict[str, str]:
    return {e["source"]: e["state"] for e in state.report}


# --------------------------------------------------------------------------- reading

def test_state_gives_what_standardising_all_records_gives_built_and_read(tmp_path):
    config = _job(tmp_path)
    want = _whole(config)
    built, first = _read(config)
    assert _states(first) == {"police": "standardised", "ncms": "standardised"}
    _assert_same(built, want)
    again, second = _read(config)
    assert _states(second) == {"police": "kept", "ncms": "kept"}
    assert second.standardise_seconds == 0
    assert second.summary()["records_from_state"] == len(want.records)
    _assert_same(again, want)


def test_a_rejected_row_is_still_counted_when_read_from_the_state(tmp_path):
    config = _job(tmp_path)
    _read(config)
    data, state = _read(config)
    assert _states(state)["ncms"] == "kept"
    rejected = data.rejects[data.rejects["source"] == "ncms"]
    assert rejected["record_id"].tolist() == ["NH003"]
    assert rejected["reason"].iloc[0].startswith("nothing to link on: 成员姓名 is blank")
    assert rejected["row_sha256"].iloc[0]  # the earlier-run marking still recognises it
    assert data.counts == {"police": 3, "ncms": 4}
    check_accounting(data.counts, data.records, data.rejects)  # read = linked + rejected


def test_changing_one_file_reads_and_standardises_only_that_file(tmp_path):
    config = _job(tmp_path)
    _, first = _read(config)
    _write_csv(tmp_path / "ncms.csv", [*NCMS, ["NH005", "J03", "乌力吉巴雅尔", "",
                                               "1972-05-01", "呼和嘎查", "一档"]], "gbk")
    data, second = _read(config)
    assert _states(second) == {"police": "kept", "ncms": "standardised"}
    assert "NH005" in set(data.records["record_id"])
    _assert_same(data, _whole(config))
    second.prune()  # the ncms file's old state is no longer read: removed
    assert sorted(p.name for p in second.folder.glob("*.parquet")) == sorted(
        p.name for p in second.used)
    assert len(second.used) == 2


@pytest.mark.parametrize("change, restandardised", [
    ({"ncms": {"encoding": "gb18030"}}, {"ncms"}),  # how the file is read
    ({"police": {"record_id": "户号"}}, {"police"}),  # the record-id column
    ({"ncms": {"fields": {"household_id": "家庭编号", "name": "成员姓名",  # a field fewer:
                          "id_number": "身份证号", "birth_date": "出生日期",  # the job's
                          "village": "村"}}}, {"police", "ncms"}),  # fields change for all
])
def test_a_setting_that_changes_reading_or_standardising_invalidates_the_state(
        tmp_path, change, restandardised):
    _read(_job(tmp_path))
    config = _job(tmp_path, **change)
    data, state = _read(config)
    assert {s for s, how in _states(state).items() if how == "standardised"} == restandardised
    _assert_same(data, _whole(config))


def test_a_code_change_invalidates_the_state(tmp_path, monkeypatch):
    config = _job(tmp_path)
    _read(config)
    monkeypatch.setattr(kept, "code_fingerprint", lambda: "another standardiser")
    _, state = _read(config)
    assert set(_states(state).values()) == {"standardised"}


def test_the_code_fingerprint_covers_every_module_standardising_loads():
    import sys

    files = {p.resolve() for p in kept.code_files()}
    loaded = [Path(m.__file__).resolve() for name, m in list(sys.modules.items())
              if (name == "matchers" or name.startswith("matchers.")) and getattr(m, "__file__",
                                                                                   None)]
    assert loaded and all(p in files for p in loaded)
    assert Path(standardise.__file__).resolve() in files
    assert any(p.suffix == ".tsv" for p in files)  # the matchers' tables (surname readings)


# --------------------------------------------------------------------------- damage

@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "no_checksum",
                                    "another_files_state"])
def test_a_damaged_state_file_is_ignored_with_a_warning_and_rebuilt(tmp_path, caplog, damage):
    config = _job(tmp_path)
    want = _whole(config)
    _, first = _read(config)
    police = next(p for p in first.used if p.name.startswith("police-"))
    ncms = next(p for p in first.used if p.name.startswith("ncms-"))
    if damage == "truncated":
        police.write_bytes(police.read_bytes()[: police.stat().st_size // 2])
    elif damage == "garbage":
        raw = bytearray(police.read_bytes())
        raw[len(raw) // 3: len(raw) // 3 + 64] = b"\x00" * 64
        police.write_bytes(bytes(raw))
    elif damage == "empty":
        police.write_bytes(b"")
    elif damage == "no_checksum":  # killed between moving the data and its checksum in place
        kept.checksum_path(police).unlink()
    else:  # whole and checksummed, but another file's records: the key tells
        shutil.copyfile(ncms, police)
        shutil.copyfile(kept.checksum_path(ncms), kept.checksum_path(police))
    with caplog.at_level(logging.WARNING, logger="linkage"):
        data, second = _read(config)
    assert _states(second) == {"police": "standardised", "ncms": "kept"}
    assert f"state file {police}" in caplog.text and "ignored and rebuilt" in caplog.text
    assert "ignored and rebuilt" in second.report[0]["warning"]
    _assert_same(data, want)
    _, third = _read(config)  # rebuilt whole
    assert _states(third) == {"police": "kept", "ncms": "kept"}


def test_a_write_killed_midway_leaves_no_state_file_a_later_run_trusts(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    config = _job(tmp_path)
    real = pq.ParquetWriter.write_table

    def killed(writer, table, *args, **kwargs):
        real(writer, table.slice(0, 1), *args, **kwargs)  # a record on disk, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(pq.ParquetWriter, "write_table", killed)
    with pytest.raises(KeyboardInterrupt):
        _read(config)
    folder = tmp_path / "out" / "state" / "kept"
    assert not list(folder.glob("*.parquet"))  # only os.replace puts a file in place
    monkeypatch.setattr(pq.ParquetWriter, "write_table", real)
    data, state = _read(config)
    assert set(_states(state).values()) == {"standardised"}
    _assert_same(data, _whole(config))


def test_pruning_removes_temporary_files_of_dead_runs_only(tmp_path):
    import os

    config = _job(tmp_path)
    _, state = _read(config)
    dead = state.folder / ".police-x.parquet.999999999.tmp"
    alive = state.folder / f".police-y.parquet.{os.getpid()}.tmp"
    dead.write_bytes(b"half")
    alive.write_bytes(b"being written")
    state.prune()
    assert not dead.exists() and alive.exists()


# --------------------------------------------------------------------------- properties

CELL = st.one_of(st.just(""), st.sampled_from([
    "王丽", "王莉", "欧阳 娜", "包·巴特尔", "巴特尔", "不详", "abc", "150521196503120016",
    "15052119900101003x", "1.50521E+17", "152321650312001", "1965-03-12", "65.3.12",
    "1965年3月12日", "19990230", "男", "女", "1", "2", "呼和嘎查", "新艾里村", "一档", "二档"]),
    st.text(alphabet="张王李赵其木格0123456789Xx-·. ", max_size=20))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(police=st.lists(st.lists(CELL, min_size=6, max_size=6), max_size=8),
       ncms=st.lists(st.lists(CELL, min_size=6, max_size=6), max_size=8))
def test_any_records_come_back_from_the_state_exactly(tmp_path_factory, police, ncms):
    folder = tmp_path_factory.mktemp("prop")
    _write_csv(folder / "police.csv", [POLICE[0], *[[f"GA{i}", *r] for i, r in
                                                    enumerate(police)]])
    _write_csv(folder / "ncms.csv", [NCMS[0], *[[f"NH{i}", *r] for i, r in enumerate(ncms)]],
               "gb18030")
    config = _job(folder, ncms={"encoding": "gb18030"})
    want = _whole(config)
    _assert_same(_read(config)[0], want)
    data, state = _read(config)
    assert set(_states(state).values()) == {"kept"}
    _assert_same(data, want)


# --------------------------------------------------------------------------- config

def test_state_dir_is_validated_and_resolved_from_the_config_folder(tmp_path):
    config = _job(tmp_path)
    spec = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert load_config(config).state_dir is None
    assert kept.state_folder(load_config(config)) == tmp_path / "out" / "state" / "kept"
    spec["state_dir"] = "kept"
    config.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    assert load_config(config).state_dir == tmp_path / "kept"
    (tmp_path / "a_file").write_text("x")
    for value, says in [("a_file", "expected a folder (this path is a file)"),
                        ("out", "expected a folder of its own, not the output folder")]:
        spec["state_dir"] = value
        config.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        with pytest.raises(ConfigError, match="config key 'state_dir'") as err:
            load_config(config)
        assert says in str(err.value)


# --------------------------------------------------------------------------- whole runs

def _demo(small_world: Path, folder: Path, state_dir: Path) -> Path:
    path = write_demo_config(small_world / "configs" / f"demo-kept-{folder.name}.yaml",
                             folder / "out", f"sqlite:///{folder / 'store.sqlite'}",
                             fast_training=True)
    path.write_text(path.read_text(encoding="utf-8") + f"\nstate_dir: {state_dir}\n",
                    encoding="utf-8")
    return path


def test_a_second_run_over_unchanged_inputs_standardises_nothing_and_writes_the_same_files(
        small_world, tmp_path, capsys):
    shared = tmp_path / "state"
    first = run(load_config(_demo(small_world, tmp_path / "a", shared)))
    assert first.summary["kept_state"]["files_standardised"] == 3
    # Another store and output folder, the same state: the run reads every file from it.
    assert main(["run", str(_demo(small_world, tmp_path / "b", shared))]) == 0
    printed = capsys.readouterr().out
    assert ("kept state: 3 of 3 files unchanged, " in printed
            and "nothing standardised" in printed)
    import json

    summary = json.loads((tmp_path / "b" / "out" / "summary.json").read_text(encoding="utf-8"))
    assert {f["state"] for f in summary["kept_state"]["files"]} == {"kept"}
    assert summary["kept_state"]["records_from_state"] == summary["records"]["read"] - \
        summary["records"]["rejected"]
    assert summary["timings"]["standardise"] == 0
    a, b = tmp_path / "a" / "out", tmp_path / "b" / "out"
    csvs = sorted(p.name for p in a.glob("*.csv"))
    assert csvs and csvs == sorted(p.name for p in b.glob("*.csv"))
    for name in [*csvs, "model.json"]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert fingerprint(a) == fingerprint(b)  # xlsx cells and summary.json too


def test_a_run_and_add_share_the_state_and_a_kept_batch_is_standardised_once(
        small_world, tmp_path):
    from linkage.jobs.add import add

    data = tmp_path / "data"
    shutil.copytree(small_world / "data" / "demo", data)
    urban = (data / "urban.csv").read_text(encoding="utf-8-sig").splitlines(keepends=True)
    cut = len(urban) - 40
    (data / "urban.csv").write_text("".join(urban[:cut]), encoding="utf-8-sig")
    batch = tmp_path / "urban_new.csv"
    batch.write_text("".join([urban[0], *urban[cut:]]), encoding="utf-8-sig")
    config = load_config(write_demo_config(tmp_path / "demo.yaml", tmp_path / "out",
                                           f"sqlite:///{tmp_path / 'store.sqlite'}", data=data,
                                           fast_training=True))
    run(config)
    added = add(config, batch)
    assert {f["state"] for f in added.summary["kept_state"]["files"]} == {"kept"}
    after = run(config)  # reads the kept batch: standardised once, then kept
    files = after.summary["kept_state"]["files"]
    assert [(f["source"], f["state"]) for f in files] == [
        ("police", "kept"), ("ncms", "kept"), ("urban", "kept"), ("urban", "standardised")]
    again = run(config)
    assert {f["state"] for f in again.summary["kept_state"]["files"]} == {"kept"}
    assert again.summary["records"] == after.summary["records"]


# --------------------------------------------------------------------------- database sources

def _db_job(folder: Path, change_column: str | None, query: bool = False) -> Path:
    import sqlalchemy as sa

    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'roster.sqlite'}"
    engine = sa.create_engine(url)
    frame = pd.DataFrame(POLICE[1:], columns=POLICE[0]).assign(修改时间=[1, 2, 3])
    frame.to_sql("户籍", engine, index=False, if_exists="replace")
    engine.dispose()
    config = _job(folder)
    spec = yaml.safe_load(config.read_text(encoding="utf-8"))
    police = spec["sources"][0]
    del police["path"]
    police["url"] = url
    police.update({"query": 'SELECT * FROM "户籍"'} if query else {"table": "户籍"})
    if change_column:
        police["change_column"] = change_column
    config.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return config


def _execute(folder: Path, sql: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{folder / 'roster.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


@pytest.mark.parametrize("query", [False, True])
def test_a_database_source_with_a_change_column_is_kept_until_a_row_changes(tmp_path, query):
    config = _db_job(tmp_path, "修改时间", query)
    assert _states(_read(config)[1])["police"] == "standardised"
    assert _states(_read(config)[1]) == {"police": "kept", "ncms": "kept"}
    _execute(tmp_path, "UPDATE 户籍 SET 姓名 = '张伟', 修改时间 = 4 WHERE 人员编号 = 'GA003'")
    data, state = _read(config)
    assert _states(state) == {"police": "standardised", "ncms": "kept"}
    assert "张伟" in set(data.records["name"])
    _assert_same(data, _whole(config))
    _execute(tmp_path, "DELETE FROM 户籍 WHERE 人员编号 = 'GA002'")  # the count tells
    data, state = _read(config)
    assert _states(state)["police"] == "standardised"
    assert "GA002" not in set(data.records["record_id"])


def test_a_database_source_without_a_change_column_is_read_every_run(tmp_path):
    config = _db_job(tmp_path, None)
    _read(config)
    data, state = _read(config)
    assert _states(state) == {"police": "standardised", "ncms": "kept"}
    assert "read every run" in state.report[0]["note"]
    _assert_same(data, _whole(config))


def test_a_change_column_is_only_for_database_sources_and_must_exist(tmp_path):
    from linkage.jobs.ingest import InputError

    config = _job(tmp_path, police={"change_column": "修改时间"})
    with pytest.raises(ConfigError, match=r"\(police\).change_column': got '修改时间'; "
                                          r"expected no change_column for a file"):
        load_config(config)
    config = _db_job(tmp_path / "db", "改时间")
    with pytest.raises(InputError, match="cannot read change_column '改时间'"):
        _read(config)
