"""`labgen new`: a lab folder to start from, passing `labgen lint` as it is.

Its lab.yaml names `engine` and `engines` as the schema has them, and its checks.py
holds one check the author still has to write: `labgen verify` reports the scaffold
red until then, never green as shipped.
"""

from __future__ import annotations

from pathlib import Path

from labgen.core import resources
from labgen.core.errors import UsageError
from labgen.machine import recipe
from labgen.machine.render import jinja_env


def new_lab(name: str, parent: Path) -> Path:
    """Write parent/NAME/lab.yaml and checks.py from the scaffold templates.

    >>> import tempfile, yaml
    >>> with tempfile.TemporaryDirectory() as parent:
    ...     spec = yaml.safe_load((new_lab("my-lab", Path(parent)) / "lab.yaml").read_text())
    >>> spec["engine"], spec["engines"] == recipe.engines()
    ('20.10', True)
    """
    resources.validate_name(name, "lab name")
    folder = parent / name
    if folder.exists():
        raise UsageError(f"{folder} already exists; choose another name or folder")
    env = jinja_env()
    values = {
        "name": name,
        "title": name.replace("-", " ").capitalize(),
        "engine": recipe.engine(None),
        "engines": recipe.engines(),
    }
    files = {
        "lab.yaml": env.get_template("new/lab.yaml.j2").render(**values),
        "checks.py": env.get_template("new/checks.py.j2").render(**values),
    }
    folder.mkdir(parents=True)
    for filename, text in files.items():
        (folder / filename).write_text(text, encoding="utf-8")
    return folder
