"""Units of work of the Tab. 1 study (``tools/reproduce_table1.py``).

A study config (``configs/study/table1_fmnist.py``) names a tiny search
config (``base_config``), the Tab. 1 rows as config deltas of it, the
seeds, the supernet schedule, a frozen list of paths and the stand-alone
schedule. The study is a set of independent units, each cached by
:class:`~cream_mm.evaluation.study_cache.UnitCache` under a key of every
setting its result depends on:

* ``standalone`` (arch, seed): the path trained from scratch
  (:func:`~cream_mm.evaluation.ranking.train_standalone`), top-1 on the
  ``rank`` and ``test`` evaluation sets. The N paths twice each (the
  stand-alone noise ceiling) and each row's final architecture with the
  retrain seeds (the same schedule);
* ``supernet`` (row, seed): one search (mmengine ``Runner``, the row's
  final selection, :class:`~cream_mm.search.telemetry.SearchTelemetryHook`)
  in ``<cache>/runs/<row>_s<seed>_<key>``; a killed run resumes from its
  last checkpoint;
* ``inherited`` (row, seed): top-1 of the N paths with the supernet's
  weights, BN re-calibrated (:func:`~cream_mm.evaluation.ranking.
  inherited_accuracy`).

:func:`run_units` runs a list of units in-process or in spawned worker
processes (one torch thread each) and yields progress as units finish.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from pathlib import Path

from .study_cache import UnitCache, key_digest

KINDS = ('standalone', 'supernet', 'inherited')


# ---------------------------------------------------------------- configs
_MEMO: dict = {}


def _memo(tag, fn):
    """Per-process memo of config parsing (a unit parses the same files)."""
    if tag not in _MEMO:
        _MEMO[tag] = fn()
    return copy.deepcopy(_MEMO[tag])


def load_study(path, options: dict | None = None):
    """The study config (mmengine ``Config``) with ``options`` merged and
    ``base_config`` made absolute (relative to the study config)."""
    tag = ('study', str(Path(path).resolve()),
           json.dumps(options or {}, sort_keys=True, default=str))
    return _memo(tag, lambda: _load_study(path, options))


def _load_study(path, options):
    from mmengine.config import Config
    study = Config.fromfile(str(path))
    if options:
        study.merge_from_dict(options)
    base = Path(study.base_config)
    if not base.is_absolute():
        base = (Path(path).resolve().parent / base).resolve()
    study.base_config = str(base)
    study.setdefault('base_options', {})
    study.setdefault('extra_rows', [])
    return study


def all_rows(study) -> list[dict]:
    return [dict(r) for r in [*study.rows, *study.extra_rows]]


def find_row(study, row_id) -> dict:
    for r in all_rows(study):
        if str(r['id']) == str(row_id):
            return r
    raise KeyError(f'row {row_id!r} not in the study; rows: '
                   f'{[r["id"] for r in all_rows(study)]}')


def base_cfg(study):
    """The tiny search config with the study's ``base_options``."""
    from mmengine.config import Config

    def build():
        cfg = Config.fromfile(study.base_config)
        if study.base_options:
            cfg.merge_from_dict(copy.deepcopy(dict(study.base_options)))
        return cfg
    tag = ('base', study.base_config, json.dumps(
        _plain(study.base_options), sort_keys=True))
    return _memo(tag, build)


def _plain(obj):
    """JSON-able copy of config values (ConfigDict -> dict)."""
    return json.loads(json.dumps(obj, default=str))


def data_settings(study) -> dict:
    """What stand-alone and inherited results depend on besides the arch:
    space, head, data, normalisation (part of every key)."""
    cfg = base_cfg(study)
    return _plain(dict(
        supernet=cfg.model.supernet, head=cfg.model.head,
        train=dict(dataset=cfg.train_dataloader.dataset,
                   batch=cfg.train_dataloader.batch_size),
        preprocessor=cfg.get('data_preprocessor'),
        eval_sets=study.eval_sets))


