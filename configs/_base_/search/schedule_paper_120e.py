# Supernet schedule of §4.1: 120 epochs, SGD momentum 0.9, wd 4e-5, lr 0.5
# with linear annealing (per iteration); the meta network's lr is constant.
param_scheduler = dict(
    supernet=[dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
                   by_epoch=True, begin=0, end=120,
                   convert_to_iter_based=True)],
    meta=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
               end=120)])
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=120)
