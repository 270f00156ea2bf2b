"""`labgen new`: a lab folder to start from, passing `labgen lint` as it is."""

from __future__ import annotations

from pathlib import Path

from labgen.core import resources
from labgen.core.errors import UsageError
from labgen.machine.render import jinja_env


def new_lab(name: str, parent: Path) -> Path:
    """Write parent/NAME/lab.yaml and checks.py from the scaffold templates."""
    resources.validate_name(name, "lab name")
    folder = parent / name
    if folder.exists():
        raise UsageError(f"{folder} already exists; choose another name or folder")
    env = jinja_env()
    title = name.replace("-", " ").capitalize()
    files = {
        "lab.yaml": env.get_template("new/lab.yaml.j2").render(name=name, title=title),
        "checks.py": env.get_template("new/checks.py.j2").render(name=name),
    }
    folder.mkdir(parents=True)
    for filename, text in files.items():
        (folder / filename).write_text(text, encoding="utf-8")
    return folder
