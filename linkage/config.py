"""Job configs: YAML in, a validated JobConfig out, before any work starts.

Every error names the key, the value found and what would be right, so a data team can fix a
config without reading code.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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


class ConfigError(ValueError):
    """A job config that cannot run; the message says which key and how to fix it."""


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
    encoding: str = "auto"
    sheet: str | None = None
    scheme: str | None = None

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


def _valid_url(url: str) -> bool:
    import sqlalchemy as sa

    try:
        sa.engine.make_url(url)
        return True
    except Exception:  # noqa: BLE001 - any parse failure means "not a URL"
        return False


@dataclass(frozen=True)
class BlockingRule:
    name: str
    keys: tuple[str, ...]
    max_block_size: int


@dataclass(frozen=True)
class ComparisonConfig:
    matcher: str
    name: str | None
    field: str | None
    params: dict[str, Any]


@dataclass(frozen=True)
class JobConfig:
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
    training: dict[str, Any] = field(default_factory=dict)
    household: dict[str, Any] = field(default_factory=dict)
    chunk_size: int = 1_000_000
    engine: str = "local"
    spark: dict[str, Any] = field(default_factory=dict)  # e.g. master, spark.* settings
    raw: dict[str, Any] = field(default_factory=dict)

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.sources if s.name == name)

    @property
    def authority_sources(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sources if s.role == "authority")


ENGINES = ("local", "spark")
DEFAULT_TRAINING = {
    "u_sample_pairs": 500_000,
    "em_max_iterations": 100,
    "em_tolerance": 1e-6,
    "seed": 42,
    "tf_min_frequency": 1e-6,
}
DEFAULT_HOUSEHOLD = {"enabled": True, "bonus": 2.0, "penalty": 2.0}

# Every key a job config may hold: dotted path -> (type, default, description). The parser's
# unknown-key checks take the allowed keys from here and `python -m linkage.docs` prints it as
# the README's config reference, so what is documented is what is accepted.
CONFIG_SCHEMA: dict[str, tuple[str, str, str]] = {
    "job": ("text", "required", "Job name; the store keeps runs and entity ids per job."),
    "description": ("text", "", "Free text for people reading the config."),
    "sources": ("list", "required", "The input files or tables, each a mapping of the "
                "`sources[].` keys."),
    "sources[].name": ("text", "required", "Source name, unique in the job (e.g. police, ncms)."),
    "sources[].role": ("text", "insurance", f"One of {', '.join(ROLES)}: `authority` (the police "
                       "registry) decides who exists; `insurance` rosters are checked against it."),
    "sources[].record_id": ("text", "required", "Column holding the record's own id (unique in "
                            "the source)."),
    "sources[].fields": ("mapping", "required", "Standard field -> column of the source. "
                         f"Standard fields: {', '.join(STANDARD_FIELDS)}; any other "
                         "lower_snake_case name is carried as text (e.g. tier, receipt, clerk)."),
    "sources[].path": ("path", "", "A .csv or .xlsx file, relative to the config's folder; give "
                       "`path` or `url`."),
    "sources[].url": ("text", "", "SQLAlchemy URL of a database to read instead of a file."),
    "sources[].table": ("text", "", "Table to read beside `url`."),
    "sources[].query": ("text", "", "SQL query to read beside `url` (instead of `table`)."),
    "sources[].encoding": ("text", "auto", f"One of {', '.join(ENCODINGS)}; `auto` detects "
                           "UTF-8, GBK and GB18030."),
    "sources[].sheet": ("text", "the only sheet holding data", "Worksheet of an .xlsx file; "
                        "required when several sheets hold data."),
    "sources[].scheme": ("text", "source name", "Insurance scheme the outputs name (e.g. NCMS, "
                         "URBAN)."),
    "link_type": ("text", "link_and_dedupe", f"One of {', '.join(LINK_TYPES)}: pairs across "
                  "sources and within them, across only, or within only."),
    "blocking": ("list", "required", "Blocking rules; candidate pairs are the union of their "
                 "pairs. Blank keys never block."),
    "blocking[].name": ("text", "keys joined by +", "Name shown in the summary and the report."),
    "blocking[].keys": ("list of text", "required", "Standardised columns that must all be equal "
                        "(see matchers/COLUMNS.md)."),
    "blocking[].max_block_size": ("integer", "300", "Blocks larger than this are skipped and "
                                  "counted (a block of every 王伟 born in 1970)."),
    "comparisons": ("list", "required", "Comparisons, each an ordered list of levels from a "
                    "registered matcher (see the matcher table)."),
    "comparisons[].matcher": ("text", "required", "Registered matcher name; other keys of the "
                              "mapping are passed to it as parameters."),
    "comparisons[].name": ("text", "matcher's own", "Name in the model, explanations and the "
                           "w_<name> review columns."),
    "comparisons[].field": ("text", "", "For the generic matchers: the (non-standard) field to "
                            "compare; the matcher reads <field>_std."),
    "thresholds": ("mapping", "", "Match probabilities that split pairs into bands."),
    "thresholds.match": ("probability", "0.95", "At or above: the same person."),
    "thresholds.review": ("probability", "0.5", "At or above (and below match): a reviewer "
                          "decides."),
    "survivorship": ("mapping", "", "How golden records pick each field."),
    "survivorship.precedence": ("list of text", "sources in config order", "Sources in order of "
                                "trust; a valid value from an earlier source wins."),
    "output": ("path", "out/<job>", "Output folder, relative to the config's folder."),
    "store": ("text", "sqlite:///<output>/linkage.sqlite", "SQLAlchemy URL of the store (SQLite "
              "file or PostgreSQL)."),
    "training": ("mapping", "", "Model training settings."),
    "training.u_sample_pairs": ("integer", str(DEFAULT_TRAINING["u_sample_pairs"]),
                                "Random record pairs sampled to estimate u."),
    "training.em_max_iterations": ("integer", str(DEFAULT_TRAINING["em_max_iterations"]),
                                   "Most EM iterations per session."),
    "training.em_tolerance": ("number", str(DEFAULT_TRAINING["em_tolerance"]),
                              "EM stops when no parameter moves more than this."),
    "training.seed": ("integer", str(DEFAULT_TRAINING["seed"]), "Seed of the u sample: same "
                      "seed, same model."),
    "training.tf_min_frequency": ("number", str(DEFAULT_TRAINING["tf_min_frequency"]),
                                  "Lowest name frequency the term-frequency adjustment uses."),
    "training.m_from_decisions": ("boolean", "", "Accepted for older configs; reviewers' "
                                  "decisions always sharpen m."),
    "household": ("mapping", "", "Household context: members of one household match together."),
    "household.enabled": ("boolean", str(DEFAULT_HOUSEHOLD["enabled"]).lower(),
                          "Adjust match weights by household context."),
    "household.bonus": ("number", str(DEFAULT_HOUSEHOLD["bonus"]), "Bits added when other "
                        "members of the two households match too."),
    "household.penalty": ("number", str(DEFAULT_HOUSEHOLD["penalty"]), "Bits taken off a pair "
                          "that contradicts its households' other matches (e.g. twins)."),
    "chunk_size": ("integer", "1000000", "Candidate pairs compared per chunk (memory bound)."),
    "engine": ("text", "local", f"One of {', '.join(ENGINES)}; `linkage run --engine` "
               "overrides it."),
    "spark": ("mapping", "", "For engine spark: `master` (e.g. spark://head-node:7077; local[2] "
              "if absent) and any `spark.*` setting."),
}


def schema_keys(parent: str) -> set[str]:
    """Keys allowed directly under ``parent`` ('' = top level, 'sources[]', 'thresholds', ...)."""
    prefix = f"{parent}." if parent else ""
    return {k[len(prefix):] for k in CONFIG_SCHEMA
            if k.startswith(prefix) and "." not in k[len(prefix):]}


TOP_KEYS = schema_keys("")
SOURCE_KEYS = schema_keys("sources[]")


def _fail(where: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"config key '{where}': got {value!r}; expected {expected}")


def _require(mapping: dict, key: str, where: str, kind: type | tuple, expected: str) -> Any:
    if key not in mapping:
        raise ConfigError(f"config key '{where}.{key}' is missing; expected {expected}")
    value = mapping[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _fail(f"{where}.{key}", value, expected)
    return value


def _unknown_keys(mapping: dict, allowed: set, where: str) -> None:
    unknown = sorted((k for k in mapping if k not in allowed), key=str)
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), sorted(allowed), n=1, cutoff=0.6)
            if close:
                hints.append(f"{k!r} -> did you mean {close[0]!r}?")
        raise ConfigError(
            f"config key(s) {', '.join(repr(k) for k in unknown)} under '{where}' are not known"
            f"{' (' + '; '.join(hints) + ')' if hints else ''}; "
            f"allowed keys: {', '.join(sorted(allowed))}"
        )


def _mapping(raw: dict, key: str, expected: str) -> dict:
    """An optional sub-mapping (absent or empty: {})."""
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(key, value, expected)
    return value


def _number(where: str, value: Any, expected: str, *, integer: bool = False,
            low: float | None = None, high: float | None = None) -> Any:
    kinds = int if integer else (int, float)
    if (not isinstance(value, kinds) or isinstance(value, bool)
            or (isinstance(value, float) and not math.isfinite(value))
            or (low is not None and value < low) or (high is not None and value > high)):
        raise _fail(where, value, expected)
    return value


class _UniqueKeyLoader(yaml.SafeLoader):
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


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> JobConfig:
    """Read and validate a job config; relative paths are taken from the config's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        with path.open(encoding="utf-8") as stream:  # a stream: YAML errors name the file
            raw = yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start}); save it as UTF-8") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, got {type(raw).__name__}")
    raw = {**raw, **(overrides or {})}
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> JobConfig:
    """Validate a config mapping (already parsed from YAML)."""
    from matchers.base import registered

    base = path.parent
    _unknown_keys(raw, TOP_KEYS, "top level")
    job = _require(raw, "job", "top level", str, "a job name (text)")
    if not job.strip() or re.search(r"[/\\\x00-\x1f]", job) or job.strip(".") == "":
        raise _fail("job", job, "a job name without slashes or control characters")
    if not isinstance(raw.get("description", ""), (str, type(None))):
        raise _fail("description", raw["description"], "text")

    sources_raw = _require(raw, "sources", "top level", list, "a list of sources")
    if not sources_raw:
        raise _fail("sources", sources_raw, "at least one source")
    sources = tuple(_parse_source(s, i, base) for i, s in enumerate(sources_raw))
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _fail("sources[].name", dupes, "unique source names")

    link_type = raw.get("link_type", "link_and_dedupe")
    if link_type not in LINK_TYPES:
        raise _fail("link_type", link_type, f"one of {', '.join(LINK_TYPES)}")
    if link_type == "link_only" and len(sources) < 2:
        raise _fail("link_type", link_type, "at least two sources for link_only")

    blocking_raw = raw.get("blocking") or []
    if not isinstance(blocking_raw, list):
        raise _fail("blocking", blocking_raw, "a list of rules, each with 'keys'")
    blocking = tuple(_parse_rule(r, i) for i, r in enumerate(blocking_raw))
    if not blocking:
        raise _fail("blocking", raw.get("blocking"), "a list of at least one rule with 'keys'")

    factories = registered()
    comparisons = []
    for i, c in enumerate(_require(raw, "comparisons", "top level", list, "a list of comparisons")):
        where = f"comparisons[{i}]"
        if not isinstance(c, dict):
            raise _fail(where, c, "a mapping with 'matcher'")
        matcher = _require(c, "matcher", where, str, f"one of {', '.join(sorted(factories))}")
        if matcher not in factories:
            close = difflib.get_close_matches(matcher, sorted(factories), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(f"{where}.matcher", matcher, f"one of {', '.join(sorted(factories))}{hint}")
        for key in ("name", "field"):
            if c.get(key) is not None and (not isinstance(c[key], str) or not c[key]):
                raise _fail(f"{where}.{key}", c[key], "text")
        params = {k: v for k, v in c.items() if k not in {"matcher", "name", "field"}}
        comparison = ComparisonConfig(matcher, c.get("name"), c.get("field"), params)
        _check_comparison(comparison, where)
        comparisons.append(comparison)
    if not comparisons:
        raise _fail("comparisons", [], "at least one comparison")
    labels = [c.name or c.field or c.matcher for c in comparisons]
    twice = sorted({n for n in labels if labels.count(n) > 1})
    if twice:
        raise _fail("comparisons", twice, "each comparison once (give repeats a distinct 'name')")

    thresholds = _mapping(raw, "thresholds", "a mapping with 'match' and 'review' probabilities")
    _unknown_keys(thresholds, schema_keys("thresholds"), "thresholds")
    match = thresholds.get("match", 0.95)
    review = thresholds.get("review", 0.5)
    for key, value in (("match", match), ("review", review)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
            raise _fail(f"thresholds.{key}", value, "a probability strictly between 0 and 1, "
                                                    "such as 0.95")
    if review > match:
        raise _fail("thresholds.review", review, f"at most thresholds.match ({match})")

    survivorship = _mapping(raw, "survivorship", "a mapping with 'precedence'")
    _unknown_keys(survivorship, schema_keys("survivorship"), "survivorship")
    precedence_raw = survivorship.get("precedence") or names
    if not isinstance(precedence_raw, list) or not all(isinstance(p, str) for p in precedence_raw):
        raise _fail("survivorship.precedence", precedence_raw, f"a list of source names among {names}")
    precedence = tuple(dict.fromkeys(precedence_raw))
    unknown = [p for p in precedence if p not in names]
    if unknown:
        raise _fail("survivorship.precedence", unknown, f"source names among {names}")
    precedence = precedence + tuple(n for n in names if n not in precedence)

    output_raw = raw.get("output", f"out/{job}")
    if not isinstance(output_raw, str) or not output_raw.strip() or "\x00" in output_raw:
        raise _fail("output", output_raw, "a folder path (text)")
    output = _resolve(base, output_raw)
    store = raw.get("store", "sqlite:///" + str(output / "linkage.sqlite"))
    if not isinstance(store, str) or "://" not in store or not _valid_url(store):
        raise _fail("store", store, "an SQLAlchemy URL such as sqlite:///out/linkage.sqlite")
    if store.startswith("sqlite:///") and not store.startswith("sqlite:////"):
        rel = store[len("sqlite:///"):]
        if rel and rel != ":memory:":
            store = "sqlite:///" + str(_resolve(base, rel))

    training = {**DEFAULT_TRAINING, **_mapping(raw, "training", "a mapping of training settings")}
    _unknown_keys(training, schema_keys("training"), "training")
    _number("training.u_sample_pairs", training["u_sample_pairs"], "an integer of at least 1000",
            integer=True, low=1000)
    _number("training.em_max_iterations", training["em_max_iterations"],
            "an integer from 1 to 10000", integer=True, low=1, high=10_000)
    _number("training.em_tolerance", training["em_tolerance"], "a small positive number such as "
            "1e-6", low=1e-15, high=1)
    _number("training.seed", training["seed"], "an integer from 0 to 2**32-1", integer=True,
            low=0, high=2**32 - 1)
    _number("training.tf_min_frequency", training["tf_min_frequency"],
            "a frequency from 0 to 1 such as 1e-6", low=0, high=1)
    if not isinstance(training.get("m_from_decisions", False), bool):
        raise _fail("training.m_from_decisions", training["m_from_decisions"], "true or false")
    household = {**DEFAULT_HOUSEHOLD, **_mapping(raw, "household", "a mapping of household "
                                                                   "settings")}
    _unknown_keys(household, schema_keys("household"), "household")
    if not isinstance(household["enabled"], bool):
        raise _fail("household.enabled", household["enabled"], "true or false")
    for key in ("bonus", "penalty"):
        _number(f"household.{key}", household[key], "a number of bits from 0 to 20", low=0, high=20)
    chunk_size = raw.get("chunk_size", 1_000_000)
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1000:
        raise _fail("chunk_size", chunk_size, "an integer of at least 1000 (pairs per chunk)")

    engine = raw.get("engine", "local")
    if engine not in ENGINES:
        raise _fail("engine", engine, f"one of {', '.join(ENGINES)}")
    spark = _mapping(raw, "spark", "a mapping such as {master: 'local[2]', "
                                   "'spark.executor.memory': '4g'}")

    return JobConfig(
        job=job,
        path=path,
        sources=sources,
        blocking=blocking,
        comparisons=tuple(comparisons),
        match_threshold=float(match),
        review_threshold=float(review),
        link_type=link_type,
        precedence=precedence,
        output=output,
        store=store,
        training=training,
        household=household,
        chunk_size=chunk_size,
        engine=engine,
        spark=dict(spark),
        raw=raw,
    )


def _resolve(base: Path, value: Any) -> Path:
    p = Path(str(value))
    return p if p.is_absolute() else (base / p).resolve()


def _parse_source(raw: Any, index: int, base: Path) -> SourceConfig:
    where = f"sources[{index}]"
    if not isinstance(raw, dict):
        raise _fail(where, raw, "a mapping with name, role, record_id, fields and path or url")
    _unknown_keys(raw, SOURCE_KEYS, where)
    name = _require(raw, "name", where, str, "a source name (text)")
    if not name.strip() or re.search(r"[:\x00-\x1f]", name):
        raise _fail(f"{where}.name", name, "a source name without ':' or control characters "
                                           "(pairs are written SOURCE:RECORD_ID)")
    where = f"sources[{index}] ({name})"
    role = raw.get("role", "insurance")
    if role not in ROLES:
        raise _fail(f"{where}.role", role, f"one of {', '.join(ROLES)}")
    record_id = _require(raw, "record_id", where, str, "the name of the record-id column")
    if not record_id.strip():
        raise _fail(f"{where}.record_id", record_id, "the name of the record-id column")
    fields = _require(raw, "fields", where, dict, "a mapping from standard field to column")
    bad = sorted(str(k) for k in fields if not re.fullmatch(r"[a-z][a-z0-9_]*", str(k)))
    if bad:
        raise _fail(
            f"{where}.fields", bad,
            "field names in lower_snake_case; the standard ones "
            f"({', '.join(STANDARD_FIELDS)}) get the Chinese standardisers, others generic text",
        )
    for k, v in fields.items():
        if not isinstance(v, str) or not v:
            raise _fail(f"{where}.fields.{k}", v, "a column name of the source (text)")
    for key in ("path", "url", "table", "query", "sheet", "scheme"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()
                                  or "\x00" in value):
            raise _fail(f"{where}.{key}", value, "text")
    path = raw.get("path")
    url = raw.get("url")
    if bool(path) == bool(url):
        raise _fail(where, {"path": path, "url": url}, "exactly one of 'path' (a file) or 'url' (SQLAlchemy)")
    if path is not None:
        path = _resolve(base, path)
        if path.suffix.lower() not in {".csv", ".txt", ".xlsx", ".xlsm"}:
            raise _fail(f"{where}.path", str(path), "a .csv or .xlsx file")
        if raw.get("sheet") and path.suffix.lower() not in {".xlsx", ".xlsm"}:
            raise _fail(f"{where}.sheet", raw["sheet"], "no 'sheet' for a CSV file (only .xlsx)")
    if url is not None:
        if not _valid_url(url):
            raise _fail(f"{where}.url", _safe_url(url), "an SQLAlchemy URL such as "
                                                        "postgresql+psycopg://host/db")
        if bool(raw.get("table")) == bool(raw.get("query")):
            raise _fail(where, _safe_url(url), "exactly one of 'table' or 'query' beside 'url'")
    encoding = raw.get("encoding", "auto")
    if encoding not in ENCODINGS:
        raise _fail(f"{where}.encoding", encoding, f"one of {', '.join(ENCODINGS)}")
    return SourceConfig(
        name=name,
        role=role,
        record_id=record_id,
        fields=dict(fields),
        path=path,
        url=url,
        table=raw.get("table"),
        query=raw.get("query"),
        encoding=encoding,
        sheet=raw.get("sheet"),
        scheme=raw.get("scheme"),
    )


def _parse_rule(raw: Any, index: int) -> BlockingRule:
    where = f"blocking[{index}]"
    if not isinstance(raw, dict):
        raise _fail(where, raw, "a mapping with 'keys' (list of standardised columns)")
    _unknown_keys(raw, schema_keys("blocking[]"), where)
    keys = raw.get("keys")
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise _fail(f"{where}.keys", keys, "a non-empty list of standardised column names")
    size = raw.get("max_block_size", 300)
    if not isinstance(size, int) or isinstance(size, bool) or size < 2:
        raise _fail(f"{where}.max_block_size", size, "an integer of at least 2")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise _fail(f"{where}.name", name, "text")
    return BlockingRule(name or "+".join(keys), tuple(keys), size)


def _check_comparison(comparison: ComparisonConfig, where: str) -> None:
    """Build the matcher once so that a wrong level or parameter is a config error, not a
    traceback in the middle of a run."""
    from linkage.compare import build_comparisons

    try:
        build_comparisons((comparison,))
    except (KeyError, TypeError, ValueError) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        params = ", ".join(sorted(comparison.params)) or "none"
        raise ConfigError(f"config key '{where}' (matcher {comparison.matcher!r}, parameters: "
                          f"{params}): {detail}") from None
