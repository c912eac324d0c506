"""Type stubs of lamp._core, the compiled C core (one section per area)."""
import numpy as np
import numpy.typing as npt

# --- events ---------------------------------------------------------------
def check_sequences(
    times: npt.ArrayLike, marks: npt.ArrayLike, offsets: npt.ArrayLike, num_types: int
) -> None: ...
