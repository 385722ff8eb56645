"""Hypernetwork, FLOPs table, path sampler, board and export to CreamNet."""
import pytest
import torch

from cream_mm.arch import RELEASED, ArchError, format_arch, parse_arch
from cream_mm.models.complexity import arch_cost
from cream_mm.models.supernet import CreamSupernet, SearchSpace
from cream_mm.search.board import PathBoard
from cream_mm.search.flops_table import FlopsTable
from cream_mm.search.sampler import RELEASE_OP_PRIOR, PathSampler

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def supernet():
    torch.manual_seed(0)
    return CreamSupernet('mbconv').eval()


def test_space_definitions():
    sp = SearchSpace('mbconv')
    assert sp.max_depths == (6, ) * 5 and sp.num_layers == 30
    assert SearchSpace('mbconv+res').ops[-1] == 'res'
    assert SearchSpace('mbconv+res+conv').max_depths == (4, ) * 5
    assert 'skip' not in sp.layer_ops(0) and 'skip' in sp.layer_ops(1)
    with pytest.raises(ArchError, match='space=.*allowed'):
        SearchSpace('darts')
    with pytest.raises(ArchError, match='max_depths'):
        SearchSpace('mbconv', max_depths=(4, 4))
    with pytest.raises(ArchError, match='resolutions'):
        SearchSpace('mbconv', resolutions=(48, ))


def test_encode_decode_roundtrip_keeps_interior_skips():
    sp = SearchSpace('mbconv')
    arch = parse_arch('k3e4,skip,k5e6|k5e6|k3e6|k7e4*2|k5e4,skip')
    code, res = sp.encode(arch)
    assert len(code) == 30 and res == 0
    back = sp.decode(code, res)
    assert format_arch(back) == 'k3e4,skip,k5e6|k5e6|k3e6|k7e4*2|k5e4'
    with pytest.raises(ArchError, match='stage 1 has 7 layers'):
        sp.encode('k3e4*7|k3e4|k3e4|k3e4|k3e4')
    with pytest.raises(ArchError, match="unknown op 'res'"):
        sp.encode('res|k3e4|k3e4|k3e4|k3e4')


def test_all_released_models_are_paths_and_export_exactly(supernet):
    x = torch.randn(2, 3, 64, 64)
    for name in RELEASED:
        child = supernet.export(name).eval()
        ref = dict(child.state_dict())
        # identical keys to a CreamNet built from the string, no candidates
        from cream_mm.models import CreamNet
        assert set(ref) == set(CreamNet(name).state_dict())
        assert not any('candidates' in k for k in ref)
        with torch.no_grad():
            out = supernet(x, name)[0]
            assert torch.equal(out, child(x)[0])


def test_export_copies_the_chosen_candidate_weights(supernet):
    arch = 'k5e6,skip,k3e6|k7e4|k3e4|k5e4|k7e6'
    child = supernet.export(arch)
    w = supernet.blocks[1][2].candidates['k3e6'].conv_dw.weight
    assert torch.equal(child.blocks[1][2].conv_dw.weight, w)
    assert isinstance(child.blocks[1][1], torch.nn.Identity)
    n_child = sum(p.numel() for p in child.parameters())
    n_path = sum(p.numel()
                 for p in supernet.path_parameters(arch).values())
    assert n_child == n_path == arch_cost(arch, with_head=False).params


def test_extended_spaces_export():
    torch.manual_seed(0)
    net = CreamSupernet(dict(name='mbconv+res+conv')).eval()
    arch = 'res,conv3|conv1,k3e4|conv5|res,skip,k7e6|k5e4'
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x, arch)[0], net.export(arch).eval()(x)[0])


@pytest.mark.parametrize('space,res', [('mbconv', None), ('mbconv+res', None),
                                       ('mbconv+res+conv', (64, 96))])
def test_flops_table_equals_arch_cost(space, res):
    sp = SearchSpace(space, resolutions=res, input_size=224)
    sampler = PathSampler(sp, FlopsTable(sp), seed=3)
    for metric in ('flops', 'macs', 'params'):
        table = FlopsTable(sp, metric, num_classes=1000)
        for _ in range(20):
            code, r, _ = sampler.sample_code()
            arch = sp.decode(code, r)
            assert table.cost(code, r) == getattr(
                arch_cost(arch, r or 224), metric)


