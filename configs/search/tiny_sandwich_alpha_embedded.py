# The tiny sandwich-rule supernet with AlphaNet's adaptive alpha-divergence
# as the in-place KD loss (alpha in [-1, 1], importance-ratio clip 5) and
# the element-wise gradient value clipping (1.0) the authors advise with it,
# applied once to the accumulated gradient of the four paths.
_base_ = ['./tiny_sandwich_embedded.py']
model = dict(kd_loss=dict(_delete_=True, type='AdaptiveAlphaDivergence',
                          alpha_min=-1.0, alpha_max=1.0, iw_clip=5.0))
optim_wrapper = dict(clip_grad=dict(type='value', clip_value=1.0))
