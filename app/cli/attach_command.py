"""`hashlens attach-images`: pHashes (and optionally the images) for entries from a folder
of the image files they were trained from."""

from __future__ import annotations

import sys

from app.cli.common import TerminalProgress
from app.services import attach


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "attach-images",
        help="compute pHashes (and optionally store images) for entries from a folder of image files",
        description="For the entries of DATABASE whose identifier or label matches an image file in FOLDER "
                    "(searched recursively), compute the pHash from the file; with --store-images keep the "
                    "image too. Entries pulled or imported from a Media Server have no pHash until then. "
                    "An entry with several candidate files, or a file claimed by several entries, is reported "
                    "as ambiguous and left alone. All or nothing: one transaction.",
    )
    p.add_argument("database", metavar="DATABASE", help="the database whose entries get pHashes")
    p.add_argument("folder", metavar="FOLDER", help="the folder of image files")
    p.add_argument("--match", choices=attach.MATCHES, default="identifier",
                   help="what a file's name must equal: the entry's identifier (default; the file's name, stem or "
                        "path in the folder), its label, or 'stem': the file's stem equals the identifier's or "
                        "label's stem")
    p.add_argument("--store-images", action="store_true",
                   help="also store each matched image (as training does), for entries that hold none")
    p.set_defaults(handler=run_attach)


def run_attach(store, args) -> int:
    bar = TerminalProgress("attach-images")
    try:
        report = attach.attach_images(store, args.database, args.folder, match=args.match,
                                      store_images=args.store_images,
                                      progress=lambda done, total=None, phase=None: bar(done, total))
    except KeyboardInterrupt:
        bar.finish()
        print("hashlens: cancelled; nothing was changed.", file=sys.stderr)
        return 130
    bar.finish()
    print("\n".join(report.lines()))
    return 0
