"""Shared fixtures: stores on SQLite (always) and on the local PostgreSQL and MariaDB
servers (each test gets a database of its own, created and dropped here)."""

from __future__ import annotations

import io
import os
import uuid

import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.store import Store  # noqa: E402

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def _server_or_skip(reason: str):
    # On CI the servers are started by .ci/run, so a missing server is a failure there.
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _pg_admin():
    import psycopg

    try:
        return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=3, **PG)
    except psycopg.Error as exc:
        _server_or_skip(f"PostgreSQL is not reachable: {exc}")


def _my_admin():
    import pymysql

    try:
        return pymysql.connect(autocommit=True, connect_timeout=3, **MY)
    except pymysql.Error as exc:
        _server_or_skip(f"MariaDB is not reachable: {exc}")


@pytest.fixture
def pg_url():
    name = f"hl_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def mysql_url():
    name = f"hl_test_{uuid.uuid4().hex[:12]}"
    admin = _my_admin()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield f"mysql://{MY['user']}@{MY['host']}:{MY['port']}/{name}"
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


@pytest.fixture
def sqlite_url(tmp_path):
    return "sqlite:///" + str(tmp_path / "store.db")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server),
                        pytest.param("mysql", marks=pytest.mark.server)])
def store_url(request):
    """A fresh, empty store on each backend."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[request.param]
    return request.getfixturevalue(fixture)


@pytest.fixture
def store(store_url):
    s = Store.open(store_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(sqlite_url):
    s = Store.open(sqlite_url)
    yield s
    s.close()


def make_image(seed: int = 0, size=(64, 48), fmt="PNG") -> bytes:
    """A small image that differs visibly (and in pHash) from one seed to another."""
    img = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    draw = ImageDraw.Draw(img)
    w, h = size
    for i in range(4):
        x = (seed * (i + 3) * 7) % w
        y = (seed * (i + 5) * 11) % h
        draw.rectangle([x, y, x + w // 3, y + h // 3], fill=((seed + i * 80) % 256, 255 - (seed % 256), i * 60))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def image_bytes():
    return make_image
