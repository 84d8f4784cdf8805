"""Where the CLI keeps the server URL and the API token.

The file is `$XDG_CONFIG_HOME/heldout/config.json` (or `~/.config/heldout/config.json`),
readable by its owner only: the token is a password-equivalent. `HELDOUT_URL` and
`HELDOUT_TOKEN` override what is stored, so scripts and CI need no file at all.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8000"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class ConfigError(Exception):
    """The stored configuration cannot be read or written; the message says why."""


@dataclass(frozen=True)
class Config:
    url: str | None
    token: str | None
    path: Path


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "heldout"


def config_path() -> Path:
    return config_dir() / "config.json"


def normalise_url(url: str) -> str:
    """`example.org/` -> `https://example.org`; local addresses default to plain http."""
    url = url.strip().rstrip("/")
    if not url:
        raise ConfigError("the server URL is empty")
    if "://" not in url:
        host = urlsplit("//" + url).hostname or ""
        url = ("http://" if host in LOCAL_HOSTS else "https://") + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an http(s) URL: {url}")
    return url


def _read_file(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"cannot read {path}: not a JSON object")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def load(*, url_override: str | None = None) -> Config:
    """Stored values, overridden by HELDOUT_URL/HELDOUT_TOKEN, then by `--url`."""
    path = config_path()
    stored = _read_file(path)
    url = url_override or os.environ.get("HELDOUT_URL") or stored.get("url")
    token = os.environ.get("HELDOUT_TOKEN") or stored.get("token")
    return Config(url=normalise_url(url) if url else None, token=token or None, path=path)


def save(*, url: str, token: str) -> Path:
    """Write URL and token atomically with mode 0600 in a 0700 folder."""
    folder = config_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask, and may pre-exist
        write_private(folder / "config.json", {"url": url, "token": token})
    except OSError as error:
        raise ConfigError(f"cannot write {folder / 'config.json'}: {error.strerror}") from None
    return folder / "config.json"


def write_private(path: Path, data: Mapping[str, object]) -> None:
    # mkstemp creates the file 0600 from the start, so the token is never world-readable,
    # not even for the moment between write and chmod.
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def forget_token() -> Path | None:
    """Remove the stored token (keep the URL); returns the file changed, if any."""
    path = config_path()
    stored = _read_file(path)
    if "token" not in stored:
        return None
    stored.pop("token")
    try:
        write_private(path, stored)
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror}") from None
    return path
