"""Standardisers and comparers for Chinese registry fields, one module per kind of field.

Importing the package registers every built-in comparison under the name job configs use.
"""
from matchers.base import MISSING, Comparison, Level, make_comparison, register, registered

__all__ = ["MISSING", "Comparison", "Level", "make_comparison", "register", "registered"]

# Each module registers its comparisons on import.
from matchers import (  # noqa: E402,F401
    birthdate,
    gender,
    generic,
    person_name,
    place,
    relation,
    resident_id,
)
