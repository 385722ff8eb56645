# Tiny SPOS baseline (Tab. 1 #1) on the embedded data: no board, no KD,
# evolution over the trained supernet.
_base_ = ['./tiny_cream_embedded.py']
model = dict(matching='none', use_board=False)
custom_hooks = [dict(type='CreamSearchHook', final='evolution',
                     evolution=dict(population=10, generations=3, parents=4,
                                    mutations=5, crossovers=5),
                     export={{_base_.search_export}})]
