# Tab. 1 #6: Cream supernet training, then evolution instead of the board.
_base_ = ['./cream_paper_287m_in1k.py']
custom_hooks = [dict(type='CreamSearchHook', final='evolution')]
