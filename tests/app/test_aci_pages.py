"""ListImageHashes pages (`maxresults` up to 2,000) take a short path: one statement, and
for a plain listing the identifiers alone. Whatever the window, the answer must be the
one the general path (keyset batches, one entry writer) gives, on every backend."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from app.aci.actions import handle
from app.domain import ListingQuery
from app.mediaserver_codec import writer
from app.services import actions
from app.services.sample import generate_sample

COUNT = 2600  # past two position marks (one every 1,024 entries)


def _general(store, query: ListingQuery) -> str:
    return "".join(writer.listing(store.iter_listing(query), imagestatus=query.imagestatus, metadata=query.metadata))


def test_pages_match_the_general_path(store, image_bytes):
    generate_sample(store, "D", COUNT, seed=3)
    # Identifiers that need escaping take the writer's careful path.
    for i, name in enumerate(("a&b", "x<y>", "cr\rhere")):
        actions.train_image(store, "D", data=image_bytes(i), identifier=name, label="l", metadata=[("k", "v&")])
    total = COUNT + 3

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(start=st.integers(1, total + 5), maxresults=st.integers(1, 2000), imagestatus=st.booleans(),
           metadata=st.booleans())
    def check(start, maxresults, imagestatus, metadata):
        request = (f"action=ListImageHashes&database=D&start={start}&maxresults={maxresults}"
                   f"&imagestatus={str(imagestatus).lower()}&metadata={str(metadata).lower()}")
        got = handle(store, request)
        assert got.ok
        query = ListingQuery("D", start=start, maxresults=maxresults, imagestatus=imagestatus, metadata=metadata)
        assert got.text() == _general(store, query)

    check()
    # The edges: the last entries (escaped identifiers) and past the end.
    for start in (total - 2, total, total + 1):
        got = handle(store, f"action=ListImageHashes&database=D&start={start}&maxresults=5")
        assert got.text() == _general(store, ListingQuery("D", start=start, maxresults=5))
    missing = handle(store, "action=ListImageHashes&database=nope&maxresults=5")
    assert not missing.ok
