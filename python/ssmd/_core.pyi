"""Type stubs for the Rust extension ``ssmd._core`` (checked by mypy.stubtest)."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, final

__version__: str
__all__ = [
    "COLUMNS_SCHEMA_VERSION",
    "ArchiveReader",
    "ArchiveWriter",
    "ArrowBatch",
    "ArrowSchema",
    "Batch",
    "BuilderView",
    "ColumnReader",
    "FileScan",
    "LineChunks",
    "Processor",
    "ReadWarning",
    "SignalEngine",
    "SignalState",
    "__version__",
    "arrow_schema",
    "column_kinds",
    "count_lines",
    "error_classes",
    "kraken_checksum",
    "list_files",
    "normalize",
    "read_manifest",
    "record_fields",
    "scan_file",
    "stamp_seq",
    "subject_token",
    "venues",
]

# --- processor (begin) ---
@final
class Processor:
    """Turns raw frames of one venue connection into envelope lines."""

    def __new__(
        cls,
        venue: str,
        conn: str,
        env: str = "prod",
        *,
        replay: bool = False,
        max_frame_bytes: int = 16777216,
    ) -> Processor: ...
    @property
    def venue(self) -> str: ...
    @property
    def conn(self) -> str: ...
    @property
    def replay(self) -> bool: ...
    @property
    def frames_seen(self) -> int: ...
    @property
    def max_frame_bytes(self) -> int: ...
    @property
    def tape_visits(self) -> int: ...
    def process(self, frames: Sequence[bytes | str], rx_ns: int | Sequence[int]) -> Batch: ...
    def set_category(self, series: str, category: str) -> None: ...
    def set_categories(self, mapping: Mapping[str, str]) -> None: ...
    def set_precision(self, symbol: str, price_precision: int, qty_precision: int) -> None: ...
    def set_book_depth(self, depth: int) -> None: ...
    def forget(self, instruments: Sequence[str]) -> None: ...
    def reset(self) -> None: ...
    def counters(self) -> dict[str, int]: ...

@final
class Batch:
    """The result of one ``Processor.process`` call."""

    def __len__(self) -> int: ...
    @property
    def frames(self) -> int: ...
    def lines(self) -> bytes: ...
    def groups(self) -> list[tuple[str, bytes, int, str]]: ...
    def subjects(self) -> list[tuple[str, int, int]]: ...
    def exchange_ms(self, limit: int = 64) -> list[int]: ...
    def messages(self) -> list[dict[str, Any]]: ...
    @property
    def controls(self) -> list[tuple[str, bytes]]: ...
    @property
    def resyncs(self) -> list[tuple[str, str]]: ...
    @property
    def counts(self) -> dict[str, int]: ...

def normalize(venue: str, frames: Sequence[bytes | str]) -> bytes: ...
def kraken_checksum(
    asks: Sequence[tuple[str, str]],
    bids: Sequence[tuple[str, str]],
    price_precision: int,
    qty_precision: int,
) -> int: ...
def venues() -> list[str]: ...
def subject_token(id: str) -> str: ...
def error_classes() -> dict[str, type[BaseException]]: ...
def record_fields() -> dict[str, list[str]]: ...

# --- processor (end) ---

# --- archive (begin) ---
from collections.abc import Iterable  # noqa: E402  (this section's own imports)
from os import PathLike  # noqa: E402

@final
class ArchiveWriter:
    """Writes envelope lines into the gzip (or zstd) JSONL archive."""

    def __new__(
        cls,
        root: str | PathLike[str],
        venue: str,
        writer: str,
        *,
        rotation_secs: int = 900,
        codec: str = "gzip",
        level: int | None = None,
        fsync: bool = True,
        max_buffer_bytes: int = 4194304,
        lock_timeout: float = 10.0,
    ) -> ArchiveWriter: ...
    def write(self, lines: bytes) -> int: ...
    def flush(self) -> int: ...
    def rotate(self, now_ns: int) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> ArchiveWriter: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> bool: ...
    @property
    def path(self) -> str | None: ...
    @property
    def lines_written(self) -> int: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...
    @property
    def members(self) -> int: ...

@final
class ArchiveReader:
    """Yields ``bytes`` chunks of complete envelope lines in ``rx`` order."""

    def __new__(
        cls,
        files: Sequence[str | PathLike[str]],
        *,
        kinds: Iterable[str] | None = None,
        instruments: Iterable[str] | None = None,
        rx_from: int | None = None,
        rx_to: int | None = None,
        chunk_lines: int = 4096,
    ) -> ArchiveReader: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    @property
    def warnings(self) -> list[ReadWarning]: ...

@final
class ReadWarning:
    """What reading one file could not read, or that the file was skipped."""

    def __new__(
        cls,
        file: str | PathLike[str],
        reason: str,
        *,
        members_dropped: int = 0,
        bytes_dropped: int = 0,
        lines_dropped: int = 0,
    ) -> ReadWarning: ...
    @property
    def file(self) -> str: ...
    @property
    def members_dropped(self) -> int: ...
    @property
    def bytes_dropped(self) -> int: ...
    @property
    def lines_dropped(self) -> int: ...
    @property
    def reason(self) -> str: ...

@final
class LineChunks:
    """Chunks of complete lines of one gzip, zstd or plain file, skipping damage."""

    def __new__(
        cls, path: str | PathLike[str], *, codec: str = "gzip", verify: bool = True
    ) -> LineChunks: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    @property
    def warning(self) -> ReadWarning | None: ...

def list_files(
    root: str | PathLike[str],
    venue: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    *,
    include_parts: bool = False,
) -> list[str]: ...
def count_lines(
    files: Sequence[str | PathLike[str]],
) -> tuple[dict[str, int], list[ReadWarning]]: ...
def stamp_seq(
    seqs: Sequence[int],
    payloads: Sequence[bytes],
    bad_subject: str,
    bad_conn: str = "archiver",
    rx_ns: int | None = None,
) -> tuple[bytes, int, int]: ...

@final
class FileScan:
    """What scanning one archive file found (``ssmd archive verify``)."""

    @property
    def codec(self) -> str: ...
    @property
    def part(self) -> bool: ...
    @property
    def gone(self) -> bool: ...
    @property
    def skipped(self) -> str | None: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def members(self) -> int: ...
    @property
    def lines(self) -> int: ...
    @property
    def raw_bytes(self) -> int: ...
    @property
    def first_rx(self) -> int | None: ...
    @property
    def last_rx(self) -> int | None: ...
    @property
    def first_seq(self) -> tuple[int, int] | None: ...
    @property
    def last_seq(self) -> tuple[int, int] | None: ...
    @property
    def gaps(self) -> list[tuple[int, str]]: ...
    @property
    def recorded(self) -> list[tuple[int, int]]: ...
    @property
    def segments(
        self,
    ) -> list[
        tuple[
            list[tuple[int, int]],
            int,
            int,
            list[int],
            list[int],
            tuple[int, int],
            tuple[int, int],
        ]
    ]: ...
    @property
    def duplicates(self) -> list[tuple[int, int]]: ...
    @property
    def members_dropped(self) -> int: ...
    @property
    def bytes_dropped(self) -> int: ...
    @property
    def lines_dropped(self) -> int: ...
    @property
    def error(self) -> str | None: ...
    @property
    def torn_tail(self) -> int: ...

def scan_file(path: str | PathLike[str]) -> FileScan: ...
def read_manifest(day_dir: str | PathLike[str]) -> dict[str, Any] | None: ...

# --- archive (end) ---

# --- columns (begin) ---
COLUMNS_SCHEMA_VERSION: str

@final
class ArrowSchema:
    """The Arrow schema of one normalized kind (``__arrow_c_schema__``)."""

    @property
    def kind(self) -> str: ...
    def __arrow_c_schema__(self) -> Any: ...

@final
class ArrowBatch:
    """One record batch of one kind, imported once through ``__arrow_c_array__``."""

    @property
    def kind(self) -> str: ...
    @property
    def num_rows(self) -> int: ...
    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]: ...

@final
class ColumnReader:
    """Archive files of one venue as Arrow record batches per normalized kind, in rx order.

    ``views`` (the core's default True, unlike ``ssmd.read``'s False): the float64
    views after each decimal's text."""

    def __new__(
        cls,
        files: Sequence[str | PathLike[str]],
        venue: str,
        *,
        kinds: Sequence[str] | None = None,
        instruments: Sequence[str] | None = None,
        rx_from: int | None = None,
        rx_to: int | None = None,
        batch_rows: int = 262144,
        views: bool = True,
    ) -> ColumnReader: ...
    def __iter__(self) -> Iterator[tuple[str, ArrowBatch]]: ...
    def __next__(self) -> tuple[str, ArrowBatch]: ...
    @property
    def warnings(self) -> list[ReadWarning]: ...
    def figures(self) -> dict[str, Any]: ...

