# Copyright (c) mmsimmm contributors. All rights reserved.
"""Speed and peak memory of SimMinMax training steps.

The one measuring harness of ``benchmark.py`` and ``seg_memory.py`` (both
in this folder import it; ``seg_memory.py`` measures with
:func:`measure_step_rss` and summarises with :func:`median_ratios`).
Four kinds of step are measured on synthetic batches built in the
toolkit's own format (no dataset needed):

- ``task``: the plain supervised ``train_step`` of the task model with the
  task optimizer (the stock MMEngine path);
- ``darken``: a SimMinMax ``train_step`` in the darkening stage;
- ``adapt``: a SimMinMax ``train_step`` in the adaptation stage;
- ``darkener``: the darkening module's forward alone (eval mode, no
  autograd) with the adaptation stage's noisy exposure maps.

Step times come from ONE process in which the kinds take turns (the order
rotates every repeat), so machine noise hits all kinds alike. Peak memory
comes from a fresh child process per kind that builds only what that kind
needs (see :func:`measure_peak_memory`): on CUDA
``torch.cuda.max_memory_allocated``, on the CPU the growth of the
anonymous resident memory plus the rise of the kernel's peak-RSS counter
(``VmHWM``) during the measured steps.
"""
import copy
import ctypes
import gc
import inspect
import multiprocessing
import os
import platform
import re
import statistics
import threading
import time
import traceback
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import torch
from mmengine.config import Config, ConfigDict
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from mmsimmm.registry import MODELS
from mmsimmm.testing import ToyTaskDataset
from mmsimmm.utils.runner_setup import load_config

KINDS = ('task', 'darken', 'adapt', 'darkener')
KIND_DESCRIPTIONS = dict(
    task='plain supervised train_step of the task model',
    darken='SimMinMax train_step, darken stage',
    adapt='SimMinMax train_step, adapt stage',
    darkener='darkening module forward alone (eval, no_grad)')
TOOLKITS = ('mmpretrain', 'mmseg', 'mmaction')
TOOLKIT_MODELS = dict(
    mmpretrain='mmpretrain.models',
    mmseg='mmseg.models',
    mmaction='mmaction.models')
DEFAULT_STAGE_OPTIMIZERS = dict(darken='darkener', adapt='task')
MB = 1 << 20


class Step(NamedTuple):
    """One kind of benchmark step.

    ``prepare`` (not timed) puts the model into the right stage/mode;
    ``run`` (timed) does one step.
    """
    prepare: Callable[[], object]
    run: Callable[[], object]

    def repeat(self, times: int) -> None:
        """Prepare and run the step ``times`` times (untimed)."""
        for _ in range(times):
            self.prepare()
            self.run()


# ----------------------------------------------------------------------
# reading the config
def is_simminmax_config(cfg: Config) -> bool:
    """Whether ``cfg.model`` is a SimMinMax model (has a ``task_model``)."""
    model = cfg.get('model') or {}
    return str(model.get('type', '')).split('.')[-1] == 'SimMinMax'


def detect_toolkit(cfg: Config) -> str:
    """The task model's toolkit: ``'mmpretrain'``, ``'mmseg'`` or
    ``'mmaction'`` (from the task model's ``_scope_`` or the config's
    ``default_scope``)."""
    task = task_model_config(cfg)
    scope = task.get('_scope_') or cfg.get('default_scope')
    if scope not in TOOLKITS:
        raise ValueError(
            f'{cfg.filename}: cannot tell the toolkit of the task model '
            f'(scope {scope!r}); the benchmark supports {TOOLKITS}')
    return scope


