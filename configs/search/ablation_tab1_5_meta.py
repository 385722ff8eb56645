# Tab. 1 #5: board + meta matching (the paper's Cream).
# Tab. 1's models have 432-487M FLOPs: the Cream-M range (430-500M)
_base_ = ['./cream_paper_481m_in1k.py']
