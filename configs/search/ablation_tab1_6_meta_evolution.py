# Tab. 1 #6: Cream supernet training, then evolution instead of the board.
# Tab. 1's models have 432-487M FLOPs: the Cream-M range (430-500M)
_base_ = ['./cream_paper_481m_in1k.py']
custom_hooks = [dict(type='CreamSearchHook', final='evolution')]
