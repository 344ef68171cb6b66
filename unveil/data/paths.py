"""Where the data lives: ``--data``, else ``$UNVEIL_DATA``, else ``../shared/data`` next to the repo."""
from __future__ import annotations

import os
from pathlib import Path

from unveil.errors import UnveilError

DATA_ENV = "UNVEIL_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = REPO_ROOT.parent / "shared" / "data"


def data_root(explicit: str | os.PathLike | None = None, need: str | None = None) -> Path:
    """Resolve the data root. ``need`` names a sub-folder that must exist (e.g. ``faces/utkface``).

    Raises UnveilError naming the ``--data`` option and the ``UNVEIL_DATA`` variable when missing.
    """
    if explicit:
        root, how = Path(explicit), "--data"
    elif os.environ.get(DATA_ENV):
        root, how = Path(os.environ[DATA_ENV]), f"${DATA_ENV}"
    else:
        root, how = DEFAULT_ROOT, "the default"
    if not root.is_dir():
        raise UnveilError(
            f"data root {root} (from {how}) does not exist. Point {DATA_ENV} or --data at the "
            f"folder that holds faces/, masks/ and occluders/ (see README, 'Data')."
        )
    if need and not (root / need).exists():
        raise UnveilError(
            f"{root / need} is missing: the data root {root} (from {how}) lacks '{need}'. "
            f"Set {DATA_ENV} or --data to the shared data folder."
        )
    return root
