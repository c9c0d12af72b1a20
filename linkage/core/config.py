"""Job configs: YAML in, a validated JobConfig out, before any work starts.

The pydantic models below are the one definition of a job config: each field gives a key's
type, default and description. The parser validates against them, ``python -m linkage.docs``
prints them as the README's config reference and writes them as ``configs/job.schema.json``
(which editors use to complete and check a job config). A matcher's parameters are its factory's
own keyword arguments, read from its signature, so a parameter's default lives in one place.

Every error names the key, the value found and what would be right and, for a file, the line,
so a data team can fix a config without reading code.
"""
from __future__ import annotations

import difflib
import functools
import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

STANDARD_FIELDS = (
    "name",
    "id_number",
    "birth_date",
    "gender",
    "household_id",
    "relation",
    "township",
    "village",
    "ethnicity",
    "status",
)
ROLES = ("authority", "insurance", "other")
LINK_TYPES = ("link_and_dedupe", "link_only", "dedupe_only")
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "gbk", "gb18030")
ENGINES = ("local", "spark")
# Keys that split an oversized block when a rule names none, most namesakes parted for the
# fewest true pairs first: township splits a block ~90 ways and parts 2.5% of true pairs,
# gender 2 ways for 0.5%, birth month 12 ways for 3.6% (the synthetic world; docs/blocking.md).
DEFAULT_REFINE = ("township_norm", "gender", "birth_month", "name_initials")
# Refining keys blocking derives itself (blocking.REFINERS), with the column each reads.
DERIVED_REFINERS = {"birth_month": "birth_date"}


def refining_columns(fields: set[str]) -> set[str]:
    """Keys a blocking rule may refine by when the sources map these raw fields: their
    standardised columns and the refiners derived from those."""
    from linkage.core.standardise import column_fields

    columns = set(column_fields(set(fields)))
    return columns | {name for name, column in DERIVED_REFINERS.items() if column in columns}


class ConfigError(ValueError):
    """A job config that cannot run; the message says which key and how to fix it."""


# --------------------------------------------------------------------------- value kinds


@dataclass(frozen=True)
class Says:
    """How error messages and the reference name a kind of value: the phrase an error puts
    after "expected" (``Says("a folder path")``); ``secret``: the value is a URL whose password
    messages must not show."""

    phrase: str
    secret: bool = False


@dataclass(frozen=True)
class Derived:
    """A default that depends on other keys, as the reference describes it."""

    text: str


def _none_is_empty(value: Any) -> Any:
    """A key written with no value (``training:``) means the defaults, as if absent."""
    return {} if value is None else value


def _url(value: str) -> str:
    import sqlalchemy as sa

    try:
        sa.engine.make_url(value)
    except Exception:  # noqa: BLE001 - any parse failure means "not a URL"
        raise ValueError("an SQLAlchemy URL such as postgresql+psycopg://host/db") from None
    return value


def _store_url(value: str) -> str:
    if "://" not in value:
        raise ValueError("an SQLAlchemy URL such as sqlite:///out/linkage.sqlite")
    return _url(value)


def _scalar(value: Any) -> Any:
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError("text, a number or true/false")  # noqa: TRY004 - pydantic wants ValueError
    return value


def _one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _text(pattern: str, phrase: str) -> Any:
    return Annotated[str, Field(pattern=pattern), Says(phrase)]


# Patterns are searched, so they are anchored; the JSON Schema carries the same ones.
Text = _text(r"^[^\x00]*\S[^\x00]*$", "non-blank text")
JobName = _text(r"^[^/\\\x00-\x1f]*[^/\\\x00-\x1f.\s][^/\\\x00-\x1f]*$",
                "a job name without slashes or control characters")
SourceName = _text(r"^[^:\x00-\x1f]*[^:\x00-\x1f\s][^:\x00-\x1f]*$",
                   "a source name without ':' or control characters (pairs are written "
                   "SOURCE:RECORD_ID)")
FieldName = _text(r"^[a-z][a-z0-9_]*$",
                  "a field name in lower_snake_case; the standard ones "
                  f"({', '.join(STANDARD_FIELDS)}) get the Chinese standardisers, others "
                  "generic text")
ColumnName = Annotated[str, Field(min_length=1), Says("a column name of the source")]
Label = Annotated[str, Field(min_length=1), Says("a name (text)")]
FolderPath = _text(r"^[^\x00]*\S[^\x00]*$", "a folder path (text)")
DatabaseURL = Annotated[str, AfterValidator(_url), Says("a database URL (SQLAlchemy)", secret=True)]
StoreURL = Annotated[str, AfterValidator(_store_url),
                     Says("a database URL (SQLAlchemy)", secret=True)]
SparkValue = Annotated[Any, AfterValidator(_scalar),
                       WithJsonSchema({"type": ["string", "number", "boolean"]})]


class _Model(BaseModel):
    """Strict: a key nobody knows, or a value of the wrong type, is an error, never coerced
    (``chunk_size: yes`` is not 1, ``seed: '42'`` is not 42)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)


def _section(model: type[_Model]) -> Any:
    """An optional sub-mapping: absent or empty means every default."""
    return Annotated[model, BeforeValidator(_none_is_empty, json_schema_input_type=model | None)]


# --------------------------------------------------------------------------- the config's models


class SourceSpec(_Model):
    """One input: a CSV or Excel file, or a database table or query."""

    model_config = ConfigDict(title="source")

    name: SourceName
    """Source name, unique in the job (e.g. police, ncms)."""
    role: Literal[ROLES] = "insurance"
    """`authority` (the police registry) decides who exists; `insurance` rosters are checked
    against it."""
    record_id: Annotated[str, Field(pattern=r"\S"), Says("the name of the record-id column")]
    """Column holding the record's own id (unique in the source)."""
    fields: dict[FieldName, ColumnName] = Field(description=(
        f"Standard field -> column of the source. Standard fields: {', '.join(STANDARD_FIELDS)}; "
        "any other lower_snake_case name is carried as text (e.g. tier, receipt, clerk)."))
    path: Text | None = None
    """A .csv or .xlsx file, relative to the config's folder; give `path` or `url`."""
    url: DatabaseURL | None = None
    """SQLAlchemy URL of a database to read instead of a file."""
    table: Text | None = None
    """Table to read beside `url`."""
    query: Text | None = None
    """SQL query to read beside `url` (instead of `table`)."""
    change_column: Text | None = None
    """For a database source: a column every insert and update sets to a value larger than any
    before (a last-modified time, an increasing row version). The kept state of the source is
    used while its row count and the column's largest value stay the same; without it a
    database source is read every run."""
    encoding: Literal[ENCODINGS] = "auto"
    """`auto` detects UTF-8, GBK and GB18030."""
    sheet: Annotated[Text | None, Derived("the only sheet holding data")] = None
    """Worksheet of an .xlsx file; required when several sheets hold data."""
    scheme: Annotated[Text | None, Derived("source name")] = None
    """Insurance scheme the outputs name (e.g. NCMS, URBAN)."""
    scheme_name: Annotated[Text | None, Derived("the scheme code")] = None
    """The scheme as the office reads it on the card roster (e.g. 新农合, 城镇居民); the
    code in `scheme` stays what the API, the store and the data team's files use. One name
    per scheme code, and no two codes with the same name."""


