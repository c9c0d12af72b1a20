"""Bad job configs: one test per kind of mistake, each message naming the key and the fix (and,
from a file, the line), and a fuzz over the real models' keys: loading gives a JobConfig or a
ConfigError, never another exception (nor a traceback later, in plan())."""
import copy
import math
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.cli import main
from linkage.core.config import ConfigError, JobConfig, config_keys, load_config, parse_config
from linkage.jobs.run import plan

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"
BASE = yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def _parse(change) -> JobConfig:
    raw = copy.deepcopy(BASE)
    change(raw)
    return parse_config(raw, DEMO)


def _error(change) -> str:
    with pytest.raises(ConfigError) as err:
        _parse(change)
    return str(err.value)


def test_wrong_key_suggests_the_right_one():
    assert "unknown key 'threshold' at the top level (did you mean 'thresholds'?)" in _error(
        lambda c: c.update(threshold=c.pop("thresholds")))
    message = _error(lambda c: c["sources"][1].update(encodng="gbk"))
    assert "under sources[1] (ncms)" in message and "did you mean 'encoding'?" in message
    assert "did you mean 'u_sample_pairs'?" in _error(
        lambda c: c.update(training={"u_sample_pair": 10}))
    assert "unknown key 'mastr' under spark" in _error(lambda c: c.update(spark={"mastr": "x"}))


@pytest.mark.parametrize("matcher, index, wrong, right", [
    ("chinese_name", 0, "pinyin_hihg", "pinyin_high"),
    ("resident_id", 1, "birth_tolerence_days", "birth_tolerance_days"),
    ("birthdate", 2, "within_day", "within_days"),
])
def test_misspelt_matcher_parameter_is_an_error_naming_it(matcher, index, wrong, right):
    """Before, every matcher factory swallowed unknown keyword arguments: a tuning that
    silently did nothing."""
    message = _error(lambda c: c["comparisons"][index].update({wrong: 30}))
    assert (f"unknown key {wrong!r} under comparisons[{index}] (matcher {matcher!r}) "
            f"(did you mean {right!r}?)") in message


def test_matcher_parameter_of_the_wrong_type_names_it_and_the_type():
    message = _error(lambda c: c["comparisons"][2].update(within_days="three"))
    assert "config key 'comparisons[2].within_days': got 'three'; expected an integer" in message
    message = _error(lambda c: c["comparisons"][0].update(pinyin_high=True))
    assert "'comparisons[0].pinyin_high': got True; expected a number" in message


def test_parameters_of_a_matcher_come_from_its_factory_signature():
    from linkage.core.config import matcher_parameters

    fields = matcher_parameters("resident_id").model_fields
    assert {k: f.default for k, f in fields.items()} == {
        "levels": None, "birth_tolerance_days": 50, "min_partial": 6}
    # The generic matchers' column comes from the comparison's `field`.
    assert "column" in matcher_parameters("string").model_fields
    message = _error(lambda c: c["comparisons"].append({"matcher": "string"}))
    assert "'comparisons[5].field' is missing; expected the field to compare" in message
    message = _error(lambda c: c["comparisons"][3].update(field="gender"))
    assert "unknown key 'field' under comparisons[3] (matcher 'gender'" in message


def test_wrong_matcher_suggests_the_right_one():
    message = _error(lambda c: c["comparisons"].append({"matcher": "chinese_names"}))
    assert "'comparisons[5].matcher': got 'chinese_names'" in message
    assert "did you mean 'chinese_name'?" in message


