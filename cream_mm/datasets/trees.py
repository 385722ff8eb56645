"""``trees``: DeepForest's real airborne RGB photos of tree crowns, tiled.

The four annotated images DeepForest ships (NEON imagery, Pascal VOC boxes)
are cut into non-overlapping 400 x 400 tiles (a centred grid; the margins
that do not fill a whole tile are left out); boxes are clipped to their tile
and dropped when less than half of the box is inside it.  One class,
``tree`` (SOAP_061's ``Dead``/``Alive`` labels are kept per box as
``source_label``).  Split: per source image a seeded quarter (rounded up) of
its tiles goes to ``val``; the two 400 x 400 images count as one source.
Tiles are stored losslessly as PNG.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from . import sources
from .coco_json import CocoWriter

SEED = 0
TILE = 400
MIN_VISIBLE = 0.5
VAL_FRACTION = 0.25
CLASSES = ('tree', )
# (group, image stem); each group is split train/val separately
SOURCES = (
    ('small', 'OSBS_029'),
    ('small', 'SOAP_061'),
    ('yell_541', '2019_YELL_2_541000_4977000_image_crop'),
    ('yell_528', '2019_YELL_2_528000_4978000_image_crop2'),
)


def read_voc(xml_path: Path):
    """(boxes (N, 4) float x1,y1,x2,y2, labels list[str]) of a VOC file."""
    root = ET.parse(xml_path).getroot()
    boxes, labels = [], []
    for obj in root.iter('object'):
        bb = obj.find('bndbox')
        boxes.append([float(bb.find(k).text)
                      for k in ('xmin', 'ymin', 'xmax', 'ymax')])
        labels.append(obj.find('name').text)
    return np.array(boxes, float).reshape(-1, 4), labels


def tile_origins(size: int) -> list[int]:
    """Left (top) edges of a centred grid of whole tiles along one axis."""
    n = size // TILE
    start = (size - n * TILE) // 2
    return [start + i * TILE for i in range(n)]


def clip_boxes(boxes: np.ndarray, x0: int, y0: int):
    """Boxes moved into the tile at (x0, y0), clipped; mask of those kept."""
    moved = boxes - [x0, y0, x0, y0]
    clipped = np.clip(moved, 0, TILE)
    clipped[:, :2] = np.floor(clipped[:, :2])
    clipped[:, 2:] = np.ceil(clipped[:, 2:])
    area = lambda b: (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    full = np.maximum(area(moved), 1e-9)
    keep = (area(clipped) / full >= MIN_VISIBLE) & (
        clipped[:, 2] - clipped[:, 0] >= 2) & (clipped[:, 3] - clipped[:, 1]
                                                 >= 2)
    return clipped, keep


def make_tiles():
    """All tiles: list of (group, file_name, image, boxes, source_labels)."""
    folder = sources.deepforest_data_dir()
    tiles = []
    for group, stem in SOURCES:
        img_path, xml_path = folder / f'{stem}.png', folder / f'{stem}.xml'
        for p in (img_path, xml_path):
            if not p.is_file():
                raise FileNotFoundError(
                    f'{p} missing; reinstall with '
                    f'{sources.INSTALL_HINTS["deepforest"]}')
        img = np.asarray(Image.open(img_path).convert('RGB'))
        boxes, labels = read_voc(xml_path)
        h, w = img.shape[:2]
        for r, y0 in enumerate(tile_origins(h)):
            for c, x0 in enumerate(tile_origins(w)):
                clipped, keep = clip_boxes(boxes, x0, y0)
                name = f'{stem}_r{r}_c{c}.png'
                tiles.append((group, name, img[y0:y0 + TILE, x0:x0 + TILE],
                              clipped[keep],
                              [lb for lb, k in zip(labels, keep) if k]))
    return tiles


def split_tiles(tiles) -> dict[str, list]:
    """Seeded per-group split: ceil(25 %) of each group's tiles to val."""
    rng = np.random.default_rng(SEED)
    out = dict(train=[], val=[])
    for group in dict.fromkeys(t[0] for t in tiles):
        members = [t for t in tiles if t[0] == group]
        n_val = math.ceil(VAL_FRACTION * len(members))
        val_ids = set(rng.permutation(len(members))[:n_val].tolist())
        for i, t in enumerate(members):
            out['val' if i in val_ids else 'train'].append(t)
    return out


def build(out_dir: Path) -> dict:
    """Write the COCO-format ``trees`` set; return its counts."""
    splits = split_tiles(make_tiles())
    meta = dict(source=str(sources.deepforest_data_dir()), seed=SEED,
                classes=list(CLASSES), image_size=[TILE, TILE], splits={})
    for split, tiles in splits.items():
        writer = CocoWriter(out_dir, split, CLASSES,
                            'DeepForest tree crowns (NEON), 400px tiles')
        for _, name, img, boxes, labels in tiles:
            writer.add_image(img, name, boxes, [0] * len(boxes),
                             extra=[dict(source_label=lb) for lb in labels])
        meta['splits'][split] = writer.write()
    return meta