def task_model_config(cfg: Config,
                      shape: Optional[Sequence[int]] = None) -> ConfigDict:
    """A copy of the task model config as the Runner would build it.

    The config's top-level ``data_preprocessor`` is filled in when the
    model has none (mmpretrain configs keep it there). With ``shape``, a
    fixed padding ``size`` of the data preprocessor (mmseg) is set to the
    benchmark's ``(H, W)`` so that a smaller crop is not padded back.

    Args:
        cfg (Config): A SimMinMax or plain task config.
        shape (Sequence[int], optional): The benchmark input shape, ending
            with ``(H, W)``. Defaults to None.

    Returns:
        ConfigDict: The task model config.
    """
    model = cfg.get('model')
    if not isinstance(model, dict):
        raise KeyError(f'{cfg.filename} has no `model` dict')
    task = model['task_model'] if is_simminmax_config(cfg) else model
    # a ConfigDict: some models set attributes on their sub-configs
    task = ConfigDict(copy.deepcopy(task))
    if task.get('data_preprocessor') is None and cfg.get(
            'data_preprocessor') is not None:
        task['data_preprocessor'] = copy.deepcopy(cfg.data_preprocessor)
    preprocessor = task.get('data_preprocessor')
    if shape is not None and isinstance(preprocessor, dict) and \
            preprocessor.get('size') is not None:
        preprocessor['size'] = tuple(int(s) for s in shape[-2:])
    return task


def _find_pipeline(dataset: Optional[dict]) -> Optional[list]:
    if not isinstance(dataset, dict):
        return None
    if dataset.get('pipeline'):
        return dataset['pipeline']
    inner = dataset.get('dataset') or (dataset.get('datasets') or [None])[0]
    return _find_pipeline(inner)


def _size_hw(value, order: str) -> tuple:
    """An int or a pair in ``order`` ('hw' or 'wh') -> (H, W)."""
    if isinstance(value, int):
        return (value, value)
    first, second = (int(v) for v in value)
    return (first, second) if order == 'hw' else (second, first)


def infer_input_shape(cfg: Config, toolkit: str) -> tuple:
    """The training input shape of one sample from the config.

    Reads the segmentation data preprocessor's ``size``, else the last
    crop/resize of the training pipeline that fixes the size; for
    mmaction2 also ``SampleFrames.clip_len``.

    Args:
        cfg (Config): The config.
        toolkit (str): The task toolkit.

    Returns:
        tuple: ``(H, W)``, or ``(T, H, W)`` for mmaction2.

    Raises:
        ValueError: If the config does not fix the size (pass ``shape``).
    """
    size = None
    preprocessor = task_model_config(cfg).get('data_preprocessor') or {}
    if preprocessor.get('size') is not None:
        size = _size_hw(preprocessor['size'], 'hw')
    pipeline = _find_pipeline(
        (cfg.get('train_dataloader') or {}).get('dataset')) or []
    clip_len = None
    for transform in pipeline:
        kind = str(transform.get('type', '')).split('.')[-1]
        if kind == 'SampleFrames':
            clip_len = int(transform.get('clip_len', 1))
        if size is not None and preprocessor.get('size') is not None:
            continue
        hw_order = 'hw' if toolkit == 'mmseg' or kind == 'RandomCrop' \
            else 'wh'
        if 'Crop' in kind:
            for key in ('crop_size', 'size', 'input_size', 'scale'):
                value = transform.get(key)
                if isinstance(value, int) or (
                        isinstance(value, (tuple, list)) and len(value) == 2
                        and min(value) > 0):
                    size = _size_hw(value, hw_order)
                    break
        elif kind == 'Resize' and transform.get('keep_ratio') is False:
            scale = transform.get('scale')
            if isinstance(scale, (tuple, list)) and min(scale) > 0:
                size = _size_hw(scale, 'wh')
    if size is None:
        raise ValueError(
            f'{cfg.filename}: cannot find the training crop size in the '
            'train pipeline; pass the input shape (--shape H W)')
    if toolkit == 'mmaction':
        if clip_len is None:
            raise ValueError(
                f'{cfg.filename}: no SampleFrames.clip_len in the train '
                'pipeline; pass the input shape (--shape T H W)')
        return (clip_len, ) + size
    return size


def infer_num_classes(task_cfg: dict) -> int:
    """The first ``num_classes`` found in the task model config (or 2)."""
    stack = [task_cfg]
    while stack:
        item = stack.pop(0)
        if isinstance(item, dict):
            if isinstance(item.get('num_classes'), int):
                return item['num_classes']
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return 2


