"""Child process for the bounded-memory import tests: imports one file and prints, as
JSON, whether it was refused, the message, and the peak RSS growth during the import."""

import json
import resource
import sys

from app.domain import HashlensError
from app.exports.importer import ImportOptions, import_file
from app.store import Store


def main(url: str, path: str) -> None:
    store = Store.open(url)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        import_file(store, path, "Big", ImportOptions(csv_dialect="raw"))
        refused, message = False, ""
    except HashlensError as exc:
        refused, message = True, exc.description
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"refused": refused, "message": message, "growth_kb": peak - base}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
