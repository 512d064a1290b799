"""A run folder's layout: the name of every file a run, a distillation or a comparison's worker keeps there, in
one place: the library and ``bench/`` join these names and spell none of them (tests and
``bench/kill_resume.py`` spell them, to check the layout from outside).

Run folder (``out``, by default ``results/<experiment>/<env>/<teacher>/<student>/seed<k>/``)::

    config.yaml        resolved settings (hyperparameters included); a resume must match them
    distill.yaml       a distillation's own settings (beside the config.yaml of its student)
    tb/                TensorBoard events (SB3's scalars, eval/*, curriculum/*; distill/* for a distillation)
    eval.csv           per-task evaluation rows, appended (a resume drops the rows written after its checkpoint)
    eval_target.csv    with --target-episodes: a row per evaluation of SPDL's target-distribution protocol, likewise
    checkpoint/        model.zip, state.pkl (teacher, curriculum loop, evaluator, sub-environments, random generators),
                       teacher.pkl (the teacher alone), progress.json, replay_buffer.pkl (off-policy students, unless
                       save_replay_buffer is off); swapped in whole at every save (checkpoint.next/, checkpoint.old/
                       while it is swapped) so that a crash never leaves a half-written checkpoint
    model.zip, teacher.pkl, metrics.json   at the end (metrics: an evaluation of the final model)
    antagonist.zip, adversary.pt   PAIRED and CLUTR: the antagonist student and the adversary's network (state
                       dict), at the end and in checkpoint/ (the adversary inside the teacher's state there)
    vae.pt             CLUTR: its task VAE (state dict; --teacher-param vae=PATH reuses it)
    request.yaml, status.json, run.log, error.txt   a comparison's worker: the run it was asked for, its progress,
                       its output, and what stopped it
    .lock              held while a process uses the folder
"""

CONFIG = "config.yaml"
DISTILL = "distill.yaml"
TB = "tb"
EVAL = "eval.csv"
EVAL_TARGET = "eval_target.csv"
MODEL = "model.zip"
ANTAGONIST = "antagonist.zip"
ADVERSARY = "adversary.pt"
VAE = "vae.pt"
TEACHER = "teacher.pkl"
METRICS = "metrics.json"
REQUEST = "request.yaml"
STATUS = "status.json"
LOG = "run.log"
ERROR = "error.txt"
LOCK = ".lock"

CHECKPOINT, STAGING, PREVIOUS = "checkpoint", "checkpoint.next", "checkpoint.old"
# inside a checkpoint (beside its own MODEL and TEACHER)
STATE = "state.pkl"
REPLAY_BUFFER = "replay_buffer.pkl"
PROGRESS = "progress.json"  # written last into a staged checkpoint: the mark of a complete one
