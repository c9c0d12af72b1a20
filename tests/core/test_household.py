"""Household context: whole families match together; twins are not helped into each other."""
import numpy as np
import pandas as pd

from linkage.core.household import household_adjustment, household_codes


def test_family_members_strengthen_each_other_and_twins_do_not():
    # police household H1: father 0, twin A 1, twin B 2; NCMS household F1: father 3, A 4, B 5
    records = pd.DataFrame({
        "source": ["police"] * 3 + ["ncms"] * 3,
        "household_id": ["H1"] * 3 + ["F1"] * 3,
    })
    left = np.array([0, 1, 2, 1, 2])
    right = np.array([3, 4, 5, 5, 4])
    weight = np.array([20.0, 15.0, 15.0, 9.0, 9.0])  # the twin cross pairs are weaker
    adj = household_adjustment(records, left, right, weight, strong_weight=10.0)
    assert (adj[:3] > 0).all()  # each true pair has support from the rest of the family
    assert (adj[3:] < 0).all()  # not the mutual best inside the household pair


def test_record_tied_to_another_household_is_weakened():
    # NCMS household F1 maps to police H1 (two strong pairs); a weak pair from F1 to H2 loses.
    records = pd.DataFrame({
        "source": ["police", "police", "police", "ncms", "ncms", "ncms"],
        "household_id": ["H1", "H1", "H2", "F1", "F1", "F1"],
    })
    left = np.array([0, 1, 2])
    right = np.array([3, 4, 5])
    weight = np.array([20.0, 20.0, 6.0])
    adj = household_adjustment(records, left, right, weight, strong_weight=10.0)
    assert adj[2] < 0 and adj[0] > 0


def test_unknown_households_are_left_alone():
    records = pd.DataFrame({"source": ["police", "urban"], "household_id": ["H1", None]})
    adj = household_adjustment(records, np.array([0]), np.array([1]), np.array([12.0]), 10.0)
    assert adj.tolist() == [0.0]


def test_pairs_below_the_floor_change_nothing_for_the_others():
    records = pd.DataFrame({
        "source": ["police"] * 3 + ["ncms"] * 3,
        "household_id": ["H1"] * 3 + ["F1"] * 3,
    })
    left = np.array([0, 1, 2, 1, 2, 0])
    right = np.array([3, 4, 5, 5, 4, 5])
    weight = np.array([20.0, 15.0, 15.0, 9.0, 9.0, -30.0])
    full = household_adjustment(records, left, right, weight, strong_weight=10.0)
    cut = household_adjustment(records, left, right, weight, strong_weight=10.0, floor=-10.0)
    assert cut[-1] == 0
    np.testing.assert_array_equal(full[:-1], cut[:-1])


def test_the_pairs_above_the_floor_in_any_order_give_every_pairs_bits():
    """What lets the Spark engine run this same step on the driver: only the pairs between
    two known households at or above the floor, in Spark's order, give the bits of all."""
    rng = np.random.default_rng(7)
    n = 60
    records = pd.DataFrame({
        "source": np.where(np.arange(n) < 30, "police", "ncms"),
        "household_id": np.where(rng.random(n) < 0.1, None,
                                 rng.integers(0, 6, n).astype(str)).astype(object),
    })
    packed = np.unique(rng.integers(0, 30, 300) * n + rng.integers(30, n, 300))
    left, right = packed // n, packed % n
    weight = rng.choice([-8.0, -1.0, 3.0, 11.0, 11.0, 15.0], len(left))  # ties on purpose
    floor = -2.0
    full = household_adjustment(records, left, right, weight, 10.0, 2.0, 1.5, floor=floor)
    hh = household_codes(records)
    near = np.flatnonzero((hh[left] >= 0) & (hh[right] >= 0) & (hh[left] != hh[right])
                          & (weight >= floor))
    shuffled = rng.permutation(near)
    part = household_adjustment(records, left[shuffled], right[shuffled], weight[shuffled], 10.0,
                                2.0, 1.5, floor=floor)
    assert (full != 0).any() and (full[near] != 0).sum() == (full != 0).sum()
    np.testing.assert_array_equal(part, full[shuffled])


def test_household_codes_key_by_source_and_household():
    records = pd.DataFrame({"source": ["police", "ncms", "police", "ncms"],
                            "household_id": ["H1", "H1", "H1", None]})
    codes = household_codes(records)
    assert codes[0] == codes[2] != codes[1] and codes[3] == -1
