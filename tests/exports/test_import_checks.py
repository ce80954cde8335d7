"""The import's quick checks agree with the careful ones they stand in for: every text the
quick pass accepts, `check_text` accepts, and the other way round."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import HashlensError, all_storable, check_text

# Texts near every rule's edge: empty, white space, control and non-characters, surrogates,
# and lengths around 254 bytes of UTF-8 in one- to four-byte characters.
_chars = st.sampled_from(["a", " ", "\t", "\n", "\x00", "\x01", "\x7f", "é", "€", "\ud800", "\ufffe", "\uffff",
                          "😀", "\U0010ffff", "\u2028", "\r"])
_texts = st.one_of(
    st.text(_chars, max_size=8),
    st.builds(lambda c, n, tail: c * n + tail, st.sampled_from(["a", "é", "€", "😀"]), st.integers(60, 260),
              st.text(_chars, max_size=2)),
    st.text(max_size=70),
)


def _passes(text: str, allow_empty: bool) -> bool:
    try:
        check_text("x", text, allow_empty=allow_empty)
    except HashlensError:
        return False
    return True


@settings(max_examples=1500, deadline=None)  # no timing assertion: the machine is shared
@given(st.lists(_texts, max_size=4), st.lists(_texts, max_size=3))
def test_all_storable_is_check_text(texts, values):
    expected = all(_passes(t, False) for t in texts) and all(_passes(v, True) for v in values)
    assert all_storable(texts, values) == expected
