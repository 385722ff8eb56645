# Search data on the embedded classification set at 32 px (tiny searches):
# supernet training on search_train, 512 held-out search_val images for
# scoring paths (a seeded random sample, SeededSubset: the same images on
# every rank and resume); no validation / test loop (the search hook scores
# paths). `search_val_subset` is the sample's dataset config, for disjoint
# parts of the same permutation (the Cream configs' final_dataloader).
_base_ = ['../datasets/embedded_cls.py']
train_pipeline = [dict(type='Resize', scale=(32, 32)),
                  dict(type='PackInputs')]
test_pipeline = train_pipeline
train_dataloader = dict(batch_size=64, dataset=dict(
    split='search_train', pipeline=train_pipeline))
search_val_subset = dict(
    type='SeededSubset', indices=512, seed=0, offset=0,
    dataset=dict(type='EmbeddedClsDataset', name='auto', split='search_val',
                 pipeline=test_pipeline))
search_val_dataloader = dict(
    batch_size=128, num_workers=0, dataset=search_val_subset,
    sampler=dict(type='DefaultSampler', shuffle=False))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
