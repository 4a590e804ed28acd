"""The data layer: LLaMA-Factory's registry and dataset files -> validated samples -> subsets.

``registry`` reads and updates ``dataset_info.json``; ``resolve`` turns an entry into a
``DatasetSpec``; ``readers`` yields raw rows; ``convert`` makes each row a ``Sample`` (``sample``),
``validate`` lists its problems and ``sources`` its image source; ``load`` reads whole datasets;
``subsets`` writes a selection back as registered datasets.
"""
