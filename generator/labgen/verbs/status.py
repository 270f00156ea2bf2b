"""`labgen status`: the lab machines that exist and their state, orphans included."""

from __future__ import annotations

from labgen.core.errors import LabgenError
from labgen.core.results import StatusRow
from labgen.machine import providers, registry
from labgen.machine.instance import all_instances, host_label
from labgen.machine.vagrant import Machine


def status() -> list[StatusRow]:
    """Every lab machine under the labgen home, with its state; and every orphan: what
    is left on the host of a machine whose instance directory is gone. A provider whose
    host could not be asked gets a row "could not look: WHY" instead of its orphans."""
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
                lab=state.lab if not state.pooled else "(warm pool)",
                provider=state.provider,
                engine=state.engine or "?",
                state=word,
                steps_run=state.steps_run,
                created=state.created,
                path=str(inst.path),
                host=host_label(state.on_host),
            )
        )
    # What the host's labels call each machine: a claimed one keeps its pooled name.
    known_names = {inst.load().made_as_name for inst in all_instances()}
    orphans: dict[str, list[str]] = {}
    orphan_host: dict[str, str] = {}
    for provider, host in (
        (p, h) for p in providers.all_providers() for h in registry.hosts_in_use()
    ):
        try:
            found = provider.leftovers(host=host)
        except LabgenError as exc:
            rows.append(_blind(provider.name, exc))
            continue
        for leftover in (x for x in found if x.instance not in known_names):
            orphans.setdefault(leftover.instance, []).append(
                f"{leftover.provider} {leftover.kind} {leftover.name[:12]}"
            )
            orphan_host[leftover.instance] = host_label(leftover.host)
    for name, parts in sorted(orphans.items()):
        word = f"orphan ({', '.join(parts)}): `labgen destroy {name}` removes it"
        rows.append(StatusRow(name, "?", "?", "?", word, [], "", "", orphan_host[name]))
    return rows


def _blind(provider: str, exc: LabgenError) -> StatusRow:
    """A row saying a provider's orphans could not be looked for, and why: an
    unanswered look is not "no orphans", and the machines listed above still are."""
    why = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return StatusRow("?", "?", provider, "?", f"could not look: {why}", [], "", "")