class BlockingSpec(_Model):
    """Records agreeing on every key are candidate pairs."""

    model_config = ConfigDict(title="blocking rule")

    name: Annotated[Label | None, Derived("keys joined by +")] = None
    """Name shown in the summary and the report."""
    keys: Annotated[list[Annotated[str, Says("a standardised column name")]],
                    BeforeValidator(_one_or_list, json_schema_input_type=(
                        str | Annotated[list[str], Field(min_length=1)])),
                    Field(min_length=1)]
    """Standardised columns that must all be equal (see matchers/COLUMNS.md)."""
    max_block_size: int = Field(300, ge=2)
    """Blocks larger than this (a block of every 王伟 born in 1970) are split by the `refine`
    keys; a block still larger after all of them is skipped and counted."""
    max_pairs: int | None = Field(None, ge=1, examples=[5000])
    """Pairs one block may give (those the link type allows); a block with more is split as
    one over `max_block_size` is. Absent: only `max_block_size` limits a block."""
    refine: Annotated[list[Annotated[str, Says("a refining key")]]
                      | None, Derived(", ".join(DEFAULT_REFINE) + " (those the sources map)"),
                      BeforeValidator(_one_or_list, json_schema_input_type=(
                          str | list[str] | None))] = None
    """Keys that split a block over budget, in order: a sub-block still over budget is split
    by the next key. `birth_month` is taken from birth_date; a blank value is a sub-block of
    its own. `[]`: never split, skip."""


class ComparisonSpec(_Model):
    """One comparison: a registered matcher and its parameters."""

    model_config = ConfigDict(title="comparison", extra="allow")

    matcher: Annotated[str, Says("a matcher name")]
    """Registered matcher name (see the matcher table); the mapping's other keys are the
    matcher's parameters."""
    name: Annotated[Label | None, Derived("matcher's own")] = None
    """Name in the model, explanations and the w_<name> review columns."""
    field: Label | None = None
    """For the generic matchers: the (non-standard) field to compare; the matcher reads
    <field>_std."""


class Thresholds(_Model):
    """Match probabilities that split pairs into bands."""

    model_config = ConfigDict(title="thresholds")

    match: float = Field(0.95, gt=0, lt=1, examples=[0.95])
    """At or above: the same person."""
    review: float = Field(0.5, gt=0, lt=1, examples=[0.5])
    """At or above (and below match): a reviewer decides."""


class Survivorship(_Model):
    """How golden records pick each field."""

    model_config = ConfigDict(title="survivorship settings")

    precedence: Annotated[list[Annotated[str, Says("a source name")]] | None,
                          Derived("sources in config order")] = None
    """Sources in order of trust; a valid value from an earlier source wins."""


class Training(_Model):
    """Model training settings."""

    model_config = ConfigDict(title="training settings")

    u_sample_pairs: int = Field(500_000, ge=1000)
    """Random record pairs sampled to estimate u."""
    em_max_iterations: int = Field(100, ge=1, le=10_000)
    """Most EM iterations per session."""
    em_tolerance: float = Field(1e-6, gt=0, le=1, examples=[1e-6])
    """EM stops when no parameter moves more than this."""
    seed: int = Field(42, ge=0, le=2**32 - 1)
    """Seed of the u sample: same seed, same model."""
    tf_min_frequency: float = Field(1e-6, ge=0, le=1, examples=[1e-6])
    """Lowest name frequency the term-frequency adjustment uses."""
    m_from_decisions: bool | None = Field(None, deprecated="reviewers' decisions always sharpen m")
    """Accepted for older configs; reviewers' decisions always sharpen m."""


class Household(_Model):
    """Household linkage: households correspond across sources, members are assigned inside."""

    model_config = ConfigDict(title="household settings")

    enabled: bool = True
    """Link households as households (correspondences, member assignment, contradictions)."""
    penalty: float = Field(20.0, ge=0, le=100)
    """Bits taken off a pair its households contradict (twins, a namesake assigned elsewhere)."""
    relation_bits: float = Field(1.0, ge=0, le=10)
    """Bits for agreeing relation to the head (and birth order) when assigning members."""
    max_members: int = Field(30, ge=1, le=1000)
    """Households larger than this (collective households) are not assigned member by member."""
    milk_names: list[Text] = Field(default_factory=list, examples=[["狗剩", "丫头", "胖墩"]])
    """Milk and placeholder names, besides those learned from the data: name evidence neutral."""
    milk_name_min_households: int = Field(5, ge=1)
    """A given name becomes a milk name when infants of this many households carry it ..."""
    milk_name_ratio: float = Field(10.0, ge=1)
    """... at this many times its rate among adults."""
    bonus: float | None = Field(None, deprecated="the household prior is learned from the data")
    """Accepted for older configs; assigned pairs are weighed with the learned household prior."""


SPARK_SETTING = "spark."


def _spark_schema(schema: dict[str, Any]) -> None:
    schema.pop("additionalProperties", None)
    schema["patternProperties"] = {r"^spark\.": {"type": ["string", "number", "boolean"]}}
    schema["additionalProperties"] = False


