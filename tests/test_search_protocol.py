"""The Cream space satisfies the SubnetSampler / Supernet protocol that the
sandwich rule, K-shot, the evolutions and the ranking tool are written
against (cream_mm.search.protocol)."""
import torch

from cream_mm.arch import format_arch
from cream_mm.models.complexity import arch_cost
from cream_mm.models.supernet import CreamSupernet, SearchSpace
from cream_mm.search.flops_table import FlopsTable
from cream_mm.search.protocol import SubnetSampler, Supernet
from cream_mm.search.sampler import PathSampler


def _sampler(**space):
    space = SearchSpace(**dict(dict(name='mbconv', max_depths=2,
                                    input_size=32), **space))
    table = FlopsTable(space, 'flops', 10)
    return PathSampler(space, table, (3e6, 8e6), seed=3)


def test_path_sampler_is_a_subnet_sampler():
    s = _sampler(resolutions=(32, 64))
    assert isinstance(s, SubnetSampler)
    a = s.sample()
    assert s.parse(s.key(a)) == a and s.key(a) == format_arch(a)
    assert s.resolution(a) in (32, 64)
    lo, hi = s.genome_bounds()
    g = s.genome(a)
    assert len(g) == len(lo) == len(hi)
    assert all(l <= x <= h for l, x, h in zip(lo, g, hi))
    assert s.from_genome(g) == a
    onehot, channels = s.encode(a)
    assert channels is None
    assert onehot.sum() == s.space.num_layers + 1  # one op per layer + res
    # cost agrees with the foundation's counter (paper convention)
    assert abs(s.cost(a) - arch_cost(a, s.resolution(a),
                                     num_classes=10).flops) < 1


def test_mutate_crossover_are_seeded_and_mix_genes():
    s1, s2 = _sampler(), _sampler()
    a, b = s1.sample(), s1.sample()
    s2.sample(), s2.sample()
    m1, m2 = s1.mutate(a, 1.0), s2.mutate(a, 1.0)
    assert m1 == m2
    assert s1.mutate(a, 0.0) == a
    c = s1.crossover(a, b)
    ga, gb, gc = s1.genome(a), s1.genome(b), s1.genome(c)
    assert all(x in (y, z) for x, y, z in zip(gc, ga, gb))


def test_supernet_protocol():
    net = CreamSupernet(dict(name='mbconv', max_depths=2, input_size=32))
    assert isinstance(net, Supernet)
    names = net.searched_modules()
    assert len(names) == net.space.num_layers
    assert all(hasattr(net.get_submodule(n), 'candidates') for n in names)
    arch = 'k3e4|k5e6|k7e4,k3e6|k3e4|k5e4'
    assert net.backbone_cfg(arch) == dict(type='CreamNet', arch=arch)
    child = net.export(arch)
    x = torch.randn(2, 3, 32, 32)
    net.eval(), child.eval()
    torch.testing.assert_close(net(x, arch)[-1], child(x)[-1])


def test_build_sampler_dispatches_on_the_supernet():
    from cream_mm.search import build_sampler
    net = CreamSupernet(dict(name='mbconv', max_depths=2, input_size=32))
    s = build_sampler(net, 10, (3e6, 8e6), seed=1)
    assert isinstance(s, PathSampler) and 3e6 <= s.cost(s.sample()) <= 8e6
    import pytest
    with pytest.raises(TypeError, match='no sampler registered'):
        build_sampler(torch.nn.Linear(2, 2), 10)


def test_run_final_names_the_allowed_values():
    import pytest
    from cream_mm.search import run_final
    with pytest.raises(ValueError, match="final='nope': allowed 'evolution'"):
        run_final('nope', None)
