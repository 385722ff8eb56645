"""AttentiveSampler: the SubnetSampler protocol on the AttentiveNAS space."""
import pytest
import torch

from cream_mm.arch import ArchError
from cream_mm.models import AttentiveSupernet
from cream_mm.search import (AttentiveSampler, SubnetSampler, Supernet,
                             build_sampler)


@pytest.fixture(scope='module')
def net():
    return AttentiveSupernet(init_cfg=None)


def test_protocols_and_factory(net):
    s = build_sampler(net, 1000, (250e6, 350e6), seed=0)
    assert isinstance(s, AttentiveSampler)
    assert isinstance(s, SubnetSampler) and isinstance(net, Supernet)
    assert s.space_bounds[0] == pytest.approx(203389568)


def test_range_respected_and_seeded(net):
    s = build_sampler(net, 1000, (250e6, 350e6), seed=0)
    archs = [s.sample() for _ in range(10)]
    assert all(250e6 <= s.cost(a) <= 350e6 for a in archs)
    again = build_sampler(net, 1000, (250e6, 350e6), seed=0)
    assert [again.sample() for _ in range(10)] == archs
    other = s.reseeded(1)
    assert [other.sample() for _ in range(10)] != archs


def test_state_dict_restores_the_generator(net):
    s = build_sampler(net, 1000, seed=4)
    s.sample()
    state = s.state_dict()
    nxt = [s.sample() for _ in range(3)]
    t = build_sampler(net, 1000, seed=99)
    t.load_state_dict(state)
    assert [t.sample() for _ in range(3)] == nxt


def test_impossible_range_names_range_and_space(net):
    with pytest.raises(ArchError) as err:
        build_sampler(net, 1000, (10e6, 100e6))
    msg = str(err.value)
    assert '(1e+07, 1e+08)' in msg and '2.03390e+08'[:6] in msg
    assert '1.93934e+09' in msg


def test_extremes_genome_encode(net):
    s = build_sampler(net, 1000, seed=0)
    big, small = s.extreme(True), s.extreme(False)
    assert s.cost(big) == s.space_bounds[1] and \
        s.cost(small) == s.space_bounds[0]
    lo, hi = s.genome_bounds()
    assert s.genome(small) == lo and s.genome(big) == hi
    assert len(lo) == 1 + 9 + 7 * 3
    for _ in range(5):
        a = s.sample()
        assert s.from_genome(s.genome(a)) == a
        assert s.parse(s.key(a)) == a
        arch_hot, width_hot = s.encode(a)
        # resolution 4 + depths 2+3+4+4+6+6+2 + kernels 7*2 + expands
        # 1+3+3+3+3+1+1
        assert arch_hot.shape == (4 + 27 + 14 + 15, )
        assert width_hot.shape == (2 + 2 + 2 + 2 + 2 + 3 + 4 + 2 + 2, )
        assert arch_hot.sum() == 1 + 21 and width_hot.sum() == 9
    assert s.resolution(big) == 288


def test_mutate_and_crossover_per_gene(net):
    s = build_sampler(net, 1000, seed=0)
    a, b = s.extreme(False), s.extreme(True)
    assert s.mutate(a, 0.) == a
    m = s.genome(s.mutate(a, 1.))
    bounds = s.genome_bounds()[1]
    # every gene with a choice moved (to a different value)
    assert all((g != 0) == (h > 0) for g, h in zip(m, bounds))
    c = s.genome(s.crossover(a, b))
    assert all(g in (0, h) for g, h in zip(c, bounds))
    assert 0 < sum(g == h for g, h in zip(c, bounds) if h > 0) < \
        sum(h > 0 for h in bounds)


def test_tiny_space_sampler():
    tiny = AttentiveSupernet(space=dict(resolutions=(32, 48)),
                             init_cfg=None)
    s = build_sampler(tiny, 10, seed=0)
    assert s.resolution(s.sample()) in (32, 48)
    with pytest.raises(ArchError, match='resolution=224 not allowed'):
        s.parse(str(s.extreme()).replace('r48', 'r224'))
