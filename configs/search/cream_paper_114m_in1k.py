# Paper settings for a ~114m FLOPs model; tiny targets search at 160 px.
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(flops_range=(100e6, 120e6),
             supernet=dict(space=dict(input_size=160)))
