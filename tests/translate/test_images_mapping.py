"""OpenAI images requests -> Gemini bodies: size to aspect ratio, Imagen's parameters."""

from __future__ import annotations

import orjson
import pytest

from keymux.errors import BadRequest
from keymux.translate import images as I


@pytest.mark.parametrize(("size", "gemini", "imagen"), [
    ("1024x1024", "1:1", "1:1"), ("256x256", "1:1", "1:1"), ("1536x1024", "3:2", "4:3"), ("1024x1536", "2:3", "3:4"),
    ("1792x1024", "16:9", "16:9"), ("1024x1792", "9:16", "9:16"), ("2520x1080", "21:9", "16:9"),
])
def test_size_maps_to_the_nearest_ratio_each_model_takes(size: str, gemini: str, imagen: str) -> None:
    doc = orjson.loads(I.gemini_request({"prompt": "p", "size": size}))
    assert doc == {"contents": [{"role": "user", "parts": [{"text": "p"}]}],
                   "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": gemini}}}
    assert orjson.loads(I.imagen_request({"prompt": "p", "size": size, "n": 2})) == {
        "instances": [{"prompt": "p"}], "parameters": {"sampleCount": 2, "aspectRatio": imagen}}


def test_auto_size_sends_no_ratio() -> None:
    assert "imageConfig" not in orjson.loads(I.gemini_request({"prompt": "p", "size": "auto"}))["generationConfig"]


@pytest.mark.parametrize(("body", "param"), [
    ({"prompt": "p", "size": "1024"}, "size"), ({"prompt": "p", "size": "0x5"}, "size"), ({}, "prompt"),
    ({"prompt": "p", "n": 0}, "n"), ({"prompt": "p", "n": 11}, "n"), ({"prompt": "p", "response_format": "url"},
                                                                     "response_format"),
])
def test_what_cannot_be_served_names_its_field(body: dict[str, object], param: str) -> None:
    with pytest.raises(BadRequest) as err:
        I.check(body)
    assert err.value.param == param
