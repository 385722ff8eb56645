"""Write COCO-format detection sets (the layout of COCO val2017).

``<dir>/<split>/<file>`` images and
``<dir>/annotations/instances_<split>.json``
with ``images`` (id, file_name, width, height), ``annotations`` (id,
image_id, category_id, bbox ``[x, y, w, h]`` in pixels, area, iscrowd=0 and,
when masks are given, ``segmentation``) and ``categories`` (ids from 1),
which mmdet's ``CocoDataset``/``CocoMetric`` and pycocotools read unchanged.

Instance masks are stored exactly, as COCO compressed RLE
(``{"size": [h, w], "counts": "<str>"}``, pycocotools' ``mask.encode``):
polygons would drop holes and shift the outline by half a pixel.  mmdet's
``LoadAnnotations(with_mask=True)`` decodes them into ``BitmapMasks`` with
its default ``poly2mask=True`` (with ``poly2mask=False`` mmdet accepts
polygons only and marks RLE instances as ignored, as it does COCO's crowd
regions), and ``CocoMetric(metric='segm')`` / pycocotools evaluate them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

# COCO's area ranges (pixels), as pycocotools uses them
AREA_RANGES = dict(
    small=(0, 32**2), medium=(32**2, 96**2), large=(96**2, 1e10))


class CocoWriter:
    """Accumulates one split's images and boxes, then writes its JSON."""

    def __init__(self, out_dir: Path, split: str, classes, description: str):
        self.out_dir, self.split = Path(out_dir), split
        self.classes, self.description = tuple(classes), description
        self.images, self.annotations = [], []
        self.num_masks = 0
        (self.out_dir / split).mkdir(parents=True, exist_ok=True)

    def add_image(self, img: np.ndarray, file_name: str, boxes, labels,
                  areas=None, extra=None, masks=None, **save_kw) -> int:
        """Save ``img`` (HxWx3 RGB uint8) and its ``x1,y1,x2,y2`` boxes.

        ``labels`` index ``classes``; ``areas`` default to the box areas (to
        the mask areas when ``masks`` are given); ``extra`` is a list of
        per-box dicts merged into the annotations; ``masks`` (optional) are
        HxW boolean arrays, one per box, stored as compressed RLE: each must
        be non-empty, its tight bounding box must be the box and its pixel
        count the area.
        """
        Image.fromarray(img).save(self.out_dir / self.split / file_name,
                                  **save_kw)
        img_id = len(self.images) + 1
        h, w = img.shape[:2]
        self.images.append(
            dict(id=img_id, file_name=file_name, width=w, height=h))
        for i, (box, label) in enumerate(zip(boxes, labels)):
            x1, y1, x2, y2 = (int(v) for v in box)
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (file_name, box)
            ann = dict(id=len(self.annotations) + 1, image_id=img_id,
                       category_id=int(label) + 1,
                       bbox=[x1, y1, x2 - x1, y2 - y1],
                       area=int(areas[i]) if areas is not None else
                       (x2 - x1) * (y2 - y1), iscrowd=0)
            if masks is not None:
                ann['segmentation'] = encode_mask(masks[i], (x1, y1, x2, y2),
                                                  ann['area'], file_name)
                self.num_masks += 1
            ann.update(extra[i] if extra else {})
            self.annotations.append(ann)
        return img_id

    def write(self) -> dict:
        """Write the JSON; return counts for the manifest."""
        ann_dir = self.out_dir / 'annotations'
        ann_dir.mkdir(exist_ok=True)
        coco = dict(
            info=dict(description=self.description, version='1.0'),
            licenses=[],
            images=self.images,
            annotations=self.annotations,
            categories=[
                dict(id=i + 1, name=c, supercategory='object')
                for i, c in enumerate(self.classes)
            ])
        path = ann_dir / f'instances_{self.split}.json'
        path.write_text(json.dumps(coco, separators=(',', ':')))
        return self.summary()

    def summary(self) -> dict:
        """Images, boxes (masks if any), boxes per area range and class."""
        areas = np.array([a['area'] for a in self.annotations], float)
        cats = np.array([a['category_id'] for a in self.annotations], int)
        # `masks` only when there are some: mask-less sets keep their bytes
        masks = dict(masks=self.num_masks) if self.num_masks else {}
        return dict(
            images=len(self.images), boxes=len(self.annotations), **masks,
            area_ranges={
                k: int(((areas >= lo) & (areas < hi)).sum())
                for k, (lo, hi) in AREA_RANGES.items()
            },
            per_class=[int((cats == i + 1).sum())
                       for i in range(len(self.classes))])


def encode_mask(mask: np.ndarray, box, area: int | None = None,
                where: str = '') -> dict:
    """COCO compressed RLE of a boolean HxW ``mask`` (JSON-ready).

    Checks that ``box`` (``x1, y1, x2, y2``) is the mask's tight bounding
    box and ``area`` (if given) its pixel count, so boxes, areas and masks
    cannot drift apart.
    """
    mask = np.asarray(mask, dtype=bool)
    ys, xs = np.nonzero(mask)
    assert len(ys), f'{where}: empty mask'
    tight = (int(xs.min()), int(ys.min()), int(xs.max()) + 1,
             int(ys.max()) + 1)
    assert tight == tuple(int(v) for v in box), (where, tight, box)
    assert area is None or int(area) == len(ys), (where, area, len(ys))
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(v) for v in rle['size']],
                counts=rle['counts'].decode('ascii'))
