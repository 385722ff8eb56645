# The authors' release (reference §1 "what the release does differently"):
# board scored on the training batch with insertion also at +5 points, KD mix
# (rho*KD + (2-rho)*CE_ls)/2 with label smoothing 0.1, 20 warm-up epochs,
# meta lr 1e-4, op prior (0.05, 0.2, 0.05, 0.5, 0.05, 0.15) without skip,
# fixed per-stage depths, lr 1.0 linear decay per iteration, Nesterov,
# wd 1e-4, 8x128 batch. Not replicated: the rho-of-the-last-board-item bug
# and the stem-only second-order gradient (both are fixed here).
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(
    sampler=dict(op_prior=(0.05, 0.2, 0.05, 0.5, 0.05, 0.15),
                 fixed_depths=(4, 4, 5, 4, 4)),
    flops_range=(0, 600e6),
    supernet=dict(space=dict(max_depths=(4, 4, 5, 4, 4))),
    board=dict(rule='release'),
    scoring=dict(on='train_batch', screen=False),
    meta=dict(risk_on='train_batch'),
    distill=dict(loss_form='release', label_smoothing=0.1),
    warmup=dict(epochs=20))
optim_wrapper = dict(
    supernet=dict(optimizer=dict(type='SGD', lr=1.0, momentum=0.9,
                                 nesterov=True, weight_decay=1e-4)),
    meta=dict(optimizer=dict(type='SGD', lr=1e-4)))
