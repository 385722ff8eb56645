"""``composite``: real Fashion-MNIST (or MNIST-5k) items on real photos.

Each 320 x 320 image is a random crop of a scikit-image / scikit-learn photo
with 2-6 items pasted at log-uniform sizes (14-200 px, aspect jitter
0.8-1.25, placed largest first) so that COCO's small, medium and large
ranges are all well represented.  An
item's opacity is ``clip((v - 8) / 40, 0, 1)`` of its resized grey value
``v`` (pixels <= 8 stay background), its colour a random tint; its box is
the exact bounding box of the pixels it changed and its ``area`` the count
of those pixels (COCO's ``area`` is the object's, not the box's).  Items do
not overlap, so every box is fully visible, and each item's instance mask
is exactly those pixels (``alpha > 0``: the ones that define its box and
area), stored as COCO compressed RLE ``segmentation`` for Mask R-CNN-style
models and ``CocoMetric(metric='segm')``.  ``train`` items come from the
classification ``train`` split and ``val`` items from its ``val`` split,
so val objects are unseen.  Stored as JPEG (quality 90); boxes and areas
refer to the pixels before compression.  Deterministic from ``SEED``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import cls_arrays, sources
from .coco_json import CocoWriter

SEED = 0
IMG_SIZE = 320
NUM_IMAGES = dict(train=400, val=100)
ITEMS_PER_IMAGE = (2, 6)
ITEM_SIZE = (14, 200)
ASPECT = (0.8, 1.25)
MARGIN = 2
PLACE_TRIES = 30


def load_photos() -> list[np.ndarray]:
    """The background photos as HxWx3 uint8 arrays."""
    return [np.asarray(Image.open(p).convert('RGB'))
            for p in sources.photo_paths()]


def resize(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    """Bilinear resize of a uint8 image array to (h, w)."""
    return np.asarray(Image.fromarray(arr).resize((w, h), Image.BILINEAR))


def background(photos, rng) -> np.ndarray:
    """A random square crop of a random photo, resized, maybe mirrored."""
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.5, 1.0) * min(h, w))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    bg = resize(photo[y:y + side, x:x + side], IMG_SIZE, IMG_SIZE)
    return bg[:, ::-1] if rng.random() < 0.5 else bg


def item_patch(gray28: np.ndarray, size: float, aspect: float):
    """(grey patch, alpha) of one item resized to ``size``; None if empty."""
    h = int(min(IMG_SIZE, max(4, round(size * np.sqrt(aspect)))))
    w = int(min(IMG_SIZE, max(4, round(size / np.sqrt(aspect)))))
    grey = resize(gray28, w, h).astype(np.float32)
    alpha = np.clip((grey - 8) / 40, 0, 1)
    return (grey, alpha) if alpha.any() else None


def place(alpha, boxes, rng):
    """A random position whose item box overlaps no box; None if none found."""
    ys, xs = np.nonzero(alpha)
    ph, pw = alpha.shape
    for _ in range(PLACE_TRIES):
        py = int(rng.integers(0, IMG_SIZE - ph + 1))
        px = int(rng.integers(0, IMG_SIZE - pw + 1))
        box = (px + xs.min(), py + ys.min(), px + xs.max() + 1,
               py + ys.max() + 1)
        if all(box[0] >= b[2] + MARGIN or b[0] >= box[2] + MARGIN
               or box[1] >= b[3] + MARGIN or b[1] >= box[3] + MARGIN
               for b in boxes):
            return px, py, box
    return None


def compose(photos, images, labels, pool, rng):
    """One image: (HxWx3 uint8, boxes, labels, areas, HxW bool masks)."""
    canvas = background(photos, rng).astype(np.float32)
    boxes, cls, areas, masks = [], [], [], []
    n = int(rng.integers(ITEMS_PER_IMAGE[0], ITEMS_PER_IMAGE[1] + 1))
    items = pool[rng.integers(len(pool), size=n)]
    sizes = np.exp(rng.uniform(*np.log(ITEM_SIZE), size=n))
    aspects = np.exp(rng.uniform(*np.log(ASPECT), size=n))
    for k in np.argsort(-sizes, kind='stable'):  # largest first: they fit
        idx = items[k]
        patch = item_patch(images[idx], sizes[k], aspects[k])
        if patch is None:
            continue
        grey, alpha = patch
        spot = place(alpha, boxes, rng)
        if spot is None:
            continue
        px, py, box = spot
        tint = rng.uniform(80, 255, size=3).astype(np.float32)
        fg = (0.3 + 0.7 * grey / 255)[..., None] * tint
        a = alpha[..., None]
        region = canvas[py:py + alpha.shape[0], px:px + alpha.shape[1]]
        region[:] = region * (1 - a) + fg * a
        boxes.append(box)
        cls.append(int(labels[idx]))
        areas.append(int((alpha > 0).sum()))
        mask = np.zeros(canvas.shape[:2], dtype=bool)
        mask[py:py + alpha.shape[0], px:px + alpha.shape[1]] = alpha > 0
        masks.append(mask)
    img = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return img, boxes, cls, areas, masks


def build(out_dir: Path, source: str) -> dict:
    """Write the COCO-format ``composite`` set from ``source`` items."""
    arrays = cls_arrays.make_arrays(source)
    classes = cls_arrays.CLASSES[source]
    photos = load_photos()
    meta = dict(source=source, seed=SEED, classes=list(classes),
                image_size=[IMG_SIZE, IMG_SIZE],
                photos=[p.name for p in sources.photo_paths()], splits={})
    for split_id, split in enumerate(('train', 'val')):
        rng = np.random.default_rng([SEED, split_id])
        pool = arrays['splits'][split]
        writer = CocoWriter(out_dir, split, classes,
                            f'{source} items on real photos')
        for i in range(NUM_IMAGES[split]):
            img, boxes, cls, areas, masks = compose(
                photos, arrays['images'], arrays['labels'], pool, rng)
            writer.add_image(img, f'{split}_{i:05d}.jpg', boxes, cls,
                             areas=areas, masks=masks, quality=90)
        meta['splits'][split] = writer.write()
    return meta
