"""Device placement of the searches, without a GPU.

Every tiny search model (Cream with its board and meta network, the
sandwich rule with BN re-calibrated scoring, K-shot with the channel
regulariser) is put on PyTorch's ``meta`` device and run under
:class:`_device_guard.CudaLikeMeta`, which enforces CUDA's rule on every op
(no op mixes the model's device with non-scalar CPU tensors) and fakes the
values the host reads back (see ``tests/_device_guard.py``). A train step
(sampling, teacher selection, the board update, Eq. 6, simplex steps) and
the final selection (board scoring, BN re-calibration of exported subnets,
the Pareto / NSGA-II search, export) must run through: any tensor an
algorithm creates on the host and feeds to a device op fails the test, as
it would crash a CUDA run. Host-side state (the board) must stay on the
host when the model moves, and exported artefacts must hold CPU tensors.
"""
import json

import pytest
import torch

from _device_guard import CudaLikeMeta, DeviceMixError, off_host, on_device

torch.set_num_threads(1)


# --------------------------------------------------------------- the guard
def test_guard_refuses_what_cuda_refuses():
    """The rule itself: host tensors into a device op raise (also where the
    meta kernels do not check, e.g. conv2d), 0-dim CPU scalars, transfers
    and CPU indices pass; host reads of device tensors get fake values."""
    x = torch.zeros(2, 3, 4, 4, device='meta')
    conv = torch.nn.Conv2d(3, 2, 1)  # left on the host
    with CudaLikeMeta() as mode:
        with pytest.raises(DeviceMixError, match='conv2d'):
            conv(x)
        with pytest.raises(DeviceMixError):
            torch.zeros(3) == torch.zeros(3, device='meta')
        y = x * torch.tensor(2.)  # CPU scalar: allowed on CUDA
        y = y[torch.tensor([0, 1])]  # CPU index tensor: allowed
        y[0] = torch.ones(3, 4, 4)  # item assignment copies: allowed
        z = torch.ones(4).to('meta')
        assert int(z.argmax()) == 1 and float(z.sum()) == 1.
        assert z.cpu().device.type == 'cpu' and z.tolist() == [1.] * 4
        assert f'{z.sum():.1f}' == '1.0'
    assert mode.ops > 0


# ------------------------------------------------------------------ models
def _cream(**kwargs):
    from test_search_cream import make_model, make_optim
    cfg = dict(meta=dict(interval=1, match_images=4, hidden=16))
    cfg.update(kwargs)
    model = make_model(**cfg)
    return model, make_optim(model)


def _batches(n, size=8, seed=0):
    from test_search_cream import batches
    return batches(n, size=size, seed=seed)


def test_board_stays_on_the_host_and_in_the_state_dict():
    """The board is host bookkeeping: ``model.to(device)`` leaves it on the
    CPU, its state-dict entries keep the former buffer names and dtypes,
    and a checkpoint written with the board as buffers still loads."""
    from cream_mm.search.board import PathBoard
    model, _ = _cream()
    entries = model.board.entries()
    on_device(model)
    assert next(model.backbone.parameters()).is_meta
    assert model.board.entries() == entries
    assert list(model.board.buffers()) == []
    state = model.board.state_dict()
    assert {k: (v.dtype, v.device.type) for k, v in state.items()} == dict(
        codes=(torch.long, 'cpu'), resolutions=(torch.long, 'cpu'),
        flops=(torch.float64, 'cpu'), scores=(torch.float64, 'cpu'),
        size=(torch.long, 'cpu'))
    # a board saved as buffers (the same keys) and on a device loads
    old = {k: v.clone() for k, v in state.items()}
    old['scores'][0] = 42.
    fresh = PathBoard(num_paths=model.board.num_paths,
                      num_layers=model.board.num_layers)
    fresh.load_state_dict(old)
    assert fresh.entries()[0][3] == 42. and len(fresh) == len(model.board)
    with pytest.raises(RuntimeError, match='size mismatch for codes'):
        PathBoard(num_paths=2, num_layers=model.board.num_layers
                  ).load_state_dict(old)
    with pytest.raises(RuntimeError, match='Missing key.*size'):
        fresh.load_state_dict({k: v for k, v in old.items() if k != 'size'})


