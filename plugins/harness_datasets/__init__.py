"""Built-in datasets, registered through the same hook as any third-party plugin."""
from harness import DatasetSpec, hookimpl
from harness.data import sources
from harness.data.cache import cached_images


def load_cifar10(path, size=None):
    """CIFAR-10 from its canonical pickled batches (folder or .tar.gz) or a train/test image tree."""
    if sources.is_canonical(path):
        return cached_images(path, "cifar10-canonical", 32, lambda: sources.read_canonical(path))
    return cached_images(path, "split-image-tree", size, lambda: sources.read_split_image_tree(path, size))


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name="cifar10",
            load=load_cifar10,
            accepts=lambda path: sources.is_canonical(path) or sources.is_split_image_tree(path),
            description="CIFAR-10: cifar-10-batches-py folder or .tar.gz, or a train/test/<class>/ image tree",
        )
    )
