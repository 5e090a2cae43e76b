"""Importers of public datasets into clip stores (``retf data import``)."""
from retf_ros.data.readers.futr import import_futr
from retf_ros.data.readers.ntu import import_ntu
from retf_ros.data.readers.utkinect import import_utkinect

__all__ = ["import_futr", "import_ntu", "import_utkinect"]