def check_shape(shape: Sequence[int], toolkit: str) -> tuple:
    """Validate an input shape: ``(H, W)`` or, for mmaction2, ``(T, H, W)``.

    A single int means a square ``(S, S)``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        shape = shape * 2
    wanted = (2, 3) if toolkit == 'mmaction' else (2, )
    if len(shape) not in wanted or min(shape) < 1:
        raise ValueError(
            'input shape must be positive (H, W)' +
            (' or (T, H, W)' if toolkit == 'mmaction' else '') +
            f' for {toolkit}, got {shape}')
    return shape


def synthetic_batch(toolkit: str, batch_size: int, shape: Sequence[int],
                    num_classes: int) -> dict:
    """A random batch as the toolkit's ``PackInputs`` + collate give it.

    Args:
        toolkit (str): The task toolkit.
        batch_size (int): Samples per batch.
        shape (Sequence[int]): ``(H, W)`` or ``(T, H, W)`` (mmaction2).
        num_classes (int): Number of classes of the labels.

    Returns:
        dict: ``dict(inputs=[...], data_samples=[...])``.
    """
    clip_len = shape[0] if len(shape) == 3 else 1
    dataset = ToyTaskDataset(
        toolkit,
        length=batch_size,
        size=tuple(shape[-2:]),
        num_classes=num_classes,
        clip_len=clip_len)
    items = [dataset[i] for i in range(batch_size)]
    return dict(
        inputs=[item['inputs'] for item in items],
        data_samples=[item['data_samples'] for item in items])


def _default_of(name: str):
    """A SimMinMax constructor default (single source of truth)."""
    from mmsimmm.models.algorithms import SimMinMax
    return inspect.signature(SimMinMax).parameters[name].default


def _stage_optimizer(cfg: Config, stage: str) -> str:
    for item in (cfg.get('train_cfg') or {}).get('stages', []) or []:
        if item.get('name') == stage and item.get('optim_wrapper'):
            return item['optim_wrapper']
    return DEFAULT_STAGE_OPTIMIZERS[stage]


# ----------------------------------------------------------------------
# building the steps
def build_steps(cfg: Config,
                kinds: Sequence[str],
                device: torch.device,
                batch_size: int,
                shape: Sequence[int],
                seed: int = 0) -> Dict[str, Step]:
    """Build the models, optimizers and batch of the requested kinds.

    Only what the kinds need is built: the plain task model for ``task``,
    the SimMinMax model for ``darken``/``adapt``, the darkening module for
    ``darkener``. Weights are randomly initialised (``init_weights`` and
    ``load_from`` are skipped: no checkpoint is read). SyncBN is reverted
    to BN as MMEngine does outside distributed training.

    Args:
        cfg (Config): The config.
        kinds (Sequence[str]): Kinds from :data:`KINDS`.
        device (torch.device): Where to run.
        batch_size (int): Samples per batch.
        shape (Sequence[int]): Input shape ``(H, W)`` / ``(T, H, W)``.
        seed (int): Seed of the weights and data. Defaults to 0.

    Returns:
        dict[str, Step]: One :class:`Step` per kind.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f'unknown benchmark kinds {sorted(unknown)}; '
                         f'choose from {KINDS}')
    simminmax = is_simminmax_config(cfg)
    if not simminmax and set(kinds) - {'task'}:
        raise ValueError(
            f'{cfg.filename} is not a SimMinMax config (model.type is '
            f'{cfg.model.get("type")!r}): only the `task` kind can run')
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    toolkit = detect_toolkit(cfg)
    task_cfg = task_model_config(cfg, shape)
    batch = synthetic_batch(toolkit, batch_size, shape,
                            infer_num_classes(task_cfg))
    optim_cfg = cfg.get('optim_wrapper')
    if not isinstance(optim_cfg, dict):
        raise KeyError(f'{cfg.filename} has no `optim_wrapper` dict')
    steps = {}

    if 'task' in kinds:
        torch.manual_seed(seed)
        task = revert_sync_batchnorm(MODELS.build(
            copy.deepcopy(task_cfg))).to(device)
        task_optim = build_optim_wrapper(
            task,
            copy.deepcopy(optim_cfg['task'] if simminmax else optim_cfg))
        steps['task'] = Step(
            prepare=task.train,
            run=lambda: task.train_step(batch, optim_wrapper=task_optim))

    if {'darken', 'adapt'} & set(kinds):
        torch.manual_seed(seed)
        model_cfg = copy.deepcopy(cfg.model)
        # models may edit their config while building: copy it
        model_cfg['task_model'] = copy.deepcopy(task_cfg)
        model_cfg.pop('data_preprocessor', None)
        model = revert_sync_batchnorm(MODELS.build(model_cfg)).to(device)
        model.sampling_seed = seed  # as SimMinMaxLoop sets it
        optims = build_optim_wrapper(model, copy.deepcopy(optim_cfg))

        for stage in ('darken', 'adapt'):
            if stage not in kinds:
                continue
            stage_optim = optims[_stage_optimizer(cfg, stage)]

            def prepare(stage: str = stage) -> None:
                model.set_stage(stage)
                model.train()

            def run(stage_optim=stage_optim) -> dict:
                return model.train_step(batch, optim_wrapper=stage_optim)

            steps[stage] = Step(prepare=prepare, run=run)

    if 'darkener' in kinds:
        steps['darkener'] = _darkener_step(cfg, device, batch_size, shape,
                                           seed)
    return {kind: steps[kind] for kind in kinds}


