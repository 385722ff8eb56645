# Paper settings for a ~481m FLOPs model; tiny targets search at 224 px.
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(flops_range=(430e6, 500e6),
             supernet=dict(space=dict(input_size=224)))
