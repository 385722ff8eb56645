# Tab. 1 #1: single-path training (SPOS [8]) + evolution search.
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(matching='none', use_board=False)
custom_hooks = [dict(type='CreamSearchHook', final='evolution')]
