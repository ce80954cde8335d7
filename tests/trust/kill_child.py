"""Child process of the kill campaign: runs one operation on a store until it ends or a
fault hook (HASHLENS_FAULTS) or the parent kills it."""

import sys
from pathlib import Path

from app.domain import ListingQuery
from app.exports.export import export_listing
from app.exports.formats import ExportOptions
from app.exports.importer import ImportOptions, import_file
from app.services import actions, sample
from app.store import Store

STEPS = 20  # how many separate changes the looping operations make


def main(op: str, url: str, work: str, variant: str = "") -> None:
    work = Path(work)
    store = Store.open(url)
    ids = [f"e{i:04d}" for i in range(STEPS)]
    if op == "train":
        actions.train_files(store, "A", [work / "images"], workers=2)
    elif op == "import":
        import_file(store, work / "in.ndjson", "Imp", ImportOptions())
    elif op == "export":
        export_listing(store, ListingQuery("A", imagestatus=True, metadata=True), work / "out.csv",
                       ExportOptions("csv", spreadsheet_safe=variant != "raw"))
    elif op == "move":
        for ident in ids:
            actions.move_image_hash(store, "A", ident, "B")
    elif op == "rename":
        for ident in ids:
            actions.rename_image_hash(store, "A", ident, ident + "-renamed")
    elif op == "remove":
        for ident in ids:
            actions.remove_image_hash(store, "A", ident)
    elif op == "dbrename":
        names = ("B", "B2")
        for i in range(STEPS):
            actions.rename_database(store, names[i % 2], names[(i + 1) % 2])
    elif op == "sample":
        sample.generate_sample(store, "S", 1500, images=10)
    else:
        raise SystemExit(f"unknown operation {op}")
    store.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
