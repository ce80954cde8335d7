"""The listing compiler: a `ListingQuery` to SQL, pages by position mark and keyset.

One path serves the window's table, the command line's `list`, exports and audits. Filters
are a table of operations (`FILTERS`), each giving its SQL with bound parameters; the
words shown for a filter come from `Filter.describe`, one source of words (Datasette's
filters are the model). Every LIKE pattern is escaped and every value bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from app.domain import (
    Count,
    EntryRow,
    Filter,
    FilterOp,
    ListingPage,
    ListingQuery,
    PHASH_MASK,
    SortKey,
    hamming,
)
from app.store.dialect import HashlensDialect
from app.store.sql import IN_CHUNK, SqlRunner, chunks

ENTRY_COLUMNS = (
    "e.id, e.identifier, e.label, e.has_image_data, e.phash, e.image_format, "
    "e.width, e.height, e.byte_size, e.meta_count, e.trained_at, e.declared_image_data"
)

# A pHash that is not known (NULL) sorts before every known one; ties are broken by the
# key as for every sort, so keyset paging stays exact.
_PHASH_LOWEST = -(1 << 63)

# Each sort is one or more SQL terms, compared left to right, then the key.
_SORT_COLUMNS: dict[SortKey, tuple[str, ...]] = {
    SortKey.IDENTIFIER: ("e.identifier",),
    SortKey.LABEL: ("e.label",),
    SortKey.HAS_IMAGE_DATA: ("e.has_image_data",),
    SortKey.META_COUNT: ("e.meta_count",),
    # The pHash is stored signed (two's complement), but people read it as hex: the sign
    # bit first makes the order the unsigned one, 0000… to ffff… (issue 14); not known
    # first. Plans are unchanged: no backend used an index for this sort.
    SortKey.PHASH: ("CASE WHEN e.phash IS NULL THEN -1 WHEN e.phash < 0 THEN 1 ELSE 0 END",
                    f"COALESCE(e.phash, {_PHASH_LOWEST})"),
    SortKey.WIDTH: ("COALESCE(e.width, -1)",),
    SortKey.TRAINED_AT: ("e.trained_at",),
}


def to_signed64(value: int | None) -> int | None:
    """A 64-bit pHash as the signed integer every backend's BIGINT holds (ours); None
    (not known) stays None, which the store holds as NULL."""
    if value is None:
        return None
    value &= PHASH_MASK
    return value - (1 << 64) if value >= 1 << 63 else value


def escape_like(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _meta_exists(f: Filter) -> str:
    # A probe of the (entry, key) index per entry: a page of a common key stops after its
    # rows, where IN (SELECT ...) would first collect every entry having the key.
    return "EXISTS (SELECT 1 FROM hl_metadata m WHERE m.entry_id = e.id AND m.meta_key = ?)"


# The one table of filter operations: each gives `(sql, params)` for its filter on this
# dialect; the filter's words are `Filter.describe()`.
FILTERS: dict[FilterOp, Callable[[HashlensDialect, Filter], tuple[str, list]]] = {
    FilterOp.LABEL_CONTAINS: lambda d, f: (d.contains("e.label"), ["%" + escape_like(f.value) + "%"]),
    FilterOp.LABEL_EQUALS: lambda d, f: ("e.label = ?", [f.value]),
    FilterOp.HAS_IMAGE_DATA: lambda d, f: (d.truth("e.has_image_data", bool(f.value)), []),
    FilterOp.META_PRESENT: lambda d, f: (_meta_exists(f), [f.key]),
    FilterOp.META_ABSENT: lambda d, f: ("NOT " + _meta_exists(f), [f.key]),
    FilterOp.META_EQUALS: lambda d, f: (
        "e.id IN (SELECT m.entry_id FROM hl_metadata m WHERE m.meta_key = ? AND m.meta_value = ?)", [f.key, f.value]),
    FilterOp.PHASH_WITHIN: lambda d, f: (d.hamming_within("e.phash"), [to_signed64(f.value), f.distance]),
}


@dataclasses.dataclass(frozen=True)
class CompiledFilter:
    """A filter as SQL with its bound values, and in words."""

    sql: str
    params: list
    words: str


def compile_filter(dialect: HashlensDialect, f: Filter) -> CompiledFilter:
    sql, params = FILTERS[f.op](dialect, f)
    return CompiledFilter(sql, params, f.describe())


class Listing:
    """Listings of one store: pages, whole windows in batches, counts, metadata keys."""

    def __init__(self, sql: SqlRunner, database_id: Callable[[str], int], reading):
        self.sql = sql
        self.dialect = sql.dialect
        self.database_id = database_id
        self.reading = reading
        # The entry columns read; a store still at schema 1 (readable until migrated) has
        # no declared_image_data, so it reads NULL in its place (`for_schema`).
        self.columns = ENTRY_COLUMNS

    def for_schema(self, version: int | None) -> None:
        self.columns = ENTRY_COLUMNS if (version or 0) >= 2 else \
            ENTRY_COLUMNS.replace("e.declared_image_data", "NULL")

    def images_by_key(self, keys: list[int]) -> dict[int, bytes]:
        """Image bytes for a batch of entries, one query per chunk (exports, audits)."""
        found: dict[int, bytes] = {}
        for chunk in chunks(keys, IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            for key, data in self.sql.all(f"SELECT entry_id, data FROM hl_image WHERE entry_id IN ({marks})", chunk):
                found[key] = bytes(data)
        return found

    # -- listing ------------------------------------------------------------------------------

    def list_page(self, query: ListingQuery) -> ListingPage:
        """One window of a listing: `start`/`maxresults` of the filtered, ordered entries."""
        if (not query.is_filtered and query.sort is SortKey.POSITION and not query.descending
                and not query.metadata and self.dialect.one_statement_page):
            return self._plain_page(query)
        # One snapshot for every statement of the page (mark seek, rows, metadata, total),
        # so a change committed meanwhile is seen whole or not at all.
        with self.reading():
            db_id = self.database_id(query.database)
            if query.identifiers is not None:
                rows = self._rows_by_identifiers(db_id, query)
            else:
                rows = self._window_rows(db_id, query, query.start, query.maxresults)
            total = None if query.is_filtered else self.entry_count(db_id)
        return ListingPage(query, rows, total)

    def _plain_page(self, query: ListingQuery) -> ListingPage:
        """The browsing hot path, a page of all entries in database order, as one statement:
        the database, its position mark, the page and the total are read together, so the
        page needs no transaction and one round trip to a server. (MySQL cannot take a
        subquery in OFFSET; it uses the general path.)"""
        raw = self.sql.all(self._plain_sql(query, self.columns), (query.database, query.start, query.start))
        if not raw:
            # Past the end, an empty database, or no such database: one more look says which.
            db_id = self.database_id(query.database)
            return ListingPage(query, [], self.entry_count(db_id))
        return ListingPage(query, _rows(raw, query.start), raw[0][-1])

    def _plain_sql(self, query: ListingQuery, columns: str) -> str:
        # The steps from the position mark to `start` are taken in the (database_id, id)
        # index alone (`first`); only the page's own rows are then read from the table. An
        # OFFSET over the table's columns would read every skipped row too (about 3 times
        # slower for a page of 50 at a random start).
        limit = query.maxresults if query.maxresults is not None else self.dialect.limit_max
        return (
            "WITH d AS (SELECT id, entry_count FROM hl_database WHERE name = ?), "
            "mk AS (SELECT ordinal, entry_id FROM hl_mark WHERE database_id = (SELECT id FROM d) "
            "AND ordinal <= ? ORDER BY ordinal DESC LIMIT 1), "
            "first AS (SELECT e.id FROM hl_entry e WHERE e.database_id = (SELECT id FROM d) "
            "AND e.id >= COALESCE((SELECT entry_id FROM mk), 0) ORDER BY e.id "
            "LIMIT 1 OFFSET (? - COALESCE((SELECT ordinal FROM mk), 1))) "
            f"SELECT {columns}, (SELECT entry_count FROM d) FROM hl_entry e "
            "WHERE e.database_id = (SELECT id FROM d) AND e.id >= (SELECT id FROM first) ORDER BY e.id"
            + (f" LIMIT {int(limit)}" if limit is not None else "")
        )

    def page_identifiers(self, query: ListingQuery) -> list[str]:
        """Only the identifiers of a page (ListImageHashes without imagestatus or
        metadata): for a plain page, the same one statement as `list_page` reading one
        column instead of eleven; otherwise the identifiers of `list_page`'s rows."""
        if (query.is_filtered or query.sort is not SortKey.POSITION or query.descending
                or not self.dialect.one_statement_page):
            return [row.identifier for row in self.list_page(query).rows]
        raw = self.sql.all(self._plain_sql(query, "e.identifier"), (query.database, query.start, query.start))
        if not raw:
            self.database_id(query.database)  # an unknown database is an error, not an empty page
        return [r[0] for r in raw]

    def iter_listing(self, query: ListingQuery, batch: int = 2000) -> Iterator[list[EntryRow]]:
        """The whole window of a listing in batches, by keyset, in one read snapshot:
        memory stays flat and an export sees no half-made change (reliability C3)."""
        db_id = self.database_id(query.database)
        with self.reading():
            if query.identifiers is not None:
                yield from chunks(self._rows_by_identifiers(db_id, query), batch)
                return
            remaining = query.maxresults
            position = query.start
            after = None
            while remaining is None or remaining > 0:
                size = batch if remaining is None else min(batch, remaining)
                if after is None:
                    rows = self._window_rows(db_id, query, position, size)
                else:
                    rows = self._rows_after(db_id, query, after, position, size)
                if not rows:
                    return
                yield rows
                position += len(rows)
                if remaining is not None:
                    remaining -= len(rows)
                after = self._sort_value(query, rows[-1])
                if len(rows) < size:
                    return

    def entry_count(self, db_id: int) -> int:
        return self.sql.one("SELECT entry_count FROM hl_database WHERE id = ?", (db_id,))[0]

    def count(self, query: ListingQuery, bound: int | None = None) -> Count:
        """Entries in the whole (unwindowed) listing; with `bound`, stop counting past it."""
        if not query.is_filtered:
            return Count(self.entry_count(self.database_id(query.database)), True)
        if query.identifiers is not None:
            db_id = self.database_id(query.database)
            return Count(len(self._rows_by_identifiers(db_id, query.unwindowed())), True)
        complement = _complement(query.filters, bounded=bound is not None)
        if complement is not None:
            # What an index cannot find (entries lacking a key, entries keeping their
            # image) is counted as the rest minus its opposite, which an index finds:
            # "lacks 'case'" at 1M entries walked every entry (455 ms); the key's own
            # index range answers it in milliseconds. One snapshot for both counts.
            rest, opposite = complement
            with self.reading():
                whole = self.count(dataclasses.replace(query, filters=rest)).value
                n = whole - self.count(dataclasses.replace(query, filters=rest + (opposite,))).value
            return Count(n, True) if bound is None else Count(min(n, bound), n <= bound)
        # The database is found by name inside the count's own statement: one statement
        # where a label's count takes a few microseconds (a missing database is told
        # apart from an empty listing only when the count is 0).
        where, params = self._count_where(query)
        if bound is None:
            n = self.sql.one(f"SELECT COUNT(*) FROM {where}", params)[0]
        else:
            n = self.sql.one(
                f"SELECT COUNT(*) FROM (SELECT 1 AS one FROM {where}{self.sql.limit(bound + 1)}) AS bounded",
                params,
            )[0]
        if n == 0:
            self.database_id(query.database)  # raises for a missing database
        return Count(n, True) if bound is None else Count(min(n, bound), n <= bound)

    def _count_where(self, query: ListingQuery) -> tuple[str, list]:
        """`FROM … WHERE …` for a count, the database given by name. A metadata filter
        drives it when there is one: the (key, value, entry) index yields just the entries
        having the key (or the key and value), each once since a key is unique per entry,
        where probing every entry of the database for it took 50-100x longer (issue 15
        item 4)."""
        by_name = "e.database_id = (SELECT id FROM hl_database WHERE name = ?)"
        driver = next((f for f in query.filters if f.op is FilterOp.META_EQUALS), None) or \
            next((f for f in query.filters if f.op is FilterOp.META_PRESENT), None)
        if driver is None:
            source, clauses, params = "hl_entry e", [by_name], [query.database]
        else:
            # SQLite keeps the written loop order with CROSS JOIN; a server's planner picks it.
            join = "CROSS JOIN" if self.dialect.metadata_driven_scan else "JOIN"
            source = f"hl_metadata dm {join} hl_entry e ON e.id = dm.entry_id"
            clauses, params = ["dm.meta_key = ?"], [driver.key]
            if driver.op is FilterOp.META_EQUALS:
                clauses.append("dm.meta_value = ?")
                params.append(driver.value)
            clauses.append(by_name)
            params.append(query.database)
        for f in query.filters:
            if f is not driver:
                sql, values = self._filter_sql(f)
                clauses.append(sql)
                params.extend(values)
        return f"{source} WHERE {' AND '.join(clauses)}", params

    def _terms(self, query: ListingQuery) -> tuple[str, ...]:
        """The SQL terms a sorted listing is ordered by, before the key."""
        if query.sort is SortKey.DISTANCE:
            return (self.dialect.hamming("e.phash", to_signed64(query.reference)),)
        return _SORT_COLUMNS[query.sort]

    def _order(self, query: ListingQuery) -> str:
        direction = " DESC" if query.descending else ""
        if query.sort is SortKey.POSITION:
            return f"{'dm.entry_id' if self._driver(query) else 'e.id'}{direction}"
        return ", ".join(f"{term}{direction}" for term in (*self._terms(query), "e.id"))

    def _window_rows(self, db_id: int, query: ListingQuery, start: int, limit: int | None) -> list[EntryRow]:
        where, params = self._where(db_id, query)
        offset = start - 1
        if not query.filters and query.sort is SortKey.POSITION and not query.descending and offset:
            # Seek to the nearest position mark instead of stepping over `start` rows.
            mark = self.sql.one(
                "SELECT ordinal, entry_id FROM hl_mark WHERE database_id = ? AND ordinal <= ? "
                "ORDER BY ordinal DESC" + self.sql.limit(1),
                (db_id, start),
            )
            if mark is not None:
                where += " AND e.id >= ?"
                params = params + [mark[1]]
                offset = start - mark[0]
        if not query.filters and query.sort is not SortKey.POSITION and offset:
            # A deep page of a sorted listing: OFFSET walks from whichever end is nearer,
            # so the last page costs what the first does.
            total = self.entry_count(db_id)
            if offset > total // 2:
                if start > total:
                    return []
                size = total - offset if limit is None else min(limit, total - offset)
                reverse = dataclasses.replace(query, descending=not query.descending)
                sql = f"SELECT {self.columns} FROM {where} ORDER BY {self._order(reverse)}"
                raw = self.sql.all(sql + self.sql.limit(size, total - offset - size), params)
                return self._build(raw[::-1], start, query)
        sql = f"SELECT {self.columns} FROM {where} ORDER BY {self._order(query)}"
        raw = self.sql.all(sql + self.sql.limit(limit, offset), params)
        return self._build(raw, start, query)

    def _rows_after(self, db_id, query, after, position, limit) -> list[EntryRow]:
        where, params = self._where(db_id, query)
        op = "<" if query.descending else ">"
        if query.sort is SortKey.POSITION:
            key = "dm.entry_id" if self._driver(query) else "e.id"
            where += f" AND {key} {op} ?"
            params = params + [after[1]]
        else:
            terms = (*self._terms(query), "e.id")
            # Row-value comparison (SQLite 3.15+, PostgreSQL, MySQL) keeps the keyset exact.
            where += f" AND ({', '.join(terms)}) {op} ({', '.join('?' * len(terms))})"
            params = params + list(after)
        sql = f"SELECT {self.columns} FROM {where} ORDER BY {self._order(query)}"
        return self._build(self.sql.all(sql + self.sql.limit(limit), params), position, query)

    @staticmethod
    def _sort_value(query: ListingQuery, row: EntryRow) -> tuple:
        """A row's values of its sort's terms (`_SORT_COLUMNS`), then its key."""
        if query.sort is SortKey.POSITION:
            return (None, row.key)
        if query.sort is SortKey.PHASH:
            if row.phash is None:
                return (-1, _PHASH_LOWEST, row.key)
            signed = to_signed64(row.phash)
            return (1 if signed < 0 else 0, signed, row.key)
        if query.sort is SortKey.DISTANCE:
            return (hamming(row.phash, query.reference), row.key)
        value = {
            SortKey.IDENTIFIER: row.identifier,
            SortKey.LABEL: row.label,
            SortKey.HAS_IMAGE_DATA: row.has_image_data,
            SortKey.META_COUNT: row.meta_count,
            SortKey.WIDTH: -1 if row.width is None else row.width,
            SortKey.TRAINED_AT: row.trained_at,
        }[query.sort]
        return (value, row.key)

    def _rows_by_identifiers(self, db_id: int, query: ListingQuery) -> list[EntryRow]:
        """ListImageHashes' identifier filter: unknown ones are left out, repeats count once,
        database order is kept, then start/maxresults window the result (ours, after MS)."""
        wanted = list(dict.fromkeys(query.identifiers))
        where, params = self._where(db_id, query)
        found = []
        for chunk in chunks(wanted, IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            found.extend(
                self.sql.all(
                    f"SELECT {self.columns} FROM {where} AND e.identifier IN ({marks})",
                    params + chunk,
                )
            )
        rows = _rows(found, 1)
        if query.sort is SortKey.POSITION:
            rows.sort(key=lambda r: r.key, reverse=query.descending)
        else:
            rows.sort(key=lambda r: self._sort_value(query, r), reverse=query.descending)
        window = rows[query.start - 1:]
        if query.maxresults is not None:
            window = window[: query.maxresults]
        window = [row._replace(position=query.start + i) for i, row in enumerate(window)]
        return self.with_metadata(window) if query.metadata else window

    def _driver(self, query: ListingQuery):
        """The metadata equality filter that should drive an SQLite scan, if any.

        `e.id IN (SELECT entry_id …)` makes SQLite collect and sort every match before the
        first page (0.9 s for 400,000 matches at 10M). Walking the (key, value, entry_id)
        index instead yields matches already in database order, so a page stops after its
        rows whether the value is common or rare. CROSS JOIN fixes that loop order."""
        if not self.dialect.metadata_driven_scan or query.sort is not SortKey.POSITION:
            return None
        return next((f for f in query.filters if f.op is FilterOp.META_EQUALS), None)

    def _where(self, db_id: int, query: ListingQuery) -> tuple[str, list]:
        """`FROM … WHERE …` for a listing, with every value a bound parameter."""
        driver = self._driver(query)
        source, clauses, params = "hl_entry e", ["e.database_id = ?"], [db_id]
        if driver is not None:
            source = "hl_metadata dm CROSS JOIN hl_entry e ON e.id = dm.entry_id"
            clauses.insert(0, "dm.meta_key = ? AND dm.meta_value = ?")
            params.insert(0, driver.value)
            params.insert(0, driver.key)
        for f in query.filters:
            if f is driver:
                continue
            sql, values = self._filter_sql(f)
            clauses.append(sql)
            params.extend(values)
        return f"{source} WHERE {' AND '.join(clauses)}", params

    def _filter_sql(self, f: Filter) -> tuple[str, list]:
        return FILTERS[f.op](self.dialect, f)

    def _build(self, raw: list, first_position: int, query: ListingQuery) -> list[EntryRow]:
        """Rows from raw entry tuples, with their metadata when the query asks for it: each
        row is built once, in one pass."""
        if not query.metadata:
            return _rows(raw, first_position)
        return _rows(raw, first_position, self.metadata_of([r[0] for r in raw if r[9]]))

    def with_metadata(self, rows: list[EntryRow]) -> list[EntryRow]:
        items = self.metadata_of([r.key for r in rows if r.meta_count])
        return [r._replace(metadata=tuple(items.get(r.key, ()))) for r in rows]

    def metadata_of(self, keys: list[int]) -> dict[int, list]:
        """Entries' metadata in the order it was added. Keys in a dense increasing run (a
        keyset batch of a listing in database order) take one range query; others one IN
        query per chunk."""
        items: dict[int, list] = {}
        sql = "SELECT entry_id, meta_key, meta_value FROM hl_metadata WHERE "
        # Only a dense run of keys: 100 scattered keys may span the whole database.
        if len(keys) > 8 and keys[-1] - keys[0] < 4 * len(keys) and all(a < b for a, b in zip(keys, keys[1:])):
            wanted = set(keys)
            # The range may hold other databases' entries too: keep only ours.
            for key, k, v in self.sql.all(sql + "entry_id BETWEEN ? AND ? ORDER BY entry_id, id", (keys[0], keys[-1])):
                if key in wanted:
                    items.setdefault(key, []).append((k, v))
        else:
            for chunk in chunks(keys, IN_CHUNK):
                marks = ",".join("?" * len(chunk))
                for key, k, v in self.sql.all(sql + f"entry_id IN ({marks}) ORDER BY entry_id, id", chunk):
                    items.setdefault(key, []).append((k, v))
        return items

    def metadata_keys(self, database: str, limit: int = 500) -> list[str]:
        """The metadata keys a database uses, in order (the filter panel's suggestions)."""
        db_id = self.database_id(database)
        in_database = ("EXISTS (SELECT 1 FROM hl_metadata m JOIN hl_entry e ON e.id = m.entry_id "
                       "WHERE m.meta_key = k.name AND e.database_id = ?)")
        sql = self.dialect.metadata_keys(in_database)
        return [r[0] for r in self.sql.all(sql + self.sql.limit(limit), (db_id,))]


def _complement(filters: tuple[Filter, ...], bounded: bool) -> tuple[tuple[Filter, ...], Filter] | None:
    """For a count: (the other filters, the opposite condition) when a filter is better
    counted as the rest minus its opposite (a key absent, image data kept), else None.
    A bounded count of a key's absence scans instead: it stops after bound + 1 entries
    lacking the key, where the key's index range may hold most of the database."""
    for i, f in enumerate(filters):
        if f.op is FilterOp.META_ABSENT and not bounded:
            opposite = Filter(FilterOp.META_PRESENT, key=f.key)
        elif f.op is FilterOp.HAS_IMAGE_DATA and f.value:
            # Entries without image data are few, and a partial index holds just them.
            opposite = Filter(FilterOp.HAS_IMAGE_DATA, False)
        else:
            continue
        return filters[:i] + filters[i + 1:], opposite
    return None


def _rows(raw, first_position: int, metadata: dict[int, list] | None = None) -> list[EntryRow]:
    """EntryRows from raw entry tuples (the columns of ENTRY_COLUMNS); with `metadata`,
    every row gets its items, () when it has none."""
    mask = PHASH_MASK
    if metadata is None:
        return [
            EntryRow(first_position + i, r[0], r[1], r[2], bool(r[3]), None if r[4] is None else r[4] & mask,
                     r[5], r[6], r[7], r[8], r[9], r[10], None, None if r[11] is None else bool(r[11]))
            for i, r in enumerate(raw)
        ]
    get, empty = metadata.get, ()
    return [
        EntryRow(first_position + i, r[0], r[1], r[2], bool(r[3]), None if r[4] is None else r[4] & mask,
                 r[5], r[6], r[7], r[8], r[9], r[10], tuple(get(r[0], empty)),
                 None if r[11] is None else bool(r[11]))
        for i, r in enumerate(raw)
    ]