class SparkSettings(_Model):
    """For engine spark: `master` and any `spark.*` setting, passed to Spark as configuration."""

    model_config = ConfigDict(title="Spark settings", extra="allow",
                              json_schema_extra=_spark_schema)
    __pydantic_extra__: dict[str, SparkValue]

    master: Annotated[Text | None, Derived("local[2], or the one spark-submit names")] = None
    """Spark master, e.g. spark://head-node:7077."""

    def unknown_keys(self) -> list[str]:
        """Extra keys that are not Spark settings (a misspelt ``master``, say)."""
        return [k for k in self.model_extra or {} if not k.startswith(SPARK_SETTING)]

    def settings(self) -> dict[str, Any]:
        """The mapping a Spark session is built from: ``master`` if given, then the settings."""
        return ({"master": self.master} if self.master else {}) | dict(self.model_extra or {})


# The fields the day's enrolment check reads besides the linkage's own (`contributions.columns`).
CHECK_FIELDS = ("receipt", "receipt_amount", "receipt_members", "tier", "subsidy", "enrol_kind",
                "paid_on", "amount", "clerk")
PAYS = ("personal", "personal_and_government")
Yuan = Annotated[float, Field(ge=0, le=1_000_000), Says("an amount in yuan")]


def _reduction(value: Any) -> Any:
    if value == "full":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1e6:
        raise ValueError("an amount in yuan (0 or more) or 'full'")
    return float(value)


Reduction = Annotated[Any, AfterValidator(_reduction), Says("an amount in yuan or 'full'"),
                      WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0},
                                                {"const": "full"}]})]


class SubsidyCategory(_Model):
    """A subsidy category (补助类别): what it takes off the personal contribution per tier."""

    model_config = ConfigDict(title="subsidy category")

    reduction: dict[Text, Reduction] = Field(examples=[{"一档": "full", "二档": 60}])
    """Tier -> yuan taken off the personal contribution, or `full` (nothing to pay). A tier
    not listed gets no reduction."""
    also: list[Text] = Field(default_factory=list, examples=[["重点优抚"]])
    """Other spellings of the category in the rosters."""
    min_age: int | None = Field(None, ge=0, le=150, examples=[60])
    """The category applies from this age in the contribution year (low-income elderly: 60)."""


class YearRules(_Model):
    """What one person pays in a year, by tier, subsidy category and kind of enrolment."""

    model_config = ConfigDict(title="contribution rules of a year")

    personal: dict[Text, Yuan] = Field(min_length=1, examples=[{"一档": 50, "二档": 120}])
    """Tier (as the roster writes it: 一档, 二档) -> personal contribution per person and year."""
    government: Yuan = 0
    """Government subsidy per person and year (a late enrollee pays it too)."""
    categories: dict[Text, SubsidyCategory] = Field(default_factory=dict)
    """Subsidy categories by the name the roster writes; a member with none pays in full."""
    late_pays: Literal[PAYS] = "personal_and_government"
    """What a late enrollee pays, with no category reduction."""
    newborn_pays: Literal[PAYS] = "personal"
    """What a newborn pays, in full (no category reduction)."""


class Contributions(_Model):
    """The day's enrolment check: the contribution rules each receipt is reconciled with."""

    model_config = ConfigDict(title="contribution rules")

    years: dict[Annotated[int, Field(ge=1900, le=2200), Says("a year")], YearRules] = Field(
        default_factory=dict)
    """Rules by year: a year's rules hold from that year until the next year given."""
    late: list[Text] = Field(default_factory=list, examples=[["逾期"]])
    """What `enrol_kind` says for a late enrollee (pays in full, waits three months)."""
    newborn: list[Text] = Field(default_factory=list, examples=[["新生儿"]])
    """What `enrol_kind` says for a newborn (pays in full, does not wait)."""
    columns: dict[SourceName, dict[Literal[CHECK_FIELDS], ColumnName]] = Field(
        default_factory=dict, examples=[{"ncms": {"receipt_amount": "收据金额"}}])
    """Per source, columns only the check reads (receipt_amount, receipt_members, enrol_kind,
    paid_on ...), so a file without them still links; `sources[].fields` may map them too."""


class JobSpec(_Model):
    """A job config as its YAML file writes it."""

    model_config = ConfigDict(title="hukou-linkage job config")

    job: JobName
    """Job name; the store keeps runs and entity ids per job."""
    description: str | None = None
    """Free text for people reading the config."""
    sources: list[SourceSpec] = Field(min_length=1)
    """The input files or tables."""
    link_type: Literal[LINK_TYPES] = "link_and_dedupe"
    """Pairs across sources and within them, across only, or within only."""
    blocking: list[BlockingSpec] = Field(min_length=1)
    """Blocking rules; candidate pairs are the union of their pairs. Blank keys never block."""
    comparisons: list[ComparisonSpec] = Field(min_length=1)
    """Comparisons, each an ordered list of levels from a registered matcher."""
    thresholds: _section(Thresholds) = Field(default_factory=Thresholds)
    """Match probabilities that split pairs into bands."""
    survivorship: _section(Survivorship) = Field(default_factory=Survivorship)
    """How golden records pick each field."""
    output: Annotated[FolderPath | None, Derived("out/<job>")] = None
    """Output folder, relative to the config's folder."""
    store: Annotated[StoreURL | None, Derived("sqlite:///<output>/linkage.sqlite")] = None
    """SQLAlchemy URL of the store (SQLite file or PostgreSQL)."""
    state_dir: Annotated[FolderPath | None, Derived("<output>/state")] = None
    """Folder of the kept standardised state (the job's files in its subfolder `<job>`): each
    input file's records read and standardised once, as Parquet keyed by the file's content,
    the settings that read it and the standardising code, so a run over unchanged files
    standardises nothing; relative to the config's folder. Deleting it only costs the next run
    the standardising."""
    training: _section(Training) = Field(default_factory=Training)
    """Model training settings."""
    household: _section(Household) = Field(default_factory=Household)
    """Household context: members of one household match together."""
    chunk_size: int = Field(1_000_000, ge=1000)
    """Candidate pairs compared per chunk (memory bound)."""
    max_candidate_pairs: Annotated[int | None, Field(ge=1000),
                                   Derived("available memory / 200 bytes")] = None
    """Most candidate pairs the blocking rules may give together; a run whose estimate is
    larger stops before comparing, naming the rule to refine (`linkage blocking` shows the
    estimate)."""
    keep_runs: int | None = Field(None, ge=1)
    """How many of the job's latest complete runs keep their whole state in the store
    (membership and golden records, which `linkage history`, `export` and the check master read
    by run); each run then deletes the versions only older runs read. Unset: every run stays
    readable (a store grows by what each run changes, not by a copy of the state)."""
    review_url: Annotated[str | None, Field(pattern=r"^https?://[^\s?#]+$")] = None
    """Address of this job's review app (`linkage serve`), e.g. http://10.1.2.3:8000: the run
    report links its review pairs there."""
    engine: Literal[ENGINES] = "local"
    """`linkage run --engine` overrides it."""
    spark: _section(SparkSettings) = Field(default_factory=SparkSettings)
    """For engine spark: `master` (local[2] if absent) and any `spark.*` setting."""
    contributions: _section(Contributions) = Field(default_factory=Contributions)
    """Contribution rules by year, for the day's enrolment check (`linkage daily`)."""


