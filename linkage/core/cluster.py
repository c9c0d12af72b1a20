"""Entities from match edges: connected components with constraints.

Components that hold at most one authority (police) record and no reviewer's "not the same
person" are taken whole. The rest are rebuilt greedily, strongest edge first, refusing any
union that would put two authority records or a cannot-link pair in one entity; the refused
edges go to review. This is what stops common names from chaining strangers into one giant
cluster.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass
class Clustering:
    labels: np.ndarray  # entity label per record (0..k-1)
    refused: np.ndarray  # indices into the edge arrays that clustering refused


def cluster(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    authority: np.ndarray,
    must_link: tuple[np.ndarray, np.ndarray] = (np.empty(0, int), np.empty(0, int)),
    cannot_link: tuple[np.ndarray, np.ndarray] = (np.empty(0, int), np.empty(0, int)),
    exclusive: np.ndarray | None = None,
) -> Clustering:
    """Label every record; ``left/right/weight`` are the match edges of the model.

    ``exclusive`` marks nodes no two of which may share an entity through model edges, like
    authority records (`linkage add` marks the existing entities, whose ids never change).
    """
    ml_l, ml_r = must_link
    all_l = np.concatenate([left, ml_l]).astype(np.int64)
    all_r = np.concatenate([right, ml_r]).astype(np.int64)
    graph = coo_matrix((np.ones(all_l.size, dtype=np.int8), (all_l, all_r)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)

    comp_auth = np.bincount(labels, weights=authority.astype(float), minlength=labels.max() + 1)
    bad = comp_auth > 1
    if exclusive is not None:
        bad |= np.bincount(labels, weights=exclusive.astype(float), minlength=labels.max() + 1) > 1
    cl_l, cl_r = cannot_link
    if cl_l.size:
        same = labels[cl_l] == labels[cl_r]
        bad[labels[cl_l[same]]] = True
    if not bad.any():
        return Clustering(labels, np.empty(0, dtype=np.int64))

    in_bad = bad[labels]
    edge_idx = np.flatnonzero(in_bad[left])
    refused = _greedy(n, left, right, weight, edge_idx, authority, ml_l, ml_r, cl_l, cl_r, in_bad,
                      exclusive)
    # Rebuild components from the accepted edges only.
    keep = np.ones(left.size, dtype=bool)
    keep[refused] = False
    all_l = np.concatenate([left[keep], ml_l]).astype(np.int64)
    all_r = np.concatenate([right[keep], ml_r]).astype(np.int64)
    graph = coo_matrix((np.ones(all_l.size, dtype=np.int8), (all_l, all_r)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return Clustering(labels, refused)


def _greedy(n, left, right, weight, edge_idx, authority, ml_l, ml_r, cl_l, cl_r, in_bad,
            exclusive=None):
    parent = {}

    def find(x):
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    has_auth = {int(i): True for i in np.flatnonzero(authority & in_bad)}
    has_excl = ({} if exclusive is None else
                {int(i): True for i in np.flatnonzero(exclusive & in_bad)})
    forbid: dict[int, set[int]] = {}
    for a, b in zip(cl_l.tolist(), cl_r.tolist()):
        if in_bad[a]:
            forbid.setdefault(a, set()).add(b)
            forbid.setdefault(b, set()).add(a)

    def union(ra, rb):
        parent[rb] = ra
        has_auth[ra] = has_auth.get(ra, False) or has_auth.get(rb, False)
        has_excl[ra] = has_excl.get(ra, False) or has_excl.get(rb, False)
        if rb in forbid:
            forbid.setdefault(ra, set()).update(forbid.pop(rb))

    for a, b in zip(ml_l.tolist(), ml_r.tolist()):  # reviewers' merges come first, unconditionally
        ra, rb = find(a), find(b)
        if ra != rb:
            union(ra, rb)

    refused = []
    order = edge_idx[np.argsort(-weight[edge_idx], kind="stable")]
    for e in order.tolist():
        ra, rb = find(int(left[e])), find(int(right[e]))
        if ra == rb:
            continue
        blocked = ((has_auth.get(ra, False) and has_auth.get(rb, False))
                   or (has_excl.get(ra, False) and has_excl.get(rb, False)))
        if not blocked and (ra in forbid or rb in forbid):
            fa = {find(x) for x in forbid.get(ra, ())}
            fb = {find(x) for x in forbid.get(rb, ())}
            blocked = rb in fa or ra in fb
        if blocked:
            refused.append(e)
        else:
            union(ra, rb)
    return np.asarray(refused, dtype=np.int64)


def stable_entity_ids(
    records: pd.DataFrame,
    labels: np.ndarray,
    authority: np.ndarray,
    previous: pd.DataFrame | None = None,
) -> np.ndarray:
    """Entity id per record, the same for the same people across re-runs.

    An entity's id is a hash of its anchor, the smallest authority record key (or smallest record
    key) among its members. When that id is new and a previous run is known, the entity inherits
    the previous id most of its members had, if no other entity holds it.
    """
    key = records["source"].astype(str) + ":" + records["record_id"].astype(str)
    frame = pd.DataFrame({"label": labels, "key": key.to_numpy(), "auth": authority})
    frame = frame.sort_values(["label", "auth", "key"], ascending=[True, False, True])
    anchors = frame.drop_duplicates("label").set_index("label")["key"]
    ids = anchors.map(lambda k: "E" + hashlib.sha1(k.encode("utf-8")).hexdigest()[:12])

    if previous is not None and len(previous):
        previous_key = previous["source"].astype(str) + ":" + previous["record_id"].astype(str)
        prev = pd.DataFrame({"label": labels, "key": key.to_numpy()}).merge(
            previous.assign(key=previous_key)[["key", "entity_id"]],
            on="key",
        )
        # An entity whose own anchor hash is a known id keeps it; others may inherit an id
        # nobody else holds, by majority of their members.
        known = set(previous["entity_id"])
        settled = set(ids[ids.isin(known)])
        own_id_known = ids.reindex(prev["label"]).isin(known).to_numpy()
        prev = prev[~prev["entity_id"].isin(settled) & ~own_id_known]
        votes = prev.groupby(["label", "entity_id"]).size().rename("n").reset_index()
        votes = votes.sort_values(["n", "label"], ascending=[False, True])
        votes = votes.drop_duplicates("entity_id").drop_duplicates("label")
        ids.loc[votes["label"].to_numpy()] = votes["entity_id"].to_numpy()
    # A fresh hash can collide with an id carried over for another entity: make it unique.
    dup = ids.duplicated(keep="first")
    if dup.any():
        suffix = pd.Series(np.arange(dup.sum()), index=ids[dup].index).astype(str)
        ids[dup] = ids[dup] + "-" + suffix
    return ids.reindex(labels).to_numpy()


REASON_CHARS = 200  # the store keeps a pair's reason in 200 characters


def refusal_reasons(labels: np.ndarray, left: np.ndarray, right: np.ndarray,
                    authority: np.ndarray, keys,
                    cannot_link: tuple[np.ndarray, np.ndarray] = (np.empty(0, int),
                                                                  np.empty(0, int)),
                    cannot_kind: np.ndarray | None = None) -> np.ndarray:
    """Why clustering kept each refused pair (``left[i]``, ``right[i]``) apart, in words that
    name the records that collide, so a reviewer knows what a decision will do.

    Read off the final entities: when both sides' entities hold a registry record, merging
    them would put two registry persons in one entity (a reviewer's 同一人 then makes a
    CONFLICT where the two entries carry different valid ID numbers, and merges one person
    registered twice where they carry the same); otherwise a cannot-link pair
    (a reviewer's non-match, or the household rule's two members of one household) spans the
    two entities. ``keys[i]`` is record i's ``source:record_id``; ``cannot_kind`` names each
    cannot-link pair's origin.
    """
    la, lb = labels[left], labels[right]
    first_auth = pd.Series(np.flatnonzero(authority)).groupby(
        labels[np.flatnonzero(authority)]).first()
    auth_a = first_auth.reindex(la).to_numpy()
    auth_b = first_auth.reindex(lb).to_numpy()
    out = np.full(len(left), "", dtype=object)
    both = pd.notna(auth_a) & pd.notna(auth_b)
    for i in np.flatnonzero(both):
        out[i] = (f"would put registry records {keys[int(auth_a[i])]} and "
                  f"{keys[int(auth_b[i])]} (two registry persons) in one entity; "
                  "同一人 makes it a CONFLICT where their ID numbers differ")
    cl_l, cl_r = cannot_link
    kinds = np.full(len(cl_l), "a reviewer's non-match", dtype=object) if cannot_kind is None \
        else np.asarray(cannot_kind, dtype=object)
    spans: dict[tuple[int, int], int] = {}
    for j, (a, b) in enumerate(zip(labels[cl_l].tolist(), labels[cl_r].tolist())):
        spans.setdefault((min(a, b), max(a, b)), j)
    for i in np.flatnonzero(~both):
        j = spans.get((min(int(la[i]), int(lb[i])), max(int(la[i]), int(lb[i]))))
        out[i] = ("would join records kept apart" if j is None else
                  f"would join {keys[int(cl_l[j])]} and {keys[int(cl_r[j])]}, kept apart by "
                  f"{kinds[j]}")
    return np.array([r if len(r) <= REASON_CHARS else r[:REASON_CHARS - 1] + "…" for r in out],
                    dtype=object)