def _darkener_step(cfg: Config, device: torch.device, batch_size: int,
                   shape: Sequence[int], seed: int) -> Step:
    """D's forward on random [0, 1] RGB with adapt-stage exposure maps."""
    from mmsimmm.models.darkeners import (
        exposure_noise_map,
        sample_exposure,
    )
    model_cfg = cfg.model
    torch.manual_seed(seed)
    darkener = MODELS.build(
        copy.deepcopy(model_cfg.get('darkener', _default_of('darkener'))))
    darkener = darkener.to(device).eval()
    generator = torch.Generator().manual_seed(seed)
    channels = (3, ) if len(shape) == 2 else (3, shape[0])
    rgb = torch.rand((batch_size, *channels, *shape[-2:]),
                     generator=generator).to(device)
    sampler = MODELS.build(
        copy.deepcopy(model_cfg.get('exposure', _default_of('exposure'))))
    levels = sample_exposure((batch_size, ), sampler.adapt_range,
                             generator=generator).to(device)
    noise = sampler.noise
    exposure = levels if noise is None else exposure_noise_map(
        levels, shape[-2:], **dict(noise))

    def run() -> torch.Tensor:
        with torch.no_grad():
            return darkener(rgb, exposure)

    return Step(prepare=darkener.eval, run=run)


# ----------------------------------------------------------------------
# timing
def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_steps(steps: Dict[str, Step],
               repeats: int,
               warmup: int,
               device: torch.device) -> Dict[str, List[float]]:
    """Time the steps, interleaved, after ``warmup`` untimed rounds.

    Every repeat runs each kind once; the order rotates by one kind per
    repeat so that no kind always follows the same one.

    Returns:
        dict[str, list[float]]: Seconds per step, ``repeats`` per kind.
    """
    kinds = list(steps)
    for _ in range(warmup):
        for kind in kinds:
            steps[kind].repeat(1)
    _synchronize(device)
    times = {kind: [] for kind in kinds}
    for repeat in range(repeats):
        shift = repeat % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            steps[kind].prepare()
            gc.collect()
            _synchronize(device)
            start = time.perf_counter()
            steps[kind].run()
            _synchronize(device)
            times[kind].append(time.perf_counter() - start)
    return times


