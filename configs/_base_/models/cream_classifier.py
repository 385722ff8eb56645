# mmpretrain classifier: a Cream backbone + the release's head (§2).
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CreamNet', arch='cream-287m', drop_path_rate=0.0),
    neck=None,
    head=dict(
        type='CreamClsHead',
        num_classes=1000,
        in_channels=320,
        dropout=0.2,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                  mode='original'),
        topk=(1, 5)))
