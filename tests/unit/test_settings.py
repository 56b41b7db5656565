"""One settings object: defaults < ssmd.toml < environment < flags; library code reads no environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ssmd
from ssmd.errors import ConfigError
from ssmd.settings import ENV, Settings, parse_duration

PACKAGE = Path(ssmd.__file__).parent


def _toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ssmd.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults() -> None:
    s = Settings.load(environ={})
    assert s.env == "prod" and s.archive_dir == Path("./data") and s.nats_url is None
    assert s.log_level == "info" and s.log_format == "text" and "series" in s.cdc_tables


def test_each_layer_wins_over_the_one_before(tmp_path: Path) -> None:
    cfg = _toml(
        tmp_path,
        'env = "staging"\narchive_dir = "/from/toml"\nnats_url = "nats://toml:4222"\n'
        '[venues.kraken]\nrest_url = "http://toml/0"\nrate = 2\n',
    )
    s = Settings.load(environ={}, config=cfg)
    assert (s.env, s.archive_dir, s.nats_url) == ("staging", Path("/from/toml"), "nats://toml:4222")
    assert s.venue("kraken").rest_url == "http://toml/0" and s.venue("kraken").rate == 2.0
    environ = {
        "SSMD_ARCHIVE_DIR": "/from/env",
        "NATS_URL": "nats://env:4222",
        "SSMD_KRAKEN_REST_URL": "http://env/0",
        "SSMD_STREAM_PROD_KRAKEN_MAX_AGE": "1h",
    }
    s = Settings.load(environ=environ, config=cfg)
    assert s.env == "staging" and s.archive_dir == Path("/from/env")
    assert s.nats_url == "nats://env:4222" and s.venue("kraken").rest_url == "http://env/0"
    assert s.venue("kraken").rate == 2.0  # not set by the environment: the file's
    assert s.streams == {"SSMD_STREAM_PROD_KRAKEN_MAX_AGE": "1h"}
    s = Settings.load({"archive_dir": "/from/flag", "nats_url": None}, environ=environ, config=cfg)
    assert s.archive_dir == Path("/from/flag") and s.nats_url == "nats://env:4222"
    # the config file can be named by the environment too
    assert Settings.load(environ={"SSMD_CONFIG": str(cfg)}).env == "staging"


def test_unknown_keys_and_secrets_in_the_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting.*archive_root"):
        Settings.load(environ={}, config=_toml(tmp_path, 'archive_root = "/x"\n'))
    with pytest.raises(ConfigError, match="KALSHI_API_KEY"):
        Settings.load(environ={}, config=_toml(tmp_path, 'kalshi_api_key = "k"\n'))
    with pytest.raises(ConfigError, match=r"unknown setting.*for venue kraken: url"):
        Settings.load(environ={}, config=_toml(tmp_path, '[venues.kraken]\nurl = "x"\n'))
    with pytest.raises(ConfigError, match="unknown venue"):
        Settings.load(environ={}, config=_toml(tmp_path, "[venues.binance]\nrate = 1\n"))
    for bad in ("1e3", '"big"', "100", "2147483648"):
        with pytest.raises(ConfigError, match="max_frame_bytes must be"):
            Settings.load(
                environ={}, config=_toml(tmp_path, f"[venues.kraken]\nmax_frame_bytes = {bad}\n")
            )
    cfg = _toml(tmp_path, "[venues.kraken]\nmax_frame_bytes = 65536\n")
    assert Settings.load(environ={}, config=cfg).venue("kraken").max_frame_bytes == 65536
    s = Settings.load(environ={"SSMD_KRAKEN_MAX_FRAME_BYTES": "70000"}, config=cfg)
    assert s.venue("kraken").max_frame_bytes == 70000
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(environ={}, config=_toml(tmp_path, "env = \n"))
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(environ={}, config=tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="log level"):
        Settings.load(environ={"SSMD_LOG_LEVEL": "loud"})
    with pytest.raises(ConfigError, match="environment name"):
        Settings.load({"env": "prod env"}, environ={})


def test_secrets_are_not_in_the_repr() -> None:
    s = Settings.load(
        environ={
            "KALSHI_API_KEY": "key-id-123",
            "SSMD_DATA_API_KEY": "api-key-456",
            "DATABASE_URL": "postgresql://u:hunter2@h/db",
        }
    )
    assert s.kalshi_api_key == "key-id-123" and s.data_api_key == "api-key-456"
    text = repr(s)
    assert "key-id-123" not in text and "api-key-456" not in text and "hunter2" not in text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("1.5", 1.5),
        ("250ms", 0.25),
        ("90s", 90),
        ("15m", 900),
        ("6h", 21600),
        ("7d", 604800),
    ],
)
def test_one_duration_grammar(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "-1", "1e400", "nan"])
def test_bad_durations_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(text)


def test_library_code_never_reads_the_environment() -> None:
    """Only ssmd/settings.py reads os.environ / os.getenv (the CLI passes values down)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv", "environb")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, offenders


def test_every_setting_has_one_environment_variable() -> None:
    names = list(ENV.values())
    assert len(names) == len(set(names))