# --------------------------------------------------------------------------- matcher parameters

COMPARISON_KEYS = tuple(ComparisonSpec.model_fields)  # matcher, name, field
COLUMN = "column"  # the factory parameter a comparison's `field` fills (with <field>_std)


def _factory(matcher: str) -> Any:
    from matchers import registered

    return registered().get(matcher)


@functools.cache
def _parameter_fields(factory: Any) -> dict[str, tuple[Any, Any]]:
    """A matcher factory's keyword parameters as pydantic fields, from its signature: the
    signature is where each default lives. ``name`` is the comparison's own key, ``**_``
    accepts nothing, and ``column`` is optional because a comparison's ``field`` gives it."""
    try:
        hints = typing.get_type_hints(factory, include_extras=True)
    except (NameError, TypeError):
        hints = {}
    fields: dict[str, tuple[Any, Any]] = {}
    for p in inspect.signature(factory).parameters.values():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in COMPARISON_KEYS:
            continue
        annotation = hints.get(p.name, Any)
        if p.name == COLUMN and p.default is p.empty:
            fields[p.name] = (Annotated[annotation | None, Derived("<field>_std")], None)
        else:
            fields[p.name] = (annotation, ... if p.default is p.empty else p.default)
    return fields


def _requires_column(factory: Any) -> bool:
    p = inspect.signature(factory).parameters.get(COLUMN)
    return p is not None and p.default is p.empty


@functools.cache
def _parameters_model(factory: Any) -> type[_Model]:
    return create_model(f"{factory.__name__}_parameters", __base__=_Model,
                        **_parameter_fields(factory))


def matcher_parameters(matcher: str) -> type[BaseModel]:
    """The model of a registered matcher's parameters (KeyError if no such matcher)."""
    factory = _factory(matcher)
    if factory is None:
        raise KeyError(matcher)
    return _parameters_model(factory)


def _comparison_model(matcher: str) -> type[BaseModel]:
    """A comparison with this matcher, as the JSON Schema offers it: the comparison's own keys
    (``field`` only where the matcher compares a column) and the matcher's parameters."""
    factory = _factory(matcher)
    own = {k: (f.annotation, f) for k, f in ComparisonSpec.model_fields.items()
           if k != "field" or COLUMN in _parameter_fields(factory)}
    own["matcher"] = (Literal[matcher], Field(description=ComparisonSpec.model_fields["matcher"]
                                              .description))
    doc = (factory.__doc__ or "").strip().split("\n\n")[0]
    return create_model(matcher, __base__=_Model, __doc__=" ".join(doc.split()) or None,
                        **own, **_parameter_fields(factory))


# --------------------------------------------------------------------------- the validated job


@dataclass(frozen=True)
class SourceConfig:
    name: str
    role: str
    record_id: str
    fields: dict[str, str]
    path: Path | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None
    change_column: str | None = None  # a database source's change-tracking column
    encoding: str = SourceSpec.model_fields["encoding"].default
    sheet: str | None = None
    scheme: str | None = None
    scheme_name: str | None = None

    @property
    def location(self) -> str:
        """The file, or the database (password hidden: this text reaches rejects and logs)."""
        if self.path:
            return str(self.path)
        return f"{_safe_url(self.url)} ({'table ' + repr(self.table) if self.table else 'query'})"


def _safe_url(url: str | None) -> str:
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as a placeholder, never raw
        return "<database url>"


@dataclass(frozen=True)
class BlockingRule:
    name: str
    keys: tuple[str, ...]
    max_block_size: int
    refine: tuple[str, ...] = ()  # keys that split a block over budget, in order
    max_pairs: int | None = None  # pairs one block may give (None: only its size counts)
    link_type: str = "link_and_dedupe"  # the job's: which pairs of a block count


@dataclass(frozen=True)
class ComparisonConfig:
    matcher: str
    name: str | None
    field: str | None
    params: dict[str, Any]  # as the config gives them; the factory's defaults fill the rest

    @property
    def label(self) -> str:
        """What tells this comparison from the job's others."""
        return self.name or self.field or self.matcher


@dataclass(frozen=True)
class JobConfig:
    """A job ready to run: paths resolved, defaults that depend on other keys applied."""

    job: str
    path: Path
    sources: tuple[SourceConfig, ...]
    blocking: tuple[BlockingRule, ...]
    comparisons: tuple[ComparisonConfig, ...]
    match_threshold: float
    review_threshold: float
    link_type: str
    precedence: tuple[str, ...]
    output: Path
    store: str
    training: Training
    household: Household
    chunk_size: int
    engine: str
    spark: SparkSettings
    spec: JobSpec  # the config as written, validated
    max_candidate_pairs: int | None = None  # None: derived from the memory available
    contributions: Contributions | None = None  # None: no rules (the daily check says so)
    state_dir: Path | None = None  # None: <output>/state (the folder a run writes to)

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.sources if s.name == name)

    @property
    def authority_sources(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sources if s.role == "authority")

    @property
    def scheme_names(self) -> dict[str, str]:
        """Scheme code -> the name the office reads (`sources[].scheme_name`, else the code),
        for every insurance source's scheme (the source name where it gives none)."""
        out: dict[str, str] = {}
        for s in self.sources:
            if s.role == "insurance":
                code = s.scheme or s.name
                if s.scheme_name or code not in out:  # a source that names it wins
                    out[code] = s.scheme_name or code
        return out