@pytest.mark.parametrize("change, key, fix", [
    (lambda c: c.update(job=5), "job", "a job name"),
    (lambda c: c.update(job="../../etc"), "job", "without slashes"),
    (lambda c: c.update(sources={"name": "police"}), "sources", "a list of sources"),
    (lambda c: c["sources"][0].update(record_id=7), "sources[0] (police).record_id", "column"),
    (lambda c: c["sources"][0].update(sheet=2), "sources[0] (police).sheet", "text"),
    (lambda c: c["sources"][0].update(name="po:lice"), "sources[0].name", "without ':'"),
    (lambda c: c.update(blocking={"keys": ["birth_date"]}), "blocking",
     "a list of blocking rules"),
    (lambda c: c["blocking"][0].update(max_block_size=True), "blocking[0].max_block_size",
     "integer"),
    (lambda c: c.update(thresholds=0.9), "thresholds", "a mapping"),
    (lambda c: c["thresholds"].update(match="high"), "thresholds.match", "between 0 and 1"),
    (lambda c: c.update(training=[1, 2]), "training", "a mapping"),
    (lambda c: c.update(training={"seed": "abc"}), "training.seed", "an integer"),
    (lambda c: c.update(training={"em_tolerance": float("nan")}), "training.em_tolerance",
     "positive"),
    (lambda c: c.update(household={"enabled": "yes"}), "household.enabled", "true or false"),
    (lambda c: c.update(chunk_size=True), "chunk_size", "an integer"),
    (lambda c: c["survivorship"].update(precedence="police"), "survivorship.precedence", "a list"),
    (lambda c: c.update(output=["out"]), "output", "a folder path"),
    (lambda c: c.update(spark="local[2]"), "spark", "a mapping"),
    (lambda c: c.update(spark={"spark.executor.memory": ["4g"]}), "spark.spark.executor.memory",
     "text, a number or true/false"),
    (lambda c: c["comparisons"][1].update(levels="exact_valid"), "comparisons[1].levels", "a list"),
])
def test_wrong_type_names_the_key_and_what_it_should_be(change, key, fix):
    message = _error(change)
    assert f"'{key}'" in message and fix in message


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, float("nan"), float("inf")])
def test_threshold_out_of_range_is_refused(value):
    message = _error(lambda c: c["thresholds"].update(match=value))
    assert "'thresholds.match'" in message and "strictly between 0 and 1" in message


def test_unknown_level_of_a_known_matcher_names_the_comparison():
    message = _error(lambda c: c["comparisons"][2].update(levels=["exact", "roughly"]))
    assert "'comparisons[2]' (matcher 'birthdate', parameters: levels)" in message
    assert "'roughly'" in message


def test_same_comparison_twice_is_refused():
    assert "each comparison once" in _error(
        lambda c: c["comparisons"].append({"matcher": "gender"}))


def test_same_source_twice_is_refused():
    message = _error(lambda c: c["sources"].append(dict(c["sources"][0])))
    assert "'sources[3].name': got 'police'; expected a source name no other source has" in message


def test_every_problem_is_reported_at_once():
    def change(c):
        c["thresholds"]["match"] = 2
        c["blocking"][0]["max_blok_size"] = 5
        c["comparisons"][0]["pinyin_hihg"] = 0.9
    message = _error(change)
    assert "thresholds.match" in message and "max_blok_size" in message and "pinyin_hihg" in message


def test_sheet_for_a_csv_source_is_refused():
    assert "no 'sheet' for a CSV file" in _error(lambda c: c["sources"][0].update(sheet="名单"))


def test_sql_source_needs_exactly_one_of_table_or_query_and_hides_the_password():
    def change(c):
        c["sources"][2].pop("path")
        c["sources"][2].update(url="postgresql+psycopg://clerk:s3cret@db/urban", table="t",
                               query="SELECT 1")
    message = _error(change)
    assert "exactly one of 'table' or 'query'" in message and "s3cret" not in message


def test_blocking_key_that_is_not_a_standard_column_is_refused_before_work():
    config = _parse(lambda c: c["blocking"].append({"keys": ["birthdate"]}))
    with pytest.raises(ConfigError, match=r"blocking' rule 'birthdate': key\(s\) \['birthdate'\] "
                                          r"are not available.*birth_date"):
        plan(config)


