"""Stable-Baselines3 students under a teacher: the loop SB3 is extended with, whole runs, comparisons, analysis,
kickstarting and distillation.

The public surface, for one's own SB3 training script::

    from stable_baselines3 import PPO
    import curriculum, environments, students

    teacher = curriculum.teacher_for("alp-gmm", environments.make_env("point-mass"), seed=0)
    env = students.make_vec_env("point-mass", n_envs=4, seed=0)
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=128, seed=0)
    model.learn(1024, callback=students.CurriculumCallback(teacher, env=env, student=model))

and for a whole run (evaluation, checkpoints, resume, TensorBoard), the one ``cli.py run`` makes::

    result = students.train(students.RunConfig(env="point-mass", teacher="alp-gmm", steps=20_000), "runs/pm")
    result.mastered_pct, result.evaluations()  # a float, a pandas DataFrame
"""

from students.loop.curriculum import CurriculumCallback, student_problem
from students.loop.vec_env import make_vec_env
from students.run.public import ProgressDisplay, RunResult, train
from students.run.train import ResolvedRun, RunConfig, RunError

__all__ = [
    "CurriculumCallback",
    "ProgressDisplay",
    "ResolvedRun",
    "RunConfig",
    "RunError",
    "RunResult",
    "make_vec_env",
    "student_problem",
    "train",
]
