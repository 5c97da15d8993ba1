"""The wiring shipped inside the package: the 13 system agents, byte for byte the
repository's ``wiring.yaml`` (a test fails if the copies drift).

``python -m gateway`` falls back to it when no wiring is given and there is no
``./wiring.yaml``; ``python -m phoenix init`` writes it out as a starting point.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["default_wiring"]

_NAME = "default_wiring.yaml"


def default_wiring() -> Path:
    """The path of the shipped wiring file (inside the installed ``phoenix`` package).

    Raises :class:`FileNotFoundError` if the package data is missing (a broken
    install) or is not a file on disk (a package imported from an archive).
    """
    resource = resources.files("phoenix").joinpath(_NAME)
    if not isinstance(resource, Path) or not resource.is_file():
        raise FileNotFoundError(
            f"the shipped wiring (phoenix/{_NAME}) is not installed as a file; "
            "reinstall vibe-actors"
        )
    return resource
