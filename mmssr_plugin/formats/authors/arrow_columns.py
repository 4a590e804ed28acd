"""Reading Arrow columns into numpy without pandas: values, the non-null mask, distinct strings.

pyarrow's own ``to_numpy`` imports pandas (0.3 s and 40 MB) when it is installed, and
``is_valid().to_numpy()`` is slow; these read the buffers directly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def distinct_codes(column: pa.Array) -> tuple[list[str | None], np.ndarray]:
    """Distinct strings of a column and each row's code into them (nulls get ``len(distinct)``)."""
    encoded = pc.dictionary_encode(column)
    distinct = encoded.dictionary.to_pylist()
    codes = to_numpy(encoded.indices, np.int32).astype(np.int64)
    codes[~valid_mask(encoded.indices)] = len(distinct)
    return distinct, codes


def valid_mask(array: pa.Array) -> np.ndarray:
    """Bool mask of the non-null entries (unpacked from the bitmap; ``is_valid().to_numpy()`` is slow)."""
    if not array.null_count:
        return np.ones(len(array), dtype=bool)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].astype(bool)


def to_numpy(array: pa.Array | pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray:
    """A fixed-width Arrow array's values as numpy, read from its buffer (null slots: any value).

    pyarrow's own ``to_numpy`` imports pandas (0.3 s and 40 MB) when it is installed.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    data = array.buffers()[1]
    if data is None or len(array) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype)[array.offset : array.offset + len(array)]
