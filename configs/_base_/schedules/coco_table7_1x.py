# The detection schedule of §4.4 / Table 7 (RetinaNet + Cream-S on COCO):
# batch 32 (8 GPUs x 4 -- set train_dataloader.batch_size=4 in the leaf),
# SGD momentum 0.9, wd 1e-4, lr 0.04 with 500 warm-up iterations, x0.1 at
# epochs 8 and 11, 12 epochs; mmdet's runtime.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py',
          'mmdet::_base_/default_runtime.py']
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.04, momentum=0.9,
                                    weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1),
]
train_cfg = dict(max_epochs=12)
# tuned for 8 GPUs x 4 = 32: lr scales by batch / 32 on another count
auto_scale_lr = dict(enable=True, base_batch_size=32)
