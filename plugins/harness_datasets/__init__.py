"""Built-in datasets, registered through the same hook as any third-party plugin."""
from harness import DatasetSpec, hookimpl
from harness.data import folders, sources
from harness.data.cache import cached_images


def load_cifar10(path, size=None):
    """CIFAR-10 at its native 32 px (models of other sizes are fed batches resized on the fly),
    from the canonical pickled batches (folder or .tar.gz) or a train/test image tree."""
    if sources.is_canonical(path):
        return cached_images(path, "cifar10-canonical", 32, lambda files: sources.read_canonical(path))
    return cached_images(path, "image-tree", None, lambda files: folders.read_tree(path, None, allocate=files.allocate))


def load_imagefolder(path, size=None):
    """Any image folder or zip, every image resized to the model's input size when it is decoded."""
    return cached_images(path, "image-tree", size, lambda files: folders.read_tree(path, size, allocate=files.allocate))


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name="cifar10",
            load=load_cifar10,
            accepts=lambda path: sources.is_canonical(path) or folders.is_split_tree(path),
            description="CIFAR-10: cifar-10-batches-py folder or .tar.gz, or a train/test/<class>/ image tree",
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
