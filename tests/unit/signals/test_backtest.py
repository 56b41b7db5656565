"""``ssmd backtest``: the archive through the engine, deterministic whatever the chunking,
its report, its bounds and its errors."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from signal_helpers import (
    S,
    kalshi_lifecycle,
    kalshi_trade,
    kraken_trade,
    lines,
    polymarket_trade,
    write_archive,
)
from ssmd.errors import ConfigError
from ssmd.signals import find_signal
from ssmd.signals.backtest import Backtest, list_runs, load_run, run_backtest, write_report

#: 2026-01-05 23:00 UTC: the data crosses midnight into 2026-01-06
T_DAY = 1_767_654_000 * S


def ssmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def make_archive(root: Path, n: int = 3000, seed: int = 3) -> None:
    rng = random.Random(seed)
    k, r, p = [], [], []
    for i in range(n):
        rx = T_DAY + i * 2 * S  # 3000 lines per venue: 100 minutes, across midnight
        size = rng.choice(["50000.00", "200000.00", "400000.00", "100.00"])
        k.append(
            (rx, kalshi_trade(f"KX-{i % 5}", f"0.{rng.randint(30, 70)}00", size, "yes", i + 1))
        )
        r.append((rx + 1, kraken_trade("BTC/USD", "90000.5", f"{rng.randint(1, 9)}")))
        p.append(
            (rx + 2, polymarket_trade(str(7 + i % 2), "0xc0", "0.5", str(rng.randint(1, 900_000))))
        )
    k.append((T_DAY + 30 * S, kalshi_lifecycle("KX-0", "settled")))
    k.sort(key=lambda x: x[0])
    write_archive(root, "kalshi", lines("kalshi", k, "k1"))
    write_archive(root, "kraken", lines("kraken", r, "r1"))
    write_archive(root, "polymarket", lines("polymarket", p, "p1"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    make_archive(root)
    return root


def bt(root: Path, signal: str = "volume-1m-5min", **kw: object) -> Backtest:
    return Backtest(find_signal(signal), root=root, **kw)  # type: ignore[arg-type]


def test_fires_are_byte_identical_whatever_the_chunk_size(archive: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    outs = []
    for chunk in (1, 7, 8192):
        result = run_backtest(bt(archive, chunk_lines=chunk))
        outs.append(write_report(result, runs, f"run-{chunk}"))
    texts = [(o / "fires.jsonl").read_bytes() for o in outs]
    assert texts[0] == texts[1] == texts[2]
    fires = [orjson.loads(x) for x in texts[0].splitlines()]
    assert len(fires) >= 5
    assert {f["venue"] for f in fires} == {"kalshi", "kraken", "polymarket"}
    # receive-time order across venues
    assert [f["rx"] for f in fires] == sorted(f["rx"] for f in fires)
    # the Python evaluate gives the same bytes
    py = write_report(run_backtest(bt(archive, python=True)), runs, "run-python")
    assert (py / "fires.jsonl").read_bytes() == texts[0]
    assert load_run(runs, "run-python")[1]["signal"]["evaluated_in"] == "python"


def test_the_reader_to_engine_path_equals_the_bytes_path(archive: Path, tmp_path: Path) -> None:
    """Without ``on_chunk`` each chunk goes from the reader to the engine in Rust; with it
    (``--plot``) as ``bytes`` through Python. Same fires, counters and progress calls."""
    seen: dict[str, list[tuple[int, int | None]]] = {"direct": [], "bytes": []}
    chunks: list[bytes] = []
    direct = run_backtest(
        bt(archive, chunk_lines=500), progress=lambda n, rx: seen["direct"].append((n, rx))
    )
    via = run_backtest(
        bt(archive, chunk_lines=500),
        progress=lambda n, rx: seen["bytes"].append((n, rx)),
        on_chunk=chunks.append,
    )
    assert len(chunks) > 10 and seen["direct"] == seen["bytes"] and len(seen["direct"]) > 10
    assert direct.fires == via.fires and len(direct.fires) >= 5
    assert direct.counters == via.counters and direct.gaps == via.gaps
    assert direct.instruments == via.instruments


def test_the_report(archive: Path, tmp_path: Path) -> None:
    result = run_backtest(bt(archive, venues=["kalshi", "polymarket"]))
    out = write_report(result, tmp_path, None)
    doc = json.loads((out / "summary.json").read_text())
    assert doc["run_id"] == out.name and out.name.endswith("-volume-1m-5min-" + out.name[-6:])
    assert doc["signal"]["id"] == "volume-1m-5min" and doc["signal"]["origin"] == "builtin"
    assert doc["signal"]["path"].endswith("builtin.py")
    assert doc["signal"]["params"] == {"threshold": 1_000_000.0}
    # the git entry: test_the_summary_names_the_git_revision_and_dirty_flag
    assert len(doc["archive"]["fingerprint"]) == 64 and doc["archive"]["files"] >= 2
    assert doc["records"] == 6000  # trades of the two venues chosen
    assert doc["instruments_seen"] == 7
    assert doc["fires"] == sum(doc["fires_per_instrument"].values())
    assert set(doc["fires_per_day"]) <= {"2026-01-05", "2026-01-06"}
    assert doc["fires"] == sum(doc["fires_per_day"].values())
    assert doc["seconds"] > 0 and doc["cpu_seconds"] > 0
    rows = list(csv.DictReader((out / "fires.csv").read_text().splitlines()))
    assert len(rows) == doc["fires"]
    first = orjson.loads((out / "fires.jsonl").read_bytes().splitlines()[0])
    assert rows[0]["instrument"] == first["instrument"] and int(rows[0]["rx"]) == first["rx"]
    assert json.loads(rows[0]["payload"]) == first["payload"]
    assert rows[0]["rx_time"].startswith("2026-01-0")
    # the fingerprint follows the archive
    again = write_report(run_backtest(bt(archive, venues=["kalshi", "polymarket"])), tmp_path, "x")
    assert (
        json.loads((again / "summary.json").read_text())["archive"]["fingerprint"]
        == doc["archive"]["fingerprint"]
    )
    assert [r["run_id"] for r in list_runs(tmp_path)] == sorted([out.name, "x"])


def test_bounds_gaps_and_lifecycle(archive: Path, tmp_path: Path) -> None:
    from ssmd.archive.bounds import time_bound

    whole = run_backtest(bt(archive, "lifecycle"))
    assert [f.payload["event"] for f in whole.fires] == ["settled"]
    # --to a date includes the day; a day with no files is an error
    d, _ = time_bound("--to", "2026-01-05", end=True)
    day1 = run_backtest(bt(archive, date_from=d, date_to=d))
    assert all(f.rx < T_DAY + 3600 * S for f in day1.fires)
    with pytest.raises(
        ConfigError, match=r"no archive files for kraken from 2025-01-01 to 2025-01-02 in "
    ):
        run_backtest(
            bt(
                archive,
                venues=["kraken"],
                date_from=time_bound("--from", "2025-01-01", end=False)[0],
                date_to=time_bound("--to", "2025-01-02", end=True)[0],
            )
        )
    # instants: only the records in [rx_from, rx_to)
    part = run_backtest(bt(archive, rx_from=T_DAY + 600 * S, rx_to=T_DAY + 1200 * S))
    assert part.counters["records"] == 3 * 300
    # a gap the archiver recorded is in the summary
    root = tmp_path / "gapped"
    gap = (
        b'{"rx":%d,"seq":9,"conn":"archiver-1","subj":"prod.kalshi.json.status.archiver",'
        b'"msg":{"ssmd":"gap","reason":"stream","stream":"PROD_KALSHI","from":3,"to":8,"missing":6}}\n'
        % (T_DAY + 5 * S)
    )
    write_archive(
        root, "kalshi", lines("kalshi", [(T_DAY, kalshi_trade("KX-1", "0.5", "1.00"))]) + gap
    )
    res = run_backtest(bt(root))
    doc = json.loads((write_report(res, tmp_path / "runs", "g") / "summary.json").read_text())
    assert doc["gaps"]["count"] == 1
    assert doc["gaps"]["lines"][0]["detail"]["missing"] == 6


def test_the_original_layout_is_read_too(tmp_path: Path) -> None:
    day = tmp_path / "old" / "kalshi" / "crypto" / "2026-01-05"
    day.mkdir(parents=True)
    with gzip.open(day / "2300.jsonl.gz", "wb") as f:
        for i in range(5):
            f.write(kalshi_trade("KX-OLD", "0.5000", "500000.00", "yes", i + 1) + b"\n")
    res = run_backtest(bt(tmp_path / "old", "volume-1m-1min"))
    assert [(f.instrument, f.payload["dollar_volume"]) for f in res.fires] == [
        ("KX-OLD", 1_000_000.0)
    ]
    assert res.fires[0].msg_id.startswith("volume-1m-1min:kalshi:legacy:crypto:")


def test_cli_run_list_show_and_errors(archive: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    r = ssmd(
        "backtest",
        "run",
        "volume-1m-5min",
        "--dir",
        str(archive),
        "--from",
        "2026-01-05",
        "--to",
        "2026-01-06",
        "--runs-dir",
        str(runs),
        "--run-id",
        "one",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    assert (
        "RUN" in r.stdout
        and "one" in r.stdout
        and f"fires and summary in {runs / 'one'}" in r.stdout
    )
    r = ssmd("backtest", "list", "--runs-dir", str(runs))
    assert r.returncode == 0 and r.stdout.splitlines()[1].split()[:2] == ["one", "volume-1m-5min"]
    r = ssmd("backtest", "show", "on", "--runs-dir", str(runs), "--fires", "2", "--json")
    doc = json.loads(r.stdout)
    assert doc["run_id"] == "one" and len(doc["first_fires"]) == 2
    for args, message in [
        (["--venue", "nyse"], "ssmd: error: Invalid value for '--venue'"),
        (["--param", "thresh=1"], "ssmd: error: signal volume-1m-5min: unknown parameter thresh"),
        (
            ["--from", "2030-01-01", "--to", "2030-01-02"],
            "ssmd: error: no archive files for any venue from 2030-01-01 to 2030-01-02",
        ),
        (
            ["--from", "2026-01-06", "--to", "2026-01-05T10:00"],
            "ssmd: error: --to 2026-01-05T10:00 is not after --from 2026-01-06",
        ),
    ]:
        r = ssmd(
            "backtest",
            "run",
            "volume-1m-5min",
            "--dir",
            str(archive),
            "--runs-dir",
            str(runs),
            *args,
        )
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith(message) and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = ssmd("backtest", "show", "nope", "--runs-dir", str(runs))
    assert r.returncode == 2 and "no run 'nope'" in r.stderr


def test_backtest_yaml_gives_defaults(archive: Path, tmp_path: Path) -> None:
    d = tmp_path / "signals" / "vol"
    d.mkdir(parents=True)
    (d / "signal.py").write_text(
        "from ssmd.signals.builtin import VolumeSignal\nfrom ssmd.signals import VolumeProfile\n"
        "class V(VolumeSignal):\n    id = 'vol'\n    name = 'v'\n"
        "    requires = {'volume': VolumeProfile(window='1m')}\n"
    )
    (d / "backtest.yaml").write_text(
        "venue: kraken\nfrom: 2026-01-05\nto: 2026-01-06\nparams:\n  threshold: 1000\n"
    )
    r = ssmd(
        "backtest",
        "run",
        "vol",
        "--signals-dir",
        str(tmp_path / "signals"),
        "--dir",
        str(archive),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["venues"] == ["kraken"] and doc["signal"]["params"] == {"threshold": 1000.0}
    assert set(doc["fires_per_instrument"]) == {"kraken:BTC/USD"}
    assert doc["range"]["from"] == "2026-01-05"
    (d / "backtest.yaml").write_text("venue: kraken\nwhen: tomorrow\n")
    r = ssmd(
        "backtest", "run", "vol", "--signals-dir", str(tmp_path / "signals"), "--dir", str(archive)
    )
    assert r.returncode == 2 and "backtest.yaml: unknown key 'when'" in r.stderr


def test_plot_needs_matplotlib(archive: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked" / "matplotlib"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('not installed (test)')\n")
    r = ssmd(
        "backtest",
        "run",
        "volume-1m-5min",
        "--dir",
        str(archive),
        "--plot",
        "KX-1",
        "--runs-dir",
        str(tmp_path / "runs"),
        env={"PYTHONPATH": str(tmp_path / "blocked")},
    )
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "ssmd: error: ssmd backtest run --plot needs the [plot] extra (matplotlib): "
        "pip install 'ssmd[plot]' (from a checkout: pip install '.[plot]')"
    )


def test_plot_writes_a_png(archive: Path, tmp_path: Path) -> None:
    # matplotlib is in the [test] extra: no skip, the plot runs wherever the tests do
    r = ssmd(
        "backtest",
        "run",
        "volume-1m-5min",
        "--dir",
        str(archive),
        "--plot",
        "KX-1",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "p",
    )
    assert r.returncode == 0, r.stderr
    png = tmp_path / "runs" / "p" / "plot-KX-1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ssmd: plot " in r.stderr and str(png) in r.stderr


def test_the_plot_draws_the_traced_points_and_the_fires(archive: Path) -> None:
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from ssmd.signals.plot import Tracer

    tracer = Tracer(find_signal("volume-1m-5min").make(), ["KX-1"])
    result = run_backtest(bt(archive), on_chunk=tracer.feed)
    assert list(tracer.points) == [("kalshi", "KX-1")]  # only the instrument chosen
    pts = tracer.points[("kalshi", "KX-1")]
    assert len(pts) == 600  # one point per KX-1 trade (every 5th of 3000)
    mine = [f for f in result.fires if f.instrument == "KX-1"]
    assert mine and len(mine) < len(result.fires)
    fig = tracer.figure("kalshi", "KX-1", result.fires)
    try:
        price_ax, volume_ax = fig.axes
        assert price_ax.get_title() == "kalshi KX-1"
        price, *price_marks = price_ax.get_lines()
        volume, *volume_marks = volume_ax.get_lines()
        # the traced points, as drawn: x the receive time, y price and dollar volume
        xs = mdates.date2num([dt.datetime.fromtimestamp(p[0] / 1e9, dt.timezone.utc) for p in pts])
        assert list(price.get_xdata(orig=False)) == pytest.approx(list(xs))
        assert list(price.get_ydata()) == [p[1] for p in pts]
        assert list(volume.get_ydata()) == [p[2] for p in pts]
        # what was drawn at a fire is what the fire says
        at = {p[0]: p for p in pts}
        for f in mine:
            assert at[f.rx][1] == pytest.approx(f.payload["last_price"])
            assert at[f.rx][2] == pytest.approx(f.payload["dollar_volume"])
            assert at[f.rx][2] >= 1_000_000
        # one red vertical marker per fire of KX-1 on each axis, at its receive time
        want = sorted(
            mdates.date2num(dt.datetime.fromtimestamp(f.rx / 1e9, dt.timezone.utc)) for f in mine
        )
        for marks in (price_marks, volume_marks):
            assert sorted(m.get_xdata(orig=False)[0] for m in marks) == pytest.approx(want)
            assert all(m.get_color() == "tab:red" for m in marks)
    finally:
        plt.close(fig)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_the_summary_names_the_git_revision_and_dirty_flag(archive: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    d = repo / "signals" / "vol"
    d.mkdir(parents=True)
    signal = d / "signal.py"
    signal.write_text(
        "from ssmd.signals.builtin import VolumeSignal\nfrom ssmd.signals import VolumeProfile\n"
        "class V(VolumeSignal):\n    id = 'vol'\n    name = 'v'\n"
        "    requires = {'volume': VolumeProfile(window='1m')}\n"
    )
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "a signal")
    head = _git(repo, "rev-parse", "HEAD")
    src = find_signal("vol", repo / "signals")

    def git_of(run_id: str) -> object:
        res = run_backtest(Backtest(src, root=archive, venues=["kraken"]))
        out = write_report(res, tmp_path / "runs", run_id)
        return json.loads((out / "summary.json").read_text())["signal"]["git"]

    assert git_of("clean") == {"revision": head, "dirty": False}
    signal.write_text(signal.read_text() + "# changed\n")
    assert git_of("dirty") == {"revision": head, "dirty": True}
    # another file of the repository changing does not make this signal dirty
    _git(repo, "commit", "-q", "-am", "changed")
    (repo / "README").write_text("x\n")
    assert git_of("other") == {"revision": _git(repo, "rev-parse", "HEAD"), "dirty": False}
    # outside any repository there is no git entry
    outside = tmp_path / "plain"
    shutil.copytree(repo / "signals", outside)
    res = run_backtest(Backtest(find_signal("vol", outside), root=archive, venues=["kraken"]))
    doc = json.loads((write_report(res, tmp_path / "runs", "plain") / "summary.json").read_text())
    assert doc["signal"]["git"] is None


def test_the_fingerprint_follows_the_archive(tmp_path: Path) -> None:
    root = tmp_path / "a"
    make_archive(root, n=200)

    def fingerprint() -> str:
        res = run_backtest(bt(root, venues=["kalshi"]))
        doc = json.loads((write_report(res, tmp_path / "runs") / "summary.json").read_text())
        return str(doc["archive"]["fingerprint"])

    first = fingerprint()
    assert fingerprint() == first  # the same archive: the same fingerprint
    # one more line in the archive: another fingerprint
    write_archive(
        root, "kalshi", lines("kalshi", [(T_DAY + 5 * S, kalshi_trade("KX-9", "0.5", "1.00"))])
    )
    second = fingerprint()
    assert second != first
    # a file's content replaced, same size, manifest gone: another fingerprint (mtime)
    f = sorted((root / "kalshi").glob("*/*.jsonl.gz"))[0]
    for m in (root / "kalshi").glob("*/manifest.json"):
        m.unlink()
    third = fingerprint()
    data = f.read_bytes()
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    f.write_bytes(data)
    assert fingerprint() != third


def test_a_date_to_includes_the_whole_day(tmp_path: Path) -> None:
    from ssmd.archive.bounds import time_bound

    root = tmp_path / "late"
    late = T_DAY + 3600 * S - 1000  # 2026-01-05 23:59:59.999999
    frames = [
        (T_DAY, kalshi_trade("KX-1", "0.5000", "100.00", seq=1)),
        (late, kalshi_trade("KX-2", "0.5000", "2000000.00", seq=2)),
        (T_DAY + 3600 * S, kalshi_trade("KX-3", "0.5000", "2000000.00", seq=3)),  # next day
    ]
    write_archive(root, "kalshi", lines("kalshi", frames))
    d0, rx0 = time_bound("--from", "2026-01-05", end=False)
    d1, rx1 = time_bound("--to", "2026-01-05", end=True)
    res = run_backtest(bt(root, "volume-1m-1min", date_from=d0, date_to=d1, rx_from=rx0, rx_to=rx1))
    assert [(f.instrument, f.rx) for f in res.fires] == [("KX-2", late)]
    r = ssmd(
        "backtest", "run", "volume-1m-1min", "--dir", str(root), "--from", "2026-01-05",
        "--to", "2026-01-05", "--runs-dir", str(tmp_path / "runs"), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["fires_per_instrument"] == {"kalshi:KX-2": 1}


def test_a_day_without_its_manifest_is_read(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(archive, root)
    manifests = sorted(root.glob("*/*/manifest.json"))
    assert len(manifests) >= 3  # the new layout: one per venue and day
    with_manifest = run_backtest(bt(root, chunk_lines=100))
    for m in manifests:
        m.unlink()
    without = run_backtest(bt(root, chunk_lines=100))
    assert without.counters["records"] == with_manifest.counters["records"] == 9000
    assert [f.body() for f in without.fires] == [f.body() for f in with_manifest.fires]
    assert len(without.fires) >= 5


def test_the_progress_line(archive: Path, tmp_path: Path) -> None:
    args = ["backtest", "run", "volume-1m-5min", "--dir", str(archive), "--chunk-lines", "50"]
    args += ["--from", "2026-01-05", "--to", "2026-01-06", "--runs-dir", str(tmp_path / "r")]
    shown = ssmd(*args, "--progress")
    assert shown.returncode == 0, shown.stderr
    # redrawn in place with "\r" (read here as a new line: text mode)
    rows = shown.stderr.split("\n")
    pattern = r"([\d,]+) records at (2026-01-0[56] \d\d:\d\d) \((\d+) %\), [\d.]+ M/s +"
    drawn = [m for row in rows if (m := re.fullmatch(pattern, row))]
    assert drawn, shown.stderr
    records, _, pct = drawn[0].groups()
    assert 0 < int(records.replace(",", "")) <= 9000 and 0 <= int(pct) <= 100
    last = max(i for i, row in enumerate(rows) if re.fullmatch(pattern, row))
    assert rows[last + 1].strip() == "" and len(rows[last + 1]) >= 70  # cleared when done
    # not a terminal, not asked for: no progress line
    quiet = ssmd(*args)
    assert quiet.returncode == 0 and "records at" not in quiet.stderr
    assert "records at" not in ssmd(*args, "--no-progress").stderr
