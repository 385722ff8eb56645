# mmpretrain's runtime plus the EMA of §4.1 (decay 0.9999, evaluated weights).
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]
