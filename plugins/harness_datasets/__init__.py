"""Built-in datasets, registered through the same hook as any third-party plugin."""
from harness import DatasetSpec, hookimpl
from harness.toolkit import cached_images, is_split_tree, read_tree
from harness_datasets.cifar10 import (DEFAULT_NAMES, SAMPLE, describe_canonical, download_canonical, is_canonical,
                                      read_canonical)


def load_cifar10(path, size=None):
    """CIFAR-10 at its native 32 px (models of other sizes are fed batches resized on the fly),
    from the canonical pickled batches (folder or .tar.gz) or a train/test image tree."""
    if is_canonical(path):
        return cached_images(path, "cifar10-canonical", 32, lambda files: read_canonical(path))
    return cached_images(path, "image-tree", None, lambda files: read_tree(path, None, allocate=files.allocate))


def load_imagefolder(path, size=None):
    """Any image folder or zip, every image resized to the model's input size when it is decoded."""
    return cached_images(path, "image-tree", size, lambda files: read_tree(path, size, allocate=files.allocate))


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name="cifar10",
            load=load_cifar10,
            accepts=lambda path: is_canonical(path) or is_split_tree(path),
            description="CIFAR-10: cifar-10-batches-py folder or .tar.gz, or a train/test/<class>/ image tree",
            default_names=DEFAULT_NAMES,
            download=download_canonical,
            sample=SAMPLE,
            describe=lambda path: describe_canonical(path) if is_canonical(path) else None,
        )
    )
    register(
        DatasetSpec(
            name="imagefolder",
            load=load_imagefolder,
            accepts=lambda path: True,
            fallback=True,
            description="any folder or zip of images: <class>/* (split made here) or train|test/<class>/*",
        )
    )
