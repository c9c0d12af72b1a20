"""One day at the enrolment office: NCMS households whose forms and receipts arrive today.

Why: the day's enrolment check (`linkage daily`) is measured on a batch whose errors are known.
The day's households are taken out of a world's NCMS roster (the roster the job links first)
and handed in as the batch, each receipt dated today, carrying the errors the world seeded:
receipts (receipts.py), IDs, dates and names (errors.py), people insured twice (sources.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from linkage.synth.world import World


def enrolment_day(world: World, households: int | Sequence[str], seed: int = 0,
                  day: str | None = None) -> tuple[World, pd.DataFrame]:
    """The world without the day's NCMS households, and the day's batch (NCMS columns).

    ``households``: how many to draw at random (the same seed, the same day), or their family
    codes (家庭编号). Every receipt of the batch is dated ``day`` (default: the latest date any
    of them was paid). The truth and the error log keep every record, the batch's too.
    """
    codes = world.ncms["家庭编号"].drop_duplicates().to_numpy()
    if isinstance(households, int):
        rng = np.random.default_rng([seed, 1])
        chosen = rng.choice(codes, size=min(households, len(codes)), replace=False)
    else:
        chosen = np.asarray(list(households), dtype=object)
    today = world.ncms["家庭编号"].isin(chosen).to_numpy()
    batch = world.ncms[today].reset_index(drop=True)
    batch["缴费日期"] = day or str(batch["缴费日期"].max())
    rest = world.ncms[~today].reset_index(drop=True)
    return replace(world, ncms=rest), batch
