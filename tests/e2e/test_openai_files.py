"""The openai SDK's `files.create` through keymux, then a chat (or Responses) request naming the file: on a
Gemini group the file lands in the Gemini Files API of one key and every request naming it reaches that key
as `fileData`; on an OpenAI group the Files API passes through, pinned to the key that holds the file."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from .conftest import gemini_group
from .rss import RssWatch

GEMINI = ["ka-1111111111", "kb-2222222222", "kc-3333333333"]
OPENAI = ["sk-oa-1111111111", "sk-ob-2222222222"]
PDF = b"%PDF-1.4 a small document\n" * 40


def _openai_group(name: str) -> list[dict]:
    return [{"model_name": name, "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": k}} for k in OPENAI]


async def _stack(make_stack, **general):
    doc = {"model_list": _openai_group("oa") + gemini_group("flash", GEMINI)}
    if general:
        doc["general_settings"] = general
    return await make_stack(doc, gemini_keys={k: EmuKey() for k in GEMINI}, openai_keys={k: EmuKey() for k in OPENAI})


def _file_part(file_id: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": "summarise this"},
                                        {"type": "file", "file": {"file_id": file_id}}]}


async def test_an_uploaded_file_named_in_chat_reaches_its_gemini_key_as_file_data(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.openai()
    made = await client.files.create(file=("notes.pdf", PDF, "application/pdf"), purpose="user_data")
    assert made.id.startswith("file-") and made.object == "file" and made.bytes == len(PDF)
    assert made.filename == "notes.pdf" and made.purpose == "user_data" and made.status == "processed"
    name = "files/" + made.id.removeprefix("file-")
    owner = next(k for k in GEMINI if name in stack.gemini.files_api.owned_by(k))  # no model: the Gemini group
    for n in range(5):  # other traffic rotates the pool; the file's requests stay on its key
        await client.chat.completions.create(model="flash", messages=[{"role": "user", "content": f"other {n}"}])
        answer = await client.chat.completions.create(model="flash", messages=[_file_part(made.id)])
        assert answer.choices[0].message.content
    assert stack.gemini.files_api.used == [(name, "application/pdf", owner)] * 5
    assert stack.gemini.count(status=403) == 0
    assert stack.gemini.count(owner, endpoint="generateContent") >= 5

    got = await client.files.retrieve(made.id)
    assert got.id == made.id and got.filename == "notes.pdf"
    listed = await client.files.list()
    assert [f.id for f in listed.data] == [made.id]
    assert listed.data[0].model_extra["keymux_key"] == fingerprint(owner)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.files.content(made.id)
    assert "downloaded" in caught.value.message
    deleted = await client.files.delete(made.id)
    assert deleted.deleted is True and not stack.gemini.files_api.owned_by(owner)
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(made.id)


async def test_a_responses_input_file_reaches_the_files_key(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.openai()
    made = await client.files.create(file=("table.txt", b"a,b\n1,2\n", "text/plain"), purpose="user_data")
    name = "files/" + made.id.removeprefix("file-")
    owner = next(k for k in GEMINI if name in stack.gemini.files_api.owned_by(k))
    for _ in range(3):
        answer = await client.responses.create(model="flash", input=[{"role": "user", "content": [
            {"type": "input_text", "text": "what is in it?"}, {"type": "input_file", "file_id": made.id}]}])
        assert answer.output_text
    assert stack.gemini.files_api.used == [(name, "text/plain", owner)] * 3


async def test_a_model_field_sends_the_upload_to_an_openai_group_which_passes_through(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.openai()
    made = await client.files.create(file=("notes.pdf", PDF, "application/pdf"), purpose="user_data",
                                     extra_body={"model": "oa"})
    owner = next(k for k in OPENAI if made.id in stack.openai_emu.files_api.owned_by(k))
    assert not any(stack.gemini.files_api.owned_by(k) for k in GEMINI)
    for _ in range(4):
        answer = await client.chat.completions.create(model="oa", messages=[_file_part(made.id)])
        assert answer.choices[0].message.content
    assert stack.openai_emu.count(status=400) == 0
    assert stack.openai_emu.count(owner, endpoint="chat.completions") == 4
    assert (await client.files.content(made.id)).content == PDF
    assert (await client.files.retrieve(made.id)).bytes == len(PDF)
    assert made.id in [f.id for f in (await client.files.list(purpose="user_data")).data]
    with pytest.raises(openai.BadRequestError) as elsewhere:  # the Gemini group has not the file's key
        await client.chat.completions.create(model="flash", messages=[_file_part(made.id)])
    assert "does not serve model group 'flash'" in elsewhere.value.message
    assert (await client.files.delete(made.id)).deleted is True
    assert not stack.openai_emu.files_api.owned_by(owner)


async def test_bad_uploads_get_clear_openai_errors(make_stack) -> None:
    stack = await _stack(make_stack, max_upload_size_mb=1)
    client = stack.openai()
    with pytest.raises(openai.APIStatusError) as caught:
        await client.files.create(file=("big.bin", b"\0" * (2 * 1024 * 1024)), purpose="user_data")
    assert caught.value.status_code == 413 and caught.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.files.create(file=("a.txt", b"x"), purpose="homework")
    assert "purpose" in bad.value.message
    with pytest.raises(openai.NotFoundError):
        await client.files.create(file=("a.txt", b"x"), purpose="user_data", extra_body={"model": "nope"})
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("purpose", "user_data")
        async with http.post(f"{stack.base}/v1/files", data=form,
                             headers={"authorization": "Bearer sk-master"}) as resp:
            body = orjson.loads(await resp.read())
        assert resp.status == 400 and body["error"]["param"] == "file"
        async with http.get(f"{stack.base}/v1/files/file-nosuch",
                            headers={"authorization": "Bearer sk-master"}) as resp:
            assert resp.status == 404 and "error" in orjson.loads(await resp.read())

        async def megabytes():  # no Content-Length: the limit is counted while the file streams through
            for _ in range(8):
                yield b"\0" * (256 * 1024)

        for group in ("flash", "oa"):  # a Gemini key's upload, and one passed through to an OpenAI key
            with aiohttp.MultipartWriter("form-data") as chunked:
                chunked.append("user_data").set_content_disposition("form-data", name="purpose")
                chunked.append(group).set_content_disposition("form-data", name="model")
                chunked.append(megabytes()).set_content_disposition("form-data", name="file", filename="big.bin")
            async with http.post(f"{stack.base}/v1/files", data=chunked,
                                 headers={"authorization": "Bearer sk-master"}) as resp:
                body = orjson.loads(await resp.read())
            assert resp.status == 413 and "limit" in body["error"]["message"], group
    assert not any(stack.openai_emu.files_api.owned_by(k) for k in OPENAI)
    assert not any(stack.gemini.files_api.owned_by(k) for k in GEMINI)


async def test_an_upload_is_streamed_through_not_held(make_stack) -> None:
    stack = await _stack(make_stack)
    size, piece = 64 * 1024 * 1024, b"\0" * (256 * 1024)

    async def body():
        for _ in range(size // len(piece)):
            yield piece

    watch = RssWatch()
    async with aiohttp.ClientSession() as http:
        with aiohttp.MultipartWriter("form-data") as form:
            form.append("user_data").set_content_disposition("form-data", name="purpose")
            form.append(body(), {"Content-Type": "video/mp4"}).set_content_disposition(
                "form-data", name="file", filename="clip.mp4")
        async with http.post(f"{stack.base}/v1/files", data=form,
                             headers={"authorization": "Bearer sk-master"}) as resp:
            made = orjson.loads(await resp.read())
    watch.stop()
    assert resp.status == 200 and made["bytes"] == size
    assert stack.gemini.files_api.largest_chunk < 4 * 1024 * 1024
    assert watch.grown < 20 * 1024 * 1024, f"RSS grew {(watch.grown) / 2**20:.1f} MB while 64 MB passed through"
