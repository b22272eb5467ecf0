"""hepml: run ONNX models locally or on inference servers, compile them to C++,
keep them in a registry and read datasets, over numpy arrays."""
import os
from typing import Any, Dict, List, Optional, Tuple, TypedDict, Union

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


class RemoteSessionStats(TypedDict):
    calls: int
    remote: int
    fallback: int
    failed: int
    batches: int
    mean_batch_size: float


class RemoteSession:
    """A model run by inference servers (Open Inference Protocol over gRPC), with
    the run interface of Session and an optional local fallback model."""

    def __init__(self, servers: List[str], model: str, model_version: str = "", max_batch_size: int = 0,
                 max_delay: float = 0.0005, deadline: float = 10.0, retry_after: float = 1.0,
                 fallback_model_path: str = "", fallback_num_threads: int = 0) -> None: ...

    @property
    def inputs(self) -> List[TensorInfo]: ...

    @property
    def outputs(self) -> List[TensorInfo]: ...

    def run(self, inputs: Dict[str, numpy.ndarray],
            output_names: Optional[List[str]] = None) -> List[numpy.ndarray]:
        """Runs the model on the servers (or the fallback); as Session.run. Raises
        ConnectionError / TimeoutError when no server answers and there is no fallback."""
        ...

    def stats(self) -> RemoteSessionStats: ...

    def close(self) -> None: ...

    def __enter__(self) -> "RemoteSession": ...

    def __exit__(self, *args: Any) -> None: ...


class PrunedLayer(TypedDict):
    node: str
    weight: str
    size: int
    zeros_before: float
    zeros_after: float


class CompileReport(TypedDict):
    name: str
    files: List[str]
    num_steps: int
    kernel_files: List[str]
    arena_bytes: int
    weight_bytes: int
    layers: List[PrunedLayer]
    sparse_layers: List[str]


def compile(model_path: "PathLike", out_dir: "PathLike", *, name: Optional[str] = None, namespace: str = "hepml_generated",
            max_batch: int = 64, dims: Dict[str, int] = ..., embed_weights: bool = False,
            disabled_passes: List[str] = ..., precision: str = "fp32", layer_precision: Dict[str, str] = ...,
            prune: str = "", write_pruned: str = "") -> CompileReport:
    """Compiles an ONNX model into a dependency-free C++17 package in out_dir."""
    ...


class FileEntry(TypedDict):
    name: str
    sha256: str
    size: int


class ModelVersion(TypedDict):
    model: str
    version: int
    ref: str
    files: List[FileEntry]
    inputs: Dict[str, str]
    outputs: Dict[str, str]
    params: Dict[str, str]
    metrics: Dict[str, float]
    tags: Dict[str, str]
    run: Optional[int]
    datasets: List[str]
    code_version: str
    created_by: str
    created_at_ms: int
    aliases: List[str]


class ModelInfo(TypedDict):
    name: str
    description: str
    created_at_ms: int
    latest_version: int


class RunInfo(TypedDict):
    id: int
    name: str
    status: str
    params: Dict[str, str]
    metrics: Dict[str, List[Tuple[int, float]]]
    artifacts: List[FileEntry]
    inputs: List[str]
    model_inputs: List[str]
    host: str
    code_version: str
    created_by: str
    start_ms: int
    end_ms: Optional[int]


class Interval(TypedDict):
    tag: str
    model: str
    version: int
    ref: str
    first_run: int
    last_run: int
    first_time: Optional[int]
    last_time: Optional[int]


PathLike = Union[str, "os.PathLike[str]"]


