"""A workshop's seats: N machines of one lab, brought up J at a time and taken down together.

Each seat is an ordinary labgen machine (`labgen up LAB --name W-NN`), so `labgen ssh`,
`check` and `status` work on a seat as on any machine. Seats come up on a bounded pool
of threads: Vagrant is a Ruby process per call, and twenty at once on two cores took
94 s where a few at a time finish sooner. A seat that fails is retried once (`up`
removes a failed machine whole, so the retry starts clean); the others carry on.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from labgen.core.context import Context
from labgen.core.errors import LabgenError, MachineError, UsageError
from labgen.core.lab import load_lab
from labgen.hosts import probe
from labgen.hosts import registry as host_registry
from labgen.machine import pool, providers, recipe, registry
from labgen.machine.instance import Instance
from labgen.verbs.destroy import destroy
from labgen.verbs.up import up
from labgen.workshop import placement
from labgen.workshop import room as rooms

# A seat's life as the progress display and `workshop status` name it.
WAITING, STARTING, RETRYING, READY, FAILED = "waiting", "starting", "retrying", "ready", "failed"
UNREACHABLE, ABSENT, REMOVING, REMOVED = "unreachable", "absent", "removing", "removed"


@dataclass
class SeatEvent:
    """What one seat is doing now: its state and the last line of its work."""

    seat: str
    state: str
    line: str = ""
    seconds: float = 0.0
    attempts: int = 0


Report = Callable[[SeatEvent], None]


@dataclass(frozen=True)
class SeatStatus:
    """One seat in `workshop status`."""

    seat: str
    state: str  # ready, unreachable, absent
    ssh: str  # host:port of its SSH, or ""
    steps_run: list[str]
    host: str = "local"  # the registered host it runs on


def up_seats(
    ctx: Context,
    lab_ref: str,
    seats: int,
    name: str | None,
    jobs: int,
    report: Report,
    spares: int = 0,
    chosen: placement.Placement | None = None,
    kernel_trace: bool = False,
) -> tuple[rooms.Room, list[SeatEvent]]:
    """Bring up seats 1..`seats` of workshop `name` (default: the lab's name), `jobs` at
    a time, claiming pooled machines where the pool has them; then keep `spares` pooled
    machines ready for resets. With `chosen` (from `plan`), seat i goes on its host i
    ("local" is this machine). `kernel_trace`: whether attendees may run `labgen-lab
    trace --kernel` there (written into each seat). Returns the room and each seat's
    last event."""
    lab = load_lab(lab_ref, ctx.labs_path)
    engine = recipe.engine(ctx.engine or lab.spec.engine)
    room = rooms.create(name or lab.name, lab.name, str(lab.path), seats, spares, kernel_trace)
    if chosen is not None:
        for seat, host in zip(room.seats, chosen.hosts, strict=False):
            if seat not in room.seat_hosts or not Instance(seat).exists():
                room.seat_hosts[seat] = host
        room.save()
    jobs = max(1, min(jobs, len(room.seats)))
    # The box once, before the pool: J threads must not each find it missing and build it.
    provider = providers.choose(ctx.provider, ctx.say)
    if any(room.host_of(s) == host_registry.LOCAL_NAME for s in room.seats):
        provider.ensure_box(ctx.say, engine=engine)
    pinned = replace(ctx, provider=provider.name)
    for seat in room.seats:
        report(SeatEvent(seat, WAITING))

    def one(seat: str) -> SeatEvent:
        host = room.host_of(seat)
        on = replace(pinned, host=None if host == host_registry.LOCAL_NAME else host)
        return _bring_up(on, str(lab.path), seat, report, room.kernel_trace)

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="seat") as workers:
        finals = list(workers.map(one, room.seats))
    keep_spares(pinned, str(lab.path), room.spares)
    return room, finals


def plan(hosts: list[str], seats: int, engine: str) -> placement.Placement:
    """Probe each named host (once, in parallel) and place `seats` seats over them; a
    UsageError naming every host that cannot take seats, and why, before any starts."""
    names = list(dict.fromkeys(h.strip() for h in hosts if h.strip()))
    known = [host_registry.get(n) for n in names]  # an unknown name: its UsageError
    with ThreadPoolExecutor(max_workers=max(1, len(known))) as workers:
        reports = list(workers.map(_examine, known))
    refused = placement.refusals(reports, engine)
    if refused:
        raise UsageError("; ".join(refused), hint="fix those hosts or leave them out of --hosts")
    return placement.place(reports, seats)


def _examine(host: host_registry.Host) -> probe.HostReport:
    if not host.is_local:
        return probe.examine(host)
    # This machine: its cores and free memory; its base image `up` builds when missing.
    report = probe.HostReport(host.name, "", "local", answers=True, cores=os.cpu_count() or 1)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            total, free, _ = probe.parse_facts(meminfo.read())
    except OSError:
        total = free = 0
    report.memory_mib, report.free_memory_mib = total, free
    return report


def keep_spares(ctx: Context, lab_path: str, count: int) -> list[str]:
    """Top the warm pool up to `count` ready machines of the seats' engine, one after
    another; the names of those made. A reset then claims one instead of waiting for
    Vagrant. They stay in the pool after the workshop (`labgen pool drain`)."""
    if count <= 0:
        return []
    provider = providers.choose(ctx.provider, ctx.say)
    if not provider.pools:
        return []
    engine = recipe.engine(ctx.engine or load_lab(lab_path).spec.engine)
    ready = [
        row
        for row in pool.status()
        if row.ready and row.engine == engine and row.provider == provider.name
    ]
    return [pool.make(provider, engine, ctx.say) for _ in range(count - len(ready))]


def _bring_up(
    ctx: Context, lab_path: str, seat: str, report: Report, kernel_trace: bool = False
) -> SeatEvent:
    """One seat, tried at most twice, its kernel-trace policy written; its final event."""
    began = time.monotonic()
    error = ""
    for attempt in (1, 2):
        state = STARTING if attempt == 1 else RETRYING

        def say(line: str, state: str = state, attempt: int = attempt) -> None:
            report(SeatEvent(seat, state, line, time.monotonic() - began, attempt))

        say("")
        try:
            up(ctx.with_say(say), lab_path, seat)
            _write_kernel_policy(seat, kernel_trace)
        except LabgenError as exc:
            error = exc.message.splitlines()[0] if exc.message else type(exc).__name__
            continue
        event = SeatEvent(seat, READY, "", round(time.monotonic() - began, 1), attempt)
        report(event)
        return event
    event = SeatEvent(seat, FAILED, error, round(time.monotonic() - began, 1), 2)
    report(event)
    return event


def _write_kernel_policy(seat: str, on: bool) -> None:
    """Turn `labgen-lab trace --kernel` on or off in the seat's machine. A seat whose
    policy could not be written is not ready: without the file the machine allows it."""
    import io

    from labgen.inmachine import kernel
    from labgen.machine import ssh

    instance, _, _ = registry.running(seat)
    err = io.BytesIO()
    with ssh.connect(instance.ssh_config) as client:
        code = ssh.run(client, kernel.policy_command(on), io.BytesIO(), err)
    if code != 0:
        raise MachineError(
            f"could not write {kernel.POLICY_FILE} on {seat} (exit {code}): "
            f"{err.getvalue().decode(errors='replace').strip()}"
        )


def seat_status(room: rooms.Room) -> list[SeatStatus]:
    """Each seat's state without a Vagrant call (1.5-2 s each): its SSH port answers or not."""
    rows = []
    for seat in room.seats:
        instance = Instance(seat)
        if not instance.exists():
            rows.append(SeatStatus(seat, ABSENT, "", []))
            continue
        state = instance.load()
        host = room.host_of(seat)
        if host != host_registry.LOCAL_NAME:
            # Its SSH is reached through its host (a ProxyCommand): ask over it.
            up_now = _answers_through_host(instance)
            rows.append(
                SeatStatus(seat, READY if up_now else UNREACHABLE, "", state.steps_run, host)
            )
            continue
        address = ssh_address(instance)
        up_now = address is not None and ssh_answers(*address)
        where = f"{address[0]}:{address[1]}" if address else ""
        rows.append(SeatStatus(seat, READY if up_now else UNREACHABLE, where, state.steps_run))
    return rows


def ssh_address(instance: Instance) -> tuple[str, int] | None:
    """The host and port of the machine's SSH, from its saved ssh-config."""
    import paramiko  # only here: status of seats without a config needs no SSH library

    if not instance.ssh_config.is_file():
        return None
    config = paramiko.SSHConfig.from_path(str(instance.ssh_config)).lookup("default")
    return str(config["hostname"]), int(config.get("port", 22))


def _answers_through_host(instance: Instance, timeout: float = 10.0) -> bool:
    """Whether the machine's SSH greets through its saved ProxyCommand (its host)."""
    import paramiko

    if not instance.ssh_config.is_file():
        return False
    config = paramiko.SSHConfig.from_path(str(instance.ssh_config)).lookup("default")
    command = config.get("proxycommand")
    if not command:
        return ssh_answers(str(config["hostname"]), int(config.get("port", 22)))
    try:
        sock = paramiko.ProxyCommand(command)
    except Exception:  # noqa: BLE001 - a proxy that cannot start is a seat not answering
        return False
    try:
        sock.settimeout(timeout)
        return sock.recv(4).startswith(b"SSH-")
    except Exception:  # noqa: BLE001 - a dead host ends the proxy: not answering
        return False
    finally:
        sock.close()


def ssh_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether an SSH server greets on host:port (its banner starts with SSH-)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def down_seats(name: str, jobs: int, report: Report) -> list[SeatEvent]:
    """Destroy every seat of the workshop in parallel, then forget the workshop.

    The record goes only when every seat went: a seat that could not be removed stays
    listed, and `workshop down` again retries it.
    """
    room = rooms.load(name)
    present = [s for s in room.seats if Instance(s).exists()]
    lock = threading.Lock()
    events: list[SeatEvent] = []
    silent = _silent_hosts({Instance(s).load().on_host for s in present} - {""})

    def remove(seat: str) -> None:
        began = time.monotonic()
        host = Instance(seat).load().on_host
        if host in silent:
            # Its machine cannot be reached: the instance dir stays, so that it is
            # still known (and removable) once the host answers again.
            event = SeatEvent(seat, FAILED, _left_on(seat, host, silent[host], name), 0.0, 1)
            report(event)
            with lock:
                events.append(event)
            return
        report(SeatEvent(seat, REMOVING))
        try:
            destroy(Context(), [seat], False)
            event = SeatEvent(seat, REMOVED, "", round(time.monotonic() - began, 1), 1)
        except LabgenError as exc:
            event = SeatEvent(seat, FAILED, exc.message.splitlines()[0], 0.0, 1)
        report(event)
        with lock:
            events.append(event)

    if present:
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(present)))) as workers:
            list(workers.map(remove, present))
    if all(e.state == REMOVED for e in events):
        room.remove()
    return sorted(events, key=lambda e: e.seat)


