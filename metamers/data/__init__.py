"""Images: reference sets, null pools and pixels; and the data shipped with the package.

- :mod:`.image_set`: :class:`ImageSet`, the registry of image-set types, job batches.
- :mod:`.mnist`, :mod:`.folder`, :mod:`.fashion_mnist`: the image-set types (they register themselves).
- :mod:`.pools`: the null pool of a study (training images, never a reference).
- :mod:`.pixels`: reading files, adapting images to a model's input, 8-bit quantisation.
- ``mnist_test_subset.npz``: 1,000 held-out MNIST test digits (see ``README.md`` here).
"""

from . import mnist, folder, fashion_mnist  # noqa: F401, I001 - they register their image-set types, in this order
from .image_set import IMAGE_SETS, ImageSet, ImageSetType, batch_ids, default_pool, grid_selection, load_image_set
from .pixels import ImageError, as_tensor, from_uint8, quantize, read_image_file, to_input, to_uint8

__all__ = ["IMAGE_SETS", "ImageError", "ImageSet", "ImageSetType", "as_tensor", "batch_ids", "default_pool",
           "from_uint8", "grid_selection", "load_image_set", "quantize", "read_image_file", "to_input", "to_uint8"]
