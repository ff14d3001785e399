"""Result files the recipes and benchmarks write.

Kept free of TensorFlow so that `benchmarks/pretraining_budget.py run` can
use it on machines that have only keras and keras-hub.
"""

import json
import os


def write_json(path, data):
    """Writes `data` as indented JSON to `path` (folders made) atomically.

    The JSON goes to `path + ".partial"` first and is then renamed, so a
    failure leaves the previous file or none, never half of one.

    Example:

    ```python
    import tempfile

    path = os.path.join(tempfile.mkdtemp(), "scores.json")
    write_json(path, {"accuracy": 0.75})
    ```
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = path + ".partial"
    try:
        with open(partial, "w") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
    except BaseException:
        if os.path.exists(partial):  # open() itself may have failed
            os.remove(partial)
        raise
    os.replace(partial, path)
