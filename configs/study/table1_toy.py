# The Tab. 1 study at toy scale (tests/test_study.py, a smoke run in about
# a minute): 4 paths, a few iterations of everything, tiny batches. Its
# numbers mean nothing; the structure is the full study's.
_base_ = ['./table1_fmnist.py']
supernet_iters = 6
seeds = [0]
paths = [
    'k7e6,k5e4|k3e6|k5e6,k3e6|k3e6,k5e6|k3e4*2',
    'k3e4,k7e4|k3e4,k7e6|k7e4,k5e4|k7e4,k5e4|k7e4,k5e6',
    'k5e6,k7e6|k5e6|k3e6,k5e6|k3e4*2|k7e4',
    'k3e6,k7e6|k5e6|k5e6*2|k5e4*2|k7e6,k5e4',
]
base_options = dict(
    train_dataloader=dict(batch_size=8),
    search_val_dataloader=dict(batch_size=16, dataset=dict(indices=16)),
    model=dict(scoring=dict(screen=False),
               warmup=dict(iters=2), board=dict(num_paths=3),
               meta=dict(interval=2, match_images=4)))
standalone = dict(iters=2, seeds=[100, 200])
retrain = dict(seeds=[300])
eval_sets = dict(
    rank=dict(split='search_val', indices=(5000, 5032),
              pipeline={{_base_._eval_pipeline}}),
    test=dict(split='val', indices=(0, 32),
              pipeline={{_base_._eval_pipeline}}))
evolution = dict(population=4, generations=1, parents=2, mutations=2,
                 crossovers=2)
calib_batches = 1
random_band = 1e6
random_min = 2
bootstrap = 50
workers = 1
telemetry = dict(interval=2, probe_paths=2)
