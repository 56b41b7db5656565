"""``ssmd sim <venue>``: a local server speaking the venue's real protocol.

Prints the WebSocket and REST URLs on start, a one-line summary every
``--stats-every`` seconds on stderr, and stops cleanly on SIGINT/SIGTERM or
after ``--duration`` seconds. See ``docs/sim.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ssmd.cli._app import app
from ssmd.cli.options import LogFormat, LogLevel, duration, service_settings
from ssmd.errors import ConfigError
from ssmd.runtime.shutdown import STOP_SIGNALS
from ssmd.types import Venue

# ssmd.sim (the servers, picows) is imported when a simulator runs, not when
# any ssmd command starts
if TYPE_CHECKING:
    from ssmd.sim import FaultPlan, SimOptions

log = logging.getLogger("ssmd.sim")


def parse_rate(text: str) -> float:
    """``2000`` → 2000.0; ``max``/``inf``/``unlimited`` → inf (as fast as readers drain)."""
    if text.strip().lower() in ("max", "inf", "unlimited"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--rate must be a number or 'max', got {text!r}") from None
    if math.isnan(value) or value < 0:
        raise ConfigError(f"--rate must be >= 0, got {text!r}")
    return value


def parse_instruments(text: str | None) -> list[str] | int | None:
    """A count (``500``, at most :data:`MAX_INSTRUMENTS`) or a comma-separated list of ids."""
    if text is None or not text.strip():
        return None
    if text.strip().isdigit():
        n = int(text)
        if not 1 <= n <= MAX_INSTRUMENTS:
            raise ConfigError(f"--instruments must be 1 to {MAX_INSTRUMENTS:,}, got {n:,}")
        return n
    ids = [s.strip() for s in text.split(",") if s.strip()]
    if not ids:
        raise ConfigError(f"--instruments: no ids in {text!r}")
    if len(ids) > MAX_INSTRUMENTS:
        raise ConfigError(f"--instruments: at most {MAX_INSTRUMENTS:,} ids, got {len(ids):,}")
    return ids


#: largest universe ``--instruments N`` builds (each instrument has its own book and state)
MAX_INSTRUMENTS = 100_000

Fraction = Annotated[float, typer.Option(min=0.0, max=1.0, metavar="FRACTION")]


@app.command(
    epilog="Examples:\n\n\b\n"
    "  ssmd sim kraken --rate 5000\n"
    "  ssmd connect kraken --ws-url ws://127.0.0.1:PORT/ --rest-url http://127.0.0.1:PORT/0 "
    "--symbols BTC/USD\n"
    "  ssmd sim kalshi --key-dir ./sim-key     # writes a key pair it accepts, prints the exports\n"
    "  ssmd sim polymarket --drop 0.01 --stall-after 30s --stall-for 5s"
)
def sim(
    venue: Annotated[Venue, typer.Argument(help="The venue to simulate.", show_default=False)],
    host: Annotated[str, typer.Option(metavar="ADDR", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, metavar="PORT", help="WebSocket (and REST) port; 0 picks a free one."
        ),
    ] = 0,
    rest_port: Annotated[
        int | None,
        typer.Option(
            "--rest-port",
            min=0,
            max=65535,
            metavar="PORT",
            help="Also serve REST alone on this port (0: a free one).",
        ),
    ] = None,
    rate: Annotated[
        str,
        typer.Option(metavar="PER_S|max", help="Data messages per second over all connections."),
    ] = "2000",
    instruments: Annotated[
        str | None,
        typer.Option(
            metavar="N|A,B",
            help=f"Universe: a count (at most {MAX_INSTRUMENTS:,}) or ids.",
            show_default="the venue's own",
        ),
    ] = None,
    drop: Annotated[
        float, typer.Option(min=0.0, max=1.0, metavar="FRACTION", help="Data messages dropped.")
    ] = 0.0,
    duplicate: Annotated[
        float, typer.Option(min=0.0, max=1.0, metavar="FRACTION", help="Sent twice.")
    ] = 0.0,
    reorder: Annotated[
        float, typer.Option(min=0.0, max=1.0, metavar="FRACTION", help="Swapped with the next.")
    ] = 0.0,
    corrupt_checksum: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, metavar="FRACTION", help="Kraken book messages with a wrong CRC32."
        ),
    ] = 0.0,
    malformed: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="FRACTION",
            help="Preceded by a broken frame (truncated / bad UTF-8).",
        ),
    ] = 0.0,
    stall_after: Annotated[
        float | None,
        typer.Option(
            parser=duration, metavar="DURATION", help="Every this long a connection's data stalls."
        ),
    ] = None,
    stall_for: Annotated[
        float,
        typer.Option(
            parser=duration, metavar="DURATION", help="Length of each stall.", show_default="5s"
        ),
    ] = 5.0,
    disconnect_every: Annotated[
        float | None,
        typer.Option(
            parser=duration, metavar="DURATION", help="Close each connection after this long."
        ),
    ] = None,
    disconnect_after: Annotated[
        int | None,
        typer.Option(
            min=1, metavar="N", help="Close each connection after this many data messages."
        ),
    ] = None,
    kalshi_public_key: Annotated[
        Path | None,
        typer.Option(
            metavar="PEM",
            help="Kalshi: accept upgrades signed by this key's private half.",
            show_default="a key pair of its own (--key-dir)",
        ),
    ] = None,
    key_dir: Annotated[
        Path | None,
        typer.Option(
            "--key-dir",
            metavar="DIR",
            help="Kalshi: write the key pair it accepts here (kept), and print the exports.",
            show_default="a temporary directory, removed at exit",
        ),
    ] = None,
    accept_unsigned: Annotated[
        bool,
        typer.Option(
            "--accept-unsigned",
            help="Kalshi: accept every upgrade, signed or not (no key pair is made).",
        ),
    ] = False,
    rest_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            metavar="PER_S",
            help="REST requests per second before 429 + Retry-After (0: no limit).",
        ),
    ] = 0.0,
    ping_timeout: Annotated[
        float,
        typer.Option(
            parser=duration,
            metavar="DURATION",
            help="Kraken Futures: close a connection without a ping this long.",
            show_default="60s",
        ),
    ] = 60.0,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of data and faults.")] = 7,
    duration_: Annotated[
        float | None,
        typer.Option(
            "--duration",
            parser=duration,
            metavar="DURATION",
            help="Stop after this long.",
            show_default="until a signal",
        ),
    ] = None,
    stats_every: Annotated[
        float,
        typer.Option(
            parser=duration,
            metavar="DURATION",
            help="Time between stats lines on stderr (0: none).",
            show_default="5s",
        ),
    ] = 5.0,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the listening addresses as one JSON line.")
    ] = False,
) -> None:
    """Serve a venue's WebSocket and REST protocol locally, with faults on demand (docs/sim.md).

    Prints its WebSocket and REST URLs, then a stats line every --stats-every on
    stderr. The Kalshi simulator verifies signed upgrades: without
    --kalshi-public-key it makes a key pair of its own and prints the two
    variables `ssmd connect kalshi` needs.
    """
    key = venue
    s = service_settings(log_level=log_level, log_format=log_format)
    logging.getLogger("ssmd.sim").setLevel(
        logging.WARNING
        if s.log_level == "info" and log_level is None
        else getattr(logging, s.log_level.upper())
    )
    if duration_ is not None and duration_ <= 0:
        raise ConfigError("--duration must be longer than 0 s")
    kalshi_only = kalshi_public_key is not None or key_dir is not None or accept_unsigned
    if kalshi_only and key is not Venue.KALSHI:
        raise ConfigError(
            "--kalshi-public-key, --key-dir and --accept-unsigned are for the kalshi simulator"
        )
    if accept_unsigned and (kalshi_public_key is not None or key_dir is not None):
        raise ConfigError("--accept-unsigned takes no key (--kalshi-public-key, --key-dir)")
    from ssmd.sim import FaultPlan, SimOptions

    faults = FaultPlan(
        drop=drop,
        duplicate=duplicate,
        reorder=reorder,
        corrupt_checksum=corrupt_checksum,
        malformed=malformed,
        stall_after=stall_after,
        stall_for=stall_for,
        disconnect_after=disconnect_after,
        disconnect_every=disconnect_every,
    )
    options = SimOptions(rest_rate=rest_rate, ping_timeout=ping_timeout)
    universe = parse_instruments(instruments)
    with contextlib.ExitStack() as stack:
        pem = None
        exports: dict[str, str] = {}
        if kalshi_public_key is not None:
            try:
                pem = kalshi_public_key.read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read {kalshi_public_key}: {exc.strerror}") from None
        elif key is Venue.KALSHI and not accept_unsigned:
            where = key_dir
            if where is None:
                where = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="ssmd-sim-kalshi-"))
                )
            pem, private = write_key_pair(where)
            exports = {"KALSHI_API_KEY": SIM_KEY_ID, "KALSHI_PRIVATE_KEY_PATH": str(private)}
        asyncio.run(
            _serve(
                key,
                host=host,
                port=port,
                rest_port=rest_port,
                rate=parse_rate(rate),
                instruments=universe,
                faults=faults,
                options=options,
                seed=seed,
                pem=pem,
                duration=duration_,
                stats_every=stats_every,
                exports=exports,
                json_out=json_out,
            )
        )


#: the key id the Kalshi simulator's own key pair goes by (any id is accepted)
SIM_KEY_ID = "ssmd-sim"
#: file names of the key pair :func:`write_key_pair` writes
PRIVATE_KEY_FILE = "kalshi-sim-private.pem"
PUBLIC_KEY_FILE = "kalshi-sim-public.pem"


def write_key_pair(where: Path) -> tuple[bytes, Path]:
    """Write a fresh RSA key pair into ``where``; returns (public PEM, private key path)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {where}: {exc.strerror}") from None
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = where / PRIVATE_KEY_FILE
    public = where / PUBLIC_KEY_FILE
    pub_pem = k.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        private.write_bytes(
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private.chmod(0o600)
        public.write_bytes(pub_pem)
    except OSError as exc:
        raise ConfigError(f"cannot write the key pair into {where}: {exc.strerror}") from None
    return pub_pem, private


async def _serve(
    venue: Venue,
    *,
    host: str,
    port: int,
    rest_port: int | None,
    rate: float,
    instruments: list[str] | int | None,
    faults: FaultPlan,
    options: SimOptions,
    seed: int,
    pem: bytes | None,
    duration: float | None,
    stats_every: float,
    exports: dict[str, str],
    json_out: bool,
) -> None:
    from ssmd.sim import SimServer, start_sim

    try:
        sim: SimServer = await start_sim(
            venue,
            host=host,
            port=port,
            rate=rate,
            instruments=instruments,
            faults=faults,
            seed=seed,
            kalshi_public_key=pem,
            rest_port=rest_port,
            options=options,
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    urls = sim.urls()
    if json_out:
        typer.echo(json.dumps({"venue": venue.value, **urls, "env": exports}), nl=True)
    else:
        typer.echo(f"ssmd sim {venue.value}: ws {urls['ws']}")
        typer.echo(f"ssmd sim {venue.value}: rest {urls['rest']}")
        for name, url in urls.items():
            if name not in ("ws", "rest"):
                typer.echo(f"ssmd sim {venue.value}: {name} {url}")
        if exports:
            typer.echo(
                f"ssmd sim {venue.value}: upgrades must be signed; in the connector's shell:\n"
                + "".join(f"  export {k}={v}\n" for k, v in exports.items())
                + f"  ssmd connect {venue.value} --ws-url {urls['ws']} --rest-url {urls['rest']}"
                " --symbols ..."
            )
    sys.stdout.flush()
    deadline = loop.time() + duration if duration is not None else math.inf
    try:
        while not stop.is_set():
            wait = min(deadline - loop.time(), stats_every or math.inf)
            if wait <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), None if math.isinf(wait) else wait)
            if stats_every and not stop.is_set():
                typer.echo(sim.summary(), err=True)
    finally:
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await sim.stop()
        typer.echo(f"{sim.summary()} (stopped)", err=True)
