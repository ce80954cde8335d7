"""Writes the bad-input corpus files (run once; the files are committed)."""

import io
import sqlite3
import struct
import zlib
from pathlib import Path

from PIL import Image

HERE = Path(__file__).parent / "bad"


def png_claiming(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))


def image(fmt, size=(120, 90)):
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buf, fmt)
    return buf.getvalue()


def main():
    HERE.mkdir(exist_ok=True)
    files = {
        "bomb-20000.png": png_claiming(20000, 20000),
        "bomb-9000.png": png_claiming(9000, 9000),
        "truncated.jpg": image("JPEG")[:300],
        "truncated.png": image("PNG")[:60],
        "garbage.png": b"\x89PNG but not really" * 10,
        "empty.jpg": b"",
        "text.gif": b"GIF89a is what I would say if I were a GIF",
        "risky.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        "risky.pcx": image("PCX"),
        "risky.tga": image("TGA"),
        "zeroed-header.db": b"\0" * 4096,
        "not-sqlite.db": b"name,value\nthis,is a csv file\n" * 50,
    }
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    # A real store cut short, and a store from a newer Hashlens.
    import tempfile

    from app.services import actions
    from app.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.db"
        with Store.open(f"sqlite:///{path}") as store:
            actions.create_database(store, "D")
            store.sql.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
        data = path.read_bytes()
        (HERE / "truncated.db").write_bytes(data[: len(data) // 3])
        conn = sqlite3.connect(path)
        conn.execute("UPDATE hl_store_info SET value = '99' WHERE name = 'schema_version'")
        conn.commit()
        conn.close()
        (HERE / "newer-schema.db").write_bytes(path.read_bytes())


if __name__ == "__main__":
    main()
