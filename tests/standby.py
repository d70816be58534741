"""The ``standby_pair`` fixture: a primary with one streaming hot standby (benchmarks/standby.py).

One pair per test that asks for it: starting one costs a base backup of an empty cluster
(about a second), and a test that pauses replay must not leave a paused standby to the next.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.standby import StandbyPair
from benchmarks.standby import standby_pair as start_standby_pair

DATABASE = "alp_replica_test"


@pytest.fixture
def standby_pair() -> Iterator[StandbyPair]:
    """A primary and its streaming hot standby; ``primary_url`` and ``standby_url`` name the
    database ``alp_replica_test``, which exists on both. Both servers stop after the test.

    The pair lives in the system's temporary directory, not pytest's: as root, pytest resets
    /tmp/pytest-of-root to mode 0700 when any session starts, which would lock the server
    user out of a running cluster (the session cluster in conftest.py does the same).
    """
    with start_standby_pair(database=DATABASE) as pair:
        yield pair
