"""Finding and loading signals: built-ins, a signals directory, entry points, bad files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ssmd.errors import ConfigError
from ssmd.signals import BUILTINS, SignalLoadError, discover, find_signal, load_file

GOOD = """\
from ssmd.signals import Param, Signal, VolumeProfile

class Big(Signal):
    id = "big"
    name = "Big volume"
    params = {"threshold": Param(float, 100.0, "dollars"), "window": Param(str, "5m")}

    def builders(self):
        return {"volume": VolumeProfile(window=self.window)}

    def evaluate(self, state):
        return state.volume.dollar_volume >= self.threshold
"""

MODULE_LEVEL = """\
from ssmd.signals import Param, PriceProfile

id = "mid-up"
name = "Mid up"
params = {"pct": Param(float, 0.01)}
requires = {"price": PriceProfile(window="30s")}

def evaluate(state, params):
    return (state.price.change_pct or 0) >= params["pct"]

def payload(state):
    return {"mid": state.price.mid}
"""


def write(root: Path, name: str, text: str) -> Path:
    d = root / name
    d.mkdir(parents=True)
    f = d / "signal.py"
    f.write_text(textwrap.dedent(text))
    return f


def test_builtins_are_listed_with_their_ids() -> None:
    found, errors = discover(None)
    assert errors == []
    assert {
        "volume-1m-1min",
        "volume-1m-5min",
        "volume-1m-15min",
        "volume-1m-30min",
        "price-jump",
        "lifecycle",
    } <= set(found)
    assert all(found[i].origin == "builtin" for i in BUILTINS)
    v = found["volume-1m-30min"].make()
    assert v.builders()["volume"].window == "30m"
    assert v.param_values == {"threshold": 1_000_000.0}


def test_a_signals_directory_class_and_module_level(tmp_path: Path) -> None:
    write(tmp_path, "big", GOOD)
    write(tmp_path, "mid_up", MODULE_LEVEL)
    found, errors = discover(tmp_path)
    assert errors == []
    big = found["big"]
    assert big.origin == "dir" and big.path == str((tmp_path / "big" / "signal.py").resolve())
    sig = big.make({"threshold": "250.5", "window": "10m"})
    assert sig.threshold == 250.5 and sig.builders()["volume"].window == "10m"
    mid = find_signal("mid-up", tmp_path)
    assert mid.cls.name == "Mid up"
    assert find_signal("mid_up", tmp_path).id == "mid-up"  # the folder name works too
    assert mid.make().param_values == {"pct": 0.01}


def test_a_directory_signal_shadows_a_builtin(tmp_path: Path) -> None:
    write(tmp_path, "lc", GOOD.replace('id = "big"', 'id = "lifecycle"'))
    found, _ = discover(tmp_path)
    assert found["lifecycle"].origin == "dir"
    assert found["lifecycle"].shadows == ("builtin",)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("x = 1\ndef f(:\n", 2, "SyntaxError"),
        ("import os\n\nraise RuntimeError('boom')\n", 3, "RuntimeError: boom"),
        ("import no_such_module_here\n", 1, "ModuleNotFoundError"),
        ("x = 1\n", 1, "no signal here"),
        (
            GOOD.replace("    def evaluate(self, state):\n", "    def other(self, state):\n"),
            3,
            "declares no evaluate",
        ),
        (GOOD.replace('    name = "Big volume"\n', ""), 3, "declares no name"),
        (GOOD.replace('id = "big"', 'id = "Big Volume"'), 3, "bad id"),
        (GOOD.replace("VolumeProfile(window=self.window)", "'volume'"), 3, "is not a builder"),
        (
            GOOD.replace('Param(str, "5m")', 'Param(str, "5 minutes")'),
            3,
            "bad volume_profile window",
        ),
        (
            GOOD.replace('Param(float, 100.0, "dollars")', "Param(list, [])"),
            6,
            "bad parameter type",
        ),
        (
            GOOD.replace("    def builders(self):", "    def builders(self):\n        1 / 0"),
            9,
            "ZeroDivisionError",
        ),
    ],
)
def test_bad_signal_files_are_one_line_errors_with_file_and_line(
    tmp_path: Path, text: str, line: int, what: str
) -> None:
    f = write(tmp_path, "bad", text)
    with pytest.raises(SignalLoadError) as e:
        load_file(f)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{f.resolve()}:{line}: "), msg
    assert what in msg
    # discovery reports it and goes on; asking for it by name gives the same line
    found, errors = discover(tmp_path)
    assert errors == [msg] and "volume-1m-1min" in found
    with pytest.raises(SignalLoadError, match=r"bad/signal\.py"):
        find_signal("bad", tmp_path)


def test_unknown_signal_and_parameters() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown signal 'volume-1m-30mn' \(did you mean volume-1m-30min\?\)"
    ):
        find_signal("volume-1m-30mn")
    src = find_signal("price-jump")
    with pytest.raises(ConfigError, match="unknown parameter thresh "):
        src.make({"thresh": "1"})
    with pytest.raises(ConfigError, match="bad value 'x' for parameter threshold: float"):
        src.make({"threshold": "x"})
    with pytest.raises(ConfigError, match=r"bad parameter window .soon.: a number of seconds"):
        src.make({"window": "soon"})
    assert src.make({"window": "2m"}).window == 120.0
    with pytest.raises(ConfigError, match="bad phases"):
        find_signal("lifecycle").make({"phases": "open,bogus"})
    with pytest.raises(ConfigError, match="signals directory not found"):
        discover("/nonexistent/signals")


def test_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "site"
    (pkg / "acme_signals").mkdir(parents=True)
    (pkg / "acme_signals" / "__init__.py").write_text(GOOD.replace('"big"', '"acme-big"'))
    dist = pkg / "acme_signals-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-signals\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[ssmd.signals]\nacme-big = acme_signals:Big\nbroken = acme_signals:Nope\n"
    )
    monkeypatch.syspath_prepend(str(pkg))
    found, errors = discover(None)
    assert found["acme-big"].origin == "entry point"
    assert found["acme-big"].make().threshold == 100.0
    assert len(errors) == 1 and "entry point broken (acme_signals:Nope)" in errors[0]
