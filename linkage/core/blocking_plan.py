"""What the blocking rules would give, before any pair is compared.

Per rule, in the order of the config: its pairs (exact, from the sizes of its sub-blocks and,
for link_only and dedupe_only, their per-source counts), its largest blocks and how they were
split, the pairs no earlier rule found (exact by pairing the rule's blocks chunk by chunk and
testing each pair against the earlier rules' sub-blocks; sampled where a rule gives more pairs
than that is worth) and the cumulative candidate pairs, as Splink's cumulative comparisons
chart shows them. With a truth file, the share of true pairs each rule finds, alone and
together with the rules before it.

``linkage blocking CONFIG`` prints this; a run refuses a config whose estimate exceeds the
machine's budget (:func:`check_budget`), naming the rule to refine and a refinement that fits.
The household rule's pairs depend on the first pass and are counted after it, in the run.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from linkage.core import blocking
from linkage.core.config import (
    DEFAULT_REFINE,
    BlockingRule,
    ConfigError,
    JobConfig,
    refining_columns,
)

# The local engine holds about 150 bytes per candidate pair until the household step (positions,
# levels, weights and their parts per comparison, household terms and notes; 35.9M pairs took
# 7.5 GB at a million persons); the budget counts 200 to leave room for the records.
BYTES_PER_CANDIDATE_PAIR = 200
EXACT_PAIRS = 20_000_000  # a rule with more pairs has its new pairs sampled, not enumerated
SAMPLE_PAIRS = 200_000
CHUNK_PAIRS = 4_000_000  # pairs enumerated at a time when counting new pairs exactly
LARGEST = 3  # largest blocks shown per rule


@dataclass
class LargeBlock:
    """One of a rule's largest blocks before splitting."""

    key: str  # the rule's key values, as the records hold them
    records: int
    pairs: int  # the pairs it would give whole (link type applied)
    kept_pairs: int  # the pairs its sub-blocks give
    sub_blocks: int  # sub-blocks of two or more records, skipped ones included
    skipped: int  # records in sub-blocks still over budget


@dataclass
class RuleEstimate:
    name: str
    keys: tuple[str, ...]
    refined_by: tuple[str, ...]  # refining keys some block needed
    pairs: int  # pairs the rule gives, split blocks and link type applied (exact)
    whole_pairs: int  # pairs its keys give with no budget: nothing split, nothing skipped
    blocks: int
    split_blocks: int  # blocks over budget
    skipped_blocks: int  # sub-blocks still over budget after every refining key
    skipped_pairs: int  # the pairs those hold (link type applied)
    largest: list[LargeBlock]
    new_pairs: int = 0  # pairs no earlier rule gives
    new_exact: bool = True  # False: new_pairs is estimated from a sample of the rule's pairs
    cumulative: int = 0  # candidate pairs of this rule and those before it
    recall: float | None = None  # share of true pairs this rule gives
    whole_recall: float | None = None  # ... with no budget
    cumulative_recall: float | None = None  # ... this rule or an earlier one


