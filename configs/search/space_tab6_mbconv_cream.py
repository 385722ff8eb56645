# Tab. 6 / Appendix C: Cream in the 'mbconv' space (4 layers per stage).
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(supernet=dict(space=dict(name='mbconv', max_depths=4)),
             flops_range=(0, 600e6))
