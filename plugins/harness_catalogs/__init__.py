"""Any architecture by name: ``timm:<name>`` for every model timm builds, ``tv:<name>`` for
torchvision's classification models. Both answer the ``resolve_model`` hook, as a third-party
catalog (a company's own zoo, say) would, and register a ``CatalogSpec`` for ``harness list --catalog``."""
from harness import CatalogSpec, hookimpl

from harness_catalogs import timm_catalog, tv_catalog

CATALOGS = {"timm": timm_catalog, "tv": tv_catalog}


@hookimpl
def resolve_model(name):
    prefix, sep, arch = name.partition(":")
    if sep and prefix in CATALOGS:
        return CATALOGS[prefix].spec(arch)
    return None


@hookimpl
def register_catalogs(register):
    for prefix, catalog in CATALOGS.items():
        register(CatalogSpec(name=prefix, names=catalog.names, description=catalog.DESCRIPTION))
