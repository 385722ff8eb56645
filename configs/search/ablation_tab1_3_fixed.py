# Tab. 1 #3: distillation from the largest path ("fixed match"), no board;
# the table states no final search for this row: evolution picks it here.
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(matching='fixed', use_board=False)
custom_hooks = [dict(type='CreamSearchHook', final='evolution')]