def row_cfg(study, row: dict, seed: int, work_dir: str | None = None):
    """The search config of a row and seed: base + row delta, the study's
    schedule, the row's final selection and the telemetry hook."""
    cfg = base_cfg(study)
    cfg.merge_from_dict(copy.deepcopy(dict(row['cfg'])))
    iters = int(study.supernet_iters)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    for group in ('supernet', 'meta'):
        for sched in cfg.param_scheduler.get(group, []):
            sched['end'] = iters
    warm = cfg.model.get('warmup', {}) or {}
    if warm.get('iters', 0) >= iters:
        raise ValueError(f'supernet_iters={iters} must exceed the '
                         f"warmup of {warm['iters']} iterations")
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, max_keep_ckpts=1,
        interval=max(iters // int(study.get('checkpoints', 5)), 1))
    cfg.default_hooks.logger = dict(type='LoggerHook',
                                    interval=max(iters // 20, 1))
    hook = dict(type='CreamSearchHook', final=row['final'],
                log_interval=0, plot_interval=0,
                export=cfg.get('search_export') or {})
    if row['final'] == 'evolution':
        hook['evolution'] = dict(study.evolution)
    telemetry = dict(type='SearchTelemetryHook',
                     **dict(study.get('telemetry', {})))
    cfg.custom_hooks = [hook, telemetry]
    cfg.randomness = dict(seed=int(seed), deterministic=False)
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    cfg.resume = True  # the latest checkpoint of the work dir, if any
    return cfg


def supernet_key(study, row: dict, seed: int) -> dict:
    cfg = row_cfg(study, row, seed)
    text = cfg.pretty_text
    return dict(row=str(row['id']), seed=int(seed),
                iters=int(study.supernet_iters), cfg=key_digest(text))


def standalone_key(study, arch: str, seed: int) -> dict:
    return dict(arch=arch, seed=int(seed), schedule=_plain(dict(
        iters=study.standalone['iters'], lr=study.standalone['lr'])),
        data=key_digest(data_settings(study)))


def inherited_key(study, row: dict, seed: int) -> dict:
    return dict(supernet=supernet_key(study, row, seed),
                paths=key_digest(list(study.paths)),
                calib=int(study.calib_batches),
                data=key_digest(data_settings(study)))


def run_dir(cache: UnitCache, key: dict) -> Path:
    return cache.root / 'runs' / (f"row{key['row']}_s{key['seed']}_"
                                  f'{key_digest(key)}')


# ---------------------------------------------------------------- context
_CTX: dict = {}


def _context(study):
    """Per-process: a template search model (for exporting paths), the
    evaluation batches and the calibration batches (built once)."""
    tag = key_digest(data_settings(study)) + str(study.calib_batches)
    if _CTX.get('tag') == tag:
        return _CTX
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from .ranking import _batch, load_search_model
    cfg = base_cfg(study)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    _, model = load_search_model(cfg)
    evals = {}
    for name, spec in study.eval_sets.items():
        lo, hi = spec['indices']
        loader_cfg = dict(
            batch_size=128, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='EmbeddedClsDataset',
                         name=cfg.train_dataloader.dataset.get('name',
                                                               'auto'),
                         split=spec['split'], indices=list(range(lo, hi)),
                         pipeline=copy.deepcopy(spec['pipeline'])))
        evals[name] = [_batch(model, b)
                       for b in Runner.build_dataloader(loader_cfg, seed=0)]
    it = iter(Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader),
                                      seed=0))
    calib = [_batch(model, next(it)) for _ in range(int(study.calib_batches))]
    _CTX.clear()
    _CTX.update(tag=tag, cfg=cfg, model=model, evals=evals, calib=calib)
    return _CTX


# ------------------------------------------------------------------ units
def run_standalone(study, arch: str, seed: int) -> dict:
    """Train ``arch`` from scratch (seed: init and data order); top-1 on
    every evaluation set."""
    from mmengine.runner import Runner

    from .ranking import _Cycle, path_cost, train_standalone
    ctx = _context(study)
    model = ctx['model']
    parsed = model.sampler.parse(arch)
    loader = Runner.build_dataloader(
        copy.deepcopy(ctx['cfg'].train_dataloader), seed=int(seed))
    evals = dict(ctx['evals'])
    rank = evals.pop('rank')
    res = train_standalone(model, parsed, _Cycle(loader), rank,
                           int(study.standalone['iters']),
                           float(study.standalone['lr']), seed=int(seed),
                           extra_val=evals)
    res['top1_rank'] = res.pop('top1')
    return dict(res, flops=path_cost(model, parsed))


