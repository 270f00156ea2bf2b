"""`labgen status`: the lab machines that exist and their state, orphans included."""

from __future__ import annotations

from labgen.core.results import StatusRow
from labgen.machine import providers, registry
from labgen.machine.instance import all_instances
from labgen.machine.vagrant import Machine


def status() -> list[StatusRow]:
    """Every lab machine under the labgen home, with its state; and every orphan: what
    is left on the host of a machine whose instance directory is gone."""
    rows = []
    for inst in all_instances():
        state = inst.load()
        known = (inst.path / ".vagrant").is_dir()
        word = Machine(inst.path).state() if known else "not_created"
        if word == "running" and inst.ssh_config.is_file():
            trouble = registry.trouble(inst)
            word = f"running, but {trouble}" if trouble else word
        rows.append(
            StatusRow(
                instance=inst.name,
                lab=state.lab,
                provider=state.provider,
                engine=state.engine or "?",
                state=word,
                steps_run=state.steps_run,
                created=state.created,
                path=str(inst.path),
            )
        )
    known_names = {row.instance for row in rows}
    orphans: dict[str, list[str]] = {}
    for provider in providers.all_providers():
        for leftover in provider.leftovers():
            if leftover.instance not in known_names:
                orphans.setdefault(leftover.instance, []).append(
                    f"{leftover.provider} {leftover.kind} {leftover.name[:12]}"
                )
    for name, parts in sorted(orphans.items()):
        word = f"orphan ({', '.join(parts)}): `labgen destroy {name}` removes it"
        rows.append(StatusRow(name, "?", "?", "?", word, [], "", ""))
    return rows