def summarize_times(times: Sequence[float], batch_size: int) -> dict:
    """Median, quartiles, IQR, min/max and images/s of step times."""
    ordered = sorted(times)
    median = statistics.median(ordered)
    if len(ordered) > 1:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method='inclusive')
    else:
        q1 = q3 = median
    return dict(
        median_s=median,
        q1_s=q1,
        q3_s=q3,
        iqr_s=q3 - q1,
        min_s=ordered[0],
        max_s=ordered[-1],
        mean_s=statistics.fmean(ordered),
        images_per_s=batch_size / median if median > 0 else None,
        times_s=list(times))


# ----------------------------------------------------------------------
# peak memory
def read_status_kb(field: str) -> int:
    """A ``/proc/self/status`` field in kB, e.g. ``VmHWM`` (peak RSS)."""
    with open('/proc/self/status') as f:
        match = re.search(rf'^{field}:\s+(\d+) kB', f.read(), re.M)
    if match is None:
        raise RuntimeError(f'/proc/self/status has no {field}')
    return int(match.group(1))


def reset_peak_rss() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError as error:
        raise RuntimeError('cannot reset the peak RSS through '
                           '/proc/self/clear_refs (Linux >= 4.0)') from error


class PeakRSS:
    """Measure the resident memory of this process around a block.

    On entry the RSS is read into ``before`` (bytes) and the kernel's
    peak-RSS counter is reset; on exit the peak RSS reached inside the
    block is read into ``peak`` (bytes). Linux only.

    Example::

        with PeakRSS() as rss:
            step()
        step_bytes = rss.peak - rss.before
    """

    def __enter__(self) -> 'PeakRSS':
        self.before = read_status_kb('VmRSS') * 1024
        reset_peak_rss()
        self.peak = None
        return self

    def __exit__(self, *exc_info) -> None:
        self.peak = read_status_kb('VmHWM') * 1024


def _release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc)."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_peak_memory(config: str,
                        cfg_options: Optional[dict],
                        kind: str,
                        device: str,
                        batch_size: int,
                        shape: Sequence[int],
                        steps: int = 2,
                        warmup: int = 1,
                        seed: int = 0,
                        threads: Optional[int] = None) -> dict:
    """Peak memory of one kind of step, in THIS process.

    Meant for a fresh process (see :func:`peak_memory_in_child`). After
    ``warmup`` steps (optimizer state and lazy runtime buffers exist) the
    freed memory is handed back to the OS and ``steps`` more steps are
    measured.

    - CUDA: ``peak_mb`` is ``torch.cuda.max_memory_allocated`` over all
      steps; ``resident_mb`` the memory allocated between steps.
    - CPU: ``resident_mb`` is the growth of the anonymous resident memory
      (``RssAnon``: weights, optimizer state, batch; not library code)
      from the bare process to after the warm-up; ``peak_mb`` adds the
      rise of the peak RSS (``VmHWM``, reset before the measured steps)
      over the RSS between steps.

    Returns:
        dict: ``peak_mb``, ``resident_mb``, ``step_peak_mb`` (``peak_mb -
        resident_mb``: activations, gradients, temporaries) and
        ``method``.
    """
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device)
    cuda = device.type == 'cuda'
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
    else:
        _release_free_memory()
        start = read_status_kb('RssAnon') * 1024
    cfg = load_config(config, cfg_options)
    step = build_steps(cfg, [kind], device, batch_size, shape, seed)[kind]
    step.repeat(warmup)
    _release_free_memory()
    if cuda:
        torch.cuda.synchronize(device)
        resident = torch.cuda.memory_allocated(device) - start
        step.repeat(steps)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - start
        method = 'torch.cuda.max_memory_allocated'
    else:
        resident = read_status_kb('RssAnon') * 1024 - start
        with PeakRSS() as rss:
            step.repeat(steps)
        peak = resident + max(0, rss.peak - rss.before)
        method = 'RssAnon growth + rise of VmHWM (peak RSS) during the steps'
    return dict(
        peak_mb=peak / MB,
        resident_mb=resident / MB,
        step_peak_mb=(peak - resident) / MB,
        method=method)


