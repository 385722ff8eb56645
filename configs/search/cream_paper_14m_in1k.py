# Paper settings for a ~14m FLOPs model; tiny targets search at 64 px.
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(flops_range=(12e6, 15e6),
             supernet=dict(space=dict(input_size=64)))
