"""What every request of the review app shares: the store, the queue, the source records, the
server-side sessions, the sign-in throttle and the household correspondences' addresses."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from linkage.core.config import JobConfig
from linkage.store import Store
from linkage.web.householdview import Correspondences
from linkage.web.login_guard import LoginGuard
from linkage.web.queue import ReviewQueue
from linkage.web.records import RecordBook
from linkage.web.session import Sessions


@dataclass
class AppState:
    store: Store
    queue: ReviewQueue
    records: RecordBook
    config: JobConfig | None
    sessions: Sessions
    login_guard: LoginGuard
    households: Correspondences  # the latest run's household correspondences by URL token

    @property
    def engine(self):
        return self.store.engine


def app_state(request: Request) -> AppState:
    return request.app.state.review
