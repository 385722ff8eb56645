# Tab. 1 #1: single-path training (SPOS [8]) + evolution search.
# Tab. 1's models have 432-487M FLOPs: the Cream-M range (430-500M)
_base_ = ['./cream_paper_481m_in1k.py']
model = dict(matching='none', use_board=False)
custom_hooks = [dict(type='CreamSearchHook', final='evolution')]
