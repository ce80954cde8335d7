"""The Source seam: the SQL store satisfies the protocol, the opener dispatches by scheme,
every write journals itself, and one schema-version policy speaks for every layer."""

from __future__ import annotations

import pytest

from app.domain import Failure, HashlensError, ListingQuery, NewEntry
from app.source import SOURCE_MEMBERS, SchemaStanding, Source, schema_version_policy
from app import sources
from app.sources import open_source, register_scheme, registered_schemes, schema_policy


def _entry(identifier: str, phash: int = 1) -> NewEntry:
    return NewEntry(identifier, "label", phash, None, None, None, None, None, (("k", "v"),))


def test_the_sql_store_is_a_source(store_url):
    with open_source(store_url, create=True) as store:
        assert isinstance(store, Source)
        missing = [name for name in SOURCE_MEMBERS if not hasattr(store, name)]
        assert missing == []


def test_the_static_member_list_names_reads_writes_and_closing():
    for name in ("list_page", "iter_listing", "count", "change_token", "history", "move_entry",
                 "add_entry", "remove_metadata", "group", "close", "read_only", "file_path"):
        assert name in SOURCE_MEMBERS


def test_open_source_never_creates_unless_asked(tmp_path):
    path = tmp_path / "missing" / "store.db"
    with pytest.raises(HashlensError) as caught:
        open_source(str(path))
    assert caught.value.failure is Failure.STORE_UNAVAILABLE
    assert str(path) in caught.value.description
    assert not path.exists()
    with open_source(str(path), create=True) as store:
        assert store.list_databases() == []
    assert path.exists()


def test_unknown_scheme_is_a_clear_error_naming_the_known_ones():
    with pytest.raises(HashlensError) as caught:
        open_source("ftp://example/store")
    assert caught.value.failure is Failure.STORE_UNAVAILABLE
    assert "unknown scheme 'ftp'" in caught.value.description
    assert "sqlite://" in caught.value.description


def test_sql_schemes_and_their_aliases_are_registered():
    assert {"sqlite", "postgresql", "postgres", "mysql", "mariadb"} <= set(registered_schemes())


def test_a_new_scheme_is_one_registration(monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "_OPENERS", dict(sources._OPENERS))
    seen = []

    def opener(url, *, read_only, create):
        seen.append((url, read_only, create))
        return open_source(str(tmp_path / "s.db"), create=True)

    register_scheme("Mirror", opener)
    with open_source("mirror://host/x", read_only=False, create=True) as store:
        assert isinstance(store, Source)
    assert seen == [("mirror://host/x", False, True)]


def test_each_write_is_journalled_once_by_the_source(store_url):
    with open_source(store_url, create=True) as store:
        store.create_database("A")
        store.create_database("B")
        store.add_entry("A", _entry("one"), source="/images/one.png")
        store.add_entry("A", _entry("two", 2))
        store.add_metadata("A", "one", "colour", "red")
        store.update_metadata("A", "one", "colour", "blue")
        store.remove_metadata("A", "one", "colour")
        store.relabel("A", "one", "label", "new")
        store.rename_entry("A", "one", "uno")
        store.null_image_data("A", "uno")
        store.move_entry("A", "uno", "B")
        store.remove_entry("A", "two")
        store.rename_database("B", "C")
        assert store.remove_database("C") == 1
        actions = [(e.action, e.database, e.identifier) for e in store.history()]
        assert actions == [
            ("CreateImageHashDatabase", "A", None),
            ("CreateImageHashDatabase", "B", None),
            ("TrainImageHash", "A", "one"),
            ("TrainImageHash", "A", "two"),
            ("AddImageHashMetadata", "A", "one"),
            ("UpdateImageHashMetadata", "A", "one"),
            ("RemoveImageHashMetadata", "A", "one"),
            ("RelabelImageHashImage", "A", "one"),
            ("RenameImageHash", "A", "one"),
            ("NullImageHashImageData", "A", "uno"),
            ("MoveImageHash", "A", "uno"),
            ("RemoveImageHash", "A", "two"),
            ("RenameImageHashDatabase", "B", None),
            ("RemoveImageHashDatabase", "C", None),
        ]
        history = store.history()
        assert history[2].params["imagepath"] == "/images/one.png"
        assert history[-1].params == {"entries": 1}


def test_a_refused_write_changes_and_journals_nothing(store_url):
    with open_source(store_url, create=True) as store:
        store.create_database("A")
        store.add_entry("A", _entry("one"))
        before = store.change_token()
        with pytest.raises(HashlensError) as caught:
            store.add_entry("A", _entry("one"))
        assert caught.value.failure is Failure.IDENTIFIER_EXISTS
        assert store.change_token() == before
        assert store.count(ListingQuery("A")).value == 1


def test_a_group_is_one_change_with_one_journal_record(store_url):
    with open_source(store_url, create=True) as store:
        store.create_database("A")
        before = len(store.history())
        with store.group("ImportImageHashes", "A", {"file": "x.csv"}) as params:
            store.add_entry("A", _entry("one"))
            store.add_entry("A", _entry("two", 2))
            params["added"] = 2
        history = store.history()
        assert len(history) == before + 1
        assert (history[-1].action, history[-1].params) == ("ImportImageHashes", {"file": "x.csv", "added": 2})
        with pytest.raises(HashlensError):
            with store.group("ImportImageHashes", "A"):
                store.add_entry("A", _entry("three", 3))
                store.add_entry("A", _entry("one"))
        assert store.count(ListingQuery("A")).value == 2
        assert len(store.history()) == before + 1


@pytest.mark.parametrize("found, standing, words", [
    (3, SchemaStanding.CURRENT, None),
    (2, SchemaStanding.OLDER, "read-only until you run 'hashlens migrate'"),
    (4, SchemaStanding.NEWER, "written by a newer Hashlens"),
    (None, SchemaStanding.UNKNOWN, "records no schema version"),
])
def test_one_schema_version_policy(found, standing, words):
    policy = schema_version_policy(found, 3)
    assert policy.standing is standing
    assert policy.writable == (standing is SchemaStanding.CURRENT)
    reason = policy.reason("here")
    assert (reason is None) if words is None else (words in reason)


def test_the_policy_for_this_version_is_current():
    assert schema_policy(sources.SCHEMA_VERSION).writable
    assert schema_policy(sources.SCHEMA_VERSION - 1).needs_migration
