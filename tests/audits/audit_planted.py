"""A store with known, planted problems made from real photographs (scikit-image's
sample data), and the exact findings an audit must report for it."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance

from app.services import actions
from app.store.store import to_signed64

LONG_ID = "é" * 120 + "-page"  # 245 bytes of UTF-8: near the 254-byte limit
AWKWARD_ID = 'text, "quoted"'
LONG_NOTE = "n" * 245
TAMPER_MASK = 0x00000000FFFF0000


def _photo(name: str) -> Image.Image:
    import skimage.data

    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = skimage.data.stereo_motorcycle()
        array = left if name == "motorcycle_left" else right
    else:
        array = getattr(skimage.data, name)()
    image = Image.fromarray(np.asarray(array)).convert("RGB")
    # Half size keeps the store small and the test fast; the pHash does not care.
    return image.resize((image.width // 2, image.height // 2))


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def swap_channels(image: Image.Image) -> Image.Image:
    """Re-coloured: red and blue swapped (a few bits of pHash away, as measured)."""
    r, g, b = image.split()
    return Image.merge("RGB", (b, g, r))


def crop(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    return image.crop((int(w * share), int(h * share), int(w * (1 - share)), int(h * (1 - share))))


def build(store) -> dict:
    """Fill `store` with databases 'photos' and 'archive'; returns facts the tests use."""
    actions.create_database(store, "photos")
    actions.create_database(store, "archive")
    src = {"source": "skimage"}

    def train(db, data, identifier, label, **meta):
        items = {**src, **meta} if identifier != "gravel" else meta
        return actions.train_image(store, db, data=data, identifier=identifier, label=label,
                                   metadata=list(items.items()))

    astronaut, coffee, chelsea = _photo("astronaut"), _photo("coffee"), _photo("chelsea")
    rocket = _photo("rocket")
    # identical pHash, different bytes: resized and recompressed as JPEG
    train("photos", encode(astronaut), "astronaut", "Astronaut")
    train("photos", encode(astronaut.resize((128, 128)), "JPEG", quality=60), "astronaut-small", "Astronaut")
    # near-duplicate with a different label: a likely mislabel
    train("photos", encode(coffee), "coffee", "Coffee")
    train("photos", encode(swap_channels(coffee)), "coffee-recoloured", "Tea")
    # identical bytes under two identifiers
    chelsea_png = encode(chelsea)
    train("photos", chelsea_png, "chelsea", "Cat")
    train("photos", chelsea_png, "chelsea-copy", "Cat")
    # a real near-duplicate pair: the stereo photographs, 4 bits apart
    train("photos", encode(_photo("motorcycle_left")), "motorcycle-left", "Motorcycle")
    train("photos", encode(_photo("motorcycle_right")), "motorcycle-right", "Motorcycle")
    # a cropped and re-coloured copy 12 bits away: NOT a near-duplicate at radius 8
    train("photos", encode(rocket), "rocket", "Rocket")
    train("photos", encode(ImageEnhance.Color(crop(rocket, 0.03)).enhance(0.4), "JPEG", quality=80),
          "rocket-cropped", "Rocket crop")
    # image data removed
    train("photos", encode(_photo("camera")), "camera", "Camera")
    actions.null_image_data(store, "photos", "camera")
    # corrupted blob, tampered pHash (planted below by SQL)
    train("photos", encode(_photo("horse")), "horse", "Horse")
    train("photos", encode(_photo("coins")), "coins", "Coins")
    # names near the limit, with a comma and quotes, generated
    train("photos", encode(_photo("page")), LONG_ID, "Page")
    train("photos", encode(_photo("text")), AWKWARD_ID, "Text")
    generated = actions.train_image(store, "photos", data=encode(_photo("brick")), metadata=list(src.items()))
    # a blank image: a pHash with one bit set
    train("photos", encode(Image.new("RGB", (64, 64), (255, 255, 255))), "blank", "Blank")
    # lacks the 'source' key every other entry has; a value near the limit
    train("photos", encode(_photo("gravel")), "gravel", "Gravel")
    train("photos", encode(_photo("moon")), "moon", "Moon", note=LONG_NOTE)
    train("photos", encode(_photo("grass")), "grass", "Grass")

    # In the archive: chelsea re-coloured, near the two in photos; and one unrelated photo.
    train("archive", encode(swap_channels(chelsea)), "chelsea-archive", "Cat")
    train("archive", encode(_photo("retina")), "retina", "Retina")

    # Damage that only another program (or a disk) could do: written straight into tables.
    key = {ident: k for k, ident in store.sql.all("SELECT id, identifier FROM hl_entry")}
    with store.writing():
        store.sql.exec("UPDATE hl_image SET data = ? WHERE entry_id = ?", (encode(_photo("horse"))[:300], key["horse"]))
        phash = store.sql.one("SELECT phash FROM hl_entry WHERE id = ?", (key["coins"],))[0]
        store.sql.exec("UPDATE hl_entry SET phash = ? WHERE id = ?", (to_signed64(phash ^ TAMPER_MASK), key["coins"]))
        store.sql.exec("UPDATE hl_entry SET label = ? WHERE id = ?", ("", key["grass"]))
    return {"generated": generated}


def expected(facts: dict) -> set[tuple[str, str | None, frozenset]]:
    """(kind, database, identifiers) of every finding the audit must report, and no other."""
    gen = facts["generated"]
    return {
        ("duplicate-phash", "photos", frozenset({"astronaut", "astronaut-small"})),
        ("near-duplicate", "photos", frozenset({"coffee", "coffee-recoloured"})),
        ("likely-mislabel", "photos", frozenset({"coffee", "coffee-recoloured"})),
        ("duplicate-bytes", "photos", frozenset({"chelsea", "chelsea-copy"})),
        ("near-duplicate", "photos", frozenset({"motorcycle-left", "motorcycle-right"})),
        ("no-image-data", "photos", frozenset({"camera"})),
        ("image-undecodable", "photos", frozenset({"horse"})),
        ("phash-mismatch", "photos", frozenset({"coins"})),
        ("identifier-near-limit", "photos", frozenset({LONG_ID})),
        ("identifier-awkward", "photos", frozenset({AWKWARD_ID})),
        ("identifier-auto", "photos", frozenset({gen})),
        ("label-auto", "photos", frozenset({gen})),
        ("hash-degenerate", "photos", frozenset({"blank"})),
        ("metadata-key-gap", "photos", frozenset({"gravel"})),
        ("metadata-near-limit", "photos", frozenset({"moon"})),
        ("label-missing", "photos", frozenset({"grass"})),
        ("label-shared", "photos", frozenset({"label:Astronaut"})),
        ("label-shared", "photos", frozenset({"label:Cat"})),
        ("label-shared", "photos", frozenset({"label:Motorcycle"})),
        ("near-duplicate-across", None, frozenset({"chelsea", "chelsea-copy", "chelsea-archive"})),
    }



def finding_key(f) -> tuple[str, str | None, frozenset]:
    """How a finding is compared with `expected`: shared labels by their label."""
    if f.kind == "label-shared":
        return (f.kind, f.database, frozenset({"label:" + f.query.filters[0].value}))
    return (f.kind, f.database, frozenset(f.identifiers))
