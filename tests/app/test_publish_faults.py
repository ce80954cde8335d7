"""Any mix of faults on the trainings, then publishing again until done: every entry with image data is on the server exactly once (a property test)."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.mediaserver.client import MediaServerError
from app.mediaserver.publish import publish
from app.mediaserver_codec import names
from tests.app.test_publish import assert_exactly_once, client_for, local_store
from tests.standin import Fault, Standin

# Faults before the server acts (error, close, a proxy's status) and after (a dropped
# answer), on trainings, on the queue's status and on the listings that check.
KINDS = ["error", "close", "http_status", "drop_after_write"]
ACTIONS = [names.TRAIN_IMAGE_HASH, names.QUEUE_INFO, names.LIST_IMAGE_HASHES]
faults = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(ACTIONS), st.integers(1, 12)), max_size=4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planned=faults, in_flight=st.integers(1, 4), go_on=st.booleans())
def test_faults_then_runs_until_done_train_each_entry_once(planned, in_flight, go_on):
    with tempfile.TemporaryDirectory() as folder, Standin({"remote": []}) as server:
        store = local_store(f"sqlite:///{Path(folder) / 'store.db'}", 14)
        try:
            for kind, action, at in planned:
                if kind == "drop_after_write" and action != names.TRAIN_IMAGE_HASH:
                    kind = "close"  # a read has nothing to apply
                server.add_fault(Fault(kind, at=at, action=action))
            for run in itertools.count(1):
                assert run < 10
                try:
                    report = publish(store, client_for(server, retries=1), "local", "remote", in_flight=in_flight,
                                     continue_on_error=go_on)
                except MediaServerError:
                    continue  # a fault before anything was sent (the check of the server database): run again
                if report.complete:
                    break
            assert_exactly_once(server, store)
        finally:
            store.close()
