"""What the convergence figures draw, against the table they are drawn from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metamers.figures import iterations_vs_distance, pass_by_iteration


def _rows() -> pd.DataFrame:
    """metamer_test.csv rows: 2 methods x 1 generator x 2 layers x 4 images, two measured layers each
    (only the generation layer's row counts)."""
    frames = []
    first = {("fast", "relu1"): [10, 20, 30, -1], ("slow", "relu1"): [100, 300, -1, -1],
             ("fast", "relu3"): [40, 40, 50, 60], ("slow", "relu3"): [-1, -1, -1, 900]}
    for (method, layer), passes in first.items():
        for measured in ("relu1", "relu3"):
            frames.append(pd.DataFrame({
                "method": method, "generator": "g", "layer": layer, "layer_index": ["relu1", "relu3"].index(layer),
                "image_id": [f"i{k}" for k in range(4)], "measured_layer": measured, "statistic": "pearson",
                "pass_iteration": passes if measured == layer else [7, 7, 7, 7],  # other layers' rows: ignored
                "metamer_l2": np.arange(4) + (0.5 if method == "fast" else 5.0),
            }))
    return pd.concat(frames, ignore_index=True)


def test_pass_by_iteration_draws_the_cumulative_share_of_images_that_passed():
    fig = pass_by_iteration(_rows())
    drawn = {(ax.get_title(), line.get_label()): line for ax in fig.axes for line in ax.get_lines()}
    fast1 = drawn[("g · relu1", "fast")]
    np.testing.assert_array_equal(fast1.get_xdata()[1:4], [10, 20, 30])
    np.testing.assert_allclose(fast1.get_ydata(), [0, 25, 50, 75, 75])  # 3 of 4 passed, the 4th never
    np.testing.assert_allclose(drawn[("g · relu3", "slow")].get_ydata(), [0, 25, 25])
    assert all(ax.get_xscale() == "log" for ax in fig.axes if ax.get_lines())


def test_iterations_vs_distance_has_one_point_per_passing_image():
    fig = iterations_vs_distance(_rows())
    points = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    assert len(points) == 3 + 2 + 4 + 1  # the images that passed at their generation layer
    expected = sorted([(0.5, 10), (1.5, 20), (2.5, 30), (5.0, 100), (6.0, 300), (0.5, 40), (1.5, 40), (2.5, 50),
                       (3.5, 60), (8.0, 900)])
    assert sorted(map(tuple, points.tolist())) == expected
    assert fig.axes[0].get_xlabel().startswith("pixel L2 distance")


def test_layer_markers_follow_depth_when_a_joint_generator_starts_deeper():
    rows = _rows()
    joint = rows[rows["layer"] == "relu3"].assign(generator="joint", layer_index=0)
    fig = iterations_vs_distance(pd.concat([joint, rows], ignore_index=True))
    labels = fig.legends[0].texts if fig.legends else []
    names = [t.get_text() for t in labels]
    assert names.index("relu1") < names.index("relu3")