# --------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error: by
    default the second silently wins, and a job would run with a setting nobody meant."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class explains it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found the key {key!r} twice (first on line {first.line + 1}); keep one",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def node_lines(self, root: yaml.Node) -> dict[tuple, int]:
        """Line (1-based) of every key and list item, by its path in the constructed data:
        ``("blocking", 3, "max_block_size") -> 42``. Call after constructing the document
        (merge keys are flattened into their mappings by then)."""
        lines = {(): root.start_mark.line + 1}
        stack, seen = [(root, ())], set()
        while stack:
            node, path = stack.pop()
            if id(node) in seen:  # an alias: recorded where its anchor is (and no cycles)
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if not isinstance(key_node, yaml.ScalarNode):
                        continue
                    key = self.construct_object(key_node)
                    lines.setdefault((*path, key), key_node.start_mark.line + 1)
                    stack.append((value_node, (*path, key)))
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    lines.setdefault((*path, i), item.start_mark.line + 1)
                    stack.append((item, (*path, i)))
        return lines


def _read_yaml(path: Path) -> tuple[Any, dict[tuple, int]]:
    with path.open(encoding="utf-8") as stream:  # a stream: YAML errors name the file
        loader = _Loader(stream)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, {}
            return loader.construct_document(node), loader.node_lines(node)
        finally:
            loader.dispose()


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> JobConfig:
    """Read and validate a job config; relative paths are taken from the config's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw, lines = _read_yaml(path)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start}); save it as UTF-8") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, "
                          f"got {type(raw).__name__}")
    if overrides:
        raw = {**raw, **overrides}
        lines = {p: n for p, n in lines.items() if not p or p[0] not in overrides}
    return parse_config(raw, path, lines)


def parse_config(raw: dict[str, Any], path: Path,
                 lines: Mapping[tuple, int] | None = None) -> JobConfig:
    """Validate a config mapping (already parsed from YAML). ``lines`` (from the loader) lets
    errors name the line of the file."""
    problems = _Problems(raw, path, lines or {})
    try:
        spec = JobSpec.model_validate(raw)
    except ValidationError as exc:
        problems.pydantic(exc, JobSpec)
        spec = None
    comparisons = raw.get("comparisons") if isinstance(raw, dict) else None
    for i, c in enumerate(comparisons if isinstance(comparisons, list) else []):
        _check_parameters(c, ("comparisons", i), problems)
    problems.raise_any()
    assert spec is not None
    return _resolve_job(spec, path, problems)


def _check_parameters(raw: Any, loc: tuple, problems: _Problems) -> None:
    """A comparison's parameters against its matcher's signature."""
    if not isinstance(raw, dict) or not isinstance(raw.get("matcher"), str):
        return  # the comparison's own model says what is wrong
    from matchers import registered

    factories = registered()
    matcher = raw["matcher"]
    factory = factories.get(matcher)
    if factory is None:
        close = difflib.get_close_matches(matcher, sorted(factories), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.value((*loc, "matcher"), matcher,
                       f"one of {', '.join(sorted(factories))}{hint}")
        return
    where = f"matcher {matcher!r}"
    model = _parameters_model(factory)
    allowed = [*COMPARISON_KEYS, *model.model_fields]
    if COLUMN not in model.model_fields:
        allowed.remove("field")
        if raw.get("field") is not None:
            problems.unknown((*loc, "field"), allowed, f"{where}, which reads its own columns")
    params = {k: v for k, v in raw.items() if k not in COMPARISON_KEYS}
    try:
        model.model_validate(params)
    except ValidationError as exc:
        problems.pydantic(exc, model, loc, allowed=allowed, context=where)
    if _requires_column(factory) and raw.get("field") is None and COLUMN not in params:
        problems.missing((*loc, "field"), f"the field to compare ({where} reads <field>_std)")


def _resolve_job(spec: JobSpec, path: Path, problems: _Problems) -> JobConfig:
    """The checks that involve several keys, then paths and derived defaults."""
    base = path.parent
    names = [s.name for s in spec.sources]
    sources = []
    for i, s in enumerate(spec.sources):
        if s.name in names[:i]:
            problems.value(("sources", i, "name"), s.name, "a source name no other source has")
        sources.append(_resolve_source(s, ("sources", i), base, problems))
    _check_scheme_names(spec.sources, problems)
    if spec.link_type == "link_only" and len(sources) < 2:
        problems.value(("link_type",), spec.link_type, "at least two sources for link_only")

    comparisons = [ComparisonConfig(c.matcher, c.name, c.field, dict(c.model_extra or {}))
                   for c in spec.comparisons]
    labels = [c.label for c in comparisons]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            problems.value(("comparisons", i), label,
                           "each comparison once (give repeats a distinct 'name')")

    match, review = spec.thresholds.match, spec.thresholds.review
    if review > match:
        problems.value(("thresholds", "review"), review, f"at most thresholds.match ({match})")

    precedence = tuple(dict.fromkeys(spec.survivorship.precedence or names))
    unknown = [p for p in precedence if p not in names]
    if unknown:
        problems.value(("survivorship", "precedence"), unknown, f"source names among {names}")
    precedence += tuple(n for n in names if n not in precedence)

    for key in spec.spark.unknown_keys():
        problems.unknown(("spark", key), ["master", "spark.*"],
                         "Spark settings, which are `master` and spark.* keys")
    problems.raise_any()

    output = _resolve(base, spec.output or f"out/{spec.job}")
    store = spec.store or "sqlite:///" + str(output / "linkage.sqlite")
    if store.startswith("sqlite:///") and not store.startswith("sqlite:////"):
        rel = store[len("sqlite:///"):]
        if rel and rel != ":memory:":
            store = "sqlite:///" + str(_resolve(base, rel))

    state_dir = _resolve(base, spec.state_dir) if spec.state_dir is not None else None
    if state_dir is not None and state_dir.exists() and not state_dir.is_dir():
        problems.value(("state_dir",), str(state_dir), "a folder (this path is a file)")
    elif state_dir is not None and state_dir == output:
        problems.value(("state_dir",), str(state_dir),
                       "a folder of its own, not the output folder (e.g. <output>/state)")

    for i, c in enumerate(comparisons):
        _check_comparison(c, ("comparisons", i), problems)
    problems.raise_any()

    return JobConfig(
        job=spec.job,
        path=path,
        sources=tuple(sources),
        blocking=_blocking_rules(spec, problems),
        comparisons=tuple(comparisons),
        match_threshold=float(match),
        review_threshold=float(review),
        link_type=spec.link_type,
        precedence=precedence,
        output=output,
        store=store,
        training=spec.training,
        household=spec.household,
        chunk_size=spec.chunk_size,
        engine=spec.engine,
        spark=spec.spark,
        spec=spec,
        max_candidate_pairs=spec.max_candidate_pairs,
        contributions=_checked_contributions(spec, problems),
        state_dir=state_dir,
    )


def _checked_contributions(spec: JobSpec, problems: _Problems) -> Contributions:
    """The contribution rules, once the keys that depend on each other agree: columns of
    sources the job has, each field in one place, reductions only in tiers the year prices
    and never above the tier's contribution, each spelling naming one category."""
    rules = spec.contributions
    mapped = {s.name: s.fields for s in spec.sources}
    for name, columns in rules.columns.items():
        if name not in mapped:
            problems.value(("contributions", "columns", name), name,
                           f"a source of the job ({', '.join(mapped)})", shown=repr(name))
            continue
        for field in sorted(set(columns) & set(mapped[name])):
            problems.value(("contributions", "columns", name, field), columns[field],
                           f"a field mapped once: sources[].fields of '{name}' maps {field!r} "
                           f"to {mapped[name][field]!r} already")
    for word in sorted(set(rules.late) & set(rules.newborn)):
        problems.value(("contributions", "newborn"), word, "words that late does not list")
    for year, year_rules in rules.years.items():
        spelled: dict[str, str] = {}
        for category, rule in year_rules.categories.items():
            loc = ("contributions", "years", year, "categories", category)
            for tier, off in rule.reduction.items():
                if tier not in year_rules.personal:
                    problems.value((*loc, "reduction", tier), off, "a tier that personal prices ("
                                   + ", ".join(year_rules.personal) + ")", shown=repr(tier))
                elif off != "full" and off > year_rules.personal[tier]:
                    most = year_rules.personal[tier]
                    problems.value((*loc, "reduction", tier), off,
                                   f"at most the {tier} contribution ({most:g}) or 'full'")
            for word in (category, *rule.also):
                if spelled.setdefault(word, category) != category:
                    problems.value((*loc, "also"), word,
                                   f"a spelling no other category uses ({spelled[word]} has it)")
    problems.raise_any()
    return rules


