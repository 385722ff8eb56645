# Tab. 1 #3: distillation from the largest path ("fixed match"), no board;
# the table states no final search for this row: evolution picks it here.
# Tab. 1's models have 432-487M FLOPs: the Cream-M range (430-500M)
_base_ = ['./cream_paper_481m_in1k.py']
model = dict(matching='fixed', use_board=False)
custom_hooks = [dict(type='CreamSearchHook', final='evolution')]
