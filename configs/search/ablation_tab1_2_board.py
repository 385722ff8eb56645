# Tab. 1 #2: single-path training + prioritized paths (no distillation);
# the final architecture is the board's best.
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(matching='none', use_board=True)