def _blocking_rules(spec: JobSpec, problems: _Problems) -> tuple[BlockingRule, ...]:
    """The rules as blocking runs them: a rule without `refine` gets the default keys the
    mapped fields provide; a `refine` key no mapped field provides is an error."""
    available = refining_columns({f for s in spec.sources for f in s.fields})
    rules = []
    for i, r in enumerate(spec.blocking):
        if r.refine is None:
            refine = tuple(k for k in DEFAULT_REFINE if k in available and k not in r.keys)
        else:
            refine = tuple(dict.fromkeys(r.refine))
            missing = [k for k in refine if k not in available]
            if missing:
                problems.value(("blocking", i, "refine"), missing,
                               "keys the mapped fields provide: " + ", ".join(sorted(available)))
        rules.append(BlockingRule(r.name or "+".join(r.keys), tuple(r.keys), r.max_block_size,
                                  refine, r.max_pairs, spec.link_type))
    problems.raise_any()
    return tuple(rules)


def _resolve(base: Path, value: Any) -> Path:
    p = Path(str(value))
    return p if p.is_absolute() else (base / p).resolve()


def _resolve_source(s: SourceSpec, loc: tuple, base: Path, problems: _Problems) -> SourceConfig:
    path = None
    if bool(s.path) == bool(s.url):
        problems.value(loc, {"path": s.path, "url": s.url and _safe_url(s.url)},
                       "exactly one of 'path' (a file) or 'url' (SQLAlchemy)")
    if s.path is not None:
        path = _resolve(base, s.path)
        if path.suffix.lower() not in {".csv", ".txt", ".xlsx", ".xlsm"}:
            problems.value((*loc, "path"), str(path), "a .csv or .xlsx file")
        elif s.sheet and path.suffix.lower() not in {".xlsx", ".xlsm"}:
            problems.value((*loc, "sheet"), s.sheet, "no 'sheet' for a CSV file (only .xlsx)")
    if s.url is not None and bool(s.table) == bool(s.query):
        problems.value(loc, _safe_url(s.url), "exactly one of 'table' or 'query' beside 'url'")
    if s.change_column is not None and s.url is None:
        problems.value((*loc, "change_column"), s.change_column,
                       "no change_column for a file (only beside 'url': a file is known by "
                       "its content)")
    return SourceConfig(name=s.name, role=s.role, record_id=s.record_id, fields=dict(s.fields),
                        path=path, url=s.url, table=s.table, query=s.query,
                        change_column=s.change_column, encoding=s.encoding,
                        sheet=s.sheet, scheme=s.scheme, scheme_name=s.scheme_name)


