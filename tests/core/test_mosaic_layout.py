"""Tiling a layer to a pane: same tiles as channel_mosaic, shared scaling, sorting, hit-testing."""
import numpy as np
import pytest
import torch

from convviz.core.views.colormaps import lookup_table
from convviz.core.views.mosaic import GAP_INDEX, channel_mosaic, grid_shape, indexed_lut, to_rgb8
from convviz.core.views.mosaic_layout import columns_for, layout_for, tile_indices, tile_maps


def to_indexed(mosaic: np.ndarray) -> np.ndarray:
    """The reference 8-bit mosaic: ``round(x·254)`` of the clipped [0, 1] values, NaN (gaps) → GAP_INDEX."""
    mosaic = np.asarray(mosaic, dtype=np.float32)
    scaled = np.rint(np.multiply(np.clip(mosaic, 0.0, 1.0), 254.0))
    scaled[np.isnan(mosaic)] = GAP_INDEX
    return scaled.astype(np.uint8)


@pytest.fixture
def maps():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 10, 3)
    with torch.no_grad():
        return conv(torch.randn(1, 3, 9, 7))[0].numpy()  # (10, 7, 5)


def test_index_order_per_channel_equals_the_square_mosaic(maps):
    _, cols = grid_shape(10, 7 / 5)
    layout = layout_for(maps, cols)
    np.testing.assert_allclose(tile_maps(maps, layout), channel_mosaic(maps), equal_nan=True, atol=1e-6)


def test_shared_scaling_uses_the_layers_range(maps):
    layout = layout_for(maps, 4, per_channel=False)
    tiled = tile_maps(maps, layout)
    lo, hi = maps.min(), maps.max()
    for channel in (0, 5, 9):
        y, x = layout.origin(channel)
        np.testing.assert_allclose(tiled[y:y + 7, x:x + 5], (maps[channel] - lo) / (hi - lo), atol=1e-6)
    assert np.nanmax(tiled) == pytest.approx(1.0) and np.nanmin(tiled) == pytest.approx(0.0)


@pytest.mark.parametrize("order", ["mean", "max"])
def test_sorted_tiles_and_hit_testing(maps, order):
    layout = layout_for(maps, 3, order=order)
    key = maps.reshape(10, -1).mean(1) if order == "mean" else maps.reshape(10, -1).max(1)
    first = [layout.channel_at(p) for p in range(10)]
    assert first == list(np.argsort(-key, kind="stable"))
    assert np.all(np.diff(key[first]) <= 0)
    tiled = tile_maps(maps, layout)
    for channel in range(10):
        y, x = layout.origin(channel)
        assert layout.unit_at(y + 6, x + 4) == (channel, 6, 4)
        lo, hi = maps[channel].min(), maps[channel].max()
        np.testing.assert_allclose(tiled[y:y + 7, x:x + 5], (maps[channel] - lo) / (hi - lo), atol=1e-6)
    assert layout.tile_at(7, 0) is None  # the gap row
    assert layout.tile_at(0, 3 * 6) is None  # right of the last column


def test_columns_follow_the_pane():
    assert columns_for(32, (112, 112), 1000, 250) == 11  # 11×3 tiles of 83 px beat 8×4 of 55 px
    assert columns_for(32, (112, 112), 250, 1000) == 3
    assert columns_for(16, (10, 10), 1000, 1000) == 4
    wide, tall = columns_for(1280, (7, 7), 900, 300), columns_for(1280, (7, 7), 300, 900)
    assert wide > tall
    assert columns_for(1, (5, 5), 10, 10) == 1


def test_indexed_mosaic_draws_the_colours_of_its_values_and_transparent_gaps():
    lut = lookup_table("viridis")
    mosaic = np.array([[0.0, 0.25, np.nan], [0.5, 1.0, 0.999]], dtype=np.float32)
    indices = to_indexed(mosaic)
    assert indices.dtype == np.uint8 and indices.tolist() == [[0, 64, GAP_INDEX], [127, 254, 254]]
    table = indexed_lut(lut)
    assert table.shape == (256, 4) and table[GAP_INDEX, 3] == 0 and (table[:GAP_INDEX, 3] == 255).all()
    drawn = table[indices][..., :3]
    exported = to_rgb8(mosaic, lut)  # the PNG export's colours (256 levels)
    assert (drawn[0, 0] == lut[0]).all() and (drawn[1, 1] == lut[255]).all()
    steps = np.abs(np.arange(255) * 255 / 254 - np.rint(np.arange(255) * 255 / 254))
    assert steps.max() <= 0.5  # every index shows the colormap entry nearest its value
    both = ~np.isnan(mosaic)
    assert np.abs(drawn[both].astype(int) - exported[both].astype(int)).max() <= np.abs(np.diff(lut.astype(int), axis=0)).max()


@pytest.mark.parametrize("order", ["index", "mean", "max"])
@pytest.mark.parametrize("per_channel", [True, False])
def test_tile_indices_are_the_indexed_tiled_mosaic(maps, order, per_channel):
    maps = maps.copy()
    maps[3] = 1.5  # a flat channel: a tile of 0
    maps[5, 2, 1] = np.nan  # a NaN value: drawn like a gap
    for cols in (1, 3, 4, 10):
        layout = layout_for(maps, cols, per_channel=per_channel, order=order)
        expected = to_indexed(tile_maps(maps, layout))
        got = tile_indices(maps, layout)
        assert got.dtype == np.uint8 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        assert (got == GAP_INDEX).sum() > 0
