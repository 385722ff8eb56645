# Tab. 1 #4: board + distillation from a random board path.
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(matching='random', use_board=True)