def _silent_hosts(hosts: set[str]) -> dict[str, str]:
    """host -> why it does not answer, for those of `hosts` that do not (one probe each,
    in parallel)."""
    from labgen.workshop.watch import probe_host

    if not hosts:
        return {}
    names = sorted(hosts)
    with ThreadPoolExecutor(max_workers=len(names)) as workers:
        answers = list(workers.map(probe_host, names))
    return {h: why for h, why in zip(names, answers, strict=True) if why is not None}


def _left_on(seat: str, host: str, why: str, workshop: str) -> str:
    """What `down` says of a seat left on a host that does not answer, and the fix.

    >>> _left_on("w-02", "sim-b", "Connection refused", "w")  # doctest: +NORMALIZE_WHITESPACE
    'left on host sim-b, which does not answer (Connection refused): its machine w-02 is
    still there; once the host is back, `labgen workshop down w` (or `labgen destroy w-02`)
    removes it'
    """
    return (
        f"left on host {host}, which does not answer ({why}): its machine {seat} is still "
        f"there; once the host is back, `labgen workshop down {workshop}` (or "
        f"`labgen destroy {seat}`) removes it"
    )


def reset_seat(
    ctx: Context, lab_path: str, seat: str, report: Report, kernel_trace: bool = False
) -> SeatEvent:
    """Give a seat a fresh machine (the instructor's reset): the old one is moved aside
    and destroyed in the background while the seat claims a spare from the pool (or,
    without one, is brought up as at first)."""
    instance = registry.instance_named(seat)
    old: threading.Thread | None = None
    if instance.exists():
        # The fresh machine goes where the old one was (its host, `up --hosts`).
        ctx = replace(ctx, host=instance.load().on_host or None)
        report(SeatEvent(seat, REMOVING))
        # A name no verb lists (instance dirs starting with a dot are renders in
        # progress): the seat's own name is free at once.
        aside = Instance(f".reset-{seat}-{secrets.token_hex(3)}")
        os.rename(instance.path, aside.path)
        old = threading.Thread(target=registry.teardown, args=(aside,), name=f"gone-{seat}")
        old.start()
    try:
        return _bring_up(ctx, lab_path, seat, report, kernel_trace)
    finally:
        if old is not None:
            old.join()
