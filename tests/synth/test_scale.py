"""The synthetic world at prefecture scale: places that grow with the population, and names whose
frequencies are heavy-tailed as in China, so that shared (name, birth year) grows with the size.

The geography at 3M persons is built without persons (its villages' expected residents follow from
the shares); persons are drawn (people only, no sources) at up to 200k.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linkage.synth.geo import build_geo
from linkage.synth.params import GEO, MALE
from linkage.synth.people import ERAS, _han_given, given_names, make_people

PREFECTURE = 3_000_000


def _expected_residents(geo, persons: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected residents of every rural village, and the county of each."""
    rural = np.flatnonzero(~geo.unit_urban[geo.vil_unit])
    unit = geo.vil_unit[rural]
    county = geo.unit_county[unit]
    # a unit's villages' keys run from the unit's number to the next one, by their sizes
    share = np.diff(np.concatenate([[0.0], geo.vil_key]))[rural]
    per_unit = persons * geo.share[county] * (1 - geo.urban_share[county]) / geo.cu_count[county, 0]
    return per_unit * share, county


@pytest.fixture(scope="module")
def prefecture():
    return build_geo(PREFECTURE)


@pytest.fixture(scope="module")
def people():
    n = 200_000
    return make_people(np.random.default_rng(11), n, build_geo(n))


def test_villages_keep_a_few_hundred_residents_at_prefecture_scale(prefecture):
    residents, county = _expected_residents(prefecture, PREFECTURE)
    assert 350 <= np.median(residents) <= 450
    assert np.quantile(residents, 0.1) >= 280 and np.quantile(residents, 0.9) <= 520
    per_county = np.bincount(county, minlength=len(prefecture.share))
    assert len(per_county) == 8  # Tongliao's county-level units
    # a few hundred villages in each county but the mining town (霍林郭勒, 90 % urban)
    assert (np.sort(per_county)[1:] >= 300).all() and per_county.max() <= 1200
    assert prefecture.unit_vcount.max() <= max(GEO["villages_per_township"],
                                               GEO["communities_per_unit"])


def test_counties_open_townships_as_they_grow(prefecture):
    small = build_geo(100_000)
    assert (small.cu_count[:, 0] < prefecture.cu_count[:, 0]).sum() >= 6
    # the real townships come first, with their own names, at every size
    for c in range(len(small.share)):
        first = prefecture.cu_start[c, 0]
        real = small.unit_name[small.cu_start[c, 0]: small.cu_start[c, 0] + small.cu_count[c, 0]]
        assert list(prefecture.unit_name[first: first + len(real)]) == list(real)
    assert set(prefecture.unit_suffix[~prefecture.unit_urban]) <= {"镇", "乡", "苏木"}


def test_place_names_are_unique_within_a_county(prefecture):
    g = prefecture
    county = g.unit_county[g.vil_unit]
    places = pd.DataFrame({"county": county, "stem": g.vil_stem, "urban": g.unit_urban[g.vil_unit]})
    assert not places.duplicated().any()
    units = pd.DataFrame({"county": g.unit_county, "name": g.unit_name, "stem": g.unit_stem})
    assert not units[["county", "name"]].duplicated().any()
    # the real ones may share a stem (达来胡硕镇, 达来胡硕街道); the townships made up may not
    small = build_geo(100_000)
    real = set(zip(small.unit_county, small.unit_name))
    made = ~pd.Series(list(zip(units["county"], units["name"]))).isin(real).to_numpy()
    assert made.sum() > 50
    stems = units.groupby("county")["stem"].apply(list).to_dict()
    assert all(stems[c].count(s) == 1 for c, s in zip(units["county"][made], units["stem"][made]))
    assert (g.vil_stem.astype(str) != "").all()
    assert all(len(s) <= 6 for s in g.vil_stem)


def test_a_clerk_keys_a_couple_of_villages(prefecture):
    g = prefecture
    clerk = g.vil_clerk[~g.unit_urban[g.vil_unit]]
    per_clerk = np.bincount(clerk)
    assert per_clerk.min() >= 1 and per_clerk.max() == 2
    assert len(g.clerk_code) == len(set(g.clerk_code))
    # a clerk keys villages of one township
    units = pd.Series(g.vil_unit[~g.unit_urban[g.vil_unit]]).groupby(clerk).nunique()
    assert (units == 1).all()


def test_same_size_same_places():
    a, b = build_geo(1_500_000), build_geo(1_500_000)
    for name in ("unit_name", "vil_name", "vil_groups", "vil_clerk", "vil_key", "clerk_code"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_households_fill_villages_by_their_sizes(people):
    rural = ~people.hh_urban
    residents = np.bincount(people.hh_village[people.hh][rural[people.hh]])
    residents = residents[residents > 0]
    assert 330 <= np.median(residents) <= 470
    assert np.quantile(residents, 0.9) <= 560
    # every household lives in a village of its own township
    geo = build_geo(200_000)
    assert (geo.vil_unit[people.hh_village] == people.hh_unit).all()


@pytest.mark.parametrize(("gender", "era", "top"), [
    ("M", "old", "建国"), ("M", "mid", "伟"), ("M", "young", "浩"),
    ("F", "old", "秀英"), ("F", "mid", "丽"), ("F", "young", "欣怡"),
])
def test_given_names_are_heavy_tailed(gender, era, top):
    names, share = given_names(gender, era)
    assert names[0] == top
    assert len(set(names)) == len(names) > 5000
    assert 0.008 <= share[0] <= 0.035  # 伟: some 2 % of the men born 1970-1994
    assert np.all(np.diff(share) <= 0)
    assert 0.07 <= share[:10].sum() <= 0.2
    assert share[1000:].sum() >= 0.2  # the long tail: names outside the 1,000 commonest
    assert all(0 < len(n) <= 2 for n in names)
    "".join(names).encode("gbk")  # NCMS is GBK


def test_younger_generations_have_more_diverse_names():
    for g in "MF":
        shares = [given_names(g, era)[1] for era in ERAS]
        assert shares[2][0] < min(shares[0][0], shares[1][0])
        assert (shares[2] ** 2).sum() < (shares[1] ** 2).sum()
    single = {era: sum(p for n, p in zip(*given_names("M", era)) if len(n) == 1) for era in ERAS}
    assert single["mid"] > 0.2 > single["young"]  # single-character names peaked in the 1980s


def test_drawn_names_follow_the_shares():
    rng = np.random.default_rng(3)
    n = 200_000
    drawn = pd.Series(_han_given(rng, np.full(n, MALE), np.full(n, 1982))).value_counts() / n
    names, share = given_names("M", "mid")
    assert drawn.index[0] == "伟"
    assert abs(drawn.iloc[0] - share[0]) < 0.002
    assert drawn.size > 5000


def test_common_full_names_as_common_as_in_china(people):
    counts = pd.Series(people.name).value_counts()
    per_million = counts.reindex(["张伟", "王伟", "李娜"]).fillna(0) / len(people.hh) * 1e6
    # nationally each about 200 per million; a northern prefecture somewhat more
    assert ((per_million >= 100) & (per_million <= 700)).all(), per_million.to_dict()


def test_shared_name_and_birth_year_grows_with_the_population(people):
    small = make_people(np.random.default_rng(11), 20_000, build_geo(20_000))

    def pairs(p) -> int:
        k = pd.Series(p.name + "|" + p.by.astype(str)).value_counts().to_numpy(np.int64)
        return int((k * (k - 1) // 2).sum())

    # pairs of persons sharing a full name and birth year grow with the square of the size
    assert pairs(people) >= 50 * pairs(small) > 0