def _check_scheme_names(sources: Sequence[SourceSpec], problems: _Problems) -> None:
    """Each scheme code shows as one name and each name means one code: the office must
    never read two schemes as one, nor one scheme under two names."""
    name_of: dict[str, tuple[str, int]] = {}  # code -> (name, source given on)
    code_of: dict[str, str] = {}
    for i, s in enumerate(sources):
        if s.scheme_name is None:
            continue
        loc = ("sources", i, "scheme_name")
        if s.role != "insurance":
            problems.value(loc, s.scheme_name, "no 'scheme_name' on a source of role "
                           f"{s.role!r} (only insurance sources have a scheme)")
            continue
        code = s.scheme or s.name
        first = name_of.setdefault(code, (s.scheme_name, i))
        if first[0] != s.scheme_name:
            problems.value(loc, s.scheme_name, f"{first[0]!r}, the name sources[{first[1]}] "
                           f"gives the scheme {code!r} (one name per scheme)")
        other = code_of.setdefault(s.scheme_name, code)
        if other != code:
            problems.value(loc, s.scheme_name, f"a name of its own: scheme {other!r} is "
                           f"already called {s.scheme_name!r}")


def _check_comparison(comparison: ComparisonConfig, loc: tuple, problems: _Problems) -> None:
    """Build the matcher once so that a wrong level (or a value only the matcher can judge)
    is a config error, not a traceback in the middle of a run."""
    from linkage.core.compare import build_comparisons

    try:
        build_comparisons((comparison,))
    except (KeyError, TypeError, ValueError) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        params = ", ".join(sorted(comparison.params)) or "none"
        problems.add(loc, f"config key '{problems.where(loc)}' (matcher {comparison.matcher!r}, "
                          f"parameters: {params}): {detail}")


# --------------------------------------------------------------------------- error messages


class _Problems:
    """Collects what is wrong with a config, each said with its key and (from a file) its line;
    ``raise_any`` raises them as one ConfigError."""

    def __init__(self, raw: Any, path: Path, lines: Mapping[tuple, int]) -> None:
        self.raw, self.path, self.lines = raw, path, lines
        self.found: dict[str, int] = {}  # message -> line (0: none), each message once

    def add(self, loc: tuple, text: str) -> None:
        line = next((self.lines[loc[:n]] for n in range(len(loc), 0, -1)
                     if loc[:n] in self.lines), 0)
        where = f"{self.path} line {line}: " if line else f"{self.path}: " if self.lines else ""
        self.found.setdefault(where + text, line)

    def raise_any(self) -> None:
        """Raise what was found, in the order of the file's lines."""
        if self.found:
            found = sorted(self.found, key=self.found.__getitem__)
            raise ConfigError("\n".join(found[:20]))

    def where(self, loc: tuple) -> str:
        """``sources[0] (police).record_id``: a source is named once its name is known."""
        out, node = "", self.raw
        for n, part in enumerate(loc):
            if isinstance(part, int) and not isinstance(node, dict):
                out += f"[{part}]"
                node = node[part] if isinstance(node, list) and part < len(node) else None
                name = node.get("name") if isinstance(node, dict) else None
                if (loc[0] == "sources" and n == 1 and isinstance(name, str)
                        and name.isprintable() and loc[2:3] != ("name",)):
                    out += f" ({name})"
            else:
                node = node.get(part) if isinstance(node, dict) else None
                part = part if isinstance(part, str) and part.isprintable() else repr(part)
                out += f".{part}" if out else part
        return out or "top level"

    def value(self, loc: tuple, value: Any, expected: str, *, shown: str | None = None) -> None:
        shown = shown or _shown(value)
        self.add(loc, f"config key '{self.where(loc)}': got {shown}; expected {expected}")

    def missing(self, loc: tuple, expected: str) -> None:
        self.add(loc, f"config key '{self.where(loc)}' is missing; expected {expected}")

    def unknown(self, loc: tuple, allowed: list[str], context: str = "") -> None:
        key = loc[-1]
        close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1, cutoff=0.6)
        under = f"under {self.where(loc[:-1])}" if loc[:-1] else "at the top level"
        self.add(loc, f"unknown key {key!r} {under}{' (' + context + ')' if context else ''}"
                      f"{f' (did you mean {close[0]!r}?)' if close else ''}"
                      f"{'; allowed: ' + ', '.join(map(str, allowed)) if allowed else ''}")

    def pydantic(self, exc: ValidationError, model: type[BaseModel], prefix: tuple = (),
                 allowed: list[str] | None = None, context: str = "") -> None:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            kind = error["type"]
            if loc[-1:] == ("[key]",):  # a mapping's key is wrong, not its value
                slot = _slot(model, loc[:-1], key=True)
                self.value((*prefix, *loc[:-2]), None, _expected(slot, error) if slot
                           else error["msg"], shown=f"the key {_shown(error['input'])}")
                continue
            full = (*prefix, *loc)
            if kind == "invalid_key":  # a key that is not text (`5: x`)
                self.unknown(full, [], context)
                continue
            if kind == "extra_forbidden":
                parent = _slot(model, loc[:-1])
                keys = allowed if not loc[:-1] and allowed else (
                    list(parent[0].model_fields) if parent and _is_model(parent[0]) else [])
                self.unknown(full, keys, context if not loc[:-1] else "")
                continue
            slot = _slot(model, loc)
            if kind == "missing":
                self.missing(full, _describe(*slot) if slot else "a value")
                continue
            value = error["input"]
            if (slot and any(isinstance(m, Says) and m.secret for m in _metadata(slot))
                    and isinstance(value, str) and "@" in value):  # user:password@host
                value = _safe_url(value)
            self.value(full, value, _expected(slot, error) if slot else error["msg"])


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _expected(slot: tuple, error: dict) -> str:
    if error["type"] == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return _describe(*slot)


# A slot is what a place in the config holds: (annotation, metadata, examples).
Slot = tuple[Any, list, list]


def _unwrap(tp: Any) -> tuple[Any, list]:
    """Strip Annotated and Optional, collecting the Annotated metadata."""
    meta: list = []
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            meta += tp.__metadata__
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            rest = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp, meta
            tp = rest[0]
        else:
            return tp, meta


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _metadata(slot: Slot) -> list:
    tp, meta, _ = slot
    out = []
    for m in [*meta, *_unwrap(tp)[1]]:
        out += [m, *m.metadata] if isinstance(m, FieldInfo) else [m]
    return out


