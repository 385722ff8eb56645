# K-shot NAS (Su et al., ICML 2021) on the Cream MBConv space (Table 8:
# k{3,5,7} x e{4,6} with SE, or skip; up to 6 layers per stage) and
# ImageNet with the paper's schedule and NSGA-II search
# (configs/_base_/search/kshot_paper.py): K=8 copies of every searched
# weight, simplex-net with a 64-unit hidden layer (width not given by the
# paper). This space searches no widths: no channel branch, no r_c (see
# kshot_paper_attentive_in1k.py).
#   tools/dist_train.sh configs/search/kshot_paper_in1k.py 8
_base_ = ['../_base_/search/kshot_paper.py']
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
model = dict(
    supernet=dict(type='KShotSupernet', num_shots=8,
                  supernet=dict(type='CreamSupernet',
                                space=dict(name='mbconv', max_depths=6,
                                           input_size=224)),
                  simplex=dict(hidden=64)),
    head=dict(type='CreamClsHead', num_classes=1000, dropout=0.))
