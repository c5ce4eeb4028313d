"""Task sets and their ordered labels.

Label order is the research code's index order (docs/spec.md §5, §10d); keep it so research
checkpoints import unchanged. Task 1 flows through the research `head_modality`, task 2 through
`head_location`, for both task sets.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSetSpec:
    """Two classification tasks read from one fused image+text vector."""

    name: str
    tasks: tuple[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]]

    @property
    def task_names(self) -> tuple[str, str]:
        return (self.tasks[0][0], self.tasks[1][0])

    def labels(self, task: str) -> tuple[str, ...]:
        for name, labels in self.tasks:
            if name == task:
                return labels
        raise KeyError(f"task set {self.name!r} has no task {task!r}; tasks: {self.task_names}")


TASK_SETS: dict[str, TaskSetSpec] = {
    "medpix": TaskSetSpec(
        name="medpix",
        tasks=(
            ("modality", ("CT", "MR")),
            (
                "location",
                (
                    "Abdomen",
                    "Head",
                    "Reproductive and Urinary System",
                    "Thorax",
                    "Spine and Muscles",
                ),
            ),
        ),
    ),
    "wound": TaskSetSpec(
        name="wound",
        tasks=(
            (
                "type",
                (
                    "Abrasion",
                    "Bruises",
                    "Burn",
                    "Cut",
                    "Diabetic",
                    "Laceration",
                    "Normal",
                    "Pressure",
                    "Surgical",
                    "Venous",
                ),
            ),
            ("severity", ("Mild", "Moderate", "Severe")),
        ),
    ),
}


def task_set(name: str) -> TaskSetSpec:
    """Look a task set up by name, failing with the list of valid names."""
    try:
        return TASK_SETS[name]
    except KeyError:
        raise KeyError(f"unknown task set {name!r}; valid: {sorted(TASK_SETS)}") from None
