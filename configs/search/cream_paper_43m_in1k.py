# Paper settings for a ~43m FLOPs model; tiny targets search at 96 px.
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(flops_range=(38e6, 45e6),
             supernet=dict(space=dict(input_size=96)))
