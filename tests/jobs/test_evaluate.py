import numpy as np
import pandas as pd
import pytest

from linkage.jobs.evaluate import blocking_recall, evaluate


def _frames():
    clusters = pd.DataFrame({
        "source": ["police", "ncms", "urban", "police", "ncms", "ncms"],
        "record_id": ["GA1", "NH1", "CZ1", "GA2", "NH2", "NH3"],
        "entity_id": ["E1", "E1", "E1", "E2", "E2", "E3"],
    })
    truth = pd.DataFrame({
        "source": clusters["source"], "record_id": clusters["record_id"],
        "person_id": ["p1", "p1", "p1", "p2", "p2", "p2"],
    })
    return clusters, truth


def test_pairwise_and_bcubed():
    clusters, truth = _frames()
    result = evaluate(clusters, truth, {"ncms", "urban"})
    pw = result["pairwise"]
    assert pw["precision"] == 1.0
    assert pw["recall"] == pytest.approx(4 / 6)
    assert result["bcubed"]["precision"] == 1.0


def test_duplicate_enrolment_precision_and_recall():
    clusters, truth = _frames()
    d = evaluate(clusters, truth, {"ncms", "urban"})["duplicate_enrolment"]
    # p1 (NH1+CZ1) found; p2 (NH2+NH3) split across entities: missed.
    assert d["true"] == 2 and d["flagged"] == 1
    assert d["precision"] == 1.0 and d["recall"] == 0.5


def test_blocking_recall_counts_kept_true_pairs():
    clusters, truth = _frames()
    records = clusters[["source", "record_id"]]
    left, right = np.array([0, 3]), np.array([1, 5])
    r = blocking_recall(records, left, right, truth)
    assert r["true_pairs"] == 6 and r["kept"] == 2
