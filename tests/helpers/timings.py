"""What changes from one run of the same seeded work to the next: clock readings."""
import re

CLOCK = re.compile(r"^(time_s|train_time_s|wall_time_s|train_img_s|eval_img_s|eval_time_s|to_val_\d+_s)$")


def without_timings(row: dict) -> dict:
    return {key: value for key, value in row.items() if not CLOCK.match(key)}
