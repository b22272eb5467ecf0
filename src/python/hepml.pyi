"""hepml: run ONNX models (hepml::Session) on numpy arrays."""
from typing import Dict, List, Optional, TypedDict, Union

import numpy


class TensorInfo(TypedDict):
    name: str
    dtype: str
    shape: Optional[List[Union[int, str, None]]]
    kind: str


class Session:
    """An ONNX model ready to run. Usable from several threads at once."""

    def __init__(self, path: str, num_threads: int = 0, optimize: bool = True, precision: str = "fp32",
                 disabled_passes: List[str] = ...) -> None: ...

    @property
    def inputs(self) -> List[TensorInfo]: ...

    @property
    def outputs(self) -> List[TensorInfo]: ...

    @property
    def weight_bytes(self) -> int: ...

    def run(self, inputs: Dict[str, numpy.ndarray],
            output_names: Optional[List[str]] = None) -> List[numpy.ndarray]:
        """Runs the model; arrays must have the inputs' dtypes and be C-contiguous
        (used in place). Returns read-only arrays over hepml's buffers."""
        ...
