"""The sans-I/O frame decoder: chunking independence, clear errors, no hangs on garbage."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lspguard.errors import LocalProtocolError, RemoteProtocolError
from lspguard.protocol.framing import EOF, NEED_DATA, Frame, FrameDecoder, encode_frame
from lspguard.proxy.pipes import FrameReader


def decode_all(chunks: list[bytes], **kwargs: int) -> list[Frame]:
    dec = FrameDecoder(**kwargs)
    frames: list[Frame] = []
    for chunk in [*chunks, b""]:
        dec.receive_data(chunk)
        while isinstance(item := dec.next_frame(), Frame):
            frames.append(item)
    assert item is EOF
    return frames


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [c for c in out if c]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def frame_bytes(draw: st.DrawFn) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": draw(st.integers()), "params": draw(json_values)},
                      ensure_ascii=draw(st.booleans())).encode()
    name = draw(st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH"]))
    content_type = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
    extra = draw(st.sampled_from([b"", content_type]))
    length = name + b": %d\r\n" % len(body)
    header = extra + length if draw(st.booleans()) else length + extra
    return header + b"\r\n" + body


@given(st.lists(frame_bytes(), min_size=1, max_size=6),
       st.lists(st.integers(0, 10**6), max_size=12))
@settings(max_examples=300, deadline=None)
def test_any_chunking_yields_the_same_frames(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frames)
    whole = decode_all([stream])
    chunked = decode_all(split(stream, cuts))
    bytewise = decode_all([stream[i : i + 1] for i in range(len(stream))])
    assert [f.raw for f in whole] == frames
    assert chunked == whole == bytewise


@given(st.binary(max_size=400), st.lists(st.integers(0, 10**4), max_size=6))
@settings(max_examples=500, deadline=None)
def test_garbage_gives_frames_or_a_clear_error_never_a_hang(data: bytes, cuts: list[int]) -> None:
    dec = FrameDecoder(max_frame_bytes=1000)
    steps = 0
    for chunk in [*split(data, cuts), b""]:
        dec.receive_data(chunk)
        while True:
            steps += 1
            assert steps < 10_000, "decoder loops"
            try:
                item = dec.next_frame()
            except RemoteProtocolError as exc:
                assert str(exc)
                assert exc.offset is not None
                before = dec.buffered
                dec.resync()
                assert dec.buffered < before or before == 0, "resync must make progress"
                continue
            if not isinstance(item, Frame):
                break
    assert item is EOF or dec.buffered == 0


def test_body_length_is_in_bytes_not_characters() -> None:
    body = '{"text":"héllo ✓ 𝄞"}'.encode()
    frames = decode_all([encode_frame(body) + encode_frame(b"{}")])
    assert bytes(frames[0].body) == body
    assert bytes(frames[1].body) == b"{}"


def test_original_bytes_are_kept() -> None:
    raw = b"content-length:  2 \r\nContent-Type: x\r\n\r\n{}"
    (frame,) = decode_all([raw])
    assert frame.raw == raw
    assert bytes(frame.body) == b"{}"


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"Content-Type: x\r\n\r\n{}", "without Content-Length"),
        (b"Content-Length: abc\r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Length: -1\r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n{}", "conflicting"),
        (b"garbage line\r\n\r\n", "header line without ':'"),
        (b"Content-Length: 5000\r\n\r\n", "exceeds the cap of 1000"),
        (b"x" * 9000, "no end of header"),
    ],
)
def test_malformed_headers_name_the_problem(stream: bytes, message: str) -> None:
    dec = FrameDecoder(max_frame_bytes=1000)
    dec.receive_data(stream)
    with pytest.raises(RemoteProtocolError, match=message):
        dec.next_frame()


def test_error_offset_points_at_the_bad_frame() -> None:
    good = encode_frame(b"{}")
    dec = FrameDecoder()
    dec.receive_data(good + b"Content-Length: x\r\n\r\n")
    assert isinstance(dec.next_frame(), Frame)
    with pytest.raises(RemoteProtocolError) as info:
        dec.next_frame()
    assert info.value.offset == len(good)
    assert f"at stream byte {len(good)}" in str(info.value)


def test_truncated_stream_is_an_error_at_eof() -> None:
    dec = FrameDecoder()
    dec.receive_data(b"Content-Length: 10\r\n\r\n{}")
    assert dec.next_frame() is NEED_DATA
    dec.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="inside a frame body: have 2 of 10"):
        dec.next_frame()


def test_resync_recovers_the_next_frame_after_garbage() -> None:
    dec = FrameDecoder()
    dec.receive_data(b"Content-Length: zz\r\n\r\nnoise" + encode_frame(b'{"id":1}'))
    with pytest.raises(RemoteProtocolError):
        dec.next_frame()
    dec.resync()
    frame = dec.next_frame()
    assert isinstance(frame, Frame)
    assert bytes(frame.body) == b'{"id":1}'


def test_clean_eof_and_need_data() -> None:
    dec = FrameDecoder()
    assert dec.next_frame() is NEED_DATA
    dec.receive_data(b"Content-Len")
    assert dec.next_frame() is NEED_DATA
    dec.receive_data(b"gth: 2\r\n\r\n{}")
    assert isinstance(dec.next_frame(), Frame)
    dec.receive_data(b"")
    assert dec.next_frame() is EOF


def test_encode_frame_rejects_str() -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame("{}")  # type: ignore[arg-type]


def test_ten_mebibyte_body_in_small_chunks() -> None:
    body = b'{"t":"' + b"a" * (10 * 1024 * 1024) + b'"}'
    stream = encode_frame(body)
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    (frame,) = decode_all(chunks)
    assert len(frame.body) == len(body)


@given(st.lists(frame_bytes(), min_size=1, max_size=6),
       st.lists(st.integers(0, 10**6), max_size=12))
@settings(max_examples=300, deadline=None)
def test_frame_reader_fast_path_yields_the_same_frames(frames: list[bytes],
                                                       cuts: list[int]) -> None:
    """FrameReader takes whole single frames without buffering; any chunking (one frame per
    read, or cut anywhere) still gives the same frames and offsets as the plain decoder."""

    stream = b"".join(frames)
    expected = [(f.raw, f.body_start, f.offset) for f in decode_all([stream])]
    for chunks in (frames, split(stream, cuts)):
        got: list[Frame] = []
        reader = FrameReader("t", got.append, lambda exc: pytest.fail(str(exc)), 1 << 20)
        for chunk in chunks:
            reader.feed(chunk)
        reader.feed_eof()
        assert [(f.raw, f.body_start, f.offset) for f in got] == expected
        assert reader.frames_in == len(frames)


def test_fast_path_declines_what_it_does_not_cover() -> None:
    dec = FrameDecoder(max_frame_bytes=10)
    assert dec.take_whole(b"Content-Length: 2\r\n\r\n{}") is not None
    assert dec.take_whole(b"content-length: 2\r\n\r\n{}") is None  # other spelling
    two = b"Content-Length: 2\r\n\r\n{}Content-Length: 6\r\n\r\n[1,2]"
    first = dec.take_whole(two)  # the first of several: sliced off, offsets kept
    assert first is not None and first.raw == two[:23] and bytes(first.body) == b"{}"
    assert dec.take_whole(two, 23) is None  # 6 bytes declared, 5 there: not whole...
    second = dec.take_whole(two + b" ", 23)  # ...until they are
    assert second is not None and bytes(second.body) == b"[1,2] "
    assert second.offset == first.offset + 23  # stream offsets run on
    assert dec.take_whole(b"Content-Length: 99\r\n\r\n{}") is None  # incomplete / over cap
    dec.receive_data(b"Content-Le")
    assert dec.take_whole(b"Content-Length: 2\r\n\r\n{}") is None  # something is buffered


def test_body_collected_in_parts_then_what_follows_in_the_same_chunk() -> None:
    """A body longer than one read is kept as chunks and joined once; the last chunk's tail
    (the next frame, and half of the one after) is parsed on from there, offsets intact."""
    big, small = encode_frame(b'"' + b"x" * 200_000 + b'"'), encode_frame(b'{"id":2}')
    stream = big + small + small[:10]
    dec = FrameDecoder()
    for i in range(0, len(stream), 65536):
        dec.receive_data(stream[i : i + 65536])
    frames = []
    while isinstance(item := dec.next_frame(), Frame):
        frames.append(item)
    assert item is NEED_DATA and dec.buffered == 10
    assert [(f.raw, f.offset) for f in frames] == [(big, 0), (small, len(big))]
    dec.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match=f"at stream byte {len(big) + len(small)}"):
        dec.next_frame()