class Registry:
    """The registry of models, datasets and training runs (Registry(dir) or
    Registry(metadata_uri=..., blob_uri=...))."""

    def __init__(self, dir: Optional["PathLike"] = None, *, metadata_uri: Optional[str] = None,
                 blob_uri: Optional[str] = None, user: str = "", create_if_missing: bool = True,
                 run_hooks: bool = True) -> None: ...

    @property
    def metadata_uri(self) -> str: ...

    @property
    def blob_uri(self) -> str: ...

    def start_run(self, name: str, params: Dict[str, Any] = ..., *, inputs: List[str] = ...,
                  models: List[str] = ..., code_version: str = "") -> int: ...

    def log_param(self, run: int, key: str, value: Any) -> None: ...

    def log_metric(self, run: int, key: str, value: float, step: int = 0) -> None: ...

    def log_artifact(self, run: int, path: "PathLike", name: str = "") -> FileEntry: ...

    def get_artifact(self, run: int, name: str, dest: "PathLike") -> FileEntry: ...

    def end_run(self, run: int, status: str = "finished", *, cpu_seconds: Optional[float] = None,
                gpu_seconds: Optional[float] = None, peak_memory_bytes: Optional[int] = None) -> None: ...

    def get_run(self, run: int) -> RunInfo: ...

    def create_model(self, name: str, description: str = "") -> ModelInfo: ...

    def models(self) -> List[ModelInfo]: ...

    def push(self, model: str, files: Union[PathLike, List[PathLike]], *, params: Dict[str, Any] = ...,
             metrics: Dict[str, float] = ..., tags: Dict[str, str] = ..., run: Optional[int] = None,
             datasets: List[str] = ..., code_version: str = "", version: Optional[int] = None,
             description: str = "") -> ModelVersion:
        """Publishes the next version of model (created when missing) from files."""
        ...

    def get_version(self, model: str, version: int) -> ModelVersion: ...

    def versions(self, model: str) -> List[ModelVersion]: ...

    def set_alias(self, model: str, alias: str, version: int) -> None: ...

    def remove_alias(self, model: str, alias: str) -> None: ...

    def resolve_alias(self, model: str, alias: str) -> ModelVersion: ...

    def resolve_ref(self, ref: str) -> ModelVersion: ...

    def add_interval(self, tag: str, model: str, version: int, first_run: int, last_run: int, *,
                     first_time: Optional[int] = None, last_time: Optional[int] = None) -> None: ...

    def intervals(self, tag: str) -> List[Interval]: ...

    def resolve(self, tag: str, run: int) -> Interval:
        """The interval of IOV tag valid for run."""
        ...

    def pull(self, ref: str, dest: PathLike) -> List[str]:
        """Writes the version's files to dest (a file or a directory); returns the paths."""
        ...


class ColumnInfo(TypedDict):
    name: str
    dtype: str
    shape: List[int]
    jagged: bool
    source_type: str


class DatasetFile(TypedDict):
    url: str
    format: str
    object: str
    num_entries: int
    file_bytes: int


# A batch: column name -> values; a jagged column is (values, offsets), or
# (values, mask) when padded.
Batch = Dict[str, Union[numpy.ndarray, Tuple[numpy.ndarray, numpy.ndarray]]]


class BatchIterator:
    def __iter__(self) -> "BatchIterator": ...

    def __next__(self) -> Batch: ...


class Dataset:
    """Files read as one dataset of typed columns; iterating yields batch dicts."""

    @property
    def schema(self) -> List[ColumnInfo]: ...

    @property
    def num_entries(self) -> int: ...

    @property
    def files(self) -> List[DatasetFile]: ...

    def __len__(self) -> int: ...

    def read(self, start: int, stop: int, *, columns: Optional[List[str]] = None,
             pad_length: Optional[int] = None) -> Batch: ...

    def batches(self, *, batch_size: Optional[int] = None, columns: Optional[List[str]] = None,
                pad_length: Optional[int] = None, entry_start: Optional[int] = None,
                entry_stop: Optional[int] = None) -> BatchIterator: ...

    def __iter__(self) -> BatchIterator: ...


def open_dataset(urls: Union[PathLike, List[PathLike]], *, columns: Optional[List[str]] = None, tree: str = "",
                 format: str = "auto", batch_size: int = 1024, pad_length: int = 0, entry_start: int = 0,
                 entry_stop: int = -1, csv_separator: Optional[str] = None) -> Dataset:
    """Opens ROOT, .npy/.npz, CSV or HDF5 files (paths, file:// or root:// URLs) as one Dataset."""
    ...