def test_cream_step_and_final_selection_on_a_device(tmp_path):
    """Alg. 1 on the device: warm-up over, meta matching (Eq. 4), Eq. 6 at
    every distillation step, held-out scoring of the board (Eq. 3), then
    the final selection, BN re-calibrated inherited accuracy and export."""
    from cream_mm.evaluation.ranking import _batch, inherited_accuracy
    from cream_mm.search import export_arch, select_from_board
    model, optim = _cream()
    on_device(model)
    model.attach_search_val(_batches(2, seed=9))
    with CudaLikeMeta():
        for data in _batches(2):
            log = model.train_step(data, optim)
        assert model.last_step['teacher'] is not None
        assert model.last_step['meta_update']
        assert 'board_best' in log and model.board.unscored() == []
        rows = select_from_board(model)
        arch = model.parse_arch(rows[0]['arch'])
        calib = [_batch(model, b, False) for b in _batches(1, seed=4)]
        val = [_batch(model, b) for b in _batches(1, seed=5)]
        inherited_accuracy(model, arch, val, calib, 'recalibrate')
        export_arch(model, arch, tmp_path)
    ckpt = torch.load(tmp_path / 'searched_inherited.pth',
                      weights_only=True)
    assert ckpt['state_dict'] and off_host(ckpt) == []


def _attentive_cfgs():
    from mmengine.config import Config
    cfg = Config.fromfile('configs/_base_/models/attentive_supernet_tiny.py')
    return cfg.supernet.to_dict(), dict(cfg.head.to_dict(), num_classes=4)


def test_sandwich_step_and_pareto_final_on_a_device(tmp_path):
    """The sandwich rule on the AttentiveNAS space, then the final Pareto
    search whose scoring exports each subnet and re-calibrates its BN."""
    from test_sandwich import batches, make_model, make_optim
    from cream_mm.search import export_arch
    from cream_mm.search.finals import run_final
    sup, head = _attentive_cfgs()
    model = make_model(supernet=sup, head=head, calib_batches=1,
                       recalibrate_bn=True)
    optim = make_optim(model)
    on_device(model)
    model.attach_search_val(batches(1, seed=9))
    model.attach_calib(batches(1, seed=4))
    with CudaLikeMeta():
        model.train_step(batches(1)[0], optim)
        rows = run_final('pareto', model, population=2, generations=1,
                         mutations=1, crossovers=1)
        export_arch(model, model.sampler.parse(rows[0]['arch']), tmp_path,
                    det_base='embedded/retinanet_alphanet-a0_fpn_trees.py')
    ckpt = torch.load(tmp_path / 'searched_inherited.pth',
                      weights_only=True)
    assert ckpt['state_dict'] and off_host(ckpt) == []


def test_kshot_simplex_step_and_nsga2_final_on_a_device():
    """K-shot on the AttentiveNAS space: a supernet step, a simplex step
    with the channel regulariser r_c (host width encodings, device codes),
    then the final NSGA-II search with BN re-calibrated scoring."""
    from test_kshot import batches, make_optim
    from cream_mm.search import KShotSearch
    from cream_mm.search.finals import run_final
    sup, head = _attentive_cfgs()
    torch.manual_seed(0)
    model = KShotSearch(
        supernet=dict(type='KShotSupernet', supernet=sup, num_shots=2,
                      simplex=dict(hidden=16)),
        head=head, sampler=dict(seed=0),
        simplex=dict(paths=4, widths_per_arch=2, interval=1),
        recalibrate_bn=True, calib_batches=1,
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3,
                               std=[64.] * 3))
    model.init_weights()
    optim = make_optim(model)
    on_device(model)
    model.attach_search_val(batches(1, seed=9))
    model.attach_calib(batches(1, seed=4))
    with CudaLikeMeta():
        log = model.train_step(batches(1, size=8)[0], optim)
        assert 'r_c' in log
        run_final('nsga2', model, population=2, generations=1, parents=2,
                  seed=0)


