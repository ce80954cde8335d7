"""What every subcommand shares: the listing options, terminal progress and output."""

from __future__ import annotations

import argparse
import sys
import time

from app.domain import MAX_INT, Filter, FilterOp, HashlensError, ListingQuery, SortKey, parse_phash
from app.domain import whole_number as domain_whole_number
from app.mediaserver_codec.lists import split_identifier_list
from app.mediaserver_codec.names import LIST_IMAGE_HASHES


def whole_number(minimum: int, maximum: int = MAX_INT):
    """An argparse type: a whole number in ASCII digits from `minimum` to `maximum`;
    argparse turns a refusal into a one-line usage error (exit status 2)."""

    def parse(text: str) -> int:
        try:
            return domain_whole_number("value", text, minimum=minimum, maximum=maximum)
        except HashlensError as exc:
            # The flag's name is added by argparse ("argument --start: ...").
            raise argparse.ArgumentTypeError(exc.description.removeprefix("Parameter 'value': ")) from None

    return parse


positive_int = whole_number(1)


def key_value(text: str) -> tuple[str, str]:
    """An argparse type: KEY=VALUE, split at the first '='."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=VALUE")
    return key, value


# Defined beside the parser that raises it (app/cli/__init__.py, which imports nothing heavy).
from app.cli import UsageError  # noqa: E402


def near_hash(text: str) -> tuple[int, int]:
    """An argparse type: HEX[:N], a 64-bit pHash and a distance in bits (default 8)."""
    hex_text, _, distance = text.partition(":")
    try:
        phash = parse_phash(hex_text)
    except HashlensError:
        raise argparse.ArgumentTypeError(f"'{hex_text}' is not a 64-bit pHash in hex (up to 16 hex digits)") from None
    return phash, whole_number(0, 64)(distance) if distance else 8


def add_connection_options(parser: argparse.ArgumentParser, *, retries_help: str) -> None:
    """--timeout, --retries, --ca-file, --cert and --key, spelt alike by every command that
    reaches a Media Server (pull, refresh, push, publish); `media_server_client` reads them.
    `retries_help` says what is tried again, with {default} for the default count."""
    from app.mediaserver.client import DEFAULT_RETRIES, DEFAULT_TIMEOUT

    parser.add_argument("--timeout", type=positive_int, default=int(DEFAULT_TIMEOUT), metavar="S",
                        help=f"seconds to wait for an answer (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--retries", type=whole_number(0), default=DEFAULT_RETRIES, metavar="N",
                        help=retries_help.format(default=DEFAULT_RETRIES))
    parser.add_argument("--ca-file", metavar="FILE", help="https: trust this CA bundle instead of the system's")
    parser.add_argument("--cert", metavar="FILE", help="https: a client certificate (PEM)")
    parser.add_argument("--key", metavar="FILE", help="https: the client certificate's key, if not in --cert")


def media_server_client(url: str, args: argparse.Namespace):
    """The client for `url` with the options `add_connection_options` added."""
    from app.mediaserver.client import MediaServerClient

    return MediaServerClient(url, timeout=float(args.timeout), retries=args.retries, ca_file=args.ca_file,
                             cert_file=args.cert, key_file=args.key)


def add_listing_options(parser: argparse.ArgumentParser, *, window: bool = True) -> None:
    """The filter options of `hashlens list`, shared by export and audit commands."""
    parser.add_argument("database", help="the image-hash database")
    parser.add_argument("--identifier", metavar="A,B", help=f"comma-separated identifiers (as {LIST_IMAGE_HASHES})")
    parser.add_argument("--label-contains", metavar="TEXT", help="label contains TEXT (ASCII case ignored)")
    parser.add_argument("--label", metavar="TEXT", help="label is exactly TEXT")
    parser.add_argument("--has-image-data", choices=["yes", "no"], help="only entries with / without image data")
    parser.add_argument("--meta-present", metavar="KEY", action="append", default=[], help="has metadata KEY")
    parser.add_argument("--meta-absent", metavar="KEY", action="append", default=[], help="lacks metadata KEY")
    parser.add_argument("--meta", metavar="KEY=VALUE", type=key_value, action="append", default=[],
                        help="metadata KEY equals VALUE")
    parser.add_argument("--near", metavar="HEX[:N]", type=near_hash, help="pHash within N bits (default 8) of a 16-hex-digit hash")
    parser.add_argument("--sort", choices=[k.value for k in SortKey], default="position", help="order (default: database order)")
    parser.add_argument("--descending", action="store_true", help="reverse the order")
    if window:
        parser.add_argument("--start", type=positive_int, default=1, help="first entry, counted from 1")
        parser.add_argument("--maxresults", type=positive_int, help="at most this many entries")
    parser.add_argument("--imagestatus", action="store_true", help="include label, status and hasimagedata")
    parser.add_argument("--metadata", action="store_true", help="include custom metadata")


def listing_query_from_args(args: argparse.Namespace) -> ListingQuery:
    if args.sort == SortKey.DISTANCE.value and not args.near:
        raise UsageError("hashlens: --sort distance needs --near HEX[:N], the hash to measure from.")
    filters: list[Filter] = []
    if args.label_contains is not None:
        filters.append(Filter(FilterOp.LABEL_CONTAINS, args.label_contains))
    if args.label is not None:
        filters.append(Filter(FilterOp.LABEL_EQUALS, args.label))
    if args.has_image_data:
        filters.append(Filter(FilterOp.HAS_IMAGE_DATA, args.has_image_data == "yes"))
    filters += [Filter(FilterOp.META_PRESENT, key=k) for k in args.meta_present]
    filters += [Filter(FilterOp.META_ABSENT, key=k) for k in args.meta_absent]
    filters += [Filter(FilterOp.META_EQUALS, value, key=key) for key, value in args.meta]
    if args.near:
        phash, distance = args.near
        filters.append(Filter(FilterOp.PHASH_WITHIN, phash, distance=distance))
    query = ListingQuery(
        database=args.database,
        identifiers=tuple(split_identifier_list(args.identifier)) if args.identifier is not None else None,
        filters=tuple(filters),
        sort=SortKey(args.sort),
        descending=args.descending,
        start=getattr(args, "start", 1),
        maxresults=getattr(args, "maxresults", None),
        imagestatus=args.imagestatus,
        metadata=args.metadata,
    )
    return query.validated()


class TerminalProgress:
    """A one-line progress bar on a terminal (stderr); silent when not a terminal.

    Call it as `progress(done, total)`; `total` may be None when unknown."""

    def __init__(self, label: str, stream=None, force: bool = False):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done != total:
            return
        self._last = now
        rate = done / max(now - self.started, 1e-9)
        if total:
            width = 30
            filled = int(width * done / total)
            bar = "#" * filled + "-" * (width - filled)
            text = f"\r{self.label} [{bar}] {done:,}/{total:,} ({rate:,.0f}/s)"
        else:
            text = f"\r{self.label} {done:,} ({rate:,.0f}/s)"
        self.stream.write(text)
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
