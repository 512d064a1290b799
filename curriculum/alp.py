"""Absolute-learning-progress (ALP) estimation from a history of (task, return) pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree


class NearestNeighbourALP:
    """ALP of an episode = |its return - the return stored for the nearest earlier task| (ALP-GMM's estimator).

    Tasks should be given normalised to [0, 1] per dimension, so that no dimension dominates the distance.
    Episodes are added in batches (a teacher needs ALPs only when it fits, every few hundred episodes): each
    episode of a batch is compared with every earlier episode, those of the same batch included, exactly as
    if they had been added one by one. The history grows without bound, so an older prefix of it sits in a
    k-d tree queried once per batch, and the newer tail is compared by brute force; the tree is rebuilt when
    the tail reaches ``max(256, prefix / 16)`` points.

    :param dim: task dimension
    :param min_history: ALP is 0 until this many earlier episodes exist (6: teachDeepRL computes ALP once its
        history holds more than 5 points)
    """

    def __init__(self, dim: int, min_history: int = 6) -> None:
        self.dim = dim
        self.min_history = min_history
        self._points = np.zeros((1024, dim))
        self._returns = np.zeros(1024)
        self._n = 0
        self._n_tree = 0
        self._tree: cKDTree | None = None

    def __len__(self) -> int:
        return self._n

    def compute_and_add(self, points: np.ndarray, returns: np.ndarray) -> np.ndarray:
        """ALPs of a batch of episodes (in order) against their nearest earlier episode; then store them.

        :param points: (m, dim) normalised tasks, in the order the episodes finished
        :param returns: (m,) their returns
        :return: (m,) absolute learning progress of each episode
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, self.dim)
        returns = np.asarray(returns, dtype=np.float64).reshape(-1)
        m = len(points)
        best_d2 = np.full(m, np.inf)
        best_return = np.zeros(m)
        if self._tree is not None:
            dist, index = self._tree.query(points)
            best_d2, best_return = dist * dist, self._returns[index]
        # earlier episodes not in the tree, then this batch's own earlier episodes
        candidates = np.concatenate([self._points[self._n_tree : self._n], points])
        candidate_returns = np.concatenate([self._returns[self._n_tree : self._n], returns])
        n_tail = self._n - self._n_tree
        if len(candidates) > 0:
            d2 = (
                (points * points).sum(axis=1)[:, None]
                - 2.0 * points @ candidates.T
                + (candidates * candidates).sum(axis=1)[None, :]
            )
            later = np.arange(len(candidates))[None, :] >= n_tail + np.arange(m)[:, None]
            d2[later] = np.inf  # a batch episode only sees the episodes before it
            nearest = d2.argmin(axis=1)
            closer = d2[np.arange(m), nearest] < best_d2
            best_return = np.where(closer, candidate_returns[nearest], best_return)
        alps = np.abs(returns - best_return)
        alps[self._n + np.arange(m) < self.min_history] = 0.0
        self._add(points, returns)
        return alps

    def _add(self, points: np.ndarray, returns: np.ndarray) -> None:
        needed = self._n + len(points)
        if needed > len(self._returns):
            capacity = max(needed, 2 * len(self._returns))
            self._points = np.concatenate([self._points[: self._n], np.zeros((capacity - self._n, self.dim))])
            self._returns = np.concatenate([self._returns[: self._n], np.zeros(capacity - self._n)])
        self._points[self._n : needed] = points
        self._returns[self._n : needed] = returns
        self._n = needed
        if self._n - self._n_tree >= max(256, self._n_tree // 16):
            self._rebuild(self._n)

    def _rebuild(self, n_tree: int) -> None:
        self._n_tree = n_tree
        self._tree = cKDTree(self._points[:n_tree].copy()) if n_tree else None

    def state_dict(self) -> dict[str, Any]:
        return {"points": self._points[: self._n].copy(), "returns": self._returns[: self._n].copy(), "n_tree": self._n_tree}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._n = 0
        self._add(np.asarray(state["points"]).reshape(-1, self.dim), np.asarray(state["returns"]).reshape(-1))
        self._rebuild(int(state["n_tree"]))

    # Pickling and deep copies carry the history, not the derived k-d tree.
    def __getstate__(self) -> dict[str, Any]:
        return {"dim": self.dim, "min_history": self.min_history, **self.state_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["dim"], state["min_history"])  # type: ignore[misc]
        self.load_state_dict(state)
