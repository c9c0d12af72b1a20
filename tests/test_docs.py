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
    from linkage.core.config import JobSpec, SourceSpec, config_keys, matcher_parameters
    from matchers import registered

    keys = config_keys()
    text = docs.config_reference()
    assert all(f"| `{key}` | {doc.kind} |" in text for key, doc in keys.items())
    assert set(JobSpec.model_fields) == {k for k in keys if "." not in k}
    assert set(SourceSpec.model_fields) == {k.split(".", 1)[1] for k in keys
                                            if k.startswith("sources[].")}
    assert "| `blocking[].max_block_size` | integer of at least 2 | `300` |" in text
    for name in registered():  # every matcher's parameters, with their signature's defaults
        for param in matcher_parameters(name).model_fields:
            assert f"`{param}` (" in text
    assert "`birth_tolerance_days` (integer, `50`)" in text


def test_shipped_json_schema_is_generated_from_the_models():
    assert docs.SCHEMA.read_text(encoding="utf-8") == docs.schema_text(), (
        "configs/job.schema.json is out of date: run `python -m linkage.docs --write`")


def test_json_schema_accepts_the_shipped_configs_and_flags_misspellings():
    """What an editor says about a config agrees with the parser, matcher parameters included."""
    import yaml

    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(docs.schema_text()))
    for path in sorted((docs.README.parent / "configs").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert not list(validator.iter_errors(raw)), path.name
        assert path.read_text(encoding="utf-8").startswith(
            "# yaml-language-server: $schema=job.schema.json\n")
    raw = yaml.safe_load((docs.README.parent / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    for change in (lambda c: c["blocking"][0].update(max_blok_size=5),
                   lambda c: c["comparisons"][0].update(pinyin_hihg=0.9),
                   lambda c: c["comparisons"][1].update(birth_tolerance_days="fifty"),
                   lambda c: c["training"].update(seed=-1) if "training" in c
                   else c.update(training={"seed": -1})):
        bad = json.loads(json.dumps(raw))
        change(bad)
        assert list(validator.iter_errors(bad))


def test_cli_reference_has_every_subcommand():
    text = docs.cli_reference()
    for command in ("synth", "run", "export", "evaluate", "explain", "decide", "serve",
                    "users add", "demo"):
        assert f"#### `linkage {command}`" in text


@pytest.fixture(scope="module")
def demo_outputs(make_demo_job, small_world, tmp_path_factory):
    """The demo job's output folder after one run with the truth file."""
    from linkage.core.config import load_config
    from linkage.jobs.run import run

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
