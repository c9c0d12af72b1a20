import numpy as np
import pandas as pd

from linkage.core.cluster import cluster, stable_entity_ids


def test_connected_components_when_no_constraint_is_hit():
    c = cluster(5, np.array([0, 1]), np.array([1, 2]), np.array([10.0, 9.0]),
                np.array([True, False, False, False, False]))
    assert c.labels[0] == c.labels[1] == c.labels[2]
    assert len(set(c.labels)) == 3 and c.refused.size == 0


def test_two_registry_records_are_never_chained_together():
    # police 0 - ncms 2 - police 1: a common name chaining two registry persons.
    authority = np.array([True, True, False])
    c = cluster(3, np.array([0, 1]), np.array([2, 2]), np.array([20.0, 8.0]), authority)
    assert c.labels[0] == c.labels[2] != c.labels[1]
    assert c.refused.tolist() == [1]


def test_reviewer_merge_overrides_the_registry_constraint():
    authority = np.array([True, True])
    c = cluster(2, np.array([], int), np.array([], int), np.array([]), authority,
                must_link=(np.array([0]), np.array([1])))
    assert c.labels[0] == c.labels[1]


def test_cannot_link_splits_a_component():
    authority = np.zeros(3, bool)
    c = cluster(3, np.array([0, 1]), np.array([1, 2]), np.array([10.0, 5.0]), authority,
                cannot_link=(np.array([0]), np.array([2])))
    assert c.labels[0] == c.labels[1] != c.labels[2]


def test_entity_ids_are_stable_and_inherited():
    records = pd.DataFrame({"source": ["police", "ncms", "ncms"],
                            "record_id": ["GA1", "NH1", "NH2"]})
    authority = np.array([True, False, False])
    first = stable_entity_ids(records, np.array([0, 0, 1]), authority)
    again = stable_entity_ids(records, np.array([5, 5, 3]), authority)
    assert list(first) == list(again)
    assert first[0] == first[1] != first[2]
    # NH2 joins a new cluster anchored elsewhere; NH1's old entity keeps its id.
    previous = pd.DataFrame({"source": records["source"], "record_id": records["record_id"],
                             "entity_id": first})
    records2 = pd.concat([records, pd.DataFrame({"source": ["urban"], "record_id": ["CZ9"]})],
                         ignore_index=True)
    ids = stable_entity_ids(records2, np.array([0, 0, 1, 1]), np.append(authority, False), previous)
    assert ids[0] == first[0]
    assert ids[2] == ids[3] == first[2]  # inherited by majority although the anchor changed
    assert len(set(ids)) == 2