def test_space_bounds_are_exact_extremes():
    sp = SearchSpace('mbconv', input_size=224)
    table = FlopsTable(sp)
    lo, hi = table.bounds()
    smallest = 'k3e4|k3e4|k3e4|k3e4|k3e4'
    assert lo == arch_cost(smallest).flops
    assert hi == arch_cost('k7e6*6|k7e6*6|k7e6*6|k7e6*6|k7e6*6').flops
    sampler = PathSampler(sp, table)
    assert format_arch(sampler.extreme(largest=False)) == smallest


def test_sampler_respects_range_and_is_reproducible():
    sp = SearchSpace('mbconv', input_size=224)
    table = FlopsTable(sp)
    a = PathSampler(sp, table, (250e6, 320e6), seed=7)
    b = PathSampler(sp, table, (250e6, 320e6), seed=7)
    paths = [a.sample() for _ in range(30)]
    assert paths == [b.sample() for _ in range(30)]
    assert all(250e6 <= arch_cost(p).flops <= 320e6 for p in paths)
    assert len({format_arch(p) for p in paths}) == 30
    # generator state round-trips through the state dict
    state = a.state_dict()
    nxt = a.sample()
    b.load_state_dict(state)
    assert b.sample() == nxt


def test_sampler_reaches_far_tail_ranges():
    sp = SearchSpace('mbconv', input_size=64)
    s = PathSampler(sp, FlopsTable(sp), (0, 15e6), seed=0)
    assert s.acceptance < 1e-6  # rejection alone would never get there
    costs = [arch_cost(s.sample(), 64).flops for _ in range(10)]
    assert all(c <= 15e6 for c in costs)


def test_sampler_infeasible_range_names_the_space_bounds():
    sp = SearchSpace('mbconv', input_size=224)
    with pytest.raises(ArchError, match=r'flops_range=\[1.00M, 5.00M\].*'
                       r'span \[81\.\d\dM, 863\.\d\dM\]'):
        PathSampler(sp, FlopsTable(sp), (1e6, 5e6))


def test_release_prior_never_draws_skip_or_zero_weight_ops():
    sp = SearchSpace('mbconv', input_size=224)
    s = PathSampler(sp, FlopsTable(sp), op_prior=RELEASE_OP_PRIOR,
                    fixed_depths=(2, 3, 4, 4, 2), seed=1)
    codes, _ = s.draw(4000)
    ops = [sp.ops[c] for c in codes.flatten().tolist()]
    arch = s.sample()
    assert arch.depths == (2, 3, 4, 4, 2)
    k5e6 = ops.count('k5e6') / (4000 * 15)
    assert abs(k5e6 - 0.5) < 0.02  # the prior's weight on k5e6
    with pytest.raises(ArchError, match='op_prior has 3 weights'):
        PathSampler(sp, FlopsTable(sp), op_prior=(1, 2, 3))


def test_board_eq3_paper_rule_keeps_the_pareto_front():
    board = PathBoard(num_paths=2, num_layers=3)
    board.add((0, 0, 0), 0, 100., 50.)
    board.add((1, 1, 1), 0, 200., 60.)
    # dominated by nobody it could replace: more FLOPs than both, better acc
    assert board.update((2, 2, 2), 0, 250., 99.) is None
    # dominates slot 1 only (acc >= 60, flops <= 200)
    assert board.update((3, 3, 3), 0, 150., 65.) == 1
    assert board.entry(1) == ((3, 3, 3), 0, 150., 65.)
    # dominates both: replaces the least competitive (lowest score)
    assert board.update((4, 4, 4), 0, 90., 70.) == 0
    # a path on the board only refreshes its score
    assert board.update((4, 4, 4), 0, 90., 20.) == 0 and len(board) == 2
    assert board.best() == 1


def test_board_release_rule_margin():
    board = PathBoard(num_paths=1, num_layers=2, rule='release')
    board.add((0, 0), 0, 100., 50.)
    assert board.update((1, 1), 0, 300., 54.) is None  # more FLOPs, +4
    assert board.update((1, 1), 0, 300., 56.) == 0  # +6 > margin of 5
    with pytest.raises(ValueError, match="rule='x': allowed paper, release"):
        PathBoard(rule='x')


def test_board_state_dict_roundtrip():
    a = PathBoard(num_paths=3, num_layers=4)
    a.add((1, 2, 3, 0), 64, 1e6, 10.)
    a.add((0, 2, 3, 0), 96, 2e6, 20.)
    b = PathBoard(num_paths=3, num_layers=4)
    b.load_state_dict(a.state_dict())
    assert b.entries() == a.entries() and len(b) == 2
