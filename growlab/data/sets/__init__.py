"""growlab's built-in data sets. Each module here registers its own with
`growlab.data.registry.register_dataset`; importing this package imports every module in it, so
a new built-in data set is one module here plus one YAML in conf/data/, and no list to extend."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
