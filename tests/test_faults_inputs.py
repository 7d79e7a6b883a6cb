"""Inputs that used to be misread: huge integer pixels with texture, manifests that are not CSV text."""

import numpy as np
import pytest


def test_int64_pixels_near_2_62_with_texture_are_not_constant(engine, nuclei_crop):
    from napari_oaims.core.guidance import Window
    from napari_oaims.core.source import ImageSource

    image, labels = nuclei_crop
    huge = np.int64(2**62) + image.astype(np.int64)  # the nuclei, far from 0
    src = ImageSource(huge)
    crop = src.crop((), Window(0, 0, 64))
    reference = ImageSource(image).crop((), Window(0, 0, 64))
    np.testing.assert_allclose(crop, reference, atol=1e-5)  # the texture reaches the model unchanged
    from conftest import largest_ids, object_centre

    point = object_centre(labels, largest_ids(labels, 1)[0])
    assert engine.session(huge).click(point).mask.sum() == engine.session(image).click(point).mask.sum()


def test_a_constant_int64_image_is_still_refused():
    from napari_oaims.core.source import ImageSource

    with pytest.raises(ValueError, match="constant"):
        ImageSource(np.full((32, 32), 2**62, np.int64))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a UTF-8 CSV text file"),
        (b"image,seeds,name\nv.tif,s\x00.tif,v\n", "not a UTF-8 CSV text file"),
    ],
)
def test_a_manifest_that_is_not_csv_text_is_named(tmp_path, content, why):
    from napari_oaims.batch.manifest import read_manifest

    path = tmp_path / "jobs.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=why) as err:
        read_manifest(path)
    assert str(path) in str(err.value)