def test_board_json_is_strict_json_with_one_flops_unit(tmp_path):
    """``board.json``: ``null`` for unscored paths (no ``-Infinity``),
    every ``flops`` in the unit the file names (MFLOPs), final rows too."""
    from types import SimpleNamespace
    from cream_mm.search.hooks import CreamSearchHook
    model, _ = _cream()
    model.history.append(('arch', 5e6, 12.5, 3))
    final = [dict(arch='a', flops=4.5e6, top1=10.)]
    runner = SimpleNamespace(model=model, work_dir=str(tmp_path), iter=7)
    CreamSearchHook().write_board(runner, dict(final=final))
    text = (tmp_path / 'search' / 'board.json').read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert data['flops_unit'] == 'MFLOPs' and data['flops_metric'] == 'flops'
    assert [r['score'] for r in data['board']] == [None] * len(model.board)
    assert sorted(r['flops'] for r in data['board']) == sorted(
        e[2] / 1e6 for e in model.board.entries())
    assert data['scored'][0]['flops'] == 5. and data['final'][0]['flops'] \
        == 4.5


class _DoneWork:
    """The handle of an asynchronous collective that has completed."""

    def wait(self):
        return True


class _FakeNccl:
    """``torch.distributed`` as mmengine's collectives see it under NCCL
    with 2 ranks: a collective refuses any tensor off the backend's device
    (here the model's, ``meta``) and leaves the data as it is."""

    def __init__(self):
        import torch.distributed as real
        self.real, self.seen = real, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def _collective(self, t, *args, async_op=False, **kwargs):
        if t.device.type != 'meta':
            raise DeviceMixError(f'NCCL collective on a {t.device} tensor')
        self.seen.append(tuple(t.shape))
        return _DoneWork() if async_op else None

    all_reduce = broadcast = _collective


@pytest.fixture
def fake_nccl(monkeypatch):
    import mmengine.dist
    import mmengine.dist.dist as mm_dist
    from cream_mm.search import cream, kshot, runtime, sandwich
    fake = _FakeNccl()
    monkeypatch.setattr(mm_dist, 'torch_dist', fake)
    for mod in (mm_dist, mmengine.dist):
        monkeypatch.setattr(mod, 'get_world_size', lambda group=None: 2)
    monkeypatch.setattr(mm_dist, 'get_default_group', lambda: None)
    monkeypatch.setattr(mm_dist, 'get_comm_device',
                        lambda group=None: torch.device('meta'))
    for mod in (cream, kshot, runtime, sandwich):
        if hasattr(mod, 'distributed'):
            monkeypatch.setattr(mod, 'distributed', lambda: True)
    return fake


def test_cream_collectives_run_on_the_backend_device(fake_nccl):
    """Two ranks under NCCL: every all-reduce of a Cream step (gradients,
    BN statistics, rho, held-out counts -- host float64 tensors among
    them -- and the early-stopped confirmation) reaches the collective on
    the backend's device (mmengine's ``all_reduce`` moves host tensors
    there and back), and the board is broadcast from rank 0."""
    from cream_mm.search.ddp import CreamSearchDDP
    model, optim = _cream(scoring=dict(early_stop=True))
    on_device(model)
    model.attach_search_val(_batches(2, seed=9))
    with CudaLikeMeta():
        wrapped = CreamSearchDDP(model)
        for data in _batches(2):
            wrapped.train_step(data, optim)
        model.confirm_top1(model.board_arch(0), 50.)
    assert (model.board.num_paths, model.board.num_layers) in \
        fake_nccl.seen  # the board's codes, broadcast as a host tensor
    # held-out counts of the K stale board paths, and of one path (float64
    # host tensors), reached the collective on the device
    assert (model.board.num_paths, 2) in fake_nccl.seen
    assert (2, ) in fake_nccl.seen
