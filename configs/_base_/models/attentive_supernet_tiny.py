# A CPU-sized AttentiveNAS-style space for the embedded 32-px data (tests,
# demos): the paper's stage layout, strides and SE placement with narrower
# widths, shallow stages, expansions {3, 4} and resolutions 32 / 48 / 64.
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
supernet = dict(
    type='AttentiveSupernet',
    space=dict(
        resolutions=(32, 48, 64),
        first_widths=(8, 16),
        stage_widths=((8, 16), (16, 24), (24, 32), (32, 40), (40, 48),
                      (48, 64), (64, 72)),
        stage_depths=((1, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, )),
        stage_kernels=((3, 5), ) * 7,
        stage_expands=((1, ), (3, 4), (3, 4), (3, 4), (3, 4), (4, ), (4, )),
        stage_strides=(1, 2, 2, 2, 1, 2, 1),
        stage_se=(False, False, True, False, True, True, True),
        last_widths=(128, 256),
        final_expand=6))
head = dict(
    type='AttentiveDynamicHead',
    num_classes=10,
    in_channels=72 * 6,
    head_channels=256,
    dropout=0.0,
    loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    topk=(1, ))