def arrow_schema(kind: str, views: bool = True) -> ArrowSchema:
    """A kind's Arrow schema; ``views=False``: the stored one (``ssmd.read``'s default)."""

def column_kinds() -> list[str]: ...

# --- columns (end) ---

# --- signals (begin) ---
#: (msg_id, subject, venue, instrument, ts, rx, source_seq, payload)
_FireTuple = tuple[
    str, str, str, str, int | None, int, int | tuple[int, int] | None, dict[str, Any]
]

@final
class BuilderView:
    """One builder's fields at one record (``state.volume.dollar_volume``)."""

    @property
    def kind(self) -> str: ...
    def __getattr__(self, name: str) -> Any: ...
    def as_dict(self) -> dict[str, Any]: ...

@final
class SignalState:
    """What a Python ``evaluate(state)`` sees: one record's instrument."""

    @property
    def venue(self) -> str: ...
    @property
    def instrument(self) -> str: ...
    @property
    def rx(self) -> int: ...
    @property
    def ts(self) -> int | None: ...
    @property
    def record(self) -> str: ...
    def __getattr__(self, name: str) -> BuilderView: ...
    def payload(self) -> dict[str, Any]: ...

@final
class SignalEngine:
    """One signal's engine: envelope lines in, fires out."""

    def __new__(
        cls,
        signal: str,
        builders: Sequence[tuple[str, str, float, float]],
        *,
        rule: Sequence[tuple[str, str, str, str, bool]] | None = None,
        evaluate: Callable[[SignalState], object] | None = None,
        payload: Callable[[SignalState], dict[str, Any]] | None = None,
        trigger: str = "edge",
        venues: Sequence[str] | None = None,
        instruments: Sequence[str] | None = None,
    ) -> SignalEngine: ...
    def process(
        self, lines: bytes, *, evaluate: bool = True, fire: bool = True
    ) -> list[_FireTuple]: ...
    def process_next(
        self, reader: ArchiveReader, *, evaluate: bool = True, fire: bool = True
    ) -> list[_FireTuple] | None: ...
    @property
    def native(self) -> bool: ...
    def subject_kinds(self) -> list[str]: ...
    def counters(self) -> dict[str, int]: ...
    def instruments(self) -> list[tuple[str, str, int, int, int]]: ...
    def gaps(self) -> list[tuple[int, str | None, str, str]]: ...
    def take_transitions(self) -> list[tuple[str, str, bool]]: ...
    def take_errors(self) -> list[tuple[str, str, str]]: ...
    def high(self) -> list[tuple[str, str]]: ...
    def set_high(self, venue: str, instrument: str, high: bool) -> None: ...
    @property
    def last_rx(self) -> int | None: ...
    def entries(self) -> int: ...
    def fields(self) -> dict[str, list[str]]: ...

# --- signals (end) ---
