"""Configs are validated up front; each error names the key, the value and what would be right."""
from pathlib import Path

import pydantic
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.core.config import ConfigError, load_config, parse_config
from linkage.jobs.run import plan

REPO = Path(__file__).resolve().parents[2]


def _base() -> dict:
    return yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["demo", "febrl4", "febrl4_no_id", "febrl3", "febrl3_no_id"])
def test_shipped_configs_validate(name):
    config = load_config(REPO / "configs" / f"{name}.yaml")
    assert plan(config)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(colour="blue"), r"unknown key 'colour' at the top level"),
        (lambda c: c.pop("job"), r"config key 'job' is missing"),
        (lambda c: c["sources"][0].update(role="boss"), r"role.*'boss'.*authority"),
        (lambda c: c["sources"][0].update(path="police.pdf"), r"\.csv or \.xlsx"),
        (lambda c: c["sources"][0]["fields"].update({"Name": "x"}), r"lower_snake_case"),
        (lambda c: c["thresholds"].update(match=1.5), r"thresholds.match.*1.5.*between 0 and 1"),
        (lambda c: c["thresholds"].update(review=0.99), r"thresholds.review.*at most"),
        (lambda c: c["comparisons"].append({"matcher": "soundex"}), r"'soundex'.*chinese_name"),
        (lambda c: c["blocking"][0].update(max_block_size="big"), r"max_block_size.*integer"),
        (lambda c: c.update(link_type="everything"), r"link_type.*link_and_dedupe"),
        (lambda c: c["survivorship"].update(precedence=["tax"]), r"precedence.*'tax'"),
        (lambda c: c.update(store="linkage.sqlite"), r"SQLAlchemy URL"),
    ],
)
def test_errors_name_key_value_and_fix(change, message):
    raw = _base()
    change(raw)
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, REPO / "configs" / "demo.yaml")


def test_defaults_come_from_the_models_once():
    """A config that gives only what is required gets every default from the models."""
    from linkage.core.config import (
        BlockingSpec,
        Household,
        JobSpec,
        SparkSettings,
        Thresholds,
        Training,
    )

    raw = {k: v for k, v in _base().items() if k in ("job", "sources", "blocking", "comparisons")}
    raw["blocking"] = [{"keys": "id_prefix17"}]  # one key may be given as text
    config = parse_config(raw, REPO / "configs" / "demo.yaml")
    assert config.training == Training() and config.household == Household()
    assert config.spark == SparkSettings() and config.spark.settings() == {}
    assert (config.match_threshold, config.review_threshold) == (Thresholds().match,
                                                                 Thresholds().review)
    assert config.chunk_size == JobSpec.model_fields["chunk_size"].default
    assert config.engine == JobSpec.model_fields["engine"].default
    assert config.link_type == JobSpec.model_fields["link_type"].default
    assert config.blocking[0].max_block_size == BlockingSpec.model_fields["max_block_size"].default
    assert config.blocking[0].name == "id_prefix17" and config.blocking[0].keys == ("id_prefix17",)
    assert config.precedence == ("police", "ncms", "urban")
    assert config.output == REPO / "configs" / "out" / "demo"  # beside the config
    assert config.store == "sqlite:///" + str(config.output / "linkage.sqlite")


def test_sections_are_typed_models_read_by_attribute():
    raw = _base()
    raw.update(training={"seed": 7}, household={"enabled": False, "bonus": 1},
               spark={"master": "local[4]", "spark.executor.memory": "4g"})
    config = parse_config(raw, REPO / "configs" / "demo.yaml")
    assert config.training.seed == 7 and config.training.u_sample_pairs == 500_000
    assert not config.household.enabled and config.household.bonus == 1
    assert config.spark.master == "local[4]"
    assert config.spark.settings() == {"master": "local[4]", "spark.executor.memory": "4g"}
    assert config.spec.training.seed == 7  # the config as written, validated
    with pytest.raises(pydantic.ValidationError, match="frozen"):  # a run cannot change them
        config.training.seed = 8


def test_unknown_blocking_key_is_caught_before_any_work():
    raw = _base()
    raw["blocking"].append({"keys": ["shoe_size"]})
    config = parse_config(raw, REPO / "configs" / "demo.yaml")
    with pytest.raises(ConfigError, match=r"shoe_size.*not available"):
        plan(config)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (st.lists(children, max_size=3)
                      | st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=10,
))
def test_any_mapping_gives_a_config_or_a_config_error(junk):
    raw = _base()
    key = next(iter(junk)) if isinstance(junk, dict) and junk else "sources"
    raw[key] = junk
    try:
        parse_config(raw, REPO / "configs" / "demo.yaml")
    except ConfigError:
        pass
