# Copyright (c) mmsimmm contributors. All rights reserved.
import copy
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader

from mmsimmm.registry import LOOPS

from ..optimizers.simminmax_constructor import STAGE_OPTIMIZERS

# Message-hub scalars that belong to one stage (losses, gradient norm).
STAGE_SCALARS = ('train/darken.', 'train/task.', 'train/byol.', 'train/loss',
                 'train/grad_norm')
# MessageHub runtime info (saved in checkpoints) holding the stage schedule.
SCHEDULE_INFO = 'simminmax_schedule'
# Hooks a SimMinMax run should have (warned about when missing).
SAFETY_HOOKS = ('NumericalSafetyHook', 'CheckpointMatchHook')


@LOOPS.register_module()
class SimMinMaxLoop(IterBasedTrainLoop):
    """Iteration-based loop over the stages of Similarity Min-Max.

    The schedule is declared in the config, e.g.::

        train_cfg = dict(
            type='mmsimmm.SimMinMaxLoop',
            stages=[dict(name='darken', iters=5000),
                    dict(name='adapt', iters=20000)],
            val_interval=1000)

    The current stage is derived from the iteration counter, so a resumed
    run continues in the stage it stopped in. At each stage change the loop
    calls ``model.set_stage(name)``; every iteration runs the stock
    ``train_step`` (one DDP forward per backward) with only that stage's
    sub-wrapper of the ``OptimWrapperDict``. Validation runs only in
    ``adapt`` stages (the task model does not change while D trains).

    The schedule is saved in the checkpoints (MessageHub runtime info
    ``simminmax_schedule``): resuming one under other stages is refused.

    Parameter schedulers given per optimizer (``param_scheduler =
    dict(darkener=[...], task=[...])``) are stage-relative: their ``begin``
    and ``end`` count from the start of the stage that uses that optimizer
    (``end`` defaults to the stage end), and they are repeated for every
    cycle. So a task schedule never runs down while D trains.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The training dataloader (shared by
            all stages).
        stages (Sequence[dict]): Stages in order, each ``dict(name=...,
            iters=..., optim_wrapper=...)``; ``name`` is ``'darken'`` or
            ``'adapt'`` and ``optim_wrapper`` defaults to ``'darkener'`` /
            ``'task'``.
        cycles (int): How many times the stage sequence runs (the official
            method runs it once). Defaults to 1.
        val_begin (int): Iteration from which validation may run. Defaults
            to 1.
        val_interval (int): Validation interval in iterations. Defaults to
            1000.
        dynamic_intervals (list[tuple[int, int]], optional): As in
            ``IterBasedTrainLoop``. Defaults to None.
        stage_relative_schedulers (bool): Shift per-optimizer parameter
            schedulers into their stage windows. Defaults to True.
        max_iters (int, optional): Only accepted when it equals the total
            of the stages (the loop derives it); any other value is refused
            with an error that names ``train_cfg.stages.N.iters``, the key
            to set instead. Defaults to None.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 stages: Sequence[dict],
                 cycles: int = 1,
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None,
                 stage_relative_schedulers: bool = True,
                 max_iters: Optional[int] = None) -> None:
        self.stages = self._parse_stages(stages)
        if not isinstance(cycles, int) or cycles < 1:
            raise ValueError(f'cycles must be a positive int, got {cycles}')
        self.cycles = cycles
        self.windows = self._stage_windows()
        self._check_max_iters(max_iters)
        max_iters = self.windows[-1][2]
        self._check_optimizers(runner)
        if stage_relative_schedulers:
            self._shift_schedulers(runner)
        super().__init__(
            runner,
            dataloader,
            max_iters=max_iters,
            val_begin=val_begin,
            val_interval=val_interval,
            dynamic_intervals=dynamic_intervals)
        self.current_stage: Optional[str] = None
        self.stage_history: List[str] = []
        self._warn_missing_safety_hooks(runner)
        self._warn_epoch_based_settings(runner)
        # Built before a resume loads the checkpoint's MessageHub state; an
        # earlier runner of this process with the same experiment name
        # (a timestamp) shares the hub, so drop its schedule.
        runner.message_hub.pop_info(SCHEDULE_INFO)

    # ------------------------------------------------------------------
    # validation of the schedule (before anything runs)
    @staticmethod
    def _parse_stages(stages: Sequence[dict]) -> List[dict]:
        if not stages:
            raise ValueError('SimMinMaxLoop needs at least one stage')
        parsed = []
        for i, stage in enumerate(stages):
            stage = dict(stage)
            name = stage.get('name')
            if name not in STAGE_OPTIMIZERS:
                raise ValueError(
                    f'stages[{i}] has unknown stage name {name!r}; use one '
                    f'of {sorted(STAGE_OPTIMIZERS)}')
            iters = stage.get('iters')
            if not isinstance(iters, int) or iters <= 0:
                raise ValueError(f'stages[{i}] ({name}) needs a positive '
                                 f'int `iters`, got {iters!r}')
            unknown = set(stage) - {'name', 'iters', 'optim_wrapper'}
            if unknown:
                raise ValueError(
                    f'stages[{i}] ({name}) has unknown keys {sorted(unknown)}')
            stage.setdefault('optim_wrapper', STAGE_OPTIMIZERS[name])
            parsed.append(stage)
        return parsed

    def _check_max_iters(self, max_iters: Optional[int]) -> None:
        """Refuse a ``train_cfg.max_iters`` that disagrees with the stages."""
        total = self.windows[-1][2]
        if max_iters is None or max_iters == total:
            return
        stages = ' + '.join(f"{stage['name']} {stage['iters']}"
                            for stage in self.stages)
        cycles = f' x {self.cycles} cycles' if self.cycles > 1 else ''
        keys = ' '.join(f'train_cfg.stages.{i}.iters=N'
                        for i in range(len(self.stages)))
        raise ValueError(
            f'train_cfg.max_iters={max_iters}, but SimMinMaxLoop runs '
            f'{total} iterations ({stages}{cycles}) and derives max_iters '
            f'from its stages; set the stage lengths instead, e.g. '
            f'--cfg-options {keys}')

    def _stage_windows(self) -> List[Tuple[dict, int, int]]:
        """(stage, begin, end) of every stage of every cycle."""
        windows, begin = [], 0
        for _ in range(self.cycles):
            for stage in self.stages:
                windows.append((stage, begin, begin + stage['iters']))
                begin += stage['iters']
        return windows

    def _check_optimizers(self, runner) -> None:
        optim_cfg = runner.optim_wrapper
        if not isinstance(optim_cfg, dict):
            return  # already built; checked again in `run`
        names = set(optim_cfg) - {'constructor', 'paramwise_cfg'}
        for stage in self.stages:
            if stage['optim_wrapper'] not in names:
                raise ValueError(
                    f"stage {stage['name']!r} steps optimizer "
                    f"{stage['optim_wrapper']!r}, but optim_wrapper only "
                    f'defines {sorted(names)}; add an `optim_wrapper.'
                    f"{stage['optim_wrapper']}` entry or set the stage's "
                    '`optim_wrapper`')

    def _shift_schedulers(self, runner) -> None:
        cfg = runner.param_schedulers
        if cfg is None:
            return
        if not isinstance(cfg, dict) or 'type' in cfg:
            raise ValueError(
                'SimMinMaxLoop needs param_scheduler as a dict keyed by '
                "optimizer, e.g. dict(darkener=[...], task=[...]); got "
                f'{type(cfg).__name__}. A plain list would apply the same '
                'schedule to both optimizers (add `_delete_=True` when '
                'overriding an upstream param_scheduler)')
        shifted = {}
        for name, schedulers in cfg.items():
            if isinstance(schedulers, dict):
                schedulers = [schedulers]
            windows = [(b, e) for stage, b, e in self.windows
                       if stage['optim_wrapper'] == name]
            if not windows:  # e.g. an adapt-only run with a trained D
                print_log(
                    f'param_scheduler.{name} is ignored: no stage steps '
                    f'optimizer {name!r}',
                    logger='current',
                    level=logging.WARNING)
            else:
                self._warn_unreached_milestones(name, schedulers,
                                                windows[0][1] - windows[0][0])
            shifted[name] = [
                self._shift(scheduler, begin, end)
                for begin, end in windows for scheduler in schedulers
            ]
        runner.param_schedulers = shifted

    @staticmethod
    def _warn_unreached_milestones(name: str, schedulers: list,
                                   stage_iters: int) -> None:
        """Warn about milestones that lie past the end of their stage.

        Milestones count from the stage start; a config whose stages were
        shortened (``--cfg-options train_cfg.stages.N.iters=...``) keeps
        milestones computed for the original length.
        """
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, dict):
                continue
            start = scheduler.get('begin', 0)
            unreached = [
                m for m in scheduler.get('milestones') or []
                if start + m >= stage_iters
            ]
            if unreached:
                print_log(
                    f'param_scheduler.{name}[{i}] ({scheduler.get("type")}):'
                    f' milestones {unreached} lie at or after the end of '
                    f'its {stage_iters}-iteration stage and never take '
                    'effect; scale them with the stage length',
                    logger='current',
                    level=logging.WARNING)

    @staticmethod
    def _shift(scheduler: dict, begin: int, end: int) -> dict:
        if not isinstance(scheduler, dict):
            raise TypeError('stage-relative schedulers must be configs, got '
                            f'{type(scheduler).__name__}')
        scheduler = copy.deepcopy(scheduler)
        if scheduler.get('by_epoch', True) is not False:
            raise ValueError(
                f"scheduler {scheduler.get('type')} must set by_epoch=False:"
                ' SimMinMaxLoop counts iterations')
        relative_end = scheduler.get('end')
        scheduler['begin'] = begin + scheduler.get('begin', 0)
        scheduler['end'] = end if relative_end is None else min(
            end, begin + relative_end)
        if scheduler['begin'] >= scheduler['end']:
            raise ValueError(f'scheduler {scheduler.get("type")} begins '
                             'after the end of its stage')
        return scheduler

    @staticmethod
    def _warn_epoch_based_settings(runner) -> None:
        """Warn about upstream settings that count epochs.

        The loop counts iterations: an epoch-based checkpoint hook saves only
        once, at the end of training, and an epoch-based log processor
        reports iterations as epochs.
        """
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and hook.by_epoch:
                print_log(
                    f'{type(hook).__name__} counts epochs (by_epoch=True), '
                    'but SimMinMaxLoop counts iterations, so it saves only '
                    'at the end of training; set default_hooks = dict('
                    "checkpoint=dict(type='mmsimmm.AtomicCheckpointHook', "
                    'by_epoch=False, interval=N))',
                    logger='current',
                    level=logging.WARNING)
        if getattr(runner.log_processor, 'by_epoch', False):
            print_log(
                'log_processor counts epochs (by_epoch=True), but '
                'SimMinMaxLoop counts iterations; set log_processor = '
                'dict(by_epoch=False)',
                logger='current',
                level=logging.WARNING)

    @staticmethod
    def _warn_missing_safety_hooks(runner) -> None:
        """Warn once if the config lacks SimMinMax's safety hooks.

        The loop registers no hook itself: every hook that runs is in the
        config (``simminmax_hooks`` of mmsimmm's base config, which SimMinMax
        configs put into ``custom_hooks``).
        """
        registered = {type(hook).__name__ for hook in runner.hooks}
        missing = [name for name in SAFETY_HOOKS if name not in registered]
        if missing:
            print_log(
                f'This SimMinMax run has no {" or ".join(missing)}: NaN/Inf '
                'steps or mismatched checkpoints go unnoticed. Add the '
                "hooks of `simminmax_hooks` ('mmsimmm::_base_/"
                "simminmax_default.py') to the config: custom_hooks = [..., "
                '*_base_.simminmax_hooks]',
                logger='current',
                level=logging.WARNING)

    # ------------------------------------------------------------------
    # running
    def stage_at(self, iteration: int) -> dict:
        """The stage that trains iteration ``iteration`` (0-based)."""
        for stage, begin, end in self.windows:
            if begin <= iteration < end:
                return stage
        return self.windows[-1][0]

    @property
    def model(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def _enter_stage(self, stage: dict) -> None:
        if stage['name'] == self.current_stage:
            return
        optim_wrapper = self.runner.optim_wrapper
        if stage['optim_wrapper'] not in optim_wrapper:
            raise ValueError(
                f"stage {stage['name']!r} needs optimizer "
                f"{stage['optim_wrapper']!r}; built optimizers: "
                f'{list(optim_wrapper.keys())}')
        self.model.set_stage(stage['name'])
        self._drop_stage_scalars()
        self.current_stage = stage['name']
        self.runner.logger.info(
            f"SimMinMax stage '{stage['name']}' from iteration {self._iter}")

    def _drop_stage_scalars(self) -> None:
        """Forget the previous stage's logged losses and gradient norm.

        The log processor averages every ``train/`` scalar of the message
        hub over its window; without this, the adapt stage would keep
        printing the last darken losses, and the total loss and gradient
        norm of the two stages (different optimizers) would be averaged.
        """
        scalars = self.runner.message_hub.log_scalars
        for key in [k for k in scalars if k.startswith(STAGE_SCALARS)]:
            del scalars[key]

    def _schedule(self) -> str:
        stages = ', '.join(
            f"{stage['name']} x {stage['iters']}" + (
                '' if stage['optim_wrapper'] == STAGE_OPTIMIZERS[
                    stage['name']] else f" ({stage['optim_wrapper']})")
            for stage in self.stages)
        return stages if self.cycles == 1 else (
            f'[{stages}] x {self.cycles} cycles')

    def _check_resumed_schedule(self) -> None:
        """Refuse to resume a checkpoint trained under other stages.

        The stage windows decide the stage of every iteration and the
        windows of the parameter schedulers, whose resumed states would
        silently keep the old ones.
        """
        hub = self.runner.message_hub
        schedule, saved = self._schedule(), hub.get_info(SCHEDULE_INFO)
        if saved is not None and saved != schedule:
            raise ValueError(
                f'the resumed checkpoint was trained with the stages '
                f'"{saved}", but train_cfg now says "{schedule}". Resume '
                'with the original stages, or start a new run from its '
                'weights with load_from (without resume).')
        hub.update_info(SCHEDULE_INFO, schedule)

    def run(self) -> None:
        """Run all stages; validate only in ``adapt`` stages."""
        self._check_resumed_schedule()
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        self.model.sampling_seed = self.runner.seed
        if self._iter > 0:
            self.runner.logger.info(
                f'Advance dataloader {self._iter} steps to skip data that '
                'has already been trained')
            for _ in range(self._iter):
                next(self.dataloader_iterator)
        while self._iter < self._max_iters and not self.stop_training:
            stage = self.stage_at(self._iter)
            self._enter_stage(stage)
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (stage['name'] == 'adapt'
                    and self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_iter(self, data_batch) -> None:
        """One stock ``train_step`` with the current stage's optimizer."""
        stage = self.stage_at(self._iter)
        self.stage_history.append(stage['name'])
        self.runner.call_hook(
            'before_train_iter', batch_idx=self._iter, data_batch=data_batch)
        outputs = self.runner.model.train_step(
            data_batch,
            optim_wrapper=self.runner.optim_wrapper[stage['optim_wrapper']])
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=self._iter,
            data_batch=data_batch,
            outputs=outputs)
        self._iter += 1
