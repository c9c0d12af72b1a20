"""Job configs: YAML in, a validated JobConfig out, before any work starts.

Every error names the key, the value found and what would be right, so a data team can fix a
config without reading code.
"""
from __future__ import annotations

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
        return str(self.path) if self.path else f"{self.url} ({self.table or 'query'})"


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


TOP_KEYS = {
    "job", "sources", "blocking", "comparisons", "thresholds", "link_type", "survivorship",
    "output", "store", "training", "household", "chunk_size", "description", "engine", "spark",
}
ENGINES = ("local", "spark")
SOURCE_KEYS = {
    "name", "role", "record_id", "fields", "path", "url", "table", "query", "encoding", "sheet",
    "scheme",
}
DEFAULT_TRAINING = {
    "u_sample_pairs": 500_000,
    "em_max_iterations": 100,
    "em_tolerance": 1e-6,
    "seed": 42,
    "tf_min_frequency": 1e-6,
}
DEFAULT_HOUSEHOLD = {"enabled": True, "bonus": 2.0, "penalty": 2.0}


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
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ConfigError(
            f"config key(s) {', '.join(repr(k) for k in unknown)} under '{where}' are not known; "
            f"allowed keys: {', '.join(sorted(allowed))}"
        )


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> JobConfig:
    """Read and validate a job config; relative paths are taken from the config's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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

    blocking = tuple(_parse_rule(r, i) for i, r in enumerate(raw.get("blocking") or []))
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
            raise _fail(f"{where}.matcher", matcher, f"one of {', '.join(sorted(factories))}")
        params = {k: v for k, v in c.items() if k not in {"matcher", "name", "field"}}
        comparisons.append(ComparisonConfig(matcher, c.get("name"), c.get("field"), params))
    if not comparisons:
        raise _fail("comparisons", [], "at least one comparison")

    thresholds = raw.get("thresholds") or {}
    if not isinstance(thresholds, dict):
        raise _fail("thresholds", thresholds, "a mapping with 'match' and 'review' probabilities")
    _unknown_keys(thresholds, {"match", "review"}, "thresholds")
    match = thresholds.get("match", 0.95)
    review = thresholds.get("review", 0.5)
    for key, value in (("match", match), ("review", review)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
            raise _fail(f"thresholds.{key}", value, "a probability strictly between 0 and 1")
    if review > match:
        raise _fail("thresholds.review", review, f"at most thresholds.match ({match})")

    survivorship = raw.get("survivorship") or {}
    if not isinstance(survivorship, dict):
        raise _fail("survivorship", survivorship, "a mapping with 'precedence'")
    precedence = tuple(survivorship.get("precedence") or names)
    unknown = [p for p in precedence if p not in names]
    if unknown:
        raise _fail("survivorship.precedence", unknown, f"source names among {names}")
    precedence = precedence + tuple(n for n in names if n not in precedence)

    output = _resolve(base, raw.get("output", f"out/{job}"))
    store = raw.get("store", "sqlite:///" + str(output / "linkage.sqlite"))
    if not isinstance(store, str) or "://" not in store:
        raise _fail("store", store, "an SQLAlchemy URL such as sqlite:///out/linkage.sqlite")
    if store.startswith("sqlite:///") and not store.startswith("sqlite:////"):
        rel = store[len("sqlite:///"):]
        if rel and rel != ":memory:":
            store = "sqlite:///" + str(_resolve(base, rel))

    training = {**DEFAULT_TRAINING, **(raw.get("training") or {})}
    _unknown_keys(training, set(DEFAULT_TRAINING) | {"m_from_decisions"}, "training")
    household = {**DEFAULT_HOUSEHOLD, **(raw.get("household") or {})}
    _unknown_keys(household, set(DEFAULT_HOUSEHOLD), "household")
    chunk_size = raw.get("chunk_size", 1_000_000)
    if not isinstance(chunk_size, int) or chunk_size < 1000:
        raise _fail("chunk_size", chunk_size, "an integer of at least 1000 (pairs per chunk)")

    engine = raw.get("engine", "local")
    if engine not in ENGINES:
        raise _fail("engine", engine, f"one of {', '.join(ENGINES)}")
    spark = raw.get("spark") or {}
    if not isinstance(spark, dict):
        raise _fail("spark", spark, "a mapping such as {master: 'local[2]', 'spark.executor.memory': '4g'}")

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
    where = f"sources[{index}] ({name})"
    role = raw.get("role", "insurance")
    if role not in ROLES:
        raise _fail(f"{where}.role", role, f"one of {', '.join(ROLES)}")
    record_id = _require(raw, "record_id", where, str, "the name of the record-id column")
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
    path = raw.get("path")
    url = raw.get("url")
    if bool(path) == bool(url):
        raise _fail(where, {"path": path, "url": url}, "exactly one of 'path' (a file) or 'url' (SQLAlchemy)")
    if path is not None:
        path = _resolve(base, path)
        if path.suffix.lower() not in {".csv", ".txt", ".xlsx", ".xlsm"}:
            raise _fail(f"{where}.path", str(path), "a .csv or .xlsx file")
    if url is not None and not (raw.get("table") or raw.get("query")):
        raise _fail(where, url, "'table' or 'query' beside 'url'")
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
    _unknown_keys(raw, {"name", "keys", "max_block_size"}, where)
    keys = raw.get("keys")
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise _fail(f"{where}.keys", keys, "a non-empty list of standardised column names")
    size = raw.get("max_block_size", 300)
    if not isinstance(size, int) or size < 2:
        raise _fail(f"{where}.max_block_size", size, "an integer of at least 2")
    return BlockingRule(raw.get("name") or "+".join(keys), tuple(keys), size)
