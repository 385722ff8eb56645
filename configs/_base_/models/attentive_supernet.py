# The AttentiveNAS / AlphaNet search space (alphanet_kshot.md §1.3, the
# `supernet_config` of AlphaNet's configs): a weight-sliced supernet and the
# elastic v3 head (feature-mix width 1792 / 1984). Search configs use
# `model = dict(type=<algorithm>, supernet={{_base_.supernet}}, head=...)`
# or copy these two dicts.
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
supernet = dict(
    type='AttentiveSupernet',
    space=dict(
        resolutions=(192, 224, 256, 288),
        first_widths=(16, 24),
        stage_widths=((16, 24), (24, 32), (32, 40), (64, 72),
                      (112, 120, 128), (192, 200, 208, 216), (216, 224)),
        stage_depths=((1, 2), (3, 4, 5), (3, 4, 5, 6), (3, 4, 5, 6),
                      (3, 4, 5, 6, 7, 8), (3, 4, 5, 6, 7, 8), (1, 2)),
        stage_kernels=((3, 5), ) * 7,
        stage_expands=((1, ), (4, 5, 6), (4, 5, 6), (4, 5, 6), (4, 5, 6),
                       (6, ), (6, )),
        stage_strides=(1, 2, 2, 2, 1, 2, 1),
        stage_se=(False, False, True, False, True, True, True),
        last_widths=(1792, 1984),
        final_expand=6))
head = dict(
    type='AttentiveDynamicHead',
    num_classes=1000,
    in_channels=224 * 6,
    head_channels=1984,
    dropout=0.0,
    loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
    topk=(1, 5))
