# Embedded detection data (mmdet scope): 10 classes of real Fashion-MNIST
# items (MNIST-5k if absent) pasted on real photos, 320x320, small, medium
# and large objects with exact boxes, in COCO format; built on first use
# into $CREAM_MM_DATA (default ./data/embedded), see cream_mm.datasets.
# CocoMetric evaluates it exactly like COCO val2017. Loaders and metric are
# those of the tree-crown set; only the data, size and flips differ.
_base_ = ['./embedded_trees.py']
dataset_name = 'composite'
# mmengine substitutes $CREAM_MM_DATA here when the config is loaded
data_root = '{{$CREAM_MM_DATA:data/embedded}}/composite/'
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
_data = dict(name=dataset_name, data_root=data_root)
train_dataloader = dict(dataset=dict(_data, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(_data, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