def run_supernet(study, row: dict, seed: int, work_dir: Path) -> dict:
    """One search of a row (resumes from the work dir's last checkpoint);
    returns the final architecture, checkpoint and board."""
    from mmengine.runner import Runner, find_latest_checkpoint

    import cream_mm  # noqa: F401  (registers models, hooks)
    from ..engine import prepare_runner_cfg
    work_dir = Path(work_dir)
    resumed = find_latest_checkpoint(str(work_dir)) is not None \
        if work_dir.is_dir() else False
    cfg = row_cfg(study, row, seed, str(work_dir))
    cfg.experiment_name = f"row{row['id']}_s{seed}_{os.getpid()}"
    prepare_runner_cfg(cfg)
    t0 = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    # the runner's console output goes to the run's folder (its logger
    # keeps the stream: the file stays open), the study prints progress
    log = open(work_dir / 'console.log', 'a')
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        runner = Runner.from_cfg(cfg)
        runner.train()
    log.flush()
    seconds = time.perf_counter() - t0
    search = work_dir / 'search'
    summary = json.loads((search / 'searched.json').read_text())
    board = (json.loads((search / 'board.json').read_text())
             if (search / 'board.json').is_file() else {})
    ckpt = find_latest_checkpoint(str(work_dir))
    del runner
    return dict(final_arch=summary['arch'], final_flops=summary['flops'],
                final_ranking=summary.get('ranking', []),
                board=board.get('board', []), checkpoint=str(ckpt),
                work_dir=str(work_dir), seconds=seconds, resumed=resumed,
                telemetry=str(search / 'telemetry.jsonl'))


def run_inherited(study, row: dict, seed: int, supernet: dict) -> dict:
    """Top-1 (``rank`` set) of every study path with the supernet's
    weights, BN re-calibrated on ``calib_batches`` training batches."""
    from .ranking import inherited_accuracy, load_search_model
    ctx = _context(study)
    t0 = time.perf_counter()
    _, model = load_search_model(row_cfg(study, row, seed),
                                 supernet['checkpoint'])
    top1 = [inherited_accuracy(model, model.sampler.parse(a),
                               ctx['evals']['rank'], ctx['calib'])
            for a in study.paths]
    return dict(top1=top1, seconds=time.perf_counter() - t0)


# ------------------------------------------------------------ scheduling
def unit_key(study, unit: tuple) -> tuple[str, dict]:
    kind = unit[0]
    if kind == 'standalone':
        return kind, standalone_key(study, unit[1], unit[2])
    row = find_row(study, unit[1])
    if kind == 'supernet':
        return kind, supernet_key(study, row, unit[2])
    if kind == 'inherited':
        return kind, inherited_key(study, row, unit[2])
    raise ValueError(f'unit kind {kind!r}: allowed {KINDS}')


def compute_unit(study_path: str, options: dict | None, cache_root: str,
                 unit: tuple) -> tuple:
    """Run one unit unless cached; writes its file. Returns ``(unit,
    result, ran)``. Runs in worker processes too (hence plain arguments)."""
    study = load_study(study_path, options)
    cache = UnitCache(cache_root)
    kind, key = unit_key(study, unit)
    hit = cache.get(kind, key)
    if hit is not None:
        return unit, hit, False
    if kind == 'standalone':
        res = run_standalone(study, unit[1], unit[2])
    else:
        row = find_row(study, unit[1])
        if kind == 'supernet':
            res = run_supernet(study, row, unit[2], run_dir(cache, key))
        else:
            sup = cache.get('supernet', supernet_key(study, row, unit[2]))
            if sup is None:
                raise RuntimeError(f'inherited unit {unit} before its '
                                   'supernet run')
            res = run_inherited(study, row, unit[2], sup)
    cache.put(kind, key, res)
    return unit, res, True


def _init_worker():
    import torch
    os.environ['OMP_NUM_THREADS'] = '1'
    torch.set_num_threads(1)


def run_units(study_path: str, options: dict | None, cache_root: str,
              units: list[tuple], workers: int = 1):
    """Yield ``(unit, result, ran)`` as units finish; ``workers > 1`` runs
    them in spawned processes with one torch thread each."""
    args = [(str(study_path), options, str(cache_root), u) for u in units]
    if workers <= 1 or len(units) <= 1:
        for a in args:
            yield compute_unit(*a)
        return
    import multiprocessing as mp
    with mp.get_context('spawn').Pool(min(workers, len(units)),
                                      initializer=_init_worker,
                                      maxtasksperchild=4) as pool:
        yield from pool.imap_unordered(_star, args)


def _star(a):
    return compute_unit(*a)


__all__ = ['load_study', 'all_rows', 'find_row', 'row_cfg', 'base_cfg',
           'standalone_key', 'supernet_key', 'inherited_key', 'run_units',
           'compute_unit', 'unit_key', 'run_dir', 'KINDS']
