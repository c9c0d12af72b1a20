"""Synthetic prefecture: police registry, NCMS and urban rosters, with an exact answer key.

Why: the matcher has to be measured on data carrying the errors real rosters carry (blank, old
15-digit, mistyped and Excel-mangled IDs; homophone, look-alike and traditional-form names; lunar
and day-month-swapped birth dates; twins and namesakes: errors.py, dates.py, identity.py) at
realistic rates (params.py), and real rosters are sensitive personal data that cannot live in the
repository. The hard classes of household linkage are as common as in real rosters (issue 16):
milk names shared by thousands of infants, a parent's ID on a child, children with no ID and the
birth year only, split households, heads replaced or listed differently between the sources;
the pairs a matcher must not merge are written to hard_negatives.csv (negatives.py).
People are generated as numpy arrays of indices into pools (names.py, linkage/data/
tongliao_places.json); per-record Python only runs on the small subsets that receive an error,
so 1M persons take about a minute. The same seed gives the same world. Villages keep a few
hundred residents at any size (a larger world has more villages and, past the real ones, more
townships), and given names are heavy-tailed per gender and generation, so that persons sharing
a name and a birth year grow with the population as they do in a real prefecture.

Modules, in the order a world is made:
  params     household templates, error and enrolment rates (the numbers one tunes)
  names      name pools and character tables (data only)
  arrays     vectorised digit strings, GB 11643 numbers, weighted draws
  geo        counties, townships, villages and their clerks
  persons    the People arrays the stages below read and fill
  people     households, persons, births and names
  identity   twins, namesakes, milk names, deaths, migrants, resident IDs, relations to the head
  households how the registry and NCMS group a family: split 户, replaced or other heads
  records    one source's view of its persons, and the error log
  errors     name, ID and gender errors per class
  dates      birthdate errors and formats
  sources    the police, NCMS and urban exports and their columns
  negatives  the hard-negative pairs (twins, father and son of one name, ...)
  receipts   what each NCMS household paid (2012 rules) and the errors its receipt carries
  world      generate_world: all of the above from one seed
  day        enrolment_day: a day's NCMS households taken out as the batch `linkage daily` checks
  io         write_world and the `linkage synth` entry point
"""
from linkage.synth.arrays import resident_ids
from linkage.synth.dates import DATE_FORMATS
from linkage.synth.errors import ID_ERRORS, NAME_ERRORS
from linkage.synth.io import ENCODINGS, synth_main, write_world
from linkage.synth.params import ENROL, RATES, REF_YEAR
from linkage.synth.sources import NCMS_COLUMNS, POLICE_COLUMNS, URBAN_COLUMNS
from linkage.synth.world import World, error_summary, generate_world

__all__ = [
    "DATE_FORMATS", "ENCODINGS", "ENROL", "ID_ERRORS", "NAME_ERRORS", "NCMS_COLUMNS",
    "POLICE_COLUMNS", "RATES", "REF_YEAR", "URBAN_COLUMNS", "World", "error_summary",
    "generate_world", "resident_ids", "synth_main", "write_world",
]
