_base_ = ['mmpretrain::_base_/default_runtime.py']
randomness = dict(seed=0, deterministic=False)