def _slot(model: type[BaseModel], loc: tuple, key: bool = False) -> Slot | None:
    """What the model says belongs at ``loc`` (None where it does not know)."""
    slot: Slot = (model, [], [])
    for n, part in enumerate(loc):
        tp, _ = _unwrap(slot[0])
        origin = typing.get_origin(tp)
        if _is_model(tp) and isinstance(part, str) and part in tp.model_fields:
            info = tp.model_fields[part]
            slot = (info.annotation, list(info.metadata), list(info.examples or []))
        elif origin is list and isinstance(part, int):
            slot = (typing.get_args(tp)[0], [], [])
        elif origin is dict:
            key_type, value_type = typing.get_args(tp)
            slot = (key_type if key and n == len(loc) - 1 else value_type, [], [])
        else:
            return None
    return slot


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _bare(phrase: str) -> str:
    return re.sub(r"^(a|an|the) ", "", phrase)


def _describe(tp: Any, meta: list = (), examples: list = (), *, article: bool = True) -> str:
    """A kind of value in words: 'an integer of at least 1000', 'one of local, spark', 'a list
    of sources (at least one)'. Errors say it after 'expected'; the reference shows it as the
    key's type."""
    meta = _metadata((tp, list(meta), []))
    tp, _ = _unwrap(tp)
    says = next((m for m in meta if isinstance(m, Says)), None)
    bound = {name: getattr(m, name) for m in meta for name in ("gt", "ge", "lt", "le", "min_length")
             if getattr(m, name, None) is not None}
    origin = typing.get_origin(tp)
    if says is not None:
        text = says.phrase if article else _bare(says.phrase)
    elif origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    elif tp is bool:
        return "true or false"
    elif tp in (int, float):
        noun = "integer" if tp is int else "number"
        gt, ge, lt, le = (bound.get(k) for k in ("gt", "ge", "lt", "le"))
        if gt is not None and lt is not None:
            noun += f" strictly between {gt} and {lt}"
        elif ge is not None and le is not None:
            noun += f" from {ge} to {le}"
        else:
            if gt == 0:
                noun = "positive " + noun
            elif gt is not None:
                noun += f" greater than {gt}"
            if ge is not None:
                noun += f" of at least {ge}"
            if le is not None:
                noun += f" of at most {le}"
            if lt is not None:
                noun += f" less than {lt}"
        text = _article(noun) if article else noun
    elif tp is str:
        text = "text"
    elif origin is list:
        text = ("a list of " if article else "list of ") + _plural(typing.get_args(tp)[0])
        if bound.get("min_length"):
            text += " (at least one)"
    elif origin is dict or tp is dict:
        text = "a mapping" if article else "mapping"
    elif _is_model(tp):
        required = [k for k, f in tp.model_fields.items() if f.is_required()]
        title = tp.model_config.get("title") or tp.__name__
        text = f"mapping with {', '.join(required)}" if required else f"mapping of {title}"
        text = _article(text) if article else text
    else:
        text = "a value" if article else "value"
    if examples and article:
        text += f", such as {examples[0]}"
    return text


def _plural(item: Any) -> str:
    tp, _ = _unwrap(item)
    says = next((m for m in _metadata((item, [], [])) if isinstance(m, Says)), None)
    if says is not None:
        return _bare(says.phrase) + "s"
    if _is_model(tp):
        return (tp.model_config.get("title") or tp.__name__) + "s"
    return {str: "text values", int: "integers", float: "numbers"}.get(tp, "values")


# --------------------------------------------------------------------------- reference and schema


@dataclass(frozen=True)
class KeyDoc:
    """One key of the reference: its kind in words, its default and what it does."""

    kind: str
    default: str  # 'required', '' (none), or the default as a config would write it
    description: str


def _default(info: FieldInfo, meta: list) -> str:
    if info.is_required():
        return "required"
    derived = next((m for m in meta if isinstance(m, Derived)), None)
    if derived is not None:
        return derived.text
    if info.default_factory is not None or info.default is None:
        return ""
    if isinstance(info.default, bool):
        return str(info.default).lower()
    return str(info.default)


def _doc(text: str | None) -> str:
    return " ".join((text or "").split())


def model_keys(model: type[BaseModel], prefix: str = "") -> dict[str, KeyDoc]:
    """Every key a model accepts, dotted (``sources[].name``), with sub-mappings' keys after
    their own row."""
    out: dict[str, KeyDoc] = {}
    for name, info in model.model_fields.items():
        key = prefix + name
        slot = (info.annotation, list(info.metadata), list(info.examples or []))
        meta = _metadata(slot)
        out[key] = KeyDoc(_describe(info.annotation, info.metadata, article=False),
                          _default(info, meta), _doc(info.description))
        tp, _ = _unwrap(info.annotation)
        if _is_model(tp):
            out |= model_keys(tp, key + ".")
        elif typing.get_origin(tp) is list and _is_model(_unwrap(typing.get_args(tp)[0])[0]):
            out |= model_keys(_unwrap(typing.get_args(tp)[0])[0], key + "[].")
        elif typing.get_origin(tp) is dict and _is_model(_unwrap(typing.get_args(tp)[1])[0]):
            out |= model_keys(_unwrap(typing.get_args(tp)[1])[0], key + ".<key>.")
    return out


def config_keys() -> dict[str, KeyDoc]:
    """Every key of a job config (matcher parameters aside: see :func:`matcher_parameters`)."""
    return model_keys(JobSpec)


class _SchemaGenerator(GenerateJsonSchema):
    def field_title_should_be_set(self, schema) -> bool:
        return False  # "U Sample Pairs" says nothing the key does not


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a job config, each comparison's parameters those of its matcher."""
    from matchers import registered

    variants = tuple(_comparison_model(m) for m in sorted(registered()))
    one_of = Union[variants]  # noqa: UP007 - a union of classes made at run time
    item = Annotated[one_of, Field(discriminator="matcher")]
    info = JobSpec.model_fields["comparisons"]
    model = create_model("JobFile", __base__=JobSpec, comparisons=(
        list[item], Field(min_length=1, description=info.description)))
    schema = model.model_json_schema(schema_generator=_SchemaGenerator)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **_one_line(schema)}


def _one_line(node: Any) -> Any:
    """Descriptions on one line, as editors show them (docstrings wrap at 100 columns)."""
    if isinstance(node, dict):
        return {k: _doc(v) if k == "description" and isinstance(v, str) else _one_line(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_one_line(v) for v in node]
    return node
