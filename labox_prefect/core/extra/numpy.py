"""numpy arrays in numpy's own ``.npy`` format, read without pickle.

The format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html) keeps
the shape, the dtype (byte order, datetime64/timedelta64 units, complex, fixed-width str and
bytes, structured records) and Fortran order. Object arrays would need pickle: they are
refused when saving, and ``allow_pickle=False`` refuses them when loading.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from labox_prefect.core.errors import SerializationError
from labox_prefect.core.serializer import SerializedData, Serializer

NPY_CONTENT_TYPE = "application/x-npy"
"""The MIME type numpy's documentation and most tools use for ``.npy`` files."""


class NpyArraySerializer(Serializer[np.ndarray[Any, Any]]):
    """A numpy ndarray as one ``.npy`` file (format version 1.0, or 2.0/3.0 if needed).

    Raises SerializationError for subclasses of ndarray (np.matrix, masked arrays: they
    would load back as plain arrays) and for dtypes that hold Python objects, anywhere
    in a structured dtype too; the message names the dtype and a fix.
    """

    name = "labox.numpy.npy@v1"
    types = (np.ndarray,)
    content_types = (NPY_CONTENT_TYPE,)

    def serialize_data(self, value: np.ndarray[Any, Any], /) -> SerializedData:
        if type(value) is not np.ndarray:
            raise SerializationError(
                f"{self.name} writes numpy.ndarray, not {type(value).__module__}."
                f"{type(value).__qualname__}, which would load back as a plain ndarray; "
                f"convert it (numpy.asarray(value)) or pick a serializer for it."
            )
        if value.dtype.hasobject:
            raise SerializationError(
                f"{self.name}: the array has the dtype {value.dtype}, which holds Python "
                f"objects that .npy keeps only with pickle; give it a numeric, str or bytes "
                f"dtype (e.g. value.astype(str)), or store its items as a list."
            )
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return SerializedData(data=buffer.getvalue(), content_type=NPY_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> np.ndarray[Any, Any]:
        try:
            array = np.load(io.BytesIO(content.data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise SerializationError(
                f"{self.name} cannot read this content as a .npy array ({error}); the "
                f"content is corrupted, truncated or was not written by {self.name}."
            ) from None
        if not isinstance(array, np.ndarray):  # np.load also opens .npz archives
            array.close()
            raise SerializationError(
                f"{self.name}: this content is a {type(array).__name__}, not one .npy array; "
                f"it was not written by {self.name}."
            )
        return array


npy_array_serializer = NpyArraySerializer()
"""numpy arrays as ``.npy`` bytes, without pickle."""

__all__ = ["NpyArraySerializer", "npy_array_serializer"]
