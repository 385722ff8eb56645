# Tab. 1 #4: board + distillation from a random board path.
# Tab. 1's models have 432-487M FLOPs: the Cream-M range (430-500M)
_base_ = ['./cream_paper_481m_in1k.py']
model = dict(matching='random', use_board=True)
