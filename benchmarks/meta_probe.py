"""Telemetry of the meta network (Eq. 4 / Eq. 6) through a tiny Cream
search: rho of every board path per step, the hypergradient's size, and
what each meta update changes (the spread of rho over the board decides
the teacher; a uniform shift does not).

    OMP_NUM_THREADS=1 python benchmarks/meta_probe.py \\
        configs/search/tiny_cream_embedded.py --iters 300 --out probe.json
"""
import argparse
import json
import time

import torch
from mmengine.config import Config, DictAction


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument('config')
    p.add_argument('--iters', type=int, default=300)
    p.add_argument('--out', default='meta_probe.json')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from cream_mm.evaluation.ranking import _Cycle, load_search_model
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    torch.manual_seed(0)
    _, model = load_search_model(cfg)
    model.train()
    model.attach_search_val(list(Runner.build_dataloader(
        cfg.search_val_dataloader, seed=0)))
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    base = [g['lr'] for g in ow['supernet'].optimizer.param_groups]
    train = _Cycle(Runner.build_dataloader(cfg.train_dataloader, seed=0))
    rows, probe = [], {}
    inner_sel, inner_hyper = model.select_teacher, model.meta_hypergradient

    def select(x, student, arch, code, res):
        out = inner_sel(x, student, arch, code, res)
        m = model.meta_cfg['match_images'] or len(x)
        slots = [k for k in range(len(model.board))
                 if model.board.entry(k)[:2] != (tuple(code), res)]
        z = model.shared_aux_logits(x[:m], [model.board_arch(k)
                                            for k in slots] + [arch])
        diffs = torch.stack(z[:-1]) - z[-1]
        with torch.no_grad():
            rhos = model.meta_net(diffs)
        probe.update(rhos=rhos.tolist(), diff_abs=float(diffs.abs().mean()),
                     logit_abs=float(z[-1].abs().mean()),
                     train_fwd_gap=float((z[-1] - student[:m].detach())
                                         .abs().mean()),
                     diffs=diffs)
        return out

    def hyper(params, g_ce, g_kd, meta_input, rho_value, lr, *a):
        grads, risk = inner_hyper(params, g_ce, g_kd, meta_input, rho_value,
                                  lr, *a)
        probe['hyper'] = dict(
            lr=lr, norms={n: float(g.norm()) for (n, _), g in zip(
                model.meta_net.named_parameters(), grads)},
            g_ce_norm=float(sum((g * g).sum() for g in g_ce) ** .5),
            g_kd_norm=float(sum((g * g).sum() for g in g_kd) ** .5))
        return grads, risk
    model.select_teacher, model.meta_hypergradient = select, hyper
    iters, t0 = args.iters, time.perf_counter()
    for i in range(1, iters + 1):
        for g, lr in zip(ow['supernet'].optimizer.param_groups, base):
            g['lr'] = lr * (1 - (i - 1) / iters)
        probe.clear()
        log = model.train_step(train(), ow)
        row = dict(iter=i, top1=float(log['top1']),
                   rho_used=model.last_step.get('rho'),
                   meta_update=model.last_step.get('meta_update'))
        if 'rhos' in probe:
            row.update(rhos=probe['rhos'], diff_abs=probe['diff_abs'],
                       logit_abs=probe['logit_abs'],
                       train_fwd_gap=probe['train_fwd_gap'])
        if 'hyper' in probe:
            with torch.no_grad():  # rho after the update, same inputs
                after = model.meta_net(probe['diffs']).tolist()
            row.update(hyper=probe['hyper'], rhos_after=after)
        rows.append(row)
        if row.get('meta_update'):
            h = row['hyper']
            print(f"iter {i}: rho {min(row['rhos']):.4f}-"
                  f"{max(row['rhos']):.4f} -> {min(after):.4f}-"
                  f"{max(after):.4f}; |dR/db2| {h['norms']['fc2.bias']:.2e}"
                  f" |dR/dW2| {h['norms']['fc2.weight']:.2e} |dR/dW1| "
                  f"{h['norms']['fc1.weight']:.2e}; mean|diff| "
                  f"{row['diff_abs']:.3f} mean|logit| {row['logit_abs']:.3f}"
                  f"; {time.perf_counter() - t0:.0f} s", flush=True)
    with open(args.out, 'w') as f:
        json.dump(rows, f)


if __name__ == '__main__':
    main()
