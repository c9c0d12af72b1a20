"""The README's reference sections are what the code says, and every output column is described."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from linkage import docs
from linkage.outputs.columns import OTHER_FILES, OUTPUTS, undocumented


def test_readme_reference_sections_are_generated_from_the_code():
    current = docs.readme_sections(docs.README.read_text(encoding="utf-8"))
    for name, make in docs.SECTIONS.items():
        assert current[name] == make(), (
            f"README.md's {name} section is out of date: run `python -m linkage.docs --write`")


def test_config_reference_lists_every_key_the_parser_accepts():
    from linkage.config import CONFIG_SCHEMA, SOURCE_KEYS, TOP_KEYS

    text = docs.config_reference()
    assert all(f"`{key}`" in text for key in CONFIG_SCHEMA)
    assert TOP_KEYS == {k for k in CONFIG_SCHEMA if "." not in k}
    assert SOURCE_KEYS == {k.split(".", 1)[1] for k in CONFIG_SCHEMA if k.startswith("sources[].")}


def test_cli_reference_has_every_subcommand():
    text = docs.cli_reference()
    for command in ("synth", "run", "export", "evaluate", "explain", "decide", "serve",
                    "users add", "demo"):
        assert f"#### `linkage {command}`" in text


@pytest.fixture(scope="module")
def demo_outputs(make_demo_job, small_world, tmp_path_factory):
    """The demo job's output folder after one run with the truth file."""
    from linkage.config import load_config
    from linkage.pipeline import run

    config = load_config(make_demo_job(tmp_path_factory.mktemp("docs")))
    result = run(config, truth_path=small_world / "data" / "demo" / "truth.csv")
    return result.out_dir


@pytest.mark.slow
def test_every_column_the_writers_produce_is_documented(demo_outputs):
    documented_files = {f for doc in OUTPUTS.values() for f in doc.files} | set(OTHER_FILES)
    stems = {doc.files[0].rsplit(".", 1)[0]: stem for stem, doc in OUTPUTS.items()}
    missing: dict[str, list[str]] = {}
    for path in sorted(demo_outputs.iterdir()):
        assert path.name in documented_files, f"{path.name} is not in linkage/outputs/columns.py"
        if path.suffix == ".csv":
            columns = list(pd.read_csv(path, dtype=str, nrows=0).columns)
        elif path.suffix == ".json":
            columns = list(json.loads(path.read_text(encoding="utf-8")))
        else:
            continue
        bad = undocumented(stems[path.stem], columns)
        if bad:
            missing[path.name] = bad
    assert not missing, f"describe these in linkage/outputs/columns.py: {missing}"