def test_config_file_that_does_not_exist_is_a_clear_cli_error(tmp_path, capsys):
    assert main(["run", str(tmp_path / "jobb.yaml")]) == 2
    assert f"config file '{tmp_path / 'jobb.yaml'}' does not exist" in capsys.readouterr().err


def test_config_file_not_in_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_bytes(DEMO.read_text(encoding="utf-8").encode("gbk"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text .*save it as UTF-8"):
        load_config(path)


def test_config_file_that_is_not_yaml_is_a_clear_error(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("job: demo\nsources: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"is not valid YAML"):
        load_config(path)


def test_key_given_twice_is_refused_with_both_lines(tmp_path):
    """PyYAML lets the second of two equal keys win silently; a config must not."""
    text = DEMO.read_text(encoding="utf-8")
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("job:"))
    lines.insert(at + 1, "job: demo_copy")
    path = tmp_path / "job.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"(?s)found the key 'job' twice \(first on line "
                                          rf"{at + 1}\); keep one.*job.yaml\", line {at + 2}"):
        load_config(path)
    # Inside a nested mapping too (a source's field mapping).
    nested = text.replace("  - name: police\n", "  - name: police\n    name: police2\n", 1)
    assert nested != text
    path.write_text(nested, encoding="utf-8")
    with pytest.raises(ConfigError, match="found the key 'name' twice"):
        load_config(path)
    path.write_text(text, encoding="utf-8")
    assert load_config(path).job  # the demo itself has no duplicate key


def _demo_with(tmp_path, *edits: tuple[str, str]) -> tuple[Path, list[str]]:
    """The demo config with text replaced (each edit once), and its lines."""
    text = DEMO.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text.splitlines()


def _line_of(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_unknown_nested_key_names_the_line_of_the_file(tmp_path):
    path, lines = _demo_with(tmp_path, (
        "    keys: [village_norm, birth_year, name_initials]\n    max_block_size: 100",
        "    keys: [village_norm, birth_year, name_initials]\n    max_blok_size: 100"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path} line {_line_of(lines, 'max_blok_size')}: unknown key 'max_blok_size' under "
        "blocking[4] (did you mean 'max_block_size'?); allowed: name, keys, max_block_size, "
        "max_pairs, refine")


def test_misspelt_matcher_parameter_in_a_file_names_the_line(tmp_path):
    path, lines = _demo_with(
        tmp_path,
        ("  - matcher: chinese_name\n", "  - matcher: chinese_name\n    pinyin_hihg: 0.9\n"),
        ("  - matcher: resident_id\n", "  - {matcher: resident_id, birth_tolerence_days: 30}\n"),
        ("  match: 0.95", "  match: high"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    found = str(err.value).splitlines()
    # In the order of the file, each with its line.
    assert found == [
        (f"{path} line {_line_of(lines, 'pinyin_hihg')}: unknown key 'pinyin_hihg' under "
         "comparisons[0] (matcher 'chinese_name') (did you mean 'pinyin_high'?); allowed: "
         "matcher, name, levels, pinyin_high, pinyin_low"),
        (f"{path} line {_line_of(lines, 'birth_tolerence_days')}: unknown key "
         "'birth_tolerence_days' under comparisons[1] (matcher 'resident_id') (did you mean "
         "'birth_tolerance_days'?); allowed: matcher, name, levels, birth_tolerance_days, "
         "min_partial"),
        (f"{path} line {_line_of(lines, 'match: high')}: config key 'thresholds.match': got "
         "'high'; expected a number strictly between 0 and 1, such as 0.95"),
    ]


def test_missing_key_names_the_line_of_its_mapping(tmp_path):
    path, lines = _demo_with(tmp_path, ("    record_id: ryid\n", ""))
    with pytest.raises(ConfigError, match=re.escape(
            f"{path} line {_line_of(lines, '- name: urban')}: config key "
            "'sources[2] (urban).record_id' is missing")):
        load_config(path)


def test_an_override_is_not_blamed_on_the_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(DEMO, {"chunk_size": 10})
    assert str(err.value) == (f"{DEMO}: config key 'chunk_size': got 10; expected an integer of "
                              "at least 1000")


def test_old_keys_and_empty_sections_are_accepted():
    config = _parse(lambda c: c.update(training={"m_from_decisions": True}, household=None,
                                       spark=None, thresholds=None, survivorship=None))
    assert config.training.u_sample_pairs == 500_000 and config.household.enabled
    assert (config.match_threshold, config.review_threshold) == (0.95, 0.5)
    assert config.spark.settings() == {}


# --------------------------------------------------------------------------- fuzz

# Parameters the registered matchers take, beside the models' own keys.
EXTRA_PATHS = ["comparisons[].levels", "comparisons[].within_days",
               "comparisons[].birth_tolerance_days", "comparisons[].pinyin_high",
               "comparisons[].pinyin_low", "comparisons[].column", "comparisons[].pinyin_hihg",
               "comparisons[].metric", "sources[].fields.name",
               "sources[].fields.id_number", "sources[].fields.shoe_size"]
PATHS = sorted(config_keys()) + EXTRA_PATHS
MATCHERS = ["chinese_name", "resident_id", "birthdate", "gender", "place", "string", "exact",
            "numeric_string", "date_string", "soundex"]
COLUMNS = ["birth_date", "surname_pinyin", "name_key", "id_prefix17", "village_norm", "nope"]

scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["", "police", "ncms", "auto", "gbk", "x.csv", "x.xlsx", "名单",
                              "sqlite:///x.db", "match", "link_only", "spark"]
                             + MATCHERS + COLUMNS))
keys = st.sampled_from(["match", "review", "keys", "master", "precedence", "name", "x"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(keys | st.text(max_size=5), inner, max_size=3),
                      max_leaves=6)
mutations = st.lists(st.tuples(st.sampled_from(PATHS), st.integers(0, 5), values | st.just(...)),
                     min_size=1, max_size=3)


def _mutate(raw: dict, path: str, index: int, value) -> None:
    """Set (or with ... delete) the value at a dotted schema path; [] picks item `index`."""
    node = raw
    parts = path.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        listed = part.endswith("[]")
        key = part.removesuffix("[]")
        if not isinstance(node, dict):
            return
        if last and not listed:
            if value is ...:
                node.pop(key, None)
            else:
                node[key] = value
            return
        child = node.get(key)
        if listed:
            if not isinstance(child, list):
                return
            if index >= len(child):
                child.append({})
                index = len(child) - 1
            child = child[index]
        elif not isinstance(child, dict):
            child = node[key] = {}
        node = child


CONFIG_DIR = Path(tempfile.mkdtemp(prefix="config-fuzz-"))


@settings(max_examples=1000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(mutations)
def test_any_schema_mutation_loads_to_a_config_or_a_config_error(changes):
    raw = copy.deepcopy(BASE)
    for path, index, value in changes:
        _mutate(raw, path, index, value)
    try:
        config = parse_config(raw, DEMO)  # what load_config does after yaml.safe_load
    except ConfigError as exc:
        assert all(line.startswith(("config key", "unknown key")) for line in str(exc).splitlines())
        return
    assert isinstance(config, JobConfig)
    assert 0 < config.review_threshold <= config.match_threshold < 1
    assert all(math.isfinite(v) for v in (config.match_threshold, config.review_threshold))
    if any(path.startswith(("sources", "blocking", "comparisons")) for path, _, _ in changes):
        try:
            plan(config)  # blocking keys and compared columns are checked here
        except ConfigError:
            pass


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace"))
       | st.sampled_from([b"job: [", b"- a\n- b", b"\xff\xfe", b"job: demo\nsources: 5",
                          b"!!python/object:os.system [ls]", b"&a [*a]", b"job: demo\n" * 3]))
def test_any_file_loads_to_a_config_or_a_config_error(content):
    file = CONFIG_DIR / "raw.yaml"
    file.write_bytes(content)
    try:
        load_config(file)
    except ConfigError:
        pass
