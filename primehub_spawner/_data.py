"""Where the installed data files (Jinja2 templates) live."""

import sys
from pathlib import Path


def _templates_dir() -> Path:
    """The templates of a source checkout (editable install) or of the installed data files."""
    checkout = Path(__file__).resolve().parent.parent / "share" / "templates"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "primehub-spawner" / "templates"


TEMPLATES_DIR: Path = _templates_dir()
