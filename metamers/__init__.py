"""Model metamers: synthesis, evaluation and transfer of stimuli that a network cannot tell apart."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metamers")
except PackageNotFoundError:  # a source tree that is not installed: read pyproject.toml
    import re as _re
    from pathlib import Path as _Path

    _pyproject = _Path(__file__).resolve().parents[1] / "pyproject.toml"
    _match = _re.search(r'^version = "([^"]+)"', _pyproject.read_text(), _re.M) if _pyproject.is_file() else None
    __version__ = _match.group(1) if _match else "0.0.0+unknown"

__all__ = ["__version__"]
