"""The live signal runner on JetStream: records/s at saturation, ingest-to-fire latency.

    python tools/bench_signals_live.py --nats nats://127.0.0.1:4222 [--json]

Runs ``ssmd signal run`` as its own process on a fresh ``SSMD_ENV`` (its
streams deleted afterwards) with a signal that fires on about 1 % of the
records (a Kalshi trade at a YES price of $0.99 or more; trigger ``record``):

1. **saturation**: the runner starts once (creating its consumer), stops,
   ``--records`` Kalshi trades are published, and the runner is started
   again: the rate is the records divided by the time from its "running"
   log line to its acknowledgement floor reaching the stream's end. Twice:
   one bus message per record (as a connector sends them at low rates), and
   micro-batches of about 50 lines (as a busy connector sends them: one
   message per subject per batch);
2. **latency**: with the runner running, trades are published at ``--rate``
   records/s for ``--seconds`` (``rx`` = the publish time, as a connector
   stamps the receive time), and a subscriber on ``signals.{id}.>`` measures
   each fire's arrival minus the ``rx`` of the record that fired: p50, p99,
   max (the first second is left out as warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

SIGNAL = """\
from typing import ClassVar
from ssmd.signals import Clause, Signal, VolumeProfile

class Expensive(Signal):
    id = "{sid}"
    name = "a trade at $0.99 or more"
    requires: ClassVar = {{"volume": VolumeProfile(window="1m")}}
    trigger = "record"

    def evaluate(self, state):
        return (state.volume.last_price or 0) >= 0.99

    def rule(self):
        return [Clause("volume", "last_price", ">=", "0.99")]
"""


def frame(rng: random.Random, i: int, markets: int = 1000) -> bytes:
    price = 99 if rng.random() < 0.01 else rng.randint(1, 98)
    return (
        b'{"type":"trade","sid":1,"seq":%d,"msg":{"trade_id":"t%d","market_ticker":"KX-%d",'
        b'"yes_price_dollars":"0.%02d00","count_fp":"10.00","taker_side":"yes","ts":1790000000}}'
        % (i, i, rng.randrange(markets), price)
    )


class Runner:
    def __init__(self, folder: Path, sid: str, env: str, url: str, log: Path) -> None:
        self.args = [
            sys.executable,
            "-m",
            "ssmd",
            "signal",
            "run",
            sid,
            "--signals-dir",
            str(folder),
            "--nats",
            url,
            "--venue",
            "kalshi",
            "--json",
        ]
        self.env = {**os.environ, "SSMD_ENV": env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> float:
        """Start it; the monotonic time it said it was running."""
        size = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                self.args, env=self.env, stdout=subprocess.DEVNULL, stderr=err
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[size:]
            if b"running on" in text:
                return time.monotonic()
            if self.proc.poll() is not None:
                raise RuntimeError(f"runner exited: {text.decode(errors='replace')[-2000:]}")
            await asyncio.sleep(0.02)
        raise RuntimeError("runner did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    import nats

    from ssmd.bus.nats import ensure_streams
    from ssmd.bus.streams import spec_for_venue, stream_specs
    from ssmd.core import Processor

    env = "b" + uuid.uuid4().hex[:10]
    sid = "bench-" + uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="ssmd-bench-signals-"))
    (tmp / "signals" / "bench").mkdir(parents=True)
    (tmp / "signals" / "bench" / "signal.py").write_text(SIGNAL.format(sid=sid))
    nc = await nats.connect(args.nats)
    js = nc.jetstream()
    stream = spec_for_venue("kalshi", stream_specs(env))
    await ensure_streams(js, [stream, *(s for s in stream_specs(env) if s.name == "SIGNALS")])
    runner = Runner(tmp / "signals", sid, env, args.nats, tmp / "runner.log")
    rng = random.Random(1)
    proc = Processor("kalshi", "bench-1", env)
    seq = 0
    out: dict[str, Any] = {"records": args.records, "rate": args.rate, "seconds": args.seconds}
    try:
        # 1. saturation: the consumer exists, the runner is stopped, the stream fills up;
        #    a: one line per bus message (a connector at low rates, 1000 markets);
        #    b: micro-batches (a busy connector: one message per subject per batch of
        #       1000 frames, 20 markets, about 50 lines each)
        await runner.start()
        consumer = f"signal-{sid}"
        for label, markets, grouped in (("", 1000, False), ("_batched", 20, True)):
            runner.stop()
            t_rx = time.time_ns()
            for start in range(0, args.records, 1000):
                frames = []
                for _ in range(min(1000, args.records - start)):
                    seq += 1
                    frames.append(frame(rng, seq, markets))
                batch = proc.process(frames, [t_rx + k for k in range(len(frames))])
                if grouped:
                    for subj, data, _, mid in batch.groups():
                        await nc.publish(subj, data, headers={"Nats-Msg-Id": mid})
                else:
                    for line in batch.lines().splitlines(keepends=True):
                        await nc.publish(orjson.loads(line)["subj"], line)
            await nc.flush()
            last = int((await js.stream_info(stream.name)).state.last_seq)
            began = await runner.start()
            while True:
                info = await js.consumer_info(stream.name, consumer)
                if info.ack_floor and int(info.ack_floor.stream_seq) >= last:
                    break
                await asyncio.sleep(0.01)
            took = time.monotonic() - began
            out[f"saturation{label}_seconds"] = round(took, 3)
            out[f"saturation{label}_records_per_s"] = round(args.records / took)
        # 2. latency at a steady rate
        lat: list[float] = []
        t_start = time.monotonic()
        warm = t_start + 1.0

        async def on_fire(msg: Any) -> None:
            now = time.time_ns()
            if time.monotonic() >= warm:
                lat.append((now - orjson.loads(msg.data)["rx"]) / 1e6)

        sub = await nc.subscribe(f"signals.{sid}.>", cb=on_fire)
        sent = 0
        tick = 0.005
        per_tick = args.rate * tick
        owed = 0.0
        end = t_start + args.seconds + 1.0
        next_t = t_start
        while time.monotonic() < end:
            owed += per_tick
            while owed >= 1:
                owed -= 1
                seq += 1
                b = proc.process([frame(rng, seq)], time.time_ns())
                for subj, data, _, mid in b.groups():
                    await nc.publish(subj, data, headers={"Nats-Msg-Id": mid})
                sent += 1
            next_t += tick
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        await nc.flush()
        await asyncio.sleep(1.0)
        await sub.unsubscribe()
        lat.sort()
        out["sent"] = sent
        out["fires"] = len(lat)
        if lat:
            out["p50_ms"] = round(lat[len(lat) // 2], 2)
            out["p99_ms"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2)
            out["max_ms"] = round(lat[-1], 2)
    finally:
        runner.stop()
        for info in await js.streams_info():
            if info.config.name.startswith(env.upper() + "_"):
                await js.delete_stream(info.config.name)
        await nc.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nats", required=True)
    ap.add_argument("--records", type=int, default=200_000, help="records for the saturation run")
    ap.add_argument("--rate", type=float, default=10_000, help="records/s for the latency run")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:28} {v}")


if __name__ == "__main__":
    main()
