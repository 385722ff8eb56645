"""Shared by the search benchmarks: a search config's model built as
configured or as its SPOS twin, and a clock for the parts of a Cream step."""
import copy
import time

import torch
from mmengine.logging import MMLogger
from mmengine.registry import PARAM_SCHEDULERS

from cream_mm.search import CreamOptimWrapperConstructor


def build_from_config(cfg, spos: bool, val: list | None):
    """``(model, optimiser wrappers, LR schedulers)`` of a search config,
    seeded alike; ``spos``: its SPOS twin (no matching, no board);
    ``val``: held-out batches to attach."""
    from mmpretrain.registry import MODELS
    mcfg = copy.deepcopy(cfg.model)
    if spos:
        mcfg.update(matching='none', use_board=False)
    torch.manual_seed(0)
    model = MODELS.build(mcfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # init_weights logs every parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    model.train()
    ow = cfg.optim_wrapper
    optim = CreamOptimWrapperConstructor(
        {k: ow[k] for k in ('supernet', 'meta') if k in ow})(model)
    scheds = []
    for key, wrapper in optim.items():
        for s in cfg.get('param_scheduler', {}).get(key, []):
            scheds.append(PARAM_SCHEDULERS.build(
                dict(s, optimizer=wrapper)))
    if val:
        model.attach_search_val(val)
    return model, optim, scheds


#: timed methods of CreamSearch -> what they do (``aux_logits`` also runs
#: inside board scoring: the held-out confirmations)
PARTS = dict(select_teacher='meta matching (Eq. 4)',
             aux_logits='teacher forward + confirmations',
             update_board='board scoring + update (Eq. 3)',
             meta_hypergradient='meta update (Eq. 6)')


class Clock:
    """Accumulates the time spent in some methods of a model."""

    def __init__(self, model, names):
        self.total = dict.fromkeys(names, 0.)
        self.on = False
        for name in names:
            fn = getattr(model, name)

            def wrapped(*a, _fn=fn, _name=name, **k):
                t = time.perf_counter()
                try:
                    return _fn(*a, **k)
                finally:
                    if self.on:
                        self.total[_name] += time.perf_counter() - t
            setattr(model, name, wrapped)
