"""ALP-GMM (Portelas et al., CoRL 2019): Gaussian mixtures over (task, absolute learning progress)."""

from __future__ import annotations

import numpy as np

from curriculum.alp import NearestNeighbourALP
from curriculum.gmm import GaussianMixture
from curriculum.gmm_teacher import GmmTeacher


class AlpGmmTeacher(GmmTeacher):
    """ALP-GMM: sample tasks from the Gaussians of a mixture over [task, ALP] with the highest mean ALP.

    An episode's ALP is |its normalised return - the return of the nearest earlier task|. Every
    ``fit_rate`` episodes, mixtures with ``min_k..max_k`` components are fitted on the last ``fit_rate``
    [task, ALP] points and the best by ``criterion`` is kept; a component is then chosen in proportion to its
    mean ALP. Uniform tasks during the first ``fit_rate`` episodes and with probability ``random_task_ratio``.

    Deviations from the reference implementation, each measured or a plain fix:

    - tasks are normalised to [0, 1] per dimension before nearest-neighbour search and fitting (the
      reference uses raw units, so a wide dimension dominates distances);
    - EM is a vectorised numpy implementation (``curriculum.gmm``), ~10x cheaper than scikit-learn's;
    - the nearest-neighbour history is a k-d tree with a scanned tail, rebuilt rarely (incremental), and
      ALPs are computed for a whole window at fit time, the only time they are used (same values).

    As in the reference, an episode's ALP is 0 until more than 5 earlier episodes exist (``min_history`` 6; an
    earlier version used 5: the toy benchmark gives 37.7 ± 2.1 % mastered at 20k episodes either way).

    Tried without gain on the toy benchmark (3 seeds, % mastered at 20k episodes; default 37.7):
    TeachMyAgent's tuned ``fit_rate=150`` (33.0) and with ``random_task_ratio=0.05`` (29.0), ``fit_rate=100``
    (36.0), ALP against the mean of the 5 or 20 nearest earlier tasks (37.0, 36.3). ``criterion="bic"``
    reached 40.7 ± 3.7, within noise of the default, so the reference's AIC stays.

    :param fit_rate: episodes between two mixture fits; also the size of the fitted window
    :param random_task_ratio: probability of a uniform task once mixtures are fitted
    :param min_k: fewest mixture components tried
    :param max_k: most mixture components tried
    :param criterion: model selection criterion: aic, bic or aicc
    """

    state_attrs = (*GmmTeacher.state_attrs, "_alp")

    def _init_estimators(self) -> None:
        self._alp = NearestNeighbourALP(self.task_space.dim)

    def _fit_points(self, unit_tasks: np.ndarray, returns: np.ndarray) -> np.ndarray:
        return np.column_stack([unit_tasks, self._alp.compute_and_add(unit_tasks, returns)])

    def _learning_progress(self, gmm: GaussianMixture) -> np.ndarray:
        return np.maximum(gmm.means[:, -1], 0.0)
