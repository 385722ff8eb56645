# mmpretrain classifier: a fixed AttentiveNAS / AlphaNet subnet + the v3 head
# (pool -> bias-free 1x1 feature-mix conv -> swish -> dropout -> FC).
# in_channels = 6 * width[7]; head_channels = width[8].
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='AttentiveNet', arch='alphanet-a0', drop_path_rate=0.0),
    neck=None,
    head=dict(
        type='CreamClsHead',
        num_classes=1000,
        in_channels=216 * 6,
        head_channels=1792,
        conv_bias=False,
        dropout=0.2,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                  mode='original'),
        topk=(1, 5)))
