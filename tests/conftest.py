import sys
from pathlib import Path

# Tests import the project from the checkout, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# One torch thread per test process: the suite's networks are tiny, and on a 2-core machine (CI) extra threads
# only spin against each other and against the comparisons some tests start in subprocesses.
import torch

torch.set_num_threads(1)