@dataclass
class BlockingPlan:
    job: str
    link_type: str
    records: int
    rules: list[RuleEstimate]
    budget: int  # most candidate pairs the machine takes
    budget_from: str  # where the budget comes from, in words
    true_pairs: int | None = None

    @property
    def total(self) -> int:
        """Estimated candidate pairs of all rules (the household rule's come after)."""
        return self.rules[-1].cumulative if self.rules else 0

    def per_record(self, pairs: float) -> float:
        return pairs / self.records if self.records else 0.0

    def table(self) -> str:
        """The estimate as ``linkage blocking`` prints it."""
        head = (f"blocking estimate for job {self.job}: {self.records:,} records, "
                f"{self.link_type}; budget {self.budget:,} candidate pairs ({self.budget_from})")
        cols = ["rule", "pairs", "/rec", "new", "cumulative", "/rec", "blocks", "split",
                "skipped"]
        if self.true_pairs is not None:
            cols += ["recall", "cum.recall", "unsplit"]
        rows = []
        for r in self.rules:
            new = f"{r.new_pairs:,}" + ("" if r.new_exact else "~")
            row = [r.name, f"{r.pairs:,}", f"{self.per_record(r.pairs):.2f}", new,
                   f"{r.cumulative:,}", f"{self.per_record(r.cumulative):.2f}", f"{r.blocks:,}",
                   f"{r.split_blocks:,}", f"{r.skipped_blocks:,}"]
            if self.true_pairs is not None:
                row += [f"{r.recall:.4f}", f"{r.cumulative_recall:.4f}", f"{r.whole_recall:.4f}"]
            rows.append(row)
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
        lines = [head, ""]
        for row in [cols, *rows]:
            lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                                   for i, (v, w) in enumerate(zip(row, widths))).rstrip())
        lines.append("household: its pairs depend on the first pass and are counted after it")
        if any(not r.new_exact for r in self.rules):
            lines.append(f"~ estimated from {SAMPLE_PAIRS:,} sampled pairs of the rule")
        if self.true_pairs is not None:
            lines.append(f"recall: share of the {self.true_pairs:,} true pairs the rule gives; "
                         "cum.recall: with the rules above; unsplit: its keys with no budget")
        verdict = ("within" if self.total <= self.budget else "OVER")
        lines.append(f"total {self.total:,} candidate pairs ({self.per_record(self.total):.2f} "
                     f"per record): {verdict} the budget of {self.budget:,}")
        lines += ["", "largest blocks (records, pairs whole -> pairs after splitting):"]
        for r in self.rules:
            shown = "; ".join(
                f"{b.key} ({b.records:,}, {b.pairs:,} -> {b.kept_pairs:,}"
                + (f" in {b.sub_blocks:,} sub-blocks" if b.sub_blocks > 1 else "")
                + (f", {b.skipped:,} records skipped" if b.skipped else "") + ")"
                for b in r.largest)
            by = f" [split by {', '.join(r.refined_by)}]" if r.refined_by else ""
            lines.append(f"  {r.name}{by}: {shown or 'none'}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- estimating


def estimate(records: pd.DataFrame, rules: tuple[BlockingRule, ...], link_type: str,
             truth: pd.DataFrame | None = None, *, budget: int | None = None,
             budget_from: str = "", job: str = "", exact_pairs: int = EXACT_PAIRS,
             seed: int = 0, split: list[blocking.Blocks] | None = None) -> BlockingPlan:
    """Every rule's pairs, new pairs and cumulative pairs (and recall, given the truth).

    A rule with more than ``exact_pairs`` pairs has its new pairs estimated from a sample;
    ``split`` is the rules' blocks when the caller has them already.
    """
    sources = pd.factorize(records["source"])[0]
    rng = np.random.default_rng(seed)
    if split is None:
        split = _split_all(records, rules, sources, link_type)
    estimates = [_rule_estimate(records, b, sources, link_type) for b in split]
    cumulative = 0
    for k, (b, est) in enumerate(zip(split, estimates)):
        earlier = [s.paired for s in split[:k]]
        if est.pairs <= exact_pairs:
            est.new_pairs = _new_pairs_exact(b.codes, earlier, sources, link_type)
        else:
            est.new_exact = False
            share = _new_share_sampled(b.codes, earlier, sources, link_type, rng)
            est.new_pairs = round(est.pairs * share)
        cumulative += est.new_pairs
        est.cumulative = cumulative
    plan = BlockingPlan(job, link_type, len(records), estimates,
                        budget if budget is not None else machine_budget()[0], budget_from)
    if truth is not None:
        _recall(plan, records, split, truth, sources, link_type)
    return plan


def _rule_estimate(records: pd.DataFrame, b: blocking.Blocks, sources: np.ndarray,
                   link_type: str) -> RuleEstimate:
    kept = blocking.block_pairs(b.codes, sources, link_type)
    whole = blocking.block_pairs(b.keys, sources, link_type)
    skipped_codes = np.where(b.codes <= -2, -2 - b.codes, -1)
    skipped = blocking.block_pairs(skipped_codes, sources, link_type)
    return RuleEstimate(b.rule.name, b.rule.keys, b.refined_by, int(kept.sum()),
                        int(whole.sum()), b.blocks, b.split_blocks, b.skipped_blocks,
                        int(skipped.sum()), _largest(records, b, whole, kept, sources))


def _largest(records: pd.DataFrame, b: blocking.Blocks, whole: np.ndarray, kept: np.ndarray,
             sources: np.ndarray) -> list[LargeBlock]:
    valid = b.keys >= 0
    if not valid.any():
        return []
    sizes = np.bincount(b.keys[valid])
    top = np.argsort(-sizes, kind="stable")[:LARGEST]
    out = []
    for block in top[sizes[top] > 1]:
        members = np.flatnonzero(b.keys == block)
        codes = b.codes[members]
        subs = codes[codes >= 0]
        sub_sizes = np.unique(subs, return_counts=True)[1] if subs.size else np.empty(0)
        # The estimate reaches a terminal: an ID prefix key shows only as much as a log may.
        from linkage.jobs.ingest import mask_ids  # jobs imports core: imported when used
        key = mask_ids(" ".join(str(records[k].iat[members[0]]) for k in b.rule.keys))
        out.append(LargeBlock(key, int(members.size), int(whole[block]),
                              int(kept[np.unique(subs)].sum()) if subs.size else 0,
                              int((sub_sizes > 1).sum()) + int(np.unique(codes[codes <= -2]).size),
                              int((codes <= -2).sum())))
    return out


def _found_by_earlier(a: np.ndarray, b: np.ndarray, earlier: list[np.ndarray]) -> np.ndarray:
    found = np.zeros(len(a), dtype=bool)
    for codes in earlier:
        ca = codes[a]
        found |= (ca == codes[b]) & (ca >= 0)
    return found


def _new_pairs_exact(codes: np.ndarray, earlier: list[np.ndarray], sources: np.ndarray,
                     link_type: str) -> int:
    """Pairs of these sub-blocks no earlier rule gives, enumerated a chunk of blocks at a time."""
    paired = np.flatnonzero(codes >= 0)
    if paired.size == 0:
        return 0
    order = paired[np.argsort(codes[paired], kind="stable")]
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, order.size])
    pairs = sizes * (sizes - 1) // 2
    ends = np.cumsum(pairs)
    new, first = 0, 0
    while first < starts.size:
        last = int(np.searchsorted(ends, ends[first] - pairs[first] + CHUNK_PAIRS, "right"))
        last = max(last, first + 1)
        members = order[starts[first]:starts[last - 1] + sizes[last - 1]]
        packed = blocking.pairs_within_blocks(codes[members], blocking.NO_LIMIT)[0]
        m = members.size
        a, b = members[packed // m], members[packed % m]
        keep = blocking.link_type_keeps(sources[a], sources[b], link_type)
        if keep is not None:
            a, b = a[keep], b[keep]
        new += int((~_found_by_earlier(a, b, earlier)).sum())
        first = last
    return new


def _new_share_sampled(codes: np.ndarray, earlier: list[np.ndarray], sources: np.ndarray,
                       link_type: str, rng: np.random.Generator) -> float:
    """Share of the rule's pairs no earlier rule gives, from pairs drawn uniformly: a block
    with the chance of its share of pairs, then two distinct members; pairs the link type
    does not allow are drawn again."""
    paired = np.flatnonzero(codes >= 0)
    order = paired[np.argsort(codes[paired], kind="stable")]
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, order.size])
    weight = np.cumsum((sizes * (sizes - 1) // 2).astype(np.float64))
    drawn, new = 0, 0
    for _ in range(50):
        block = np.searchsorted(weight, rng.random(SAMPLE_PAIRS) * weight[-1], "right")
        block = np.minimum(block, sizes.size - 1)
        s = sizes[block]
        i = (rng.random(SAMPLE_PAIRS) * s).astype(np.int64)
        j = (rng.random(SAMPLE_PAIRS) * (s - 1)).astype(np.int64)
        j += j >= i
        a, b = order[starts[block] + i], order[starts[block] + j]
        keep = blocking.link_type_keeps(sources[a], sources[b], link_type)
        if keep is not None:
            a, b = a[keep], b[keep]
        drawn += a.size
        new += int((~_found_by_earlier(a, b, earlier)).sum())
        if drawn >= SAMPLE_PAIRS:
            break
    return new / drawn if drawn else 0.0


def true_pairs(records: pd.DataFrame, truth: pd.DataFrame, sources: np.ndarray,
               link_type: str) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) positions of every two records of one person, as the link type allows:
    the truth read as :func:`linkage.jobs.evaluate.blocking_recall` reads it."""
    key = records[["source", "record_id"]].astype(str)
    t = truth.astype({"source": str, "record_id": str, "person_id": str})
    person = key.merge(t[["source", "record_id", "person_id"]], on=["source", "record_id"],
                       how="left")["person_id"]
    codes = pd.factorize(person)[0].astype(np.int64)  # -1 where the truth does not know it
    packed = blocking.pairs_within_blocks(codes, blocking.NO_LIMIT)[0]
    n = len(records)
    packed = blocking.filter_packed_by_link_type(packed, n, sources, link_type)
    return packed // n, packed % n


def _recall(plan: BlockingPlan, records: pd.DataFrame, split: list[blocking.Blocks],
            truth: pd.DataFrame, sources: np.ndarray, link_type: str) -> None:
    a, b = true_pairs(records, truth, sources, link_type)
    plan.true_pairs = int(a.size)
    total = max(a.size, 1)
    found = np.zeros(a.size, dtype=bool)
    for blocks, est in zip(split, plan.rules):
        mine = _found_by_earlier(a, b, [blocks.paired])
        found |= mine
        est.recall = float(mine.sum() / total)
        est.whole_recall = float(_found_by_earlier(a, b, [blocks.keys]).sum() / total)
        est.cumulative_recall = float(found.sum() / total)


# --------------------------------------------------------------------------- the budget


def _split_all(records: pd.DataFrame, rules: tuple[BlockingRule, ...], sources: np.ndarray,
               link_type: str) -> list[blocking.Blocks]:
    memo: dict = {}
    return [blocking.rule_blocks(records, rule, sources, link_type, memo) for rule in rules]


def machine_budget() -> tuple[int, str]:
    """(candidate pairs, in words why) this machine takes: the memory available now over the
    bytes a candidate pair holds."""
    import psutil

    available = psutil.virtual_memory().available
    return (max(int(available // BYTES_PER_CANDIDATE_PAIR), 1000),
            f"{available / 2**30:.1f} GiB available at {BYTES_PER_CANDIDATE_PAIR} bytes a pair")


def job_budget(config: JobConfig) -> tuple[int, str]:
    if config.max_candidate_pairs is not None:
        return config.max_candidate_pairs, "max_candidate_pairs"
    budget, why = machine_budget()
    return budget, f"max_candidate_pairs not set: {why}"


def plan_job(records: pd.DataFrame, config: JobConfig, truth: pd.DataFrame | None = None
             ) -> BlockingPlan:
    """The estimate for a job's standardised records, against the job's budget."""
    budget, why = job_budget(config)
    return estimate(records, config.blocking, config.link_type, truth, budget=budget,
                    budget_from=why, job=config.job)


def check_budget(records: pd.DataFrame, config: JobConfig) -> BlockingPlan | None:
    """Refuse (ConfigError) a job whose rules would give more candidate pairs than its budget,
    naming the rule that gives most of them and a refinement that would fit.

    Cheap when the job fits: the rules' pairs summed (exact, from block sizes) bound their
    union, and only a sum over budget makes the union worth estimating.
    """
    budget, why = job_budget(config)
    sources = pd.factorize(records["source"])[0]
    split = _split_all(records, config.blocking, sources, config.link_type)
    if sum(int(blocking.block_pairs(b.codes, sources, config.link_type).sum())
           for b in split) <= budget:
        return None
    plan = estimate(records, config.blocking, config.link_type, budget=budget, budget_from=why,
                    job=config.job, split=split)
    if plan.total <= budget:
        return plan
    raise ConfigError(refusal(plan, records, config))


def refusal(plan: BlockingPlan, records: pd.DataFrame, config: JobConfig) -> str:
    """The message of a job over budget: the rule with the most new pairs, and the first
    refinement found that brings the job within budget."""
    k = max(range(len(plan.rules)), key=lambda i: plan.rules[i].new_pairs)
    worst, rule = plan.rules[k], config.blocking[k]
    text = (f"config key 'blocking' rule '{worst.name}': the rules would give about "
            f"{plan.total:,} candidate pairs ({plan.per_record(plan.total):.1f} per record), "
            f"over the budget of {plan.budget:,} ({plan.budget_from}); "
            f"{worst.new_pairs:,} of them are this rule's alone")
    found = suggest(records, rule, config, plan.total - worst.new_pairs, plan.budget)
    if found is None:
        text += ("; no refining key brings it within budget: give the rule another key, "
                 "drop it, or raise max_candidate_pairs")
    else:
        better, pairs = found
        text += (f"; refine it: `refine: [{', '.join(better.refine)}]` with "
                 f"`max_block_size: {better.max_block_size}` gives it {pairs:,} pairs, within "
                 "budget")
    return text + ". `linkage blocking CONFIG` shows every rule's estimate."


def suggest(records: pd.DataFrame, rule: BlockingRule, config: JobConfig, others: int,
            budget: int) -> tuple[BlockingRule, int] | None:
    """A refinement of ``rule`` under which the job fits: a refining key first in its chain,
    and the largest block size (of halvings down to 10) at which the rule's pairs, all
    counted as new beside the ``others`` pairs of the other rules, stay within ``budget``."""
    fields = {f for s in config.sources for f in s.fields}
    available = refining_columns(fields)
    keys = [k for k in dict.fromkeys([*rule.refine, *DEFAULT_REFINE, "village_norm"])
            if k in available and k not in rule.keys]
    sizes, size = [], rule.max_block_size
    while size >= 10:
        sizes.append(size)
        size //= 2
    sources = pd.factorize(records["source"])[0]
    memo: dict = {}
    best = None
    for key in keys:
        chain = (key, *[k for k in rule.refine if k != key])
        for size in sizes:
            if best is not None and size <= best[0].max_block_size:
                break
            variant = replace(rule, refine=chain, max_block_size=size,
                              link_type=config.link_type)
            blocks = blocking.rule_blocks(records, variant, sources, memo=memo)
            pairs = int(blocking.block_pairs(blocks.codes, sources, config.link_type).sum())
            if others + pairs <= budget:
                best = (variant, pairs)
                break
    return best
