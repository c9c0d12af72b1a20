"""What every request of the review app shares: the store, the queue and the source records."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from linkage.config import JobConfig
from linkage.store import Store
from linkage.web.queue import ReviewQueue
from linkage.web.records import RecordBook


@dataclass
class AppState:
    store: Store
    queue: ReviewQueue
    records: RecordBook
    config: JobConfig | None

    @property
    def engine(self):
        return self.store.engine


def app_state(request: Request) -> AppState:
    return request.app.state.review
