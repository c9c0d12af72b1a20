"""Household context: whole families match together; twins are not helped into each other."""
import numpy as np
import pandas as pd

from linkage.household import household_adjustment


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
