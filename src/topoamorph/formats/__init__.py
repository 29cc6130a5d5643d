"""On-disk formats, one module each: its reader, its writer and its format/version check.

- ``frames``: extxyz structures (the only extxyz reader and writer: read, check, count, index, energy)
- ``diagrams``: persistence diagrams of one homology batch (HDF5, ``topoamorph-diagrams/1``)
- ``dataset``: the descriptor matrix, targets and per-frame metadata (HDF5, ``topoamorph-dataset/1``)
- ``features``: SOAP and RDF features of the dataset rows (HDF5, ``topoamorph-structure-features/1``)
- ``predictions``: per-frame predictions of a model (CSV with a provenance line)
- ``trace``: the temperature/energy trace of a melt-quench run (CSV with a provenance line)
- ``checkpoint``: resumable state of a long job (``.npz``, ``topoamorph-checkpoint/1``)

These modules import only the base layer (errors, units, io, provenance); every other module of
topoamorph reads and writes files through them.
"""
