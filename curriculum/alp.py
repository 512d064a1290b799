"""Absolute-learning-progress (ALP) estimation from a history of (task, return) pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree


class NearestNeighbourALP:
    """ALP of an episode = |its return - the return stored for the nearest earlier task| (ALP-GMM's estimator).

    Tasks should be given normalised to [0, 1] per dimension, so that no dimension dominates the distance.
    The history grows without bound, so lookups use a k-d tree over an older prefix of the history plus a
    brute-force scan of the newer tail; the tree is rebuilt when the tail reaches ``max(256, prefix / 16)``
    points, which keeps both the amortised rebuild cost and the scan short. Points are stored one dimension
    per row, so the scan works on contiguous vectors.

    :param dim: task dimension
    :param min_history: ALP is 0 until this many earlier episodes exist
    """

    def __init__(self, dim: int, min_history: int = 5) -> None:
        self.dim = dim
        self.min_history = min_history
        self._points = np.empty((dim, 1024))
        self._returns = np.empty(1024)
        self._n = 0
        self._n_tree = 0
        self._tree: cKDTree | None = None

    def __len__(self) -> int:
        return self._n

    def compute_and_add(self, point: np.ndarray, episode_return: float) -> float:
        """ALP of ``episode_return`` on ``point`` against the nearest earlier point; then store the pair."""
        alp = 0.0
        if self._n >= self.min_history:
            alp = abs(episode_return - self._returns[self._nearest(point)])
        self._add(point, episode_return)
        return alp

    def _nearest(self, point: np.ndarray) -> int:
        best, best_d2 = -1, np.inf
        if self._tree is not None:
            dist, best = self._tree.query(point)
            best_d2 = dist * dist
        if self._n > self._n_tree:
            tail = self._points[:, self._n_tree : self._n]
            d2 = (tail[0] - point[0]) ** 2
            for k in range(1, self.dim):
                d2 += (tail[k] - point[k]) ** 2
            i = int(np.argmin(d2))
            if d2[i] < best_d2:
                best = self._n_tree + i
        return int(best)

    def _add(self, point: np.ndarray, episode_return: float) -> None:
        if self._n == len(self._returns):
            self._points = np.concatenate([self._points, np.empty_like(self._points)], axis=1)
            self._returns = np.concatenate([self._returns, np.empty_like(self._returns)])
        self._points[:, self._n] = point
        self._returns[self._n] = episode_return
        self._n += 1
        if self._n - self._n_tree >= max(256, self._n_tree // 16):
            self._rebuild(self._n)

    def _rebuild(self, n_tree: int) -> None:
        self._n_tree = n_tree
        self._tree = cKDTree(self._points[:, :n_tree].T.copy()) if n_tree else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "points": self._points[:, : self._n].T.copy(),
            "returns": self._returns[: self._n].copy(),
            "n_tree": self._n_tree,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        points, returns = np.asarray(state["points"]), np.asarray(state["returns"])
        capacity = max(1024, 1 << int(np.ceil(np.log2(max(len(points), 1)))) + 1)
        self._points = np.empty((self.dim, capacity))
        self._returns = np.empty(capacity)
        self._n = len(points)
        self._points[:, : self._n] = points.T
        self._returns[: self._n] = returns
        self._rebuild(int(state["n_tree"]))

    # Pickling and deep copies carry the history, not the derived k-d tree.
    def __getstate__(self) -> dict[str, Any]:
        return {"dim": self.dim, "min_history": self.min_history, **self.state_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["dim"], state["min_history"])  # type: ignore[misc]
        self.load_state_dict(state)