def measure_step_rss(cfg: Config,
                     kind: str,
                     batch_size: int,
                     shape: Sequence[int],
                     steps: int = 2) -> dict:
    """RSS and time of ``steps`` CPU steps of one kind, in THIS process.

    One warm-up step (optimizer state etc.), then the peak-RSS counter is
    reset (:class:`PeakRSS`) and ``steps`` steps are timed. Meant for a
    fresh process.

    Args:
        cfg (Config): A config :func:`build_steps` accepts.
        kind (str): One of :data:`KINDS`.
        batch_size (int): Samples per step.
        shape (Sequence[int]): The input shape.
        steps (int): Measured steps. Defaults to 2.

    Returns:
        dict: ``peak_rss_mb``, ``rss_before_mb``, ``step_mb`` (peak minus
        the RSS before the measured steps) and ``step_s`` (median).
    """
    cpu = torch.device('cpu')
    step = build_steps(cfg, [kind], cpu, batch_size, shape)
    step[kind].repeat(1)
    with PeakRSS() as rss:
        times = time_steps(step, steps, 0, cpu)[kind]
    return dict(
        peak_rss_mb=rss.peak / MB,
        rss_before_mb=rss.before / MB,
        step_mb=(rss.peak - rss.before) / MB,
        step_s=statistics.median(times))


def median_ratios(runs: Dict[str, List[Dict[str, float]]], over: str,
                  base: str, keys: Sequence[str]) -> dict:
    """Medians of repeated measurements and the ratios of two of them.

    Args:
        runs (dict): Name -> one dict of numbers per repeat.
        over (str): The name of the ratios' numerators.
        base (str): The name of their denominators.
        keys (Sequence[str]): The numbers to divide.

    Returns:
        dict: ``runs``, ``medians`` (name -> key -> median) and ``ratios``
        (key -> median of ``over`` / median of ``base``).
    """
    medians = {
        name: {
            key: statistics.median(run[key] for run in results)
            for key in results[0]
        }
        for name, results in runs.items()
    }
    ratios = {key: medians[over][key] / medians[base][key] for key in keys}
    return dict(runs=runs, medians=medians, ratios=ratios)


def _child_main(connection, kwargs: dict) -> None:
    try:
        connection.send(('ok', measure_peak_memory(**kwargs)))
    except BaseException:  # report everything to the parent
        connection.send(('error', traceback.format_exc()))
    finally:
        connection.close()


def _memory_context(preload: Sequence[str] = ()):
    """A ``forkserver`` context whose server imports ``preload`` once.

    The server has no torch threads or CUDA context, so every child it
    forks starts from the same bare process without paying the imports
    again (``spawn`` where ``forkserver`` is unavailable).
    """
    if 'forkserver' not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context('spawn')
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload([__name__, *preload])
    return context


def start_memory_server(preload: Sequence[str] = ()) -> threading.Thread:
    """Start the fork server in the background (it imports ``preload``).

    Join the returned thread before timing anything: it ends once the
    server has finished its imports and forked a no-op child.
    """
    context = _memory_context(preload)

    def warm_up() -> None:
        process = context.Process(target=gc.collect)
        process.start()
        process.join()

    thread = threading.Thread(target=warm_up, daemon=True)
    thread.start()
    return thread


def peak_memory_in_child(preload: Sequence[str] = (), **kwargs) -> dict:
    """Run :func:`measure_peak_memory` in a fresh child process.

    Args:
        preload (Sequence[str]): Modules the fork server imports (see
            :func:`start_memory_server`). Defaults to ().
        **kwargs: Arguments of :func:`measure_peak_memory`.
    """
    context = _memory_context(preload)
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(sender, kwargs))
    process.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        process.join()
        raise RuntimeError(
            f'the memory child of kind {kwargs.get("kind")!r} died with '
            f'exit code {process.exitcode} (out of memory?)') from None
    process.join()
    if status != 'ok':
        raise RuntimeError(f'the memory child of kind {kwargs.get("kind")!r}'
                           f' failed:\n{payload}')
    return payload


