# The tiny Cream search with AlphaNet's adaptive alpha-divergence as the KD
# term of Eq. 5 (alpha in [-1, 1], importance-ratio clip 5) and the
# element-wise gradient value clipping the authors advise with it.
_base_ = ['./tiny_cream_embedded.py']
model = dict(distill=dict(kd_loss=dict(type='AdaptiveAlphaDivergence')))
optim_wrapper = dict(supernet=dict(clip_grad=dict(type='value',
                                                  clip_value=1.0)))
