# Tab. 6 / Appendix C: the SPOS baseline in the 'mbconv+res+conv' space.
_base_ = ['./space_tab6_mbconv-res-conv_cream.py']
model = dict(matching='none', use_board=False)
custom_hooks = [dict(type='CreamSearchHook', final='evolution')]