# ----------------------------------------------------------------------
# the whole benchmark
def run_benchmark(config: str,
                  cfg_options: Optional[dict] = None,
                  kinds: Sequence[str] = KINDS,
                  device: Optional[str] = None,
                  batch_size: Optional[int] = None,
                  shape: Optional[Sequence[int]] = None,
                  repeats: int = 10,
                  warmup: int = 2,
                  memory_steps: int = 2,
                  measure_memory: bool = True,
                  seed: int = 0,
                  threads: Optional[int] = None) -> dict:
    """Time the kinds interleaved in this process, then measure their peak
    memory in one child process each.

    Args:
        config (str): A SimMinMax config (any toolkit), or a plain task
            config with ``kinds=('task',)``.
        cfg_options (dict, optional): Config overrides. Defaults to None.
        kinds (Sequence[str]): Kinds to run, from :data:`KINDS`. Defaults
            to all.
        device (str, optional): ``'cpu'``, ``'cuda'``, ``'cuda:1'``...
            Defaults to None (CUDA if available, else the CPU).
        batch_size (int, optional): Defaults to None (the config's
            ``train_dataloader.batch_size``).
        shape (Sequence[int], optional): ``(H, W)`` or ``(T, H, W)``.
            Defaults to None (the config's training crop).
        repeats (int): Timed steps per kind. Defaults to 10.
        warmup (int): Untimed steps per kind first. Defaults to 2.
        memory_steps (int): Steps per memory child. Defaults to 2.
        measure_memory (bool): Whether to run the memory children.
            Defaults to True.
        seed (int): Seed of the weights and data. Defaults to 0.
        threads (int, optional): ``torch.set_num_threads``. Defaults to
            None (torch's default).

    Returns:
        dict: The results (see ``tools/analysis_tools/benchmark.py``).
    """
    if repeats < 1 or warmup < 0 or memory_steps < 1:
        raise ValueError(f'need repeats >= 1, warmup >= 0 and memory_steps '
                         f'>= 1, got {repeats}, {warmup}, {memory_steps}')
    kinds = list(dict.fromkeys(kinds))
    if not kinds or set(kinds) - set(KINDS):
        raise ValueError(f'kinds must be a non-empty subset of {KINDS}, '
                         f'got {kinds}')
    cfg = load_config(config, cfg_options)
    toolkit = detect_toolkit(cfg)
    if batch_size is None:
        batch_size = (cfg.get('train_dataloader') or {}).get('batch_size')
        if not isinstance(batch_size, int):
            raise ValueError(f'{config}: no train_dataloader.batch_size; '
                             'pass the batch size')
    if batch_size < 1:
        raise ValueError(f'batch size must be >= 1, got {batch_size}')
    if shape is None:
        shape = infer_input_shape(cfg, toolkit)
    elif toolkit == 'mmaction' and len(shape) == 2:
        shape = (infer_input_shape(cfg, toolkit)[0], *shape)
    shape = check_shape(shape, toolkit)
    device = torch.device(device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    if threads:
        torch.set_num_threads(threads)

    preload = [
        TOOLKIT_MODELS[toolkit],
        *(cfg.get('custom_imports') or {}).get('imports', [])
    ]
    # the fork server imports while this process builds its models
    server = start_memory_server(preload) if measure_memory else None
    steps = build_steps(cfg, kinds, device, batch_size, shape, seed)
    if server is not None:
        server.join()
    load_before = os.getloadavg()
    times = time_steps(steps, repeats, warmup, device)
    load_after = os.getloadavg()
    del steps
    gc.collect()

    results = {kind: summarize_times(times[kind], batch_size)
               for kind in kinds}
    for kind in kinds:
        results[kind]['description'] = KIND_DESCRIPTIONS[kind]
        results[kind]['memory'] = None
    if measure_memory:
        for kind in kinds:
            results[kind]['memory'] = peak_memory_in_child(
                preload=preload,
                config=config,
                cfg_options=cfg_options,
                kind=kind,
                device=str(device),
                batch_size=batch_size,
                shape=shape,
                steps=memory_steps,
                seed=seed,
                threads=threads)

    return dict(
        config=config,
        cfg_options=cfg_options or {},
        toolkit=toolkit,
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else platform.processor()
                     or platform.machine()),
        batch_size=batch_size,
        input_shape=list(shape),
        repeats=repeats,
        warmup=warmup,
        memory_steps=memory_steps if measure_memory else None,
        torch_threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        load_average=dict(
            before=[round(x, 2) for x in load_before],
            after=[round(x, 2) for x in load_after]),
        torch_version=torch.__version__,
        kinds=results,
        ratios=_ratios(results))


