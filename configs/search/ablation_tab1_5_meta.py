# Tab. 1 #5: board + meta matching (the paper's Cream).
_base_ = ['./cream_paper_287m_in1k.py']
