"""Data for the course: raw data sets (sources.py) and where their files live (folders.py)."""

from .sources import (
    DATASET_NAMES,
    NUM_CLASSES,
    USPS_SOURCES,
    DataCorruptError,
    DataMissingError,
    RawDataset,
    cache_root,
    clear_cache,
    data_report,
    data_root,
    load_dataset,
)
