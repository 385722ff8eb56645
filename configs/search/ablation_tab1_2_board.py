# Tab. 1 #2: single-path training + prioritized paths (no distillation);
# the final architecture is the board's best.
# Tab. 1's models have 432-487M FLOPs: the Cream-M range (430-500M)
_base_ = ['./cream_paper_481m_in1k.py']
model = dict(matching='none', use_board=True)
