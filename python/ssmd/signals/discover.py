"""Finding signals: the built-ins, ``{signals dir}/<name>/signal.py``, and entry
points of the group ``ssmd.signals``.

A signals directory holds one folder per signal with a ``signal.py`` (and an
optional ``backtest.yaml``). ``signal.py`` defines one subclass of
:class:`ssmd.signals.Signal`, or declares ``id``, ``name``, ``requires``,
``evaluate`` (and optionally ``params``, ``payload``, ``trigger``) at module
level. An entry point names such a class or module::

    [project.entry-points."ssmd.signals"]
    my-signal = "my_package.signals:MySignal"

When two sources declare the same id, a signals directory wins over an entry
point, which wins over a built-in. A file that does not import, declares
nothing, lacks a field or declares a bad one is a :class:`SignalLoadError`:
one line naming the file and the line.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import inspect
import logging
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ssmd.errors import ConfigError, SsmdError
from ssmd.signals.api import ID_PATTERN, Builder, Param, Signal
from ssmd.signals.builtin import BUILTINS

__all__ = [
    "ENTRY_POINT_GROUP",
    "SignalLoadError",
    "SignalSource",
    "discover",
    "find_signal",
    "load_file",
]

log = logging.getLogger("ssmd.signals")

ENTRY_POINT_GROUP = "ssmd.signals"
SIGNAL_FILE = "signal.py"
BACKTEST_FILE = "backtest.yaml"


class SignalLoadError(ConfigError):
    """A signal that cannot be loaded: ``file:line: what``."""


@dataclass(frozen=True)
class SignalSource:
    """A signal found somewhere, and where."""

    id: str
    name: str
    #: ``builtin``, ``dir`` or ``entry point``
    origin: str
    cls: type[Signal]
    #: the file it was defined in (``None`` when unknown)
    path: str | None = None
    #: the ``backtest.yaml`` beside it, if any
    backtest_file: str | None = None
    shadows: tuple[str, ...] = field(default_factory=tuple)

    def make(self, params: Mapping[str, Any] | None = None) -> Signal:
        """An instance with these parameter values (text or typed)."""
        return self.cls(**dict(params or {}))


def _line_of(obj: Any) -> int:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return 1


def _where(path: str, exc: BaseException) -> str:
    """``path:line`` of the innermost frame of ``exc`` inside ``path``."""
    if isinstance(exc, SyntaxError) and exc.filename == path:
        return f"{path}:{exc.lineno or 1}"
    line = 1
    for fs in traceback.extract_tb(exc.__traceback__):
        if fs.filename == path and fs.lineno is not None:
            line = fs.lineno
    return f"{path}:{line}"


def _fail(path: str, line: int, what: str) -> SignalLoadError:
    return SignalLoadError(f"{path}:{line}: {what}")


def _check_class(cls: type[Signal], path: str) -> type[Signal]:
    """Check what a signal class declares; instantiate it with its defaults."""
    line = _line_of(cls)
    label = f"signal class {cls.__name__}"
    for attr in ("id", "name"):
        value = getattr(cls, attr, "")
        if not isinstance(value, str) or not value:
            raise _fail(path, line, f"{label} declares no {attr} (a non-empty string)")
    if not ID_PATTERN.fullmatch(cls.id):
        raise _fail(
            path,
            line,
            f"{label}: bad id {cls.id!r}: lower-case letters, digits, - and _ (it is a subject token)",
        )
    if cls.evaluate is Signal.evaluate:
        raise _fail(path, line, f"{label} declares no evaluate(self, state)")
    if cls.trigger not in ("edge", "record"):
        raise _fail(path, line, f"{label}: bad trigger {cls.trigger!r} (edge or record)")
    params = cls.params
    if not isinstance(params, Mapping) or not all(isinstance(p, Param) for p in params.values()):
        raise _fail(path, line, f"{label}: params must map names to ssmd.signals.Param")
    try:
        inst = cls()
        builders = inst.builders()
        if not builders:
            raise _fail(path, line, f"{label} requires no builder (requires = {{name: builder}})")
        for name, b in builders.items():
            if not isinstance(b, Builder) or not b.kind:
                raise _fail(
                    path,
                    line,
                    f"{label}: requires[{name!r}] is not a builder (VolumeProfile, PriceProfile,"
                    " Spread, Lifecycle)",
                )
            if not isinstance(name, str) or not name.isidentifier():
                raise _fail(path, line, f"{label}: bad builder name {name!r} (an identifier)")
        inst.engine_builders()
        rule = inst.rule()
        if rule is not None:
            from ssmd.core import SignalEngine

            SignalEngine(cls.id, inst.engine_builders(), rule=[c.engine() for c in rule])
    except SignalLoadError:
        raise
    except SsmdError as exc:
        raise _fail(path, line, f"{label}: {exc}") from None
    except Exception as exc:
        raise SignalLoadError(
            f"{_where(path, exc)}: {label}: {type(exc).__name__}: {exc}"
        ) from None
    return cls


def _module_signal(mod: ModuleType, path: str) -> type[Signal]:
    """A class built from module-level declarations."""
    evaluate: Callable[..., Any] = mod.evaluate
    nargs = len(inspect.signature(evaluate).parameters)
    payload = getattr(mod, "payload", None)
    attrs: dict[str, Any] = {
        "id": getattr(mod, "id", ""),
        "name": getattr(mod, "name", ""),
        "requires": getattr(mod, "requires", {}),
        "params": getattr(mod, "params", {}),
        "trigger": getattr(mod, "trigger", "edge"),
        "__module__": mod.__name__,
    }
    if nargs >= 2:
        attrs["evaluate"] = lambda self, state: evaluate(state, self.param_values)
    else:
        attrs["evaluate"] = lambda self, state: evaluate(state)
    if payload is not None:
        pn = len(inspect.signature(payload).parameters)
        if pn >= 2:
            attrs["payload"] = lambda self, state: payload(state, self.param_values)
        else:
            attrs["payload"] = lambda self, state: payload(state)
    cls = type("ModuleSignal", (Signal,), attrs)
    for attr in ("id", "name"):
        if not isinstance(attrs[attr], str) or not attrs[attr]:
            raise _fail(path, 1, f"the module declares no {attr} (a non-empty string)")
    return cls


def _signal_in(mod: ModuleType, path: str) -> type[Signal]:
    classes = [
        c
        for c in vars(mod).values()
        if isinstance(c, type)
        and issubclass(c, Signal)
        and c.__module__ == mod.__name__
        and not inspect.isabstract(c)
        and bool(c.id)
    ]
    if len(classes) > 1:
        names = ", ".join(c.__name__ for c in classes)
        raise _fail(path, _line_of(classes[1]), f"more than one signal class here ({names})")
    if classes:
        return _check_class(classes[0], path)
    if callable(getattr(mod, "evaluate", None)):
        return _check_class(_module_signal(mod, path), path)
    raise _fail(
        path,
        1,
        "no signal here: define a subclass of ssmd.signals.Signal with an id"
        " (or module-level id, name, requires and evaluate)",
    )


def load_file(path: str | Path) -> type[Signal]:
    """The signal class defined in the file ``path``."""
    p = Path(path).resolve()
    if not p.is_file():
        raise SignalLoadError(f"{p}: no such file")
    text_path = str(p)
    mod_name = f"ssmd_signal_{p.parent.name}".replace("-", "_").replace(".", "_")
    spec = importlib.util.spec_from_file_location(mod_name, text_path)
    if spec is None or spec.loader is None:
        raise SignalLoadError(f"{text_path}:1: cannot be imported as a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    try:
        spec.loader.exec_module(mod)
    except SyntaxError as exc:
        sys.modules.pop(mod_name, None)
        raise SignalLoadError(f"{_where(text_path, exc)}: SyntaxError: {exc.msg}") from None
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise SignalLoadError(f"{_where(text_path, exc)}: {type(exc).__name__}: {exc}") from None
    cls = _signal_in(mod, text_path)
    cls.path = text_path
    cls.origin = "dir"
    return cls


def _dir_signals(root: Path, errors: list[str]) -> dict[str, SignalSource]:
    out: dict[str, SignalSource] = {}
    if not root.is_dir():
        raise ConfigError(f"signals directory not found: {root}")
    for sub in sorted(root.iterdir()):
        f = sub / SIGNAL_FILE
        if not sub.is_dir() or sub.name.startswith((".", "_")) or not f.is_file():
            continue
        try:
            cls = load_file(f)
        except SignalLoadError as exc:
            errors.append(str(exc))
            continue
        bt = sub / BACKTEST_FILE
        src = SignalSource(
            cls.id,
            cls.name,
            "dir",
            cls,
            str(f.resolve()),
            str(bt.resolve()) if bt.is_file() else None,
        )
        if cls.id in out:
            errors.append(f"{f}:{_line_of(cls)}: signal id {cls.id!r} also in {out[cls.id].path}")
            continue
        out[cls.id] = src
        if sub.name != cls.id:
            out.setdefault(sub.name, src)
    return out


def _entry_point_signals(errors: list[str]) -> dict[str, SignalSource]:
    out: dict[str, SignalSource] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        label = f"entry point {ep.name} ({ep.value})"
        try:
            obj = ep.load()
        except Exception as exc:
            tb = traceback.extract_tb(exc.__traceback__)
            where = f"{tb[-1].filename}:{tb[-1].lineno}: " if tb else ""
            errors.append(f"{where}{label}: {type(exc).__name__}: {exc}")
            continue
        try:
            if isinstance(obj, ModuleType):
                path = getattr(obj, "__file__", None) or label
                cls = _signal_in(obj, path)
            elif isinstance(obj, type) and issubclass(obj, Signal):
                path = inspect.getsourcefile(obj) or label
                cls = _check_class(obj, path)
            else:
                errors.append(f"{label}: not a Signal class or a module")
                continue
        except SignalLoadError as exc:
            errors.append(str(exc))
            continue
        cls.origin = "entry point"
        cls.path = path
        out[cls.id] = SignalSource(cls.id, cls.name, "entry point", cls, path)
    return out


def discover(signals_dir: str | Path | None = None) -> tuple[dict[str, SignalSource], list[str]]:
    """Every signal by id (and by folder name), and one error line per signal that
    could not be loaded."""
    errors: list[str] = []
    found: dict[str, SignalSource] = {
        i: SignalSource(i, c.name, "builtin", c, inspect.getsourcefile(c))
        for i, c in BUILTINS.items()
    }
    layers = [_entry_point_signals(errors)]
    if signals_dir is not None:
        layers.append(_dir_signals(Path(signals_dir), errors))
    for layer in layers:
        for key, src in layer.items():
            if key in found and found[key].cls is not src.cls and key == src.id:
                log.info("signal %s from %s shadows the %s one", key, src.origin, found[key].origin)
                src = SignalSource(**{**src.__dict__, "shadows": (found[key].origin,)})
            found[key] = src
    return found, errors


def find_signal(name: str, signals_dir: str | Path | None = None) -> SignalSource:
    """The signal called ``name`` (an id or a folder name), or a one-line error."""
    found, errors = discover(signals_dir)
    if name in found:
        return found[name]
    for e in errors:  # the signal may be the one that failed to load
        if f"/{name}/{SIGNAL_FILE}:" in e or f"{name}/{SIGNAL_FILE}:" in e:
            raise SignalLoadError(e)
    ids = sorted({s.id for s in found.values()})
    close = difflib.get_close_matches(name, ids, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    where = f" in {signals_dir} or" if signals_dir else ""
    raise ConfigError(
        f"unknown signal {name!r}{hint}: not found{where} among the built-ins and entry points"
        f" ({', '.join(ids)})"
    )
