"""Bucketed gradient averaging of the searches on 2 gloo processes:
``all_reduce_mean`` keeps each tensor's dtype and splits into buckets,
``GradMeanHooks`` averages while the backward runs; both give the mean of
the ranks' values, the same bytes on each rank."""
import os

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp

from conftest import free_port

from cream_mm.search import runtime


def _worker(rank, port, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    tdist.init_process_group('gloo', rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        a = torch.arange(6, dtype=torch.float32) + 10 * rank
        b = torch.full((3, ), 1. / 3 + rank, dtype=torch.float64)
        c = torch.ones(5) * (rank + 1)
        runtime.all_reduce_mean([a, b, c], bucket_bytes=16)
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                  torch.nn.Linear(8, 3))
        x = torch.randn(5, 4) + rank
        unused = torch.nn.Linear(3, 3)  # no gradient: flushed by finish()
        hooks = runtime.GradMeanHooks(
            list(unused.parameters()) + list(net.parameters()),
            bucket_bytes=64)
        net(x).pow(2).sum().backward()
        # buckets of the last layers started during the backward, the
        # unused layer's (the last bucket) waits for finish()
        assert 0 < hooks.next < len(hooks.buckets)
        hooks.finish()
        grads = [p.grad for p in net.parameters()]
        assert unused.weight.grad is None
        torch.save(dict(a=a, b=b, c=c, grads=grads), f'{out}/{rank}.pt')
    finally:
        tdist.destroy_process_group()


def _local_grads(rank):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 3))
    x = torch.randn(5, 4) + rank
    net(x).pow(2).sum().backward()
    return [p.grad for p in net.parameters()]


@pytest.mark.slow  # 2 spawned processes importing the package
def test_bucketed_means_equal_on_both_ranks(tmp_path):
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f'{r}.pt') for r in (0, 1))
    for k in ('a', 'b', 'c'):
        assert torch.equal(r0[k], r1[k])
    assert r0['b'].dtype == torch.float64
    assert torch.allclose(r0['a'], torch.arange(6.) + 5)
    assert torch.allclose(r0['b'], torch.full((3, ), 1. / 3 + .5,
                                              dtype=torch.float64))
    assert torch.allclose(r0['c'], torch.full((5, ), 1.5))
    want = [(g0 + g1) / 2 for g0, g1 in zip(_local_grads(0),
                                            _local_grads(1))]
    for g0, g1, w in zip(r0['grads'], r1['grads'], want):
        assert torch.equal(g0, g1) and torch.allclose(g0, w, atol=1e-6)
