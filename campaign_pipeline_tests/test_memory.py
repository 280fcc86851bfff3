"""release_memory hands freed pages back to the operating system.

Each case runs in a fresh interpreter, so what the allocators hold at the start is known: a
few hundred MB of pieces too small for glibc to map on their own (numpy) or taken from
Arrow's pool are allocated and dropped, which leaves them in the process; releasing must
bring the resident size back down.
"""

import subprocess
import sys
import textwrap

import pytest

CASE = textwrap.dedent(
    """
    import sys

    import numpy as np
    import pyarrow as pa

    from campaign_pipeline.memory import release_memory


    def resident_mb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024


    base = resident_mb()
    if sys.argv[1] == "numpy":
        survivors = []  # a live piece every so often keeps the freed ones inside the heap
        pieces = []
        for i in range(2500):
            pieces.append(np.ones(12_000))  # 96 kB: below glibc's mmap threshold
            if i % 100 == 0:
                survivors.append(np.ones(10))
    else:
        pieces = [pa.array(np.arange(20_000, dtype=np.int64) * 1.5) for _ in range(1500)]
    del pieces
    held = resident_mb() - base
    release_memory()
    print(held, resident_mb() - base)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("allocator", ["numpy", "arrow"])
def test_release_returns_freed_memory(allocator):
    out = subprocess.run(
        [sys.executable, "-c", CASE, allocator], capture_output=True, text=True, check=True
    ).stdout.split()
    held, after = float(out[0]), float(out[1])
    assert held > 100, f"the case should leave freed memory in the process ({held:.0f} MB)"
    assert after < held - 80, f"{held:.0f} MB held after freeing, {after:.0f} MB after release"
