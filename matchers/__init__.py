"""Standardisers and comparers for Chinese registry fields, one module per kind of field.

Importing the package registers every built-in comparison under the name job configs use.
"""
import dataclasses
from collections.abc import Callable

from matchers.base import _REGISTRY, MISSING, Comparison, Level, Pairs, register

__all__ = ["MISSING", "STANDARDISERS", "Comparison", "Level", "Pairs", "make_comparison",
           "register", "registered"]

# Each module registers its comparisons on import.
from matchers import (  # noqa: E402
    birthdate,
    gender,
    generic,  # noqa: F401
    person_name,
    place,
    relation,
    resident_id,
)

# The standard raw fields and the standardiser that derives each one's columns (COLUMNS.md).
# Any other field is text, compared by the generic matchers after generic.standardise_text.
STANDARDISERS = {
    "id_number": resident_id.standardise,
    "name": person_name.standardise,
    "birth_date": birthdate.standardise,
    "gender": gender.standardise,
    "township": place.standardise_township,
    "village": place.standardise_village,
    "relation": relation.standardise,
}


def registered() -> dict[str, Callable[..., Comparison]]:
    """Every comparison factory by the name job configs use (each module above registered its
    own on import)."""
    return dict(_REGISTRY)


def make_comparison(kind: str, name: str | None = None, **params) -> Comparison:
    """Build a registered comparison; unknown kinds name the ones that exist."""
    factories = registered()
    if kind not in factories:
        raise KeyError(f"unknown matcher {kind!r}; known matchers: {', '.join(sorted(factories))}")
    comparison = factories[kind](**params)
    if name and name != comparison.name:
        comparison = dataclasses.replace(comparison, name=name)
    return comparison
