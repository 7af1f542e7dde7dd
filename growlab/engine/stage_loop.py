"""The stage loop, growlab's one: for each stage its members plan, grow -> train -> evaluate ->
record -> checkpoint, together.

A solo run is a stack of one (`SoloMember`); the replicas of a stack of seeds are members that
train every epoch as one (growlab.engine.stacking). Each member's steps are its run's own
methods (growlab.engine.loop.Run: begin_stage, stage_inputs, after_epoch, end_stage, ...);
what trains an epoch is a runner (growlab.engine.runners): one network, or the stack. A
member that diverges finishes there and leaves. When the members' growth triggers disagree (one
ends a stage, or stops growing, and another does not), the stack splits: members that agree go
on stacked together, one smaller stack after the other, and a member alone goes on solo; the
log says which. So do members whose triggers steer the next growth to different places
(`trigger.steer=true`): they would grow different networks. Members that cannot train as one
stack at all go on one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from growlab.engine.deferred_signals import CheckpointGuard
from growlab.engine.progress import RunProgress
from growlab.engine.run_directory.records import write_summary
from growlab.engine.runners import EpochRunner, Member, SoloRunner, StageInputs
from growlab.engine.stacking.runner import StackRunner
from growlab.engine.stacking.state import StackError
from growlab.growth.strategies import StagePlan

if TYPE_CHECKING:
    from growlab.engine.loop import Run

log = logging.getLogger("growlab")


class SoloMember:
    """A run that trains on its own: its steps are plain calls."""

    def __init__(self, run: Run) -> None:
        self.run, self.index, self.summary = run, 0, None

    def call(self, method: Callable[..., Any], *args: Any) -> Any:
        return method(*args)


def fail(run: Run, exc: BaseException) -> dict[str, Any]:
    """Record a crash of a started run: a `failed` summary, never over a finished one."""
    error = f"{type(exc).__name__}: {exc}"
    if hasattr(run, "progress"):
        run.status = "failed"
        summary = run.write_summary(error=error)
    else:
        summary = {"status": "failed", "error": error, "config": run.config}
        write_summary(run.run_dir / "summary.json", summary)
    run.logger.finish(summary)
    return summary


class StageLoop:
    def __init__(
        self,
        members: list[Member],
        guard: CheckpointGuard,
        contain_failures: bool = True,
        bar: RunProgress | None = None,
    ) -> None:
        """`contain_failures`: a member's crash fails that member alone (a stack) rather than
        propagating (a solo run, whose job records it). `bar`: the stack's progress bar (a
        solo run updates its own)."""
        self.alive = list(members)
        self.guard = guard
        self.contain_failures = contain_failures
        self.bar = bar
        self.on_alive: Callable[[list[Member]], None] = lambda members: None

    def set_alive(self, members: list[Member]) -> None:
        self.alive = members
        self.on_alive(members)

    def run(self) -> None:
        """Every stage left, then each member's final outputs (its summary in `.summary`)."""
        while self.alive and self.alive[0].run.stages_left():
            plan = self.alive[0].run.plan[self.alive[0].run.progress.stage]
            places = agreeing(self.alive, lambda m: m.run.next_grow_at())
            if len(places) > 1:
                self.split(places, self.places_differ(places))
                return
            self.each(
                lambda m, plan=plan: (
                    m.run.progress.current is not None or m.call(m.run.begin_stage, plan)
                )
            )
            try:
                self.train_stage(plan)
            except TriggersDisagree as exc:
                self.split(exc.groups, str(exc))
                return
            except StackError as exc:
                log.info("the stack of seeds %s goes on one by one: %s", self.seeds(), exc)
                self.one_by_one()
                return
            with self.guard.handing_over_checkpoints():
                self.each(lambda m: m.call(m.run.end_stage))
            groups = agreeing(self.alive, lambda m: plan_left(m.run))
            if len(groups) > 1:
                stopped = [m for m in self.alive if m.run.progress.stopped_growing is not None]
                why = f"the growth trigger stops growing for seeds {seeds_of(stopped)} only"
                self.split(groups, why)
                return
        self.each(lambda m: m.call(finish, m.run))

    def places_differ(self, groups: list[list[Member]]) -> str:
        """Why members whose triggers steer the next growth to different places split."""
        stage = self.alive[0].run.progress.stage + 1
        places = "; ".join(f"seeds {seeds_of(g)} at {g[0].run.next_grow_at()}" for g in groups)
        return f"the growth trigger steers stage {stage}'s growth to different places ({places})"

    def seeds(self) -> str:
        return ",".join(str(m.run.cfg.seed) for m in self.alive)

    def split(self, groups: list[list[Member]], why: str) -> None:
        """Each group of members that agree goes on as its own stack (alone: solo)."""
        plans = "; ".join(
            f"seeds {seeds_of(g)} go on stacked" if len(g) > 1 else f"seed {seeds_of(g)} alone"
            for g in groups
        )
        log.info("the stack of seeds %s splits: %s; %s", self.seeds(), why, plans)
        for group in groups:
            loop = StageLoop(group, self.guard, self.contain_failures)
            loop.on_alive = self.on_alive
            loop.set_alive(group)
            for member in group:
                member.run.stack_size = len(group)
            loop.run()

    def one_by_one(self) -> None:
        for member in self.alive:
            member.run.stack_size = 1  # what is left trains alone
            StageLoop([member], self.guard, self.contain_failures).run()

    def guarded(self, member: Member, step: Callable[[Member], Any]) -> bool:
        """Run a member's step; a crash fails that member alone (or propagates, solo)."""
        try:
            result = step(member)
        except Exception as exc:
            if not self.contain_failures:
                raise
            log.exception("run %s failed", member.run.run_dir)
            member.call(self.record_failure, member, exc)
            return False
        if isinstance(result, dict):
            member.summary = result
        return True

    @staticmethod
    def record_failure(member: Member, exc: Exception) -> None:
        member.run.checkpoints.close()
        member.summary = fail(member.run, exc)

    def each(self, step: Callable[[Member], Any]) -> None:
        self.set_alive([m for m in self.alive if self.guarded(m, step)])

    def runner(self, inputs: list[StageInputs]) -> EpochRunner:
        return SoloRunner(inputs) if len(inputs) == 1 else StackRunner(inputs)

    def train_stage(self, plan: StagePlan) -> None:
        """The open stage's epochs, until the growth triggers end it."""
        t0 = {m.index: m.run.clock() for m in self.alive}
        inputs: list[StageInputs] = []
        self.each(lambda m: inputs.append(m.call(m.run.stage_inputs, len(self.alive))))
        if not self.alive:
            return
        runner = self.runner(inputs)
        for member in self.alive:  # the cache build is stage work
            member.run.progress.current["stage_wall_s"] += member.run.clock() - t0[member.index]  # type: ignore[index]
        while self.alive and not self.alive[0].run.stage_complete(plan):
            self.train_epoch(plan, runner)
            self.check_triggers_agree(plan)

    def train_epoch(self, plan: StagePlan, runner: EpochRunner) -> None:
        t0 = [m.run.clock() for m in self.alive]
        results = runner.train_epoch(self.alive)
        # Each member's share of the epoch (in a stack its clock stands still in the others'
        # steps).
        seconds = [m.run.clock() - start for m, start in zip(self.alive, t0, strict=True)]
        keep: list[Member] = []
        with self.guard.handing_over_checkpoints():  # every member's, or none
            trained = zip(self.alive, runner.inputs, results, seconds, strict=True)
            for member, inputs, (result, val), seconds_of in trained:
                run = member.run
                error = member.call(run.after_epoch, plan, inputs, result, val, seconds_of)
                if error is None:
                    keep.append(member)
                    continue
                where = f" (seed {run.cfg.seed}, stacked)" if len(self.alive) > 1 else ""
                member.call(run.diverge, f"{error}{where}")
                self.guarded(member, lambda m: m.call(finish, m.run))
        if len(keep) < len(self.alive):
            runner.keep([self.alive.index(m) for m in keep])
            self.set_alive(keep)
        if self.bar is not None and keep:
            p, lead = keep[0].run.progress, keep[0].run
            self.bar.update(p.stage, len(lead.plan), lead.net.depth, p.epoch, results[0][0].loss)

    def check_triggers_agree(self, plan: StagePlan) -> None:
        """Members whose triggers end the stage at different epochs cannot go on as one stack:
        those that agree go on together from here (the epoch just trained is everyone's)."""
        done = [m for m in self.alive if m.run.stage_complete(plan)]
        if done and len(done) < len(self.alive):
            raise TriggersDisagree(
                f"the growth trigger ends stage {self.alive[0].run.progress.stage + 1} after "
                f"{self.alive[0].run.progress.epoch} epoch(s) for seeds {seeds_of(done)} only",
                agreeing(self.alive, lambda m: m.run.stage_complete(plan)),
            )


class TriggersDisagree(Exception):
    """The members' growth triggers decided differently; `groups`: the members that agree."""

    def __init__(self, message: str, groups: list[list[Member]]) -> None:
        super().__init__(message)
        self.groups = groups


def agreeing(members: list[Member], decision: Callable[[Member], Any]) -> list[list[Member]]:
    """The members grouped by their decision, groups in the order of their first member."""
    groups: dict[Any, list[Member]] = {}
    for member in members:
        groups.setdefault(decision(member), []).append(member)
    return list(groups.values())


def plan_left(run: Run) -> tuple[tuple[str, int], ...]:
    """The stages a run has left (a trigger that stops growing drops some)."""
    return tuple((p.phase, p.epochs) for p in run.plan[run.progress.stage :])


def seeds_of(members: list[Member]) -> str:
    return ",".join(str(m.run.cfg.seed) for m in members)


def finish(run: Run) -> dict[str, Any]:
    """A member's final outputs, then its summary."""
    try:
        run.close_outputs()
    finally:
        run.checkpoints.close()
    return run.report()
