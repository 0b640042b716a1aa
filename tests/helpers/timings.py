"""What changes from one run of the same seeded work to the next: clock readings, and what the
machine's other processes left to each timed phase."""
import re

CLOCK = re.compile(r"^(time_s|train_time_s|wall_time_s|train_img_s|eval_img_s|eval_time_s|to_val_\d+_s|cores|"
                   r"eval_cores|busy)$")


def without_timings(row):
    """``row`` (a dict, or a list of them, nested as metrics.json nests its stages) without them."""
    if isinstance(row, dict):
        return {key: without_timings(value) for key, value in row.items() if not CLOCK.match(key)}
    if isinstance(row, list):
        return [without_timings(value) for value in row]
    return row
