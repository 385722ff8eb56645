# The Cream search model with the paper's settings (§3, §4.1, Alg. 1):
# MBConv space (Table 8, up to 6 layers per stage), K=10 board paths scored
# on 2,048 held-out images (Eq. 3), meta matching (Eq. 4) with a 1,000-unit
# meta network updated every tau=200 iterations (Eq. 6), loss CE + rho*KD
# (Eq. 5). Derived configs set `flops_range` and the data.
custom_imports = dict(imports=['cream_mm'],
                      allow_failed_imports=False)
num_classes = 1000
model = dict(
    type='CreamSearch',
    supernet=dict(type='CreamSupernet',
                  space=dict(name='mbconv', max_depths=6, input_size=224)),
    head=dict(type='CreamClsHead', num_classes=num_classes, dropout=0.),
    flops_range=(0, 600e6),
    flops_metric='flops',
    matching='meta',
    use_board=True,
    board=dict(num_paths=10, rule='paper'),
    # Eq. 4 on the first 4 images of the batch (the release's SUPERNET.SLICE:
    # matching costs K x 4 images of forward, whatever the batch)
    meta=dict(hidden=1000, interval=200, match_images=4, risk_on='val'),
    distill=dict(temperature=1., weight=1., loss_form='paper',
                 label_smoothing=0.),
    # every sampled path that could enter the board is scored on the
    # 2,048 held-out images, as in the paper (screen=False); early stop on
    # the subset (exact: a stopped path could not have entered). Opt-in
    # speed-ups that deviate from the paper: screen='sigma' (confirm only
    # paths screen_sigma above the running mean of the training-batch
    # top-1) and screen='entry' (also only paths whose calibrated training-
    # batch top-1 can reach the entry threshold), CreamSearch docstring
    scoring=dict(on='val', screen=False, screen_sigma=1., entry_sigma=2.,
                 rescore_interval=0),
    warmup=dict(iters=0, epochs=0),
)
# two optimisers (supernet W, meta network theta) in one OptimWrapperDict
optim_wrapper = dict(
    constructor='CreamOptimWrapperConstructor',
    supernet=dict(optimizer=dict(type='SGD', lr=0.5, momentum=0.9,
                                 weight_decay=4e-5)),
    meta=dict(optimizer=dict(type='SGD', lr=1e-4)))
# the search's own DDP wrapper: train_step is Alg. 1 and syncs itself
model_wrapper_cfg = dict(type='CreamSearchDDP')
custom_hooks = [dict(type='CreamSearchHook', log_interval=200,
                     plot_interval=5000, final='board')]