def _ratios(results: Dict[str, dict]) -> dict:
    """Time and peak memory of each kind over the ``task`` kind.

    ``time`` divides the medians; ``time_paired`` gives the median and
    quartiles of the per-repeat ratios (a kind over the ``task`` step of
    the same round), which cancel slow machine drifts better.
    """
    ratios = dict(time={}, time_paired={}, peak_memory={})
    if 'task' not in results:
        return ratios
    base = results['task']
    for kind, result in results.items():
        if kind == 'task':
            continue
        key = f'{kind}/task'
        ratios['time'][key] = result['median_s'] / base['median_s']
        paired = sorted(
            t / t_task
            for t, t_task in zip(result['times_s'], base['times_s']))
        quartiles = (
            statistics.quantiles(paired, n=4, method='inclusive')
            if len(paired) > 1 else [paired[0]] * 3)
        ratios['time_paired'][key] = dict(
            median=statistics.median(paired),
            q1=quartiles[0],
            q3=quartiles[2])
        if result['memory'] and base['memory']:
            ratios['peak_memory'][key] = (
                result['memory']['peak_mb'] / base['memory']['peak_mb'])
    return ratios


def format_markdown(results: dict) -> str:
    """A markdown table of :func:`run_benchmark` results."""
    shape = 'x'.join(str(s) for s in results['input_shape'])
    load = results['load_average']
    lines = [
        f"Config `{results['config']}` ({results['toolkit']}), device "
        f"{results['device']} ({results['device_name']}, "
        f"{results['torch_threads']} torch threads, "
        f"{results['cpu_count']} CPUs), batch {results['batch_size']}, "
        f'input {shape}; {results["repeats"]} interleaved repeats after '
        f"{results['warmup']} warm-up rounds; load average (1/5/15 min) "
        f"{load['before']} before, {load['after']} after.", '',
        '| step | median (ms) | IQR (ms) | min - max (ms) | images/s '
        '| time x task | paired x task (IQR) | peak memory (MB) '
        '| memory x task |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
    ]
    ratios = results['ratios']
    for kind, result in results['kinds'].items():
        key = f'{kind}/task'
        time_ratio = 1.0 if kind == 'task' else ratios['time'].get(key)
        memory = result['memory']
        memory_ratio = 1.0 if kind == 'task' and memory else \
            ratios['peak_memory'].get(key)
        paired = ratios['time_paired'].get(key)
        paired = '1.00' if kind == 'task' else '-' if paired is None else (
            f"{paired['median']:.2f} ({paired['q1']:.2f} - "
            f"{paired['q3']:.2f})")
        lines.append(
            f"| {kind}: {result['description']} "
            f"| {1e3 * result['median_s']:.1f} "
            f"| {1e3 * result['iqr_s']:.1f} "
            f"| {1e3 * result['min_s']:.1f} - {1e3 * result['max_s']:.1f} "
            f"| {result['images_per_s']:.2f} "
            f'| {_fmt(time_ratio)} | {paired} '
            f"| {_fmt(memory['peak_mb'] if memory else None, '.0f')} "
            f'| {_fmt(memory_ratio)} |')
    memory = next((r['memory'] for r in results['kinds'].values()
                   if r['memory']), None)
    if memory:
        lines += [
            '', f"Peak memory ({memory['method']}): weights, optimizer "
            'state, batch and activations above the bare process, over '
            f"{results['memory_steps']} steps after a warm-up step, in a "
            'fresh process per step kind.'
        ]
    return '\n'.join(lines) + '\n'


def _fmt(value: Optional[float], spec: str = '.2f') -> str:
    return '-' if value is None else format(value, spec)
